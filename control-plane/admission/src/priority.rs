//! Priority: resolves a pod's `priorityClassName` (or the global default class) to
//! `spec.priority` and `spec.preemptionPolicy` on create, and keeps a single global default among
//! PriorityClasses (upstream's `plugin/pkg/admission/priority`). The built-in
//! `system-node-critical` and `system-cluster-critical` classes resolve even when the caller's list
//! lacks them (the API server creates them at start).

use serde_json::{Value, json};

use crate::{AdmissionRequest, Denial, Operation, Verdict};

/// The built-in class for pods that must run on every node.
pub const SYSTEM_NODE_CRITICAL: &str = "system-node-critical";
/// The built-in class for cluster-critical add-ons.
pub const SYSTEM_CLUSTER_CRITICAL: &str = "system-cluster-critical";

/// The built-in classes and their values.
pub fn system_priority_classes() -> Vec<Value> {
    let pc = |name: &str, value: i64, description: &str| {
        json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "preemptionPolicy": "PreemptLowerPriority",
            "description": description,
        })
    };
    vec![
        pc(
            SYSTEM_NODE_CRITICAL,
            2_000_001_000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        pc(
            SYSTEM_CLUSTER_CRITICAL,
            2_000_000_000,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ]
}

/// The global default class: among those marked `globalDefault`, the one with the lowest value.
fn default_class(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|pc| pc["globalDefault"].as_bool() == Some(true))
        .min_by_key(|pc| pc["value"].as_i64().unwrap_or_default())
}

/// Runs the plugin on pods (mutation) and PriorityClasses (validation). `classes` is every
/// PriorityClass the cluster holds.
pub fn admit(req: &AdmissionRequest, classes: &[Value]) -> Verdict {
    if !req.subresource.is_empty() {
        return Verdict::allow();
    }
    if req.resource.is("scheduling.k8s.io", "priorityclasses") {
        return validate_priority_class(req, classes);
    }
    if !req.resource.is("", "pods") {
        return Verdict::allow();
    }
    let Some(original) = req.object.as_ref() else {
        return Verdict::allow();
    };
    let mut pod = original.clone();
    match req.operation {
        Operation::Update => {
            // The plugin set these on create; an update that omits them keeps them.
            if let Some(old) = &req.old_object {
                for field in ["priority", "preemptionPolicy"] {
                    if pod["spec"][field].is_null() && !old["spec"][field].is_null() {
                        pod["spec"][field] = old["spec"][field].clone();
                    }
                }
            }
        }
        Operation::Create => {
            let name = pod["spec"]["priorityClassName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let builtins = system_priority_classes();
            let (priority, policy) = if name.is_empty() {
                match default_class(classes) {
                    Some(pc) => {
                        pod["spec"]["priorityClassName"] = pc["metadata"]["name"].clone();
                        (
                            pc["value"].as_i64().unwrap_or_default(),
                            pc["preemptionPolicy"].as_str().map(str::to_owned),
                        )
                    }
                    None => (0, Some("PreemptLowerPriority".to_owned())),
                }
            } else {
                let found = classes
                    .iter()
                    .chain(builtins.iter())
                    .find(|pc| pc["metadata"]["name"].as_str() == Some(&name));
                match found {
                    Some(pc) => (
                        pc["value"].as_i64().unwrap_or_default(),
                        pc["preemptionPolicy"].as_str().map(str::to_owned),
                    ),
                    None => {
                        return Verdict::deny(Denial::forbidden(
                            req,
                            format!("no PriorityClass with name {name} was found"),
                        ));
                    }
                }
            };
            if let Some(p) = pod["spec"]["priority"].as_i64()
                && p != priority
            {
                return Verdict::deny(Denial::forbidden(
                    req,
                    format!(
                        "the integer value of priority ({p}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
                    ),
                ));
            }
            pod["spec"]["priority"] = json!(priority);
            if let Some(policy) = policy {
                if let Some(given) = pod["spec"]["preemptionPolicy"].as_str()
                    && given != policy
                {
                    return Verdict::deny(Denial::forbidden(
                        req,
                        format!(
                            "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
                        ),
                    ));
                }
                pod["spec"]["preemptionPolicy"] = json!(policy);
            }
        }
        _ => return Verdict::allow(),
    }
    if pod == *original {
        Verdict::allow()
    } else {
        Verdict::patch(pod)
    }
}

fn validate_priority_class(req: &AdmissionRequest, classes: &[Value]) -> Verdict {
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return Verdict::allow();
    }
    let Some(pc) = req.object.as_ref() else {
        return Verdict::allow();
    };
    if pc["globalDefault"].as_bool() != Some(true) {
        return Verdict::allow();
    }
    if let Some(dpc) = default_class(classes) {
        let dname = dpc["metadata"]["name"].as_str().unwrap_or_default();
        if req.operation == Operation::Create || pc["metadata"]["name"].as_str() != Some(dname) {
            return Verdict::deny(Denial::forbidden(
                req,
                format!(
                    "PriorityClass {dname} is already marked as default. Only one default can exist"
                ),
            ));
        }
    }
    Verdict::allow()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Resource;

    fn pc(name: &str, value: i64, default: bool) -> Value {
        json!({"metadata": {"name": name}, "value": value, "globalDefault": default, "preemptionPolicy": "Never"})
    }

    fn create(spec: Value) -> AdmissionRequest {
        AdmissionRequest::create(
            Resource::new("", "v1", "pods"),
            "ns",
            json!({"metadata": {"name": "p"}, "spec": spec}),
        )
    }

    #[test]
    fn resolves_priority() {
        let classes = [
            pc("high", 1000, false),
            pc("low", 10, true),
            pc("lower", 5, true),
        ];
        type Want = Result<(Value, Value, Value), &'static str>;
        let cases: Vec<(Value, &[Value], Want)> = vec![
            (
                json!({"priorityClassName": "high"}),
                &classes,
                Ok((json!("high"), json!(1000), json!("Never"))),
            ),
            (
                json!({}),
                &classes,
                Ok((json!("lower"), json!(5), json!("Never"))),
            ),
            (
                json!({}),
                &[],
                Ok((Value::Null, json!(0), json!("PreemptLowerPriority"))),
            ),
            (
                json!({"priorityClassName": SYSTEM_NODE_CRITICAL}),
                &[],
                Ok((
                    json!(SYSTEM_NODE_CRITICAL),
                    json!(2_000_001_000),
                    json!("PreemptLowerPriority"),
                )),
            ),
            (
                json!({"priorityClassName": "nope"}),
                &classes,
                Err("pods \"p\" is forbidden: no PriorityClass with name nope was found"),
            ),
            (
                json!({"priorityClassName": "high", "priority": 7}),
                &classes,
                Err(
                    "pods \"p\" is forbidden: the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name",
                ),
            ),
            (
                json!({"priorityClassName": "high", "preemptionPolicy": "PreemptLowerPriority"}),
                &classes,
                Err(
                    "pods \"p\" is forbidden: the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in pod spec; priority admission controller computed Never from the given PriorityClass name",
                ),
            ),
        ];
        for (spec, classes, want) in cases {
            let v = admit(&create(spec.clone()), classes);
            match want {
                Ok((name, prio, policy)) => {
                    let p = v.patched.expect("patched");
                    assert_eq!(
                        (
                            &p["spec"]["priorityClassName"],
                            &p["spec"]["priority"],
                            &p["spec"]["preemptionPolicy"]
                        ),
                        (&name, &prio, &policy),
                        "{spec}"
                    );
                }
                Err(msg) => assert_eq!(v.denial.map(|d| d.message).as_deref(), Some(msg), "{spec}"),
            }
        }
    }

    #[test]
    fn one_global_default() {
        let classes = [pc("a", 1, true)];
        let req = AdmissionRequest::create(
            Resource::new("scheduling.k8s.io", "v1", "priorityclasses"),
            "",
            pc("b", 2, true),
        );
        assert_eq!(
            admit(&req, &classes).denial.unwrap().message,
            "priorityclasses.scheduling.k8s.io \"b\" is forbidden: PriorityClass a is already marked as default. Only one default can exist"
        );
        let req = AdmissionRequest::update(
            Resource::new("scheduling.k8s.io", "v1", "priorityclasses"),
            "",
            pc("a", 3, true),
            pc("a", 1, true),
        );
        assert!(admit(&req, &classes).allowed());
    }
}
