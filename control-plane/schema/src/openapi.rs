//! The schema as the API server publishes it (`pkg/controller/openapi/builder`): OpenAPI v3 as
//! written, OpenAPI v2 with what v2 and kubectl cannot express removed
//! (`controller/openapi/v2/conversion.go`), and the root's `metadata`, `apiVersion` and `kind`
//! replaced by references to and descriptions of the built-in types.

use serde_json::{Map, Value, json};

use crate::{AdditionalProperties, Structural};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

pub(crate) fn publish(s: &Structural, v2: bool) -> Value {
    let mut root = node(s, v2);
    let obj = root.as_object_mut().expect("schema renders as an object");
    let props = obj
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .expect("properties is an object");
    let meta = if v2 {
        json!({"$ref": format!("#/definitions/{OBJECT_META}"), "description": METADATA_DESCRIPTION})
    } else {
        json!({
            "allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}],
            "default": {},
            "description": METADATA_DESCRIPTION,
        })
    };
    props.insert("metadata".into(), meta);
    props.insert(
        "apiVersion".into(),
        json!({"description": API_VERSION_DESCRIPTION, "type": "string"}),
    );
    props.insert(
        "kind".into(),
        json!({"description": KIND_DESCRIPTION, "type": "string"}),
    );
    if !obj.contains_key("type") {
        obj.insert("type".into(), json!("object"));
    }
    root
}

fn node(s: &Structural, v2: bool) -> Value {
    let mut o = Map::new();
    let mut type_name = s.type_name.clone();
    let mut drop_shape = false;
    if v2 {
        if s.nullable {
            type_name.clear();
            drop_shape = true;
        }
        if s.preserve_unknown_fields() {
            drop_shape = true;
        }
        if type_name == "array" && (drop_shape || s.items.is_none()) {
            type_name.clear();
        }
        if s.preserve_unknown_fields() && type_name == "object" {
            type_name.clear();
        }
    }
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_owned(), v);
    };
    if let Some(d) = &s.description {
        put("description", json!(d));
    }
    if !type_name.is_empty() {
        put("type", json!(type_name));
    }
    if !s.format.is_empty() {
        put("format", json!(s.format));
    }
    if let Some(t) = &s.title {
        put("title", json!(t));
    }
    if let Some(d) = &s.default {
        put("default", d.clone());
    }
    if s.nullable && !v2 {
        put("nullable", json!(true));
    }
    if let Some(e) = &s.example {
        put("example", e.clone());
    }
    if let Some(e) = &s.external_docs {
        put("externalDocs", e.clone());
    }
    let v = &s.v;
    if let Some(e) = &v.enum_ {
        put("enum", json!(e));
    }
    if let Some((p, _)) = &v.pattern {
        put("pattern", json!(p));
    }
    let mut num = |k: &str, x: Option<f64>| {
        if let Some(x) = x {
            let n = if x.fract() == 0.0 && x.abs() < 9.2e18 {
                json!(x as i64)
            } else {
                json!(x)
            };
            o.insert(k.to_owned(), n);
        }
    };
    num("maximum", v.maximum);
    num("minimum", v.minimum);
    num("multipleOf", v.multiple_of);
    let mut int = |k: &str, x: Option<i64>| {
        if let Some(x) = x {
            o.insert(k.to_owned(), json!(x));
        }
    };
    int("maxLength", v.max_length);
    int("minLength", v.min_length);
    int("maxItems", v.max_items);
    int("minItems", v.min_items);
    int("maxProperties", v.max_properties);
    int("minProperties", v.min_properties);
    if v.exclusive_maximum {
        o.insert("exclusiveMaximum".into(), json!(true));
    }
    if v.exclusive_minimum {
        o.insert("exclusiveMinimum".into(), json!(true));
    }
    if v.unique_items {
        o.insert("uniqueItems".into(), json!(true));
    }
    let required: Vec<&String> = v
        .required
        .iter()
        .filter(|r| !(v2 && s.properties.get(*r).is_some_and(|p| p.nullable)))
        .collect();
    if !required.is_empty() {
        o.insert("required".into(), json!(required));
    }
    if !v2 {
        for (k, list) in [
            ("allOf", &v.all_of),
            ("anyOf", &v.any_of),
            ("oneOf", &v.one_of),
        ] {
            if !list.is_empty() {
                let l: Vec<Value> = list.iter().map(|n| node(n, v2)).collect();
                o.insert(k.into(), Value::Array(l));
            }
        }
        if let Some(n) = &v.not {
            o.insert("not".into(), node(n, v2));
        }
    }
    if !drop_shape {
        if !s.properties.is_empty() {
            let props: Map<String, Value> = s
                .properties
                .iter()
                .map(|(k, p)| (k.clone(), node(p, v2)))
                .collect();
            o.insert("properties".into(), Value::Object(props));
        }
        if let Some(i) = &s.items {
            o.insert("items".into(), node(i, v2));
        }
    }
    match &s.additional_properties {
        Some(AdditionalProperties::Bool(b)) => {
            o.insert("additionalProperties".into(), json!(b));
        }
        Some(AdditionalProperties::Schema(a)) => {
            o.insert("additionalProperties".into(), node(a, v2));
        }
        None => {}
    }
    if s.embedded_resource {
        o.insert("x-kubernetes-embedded-resource".into(), json!(true));
    }
    if s.int_or_string {
        o.insert("x-kubernetes-int-or-string".into(), json!(true));
    }
    if !s.list_map_keys.is_empty() {
        o.insert("x-kubernetes-list-map-keys".into(), json!(s.list_map_keys));
    }
    if let Some(l) = &s.list_type {
        o.insert("x-kubernetes-list-type".into(), json!(l));
    }
    if let Some(m) = &s.map_type {
        o.insert("x-kubernetes-map-type".into(), json!(m));
    }
    if let Some(p) = s.preserve_unknown_fields {
        o.insert("x-kubernetes-preserve-unknown-fields".into(), json!(p));
    }
    if let Some(x) = &s.x_validations {
        o.insert("x-kubernetes-validations".into(), x.clone());
    }
    Value::Object(o)
}
