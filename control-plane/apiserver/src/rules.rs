//! Where the API server asks the object model for upstream's rules: validation, defaulting,
//! strategic merge patch, table columns. Each function forwards to the `objects` crate; kinds it
//! has no specific rules for get upstream's generic behaviour.

use objects::GroupKind;
use objects::field::FieldError;
use serde_json::Value;
#[cfg(test)]
use serde_json::json;

use crate::registry::ResourceDef;

/// Validation errors of `obj` with upstream's rules (on update, `old` is the stored object).
pub(crate) fn validate(kind: GroupKind, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    match old {
        None => objects::validation::validate_create(kind, obj),
        Some(old) => objects::validation::validate_update(kind, obj, old),
    }
}

/// Applies upstream's defaults (and, for pods, the defaults admission adds) to `obj`.
pub(crate) fn default(kind: GroupKind, obj: &mut Value) {
    objects::defaults::apply_defaults(kind, obj);
    objects::defaults::admission_defaults(kind, obj);
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
    if let Some(custom) = &def.custom {
        return crate::crd::table(custom, objs, now);
    }
    let kind = GroupKind::new(&def.group, &def.kind);
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
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a.b-c", "namespace": "d"}});
        assert!(validate(GroupKind::core("ConfigMap"), &cm, None).is_empty());
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}});
        let e = validate(GroupKind::core("Namespace"), &ns, None);
        assert!(
            e.iter().any(|e| e
                .to_string()
                .starts_with("metadata.name: Invalid value: \"a.b\"")),
            "{e:?}"
        );
    }
}
