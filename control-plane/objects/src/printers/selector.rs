//! Label maps and label selectors as text: upstream's `labels.FormatLabels`,
//! `metav1.LabelSelectorAsSelector(...).String()` and `metav1.FormatLabelSelector`.

use serde_json::Value;

/// `labels.FormatLabels`: `k=v` pairs sorted by key and joined by commas; `<none>` when empty.
pub(super) fn format_labels(map: Option<&Value>) -> String {
    let Some(Value::Object(map)) = map else {
        return "<none>".to_owned();
    };
    // serde_json's map keeps keys sorted (no `preserve_order` feature), but sort anyway: the
    // order is part of the output.
    let mut pairs: Vec<(&String, &str)> = map
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    let text = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    if text.is_empty() {
        "<none>".to_owned()
    } else {
        text
    }
}

/// The selector's `String()`: requirements sorted by key, `k=v`, `k in (a,b)`, `k notin (a,b)`,
/// `k`, `!k`. A missing or empty selector is the empty string. `Err` where upstream's conversion
/// fails: an unknown operator, or values where the operator takes none (or none where it needs
/// some). Label keys and values are not checked again; the API validated them on write.
pub(super) fn selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(labels)) = selector.get("matchLabels") {
        for (k, v) in labels {
            requirements.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    if let Some(Value::Array(exprs)) = selector.get("matchExpressions") {
        for expr in exprs {
            let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
            let op = expr.get("operator").and_then(Value::as_str).unwrap_or("");
            let mut values: Vec<&str> = match expr.get("values") {
                Some(Value::Array(vs)) => vs.iter().map(|v| v.as_str().unwrap_or("")).collect(),
                _ => Vec::new(),
            };
            values.sort_unstable();
            let text = match op {
                "In" | "NotIn" if values.is_empty() => return Err(()),
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" | "DoesNotExist" if !values.is_empty() => return Err(()),
                "Exists" => key.to_owned(),
                "DoesNotExist" => format!("!{key}"),
                _ => return Err(()),
            };
            requirements.push((key.to_owned(), text));
        }
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: the selector's text, `<none>` when it selects everything or is
/// missing, `<error>` when it cannot be converted.
pub(super) fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        Err(()) => "<error>".to_owned(),
        Ok(text) if text.is_empty() => "<none>".to_owned(),
        Ok(text) => text,
    }
}
