//! The node lifecycle controller's core (`pkg/controller/nodelifecycle`) and the taint-based
//! eviction it drives (`pkg/controller/tainteviction`).
//!
//! [`reconcile_node`] turns a node's heartbeats (its Lease in `kube-node-lease` and its Ready
//! condition's `lastHeartbeatTime`) into its conditions and taints: a node silent for longer
//! than the grace period has every condition set to `Unknown` ("Kubelet stopped posting node
//! status."), and a node whose Ready condition is Unknown or False carries the
//! `node.kubernetes.io/unreachable` or `not-ready` taints, NoSchedule and NoExecute, which go
//! again when it is Ready. [`evictions`] decides, for the pods on a node with NoExecute taints,
//! which must go now (a taint they do not tolerate) and when the others must (the shortest
//! `tolerationSeconds` among the tolerations that match, counted from the taint's `timeAdded`).

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::meta;

/// The taint of nodes whose Ready condition is Unknown.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of nodes whose Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint of cordoned nodes.
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// Upstream's `--node-monitor-grace-period` default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(50);

/// The writes one node sync asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The node's new `status.conditions`, when they change.
    pub conditions: Option<Value>,
    /// The node's new `spec.taints`, when they change.
    pub taints: Option<Value>,
    /// Look again after this long (when the grace period of the last heartbeat runs out).
    pub requeue_after: Option<Duration>,
}

impl Plan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_none() && self.taints.is_none()
    }
}

/// The last sign of life: the later of the Lease's `renewTime` and the Ready condition's
/// `lastHeartbeatTime`, in Unix seconds.
fn last_heartbeat(node: &Value, lease: Option<&Value>) -> Option<i64> {
    let from_lease = lease
        .map(|l| meta::str_at(l, "/spec/renewTime"))
        .and_then(meta::parse_time);
    let from_status = node
        .get("status")
        .and_then(|s| meta::condition(s, "Ready"))
        .map(|c| meta::str_at(c, "/lastHeartbeatTime"))
        .and_then(meta::parse_time);
    from_lease.max(from_status)
}

/// Syncs one node's health: conditions from its heartbeats, taints from its conditions.
pub fn reconcile_node(
    node: &Value,
    lease: Option<&Value>,
    grace: Duration,
    now: SystemTime,
) -> Plan {
    let now = meta::unix_seconds(now);
    let grace = grace.as_secs() as i64;
    let mut plan = Plan::default();
    let status = node.get("status").cloned().unwrap_or(json!({}));
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // A node that never reported counts from its creation (upstream's startup grace).
    let last = last_heartbeat(node, lease)
        .or_else(|| meta::parse_time(meta::str_at(node, "/metadata/creationTimestamp")))
        .unwrap_or(now);
    if now - last > grace {
        let stamp = meta::format_time(now);
        let mut changed = false;
        if !conditions
            .iter()
            .any(|c| meta::str_at(c, "/type") == "Ready")
        {
            conditions.push(json!({"type": "Ready"}));
        }
        for c in &mut conditions {
            if meta::str_at(c, "/status") == "Unknown" {
                continue;
            }
            let heartbeat = c.get("lastHeartbeatTime").cloned();
            *c = json!({
                "type": c["type"],
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": stamp,
            });
            changed = true;
        }
        if changed {
            plan.conditions = Some(Value::Array(conditions.clone()));
        }
    } else {
        plan.requeue_after = Some(meta::seconds(last + grace - now + 1));
    }

    let ready = conditions
        .iter()
        .find(|c| meta::str_at(c, "/type") == "Ready")
        .map(|c| meta::str_at(c, "/status").to_string())
        .unwrap_or_default();
    let unschedulable = node
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut wanted: Vec<(&str, &str)> = match ready.as_str() {
        "Unknown" => vec![(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")],
        "False" => vec![(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")],
        _ => vec![],
    };
    if unschedulable {
        wanted.push((UNSCHEDULABLE, "NoSchedule"));
    }
    let ours =
        |t: &Value| [UNREACHABLE, NOT_READY, UNSCHEDULABLE].contains(&meta::str_at(t, "/key"));
    let current: Vec<Value> = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut taints: Vec<Value> = current
        .iter()
        .filter(|t| {
            !ours(t)
                || wanted
                    .iter()
                    .any(|(k, e)| meta::str_at(t, "/key") == *k && meta::str_at(t, "/effect") == *e)
        })
        .cloned()
        .collect();
    for (key, effect) in wanted {
        let present = taints
            .iter()
            .any(|t| meta::str_at(t, "/key") == key && meta::str_at(t, "/effect") == effect);
        if !present {
            let mut t = json!({"key": key, "effect": effect});
            if effect == "NoExecute" {
                t["timeAdded"] = json!(meta::format_time(now));
            }
            taints.push(t);
        }
    }
    if taints != current {
        plan.taints = Some(Value::Array(taints));
    }
    plan
}

/// Whether `toleration` tolerates `taint` (upstream's `ToleratesTaint`).
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = meta::str_at(toleration, "/effect");
    if !effect.is_empty() && effect != meta::str_at(taint, "/effect") {
        return false;
    }
    let key = meta::str_at(toleration, "/key");
    if !key.is_empty() && key != meta::str_at(taint, "/key") {
        return false;
    }
    match meta::str_at(toleration, "/operator") {
        "Exists" => true,
        "" | "Equal" => meta::str_at(toleration, "/value") == meta::str_at(taint, "/value"),
        _ => false,
    }
}

/// What taint-based eviction asks for on one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evictions {
    /// `(namespace, name)` of the pods to delete now.
    pub delete: Vec<(String, String)>,
    /// When the next tolerating pod's time runs out.
    pub requeue_after: Option<Duration>,
}

/// Decides which of `pods` (those bound to `node`) NoExecute taints evict.
pub fn evictions(node: &Value, pods: &[Value], now: SystemTime) -> Evictions {
    let now = meta::unix_seconds(now);
    let taints: Vec<&Value> = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| meta::str_at(t, "/effect") == "NoExecute")
        .collect();
    let mut out = Evictions::default();
    if taints.is_empty() {
        return out;
    }
    for pod in pods {
        if meta::is_deleting(pod)
            || matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed")
        {
            continue;
        }
        let tolerations: Vec<&Value> = pod
            .pointer("/spec/tolerations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        // The time this pod may stay: the earliest deadline over all taints; None = forever.
        let mut deadline: Option<i64> = None;
        let mut now_out = false;
        for taint in &taints {
            let matching: Vec<&&Value> =
                tolerations.iter().filter(|t| tolerates(t, taint)).collect();
            if matching.is_empty() {
                now_out = true;
                break;
            }
            let seconds = matching
                .iter()
                .filter_map(|t| t.get("tolerationSeconds").and_then(Value::as_i64))
                .min();
            if let Some(s) = seconds {
                let added = meta::parse_time(meta::str_at(taint, "/timeAdded")).unwrap_or(now);
                let d = added + s.max(0);
                deadline = Some(deadline.map_or(d, |x: i64| x.min(d)));
            }
        }
        let key = (
            meta::namespace(pod).to_string(),
            meta::name(pod).to_string(),
        );
        match deadline {
            _ if now_out => out.delete.push(key),
            Some(d) if d <= now => out.delete.push(key),
            Some(d) => {
                let wait = meta::seconds(d - now);
                out.requeue_after = Some(out.requeue_after.map_or(wait, |w| w.min(wait)));
            }
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn stamp(s: u64) -> String {
        meta::format_time(1_800_000_000 + s as i64)
    }

    fn node(heartbeat: u64) -> Value {
        json!({
            "metadata": {"name": "n1", "creationTimestamp": stamp(0)},
            "spec": {},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": stamp(heartbeat)},
                {"type": "Ready", "status": "True", "lastHeartbeatTime": stamp(heartbeat)},
            ]},
        })
    }

    fn lease(renew: u64) -> Value {
        json!({"spec": {"renewTime": stamp(renew)}})
    }

    fn apply(node: &Value, plan: &Plan) -> Value {
        let mut n = node.clone();
        if let Some(c) = &plan.conditions {
            n["status"]["conditions"] = c.clone();
        }
        if let Some(t) = &plan.taints {
            n["spec"]["taints"] = t.clone();
        }
        n
    }

    #[test]
    fn a_fresh_lease_keeps_the_node_healthy_and_says_when_to_look_again() {
        let plan = reconcile_node(&node(0), Some(&lease(100)), DEFAULT_GRACE, at(120));
        assert!(plan.is_empty());
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(31)));
    }

    #[test]
    fn a_silent_node_goes_unknown_and_is_tainted_then_settles() {
        let n = node(0);
        let plan = reconcile_node(&n, Some(&lease(10)), DEFAULT_GRACE, at(61));
        let conditions = plan.conditions.clone().unwrap();
        for c in conditions.as_array().unwrap() {
            assert_eq!(c["status"], "Unknown");
            assert_eq!(c["reason"], "NodeStatusUnknown");
            assert_eq!(c["message"], "Kubelet stopped posting node status.");
        }
        let taints = plan.taints.clone().unwrap();
        assert_eq!(
            taints,
            json!([
                {"key": UNREACHABLE, "effect": "NoSchedule"},
                {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": stamp(61)},
            ])
        );
        let settled = apply(&n, &plan);
        assert!(reconcile_node(&settled, Some(&lease(10)), DEFAULT_GRACE, at(70)).is_empty());
        // The kubelet comes back: Ready True again (it writes that), the taints go.
        let mut back = settled.clone();
        back["status"]["conditions"] = node(80)["status"]["conditions"].clone();
        let plan = reconcile_node(&back, Some(&lease(80)), DEFAULT_GRACE, at(81));
        assert_eq!(plan.taints, Some(json!([])));
        assert!(plan.conditions.is_none());
    }

    #[test]
    fn not_ready_and_cordoned_nodes_get_their_taints_and_others_are_kept() {
        let mut n = node(100);
        n["status"]["conditions"][1]["status"] = json!("False");
        n["spec"]["unschedulable"] = json!(true);
        n["spec"]["taints"] = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
        let plan = reconcile_node(&n, None, DEFAULT_GRACE, at(110));
        let keys: Vec<String> = plan
            .taints
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| format!("{}:{}", meta::str_at(t, "/key"), meta::str_at(t, "/effect")))
            .collect();
        assert_eq!(
            keys,
            [
                "dedicated:NoSchedule",
                "node.kubernetes.io/not-ready:NoSchedule",
                "node.kubernetes.io/not-ready:NoExecute",
                "node.kubernetes.io/unschedulable:NoSchedule",
            ]
        );
    }

    fn pod(name: &str, tolerations: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"nodeName": "n1", "tolerations": tolerations}, "status": {"phase": "Running"}})
    }

    #[test]
    fn untolerated_pods_go_now_and_tolerating_pods_when_their_seconds_run_out() {
        let mut n = node(0);
        n["spec"]["taints"] =
            json!([{"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": stamp(100)}]);
        let pods = vec![
            pod("plain", json!([])),
            pod(
                "five-min",
                json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]),
            ),
            pod("forever", json!([{"operator": "Exists"}])),
            pod(
                "wrong-key",
                json!([{"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]),
            ),
        ];
        let e = evictions(&n, &pods, at(110));
        assert_eq!(
            e.delete,
            vec![
                ("ns".into(), "plain".into()),
                ("ns".into(), "wrong-key".into())
            ]
        );
        assert_eq!(e.requeue_after, Some(Duration::from_secs(290)));
        let later = evictions(&n, &pods[1..3], at(400));
        assert_eq!(later.delete, vec![("ns".into(), "five-min".into())]);
        assert_eq!(later.requeue_after, None);
    }

    #[test]
    fn toleration_matching_follows_upstream() {
        let taint = json!({"key": "k", "value": "v", "effect": "NoExecute"});
        assert!(tolerates(&json!({"key": "k", "value": "v"}), &taint));
        assert!(tolerates(
            &json!({"key": "k", "operator": "Exists", "effect": "NoExecute"}),
            &taint
        ));
        assert!(!tolerates(&json!({"key": "k", "value": "w"}), &taint));
        assert!(!tolerates(
            &json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"}),
            &taint
        ));
        assert!(tolerates(&json!({"operator": "Exists"}), &taint));
    }
}
