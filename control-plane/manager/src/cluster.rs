//! The Cluster lifecycle loop: turns each `berth.dev/v1` Cluster of the root cluster into a
//! logical cluster, a kubeconfig Secret and a status, and tears it all down when the Cluster
//! is deleted. It runs for the root cluster only, the one that serves Clusters.
//!
//! Making and deleting logical clusters is the API server's business, so the loop reaches it
//! through [`Provisioner`], a seam the binary implements (as upstream's API server seeds its own
//! defaults); everything else goes through the root cluster's client. The decisions are
//! [`controllers::cluster`]'s; this shell reads the Cluster and its Secret live, takes the
//! steps in order and records Events.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use controllers::cluster::{self as lifecycle, Facts, Step, reason};
use kube::api::{Patch, PatchParams};
use runtime::events::EventType;
use runtime::resource::{self, Resource, SECRETS};
use runtime::{Action, Key};
use serde_json::{Value, json};

use crate::{Cluster, Error, Shared, client};

/// `clusters` (berth.dev/v1 Cluster), served by the root cluster only.
pub const CLUSTERS: Resource = Resource::new("berth.dev", "v1", "Cluster", "clusters", true);

/// The Event source of the loop.
const COMPONENT: &str = "cluster-controller";
/// How often a Ready cluster is checked again: its logical cluster can vanish without any
/// change to the objects the loop watches.
const RESYNC: Duration = Duration::from_secs(60);

/// What the loop asks of the API server: make and delete logical clusters, and say where they
/// are served.
#[async_trait::async_trait]
pub trait Provisioner: Send + Sync + 'static {
    /// Makes logical cluster `id` exist (idempotent) and returns an admin kubeconfig (YAML) for
    /// it.
    async fn provision(&self, id: &str, spec: &berth_api::ClusterSpec) -> anyhow::Result<String>;
    /// Deletes logical cluster `id` and everything in it (idempotent).
    async fn teardown(&self, id: &str) -> anyhow::Result<()>;
    /// Whether logical cluster `id` exists.
    async fn exists(&self, id: &str) -> anyhow::Result<bool>;
    /// Applies what of `spec` can change on a running cluster (its limits). Idempotent; called
    /// at every sync of an existing cluster.
    async fn configure(&self, _id: &str, _spec: &berth_api::ClusterSpec) -> anyhow::Result<()> {
        Ok(())
    }
    /// The endpoint URL of cluster `id`, as status reports it.
    fn endpoint(&self, id: &str) -> String;
    /// The CA (PEM) that verifies the server, as status reports it.
    fn server_ca_pem(&self) -> String;
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(CLUSTERS, move |change| {
        let obj = change.object();
        s.queues
            .clusters
            .add(c.key(resource::namespace(obj), resource::name(obj)));
    });
    // A kubeconfig Secret edited or deleted brings its Cluster back to a sync.
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(SECRETS, move |change| {
        let secret = change.object();
        let owner = resource::owner_references(secret).find(|r| {
            r.get("kind").and_then(Value::as_str) == Some("Cluster")
                && r.get("apiVersion").and_then(Value::as_str) == Some(berth_api::API_VERSION)
        });
        if let Some(name) = owner.and_then(|r| r.get("name")).and_then(Value::as_str) {
            s.queues
                .clusters
                .add(c.key(resource::namespace(secret), name));
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(provisioner) = shared.config.provisioner.clone() else {
        return Ok(Action::await_change());
    };
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let client = &cluster.client;
    // Read live: a stale copy could provision a cluster that is already being deleted.
    let Some(mut obj) = client::get(client, &CLUSTERS, &key.namespace, &key.name).await? else {
        return Ok(Action::await_change());
    };
    let secret_name = lifecycle::secret_name(&obj);
    let secret = client::get(client, &SECRETS, &key.namespace, &secret_name).await?;
    let id = lifecycle::cluster_id(&obj);
    let exists = provisioner.exists(&id).await.map_err(Error::Provisioner)?;
    if exists && obj.pointer("/metadata/deletionTimestamp").is_none() {
        let spec: berth_api::ClusterSpec =
            serde_json::from_value(obj.get("spec").cloned().unwrap_or_default())
                .unwrap_or_default();
        provisioner
            .configure(&id, &spec)
            .await
            .map_err(Error::Provisioner)?;
    }
    // The Kubernetes release without Berth's build metadata (`v1.33.0+berth.0.1.0`).
    let git_version = client.apiserver_version().await?.git_version;
    let version = git_version.split('+').next().unwrap_or_default().to_owned();
    let (endpoint, ca) = (provisioner.endpoint(&id), provisioner.server_ca_pem());
    let facts = Facts {
        exists,
        endpoint: &endpoint,
        server_ca_pem: &ca,
        kubernetes_version: &version,
        now: SystemTime::now(),
    };
    let steps = lifecycle::reconcile(&obj, secret.as_ref(), &facts);
    let recorder = cluster.recorder(COMPONENT);
    let api = CLUSTERS.api(client, Some(&key.namespace));
    let mut kubeconfig = None;
    for step in steps {
        match step {
            Step::SetFinalizers(finalizers) => {
                let patch = json!({"metadata": {
                    "finalizers": finalizers,
                    "resourceVersion": resource::resource_version(&obj),
                }});
                match api
                    .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(o) => obj = resource::to_value(o),
                    // Changed since it was read, or gone: the next sync sees the new state.
                    Err(e) if client::is_conflict(&e) => {
                        return Ok(Action::requeue(Duration::ZERO));
                    }
                    Err(e) if client::is_not_found(&e) => return Ok(Action::await_change()),
                    Err(e) => return Err(e.into()),
                }
            }
            Step::Status(status) => {
                let patch = json!({"status": status});
                let o = api
                    .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                obj = resource::to_value(o);
            }
            Step::Provision => {
                let spec: berth_api::ClusterSpec =
                    serde_json::from_value(obj.get("spec").cloned().unwrap_or_default())
                        .unwrap_or_default();
                match provisioner.provision(&id, &spec).await {
                    Ok(k) => kubeconfig = Some(k),
                    Err(e) => {
                        let message = format!("{e:#}");
                        recorder.record(
                            &obj,
                            EventType::Warning,
                            reason::PROVISIONING_FAILED,
                            &format!("Creating logical cluster {id} failed: {message}"),
                        );
                        if let Some(status) = lifecycle::provisioning_failed(&obj, &facts, &message)
                        {
                            let patch = json!({"status": status});
                            let _ = api
                                .patch_status(
                                    &key.name,
                                    &PatchParams::default(),
                                    &Patch::Merge(&patch),
                                )
                                .await;
                        }
                        return Err(Error::Provisioner(e));
                    }
                }
            }
            Step::WriteSecret(secret) => {
                let Some(k) = kubeconfig.as_deref() else {
                    unreachable!("the core provisions before it writes the Secret")
                };
                let secret = lifecycle::with_kubeconfig(&secret, k);
                if resource::resource_version(&secret).is_empty() {
                    client::create(client, &SECRETS, &secret).await?;
                } else {
                    client::replace(client, &SECRETS, &secret).await?;
                }
                recorder.record(
                    &obj,
                    EventType::Normal,
                    reason::PROVISIONED,
                    &format!(
                        "Provisioned logical cluster {id}; its kubeconfig is in Secret {secret_name}"
                    ),
                );
                tracing::info!(cluster = %id, "logical cluster provisioned");
            }
            Step::Teardown => {
                if let Err(e) = provisioner.teardown(&id).await {
                    recorder.record(
                        &obj,
                        EventType::Warning,
                        reason::TEARDOWN_FAILED,
                        &format!("Deleting logical cluster {id} failed: {e:#}"),
                    );
                    return Err(Error::Provisioner(e));
                }
                recorder.record(
                    &obj,
                    EventType::Normal,
                    reason::TORN_DOWN,
                    &format!("Deleted logical cluster {id} and everything in it"),
                );
                tracing::info!(cluster = %id, "logical cluster torn down");
            }
            Step::DeleteSecret { uid } => {
                client::delete(
                    client,
                    &SECRETS,
                    &key.namespace,
                    &secret_name,
                    Some(uid.as_str()),
                    None,
                )
                .await?;
            }
        }
    }
    if resource::is_deleting(&obj) {
        Ok(Action::await_change())
    } else {
        Ok(Action::requeue(RESYNC))
    }
}
