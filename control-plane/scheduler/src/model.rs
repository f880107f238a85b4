//! The scheduler's view of pods and nodes, parsed once from API objects.
//!
//! Parsing happens when a pod or node enters the snapshot (or when a pending pod is scheduled), so
//! that filters and scores compare integers and pre-built selectors instead of walking JSON.

use std::collections::{BTreeMap, BTreeSet};

use objects::selectors::{LabelSelector, Requirement};
use serde_json::Value;

use crate::quantity;

/// Labels of an object or namespace.
pub type Labels = BTreeMap<String, String>;

/// `schedutil.DefaultMilliCPURequest`: the CPU a container without a request counts for in
/// scoring.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// `schedutil.DefaultMemoryRequest`: the memory a container without a request counts for in
/// scoring (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Why an object could not be read as a scheduling input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A quantity (request, allocatable, overhead) is not valid `resource.Quantity` text.
    #[error("{field}: invalid quantity {value:?}")]
    Quantity {
        /// Where the quantity was.
        field: String,
        /// The text found.
        value: String,
    },
    /// A label selector in an affinity term or spread constraint is invalid.
    #[error("{field}: {message}")]
    Selector {
        /// Where the selector was.
        field: String,
        /// The selector parser's message.
        message: String,
    },
}

/// Amounts of resources: CPU in milli-units, the rest in whole units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in milli-cores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Extended, hugepages and other scalar resources by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Reads a `ResourceList` object; `pods` is skipped (it is a count, not a request).
    pub fn from_list(list: Option<&Value>, field: &str) -> Result<Self, ParseError> {
        let mut r = Resources::default();
        let Some(map) = list.and_then(Value::as_object) else {
            return Ok(r);
        };
        for (name, q) in map {
            let text = q
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| q.to_string());
            let bad = || ParseError::Quantity {
                field: format!("{field}[{name}]"),
                value: text.clone(),
            };
            match name.as_str() {
                "cpu" => r.milli_cpu = quantity::milli_value(&text).ok_or_else(bad)?,
                "memory" => r.memory = quantity::value(&text).ok_or_else(bad)?,
                "ephemeral-storage" => {
                    r.ephemeral_storage = quantity::value(&text).ok_or_else(bad)?
                }
                "pods" => {}
                other => {
                    r.scalar
                        .insert(other.to_owned(), quantity::value(&text).ok_or_else(bad)?);
                }
            }
        }
        Ok(r)
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `other` from `self`.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Raises each amount of `self` to at least the one in `other`.
    fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// Whether every amount is zero.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// The taint key.
    pub key: String,
    /// The taint value, possibly empty.
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A pod toleration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toleration {
    /// Empty with `Exists` tolerates every key.
    pub key: String,
    /// `Equal` (also when empty) or `Exists`.
    pub operator: String,
    /// Compared for `Equal`.
    pub value: String,
    /// Empty tolerates every effect.
    pub effect: String,
}

impl Toleration {
    /// `Toleration.ToleratesTaint`.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != taint.effect {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator.as_str() {
            "" | "Equal" => self.value == taint.value,
            "Exists" => true,
            _ => false,
        }
    }
}

/// Whether some toleration tolerates the taint (`TolerationsTolerateTaint`).
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| t.tolerates(taint))
}

/// One `NodeSelectorTerm`: label requirements and `metadata.name` field requirements, ANDed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSelectorTerm {
    labels: LabelSelector,
    /// `(In?, names)` requirements on `metadata.name`.
    fields: Vec<(bool, Vec<String>)>,
    /// A term upstream cannot parse (unknown operator, bad value) matches no node.
    valid: bool,
}

impl NodeSelectorTerm {
    fn from_api(term: &Value) -> Self {
        let mut reqs = Vec::new();
        let mut valid = true;
        let exprs = term.get("matchExpressions").and_then(Value::as_array);
        let fields_api = term.get("matchFields").and_then(Value::as_array);
        if exprs.is_none_or(|e| e.is_empty()) && fields_api.is_none_or(|f| f.is_empty()) {
            valid = false;
        }
        for e in exprs.into_iter().flatten() {
            let key = str_at(e, "key").to_owned();
            let values = strings_at(e, "values");
            let req = match str_at(e, "operator") {
                "In" => Some(Requirement::In(key, values)),
                "NotIn" => Some(Requirement::NotIn(key, values)),
                "Exists" => Some(Requirement::Exists(key)),
                "DoesNotExist" => Some(Requirement::DoesNotExist(key)),
                op @ ("Gt" | "Lt") => match values.as_slice() {
                    [v] => v.parse::<i64>().ok().map(|n| {
                        if op == "Gt" {
                            Requirement::Gt(key, n)
                        } else {
                            Requirement::Lt(key, n)
                        }
                    }),
                    _ => None,
                },
                _ => None,
            };
            match req {
                Some(r) => reqs.push(r),
                None => valid = false,
            }
        }
        let mut fields = Vec::new();
        for f in fields_api.into_iter().flatten() {
            let values = strings_at(f, "values");
            match (str_at(f, "key"), str_at(f, "operator")) {
                ("metadata.name", "In") if values.len() == 1 => fields.push((true, values)),
                ("metadata.name", "NotIn") if values.len() == 1 => fields.push((false, values)),
                _ => valid = false,
            }
        }
        NodeSelectorTerm {
            labels: LabelSelector(reqs),
            fields,
            valid,
        }
    }

    /// Whether the node's labels and name satisfy the term.
    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        self.valid
            && self.labels.matches(labels)
            && self
                .fields
                .iter()
                .all(|(is_in, names)| names.iter().any(|n| n == node_name) == *is_in)
    }

    /// The node names this term is restricted to by `metadata.name In` requirements, if any.
    fn name_restriction(&self) -> Option<BTreeSet<String>> {
        let mut out: Option<BTreeSet<String>> = None;
        for (is_in, names) in &self.fields {
            if *is_in {
                let s: BTreeSet<String> = names.iter().cloned().collect();
                out = Some(match out {
                    None => s,
                    Some(prev) => prev.intersection(&s).cloned().collect(),
                });
            }
        }
        out
    }
}

/// A pod (anti-)affinity term with its namespaces resolved against the owning pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityTerm {
    /// `None` when the term has no label selector: it then matches no pod.
    pub selector: Option<LabelSelector>,
    /// Namespaces listed explicitly, or the owning pod's own when neither list nor selector is set.
    pub namespaces: BTreeSet<String>,
    /// The namespace selector; `Some(empty)` selects every namespace.
    pub namespace_selector: Option<LabelSelector>,
    /// The node label whose values define the topology domains.
    pub topology_key: String,
}

impl AffinityTerm {
    fn from_api(term: &Value, own_namespace: &str, field: &str) -> Result<Self, ParseError> {
        let sel_err = |e: objects::selectors::SelectorError| ParseError::Selector {
            field: field.to_owned(),
            message: e.0,
        };
        let selector = match term.get("labelSelector") {
            Some(s) if !s.is_null() => Some(LabelSelector::from_api(s).map_err(sel_err)?),
            _ => None,
        };
        let namespace_selector = match term.get("namespaceSelector") {
            Some(s) if !s.is_null() => Some(LabelSelector::from_api(s).map_err(sel_err)?),
            _ => None,
        };
        let mut namespaces: BTreeSet<String> = strings_at(term, "namespaces").into_iter().collect();
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(own_namespace.to_owned());
        }
        Ok(AffinityTerm {
            selector,
            namespaces,
            namespace_selector,
            topology_key: str_at(term, "topologyKey").to_owned(),
        })
    }

    /// Whether `pod` is selected by the term; `namespace_labels` are the labels of the pod's
    /// namespace (needed only for namespace selectors).
    pub fn matches(&self, pod: &PodInfo, namespace_labels: Option<&Labels>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.is_empty() || namespace_labels.is_some_and(|l| s.matches(l)));
        ns_ok
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.labels))
    }
}

/// A `topologySpreadConstraints` entry with upstream's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpreadConstraint {
    /// The largest allowed difference between domains.
    pub max_skew: i64,
    /// The node label whose values define the domains.
    pub topology_key: String,
    /// `DoNotSchedule` (a filter) rather than `ScheduleAnyway` (a score).
    pub hard: bool,
    /// `labelSelector` merged with `matchLabelKeys`; `None` matches no pod.
    pub selector: Option<LabelSelector>,
    /// `minDomains`, only meaningful for hard constraints.
    pub min_domains: i64,
    /// `nodeAffinityPolicy: Honor` (the default).
    pub honor_node_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (default `Ignore`).
    pub honor_node_taints: bool,
}

impl SpreadConstraint {
    /// Whether an existing pod counts for this constraint of a pod in `namespace`.
    pub fn counts(&self, namespace: &str, other: &PodInfo) -> bool {
        !other.terminating
            && other.namespace == namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&other.labels))
    }
}

/// A host port a container asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// `0.0.0.0` when unset.
    pub ip: String,
    /// `TCP` when unset.
    pub protocol: String,
    /// The port number.
    pub port: i64,
}

impl HostPort {
    /// Whether two host ports cannot both be bound on one node.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// A pod as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID, possibly empty.
    pub uid: String,
    /// Labels.
    pub labels: Labels,
    /// `spec.priority` (0 when unset).
    pub priority: i32,
    /// `status.startTime` as RFC 3339 text, compared lexically (same format, UTC).
    pub start_time: Option<String>,
    /// `spec.preemptionPolicy: Never`.
    pub preemption_never: bool,
    /// The pod has a deletion timestamp.
    pub terminating: bool,
    /// `spec.nodeName`, empty when unbound.
    pub node_name: String,
    /// `status.nominatedNodeName`, empty when none.
    pub nominated_node_name: String,
    /// Effective requests: containers summed, init containers' max rule, sidecars, overhead.
    pub requests: Resources,
    /// The CPU counted for scoring: as `requests` but 100m for containers without a CPU request.
    pub non_zero_milli_cpu: i64,
    /// The memory counted for scoring: 200MiB for containers without a memory request.
    pub non_zero_memory: i64,
    /// Host ports of containers and sidecars.
    pub host_ports: Vec<HostPort>,
    /// `spec.nodeSelector`.
    pub node_selector: Labels,
    /// Required node affinity terms (ORed); `None` when there is no required node affinity.
    pub required_node_affinity: Option<Vec<NodeSelectorTerm>>,
    /// Preferred node affinity terms and their weights.
    pub preferred_node_affinity: Vec<(i64, NodeSelectorTerm)>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Required pod affinity terms.
    pub required_affinity: Vec<AffinityTerm>,
    /// Required pod anti-affinity terms.
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Preferred pod affinity terms and weights.
    pub preferred_affinity: Vec<(i64, AffinityTerm)>,
    /// Preferred pod anti-affinity terms and weights.
    pub preferred_anti_affinity: Vec<(i64, AffinityTerm)>,
    /// Topology spread constraints.
    pub spread: Vec<SpreadConstraint>,
}

impl PodInfo {
    /// Reads a Pod object as stored by the API server.
    pub fn from_api(pod: &Value) -> Result<Self, ParseError> {
        let namespace = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        let spec = pod.get("spec").unwrap_or(&Value::Null);
        let labels = objects::selectors::labels_of(pod);
        let (requests, non_zero_milli_cpu, non_zero_memory) = pod_requests(spec)?;

        let mut host_ports = Vec::new();
        let sidecars = spec
            .get("initContainers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| str_at(c, "restartPolicy") == "Always");
        let containers = spec
            .get("containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for c in containers.chain(sidecars) {
            for p in c
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let port = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                if port <= 0 {
                    continue;
                }
                let ip = match str_at(p, "hostIP") {
                    "" => "0.0.0.0",
                    ip => ip,
                };
                let protocol = match str_at(p, "protocol") {
                    "" => "TCP",
                    proto => proto,
                };
                host_ports.push(HostPort {
                    ip: ip.to_owned(),
                    protocol: protocol.to_owned(),
                    port,
                });
            }
        }

        let affinity = spec.get("affinity").unwrap_or(&Value::Null);
        let node_aff = affinity.get("nodeAffinity").unwrap_or(&Value::Null);
        let required_node_affinity = node_aff
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .filter(|v| !v.is_null())
            .map(|r| {
                r.get("nodeSelectorTerms")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(NodeSelectorTerm::from_api)
                    .collect()
            });
        let preferred_node_affinity = node_aff
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p.get("weight").and_then(Value::as_i64).unwrap_or(0),
                    NodeSelectorTerm::from_api(p.get("preference").unwrap_or(&Value::Null)),
                )
            })
            .collect();

        let terms = |kind: &str, which: &str| -> Result<Vec<AffinityTerm>, ParseError> {
            let field = format!("spec.affinity.{kind}.{which}");
            affinity
                .pointer(&format!("/{kind}/{which}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::from_api(t, &namespace, &field))
                .collect()
        };
        let weighted = |kind: &str| -> Result<Vec<(i64, AffinityTerm)>, ParseError> {
            let field =
                format!("spec.affinity.{kind}.preferredDuringSchedulingIgnoredDuringExecution");
            affinity
                .pointer(&format!(
                    "/{kind}/preferredDuringSchedulingIgnoredDuringExecution"
                ))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|w| {
                    let term = w.get("podAffinityTerm").unwrap_or(&Value::Null);
                    Ok((
                        w.get("weight").and_then(Value::as_i64).unwrap_or(0),
                        AffinityTerm::from_api(term, &namespace, &field)?,
                    ))
                })
                .collect()
        };
        const REQ: &str = "requiredDuringSchedulingIgnoredDuringExecution";

        let mut spread = Vec::new();
        for c in spec
            .get("topologySpreadConstraints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let selector = match c.get("labelSelector") {
                Some(s) if !s.is_null() => {
                    let mut sel = LabelSelector::from_api(s).map_err(|e| ParseError::Selector {
                        field: "spec.topologySpreadConstraints.labelSelector".into(),
                        message: e.0,
                    })?;
                    for key in strings_at(c, "matchLabelKeys") {
                        if let Some(v) = labels.get(&key) {
                            sel.0.push(Requirement::In(key, vec![v.clone()]));
                        }
                    }
                    Some(sel)
                }
                _ => None,
            };
            spread.push(SpreadConstraint {
                max_skew: c.get("maxSkew").and_then(Value::as_i64).unwrap_or(1),
                topology_key: str_at(c, "topologyKey").to_owned(),
                hard: str_at(c, "whenUnsatisfiable") != "ScheduleAnyway",
                selector,
                min_domains: c.get("minDomains").and_then(Value::as_i64).unwrap_or(1),
                honor_node_affinity: str_at(c, "nodeAffinityPolicy") != "Ignore",
                honor_node_taints: str_at(c, "nodeTaintsPolicy") == "Honor",
            });
        }

        Ok(PodInfo {
            name: pod
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            uid: pod
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            priority: spec.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
            start_time: pod
                .pointer("/status/startTime")
                .and_then(Value::as_str)
                .map(str::to_owned),
            preemption_never: str_at(spec, "preemptionPolicy") == "Never",
            terminating: pod
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null()),
            node_name: str_at(spec, "nodeName").to_owned(),
            nominated_node_name: pod
                .pointer("/status/nominatedNodeName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            requests,
            non_zero_milli_cpu,
            non_zero_memory,
            host_ports,
            node_selector: spec
                .get("nodeSelector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            required_node_affinity,
            preferred_node_affinity,
            tolerations: spec
                .get("tolerations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|t| Toleration {
                    key: str_at(t, "key").to_owned(),
                    operator: str_at(t, "operator").to_owned(),
                    value: str_at(t, "value").to_owned(),
                    effect: str_at(t, "effect").to_owned(),
                })
                .collect(),
            required_affinity: terms("podAffinity", REQ)?,
            required_anti_affinity: terms("podAntiAffinity", REQ)?,
            preferred_affinity: weighted("podAffinity")?,
            preferred_anti_affinity: weighted("podAntiAffinity")?,
            spread,
            labels,
            namespace,
        })
    }

    /// Whether the pod has any pod affinity or anti-affinity term (`PodsWithAffinity`).
    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// Whether `nodeSelector` and required node affinity accept the node
    /// (`GetRequiredNodeAffinity(pod).Match(node)`).
    pub fn node_affinity_matches(&self, node_name: &str, labels: &Labels) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self
                .required_node_affinity
                .as_ref()
                .is_none_or(|terms| terms.iter().any(|t| t.matches(node_name, labels)))
    }

    /// The node names required node affinity restricts the pod to through `metadata.name In`
    /// in every term (NodeAffinity's PreFilter result); `None` when unrestricted.
    pub fn node_name_restriction(&self) -> Option<BTreeSet<String>> {
        let terms = self.required_node_affinity.as_ref()?;
        let mut all: Option<BTreeSet<String>> = None;
        for t in terms {
            let names = t.name_restriction()?;
            all.get_or_insert_with(BTreeSet::new).extend(names);
        }
        all
    }

    /// `util.MoreImportantPod`: higher priority first, then the earlier start time.
    pub fn more_important_than(&self, other: &PodInfo) -> bool {
        if self.priority != other.priority {
            return self.priority > other.priority;
        }
        match (&self.start_time, &other.start_time) {
            (Some(a), Some(b)) => a < b,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// `resourcehelper.PodRequests` with the sidecar rules, plus the non-zero CPU and memory used by
/// scoring.
fn pod_requests(spec: &Value) -> Result<(Resources, i64, i64), ParseError> {
    let container_requests =
        |c: &Value, field: &str| Resources::from_list(c.pointer("/resources/requests"), field);
    let non_zero = |r: &Resources, c: &Value| {
        let has = |name: &str| c.pointer(&format!("/resources/requests/{name}")).is_some();
        let mut nz = r.clone();
        if !has("cpu") {
            nz.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            nz.memory = DEFAULT_MEMORY_REQUEST;
        }
        nz
    };
    let mut reqs = Resources::default();
    let mut nz_reqs = Resources::default();
    for (i, c) in spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let r = container_requests(c, &format!("spec.containers[{i}].resources.requests"))?;
        nz_reqs.add(&non_zero(&r, c));
        reqs.add(&r);
    }
    let mut init_max = Resources::default();
    let mut nz_init_max = Resources::default();
    let mut sidecars = Resources::default();
    let mut nz_sidecars = Resources::default();
    for (i, c) in spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let r = container_requests(c, &format!("spec.initContainers[{i}].resources.requests"))?;
        let nz = non_zero(&r, c);
        if str_at(c, "restartPolicy") == "Always" {
            reqs.add(&r);
            nz_reqs.add(&nz);
            sidecars.add(&r);
            nz_sidecars.add(&nz);
            init_max.max_with(&sidecars);
            nz_init_max.max_with(&nz_sidecars);
        } else {
            let mut tmp = r;
            tmp.add(&sidecars);
            init_max.max_with(&tmp);
            let mut nz_tmp = nz;
            nz_tmp.add(&nz_sidecars);
            nz_init_max.max_with(&nz_tmp);
        }
    }
    reqs.max_with(&init_max);
    nz_reqs.max_with(&nz_init_max);
    let overhead = Resources::from_list(spec.get("overhead"), "spec.overhead")?;
    reqs.add(&overhead);
    nz_reqs.add(&overhead);
    Ok((reqs, nz_reqs.milli_cpu, nz_reqs.memory))
}

/// A node as the scheduler sees it, without the pods on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Taints, in the node's order.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// `status.allocatable` without `pods`.
    pub allocatable: Resources,
    /// `status.allocatable.pods`.
    pub allowed_pods: i64,
}

impl NodeSpec {
    /// Reads a Node object as stored by the API server.
    pub fn from_api(node: &Value) -> Result<Self, ParseError> {
        let alloc = node.pointer("/status/allocatable");
        let allowed_pods = match alloc.and_then(|a| a.get("pods")) {
            Some(q) => {
                let text = q
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| q.to_string());
                quantity::value(&text).ok_or(ParseError::Quantity {
                    field: "status.allocatable[pods]".into(),
                    value: text,
                })?
            }
            None => 0,
        };
        Ok(NodeSpec {
            name: node
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            labels: objects::selectors::labels_of(node),
            taints: node
                .pointer("/spec/taints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|t| Taint {
                    key: str_at(t, "key").to_owned(),
                    value: str_at(t, "value").to_owned(),
                    effect: str_at(t, "effect").to_owned(),
                })
                .collect(),
            unschedulable: node
                .pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            allocatable: Resources::from_list(alloc, "status.allocatable")?,
            allowed_pods,
        })
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn strings_at(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
