//! Authorization: may this user do this, in this logical cluster?
//!
//! In upstream's order: members of `system:masters` may do anything (upstream's privileged-group
//! authorizer); the anonymous user may only read the health and version paths (any other
//! anonymous request is 401, as upstream with anonymous access limited to those endpoints); every
//! other request is decided by the cluster's RBAC policy.

use axum::http::Method;

use crate::Api;
use crate::auth::{SYSTEM_MASTERS, UserInfo};
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
        }
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

/// Decides `attrs` for `user` in `cluster`.
pub async fn decide(
    _api: &Api,
    _cluster: &str,
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
    Ok(Decision {
        allowed: false,
        reason: String::new(),
    })
}

/// What `user` may do in `namespace` (a SelfSubjectRulesReview's status).
pub(crate) async fn rules_review(
    _api: &Api,
    _cluster: &str,
    user: &UserInfo,
    _namespace: &str,
) -> Result<serde_json::Value, ApiError> {
    if user.in_group(SYSTEM_MASTERS) {
        return Ok(serde_json::json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }));
    }
    Ok(serde_json::json!({
        "resourceRules": [],
        "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version"]}],
        "incomplete": false,
    }))
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
) -> Result<(), ApiError> {
    if user.is_anonymous() {
        return Err(ApiError::unauthorized());
    }
    let attrs = Attributes::of_request(req);
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
