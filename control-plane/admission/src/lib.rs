//! Upstream's built-in admission plugins as pure functions.
//!
//! Each plugin takes an [`AdmissionRequest`] (the operation, the resource, the new and old object as
//! JSON, the user) and the state it needs, passed in as plain data the caller fetched (the
//! namespace, LimitRanges, ResourceQuotas, PriorityClasses, the ServiceAccount…), and returns a
//! [`Verdict`]: the mutated object, warnings, audit annotations, or a [`Denial`] carrying upstream's
//! status code, reason and message word for word.
//!
//! Upstream runs every mutating plugin, in order, then every validating plugin, in order; a
//! plugin sees the object as the plugins before it left it. For these plugins that is:
//!
//! 1. mutating: [`limit_ranger::mutate`], [`service_account::admit`] (which also validates),
//!    [`priority::admit`] (pods), [`default_toleration_seconds::admit`];
//! 2. validating: [`limit_ranger::validate`], [`pod_security::admit`] (pods and workloads;
//!    [`pod_security::admit_namespace`] for namespaces), [`priority::admit`]
//!    (PriorityClasses), [`resource_quota::admit`] last, after any webhooks.
//!
//! What this crate is not: it does no I/O, keeps no caches, reads no clock and draws no random
//! numbers (the ServiceAccount token volume's random suffix is an argument). It does not write the
//! quota's new `status.used`; it returns it for the caller to write with a precondition.

pub mod default_toleration_seconds;
pub mod limit_ranger;
pub mod pod_security;
pub mod priority;
pub mod quantity;
pub mod resource_quota;
pub mod service_account;

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// What the request does (upstream's `admission.Operation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A create.
    Create,
    /// An update or patch.
    Update,
    /// A delete.
    Delete,
    /// A connect (exec, attach, port-forward, proxy).
    Connect,
}

/// The resource a request addresses: group, version and plural name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// The API group, `""` for core.
    pub group: String,
    /// The version, e.g. `v1`.
    pub version: String,
    /// The plural resource name, e.g. `pods`.
    pub resource: String,
}

impl Resource {
    /// A resource of the given group, version and plural.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Resource {
            group: group.to_owned(),
            version: version.to_owned(),
            resource: resource.to_owned(),
        }
    }

    /// `pods` or `deployments.apps`, as upstream's `GroupResource.String()`.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn is(&self, group: &str, resource: &str) -> bool {
        self.group == group && self.resource == resource
    }
}

/// The user making the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub username: String,
    /// The groups the user belongs to.
    pub groups: Vec<String>,
}

/// One admission request, as upstream's `admission.Attributes`.
#[derive(Clone, Debug)]
pub struct AdmissionRequest {
    /// What the request does.
    pub operation: Operation,
    /// The resource addressed.
    pub resource: Resource,
    /// The subresource (`""`, `status`, `ephemeralcontainers`…).
    pub subresource: String,
    /// The namespace, `""` for cluster-scoped resources.
    pub namespace: String,
    /// The object's name; for a create with `generateName`, the generated name when known.
    pub name: String,
    /// The new object (none on delete and connect).
    pub object: Option<Value>,
    /// The stored object on update and delete.
    pub old_object: Option<Value>,
    /// Who asks.
    pub user: UserInfo,
    /// Whether the request is a dry run.
    pub dry_run: bool,
}

impl AdmissionRequest {
    /// A create of `object` in `namespace`, named after the object.
    pub fn create(resource: Resource, namespace: &str, object: Value) -> Self {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        AdmissionRequest {
            operation: Operation::Create,
            resource,
            subresource: String::new(),
            namespace: namespace.to_owned(),
            name,
            object: Some(object),
            old_object: None,
            user: UserInfo::default(),
            dry_run: false,
        }
    }

    /// An update of `old` to `object` in `namespace`.
    pub fn update(resource: Resource, namespace: &str, object: Value, old: Value) -> Self {
        let mut r = Self::create(resource, namespace, object);
        r.operation = Operation::Update;
        r.old_object = Some(old);
        r
    }

    /// Whether this request creates or updates the main resource `group`/`resource`.
    fn addresses(&self, group: &str, resource: &str) -> bool {
        self.resource.is(group, resource) && self.subresource.is_empty()
    }

    /// The name upstream's `admission.NewForbidden` prints: the request's name, else the
    /// object's name or `generateName`, else `Unknown`.
    fn display_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        let meta = self.object.as_ref().map(|o| &o["metadata"]);
        for key in ["name", "generateName"] {
            if let Some(s) = meta.and_then(|m| m[key].as_str()).filter(|s| !s.is_empty()) {
                return s.to_owned();
            }
        }
        "Unknown".to_owned()
    }
}

/// A refusal, rendered as the API server's `Status`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denial {
    /// The HTTP status code (403 for policy refusals).
    pub code: u16,
    /// The `Status.reason`, e.g. `Forbidden`.
    pub reason: String,
    /// The full message, e.g. `pods "x" is forbidden: …`.
    pub message: String,
    /// `Status.details.name`.
    pub name: String,
    /// `Status.details.group`.
    pub group: String,
    /// `Status.details.kind` (upstream puts the resource here).
    pub kind: String,
}

impl Denial {
    /// Upstream's `admission.NewForbidden(a, err)`: `<resource> "<name>" is forbidden: <err>`.
    pub fn forbidden(req: &AdmissionRequest, err: impl std::fmt::Display) -> Self {
        let name = req.display_name();
        Denial {
            code: 403,
            reason: "Forbidden".to_owned(),
            message: format!(
                "{} {:?} is forbidden: {err}",
                req.resource.group_resource(),
                name
            ),
            name,
            group: req.resource.group.clone(),
            kind: req.resource.resource.clone(),
        }
    }

    /// The `Status` object the API server returns for this denial.
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": {"name": self.name, "group": self.group, "kind": self.kind},
            "code": self.code,
        })
    }
}

/// What a plugin decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// The object after mutation, when the plugin changed it.
    pub patched: Option<Value>,
    /// Warnings for the client (`Warning: 299` headers).
    pub warnings: Vec<String>,
    /// Audit annotations, keyed without the plugin prefix (`audit`, `error`…).
    pub annotations: BTreeMap<String, String>,
    /// The refusal, when the request must fail.
    pub denial: Option<Denial>,
}

impl Verdict {
    /// Admit unchanged.
    pub fn allow() -> Self {
        Verdict::default()
    }

    /// Refuse with `denial`.
    pub fn deny(denial: Denial) -> Self {
        Verdict {
            denial: Some(denial),
            ..Verdict::default()
        }
    }

    /// Admit with the object replaced by `object`.
    pub fn patch(object: Value) -> Self {
        Verdict {
            patched: Some(object),
            ..Verdict::default()
        }
    }

    /// Whether the request may proceed.
    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }
}

/// The items of a JSON array, none when absent.
fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Go's `%q` for a plain string.
fn quote(s: &str) -> String {
    format!("{s:?}")
}
