//! Matching one request against one rule, and one set of rules against another.

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::Attributes;

const ALL: &str = "*";

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

/// Whether `rule` allows the request (upstream `RuleAllows`).
pub fn rule_allows(a: &Attributes<'_>, rule: &PolicyRule) -> bool {
    if !verb_matches(rule, a.verb) {
        return false;
    }
    if a.resource_request {
        let combined;
        let resource = if a.subresource.is_empty() {
            a.resource
        } else {
            combined = format!("{}/{}", a.resource, a.subresource);
            &combined
        };
        api_group_matches(rule, a.api_group)
            && resource_matches(rule, resource, a.subresource)
            && resource_name_matches(rule, a.name)
    } else {
        non_resource_url_matches(rule, a.path)
    }
}

pub(crate) fn rules_allow(a: &Attributes<'_>, rules: &[PolicyRule]) -> bool {
    rules.iter().any(|r| rule_allows(a, r))
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    list(&rule.api_groups)
        .iter()
        .any(|g| g == ALL || g == group)
}

/// `combined` is `resource` or `resource/subresource`. A rule resource `*/sub` matches any
/// resource's `sub` subresource; there is no `resource/*` form.
fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    list(&rule.resources).iter().any(|r| {
        r == ALL
            || r == combined
            || (!subresource.is_empty()
                && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
    })
}

fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = list(&rule.resource_names);
    names.is_empty() || has(names, name)
}

fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    list(&rule.non_resource_urls).iter().any(|u| {
        u == ALL
            || u == path
            || u.strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix))
    })
}

/// Splits a rule into rules of one verb, one group, one resource and at most one resource name
/// (or one verb and one non-resource URL), in upstream's order (`BreakdownRule`).
pub fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| Some(vec![s.clone()]);
    let mut out = Vec::new();
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    api_groups: one(group),
                    resources: one(resource),
                    verbs: vec![verb.clone()],
                    ..PolicyRule::default()
                };
                let names = list(&rule.resource_names);
                if names.is_empty() {
                    out.push(base);
                } else {
                    out.extend(names.iter().map(|n| PolicyRule {
                        resource_names: one(n),
                        ..base.clone()
                    }));
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

/// Whether `owner` covers every permission in `requested`, and the broken-down requested rules
/// that it does not cover (upstream `Covers`).
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let uncovered: Vec<PolicyRule> = requested
        .iter()
        .flat_map(breakdown_rule)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    (uncovered.is_empty(), uncovered)
}

fn resource_covers_all(owner: &[String], requested: &[String]) -> bool {
    if has(owner, ALL) || has_all(owner, requested) {
        return true;
    }
    requested.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

fn non_resource_url_covers(owner: &str, path: &str) -> bool {
    owner == path || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}

/// Whether `owner` covers `sub`, a rule from [`breakdown_rule`].
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = {
        let o = list(&owner.api_groups);
        has(o, ALL) || has_all(o, list(&sub.api_groups))
    };
    let resources = resource_covers_all(list(&owner.resources), list(&sub.resources));
    let urls = list(&sub.non_resource_urls).iter().all(|p| {
        list(&owner.non_resource_urls)
            .iter()
            .any(|o| non_resource_url_covers(o, p))
    });
    let owner_names = list(&owner.resource_names);
    let sub_names = list(&sub.resource_names);
    let names =
        owner_names.is_empty() || (!sub_names.is_empty() && has_all(owner_names, sub_names));
    verbs && groups && resources && urls && names
}

/// A rule as upstream prints it in escalation errors (`rbacv1helpers.CompactString`), e.g.
/// `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "list"]}` (Go's `%q` of a slice).
pub fn compact_string(rule: &PolicyRule) -> String {
    let mut parts = Vec::new();
    let mut field = |label: &str, values: &[String]| {
        if !values.is_empty() {
            let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
            parts.push(format!("{label}:[{}]", quoted.join(" ")));
        }
    };
    field("APIGroups", list(&rule.api_groups));
    field("Resources", list(&rule.resources));
    field("NonResourceURLs", list(&rule.non_resource_urls));
    field("ResourceNames", list(&rule.resource_names));
    field("Verbs", &rule.verbs);
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::UserInfo;

    pub(crate) fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect());
        PolicyRule {
            api_groups: v(groups),
            resources: v(resources),
            verbs: verbs.iter().map(|x| x.to_string()).collect(),
            ..PolicyRule::default()
        }
    }

    pub(crate) fn named(mut r: PolicyRule, names: &[&str]) -> PolicyRule {
        r.resource_names = Some(names.iter().map(|x| x.to_string()).collect());
        r
    }

    pub(crate) fn urls(urls: &[&str], verbs: &[&str]) -> PolicyRule {
        PolicyRule {
            non_resource_urls: Some(urls.iter().map(|x| x.to_string()).collect()),
            verbs: verbs.iter().map(|x| x.to_string()).collect(),
            ..PolicyRule::default()
        }
    }

    fn req<'a>(
        user: &'a UserInfo,
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        sub: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            user,
            verb,
            namespace: "ns",
            api_group: group,
            resource,
            subresource: sub,
            name,
            resource_request: true,
            path: "",
        }
    }

    fn nonres<'a>(user: &'a UserInfo, verb: &'a str, path: &'a str) -> Attributes<'a> {
        Attributes {
            user,
            verb,
            namespace: "",
            api_group: "",
            resource: "",
            subresource: "",
            name: "",
            resource_request: false,
            path,
        }
    }

    #[test]
    fn resource_rule_matching() {
        let u = UserInfo::default();
        let cases: &[(PolicyRule, Attributes<'_>, bool)] = &[
            (
                rule(&[""], &["pods"], &["get"]),
                req(&u, "get", "", "pods", "", ""),
                true,
            ),
            (
                rule(&[""], &["pods"], &["get"]),
                req(&u, "list", "", "pods", "", ""),
                false,
            ),
            (
                rule(&[""], &["pods"], &["*"]),
                req(&u, "delete", "", "pods", "", ""),
                true,
            ),
            (
                rule(&["*"], &["pods"], &["get"]),
                req(&u, "get", "apps", "pods", "", ""),
                true,
            ),
            (
                rule(&[""], &["pods"], &["get"]),
                req(&u, "get", "apps", "pods", "", ""),
                false,
            ),
            (
                rule(&["apps"], &["*"], &["get"]),
                req(&u, "get", "apps", "deployments", "scale", ""),
                true,
            ),
            // A plain resource does not grant its subresources.
            (
                rule(&[""], &["pods"], &["get"]),
                req(&u, "get", "", "pods", "log", ""),
                false,
            ),
            (
                rule(&[""], &["pods/log"], &["get"]),
                req(&u, "get", "", "pods", "log", ""),
                true,
            ),
            (
                rule(&[""], &["pods/log"], &["get"]),
                req(&u, "get", "", "pods", "", ""),
                false,
            ),
            (
                rule(&["apps"], &["*/scale"], &["update"]),
                req(&u, "update", "apps", "deployments", "scale", ""),
                true,
            ),
            (
                rule(&["apps"], &["*/scale"], &["update"]),
                req(&u, "update", "apps", "deployments", "", ""),
                false,
            ),
            (
                rule(&["apps"], &["*/scale"], &["update"]),
                req(&u, "update", "apps", "deployments", "status", ""),
                false,
            ),
            // Upstream has no `resource/*` wildcard: it is only ever an exact string.
            (
                rule(&[""], &["pods/*"], &["get"]),
                req(&u, "get", "", "pods", "log", ""),
                false,
            ),
            (
                named(rule(&[""], &["configmaps"], &["get"]), &["a"]),
                req(&u, "get", "", "configmaps", "", "a"),
                true,
            ),
            (
                named(rule(&[""], &["configmaps"], &["get"]), &["a"]),
                req(&u, "get", "", "configmaps", "", "b"),
                false,
            ),
            (
                named(rule(&[""], &["configmaps"], &["list"]), &["a"]),
                req(&u, "list", "", "configmaps", "", ""),
                false,
            ),
            // A resource rule never matches a non-resource request and vice versa.
            (
                rule(&["*"], &["*"], &["*"]),
                nonres(&u, "get", "/healthz"),
                false,
            ),
            (
                urls(&["*"], &["*"]),
                req(&u, "get", "", "pods", "", ""),
                false,
            ),
            (
                urls(&["/healthz"], &["get"]),
                nonres(&u, "get", "/healthz"),
                true,
            ),
            (
                urls(&["/healthz"], &["get"]),
                nonres(&u, "get", "/healthz/etcd"),
                false,
            ),
            (
                urls(&["/healthz"], &["get"]),
                nonres(&u, "post", "/healthz"),
                false,
            ),
            (
                urls(&["/api/*"], &["get"]),
                nonres(&u, "get", "/api/v1"),
                true,
            ),
            (
                urls(&["/api/*"], &["get"]),
                nonres(&u, "get", "/api/"),
                true,
            ),
            (
                urls(&["/api/*"], &["get"]),
                nonres(&u, "get", "/api"),
                false,
            ),
            (urls(&["/api*"], &["get"]), nonres(&u, "get", "/apis"), true),
            (urls(&["*"], &["get"]), nonres(&u, "get", "/anything"), true),
        ];
        for (i, (r, a, want)) in cases.iter().enumerate() {
            assert_eq!(rule_allows(a, r), *want, "case {i}: {r:?} vs {a:?}");
        }
    }

    #[test]
    fn covers_semantics() {
        let cases: Vec<(Vec<PolicyRule>, Vec<PolicyRule>, bool)> = vec![
            (
                vec![rule(&["*"], &["*"], &["*"])],
                vec![rule(&["apps"], &["deployments"], &["get"])],
                true,
            ),
            (
                vec![rule(&[""], &["pods"], &["get", "list"])],
                vec![rule(&[""], &["pods"], &["get"])],
                true,
            ),
            (
                vec![rule(&[""], &["pods"], &["get"])],
                vec![rule(&[""], &["pods"], &["get", "list"])],
                false,
            ),
            // Split across two owner rules still covers.
            (
                vec![
                    rule(&[""], &["pods"], &["get"]),
                    rule(&[""], &["pods"], &["list"]),
                ],
                vec![rule(&[""], &["pods"], &["get", "list"])],
                true,
            ),
            (
                vec![rule(&[""], &["*/scale"], &["get"])],
                vec![rule(&[""], &["deployments/scale"], &["get"])],
                true,
            ),
            (
                vec![rule(&[""], &["*/scale"], &["get"])],
                vec![rule(&[""], &["deployments"], &["get"])],
                false,
            ),
            (
                vec![rule(&[""], &["pods"], &["get"])],
                vec![rule(&[""], &["pods/log"], &["get"])],
                false,
            ),
            // An unrestricted owner covers named requests; a named owner does not cover unnamed.
            (
                vec![rule(&[""], &["secrets"], &["get"])],
                vec![named(rule(&[""], &["secrets"], &["get"]), &["a"])],
                true,
            ),
            (
                vec![named(rule(&[""], &["secrets"], &["get"]), &["a"])],
                vec![rule(&[""], &["secrets"], &["get"])],
                false,
            ),
            (
                vec![named(rule(&[""], &["secrets"], &["get"]), &["a", "b"])],
                vec![named(rule(&[""], &["secrets"], &["get"]), &["b"])],
                true,
            ),
            (
                vec![named(rule(&[""], &["secrets"], &["get"]), &["a"])],
                vec![named(rule(&[""], &["secrets"], &["get"]), &["a", "c"])],
                false,
            ),
            (
                vec![urls(&["/api/*"], &["get"])],
                vec![urls(&["/api/v1", "/api/"], &["get"])],
                true,
            ),
            (
                vec![urls(&["/api/*"], &["get"])],
                vec![urls(&["/apis/x"], &["get"])],
                false,
            ),
            (
                vec![urls(&["*"], &["*"])],
                vec![urls(&["/metrics"], &["get"])],
                true,
            ),
            // A resource owner never covers a non-resource URL.
            (
                vec![rule(&["*"], &["*"], &["*"])],
                vec![urls(&["/metrics"], &["get"])],
                false,
            ),
            (vec![], vec![], true),
        ];
        for (i, (owner, req, want)) in cases.iter().enumerate() {
            assert_eq!(covers(owner, req).0, *want, "case {i}");
        }
    }

    #[test]
    fn covers_reports_uncovered_breakdown() {
        let owner = vec![rule(&[""], &["pods"], &["get"])];
        let req = vec![
            rule(&[""], &["pods", "secrets"], &["get", "list"]),
            urls(&["/x"], &["get"]),
        ];
        let (ok, missing) = covers(&owner, &req);
        assert!(!ok);
        let printed: Vec<String> = missing.iter().map(compact_string).collect();
        assert_eq!(
            printed,
            [
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["list"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["list"]}"#,
                r#"{NonResourceURLs:["/x"], Verbs:["get"]}"#,
            ]
        );
    }
}
