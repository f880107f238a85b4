//! Upstream's node authorizer (`plugin/pkg/auth/authorizer/node`): a kubelet, authenticated as
//! `system:node:<name>` in group `system:nodes`, may read the secrets, config maps, volumes,
//! claims and service-account tokens of the pods bound to its node and nothing else of their
//! kind; everything else it may do is a fixed set of rules, the same for every node.
//!
//! The relationships come from a [`NodeGraph`] that the caller builds from the objects it has
//! (pods, persistent volumes, volume attachments, resource slices) and rebuilds when they change.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

use crate::rules::rules_allow;
use crate::{Attributes, Decision, UserInfo};

const NODE_USER_PREFIX: &str = "system:node:";
const NODES_GROUP: &str = "system:nodes";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The kinds of objects in the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum VertexKind {
    ConfigMap,
    Node,
    Pod,
    PersistentVolume,
    PersistentVolumeClaim,
    ResourceClaim,
    ResourceSlice,
    Secret,
    ServiceAccount,
    VolumeAttachment,
}

impl VertexKind {
    fn label(self) -> &'static str {
        match self {
            VertexKind::ConfigMap => "configmap",
            VertexKind::Node => "node",
            VertexKind::Pod => "pod",
            VertexKind::PersistentVolume => "pv",
            VertexKind::PersistentVolumeClaim => "pvc",
            VertexKind::ResourceClaim => "resourceclaim",
            VertexKind::ResourceSlice => "resourceslice",
            VertexKind::Secret => "secret",
            VertexKind::ServiceAccount => "serviceAccount",
            VertexKind::VolumeAttachment => "volumeattachment",
        }
    }
}

type Vertex = (VertexKind, String, String);

/// Which objects each node may reach: edges point from an object to the objects that grant a
/// node access to it (secret → pod → node, pv → pvc → pod → node, volumeattachment → node…).
#[derive(Clone, Debug, Default)]
pub struct NodeGraph {
    edges: HashMap<Vertex, BTreeSet<Vertex>>,
}

fn vertex(kind: VertexKind, namespace: &str, name: &str) -> Vertex {
    (kind, namespace.to_owned(), name.to_owned())
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn array<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

impl NodeGraph {
    pub fn new() -> NodeGraph {
        NodeGraph::default()
    }

    /// The graph of `pods` (JSON objects) bound to nodes.
    pub fn from_pods<'a>(pods: impl IntoIterator<Item = &'a Value>) -> NodeGraph {
        let mut g = NodeGraph::new();
        for p in pods {
            g.add_pod(p);
        }
        g
    }

    fn edge(&mut self, from: Vertex, to: Vertex) {
        self.edges.entry(from).or_default().insert(to);
    }

    /// Adds a pod (JSON) and what it refers to, as upstream's graph populator does: nothing for
    /// a pod not bound to a node, only the pod itself for a mirror pod.
    pub fn add_pod(&mut self, pod: &Value) {
        let node = str_at(pod, &["spec", "nodeName"]);
        if node.is_empty() {
            return;
        }
        let ns = str_at(pod, &["metadata", "namespace"]);
        let pod_name = str_at(pod, &["metadata", "name"]);
        let pod_v = vertex(VertexKind::Pod, ns, pod_name);
        self.edge(pod_v.clone(), vertex(VertexKind::Node, "", node));
        // A node must not be able to grant itself access by creating a mirror pod.
        if pod["metadata"]["annotations"]
            .get(MIRROR_POD_ANNOTATION)
            .is_some()
        {
            return;
        }
        let spec = &pod["spec"];
        let mut refs: Vec<(VertexKind, String)> = Vec::new();
        let sa = str_at(spec, &["serviceAccountName"]);
        if !sa.is_empty() {
            refs.push((VertexKind::ServiceAccount, sa.to_owned()));
        }
        for s in array(spec, "imagePullSecrets") {
            refs.push((VertexKind::Secret, str_at(s, &["name"]).to_owned()));
        }
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            for c in array(spec, list) {
                for from in array(c, "envFrom") {
                    refs.push((
                        VertexKind::Secret,
                        str_at(from, &["secretRef", "name"]).to_owned(),
                    ));
                    refs.push((
                        VertexKind::ConfigMap,
                        str_at(from, &["configMapRef", "name"]).to_owned(),
                    ));
                }
                for env in array(c, "env") {
                    let from = &env["valueFrom"];
                    refs.push((
                        VertexKind::Secret,
                        str_at(from, &["secretKeyRef", "name"]).to_owned(),
                    ));
                    refs.push((
                        VertexKind::ConfigMap,
                        str_at(from, &["configMapKeyRef", "name"]).to_owned(),
                    ));
                }
            }
        }
        for v in array(spec, "volumes") {
            refs.push((
                VertexKind::Secret,
                str_at(v, &["secret", "secretName"]).to_owned(),
            ));
            refs.push((
                VertexKind::Secret,
                str_at(v, &["azureFile", "secretName"]).to_owned(),
            ));
            refs.push((
                VertexKind::Secret,
                str_at(v, &["csi", "nodePublishSecretRef", "name"]).to_owned(),
            ));
            for source in [
                "cephfs",
                "cinder",
                "flexVolume",
                "rbd",
                "scaleIO",
                "iscsi",
                "storageos",
            ] {
                refs.push((
                    VertexKind::Secret,
                    str_at(v, &[source, "secretRef", "name"]).to_owned(),
                ));
            }
            refs.push((
                VertexKind::ConfigMap,
                str_at(v, &["configMap", "name"]).to_owned(),
            ));
            for s in array(&v["projected"], "sources") {
                refs.push((
                    VertexKind::Secret,
                    str_at(s, &["secret", "name"]).to_owned(),
                ));
                refs.push((
                    VertexKind::ConfigMap,
                    str_at(s, &["configMap", "name"]).to_owned(),
                ));
            }
            let claim = str_at(v, &["persistentVolumeClaim", "claimName"]);
            if !claim.is_empty() {
                refs.push((VertexKind::PersistentVolumeClaim, claim.to_owned()));
            } else if v.get("ephemeral").is_some() {
                let name = format!("{pod_name}-{}", str_at(v, &["name"]));
                refs.push((VertexKind::PersistentVolumeClaim, name));
            }
        }
        for claim in array(spec, "resourceClaims") {
            let direct = str_at(claim, &["resourceClaimName"]);
            let name = if !direct.is_empty() {
                direct
            } else {
                // A claim made from a template is named in the pod's status once it exists.
                let wanted = str_at(claim, &["name"]);
                array(&pod["status"], "resourceClaimStatuses")
                    .find(|s| str_at(s, &["name"]) == wanted)
                    .map(|s| str_at(s, &["resourceClaimName"]))
                    .unwrap_or_default()
            };
            refs.push((VertexKind::ResourceClaim, name.to_owned()));
        }
        for (kind, name) in refs {
            if !name.is_empty() {
                self.edge(vertex(kind, ns, &name), pod_v.clone());
            }
        }
    }

    /// Adds a persistent volume (JSON): it is reachable through the claim bound to it, and the
    /// secrets its source names are reachable through it.
    pub fn add_persistent_volume(&mut self, pv: &Value) {
        let pv_v = vertex(
            VertexKind::PersistentVolume,
            "",
            str_at(pv, &["metadata", "name"]),
        );
        let claim_ns = str_at(pv, &["spec", "claimRef", "namespace"]);
        let claim = str_at(pv, &["spec", "claimRef", "name"]);
        if claim.is_empty() {
            return;
        }
        self.edge(
            pv_v.clone(),
            vertex(VertexKind::PersistentVolumeClaim, claim_ns, claim),
        );
        let spec = &pv["spec"];
        let mut secrets: Vec<(String, String)> = Vec::new();
        for key in [
            "nodePublishSecretRef",
            "nodeStageSecretRef",
            "controllerPublishSecretRef",
            "controllerExpandSecretRef",
            "nodeExpandSecretRef",
        ] {
            let r = &spec["csi"][key];
            secrets.push((
                str_at(r, &["namespace"]).to_owned(),
                str_at(r, &["name"]).to_owned(),
            ));
        }
        for source in [
            "cephfs",
            "cinder",
            "flexVolume",
            "rbd",
            "scaleIO",
            "iscsi",
            "storageos",
        ] {
            let r = &spec[source]["secretRef"];
            let ns = str_at(r, &["namespace"]);
            let ns = if ns.is_empty() { claim_ns } else { ns };
            secrets.push((ns.to_owned(), str_at(r, &["name"]).to_owned()));
        }
        let azure = &spec["azureFile"];
        let ns = str_at(azure, &["secretNamespace"]);
        secrets.push((
            if ns.is_empty() { "default" } else { ns }.to_owned(),
            str_at(azure, &["secretName"]).to_owned(),
        ));
        for (ns, name) in secrets {
            if !name.is_empty() {
                self.edge(vertex(VertexKind::Secret, &ns, &name), pv_v.clone());
            }
        }
    }

    /// Adds a volume attachment (JSON), reachable by the node it attaches to.
    pub fn add_volume_attachment(&mut self, va: &Value) {
        let node = str_at(va, &["spec", "nodeName"]);
        if !node.is_empty() {
            let name = str_at(va, &["metadata", "name"]);
            self.edge(
                vertex(VertexKind::VolumeAttachment, "", name),
                vertex(VertexKind::Node, "", node),
            );
        }
    }

    /// Adds a resource slice (JSON), reachable by the node it describes.
    pub fn add_resource_slice(&mut self, slice: &Value) {
        let node = str_at(slice, &["spec", "nodeName"]);
        if !node.is_empty() {
            let name = str_at(slice, &["metadata", "name"]);
            self.edge(
                vertex(VertexKind::ResourceSlice, "", name),
                vertex(VertexKind::Node, "", node),
            );
        }
    }

    /// Whether `node` can reach the object, and upstream's reason when not.
    fn has_path(
        &self,
        node: &str,
        kind: VertexKind,
        namespace: &str,
        name: &str,
    ) -> Result<(), String> {
        let target = vertex(VertexKind::Node, "", node);
        let start = vertex(kind, namespace, name);
        let node_known = self.edges.values().any(|tos| tos.contains(&target));
        if !node_known {
            return Err(format!(
                "unknown node '{node}' cannot get {} {namespace}/{name}",
                kind.label()
            ));
        }
        if !self.edges.contains_key(&start) {
            return Err(format!(
                "node '{node}' cannot get unknown {} {namespace}/{name}",
                kind.label()
            ));
        }
        let mut seen = BTreeSet::new();
        let mut stack = vec![&start];
        while let Some(v) = stack.pop() {
            if *v == target {
                return Ok(());
            }
            if !seen.insert(v) {
                continue;
            }
            // Edges into other nodes lead nowhere further.
            stack.extend(self.edges.get(v).into_iter().flatten());
        }
        Err(format!(
            "node '{node}' cannot get {} {namespace}/{name}, no relationship to this object was found in the node authorizer graph",
            kind.label()
        ))
    }
}

/// The rules every node holds regardless of the graph (upstream `NodeRules()`, the rules of the
/// `system:node` ClusterRole).
pub fn node_rules() -> Vec<PolicyRule> {
    crate::bootstrap::node_policy_rules()
}

/// Upstream's `NodeIdentity`: `Some(name)` for a node user, where the name may be empty.
fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    user.groups.iter().any(|g| g == NODES_GROUP).then_some(name)
}

fn allow() -> Decision {
    Decision::Allow {
        reason: String::new(),
    }
}

fn no(reason: impl Into<String>) -> Decision {
    Decision::NoOpinion {
        reason: reason.into(),
    }
}

/// [`node_authorize_with_fields`] for a request without field selectors.
pub fn node_authorize(a: &Attributes<'_>, graph: &NodeGraph) -> Decision {
    node_authorize_with_fields(a, &[], graph)
}

/// The node authorizer's decision. `field_equals` are the request's field selector requirements
/// of the form `field=value` (for `list`/`watch`), which upstream consults for pods
/// (`spec.nodeName`) and resource slices (`nodeName`).
pub fn node_authorize_with_fields(
    a: &Attributes<'_>,
    field_equals: &[(&str, &str)],
    graph: &NodeGraph,
) -> Decision {
    let Some(node) = node_identity(a.user) else {
        return no("");
    };
    if node.is_empty() {
        return no(format!("unknown node for user {:?}", a.user.name));
    }
    let selects = |field: &str| field_equals.iter().any(|(f, v)| *f == field && *v == node);
    if a.resource_request {
        let by_graph = |kind| authorize_by_graph(a, node, kind, graph);
        match (a.api_group, a.resource) {
            ("", "secrets") => return read_namespaced(a, node, VertexKind::Secret, graph),
            ("", "configmaps") => return read_namespaced(a, node, VertexKind::ConfigMap, graph),
            ("", "persistentvolumeclaims") if a.subresource == "status" => {
                return match a.verb {
                    "update" | "patch" => by_graph(VertexKind::PersistentVolumeClaim),
                    _ => no("can only get/update/patch this type"),
                };
            }
            ("", "persistentvolumeclaims") => {
                return get_only(a, node, VertexKind::PersistentVolumeClaim, graph);
            }
            ("", "persistentvolumes") => {
                return get_only(a, node, VertexKind::PersistentVolume, graph);
            }
            ("resource.k8s.io", "resourceclaims") => {
                return get_only(a, node, VertexKind::ResourceClaim, graph);
            }
            ("storage.k8s.io", "volumeattachments") => {
                return get_only(a, node, VertexKind::VolumeAttachment, graph);
            }
            ("", "serviceaccounts") => {
                if a.verb != "create" || a.name.is_empty() {
                    return no("can only create tokens for individual service accounts");
                }
                if a.subresource != "token" {
                    return no("can only create token subresource of serviceaccount");
                }
                return by_graph(VertexKind::ServiceAccount);
            }
            ("coordination.k8s.io", "leases") => {
                if !matches!(a.verb, "get" | "create" | "update" | "patch" | "delete") {
                    return no("can only get, create, update, patch, or delete a node lease");
                }
                if a.namespace != NODE_LEASE_NAMESPACE {
                    return no(format!(
                        "can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"
                    ));
                }
                // On create the name is in the body; the NodeRestriction admission checks it.
                if a.verb != "create" && a.name != node {
                    return no(
                        "can only access node lease with the same name as the requesting node",
                    );
                }
                return allow();
            }
            ("storage.k8s.io", "csinodes") => {
                if !matches!(a.verb, "get" | "create" | "update" | "patch" | "delete") {
                    return no("can only get, create, update, patch, or delete a CSINode");
                }
                if !a.subresource.is_empty() {
                    return no("cannot authorize CSINode subresources");
                }
                if a.verb != "create" && a.name != node {
                    return no("can only access CSINode with the same name as the requesting node");
                }
                return allow();
            }
            ("resource.k8s.io", "resourceslices") => {
                if !a.subresource.is_empty() {
                    return no("cannot authorize ResourceSlice subresources");
                }
                return match a.verb {
                    "create" => allow(),
                    "get" | "update" | "patch" | "delete" => by_graph(VertexKind::ResourceSlice),
                    "watch" | "list" | "deletecollection" if selects("nodeName") => allow(),
                    "watch" | "list" | "deletecollection" => no(
                        "can only list/watch/deletecollection resourceslices with nodeName field selector",
                    ),
                    _ => no(
                        "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, update, patch, delete, deletecollection",
                    ),
                };
            }
            ("", "nodes") => return authorize_node(a, node),
            ("", "pods") => return authorize_pod(a, node, graph, selects("spec.nodeName")),
            _ => {}
        }
    }
    static RULES: LazyLock<Vec<PolicyRule>> = LazyLock::new(node_rules);
    if rules_allow(a, &RULES) {
        allow()
    } else {
        no("")
    }
}

fn authorize_by_graph(
    a: &Attributes<'_>,
    node: &str,
    kind: VertexKind,
    graph: &NodeGraph,
) -> Decision {
    if a.name.is_empty() {
        return no("No Object name found");
    }
    match graph.has_path(node, kind, a.namespace, a.name) {
        Ok(()) => allow(),
        Err(_) => no(format!(
            "no relationship found between node '{node}' and this object"
        )),
    }
}

fn get_only(a: &Attributes<'_>, node: &str, kind: VertexKind, graph: &NodeGraph) -> Decision {
    if a.verb != "get" {
        return no("can only get individual resources of this type");
    }
    if !a.subresource.is_empty() {
        return no("cannot get subresource");
    }
    authorize_by_graph(a, node, kind, graph)
}

fn read_namespaced(
    a: &Attributes<'_>,
    node: &str,
    kind: VertexKind,
    graph: &NodeGraph,
) -> Decision {
    if !matches!(a.verb, "get" | "list" | "watch") {
        return no("can only read resources of this type");
    }
    if !a.subresource.is_empty() {
        return no("cannot read subresource");
    }
    if a.namespace.is_empty() {
        return no("can only read namespaced object of this type");
    }
    authorize_by_graph(a, node, kind, graph)
}

/// Nodes may create and update Node objects (NodeRestriction admission limits them to their
/// own) and read only their own.
fn authorize_node(a: &Attributes<'_>, node: &str) -> Decision {
    match (a.subresource, a.verb) {
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => allow(),
        ("", "get" | "list" | "watch") => {
            if a.name == node {
                allow()
            } else if a.name.is_empty() {
                no(format!(
                    "node '{node}' cannot read all nodes, only its own Node object"
                ))
            } else {
                no(format!(
                    "node '{node}' cannot read '{}', only its own Node object",
                    a.name
                ))
            }
        }
        _ => no(""),
    }
}

fn authorize_pod(
    a: &Attributes<'_>,
    node: &str,
    graph: &NodeGraph,
    selects_node: bool,
) -> Decision {
    match (a.subresource, a.verb) {
        ("", "get") => get_only(a, node, VertexKind::Pod, graph),
        ("", "list" | "watch") => {
            if selects_node {
                allow()
            } else if !a.name.is_empty() {
                authorize_by_graph(a, node, VertexKind::Pod, graph)
            } else {
                no("can only list/watch pods with spec.nodeName field selector")
            }
        }
        // Mirror pods, status and evictions; NodeRestriction admission limits them to the node's
        // own pods.
        ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
            allow()
        }
        _ => no(""),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::tests::{res, user};

    fn graph() -> NodeGraph {
        let pods = [
            json!({
                "metadata": {"namespace": "ns", "name": "web"},
                "spec": {
                    "nodeName": "n1",
                    "serviceAccountName": "web-sa",
                    "imagePullSecrets": [{"name": "pull"}],
                    "containers": [{
                        "name": "c",
                        "envFrom": [{"secretRef": {"name": "env-secret"}}, {"configMapRef": {"name": "env-cm"}}],
                        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "key-cm", "key": "k"}}}]
                    }],
                    "initContainers": [{
                        "name": "i",
                        "env": [{"name": "Y", "valueFrom": {"secretKeyRef": {"name": "init-secret", "key": "k"}}}]
                    }],
                    "volumes": [
                        {"name": "s", "secret": {"secretName": "vol-secret"}},
                        {"name": "c", "configMap": {"name": "vol-cm"}},
                        {"name": "p", "projected": {"sources": [{"secret": {"name": "proj-secret"}}, {"configMap": {"name": "proj-cm"}}]}},
                        {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                        {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}
                    ],
                    "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "t"}]
                },
                "status": {"resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "web-gpu-x1"}]}
            }),
            json!({
                "metadata": {"namespace": "ns", "name": "other"},
                "spec": {"nodeName": "n2", "volumes": [{"name": "s", "secret": {"secretName": "n2-secret"}}]}
            }),
            // Not scheduled: grants nothing.
            json!({
                "metadata": {"namespace": "ns", "name": "pending"},
                "spec": {"volumes": [{"name": "s", "secret": {"secretName": "pending-secret"}}]}
            }),
            // A mirror pod grants nothing but itself.
            json!({
                "metadata": {"namespace": "ns", "name": "static", "annotations": {"kubernetes.io/config.mirror": "x"}},
                "spec": {"nodeName": "n1", "volumes": [{"name": "s", "secret": {"secretName": "mirror-secret"}}]}
            }),
        ];
        let mut g = NodeGraph::from_pods(pods.iter());
        g.add_persistent_volume(&json!({
            "metadata": {"name": "pv-data"},
            "spec": {"claimRef": {"namespace": "ns", "name": "data"},
                     "csi": {"driver": "d", "nodePublishSecretRef": {"namespace": "csi", "name": "csi-secret"}}}
        }));
        g.add_volume_attachment(&json!({"metadata": {"name": "va1"}, "spec": {"nodeName": "n1"}}));
        g
    }

    fn n1() -> UserInfo {
        user("system:node:n1", &["system:nodes", "system:authenticated"])
    }

    #[test]
    fn reads_only_what_its_pods_reference() {
        let g = graph();
        let u = n1();
        let get = |resource: &'static str, ns: &'static str, name: &'static str| {
            node_authorize(&res(&u, "get", ns, "", resource, "", name), &g).is_allowed()
        };
        for s in [
            "pull",
            "env-secret",
            "init-secret",
            "vol-secret",
            "proj-secret",
        ] {
            assert!(get("secrets", "ns", s), "{s}");
        }
        for c in ["env-cm", "key-cm", "vol-cm", "proj-cm"] {
            assert!(get("configmaps", "ns", c), "{c}");
        }
        assert!(get("persistentvolumeclaims", "ns", "data"));
        assert!(get("persistentvolumeclaims", "ns", "web-scratch"));
        assert!(get("persistentvolumes", "", "pv-data"));
        assert!(get("secrets", "csi", "csi-secret"));
        assert!(get("pods", "ns", "web"));
        assert!(
            node_authorize(
                &res(
                    &u,
                    "get",
                    "",
                    "storage.k8s.io",
                    "volumeattachments",
                    "",
                    "va1"
                ),
                &g
            )
            .is_allowed()
        );
        assert!(
            node_authorize(
                &res(
                    &u,
                    "get",
                    "ns",
                    "resource.k8s.io",
                    "resourceclaims",
                    "",
                    "web-gpu-x1"
                ),
                &g
            )
            .is_allowed()
        );
        // Other nodes' objects, unscheduled pods' and mirror pods' references, unknown objects.
        for s in ["n2-secret", "pending-secret", "mirror-secret", "nope"] {
            assert!(!get("secrets", "ns", s), "{s}");
        }
        assert!(!get("secrets", "other-ns", "vol-secret"));
        assert!(!get("pods", "ns", "other"));
        assert_eq!(
            node_authorize(&res(&u, "get", "ns", "", "secrets", "", "n2-secret"), &g),
            Decision::NoOpinion {
                reason: "no relationship found between node 'n1' and this object".into()
            }
        );
        // Only reads, of single named objects, without subresources.
        assert!(
            node_authorize(&res(&u, "watch", "ns", "", "secrets", "", "vol-secret"), &g)
                .is_allowed()
        );
        assert!(!node_authorize(&res(&u, "list", "ns", "", "secrets", "", ""), &g).is_allowed());
        assert!(
            !node_authorize(
                &res(&u, "update", "ns", "", "secrets", "", "vol-secret"),
                &g
            )
            .is_allowed()
        );
        assert!(
            !node_authorize(
                &res(&u, "list", "ns", "", "persistentvolumeclaims", "", "data"),
                &g
            )
            .is_allowed()
        );
        assert!(
            node_authorize(
                &res(
                    &u,
                    "patch",
                    "ns",
                    "",
                    "persistentvolumeclaims",
                    "status",
                    "data"
                ),
                &g
            )
            .is_allowed()
        );
        assert!(
            !node_authorize(
                &res(
                    &u,
                    "get",
                    "ns",
                    "",
                    "persistentvolumeclaims",
                    "status",
                    "data"
                ),
                &g
            )
            .is_allowed()
        );
    }

    #[test]
    fn service_account_tokens() {
        let g = graph();
        let u = n1();
        assert!(
            node_authorize(
                &res(&u, "create", "ns", "", "serviceaccounts", "token", "web-sa"),
                &g
            )
            .is_allowed()
        );
        assert!(
            !node_authorize(
                &res(
                    &u,
                    "create",
                    "ns",
                    "",
                    "serviceaccounts",
                    "token",
                    "default"
                ),
                &g
            )
            .is_allowed()
        );
        assert!(
            !node_authorize(
                &res(&u, "get", "ns", "", "serviceaccounts", "", "web-sa"),
                &g
            )
            .is_allowed()
        );
        let n2 = user("system:node:n2", &["system:nodes"]);
        assert!(
            !node_authorize(
                &res(
                    &n2,
                    "create",
                    "ns",
                    "",
                    "serviceaccounts",
                    "token",
                    "web-sa"
                ),
                &g
            )
            .is_allowed()
        );
    }

    #[test]
    fn own_node_lease_and_pods() {
        let g = graph();
        let u = n1();
        let ok = |verb, ns, group, resource, sub, name| {
            node_authorize(&res(&u, verb, ns, group, resource, sub, name), &g).is_allowed()
        };
        assert!(ok("get", "", "", "nodes", "", "n1"));
        assert!(!ok("get", "", "", "nodes", "", "n2"));
        assert!(!ok("list", "", "", "nodes", "", ""));
        assert!(ok("create", "", "", "nodes", "", ""));
        assert!(ok("patch", "", "", "nodes", "status", "n1"));
        assert!(!ok("delete", "", "", "nodes", "", "n1"));
        assert!(ok(
            "update",
            "kube-node-lease",
            "coordination.k8s.io",
            "leases",
            "",
            "n1"
        ));
        assert!(ok(
            "create",
            "kube-node-lease",
            "coordination.k8s.io",
            "leases",
            "",
            ""
        ));
        assert!(!ok(
            "update",
            "kube-node-lease",
            "coordination.k8s.io",
            "leases",
            "",
            "n2"
        ));
        assert!(!ok(
            "update",
            "default",
            "coordination.k8s.io",
            "leases",
            "",
            "n1"
        ));
        assert!(!ok(
            "list",
            "kube-node-lease",
            "coordination.k8s.io",
            "leases",
            "",
            ""
        ));
        assert!(ok("update", "", "storage.k8s.io", "csinodes", "", "n1"));
        assert!(!ok("update", "", "storage.k8s.io", "csinodes", "", "n2"));
        assert!(ok("create", "ns", "", "pods", "", ""));
        assert!(ok("patch", "ns", "", "pods", "status", "web"));
        assert!(ok("create", "ns", "", "pods", "eviction", "web"));
        assert!(!ok("update", "ns", "", "pods", "", "web"));
        assert!(!ok("list", "", "", "pods", "", ""));
        let listed = node_authorize_with_fields(
            &res(&u, "list", "", "", "pods", "", ""),
            &[("spec.nodeName", "n1")],
            &g,
        );
        assert!(listed.is_allowed());
        let wrong = node_authorize_with_fields(
            &res(&u, "watch", "", "", "pods", "", ""),
            &[("spec.nodeName", "n2")],
            &g,
        );
        assert_eq!(
            wrong.reason(),
            "can only list/watch pods with spec.nodeName field selector"
        );
        // Static rules for the rest.
        assert!(ok("list", "", "", "services", "", ""));
        assert!(ok(
            "create",
            "",
            "certificates.k8s.io",
            "certificatesigningrequests",
            "",
            ""
        ));
        assert!(ok(
            "create",
            "",
            "authentication.k8s.io",
            "tokenreviews",
            "",
            ""
        ));
        assert!(!ok("list", "", "apps", "deployments", "", ""));
        assert!(!ok("delete", "ns", "", "services", "", "s"));
    }

    #[test]
    fn only_node_identities() {
        let g = graph();
        for u in [
            user("system:node:n1", &[]),
            user("n1", &["system:nodes"]),
            user(
                "system:serviceaccount:ns:web-sa",
                &["system:serviceaccounts"],
            ),
        ] {
            assert_eq!(
                node_authorize(&res(&u, "get", "ns", "", "secrets", "", "vol-secret"), &g),
                Decision::NoOpinion {
                    reason: String::new()
                }
            );
        }
        let nameless = user("system:node:", &["system:nodes"]);
        assert_eq!(
            node_authorize(
                &res(&nameless, "get", "ns", "", "secrets", "", "vol-secret"),
                &g
            )
            .reason(),
            "unknown node for user \"system:node:\""
        );
        // A node the graph does not know reaches nothing.
        let n9 = user("system:node:n9", &["system:nodes"]);
        assert!(
            !node_authorize(&res(&n9, "get", "ns", "", "secrets", "", "vol-secret"), &g)
                .is_allowed()
        );
    }
}
