//! The default filter plugins, in upstream's order, and the per-pod state their PreFilter steps
//! compute once per scheduling cycle.

use std::collections::HashMap;
use std::fmt;

use crate::model::{Labels, PodInfo, Taint, tolerated};
use crate::snapshot::{NodeInfo, Snapshot};

/// The node-name reason of NodeName.
pub const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
/// The reason of NodeUnschedulable.
pub const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// The reason of NodeAffinity.
pub const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// The reason of NodePorts.
pub const ERR_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// The reason of NodeResourcesFit when the node is full of pods.
pub const ERR_TOO_MANY_PODS: &str = "Too many pods";
/// InterPodAffinity: the pod's required affinity is not satisfied.
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// InterPodAffinity: the pod's required anti-affinity is not satisfied.
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// InterPodAffinity: an existing pod's required anti-affinity rejects the pod.
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// PodTopologySpread: a constraint's skew would be exceeded.
pub const ERR_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
/// PodTopologySpread: the node lacks a constraint's topology key.
pub const ERR_SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// NodeAffinity's PreFilter: the terms' `metadata.name` requirements exclude every node.
pub const ERR_AFFINITY_CONFLICT: &str = "pod affinity terms conflict";

/// A filter plugin of the default profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Plugin {
    /// Rejects unschedulable nodes.
    NodeUnschedulable,
    /// Honours `spec.nodeName`.
    NodeName,
    /// NoSchedule and NoExecute taints.
    TaintToleration,
    /// `nodeSelector` and required node affinity.
    NodeAffinity,
    /// Host port conflicts.
    NodePorts,
    /// Requests against allocatable.
    NodeResourcesFit,
    /// `DoNotSchedule` topology spread constraints.
    PodTopologySpread,
    /// Required pod affinity and anti-affinity.
    InterPodAffinity,
}

impl fmt::Display for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Whether a rejection could be lifted by evicting pods (`Unschedulable`) or not
/// (`UnschedulableAndUnresolvable`): preemption only considers the former.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Evicting pods may help.
    Unschedulable,
    /// Evicting pods cannot help.
    UnschedulableAndUnresolvable,
}

/// Why a node cannot take a pod: the first failing plugin's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The plugin that rejected the node; `None` for statuses the framework or preemption writes.
    pub plugin: Option<Plugin>,
    /// Whether preemption may help.
    pub code: Code,
    /// The reasons, in upstream's words; each is counted in the aggregate message.
    pub reasons: Vec<String>,
}

impl Rejection {
    fn new(plugin: Plugin, code: Code, reason: &str) -> Self {
        Rejection {
            plugin: Some(plugin),
            code,
            reasons: vec![reason.to_owned()],
        }
    }
}

type Pair = (String, String);

/// Per-constraint counts for a hard spread constraint (`preFilterState` of PodTopologySpread).
#[derive(Debug, Clone)]
struct SpreadCounts {
    /// Index into the pod's `spread`.
    constraint: usize,
    /// Matching pods per domain value, over eligible nodes (domains with zero included).
    counts: HashMap<String, i64>,
    /// The smallest count, `i32::MAX` when there is no domain.
    min: i64,
}

impl SpreadCounts {
    fn recompute_min(&mut self) {
        self.min = self
            .counts
            .values()
            .copied()
            .min()
            .unwrap_or(i64::from(i32::MAX));
    }
}

/// What the PreFilter steps computed for one pod; filters read it for every node.
#[derive(Debug, Clone)]
pub struct Cycle<'a> {
    /// The pod being scheduled.
    pub pod: &'a PodInfo,
    pub(crate) snapshot: &'a Snapshot,
    existing_anti: HashMap<Pair, i64>,
    affinity_counts: HashMap<Pair, i64>,
    anti_counts: HashMap<Pair, i64>,
    spread: Vec<SpreadCounts>,
}

fn bump(map: &mut HashMap<Pair, i64>, key: &str, value: &str, by: i64) {
    let k = (key.to_owned(), value.to_owned());
    let e = map.entry(k.clone()).or_default();
    *e += by;
    if *e == 0 {
        map.remove(&k);
    }
}

impl<'a> Cycle<'a> {
    /// Runs the PreFilter steps of InterPodAffinity and PodTopologySpread.
    pub fn new(pod: &'a PodInfo, snapshot: &'a Snapshot) -> Self {
        let mut cycle = Cycle {
            pod,
            snapshot,
            existing_anti: HashMap::new(),
            affinity_counts: HashMap::new(),
            anti_counts: HashMap::new(),
            spread: Vec::new(),
        };
        let has_own_terms =
            !(pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty());
        for node in snapshot.nodes() {
            if node.pods_with_required_anti_affinity == 0 && !has_own_terms {
                continue;
            }
            for existing in &node.pods {
                cycle.account(existing, node, 1);
            }
        }
        for (i, c) in pod.spread.iter().enumerate() {
            if c.hard {
                cycle.spread.push(SpreadCounts {
                    constraint: i,
                    counts: HashMap::new(),
                    min: 0,
                });
            }
        }
        if !cycle.spread.is_empty() {
            for node in snapshot.nodes() {
                if !cycle.spread_keys_present(node.labels()) {
                    continue;
                }
                for s in &mut cycle.spread {
                    let c = &pod.spread[s.constraint];
                    if !spread_node_included(pod, c, node) {
                        continue;
                    }
                    let n = node.count_matching(c, &pod.namespace) as i64;
                    *s.counts
                        .entry(node.labels()[&c.topology_key].clone())
                        .or_default() += n;
                }
            }
            for s in &mut cycle.spread {
                s.recompute_min();
            }
        }
        cycle
    }

    fn spread_keys_present(&self, labels: &Labels) -> bool {
        self.spread
            .iter()
            .all(|s| labels.contains_key(&self.pod.spread[s.constraint].topology_key))
    }

    /// Counts (or uncounts, `by = -1`) an existing pod in the InterPodAffinity state.
    fn account(&mut self, existing: &PodInfo, node: &NodeInfo, by: i64) {
        let pod = self.pod;
        let labels = node.labels();
        if !existing.required_anti_affinity.is_empty() {
            let ns = self.snapshot.namespace_labels(&pod.namespace);
            for t in &existing.required_anti_affinity {
                if let Some(v) = labels.get(&t.topology_key)
                    && t.matches(pod, ns)
                {
                    bump(&mut self.existing_anti, &t.topology_key, v, by);
                }
            }
        }
        if pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty() {
            return;
        }
        let ns = self.snapshot.namespace_labels(&existing.namespace);
        if !pod.required_affinity.is_empty()
            && pod
                .required_affinity
                .iter()
                .all(|t| t.matches(existing, ns))
        {
            for t in &pod.required_affinity {
                if let Some(v) = labels.get(&t.topology_key) {
                    bump(&mut self.affinity_counts, &t.topology_key, v, by);
                }
            }
        }
        for t in &pod.required_anti_affinity {
            if let Some(v) = labels.get(&t.topology_key)
                && t.matches(existing, ns)
            {
                bump(&mut self.anti_counts, &t.topology_key, v, by);
            }
        }
    }

    /// Updates the state as if `existing` were added to (`by = 1`) or removed from (`-1`)
    /// `node` (upstream's PreFilter extensions, used by preemption's dry runs).
    pub(crate) fn update(&mut self, existing: &PodInfo, node: &NodeInfo, by: i64) {
        self.account(existing, node, by);
        if self.spread.is_empty() || !self.spread_keys_present(node.labels()) {
            return;
        }
        let pod = self.pod;
        for s in &mut self.spread {
            let c = &pod.spread[s.constraint];
            if spread_node_included(pod, c, node) && c.counts(&pod.namespace, existing) {
                *s.counts
                    .entry(node.labels()[&c.topology_key].clone())
                    .or_default() += by;
                s.recompute_min();
            }
        }
    }

    /// Runs every filter plugin against the node and returns the first rejection.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), Rejection> {
        let pod = self.pod;
        node_unschedulable(pod, node)?;
        node_name(pod, node)?;
        taint_toleration(pod, node)?;
        node_affinity(pod, node)?;
        node_ports(pod, node)?;
        node_resources_fit(pod, node)?;
        self.pod_topology_spread(node)?;
        self.inter_pod_affinity(node)
    }

    fn pod_topology_spread(&self, node: &NodeInfo) -> Result<(), Rejection> {
        for s in &self.spread {
            let c = &self.pod.spread[s.constraint];
            let Some(value) = node.labels().get(&c.topology_key) else {
                return Err(Rejection::new(
                    Plugin::PodTopologySpread,
                    Code::UnschedulableAndUnresolvable,
                    ERR_SPREAD_LABEL,
                ));
            };
            let self_match = i64::from(
                c.selector
                    .as_ref()
                    .is_some_and(|sel| sel.matches(&self.pod.labels)),
            );
            let matching = s.counts.get(value).copied().unwrap_or(0);
            let min = if (s.counts.len() as i64) < c.min_domains {
                0
            } else {
                s.min
            };
            if matching + self_match - min > c.max_skew {
                return Err(Rejection::new(
                    Plugin::PodTopologySpread,
                    Code::Unschedulable,
                    ERR_SPREAD,
                ));
            }
        }
        Ok(())
    }

    fn inter_pod_affinity(&self, node: &NodeInfo) -> Result<(), Rejection> {
        let labels = node.labels();
        let pod = self.pod;
        if !pod.required_affinity.is_empty() {
            let mut pods_exist = true;
            let mut ok = true;
            for t in &pod.required_affinity {
                match labels.get(&t.topology_key) {
                    Some(v) => {
                        if self
                            .affinity_counts
                            .get(&(t.topology_key.clone(), v.clone()))
                            .is_none_or(|n| *n <= 0)
                        {
                            pods_exist = false;
                        }
                    }
                    None => ok = false,
                }
            }
            if ok && !pods_exist {
                // The first pod of a group with affinity to itself may go anywhere the topology
                // keys exist, as long as no other pod matches the terms yet.
                let ns = self.snapshot.namespace_labels(&pod.namespace);
                ok = self.affinity_counts.is_empty()
                    && pod.required_affinity.iter().all(|t| t.matches(pod, ns));
            }
            if !ok {
                return Err(Rejection::new(
                    Plugin::InterPodAffinity,
                    Code::UnschedulableAndUnresolvable,
                    ERR_AFFINITY,
                ));
            }
        }
        for t in &pod.required_anti_affinity {
            if let Some(v) = labels.get(&t.topology_key)
                && self
                    .anti_counts
                    .get(&(t.topology_key.clone(), v.clone()))
                    .is_some_and(|n| *n > 0)
            {
                return Err(Rejection::new(
                    Plugin::InterPodAffinity,
                    Code::Unschedulable,
                    ERR_ANTI_AFFINITY,
                ));
            }
        }
        if !self.existing_anti.is_empty() {
            for (k, v) in labels {
                if self
                    .existing_anti
                    .get(&(k.clone(), v.clone()))
                    .is_some_and(|n| *n > 0)
                {
                    return Err(Rejection::new(
                        Plugin::InterPodAffinity,
                        Code::Unschedulable,
                        ERR_EXISTING_ANTI_AFFINITY,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether a node's domain counts for a spread constraint (`MatchNodeInclusionPolicies`).
pub(crate) fn spread_node_included(
    pod: &PodInfo,
    c: &crate::model::SpreadConstraint,
    node: &NodeInfo,
) -> bool {
    if c.honor_node_affinity && !pod.node_affinity_matches(node.name(), node.labels()) {
        return false;
    }
    if c.honor_node_taints && untolerated_taint(pod, node).is_some() {
        return false;
    }
    true
}

fn node_unschedulable(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    if !node.spec.unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        value: String::new(),
        effect: "NoSchedule".into(),
    };
    if tolerated(&pod.tolerations, &taint) {
        Ok(())
    } else {
        Err(Rejection::new(
            Plugin::NodeUnschedulable,
            Code::UnschedulableAndUnresolvable,
            ERR_UNSCHEDULABLE,
        ))
    }
}

fn node_name(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    if pod.node_name.is_empty() || pod.node_name == node.name() {
        Ok(())
    } else {
        Err(Rejection::new(
            Plugin::NodeName,
            Code::UnschedulableAndUnresolvable,
            ERR_NODE_NAME,
        ))
    }
}

/// The first NoSchedule or NoExecute taint of the node that the pod does not tolerate.
pub(crate) fn untolerated_taint<'n>(pod: &PodInfo, node: &'n NodeInfo) -> Option<&'n Taint> {
    node.spec.taints.iter().find(|t| {
        (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(&pod.tolerations, t)
    })
}

fn taint_toleration(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    match untolerated_taint(pod, node) {
        None => Ok(()),
        Some(t) => Err(Rejection {
            plugin: Some(Plugin::TaintToleration),
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key, t.value
            )],
        }),
    }
}

fn node_affinity(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    if pod.node_affinity_matches(node.name(), node.labels()) {
        Ok(())
    } else {
        Err(Rejection::new(
            Plugin::NodeAffinity,
            Code::UnschedulableAndUnresolvable,
            ERR_NODE_AFFINITY,
        ))
    }
}

fn node_ports(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    let conflict = pod
        .host_ports
        .iter()
        .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
    if conflict {
        Err(Rejection::new(
            Plugin::NodePorts,
            Code::Unschedulable,
            ERR_NODE_PORTS,
        ))
    } else {
        Ok(())
    }
}

fn node_resources_fit(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    let mut reasons = Vec::new();
    let mut unresolvable = false;
    if node.pods.len() as i64 + 1 > node.spec.allowed_pods {
        reasons.push(ERR_TOO_MANY_PODS.to_owned());
    }
    let want = &pod.requests;
    let alloc = &node.spec.allocatable;
    let used = &node.requested;
    if !want.is_zero() {
        let mut check = |name: &str, want: i64, alloc: i64, used: i64| {
            if want > 0 && want > alloc - used {
                reasons.push(format!("Insufficient {name}"));
                unresolvable |= want > alloc;
            }
        };
        check("cpu", want.milli_cpu, alloc.milli_cpu, used.milli_cpu);
        check("memory", want.memory, alloc.memory, used.memory);
        check(
            "ephemeral-storage",
            want.ephemeral_storage,
            alloc.ephemeral_storage,
            used.ephemeral_storage,
        );
        for (name, q) in &want.scalar {
            check(
                name,
                *q,
                alloc.scalar.get(name).copied().unwrap_or(0),
                used.scalar.get(name).copied().unwrap_or(0),
            );
        }
    }
    if reasons.is_empty() {
        return Ok(());
    }
    Err(Rejection {
        plugin: Some(Plugin::NodeResourcesFit),
        code: if unresolvable {
            Code::UnschedulableAndUnresolvable
        } else {
            Code::Unschedulable
        },
        reasons,
    })
}
