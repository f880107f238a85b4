//! Berth's hosted control loops: the scheduler and the controllers, run for every logical
//! cluster the server serves, each an ordinary client of that cluster's API.
//!
//! A [`Manager`] owns one work queue per controller, shared by all clusters (the queue takes
//! clusters in turn, so a busy tenant cannot starve a quiet one), and per cluster a [`Cluster`]:
//! a `kube::Client` for it and the informers whose caches the controllers read. Reconcilers are
//! thin shells around the pure cores of the `controllers` and `scheduler` crates: read the
//! caches, call the core, write its plan through the API, record Events.
//!
//! What this crate is not: it never reaches the store or the API server's internals; a client
//! sitting on a socket would work the same as the in-process one the server hands it.

mod client;
mod cluster;
mod crd;
mod cronjob;
mod csr;
mod daemonset;
mod deployment;
mod disruption;
mod endpoints;
mod endpointslice;
mod expectations;
mod gc;
mod job;
mod namespace;
mod nodeipam;
mod nodelifecycle;
mod owners;
mod podautoscaler;
mod podgc;
mod replicaset;
mod resourcequota;
mod rootcacert;
mod scheduling;
mod serviceaccount;
mod statefulset;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use runtime::cache::{Cache, IndexFn};
use runtime::informer::{Change, Informer};
use runtime::queue::{Key, Queue};
use runtime::resource::Resource;
use tokio::sync::watch;

pub use cluster::{CLUSTERS, Provisioner};

/// The id of the root cluster, the one that serves the management API (`berth.dev` Clusters);
/// the API server's `request::ROOT_CLUSTER`.
pub const ROOT_CLUSTER: &str = "_root";
pub use csr::{SignError, Signer};

/// The name of the scheduler whose pods Berth places.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// Why a reconcile failed; the key is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API request failed.
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    /// The object cannot be reconciled as it is.
    #[error(transparent)]
    Core(#[from] controllers::Error),
    /// Making or deleting a logical cluster failed.
    #[error("{0:#}")]
    Provisioner(anyhow::Error),
}

/// One logical cluster's client and informers.
pub struct Cluster {
    id: Arc<str>,
    client: kube::Client,
    informers: Mutex<HashMap<String, Arc<Informer>>>,
    recorders: Mutex<HashMap<&'static str, runtime::events::Recorder>>,
    shutdown: watch::Receiver<bool>,
    started: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    scheduling: scheduling::State,
    gc: gc::Graph,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("id", &self.id).finish()
    }
}

impl Cluster {
    /// The cluster's id.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// The informer for `resource`, created on first use with `indexes`, shared thereafter.
    fn informer(&self, resource: Resource, indexes: Vec<(&'static str, IndexFn)>) -> Arc<Informer> {
        let key = informer_key(&resource);
        let informer = Arc::clone(
            self.informers
                .lock()
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Informer::new(resource, indexes))),
        );
        assert!(
            !informer.is_metadata_only(),
            "a loop needs {key} in full but it was wired after the garbage collector"
        );
        informer
    }

    /// The informer for `resource` if one exists, else a new metadata-only one.
    fn metadata_informer(&self, resource: Resource) -> Arc<Informer> {
        let key = informer_key(&resource);
        Arc::clone(
            self.informers.lock().entry(key).or_insert_with(|| {
                Arc::new(Informer::metadata(resource).projected(gc::projection))
            }),
        )
    }

    /// Drops the informer of `resource` (a custom resource whose CRD is gone).
    fn forget_informer(&self, resource: &Resource) {
        self.informers.lock().remove(&informer_key(resource));
    }

    /// The informer for the objects of `resource` that match `field_selector`, shared by
    /// every loop that asks for the same selection (e.g. one well-known ConfigMap per
    /// namespace, without caching every ConfigMap).
    fn filtered_informer(&self, resource: Resource, field_selector: &str) -> Arc<Informer> {
        let key = format!("{}?{field_selector}", informer_key(&resource));
        Arc::clone(self.informers.lock().entry(key).or_insert_with(|| {
            Arc::new(Informer::new(resource, Vec::new()).with_field_selector(field_selector))
        }))
    }

    /// The cache of a [`Cluster::filtered_informer`].
    fn filtered_cache(&self, resource: &Resource, field_selector: &str) -> Arc<Cache> {
        let key = format!("{}?{field_selector}", informer_key(resource));
        self.informers
            .lock()
            .get(&key)
            .map(|i| i.cache())
            .unwrap_or_default()
    }

    /// The cache of `resource` (its informer must have been created while wiring).
    fn cache(&self, resource: &Resource) -> Arc<Cache> {
        self.informers
            .lock()
            .get(&informer_key(resource))
            .map(|i| i.cache())
            .unwrap_or_default()
    }

    /// Subscribes `handler` to `resource`'s changes.
    fn on_change(&self, resource: Resource, handler: impl Fn(&Change) + Send + Sync + 'static) {
        self.informer(resource, Vec::new()).on_change(handler);
    }

    /// The Event recorder for `component`.
    fn recorder(&self, component: &'static str) -> runtime::events::Recorder {
        self.recorders
            .lock()
            .entry(component)
            .or_insert_with(|| runtime::events::Recorder::spawn(self.client.clone(), component))
            .clone()
    }

    fn key(&self, namespace: &str, name: &str) -> Key {
        Key::new(&self.id, namespace, name)
    }
}

fn informer_key(r: &Resource) -> String {
    // Qualified by group: custom resources may reuse any plural (and Events exist twice).
    if r.group.is_empty() {
        r.plural.to_string()
    } else {
        format!("{}.{}", r.plural, r.group)
    }
}

/// The queues, one per controller.
struct Queues {
    replicasets: Arc<Queue>,
    deployments: Arc<Queue>,
    endpointslices: Arc<Queue>,
    namespaces: Arc<Queue>,
    gc: Arc<Queue>,
    scheduling: Arc<Queue>,
    nodes: Arc<Queue>,
    jobs: Arc<Queue>,
    ttl: Arc<Queue>,
    cronjobs: Arc<Queue>,
    daemonsets: Arc<Queue>,
    statefulsets: Arc<Queue>,
    serviceaccounts: Arc<Queue>,
    rootcacerts: Arc<Queue>,
    endpoints: Arc<Queue>,
    disruption: Arc<Queue>,
    podgc: Arc<Queue>,
    nodeipam: Arc<Queue>,
    resourcequotas: Arc<Queue>,
    autoscalers: Arc<Queue>,
    clusters: Arc<Queue>,
    csrs: Arc<Queue>,
    crds: Arc<Queue>,
}

/// How the loops behave.
#[derive(Clone)]
pub struct Config {
    /// How long a node may be silent (no Lease renewal, no status) before it is marked
    /// Unknown and tainted unreachable (upstream's `--node-monitor-grace-period`).
    pub node_monitor_grace_period: std::time::Duration,
    /// The PEM bundle published as `ca.crt` in every namespace's `kube-root-ca.crt`
    /// (upstream's `--root-ca-file`); `None` runs no publisher. One manager serves every
    /// logical cluster, so every cluster gets this same bundle: today the server's own CA,
    /// which verifies the API server whichever cluster a client addresses.
    pub ca_bundle: Option<String>,
    /// How many terminated pods may exist before the oldest are deleted (upstream's
    /// `--terminated-pod-gc-threshold`); 0 keeps them all.
    pub terminated_pod_gc_threshold: usize,
    /// The pod range node IPAM carves each node's `/24` from (upstream's `--cluster-cidr`
    /// with `--allocate-node-cidrs`); IPv4 only.
    pub cluster_cidr: String,
    /// What makes and deletes logical clusters for the root cluster's `Cluster` objects;
    /// `None` runs no Cluster lifecycle loop.
    pub provisioner: Option<Arc<dyn Provisioner>>,
    /// Signs approved CertificateSigningRequests of the kubelet client and API server client
    /// signers with each cluster's client CA; `None` signs nothing (approval still runs).
    pub signer: Option<Arc<dyn Signer>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("node_monitor_grace_period", &self.node_monitor_grace_period)
            .field("ca_bundle", &self.ca_bundle.as_ref().map(|_| "<pem>"))
            .field(
                "terminated_pod_gc_threshold",
                &self.terminated_pod_gc_threshold,
            )
            .field("cluster_cidr", &self.cluster_cidr)
            .field("provisioner", &self.provisioner.is_some())
            .field("signer", &self.signer.is_some())
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_monitor_grace_period: controllers::nodelifecycle::DEFAULT_GRACE,
            ca_bundle: None,
            terminated_pod_gc_threshold: controllers::podgc::DEFAULT_TERMINATED_THRESHOLD,
            cluster_cidr: controllers::nodeipam::DEFAULT_CLUSTER_CIDR.to_owned(),
            provisioner: None,
            signer: None,
        }
    }
}

/// State every reconciler shares.
struct Shared {
    clusters: RwLock<HashMap<Arc<str>, Arc<Cluster>>>,
    queues: Queues,
    config: Config,
    rs_expectations: expectations::Expectations,
    job_expectations: expectations::Expectations,
    jobs: job::State,
    cj_expectations: expectations::Expectations,
    ds_expectations: expectations::Expectations,
    sts_expectations: expectations::Expectations,
    podgc: podgc::State,
    nodeipam: nodeipam::State,
}

impl Shared {
    fn cluster(&self, id: &str) -> Option<Arc<Cluster>> {
        self.clusters.read().get(id).cloned()
    }
}

/// The control loops of every cluster this server serves.
#[derive(Clone)]
pub struct Manager {
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("clusters", &self.shared.clusters.read().len())
            .finish()
    }
}

impl Manager {
    /// Starts the controllers' workers; they idle until clusters are added. Everything stops
    /// when `shutdown` turns true.
    pub fn start(config: Config, shutdown: watch::Receiver<bool>) -> Self {
        let shared = Arc::new(Shared {
            config,
            clusters: RwLock::default(),
            queues: Queues {
                replicasets: Queue::new(),
                deployments: Queue::new(),
                endpointslices: Queue::new(),
                namespaces: Queue::new(),
                gc: Queue::new(),
                scheduling: Queue::new(),
                nodes: Queue::new(),
                jobs: Queue::new(),
                ttl: Queue::new(),
                cronjobs: Queue::new(),
                daemonsets: Queue::new(),
                statefulsets: Queue::new(),
                serviceaccounts: Queue::new(),
                rootcacerts: Queue::new(),
                endpoints: Queue::new(),
                disruption: Queue::new(),
                podgc: Queue::new(),
                nodeipam: Queue::new(),
                resourcequotas: Queue::new(),
                autoscalers: Queue::new(),
                clusters: Queue::new(),
                csrs: Queue::new(),
                crds: Queue::new(),
            },
            rs_expectations: expectations::Expectations::default(),
            job_expectations: expectations::Expectations::default(),
            jobs: job::State::default(),
            cj_expectations: expectations::Expectations::default(),
            ds_expectations: expectations::Expectations::default(),
            sts_expectations: expectations::Expectations::default(),
            podgc: podgc::State::default(),
            nodeipam: nodeipam::State::default(),
        });
        let q = &shared.queues;
        macro_rules! drive {
            ($name:literal, $queue:expr, $workers:expr, $f:path) => {{
                let s = Arc::clone(&shared);
                tokio::spawn(runtime::controller::run(
                    $name,
                    Arc::clone(&$queue),
                    $workers,
                    move |key| $f(Arc::clone(&s), key),
                    shutdown.clone(),
                ));
            }};
        }
        drive!("replicaset", q.replicasets, 5, replicaset::reconcile);
        drive!("deployment", q.deployments, 5, deployment::reconcile);
        drive!(
            "endpointslice",
            q.endpointslices,
            5,
            endpointslice::reconcile
        );
        drive!("namespace", q.namespaces, 2, namespace::reconcile);
        drive!("garbagecollector", q.gc, 8, gc::reconcile);
        drive!("scheduler", q.scheduling, 1, scheduling::reconcile);
        drive!("nodelifecycle", q.nodes, 2, nodelifecycle::reconcile);
        drive!("job", q.jobs, 5, job::reconcile);
        drive!("ttlafterfinished", q.ttl, 5, job::reconcile_ttl);
        drive!("cronjob", q.cronjobs, 5, cronjob::reconcile);
        drive!("daemonset", q.daemonsets, 2, daemonset::reconcile);
        drive!("statefulset", q.statefulsets, 5, statefulset::reconcile);
        drive!(
            "serviceaccount",
            q.serviceaccounts,
            1,
            serviceaccount::reconcile
        );
        drive!(
            "root-ca-cert-publisher",
            q.rootcacerts,
            1,
            rootcacert::reconcile
        );
        drive!("endpoint", q.endpoints, 5, endpoints::reconcile);
        drive!("disruption", q.disruption, 2, disruption::reconcile);
        drive!("podgc", q.podgc, 1, podgc::reconcile);
        drive!("nodeipam", q.nodeipam, 1, nodeipam::reconcile);
        drive!(
            "resourcequota",
            q.resourcequotas,
            2,
            resourcequota::reconcile
        );
        drive!(
            "horizontal-pod-autoscaler",
            q.autoscalers,
            2,
            podautoscaler::reconcile
        );
        drive!("cluster", q.clusters, 2, cluster::reconcile);
        drive!("csrapproving-and-signing", q.csrs, 2, csr::reconcile);
        drive!("customresourcedefinition", q.crds, 2, crd::reconcile);
        Manager { shared, shutdown }
    }

    /// Runs the loops for logical cluster `id`, reached through `client`.
    pub fn add_cluster(&self, id: &str, client: kube::Client) {
        if self.shared.cluster(id).is_some() {
            return;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut global = self.shutdown.clone();
        tokio::spawn(async move {
            let _ = global.wait_for(|s| *s).await;
            stop_tx.send_replace(true);
        });
        let cluster = Arc::new(Cluster {
            id: Arc::from(id),
            client,
            informers: Mutex::default(),
            recorders: Mutex::default(),
            shutdown: stop_rx,
            started: Mutex::default(),
            scheduling: scheduling::State::default(),
            gc: gc::Graph::default(),
        });
        // The pod and ReplicaSet caches carry the indexes the loops look up by.
        cluster.informer(
            runtime::resource::PODS,
            vec![
                runtime::cache::node_name_index(),
                replicaset::orphan_index(),
                job::tracked_index(),
            ],
        );
        cluster.informer(
            runtime::resource::REPLICA_SETS,
            vec![replicaset::orphan_index()],
        );
        replicaset::wire(&cluster, &self.shared);
        deployment::wire(&cluster, &self.shared);
        endpointslice::wire(&cluster, &self.shared);
        job::wire(&cluster, &self.shared);
        cronjob::wire(&cluster, &self.shared);
        daemonset::wire(&cluster, &self.shared);
        statefulset::wire(&cluster, &self.shared);
        namespace::wire(&cluster, &self.shared);
        scheduling::wire(&cluster, &self.shared);
        nodelifecycle::wire(&cluster, &self.shared);
        serviceaccount::wire(&cluster, &self.shared);
        rootcacert::wire(&cluster, &self.shared);
        endpoints::wire(&cluster, &self.shared);
        disruption::wire(&cluster, &self.shared);
        podgc::wire(&cluster, &self.shared);
        nodeipam::wire(&cluster, &self.shared);
        resourcequota::wire(&cluster, &self.shared);
        podautoscaler::wire(&cluster, &self.shared);
        if id == ROOT_CLUSTER && self.shared.config.provisioner.is_some() {
            cluster::wire(&cluster, &self.shared);
        }
        csr::wire(&cluster, &self.shared);
        crd::wire(&cluster, &self.shared);
        // Last: the collector watches as metadata only the kinds no loop above reads in full.
        gc::wire(&cluster, &self.shared);
        self.shared
            .clusters
            .write()
            .insert(Arc::clone(&cluster.id), Arc::clone(&cluster));
        let informers: Vec<Arc<Informer>> = cluster.informers.lock().values().cloned().collect();
        let handles = informers
            .iter()
            .map(|i| i.spawn(cluster.client.clone(), cluster.shutdown.clone()))
            .collect();
        *cluster.started.lock() = handles;
        tracing::info!(
            cluster = id,
            informers = informers.len(),
            "control loops started"
        );
    }

    /// Stops the loops of logical cluster `id`.
    pub fn remove_cluster(&self, id: &str) {
        if let Some(cluster) = self.shared.clusters.write().remove(id) {
            for h in cluster.started.lock().drain(..) {
                h.abort();
            }
            gc::unwatch_all_custom(&cluster);
        }
    }

    /// Waits until every informer of cluster `id` has listed once.
    pub async fn wait_synced(&self, id: &str) {
        let Some(cluster) = self.shared.cluster(id) else {
            return;
        };
        let caches: Vec<Arc<Cache>> = cluster
            .informers
            .lock()
            .values()
            .map(|i| i.cache())
            .collect();
        for c in caches {
            c.wait_synced().await;
        }
    }
}
