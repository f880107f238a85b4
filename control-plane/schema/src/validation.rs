//! kube-openapi's schema validator, as the custom resource handler runs it, with its errors
//! converted to field errors the way `apiextensions-apiserver/pkg/apiserver/validation` does.
//!
//! kube-openapi names a value by a dotted path (`spec.listeners[0].port`, additional properties
//! as `spec.labels.foo`, a missing root field as `.foo`); the field error's path is the caller's
//! base path plus that name with a leading dot trimmed. Errors that are not about one value
//! (`anyOf`, `oneOf`, `allOf`, `not`) are reported at the base path itself, which upstream
//! prints as `<nil>` when there is none.

use objects::field::{ErrorType, FieldError, Path};
use serde_json::{Map, Value};

use crate::{AdditionalProperties, Structural, formats};

/// Where errors go and how their paths are built.
pub(crate) struct Validator<'a> {
    pub(crate) base: Option<&'a Path>,
    pub(crate) out: Vec<FieldError>,
}

impl<'a> Validator<'a> {
    pub(crate) fn new(base: Option<&'a Path>) -> Self {
        Validator {
            base,
            out: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> Path {
        let n = name.strip_prefix('.').unwrap_or(name);
        match (self.base, n.is_empty()) {
            (Some(b), true) => b.clone(),
            (Some(b), false) => b.child(n),
            (None, true) => Path::new("<nil>"),
            (None, false) => Path::new(n),
        }
    }

    fn base_path(&self) -> Path {
        self.base.cloned().unwrap_or_else(|| Path::new("<nil>"))
    }

    fn invalid(&mut self, name: &str, value: Value, msg: String) {
        self.push(ErrorType::Invalid, name, value, msg);
    }

    /// A value of the wrong type or format (kube-openapi's `InvalidTypeCode`, which upstream
    /// reports as `field.TypeInvalid`).
    fn type_invalid(&mut self, name: &str, value: Value, msg: String) {
        self.push(ErrorType::TypeInvalid, name, value, msg);
    }

    fn push(&mut self, kind: ErrorType, name: &str, value: Value, msg: String) {
        let field = self.path(name);
        self.out.push(FieldError {
            kind,
            field,
            value: Some(value),
            detail: msg,
        });
    }

    /// An error that is not about one value (`field.Invalid(fldPath, "", msg)` upstream).
    fn composite(&mut self, msg: String) {
        let field = self.base_path();
        self.out.push(FieldError {
            kind: ErrorType::Invalid,
            field,
            value: Some(Value::String(String::new())),
            detail: msg,
        });
    }

    /// Validates `data` against `s`; `name` is kube-openapi's path of `data`, used as a buffer.
    pub(crate) fn node(&mut self, s: &Structural, name: &mut String, data: &Value) {
        if data.is_null() {
            // Only the type and enum validators run on null.
            self.type_check(s, name, data);
            self.enum_check(s, name, data);
            return;
        }
        self.type_check(s, name, data);
        self.junctors(s, name, data);
        match data {
            Value::String(st) => {
                self.string_checks(s, name, st);
                if !s.validated_format.is_empty() && !formats::valid(&s.validated_format, st) {
                    let msg = format!("{name} in body must be of type {}: {st:?}", s.format);
                    self.type_invalid(name, data.clone(), msg);
                }
            }
            Value::Number(_) => self.number_checks(s, name, data),
            _ => {}
        }
        if let Value::Array(items) = data {
            self.array_checks(s, name, items);
        }
        self.enum_check(s, name, data);
        if let Value::Object(map) = data {
            self.object_checks(s, name, map);
        }
    }

    fn type_check(&mut self, s: &Structural, name: &str, data: &Value) {
        let single = [s.type_name.as_str()];
        let types: &[&str] = if s.int_or_string {
            &["integer", "string"]
        } else if s.type_name.is_empty() {
            &[]
        } else {
            &single
        };
        let joined = || types.join(",");
        if data.is_null() {
            if !types.is_empty() && !types.contains(&"null") && !s.nullable {
                let msg = format!("{name} in body must be of type {}: \"null\"", joined());
                self.type_invalid(name, Value::String("null".into()), msg);
            }
            return;
        }
        let format = &s.validated_format;
        if types.is_empty() && format.is_empty() {
            return;
        }
        let (sch_type, data_format) = json_type(data);
        let contains = |t: &str| types.contains(&t);
        let is_float_int = sch_type == "number"
            && data.as_f64().is_some_and(|f| f.fract() == 0.0)
            && contains("integer");
        let is_int_float = sch_type == "integer" && contains("number");
        let is_str_or_arr = matches!(data, Value::String(_) | Value::Array(_));
        let type_or_format_ok =
            contains(sch_type) || data_format == format.as_str() || is_float_int || is_int_float;
        // Numbers, booleans and objects must match the format's type.
        if !(is_str_or_arr || format.is_empty() || type_or_format_ok) {
            let msg = format!(
                "{name} in body must be of type {}: {data_format:?}",
                s.format
            );
            self.type_invalid(name, Value::String(data_format.into()), msg);
            return;
        }
        let numeric = contains("number") || contains("integer");
        // A formatted string or array is left to the format validator.
        if is_str_or_arr && !(numeric || format.is_empty()) {
            return;
        }
        if !(contains(sch_type) || is_float_int || is_int_float) {
            let msg = format!("{name} in body must be of type {}: {sch_type:?}", joined());
            self.type_invalid(name, Value::String(sch_type.into()), msg);
        }
    }

    fn junctors(&mut self, s: &Structural, name: &mut String, data: &Value) {
        let v = &s.v;
        if !v.any_of.is_empty() {
            let mut best: Option<Vec<FieldError>> = None;
            let mut ok = false;
            for sub in &v.any_of {
                let errs = self.sub(sub, name, data);
                if errs.is_empty() {
                    ok = true;
                    best = None;
                    break;
                }
                if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                    best = Some(errs);
                }
            }
            if !ok {
                self.composite(format!(
                    "{name:?} must validate at least one schema (anyOf)"
                ));
            }
            if let Some(b) = best {
                self.out.extend(b);
            }
        }
        if !v.one_of.is_empty() {
            let mut best: Option<Vec<FieldError>> = None;
            let mut valid = 0;
            for sub in &v.one_of {
                let errs = self.sub(sub, name, data);
                if errs.is_empty() {
                    valid += 1;
                    best = None;
                    continue;
                }
                if valid == 0 && best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                    best = Some(errs);
                }
            }
            if valid != 1 {
                let extra = if valid == 0 {
                    "Found none valid".to_owned()
                } else {
                    format!("Found {valid} valid alternatives")
                };
                self.composite(format!(
                    "{name:?} must validate one and only one schema (oneOf). {extra}"
                ));
                if let Some(b) = best {
                    self.out.extend(b);
                }
            }
        }
        if !v.all_of.is_empty() {
            let mut validated = 0;
            for sub in &v.all_of {
                let errs = self.sub(sub, name, data);
                validated += usize::from(errs.is_empty());
                self.out.extend(errs);
            }
            if validated != v.all_of.len() {
                let extra = if validated == 0 {
                    ". None validated"
                } else {
                    ""
                };
                self.composite(format!(
                    "{name:?} must validate all the schemas (allOf){extra}"
                ));
            }
        }
        if let Some(not) = &v.not
            && self.sub(not, name, data).is_empty()
        {
            self.composite(format!("{name:?} must not validate the schema (not)"));
        }
    }

    /// Validates against a sub-schema, returning its errors instead of recording them.
    fn sub(&mut self, s: &Structural, name: &mut String, data: &Value) -> Vec<FieldError> {
        let saved = std::mem::take(&mut self.out);
        self.node(s, name, data);
        std::mem::replace(&mut self.out, saved)
    }

    fn string_checks(&mut self, s: &Structural, name: &str, st: &str) {
        let v = &s.v;
        let len = || st.chars().count() as i64;
        if let Some(max) = v.max_length
            && len() > max
        {
            self.out.push(FieldError {
                kind: ErrorType::TooLong {
                    max: max.max(0) as usize,
                },
                field: self.path(name),
                value: Some(Value::String(st.to_owned())),
                detail: String::new(),
            });
        }
        if let Some(min) = v.min_length
            && len() < min
        {
            let msg = format!("{name} in body should be at least {min} chars long");
            self.invalid(name, Value::String(st.to_owned()), msg);
        }
        if let Some((pat, re)) = &v.pattern
            && !re.as_ref().is_some_and(|re| re.is_match(st))
        {
            let msg = format!("{name} in body should match '{pat}'");
            self.invalid(name, Value::String(st.to_owned()), msg);
        }
    }

    fn number_checks(&mut self, s: &Structural, name: &str, data: &Value) {
        let v = &s.v;
        // kube-openapi compares integers as int64, truncating the schema's bounds.
        if let Some(i) = data.as_i64() {
            if let Some(m) = v.multiple_of {
                let f = m as i64;
                if f <= 0 {
                    let msg =
                        format!("factor MultipleOf declared for {name} must be positive: {f}");
                    self.invalid(name, Value::from(f), msg);
                } else if i % f != 0 {
                    let msg = format!("{name} in body should be a multiple of {f}");
                    self.invalid(name, data.clone(), msg);
                }
            }
            if let Some(max) = v.maximum {
                let max = max as i64;
                let excl = v.exclusive_maximum;
                if (!excl && i > max) || (excl && i >= max) {
                    self.bound(name, data, max.to_string(), excl, "less than");
                }
            }
            if let Some(min) = v.minimum {
                let min = min as i64;
                let excl = v.exclusive_minimum;
                if (!excl && i < min) || (excl && i <= min) {
                    self.bound(name, data, min.to_string(), excl, "greater than");
                }
            }
            return;
        }
        let Some(x) = data.as_f64() else { return };
        if let Some(m) = v.multiple_of {
            if m <= 0.0 {
                let msg = format!(
                    "factor MultipleOf declared for {name} must be positive: {}",
                    go_num(m)
                );
                self.invalid(name, json_f64(m), msg);
            } else {
                let mult = if m < 1.0 { 1.0 / m * x } else { x / m };
                if !is_json_integer(mult) {
                    let msg = format!("{name} in body should be a multiple of {}", go_num(m));
                    self.invalid(name, data.clone(), msg);
                }
            }
        }
        if let Some(max) = v.maximum {
            let excl = v.exclusive_maximum;
            if (!excl && x > max) || (excl && x >= max) {
                self.bound(name, data, go_num(max), excl, "less than");
            }
        }
        if let Some(min) = v.minimum {
            let excl = v.exclusive_minimum;
            if (!excl && x < min) || (excl && x <= min) {
                self.bound(name, data, go_num(min), excl, "greater than");
            }
        }
    }

    fn bound(&mut self, name: &str, data: &Value, limit: String, exclusive: bool, rel: &str) {
        let or_equal = if exclusive { "" } else { " or equal to" };
        let msg = format!("{name} in body should be {rel}{or_equal} {limit}");
        self.invalid(name, data.clone(), msg);
    }

    fn array_checks(&mut self, s: &Structural, name: &mut String, items: &[Value]) {
        if let Some(is) = &s.items {
            let len = name.len();
            for (i, item) in items.iter().enumerate() {
                use std::fmt::Write;
                let _ = write!(name, "[{i}]");
                self.node(is, name, item);
                name.truncate(len);
            }
        }
        let v = &s.v;
        let size = items.len() as i64;
        if let Some(min) = v.min_items
            && size < min
        {
            let msg = format!("{name} in body should have at least {min} items");
            self.invalid(name, Value::from(size), msg);
        }
        if let Some(max) = v.max_items
            && size > max
        {
            let field = self.path(name);
            self.out.push(FieldError::too_many(
                field,
                items.len(),
                max.max(0) as usize,
            ));
        }
        if v.unique_items {
            let dup = items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].iter().any(|b| json_equal(a, b)));
            if dup {
                let msg = format!("{name} in body shouldn't contain duplicates");
                self.invalid(name, Value::String(String::new()), msg);
            }
        }
    }

    fn enum_check(&mut self, s: &Structural, name: &str, data: &Value) {
        let Some(values) = &s.v.enum_ else { return };
        if values.is_empty() || values.iter().any(|e| json_equal(e, data)) {
            return;
        }
        let supported: Vec<String> = values
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        self.out.push(FieldError {
            kind: ErrorType::NotSupported(supported),
            field: self.path(name),
            value: Some(data.clone()),
            detail: String::new(),
        });
    }

    fn object_checks(&mut self, s: &Structural, name: &mut String, map: &Map<String, Value>) {
        let v = &s.v;
        let n = map.len() as i64;
        if let Some(min) = v.min_properties
            && n < min
        {
            let msg = format!("{name} in body should have at least {min} properties");
            self.invalid(name, Value::from(n), msg);
        }
        if let Some(max) = v.max_properties
            && n > max
        {
            let field = self.path(name);
            self.out
                .push(FieldError::too_many(field, map.len(), max.max(0) as usize));
            return;
        }
        match &s.additional_properties {
            Some(AdditionalProperties::Bool(false)) => {
                for k in map.keys() {
                    if !s.properties.contains_key(k) {
                        let msg = format!("{name}.{k} in body is a forbidden property");
                        self.invalid(name, Value::String(k.clone()), msg);
                    }
                }
            }
            Some(AdditionalProperties::Schema(ap)) => {
                for (k, val) in map {
                    if !s.properties.contains_key(k) {
                        let len = name.len();
                        name.push('.');
                        name.push_str(k);
                        self.node(ap, name, val);
                        name.truncate(len);
                    }
                }
            }
            _ => {}
        }
        for (k, ps) in &s.properties {
            if let Some(val) = map.get(k) {
                let len = name.len();
                if len > 0 {
                    name.push('.');
                }
                name.push_str(k);
                self.node(ps, name, val);
                name.truncate(len);
            }
        }
        for k in &v.required {
            if !map.contains_key(k) {
                let field = self.path(&format!("{name}.{k}"));
                self.out.push(FieldError::required(field, ""));
            }
        }
    }
}

/// The JSON type kube-openapi infers from decoded data, and the format it implies.
fn json_type(v: &Value) -> (&'static str, &'static str) {
    match v {
        Value::Null => ("null", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::Number(n) if n.is_i64() || n.is_u64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
        Value::String(_) => ("string", ""),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
    }
}

/// Equality of decoded JSON as Go's `reflect.DeepEqual` after numeric conversion: `1 == 1.0`.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// A float as Go's `%v` prints it: shortest form, exponent outside [1e-4, 1e6) (`1e+06`).
pub(crate) fn go_num(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

fn json_f64(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// `swag.IsFloat64AJSONInteger`: integral up to a relative error of 1e-9.
fn is_json_integer(f: f64) -> bool {
    if !f.is_finite() {
        return false;
    }
    let g = f.trunc();
    if f == g {
        return true;
    }
    let diff = (f - g).abs();
    diff / (f.abs() + g.abs()) < 1e-9
}
