//! The API server's one error type, rendered as a Kubernetes `Status`.
//!
//! Every failure a client sees is a `Status` object with upstream's `reason`, `code`, message and
//! details, so kubectl and client libraries react to it as they would to kube-apiserver: a 409
//! `AlreadyExists` is told apart from a 409 `Conflict`, a 422 lists its field causes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use objects::field::{FieldError, aggregate_message};
use serde_json::{Value, json};
use store::StoreError;

use crate::registry::ResourceDef;

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Upstream's `StatusReason`, e.g. `NotFound`.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `Status.details`, when upstream fills them.
    pub details: Option<Value>,
    /// Seconds a client should wait before retrying (sets `Retry-After`).
    pub retry_after: Option<u64>,
}

fn details(def: &ResourceDef, name: &str) -> Value {
    let mut d = json!({ "name": name, "kind": def.plural });
    if !def.group.is_empty() {
        d["group"] = json!(def.group);
    }
    d
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 NotFound for an object.
    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        ApiError {
            details: Some(details(def, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", def.qualified_plural()),
            )
        }
    }

    /// 404 NotFound for a path that serves nothing.
    pub fn no_route() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    /// 409 AlreadyExists.
    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        ApiError {
            details: Some(details(def, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", def.qualified_plural()),
            )
        }
    }

    /// 409 Conflict: the object changed since the client read it.
    pub fn conflict(def: &ResourceDef, name: &str) -> Self {
        ApiError {
            details: Some(details(def, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    def.qualified_plural()
                ),
            )
        }
    }

    /// 409 Conflict with a custom message (failed preconditions).
    pub fn conflict_message(def: &ResourceDef, name: &str, message: impl Into<String>) -> Self {
        ApiError {
            details: Some(details(def, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {}",
                    def.qualified_plural(),
                    message.into()
                ),
            )
        }
    }

    /// 422 Invalid with field causes.
    pub fn invalid(def: &ResourceDef, name: &str, errors: &[FieldError]) -> Self {
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({ "reason": e.kind.reason(), "message": e.body(), "field": e.field.as_str() }))
            .collect();
        let mut d = json!({ "name": name, "kind": def.kind, "causes": causes });
        if !def.group.is_empty() {
            d["group"] = json!(def.group);
        }
        ApiError {
            details: Some(d),
            ..Self::new(
                422,
                "Invalid",
                format!(
                    "{} \"{name}\" is invalid: {}",
                    def.kind,
                    aggregate_message(errors)
                ),
            )
        }
    }

    /// 401 Unauthorized: no valid credentials for the addressed cluster. Like upstream, it says
    /// nothing about why, so it cannot be used to probe credentials.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 429 TooManyRequests (set `retry_after`).
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(429, "TooManyRequests", message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    /// 410 Gone (reason Expired) for a list continuation or watch that is too old.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; got {content_type:?}"
            ),
        )
    }

    /// 415 UnsupportedMediaType for a patch: patches are never protobuf, upstream's list.
    pub fn unsupported_patch_type(content_type: &str, strategic: bool) -> Self {
        let accepted = if strategic {
            "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
        } else {
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        };
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {accepted}; got {content_type:?}"
            ),
        )
    }

    /// 429 TooManyRequests: an eviction a disruption budget does not allow.
    pub fn disruption_budget(cause: impl Into<String>) -> Self {
        ApiError {
            details: Some(
                json!({"causes": [{"reason": "DisruptionBudget", "message": cause.into()}]}),
            ),
            retry_after: Some(10),
            ..Self::new(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            )
        }
    }

    /// 500 InternalError with a message the client may see.
    pub fn internal_message(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 500 InternalError; the cause is logged, not shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error serving a request");
        Self::new(
            500,
            "InternalError",
            "Internal error occurred: the server could not complete the request; see the server log",
        )
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(503, "ServiceUnavailable", message)
        }
    }

    /// 504 Timeout.
    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(504, "Timeout", message)
        }
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            code,
            [("content-type", "application/json")],
            self.status().to_string(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert("retry-after", secs.into());
        }
        response
    }
}

/// Store failures as clients see them.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Compacted {
                requested,
                compacted,
            } => ApiError::expired(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            StoreError::FutureRevision { requested, current } => ApiError::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )),
            StoreError::ValueTooLarge { .. } => ApiError::too_large(crate::MAX_OBJECT_BYTES),
            StoreError::Unavailable(msg) => {
                ApiError::unavailable(format!("the storage is unavailable: {msg}"))
            }
            other => ApiError::internal(other),
        }
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
