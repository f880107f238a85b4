//! Where the API server asks the object model for upstream's rules: validation, defaulting,
//! strategic merge patch, table columns. Each function forwards to the `objects` crate; kinds it
//! has no specific rules for get upstream's generic behaviour.

use objects::GroupKind;
use objects::field::{FieldError, Path};
use serde_json::Value;
#[cfg(test)]
use serde_json::json;

use crate::registry::ResourceDef;

/// Validation errors of `obj` (on update, `old` is the stored object).
pub(crate) fn validate(kind: GroupKind, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let _ = old;
    let mut errors = Vec::new();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let path = Path::new("metadata").child("name");
    let label_names = matches!((kind.group, kind.kind), ("", "Namespace" | "Service"));
    if label_names {
        if let Some(msg) = dns1123_label(name) {
            errors.push(FieldError::invalid(path, name, msg));
        }
    } else if let Some(msg) = dns1123_subdomain(name)
        && !matches!(kind.group, "rbac.authorization.k8s.io")
    {
        errors.push(FieldError::invalid(path, name, msg));
    }
    errors
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

fn dns1123_label(s: &str) -> Option<String> {
    if s.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    (!label_ok(s)).then(|| DNS1123_LABEL_MSG.into())
}

fn dns1123_subdomain(s: &str) -> Option<String> {
    if s.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    (!s.split('.').all(label_ok)).then(|| DNS1123_SUBDOMAIN_MSG.into())
}

/// Applies upstream's defaults to `obj`.
pub(crate) fn default(kind: GroupKind, obj: &mut Value) {
    let _ = (kind, obj);
}

/// Applies a strategic merge patch with the kind's patch strategies and merge keys.
pub(crate) fn strategic_merge(
    kind: GroupKind,
    current: &Value,
    patch: &Value,
) -> Result<Value, objects::patch::PatchError> {
    objects::patch::strategic_merge(kind, current, patch)
}

/// The quality-of-service class of a pod (Guaranteed, Burstable or BestEffort).
pub(crate) fn pod_qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| pod.pointer(&format!("/spec/{f}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        for res in ["cpu", "memory"] {
            let r = requests.and_then(|m| m.get(res));
            let l = limits.and_then(|m| m.get(res));
            if r.is_some() || l.is_some() {
                any = true;
            }
            // A request defaults to the limit when only the limit is set.
            if l.is_none() || r.is_some_and(|r| Some(r) != l) {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Column definitions and one row of cells per object, as kube-apiserver's printers make them.
pub(crate) fn table(
    def: &ResourceDef,
    objs: &[Value],
    now: std::time::SystemTime,
) -> (Vec<Value>, Vec<Vec<Value>>) {
    use objects::printers;
    let kind = GroupKind::new(def.group, def.kind);
    let columns = printers::columns(kind).unwrap_or_else(printers::default_columns);
    let definitions = columns.iter().map(printers::Column::definition).collect();
    let rows = objs.iter().map(|o| printers::cells(kind, o, now)).collect();
    (definitions, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes() {
        assert_eq!(
            pod_qos_class(&json!({"spec": {"containers": [{"name": "a"}]}})),
            "BestEffort"
        );
        let g = json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(pod_qos_class(&g), "Guaranteed");
        let b = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(pod_qos_class(&b), "Burstable");
    }

    #[test]
    fn names_follow_dns_rules() {
        assert!(
            validate(
                GroupKind::core("ConfigMap"),
                &json!({"metadata": {"name": "a.b-c"}}),
                None
            )
            .is_empty()
        );
        let e = validate(
            GroupKind::core("Namespace"),
            &json!({"metadata": {"name": "a.b"}}),
            None,
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].to_string()
                .starts_with("metadata.name: Invalid value: \"a.b\": a lowercase RFC 1123 label")
        );
    }
}
