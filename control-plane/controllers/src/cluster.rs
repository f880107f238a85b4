//! The Cluster lifecycle core: what one sync of a `berth.dev/v1` Cluster in the root cluster
//! must do so that its logical cluster, its kubeconfig Secret and its status follow the object.
//!
//! [`reconcile`] takes the Cluster, its kubeconfig Secret if it exists and the [`Facts`] only
//! the I/O shell can observe (whether the logical cluster exists, where it is served, the CA
//! that verifies the server, the version served, the time), and returns the ordered [`Step`]s
//! of a sync. While the Cluster lives: hold the finalizer [`FINALIZER`], provision the logical
//! cluster, write the kubeconfig Secret (Cluster API's convention: `<name>-kubeconfig`, type
//! `cluster.x-k8s.io/secret`, the kubeconfig under `value`, labelled with the cluster's name,
//! controlled by the Cluster) and report `Provisioning`, then `Ready`. Once it is being deleted:
//! report `Deleting`, tear the logical cluster down, delete the Secret, release the finalizer.
//!
//! What this core is not: it never provisions anything itself. Provisioning yields the
//! kubeconfig only the shell can mint, so [`Step::WriteSecret`] carries the Secret without it
//! and the shell completes it with [`with_kubeconfig`].

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::meta;

/// The finalizer that holds a Cluster until its logical cluster is torn down.
pub const FINALIZER: &str = "berth.dev/cluster-teardown";
/// The label Cluster API puts on a cluster's Secrets: the Cluster's name.
pub const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";
/// The type of Cluster API's cluster Secrets.
pub const SECRET_TYPE: &str = "cluster.x-k8s.io/secret";
/// The key of the kubeconfig in its Secret.
pub const KUBECONFIG_KEY: &str = "value";

/// Reasons of the `Ready` condition and of the Events the shell records.
pub mod reason {
    /// The logical cluster is being made.
    pub const PROVISIONING: &str = "Provisioning";
    /// The logical cluster exists and its kubeconfig Secret is written.
    pub const PROVISIONED: &str = "Provisioned";
    /// Making the logical cluster failed; it is retried.
    pub const PROVISIONING_FAILED: &str = "ProvisioningFailed";
    /// The Cluster is being deleted.
    pub const DELETING: &str = "Deleting";
    /// The logical cluster was deleted.
    pub const TORN_DOWN: &str = "TornDown";
    /// Deleting the logical cluster failed; it is retried.
    pub const TEARDOWN_FAILED: &str = "TeardownFailed";
}

/// What only the shell can observe.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// Whether the logical cluster exists.
    pub exists: bool,
    /// The URL its API is served at.
    pub endpoint: &'a str,
    /// The CA (PEM) that verifies the server's certificate.
    pub server_ca_pem: &'a str,
    /// The Kubernetes version the API serves, e.g. `v1.33.0`.
    pub kubernetes_version: &'a str,
    /// The time, for condition transitions.
    pub now: SystemTime,
}

/// One action of a sync, in the order the shell must take them; a failed step ends the sync
/// (it is retried).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Set `metadata.finalizers` to this list (the Cluster's resourceVersion is the
    /// precondition).
    SetFinalizers(Vec<String>),
    /// Replace `status` with this one.
    Status(Value),
    /// Make the logical cluster exist (idempotent) and keep the admin kubeconfig it yields.
    Provision,
    /// Create this Secret, or replace the existing one when it carries a resourceVersion, with
    /// the provisioned kubeconfig added by [`with_kubeconfig`].
    WriteSecret(Value),
    /// Delete the logical cluster and everything in it (idempotent).
    Teardown,
    /// Delete the kubeconfig Secret (this uid).
    DeleteSecret {
        /// The Secret's uid, the delete's precondition.
        uid: String,
    },
}

/// The logical cluster id of `cluster`: `<namespace>:<name>`.
pub fn cluster_id(cluster: &Value) -> String {
    format!("{}:{}", meta::namespace(cluster), meta::name(cluster))
}

/// The name of `cluster`'s kubeconfig Secret.
pub fn secret_name(cluster: &Value) -> String {
    format!("{}-kubeconfig", meta::name(cluster))
}

fn finalizers(cluster: &Value) -> Vec<String> {
    cluster
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The steps of one sync of `cluster`, given its kubeconfig Secret (if it exists) and the
/// facts. Empty when everything already matches.
pub fn reconcile(cluster: &Value, secret: Option<&Value>, facts: &Facts<'_>) -> Vec<Step> {
    let mut steps = Vec::new();
    let held = finalizers(cluster);
    let holds = held.iter().any(|f| f == FINALIZER);
    // A Secret by that name that the Cluster does not control is not ours to touch.
    let secret = secret.filter(|s| {
        meta::controller_ref(s).and_then(|r| r.get("uid")) == cluster.pointer("/metadata/uid")
    });
    if meta::is_deleting(cluster) {
        if !holds {
            return steps;
        }
        push_status(
            &mut steps,
            cluster,
            facts,
            "Deleting",
            "False",
            reason::DELETING,
            "The cluster is being torn down.",
        );
        if facts.exists {
            steps.push(Step::Teardown);
        }
        if let Some(s) = secret {
            steps.push(Step::DeleteSecret {
                uid: meta::uid(s).to_owned(),
            });
        }
        let rest = held.into_iter().filter(|f| f != FINALIZER).collect();
        steps.push(Step::SetFinalizers(rest));
        return steps;
    }
    if !holds {
        let mut with = held;
        with.push(FINALIZER.to_owned());
        steps.push(Step::SetFinalizers(with));
    }
    if !facts.exists || secret.is_none_or(|s| !secret_matches(cluster, s)) {
        // A cluster already Provisioning keeps its condition (a failed attempt's message
        // stays until the next attempt succeeds).
        if meta::str_at(cluster, "/status/phase") != "Provisioning" {
            push_status(
                &mut steps,
                cluster,
                facts,
                "Provisioning",
                "False",
                reason::PROVISIONING,
                "The logical cluster is being created.",
            );
        }
        steps.push(Step::Provision);
        steps.push(Step::WriteSecret(kubeconfig_secret(cluster, secret)));
    }
    let message = format!("The cluster's API is served at {}.", facts.endpoint);
    let mut ready = Vec::new();
    push_status(
        &mut ready,
        cluster,
        facts,
        "Ready",
        "True",
        reason::PROVISIONED,
        &message,
    );
    // After provisioning the stored status is still the old one: always write it then.
    let provisioned = steps.contains(&Step::Provision);
    if provisioned && ready.is_empty() {
        steps.push(Step::Status(status(
            cluster,
            facts,
            "Ready",
            "True",
            reason::PROVISIONED,
            &message,
        )));
    } else {
        steps.extend(ready);
    }
    steps
}

/// The status that reports a failed provisioning attempt (it is retried), `None` when the
/// Cluster already says so.
pub fn provisioning_failed(cluster: &Value, facts: &Facts<'_>, error: &str) -> Option<Value> {
    let mut steps = Vec::new();
    push_status(
        &mut steps,
        cluster,
        facts,
        "Provisioning",
        "False",
        reason::PROVISIONING_FAILED,
        &format!("Creating the logical cluster failed: {error}"),
    );
    match steps.pop() {
        Some(Step::Status(s)) => Some(s),
        _ => None,
    }
}

/// Whether the stored Secret is what the core writes, apart from the kubeconfig itself.
fn secret_matches(cluster: &Value, secret: &Value) -> bool {
    let want = kubeconfig_secret(cluster, Some(secret));
    secret.get("type") == want.get("type")
        && secret.pointer("/metadata/labels/cluster.x-k8s.io~1cluster-name")
            == want.pointer("/metadata/labels/cluster.x-k8s.io~1cluster-name")
        && secret
            .pointer("/data/value")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
}

/// The kubeconfig Secret of `cluster`, without its kubeconfig; based on `existing` (keeping its
/// other metadata and its resourceVersion) when there is one.
fn kubeconfig_secret(cluster: &Value, existing: Option<&Value>) -> Value {
    let mut secret = existing.cloned().unwrap_or_else(|| {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": secret_name(cluster),
                "namespace": meta::namespace(cluster),
            },
        })
    });
    secret["type"] = json!(SECRET_TYPE);
    let metadata = meta::object_at(&mut secret, "metadata");
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    labels[CLUSTER_NAME_LABEL] = json!(meta::name(cluster));
    if existing.is_none() {
        metadata.insert(
            "ownerReferences".into(),
            json!([{
                "apiVersion": "berth.dev/v1",
                "kind": "Cluster",
                "name": meta::name(cluster),
                "uid": meta::uid(cluster),
                "controller": true,
                "blockOwnerDeletion": true,
            }]),
        );
    }
    if let Some(data) = secret.get_mut("data").and_then(Value::as_object_mut) {
        data.remove(KUBECONFIG_KEY);
    }
    secret
}

/// `secret` (from [`Step::WriteSecret`]) holding `kubeconfig`, base64-encoded as Secret data is.
pub fn with_kubeconfig(secret: &Value, kubeconfig: &str) -> Value {
    use base64::Engine as _;
    let mut secret = secret.clone();
    let data = meta::object_at(&mut secret, "data");
    data.insert(
        KUBECONFIG_KEY.into(),
        json!(base64::engine::general_purpose::STANDARD.encode(kubeconfig)),
    );
    secret
}

/// The status `cluster` should have in `phase` with a `Ready` condition of `ready`, keeping the
/// condition's transition time when its status does not change.
fn status(
    cluster: &Value,
    facts: &Facts<'_>,
    phase: &str,
    ready: &str,
    reason: &str,
    message: &str,
) -> Value {
    use base64::Engine as _;
    let old = cluster
        .pointer("/status/conditions")
        .and_then(Value::as_array);
    let old_ready = old.and_then(|c| {
        c.iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
    });
    let transition = match old_ready {
        Some(c) if c.get("status").and_then(Value::as_str) == Some(ready) => c
            .get("lastTransitionTime")
            .cloned()
            .unwrap_or_else(|| json!(meta::format_time(meta::unix_seconds(facts.now)))),
        _ => json!(meta::format_time(meta::unix_seconds(facts.now))),
    };
    let generation = cluster
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut condition = json!({
        "type": "Ready",
        "status": ready,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    });
    if generation > 0 {
        condition["observedGeneration"] = json!(generation);
    }
    // Other controllers' conditions stay as they are.
    let mut conditions: Vec<Value> = old
        .map(|c| {
            c.iter()
                .filter(|c| c.get("type").and_then(Value::as_str) != Some("Ready"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    conditions.insert(0, condition);
    let mut status = json!({
        "phase": phase,
        "clusterID": cluster_id(cluster),
        "endpoint": facts.endpoint,
        "certificateAuthorityData":
            base64::engine::general_purpose::STANDARD.encode(facts.server_ca_pem),
        "kubernetesVersion": facts.kubernetes_version,
        "conditions": conditions,
    });
    if generation > 0 {
        status["observedGeneration"] = json!(generation);
    }
    status
}

/// Pushes a [`Step::Status`] unless `cluster` already has that status (times aside).
fn push_status(
    steps: &mut Vec<Step>,
    cluster: &Value,
    facts: &Facts<'_>,
    phase: &str,
    ready: &str,
    reason: &str,
    message: &str,
) {
    let want = status(cluster, facts, phase, ready, reason, message);
    if cluster.get("status") != Some(&want) {
        steps.push(Step::Status(want));
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const ENDPOINT: &str = "https://127.0.0.1:6443/clusters/acme:prod";

    fn facts(exists: bool) -> Facts<'static> {
        Facts {
            exists,
            endpoint: ENDPOINT,
            server_ca_pem: CA,
            kubernetes_version: "v1.33.0",
            now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    fn cluster() -> Value {
        json!({
            "apiVersion": "berth.dev/v1",
            "kind": "Cluster",
            "metadata": {
                "name": "prod", "namespace": "acme", "uid": "u-1", "generation": 1,
                "resourceVersion": "5",
            },
            "spec": {"cloud": "local"},
        })
    }

    /// Applies `steps` as the shell and the API server would; returns the new Cluster (None
    /// once deleted), Secret and existence.
    fn apply(
        cluster: &Value,
        secret: Option<&Value>,
        exists: bool,
        steps: &[Step],
    ) -> (Option<Value>, Option<Value>, bool) {
        let (mut cluster, mut secret, mut exists) = (cluster.clone(), secret.cloned(), exists);
        let mut provisioned = None;
        for step in steps {
            match step {
                Step::SetFinalizers(f) => cluster["metadata"]["finalizers"] = json!(f),
                Step::Status(s) => cluster["status"] = s.clone(),
                Step::Provision => {
                    exists = true;
                    provisioned = Some("apiVersion: v1\nkind: Config\n");
                }
                Step::WriteSecret(s) => {
                    let mut s = with_kubeconfig(s, provisioned.expect("provisioned first"));
                    s["metadata"]["uid"] = json!("s-1");
                    secret = Some(s);
                }
                Step::Teardown => exists = false,
                Step::DeleteSecret { uid } => {
                    assert_eq!(uid, "s-1");
                    secret = None;
                }
            }
        }
        let gone = meta::is_deleting(&cluster) && finalizers(&cluster).is_empty();
        ((!gone).then_some(cluster), secret, exists)
    }

    fn condition(cluster: &Value) -> (&str, &str, &str) {
        let c = &cluster["status"]["conditions"][0];
        (
            c["type"].as_str().unwrap(),
            c["status"].as_str().unwrap(),
            c["reason"].as_str().unwrap(),
        )
    }

    #[test]
    fn a_new_cluster_is_held_provisioned_given_a_secret_and_ready() {
        let c = cluster();
        let steps = reconcile(&c, None, &facts(false));
        let kinds: Vec<&str> = steps
            .iter()
            .map(|s| match s {
                Step::SetFinalizers(_) => "finalizers",
                Step::Status(s) if s["phase"] == "Provisioning" => "provisioning",
                Step::Status(s) if s["phase"] == "Ready" => "ready",
                Step::Provision => "provision",
                Step::WriteSecret(_) => "secret",
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            ["finalizers", "provisioning", "provision", "secret", "ready"]
        );
        assert_eq!(
            steps[0],
            Step::SetFinalizers(vec!["berth.dev/cluster-teardown".into()])
        );
        let (c, secret, exists) = apply(&c, None, false, &steps);
        let (c, secret) = (c.unwrap(), secret.unwrap());
        assert!(exists);
        let status = &c["status"];
        assert_eq!(status["phase"], "Ready");
        assert_eq!(status["clusterID"], "acme:prod");
        assert_eq!(status["endpoint"], ENDPOINT);
        assert_eq!(status["kubernetesVersion"], "v1.33.0");
        assert_eq!(status["observedGeneration"], 1);
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD
            .decode(status["certificateAuthorityData"].as_str().unwrap())
            .unwrap();
        assert_eq!(ca, CA.as_bytes());
        assert_eq!(condition(&c), ("Ready", "True", "Provisioned"));
        assert_eq!(
            status["conditions"][0]["message"],
            format!("The cluster's API is served at {ENDPOINT}.")
        );
        assert_eq!(
            status["conditions"][0]["lastTransitionTime"],
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(secret["metadata"]["name"], "prod-kubeconfig");
        assert_eq!(secret["metadata"]["namespace"], "acme");
        assert_eq!(secret["type"], "cluster.x-k8s.io/secret");
        assert_eq!(
            secret["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
            "prod"
        );
        let owner = &secret["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "Cluster");
        assert_eq!(owner["apiVersion"], "berth.dev/v1");
        assert_eq!(owner["uid"], "u-1");
        assert_eq!(owner["controller"], true);
        let kubeconfig = base64::engine::general_purpose::STANDARD
            .decode(secret["data"]["value"].as_str().unwrap())
            .unwrap();
        assert_eq!(kubeconfig, b"apiVersion: v1\nkind: Config\n");
        // The second sync writes nothing.
        assert_eq!(reconcile(&c, Some(&secret), &facts(true)), []);
    }

    #[test]
    fn syncs_repair_what_is_missing() {
        let c = cluster();
        let (ready, secret, _) = apply(&c, None, false, &reconcile(&c, None, &facts(false)));
        let (ready, secret) = (ready.unwrap(), secret.unwrap());
        let mut no_data = secret.clone();
        no_data["data"] = json!({});
        let mut unlabelled = secret.clone();
        unlabelled["metadata"]["labels"] = json!({});
        let mut foreign = secret.clone();
        foreign["metadata"]["ownerReferences"] = json!([]);
        let mut newer = ready.clone();
        newer["metadata"]["generation"] = json!(2);
        // (what changed, the Cluster, its Secret, whether the logical cluster exists, the steps).
        type Case<'a> = (&'a str, Value, Option<Value>, bool, Vec<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            (
                "logical cluster gone",
                ready.clone(),
                Some(secret.clone()),
                false,
                vec!["status:Provisioning", "provision", "secret", "status:Ready"],
            ),
            (
                "secret deleted",
                ready.clone(),
                None,
                true,
                vec!["status:Provisioning", "provision", "secret", "status:Ready"],
            ),
            (
                "secret emptied",
                ready.clone(),
                Some(no_data),
                true,
                vec!["status:Provisioning", "provision", "secret", "status:Ready"],
            ),
            (
                "label removed",
                ready.clone(),
                Some(unlabelled),
                true,
                vec!["status:Provisioning", "provision", "secret", "status:Ready"],
            ),
            (
                "secret not controlled by the cluster",
                ready.clone(),
                Some(foreign),
                true,
                vec!["status:Provisioning", "provision", "secret", "status:Ready"],
            ),
            (
                "spec changed",
                newer,
                Some(secret.clone()),
                true,
                vec!["status:Ready"],
            ),
        ];
        for (what, c, s, exists, want) in cases {
            let steps = reconcile(&c, s.as_ref(), &facts(exists));
            let names: Vec<String> = steps
                .iter()
                .map(|s| match s {
                    Step::SetFinalizers(_) => "finalizers".into(),
                    Step::Status(s) => format!("status:{}", s["phase"].as_str().unwrap()),
                    Step::Provision => "provision".into(),
                    Step::WriteSecret(_) => "secret".into(),
                    Step::Teardown => "teardown".into(),
                    Step::DeleteSecret { .. } => "delete-secret".into(),
                })
                .collect();
            assert_eq!(names, want, "{what}");
            let (c2, s2, e2) = apply(&c, s.as_ref(), exists, &steps);
            let c2 = c2.unwrap();
            assert_eq!(reconcile(&c2, s2.as_ref(), &facts(e2)), [], "{what}");
            if what == "secret not controlled by the cluster" {
                // A create, which the API server refuses while the foreign Secret exists.
                let Some(Step::WriteSecret(w)) = steps.get(2) else {
                    panic!("{steps:?}")
                };
                assert!(w["metadata"].get("resourceVersion").is_none());
            }
        }
    }

    #[test]
    fn the_ready_transition_time_is_kept_while_ready() {
        let c = cluster();
        let (ready, secret, _) = apply(&c, None, false, &reconcile(&c, None, &facts(false)));
        let (mut ready, secret) = (ready.unwrap(), secret.unwrap());
        ready["metadata"]["generation"] = json!(3);
        let later = Facts {
            now: facts(true).now + Duration::from_secs(600),
            ..facts(true)
        };
        let steps = reconcile(&ready, Some(&secret), &later);
        let [Step::Status(s)] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        assert_eq!(s["observedGeneration"], 3);
        assert_eq!(
            s["conditions"][0]["lastTransitionTime"],
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn deletion_reports_tears_down_deletes_the_secret_and_releases() {
        let c = cluster();
        let (ready, secret, _) = apply(&c, None, false, &reconcile(&c, None, &facts(false)));
        let (mut deleting, secret) = (ready.unwrap(), secret.unwrap());
        deleting["metadata"]["deletionTimestamp"] = json!("2023-11-14T23:00:00Z");
        deleting["metadata"]["finalizers"] = json!(["other", FINALIZER]);
        let steps = reconcile(&deleting, Some(&secret), &facts(true));
        assert_eq!(steps.len(), 4, "{steps:?}");
        let Step::Status(s) = &steps[0] else {
            panic!("{steps:?}")
        };
        assert_eq!(s["phase"], "Deleting");
        assert_eq!(
            s["conditions"][0]["reason"], "Deleting",
            "{}",
            s["conditions"]
        );
        assert_eq!(s["conditions"][0]["status"], "False");
        assert_eq!(steps[1], Step::Teardown);
        assert_eq!(steps[2], Step::DeleteSecret { uid: "s-1".into() });
        assert_eq!(steps[3], Step::SetFinalizers(vec!["other".into()]));
        let (after, s2, exists) = apply(&deleting, Some(&secret), true, &steps);
        assert!(!exists && s2.is_none());
        // Another finalizer still holds it: nothing more is ours to do.
        assert_eq!(reconcile(&after.unwrap(), None, &facts(false)), []);

        // A sync cut short after the teardown resumes where it stopped.
        let mut partial = deleting.clone();
        partial["status"] = s.clone();
        assert_eq!(
            reconcile(&partial, None, &facts(false)),
            [Step::SetFinalizers(vec!["other".into()])]
        );
    }

    #[test]
    fn a_cluster_deleted_without_the_finalizer_is_left_alone() {
        let mut c = cluster();
        c["metadata"]["deletionTimestamp"] = json!("2023-11-14T23:00:00Z");
        c["metadata"]["finalizers"] = json!(["other"]);
        assert_eq!(reconcile(&c, None, &facts(true)), []);
    }

    #[test]
    fn a_failed_attempt_is_reported_once() {
        let c = cluster();
        let s = provisioning_failed(&c, &facts(false), "the store is unavailable").unwrap();
        assert_eq!(s["phase"], "Provisioning");
        assert_eq!(s["conditions"][0]["reason"], "ProvisioningFailed");
        assert_eq!(
            s["conditions"][0]["message"],
            "Creating the logical cluster failed: the store is unavailable"
        );
        let mut failed = c.clone();
        failed["status"] = s;
        assert_eq!(
            provisioning_failed(&failed, &facts(false), "the store is unavailable"),
            None
        );
    }
}
