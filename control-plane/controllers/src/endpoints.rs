//! The Endpoints controller's core (`pkg/controller/endpoint`): the core/v1 Endpoints of each
//! Service with a selector, from the pods it selects.
//!
//! [`reconcile`] takes a Service, the pods of its namespace and its current Endpoints and
//! returns the write that makes them match: a pod with an IP of the Service's first family is
//! an address, under `addresses` when ready (or when the Service publishes not-ready
//! addresses) and `notReadyAddresses` otherwise; terminal pods and (unless not-ready addresses
//! are published) terminating pods are left out. Each Service port resolves on each pod
//! (a named `targetPort` by the containers' port names, a number as is); addresses offering
//! the same ports share a subset (upstream's `RepackSubsets`). Over 1000 addresses, the
//! Endpoints are truncated (not-ready addresses first, then ready ones, in proportion to each
//! subset) and annotated `endpoints.kubernetes.io/over-capacity: truncated`.
//!
//! Services without a selector or of type ExternalName are someone else's: nothing is planned.
//! A Service that is gone takes its Endpoints with it; that is the loop's delete.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{endpointslice, meta};

/// The most addresses one Endpoints object carries.
pub const MAX_CAPACITY: usize = 1000;
/// The annotation marking truncated Endpoints.
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";
/// The annotation upstream stamps with the time of the change that triggered the write; Berth
/// does not write it and removes it when it rewrites Endpoints.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// The label on the Endpoints of a Service without a cluster IP.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The write one Service's sync asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create these Endpoints.
    Create(Value),
    /// Replace the Endpoints with these (their resourceVersion is the precondition).
    Update(Value),
}

/// One address and whether it is ready, keyed for grouping.
type Addresses = BTreeMap<(String, String), (Value, bool)>;
/// A resolved port's identity: name, number, protocol and application protocol.
type PortKey = (String, i64, String, String);

/// The write that makes `existing` the Endpoints of `service`, if any.
pub fn reconcile(service: &Value, pods: &[Value], existing: Option<&Value>) -> Option<Write> {
    let selector = meta::string_map(service, "/spec/selector");
    if service.pointer("/spec/selector").is_none_or(Value::is_null)
        || meta::str_at(service, "/spec/type") == "ExternalName"
    {
        return None;
    }
    let ns = meta::namespace(service);
    let publish_not_ready = service
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        == Some(true);
    let service_ports: Vec<&Value> = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let cluster_ip = meta::str_at(service, "/spec/clusterIP");
    let headless = cluster_ip.is_empty() || cluster_ip == "None";
    // Each port (the sentinel `None` for a headless Service without ports) with the addresses
    // offering it.
    let mut by_port: BTreeMap<Option<PortKey>, (Option<Value>, Addresses)> = BTreeMap::new();
    for pod in pods {
        let labels = meta::string_map(pod, "/metadata/labels");
        if meta::namespace(pod) != ns
            || !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            || !should_be_in_endpoints(pod, publish_not_ready)
        {
            continue;
        }
        let Some(address) = address(service, pod) else {
            continue;
        };
        let ready = publish_not_ready || meta::is_pod_ready(pod);
        let key = (
            address["ip"].as_str().unwrap_or_default().to_owned(),
            meta::uid(pod).to_owned(),
        );
        let mut add = |port: Option<Value>| {
            let port_key = port.as_ref().map(|p| {
                (
                    p["name"].as_str().unwrap_or_default().to_owned(),
                    p["port"].as_i64().unwrap_or_default(),
                    p["protocol"].as_str().unwrap_or_default().to_owned(),
                    p["appProtocol"].as_str().unwrap_or_default().to_owned(),
                )
            });
            let entry = by_port
                .entry(port_key)
                .or_insert_with(|| (port, BTreeMap::new()));
            let slot = entry
                .1
                .entry(key.clone())
                .or_insert((address.clone(), ready));
            slot.1 |= ready;
        };
        if service_ports.is_empty() {
            if headless {
                add(None);
            }
            continue;
        }
        for sp in &service_ports {
            if let Some(port) = endpoint_port(sp, pod) {
                add(Some(port));
            }
        }
    }
    // Ports offered by exactly the same addresses share a subset.
    let mut groups: Vec<(Vec<Value>, Addresses)> = Vec::new();
    for (_, (port, addrs)) in by_port {
        match groups.iter_mut().find(|(_, a)| *a == addrs) {
            Some((ports, _)) => ports.extend(port),
            None => groups.push((port.into_iter().collect(), addrs)),
        }
    }
    let mut subsets: Vec<(Vec<Value>, Vec<Value>, Vec<Value>)> = groups
        .into_iter()
        .map(|(ports, addrs)| {
            let (ready, not_ready): (Vec<_>, Vec<_>) =
                addrs.into_values().partition(|(_, ready)| *ready);
            (
                ready.into_iter().map(|(a, _)| a).collect(),
                not_ready.into_iter().map(|(a, _)| a).collect(),
                ports,
            )
        })
        .collect();
    subsets.sort_by(|a, b| first_ip(a).cmp(&first_ip(b)));
    let truncated = truncate(&mut subsets);
    let subsets: Vec<Value> = subsets
        .into_iter()
        .filter(|(r, n, _)| !r.is_empty() || !n.is_empty())
        .map(|(ready, not_ready, ports)| {
            let mut s = json!({});
            if !ready.is_empty() {
                s["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                s["notReadyAddresses"] = json!(not_ready);
            }
            if !ports.is_empty() {
                s["ports"] = json!(ports);
            }
            s
        })
        .collect();
    let mut labels = meta::string_map(service, "/metadata/labels");
    if headless {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    let over_capacity = truncated.then_some("truncated");
    if let Some(current) = existing {
        let current_subsets = normalize(current.get("subsets").unwrap_or(&Value::Null));
        let current_over = current
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(OVER_CAPACITY_ANNOTATION))
            .and_then(Value::as_str);
        if current_subsets == subsets
            && meta::string_map(current, "/metadata/labels") == labels
            && current_over == over_capacity
        {
            return None;
        }
        let mut updated = current.clone();
        let mut annotations: serde_json::Map<String, Value> = current
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        annotations.remove(LAST_CHANGE_TRIGGER_TIME);
        annotations.remove(OVER_CAPACITY_ANNOTATION);
        if let Some(v) = over_capacity {
            annotations.insert(OVER_CAPACITY_ANNOTATION.into(), json!(v));
        }
        let m = meta::object_at(&mut updated, "metadata");
        m.insert("labels".into(), json!(labels));
        m.insert("annotations".into(), Value::Object(annotations));
        updated["subsets"] = json!(subsets);
        return Some(Write::Update(updated));
    }
    let mut created = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": meta::name(service), "namespace": ns, "labels": labels},
        "subsets": subsets,
    });
    if let Some(v) = over_capacity {
        created["metadata"]["annotations"] = json!({OVER_CAPACITY_ANNOTATION: v});
    }
    Some(Write::Create(created))
}

fn first_ip(subset: &(Vec<Value>, Vec<Value>, Vec<Value>)) -> (&str, &str) {
    let a = subset.0.first().or(subset.1.first());
    (
        a.and_then(|a| a["ip"].as_str()).unwrap_or_default(),
        a.and_then(|a| a.pointer("/targetRef/uid"))
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
}

/// Upstream's `ShouldPodBeInEndpoints`: not terminal, has an IP, and not terminating unless
/// terminating pods are included.
fn should_be_in_endpoints(pod: &Value, include_terminating: bool) -> bool {
    if matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed") {
        return false;
    }
    let has_ip = !meta::str_at(pod, "/status/podIP").is_empty()
        || pod
            .pointer("/status/podIPs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
    has_ip && (include_terminating || !meta::is_deleting(pod))
}

fn is_v6(ip: &str) -> bool {
    ip.contains(':')
}

/// `podToEndpointAddressForService`: the pod's IP of the Service's (first) family, its node and
/// a reference to it, with its hostname when it names this Service as its subdomain.
fn address(service: &Value, pod: &Value) -> Option<Value> {
    let families = service
        .pointer("/spec/ipFamilies")
        .and_then(Value::as_array);
    let cluster_ip = meta::str_at(service, "/spec/clusterIP");
    let want_v6 = match families.and_then(|f| f.first()).and_then(Value::as_str) {
        Some(f) => f == "IPv6",
        None if !cluster_ip.is_empty() && cluster_ip != "None" => is_v6(cluster_ip),
        None => is_v6(meta::str_at(pod, "/status/podIP")),
    };
    let mut ips: Vec<&str> = pod
        .pointer("/status/podIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|p| p["ip"].as_str()).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        ips.push(meta::str_at(pod, "/status/podIP"));
    }
    let ip = ips
        .into_iter()
        .find(|ip| !ip.is_empty() && is_v6(ip) == want_v6)?;
    let mut a = json!({
        "ip": ip,
        "targetRef": {
            "kind": "Pod", "namespace": meta::namespace(pod), "name": meta::name(pod),
            "uid": meta::uid(pod),
        },
    });
    let node = meta::str_at(pod, "/spec/nodeName");
    if !node.is_empty() {
        a["nodeName"] = json!(node);
    }
    let hostname = meta::str_at(pod, "/spec/hostname");
    if !hostname.is_empty()
        && meta::str_at(pod, "/spec/subdomain") == meta::name(service)
        && meta::namespace(pod) == meta::namespace(service)
    {
        a["hostname"] = json!(hostname);
    }
    Some(a)
}

/// `FindPort` then `endpointPortFromServicePort`: the Service port resolved on the pod.
fn endpoint_port(sp: &Value, pod: &Value) -> Option<Value> {
    let protocol = sp["protocol"].as_str().unwrap_or("TCP");
    let port = match sp.get("targetPort").unwrap_or(&sp["port"]) {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => match name.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => endpointslice::find_named_port(pod, name, protocol),
        },
        _ => sp["port"].as_i64(),
    }?;
    let mut p = json!({"port": port, "protocol": protocol});
    if let Some(name) = sp["name"].as_str().filter(|n| !n.is_empty()) {
        p["name"] = json!(name);
    }
    if let Some(ap) = sp.get("appProtocol").filter(|v| v.is_string()) {
        p["appProtocol"] = ap.clone();
    }
    Some(p)
}

/// Stored subsets in the shape [`reconcile`] builds them, for comparison: only the fields the
/// controller writes, empty ones left out.
fn normalize(subsets: &Value) -> Vec<Value> {
    let addrs = |v: Option<&Value>| -> Vec<Value> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| {
                let mut out = json!({"ip": a["ip"], "targetRef": {
                    "kind": a.pointer("/targetRef/kind").cloned().unwrap_or(Value::Null),
                    "namespace": a.pointer("/targetRef/namespace").cloned().unwrap_or(Value::Null),
                    "name": a.pointer("/targetRef/name").cloned().unwrap_or(Value::Null),
                    "uid": a.pointer("/targetRef/uid").cloned().unwrap_or(Value::Null),
                }});
                if a.get("targetRef").is_none_or(Value::is_null) {
                    out.as_object_mut().map(|o| o.remove("targetRef"));
                }
                for k in ["nodeName", "hostname"] {
                    if let Some(v) = a
                        .get(k)
                        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                    {
                        out[k] = v.clone();
                    }
                }
                out
            })
            .collect()
    };
    subsets
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let mut out = json!({});
            let ready = addrs(s.get("addresses"));
            let not_ready = addrs(s.get("notReadyAddresses"));
            if !ready.is_empty() {
                out["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                out["notReadyAddresses"] = json!(not_ready);
            }
            let ports: Vec<Value> = s["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let mut o = json!({"port": p["port"], "protocol": p["protocol"].as_str().unwrap_or("TCP")});
                    for k in ["name", "appProtocol"] {
                        if let Some(v) = p.get(k).filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
                            o[k] = v.clone();
                        }
                    }
                    o
                })
                .collect();
            if !ports.is_empty() {
                out["ports"] = json!(ports);
            }
            out
        })
        .collect()
}

/// Upstream's `truncateEndpoints`: over [`MAX_CAPACITY`] addresses, drop not-ready addresses
/// first (all of them when the ready ones alone are too many), keeping each subset's share in
/// proportion, rounded up. Returns whether anything was dropped.
fn truncate(subsets: &mut [(Vec<Value>, Vec<Value>, Vec<Value>)]) -> bool {
    let total_ready: usize = subsets.iter().map(|s| s.0.len()).sum();
    let total_not_ready: usize = subsets.iter().map(|s| s.1.len()).sum();
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = total_ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, total_ready)
    } else {
        (MAX_CAPACITY - total_ready, total_not_ready)
    };
    let mut can_add = max;
    for (ready, not_ready, _) in subsets.iter_mut() {
        let n = if truncate_ready {
            ready.len()
        } else {
            not_ready.len()
        };
        let share = (n * max).div_ceil(total).min(can_add);
        if truncate_ready {
            ready.truncate(share);
            not_ready.clear();
            can_add -= ready.len();
        } else {
            not_ready.truncate(share);
            can_add -= not_ready.len();
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(ports: Value) -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                     "ipFamilies": ["IPv4"], "ports": ports},
        })
    }

    fn pod(name: &str, ip: &str, ready: bool, port_name: &str, port: i64) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                         "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [
                {"name": port_name, "containerPort": port, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        })
    }

    fn addr(name: &str, ip: &str) -> Value {
        json!({"ip": ip, "nodeName": "n1", "targetRef": {
            "kind": "Pod", "namespace": "default", "name": name, "uid": format!("uid-{name}")}})
    }

    fn applied(write: Option<Write>) -> Value {
        match write {
            Some(Write::Create(mut v) | Write::Update(mut v)) => {
                v["metadata"]["resourceVersion"] = json!("1");
                v
            }
            None => panic!("expected a write"),
        }
    }

    #[test]
    fn ready_and_not_ready_pods_are_split_and_the_second_sync_writes_nothing() {
        let svc =
            service(json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]));
        let mut done = pod("done", "10.0.0.9", true, "http", 8080);
        done["status"]["phase"] = json!("Succeeded");
        let mut other = pod("other", "10.0.0.8", true, "http", 8080);
        other["metadata"]["labels"]["app"] = json!("db");
        let pods = vec![
            pod("b", "10.0.0.2", true, "http", 8080),
            pod("a", "10.0.0.1", true, "http", 8080),
            pod("c", "10.0.0.3", false, "http", 8080),
            done,
            other,
        ];
        let Some(Write::Create(ep)) = reconcile(&svc, &pods, None) else {
            panic!("expected a create");
        };
        assert_eq!(
            ep,
            json!({
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "web", "namespace": "default", "labels": {"team": "a"}},
                "subsets": [{
                    "addresses": [addr("a", "10.0.0.1"), addr("b", "10.0.0.2")],
                    "notReadyAddresses": [addr("c", "10.0.0.3")],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                }],
            })
        );
        let stored = applied(Some(Write::Create(ep)));
        assert_eq!(reconcile(&svc, &pods, Some(&stored)), None);
    }

    #[test]
    fn pods_resolving_ports_differently_get_their_own_subsets() {
        let svc = service(json!([{"port": 80, "targetPort": "http", "protocol": "TCP"}]));
        let pods = vec![
            pod("a", "10.0.0.1", true, "http", 8080),
            pod("b", "10.0.0.2", true, "http", 9090),
            pod("c", "10.0.0.3", true, "metrics", 9100),
        ];
        let ep = applied(reconcile(&svc, &pods, None));
        assert_eq!(
            ep["subsets"],
            json!([
                {"addresses": [addr("a", "10.0.0.1")], "ports": [{"port": 8080, "protocol": "TCP"}]},
                {"addresses": [addr("b", "10.0.0.2")], "ports": [{"port": 9090, "protocol": "TCP"}]},
            ])
        );
        assert_eq!(reconcile(&svc, &pods, Some(&ep)), None);
    }

    #[test]
    fn a_pod_change_updates_in_place_and_terminating_pods_leave() {
        let svc = service(json!([{"port": 80, "targetPort": 8080, "protocol": "TCP"}]));
        let mut pods = vec![pod("a", "10.0.0.1", true, "http", 8080)];
        let ep = applied(reconcile(&svc, &pods, None));
        pods[0]["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let Some(Write::Update(updated)) = reconcile(&svc, &pods, Some(&ep)) else {
            panic!("expected an update");
        };
        assert_eq!(updated["subsets"], json!([]));
        assert_eq!(updated["metadata"]["resourceVersion"], "1");
        assert_eq!(reconcile(&svc, &pods, Some(&updated)), None);
    }

    #[test]
    fn services_without_selector_or_external_name_are_left_alone() {
        let mut svc = service(json!([]));
        svc["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(reconcile(&svc, &[], None), None);
        let mut svc = service(json!([]));
        svc["spec"]["type"] = json!("ExternalName");
        assert_eq!(reconcile(&svc, &[], None), None);
    }

    #[test]
    fn headless_services_without_ports_list_addresses_and_are_labelled() {
        let mut svc = service(json!([]));
        svc["spec"]["clusterIP"] = json!("None");
        let mut p = pod("a", "10.0.0.1", true, "http", 8080);
        p["spec"]["hostname"] = json!("a");
        p["spec"]["subdomain"] = json!("web");
        let ep = applied(reconcile(&svc, &[p.clone()], None));
        let mut want = addr("a", "10.0.0.1");
        want["hostname"] = json!("a");
        assert_eq!(ep["subsets"], json!([{"addresses": [want]}]));
        assert_eq!(
            ep["metadata"]["labels"],
            json!({"team": "a", "service.kubernetes.io/headless": ""})
        );
        assert_eq!(reconcile(&svc, &[p], Some(&ep)), None);
    }

    #[test]
    fn over_a_thousand_addresses_are_truncated_not_ready_first_and_annotated() {
        let svc = service(json!([{"port": 80, "targetPort": 8080, "protocol": "TCP"}]));
        let pods: Vec<Value> = (0..1100)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.0.{}.{}", i / 250, i % 250),
                    i < 950,
                    "http",
                    8080,
                )
            })
            .collect();
        let ep = applied(reconcile(&svc, &pods, None));
        assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 950);
        assert_eq!(
            ep["subsets"][0]["notReadyAddresses"]
                .as_array()
                .unwrap()
                .len(),
            50
        );
        assert_eq!(
            ep["metadata"]["annotations"][OVER_CAPACITY_ANNOTATION],
            "truncated"
        );
        assert_eq!(reconcile(&svc, &pods, Some(&ep)), None);
        let Some(Write::Update(fewer)) = reconcile(&svc, &pods[..10], Some(&ep)) else {
            panic!("expected an update");
        };
        assert!(
            fewer["metadata"]["annotations"]
                .get(OVER_CAPACITY_ANNOTATION)
                .is_none()
        );
    }
}
