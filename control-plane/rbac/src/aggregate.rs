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
