//! The ServiceAccounts controller's core (`pkg/controller/serviceaccount`,
//! `serviceaccounts_controller.go`): every active namespace has a `default` ServiceAccount.
//!
//! [`reconcile`] takes one namespace and the ServiceAccounts of that namespace and returns the
//! accounts to create: `default` when it is missing, nothing for a namespace that is being
//! deleted (or not `Active`), as upstream skips those.

use serde_json::{Value, json};

use crate::meta;

/// The ServiceAccounts every namespace gets (upstream's `--service-account-names` default).
pub const DEFAULT_NAMES: &[&str] = &["default"];

/// The ServiceAccounts to create in `namespace`, given the accounts it has.
pub fn reconcile(namespace: &Value, accounts: &[Value]) -> Vec<Value> {
    let phase = meta::str_at(namespace, "/status/phase");
    if meta::is_deleting(namespace) || !(phase.is_empty() || phase == "Active") {
        return Vec::new();
    }
    let ns = meta::name(namespace);
    DEFAULT_NAMES
        .iter()
        .filter(|want| {
            !accounts
                .iter()
                .any(|a| meta::name(a) == **want && meta::namespace(a) == ns)
        })
        .map(|name| {
            json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": ns},
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str) -> Value {
        json!({"metadata": {"name": name}, "status": {"phase": "Active"}})
    }

    #[test]
    fn a_namespace_without_default_gets_one_and_then_nothing() {
        let created = reconcile(&ns("team"), &[]);
        assert_eq!(
            created,
            vec![json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": "team"},
            })]
        );
        assert!(reconcile(&ns("team"), &created).is_empty());
    }

    #[test]
    fn other_namespaces_accounts_do_not_count() {
        let elsewhere = json!({"metadata": {"name": "default", "namespace": "other"}});
        assert_eq!(reconcile(&ns("team"), &[elsewhere]).len(), 1);
    }

    #[test]
    fn terminating_namespaces_get_nothing() {
        let mut n = ns("team");
        n["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        n["status"]["phase"] = json!("Terminating");
        assert!(reconcile(&n, &[]).is_empty());
    }
}
