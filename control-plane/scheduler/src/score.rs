//! The default score plugins with their default weights, normalised as upstream does.

use std::collections::{HashMap, HashSet};

use crate::filter::{Cycle, spread_node_included};
use crate::model::{PodInfo, tolerated};
use crate::snapshot::NodeInfo;

/// `framework.MaxNodeScore`.
pub const MAX_NODE_SCORE: i64 = 100;

/// Default plugin weights of the 1.33 default profile.
const WEIGHT_TAINT_TOLERATION: i64 = 3;
const WEIGHT_NODE_AFFINITY: i64 = 2;
const WEIGHT_FIT: i64 = 1;
const WEIGHT_SPREAD: i64 = 2;
const WEIGHT_INTER_POD: i64 = 2;
const WEIGHT_BALANCED: i64 = 1;
/// `HardPodAffinityWeight` default: existing pods' required affinity counts as this preference.
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// Scores `feasible` nodes (indices into the snapshot's nodes) for the cycle's pod and returns
/// `(index, total)` in the order given.
pub(crate) fn score(cycle: &Cycle<'_>, feasible: &[usize]) -> Vec<(usize, i64)> {
    let nodes = cycle.snapshot.nodes();
    let pod = cycle.pod;
    let mut totals: Vec<i64> = vec![0; feasible.len()];

    // NodeResourcesFit (LeastAllocated) and NodeResourcesBalancedAllocation.
    let best_effort = pod.requests.milli_cpu == 0 && pod.requests.memory == 0;
    for (t, &i) in totals.iter_mut().zip(feasible) {
        let n = &nodes[i];
        *t += WEIGHT_FIT * least_allocated(pod, n);
        if !best_effort {
            *t += WEIGHT_BALANCED * balanced_allocation(pod, n);
        }
    }

    // TaintToleration: untolerated PreferNoSchedule taints, fewer is better.
    let prefer_tolerations: Vec<_> = pod
        .tolerations
        .iter()
        .filter(|tol| tol.effect.is_empty() || tol.effect == "PreferNoSchedule")
        .cloned()
        .collect();
    let counts: Vec<i64> = feasible
        .iter()
        .map(|&i| {
            nodes[i]
                .spec
                .taints
                .iter()
                .filter(|t| t.effect == "PreferNoSchedule" && !tolerated(&prefer_tolerations, t))
                .count() as i64
        })
        .collect();
    add_normalized(&mut totals, counts, true, WEIGHT_TAINT_TOLERATION);

    // NodeAffinity: sum of weights of matching preferred terms.
    if !pod.preferred_node_affinity.is_empty() {
        let raw: Vec<i64> = feasible
            .iter()
            .map(|&i| {
                let n = &nodes[i];
                pod.preferred_node_affinity
                    .iter()
                    .filter(|(_, t)| t.matches(n.name(), n.labels()))
                    .map(|(w, _)| *w)
                    .sum()
            })
            .collect();
        add_normalized(&mut totals, raw, false, WEIGHT_NODE_AFFINITY);
    }

    spread_score(cycle, feasible, &mut totals);
    inter_pod_score(cycle, feasible, &mut totals);

    feasible.iter().copied().zip(totals).collect()
}

/// `helper.DefaultNormalizeScore` then the plugin weight.
fn add_normalized(totals: &mut [i64], raw: Vec<i64>, reverse: bool, weight: i64) {
    let max = raw.iter().copied().max().unwrap_or(0);
    for (t, r) in totals.iter_mut().zip(raw) {
        let s = if max == 0 {
            if reverse { MAX_NODE_SCORE } else { 0 }
        } else {
            let s = MAX_NODE_SCORE * r / max;
            if reverse { MAX_NODE_SCORE - s } else { s }
        };
        *t += s * weight;
    }
}

fn least_allocated(pod: &PodInfo, n: &NodeInfo) -> i64 {
    let one = |requested: i64, capacity: i64| -> Option<i64> {
        if capacity == 0 {
            None
        } else if requested > capacity {
            Some(0)
        } else {
            Some((capacity - requested) * MAX_NODE_SCORE / capacity)
        }
    };
    let alloc = &n.spec.allocatable;
    let parts = [
        one(
            n.non_zero_milli_cpu + pod.non_zero_milli_cpu,
            alloc.milli_cpu,
        ),
        one(n.non_zero_memory + pod.non_zero_memory, alloc.memory),
    ];
    let (sum, weights) = parts
        .iter()
        .flatten()
        .fold((0, 0), |(s, w), v| (s + v, w + 1));
    if weights == 0 { 0 } else { sum / weights }
}

fn balanced_allocation(pod: &PodInfo, n: &NodeInfo) -> i64 {
    let alloc = &n.spec.allocatable;
    let mut fractions = Vec::with_capacity(2);
    for (req, cap) in [
        (
            n.requested.milli_cpu + pod.requests.milli_cpu,
            alloc.milli_cpu,
        ),
        (n.requested.memory + pod.requests.memory, alloc.memory),
    ] {
        if cap != 0 {
            fractions.push((req as f64 / cap as f64).min(1.0));
        }
    }
    let std = match fractions.as_slice() {
        [a, b] => ((a - b) / 2.0).abs(),
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// PodTopologySpread's score for `ScheduleAnyway` constraints.
fn spread_score(cycle: &Cycle<'_>, feasible: &[usize], totals: &mut [i64]) {
    let pod = cycle.pod;
    let soft: Vec<_> = pod.spread.iter().filter(|c| !c.hard).collect();
    if soft.is_empty() {
        return;
    }
    let nodes = cycle.snapshot.nodes();
    let has_keys = |n: &NodeInfo| {
        soft.iter()
            .all(|c| n.labels().contains_key(&c.topology_key))
    };
    let mut ignored: HashSet<usize> = HashSet::new();
    let mut pair_counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); soft.len()];
    let mut sizes = vec![0usize; soft.len()];
    for &i in feasible {
        let n = &nodes[i];
        if !has_keys(n) {
            ignored.insert(i);
            continue;
        }
        for (k, c) in soft.iter().enumerate() {
            if c.topology_key == HOSTNAME {
                continue;
            }
            let v = &n.labels()[&c.topology_key];
            if !pair_counts[k].contains_key(v) {
                pair_counts[k].insert(v.clone(), 0);
                sizes[k] += 1;
            }
        }
    }
    for n in nodes {
        if !has_keys(n) {
            continue;
        }
        for (k, c) in soft.iter().enumerate() {
            if c.topology_key == HOSTNAME || !spread_node_included(pod, c, n) {
                continue;
            }
            if let Some(cnt) = pair_counts[k].get_mut(&n.labels()[&c.topology_key]) {
                *cnt += n.count_matching(c, &pod.namespace) as i64;
            }
        }
    }
    let weights: Vec<f64> = soft
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let size = if c.topology_key == HOSTNAME {
                feasible.len() - ignored.len()
            } else {
                sizes[k]
            };
            ((size + 2) as f64).ln()
        })
        .collect();
    let raw: Vec<Option<i64>> = feasible
        .iter()
        .map(|&i| {
            if ignored.contains(&i) {
                return None;
            }
            let n = &nodes[i];
            let mut s = 0.0;
            for (k, c) in soft.iter().enumerate() {
                let Some(v) = n.labels().get(&c.topology_key) else {
                    continue;
                };
                let cnt = if c.topology_key == HOSTNAME {
                    n.count_matching(c, &pod.namespace) as i64
                } else {
                    pair_counts[k].get(v).copied().unwrap_or(0)
                };
                s += cnt as f64 * weights[k] + (c.max_skew - 1) as f64;
            }
            Some(s.round() as i64)
        })
        .collect();
    let min = raw.iter().flatten().copied().min().unwrap_or(0);
    let max = raw.iter().flatten().copied().max().unwrap_or(0);
    for (t, r) in totals.iter_mut().zip(raw) {
        let s = match r {
            None => 0,
            Some(_) if max == 0 => MAX_NODE_SCORE,
            Some(s) => MAX_NODE_SCORE * (max + min - s) / max,
        };
        *t += s * WEIGHT_SPREAD;
    }
}

const HOSTNAME: &str = "kubernetes.io/hostname";

/// InterPodAffinity's score: preferred terms of the pod, and the terms of existing pods that
/// match it.
fn inter_pod_score(cycle: &Cycle<'_>, feasible: &[usize], totals: &mut [i64]) {
    let pod = cycle.pod;
    let snapshot = cycle.snapshot;
    let has_constraints =
        !(pod.preferred_affinity.is_empty() && pod.preferred_anti_affinity.is_empty());
    let mut topo: HashMap<String, HashMap<String, i64>> = HashMap::new();
    let pod_ns = snapshot.namespace_labels(&pod.namespace);
    for n in snapshot.nodes() {
        if n.labels().is_empty() || (!has_constraints && n.pods_with_affinity == 0) {
            continue;
        }
        for existing in &n.pods {
            if !has_constraints && !existing.has_affinity() {
                continue;
            }
            let mut add = |key: &str, w: i64| {
                if let Some(v) = n.labels().get(key) {
                    *topo
                        .entry(key.to_owned())
                        .or_default()
                        .entry(v.clone())
                        .or_default() += w;
                }
            };
            let ex_ns = snapshot.namespace_labels(&existing.namespace);
            for (w, t) in &pod.preferred_affinity {
                if t.matches(existing, ex_ns) {
                    add(&t.topology_key, *w);
                }
            }
            for (w, t) in &pod.preferred_anti_affinity {
                if t.matches(existing, ex_ns) {
                    add(&t.topology_key, -*w);
                }
            }
            for t in &existing.required_affinity {
                if t.matches(pod, pod_ns) {
                    add(&t.topology_key, HARD_POD_AFFINITY_WEIGHT);
                }
            }
            for (w, t) in &existing.preferred_affinity {
                if t.matches(pod, pod_ns) {
                    add(&t.topology_key, *w);
                }
            }
            for (w, t) in &existing.preferred_anti_affinity {
                if t.matches(pod, pod_ns) {
                    add(&t.topology_key, -*w);
                }
            }
        }
    }
    if topo.is_empty() {
        return;
    }
    let nodes = snapshot.nodes();
    let raw: Vec<i64> = feasible
        .iter()
        .map(|&i| {
            topo.iter()
                .filter_map(|(k, vals)| nodes[i].labels().get(k).and_then(|v| vals.get(v)))
                .sum()
        })
        .collect();
    let min = raw.iter().copied().min().unwrap_or(0);
    let max = raw.iter().copied().max().unwrap_or(0);
    let diff = max - min;
    for (t, r) in totals.iter_mut().zip(raw) {
        let s = if diff > 0 {
            (MAX_NODE_SCORE as f64 * ((r - min) as f64 / diff as f64)) as i64
        } else {
            0
        };
        *t += s * WEIGHT_INTER_POD;
    }
}
