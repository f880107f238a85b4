//! Berth's scheduler core: kube-scheduler 1.33's default profile as pure functions over a
//! [`Snapshot`] of nodes and the pods bound to them.
//!
//! A decision runs upstream's filter plugins (NodeUnschedulable, NodeName, TaintToleration,
//! NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity) in upstream's
//! order, scores the feasible nodes with the default score plugins and weights, and picks the
//! best. When no node fits, [`FitError`] renders upstream's message word for word, and
//! [`preempt`] runs DefaultPreemption to choose a node and the pods to evict.
//!
//! What this crate is not: it never talks to the API server, reads a clock or spawns a task. The
//! scheduler loop that watches pods and nodes, keeps the snapshot current, binds through
//! `pods/binding`, writes the `PodScheduled` condition and `FailedScheduling` events, and deletes
//! preemption victims wraps it. Volumes, DRA, scheduling gates, ImageLocality, extenders and
//! multiple profiles are not modelled.

mod filter;
mod fit_error;
mod model;
mod preempt;
pub mod quantity;
mod score;
mod snapshot;

use std::collections::BTreeMap;

pub use filter::{Code, Cycle, Plugin, Rejection};
pub use fit_error::FitError;
pub use model::{
    AffinityTerm, DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST, HostPort, Labels,
    NodeSelectorTerm, NodeSpec, ParseError, PodInfo, Resources, SpreadConstraint, Taint,
    Toleration, tolerated,
};
pub use preempt::{NO_VICTIMS, NOT_HELPFUL, Preemption, preempt};
pub use score::MAX_NODE_SCORE;
pub use snapshot::{DisruptionBudget, NodeInfo, Snapshot, SnapshotError};

/// Upstream's texts for reasons, for callers matching on them.
pub mod reasons {
    pub use crate::filter::{
        ERR_AFFINITY, ERR_AFFINITY_CONFLICT, ERR_ANTI_AFFINITY, ERR_EXISTING_ANTI_AFFINITY,
        ERR_NODE_AFFINITY, ERR_NODE_NAME, ERR_NODE_PORTS, ERR_SPREAD, ERR_SPREAD_LABEL,
        ERR_TOO_MANY_PODS, ERR_UNSCHEDULABLE,
    };
}

/// `minFeasibleNodesToFind`: below this many nodes every node is evaluated.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// Why a pod was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The snapshot has no node (upstream's `ErrNoNodesAvailable`).
    #[error("no nodes available to schedule pods")]
    NoNodes,
    /// No node passed the filters.
    #[error(transparent)]
    Unfit(#[from] FitError),
}

/// Runs every filter plugin for one pod on one node (PreFilter state is computed from the whole
/// snapshot first, as upstream does).
pub fn filter(pod: &PodInfo, node: &NodeInfo, snapshot: &Snapshot) -> Result<(), Rejection> {
    Cycle::new(pod, snapshot).filter(node)
}

/// Scores `feasible` nodes (names) and returns them best first with their total score; equal
/// totals keep the order given.
pub fn score(pod: &PodInfo, feasible: &[&str], snapshot: &Snapshot) -> Vec<(String, i64)> {
    let indices: Vec<usize> = feasible
        .iter()
        .filter_map(|n| snapshot.node_index(n))
        .collect();
    let cycle = Cycle::new(pod, snapshot);
    let mut scored = score::score(&cycle, &indices);
    scored.sort_by_key(|(_, s)| std::cmp::Reverse(*s));
    scored
        .into_iter()
        .map(|(i, s)| (snapshot.nodes()[i].name().to_owned(), s))
        .collect()
}

/// The scheduling state that carries over between decisions: where the next node search
/// starts, and the random source for breaking score ties.
///
/// Tie-breaking: with seed 0, the first of the best-scored nodes in evaluation order wins (the
/// evaluation order starts at a rotating index, so ties still spread across nodes). With any
/// other seed, a deterministic xorshift generator seeded with it picks uniformly among the ties,
/// as upstream's reservoir sampling does with its global random source.
#[derive(Debug, Clone)]
pub struct Scheduler {
    /// `percentageOfNodesToScore`; 0 means upstream's adaptive default (50% minus 1% per 125
    /// nodes, at least 5%, and at least 100 nodes).
    pub percentage_of_nodes_to_score: usize,
    next_start_node_index: usize,
    rng: u64,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler::new(0)
    }
}

impl Scheduler {
    /// A scheduler with the adaptive percentage; `seed` as described on the type.
    pub fn new(seed: u64) -> Self {
        Scheduler {
            percentage_of_nodes_to_score: 0,
            next_start_node_index: 0,
            rng: seed,
        }
    }

    /// `numFeasibleNodesToFind`.
    fn num_feasible_nodes_to_find(&self, num_nodes: usize) -> usize {
        if num_nodes < MIN_FEASIBLE_NODES_TO_FIND {
            return num_nodes;
        }
        let mut percentage = self.percentage_of_nodes_to_score;
        if percentage == 0 {
            percentage = 50usize
                .saturating_sub(num_nodes / 125)
                .max(MIN_FEASIBLE_NODES_PERCENTAGE);
        }
        (num_nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Picks a node for the pod (upstream's `schedulePod`): the nominated node when it still
    /// fits, otherwise the best-scored of the feasible nodes found.
    pub fn schedule(
        &mut self,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Result<String, ScheduleError> {
        let all = snapshot.nodes();
        if all.is_empty() {
            return Err(ScheduleError::NoNodes);
        }
        let mut fit_error = FitError {
            num_all_nodes: all.len(),
            node_statuses: BTreeMap::new(),
            absent_status: None,
            pre_filter_msg: None,
            post_filter_msg: None,
        };
        // NodeAffinity's PreFilter narrows the search to the nodes named by `metadata.name In`.
        let candidates: Vec<usize> = match pod.node_name_restriction() {
            Some(names) if names.is_empty() => {
                fit_error.absent_status = Some(Rejection {
                    plugin: Some(Plugin::NodeAffinity),
                    code: Code::UnschedulableAndUnresolvable,
                    reasons: vec![reasons::ERR_AFFINITY_CONFLICT.to_owned()],
                });
                fit_error.pre_filter_msg = Some(reasons::ERR_AFFINITY_CONFLICT.to_owned());
                return Err(fit_error.into());
            }
            Some(names) => {
                fit_error.absent_status = Some(Rejection {
                    plugin: Some(Plugin::NodeAffinity),
                    code: Code::UnschedulableAndUnresolvable,
                    reasons: vec!["node(s) didn't satisfy plugin(s) [NodeAffinity]".to_owned()],
                });
                names
                    .iter()
                    .filter_map(|n| snapshot.node_index(n))
                    .collect()
            }
            None => (0..all.len()).collect(),
        };
        let cycle = Cycle::new(pod, snapshot);

        if !pod.nominated_node_name.is_empty()
            && let Some(i) = snapshot.node_index(&pod.nominated_node_name)
            && candidates.contains(&i)
            && cycle.filter(&all[i]).is_ok()
        {
            return Ok(all[i].name().to_owned());
        }

        let to_find = self.num_feasible_nodes_to_find(candidates.len());
        let mut feasible = Vec::with_capacity(to_find.min(candidates.len()));
        let start = if candidates.is_empty() {
            0
        } else {
            self.next_start_node_index % candidates.len()
        };
        let mut processed = 0;
        for k in 0..candidates.len() {
            if feasible.len() >= to_find {
                break;
            }
            let i = candidates[(start + k) % candidates.len()];
            processed += 1;
            match cycle.filter(&all[i]) {
                Ok(()) => feasible.push(i),
                Err(r) => {
                    fit_error.node_statuses.insert(all[i].name().to_owned(), r);
                }
            }
        }
        if !candidates.is_empty() {
            self.next_start_node_index = (start + processed) % candidates.len();
        }
        match feasible.len() {
            0 => Err(fit_error.into()),
            1 => Ok(all[feasible[0]].name().to_owned()),
            _ => {
                let scored = score::score(&cycle, &feasible);
                Ok(all[self.select_host(&scored)].name().to_owned())
            }
        }
    }

    /// `selectHost`: the highest total, ties broken as documented on [`Scheduler`].
    fn select_host(&mut self, scored: &[(usize, i64)]) -> usize {
        let best = scored.iter().map(|(_, s)| *s).max().unwrap_or(0);
        let ties: Vec<usize> = scored
            .iter()
            .filter(|(_, s)| *s == best)
            .map(|(i, _)| *i)
            .collect();
        if self.rng == 0 || ties.len() == 1 {
            return ties[0];
        }
        ties[(self.next_random() % ties.len() as u64) as usize]
    }

    /// Schedules the pod, and when nothing fits runs preemption and completes the message.
    pub fn schedule_or_preempt(&mut self, pod: &PodInfo, snapshot: &Snapshot) -> Outcome {
        match self.schedule(pod, snapshot) {
            Ok(node) => Outcome::Scheduled(node),
            Err(ScheduleError::NoNodes) => Outcome::Unschedulable(ScheduleError::NoNodes),
            Err(ScheduleError::Unfit(mut fit)) => match preempt(pod, snapshot, &fit) {
                Ok(p) => Outcome::Preempt(fit, p),
                Err(msg) => {
                    fit.post_filter_msg = Some(msg);
                    Outcome::Unschedulable(ScheduleError::Unfit(fit))
                }
            },
        }
    }
}

/// The result of [`Scheduler::schedule_or_preempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Bind the pod to this node.
    Scheduled(String),
    /// Nothing fits now; evict the victims and nominate the node. The `FitError` is still the
    /// message of this attempt (upstream reports it with the nomination).
    Preempt(FitError, Preemption),
    /// Nothing fits and preemption cannot help; the error's text is the condition message.
    Unschedulable(ScheduleError),
}
