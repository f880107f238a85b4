//! Upstream's ClusterRole aggregation controller as a pure function.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` match `selector` (upstream `LabelSelectorAsSelector` then `Matches`). An
/// empty selector matches everything; an invalid one (unknown operator, `In` without values)
/// matches nothing.
pub fn label_selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => !values.is_empty() && value.is_some_and(|v| values.contains(v)),
            "NotIn" => !values.is_empty() && value.is_none_or(|v| !values.contains(v)),
            "Exists" => values.is_empty() && value.is_some(),
            "DoesNotExist" => values.is_empty() && value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// Semantic equality of rules: an absent list equals an empty one.
fn same_rule(a: &PolicyRule, b: &PolicyRule) -> bool {
    let l = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    a.verbs == b.verbs
        && l(&a.api_groups) == l(&b.api_groups)
        && l(&a.resources) == l(&b.resources)
        && l(&a.resource_names) == l(&b.resource_names)
        && l(&a.non_resource_urls) == l(&b.non_resource_urls)
}

fn same_rules(a: &[PolicyRule], b: &[PolicyRule]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_rule(x, y))
}

/// For every ClusterRole with an aggregation rule, the rules it should hold, when they differ
/// from its stored rules.
///
/// Per role, as upstream's controller: for each selector in order, the other ClusterRoles it
/// matches sorted by name, and each of their rules not already gathered. Aggregated roles may
/// select other aggregated roles (`admin` selects `edit`, which selects `view`); upstream reaches
/// the result over several syncs, this function iterates to the same fixed point at once, using
/// the new rules of a role wherever another role gathers it.
pub fn aggregate(cluster_roles: &[ClusterRole]) -> Vec<(String, Vec<PolicyRule>)> {
    let mut roles: Vec<&ClusterRole> = cluster_roles.iter().collect();
    roles.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut current: Vec<Vec<PolicyRule>> = roles
        .iter()
        .map(|r| r.rules.clone().unwrap_or_default())
        .collect();
    let empty = BTreeMap::new();
    // Each pass can only propagate rules one aggregation level further; a chain cannot be longer
    // than the number of roles, and a cycle is cut off there too.
    for _ in 0..=roles.len() {
        let mut changed = false;
        for (i, role) in roles.iter().enumerate() {
            let Some(rule) = &role.aggregation_rule else {
                continue;
            };
            let mut gathered: Vec<PolicyRule> = Vec::new();
            for selector in rule.cluster_role_selectors.iter().flatten() {
                for (j, other) in roles.iter().enumerate() {
                    if j == i {
                        continue;
                    }
                    let labels = other.metadata.labels.as_ref().unwrap_or(&empty);
                    if !label_selector_matches(selector, labels) {
                        continue;
                    }
                    for r in &current[j] {
                        if !gathered.iter().any(|g| same_rule(g, r)) {
                            gathered.push(r.clone());
                        }
                    }
                }
            }
            if !same_rules(&gathered, &current[i]) {
                current[i] = gathered;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    roles
        .iter()
        .zip(current)
        .filter(|(role, rules)| {
            role.aggregation_rule.is_some()
                && !same_rules(rules, role.rules.as_deref().unwrap_or_default())
        })
        .map(|(role, rules)| (role.metadata.name.clone().unwrap_or_default(), rules))
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta};

    use super::*;
    use crate::rules::tests::rule;

    fn role(
        name: &str,
        labels: &[(&str, &str)],
        rules: Option<Vec<PolicyRule>>,
        selects: Option<Vec<LabelSelector>>,
    ) -> ClusterRole {
        ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            rules,
            aggregation_rule: selects.map(|s| AggregationRule {
                cluster_role_selectors: Some(s),
            }),
        }
    }

    fn match_labels(k: &str, v: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some(BTreeMap::from([(k.to_string(), v.to_string())])),
            match_expressions: None,
        }
    }

    use k8s_openapi::api::rbac::v1::AggregationRule;

    #[test]
    fn union_in_selector_then_name_order_without_duplicates() {
        let pods = rule(&[""], &["pods"], &["get"]);
        let svcs = rule(&[""], &["services"], &["get"]);
        let deps = rule(&["apps"], &["deployments"], &["get"]);
        let roles = vec![
            role(
                "agg",
                &[],
                None,
                Some(vec![match_labels("a", "1"), match_labels("b", "1")]),
            ),
            role(
                "z-first-selector",
                &[("a", "1")],
                Some(vec![svcs.clone()]),
                None,
            ),
            role(
                "a-first-selector",
                &[("a", "1")],
                Some(vec![pods.clone()]),
                None,
            ),
            role(
                "both",
                &[("a", "1"), ("b", "1")],
                Some(vec![pods.clone(), deps.clone()]),
                None,
            ),
            role(
                "unrelated",
                &[("a", "2")],
                Some(vec![rule(&["*"], &["*"], &["*"])]),
                None,
            ),
        ];
        assert_eq!(
            aggregate(&roles),
            vec![("agg".to_string(), vec![pods, deps, svcs])]
        );
    }

    #[test]
    fn unchanged_roles_are_not_returned() {
        let pods = rule(&[""], &["pods"], &["get"]);
        let roles = vec![
            role(
                "agg",
                &[],
                Some(vec![pods.clone()]),
                Some(vec![match_labels("a", "1")]),
            ),
            role("src", &[("a", "1")], Some(vec![pods]), None),
            // Nothing selected and nothing stored: absent and empty rules are the same.
            role("empty", &[], None, Some(vec![match_labels("none", "1")])),
        ];
        assert!(aggregate(&roles).is_empty());
    }

    #[test]
    fn stale_rules_are_replaced_and_chains_resolved() {
        let pods = rule(&[""], &["pods"], &["get"]);
        let roles = vec![
            role(
                "top",
                &[],
                Some(vec![rule(&[""], &["old"], &["get"])]),
                Some(vec![match_labels("to-top", "true")]),
            ),
            role(
                "mid",
                &[("to-top", "true")],
                None,
                Some(vec![match_labels("to-mid", "true")]),
            ),
            role(
                "leaf",
                &[("to-mid", "true")],
                Some(vec![pods.clone()]),
                None,
            ),
        ];
        let got = aggregate(&roles);
        assert_eq!(
            got,
            vec![
                ("mid".to_string(), vec![pods.clone()]),
                ("top".to_string(), vec![pods])
            ]
        );
    }

    #[test]
    fn selector_expressions() {
        let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let expr = |op: &str, values: &[&str]| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: op.into(),
                values: (!values.is_empty())
                    .then(|| values.iter().map(|v| v.to_string()).collect()),
            }]),
        };
        assert!(label_selector_matches(&LabelSelector::default(), &labels));
        assert!(label_selector_matches(
            &expr("In", &["prod", "dev"]),
            &labels
        ));
        assert!(!label_selector_matches(&expr("In", &["dev"]), &labels));
        assert!(label_selector_matches(&expr("NotIn", &["dev"]), &labels));
        assert!(label_selector_matches(
            &expr("NotIn", &["dev"]),
            &BTreeMap::new()
        ));
        assert!(label_selector_matches(&expr("Exists", &[]), &labels));
        assert!(!label_selector_matches(&expr("DoesNotExist", &[]), &labels));
        assert!(!label_selector_matches(&expr("Bogus", &[]), &labels));
    }
}
