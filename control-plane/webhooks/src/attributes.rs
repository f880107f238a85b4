//! What is being admitted, and the `AdmissionRequest` upstream builds from it.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The operation being admitted (upstream `admission.Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A create.
    Create,
    /// An update (also a patch or an apply).
    Update,
    /// A delete.
    Delete,
    /// A connect to a subresource (`pods/exec`, `pods/portforward`...).
    Connect,
}

impl Operation {
    /// The name rules and requests use: `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// A group, version and kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Gvk {
    /// The API group, empty for the core group.
    pub group: String,
    /// The version.
    pub version: String,
    /// The kind.
    pub kind: String,
}

impl Gvk {
    /// A group, version and kind from their parts.
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Gvk {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"group": self.group, "version": self.version, "kind": self.kind})
    }
}

/// A group, version and resource (plural name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Gvr {
    /// The API group, empty for the core group.
    pub group: String,
    /// The version.
    pub version: String,
    /// The resource, plural and lower case.
    pub resource: String,
}

impl Gvr {
    /// A group, version and resource from their parts.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Gvr {
            group: group.to_owned(),
            version: version.to_owned(),
            resource: resource.to_owned(),
        }
    }

    /// `resource.group`, or `resource` for the core group (upstream `GroupResource.String`).
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn to_json(&self) -> Value {
        json!({"group": self.group, "version": self.version, "resource": self.resource})
    }
}

/// Who is making the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub username: String,
    /// The user's uid, may be empty.
    pub uid: String,
    /// The user's groups.
    pub groups: Vec<String>,
    /// Extra attributes from the authenticator.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// `authentication.k8s.io/v1` `UserInfo` as Go marshals it: empty fields omitted.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.username.is_empty() {
            m.insert("username".into(), self.username.clone().into());
        }
        if !self.uid.is_empty() {
            m.insert("uid".into(), self.uid.clone().into());
        }
        if !self.groups.is_empty() {
            m.insert("groups".into(), self.groups.clone().into());
        }
        if !self.extra.is_empty() {
            m.insert("extra".into(), json!(self.extra));
        }
        Value::Object(m)
    }
}

/// Everything dynamic admission looks at (upstream `admission.Attributes`).
#[derive(Debug, Clone)]
pub struct Attributes {
    /// The operation.
    pub operation: Operation,
    /// The kind of the object as the request addressed it.
    pub kind: Gvk,
    /// The resource as the request addressed it.
    pub resource: Gvr,
    /// The subresource (`status`, `scale`, `exec`...), empty for the main resource.
    pub subresource: String,
    /// The namespace, empty for cluster-scoped resources; for a namespace itself, its name.
    pub namespace: String,
    /// The object's name, empty when the server generates it.
    pub name: String,
    /// The new object; `None` for DELETE and for CONNECT.
    pub object: Option<Value>,
    /// The stored object; `Some` for UPDATE and DELETE.
    pub old_object: Option<Value>,
    /// Whether the request is a dry run.
    pub dry_run: bool,
    /// The requesting user.
    pub user: UserInfo,
    /// The operation's options (`CreateOptions`, `UpdateOptions`, `DeleteOptions`...), with
    /// `apiVersion` and `kind` set.
    pub options: Option<Value>,
    /// The namespace object of a namespaced request (its labels feed namespace selectors and it
    /// is `namespaceObject` in policies); `None` for cluster-scoped requests or when the
    /// namespace does not exist.
    pub namespace_object: Option<Value>,
}

impl Attributes {
    /// Attributes for `operation` on `resource` of `kind`, with everything else empty.
    pub fn new(operation: Operation, kind: Gvk, resource: Gvr) -> Self {
        Attributes {
            operation,
            kind,
            resource,
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
            object: None,
            old_object: None,
            dry_run: false,
            user: UserInfo::default(),
            options: None,
            namespace_object: None,
        }
    }

    /// Whether this is a request for a namespace object itself.
    pub(crate) fn is_namespace(&self) -> bool {
        self.resource.group.is_empty() && self.resource.resource == "namespaces"
    }

    /// The name upstream's `admission.NewForbidden` puts in messages: the request's name, else
    /// the object's name or generateName, else `Unknown`.
    pub(crate) fn display_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        let meta = |k: &str| {
            self.object
                .as_ref()
                .and_then(|o| o.pointer(&format!("/metadata/{k}")))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
        };
        meta("name")
            .or_else(|| meta("generateName"))
            .unwrap_or("Unknown")
            .to_owned()
    }

    /// The `request` variable of CEL expressions: the admission request without uid, object
    /// and oldObject (upstream `cel.CreateAdmissionRequest`).
    pub(crate) fn cel_request(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), self.kind.to_json());
        m.insert("resource".into(), self.resource.to_json());
        if !self.subresource.is_empty() {
            m.insert("subResource".into(), self.subresource.clone().into());
        }
        m.insert("requestKind".into(), self.kind.to_json());
        m.insert("requestResource".into(), self.resource.to_json());
        if !self.subresource.is_empty() {
            m.insert("requestSubResource".into(), self.subresource.clone().into());
        }
        if !self.name.is_empty() {
            m.insert("name".into(), self.name.clone().into());
        }
        if !self.namespace.is_empty() {
            m.insert("namespace".into(), self.namespace.clone().into());
        }
        m.insert("operation".into(), self.operation.as_str().into());
        m.insert("userInfo".into(), self.user.to_json());
        m.insert("dryRun".into(), self.dry_run.into());
        if let Some(o) = &self.options {
            m.insert("options".into(), o.clone());
        }
        Value::Object(m)
    }

    /// The `admission.k8s.io/v1` `AdmissionReview` sent to a webhook, as upstream's
    /// `CreateV1AdmissionReview` marshals it. Until conversion between versions exists here,
    /// the kind and resource sent equal the requested ones.
    pub fn admission_review(&self, uid: &str) -> Value {
        let mut m = Map::new();
        m.insert("uid".into(), uid.into());
        m.insert("kind".into(), self.kind.to_json());
        m.insert("resource".into(), self.resource.to_json());
        if !self.subresource.is_empty() {
            m.insert("subResource".into(), self.subresource.clone().into());
        }
        m.insert("requestKind".into(), self.kind.to_json());
        m.insert("requestResource".into(), self.resource.to_json());
        if !self.subresource.is_empty() {
            m.insert("requestSubResource".into(), self.subresource.clone().into());
        }
        if !self.name.is_empty() {
            m.insert("name".into(), self.name.clone().into());
        }
        if !self.namespace.is_empty() {
            m.insert("namespace".into(), self.namespace.clone().into());
        }
        m.insert("operation".into(), self.operation.as_str().into());
        m.insert("userInfo".into(), self.user.to_json());
        m.insert("object".into(), self.object.clone().unwrap_or(Value::Null));
        m.insert(
            "oldObject".into(),
            self.old_object.clone().unwrap_or(Value::Null),
        );
        m.insert("dryRun".into(), self.dry_run.into());
        m.insert(
            "options".into(),
            self.options.clone().unwrap_or(Value::Null),
        );
        json!({
            "kind": "AdmissionReview",
            "apiVersion": "admission.k8s.io/v1",
            "request": Value::Object(m),
        })
    }

    /// The labels namespace selectors match against: those of the namespace object, or of the
    /// object itself when it is a namespace (the old one on DELETE). `None` when the namespace
    /// is unknown.
    pub(crate) fn namespace_labels(&self) -> Option<BTreeMap<String, String>> {
        if self.is_namespace() && self.subresource.is_empty() {
            let obj = if self.operation == Operation::Delete {
                self.old_object.as_ref()
            } else {
                self.object.as_ref().or(self.old_object.as_ref())
            };
            return Some(obj.map(objects::selectors::labels_of).unwrap_or_default());
        }
        self.namespace_object
            .as_ref()
            .map(objects::selectors::labels_of)
    }
}
