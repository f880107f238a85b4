//! Which requests a webhook or policy applies to: rules (upstream `predicates/rules`),
//! namespace and object selectors (`predicates/namespace`, `predicates/object`) and a policy's
//! `matchResources` (`policy/matching`).

use objects::selectors::{LabelSelector, labels_of};
use serde_json::Value;

use crate::attributes::Attributes;
use crate::status::Denial;

/// One `RuleWithOperations` (plus `resourceNames` for a policy's `NamedRuleWithOperations`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Rule {
    operations: Vec<String>,
    groups: Vec<String>,
    versions: Vec<String>,
    resources: Vec<String>,
    scope: Option<String>,
    names: Vec<String>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn exact_or_wildcard(items: &[String], requested: &str) -> bool {
    items.iter().any(|i| i == "*" || i == requested)
}

impl Rule {
    pub(crate) fn parse(v: &Value) -> Rule {
        Rule {
            operations: strings(v, "operations"),
            groups: strings(v, "apiGroups"),
            versions: strings(v, "apiVersions"),
            resources: strings(v, "resources"),
            scope: v.get("scope").and_then(Value::as_str).map(str::to_owned),
            names: strings(v, "resourceNames"),
        }
    }

    pub(crate) fn parse_list(v: Option<&Value>) -> Vec<Rule> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().map(Rule::parse).collect())
            .unwrap_or_default()
    }

    /// Upstream `rules.Matcher.Matches`: scope, operation, group, version and resource.
    pub(crate) fn matches(&self, a: &Attributes) -> bool {
        self.scope(a)
            && exact_or_wildcard(&self.operations, a.operation.as_str())
            && exact_or_wildcard(&self.groups, &a.resource.group)
            && exact_or_wildcard(&self.versions, &a.resource.version)
            && self.resource(a)
    }

    /// [`Rule::matches`] and, for a named rule, the request's name among `resourceNames`.
    pub(crate) fn matches_named(&self, a: &Attributes) -> bool {
        self.matches(a) && (self.names.is_empty() || self.names.contains(&a.name))
    }

    fn scope(&self, a: &Attributes) -> bool {
        match self.scope.as_deref() {
            None | Some("*") => true,
            // A namespace carries its own name as namespace, yet is cluster-scoped.
            Some("Namespaced") => !a.is_namespace() && !a.namespace.is_empty(),
            Some("Cluster") => a.is_namespace() || a.namespace.is_empty(),
            Some(_) => false,
        }
    }

    fn resource(&self, a: &Attributes) -> bool {
        self.resources.iter().any(|r| {
            let (res, sub) = r.split_once('/').unwrap_or((r.as_str(), ""));
            (res == "*" || res == a.resource.resource) && (sub == "*" || sub == a.subresource)
        })
    }
}

/// A `metav1.LabelSelector` as a webhook or policy carries it.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    parsed: Result<LabelSelector, String>,
}

impl Default for Selector {
    fn default() -> Self {
        Selector {
            parsed: Ok(LabelSelector::default()),
        }
    }
}

impl Selector {
    pub(crate) fn parse(v: Option<&Value>) -> Selector {
        Selector {
            parsed: match v {
                None | Some(Value::Null) => Ok(LabelSelector::default()),
                Some(v) => LabelSelector::from_api(v).map_err(|e| e.0),
            },
        }
    }

    /// Upstream `namespace.Matcher.MatchNamespaceSelector`: cluster-scoped requests other
    /// than namespaces always match; a namespaced request in a namespace that does not exist
    /// is refused with 404.
    pub(crate) fn matches_namespace(&self, a: &Attributes) -> Result<bool, Denial> {
        if a.namespace.is_empty() && !a.is_namespace() {
            return Ok(true);
        }
        let sel = self.parsed.as_ref().map_err(|e| Denial::internal(e))?;
        if sel.is_empty() {
            return Ok(true);
        }
        match a.namespace_labels() {
            Some(labels) => Ok(sel.matches(&labels)),
            None => Err(Denial::namespace_not_found(&a.namespace)),
        }
    }

    /// Upstream `object.Matcher.MatchObjectSelector`: the new or the old object matches.
    pub(crate) fn matches_object(&self, a: &Attributes) -> Result<bool, Denial> {
        let sel = self.parsed.as_ref().map_err(|e| Denial::internal(e))?;
        if sel.is_empty() {
            return Ok(true);
        }
        let m = |o: Option<&Value>| o.is_some_and(|o| sel.matches(&labels_of(o)));
        Ok(m(a.object.as_ref()) || m(a.old_object.as_ref()))
    }
}

/// A policy's `matchConstraints` or a binding's `matchResources`.
#[derive(Debug, Clone, Default)]
pub(crate) struct MatchResources {
    namespace: Selector,
    object: Selector,
    rules: Vec<Rule>,
    exclude: Vec<Rule>,
}

impl MatchResources {
    pub(crate) fn parse(v: Option<&Value>) -> MatchResources {
        let v = v.unwrap_or(&Value::Null);
        MatchResources {
            namespace: Selector::parse(v.get("namespaceSelector")),
            object: Selector::parse(v.get("objectSelector")),
            rules: Rule::parse_list(v.get("resourceRules")),
            exclude: Rule::parse_list(v.get("excludeResourceRules")),
        }
    }

    /// Upstream `matching.Matcher.Matches`: selectors, then excluded rules, then rules (none
    /// means every resource).
    pub(crate) fn matches(&self, a: &Attributes) -> Result<bool, Denial> {
        let ns = self.namespace.matches_namespace(a);
        if let Ok(false) = ns {
            return Ok(false);
        }
        let obj = self.object.matches_object(a);
        if let Ok(false) = obj {
            return Ok(false);
        }
        if self.exclude.iter().any(|r| r.matches_named(a)) {
            return Ok(false);
        }
        let matched = self.rules.is_empty() || self.rules.iter().any(|r| r.matches_named(a));
        if !matched {
            return Ok(false);
        }
        ns?;
        obj?;
        Ok(true)
    }
}

/// Upstream `rules.IsExemptAdmissionConfigurationResource`: dynamic admission never applies to
/// its own configuration, so that a broken webhook or policy can always be removed.
pub(crate) fn is_exempt(a: &Attributes) -> bool {
    a.kind.group == "admissionregistration.k8s.io"
        && matches!(
            a.kind.kind.as_str(),
            "ValidatingWebhookConfiguration"
                | "MutatingWebhookConfiguration"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding"
        )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Rule;
    use crate::attributes::{Attributes, Gvk, Gvr, Operation};

    fn attrs(group: &str, resource: &str, sub: &str, namespace: &str) -> Attributes {
        let mut a = Attributes::new(
            Operation::Update,
            Gvk::new(group, "v1", "Kind"),
            Gvr::new(group, "v1", resource),
        );
        a.subresource = sub.into();
        a.namespace = namespace.into();
        a
    }

    #[test]
    fn rules_match_as_upstream() {
        // (resources, scope, group, resource, subresource, namespace, matches)
        let cases = [
            (json!(["pods"]), "*", "", "pods", "", "ns", true),
            (json!(["pods"]), "*", "", "pods", "status", "ns", false),
            (
                json!(["pods/status"]),
                "*",
                "",
                "pods",
                "status",
                "ns",
                true,
            ),
            (json!(["pods/status"]), "*", "", "pods", "", "ns", false),
            (json!(["*"]), "*", "", "pods", "", "ns", true),
            (json!(["*"]), "*", "", "pods", "status", "ns", false),
            (json!(["*/*"]), "*", "", "pods", "exec", "ns", true),
            (
                json!(["*/status"]),
                "*",
                "apps",
                "deployments",
                "status",
                "ns",
                true,
            ),
            (json!(["*/status"]), "*", "", "pods", "", "ns", false),
            (json!(["pods/*"]), "*", "", "pods", "", "ns", true),
            (json!(["pods/*"]), "*", "", "pods", "log", "ns", true),
            (json!(["pods"]), "Namespaced", "", "pods", "", "ns", true),
            (json!(["nodes"]), "Namespaced", "", "nodes", "", "", false),
            (json!(["nodes"]), "Cluster", "", "nodes", "", "", true),
            (json!(["pods"]), "Cluster", "", "pods", "", "ns", false),
            // A namespace carries its own name as namespace but is cluster-scoped.
            (
                json!(["namespaces"]),
                "Cluster",
                "",
                "namespaces",
                "",
                "ns",
                true,
            ),
            (
                json!(["namespaces"]),
                "Namespaced",
                "",
                "namespaces",
                "",
                "ns",
                false,
            ),
            (json!(["jobs"]), "*", "batch", "jobs", "", "ns", false),
        ];
        for (i, (resources, scope, group, resource, sub, ns, want)) in cases.into_iter().enumerate()
        {
            let rule = Rule::parse(&json!({
                "operations": ["UPDATE"], "apiGroups": ["", "apps"], "apiVersions": ["*"],
                "resources": resources, "scope": scope,
            }));
            assert_eq!(
                rule.matches(&attrs(group, resource, sub, ns)),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn operations_groups_and_versions() {
        let rule = Rule::parse(&json!({
            "operations": ["CREATE", "DELETE"], "apiGroups": ["apps"], "apiVersions": ["v1"],
            "resources": ["*"],
        }));
        let mut a = attrs("apps", "deployments", "", "ns");
        assert!(!rule.matches(&a), "UPDATE is not listed");
        a.operation = Operation::Delete;
        assert!(rule.matches(&a));
        a.resource.version = "v1beta1".into();
        assert!(!rule.matches(&a));
        let a = attrs("batch", "jobs", "", "ns");
        assert!(!rule.matches(&Attributes {
            operation: Operation::Create,
            ..a
        }));
    }
}
