//! Checks that run after the schema validator on every custom object: embedded resources
//! (`pkg/apiserver/schema/objectmeta/validation.go`) and `x-kubernetes-list-type` `set`/`map`
//! uniqueness (`pkg/apiserver/schema/listtype/validation.go`).

use std::collections::HashMap;

use objects::field::{FieldError, Path};
use serde_json::{Map, Value};

use crate::Structural;

fn child(p: Option<&Path>, k: &str) -> Path {
    p.map_or_else(|| Path::new(k), |p| p.child(k))
}

fn key(p: Option<&Path>, k: &str) -> Path {
    p.map_or_else(|| Path::new("").key(k), |p| p.key(k))
}

fn index(p: Option<&Path>, i: usize) -> Path {
    p.map_or_else(|| Path::new("").index(i), |p| p.index(i))
}

/// Embedded resources: `apiVersion` and `kind` required and well-formed, `metadata` an object
/// with a valid name.
pub(crate) fn embedded(p: Option<&Path>, x: &Value, s: &Structural, out: &mut Vec<FieldError>) {
    match x {
        Value::Object(map) => {
            if s.embedded_resource
                && let Some(p) = p
            {
                embedded_resource(p, map, out);
            }
            for (k, v) in map {
                if let Some(prop) = s.properties.get(k) {
                    embedded(Some(&child(p, k)), v, prop, out);
                } else if let Some(ap) = s.additional_properties_schema() {
                    embedded(Some(&key(p, k)), v, ap, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.items.as_deref() {
                for (i, v) in items.iter().enumerate() {
                    embedded(Some(&index(p, i)), v, is, out);
                }
            }
        }
        _ => {}
    }
}

const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !ok {
        errs.push(DNS1035_MSG.to_owned());
    }
    errs
}

fn embedded_resource(p: &Path, x: &Map<String, Value>, out: &mut Vec<FieldError>) {
    if !x.contains_key("apiVersion") {
        out.push(FieldError::required(
            p.child("apiVersion"),
            "must not be empty",
        ));
    }
    if !x.contains_key("kind") {
        out.push(FieldError::required(p.child("kind"), "must not be empty"));
    }
    for (k, v) in x {
        match k.as_str() {
            "apiVersion" => match v.as_str() {
                None => out.push(FieldError::invalid(
                    p.child(k),
                    v.clone(),
                    "must be a string",
                )),
                Some("") => out.push(FieldError::invalid(p.child(k), "", "must not be empty")),
                Some(av) if av.matches('/').count() > 1 => out.push(FieldError::invalid(
                    p.child(k),
                    av,
                    format!("unexpected GroupVersion string: {av}"),
                )),
                Some(_) => {}
            },
            "kind" => match v.as_str() {
                None => out.push(FieldError::invalid(
                    p.child(k),
                    v.clone(),
                    "must be a string",
                )),
                Some("") => out.push(FieldError::invalid(p.child(k), "", "must not be empty")),
                Some(kind) => {
                    let errs = is_dns1035_label(&kind.to_lowercase());
                    if !errs.is_empty() {
                        out.push(FieldError::invalid(
                            p.child(k),
                            kind,
                            format!(
                                "may have mixed case, but should otherwise match: {}",
                                errs.join(",")
                            ),
                        ));
                    }
                }
            },
            "metadata" => match v.as_object() {
                None => out.push(FieldError::invalid(
                    p.child(k),
                    v.clone(),
                    "expected map[string]interface{}",
                )),
                Some(meta) => {
                    if let Some(name) = meta.get("name").and_then(Value::as_str) {
                        let np = p.child("metadata").child("name");
                        for msg in path_segment_name(name) {
                            out.push(FieldError::invalid(np.clone(), name, msg));
                        }
                    }
                }
            },
            _ => {}
        }
    }
}

/// `path.ValidatePathSegmentName`'s messages.
fn path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if name.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// `x-kubernetes-list-type: set|map` uniqueness, below the root object `obj`.
pub(crate) fn list_sets_and_maps(
    p: Option<&Path>,
    s: &Structural,
    obj: &Map<String, Value>,
    out: &mut Vec<FieldError>,
) {
    if let Some(ap) = s.additional_properties_schema() {
        for (k, v) in obj {
            value(&key(p, k), ap, v, out);
        }
    }
    for (k, v) in obj {
        if let Some(sub) = s.properties.get(k) {
            value(&child(p, k), sub, v, out);
        }
    }
}

fn value(p: &Path, s: &Structural, x: &Value, out: &mut Vec<FieldError>) {
    match x {
        Value::Object(m) => list_sets_and_maps(Some(p), s, m, out),
        Value::Array(a) => array(p, s, a, out),
        _ => {}
    }
}

fn array(p: &Path, s: &Structural, obj: &[Value], out: &mut Vec<FieldError>) {
    match s.list_type.as_deref() {
        Some("set") => {
            for i in duplicates(obj.iter().map(|x| Some(canonical(x)))) {
                out.push(FieldError::duplicate(p.index(i), obj[i].clone()));
            }
        }
        Some("map") => list_map(p, s, obj, out),
        _ => {}
    }
    if let Some(is) = s.items.as_deref() {
        for (i, x) in obj.iter().enumerate() {
            value(&p.index(i), is, x, out);
        }
    }
}

/// Indices of the second occurrence of every repeated key.
fn duplicates(keys: impl Iterator<Item = Option<String>>) -> Vec<usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut dups = Vec::new();
    for (i, k) in keys.enumerate() {
        let Some(k) = k else { continue };
        let n = seen.entry(k).or_insert(0);
        *n += 1;
        if *n == 2 {
            dups.push(i);
        }
    }
    dups
}

/// A key for equality of decoded JSON as Go compares set elements: scalars by type and value
/// (`1` and `1.0` differ, as int64 and float64 do), compounds by their JSON encoding.
fn canonical(x: &Value) -> String {
    match x {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn list_map(p: &Path, s: &Structural, obj: &[Value], out: &mut Vec<FieldError>) {
    for (i, x) in obj.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            out.push(FieldError::invalid(
                p.index(i),
                x.clone(),
                "must be an object for an array of list-type map",
            ));
            return;
        }
    }
    if obj.len() <= 1 {
        return;
    }
    let key_of = |x: &Value| -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(o) = x.as_object() {
            for k in &s.list_map_keys {
                if let Some(v) = o.get(k) {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        m
    };
    let keys: Vec<Map<String, Value>> = obj.iter().map(key_of).collect();
    let canon = keys.iter().map(|m| {
        Some(
            m.iter()
                .map(|(k, v)| format!("{k:?}:{}", canonical(v)))
                .collect::<Vec<_>>()
                .join(","),
        )
    });
    for i in duplicates(canon) {
        out.push(FieldError::duplicate(
            p.index(i),
            Value::Object(keys[i].clone()),
        ));
    }
}
