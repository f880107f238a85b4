//! Go's `fmt` rendering of decoded JSON, for error messages that must read like upstream's.
//!
//! Upstream formats `map[string]interface{}` and `[]interface{}` values with `%v` and `%s` in its
//! patch errors (`map: map[$patch:delete] does not contain declared merge key: name`). kubectl
//! users see these strings, so they are reproduced here: maps print as `map[k:v ...]` with sorted
//! keys, lists as `[a b]`, strings bare, `null` as `<nil>`, integers plainly and other numbers as
//! Go's `%v` does.

use serde_json::{Number, Value};

/// `fmt.Sprintf("%v", v)`.
pub(crate) fn v(value: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, value, false);
    out
}

/// `fmt.Sprintf("%s", v)`: like `%v` for strings and containers, `%!s(type=value)` for the rest.
pub(crate) fn s(value: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, value, true);
    out
}

/// `reflect.TypeOf(v).String()` of a decoded JSON value, as `%s` prints it.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if is_int(n) => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The Go type name of a JSON map.
pub(crate) const MAP: &str = "map[string]interface {}";
/// The Go type name of a JSON list.
pub(crate) const SLICE: &str = "[]interface {}";

/// What `encoding/json` calls the kind of a JSON value in its `cannot unmarshal` errors.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_int(n: &Number) -> bool {
    n.is_i64() || n.is_u64()
}

fn write_v(out: &mut String, value: &Value, s_verb: bool) {
    match value {
        Value::Null if s_verb => out.push_str("%!s(<nil>)"),
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) if s_verb => out.push_str(&format!("%!s(bool={b})")),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let text = number(n);
            if s_verb {
                let ty = if is_int(n) { "int64" } else { "float64" };
                out.push_str(&format!("%!s({ty}={text})"));
            } else {
                out.push_str(&text);
            }
        }
        Value::String(text) => out.push_str(text),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, item, s_verb);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_v(out, &map[key.as_str()], s_verb);
            }
            out.push(']');
        }
    }
}

/// A number as Go prints an `int64` (`%d`) or a `float64` (`%v`, the shortest `%g`: exponent
/// form below 1e-4 and from 1e6 on, as `strconv.FormatFloat(f, 'g', -1, 64)`).
fn number(n: &Number) -> String {
    if is_int(n) {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if !f.is_finite() {
        return n.to_string();
    }
    if f == 0.0 {
        return "0".to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `1.5e-7` or `1e21`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        // Plain notation: Rust's `Display` for f64 is already the shortest such form.
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(
            v(&json!({"name": "a", "$patch": "delete"})),
            "map[$patch:delete name:a]"
        );
        assert_eq!(
            v(&json!([{"name": 1}, "x", null, true])),
            "[map[name:1] x <nil> true]"
        );
        assert_eq!(v(&json!(1.5)), "1.5");
        assert_eq!(v(&json!(1e21)), "1e+21");
        assert_eq!(v(&json!(1234567.5)), "1.2345675e+06");
        assert_eq!(v(&json!(12345.5)), "12345.5");
        assert_eq!(v(&json!(0.00001)), "1e-05");
        assert_eq!(s(&json!("merge")), "merge");
        assert_eq!(s(&json!(1)), "%!s(int64=1)");
        assert_eq!(s(&json!(null)), "%!s(<nil>)");
        assert_eq!(type_name(&json!("x")), "string");
    }
}
