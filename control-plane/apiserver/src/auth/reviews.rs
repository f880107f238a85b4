//! The create-only "review" APIs and the TokenRequest subresource: what `kubectl auth whoami`,
//! `kubectl auth can-i`, `kubectl create token` and webhook authenticators call.
//!
//! None of them stores anything; each answers about the caller (or a named subject) in the
//! addressed cluster only.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::credentials::ClusterCredentials;
use super::{UserInfo, tokens};
use crate::Api;
use crate::authz::{self, Attributes};
use crate::error::ApiError;
use crate::request::{ResourceRequest, Verb};

/// Whether `req` is one of the requests served here.
pub(crate) fn handles(req: &ResourceRequest) -> bool {
    match (req.group.as_str(), req.resource.as_str()) {
        ("authentication.k8s.io", "tokenreviews" | "selfsubjectreviews") => true,
        (
            "authorization.k8s.io",
            "selfsubjectaccessreviews"
            | "subjectaccessreviews"
            | "localsubjectaccessreviews"
            | "selfsubjectrulesreviews",
        ) => true,
        ("", "serviceaccounts") => req.subresource.as_deref() == Some("token"),
        _ => false,
    }
}

fn created(obj: Value) -> Response {
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        obj.to_string(),
    )
        .into_response()
}

fn invalid(kind: &str, field: &str, message: &str) -> ApiError {
    let mut e = ApiError::bad_request(format!("{kind} is invalid: {field}: {message}"));
    e.code = 422;
    e.reason = "Invalid";
    e.details = Some(json!({
        "kind": kind,
        "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
    }));
    e
}

/// Serves `req` (for which [`handles`] is true) with request body `body`.
pub(crate) async fn serve(
    api: &Api,
    creds: &ClusterCredentials,
    user: &UserInfo,
    req: &ResourceRequest,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    if req.verb != Verb::Create {
        return Err(ApiError::method_not_allowed(format!(
            "{} only supports create",
            req.resource
        )));
    }
    let mut obj = if body.is_empty() {
        json!({})
    } else {
        crate::handlers::decode_body(headers, body)?
    };
    if !obj.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    let api_version = if req.group.is_empty() {
        req.version.clone()
    } else {
        format!("{}/{}", req.group, req.version)
    };
    obj["apiVersion"] = json!(api_version);
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    let cluster = creds.cluster();
    match req.resource.as_str() {
        "selfsubjectreviews" => {
            obj["kind"] = json!("SelfSubjectReview");
            obj["status"] = json!({ "userInfo": user });
            Ok(created(obj))
        }
        "tokenreviews" => {
            obj["kind"] = json!("TokenReview");
            let token = obj
                .pointer("/spec/token")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if token.is_empty() {
                return Err(invalid("TokenReview", "spec.token", "Required value"));
            }
            let requested: Vec<String> = obj
                .pointer("/spec/audiences")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let audiences = if requested.is_empty() {
                vec![tokens::API_AUDIENCE.to_owned()]
            } else {
                requested.clone()
            };
            obj["status"] = match super::authenticate_token(api, creds, &token, &audiences).await? {
                Ok(who) => {
                    let mut status = json!({ "authenticated": true, "user": who });
                    if !requested.is_empty() {
                        status["audiences"] = json!(audiences);
                    }
                    status
                }
                Err(reason) => json!({ "authenticated": false, "user": {}, "error": reason }),
            };
            Ok(created(obj))
        }
        "selfsubjectaccessreviews" | "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let (kind, subject) = match req.resource.as_str() {
                "selfsubjectaccessreviews" => ("SelfSubjectAccessReview", user.clone()),
                other => {
                    let spec = obj.get("spec").cloned().unwrap_or_default();
                    let name = spec.get("user").and_then(Value::as_str).unwrap_or_default();
                    let groups: Vec<String> = spec
                        .get("groups")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    if name.is_empty() && groups.is_empty() {
                        let kind = if other == "subjectaccessreviews" {
                            "SubjectAccessReview"
                        } else {
                            "LocalSubjectAccessReview"
                        };
                        return Err(invalid(
                            kind,
                            "spec.user",
                            "at least one of user or group must be specified",
                        ));
                    }
                    let extra =
                        serde_json::from_value(spec.get("extra").cloned().unwrap_or(json!({})))
                            .unwrap_or_default();
                    let subject = UserInfo {
                        name: name.to_owned(),
                        uid: spec
                            .get("uid")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        groups,
                        extra,
                    };
                    if other == "subjectaccessreviews" {
                        ("SubjectAccessReview", subject)
                    } else {
                        ("LocalSubjectAccessReview", subject)
                    }
                }
            };
            obj["kind"] = json!(kind);
            let spec = obj.get("spec").cloned().unwrap_or_default();
            let attrs = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
                let s = |k: &str| {
                    ra.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut namespace = s("namespace");
                if kind == "LocalSubjectAccessReview" {
                    let ns = req.namespace.clone().unwrap_or_default();
                    if !namespace.is_empty() && namespace != ns {
                        return Err(invalid(
                            kind,
                            "spec.resourceAttributes.namespace",
                            "must match metadata.namespace",
                        ));
                    }
                    namespace = ns;
                    obj["metadata"]["namespace"] = json!(namespace);
                }
                Attributes {
                    verb: s("verb"),
                    namespace,
                    api_group: s("group"),
                    resource: s("resource"),
                    subresource: s("subresource"),
                    name: s("name"),
                    resource_request: true,
                    path: String::new(),
                    field_equals: Vec::new(),
                }
            } else if let Some(nra) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
                let s = |k: &str| {
                    nra.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                Attributes {
                    verb: s("verb"),
                    path: s("path"),
                    ..Default::default()
                }
            } else {
                return Err(invalid(
                    kind,
                    "spec.resourceAttributes",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                ));
            };
            let decision = authz::decide(api, cluster, &subject, &attrs).await?;
            let mut status = json!({ "allowed": decision.allowed });
            if !decision.reason.is_empty() {
                status["reason"] = json!(decision.reason);
            }
            obj["status"] = status;
            Ok(created(obj))
        }
        "selfsubjectrulesreviews" => {
            obj["kind"] = json!("SelfSubjectRulesReview");
            let namespace = obj
                .pointer("/spec/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            obj["status"] = authz::rules_review(api, cluster, user, &namespace).await?;
            Ok(created(obj))
        }
        "serviceaccounts" => token_request(api, creds, req, obj).await,
        _ => Err(ApiError::no_route()),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// `POST serviceaccounts/<name>/token`: a bound service-account token.
async fn token_request(
    api: &Api,
    creds: &ClusterCredentials,
    req: &ResourceRequest,
    mut obj: Value,
) -> Result<Response, ApiError> {
    let cluster = creds.cluster();
    let namespace = req.namespace.clone().unwrap_or_default();
    let name = req.name.clone().unwrap_or_default();
    obj["kind"] = json!("TokenRequest");
    obj["apiVersion"] = json!("authentication.k8s.io/v1");
    let sa_def = api
        .root_served
        .registry
        .get("", "v1", "serviceaccounts")
        .expect("built in");
    let sa = super::get(api, cluster, "serviceaccounts", Some(&namespace), &name)
        .await?
        .ok_or_else(|| ApiError::not_found(sa_def, &name))?;
    let sa_uid = super::uid_of(Some(&sa)).unwrap_or_default().to_owned();
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let expiration = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => tokens::DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v.as_i64().ok_or_else(|| {
            invalid(
                "TokenRequest",
                "spec.expirationSeconds",
                "must be an integer",
            )
        })?,
    };
    if expiration < tokens::MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            "TokenRequest",
            "spec.expirationSeconds",
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > 1 << 32 {
        return Err(invalid(
            "TokenRequest",
            "spec.expirationSeconds",
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let expiration = expiration.min(tokens::MAX_EXPIRATION_SECONDS);
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec![tokens::API_AUDIENCE.to_owned()]);
    let mut kubernetes = tokens::KubernetesClaims {
        namespace: namespace.clone(),
        serviceaccount: tokens::ObjectRef {
            name: name.clone(),
            uid: sa_uid,
        },
        pod: None,
        secret: None,
        node: None,
    };
    if let Some(bound) = spec.get("boundObjectRef").filter(|v| v.is_object()) {
        let kind = bound
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let bound_name = bound
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let want_uid = bound.get("uid").and_then(Value::as_str).unwrap_or_default();
        let (plural, ns) = match kind {
            "Pod" => ("pods", Some(namespace.as_str())),
            "Secret" => ("secrets", Some(namespace.as_str())),
            "Node" => ("nodes", None),
            other => {
                return Err(invalid(
                    "TokenRequest",
                    "spec.boundObjectRef.kind",
                    &format!(
                        "cannot bind a token to a {other:?}; supported: \"Pod\", \"Secret\", \"Node\""
                    ),
                ));
            }
        };
        let def = api
            .root_served
            .registry
            .get("", "v1", plural)
            .expect("built in");
        let live = super::get(api, cluster, plural, ns, bound_name)
            .await?
            .ok_or_else(|| ApiError::not_found(def, bound_name))?;
        let uid = super::uid_of(Some(&live)).unwrap_or_default().to_owned();
        if !want_uid.is_empty() && want_uid != uid {
            let mut e = ApiError::conflict_message(
                def,
                bound_name,
                format!(
                    "the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            );
            e.reason = "Conflict";
            return Err(e);
        }
        let object_ref = tokens::ObjectRef {
            name: bound_name.to_owned(),
            uid: uid.clone(),
        };
        match kind {
            "Pod" => {
                if let Some(node) = live.pointer("/spec/nodeName").and_then(Value::as_str) {
                    let node_uid = super::get(api, cluster, "nodes", None, node)
                        .await?
                        .as_ref()
                        .and_then(|n| super::uid_of(Some(n)).map(str::to_owned))
                        .unwrap_or_default();
                    kubernetes.node = Some(tokens::ObjectRef {
                        name: node.to_owned(),
                        uid: node_uid,
                    });
                }
                kubernetes.pod = Some(object_ref);
            }
            "Secret" => kubernetes.secret = Some(object_ref),
            _ => kubernetes.node = Some(object_ref),
        }
    }
    let now = unix_now();
    let claims = tokens::Claims {
        iss: tokens::ISSUER.to_owned(),
        sub: format!("system:serviceaccount:{namespace}:{name}"),
        aud: audiences.clone(),
        exp: now + expiration,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        kubernetes,
        cluster: cluster.to_owned(),
    };
    let token = tokens::sign(creds, &claims).map_err(ApiError::internal_message)?;
    obj["metadata"] = json!({
        "name": name,
        "namespace": namespace,
        "creationTimestamp": rfc3339(now),
    });
    obj["spec"]["audiences"] = json!(audiences);
    obj["spec"]["expirationSeconds"] = json!(expiration);
    obj["status"] = json!({
        "token": token,
        "expirationTimestamp": rfc3339(now + expiration),
    });
    Ok(created(obj))
}
