//! The cluster state one scheduling decision reads: nodes, the pods bound to them, and per-node
//! aggregates kept up to date as pods are added, assumed and removed.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{HostPort, Labels, NodeSpec, ParseError, PodInfo, Resources, SpreadConstraint};

/// A node with the pods on it and their aggregates (upstream's `NodeInfo`).
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node itself.
    pub spec: NodeSpec,
    /// Pods bound or assumed onto the node.
    pub pods: Vec<Arc<PodInfo>>,
    /// Sum of the pods' effective requests.
    pub requested: Resources,
    /// Sum of the pods' non-zero CPU (scoring).
    pub non_zero_milli_cpu: i64,
    /// Sum of the pods' non-zero memory (scoring).
    pub non_zero_memory: i64,
    /// Host ports in use.
    pub used_ports: Vec<HostPort>,
    /// How many pods have any pod (anti-)affinity term.
    pub pods_with_affinity: usize,
    /// How many pods have a required anti-affinity term.
    pub pods_with_required_anti_affinity: usize,
    /// Non-terminating pods by namespace, label key and label value: spreading counts the
    /// pods a one-label selector matches on every node for every decision, and this makes each
    /// such count a lookup instead of a scan.
    label_counts: HashMap<String, HashMap<String, HashMap<String, usize>>>,
    /// Counts for other selectors, remembered until a pod comes or goes: between two
    /// decisions only the chosen node changes, so every other node answers from here.
    memo: Memo,
}

/// Remembered selector counts of one node, by a hash of (namespace, selector).
#[derive(Debug, Default)]
struct Memo(std::sync::Mutex<HashMap<u64, usize>>);

impl Clone for Memo {
    fn clone(&self) -> Self {
        Memo::default()
    }
}

impl NodeInfo {
    /// A node with no pods.
    pub fn new(spec: NodeSpec) -> Self {
        NodeInfo {
            spec,
            pods: Vec::new(),
            requested: Resources::default(),
            non_zero_milli_cpu: 0,
            non_zero_memory: 0,
            used_ports: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            label_counts: HashMap::new(),
            memo: Memo::default(),
        }
    }

    /// How many pods on this node count for spreading constraint `c` of a pod in `namespace`
    /// (as [`SpreadConstraint::counts`] decides, pod by pod).
    pub fn count_matching(&self, c: &SpreadConstraint, namespace: &str) -> usize {
        use objects::selectors::Requirement;
        if let Some(sel) = &c.selector
            && let [Requirement::In(key, values)] = sel.0.as_slice()
            && let [value] = values.as_slice()
        {
            return self
                .label_counts
                .get(namespace)
                .and_then(|m| m.get(key))
                .and_then(|m| m.get(value))
                .copied()
                .unwrap_or(0);
        }
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (namespace, &c.selector).hash(&mut h);
            h.finish()
        };
        let mut memo = self.memo.0.lock().unwrap_or_else(|e| e.into_inner());
        *memo
            .entry(key)
            .or_insert_with(|| self.pods.iter().filter(|p| c.counts(namespace, p)).count())
    }

    fn count_labels(&mut self, pod: &PodInfo, add: bool) {
        self.memo
            .0
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if pod.terminating {
            return;
        }
        let by_key = self.label_counts.entry(pod.namespace.clone()).or_default();
        for (k, v) in &pod.labels {
            let by_value = by_key.entry(k.clone()).or_default();
            if add {
                *by_value.entry(v.clone()).or_default() += 1;
            } else if let Some(n) = by_value.get_mut(v) {
                *n -= 1;
                if *n == 0 {
                    by_value.remove(v);
                }
            }
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The node's labels.
    pub fn labels(&self) -> &Labels {
        &self.spec.labels
    }

    /// Adds a pod and its aggregates.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_milli_cpu += pod.non_zero_milli_cpu;
        self.non_zero_memory += pod.non_zero_memory;
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.count_labels(&pod, true);
        self.pods.push(pod);
    }

    /// Removes the pod with this namespace and name; returns it when it was there.
    pub fn remove_pod(&mut self, namespace: &str, name: &str) -> Option<Arc<PodInfo>> {
        let i = self
            .pods
            .iter()
            .position(|p| p.namespace == namespace && p.name == name)?;
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero_milli_cpu -= pod.non_zero_milli_cpu;
        self.non_zero_memory -= pod.non_zero_memory;
        for hp in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        self.count_labels(&pod, false);
        Some(pod)
    }
}

/// A PodDisruptionBudget as preemption reads it.
#[derive(Debug, Clone)]
pub struct DisruptionBudget {
    /// Its namespace.
    pub namespace: String,
    /// Its pod selector; an empty selector selects nothing (as upstream's preemption treats it).
    pub selector: objects::selectors::LabelSelector,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i64,
    /// Names of pods in `status.disruptedPods`, which no longer count against the budget.
    pub disrupted_pods: Vec<String>,
}

impl DisruptionBudget {
    /// Reads a PodDisruptionBudget object.
    pub fn from_api(pdb: &serde_json::Value) -> Result<Self, ParseError> {
        let selector = match pdb.pointer("/spec/selector") {
            Some(s) if !s.is_null() => {
                objects::selectors::LabelSelector::from_api(s).map_err(|e| {
                    ParseError::Selector {
                        field: "spec.selector".into(),
                        message: e.0,
                    }
                })?
            }
            _ => objects::selectors::LabelSelector::default(),
        };
        Ok(DisruptionBudget {
            namespace: pdb
                .pointer("/metadata/namespace")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("default")
                .to_owned(),
            selector,
            disruptions_allowed: pdb
                .pointer("/status/disruptionsAllowed")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
            disrupted_pods: pdb
                .pointer("/status/disruptedPods")
                .and_then(serde_json::Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        })
    }
}

/// Why a snapshot change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The object could not be read.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The pod names a node the snapshot does not have.
    #[error("node {0:?} not found")]
    UnknownNode(String),
}

/// Nodes in a stable order, the pods on them, namespace labels and disruption budgets.
///
/// Node order is insertion order; it is the order filters visit nodes in and the order that
/// breaks score ties when no seed is given.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    namespaces: HashMap<String, Labels>,
    /// Disruption budgets preemption tries not to violate.
    pub budgets: Vec<DisruptionBudget>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Snapshot::default()
    }

    /// Adds or replaces a node, keeping the pods already on it.
    pub fn upsert_node(&mut self, spec: NodeSpec) {
        match self.index.get(&spec.name) {
            Some(&i) => self.nodes[i].spec = spec,
            None => {
                self.index.insert(spec.name.clone(), self.nodes.len());
                self.nodes.push(NodeInfo::new(spec));
            }
        }
    }

    /// Adds or replaces a node from a Node object.
    pub fn upsert_node_object(&mut self, node: &serde_json::Value) -> Result<(), SnapshotError> {
        self.upsert_node(NodeSpec::from_api(node)?);
        Ok(())
    }

    /// Removes a node and its pods.
    pub fn remove_node(&mut self, name: &str) -> Option<NodeInfo> {
        let i = self.index.remove(name)?;
        let node = self.nodes.remove(i);
        for j in self.index.values_mut() {
            if *j > i {
                *j -= 1;
            }
        }
        Some(node)
    }

    /// Records the labels of a namespace (used by namespace selectors in affinity terms).
    pub fn set_namespace_labels(&mut self, namespace: &str, labels: Labels) {
        self.namespaces.insert(namespace.to_owned(), labels);
    }

    /// The labels of a namespace, when known.
    pub fn namespace_labels(&self, namespace: &str) -> Option<&Labels> {
        self.namespaces.get(namespace)
    }

    /// Adds a bound Pod object (`spec.nodeName` set) to its node.
    pub fn add_pod_object(&mut self, pod: &serde_json::Value) -> Result<(), SnapshotError> {
        let info = PodInfo::from_api(pod)?;
        let node = info.node_name.clone();
        self.assume(Arc::new(info), &node)
    }

    /// Places a pod on a node, updating every aggregate: after a successful `schedule`, the
    /// caller assumes the pod so that the next decision sees it before the binding is observed.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) -> Result<(), SnapshotError> {
        let i = *self
            .index
            .get(node)
            .ok_or_else(|| SnapshotError::UnknownNode(node.to_owned()))?;
        let pod = if pod.node_name == node {
            pod
        } else {
            let mut p = (*pod).clone();
            p.node_name = node.to_owned();
            Arc::new(p)
        };
        self.nodes[i].add_pod(pod);
        Ok(())
    }

    /// Removes a pod from the node it is on (deleted, or an assumption that failed to bind).
    pub fn remove_pod(&mut self, node: &str, namespace: &str, name: &str) -> Option<Arc<PodInfo>> {
        let i = *self.index.get(node)?;
        self.nodes[i].remove_pod(namespace, name)
    }

    /// All nodes, in order.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// A node's position in [`Snapshot::nodes`].
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}
