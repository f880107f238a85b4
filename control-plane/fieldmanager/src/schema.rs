//! What the merge needs to know about a kind's schema, and two sources of it: the built-in kinds
//! (from the strategic merge patch table of `objects::patch::meta`) and CRD structural schemas.
//!
//! A path is the JSON field names from the root of the object; list items are not steps (the
//! fields of a container are at `["spec", "containers", "image"]`), map keys are.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use objects::GroupKind;
use objects::patch::meta::{self, Strategy};
use serde_json::Value;

/// A key field of a list-map, with the default the schema gives it when an item omits it.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyField {
    /// The field name.
    pub name: String,
    /// The schema default (container ports' `protocol` defaults to `"TCP"`).
    pub default: Option<Value>,
}

/// How a list merges (`x-kubernetes-list-type`).
#[derive(Clone, Debug, PartialEq)]
pub enum ListType {
    /// Replaced and owned as a whole.
    Atomic,
    /// A set of scalars, each item owned on its own.
    Set,
    /// Items identified by their key fields, each merged and owned on its own.
    Map(Vec<KeyField>),
}

/// The type of the value at a path, as far as the schema says.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// An object with declared fields (a Go struct), merged field by field unless `atomic`.
    Struct {
        /// `x-kubernetes-map-type: atomic` / `+structType=atomic`.
        atomic: bool,
    },
    /// An object with free-form keys (`map[string]T`), merged key by key unless `atomic`.
    Map {
        /// `x-kubernetes-map-type: atomic`.
        atomic: bool,
    },
    /// A list.
    List(ListType),
    /// A scalar.
    Scalar,
    /// Replaced and owned as a whole whatever the value is.
    Atomic,
    /// Unknown: decided by the value as upstream's "deduced" type does (objects are free-form
    /// maps merged key by key, lists are atomic).
    Deduced,
}

/// A value Go always serializes for a field of a zero-valued struct: a non-pointer struct is
/// `{}`, a non-`omitempty` pointer, slice or map is `null`. Upstream compares a created object
/// against such a zero object, so these fields never count as added themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zero {
    /// `{}`.
    Object,
    /// `null`.
    Null,
}

/// The schema of one kind, as the merge asks it.
pub trait TypeInfo {
    /// The shape of the field (or map entry) at `path`; `[]` is the object itself.
    fn shape(&self, path: &[&str]) -> Shape;

    /// The shape of the items of the list at `path`.
    fn element_shape(&self, path: &[&str]) -> Shape;

    /// Fields that Go always serializes in the zero value of the struct at `path` (see
    /// [`Zero`]). Only needed for `kubectl create`-exact managedFields of built-in kinds.
    fn zero_fields(&self, _path: &[&str]) -> Vec<(&'static str, Zero)> {
        Vec::new()
    }
}

/// A schema that knows nothing: everything is deduced, as upstream does for kinds without one.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeducedTypes;

impl TypeInfo for DeducedTypes {
    fn shape(&self, _path: &[&str]) -> Shape {
        Shape::Deduced
    }

    fn element_shape(&self, _path: &[&str]) -> Shape {
        Shape::Deduced
    }
}

/// Built-in kinds, from the patch strategies of `objects::patch::meta`: a merge list with a key
/// is a list-map, one without a key a set, any other list atomic, `Replace` atomic. On top,
/// upstream's list-map keys that strategic merge patch does not know (container and service
/// ports are keyed by port and protocol) and its atomic types (label selectors, node
/// selectors, key references).
#[derive(Clone, Copy, Debug)]
pub struct BuiltinTypes {
    root: Option<&'static str>,
}

impl BuiltinTypes {
    /// The schema of `kind`; kinds the table does not know get the metadata rules only.
    pub fn new(kind: GroupKind<'_>) -> Self {
        BuiltinTypes {
            root: Some(meta::root_type(kind).unwrap_or("meta/v1.Object")),
        }
    }
}

/// Free-form maps of the built-in types (by field name, when the table does not say).
const FREE_FORM_MAPS: &[&str] = &[
    "labels",
    "annotations",
    "data",
    "binaryData",
    "stringData",
    "matchLabels",
    "limits",
    "requests",
    "capacity",
    "allocatable",
    "hard",
    "used",
    "parameters",
    "volumeAttributes",
    "overhead",
    "nodeSelector",
];

/// Fields whose type upstream marks `+structType=atomic` or `+mapType=atomic`.
const ATOMIC_FIELDS: &[&str] = &[
    "selector",
    "podSelector",
    "namespaceSelector",
    "labelSelector",
    "nodeSelector",
    "configMapKeyRef",
    "secretKeyRef",
    "fieldRef",
    "resourceFieldRef",
];

/// Walk state of the built-in schema: the meta type at the current step, if known.
enum Step {
    Typed(Shape),
    /// Inside a free-form map or an unknown subtree.
    Free,
}

impl BuiltinTypes {
    fn walk(&self, path: &[&str]) -> (Step, Option<&'static str>) {
        let mut ty = self.root;
        let mut step = Step::Typed(Shape::Struct { atomic: false });
        for name in path {
            let parent = ty;
            step = match step {
                Step::Free => Step::Free,
                Step::Typed(Shape::Map { .. } | Shape::Deduced | Shape::Atomic) => Step::Free,
                Step::Typed(_) => {
                    let field =
                        parent.and_then(|t| meta::fields(t).iter().find(|f| f.name == *name));
                    ty = field.and_then(|f| f.ty);
                    Step::Typed(builtin_shape(parent, name, field.map(|f| f.strategy)))
                }
            };
        }
        (step, ty)
    }
}

fn builtin_shape(parent: Option<&str>, name: &str, strategy: Option<Strategy>) -> Shape {
    let tcp = || Some(Value::from("TCP"));
    let key = |n: &str, default: Option<Value>| KeyField {
        name: n.to_owned(),
        default,
    };
    match (parent, name, strategy) {
        (Some("core/v1.Container" | "core/v1.EphemeralContainer"), "ports", _) => {
            Shape::List(ListType::Map(vec![
                key("containerPort", None),
                key("protocol", tcp()),
            ]))
        }
        (Some("core/v1.ServiceSpec"), "ports", _) => Shape::List(ListType::Map(vec![
            key("port", None),
            key("protocol", tcp()),
        ])),
        (Some("core/v1.PodSpec"), "topologySpreadConstraints", _) => {
            Shape::List(ListType::Map(vec![
                key("topologyKey", None),
                key("whenUnsatisfiable", None),
            ]))
        }
        (Some("core/v1.ServiceSpec"), "selector", _) => Shape::Map { atomic: true },
        (Some("core/v1.ReplicationControllerSpec"), "selector", _) => Shape::Map { atomic: false },
        (_, _, Some(Strategy::Merge(Some(k)))) => Shape::List(ListType::Map(vec![key(k, None)])),
        (_, _, Some(Strategy::Merge(None))) => Shape::List(ListType::Set),
        (_, _, Some(Strategy::Replace)) => Shape::Atomic,
        (_, "nodeSelector", _) => Shape::Map { atomic: true },
        (_, n, _) if FREE_FORM_MAPS.contains(&n) => Shape::Map { atomic: false },
        (_, n, _) if ATOMIC_FIELDS.contains(&n) => Shape::Struct { atomic: true },
        // Unknown objects are structs; unknown lists are atomic (see `resolve`).
        _ => Shape::Struct { atomic: false },
    }
}

impl TypeInfo for BuiltinTypes {
    fn shape(&self, path: &[&str]) -> Shape {
        match self.walk(path).0 {
            Step::Typed(shape) => shape,
            Step::Free => Shape::Deduced,
        }
    }

    fn element_shape(&self, path: &[&str]) -> Shape {
        match self.walk(path).0 {
            Step::Typed(Shape::List(ListType::Set)) => Shape::Scalar,
            Step::Typed(Shape::List(_)) => Shape::Struct { atomic: false },
            _ => Shape::Deduced,
        }
    }

    fn zero_fields(&self, path: &[&str]) -> Vec<(&'static str, Zero)> {
        let (step, ty) = self.walk(path);
        let Step::Typed(..) = step else {
            return Vec::new();
        };
        let Some(ty) = ty else {
            return Vec::new();
        };
        use Zero::{Null, Object};
        match ty {
            "apps/v1.DeploymentSpec" => {
                vec![
                    ("selector", Null),
                    ("template", Object),
                    ("strategy", Object),
                ]
            }
            "apps/v1.ReplicaSetSpec" => vec![("selector", Null), ("template", Object)],
            "apps/v1.StatefulSetSpec" | "apps/v1.DaemonSetSpec" => vec![
                ("selector", Null),
                ("template", Object),
                ("updateStrategy", Object),
            ],
            "batch/v1.JobSpec" => vec![("template", Object)],
            "batch/v1.CronJobSpec" => vec![("jobTemplate", Object)],
            "core/v1.PodTemplateSpec" | "batch/v1.JobTemplateSpec" => {
                vec![("metadata", Object), ("spec", Object)]
            }
            "core/v1.PodTemplate" => vec![("metadata", Object), ("template", Object)],
            "core/v1.PodSpec" => vec![("containers", Null)],
            _ if path.last() == Some(&"metadata") => vec![("creationTimestamp", Null)],
            _ if path.is_empty() => {
                let mut out = vec![("metadata", Object)];
                for f in meta::fields(ty) {
                    if f.name == "spec" || f.name == "status" {
                        out.push((f.name, Object));
                    }
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

/// A custom resource's structural schema (`spec.versions[].schema.openAPIV3Schema`).
/// `metadata` follows the built-in rules of `ObjectMeta`.
#[derive(Clone, Debug)]
pub struct CrdTypes {
    /// The schema's shapes, precomputed once per schema: looking one up costs a map lookup per
    /// path step, not a walk of the schema from its root.
    root: ShapeNode,
    meta: BuiltinTypes,
}

/// The shape of one schema node, its items' shape, and its children by field name (the item
/// schema's fields for an array, as paths do not step into list items).
#[derive(Clone, Debug)]
struct ShapeNode {
    shape: Shape,
    element: Shape,
    children: std::collections::HashMap<String, ShapeNode>,
    /// `additionalProperties` (any other key).
    other: Option<Box<ShapeNode>>,
}

impl ShapeNode {
    fn of(s: &JSONSchemaProps) -> ShapeNode {
        let base = if s.type_.as_deref() == Some("array") {
            items(s)
        } else {
            Some(s)
        };
        ShapeNode {
            shape: crd_shape(s),
            element: items(s).map_or(Shape::Deduced, crd_shape),
            children: base
                .and_then(|b| b.properties.as_ref())
                .map(|p| {
                    p.iter()
                        .map(|(k, v)| (k.clone(), ShapeNode::of(v)))
                        .collect()
                })
                .unwrap_or_default(),
            other: match base.and_then(|b| b.additional_properties.as_ref()) {
                Some(JSONSchemaPropsOrBool::Schema(a)) => Some(Box::new(ShapeNode::of(a))),
                _ => None,
            },
        }
    }
}

impl CrdTypes {
    /// The schema of one served version.
    pub fn new(schema: JSONSchemaProps) -> Self {
        CrdTypes {
            root: ShapeNode::of(&schema),
            meta: BuiltinTypes {
                root: Some("meta/v1.Object"),
            },
        }
    }

    /// The node at `path`, `None` where the schema does not say (unknown or preserved fields).
    fn at(&self, path: &[&str]) -> Option<&ShapeNode> {
        let mut n = &self.root;
        for name in path {
            n = n.children.get(*name).or(n.other.as_deref())?;
        }
        Some(n)
    }
}

fn items(s: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match &s.items {
        Some(JSONSchemaPropsOrArray::Schema(i)) => Some(i),
        Some(JSONSchemaPropsOrArray::Schemas(v)) => v.first(),
        None => None,
    }
}

fn crd_shape(s: &JSONSchemaProps) -> Shape {
    let atomic_map = s.x_kubernetes_map_type.as_deref() == Some("atomic");
    match s.type_.as_deref() {
        Some("object") => {
            if s.properties.as_ref().is_some_and(|p| !p.is_empty())
                || s.x_kubernetes_embedded_resource == Some(true)
            {
                Shape::Struct { atomic: atomic_map }
            } else if matches!(
                s.additional_properties,
                Some(JSONSchemaPropsOrBool::Schema(_))
            ) {
                Shape::Map { atomic: atomic_map }
            } else if atomic_map {
                Shape::Atomic
            } else {
                Shape::Deduced
            }
        }
        Some("array") => match s.x_kubernetes_list_type.as_deref() {
            Some("set") => Shape::List(ListType::Set),
            Some("map") => {
                let item = items(s);
                let keys = s
                    .x_kubernetes_list_map_keys
                    .iter()
                    .flatten()
                    .map(|k| KeyField {
                        name: k.clone(),
                        default: item
                            .and_then(|i| i.properties.as_ref())
                            .and_then(|p| p.get(k))
                            .and_then(|p| p.default.as_ref())
                            .map(|d| d.0.clone()),
                    })
                    .collect();
                Shape::List(ListType::Map(keys))
            }
            _ => Shape::List(ListType::Atomic),
        },
        Some(_) => Shape::Scalar,
        None if s.x_kubernetes_int_or_string == Some(true) => Shape::Scalar,
        None => Shape::Deduced,
    }
}

impl TypeInfo for CrdTypes {
    fn shape(&self, path: &[&str]) -> Shape {
        if path.first() == Some(&"metadata") {
            return self.meta.shape(path);
        }
        if path.is_empty() {
            return Shape::Struct { atomic: false };
        }
        self.at(path).map_or(Shape::Deduced, |n| n.shape.clone())
    }

    fn element_shape(&self, path: &[&str]) -> Shape {
        if path.first() == Some(&"metadata") {
            return self.meta.element_shape(path);
        }
        self.at(path).map_or(Shape::Deduced, |n| n.element.clone())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builtin_shapes() {
        let d = BuiltinTypes::new(GroupKind::new("apps", "Deployment"));
        let containers = ["spec", "template", "spec", "containers"];
        assert_eq!(
            d.shape(&containers),
            Shape::List(ListType::Map(vec![KeyField {
                name: "name".into(),
                default: None
            }]))
        );
        let ports = ["spec", "template", "spec", "containers", "ports"];
        let Shape::List(ListType::Map(keys)) = d.shape(&ports) else {
            panic!("ports are a list-map")
        };
        assert_eq!(keys[1].default, Some(json!("TCP")));
        assert_eq!(
            d.shape(&["spec", "selector"]),
            Shape::Struct { atomic: true }
        );
        assert_eq!(
            d.shape(&["metadata", "labels"]),
            Shape::Map { atomic: false }
        );
        assert_eq!(d.shape(&["metadata", "labels", "app"]), Shape::Deduced);
        assert_eq!(
            d.shape(&["metadata", "finalizers"]),
            Shape::List(ListType::Set)
        );
        assert_eq!(d.element_shape(&["metadata", "finalizers"]), Shape::Scalar);
        assert_eq!(
            d.shape(&["spec", "template", "spec", "containers", "args"]),
            Shape::Struct { atomic: false },
            "unknown fields are structs when objects, atomic when lists"
        );
        let svc = BuiltinTypes::new(GroupKind::core("Service"));
        assert_eq!(
            svc.shape(&["spec", "selector"]),
            Shape::Map { atomic: true }
        );
    }

    #[test]
    fn crd_shapes() {
        let schema: JSONSchemaProps = serde_json::from_value(json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "hosts": {"type": "array", "x-kubernetes-list-type": "set",
                              "items": {"type": "string"}},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map",
                              "x-kubernetes-list-map-keys": ["port", "protocol"],
                              "items": {"type": "object", "properties": {
                                  "port": {"type": "integer"},
                                  "protocol": {"type": "string", "default": "TCP"}}}},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "ref": {"type": "object", "x-kubernetes-map-type": "atomic",
                            "properties": {"name": {"type": "string"}}},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}
            }
        }))
        .unwrap();
        let t = CrdTypes::new(schema);
        assert_eq!(t.shape(&["spec", "hosts"]), Shape::List(ListType::Set));
        assert_eq!(t.element_shape(&["spec", "hosts"]), Shape::Scalar);
        let Shape::List(ListType::Map(keys)) = t.shape(&["spec", "ports"]) else {
            panic!()
        };
        assert_eq!(keys[1].default, Some(json!("TCP")));
        assert_eq!(
            t.element_shape(&["spec", "ports"]),
            Shape::Struct { atomic: false }
        );
        assert_eq!(t.shape(&["spec", "ports", "port"]), Shape::Scalar);
        assert_eq!(t.shape(&["spec", "tags"]), Shape::Map { atomic: false });
        assert_eq!(t.shape(&["spec", "tags", "x"]), Shape::Scalar);
        assert_eq!(t.shape(&["spec", "ref"]), Shape::Struct { atomic: true });
        assert_eq!(t.shape(&["spec", "args"]), Shape::List(ListType::Atomic));
        assert_eq!(t.shape(&["spec", "free"]), Shape::Deduced);
        assert_eq!(t.shape(&["spec", "free", "x"]), Shape::Deduced);
        assert_eq!(
            t.shape(&["metadata", "labels"]),
            Shape::Map { atomic: false }
        );
    }
}
