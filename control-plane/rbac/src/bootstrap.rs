//! The bootstrap policy: the roles and bindings upstream's API server reconciles at startup
//! (`bootstrappolicy.ClusterRoles()`, `ClusterRoleBindings()`, `NamespaceRoles()`,
//! `NamespaceRoleBindings()` for Kubernetes 1.33 with default feature gates), plus the bindings
//! kubeadm adds so nodes can join with bootstrap tokens.
//!
//! Deliberately absent: the per-controller roles (`system:controller:*` ClusterRoles), since
//! Berth's controllers do not authenticate as upstream's service accounts, and rules behind
//! feature gates that are off by default.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
    Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

/// The label every bootstrap object carries.
pub const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";
/// Its value.
pub const BOOTSTRAPPING_VALUE: &str = "rbac-defaults";
/// The annotation that lets startup reconciliation update an object; set to `"false"` by an
/// administrator to keep their changes.
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const LEGACY: &str = "";
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// The RBAC objects the API server ensures exist at startup.
#[derive(Clone, Debug, Default)]
pub struct BootstrapPolicy {
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// With their namespaces set.
    pub roles: Vec<Role>,
    /// With their namespaces set.
    pub role_bindings: Vec<RoleBinding>,
}

/// A rule under construction; lists are sorted when it is built, as upstream's rule builder does.
struct Rule(PolicyRule);

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn rule(verbs: &[&str]) -> Rule {
    Rule(PolicyRule {
        verbs: strings(verbs),
        ..PolicyRule::default()
    })
}

impl Rule {
    fn groups(mut self, g: &[&str]) -> Rule {
        self.0.api_groups = Some(strings(g));
        self
    }

    fn resources(mut self, r: &[&str]) -> Rule {
        self.0.resources = Some(strings(r));
        self
    }

    fn names(mut self, n: &[&str]) -> Rule {
        self.0.resource_names = Some(strings(n));
        self
    }

    fn urls(mut self, u: &[&str]) -> Rule {
        self.0.non_resource_urls = Some(strings(u));
        self
    }

    fn build(self) -> PolicyRule {
        let mut r = self.0;
        for list in [
            &mut r.api_groups,
            &mut r.resources,
            &mut r.resource_names,
            &mut r.non_resource_urls,
        ]
        .into_iter()
        .flatten()
        {
            list.sort();
        }
        r.verbs.sort();
        r
    }
}

fn events_rule() -> PolicyRule {
    rule(&["create", "update", "patch"])
        .groups(&[LEGACY, "events.k8s.io"])
        .resources(&["events"])
        .build()
}

fn meta(namespace: Option<&str>, name: &str, extra_labels: &[&str]) -> ObjectMeta {
    let mut labels = BTreeMap::from([(
        BOOTSTRAPPING_LABEL.to_owned(),
        BOOTSTRAPPING_VALUE.to_owned(),
    )]);
    for l in extra_labels {
        labels.insert((*l).to_owned(), "true".to_owned());
    }
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels),
        annotations: Some(BTreeMap::from([(
            AUTOUPDATE_ANNOTATION.to_owned(),
            "true".to_owned(),
        )])),
        ..ObjectMeta::default()
    }
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: meta(None, name, &[]),
        rules: Some(rules),
        aggregation_rule: None,
    }
}

fn labelled(mut role: ClusterRole, labels: &[&str]) -> ClusterRole {
    let map = role.metadata.labels.get_or_insert_with(BTreeMap::new);
    for l in labels {
        map.insert((*l).to_owned(), "true".to_owned());
    }
    role
}

const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

/// An aggregated role: no rules of its own until the aggregation controller fills them in.
fn aggregated(name: &str, selects: &str, labels: &[&str]) -> ClusterRole {
    ClusterRole {
        metadata: meta(None, name, labels),
        rules: None,
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: Some(vec![LabelSelector {
                match_labels: Some(BTreeMap::from([(selects.to_owned(), "true".to_owned())])),
                match_expressions: None,
            }]),
        }),
    }
}

fn signer_approver(name: &str, signer: &str) -> ClusterRole {
    cluster_role(
        name,
        vec![
            rule(&["approve"])
                .groups(&["certificates.k8s.io"])
                .resources(&["signers"])
                .names(&[signer])
                .build(),
        ],
    )
}

/// The rules of `system:node`, which are also the node authorizer's static rules.
pub(crate) fn node_policy_rules() -> Vec<PolicyRule> {
    vec![
        // Kubelets authenticate and authorize their API callers through the API server.
        rule(&["create"])
            .groups(&["authentication.k8s.io"])
            .resources(&["tokenreviews"])
            .build(),
        rule(&["create"])
            .groups(&["authorization.k8s.io"])
            .resources(&["subjectaccessreviews", "localsubjectaccessreviews"])
            .build(),
        rule(READ)
            .groups(&[LEGACY])
            .resources(&["services"])
            .build(),
        rule(&["create", "get", "list", "watch"])
            .groups(&[LEGACY])
            .resources(&["nodes"])
            .build(),
        rule(&["update", "patch"])
            .groups(&[LEGACY])
            .resources(&["nodes/status"])
            .build(),
        rule(&["update", "patch"])
            .groups(&[LEGACY])
            .resources(&["nodes"])
            .build(),
        rule(&["create", "update", "patch"])
            .groups(&[LEGACY])
            .resources(&["events"])
            .build(),
        rule(READ).groups(&[LEGACY]).resources(&["pods"]).build(),
        rule(&["create", "delete"])
            .groups(&[LEGACY])
            .resources(&["pods"])
            .build(),
        rule(&["update", "patch"])
            .groups(&[LEGACY])
            .resources(&["pods/status"])
            .build(),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["pods/eviction"])
            .build(),
        rule(READ)
            .groups(&[LEGACY])
            .resources(&["secrets", "configmaps"])
            .build(),
        rule(&["get"])
            .groups(&[LEGACY])
            .resources(&["persistentvolumeclaims", "persistentvolumes"])
            .build(),
        rule(&["get"])
            .groups(&[LEGACY])
            .resources(&["endpoints"])
            .build(),
        rule(&["create", "get", "list", "watch"])
            .groups(&["certificates.k8s.io"])
            .resources(&["certificatesigningrequests"])
            .build(),
        rule(&["get", "create", "update", "patch", "delete"])
            .groups(&["coordination.k8s.io"])
            .resources(&["leases"])
            .build(),
        rule(&["get"])
            .groups(&["storage.k8s.io"])
            .resources(&["volumeattachments"])
            .build(),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["serviceaccounts/token"])
            .build(),
        rule(&["get", "update", "patch"])
            .groups(&[LEGACY])
            .resources(&["persistentvolumeclaims/status"])
            .build(),
        rule(READ)
            .groups(&["storage.k8s.io"])
            .resources(&["csidrivers"])
            .build(),
        rule(&["get", "create", "update", "patch", "delete"])
            .groups(&["storage.k8s.io"])
            .resources(&["csinodes"])
            .build(),
        rule(READ)
            .groups(&["node.k8s.io"])
            .resources(&["runtimeclasses"])
            .build(),
    ]
}

fn aggregate_to_admin() -> Vec<PolicyRule> {
    vec![
        rule(&["create"])
            .groups(&["authorization.k8s.io"])
            .resources(&["localsubjectaccessreviews"])
            .build(),
        rule(READ_WRITE)
            .groups(&[RBAC_GROUP])
            .resources(&["roles", "rolebindings"])
            .build(),
    ]
}

fn aggregate_to_edit() -> Vec<PolicyRule> {
    vec![
        // Reading secrets and the power to run code in pods go with the power to edit.
        rule(READ)
            .groups(&[LEGACY])
            .resources(&[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ])
            .build(),
        rule(&["impersonate"])
            .groups(&[LEGACY])
            .resources(&["serviceaccounts"])
            .build(),
        rule(WRITE)
            .groups(&[LEGACY])
            .resources(&[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ])
            .build(),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["pods/eviction"])
            .build(),
        rule(WRITE)
            .groups(&[LEGACY])
            .resources(&[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ])
            .build(),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["serviceaccounts/token"])
            .build(),
        rule(WRITE)
            .groups(&["apps"])
            .resources(&[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ])
            .build(),
        rule(WRITE)
            .groups(&["autoscaling"])
            .resources(&["horizontalpodautoscalers"])
            .build(),
        rule(WRITE)
            .groups(&["batch"])
            .resources(&["jobs", "cronjobs"])
            .build(),
        rule(WRITE)
            .groups(&["extensions"])
            .resources(&[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ])
            .build(),
        rule(WRITE)
            .groups(&["policy"])
            .resources(&["poddisruptionbudgets"])
            .build(),
        rule(WRITE)
            .groups(&["networking.k8s.io"])
            .resources(&["networkpolicies", "ingresses"])
            .build(),
        rule(READ_WRITE)
            .groups(&["coordination.k8s.io"])
            .resources(&["leases"])
            .build(),
    ]
}

fn aggregate_to_view() -> Vec<PolicyRule> {
    vec![
        rule(READ)
            .groups(&[LEGACY])
            .resources(&[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ])
            .build(),
        rule(READ)
            .groups(&[LEGACY])
            .resources(&[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ])
            .build(),
        // Namespaces are readable by name only, since listing them is cluster-scoped.
        rule(READ)
            .groups(&[LEGACY])
            .resources(&["namespaces"])
            .build(),
        rule(READ)
            .groups(&["discovery.k8s.io"])
            .resources(&["endpointslices"])
            .build(),
        rule(READ)
            .groups(&["apps"])
            .resources(&[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ])
            .build(),
        rule(READ)
            .groups(&["autoscaling"])
            .resources(&[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ])
            .build(),
        rule(READ)
            .groups(&["batch"])
            .resources(&["jobs", "jobs/status", "cronjobs", "cronjobs/status"])
            .build(),
        rule(READ)
            .groups(&["extensions"])
            .resources(&[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ])
            .build(),
        rule(READ)
            .groups(&["policy"])
            .resources(&["poddisruptionbudgets", "poddisruptionbudgets/status"])
            .build(),
        rule(READ)
            .groups(&["networking.k8s.io"])
            .resources(&["networkpolicies", "ingresses", "ingresses/status"])
            .build(),
    ]
}

fn cluster_roles() -> Vec<ClusterRole> {
    let lease_rules = |holder: &str| {
        vec![
            rule(&["create"])
                .groups(&["coordination.k8s.io"])
                .resources(&["leases"])
                .build(),
            rule(&["get", "update"])
                .groups(&["coordination.k8s.io"])
                .resources(&["leases"])
                .names(&[holder])
                .build(),
        ]
    };
    let mut controller_manager = vec![events_rule()];
    controller_manager.extend(lease_rules("kube-controller-manager"));
    controller_manager.extend([
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["secrets", "serviceaccounts"])
            .build(),
        rule(&["delete"])
            .groups(&[LEGACY])
            .resources(&["secrets"])
            .build(),
        rule(&["get"])
            .groups(&[LEGACY])
            .resources(&["namespaces", "secrets", "serviceaccounts", "configmaps"])
            .build(),
        rule(&["update"])
            .groups(&[LEGACY])
            .resources(&["secrets", "serviceaccounts"])
            .build(),
        rule(&["create"])
            .groups(&["authentication.k8s.io"])
            .resources(&["tokenreviews"])
            .build(),
        rule(&["create"])
            .groups(&["authorization.k8s.io"])
            .resources(&["subjectaccessreviews"])
            .build(),
        // It needs to watch everything for the garbage collector and quota.
        rule(&["list", "watch"])
            .groups(&["*"])
            .resources(&["*"])
            .build(),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["serviceaccounts/token"])
            .build(),
    ]);
    let mut scheduler = vec![events_rule()];
    scheduler.extend(lease_rules("kube-scheduler"));
    scheduler.extend([
        rule(READ).groups(&[LEGACY]).resources(&["nodes"]).build(),
        rule(&["get", "list", "watch", "delete"])
            .groups(&[LEGACY])
            .resources(&["pods"])
            .build(),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["pods/binding", "bindings"])
            .build(),
        rule(&["patch", "update"])
            .groups(&[LEGACY])
            .resources(&["pods/status"])
            .build(),
        rule(READ)
            .groups(&[LEGACY])
            .resources(&["replicationcontrollers", "services"])
            .build(),
        rule(READ)
            .groups(&["apps", "extensions"])
            .resources(&["replicasets"])
            .build(),
        rule(READ)
            .groups(&["apps"])
            .resources(&["statefulsets"])
            .build(),
        rule(READ)
            .groups(&["policy"])
            .resources(&["poddisruptionbudgets"])
            .build(),
        rule(READ)
            .groups(&[LEGACY])
            .resources(&["persistentvolumeclaims", "persistentvolumes"])
            .build(),
        rule(&["create"])
            .groups(&["authentication.k8s.io"])
            .resources(&["tokenreviews"])
            .build(),
        rule(&["create"])
            .groups(&["authorization.k8s.io"])
            .resources(&["subjectaccessreviews"])
            .build(),
        rule(READ)
            .groups(&["storage.k8s.io"])
            .resources(&["csinodes"])
            .build(),
        rule(READ)
            .groups(&[LEGACY])
            .resources(&["namespaces"])
            .build(),
        rule(READ)
            .groups(&["storage.k8s.io"])
            .resources(&["csidrivers"])
            .build(),
        rule(READ)
            .groups(&["storage.k8s.io"])
            .resources(&["csistoragecapacities"])
            .build(),
    ]);

    let mut roles = vec![
        cluster_role(
            "cluster-admin",
            vec![
                rule(&["*"]).groups(&["*"]).resources(&["*"]).build(),
                rule(&["*"]).urls(&["*"]).build(),
            ],
        ),
        cluster_role(
            "system:discovery",
            vec![
                rule(&["get"])
                    .urls(&[
                        "/livez",
                        "/readyz",
                        "/healthz",
                        "/version",
                        "/version/",
                        "/openapi",
                        "/openapi/*",
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                    ])
                    .build(),
            ],
        ),
        cluster_role(
            "system:monitoring",
            vec![
                rule(&["get"])
                    .urls(&[
                        "/metrics",
                        "/metrics/slis",
                        "/livez",
                        "/readyz",
                        "/healthz",
                        "/livez/*",
                        "/readyz/*",
                        "/healthz/*",
                    ])
                    .build(),
            ],
        ),
        cluster_role(
            "system:basic-user",
            vec![
                rule(&["create"])
                    .groups(&["authorization.k8s.io"])
                    .resources(&["selfsubjectaccessreviews", "selfsubjectrulesreviews"])
                    .build(),
                rule(&["create"])
                    .groups(&["authentication.k8s.io"])
                    .resources(&["selfsubjectreviews"])
                    .build(),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            vec![
                rule(&["get"])
                    .urls(&["/livez", "/readyz", "/healthz", "/version", "/version/"])
                    .build(),
            ],
        ),
        aggregated("admin", AGGREGATE_TO_ADMIN, &[]),
        aggregated("edit", AGGREGATE_TO_EDIT, &[AGGREGATE_TO_ADMIN]),
        aggregated("view", AGGREGATE_TO_VIEW, &[AGGREGATE_TO_EDIT]),
        labelled(
            cluster_role("system:aggregate-to-admin", aggregate_to_admin()),
            &[AGGREGATE_TO_ADMIN],
        ),
        labelled(
            cluster_role("system:aggregate-to-edit", aggregate_to_edit()),
            &[AGGREGATE_TO_EDIT],
        ),
        labelled(
            cluster_role("system:aggregate-to-view", aggregate_to_view()),
            &[AGGREGATE_TO_VIEW],
        ),
        cluster_role(
            "system:heapster",
            vec![
                rule(READ)
                    .groups(&[LEGACY])
                    .resources(&["events", "pods", "nodes", "namespaces"])
                    .build(),
                rule(READ)
                    .groups(&["extensions"])
                    .resources(&["deployments"])
                    .build(),
            ],
        ),
        cluster_role("system:node", node_policy_rules()),
        cluster_role(
            "system:node-problem-detector",
            vec![
                rule(&["get"])
                    .groups(&[LEGACY])
                    .resources(&["nodes"])
                    .build(),
                rule(&["patch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes/status"])
                    .build(),
                events_rule(),
            ],
        ),
        cluster_role(
            "system:kubelet-api-admin",
            vec![
                rule(READ).groups(&[LEGACY]).resources(&["nodes"]).build(),
                rule(&["proxy"])
                    .groups(&[LEGACY])
                    .resources(&["nodes"])
                    .build(),
                rule(&["*"])
                    .groups(&[LEGACY])
                    .resources(&["nodes/proxy", "nodes/metrics", "nodes/stats", "nodes/log"])
                    .build(),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            vec![
                rule(&["create", "get", "list", "watch"])
                    .groups(&["certificates.k8s.io"])
                    .resources(&["certificatesigningrequests"])
                    .build(),
            ],
        ),
        cluster_role(
            "system:auth-delegator",
            vec![
                rule(&["create"])
                    .groups(&["authentication.k8s.io"])
                    .resources(&["tokenreviews"])
                    .build(),
                rule(&["create"])
                    .groups(&["authorization.k8s.io"])
                    .resources(&["subjectaccessreviews"])
                    .build(),
            ],
        ),
        cluster_role(
            "system:kube-aggregator",
            vec![
                rule(READ)
                    .groups(&[LEGACY])
                    .resources(&["services", "endpoints"])
                    .build(),
            ],
        ),
        cluster_role("system:kube-controller-manager", controller_manager),
        cluster_role("system:kube-scheduler", scheduler),
        cluster_role(
            "system:kube-dns",
            vec![
                rule(&["list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["endpoints", "services"])
                    .build(),
            ],
        ),
        cluster_role(
            "system:persistent-volume-provisioner",
            vec![
                rule(&["get", "list", "watch", "create", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumes"])
                    .build(),
                rule(&["get", "list", "watch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"])
                    .build(),
                rule(READ)
                    .groups(&["storage.k8s.io"])
                    .resources(&["storageclasses"])
                    .build(),
                rule(&["watch"])
                    .groups(&[LEGACY])
                    .resources(&["events"])
                    .build(),
                events_rule(),
            ],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![
                rule(&["create"])
                    .groups(&["certificates.k8s.io"])
                    .resources(&["certificatesigningrequests/nodeclient"])
                    .build(),
            ],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![
                rule(&["create"])
                    .groups(&["certificates.k8s.io"])
                    .resources(&["certificatesigningrequests/selfnodeclient"])
                    .build(),
            ],
        ),
        signer_approver(
            "system:certificates.k8s.io:kube-apiserver-client-approver",
            "kubernetes.io/kube-apiserver-client",
        ),
        signer_approver(
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            "kubernetes.io/kube-apiserver-client-kubelet",
        ),
        signer_approver(
            "system:certificates.k8s.io:kubelet-serving-approver",
            "kubernetes.io/kubelet-serving",
        ),
        signer_approver(
            "system:certificates.k8s.io:legacy-unknown-approver",
            "kubernetes.io/legacy-unknown",
        ),
        cluster_role(
            "system:volume-scheduler",
            vec![
                rule(&["get", "list", "watch", "update", "patch"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumes"])
                    .build(),
                rule(READ)
                    .groups(&["storage.k8s.io"])
                    .resources(&["storageclasses"])
                    .build(),
                rule(&["get", "list", "watch", "update", "patch"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"])
                    .build(),
            ],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            vec![
                rule(&["get"])
                    .urls(&["/.well-known/openid-configuration", "/openid/v1/jwks"])
                    .build(),
            ],
        ),
        cluster_role(
            "system:node-proxier",
            vec![
                rule(&["list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["services", "endpoints"])
                    .build(),
                rule(READ).groups(&[LEGACY]).resources(&["nodes"]).build(),
                events_rule(),
                rule(&["list", "watch"])
                    .groups(&["discovery.k8s.io"])
                    .resources(&["endpointslices"])
                    .build(),
            ],
        ),
    ];
    roles.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    roles
}

fn user(name: &str) -> Subject {
    Subject {
        api_group: Some(RBAC_GROUP.to_owned()),
        kind: "User".to_owned(),
        name: name.to_owned(),
        namespace: None,
    }
}

fn group(name: &str) -> Subject {
    Subject {
        kind: "Group".to_owned(),
        ..user(name)
    }
}

fn service_account(namespace: &str, name: &str) -> Subject {
    Subject {
        api_group: None,
        kind: "ServiceAccount".to_owned(),
        name: name.to_owned(),
        namespace: Some(namespace.to_owned()),
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: RBAC_GROUP.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

fn cluster_binding(name: &str, role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(None, name, &[]),
        role_ref: role_ref("ClusterRole", role),
        // Upstream's `system:node` binding has no subjects: the node authorizer grants nodes
        // their rules, and the binding is kept only so that administrators can add to it.
        subjects: (!subjects.is_empty()).then_some(subjects),
    }
}

fn cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    let mut bindings = vec![
        cluster_binding(
            "cluster-admin",
            "cluster-admin",
            vec![group("system:masters")],
        ),
        cluster_binding(
            "system:monitoring",
            "system:monitoring",
            vec![group("system:monitoring")],
        ),
        cluster_binding(
            "system:discovery",
            "system:discovery",
            vec![group("system:authenticated")],
        ),
        cluster_binding(
            "system:basic-user",
            "system:basic-user",
            vec![group("system:authenticated")],
        ),
        cluster_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        cluster_binding(
            "system:node-proxier",
            "system:node-proxier",
            vec![user("system:kube-proxy")],
        ),
        cluster_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            vec![user("system:kube-controller-manager")],
        ),
        cluster_binding(
            "system:kube-dns",
            "system:kube-dns",
            vec![service_account("kube-system", "kube-dns")],
        ),
        cluster_binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        cluster_binding(
            "system:volume-scheduler",
            "system:volume-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        cluster_binding("system:node", "system:node", vec![]),
        cluster_binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            vec![group("system:serviceaccounts")],
        ),
        // What kubeadm adds so that kubelets can join with bootstrap tokens and renew their
        // client certificates.
        cluster_binding(
            "berth:kubelet-bootstrap",
            "system:node-bootstrapper",
            vec![group("system:bootstrappers")],
        ),
        cluster_binding(
            "berth:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![group("system:bootstrappers")],
        ),
        cluster_binding(
            "berth:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![group("system:nodes")],
        ),
    ];
    bindings.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    bindings
}

fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    Role {
        metadata: meta(Some(namespace), name, &[]),
        rules: Some(rules),
    }
}

fn namespace_roles() -> Vec<Role> {
    let leader_locking = |name: &str| {
        role(
            "kube-system",
            name,
            vec![
                rule(&["watch", "get", "list", "create", "update"])
                    .groups(&["coordination.k8s.io"])
                    .resources(&["leases"])
                    .build(),
                rule(&["watch", "get", "list", "create", "update"])
                    .groups(&["coordination.k8s.io"])
                    .resources(&["leasecandidates"])
                    .build(),
            ],
        )
    };
    vec![
        role(
            "kube-public",
            "system:controller:bootstrap-signer",
            vec![
                rule(READ)
                    .groups(&[LEGACY])
                    .resources(&["configmaps"])
                    .build(),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["configmaps"])
                    .names(&["cluster-info"])
                    .build(),
                events_rule(),
            ],
        ),
        role(
            "kube-system",
            "extension-apiserver-authentication-reader",
            vec![
                rule(READ)
                    .groups(&[LEGACY])
                    .resources(&["configmaps"])
                    .names(&["extension-apiserver-authentication"])
                    .build(),
            ],
        ),
        leader_locking("system::leader-locking-kube-controller-manager"),
        leader_locking("system::leader-locking-kube-scheduler"),
        role(
            "kube-system",
            "system:controller:bootstrap-signer",
            vec![rule(READ).groups(&[LEGACY]).resources(&["secrets"]).build()],
        ),
        role(
            "kube-system",
            "system:controller:cloud-provider",
            vec![
                rule(&["create", "get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["configmaps"])
                    .build(),
            ],
        ),
        role(
            "kube-system",
            "system:controller:token-cleaner",
            vec![
                rule(&["delete", "get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["secrets"])
                    .build(),
                events_rule(),
            ],
        ),
    ]
}

fn role_binding(namespace: &str, name: &str, role: &str, subjects: Vec<Subject>) -> RoleBinding {
    RoleBinding {
        metadata: meta(Some(namespace), name, &[]),
        role_ref: role_ref("Role", role),
        subjects: Some(subjects),
    }
}

fn namespace_role_bindings() -> Vec<RoleBinding> {
    vec![
        role_binding(
            "kube-public",
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            vec![service_account("kube-system", "bootstrap-signer")],
        ),
        role_binding(
            "kube-system",
            "system::extension-apiserver-authentication-reader",
            "extension-apiserver-authentication-reader",
            vec![
                user("system:kube-controller-manager"),
                user("system:kube-scheduler"),
            ],
        ),
        role_binding(
            "kube-system",
            "system::leader-locking-kube-controller-manager",
            "system::leader-locking-kube-controller-manager",
            vec![
                user("system:kube-controller-manager"),
                service_account("kube-system", "kube-controller-manager"),
                service_account("kube-system", "leader-election-controller"),
            ],
        ),
        role_binding(
            "kube-system",
            "system::leader-locking-kube-scheduler",
            "system::leader-locking-kube-scheduler",
            vec![
                user("system:kube-scheduler"),
                service_account("kube-system", "kube-scheduler"),
            ],
        ),
        role_binding(
            "kube-system",
            "system:controller:bootstrap-signer",
            "system:controller:bootstrap-signer",
            vec![service_account("kube-system", "bootstrap-signer")],
        ),
        role_binding(
            "kube-system",
            "system:controller:cloud-provider",
            "system:controller:cloud-provider",
            vec![service_account("kube-system", "cloud-provider")],
        ),
        role_binding(
            "kube-system",
            "system:controller:token-cleaner",
            "system:controller:token-cleaner",
            vec![service_account("kube-system", "token-cleaner")],
        ),
    ]
}

/// The bootstrap policy, as objects ready to store. Aggregated ClusterRoles (`admin`, `edit`,
/// `view`) carry no rules: run [`crate::aggregate`] over the stored ClusterRoles to fill them.
pub fn bootstrap_policy() -> BootstrapPolicy {
    BootstrapPolicy {
        cluster_roles: cluster_roles(),
        cluster_role_bindings: cluster_role_bindings(),
        roles: namespace_roles(),
        role_bindings: namespace_role_bindings(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::{nonres, res, user as test_user};
    use crate::{Policy, aggregate, covers};

    fn find<'a>(roles: &'a [ClusterRole], name: &str) -> &'a ClusterRole {
        roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no ClusterRole {name}"))
    }

    /// The bootstrap ClusterRoles after the aggregation controller has run.
    fn aggregated_roles() -> Vec<ClusterRole> {
        let mut roles = bootstrap_policy().cluster_roles;
        for (name, rules) in aggregate(&roles) {
            let r = roles
                .iter_mut()
                .find(|r| r.metadata.name.as_deref() == Some(name.as_str()))
                .unwrap();
            r.rules = Some(rules);
        }
        roles
    }

    fn policy() -> Policy {
        let b = bootstrap_policy();
        Policy::new(
            b.roles,
            aggregated_roles(),
            b.role_bindings,
            b.cluster_role_bindings,
        )
    }

    #[test]
    fn every_object_is_marked_for_reconciliation() {
        let b = bootstrap_policy();
        let metas = b
            .cluster_roles
            .iter()
            .map(|r| &r.metadata)
            .chain(b.cluster_role_bindings.iter().map(|r| &r.metadata))
            .chain(b.roles.iter().map(|r| &r.metadata))
            .chain(b.role_bindings.iter().map(|r| &r.metadata));
        for m in metas {
            assert_eq!(
                m.labels.as_ref().unwrap()[BOOTSTRAPPING_LABEL],
                BOOTSTRAPPING_VALUE,
                "{:?}",
                m.name
            );
            assert_eq!(
                m.annotations.as_ref().unwrap()[AUTOUPDATE_ANNOTATION],
                "true",
                "{:?}",
                m.name
            );
        }
        assert!(b.roles.iter().all(|r| r.metadata.namespace.is_some()));
        assert!(
            b.role_bindings
                .iter()
                .all(|r| r.metadata.namespace.is_some())
        );
        // Every binding refers to a role of the policy.
        for crb in &b.cluster_role_bindings {
            find(&b.cluster_roles, &crb.role_ref.name);
        }
        for rb in &b.role_bindings {
            assert!(
                b.roles
                    .iter()
                    .any(|r| r.metadata.name == Some(rb.role_ref.name.clone())
                        && r.metadata.namespace == rb.metadata.namespace)
            );
        }
    }

    #[test]
    fn rules_are_sorted_like_upstream() {
        let roles = bootstrap_policy().cluster_roles;
        let edit = find(&roles, "system:aggregate-to-edit")
            .rules
            .as_ref()
            .unwrap();
        assert_eq!(
            edit[0].resources.as_deref().unwrap(),
            [
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy"
            ]
        );
        assert_eq!(edit[0].verbs, ["get", "list", "watch"]);
        let cm = find(&roles, "system:kube-controller-manager")
            .rules
            .as_ref()
            .unwrap();
        assert_eq!(cm.len(), 11);
        assert_eq!(cm[0].api_groups.as_deref().unwrap(), ["", "events.k8s.io"]);
        assert_eq!(cm[0].verbs, ["create", "patch", "update"]);
    }

    #[test]
    fn aggregation_builds_admin_edit_view() {
        let roles = aggregated_roles();
        let rules = |n: &str| find(&roles, n).rules.clone().unwrap_or_default();
        let (admin, edit, view) = (rules("admin"), rules("edit"), rules("view"));
        assert_eq!(view, rules("system:aggregate-to-view"));
        // edit = its own aggregate then view's, in selector then name order.
        let mut want_edit = rules("system:aggregate-to-edit");
        want_edit.extend(rules("system:aggregate-to-view"));
        assert_eq!(edit, want_edit);
        assert!(covers(&admin, &edit).0);
        assert!(covers(&edit, &view).0);
        assert!(!covers(&view, &edit).0);
        assert!(!covers(&edit, &admin).0);
        // A second run has nothing to change.
        assert!(aggregate(&roles).is_empty());
    }

    #[test]
    fn view_edit_admin_in_a_namespace() {
        let b = bootstrap_policy();
        let mut bindings = b.role_bindings;
        for (who, role) in [("v", "view"), ("e", "edit"), ("a", "admin")] {
            bindings.push(RoleBinding {
                metadata: meta(Some("app"), who, &[]),
                role_ref: role_ref("ClusterRole", role),
                subjects: Some(vec![user(who)]),
            });
        }
        let p = Policy::new(
            b.roles,
            aggregated_roles(),
            bindings,
            b.cluster_role_bindings,
        );
        let (v, e, a) = (
            test_user("v", &[]),
            test_user("e", &[]),
            test_user("a", &[]),
        );
        assert!(
            p.authorize(&res(&v, "list", "app", "", "pods", "", ""))
                .is_allowed()
        );
        assert!(
            p.authorize(&res(&v, "get", "app", "apps", "deployments", "scale", "d"))
                .is_allowed()
        );
        assert!(
            !p.authorize(&res(&v, "get", "app", "", "secrets", "", "s"))
                .is_allowed()
        );
        assert!(
            !p.authorize(&res(&v, "list", "other", "", "pods", "", ""))
                .is_allowed()
        );
        assert!(
            !p.authorize(&res(&v, "create", "app", "", "pods", "", ""))
                .is_allowed()
        );
        assert!(
            p.authorize(&res(&e, "get", "app", "", "secrets", "", "s"))
                .is_allowed()
        );
        assert!(
            p.authorize(&res(&e, "create", "app", "", "pods", "exec", "p"))
                .is_allowed()
        );
        assert!(
            !p.authorize(&res(
                &e,
                "create",
                "app",
                "rbac.authorization.k8s.io",
                "roles",
                "",
                ""
            ))
            .is_allowed()
        );
        assert!(
            p.authorize(&res(
                &a,
                "create",
                "app",
                "rbac.authorization.k8s.io",
                "rolebindings",
                "",
                ""
            ))
            .is_allowed()
        );
        assert!(
            !p.authorize(&res(&a, "delete", "app", "", "namespaces", "", "app"))
                .is_allowed()
        );
    }

    #[test]
    fn well_known_identities() {
        let p = policy();
        let root = test_user(
            "kubernetes-admin",
            &["system:masters", "system:authenticated"],
        );
        assert_eq!(
            p.authorize(&res(&root, "delete", "", "", "nodes", "", "n"))
                .reason(),
            r#"RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters""#
        );
        assert!(
            p.authorize(&nonres(&root, "post", "/anything"))
                .is_allowed()
        );

        let someone = test_user("someone", &["system:authenticated"]);
        for path in [
            "/api",
            "/api/v1",
            "/apis/apps/v1",
            "/healthz",
            "/version",
            "/openapi/v2",
        ] {
            assert!(
                p.authorize(&nonres(&someone, "get", path)).is_allowed(),
                "{path}"
            );
        }
        assert!(
            !p.authorize(&nonres(&someone, "get", "/metrics"))
                .is_allowed()
        );
        assert!(
            p.authorize(&res(
                &someone,
                "create",
                "",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                "",
                ""
            ))
            .is_allowed()
        );
        assert!(
            !p.authorize(&res(&someone, "list", "default", "", "pods", "", ""))
                .is_allowed()
        );

        let anonymous = test_user("system:anonymous", &["system:unauthenticated"]);
        assert!(
            p.authorize(&nonres(&anonymous, "get", "/healthz"))
                .is_allowed()
        );
        assert!(
            p.authorize(&nonres(&anonymous, "get", "/version"))
                .is_allowed()
        );
        assert!(!p.authorize(&nonres(&anonymous, "get", "/api")).is_allowed());

        let monitor = test_user("prom", &["system:monitoring"]);
        assert!(
            p.authorize(&nonres(&monitor, "get", "/metrics"))
                .is_allowed()
        );
        assert!(
            p.authorize(&nonres(&monitor, "get", "/readyz/etcd"))
                .is_allowed()
        );

        let scheduler = test_user("system:kube-scheduler", &["system:authenticated"]);
        assert!(
            p.authorize(&res(&scheduler, "create", "ns", "", "pods", "binding", "p"))
                .is_allowed()
        );
        assert!(
            p.authorize(&res(
                &scheduler,
                "update",
                "",
                "",
                "persistentvolumes",
                "",
                "pv"
            ))
            .is_allowed()
        );
        assert!(
            p.authorize(&res(
                &scheduler,
                "update",
                "default",
                "coordination.k8s.io",
                "leases",
                "",
                "kube-scheduler"
            ))
            .is_allowed()
        );
        assert!(
            !p.authorize(&res(
                &scheduler,
                "update",
                "default",
                "coordination.k8s.io",
                "leases",
                "",
                "other"
            ))
            .is_allowed()
        );
        assert!(
            !p.authorize(&res(&scheduler, "get", "ns", "", "secrets", "", "s"))
                .is_allowed()
        );

        let cm = test_user("system:kube-controller-manager", &["system:authenticated"]);
        assert!(
            p.authorize(&res(&cm, "watch", "", "apps", "deployments", "", ""))
                .is_allowed()
        );
        assert!(
            p.authorize(&res(
                &cm,
                "get",
                "kube-system",
                "",
                "configmaps",
                "",
                "extension-apiserver-authentication"
            ))
            .is_allowed()
        );

        let proxy = test_user("system:kube-proxy", &["system:authenticated"]);
        assert!(
            p.authorize(&res(
                &proxy,
                "watch",
                "",
                "discovery.k8s.io",
                "endpointslices",
                "",
                ""
            ))
            .is_allowed()
        );

        let joining = test_user(
            "system:bootstrap:abcdef",
            &["system:bootstrappers", "system:authenticated"],
        );
        assert!(
            p.authorize(&res(
                &joining,
                "create",
                "",
                "certificates.k8s.io",
                "certificatesigningrequests",
                "",
                ""
            ))
            .is_allowed()
        );
        assert!(
            p.authorize(&res(
                &joining,
                "create",
                "",
                "certificates.k8s.io",
                "certificatesigningrequests",
                "nodeclient",
                ""
            ))
            .is_allowed()
        );
        assert!(
            !p.authorize(&res(
                &joining,
                "create",
                "",
                "certificates.k8s.io",
                "certificatesigningrequests",
                "selfnodeclient",
                ""
            ))
            .is_allowed()
        );
        assert!(
            !p.authorize(&res(&joining, "get", "", "", "nodes", "", "n"))
                .is_allowed()
        );

        // The system:node binding is empty: nodes get their rules from the node authorizer only,
        // apart from rotating their own certificates.
        let node = test_user("system:node:n1", &["system:nodes", "system:authenticated"]);
        assert!(
            !p.authorize(&res(&node, "get", "ns", "", "secrets", "", "s"))
                .is_allowed()
        );
        assert!(
            p.authorize(&res(
                &node,
                "create",
                "",
                "certificates.k8s.io",
                "certificatesigningrequests",
                "selfnodeclient",
                ""
            ))
            .is_allowed()
        );
    }
}
