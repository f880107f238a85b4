//! `Denial`: a refused request as the Kubernetes `Status` the API server returns, with
//! upstream's texts (`apierrors.NewInternalError`, `NewForbidden`, `NewBadRequest`, and the
//! webhook plugin's `ToStatusErr`).

use serde_json::{Map, Value, json};

/// Why dynamic admission refused a request; the API server renders it with [`Denial::to_status`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Denial {
    /// The HTTP status code.
    pub code: u16,
    /// The `Status.reason` (`Forbidden`, `Invalid`, `InternalError`, `BadRequest`...), may be empty.
    pub reason: String,
    /// The `Status.message`, what kubectl prints after `Error from server (<reason>):`.
    pub message: String,
    /// The `Status.details`, when there are any.
    pub details: Option<Value>,
}

impl Denial {
    /// The `Status` object (`kind: Status`, `apiVersion: v1`, `status: Failure`).
    pub fn to_status(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), "Status".into());
        m.insert("apiVersion".into(), "v1".into());
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), "Failure".into());
        m.insert("message".into(), self.message.clone().into());
        if !self.reason.is_empty() {
            m.insert("reason".into(), self.reason.clone().into());
        }
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        m.insert("code".into(), self.code.into());
        Value::Object(m)
    }

    /// Upstream `apierrors.NewInternalError(err)`.
    pub(crate) fn internal(err: &str) -> Self {
        Denial {
            code: 500,
            reason: "InternalError".into(),
            message: format!("Internal error occurred: {err}"),
            details: Some(json!({"causes": [{"message": err}]})),
        }
    }

    /// Upstream `apierrors.NewBadRequest(reason)`.
    pub(crate) fn bad_request(message: String) -> Self {
        Denial {
            code: 400,
            reason: "BadRequest".into(),
            message,
            details: None,
        }
    }

    /// Upstream `apierrors.NewForbidden(resource, name, err)`.
    pub(crate) fn forbidden(group: &str, resource: &str, name: &str, err: &str) -> Self {
        let qualified = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        let message = if qualified.is_empty() {
            format!("forbidden: {err}")
        } else if name.is_empty() {
            format!("{qualified} is forbidden: {err}")
        } else {
            format!("{qualified} {name:?} is forbidden: {err}")
        };
        let mut details = Map::new();
        if !name.is_empty() {
            details.insert("name".into(), name.into());
        }
        if !group.is_empty() {
            details.insert("group".into(), group.into());
        }
        if !resource.is_empty() {
            details.insert("kind".into(), resource.into());
        }
        Denial {
            code: 403,
            reason: "Forbidden".into(),
            message,
            details: Some(Value::Object(details)),
        }
    }

    /// Upstream `apierrors.NewNotFound(namespaces, name)`, for a namespace selector on a
    /// namespace that does not exist.
    pub(crate) fn namespace_not_found(name: &str) -> Self {
        Denial {
            code: 404,
            reason: "NotFound".into(),
            message: format!("namespaces {name:?} not found"),
            details: Some(json!({"name": name, "kind": "namespaces"})),
        }
    }

    /// A webhook's rejection (upstream `webhookerrors.ToStatusErr`): its status with the code
    /// raised to at least 400 and the message prefixed with the webhook's name.
    pub(crate) fn webhook_rejection(webhook: &str, result: Option<&Value>) -> Self {
        let denied_by = format!("admission webhook {webhook:?} denied the request");
        let field = |k: &str| {
            result
                .and_then(|r| r.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let code = result
            .and_then(|r| r.get("code"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let code = if code < 400 {
            400
        } else {
            u16::try_from(code).unwrap_or(500)
        };
        let (message, reason) = (field("message"), field("reason"));
        let message = if !message.is_empty() {
            format!("{denied_by}: {message}")
        } else if !reason.is_empty() {
            format!("{denied_by}: {reason}")
        } else {
            format!("{denied_by} without explanation")
        };
        Denial {
            code,
            reason,
            message,
            details: result.and_then(|r| r.get("details")).cloned(),
        }
    }
}
