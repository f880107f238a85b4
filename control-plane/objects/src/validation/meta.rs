//! `metadata` on create and update: upstream's `ValidateObjectMeta` and
//! `ValidateObjectMetaUpdate`, plus labels, annotations, owner references, finalizers and label
//! selectors (`k8s.io/apimachinery/pkg/api/validation`, `pkg/apis/meta/v1/validation`).

use serde_json::Value;

use super::json::{Obj, arr, boolean, get, int, obj, str_map, str_or_empty, string};
use super::names;
use crate::field::{FieldError, Path};

/// Upstream's `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// `field is immutable`.
pub const FIELD_IMMUTABLE: &str = "field is immutable";

/// `must be greater than or equal to 0`.
pub(crate) const IS_NEGATIVE: &str = "must be greater than or equal to 0";

/// A name rule: the name (or a `generateName` prefix when the flag is set) to error strings.
pub(crate) type NameFn = fn(&str, bool) -> Vec<String>;

/// Upstream's `ValidateNonnegativeField`.
pub(crate) fn nonnegative(value: i64, p: &Path, e: &mut Vec<FieldError>) {
    if value < 0 {
        e.push(FieldError::invalid(p.clone(), value, IS_NEGATIVE));
    }
}

/// Upstream's `ValidateImmutableField` over JSON values (absent and `null` are equal).
pub(crate) fn immutable(
    new: Option<&Value>,
    old: Option<&Value>,
    p: &Path,
    e: &mut Vec<FieldError>,
) {
    let norm = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
    let (n, o) = (norm(new), norm(old));
    if n != o {
        e.push(FieldError::invalid(
            p.clone(),
            n.unwrap_or(Value::Null),
            FIELD_IMMUTABLE,
        ));
    }
}

/// Upstream's `ValidateLabelName`: a qualified name, errors at `p` with the key as value.
pub(crate) fn label_name(key: &str, p: &Path, e: &mut Vec<FieldError>) {
    for msg in names::qualified_name(key) {
        e.push(FieldError::invalid(p.clone(), key, msg));
    }
}

/// Upstream's `ValidateLabels`: keys are qualified names, values label values; errors are
/// reported at the map's path (not per key), with the offending key or value.
pub(crate) fn labels(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    for (k, val) in str_map(v, p, e) {
        label_name(k, p, e);
        for msg in names::label_value(val) {
            e.push(FieldError::invalid(p.clone(), val, msg));
        }
    }
}

/// Upstream's `ValidateAnnotations`: case-insensitive qualified-name keys, total size of keys and
/// values at most 256 KiB.
pub(crate) fn annotations(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    let mut total = 0usize;
    for (k, val) in str_map(v, p, e) {
        for msg in names::qualified_name(&k.to_lowercase()) {
            e.push(FieldError::invalid(p.clone(), k, msg));
        }
        total += k.len() + val.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        e.push(FieldError::too_long(p.clone(), TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

/// Upstream's `ValidateOwnerReferences`.
pub(crate) fn owner_references(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    let refs = arr(v, p, e);
    let mut first_controller: Option<String> = None;
    for (i, r) in refs.iter().enumerate() {
        let ip = p.index(i);
        let Some(r) = obj(Some(r), &ip, e) else {
            continue;
        };
        let api_version = str_or_empty(get(Some(r), "apiVersion"), &ip.child("apiVersion"), e);
        let kind = str_or_empty(get(Some(r), "kind"), &ip.child("kind"), e);
        let name = str_or_empty(get(Some(r), "name"), &ip.child("name"), e);
        let uid = str_or_empty(get(Some(r), "uid"), &ip.child("uid"), e);
        // schema.FromAPIVersionAndKind: an unparseable apiVersion leaves group and version empty.
        let (group, version) = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [""] => ("", ""),
            [v] => ("", *v),
            [g, v] => (*g, *v),
            _ => ("", ""),
        };
        if version.is_empty() {
            e.push(FieldError::invalid(
                p.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            e.push(FieldError::invalid(
                p.child("kind"),
                kind,
                "must not be empty",
            ));
        }
        if name.is_empty() {
            e.push(FieldError::invalid(
                p.child("name"),
                name,
                "must not be empty",
            ));
        }
        if uid.is_empty() {
            e.push(FieldError::invalid(
                p.child("uid"),
                uid,
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            e.push(FieldError::invalid(
                p.clone(),
                Value::Object(r.clone()),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if boolean(get(Some(r), "controller"), &ip.child("controller"), e) == Some(true) {
            let cur = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => e.push(FieldError::invalid(
                    p.clone(),
                    Value::Array(refs.to_vec()),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {cur}"),
                )),
                None => first_controller = Some(cur),
            }
        }
    }
}

/// Upstream's `ValidateFinalizers`: qualified names, not both `orphan` and `foregroundDeletion`.
pub(crate) fn finalizers(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    let list = arr(v, p, e);
    let mut names_seen = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let Some(f) = string(Some(f), &p.index(i), e) else {
            continue;
        };
        for msg in names::qualified_name(f) {
            e.push(FieldError::invalid(p.clone(), f, msg));
        }
        names_seen.push(f);
    }
    if names_seen.contains(&"orphan") && names_seen.contains(&"foregroundDeletion") {
        e.push(FieldError::invalid(
            p.clone(),
            Value::Array(list.to_vec()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

/// An empty string reads as absent (Go's zero value).
fn as_empty(v: Option<&Value>) -> Option<&Value> {
    match v {
        Some(Value::String(s)) if s.is_empty() => None,
        other => other,
    }
}

/// The parts shared by create and update (`validateObjectMetaAccessorWithOptsCommon`).
fn common(m: Option<&Obj>, namespaced: bool, p: &Path, e: &mut Vec<FieldError>) {
    let ns = str_or_empty(get(m, "namespace"), &p.child("namespace"), e);
    if namespaced {
        if ns.is_empty() {
            e.push(FieldError::required(p.child("namespace"), ""));
        } else {
            for msg in names::dns1123_label(ns) {
                e.push(FieldError::invalid(p.child("namespace"), ns, msg));
            }
        }
    } else if !ns.is_empty() {
        e.push(FieldError::forbidden(
            p.child("namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = int(get(m, "generation"), &p.child("generation"), e) {
        nonnegative(g, &p.child("generation"), e);
    }
    labels(get(m, "labels"), &p.child("labels"), e);
    annotations(get(m, "annotations"), &p.child("annotations"), e);
    owner_references(get(m, "ownerReferences"), &p.child("ownerReferences"), e);
    finalizers(get(m, "finalizers"), &p.child("finalizers"), e);
    managed_fields(get(m, "managedFields"), &p.child("managedFields"), e);
}

fn managed_fields(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    for (i, f) in arr(v, p, e).iter().enumerate() {
        let ip = p.index(i);
        let f = obj(Some(f), &ip, e);
        let op = str_or_empty(get(f, "operation"), &ip.child("operation"), e);
        if op != "Apply" && op != "Update" {
            e.push(FieldError::invalid(
                ip.child("operation"),
                op,
                "must be `Apply` or `Update`",
            ));
        }
        let ft = str_or_empty(get(f, "fieldsType"), &ip.child("fieldsType"), e);
        if !ft.is_empty() && ft != "FieldsV1" {
            e.push(FieldError::invalid(
                ip.child("fieldsType"),
                ft,
                "must be `FieldsV1`",
            ));
        }
    }
}

/// Upstream's `ValidateObjectMeta` for a create. Expects name generation to have happened: an
/// object with only `generateName` is reported as missing its name, as upstream does.
pub(crate) fn object_meta(
    root: &Obj,
    namespaced: bool,
    name_fn: NameFn,
    e: &mut Vec<FieldError>,
) -> Option<()> {
    let p = Path::new("metadata");
    let m = obj(get(Some(root), "metadata"), &p, e);
    let generate = str_or_empty(get(m, "generateName"), &p.child("generateName"), e);
    if !generate.is_empty() {
        for msg in name_fn(generate, true) {
            e.push(FieldError::invalid(p.child("generateName"), generate, msg));
        }
    }
    let name = str_or_empty(get(m, "name"), &p.child("name"), e);
    if name.is_empty() {
        e.push(FieldError::required(
            p.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            e.push(FieldError::invalid(p.child("name"), name, msg));
        }
    }
    common(m, namespaced, &p, e);
    Some(())
}

/// Upstream's `ValidateObjectMetaUpdate`.
pub(crate) fn object_meta_update(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    let p = Path::new("metadata");
    let mut scratch = Vec::new();
    let nm = obj(get(Some(new), "metadata"), &p, e);
    let om = obj(get(Some(old), "metadata"), &p, &mut scratch);
    if get(om, "deletionTimestamp").is_some() {
        let fp = p.child("finalizers");
        let old_f: Vec<&str> = arr(get(om, "finalizers"), &fp, &mut scratch)
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut extra: Vec<&str> = arr(get(nm, "finalizers"), &fp, &mut scratch)
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort_unstable();
        extra.dedup();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|f| format!("{f:?}")).collect();
            e.push(FieldError::forbidden(
                fp,
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    let rv = str_or_empty(get(nm, "resourceVersion"), &p.child("resourceVersion"), e);
    if rv.is_empty() {
        e.push(FieldError::invalid(
            p.child("resourceVersion"),
            rv,
            "must be specified for an update",
        ));
    }
    let ng = int(get(nm, "generation"), &p.child("generation"), e).unwrap_or(0);
    let og = int(get(om, "generation"), &p.child("generation"), &mut scratch).unwrap_or(0);
    if ng < og {
        e.push(FieldError::invalid(
            p.child("generation"),
            ng,
            "must not be decremented",
        ));
    }
    for f in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        immutable(as_empty(get(nm, f)), as_empty(get(om, f)), &p.child(f), e);
    }
    labels(get(nm, "labels"), &p.child("labels"), e);
    annotations(get(nm, "annotations"), &p.child("annotations"), e);
    owner_references(get(nm, "ownerReferences"), &p.child("ownerReferences"), e);
    finalizers(get(nm, "finalizers"), &p.child("finalizers"), e);
    managed_fields(get(nm, "managedFields"), &p.child("managedFields"), e);
}

/// Upstream's `ValidateLabelSelector` (`matchLabels` and `matchExpressions`).
pub(crate) fn label_selector(sel: Option<&Obj>, p: &Path, e: &mut Vec<FieldError>) {
    let Some(sel) = sel else { return };
    labels(get(Some(sel), "matchLabels"), &p.child("matchLabels"), e);
    let ep = p.child("matchExpressions");
    for (i, x) in arr(get(Some(sel), "matchExpressions"), &ep, e)
        .iter()
        .enumerate()
    {
        let ip = ep.index(i);
        let x = obj(Some(x), &ip, e);
        let op = str_or_empty(get(x, "operator"), &ip.child("operator"), e);
        let values = arr(get(x, "values"), &ip.child("values"), e);
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    e.push(FieldError::required(
                        ip.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    e.push(FieldError::forbidden(
                        ip.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => e.push(FieldError::invalid(
                ip.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = str_or_empty(get(x, "key"), &ip.child("key"), e);
        label_name(key, &ip.child("key"), e);
        for (j, v) in values.iter().enumerate() {
            if let Some(v) = string(Some(v), &ip.child("values").index(j), e) {
                for msg in names::label_value(v) {
                    e.push(FieldError::invalid(ip.child("values").index(j), v, msg));
                }
            }
        }
    }
}

/// Whether a label selector (`matchLabels`, `matchExpressions`) matches `labels`.
pub(crate) fn selector_matches(sel: &Obj, labels: &[(&str, &str)]) -> bool {
    let lookup = |k: &str| labels.iter().find(|(lk, _)| *lk == k).map(|(_, v)| *v);
    if let Some(Value::Object(ml)) = sel.get("matchLabels") {
        for (k, v) in ml {
            if lookup(k) != v.as_str() {
                return false;
            }
        }
    }
    if let Some(Value::Array(xs)) = sel.get("matchExpressions") {
        for x in xs {
            let key = x.get("key").and_then(Value::as_str).unwrap_or("");
            let op = x.get("operator").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = x
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let have = lookup(key);
            let ok = match op {
                "In" => have.is_some_and(|h| values.contains(&h)),
                "NotIn" => have.is_none_or(|h| !values.contains(&h)),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// Whether a selector selects nothing in particular (no labels, no expressions).
pub(crate) fn selector_is_empty(sel: &Obj) -> bool {
    let empty = |k: &str| match sel.get(k) {
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => true,
    };
    empty("matchLabels") && empty("matchExpressions")
}
