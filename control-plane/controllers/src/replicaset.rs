//! The ReplicaSet controller's reconcile core (`pkg/controller/replicaset`): claim pods, create or
//! delete pods to reach `spec.replicas`, and compute `status`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use objects::selectors::LabelSelector;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::meta::{self, Claim};

/// Upstream's `BurstReplicas`: at most this many pods are created or deleted in one sync.
pub const BURST_REPLICAS: usize = 500;

/// The annotation users set to steer which pods a scale-down removes first (lower goes first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The writes one ReplicaSet sync asks for. Applying them in field order reproduces upstream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Orphan pods that match the selector, each with the ReplicaSet's controller reference
    /// added: write them back (upstream patches `metadata.ownerReferences`).
    pub adopt: Vec<Value>,
    /// Owned pods that no longer match the selector, with the reference removed.
    pub release: Vec<Value>,
    /// Pods to create, in order. Create them in [`slow_start_batches`]: stop at the first batch
    /// with a failure and skip the rest, as upstream does.
    pub create: Vec<Value>,
    /// Names of pods to delete, most expendable first.
    pub delete: Vec<String>,
    /// The new `status`, when it differs from the stored one.
    pub status: Option<Value>,
    /// Sync again after this long even if nothing changes (pods becoming available after
    /// `minReadySeconds`).
    pub requeue_after: Option<Duration>,
}

impl Plan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.adopt.is_empty()
            && self.release.is_empty()
            && self.create.is_empty()
            && self.delete.is_empty()
            && self.status.is_none()
    }
}

/// Upstream's `slowStartBatch` sizes for `count` creations: 1, 2, 4, ... capped by what is left.
pub fn slow_start_batches(count: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut left, mut size) = (count, 1usize);
    while left > 0 {
        let n = size.min(left);
        out.push(n);
        left -= n;
        size *= 2;
    }
    out
}

/// Reconciles one ReplicaSet against the pods of its namespace (`pods` may include pods owned
/// by others; they are left alone). The caller must not call this while creations or deletions
/// from an earlier plan are still unobserved (upstream's expectations).
///
/// `pods` may be owned values or shared ones (`Arc<Value>`), so a loop can pass its cache's
/// copies without cloning them.
pub fn reconcile<P: Borrow<Value>>(rs: &Value, pods: &[P], now: SystemTime) -> Result<Plan, Error> {
    let now = meta::unix_seconds(now);
    let selector = rs
        .pointer("/spec/selector")
        .ok_or(Error::MissingSelector)
        .and_then(|s| LabelSelector::from_api(s).map_err(Error::Selector))?;
    let mut plan = Plan::default();
    let mut owned = Vec::new();
    // An empty selector matches nothing for workload controllers.
    let selects = |p: &Value| !selector.is_empty() && selector.matches_object(p);
    for pod in pods
        .iter()
        .map(Borrow::borrow)
        .filter(|p| meta::namespace(p) == meta::namespace(rs))
    {
        match meta::claim(rs, pod, selects(pod)) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt => {
                plan.adopt
                    .push(meta::with_owner(pod, meta::owner_ref(rs, "ReplicaSet")));
                owned.push(pod);
            }
            Claim::Release => plan.release.push(meta::without_owner(pod, meta::uid(rs))),
            Claim::Ignore => {}
        }
    }
    let active: Vec<&Value> = owned
        .into_iter()
        .filter(|p| meta::is_pod_active(p))
        .collect();
    let want = meta::int_at(rs, "/spec/replicas", 1).max(0) as usize;
    if !meta::is_deleting(rs) {
        if active.len() < want {
            let n = (want - active.len()).min(BURST_REPLICAS);
            let pod = pod_from_template(rs);
            plan.create = vec![pod; n];
        } else if active.len() > want {
            let n = (active.len() - want).min(BURST_REPLICAS);
            plan.delete = pods_to_delete(&active, n, now);
        }
    }
    let status = calculate_status(rs, &active, now);
    let min_ready = meta::int_at(rs, "/spec/minReadySeconds", 0);
    if min_ready > 0 && status.ready == want as i64 && status.available != want as i64 {
        plan.requeue_after = Some(meta::seconds(min_ready));
    }
    let old = rs.get("status").cloned().unwrap_or(Value::Null);
    if Status::read(&old) != status {
        plan.status = Some(status.write(&old));
    }
    Ok(plan)
}

/// A pod as the ReplicaSet creates it (upstream's `GetPodFromTemplate`): the template's labels,
/// annotations, finalizers and spec, `generateName` `<rs>-`, and the controller reference.
pub fn pod_from_template(rs: &Value) -> Value {
    let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut metadata = Map::new();
    metadata.insert("generateName".into(), json!(format!("{}-", meta::name(rs))));
    metadata.insert("namespace".into(), json!(meta::namespace(rs)));
    for key in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{key}")) {
            metadata.insert(key.into(), v.clone());
        }
    }
    metadata.insert(
        "ownerReferences".into(),
        json!([meta::owner_ref(rs, "ReplicaSet")]),
    );
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    })
}

/// The counted part of a ReplicaSet status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    replicas: i64,
    fully_labeled: i64,
    ready: i64,
    available: i64,
    observed_generation: i64,
    /// Conditions other than `ReplicaFailure`, which only a failed write sets.
    has_failure: bool,
}

impl Status {
    fn read(status: &Value) -> Status {
        let n = |k: &str| status.get(k).and_then(Value::as_i64).unwrap_or(0);
        Status {
            replicas: n("replicas"),
            fully_labeled: n("fullyLabeledReplicas"),
            ready: n("readyReplicas"),
            available: n("availableReplicas"),
            observed_generation: n("observedGeneration"),
            has_failure: meta::condition(status, "ReplicaFailure").is_some(),
        }
    }

    /// Renders the status as upstream serialises it (zero counts other than `replicas`
    /// omitted), keeping fields this core does not own.
    fn write(&self, old: &Value) -> Value {
        let mut out = match old {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        out.insert("replicas".into(), json!(self.replicas));
        for (k, v) in [
            ("fullyLabeledReplicas", self.fully_labeled),
            ("readyReplicas", self.ready),
            ("availableReplicas", self.available),
            ("observedGeneration", self.observed_generation),
        ] {
            if v == 0 {
                out.remove(k);
            } else {
                out.insert(k.into(), json!(v));
            }
        }
        if !self.has_failure
            && let Some(Value::Array(c)) = out.get_mut("conditions")
        {
            c.retain(|c| c.get("type").and_then(Value::as_str) != Some("ReplicaFailure"));
            if c.is_empty() {
                out.remove("conditions");
            }
        }
        Value::Object(out)
    }
}

/// Upstream's `calculateStatus` for a sync whose writes succeed: a `ReplicaFailure` condition
/// left by an earlier failed write is removed.
fn calculate_status(rs: &Value, active: &[&Value], now: i64) -> Status {
    let template_labels = meta::string_map(rs, "/spec/template/metadata/labels");
    let min_ready = meta::int_at(rs, "/spec/minReadySeconds", 0);
    let mut s = Status {
        replicas: active.len() as i64,
        fully_labeled: 0,
        ready: 0,
        available: 0,
        observed_generation: meta::int_at(rs, "/metadata/generation", 0),
        has_failure: false,
    };
    for pod in active {
        let labels = meta::string_map(pod, "/metadata/labels");
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            s.fully_labeled += 1;
        }
        if meta::is_pod_ready(pod) {
            s.ready += 1;
            if meta::is_pod_available(pod, min_ready, now) {
                s.available += 1;
            }
        }
    }
    s
}

/// The `ReplicaFailure` condition upstream adds when creating (`FailedCreate`) or deleting
/// (`FailedDelete`) pods failed; the shell merges it into the planned status after a failed
/// write.
pub fn with_failure(status: &Value, reason: &str, message: &str, now: SystemTime) -> Value {
    let mut out = status.clone();
    if meta::condition(&out, "ReplicaFailure").is_some() {
        return out;
    }
    let cond = json!({
        "type": "ReplicaFailure",
        "status": "True",
        "lastTransitionTime": meta::format_time(meta::unix_seconds(now)),
        "reason": reason,
        "message": message,
    });
    if let Value::Object(o) = &mut out {
        match o.get_mut("conditions") {
            Some(Value::Array(c)) => c.push(cond),
            _ => {
                o.insert("conditions".into(), json!([cond]));
            }
        }
    }
    out
}

/// Upstream's `getPodsToDelete`: rank pods by how many of the set share their node, sort by
/// `ActivePodsWithRanks` and take the first `n`.
fn pods_to_delete(active: &[&Value], n: usize, now: i64) -> Vec<String> {
    let mut per_node: BTreeMap<&str, i64> = BTreeMap::new();
    for p in active {
        let node = meta::str_at(p, "/spec/nodeName");
        if !node.is_empty() {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&Value, i64)> = active
        .iter()
        .map(|p| {
            let node = meta::str_at(p, "/spec/nodeName");
            (*p, per_node.get(node).copied().unwrap_or(0))
        })
        .collect();
    if n < ranked.len() {
        ranked.sort_by(|a, b| deletion_order(a, b, now));
    }
    ranked
        .into_iter()
        .take(n)
        .map(|(p, _)| meta::name(p).to_owned())
        .collect()
}

/// `ActivePodsWithRanks.Less` with PodDeletionCost and LogarithmicScaleDown on (their 1.33
/// defaults): the pod that sorts first is deleted first.
fn deletion_order(a: &(&Value, i64), b: &(&Value, i64), now: i64) -> Ordering {
    let (pa, pb) = (a.0, b.0);
    // 1. Unassigned before assigned.
    let assigned = |p: &Value| !meta::str_at(p, "/spec/nodeName").is_empty();
    let ord = assigned(pa).cmp(&assigned(pb));
    if ord != Ordering::Equal {
        return ord;
    }
    // 2. Pending before Unknown before Running.
    let phase = |p: &Value| match meta::str_at(p, "/status/phase") {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    };
    let ord = phase(pa).cmp(&phase(pb));
    if ord != Ordering::Equal {
        return ord;
    }
    // 3. Not ready before ready.
    let ord = meta::is_pod_ready(pa).cmp(&meta::is_pod_ready(pb));
    if ord != Ordering::Equal {
        return ord;
    }
    // 4. Lower deletion cost first.
    let ord = deletion_cost(pa).cmp(&deletion_cost(pb));
    if ord != Ordering::Equal {
        return ord;
    }
    // 5. More pods of the set on the same node first.
    let ord = b.1.cmp(&a.1);
    if ord != Ordering::Equal {
        return ord;
    }
    // 6. Ready more recently first.
    if meta::is_pod_ready(pa) && meta::is_pod_ready(pb) {
        let (ta, tb) = (meta::pod_ready_since(pa), meta::pod_ready_since(pb));
        if ta != tb {
            return newer_first(pa, pb, ta, tb, now);
        }
    }
    // 7. More container restarts first.
    let ord = max_restarts(pb).cmp(&max_restarts(pa));
    if ord != Ordering::Equal {
        return ord;
    }
    // 8. Created more recently first.
    let created = |p: &Value| meta::parse_time(meta::str_at(p, "/metadata/creationTimestamp"));
    let (ca, cb) = (created(pa), created(pb));
    if ca != cb {
        return newer_first(pa, pb, ca, cb, now);
    }
    Ordering::Equal
}

/// Orders two distinct times newest first, a missing time before any: upstream compares the
/// base-2 logarithm of each age in nanoseconds and breaks ties in a bucket by UID.
fn newer_first(pa: &Value, pb: &Value, ta: Option<i64>, tb: Option<i64>, now: i64) -> Ordering {
    let (ta, tb) = match (ta, tb) {
        (Some(ta), Some(tb)) => (ta, tb),
        _ => return ta.is_some().cmp(&tb.is_some()),
    };
    let bucket = |t: i64| {
        let age = (now - t) as f64 * 1e9;
        if age > 0.0 { age.log2() as i64 } else { -1 }
    };
    match bucket(ta).cmp(&bucket(tb)) {
        Ordering::Equal => meta::uid(pa).cmp(meta::uid(pb)),
        ord => ord,
    }
}

fn deletion_cost(pod: &Value) -> i32 {
    meta::str_at(
        pod,
        &format!(
            "/metadata/annotations/{}",
            POD_DELETION_COST.replace('/', "~1")
        ),
    )
    .parse()
    .unwrap_or(0)
}

fn max_restarts(pod: &Value) -> i64 {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|k| {
            pod.pointer(&format!("/status/{k}"))
                .and_then(Value::as_array)
        })
        .flatten()
        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
        .max()
        .unwrap_or(0)
}
