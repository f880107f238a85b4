//! DefaultTolerationSeconds: pods that do not tolerate the `node.kubernetes.io/not-ready` and
//! `node.kubernetes.io/unreachable` NoExecute taints get tolerations for them with 300 seconds, so
//! they are evicted five minutes after their node fails (upstream's
//! `plugin/pkg/admission/defaulttolerationseconds`).

use serde_json::{Value, json};

use crate::{AdmissionRequest, Operation, Verdict, items};

/// The taint on a node whose Ready condition is false.
pub const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint on a node whose Ready condition is unknown.
pub const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Upstream's default for both tolerations (`--default-not-ready-toleration-seconds`).
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Adds the missing tolerations to a pod on create and update, with `not_ready_seconds` and
/// `unreachable_seconds` (both [`DEFAULT_TOLERATION_SECONDS`] unless configured).
pub fn admit(req: &AdmissionRequest, not_ready_seconds: i64, unreachable_seconds: i64) -> Verdict {
    if !req.addresses("", "pods") || !matches!(req.operation, Operation::Create | Operation::Update)
    {
        return Verdict::allow();
    }
    let Some(pod) = req.object.as_ref() else {
        return Verdict::allow();
    };
    let tolerates = |taint: &str| {
        items(&pod["spec"]["tolerations"]).iter().any(|t| {
            let key = t["key"].as_str().unwrap_or_default();
            let effect = t["effect"].as_str().unwrap_or_default();
            (key == taint || key.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        })
    };
    let mut added: Vec<Value> = Vec::new();
    for (taint, seconds) in [
        (TAINT_NODE_NOT_READY, not_ready_seconds),
        (TAINT_NODE_UNREACHABLE, unreachable_seconds),
    ] {
        if !tolerates(taint) {
            added.push(json!({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}));
        }
    }
    if added.is_empty() {
        return Verdict::allow();
    }
    let mut pod = pod.clone();
    match pod["spec"]["tolerations"].as_array_mut() {
        Some(t) => t.extend(added),
        None => pod["spec"]["tolerations"] = Value::Array(added),
    }
    Verdict::patch(pod)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Resource;

    #[test]
    fn adds_only_missing_tolerations() {
        let nr = json!({"key": TAINT_NODE_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300});
        let un = json!({"key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300});
        let cases = [
            (json!(null), Some(json!([nr, un]))),
            (
                json!([{"key": TAINT_NODE_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]),
                Some(
                    json!([{"key": TAINT_NODE_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}, un]),
                ),
            ),
            (json!([{"operator": "Exists"}]), None),
            (
                json!([{"key": TAINT_NODE_UNREACHABLE, "operator": "Exists"}]),
                Some(json!([{"key": TAINT_NODE_UNREACHABLE, "operator": "Exists"}, nr])),
            ),
            (
                json!([{"key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}]),
                Some(
                    json!([{"key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, nr, un]),
                ),
            ),
        ];
        for (tolerations, want) in cases {
            let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
            if !tolerations.is_null() {
                pod["spec"]["tolerations"] = tolerations.clone();
            }
            let req = AdmissionRequest::create(Resource::new("", "v1", "pods"), "ns", pod);
            let v = admit(&req, DEFAULT_TOLERATION_SECONDS, DEFAULT_TOLERATION_SECONDS);
            assert_eq!(
                v.patched.map(|p| p["spec"]["tolerations"].clone()),
                want,
                "{tolerations}"
            );
        }
    }
}
