use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::rules::tests::{named, rule, urls};

pub(crate) fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..UserInfo::default()
    }
}

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: (!namespace.is_empty()).then(|| namespace.into()),
        ..ObjectMeta::default()
    }
}

pub(crate) fn subject(kind: &str, name: &str, namespace: Option<&str>) -> Subject {
    Subject {
        kind: kind.into(),
        name: name.into(),
        namespace: namespace.map(Into::into),
        api_group: (kind != SERVICE_ACCOUNT_KIND).then(|| RBAC_GROUP.into()),
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: RBAC_GROUP.into(),
        kind: kind.into(),
        name: name.into(),
    }
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: meta("", name),
        rules: Some(rules),
        ..ClusterRole::default()
    }
}

fn role(ns: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    Role {
        metadata: meta(ns, name),
        rules: Some(rules),
    }
}

fn crb(name: &str, role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta("", name),
        role_ref: role_ref("ClusterRole", role),
        subjects: Some(subjects),
    }
}

fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: Vec<Subject>) -> RoleBinding {
    RoleBinding {
        metadata: meta(ns, name),
        role_ref: role_ref(kind, role),
        subjects: Some(subjects),
    }
}

pub(crate) fn res<'a>(
    u: &'a UserInfo,
    verb: &'a str,
    ns: &'a str,
    group: &'a str,
    resource: &'a str,
    sub: &'a str,
    name: &'a str,
) -> Attributes<'a> {
    Attributes {
        user: u,
        verb,
        namespace: ns,
        api_group: group,
        resource,
        subresource: sub,
        name,
        resource_request: true,
        path: "",
    }
}

pub(crate) fn nonres<'a>(u: &'a UserInfo, verb: &'a str, path: &'a str) -> Attributes<'a> {
    Attributes {
        user: u,
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

fn view_rules() -> Vec<PolicyRule> {
    vec![rule(
        &[""],
        &["pods", "configmaps", "services"],
        &["get", "list", "watch"],
    )]
}

fn sample() -> Policy {
    Policy::new(
        vec![
            role(
                "team-a",
                "cm-writer",
                vec![rule(&[""], &["configmaps"], &["create", "update"])],
            ),
            role(
                "team-b",
                "only-in-b",
                vec![rule(&[""], &["pods"], &["delete"])],
            ),
        ],
        vec![
            cluster_role("view", view_rules()),
            cluster_role("health", vec![urls(&["/healthz", "/api/*"], &["get"])]),
            cluster_role("scaler", vec![rule(&["apps"], &["*/scale"], &["update"])]),
            cluster_role(
                "secret-a",
                vec![named(rule(&[""], &["secrets"], &["get"]), &["a"])],
            ),
        ],
        vec![
            rb(
                "team-a",
                "alice-view",
                "ClusterRole",
                "view",
                vec![subject("User", "alice", None)],
            ),
            rb(
                "team-a",
                "alice-cm",
                "Role",
                "cm-writer",
                vec![subject("User", "alice", None)],
            ),
            // A RoleBinding may not reference a Role of another namespace.
            rb(
                "team-a",
                "alice-b",
                "Role",
                "only-in-b",
                vec![subject("User", "alice", None)],
            ),
            rb(
                "team-a",
                "robots",
                "ClusterRole",
                "view",
                vec![subject("ServiceAccount", "robot", None)],
            ),
            rb(
                "team-b",
                "all-sas-of-a",
                "ClusterRole",
                "view",
                vec![subject("Group", "system:serviceaccounts:team-a", None)],
            ),
            rb(
                "team-a",
                "secret-a",
                "ClusterRole",
                "secret-a",
                vec![subject("Group", "readers", None)],
            ),
        ],
        vec![
            crb(
                "health",
                "health",
                vec![subject("Group", "system:authenticated", None)],
            ),
            crb("scaler", "scaler", vec![subject("User", "bob", None)]),
            crb(
                "sa-cluster",
                "view",
                vec![
                    subject("ServiceAccount", "watcher", Some("ops")),
                    // Without a namespace a ClusterRoleBinding's service account matches no one.
                    subject("ServiceAccount", "nobody", None),
                ],
            ),
            crb(
                "dangling",
                "missing-role",
                vec![subject("User", "carol", None)],
            ),
        ],
    )
}

#[test]
fn view_in_one_namespace_only() {
    let p = sample();
    let alice = user("alice", &["system:authenticated"]);
    assert!(
        p.authorize(&res(&alice, "list", "team-a", "", "pods", "", ""))
            .is_allowed()
    );
    assert!(
        p.authorize(&res(&alice, "get", "team-a", "", "pods", "", "x"))
            .is_allowed()
    );
    assert!(
        !p.authorize(&res(&alice, "list", "team-b", "", "pods", "", ""))
            .is_allowed()
    );
    // Cluster-wide: a RoleBinding grants nothing there.
    assert!(
        !p.authorize(&res(&alice, "list", "", "", "pods", "", ""))
            .is_allowed()
    );
    assert!(
        !p.authorize(&res(&alice, "get", "team-a", "", "secrets", "", "a"))
            .is_allowed()
    );
    assert!(
        !p.authorize(&res(&alice, "delete", "team-a", "", "pods", "", "x"))
            .is_allowed()
    );
    assert!(
        !p.authorize(&res(&alice, "get", "team-a", "", "pods", "log", "x"))
            .is_allowed()
    );
    // The Role of the binding's namespace, not another's.
    assert!(
        p.authorize(&res(&alice, "update", "team-a", "", "configmaps", "", "x"))
            .is_allowed()
    );
    assert!(
        !p.authorize(&res(&alice, "delete", "team-a", "", "pods", "", "x"))
            .is_allowed()
    );
    assert!(
        !p.authorize(&res(&alice, "delete", "team-b", "", "pods", "", "x"))
            .is_allowed()
    );
}

#[test]
fn reasons_name_binding_role_and_subject() {
    let p = sample();
    let alice = user("alice", &["system:authenticated"]);
    assert_eq!(
        p.authorize(&res(&alice, "list", "team-a", "", "pods", "", "")),
        Decision::Allow {
            reason: r#"RBAC: allowed by RoleBinding "alice-view/team-a" of ClusterRole "view" to User "alice""#.into()
        }
    );
    assert_eq!(
        p.authorize(&nonres(&alice, "get", "/healthz")),
        Decision::Allow {
            reason: r#"RBAC: allowed by ClusterRoleBinding "health" of ClusterRole "health" to Group "system:authenticated""#.into()
        }
    );
    let sa = user("system:serviceaccount:team-a:robot", &[]);
    assert_eq!(
        p.authorize(&res(&sa, "get", "team-a", "", "services", "", "s"))
            .reason(),
        r#"RBAC: allowed by RoleBinding "robots/team-a" of ClusterRole "view" to ServiceAccount "robot/team-a""#
    );
    // The dangling role of a binding is reported, nothing else.
    let carol = user("carol", &[]);
    assert_eq!(
        p.authorize(&res(&carol, "get", "", "", "nodes", "", "")),
        Decision::NoOpinion {
            reason: r#"RBAC: clusterrole.rbac.authorization.k8s.io "missing-role" not found"#
                .into()
        }
    );
    assert_eq!(
        p.authorize(&res(&user("nobody", &[]), "get", "", "", "nodes", "", "")),
        Decision::NoOpinion {
            reason: String::new()
        }
    );
}

#[test]
fn non_resource_urls() {
    let p = sample();
    let u = user("u", &["system:authenticated"]);
    assert!(p.authorize(&nonres(&u, "get", "/healthz")).is_allowed());
    assert!(p.authorize(&nonres(&u, "get", "/api/v1")).is_allowed());
    assert!(!p.authorize(&nonres(&u, "get", "/api")).is_allowed());
    assert!(!p.authorize(&nonres(&u, "post", "/healthz")).is_allowed());
    assert!(!p.authorize(&nonres(&u, "get", "/metrics")).is_allowed());
    let anon = user("system:anonymous", &["system:unauthenticated"]);
    assert!(!p.authorize(&nonres(&anon, "get", "/healthz")).is_allowed());
}

#[test]
fn service_account_subjects_and_groups() {
    let p = sample();
    let robot = user(
        "system:serviceaccount:team-a:robot",
        &["system:serviceaccounts", "system:serviceaccounts:team-a"],
    );
    assert!(
        p.authorize(&res(&robot, "list", "team-a", "", "pods", "", ""))
            .is_allowed()
    );
    // Through the per-namespace service-account group.
    assert!(
        p.authorize(&res(&robot, "list", "team-b", "", "pods", "", ""))
            .is_allowed()
    );
    let other = user(
        "system:serviceaccount:team-c:robot",
        &["system:serviceaccounts", "system:serviceaccounts:team-c"],
    );
    assert!(
        !p.authorize(&res(&other, "list", "team-a", "", "pods", "", ""))
            .is_allowed()
    );
    assert!(
        !p.authorize(&res(&other, "list", "team-b", "", "pods", "", ""))
            .is_allowed()
    );
    // A ClusterRoleBinding's service account with a namespace applies everywhere.
    let watcher = user("system:serviceaccount:ops:watcher", &[]);
    assert!(
        p.authorize(&res(&watcher, "list", "", "", "pods", "", ""))
            .is_allowed()
    );
    assert!(
        p.authorize(&res(&watcher, "list", "zzz", "", "pods", "", ""))
            .is_allowed()
    );
    // …and without one, nowhere.
    for name in ["system:serviceaccount::nobody", "nobody"] {
        let u = user(name, &[]);
        assert!(
            !p.authorize(&res(&u, "list", "", "", "pods", "", ""))
                .is_allowed()
        );
    }
    // A user named like a service account is not one unless the name matches exactly.
    let fake = user("robot", &[]);
    assert!(
        !p.authorize(&res(&fake, "list", "team-a", "", "pods", "", ""))
            .is_allowed()
    );
}

#[test]
fn subresource_wildcard_and_resource_names() {
    let p = sample();
    let bob = user("bob", &[]);
    assert!(
        p.authorize(&res(
            &bob,
            "update",
            "x",
            "apps",
            "deployments",
            "scale",
            "d"
        ))
        .is_allowed()
    );
    assert!(
        p.authorize(&res(
            &bob,
            "update",
            "",
            "apps",
            "statefulsets",
            "scale",
            "d"
        ))
        .is_allowed()
    );
    assert!(
        !p.authorize(&res(&bob, "update", "x", "apps", "deployments", "", "d"))
            .is_allowed()
    );
    assert!(
        !p.authorize(&res(
            &bob,
            "update",
            "x",
            "",
            "replicationcontrollers",
            "scale",
            "d"
        ))
        .is_allowed()
    );
    let reader = user("r", &["readers"]);
    assert!(
        p.authorize(&res(&reader, "get", "team-a", "", "secrets", "", "a"))
            .is_allowed()
    );
    assert!(
        !p.authorize(&res(&reader, "get", "team-a", "", "secrets", "", "b"))
            .is_allowed()
    );
    assert!(
        !p.authorize(&res(&reader, "list", "team-a", "", "secrets", "", ""))
            .is_allowed()
    );
}

#[test]
fn rules_for_lists_cluster_and_namespace_rules() {
    let p = sample();
    let alice = user("alice", &["system:authenticated"]);
    let r = p.rules_for(&alice, "team-a");
    assert_eq!(r.non_resource_rules.len(), 1);
    assert_eq!(
        r.non_resource_rules[0].non_resource_urls.as_deref(),
        Some(&["/healthz".to_string(), "/api/*".to_string()][..])
    );
    // view + cm-writer; only-in-b cannot be resolved in team-a.
    assert_eq!(r.resource_rules.len(), 2);
    assert!(!r.incomplete);
    assert_eq!(
        r.evaluation_error.as_deref(),
        Some(r#"role.rbac.authorization.k8s.io "only-in-b" not found"#)
    );
    let elsewhere = p.rules_for(&alice, "team-b");
    assert!(elsewhere.resource_rules.is_empty());
    assert_eq!(elsewhere.evaluation_error, None);
}

#[test]
fn index_scales_to_many_bindings() {
    let n = 5000;
    let bindings = (0..n)
        .map(|i| {
            rb(
                "ns",
                &format!("b{i}"),
                "ClusterRole",
                "view",
                vec![subject("User", &format!("u{i}"), None)],
            )
        })
        .collect();
    let p = Policy::new(
        vec![],
        vec![cluster_role("view", view_rules())],
        bindings,
        vec![],
    );
    let u = user("u4321", &[]);
    let a = res(&u, "get", "ns", "", "pods", "", "x");
    assert_eq!(
        p.authorize(&a).reason(),
        r#"RBAC: allowed by RoleBinding "b4321/ns" of ClusterRole "view" to User "u4321""#
    );
    assert_eq!(p.namespace_bindings["ns"].applicable(&u).len(), 1);
}

#[test]
fn escalation_on_role_writes() {
    let p = Policy::new(
        vec![],
        vec![
            cluster_role("view", view_rules()),
            cluster_role(
                "role-admin",
                vec![rule(
                    &["rbac.authorization.k8s.io"],
                    &["roles", "rolebindings"],
                    &["create", "update", "get", "list"],
                )],
            ),
            cluster_role(
                "escalator",
                vec![rule(
                    &["rbac.authorization.k8s.io"],
                    &["roles"],
                    &["escalate"],
                )],
            ),
        ],
        vec![
            rb(
                "ns",
                "v",
                "ClusterRole",
                "view",
                vec![subject("User", "dana", None), subject("User", "eve", None)],
            ),
            rb(
                "ns",
                "ra",
                "ClusterRole",
                "role-admin",
                vec![subject("User", "dana", None), subject("User", "eve", None)],
            ),
            rb(
                "ns",
                "esc",
                "ClusterRole",
                "escalator",
                vec![subject("User", "eve", None)],
            ),
        ],
        vec![],
    );
    let dana = user("dana", &["devs"]);
    let fine = vec![rule(&[""], &["pods"], &["get", "list"])];
    assert_eq!(p.confirm_no_escalation(&dana, "ns", &fine), Ok(()));
    assert_eq!(may_write_role(&p, &dana, "ns", "roles", "r", &fine), Ok(()));
    // Not in another namespace, where dana holds nothing.
    assert!(may_write_role(&p, &dana, "other", "roles", "r", &fine).is_err());
    let too_much = vec![rule(&[""], &["pods", "secrets"], &["get", "delete"])];
    let missing = p.confirm_no_escalation(&dana, "ns", &too_much).unwrap_err();
    assert_eq!(missing.len(), 3);
    assert_eq!(
        may_write_role(&p, &dana, "ns", "roles", "r", &too_much),
        Err("user \"dana\" (groups=[\"devs\"]) is attempting to grant RBAC permissions not currently held:\n\
             {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n\
             {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}"
            .into())
    );
    // escalate on roles lifts the check, for roles only.
    let eve = user("eve", &[]);
    assert_eq!(
        may_write_role(&p, &eve, "ns", "roles", "r", &too_much),
        Ok(())
    );
    assert!(may_write_role(&p, &eve, "ns", "clusterroles", "r", &too_much).is_err());
    // system:masters may do anything.
    let root = user("root", &["system:masters"]);
    assert_eq!(
        may_write_role(&p, &root, "", "clusterroles", "r", &too_much),
        Ok(())
    );
    assert_eq!(may_set_aggregation_rule(&p, &root, "r"), Ok(()));
    assert!(may_set_aggregation_rule(&p, &dana, "r").is_err());
}

#[test]
fn binding_needs_bind_or_coverage() {
    let p = Policy::new(
        vec![role("ns", "small", vec![rule(&[""], &["pods"], &["get"])])],
        vec![
            cluster_role("view", view_rules()),
            cluster_role("admin", vec![rule(&["*"], &["*"], &["*"])]),
            cluster_role(
                "binder",
                vec![named(
                    rule(&["rbac.authorization.k8s.io"], &["clusterroles"], &["bind"]),
                    &["admin"],
                )],
            ),
        ],
        vec![
            rb(
                "ns",
                "v",
                "ClusterRole",
                "view",
                vec![subject("User", "fay", None), subject("User", "gus", None)],
            ),
            rb(
                "ns",
                "b",
                "ClusterRole",
                "binder",
                vec![subject("User", "gus", None)],
            ),
        ],
        vec![],
    );
    let fay = user("fay", &[]);
    // Holds every rule of view and of the small Role in ns.
    assert_eq!(
        may_bind(&p, &fay, "ns", &role_ref("ClusterRole", "view")),
        Ok(())
    );
    assert_eq!(may_bind(&p, &fay, "ns", &role_ref("Role", "small")), Ok(()));
    // Not cluster-wide, where fay holds nothing.
    assert!(may_bind(&p, &fay, "", &role_ref("ClusterRole", "view")).is_err());
    assert!(may_bind(&p, &fay, "ns", &role_ref("ClusterRole", "admin")).is_err());
    assert_eq!(
        may_bind(&p, &fay, "ns", &role_ref("ClusterRole", "nope")),
        Err(r#"clusterrole.rbac.authorization.k8s.io "nope" not found"#.into())
    );
    // bind on clusterroles named admin, in ns only.
    let gus = user("gus", &[]);
    assert_eq!(
        may_bind(&p, &gus, "ns", &role_ref("ClusterRole", "admin")),
        Ok(())
    );
    assert!(may_bind(&p, &gus, "other", &role_ref("ClusterRole", "admin")).is_err());
    assert!(may_bind(&p, &gus, "ns", &role_ref("Role", "admin")).is_err());
}
