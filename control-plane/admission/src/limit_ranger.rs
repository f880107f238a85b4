//! LimitRanger: applies a namespace's LimitRanges (upstream's `plugin/pkg/admission/limitranger`).
//!
//! On pod create it fills missing container requests and limits from `Container` items'
//! `defaultRequest` and `default` and records what it set in the `kubernetes.io/limit-ranger`
//! annotation; then it checks `min`, `max` and `maxLimitRequestRatio` of `Container`, `Pod` and
//! `PersistentVolumeClaim` items, refusing with upstream's messages. Pod updates are not checked
//! (containers cannot change), nor are subresources.

use serde_json::{Map, Value};

use crate::quantity::Quantity;
use crate::{AdmissionRequest, Denial, Operation, Verdict, items};

/// The annotation listing the defaults the plugin set.
pub const LIMIT_RANGER_ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Upstream's `resource.MaxMilliValue`: above it, values compare in whole units.
const MAX_MILLI_VALUE: i128 = i64::MAX as i128 / 1000;

use crate::resource_quota::ResourceList as Resources;

fn resource_list(v: &Value) -> Resources {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), q.as_str()?.parse().ok()?)))
        .collect()
}

fn limit_items<'a>(ranges: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    ranges
        .iter()
        .flat_map(|lr| items(&lr["spec"]["limits"]).iter())
        .filter(move |l| l["type"].as_str() == Some(kind))
}

fn supported(req: &AdmissionRequest) -> Option<&'static str> {
    if !req.subresource.is_empty() {
        return None;
    }
    match (
        req.resource.group.as_str(),
        req.resource.resource.as_str(),
        req.operation,
    ) {
        ("", "pods", Operation::Create) => Some("pods"),
        ("", "persistentvolumeclaims", Operation::Create | Operation::Update) => Some("pvcs"),
        _ => None,
    }
}

/// The mutating half (upstream's `Admit`): fills missing container requests and limits of a new
/// pod from the `Container` items of `limit_ranges`, the namespace's LimitRanges.
pub fn mutate(req: &AdmissionRequest, limit_ranges: &[Value]) -> Verdict {
    let Some(original) = req.object.as_ref() else {
        return Verdict::allow();
    };
    if supported(req) != Some("pods") || limit_ranges.is_empty() {
        return Verdict::allow();
    }
    let mut pod = original.clone();
    for lr in limit_ranges {
        apply_defaults(&mut pod, lr);
    }
    if pod == *original {
        Verdict::allow()
    } else {
        Verdict::patch(pod)
    }
}

/// The validating half (upstream's `Validate`): checks a new pod or a PersistentVolumeClaim
/// against `min`, `max` and `maxLimitRequestRatio`; the first LimitRange with violations refuses
/// with all of them.
pub fn validate(req: &AdmissionRequest, limit_ranges: &[Value]) -> Verdict {
    let Some(kind) = supported(req) else {
        return Verdict::allow();
    };
    let Some(obj) = req.object.as_ref() else {
        return Verdict::allow();
    };
    for lr in limit_ranges {
        let errs = if kind == "pods" {
            validate_pod(lr, obj)
        } else {
            validate_pvc(lr, obj)
        };
        if !errs.is_empty() {
            let msg = match errs.as_slice() {
                [one] => one.clone(),
                many => format!("[{}]", many.join(", ")),
            };
            return Verdict::deny(Denial::forbidden(req, msg));
        }
    }
    Verdict::allow()
}

/// Both halves in one call: [`mutate`], then [`validate`] on the mutated object.
pub fn admit(req: &AdmissionRequest, limit_ranges: &[Value]) -> Verdict {
    let mutated = mutate(req, limit_ranges);
    let Some(patched) = mutated.patched else {
        return validate(req, limit_ranges);
    };
    let mut next = req.clone();
    next.object = Some(patched.clone());
    let mut v = validate(&next, limit_ranges);
    if v.allowed() {
        v.patched = Some(patched);
    }
    v
}

/// Fills missing requests and limits of every container from one LimitRange's `Container` items.
fn apply_defaults(pod: &mut Value, lr: &Value) {
    let mut requests = Map::new();
    let mut limits = Map::new();
    for l in limit_items(std::slice::from_ref(lr), "Container") {
        for (src, dst) in [("defaultRequest", &mut requests), ("default", &mut limits)] {
            if let Some(m) = l[src].as_object() {
                for (k, v) in m {
                    dst.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return;
    }
    let mut notes: Vec<String> = Vec::new();
    for (list, prefix) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(containers) = pod["spec"][list].as_array_mut() else {
            continue;
        };
        for c in containers {
            let cname = c["name"].as_str().unwrap_or_default().to_owned();
            let mut set = |field: &str, defaults: &Map<String, Value>| -> Vec<String> {
                let mut set_names = Vec::new();
                for (k, v) in defaults {
                    let res = &mut c["resources"][field];
                    if res.get(k).is_none() {
                        if !res.is_object() {
                            *res = Value::Object(Map::new());
                        }
                        res[k] = v.clone();
                        set_names.push(k.clone());
                    }
                }
                set_names.sort();
                set_names
            };
            let set_limits = set("limits", &limits);
            let set_requests = set("requests", &requests);
            if !set_requests.is_empty() {
                notes.push(format!(
                    "{} request for {prefix} {cname}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                notes.push(format!(
                    "{} limit for {prefix} {cname}",
                    set_limits.join(", ")
                ));
            }
        }
    }
    if !notes.is_empty() {
        let meta = &mut pod["metadata"];
        if !meta["annotations"].is_object() {
            meta["annotations"] = Value::Object(Map::new());
        }
        meta["annotations"][LIMIT_RANGER_ANNOTATION] =
            Value::String(format!("LimitRanger plugin set: {}", notes.join("; ")));
    }
}

/// Request, limit and enforced values as upstream compares them: in milli-units unless one is too
/// large, then in units.
fn compared(
    req: Option<&Quantity>,
    lim: Option<&Quantity>,
    enforced: &Quantity,
) -> (i128, i128, i128) {
    let zero = Quantity::ZERO;
    let (r, l) = (req.unwrap_or(&zero), lim.unwrap_or(&zero));
    if r.value() <= MAX_MILLI_VALUE
        && l.value() <= MAX_MILLI_VALUE
        && enforced.value() <= MAX_MILLI_VALUE
    {
        (r.milli_value(), l.milli_value(), enforced.milli_value())
    } else {
        (r.value(), l.value(), enforced.value())
    }
}

fn min_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    requests: &Resources,
    limits: &Resources,
) -> Option<String> {
    let (req, lim) = (requests.get(res), limits.get(res));
    let (r, l, e) = compared(req, lim, enforced);
    let Some(req) = req else {
        return Some(format!(
            "minimum {res} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    if r < e {
        return Some(format!(
            "minimum {res} usage per {kind} is {enforced}, but request is {req}"
        ));
    }
    match lim {
        Some(lim) if l < e => Some(format!(
            "minimum {res} usage per {kind} is {enforced}, but limit is {lim}"
        )),
        _ => None,
    }
}

fn max_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    requests: &Resources,
    limits: &Resources,
) -> Option<String> {
    let (req, lim) = (requests.get(res), limits.get(res));
    let (r, l, e) = compared(req, lim, enforced);
    let Some(lim) = lim else {
        return Some(format!(
            "maximum {res} usage per {kind} is {enforced}.  No limit is specified"
        ));
    };
    if l > e {
        return Some(format!(
            "maximum {res} usage per {kind} is {enforced}, but limit is {lim}"
        ));
    }
    match req {
        Some(req) if r > e => Some(format!(
            "maximum {res} usage per {kind} is {enforced}, but request is {req}"
        )),
        _ => None,
    }
}

fn max_request_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    requests: &Resources,
) -> Option<String> {
    let req = requests.get(res);
    let (r, _, e) = compared(req, None, enforced);
    let Some(req) = req else {
        return Some(format!(
            "maximum {res} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    (r > e).then(|| format!("maximum {res} usage per {kind} is {enforced}, but request is {req}"))
}

fn ratio_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    requests: &Resources,
    limits: &Resources,
) -> Option<String> {
    let (req, lim) = (requests.get(res), limits.get(res));
    let (r, l, _) = compared(req, lim, enforced);
    if req.is_none() || r == 0 {
        return Some(format!(
            "{res} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
        ));
    }
    if lim.is_none() || l == 0 {
        return Some(format!(
            "{res} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
        ));
    }
    let display = l as f64 / r as f64;
    let (observed, max) = if enforced.value() <= MAX_MILLI_VALUE {
        (display * 1000.0, enforced.milli_value() as f64)
    } else {
        (display, enforced.value() as f64)
    };
    (observed > max).then(|| {
        format!("{res} max limit to request ratio per {kind} is {enforced}, but provided ratio is {display:.6}")
    })
}

fn check(
    kind: &str,
    item: &Value,
    requests: &Resources,
    limits: &Resources,
    errs: &mut Vec<String>,
) {
    for (res, q) in resource_list(&item["min"]) {
        errs.extend(min_constraint(kind, &res, &q, requests, limits));
    }
    for (res, q) in resource_list(&item["max"]) {
        errs.extend(max_constraint(kind, &res, &q, requests, limits));
    }
    for (res, q) in resource_list(&item["maxLimitRequestRatio"]) {
        errs.extend(ratio_constraint(kind, &res, &q, requests, limits));
    }
}

fn validate_pod(lr: &Value, pod: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    for item in items(&lr["spec"]["limits"]) {
        match item["type"].as_str() {
            Some("Container") => {
                for list in ["containers", "initContainers"] {
                    for c in items(&pod["spec"][list]) {
                        let requests = resource_list(&c["resources"]["requests"]);
                        let limits = resource_list(&c["resources"]["limits"]);
                        check("Container", item, &requests, &limits, &mut errs);
                    }
                }
            }
            Some("Pod") => {
                let requests = pod_total(pod, "requests");
                let limits = pod_total(pod, "limits");
                check("Pod", item, &requests, &limits, &mut errs);
            }
            _ => {}
        }
    }
    errs
}

fn add_into(total: &mut Resources, add: &Resources) {
    for (k, v) in add {
        let sum = total.get(k).map_or(*v, |t| t.add(v));
        total.insert(k.clone(), sum);
    }
}

fn max_into(total: &mut Resources, other: &Resources) {
    for (k, v) in other {
        if total.get(k).is_none_or(|t| v > t) {
            total.insert(k.clone(), *v);
        }
    }
}

/// A pod's effective requests or limits (upstream's `PodRequests`/`PodLimits`): the containers'
/// sum with sidecars, or the largest init container step if more, plus the pod overhead.
pub fn pod_total(pod: &Value, field: &str) -> Resources {
    let mut total = Resources::new();
    for c in items(&pod["spec"]["containers"]) {
        add_into(&mut total, &resource_list(&c["resources"][field]));
    }
    let mut sidecars = Resources::new();
    let mut init_max = Resources::new();
    for c in items(&pod["spec"]["initContainers"]) {
        let own = resource_list(&c["resources"][field]);
        let step = if c["restartPolicy"].as_str() == Some("Always") {
            add_into(&mut total, &own);
            add_into(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut step = own;
            add_into(&mut step, &sidecars);
            step
        };
        max_into(&mut init_max, &step);
    }
    max_into(&mut total, &init_max);
    add_into(&mut total, &resource_list(&pod["spec"]["overhead"]));
    total
}

fn validate_pvc(lr: &Value, pvc: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let requests = resource_list(&pvc["spec"]["resources"]["requests"]);
    for item in limit_items(std::slice::from_ref(lr), "PersistentVolumeClaim") {
        for (res, q) in resource_list(&item["min"]) {
            errs.extend(min_constraint(
                "PersistentVolumeClaim",
                &res,
                &q,
                &requests,
                &Resources::new(),
            ));
        }
        for (res, q) in resource_list(&item["max"]) {
            errs.extend(max_request_constraint(
                "PersistentVolumeClaim",
                &res,
                &q,
                &requests,
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Resource;

    fn lr(limits: Value) -> Value {
        json!({"metadata": {"name": "lr"}, "spec": {"limits": limits}})
    }

    fn pod(containers: Value) -> AdmissionRequest {
        AdmissionRequest::create(
            Resource::new("", "v1", "pods"),
            "ns",
            json!({"metadata": {"name": "p"}, "spec": {"containers": containers}}),
        )
    }

    #[test]
    fn defaults_and_annotation() {
        let ranges = [lr(json!([{"type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]))];
        let mut req = pod(
            json!([{"name": "a"}, {"name": "b", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}]),
        );
        req.object.as_mut().unwrap()["spec"]["initContainers"] = json!([{"name": "i"}]);
        let p = admit(&req, &ranges).patched.expect("defaults");
        assert_eq!(
            p["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}})
        );
        assert_eq!(
            p["spec"]["containers"][1]["resources"],
            json!({"limits": {"cpu": "1", "memory": "256Mi"}, "requests": {"cpu": "1", "memory": "128Mi"}})
        );
        assert_eq!(
            p["metadata"]["annotations"][LIMIT_RANGER_ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for container a; \
             memory request for container b; memory limit for container b; \
             cpu, memory request for init container i; cpu, memory limit for init container i"
        );
    }

    #[test]
    fn constraints() {
        let cases: Vec<(Value, Value, &str)> = vec![
            (
                json!([{"type": "Container", "max": {"cpu": "1"}}]),
                json!([{"name": "a", "resources": {"limits": {"cpu": "2"}, "requests": {"cpu": "500m"}}}]),
                "pods \"p\" is forbidden: maximum cpu usage per Container is 1, but limit is 2",
            ),
            (
                json!([{"type": "Container", "max": {"cpu": "1"}}]),
                json!([{"name": "a"}]),
                "pods \"p\" is forbidden: maximum cpu usage per Container is 1.  No limit is specified",
            ),
            (
                json!([{"type": "Container", "min": {"memory": "1Gi"}}]),
                json!([{"name": "a", "resources": {"requests": {"memory": "512Mi"}}}]),
                "pods \"p\" is forbidden: minimum memory usage per Container is 1Gi, but request is 512Mi",
            ),
            (
                json!([{"type": "Container", "min": {"memory": "1Gi"}}]),
                json!([{"name": "a"}]),
                "pods \"p\" is forbidden: minimum memory usage per Container is 1Gi.  No request is specified",
            ),
            (
                json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]),
                json!([{"name": "a", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "250m"}}}]),
                "pods \"p\" is forbidden: cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000",
            ),
            (
                json!([{"type": "Pod", "max": {"cpu": "1"}}]),
                json!([{"name": "a", "resources": {"limits": {"cpu": "600m"}}}, {"name": "b", "resources": {"limits": {"cpu": "600m"}}}]),
                "pods \"p\" is forbidden: maximum cpu usage per Pod is 1, but limit is 1200m",
            ),
            (
                json!([{"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}}]),
                json!([{"name": "a", "resources": {"limits": {"cpu": "2", "memory": "2Gi"}}}]),
                "pods \"p\" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, maximum memory usage per Container is 1Gi, but limit is 2Gi]",
            ),
        ];
        for (limits, containers, want) in cases {
            let v = admit(&pod(containers.clone()), &[lr(limits)]);
            assert_eq!(
                v.denial.map(|d| d.message).as_deref(),
                Some(want),
                "{containers}"
            );
        }
    }

    #[test]
    fn pvc_bounds() {
        let ranges = [lr(
            json!([{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]),
        )];
        let pvc = |size: &str| {
            AdmissionRequest::create(
                Resource::new("", "v1", "persistentvolumeclaims"),
                "ns",
                json!({"metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": size}}}}),
            )
        };
        assert!(admit(&pvc("5Gi"), &ranges).allowed());
        assert_eq!(
            admit(&pvc("20Gi"), &ranges).denial.unwrap().message,
            "persistentvolumeclaims \"c\" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"
        );
        assert_eq!(
            admit(&pvc("500Mi"), &ranges).denial.unwrap().message,
            "persistentvolumeclaims \"c\" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"
        );
    }
}
