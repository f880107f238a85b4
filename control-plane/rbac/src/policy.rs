//! The RBAC rule resolver and authorizer over one cluster's RBAC objects, and the escalation
//! checks the registry applies to writes of roles and bindings.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use k8s_openapi::api::authorization::v1::{NonResourceRule, ResourceRule};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use crate::rules::{compact_string, covers, rule_allows};
use crate::{Attributes, Decision, SYSTEM_MASTERS, UserInfo, service_account_username};

const USER_KIND: &str = "User";
const GROUP_KIND: &str = "Group";
const SERVICE_ACCOUNT_KIND: &str = "ServiceAccount";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// One cluster's RBAC objects, indexed for authorization.
///
/// Built once each time the RBAC objects change, then queried many times. Bindings are indexed by
/// the user name and group names of their subjects (a service account subject under the user name
/// it authenticates as), so a question costs time in the bindings that could apply to the user, not
/// in all bindings. Roles are used with their stored rules: aggregated ClusterRoles must already
/// hold their aggregated rules (see [`crate::aggregate`]), as upstream.
#[derive(Debug, Default)]
pub struct Policy {
    /// Namespace → role name → rules.
    roles: HashMap<String, HashMap<String, Vec<PolicyRule>>>,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    cluster_bindings: Bindings,
    /// Namespace → bindings in that namespace.
    namespace_bindings: HashMap<String, Bindings>,
}

#[derive(Debug)]
struct Binding {
    name: String,
    /// Empty for a ClusterRoleBinding.
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

#[derive(Debug, Default)]
struct Bindings {
    /// Sorted by name, so the binding named in a decision does not depend on input order.
    list: Vec<Binding>,
    by_user: HashMap<String, Vec<usize>>,
    by_group: HashMap<String, Vec<usize>>,
}

impl Bindings {
    fn new(mut list: Vec<Binding>) -> Bindings {
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let mut by_user: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_group: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, b) in list.iter().enumerate() {
            for s in &b.subjects {
                let (map, key) = match s.kind.as_str() {
                    USER_KIND => (&mut by_user, s.name.clone()),
                    GROUP_KIND => (&mut by_group, s.name.clone()),
                    SERVICE_ACCOUNT_KIND => {
                        let ns = subject_namespace(s, &b.namespace);
                        if ns.is_empty() {
                            continue;
                        }
                        (&mut by_user, service_account_username(ns, &s.name))
                    }
                    _ => continue,
                };
                let entry = map.entry(key).or_default();
                if entry.last() != Some(&i) {
                    entry.push(i);
                }
            }
        }
        Bindings {
            list,
            by_user,
            by_group,
        }
    }

    /// The bindings that apply to `user`, each with the first subject that does, in name order.
    fn applicable<'a>(&'a self, user: &UserInfo) -> Vec<(&'a Binding, &'a Subject)> {
        let mut candidates: Vec<usize> = Vec::new();
        candidates.extend(self.by_user.get(&user.name).into_iter().flatten());
        for g in &user.groups {
            candidates.extend(self.by_group.get(g).into_iter().flatten());
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|i| {
                let b = &self.list[i];
                let s = b
                    .subjects
                    .iter()
                    .find(|s| applies_to(user, s, &b.namespace))?;
                Some((b, s))
            })
            .collect()
    }
}

fn subject_namespace<'a>(s: &'a Subject, binding_namespace: &'a str) -> &'a str {
    match s.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => ns,
        _ => binding_namespace,
    }
}

/// Upstream `appliesToUser`.
fn applies_to(user: &UserInfo, s: &Subject, binding_namespace: &str) -> bool {
    match s.kind.as_str() {
        USER_KIND => user.name == s.name,
        GROUP_KIND => user.groups.contains(&s.name),
        SERVICE_ACCOUNT_KIND => {
            let ns = subject_namespace(s, binding_namespace);
            !ns.is_empty() && user.name == service_account_username(ns, &s.name)
        }
        _ => false,
    }
}

/// Upstream's `describeSubject`; note a service account prints as `name/namespace`.
fn describe_subject(s: &Subject, binding_namespace: &str) -> String {
    if s.kind == SERVICE_ACCOUNT_KIND {
        let ns = subject_namespace(s, binding_namespace);
        format!("{} {:?}", s.kind, format!("{}/{}", s.name, ns))
    } else {
        format!("{} {:?}", s.kind, s.name)
    }
}

fn describe_source(b: &Binding, s: &Subject) -> String {
    if b.namespace.is_empty() {
        format!(
            "ClusterRoleBinding {:?} of {} {:?} to {}",
            b.name,
            b.role_ref.kind,
            b.role_ref.name,
            describe_subject(s, "")
        )
    } else {
        format!(
            "RoleBinding {:?} of {} {:?} to {}",
            format!("{}/{}", b.name, b.namespace),
            b.role_ref.kind,
            b.role_ref.name,
            describe_subject(s, &b.namespace)
        )
    }
}

/// Upstream's `utilerrors.NewAggregate(...).Error()`: duplicates dropped, one message bare,
/// several in brackets.
fn aggregate_errors(errors: &[String]) -> String {
    let mut seen = BTreeSet::new();
    let unique: Vec<&str> = errors
        .iter()
        .filter(|e| seen.insert(e.as_str()))
        .map(String::as_str)
        .collect();
    match unique.as_slice() {
        [one] => (*one).to_owned(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// What a user may do in a namespace, as SelfSubjectRulesReview reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubjectRules {
    pub resource_rules: Vec<ResourceRule>,
    pub non_resource_rules: Vec<NonResourceRule>,
    /// Whether the lists may be missing rules. Upstream's RBAC resolver never sets it (a binding to
    /// a missing role is reported in `evaluation_error` instead); it is here for callers that
    /// combine authorizers which cannot enumerate their rules.
    pub incomplete: bool,
    /// Problems met while resolving rules (for example a binding to a role that does not exist).
    pub evaluation_error: Option<String>,
}

impl Policy {
    pub fn new(
        roles: Vec<Role>,
        cluster_roles: Vec<ClusterRole>,
        role_bindings: Vec<RoleBinding>,
        cluster_role_bindings: Vec<ClusterRoleBinding>,
    ) -> Policy {
        let mut role_map: HashMap<String, HashMap<String, Vec<PolicyRule>>> = HashMap::new();
        for r in roles {
            let ns = r.metadata.namespace.unwrap_or_default();
            let name = r.metadata.name.unwrap_or_default();
            role_map
                .entry(ns)
                .or_default()
                .insert(name, r.rules.unwrap_or_default());
        }
        let cluster_role_map = cluster_roles
            .into_iter()
            .map(|r| {
                (
                    r.metadata.name.unwrap_or_default(),
                    r.rules.unwrap_or_default(),
                )
            })
            .collect();
        let mut per_namespace: HashMap<String, Vec<Binding>> = HashMap::new();
        for b in role_bindings {
            let namespace = b.metadata.namespace.unwrap_or_default();
            per_namespace
                .entry(namespace.clone())
                .or_default()
                .push(Binding {
                    name: b.metadata.name.unwrap_or_default(),
                    namespace,
                    role_ref: b.role_ref,
                    subjects: b.subjects.unwrap_or_default(),
                });
        }
        let cluster = cluster_role_bindings
            .into_iter()
            .map(|b| Binding {
                name: b.metadata.name.unwrap_or_default(),
                namespace: String::new(),
                role_ref: b.role_ref,
                subjects: b.subjects.unwrap_or_default(),
            })
            .collect();
        Policy {
            roles: role_map,
            cluster_roles: cluster_role_map,
            cluster_bindings: Bindings::new(cluster),
            namespace_bindings: per_namespace
                .into_iter()
                .map(|(ns, list)| (ns, Bindings::new(list)))
                .collect(),
        }
    }

    /// The rules a role reference grants in `binding_namespace` (upstream
    /// `GetRoleReferenceRules`), or the error upstream reports.
    pub fn role_ref_rules(
        &self,
        role_ref: &RoleRef,
        binding_namespace: &str,
    ) -> Result<&[PolicyRule], String> {
        match role_ref.kind.as_str() {
            "Role" => self
                .roles
                .get(binding_namespace)
                .and_then(|m| m.get(&role_ref.name))
                .map(Vec::as_slice)
                .ok_or_else(|| format!("role.{RBAC_GROUP} {:?} not found", role_ref.name)),
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .map(Vec::as_slice)
                .ok_or_else(|| format!("clusterrole.{RBAC_GROUP} {:?} not found", role_ref.name)),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// Upstream `VisitRulesFor`: every rule granted to `user` by ClusterRoleBindings, then by
    /// RoleBindings in `namespace` (none when it is empty), with the binding and subject that
    /// grant it; a binding whose role cannot be resolved is reported as an error instead.
    fn visit_rules<'a>(
        &'a self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(
            Result<(&'a Binding, &'a Subject, &'a PolicyRule), String>,
        ) -> ControlFlow<()>,
    ) {
        let mut sets = vec![&self.cluster_bindings];
        if !namespace.is_empty()
            && let Some(b) = self.namespace_bindings.get(namespace)
        {
            sets.push(b);
        }
        for bindings in sets {
            for (binding, subject) in bindings.applicable(user) {
                match self.role_ref_rules(&binding.role_ref, &binding.namespace) {
                    Ok(rules) => {
                        for rule in rules {
                            if visit(Ok((binding, subject, rule))).is_break() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        if visit(Err(e)).is_break() {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Upstream `RBACAuthorizer.Authorize`.
    pub fn authorize(&self, a: &Attributes<'_>) -> Decision {
        let mut allowed_by = None;
        let mut errors = Vec::new();
        self.visit_rules(a.user, a.namespace, |item| match item {
            Ok((binding, subject, rule)) => {
                if rule_allows(a, rule) {
                    allowed_by = Some(describe_source(binding, subject));
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            Err(e) => {
                errors.push(e);
                ControlFlow::Continue(())
            }
        });
        match allowed_by {
            Some(source) => Decision::Allow {
                reason: format!("RBAC: allowed by {source}"),
            },
            None if errors.is_empty() => Decision::NoOpinion {
                reason: String::new(),
            },
            None => Decision::NoOpinion {
                reason: format!("RBAC: {}", aggregate_errors(&errors)),
            },
        }
    }

    /// Every rule granted to `user` in `namespace` (cluster-wide ones included), and the errors
    /// met resolving them (upstream `RulesFor`).
    pub fn rules(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        self.visit_rules(user, namespace, |item| {
            match item {
                Ok((_, _, rule)) => rules.push(rule.clone()),
                Err(e) => errors.push(e),
            }
            ControlFlow::Continue(())
        });
        (rules, errors)
    }

    /// The rules for a SelfSubjectRulesReview (upstream `RBACAuthorizer.RulesFor`): a rule with
    /// both resources and non-resource URLs appears in both lists.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> SubjectRules {
        let (rules, errors) = self.rules(user, namespace);
        let mut out = SubjectRules::default();
        for r in rules {
            if r.resources.as_ref().is_some_and(|v| !v.is_empty()) {
                out.resource_rules.push(ResourceRule {
                    verbs: r.verbs.clone(),
                    api_groups: r.api_groups.clone(),
                    resources: r.resources.clone(),
                    resource_names: r.resource_names.clone(),
                });
            }
            if r.non_resource_urls.as_ref().is_some_and(|v| !v.is_empty()) {
                out.non_resource_rules.push(NonResourceRule {
                    verbs: r.verbs,
                    non_resource_urls: r.non_resource_urls,
                });
            }
        }
        if !errors.is_empty() {
            out.evaluation_error = Some(aggregate_errors(&errors));
        }
        out
    }

    /// Whether `user` already holds every permission in `requested` in `namespace` (upstream
    /// `ConfirmNoEscalation`); `Err` carries the broken-down rules they lack. Rules that could not
    /// be resolved count as not held.
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        requested: &[PolicyRule],
    ) -> Result<(), Vec<PolicyRule>> {
        self.escalation_check(user, namespace, requested)
            .map_err(|(missing, _)| missing)
    }

    fn escalation_check(
        &self,
        user: &UserInfo,
        namespace: &str,
        requested: &[PolicyRule],
    ) -> Result<(), (Vec<PolicyRule>, Vec<String>)> {
        let (owned, errors) = self.rules(user, namespace);
        match covers(&owned, requested) {
            (true, _) => Ok(()),
            (false, missing) => Err((missing, errors)),
        }
    }

    /// [`Policy::confirm_no_escalation`] with upstream's error message.
    fn confirm_no_escalation_message(
        &self,
        user: &UserInfo,
        namespace: &str,
        requested: &[PolicyRule],
    ) -> Result<(), String> {
        self.escalation_check(user, namespace, requested)
            .map_err(|(missing, errors)| escalation_message(user, &missing, &errors))
    }
}

/// Upstream's escalation error text: the missing rules compacted, printed and sorted.
fn escalation_message(user: &UserInfo, missing: &[PolicyRule], errors: &[String]) -> String {
    let described: BTreeSet<String> = compact_rules(missing).iter().map(compact_string).collect();
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let mut msg = format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        groups.join(" "),
        described.into_iter().collect::<Vec<_>>().join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!(
            "; resolution errors: [{}]",
            aggregate_errors(errors)
        ));
    }
    msg
}

/// Upstream `CompactRules`: rules naming one group, one resource and at most one resource name,
/// and nothing else, are merged when they differ only in verbs.
fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    let mut simple: HashMap<(String, String, Option<String>), usize> = HashMap::new();
    for r in rules {
        let one = |v: &Option<Vec<String>>| match v.as_deref() {
            Some([x]) => Some(x.clone()),
            _ => None,
        };
        let names = r.resource_names.as_deref().unwrap_or_default();
        let is_simple = names.len() <= 1
            && r.non_resource_urls
                .as_deref()
                .unwrap_or_default()
                .is_empty();
        let key = match (is_simple, one(&r.api_groups), one(&r.resources)) {
            (true, Some(g), Some(res)) => Some((g, res, names.first().cloned())),
            _ => None,
        };
        match key {
            Some(key) => match simple.get(&key) {
                Some(&i) => out[i].verbs.extend(r.verbs.iter().cloned()),
                None => {
                    simple.insert(key, out.len());
                    out.push(r.clone());
                }
            },
            None => out.push(r.clone()),
        }
    }
    out
}

fn in_system_masters(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == SYSTEM_MASTERS)
}

/// Whether `user` may create or update a binding to `role_ref` in `namespace` (empty for a
/// ClusterRoleBinding), as upstream's binding registry decides: members of `system:masters`
/// always may; otherwise the user needs the `bind` verb on the referenced role (resource names
/// honoured, checked in the binding's namespace), or must already hold every rule of the role.
/// `Err` is the message of upstream's Forbidden error.
pub fn may_bind(
    policy: &Policy,
    user: &UserInfo,
    namespace: &str,
    role_ref: &RoleRef,
) -> Result<(), String> {
    if in_system_masters(user) {
        return Ok(());
    }
    let resource = match role_ref.kind.as_str() {
        "ClusterRole" => Some("clusterroles"),
        "Role" => Some("roles"),
        _ => None,
    };
    if let Some(resource) = resource {
        let bind = Attributes {
            user,
            verb: "bind",
            namespace,
            api_group: &role_ref.api_group,
            resource,
            subresource: "",
            name: &role_ref.name,
            resource_request: true,
            path: "",
        };
        if policy.authorize(&bind).is_allowed() {
            return Ok(());
        }
    }
    let rules = policy.role_ref_rules(role_ref, namespace)?;
    policy.confirm_no_escalation_message(user, namespace, rules)
}

/// Whether `user` may create or update a Role (`kind_plural` = `"roles"`, in `namespace`) or a
/// ClusterRole (`"clusterroles"`, `namespace` empty) named `name` with `rules`, as upstream's role
/// registry decides: members of `system:masters` always may; otherwise the user needs the
/// `escalate` verb on it, or must already hold every rule. A ClusterRole with an aggregation rule
/// also needs [`may_set_aggregation_rule`].
pub fn may_write_role(
    policy: &Policy,
    user: &UserInfo,
    namespace: &str,
    kind_plural: &str,
    name: &str,
    rules: &[PolicyRule],
) -> Result<(), String> {
    if in_system_masters(user) {
        return Ok(());
    }
    if matches!(kind_plural, "roles" | "clusterroles") {
        let escalate = Attributes {
            user,
            verb: "escalate",
            namespace,
            api_group: RBAC_GROUP,
            resource: kind_plural,
            subresource: "",
            name,
            resource_request: true,
            path: "",
        };
        if policy.authorize(&escalate).is_allowed() {
            return Ok(());
        }
    }
    policy.confirm_no_escalation_message(user, namespace, rules)
}

/// Whether `user` may set or change a ClusterRole's aggregation rule: since it can gather any
/// rule, upstream requires full authority (`*` on everything and on every non-resource URL),
/// unless the user holds `escalate` on the ClusterRole.
pub fn may_set_aggregation_rule(
    policy: &Policy,
    user: &UserInfo,
    name: &str,
) -> Result<(), String> {
    if in_system_masters(user) {
        return Ok(());
    }
    let escalate = Attributes {
        user,
        verb: "escalate",
        namespace: "",
        api_group: RBAC_GROUP,
        resource: "clusterroles",
        subresource: "",
        name,
        resource_request: true,
        path: "",
    };
    if policy.authorize(&escalate).is_allowed() {
        return Ok(());
    }
    let all = |r: PolicyRule| PolicyRule {
        verbs: vec!["*".into()],
        ..r
    };
    let full = [
        all(PolicyRule {
            api_groups: Some(vec!["*".into()]),
            resources: Some(vec!["*".into()]),
            ..PolicyRule::default()
        }),
        all(PolicyRule {
            non_resource_urls: Some(vec!["*".into()]),
            ..PolicyRule::default()
        }),
    ];
    policy
        .confirm_no_escalation(user, "", &full)
        .map_err(|_| "must have cluster-admin privileges to use the aggregationRule".to_owned())
}

#[cfg(test)]
pub(crate) mod tests;
