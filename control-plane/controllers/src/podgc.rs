//! The pod garbage collector's core (`pkg/controller/podgc`).
//!
//! [`plan`] looks at every pod and node of a cluster and picks the pods to force-delete:
//! - terminated pods (phase neither Pending, Running nor Unknown) beyond the threshold
//!   (`--terminated-pod-gc-threshold`), evicted ones first, then the oldest;
//! - orphaned pods, bound to a node that no longer exists, once that node has been seen missing
//!   for the quarantine period (upstream waits 40 s and then confirms the node is gone);
//! - terminating pods that were never scheduled, which no kubelet will ever finish.
//!
//! Which nodes have been missing since when is upstream's in-memory queue; here it is an input
//! and an output ([`Missing`]) the loop keeps per cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::meta;

/// Upstream's `--terminated-pod-gc-threshold` default.
pub const DEFAULT_TERMINATED_THRESHOLD: usize = 12_500;
/// How long a node must be missing before its pods are orphans (upstream's `quarantineTime`).
pub const QUARANTINE: Duration = Duration::from_secs(40);
/// How often upstream's collector runs (`gcCheckPeriod`).
pub const CHECK_PERIOD: Duration = Duration::from_secs(20);

/// Node names first seen missing, with when (Unix seconds).
pub type Missing = BTreeMap<String, i64>;

/// Why a pod is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Terminated, and beyond the threshold.
    Terminated,
    /// Bound to a node that no longer exists.
    Orphaned,
    /// Being deleted, and never scheduled.
    UnscheduledTerminating,
}

/// One collection pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The pods to force-delete: namespace, name, uid and why.
    pub delete: Vec<(String, String, String, Reason)>,
    /// The nodes now known missing; the loop keeps this for the next pass.
    pub missing: Missing,
    /// Run again after this long, when a quarantine ends sooner than the next period.
    pub requeue_after: Option<Duration>,
}

fn is_terminated(pod: &Value) -> bool {
    !matches!(
        meta::str_at(pod, "/status/phase"),
        "" | "Pending" | "Running" | "Unknown"
    )
}

/// Picks the pods to collect. `threshold` 0 turns the terminated-pod collection off.
pub fn plan(
    pods: &[Value],
    nodes: &[Value],
    threshold: usize,
    missing: &Missing,
    now: SystemTime,
) -> Plan {
    let now_s = meta::unix_seconds(now);
    let mut out = Plan::default();
    let entry = |p: &Value, r| {
        (
            meta::namespace(p).to_owned(),
            meta::name(p).to_owned(),
            meta::uid(p).to_owned(),
            r,
        )
    };
    let mut picked: BTreeSet<&str> = BTreeSet::new();
    if threshold > 0 {
        let mut terminated: Vec<&Value> = pods.iter().filter(|p| is_terminated(p)).collect();
        if terminated.len() > threshold {
            let excess = terminated.len() - threshold;
            terminated.sort_by_key(|p| {
                (
                    meta::str_at(p, "/status/reason") != "Evicted",
                    meta::str_at(p, "/metadata/creationTimestamp").to_owned(),
                    meta::name(p).to_owned(),
                )
            });
            for p in terminated.into_iter().take(excess) {
                picked.insert(meta::uid(p));
                out.delete.push(entry(p, Reason::Terminated));
            }
        }
    }
    let existing: BTreeSet<&str> = nodes.iter().map(meta::name).collect();
    let mut ready_at: Option<i64> = None;
    for p in pods {
        let node = meta::str_at(p, "/spec/nodeName");
        if node.is_empty() || existing.contains(node) {
            continue;
        }
        let since = *out
            .missing
            .entry(node.to_owned())
            .or_insert_with(|| missing.get(node).copied().unwrap_or(now_s));
        let due = since + QUARANTINE.as_secs() as i64;
        if due <= now_s {
            if picked.insert(meta::uid(p)) {
                out.delete.push(entry(p, Reason::Orphaned));
            }
        } else {
            ready_at = Some(ready_at.map_or(due, |r| r.min(due)));
        }
    }
    for p in pods {
        if meta::is_deleting(p)
            && meta::str_at(p, "/spec/nodeName").is_empty()
            && picked.insert(meta::uid(p))
        {
            out.delete.push(entry(p, Reason::UnscheduledTerminating));
        }
    }
    out.requeue_after = ready_at
        .map(|t| meta::seconds(t - now_s))
        .filter(|d| *d < CHECK_PERIOD);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    fn pod(name: &str, phase: &str, node: &str, created: u64) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "default", "uid": name,
                         "creationTimestamp": meta::format_time(created as i64)},
            "spec": {"nodeName": node},
            "status": {"phase": phase},
        })
    }

    fn names(plan: &Plan) -> Vec<(&str, Reason)> {
        plan.delete.iter().map(|d| (d.1.as_str(), d.3)).collect()
    }

    #[test]
    fn terminated_pods_beyond_the_threshold_go_evicted_first_then_oldest() {
        let nodes = vec![json!({"metadata": {"name": "n1"}})];
        let mut evicted = pod("evicted", "Failed", "n1", 50);
        evicted["status"]["reason"] = json!("Evicted");
        let pods = vec![
            pod("old", "Succeeded", "n1", 10),
            pod("new", "Failed", "n1", 30),
            pod("mid", "Succeeded", "n1", 20),
            pod("running", "Running", "n1", 1),
            evicted,
        ];
        let p = plan(&pods, &nodes, 2, &Missing::new(), at(100));
        assert_eq!(
            names(&p),
            vec![("evicted", Reason::Terminated), ("old", Reason::Terminated)]
        );
        assert!(
            plan(&pods, &nodes, 0, &Missing::new(), at(100))
                .delete
                .is_empty()
        );
        let kept: Vec<Value> = pods[1..4].to_vec();
        assert!(
            plan(&kept, &nodes, 2, &Missing::new(), at(100))
                .delete
                .is_empty()
        );
    }

    #[test]
    fn pods_of_a_missing_node_go_after_the_quarantine() {
        let pods = vec![pod("a", "Running", "gone", 0), pod("b", "Pending", "", 0)];
        let first = plan(&pods, &[], 12_500, &Missing::new(), at(100));
        assert!(first.delete.is_empty());
        assert_eq!(first.missing, Missing::from([("gone".to_owned(), 100)]));
        assert_eq!(first.requeue_after, None, "40 s is beyond the next period");
        let soon = plan(&pods, &[], 12_500, &first.missing, at(125));
        assert!(soon.delete.is_empty());
        assert_eq!(soon.requeue_after, Some(Duration::from_secs(15)));
        let later = plan(&pods, &[], 12_500, &first.missing, at(140));
        assert_eq!(names(&later), vec![("a", Reason::Orphaned)]);
        // A node that came back is forgotten.
        let back = vec![json!({"metadata": {"name": "gone"}})];
        assert!(
            plan(&pods, &back, 12_500, &first.missing, at(140))
                .missing
                .is_empty()
        );
    }

    #[test]
    fn unscheduled_terminating_pods_go_at_once() {
        let mut p = pod("a", "Pending", "", 0);
        p["metadata"]["deletionTimestamp"] = json!("1970-01-01T00:00:00Z");
        let scheduled = {
            let mut s = pod("b", "Running", "n1", 0);
            s["metadata"]["deletionTimestamp"] = json!("1970-01-01T00:00:00Z");
            s
        };
        let nodes = vec![json!({"metadata": {"name": "n1"}})];
        let out = plan(&[p, scheduled], &nodes, 12_500, &Missing::new(), at(0));
        assert_eq!(names(&out), vec![("a", Reason::UnscheduledTerminating)]);
    }
}
