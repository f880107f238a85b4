//! `FitError`: why no node could take a pod, rendered exactly as kube-scheduler renders it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::filter::{Code, Rejection};

/// The outcome of a failed scheduling attempt (upstream's `FitError` and its `Diagnosis`).
///
/// Its `Display` is the text upstream puts in the `PodScheduled=False` condition and the
/// `FailedScheduling` event: `0/3 nodes are available: 1 node(s) had untolerated taint {k: v},
/// 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for
/// scheduling.`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    /// Every node of the snapshot.
    pub num_all_nodes: usize,
    /// The statuses of the nodes that were evaluated, by node name.
    pub node_statuses: BTreeMap<String, Rejection>,
    /// The status of nodes absent from `node_statuses` (upstream's `AbsentNodesStatus`).
    pub absent_status: Option<Rejection>,
    /// The message of a failing PreFilter; it replaces the per-node histogram.
    pub pre_filter_msg: Option<String>,
    /// The message of the PostFilter step (preemption), already prefixed with `preemption: `.
    pub post_filter_msg: Option<String>,
}

impl FitError {
    /// The status of a node: its own, or the absent-nodes status.
    pub fn status_of(&self, node: &str) -> Option<&Rejection> {
        self.node_statuses.get(node).or(self.absent_status.as_ref())
    }

    /// Reasons counted over all nodes, as `"<count> <reason>"`, sorted as strings (as upstream
    /// sorts them: `10 x` sorts before `2 y`).
    pub fn histogram(&self) -> Vec<String> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for status in self.node_statuses.values() {
            for r in &status.reasons {
                *counts.entry(r).or_default() += 1;
            }
        }
        if self.node_statuses.len() < self.num_all_nodes
            && let Some(absent) = &self.absent_status
        {
            for r in &absent.reasons {
                *counts.entry(r).or_default() += self.num_all_nodes - self.node_statuses.len();
            }
        }
        let mut out: Vec<String> = counts
            .into_iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        out.sort();
        out
    }

    /// Whether evicting pods could help on the node (its status is not unresolvable).
    pub fn preemption_might_help(&self, node: &str) -> bool {
        self.status_of(node)
            .is_some_and(|s| s.code != Code::UnschedulableAndUnresolvable)
    }
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        match &self.pre_filter_msg {
            Some(msg) => write!(f, " {msg}.")?,
            None => {
                let h = self.histogram();
                if !h.is_empty() {
                    write!(f, " {}.", h.join(", "))?;
                }
            }
        }
        if let Some(msg) = &self.post_filter_msg {
            write!(f, " {msg}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}
