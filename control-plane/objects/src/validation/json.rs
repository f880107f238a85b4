//! Typed reads from `serde_json::Value` that report wrong types as field errors instead of
//! panicking.
//!
//! Upstream decodes into Go structs before validating, so a wrong JSON type never reaches its
//! validation: the decoder rejects the body. Here objects arrive as JSON, so every read checks the
//! type and reports a mismatch as `Invalid` at the field's path (`must be of type string`).
//! `null` counts as absent, as Go's decoder leaves the zero value for it.

use serde_json::{Map, Value};

use crate::field::{FieldError, Path};

/// A JSON object.
pub(crate) type Obj = Map<String, Value>;

/// The field `key` of `o`; `None` when `o` is absent, the key is missing or the value is `null`.
pub(crate) fn get<'a>(o: Option<&'a Obj>, key: &str) -> Option<&'a Value> {
    match o?.get(key) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

fn type_error(p: &Path, v: &Value, want: &str) -> FieldError {
    FieldError::invalid(p.clone(), v.clone(), format!("must be of type {want}"))
}

/// `v` as an object; a non-object is reported and read as absent.
pub(crate) fn obj<'a>(v: Option<&'a Value>, p: &Path, e: &mut Vec<FieldError>) -> Option<&'a Obj> {
    match v? {
        Value::Object(m) => Some(m),
        other => {
            e.push(type_error(p, other, "object"));
            None
        }
    }
}

/// `v` as a list; a non-list is reported and read as empty.
pub(crate) fn arr<'a>(v: Option<&'a Value>, p: &Path, e: &mut Vec<FieldError>) -> &'a [Value] {
    match v {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(other) => {
            e.push(type_error(p, other, "array"));
            &[]
        }
    }
}

/// `v` as a string; a non-string is reported and read as absent.
pub(crate) fn string<'a>(
    v: Option<&'a Value>,
    p: &Path,
    e: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match v? {
        Value::String(s) => Some(s),
        other => {
            e.push(type_error(p, other, "string"));
            None
        }
    }
}

/// `v` as a string, `""` when absent (Go's zero value).
pub(crate) fn str_or_empty<'a>(v: Option<&'a Value>, p: &Path, e: &mut Vec<FieldError>) -> &'a str {
    string(v, p, e).unwrap_or("")
}

/// `v` as an integer; fractions and non-numbers are reported and read as absent.
pub(crate) fn int(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) -> Option<i64> {
    let v = v?;
    match v.as_i64() {
        Some(i) => Some(i),
        None => {
            e.push(type_error(p, v, "integer"));
            None
        }
    }
}

/// `v` as a boolean; a non-boolean is reported and read as absent.
pub(crate) fn boolean(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        other => {
            e.push(type_error(p, other, "boolean"));
            None
        }
    }
}

/// `v` as a map of strings (labels, annotations, selectors); entries with non-string values
/// are reported at `p[key]` and skipped.
pub(crate) fn str_map<'a>(
    v: Option<&'a Value>,
    p: &Path,
    e: &mut Vec<FieldError>,
) -> Vec<(&'a str, &'a str)> {
    let Some(m) = obj(v, p, e) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(m.len());
    for (k, v) in m {
        match v {
            Value::String(s) => out.push((k.as_str(), s.as_str())),
            Value::Null => out.push((k.as_str(), "")),
            other => e.push(type_error(&p.key(k), other, "string")),
        }
    }
    out
}

/// An int-or-string field (`targetPort`, `maxSurge`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum IntOrStr<'a> {
    /// A number.
    Int(i64),
    /// A string.
    Str(&'a str),
}

/// `v` as an int-or-string; other types are reported and read as absent.
pub(crate) fn int_or_str<'a>(
    v: Option<&'a Value>,
    p: &Path,
    e: &mut Vec<FieldError>,
) -> Option<IntOrStr<'a>> {
    let v = v?;
    match v {
        Value::String(s) => Some(IntOrStr::Str(s)),
        Value::Number(_) => match v.as_i64() {
            Some(i) => Some(IntOrStr::Int(i)),
            None => {
                e.push(type_error(p, v, "integer or string"));
                None
            }
        },
        other => {
            e.push(type_error(p, other, "integer or string"));
            None
        }
    }
}

/// The child object `key` of `o`, reporting a wrong type.
pub(crate) fn child<'a>(
    o: Option<&'a Obj>,
    key: &str,
    p: &Path,
    e: &mut Vec<FieldError>,
) -> Option<&'a Obj> {
    obj(get(o, key), &p.child(key), e)
}
