//! The disruption controller's core (`pkg/controller/disruption`): the status of each
//! PodDisruptionBudget, which the eviction API consults.
//!
//! [`reconcile`] takes a PDB, the pods of its namespace, the workloads of that namespace that
//! may control them (Deployments, ReplicaSets, StatefulSets, ReplicationControllers) and the
//! time, and returns the status to write, if it changed:
//! - `expectedPods`: with `maxUnavailable` or a percentage `minAvailable`, the sum of the
//!   `spec.replicas` of the selected pods' controllers (a ReplicaSet owned by a Deployment
//!   counts as its Deployment); with an integer `minAvailable`, the number of selected pods.
//! - `desiredHealthy`: `minAvailable`, or `expectedPods - maxUnavailable` (never below zero);
//!   percentages are of `expectedPods`, rounded up.
//! - `currentHealthy`: selected pods that are ready, not being deleted, and not recorded in
//!   `status.disruptedPods` (an eviction the API server granted but whose deletion is not yet
//!   seen; such records lapse after two minutes).
//! - `disruptionsAllowed`: `currentHealthy - desiredHealthy`, or zero when that is negative or
//!   no pods are expected; the `DisruptionAllowed` condition says `SufficientPods` or
//!   `InsufficientPods`.
//!
//! A PDB without a selector selects nothing; an empty selector selects every pod of the
//! namespace (policy/v1).

use std::time::{Duration, SystemTime};

use objects::selectors::LabelSelector;
use serde_json::{Map, Value, json};

use crate::event::Event;
use crate::meta;

/// How long a disrupted-pod record stands before the pod counts again (upstream's
/// `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// The writes one PDB sync asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The PDB's new `status`, when it changes.
    pub status: Option<Value>,
    /// Events about the PDB.
    pub events: Vec<Event>,
    /// Sync again after this long (when a disrupted-pod record lapses).
    pub requeue_after: Option<Duration>,
}

/// An integer or a percentage of `total`, rounded up (`GetScaledValueFromIntOrPercent`).
fn scaled(v: &Value, total: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let pct: i64 = s.strip_suffix('%')?.parse().ok()?;
            Some((pct * total + 99).div_euclid(100))
        }
        _ => None,
    }
}

/// The replicas a pod's controller asks for, and that controller's uid; `None` for an
/// unmanaged pod. A controller of another kind, or one missing from `workloads`, has as many
/// replicas as it has pods among `pods`.
fn controller_scale<'a>(
    pod: &'a Value,
    workloads: &'a [Value],
    pods: &[&Value],
) -> Option<(&'a str, i64)> {
    let r = meta::controller_ref(pod)?;
    let uid = r["uid"].as_str().unwrap_or_default();
    let find = |uid: &str| workloads.iter().find(|w| meta::uid(w) == uid);
    let kind = r["kind"].as_str().unwrap_or_default();
    if let Some(w) = find(uid).filter(|_| {
        matches!(
            kind,
            "ReplicaSet" | "Deployment" | "StatefulSet" | "ReplicationController"
        )
    }) {
        // A Deployment's ReplicaSets follow the Deployment's scale.
        if kind == "ReplicaSet"
            && let Some(dr) = meta::controller_ref(w).filter(|d| d["kind"] == "Deployment")
            && let Some(d) = find(dr["uid"].as_str().unwrap_or_default())
        {
            return Some((meta::uid(d), meta::int_at(d, "/spec/replicas", 1)));
        }
        return Some((meta::uid(w), meta::int_at(w, "/spec/replicas", 1)));
    }
    let count = pods
        .iter()
        .filter(|p| meta::controller_ref(p).and_then(|c| c["uid"].as_str()) == Some(uid))
        .count() as i64;
    Some((uid, count))
}

/// Syncs one PDB's status.
pub fn reconcile(pdb: &Value, pods: &[Value], workloads: &[Value], now: SystemTime) -> Plan {
    let mut plan = Plan::default();
    let now_s = meta::unix_seconds(now);
    let selector = pdb
        .pointer("/spec/selector")
        .filter(|s| !s.is_null())
        .map(LabelSelector::from_api);
    let ns = meta::namespace(pdb);
    let selected: Vec<&Value> = match selector {
        Some(Ok(sel)) => pods
            .iter()
            .filter(|p| meta::namespace(p) == ns && sel.matches_object(p))
            .collect(),
        _ => Vec::new(),
    };
    if selected.is_empty() {
        plan.events
            .push(Event::normal("NoPods", "No matching pods found"));
    }
    let min_available = pdb.pointer("/spec/minAvailable").filter(|v| !v.is_null());
    let max_unavailable = pdb.pointer("/spec/maxUnavailable").filter(|v| !v.is_null());
    let expected_scale = |plan: &mut Plan| {
        let mut seen: Vec<(&str, i64)> = Vec::new();
        let mut unmanaged = 0;
        for pod in &selected {
            match controller_scale(pod, workloads, &selected) {
                Some((uid, n)) if !seen.iter().any(|(u, _)| *u == uid) => seen.push((uid, n)),
                Some(_) => {}
                None => unmanaged += 1,
            }
        }
        if unmanaged > 0 {
            plan.events.push(Event::warning(
                "UnmanagedPods",
                "Pods selected by this PodDisruptionBudget were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.",
            ));
        }
        seen.iter().map(|(_, n)| n).sum::<i64>()
    };
    let (expected, desired) = if let Some(mu) = max_unavailable {
        let expected = expected_scale(&mut plan);
        let max = scaled(mu, expected).unwrap_or(0);
        (expected, (expected - max).max(0))
    } else if let Some(ma @ Value::String(_)) = min_available {
        let expected = expected_scale(&mut plan);
        (expected, scaled(ma, expected).unwrap_or(0))
    } else {
        let min = min_available.and_then(Value::as_i64).unwrap_or(0);
        (selected.len() as i64, min)
    };
    // Disrupted-pod records of pods still present, not yet deleting, and not lapsed.
    let mut disrupted = Map::new();
    let mut recheck: Option<i64> = None;
    if let Some(records) = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
    {
        for (name, at) in records {
            let Some(pod) = selected.iter().find(|p| meta::name(p) == name) else {
                continue;
            };
            if meta::is_deleting(pod) {
                continue;
            }
            let Some(t) = at.as_str().and_then(meta::parse_time) else {
                continue;
            };
            let expires = t + DELETION_TIMEOUT.as_secs() as i64;
            if expires <= now_s {
                continue;
            }
            recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
            disrupted.insert(name.clone(), at.clone());
        }
    }
    plan.requeue_after = recheck.map(|r| meta::seconds(r - now_s));
    let healthy = selected
        .iter()
        .filter(|p| {
            !meta::is_deleting(p) && !disrupted.contains_key(meta::name(p)) && meta::is_pod_ready(p)
        })
        .count() as i64;
    let allowed = if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    };
    let generation = meta::int_at(pdb, "/metadata/generation", 0);
    let old = pdb.get("status").cloned().unwrap_or_else(|| json!({}));
    let (cond_status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let old_cond = meta::condition(&old, "DisruptionAllowed");
    let transition = old_cond
        .filter(|c| c["status"] == cond_status)
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(meta::format_time(now_s)));
    let condition = json!({
        "type": "DisruptionAllowed",
        "status": cond_status,
        "reason": reason,
        "message": "",
        "observedGeneration": generation,
        "lastTransitionTime": transition,
    });
    let mut conditions: Vec<Value> = old
        .get("conditions")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter(|c| c["type"] != "DisruptionAllowed")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    conditions.push(condition);
    let mut status = json!({
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "disruptionsAllowed": allowed,
        "observedGeneration": generation,
        "conditions": conditions,
    });
    if !disrupted.is_empty() {
        status["disruptedPods"] = Value::Object(disrupted);
    }
    if !same_status(&old, &status) {
        plan.status = Some(status);
    }
    plan
}

/// Whether two statuses agree on every field the controller writes (the condition compared
/// without its message, which the API server may drop when empty).
fn same_status(old: &Value, new: &Value) -> bool {
    let fields = [
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
        "disruptionsAllowed",
        "observedGeneration",
    ];
    let int = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    let records = |v: &Value| {
        v.get("disruptedPods")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let cond = |v: &Value| {
        meta::condition(v, "DisruptionAllowed").map(|c| {
            (
                c["status"].clone(),
                c["reason"].clone(),
                int(c, "observedGeneration"),
            )
        })
    };
    fields.iter().all(|k| int(old, k) == int(new, k))
        && records(old) == records(new)
        && cond(old) == cond(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    fn pdb(spec: Value) -> Value {
        let mut spec = spec;
        spec["selector"] = json!({"matchLabels": {"app": "web"}});
        json!({"metadata": {"name": "web", "namespace": "default", "generation": 2}, "spec": spec})
    }

    fn pod(name: &str, ready: bool, owner: Option<(&str, &str)>) -> Value {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        });
        if let Some((kind, uid)) = owner {
            p["metadata"]["ownerReferences"] =
                json!([{"kind": kind, "name": "x", "uid": uid, "controller": true}]);
        }
        p
    }

    fn apply(pdb: &Value, plan: &Plan) -> Value {
        let mut out = pdb.clone();
        if let Some(s) = &plan.status {
            out["status"] = s.clone();
        }
        out
    }

    fn summary(plan: &Plan) -> (i64, i64, i64, i64, String) {
        let s = plan.status.as_ref().expect("a status");
        (
            s["currentHealthy"].as_i64().unwrap(),
            s["desiredHealthy"].as_i64().unwrap(),
            s["expectedPods"].as_i64().unwrap(),
            s["disruptionsAllowed"].as_i64().unwrap(),
            s["conditions"][0]["reason"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn integer_min_available_counts_selected_pods_and_the_second_sync_writes_nothing() {
        let b = pdb(json!({"minAvailable": 2}));
        let pods = vec![
            pod("a", true, None),
            pod("b", true, None),
            pod("c", true, None),
            pod("d", false, None),
        ];
        let plan = reconcile(&b, &pods, &[], at(1000));
        assert_eq!(summary(&plan), (3, 2, 4, 1, "SufficientPods".into()));
        let status = plan.status.clone().unwrap();
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(
            status["conditions"][0],
            json!({"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                   "message": "", "observedGeneration": 2,
                   "lastTransitionTime": "1970-01-01T00:16:40Z"})
        );
        let b = apply(&b, &plan);
        assert_eq!(reconcile(&b, &pods, &[], at(2000)).status, None);
    }

    #[test]
    fn max_unavailable_uses_the_deployment_scale_through_its_replica_set() {
        let workloads = vec![
            json!({"kind": "Deployment", "metadata": {"name": "d", "uid": "dep"}, "spec": {"replicas": 4}}),
            json!({"kind": "ReplicaSet", "metadata": {"name": "r", "uid": "rs", "ownerReferences": [
                {"kind": "Deployment", "name": "d", "uid": "dep", "controller": true}]},
                "spec": {"replicas": 4}}),
        ];
        let pods: Vec<Value> = (0..3)
            .map(|i| pod(&format!("p{i}"), true, Some(("ReplicaSet", "rs"))))
            .collect();
        let plan = reconcile(&pdb(json!({"maxUnavailable": 1})), &pods, &workloads, at(0));
        assert_eq!(summary(&plan), (3, 3, 4, 0, "InsufficientPods".into()));
        let plan = reconcile(
            &pdb(json!({"maxUnavailable": "50%"})),
            &pods,
            &workloads,
            at(0),
        );
        assert_eq!(summary(&plan), (3, 2, 4, 1, "SufficientPods".into()));
    }

    #[test]
    fn percentage_min_available_rounds_up_over_the_controllers_scale() {
        let workloads = vec![
            json!({"kind": "StatefulSet", "metadata": {"name": "s", "uid": "sts"},
                                    "spec": {"replicas": 3}}),
        ];
        let pods: Vec<Value> = (0..3)
            .map(|i| pod(&format!("p{i}"), true, Some(("StatefulSet", "sts"))))
            .collect();
        let plan = reconcile(
            &pdb(json!({"minAvailable": "50%"})),
            &pods,
            &workloads,
            at(0),
        );
        assert_eq!(summary(&plan), (3, 2, 3, 1, "SufficientPods".into()));
    }

    #[test]
    fn other_controllers_count_their_pods_and_unmanaged_pods_are_reported() {
        let pods = vec![
            pod("a", true, Some(("Job", "job"))),
            pod("b", true, Some(("Job", "job"))),
            pod("c", true, None),
        ];
        let plan = reconcile(&pdb(json!({"maxUnavailable": 1})), &pods, &[], at(0));
        assert_eq!(summary(&plan), (3, 1, 2, 2, "SufficientPods".into()));
        assert_eq!(plan.events[0].reason, "UnmanagedPods");
    }

    #[test]
    fn disrupted_pods_do_not_count_until_their_record_lapses() {
        let mut b = pdb(json!({"minAvailable": 1}));
        b["status"] =
            json!({"disruptedPods": {"a": "1970-01-01T00:00:00Z", "gone": "1970-01-01T00:00:00Z"}});
        let pods = vec![pod("a", true, None), pod("b", true, None)];
        let plan = reconcile(&b, &pods, &[], at(60));
        assert_eq!(summary(&plan), (1, 1, 2, 0, "InsufficientPods".into()));
        assert_eq!(
            plan.status.as_ref().unwrap()["disruptedPods"],
            json!({"a": "1970-01-01T00:00:00Z"})
        );
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(60)));
        let b = apply(&b, &plan);
        let later = reconcile(&b, &pods, &[], at(120));
        assert_eq!(summary(&later), (2, 1, 2, 1, "SufficientPods".into()));
        assert!(later.status.unwrap().get("disruptedPods").is_none());
    }

    #[test]
    fn no_pods_is_reported_and_allows_nothing() {
        let plan = reconcile(&pdb(json!({"minAvailable": 0})), &[], &[], at(0));
        assert_eq!(summary(&plan), (0, 0, 0, 0, "InsufficientPods".into()));
        assert_eq!(plan.events[0].reason, "NoPods");
    }
}
