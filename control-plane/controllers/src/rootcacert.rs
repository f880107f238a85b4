//! The root CA certificate publisher's core (`pkg/controller/certificates/rootcacertpublisher`):
//! every namespace has the ConfigMap `kube-root-ca.crt` whose `ca.crt` is the CA bundle that
//! verifies the API server, and the usage annotation upstream sets.
//!
//! [`reconcile`] takes one namespace, that namespace's `kube-root-ca.crt` if it exists, and the
//! bundle, and returns the write that makes the ConfigMap right: a create when it is missing,
//! an update (keeping its other metadata) when its data or annotation was edited, nothing
//! otherwise. As upstream, `data` is replaced whole: keys added by hand are removed.

use serde_json::{Value, json};

use crate::meta;

/// The ConfigMap's name.
pub const CONFIG_MAP_NAME: &str = "kube-root-ca.crt";
/// The annotation that describes the ConfigMap's use.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Upstream's description, verbatim: clients may show it.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// The write one namespace's sync asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create this ConfigMap.
    Create(Value),
    /// Replace the ConfigMap with this one (its resourceVersion is the precondition).
    Update(Value),
}

/// The write that gives `namespace` a correct `kube-root-ca.crt`, if any. Namespaces being
/// deleted get nothing: the API server would refuse the create.
pub fn reconcile(namespace: &Value, existing: Option<&Value>, ca_bundle: &str) -> Option<Write> {
    if meta::is_deleting(namespace) {
        return None;
    }
    let data = json!({"ca.crt": ca_bundle});
    let Some(cm) = existing else {
        return Some(Write::Create(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CONFIG_MAP_NAME,
                "namespace": meta::name(namespace),
                "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
            },
            "data": data,
        })));
    };
    let annotated =
        !meta::str_at(cm, "/metadata/annotations/kubernetes.io~1description").is_empty();
    if cm.get("data") == Some(&data) && annotated {
        return None;
    }
    let mut cm = cm.clone();
    cm["data"] = data;
    if !cm
        .pointer("/metadata/annotations")
        .is_some_and(Value::is_object)
    {
        meta::object_at(&mut cm, "metadata").insert("annotations".into(), json!({}));
    }
    cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION] = json!(DESCRIPTION);
    Some(Write::Update(cm))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn ns(name: &str) -> Value {
        json!({"metadata": {"name": name}, "status": {"phase": "Active"}})
    }

    fn stored(write: Option<Write>) -> Value {
        match write {
            Some(Write::Create(v) | Write::Update(v)) => v,
            None => panic!("expected a write"),
        }
    }

    #[test]
    fn a_missing_config_map_is_created_and_then_left_alone() {
        let cm = stored(reconcile(&ns("team"), None, CA));
        assert_eq!(
            cm,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "kube-root-ca.crt", "namespace": "team",
                    "annotations": {"kubernetes.io/description": DESCRIPTION},
                },
                "data": {"ca.crt": CA},
            })
        );
        assert_eq!(reconcile(&ns("team"), Some(&cm), CA), None);
    }

    #[test]
    fn edited_data_and_a_lost_annotation_are_repaired_keeping_other_metadata() {
        let mut cm = stored(reconcile(&ns("team"), None, CA));
        cm["metadata"]["resourceVersion"] = json!("7");
        cm["metadata"]["labels"] = json!({"x": "y"});
        cm["data"] = json!({"ca.crt": "junk", "extra": "1"});
        cm["metadata"]["annotations"] = json!({"other": "kept"});
        let Some(Write::Update(fixed)) = reconcile(&ns("team"), Some(&cm), CA) else {
            panic!("expected an update");
        };
        assert_eq!(fixed["data"], json!({"ca.crt": CA}));
        assert_eq!(fixed["metadata"]["resourceVersion"], "7");
        assert_eq!(fixed["metadata"]["labels"], json!({"x": "y"}));
        assert_eq!(
            fixed["metadata"]["annotations"],
            json!({"other": "kept", "kubernetes.io/description": DESCRIPTION})
        );
        assert_eq!(reconcile(&ns("team"), Some(&fixed), CA), None);
    }

    #[test]
    fn a_new_bundle_is_published() {
        let cm = stored(reconcile(&ns("team"), None, CA));
        let fixed = stored(reconcile(&ns("team"), Some(&cm), "other"));
        assert_eq!(fixed["data"]["ca.crt"], "other");
    }

    #[test]
    fn terminating_namespaces_get_nothing() {
        let mut n = ns("team");
        n["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert_eq!(reconcile(&n, None, CA), None);
    }
}
