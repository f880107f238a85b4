//! Authorization: may this user do this, in this logical cluster?
//!
//! In upstream's order: members of `system:masters` may do anything (upstream's privileged-group
//! authorizer); the anonymous user may only read the health and version paths (any other
//! anonymous request is 401, as upstream with anonymous access limited to those endpoints); every
//! other request is decided by the cluster's RBAC policy.
//!
//! Each cluster's policy ([`rbac::Policy`]) is built from its Roles, ClusterRoles and bindings
//! the first time it is needed and kept until one of them changes. Changes are seen through one
//! store watch over every cluster's RBAC keys (so writes through other replicas count too), and
//! writes through this replica drop the policy at once, so a binding just created is in force for
//! the next request.

use std::sync::Arc;

use axum::http::Method;
use serde_json::Value;

use crate::Api;
use crate::auth::{SYSTEM_MASTERS, UserInfo};
use crate::cluster_cache::ClusterCache;
use crate::error::ApiError;
use crate::request::{ResourceRequest, Verb};

/// What a request asks, as authorizers see it (upstream's `authorizer.Attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// RBAC verb: `get`, `list`, `create`, ... for resources; the lower-cased HTTP method for paths.
    pub verb: String,
    /// Namespace (`""` for cluster-scoped resources and paths).
    pub namespace: String,
    /// API group (`""` for core).
    pub api_group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource (`""` for none).
    pub subresource: String,
    /// Object name (`""` for collections).
    pub name: String,
    /// Whether this is a resource request (else `path` is what is asked).
    pub resource_request: bool,
    /// The path, for non-resource requests.
    pub path: String,
    /// The request's field selector, as `field=value` requirements (the node authorizer lets a
    /// kubelet list only its own pods).
    pub field_equals: Vec<(String, String)>,
}

impl Attributes {
    /// The attributes of a resource request.
    pub fn of_request(req: &ResourceRequest) -> Self {
        Attributes {
            verb: req.verb.name().to_owned(),
            namespace: req.namespace.clone().unwrap_or_default(),
            api_group: req.group.clone(),
            resource: req.resource.clone(),
            subresource: req.subresource.clone().unwrap_or_default(),
            name: req.name.clone().unwrap_or_default(),
            resource_request: true,
            path: String::new(),
            field_equals: Vec::new(),
        }
    }

    /// Records the equality requirements of a field selector (`a=b,c==d`; others are ignored,
    /// which can only make the node authorizer refuse).
    pub fn with_field_selector(mut self, selector: &str) -> Self {
        for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if term.contains("!=") {
                continue;
            }
            if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                self.field_equals
                    .push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        self
    }
}

/// A decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// Why (shown in SubjectAccessReview status and appended to 403 messages).
    pub reason: String,
}

/// Paths anyone may read, signed in or not.
pub(crate) fn is_public_path(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    ["/healthz", "/livez", "/readyz", "/version"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// The RBAC group's storage name in keys: `/registry/<cluster>/rbac.authorization.k8s.io/...`.
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Every cluster's RBAC policy, cached until one of its RBAC objects changes.
pub(crate) struct Authorizer {
    policies: ClusterCache<Arc<rbac::Policy>>,
}

impl Default for Authorizer {
    fn default() -> Self {
        Authorizer {
            policies: ClusterCache::new("/rbac.authorization.k8s.io/"),
        }
    }
}

impl Authorizer {
    /// Forgets `cluster`'s policy (its RBAC objects changed).
    pub(crate) fn invalidate(&self, cluster: &str) {
        self.policies.invalidate(cluster);
    }

    /// `cluster`'s policy, built from the store if not cached.
    pub(crate) async fn policy(
        &self,
        api: &Api,
        cluster: &str,
    ) -> Result<Arc<rbac::Policy>, ApiError> {
        self.policies
            .get(api.objects.store(), cluster, || async {
                let registry = api.registry_for(cluster);
                let def = |plural: &str| {
                    registry.get(RBAC_GROUP, "v1", plural).ok_or_else(|| {
                        ApiError::internal_message(format!("{plural} are not served"))
                    })
                };
                let roles = load(api, cluster, def("roles")?).await?;
                let cluster_roles = load(api, cluster, def("clusterroles")?).await?;
                let role_bindings = load(api, cluster, def("rolebindings")?).await?;
                let cluster_role_bindings = load(api, cluster, def("clusterrolebindings")?).await?;
                Ok(Arc::new(rbac::Policy::new(
                    roles,
                    cluster_roles,
                    role_bindings,
                    cluster_role_bindings,
                )))
            })
            .await
    }
}

/// Every stored object of an RBAC resource in `cluster`, typed.
async fn load<T: serde::de::DeserializeOwned>(
    api: &Api,
    cluster: &str,
    def: &crate::registry::ResourceDef,
) -> Result<Vec<T>, ApiError> {
    let prefix = crate::storage::list_prefix(cluster, def, None);
    let kvs = api
        .objects
        .store()
        .range(store::RangeRequest {
            consistency: store::Consistency::Serializable,
            ..store::RangeRequest::prefix(prefix)
        })
        .await?
        .kvs;
    let mut out = Vec::with_capacity(kvs.len());
    for kv in kvs {
        match serde_json::from_slice::<T>(&kv.value) {
            Ok(obj) => out.push(obj),
            Err(e) => tracing::warn!(
                cluster,
                key = %String::from_utf8_lossy(&kv.key),
                error = %e,
                "an RBAC object that does not decode is ignored"
            ),
        }
    }
    Ok(out)
}

/// Kubelets authenticate as `system:node:<node name>`...
const NODE_USER_PREFIX: &str = "system:node:";
/// ...in this group.
const NODES_GROUP: &str = "system:nodes";

/// What the pods bound to `node` reference (secrets, config maps, claims, service accounts):
/// what the node authorizer lets that node read. Read from the store at each decision, so a
/// pod's references count from the moment it is bound.
async fn node_graph(api: &Api, cluster: &str, node: &str) -> Result<rbac::NodeGraph, ApiError> {
    let def = api
        .registry_for(cluster)
        .get("", "v1", "pods")
        .ok_or_else(|| ApiError::internal_message("pods are not served"))?;
    let kvs = api
        .objects
        .store()
        .range(store::RangeRequest {
            consistency: store::Consistency::Serializable,
            ..store::RangeRequest::prefix(crate::storage::list_prefix(cluster, def, None))
        })
        .await?
        .kvs;
    let mut graph = rbac::NodeGraph::new();
    let needle = format!("\"nodeName\":\"{node}\"");
    for kv in kvs {
        // Most pods are elsewhere: skip them before decoding.
        if !kv
            .value
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            continue;
        }
        if let Ok(pod) = serde_json::from_slice::<Value>(&kv.value) {
            graph.add_pod(&pod);
        }
    }
    Ok(graph)
}

fn rbac_user(user: &UserInfo) -> rbac::UserInfo {
    rbac::UserInfo {
        name: user.name.clone(),
        uid: user.uid.clone(),
        groups: user.groups.clone(),
        extra: user.extra.clone(),
    }
}

/// Decides `attrs` for `user` in `cluster`.
pub async fn decide(
    api: &Api,
    cluster: &str,
    user: &UserInfo,
    attrs: &Attributes,
) -> Result<Decision, ApiError> {
    if user.in_group(SYSTEM_MASTERS) {
        return Ok(Decision {
            allowed: true,
            reason: format!("user is in group {SYSTEM_MASTERS:?}"),
        });
    }
    if !attrs.resource_request && attrs.verb == "get" && is_public_path(&attrs.path) {
        return Ok(Decision {
            allowed: true,
            reason: "health and version paths are public".into(),
        });
    }
    let who = rbac_user(user);
    let rbac_attrs = rbac::Attributes {
        user: &who,
        verb: &attrs.verb,
        namespace: &attrs.namespace,
        api_group: &attrs.api_group,
        resource: &attrs.resource,
        subresource: &attrs.subresource,
        name: &attrs.name,
        resource_request: attrs.resource_request,
        path: &attrs.path,
    };
    // Upstream's `Node,RBAC` order: the node authorizer first, for kubelets.
    if let Some(node) = user.name.strip_prefix(NODE_USER_PREFIX)
        && user.in_group(NODES_GROUP)
        && !node.is_empty()
    {
        let graph = node_graph(api, cluster, node).await?;
        let fields: Vec<(&str, &str)> = attrs
            .field_equals
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let decision = rbac::node_authorize_with_fields(&rbac_attrs, &fields, &graph);
        if decision.is_allowed() {
            return Ok(Decision {
                allowed: true,
                reason: decision.reason().to_owned(),
            });
        }
    }
    let policy = api.authorizer.policy(api, cluster).await?;
    let decision = policy.authorize(&rbac_attrs);
    Ok(Decision {
        allowed: decision.is_allowed(),
        reason: decision.reason().to_owned(),
    })
}

/// The checks of writes to a CertificateSigningRequest's subresources besides RBAC on the
/// request itself, as upstream's `CertificateApproval` and `CertificateSigning` admission
/// plugins make them: approving needs the `approve` verb, and setting the certificate the `sign`
/// verb, on the synthetic resource `signers` named by the request's signerName or by its domain
/// with `/*` (`kubernetes.io/*`).
pub(crate) struct SignerAccess {
    api: Arc<Api>,
    cluster: String,
    user: UserInfo,
}

impl SignerAccess {
    /// The checks for `req`, if it writes a request's approval or status.
    pub(crate) fn for_request(
        api: &Arc<Api>,
        cluster: &str,
        user: &UserInfo,
        req: &ResourceRequest,
    ) -> Option<SignerAccess> {
        let writes = matches!(req.verb, Verb::Update | Verb::Patch);
        (writes
            && req.group == crate::csr::GROUP
            && req.resource == "certificatesigningrequests"
            && matches!(req.subresource.as_deref(), Some("approval" | "status")))
        .then(|| SignerAccess {
            api: Arc::clone(api),
            cluster: cluster.to_owned(),
            user: user.clone(),
        })
    }

    /// Refuses with upstream's 403 unless the user may `verb` (`approve`, `sign`) requests of
    /// `signer_name` (the stored request's, so a write cannot pick the signer it is checked
    /// against).
    pub(crate) async fn check(
        &self,
        verb: &str,
        csr_name: &str,
        signer_name: &str,
    ) -> Result<(), ApiError> {
        let domain = signer_name.split('/').next().unwrap_or_default();
        for name in [signer_name.to_owned(), format!("{domain}/*")] {
            let attrs = Attributes {
                verb: verb.into(),
                api_group: crate::csr::GROUP.into(),
                resource: "signers".into(),
                name,
                resource_request: true,
                ..Attributes::default()
            };
            if decide(&self.api, &self.cluster, &self.user, &attrs)
                .await?
                .allowed
            {
                return Ok(());
            }
        }
        let mut e = ApiError::forbidden(format!(
            "certificatesigningrequests.certificates.k8s.io {csr_name:?} is forbidden: user not permitted to {verb} requests with signerName {signer_name:?}"
        ));
        e.details = Some(serde_json::json!({
            "name": csr_name,
            "group": crate::csr::GROUP,
            "kind": "certificatesigningrequests",
        }));
        Err(e)
    }
}

/// The escalation checks of a write to an RBAC object: a user may only create or change a role
/// whose rules they hold themselves (or with the `escalate` verb), and only bind a role they
/// hold or may `bind`. Members of `system:masters` pass.
pub(crate) struct Escalation {
    policy: Arc<rbac::Policy>,
    user: rbac::UserInfo,
}

impl Escalation {
    /// The checks for `user`'s write, if `req` writes an RBAC object.
    pub(crate) async fn for_request(
        api: &Api,
        cluster: &str,
        user: &UserInfo,
        req: &ResourceRequest,
    ) -> Result<Option<Escalation>, ApiError> {
        let writes = matches!(req.verb, Verb::Create | Verb::Update | Verb::Patch);
        if req.group != RBAC_GROUP || !writes || user.in_group(SYSTEM_MASTERS) {
            return Ok(None);
        }
        Ok(Some(Escalation {
            policy: api.authorizer.policy(api, cluster).await?,
            user: rbac_user(user),
        }))
    }

    /// Checks the object a write would store (`old` for updates).
    pub(crate) fn check(
        &self,
        plural: &str,
        namespace: &str,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("metadata");
            }
            v
        };
        if old.is_some_and(|old| strip(old) == strip(obj)) {
            // Only metadata changed (labels, finalizers, owner references): nothing to escalate.
            return Ok(());
        }
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let namespace = if plural.starts_with("cluster") {
            ""
        } else {
            namespace
        };
        // Upstream's words: `roles.rbac.authorization.k8s.io "x" is forbidden: user "lee" ...`.
        let refused = |message: String| {
            let mut e = ApiError::forbidden(format!(
                "{plural}.{RBAC_GROUP} {name:?} is forbidden: {message}"
            ));
            e.details =
                Some(serde_json::json!({"name": name, "group": RBAC_GROUP, "kind": plural}));
            e
        };
        match plural {
            "roles" | "clusterroles" => {
                let rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule> =
                    serde_json::from_value(obj.get("rules").cloned().unwrap_or(Value::Null))
                        .unwrap_or_default();
                rbac::may_write_role(&self.policy, &self.user, namespace, plural, name, &rules)
                    .map_err(refused)?;
                let aggregation = obj.get("aggregationRule").filter(|v| !v.is_null());
                let old_aggregation = old
                    .and_then(|o| o.get("aggregationRule"))
                    .filter(|v| !v.is_null());
                if plural == "clusterroles"
                    && aggregation.is_some()
                    && aggregation != old_aggregation
                {
                    rbac::may_set_aggregation_rule(&self.policy, &self.user, name)
                        .map_err(refused)?;
                }
                Ok(())
            }
            "rolebindings" | "clusterrolebindings" => {
                let Some(role_ref) = obj
                    .get("roleRef")
                    .and_then(|r| serde_json::from_value(r.clone()).ok())
                else {
                    return Ok(()); // validation reports the missing roleRef
                };
                rbac::may_bind(&self.policy, &self.user, namespace, &role_ref).map_err(refused)
            }
            _ => Ok(()),
        }
    }
}

/// What `user` may do in `namespace` (a SelfSubjectRulesReview's status).
pub(crate) async fn rules_review(
    api: &Api,
    cluster: &str,
    user: &UserInfo,
    namespace: &str,
) -> Result<Value, ApiError> {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    if user.in_group(SYSTEM_MASTERS) {
        resource_rules
            .push(serde_json::json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        non_resource_rules.push(serde_json::json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    let policy = api.authorizer.policy(api, cluster).await?;
    let rules = policy.rules_for(&rbac_user(user), namespace);
    for r in &rules.resource_rules {
        resource_rules.push(serde_json::to_value(r).map_err(ApiError::internal)?);
    }
    for r in &rules.non_resource_rules {
        non_resource_rules.push(serde_json::to_value(r).map_err(ApiError::internal)?);
    }
    let mut status = serde_json::json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": rules.incomplete,
    });
    if let Some(e) = rules.evaluation_error.filter(|e| !e.is_empty()) {
        status["evaluationError"] = e.into();
    }
    Ok(status)
}

/// Authorizes a request for a path that is not a resource (discovery, OpenAPI, health).
pub(crate) async fn authorize_path(
    api: &Api,
    cluster: &str,
    user: &UserInfo,
    method: &Method,
    path: &str,
) -> Result<(), ApiError> {
    let verb = match *method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "options",
    };
    let attrs = Attributes {
        verb: verb.to_owned(),
        path: path.to_owned(),
        ..Default::default()
    };
    if user.is_anonymous() && !(verb == "get" && is_public_path(path)) {
        return Err(ApiError::unauthorized());
    }
    let decision = decide(api, cluster, user, &attrs).await?;
    if decision.allowed {
        return Ok(());
    }
    Err(ApiError::forbidden(with_reason(
        format!(
            "forbidden: User {:?} cannot {verb} path {path:?}",
            user.name
        ),
        &decision.reason,
    )))
}

/// Authorizes a resource request.
pub(crate) async fn authorize_request(
    api: &Api,
    cluster: &str,
    user: &UserInfo,
    req: &ResourceRequest,
    field_selector: &str,
) -> Result<(), ApiError> {
    if user.is_anonymous() {
        return Err(ApiError::unauthorized());
    }
    let attrs = Attributes::of_request(req).with_field_selector(field_selector);
    let decision = decide(api, cluster, user, &attrs).await?;
    if decision.allowed {
        return Ok(());
    }
    Err(forbidden(user, &attrs, req.verb, &decision.reason))
}

fn with_reason(message: String, reason: &str) -> String {
    if reason.is_empty() {
        message
    } else {
        format!("{message}: {reason}")
    }
}

/// Upstream's 403 for a resource request, e.g. `pods "web" is forbidden: User "alice" cannot
/// get resource "pods" in API group "" in the namespace "default"`.
fn forbidden(user: &UserInfo, a: &Attributes, verb: Verb, reason: &str) -> ApiError {
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let qualified = if a.api_group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.api_group)
    };
    let subject = if a.name.is_empty() {
        qualified.clone()
    } else {
        format!("{qualified} {:?}", a.name)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace {:?}", a.namespace)
    };
    let message = format!(
        "{subject} is forbidden: User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        user.name,
        verb.name(),
        a.api_group,
    );
    let mut err = ApiError::forbidden(with_reason(message, reason));
    let mut details = serde_json::json!({ "kind": a.resource });
    if !a.name.is_empty() {
        details["name"] = a.name.clone().into();
    }
    if !a.api_group.is_empty() {
        details["group"] = a.api_group.clone().into();
    }
    err.details = Some(details);
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_health_and_version_paths_are_public() {
        for p in ["/healthz", "/livez/", "/readyz/etcd", "/version"] {
            assert!(is_public_path(p), "{p}");
        }
        for p in [
            "/api",
            "/apis",
            "/metrics",
            "/healthzz",
            "/openapi/v2",
            "/versions",
        ] {
            assert!(!is_public_path(p), "{p}");
        }
    }

    #[test]
    fn forbidden_messages_read_like_upstreams() {
        let user = UserInfo::authenticated("alice".into(), String::new(), vec![]);
        let req =
            crate::request::parse(&Method::GET, "/api/v1/namespaces/dev/pods/web", false).unwrap();
        let e = forbidden(&user, &Attributes::of_request(&req), req.verb, "");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            r#"pods "web" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "dev""#
        );
        let req = crate::request::parse(&Method::GET, "/apis/apps/v1/deployments", false).unwrap();
        let e = forbidden(&user, &Attributes::of_request(&req), req.verb, "");
        assert_eq!(
            e.message,
            r#"deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope"#
        );
    }
}
