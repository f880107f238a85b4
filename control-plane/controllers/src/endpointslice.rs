//! The EndpointSlice controller's reconcile core (`pkg/controller/endpointslice` and the
//! `endpointslice` staging reconciler): one Service's selected pods as endpoints, grouped by
//! resolved ports and address type into slices of at most [`MAX_ENDPOINTS_PER_SLICE`].

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::meta;

/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// The label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The label marking slices of headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The writes one Service sync asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Slices to create (with `generateName`), in order.
    pub create: Vec<Value>,
    /// Slices to replace, each as it should be stored.
    pub update: Vec<Value>,
    /// Names of slices to delete.
    pub delete: Vec<String>,
}

impl Plan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// An endpoint's identity within a port mapping, as upstream's `hashEndpoint` sees it.
type EndpointKey = (String, String, Vec<String>, String);

fn endpoint_key(ep: &Value) -> EndpointKey {
    let mut addresses: Vec<String> = ep["addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    addresses.sort();
    (
        ep["targetRef"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        ep["targetRef"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        addresses,
        ep["hostname"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A port mapping's identity: the ports in canonical order (upstream hashes them sorted).
fn ports_key(ports: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = ports
        .iter()
        .map(|p| {
            let mut s = String::new();
            meta::canonical_json(p, &mut s);
            s
        })
        .collect();
    keys.sort();
    keys
}

/// Reconciles one Service's EndpointSlices against the pods of its namespace. Services without a
/// selector, of type ExternalName or being deleted are left alone (their slices, if any, are
/// someone else's or the garbage collector's). `slices` may hold any slices of the namespace;
/// only those labelled as this controller's for this Service are considered.
pub fn reconcile(service: &Value, pods: &[Value], slices: &[Value]) -> Plan {
    let selector = meta::string_map(service, "/spec/selector");
    if selector.is_empty()
        || meta::str_at(service, "/spec/type") == "ExternalName"
        || meta::is_deleting(service)
    {
        return Plan::default();
    }
    let name = meta::name(service);
    let mine: Vec<&Value> = slices
        .iter()
        .filter(|s| {
            let labels = meta::string_map(s, "/metadata/labels");
            labels.get(SERVICE_NAME_LABEL).map(String::as_str) == Some(name)
                && labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(CONTROLLER_NAME)
                && meta::namespace(s) == meta::namespace(service)
        })
        .collect();
    let families: Vec<String> = service
        .pointer("/spec/ipFamilies")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or_else(|| vec!["IPv4".to_owned()]);
    let selected: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            let labels = meta::string_map(p, "/metadata/labels");
            meta::namespace(p) == meta::namespace(service)
                && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .collect();
    let mut plan = Plan::default();
    for s in &mine {
        let t = meta::str_at(s, "/addressType");
        if !families.iter().any(|f| f == t) {
            plan.delete.push(meta::name(s).to_owned());
        }
    }
    for family in &families {
        let existing: Vec<&Value> = mine
            .iter()
            .copied()
            .filter(|s| meta::str_at(s, "/addressType") == family)
            .collect();
        reconcile_family(service, family, &selected, &existing, &mut plan);
    }
    plan
}

/// The endpoints wanted for one address type, grouped by their resolved ports.
type Desired = BTreeMap<Vec<String>, (Vec<Value>, BTreeMap<EndpointKey, Value>)>;

fn reconcile_family(
    service: &Value,
    family: &str,
    pods: &[&Value],
    existing: &[&Value],
    plan: &mut Plan,
) {
    let publish_not_ready = service
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        == Some(true);
    let mut desired: Desired = BTreeMap::new();
    for pod in pods {
        if matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed") {
            continue;
        }
        let ep = endpoint(pod, service, family, publish_not_ready);
        if ep["addresses"].as_array().is_none_or(Vec::is_empty) {
            continue;
        }
        let ports = endpoint_ports(service, pod);
        desired
            .entry(ports_key(&ports))
            .or_insert_with(|| (ports, BTreeMap::new()))
            .1
            .insert(endpoint_key(&ep), ep);
    }
    let labels = slice_labels(service);
    let mut by_ports: BTreeMap<Vec<String>, Vec<&Value>> = BTreeMap::new();
    for s in existing {
        let ports = s
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        by_ports.entry(ports_key(&ports)).or_default().push(s);
    }
    let mut to_delete: Vec<&Value> = Vec::new();
    let mut to_update: Vec<Value> = Vec::new();
    let mut to_create: Vec<Value> = Vec::new();
    for (key, slices) in &by_ports {
        if !desired.contains_key(key) {
            to_delete.extend(slices.iter().copied());
        }
    }
    for (key, (ports, mut want)) in desired {
        let slices = by_ports.get(&key).cloned().unwrap_or_default();
        let mut updated: Vec<Value> = Vec::new();
        let mut unchanged: Vec<&Value> = Vec::new();
        // 1. Keep wanted endpoints where they are, refreshing changed ones; drop the rest.
        for s in slices {
            let mut kept = Vec::new();
            let mut changed = false;
            let eps = s["endpoints"].as_array().cloned().unwrap_or_default();
            for ep in &eps {
                if let Some(w) = want.remove(&endpoint_key(ep)) {
                    changed |= w != *ep;
                    kept.push(w);
                }
            }
            let labels_changed = meta::string_map(s, "/metadata/labels") != labels;
            if changed || kept.len() != eps.len() {
                if kept.is_empty() {
                    to_delete.push(s);
                } else {
                    let mut s = s.clone();
                    s["endpoints"] = json!(kept);
                    s["metadata"]["labels"] = json!(labels);
                    updated.push(s);
                }
            } else if labels_changed {
                let mut s = s.clone();
                s["metadata"]["labels"] = json!(labels);
                updated.push(s);
            } else {
                unchanged.push(s);
            }
        }
        let mut remaining: Vec<Value> = want.into_values().collect();
        remaining.reverse();
        // 2. Fill the slices being updated anyway, fullest first.
        updated.sort_by_key(|s| std::cmp::Reverse(len(s)));
        for s in &mut updated {
            fill(s, &mut remaining);
        }
        // 3. Fit what is left into the fullest unchanged slice with room, else new slices.
        while !remaining.is_empty() {
            let target = (remaining.len() < MAX_ENDPOINTS_PER_SLICE)
                .then(|| {
                    unchanged
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| len(s) + remaining.len() <= MAX_ENDPOINTS_PER_SLICE)
                        .max_by_key(|(i, s)| (len(s), std::cmp::Reverse(*i)))
                        .map(|(i, _)| i)
                })
                .flatten();
            match target {
                Some(i) => {
                    let mut s = unchanged.remove(i).clone();
                    fill(&mut s, &mut remaining);
                    updated.push(s);
                }
                None => {
                    let mut s = new_slice(service, family, &ports, &labels);
                    fill(&mut s, &mut remaining);
                    to_create.push(s);
                }
            }
        }
        to_update.extend(updated);
    }
    // With no slice left, a placeholder without endpoints or ports stands for the Service.
    if existing.len() == to_delete.len() && to_create.is_empty() {
        let placeholder = new_slice(service, family, &[], &labels);
        let is_placeholder = |s: &Value| {
            s["endpoints"].as_array().is_none_or(Vec::is_empty)
                && s.get("ports")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
                && meta::string_map(s, "/metadata/labels") == labels
                && s.pointer("/metadata/ownerReferences")
                    == placeholder.pointer("/metadata/ownerReferences")
        };
        if to_delete.len() == 1 && is_placeholder(to_delete[0]) {
            to_delete.clear();
        } else {
            to_create.push(placeholder);
        }
    }
    // Turn creations into updates of slices that would be deleted (`finalize`).
    let owner_uid = meta::uid(service);
    let mut i = 0;
    while i < to_delete.len() && !to_create.is_empty() {
        let old = to_delete[i];
        let owned = meta::controller_ref(old).and_then(|r| r["uid"].as_str()) == Some(owner_uid);
        if owned && meta::str_at(old, "/addressType") == family {
            let mut s = to_create.pop().expect("checked non-empty");
            let m = meta::object_at(&mut s, "metadata");
            m.remove("generateName");
            m.insert("name".into(), json!(meta::name(old)));
            to_update.push(s);
            to_delete.remove(i);
        } else {
            i += 1;
        }
    }
    plan.create.extend(to_create);
    plan.update.extend(to_update);
    plan.delete
        .extend(to_delete.iter().map(|s| meta::name(s).to_owned()));
}

fn len(slice: &Value) -> usize {
    slice["endpoints"].as_array().map_or(0, Vec::len)
}

/// Moves endpoints from the end of `remaining` into `slice` until it is full.
fn fill(slice: &mut Value, remaining: &mut Vec<Value>) {
    if !slice["endpoints"].is_array() {
        slice["endpoints"] = json!([]);
    }
    let eps = slice["endpoints"]
        .as_array_mut()
        .expect("endpoints is an array");
    while eps.len() < MAX_ENDPOINTS_PER_SLICE {
        match remaining.pop() {
            Some(ep) => eps.push(ep),
            None => break,
        }
    }
}

/// The labels of the Service's slices (`setEndpointSliceLabels`): the Service's own labels, the
/// headless marker when it has no cluster IP, and the two reserved labels.
fn slice_labels(service: &Value) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = meta::string_map(service, "/metadata/labels")
        .into_iter()
        .filter(|(k, _)| {
            ![SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL].contains(&k.as_str())
        })
        .collect();
    let cluster_ip = meta::str_at(service, "/spec/clusterIP");
    if cluster_ip.is_empty() || cluster_ip == "None" {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(SERVICE_NAME_LABEL.into(), meta::name(service).to_owned());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    labels
}

fn new_slice(
    service: &Value,
    family: &str,
    ports: &[Value],
    labels: &BTreeMap<String, String>,
) -> Value {
    let mut s = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": format!("{}-", meta::name(service)),
            "namespace": meta::namespace(service),
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Service", "name": meta::name(service),
                "uid": meta::uid(service), "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "addressType": family,
        "endpoints": [],
    });
    if !ports.is_empty() {
        s["ports"] = json!(ports);
    }
    s
}

/// `podToEndpoint`: addresses of the family, the ready/serving/terminating conditions, the
/// pod reference, node name and (for `hostname` + matching `subdomain`) the hostname.
fn endpoint(pod: &Value, service: &Value, family: &str, publish_not_ready: bool) -> Value {
    let mut ips: Vec<&str> = pod
        .pointer("/status/podIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|p| p["ip"].as_str()).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        let ip = meta::str_at(pod, "/status/podIP");
        if !ip.is_empty() {
            ips.push(ip);
        }
    }
    let want_v6 = family == "IPv6";
    let addresses: Vec<&str> = ips
        .into_iter()
        .filter(|ip| ip.contains(':') == want_v6)
        .collect();
    let serving = meta::is_pod_ready(pod);
    let terminating = meta::is_deleting(pod);
    // A terminating pod is never ready unless not-ready addresses are published anyway.
    let ready = publish_not_ready || (serving && !terminating);
    let mut ep = json!({
        "addresses": addresses,
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": {
            "kind": "Pod", "namespace": meta::namespace(pod), "name": meta::name(pod),
            "uid": meta::uid(pod),
        },
    });
    let node = meta::str_at(pod, "/spec/nodeName");
    if !node.is_empty() {
        ep["nodeName"] = json!(node);
    }
    let hostname = meta::str_at(pod, "/spec/hostname");
    if !hostname.is_empty()
        && meta::str_at(pod, "/spec/subdomain") == meta::name(service)
        && meta::namespace(pod) == meta::namespace(service)
    {
        ep["hostname"] = json!(hostname);
    }
    ep
}

/// `getEndpointPorts`: each Service port whose `targetPort` resolves on the pod; a named target
/// port is looked up among the pod's containers (and restartable init containers) by name and
/// protocol, a number is taken as is.
fn endpoint_ports(service: &Value, pod: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for sp in service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let protocol = sp["protocol"].as_str().unwrap_or("TCP");
        let port = match sp.get("targetPort").unwrap_or(&sp["port"]) {
            Value::Number(n) => n.as_i64(),
            Value::String(name) => match name.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => find_named_port(pod, name, protocol),
            },
            _ => sp["port"].as_i64(),
        };
        let Some(port) = port else { continue };
        let mut p = json!({
            "name": sp["name"].as_str().unwrap_or_default(),
            "port": port,
            "protocol": protocol,
        });
        if let Some(ap) = sp.get("appProtocol").filter(|v| v.is_string()) {
            p["appProtocol"] = ap.clone();
        }
        out.push(p);
    }
    out
}

pub(crate) fn find_named_port(pod: &Value, name: &str, protocol: &str) -> Option<i64> {
    let sidecars = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c["restartPolicy"] == "Always");
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(sidecars)
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"] == name && p["protocol"].as_str().unwrap_or("TCP") == protocol)
        .and_then(|p| p["containerPort"].as_i64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_key_ignores_order() {
        let a = json!({"name": "a", "port": 1});
        let b = json!({"name": "b", "port": 2});
        assert_eq!(ports_key(&[a.clone(), b.clone()]), ports_key(&[b, a]));
    }
}
