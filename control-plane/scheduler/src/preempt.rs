//! DefaultPreemption: when no node fits, find the node where evicting the fewest, least
//! important lower-priority pods lets the pod fit.

use std::sync::Arc;

use crate::filter::{Code, Cycle, Rejection};
use crate::fit_error::FitError;
use crate::model::PodInfo;
use crate::snapshot::{NodeInfo, Snapshot};

/// The status of nodes where evicting pods cannot help.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// The status of nodes without lower-priority pods.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// The chosen node and the pods to evict from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    /// The node to nominate.
    pub node: String,
    /// The pods to delete, most important first.
    pub victims: Vec<Arc<PodInfo>>,
    /// How many victims' eviction violates a PodDisruptionBudget.
    pub pdb_violations: usize,
}

/// Runs DefaultPreemption's PostFilter for a pod that `fit_error` says fits nowhere.
///
/// `Err` carries upstream's PostFilter message (`preemption: ...`), ready for
/// [`FitError::post_filter_msg`].
pub fn preempt(
    pod: &PodInfo,
    snapshot: &Snapshot,
    fit_error: &FitError,
) -> Result<Preemption, String> {
    if pod.preemption_never {
        return Err("preemption: not eligible due to preemptionPolicy=Never.".into());
    }
    if !pod.nominated_node_name.is_empty()
        && fit_error.preemption_might_help(&pod.nominated_node_name)
        && let Some(n) = snapshot.node(&pod.nominated_node_name)
        && n.pods
            .iter()
            .any(|p| p.terminating && p.priority < pod.priority)
    {
        return Err(
            "preemption: not eligible due to a terminating pod on the nominated node.".into(),
        );
    }

    let not_helpful = Rejection {
        plugin: None,
        code: Code::UnschedulableAndUnresolvable,
        reasons: vec![NOT_HELPFUL.to_owned()],
    };
    let mut statuses = std::collections::BTreeMap::new();
    let mut potential = Vec::new();
    for n in snapshot.nodes() {
        if fit_error.preemption_might_help(n.name()) {
            potential.push(n);
        } else {
            statuses.insert(n.name().to_owned(), not_helpful.clone());
        }
    }

    let cycle = Cycle::new(pod, snapshot);
    let wanted = num_candidates(potential.len());
    let mut candidates: Vec<Preemption> = Vec::new();
    let mut non_violating = 0;
    for n in potential {
        match select_victims(&cycle, n, snapshot) {
            Ok(c) => {
                if c.pdb_violations == 0 {
                    non_violating += 1;
                }
                candidates.push(c);
                if non_violating > 0 && candidates.len() >= wanted {
                    break;
                }
            }
            Err(r) => {
                statuses.insert(n.name().to_owned(), r);
            }
        }
    }
    if candidates.is_empty() {
        let err = FitError {
            num_all_nodes: snapshot.nodes().len(),
            node_statuses: statuses,
            absent_status: Some(not_helpful),
            pre_filter_msg: None,
            post_filter_msg: None,
        };
        return Err(format!("preemption: {err}"));
    }
    Ok(pick_one(candidates))
}

/// `GetOffsetAndNumCandidates` without the random offset: 10% of the nodes, at least 100.
fn num_candidates(nodes: usize) -> usize {
    (nodes * 10 / 100).max(100).min(nodes)
}

/// `SelectVictimsOnNode`: remove every lower-priority pod, check the pod fits, then reprieve as
/// many as possible, PDB-violating ones first, most important first.
fn select_victims(
    base: &Cycle<'_>,
    node: &NodeInfo,
    snapshot: &Snapshot,
) -> Result<Preemption, Rejection> {
    let pod = base.pod;
    let mut cycle = base.clone();
    let mut node = node.clone();
    let mut potential: Vec<Arc<PodInfo>> = Vec::new();
    for p in node.pods.clone() {
        if p.priority < pod.priority {
            node.remove_pod(&p.namespace, &p.name);
            cycle.update(&p, &node, -1);
            potential.push(p);
        }
    }
    if potential.is_empty() {
        return Err(Rejection {
            plugin: None,
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![NO_VICTIMS.to_owned()],
        });
    }
    cycle.filter(&node)?;
    potential.sort_by(|a, b| {
        if a.more_important_than(b) {
            std::cmp::Ordering::Less
        } else if b.more_important_than(a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    let (violating, non_violating) = split_by_budget(&potential, snapshot);
    let mut victims = Vec::new();
    let mut pdb_violations = 0;
    for (group, is_violating) in [(violating, true), (non_violating, false)] {
        for p in group {
            node.add_pod(p.clone());
            cycle.update(&p, &node, 1);
            if cycle.filter(&node).is_err() {
                node.remove_pod(&p.namespace, &p.name);
                cycle.update(&p, &node, -1);
                if is_violating {
                    pdb_violations += 1;
                }
                victims.push(p);
            }
        }
    }
    Ok(Preemption {
        node: node.name().to_owned(),
        victims,
        pdb_violations,
    })
}

/// `filterPodsWithPDBViolation`: pods whose eviction would exceed a budget's allowed disruptions.
fn split_by_budget(
    pods: &[Arc<PodInfo>],
    snapshot: &Snapshot,
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i64> = snapshot
        .budgets
        .iter()
        .map(|b| b.disruptions_allowed)
        .collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violates = false;
        for (i, b) in snapshot.budgets.iter().enumerate() {
            if b.namespace != p.namespace
                || b.selector.is_empty()
                || !b.selector.matches(&p.labels)
                || b.disrupted_pods.contains(&p.name)
            {
                continue;
            }
            allowed[i] -= 1;
            if allowed[i] < 0 {
                violates = true;
            }
        }
        if violates {
            violating.push(p.clone());
        } else {
            fine.push(p.clone());
        }
    }
    (violating, fine)
}

/// `pickOneNodeForPreemption`: fewest PDB violations, then the lowest highest-priority victim,
/// the smallest priority sum, the fewest victims, the latest start of the highest-priority
/// victims, and finally the first candidate.
fn pick_one(mut candidates: Vec<Preemption>) -> Preemption {
    if let Some(i) = candidates.iter().position(|c| c.victims.is_empty()) {
        return candidates.swap_remove(i);
    }
    let key = |c: &Preemption| {
        let highest = c
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
            .sum();
        let earliest_of_highest = c
            .victims
            .iter()
            .filter(|v| v.priority == highest)
            .filter_map(|v| v.start_time.clone())
            .min();
        (
            c.pdb_violations,
            highest,
            sum,
            c.victims.len(),
            std::cmp::Reverse(earliest_of_highest),
        )
    };
    let best = (0..candidates.len())
        .min_by_key(|&i| key(&candidates[i]))
        .unwrap_or(0);
    candidates.swap_remove(best)
}
