//! ResourceQuota: charges a create (or an update that grows usage) against the namespace's
//! ResourceQuotas and refuses it when a quota's hard limit would be exceeded, with upstream's
//! messages (`exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`, `failed quota:
//! q: must specify limits.cpu for: c`). As upstream's admission, it reads and charges
//! `status.hard` and `status.used`; the new `status.used` of each charged quota is returned for the
//! caller to write (with the quota's resourceVersion as precondition, retrying on conflict).
//!
//! [`usage`] measures one object and [`usage_of`] recomputes a quota's `status.used` from every
//! object in its namespace, for the quota controller.
//!
//! Not implemented: the `CrossNamespacePodAffinity` scope, the API server's `limitedResources`
//! configuration, and the grace period of terminating pods (a pod counts until it is terminal).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::limit_ranger::pod_total;
use crate::quantity::Quantity;
use crate::{AdmissionRequest, Denial, Operation, Resource, Verdict, items};

/// Resource names and quantities.
pub type ResourceList = BTreeMap<String, Quantity>;

fn resource_list(v: &Value) -> ResourceList {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), q.as_str()?.parse().ok()?)))
        .collect()
}

/// A resource list as JSON (canonical quantity text).
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
            .collect::<Map<_, _>>(),
    )
}

fn one() -> Quantity {
    Quantity::from_int(1)
}

/// The compute resources a pod's containers must each set when a quota limits them.
const VALIDATION_SET: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// Compute usage of requests and limits (upstream's `podComputeUsageHelper`).
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut r = ResourceList::new();
    r.insert("pods".to_owned(), one());
    for res in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(res) {
            r.insert(res.to_owned(), *q);
            r.insert(format!("requests.{res}"), *q);
        }
        if let Some(q) = limits.get(res) {
            r.insert(format!("limits.{res}"), *q);
        }
    }
    for (res, q) in requests {
        if res.starts_with("hugepages-") {
            r.insert(res.clone(), *q);
            r.insert(format!("requests.{res}"), *q);
        }
        if is_extended(res) {
            r.insert(format!("requests.{res}"), *q);
        }
    }
    r
}

/// Extended resources: domain-qualified names outside `kubernetes.io`, not `requests.` prefixed.
fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.starts_with("requests.") && !name.contains("kubernetes.io/")
}

fn pod_is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// The resource name a generic object counts under: `count/secrets`, `count/deployments.apps`.
fn count_name(resource: &Resource) -> String {
    if resource.group.is_empty() {
        format!("count/{}", resource.resource)
    } else {
        format!("count/{}.{}", resource.resource, resource.group)
    }
}

/// The usage one object charges (upstream's evaluators' `Usage`).
pub fn usage(resource: &Resource, obj: &Value) -> ResourceList {
    let mut r = ResourceList::new();
    r.insert(count_name(resource), one());
    match (resource.group.as_str(), resource.resource.as_str()) {
        ("", "pods") if !pod_is_terminal(obj) => {
            r.extend(compute_usage(
                &pod_total(obj, "requests"),
                &pod_total(obj, "limits"),
            ));
        }
        ("", "services") => {
            r.insert("services".to_owned(), one());
            let ports = items(&obj["spec"]["ports"]);
            match obj["spec"]["type"].as_str() {
                Some("NodePort") => {
                    r.insert(
                        "services.nodeports".to_owned(),
                        Quantity::from_int(ports.len() as i64),
                    );
                }
                Some("LoadBalancer") => {
                    let n = if obj["spec"]["allocateLoadBalancerNodePorts"].as_bool() == Some(false)
                    {
                        ports
                            .iter()
                            .filter(|p| p["nodePort"].as_i64().unwrap_or(0) != 0)
                            .count()
                    } else {
                        ports.len()
                    };
                    r.insert(
                        "services.nodeports".to_owned(),
                        Quantity::from_int(n as i64),
                    );
                    r.insert("services.loadbalancers".to_owned(), one());
                }
                _ => {}
            }
        }
        ("", "persistentvolumeclaims") => {
            r.insert("persistentvolumeclaims".to_owned(), one());
            let class = obj["spec"]["storageClassName"]
                .as_str()
                .or(
                    obj["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"]
                        .as_str(),
                )
                .unwrap_or_default();
            if !class.is_empty() {
                r.insert(
                    format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
                    one(),
                );
            }
            let requested = resource_list(&obj["spec"]["resources"]["requests"])
                .get("storage")
                .copied();
            let allocated = resource_list(&obj["status"]["allocatedResources"])
                .get("storage")
                .copied();
            let storage = match (requested, allocated) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            if let Some(q) = storage {
                r.insert("requests.storage".to_owned(), q);
                if !class.is_empty() {
                    r.insert(
                        format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                        q,
                    );
                }
            }
        }
        ("", legacy @ ("secrets" | "configmaps" | "replicationcontrollers" | "resourcequotas")) => {
            r.insert(legacy.to_owned(), one());
        }
        _ => {}
    }
    r
}

/// Whether `name`, a resource in a quota's `hard`, is charged by objects of `resource`.
fn matches_resource(resource: &Resource, name: &str) -> bool {
    if name == count_name(resource) {
        return true;
    }
    match (resource.group.as_str(), resource.resource.as_str()) {
        ("", "pods") => {
            matches!(
                name,
                "pods"
                    | "cpu"
                    | "memory"
                    | "ephemeral-storage"
                    | "requests.cpu"
                    | "requests.memory"
                    | "requests.ephemeral-storage"
                    | "limits.cpu"
                    | "limits.memory"
                    | "limits.ephemeral-storage"
            ) || name.starts_with("hugepages-")
                || name.starts_with("requests.hugepages-")
                || name.strip_prefix("requests.").is_some_and(is_extended)
        }
        ("", "services") => matches!(
            name,
            "services" | "services.nodeports" | "services.loadbalancers"
        ),
        ("", "persistentvolumeclaims") => {
            name == "persistentvolumeclaims"
                || name == "requests.storage"
                || name.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
                || name.ends_with(".storageclass.storage.k8s.io/requests.storage")
        }
        ("", legacy @ ("secrets" | "configmaps" | "replicationcontrollers" | "resourcequotas")) => {
            name == legacy
        }
        _ => false,
    }
}

fn best_effort(pod: &Value) -> bool {
    ["initContainers", "containers"].iter().all(|list| {
        items(&pod["spec"][*list]).iter().all(|c| {
            ["requests", "limits"].iter().all(|f| {
                resource_list(&c["resources"][*f])
                    .iter()
                    .all(|(k, q)| !(k == "cpu" || k == "memory") || q.is_zero())
            })
        })
    })
}

fn scope_matches(scope: &str, operator: &str, values: &[&str], pod: &Value) -> bool {
    let terminating = pod["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .is_some_and(|s| s >= 0);
    match scope {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort(pod),
        "NotBestEffort" => !best_effort(pod),
        "PriorityClass" => {
            let pc = pod["spec"]["priorityClassName"]
                .as_str()
                .unwrap_or_default();
            match operator {
                "In" => values.contains(&pc),
                "NotIn" => !values.contains(&pc),
                "Exists" => !pc.is_empty(),
                "DoesNotExist" => pc.is_empty(),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether a quota's scopes select the object (scoped quotas only ever select pods).
fn scopes_match(quota: &Value, resource: &Resource, obj: &Value) -> bool {
    let mut reqs: Vec<(String, String, Vec<&str>)> = items(&quota["spec"]["scopes"])
        .iter()
        .filter_map(|s| Some((s.as_str()?.to_owned(), "Exists".to_owned(), Vec::new())))
        .collect();
    for e in items(&quota["spec"]["scopeSelector"]["matchExpressions"]) {
        reqs.push((
            e["scopeName"].as_str().unwrap_or_default().to_owned(),
            e["operator"].as_str().unwrap_or_default().to_owned(),
            items(&e["values"])
                .iter()
                .filter_map(Value::as_str)
                .collect(),
        ));
    }
    if reqs.is_empty() {
        return true;
    }
    resource.is("", "pods")
        && reqs
            .iter()
            .all(|(s, op, vals)| scope_matches(s, op, vals, obj))
}

/// Recomputes a quota's `status.used` from every object of its namespace (each with its resource):
/// for each resource in `spec.hard`, the sum over the objects the quota selects.
pub fn usage_of(quota: &Value, objects: &[(Resource, Value)]) -> ResourceList {
    let hard: Vec<String> = quota["spec"]["hard"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    let mut used: ResourceList = hard.iter().map(|k| (k.clone(), Quantity::ZERO)).collect();
    for (resource, obj) in objects {
        if !hard.iter().any(|h| matches_resource(resource, h))
            || !scopes_match(quota, resource, obj)
        {
            continue;
        }
        for (k, q) in usage(resource, obj) {
            if let Some(u) = used.get_mut(&k) {
                *u = u.add(&q);
            }
        }
    }
    used
}

/// A quota whose `status.used` the admitted request changed.
#[derive(Clone, Debug, PartialEq)]
pub struct QuotaUpdate {
    /// The quota's name.
    pub name: String,
    /// The quota's resourceVersion read (the precondition of the write).
    pub resource_version: String,
    /// The new `status.used`.
    pub used: ResourceList,
}

fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn mask(list: &ResourceList, names: &BTreeSet<String>) -> ResourceList {
    list.iter()
        .filter(|(k, _)| names.contains(*k))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut r = a.clone();
    for (k, v) in b {
        let sum = r.get(k).map_or(*v, |x| x.add(v));
        r.insert(k.clone(), sum);
    }
    r
}

/// Whether the evaluator for the request's resource charges it: creates of anything, updates of
/// services and claims (they can grow), and pod resizes.
fn handles(req: &AdmissionRequest) -> bool {
    if req.namespace.is_empty() {
        return false;
    }
    let core = req.resource.group.is_empty();
    match (req.operation, req.subresource.as_str()) {
        (Operation::Create, "") => true,
        (Operation::Update, "") => {
            core && matches!(
                req.resource.resource.as_str(),
                "services" | "persistentvolumeclaims"
            )
        }
        (Operation::Update, "resize") => core && req.resource.resource == "pods",
        _ => false,
    }
}

/// Charges the request against `quotas` (the namespace's ResourceQuotas, as stored). Returns the
/// verdict and, when admitted, the quotas whose `status.used` must be written. As upstream, a
/// quota counts only once the quota controller has filled its `status.hard`.
pub fn admit(req: &AdmissionRequest, quotas: &[Value]) -> (Verdict, Vec<QuotaUpdate>) {
    let Some(obj) = req.object.as_ref() else {
        return (Verdict::allow(), Vec::new());
    };
    if quotas.is_empty() || !handles(req) {
        return (Verdict::allow(), Vec::new());
    }
    let deny = |msg: String| (Verdict::deny(Denial::forbidden(req, msg)), Vec::new());
    let mut interesting = Vec::new();
    for q in quotas {
        let hard = resource_list(&q["status"]["hard"]);
        let restricted: BTreeSet<String> = hard
            .keys()
            .filter(|k| matches_resource(&req.resource, k))
            .cloned()
            .collect();
        if restricted.is_empty() || !scopes_match(q, &req.resource, obj) {
            continue;
        }
        let name = q["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if req.resource.is("", "pods")
            && let Some(e) = pod_constraints(&restricted, obj)
        {
            return deny(format!("failed quota: {name}: {e}"));
        }
        let used = resource_list(&q["status"]["used"]);
        if !restricted.iter().all(|k| used.contains_key(k)) {
            let names: Vec<String> = restricted.into_iter().collect();
            return deny(format!(
                "status unknown for quota: {name}, resources: {}",
                names.join(",")
            ));
        }
        interesting.push((name, q, hard, used));
    }
    if interesting.is_empty() {
        return (Verdict::allow(), Vec::new());
    }
    let mut delta = usage(&req.resource, obj);
    let negative: Vec<String> = delta
        .iter()
        .filter(|(_, v)| v.nanos() < 0)
        .map(|(k, _)| k.clone())
        .collect();
    if !negative.is_empty() {
        return deny(format!(
            "quota usage is negative for resource(s): {}",
            negative.join(",")
        ));
    }
    if req.operation == Operation::Update
        && let Some(old) = &req.old_object
        && old["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| !rv.is_empty())
    {
        let prev = usage(&req.resource, old);
        for (k, v) in delta.iter_mut() {
            if let Some(p) = prev.get(k) {
                let d = v.sub(p);
                *v = if d.nanos() < 0 {
                    Quantity::from_nanos(0, v.format())
                } else {
                    d
                };
            }
        }
    }
    delta.retain(|_, v| !v.is_zero());
    if delta.is_empty() {
        return (Verdict::allow(), Vec::new());
    }
    let mut updates = Vec::new();
    for (name, q, hard, used) in interesting {
        let hard_names: BTreeSet<String> = hard.keys().cloned().collect();
        let requested = mask(&delta, &hard_names);
        let new_used = add(&used, &requested);
        let requested_names: BTreeSet<String> = requested.keys().cloned().collect();
        let exceeded: BTreeSet<String> = mask(&new_used, &requested_names)
            .iter()
            .filter(|(k, v)| hard.get(*k).is_some_and(|h| *v > h))
            .map(|(k, _)| k.clone())
            .collect();
        if !exceeded.is_empty() {
            return deny(format!(
                "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                pretty(&mask(&requested, &exceeded)),
                pretty(&mask(&used, &exceeded)),
                pretty(&mask(&hard, &exceeded)),
            ));
        }
        if !requested.is_empty() {
            updates.push(QuotaUpdate {
                name,
                resource_version: q["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                used: new_used,
            });
        }
    }
    (Verdict::allow(), updates)
}

/// Upstream's pod `Constraints`: every container must set the cpu and memory resources a quota
/// limits.
fn pod_constraints(restricted: &BTreeSet<String>, pod: &Value) -> Option<String> {
    let required: BTreeSet<&str> = restricted
        .iter()
        .map(String::as_str)
        .filter(|r| VALIDATION_SET.contains(r))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for list in ["containers", "initContainers"] {
        for c in items(&pod["spec"][list]) {
            let usage = compute_usage(
                &resource_list(&c["resources"]["requests"]),
                &resource_list(&c["resources"]["limits"]),
            );
            for r in &required {
                if !usage.contains_key(*r) {
                    missing
                        .entry(r)
                        .or_default()
                        .insert(c["name"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

/// The quota's status with `used` replaced, ready to write.
pub fn status_with_used(quota: &Value, used: &ResourceList) -> Value {
    let mut status = quota["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    status["hard"] = quota["spec"]["hard"].clone();
    status["used"] = to_json(used);
    status
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn quota(name: &str, hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": name, "resourceVersion": "7"}, "spec": {"hard": hard}, "status": {"hard": hard, "used": used}})
    }

    fn pods() -> Resource {
        Resource::new("", "v1", "pods")
    }

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn admission_cases() {
        let cases: Vec<(Resource, Value, Value, Result<Value, &str>)> = vec![
            (
                pods(),
                pod(json!([{"name": "c"}])),
                quota("q", json!({"pods": "2"}), json!({"pods": "2"})),
                Err(
                    "pods \"p\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2",
                ),
            ),
            (
                pods(),
                pod(json!([{"name": "c"}])),
                quota("q", json!({"pods": "2"}), json!({"pods": "1"})),
                Ok(json!({"pods": "2"})),
            ),
            (
                pods(),
                pod(
                    json!([{"name": "c", "resources": {"requests": {"cpu": "500m"}}}, {"name": "d"}]),
                ),
                quota(
                    "q",
                    json!({"limits.cpu": "2", "requests.cpu": "1"}),
                    json!({"limits.cpu": "0", "requests.cpu": "0"}),
                ),
                Err(
                    "pods \"p\" is forbidden: failed quota: q: must specify limits.cpu for: c,d; requests.cpu for: d",
                ),
            ),
            (
                pods(),
                pod(
                    json!([{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1"}}}]),
                ),
                quota(
                    "q",
                    json!({"requests.cpu": "1", "limits.cpu": "2", "count/pods": "10"}),
                    json!({"requests.cpu": "700m", "limits.cpu": "0", "count/pods": "1"}),
                ),
                Err(
                    "pods \"p\" is forbidden: exceeded quota: q, requested: requests.cpu=500m, used: requests.cpu=700m, limited: requests.cpu=1",
                ),
            ),
            (
                pods(),
                pod(
                    json!([{"name": "c", "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}}]),
                ),
                quota(
                    "q",
                    json!({"requests.cpu": "2", "limits.cpu": "2", "count/pods": "10"}),
                    json!({"requests.cpu": "1", "limits.cpu": "0", "count/pods": "1"}),
                ),
                Ok(json!({"requests.cpu": "1500m", "limits.cpu": "1", "count/pods": "2"})),
            ),
            (
                Resource::new("", "v1", "services"),
                json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}}),
                quota(
                    "q",
                    json!({"services.nodeports": "3"}),
                    json!({"services.nodeports": "2"}),
                ),
                Err(
                    "services \"s\" is forbidden: exceeded quota: q, requested: services.nodeports=2, used: services.nodeports=2, limited: services.nodeports=3",
                ),
            ),
            (
                Resource::new("", "v1", "persistentvolumeclaims"),
                json!({"metadata": {"name": "c"}, "spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "5Gi"}}}}),
                quota(
                    "q",
                    json!({"requests.storage": "10Gi", "fast.storageclass.storage.k8s.io/requests.storage": "4Gi"}),
                    json!({"requests.storage": "0", "fast.storageclass.storage.k8s.io/requests.storage": "0"}),
                ),
                Err(
                    "persistentvolumeclaims \"c\" is forbidden: exceeded quota: q, requested: fast.storageclass.storage.k8s.io/requests.storage=5Gi, used: fast.storageclass.storage.k8s.io/requests.storage=0, limited: fast.storageclass.storage.k8s.io/requests.storage=4Gi",
                ),
            ),
            (
                Resource::new("", "v1", "secrets"),
                json!({"metadata": {"name": "s"}}),
                quota(
                    "q",
                    json!({"secrets": "1", "count/secrets": "5"}),
                    json!({"secrets": "1", "count/secrets": "1"}),
                ),
                Err(
                    "secrets \"s\" is forbidden: exceeded quota: q, requested: secrets=1, used: secrets=1, limited: secrets=1",
                ),
            ),
            (
                Resource::new("apps", "v1", "deployments"),
                json!({"metadata": {"name": "d"}}),
                quota(
                    "q",
                    json!({"count/deployments.apps": "1"}),
                    json!({"count/deployments.apps": "1"}),
                ),
                Err(
                    "deployments.apps \"d\" is forbidden: exceeded quota: q, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1",
                ),
            ),
            (
                pods(),
                pod(json!([{"name": "c"}])),
                json!({"metadata": {"name": "fresh"}, "spec": {"hard": {"pods": "2"}}, "status": {"hard": {"pods": "2"}}}),
                Err("pods \"p\" is forbidden: status unknown for quota: fresh, resources: pods"),
            ),
        ];
        for (resource, obj, q, want) in cases {
            let req = AdmissionRequest::create(resource, "ns", obj.clone());
            let (v, updates) = admit(&req, std::slice::from_ref(&q));
            match want {
                Ok(used) => {
                    assert!(v.allowed(), "{obj}: {:?}", v.denial);
                    assert_eq!(updates.len(), 1);
                    assert_eq!(to_json(&updates[0].used), used, "{obj}");
                    assert_eq!(updates[0].resource_version, "7");
                }
                Err(msg) => assert_eq!(v.denial.map(|d| d.message).as_deref(), Some(msg), "{obj}"),
            }
        }
    }

    #[test]
    fn scopes_and_recount() {
        let q = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "5", "requests.memory": "4Gi"}, "scopes": ["NotBestEffort"]}});
        let objects = vec![
            (
                pods(),
                pod(json!([{"name": "a", "resources": {"requests": {"memory": "1Gi"}}}])),
            ),
            (
                pods(),
                pod(json!([{"name": "b", "resources": {"requests": {"memory": "512Mi"}}}])),
            ),
            (pods(), pod(json!([{"name": "best-effort"}]))),
            (pods(), {
                let mut p =
                    pod(json!([{"name": "done", "resources": {"requests": {"memory": "1Gi"}}}]));
                p["status"] = json!({"phase": "Succeeded"});
                p
            }),
            (
                Resource::new("", "v1", "secrets"),
                json!({"metadata": {"name": "s"}}),
            ),
        ];
        assert_eq!(
            to_json(&usage_of(&q, &objects)),
            json!({"pods": "2", "requests.memory": "1536Mi"})
        );
    }

    #[test]
    fn pod_resize_charges_the_difference() {
        let q = quota(
            "q",
            json!({"requests.cpu": "2"}),
            json!({"requests.cpu": "1500m"}),
        );
        let old = json!({"metadata": {"name": "p", "resourceVersion": "3"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1"}}}]}});
        let mut new = old.clone();
        new["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("2");
        let mut req = AdmissionRequest::update(pods(), "ns", new, old);
        req.subresource = "resize".to_owned();
        let (v, _) = admit(&req, &[q]);
        assert_eq!(
            v.denial.unwrap().message,
            "pods \"p\" is forbidden: exceeded quota: q, requested: requests.cpu=1, used: requests.cpu=1500m, limited: requests.cpu=2"
        );
    }

    #[test]
    fn service_update_charges_only_growth() {
        let q = quota(
            "q",
            json!({"services.loadbalancers": "1"}),
            json!({"services.loadbalancers": "1"}),
        );
        let old = json!({"metadata": {"name": "s", "resourceVersion": "3"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}});
        let mut new = old.clone();
        new["spec"]["ports"] = json!([{"port": 80}, {"port": 81}]);
        let req =
            AdmissionRequest::update(Resource::new("", "v1", "services"), "ns", new, old.clone());
        let (v, updates) = admit(&req, &[q]);
        assert!(v.allowed());
        assert!(updates.is_empty());
    }
}
