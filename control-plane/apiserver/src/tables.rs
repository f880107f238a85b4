//! Response formats a client can ask for with `Accept`: the object itself, a `Table` (what
//! `kubectl get` prints) or `PartialObjectMetadata` (metadata only).

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::handlers::Ctx;
use crate::registry::ResourceDef;

/// The representation a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The objects as stored.
    Object,
    /// A `meta.k8s.io` Table of this version (`v1` or `v1beta1`), with row objects as asked.
    Table { v1beta1: bool, include: Include },
    /// `PartialObjectMetadata(List)` of this version.
    Metadata { v1beta1: bool },
}

/// What each table row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Include {
    None,
    Metadata,
    Object,
}

impl Format {
    /// The first representation in the `Accept` header that the server offers.
    pub(crate) fn of(ctx: &Ctx<'_>) -> Format {
        let accept = ctx
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        let include = match ctx.params.include_object.as_deref() {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        };
        for range in accept.split(',') {
            let params: Vec<String> = range.split(';').map(|p| p.trim().to_owned()).collect();
            let has = |p: &str| params.iter().any(|x| x == p);
            if !has("g=meta.k8s.io") {
                if params[0] == "application/json"
                    || params[0] == "*/*"
                    || params[0] == "application/*"
                {
                    return Format::Object;
                }
                continue;
            }
            let v1beta1 = has("v=v1beta1");
            if has("as=Table") {
                return Format::Table { v1beta1, include };
            }
            if has("as=PartialObjectMetadata") || has("as=PartialObjectMetadataList") {
                return Format::Metadata { v1beta1 };
            }
        }
        Format::Object
    }

    fn meta_api_version(v1beta1: bool) -> &'static str {
        if v1beta1 {
            "meta.k8s.io/v1beta1"
        } else {
            "meta.k8s.io/v1"
        }
    }

    pub(crate) fn partial(obj: &Value, v1beta1: bool) -> Value {
        json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": Self::meta_api_version(v1beta1),
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        })
    }

    fn table(&self, def: &ResourceDef, objs: Vec<Value>, list_meta: Value) -> Value {
        let Format::Table { v1beta1, include } = *self else {
            unreachable!("only tables")
        };
        let now = std::time::SystemTime::now();
        let (columns, rows) = crate::rules::table(def, &objs, now);
        let rows: Vec<Value> = objs
            .into_iter()
            .zip(rows)
            .map(|(obj, cells)| {
                let mut row = json!({"cells": cells});
                if let Some(c) = objects::printers::row_conditions(
                    objects::GroupKind::new(&def.group, &def.kind),
                    &obj,
                ) {
                    row["conditions"] = c;
                }
                match include {
                    Include::None => {}
                    Include::Metadata => row["object"] = Self::partial(&obj, v1beta1),
                    Include::Object => row["object"] = obj,
                }
                row
            })
            .collect();
        json!({
            "kind": "Table",
            "apiVersion": Self::meta_api_version(v1beta1),
            "metadata": list_meta,
            "columnDefinitions": columns,
            "rows": rows,
        })
    }

    /// One watch event line in this format.
    /// Whether objects are sent as they are (not as Tables or metadata).
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self, Format::Object)
    }

    pub(crate) fn watch_object(&self, def: &ResourceDef, kind: &str, obj: Value) -> Bytes {
        let mut obj = obj;
        if !matches!(self, Format::Metadata { .. }) {
            crate::crd::as_read(def, &mut obj);
        }
        let object = match self {
            Format::Object => obj,
            Format::Metadata { v1beta1 } => Self::partial(&obj, *v1beta1),
            Format::Table { .. } => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                self.table(def, vec![obj], json!({"resourceVersion": rv}))
            }
        };
        crate::feed::encode_line(kind, &object)
    }
}

/// Whether a client that sent `accept` can read the JSON every answer is written in. Clients
/// that accept only Kubernetes protobuf cannot: Berth reads protobuf but writes only JSON.
pub(crate) fn accepts_json(accept: &str) -> bool {
    accept.trim().is_empty()
        || accept.split(',').any(|range| {
            let media = range.split(';').next().unwrap_or_default().trim();
            media != crate::protobuf::MEDIA_TYPE
        })
}

fn ok_json(value: &Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// Answers a get with `obj` in the requested format.
pub(crate) fn respond_one(ctx: &Ctx<'_>, mut obj: Value) -> Response {
    crate::crd::as_read(ctx.def, &mut obj);
    let format = Format::of(ctx);
    match format {
        Format::Object => ok_json(&obj),
        Format::Metadata { v1beta1 } => ok_json(&Format::partial(&obj, v1beta1)),
        Format::Table { .. } => {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            ok_json(&format.table(ctx.def, vec![obj], json!({"resourceVersion": rv})))
        }
    }
}

/// Answers a list in the requested format.
pub(crate) fn respond_list(ctx: &Ctx<'_>, mut items: Vec<Value>, list_meta: Value) -> Response {
    let format = Format::of(ctx);
    match format {
        Format::Object => {
            // Items of built-in lists carry no type meta, as upstream encodes typed lists;
            // custom objects are served whole, as upstream's unstructured lists are.
            for item in &mut items {
                crate::crd::as_read(ctx.def, item);
                if ctx.def.custom.is_none()
                    && let Some(m) = item.as_object_mut()
                {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
            }
            ok_json(&json!({
                "kind": ctx.def.list_kind,
                "apiVersion": ctx.def.api_version(),
                "metadata": list_meta,
                "items": items,
            }))
        }
        Format::Metadata { v1beta1 } => ok_json(&json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": Format::meta_api_version(v1beta1),
            "metadata": list_meta,
            "items": items.iter().map(|o| Format::partial(o, v1beta1)).collect::<Vec<_>>(),
        })),
        Format::Table { .. } => {
            for item in &mut items {
                crate::crd::as_read(ctx.def, item);
            }
            ok_json(&format.table(ctx.def, items, list_meta))
        }
    }
}

/// Whether an answer (a get, a create, a list's items) is the objects as stored: a built-in
/// kind (custom objects may be converted or defaulted when read) in plain JSON.
pub(crate) fn serves_stored(ctx: &Ctx<'_>) -> bool {
    ctx.def.custom.is_none() && matches!(Format::of(ctx), Format::Object)
}

/// Answers a list of stored objects (see [`serves_stored`]) without decoding them: the same
/// bytes [`respond_list`] would send, built by splicing each stored encoding.
pub(crate) fn respond_stored_list(
    ctx: &Ctx<'_>,
    items: &[store::KeyValue],
    list_meta: &Value,
) -> Response {
    let size: usize = items.iter().map(|kv| kv.value.len() + 32).sum();
    let mut out = Vec::with_capacity(size + 256);
    out.extend_from_slice(b"{\"apiVersion\":");
    serde_json::to_writer(&mut out, &ctx.def.api_version()).expect("strings encode");
    out.extend_from_slice(b",\"items\":[");
    for (i, kv) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let start = out.len();
        if splice_stored(&kv.value, kv.mod_revision, Typed::Dropped, &mut out).is_err() {
            // Not in the form the store writes (escaped keys, say): the long way.
            out.truncate(start);
            let mut obj = crate::storage::decode(kv).unwrap_or(Value::Null);
            if let Some(m) = obj.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            serde_json::to_writer(&mut out, &obj).expect("JSON values always encode");
        }
    }
    out.extend_from_slice(b"],\"kind\":");
    serde_json::to_writer(&mut out, &*ctx.def.list_kind).expect("strings encode");
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut out, list_meta).expect("JSON values always encode");
    out.push(b'}');
    (StatusCode::OK, [("content-type", "application/json")], out).into_response()
}

/// Answers with one stored object (see [`serves_stored`]) as it was written at `revision`,
/// without decoding it: what [`respond_one`] would send for the decoded object.
pub(crate) fn respond_stored_object(code: StatusCode, stored: &[u8], revision: u64) -> Response {
    let mut out = Vec::with_capacity(stored.len() + 32);
    if splice_stored(stored, revision, Typed::Kept, &mut out).is_err() {
        // Not in the form the store writes (escaped keys, say): the long way.
        out.clear();
        let mut obj: Value = serde_json::from_slice(stored).unwrap_or(Value::Null);
        crate::storage::set_resource_version(&mut obj, revision);
        serde_json::to_writer(&mut out, &obj).expect("JSON values always encode");
    }
    (code, [("content-type", "application/json")], out).into_response()
}

/// Writes the stored object `stored` at `revision` as an object on its own, without decoding
/// it: what encoding the decoded object would write.
pub(crate) fn splice_object(
    stored: &[u8],
    revision: u64,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    splice_stored(stored, revision, Typed::Kept, out)
}

/// Writes the stored object `stored` at `revision` as `PartialObjectMetadata`, without decoding
/// it: what encoding [`Format::partial`] of the decoded object would write.
pub(crate) fn splice_partial(
    stored: &[u8],
    revision: u64,
    v1beta1: bool,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    let top: BTreeMap<&str, &RawValue> = serde_json::from_slice(stored)?;
    out.extend_from_slice(b"{\"apiVersion\":");
    serde_json::to_writer(&mut *out, Format::meta_api_version(v1beta1))?;
    out.extend_from_slice(b",\"kind\":\"PartialObjectMetadata\",\"metadata\":");
    match top.get("metadata") {
        Some(meta) => splice_metadata(meta, revision, out)?,
        None => out.extend_from_slice(b"{}"),
    }
    out.push(b'}');
    Ok(())
}

/// Writes `metadata` (an object's raw metadata) with `resourceVersion` set to `revision`.
fn splice_metadata(
    metadata: &serde_json::value::RawValue,
    revision: u64,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    let mut meta: BTreeMap<&str, &RawValue> = serde_json::from_str(metadata.get())?;
    let rv = RawValue::from_string(format!("\"{revision}\""))?;
    meta.insert("resourceVersion", &rv);
    serde_json::to_writer(&mut *out, &meta)
}

/// Whether a spliced object keeps its `kind` and `apiVersion` (an object on its own) or drops
/// them (an item of a typed list, whose list carries them).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Typed {
    Kept,
    Dropped,
}

/// Writes the stored object `stored` with `metadata.resourceVersion` set to `revision`. Only
/// the top level and `metadata` are parsed (into borrowed slices); every other field is copied
/// as it is, which is what re-encoding the decoded object would write, since the store holds
/// serde_json's own compact, key-sorted encoding.
fn splice_stored(
    stored: &[u8],
    revision: u64,
    typed: Typed,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    let top: BTreeMap<&str, &RawValue> = serde_json::from_slice(stored)?;
    out.push(b'{');
    let mut first = true;
    for (key, value) in &top {
        if typed == Typed::Dropped && matches!(*key, "kind" | "apiVersion") {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *out, key)?;
        out.push(b':');
        if *key == "metadata" {
            splice_metadata(value, revision, out)?;
        } else {
            out.extend_from_slice(value.get().as_bytes());
        }
    }
    out.push(b'}');
    Ok(())
}

/// One watch event for `obj` in the request's format.
pub(crate) fn watch_object(ctx: &Ctx<'_>, kind: &str, obj: Value) -> Bytes {
    Format::of(ctx).watch_object(ctx.def, kind, obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the decoding path writes for one stored object, on its own or as a typed list item.
    fn decoded(stored: &[u8], revision: u64, typed: Typed) -> Vec<u8> {
        let mut obj: Value = serde_json::from_slice(stored).unwrap();
        crate::storage::set_resource_version(&mut obj, revision);
        if typed == Typed::Dropped {
            let m = obj.as_object_mut().unwrap();
            m.remove("kind");
            m.remove("apiVersion");
        }
        serde_json::to_vec(&obj).unwrap()
    }

    #[test]
    fn spliced_items_are_byte_for_byte_what_decoding_writes() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "a", "namespace": "d", "uid": "u",
                                "labels": {"x": "y"}, "annotations": {"q": "\"quoted\" \\ \n tab\t"}},
                   "data": {"k": "ünïcödé ✓ \u{1F600}", "control": "\u{0001}\u{001f}", "slash": "a/b"}}),
            // A nested `metadata` before the top-level one, numbers of every kind, nulls.
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "aaa": {"metadata": {"name": "inner"}},
                   "metadata": {"name": "web", "generation": 3, "deletionGracePeriodSeconds": 0},
                   "spec": {"replicas": 2, "ratio": 0.1, "big": 1e300, "neg": -5, "n": null,
                            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}),
            // No metadata at all: nothing to stamp.
            json!({"apiVersion": "v1", "kind": "Odd", "spec": []}),
        ];
        for obj in objects {
            let stored = crate::storage::encode(&obj);
            for typed in [Typed::Kept, Typed::Dropped] {
                let mut out = Vec::new();
                splice_stored(&stored, 42, typed, &mut out).unwrap();
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    String::from_utf8(decoded(&stored, 42, typed)).unwrap()
                );
            }
            for v1beta1 in [false, true] {
                let mut out = Vec::new();
                splice_partial(&stored, 42, v1beta1, &mut out).unwrap();
                let mut obj: Value = serde_json::from_slice(&stored).unwrap();
                crate::storage::set_resource_version(&mut obj, 42);
                let partial = serde_json::to_string(&Format::partial(&obj, v1beta1)).unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), partial);
            }
        }
    }

    #[tokio::test]
    async fn a_stored_object_answers_as_its_decoded_form_would() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "a", "namespace": "d"}, "data": {"k": "v"}});
        let stored = crate::storage::encode(&obj);
        // The spliced path, and the decoding fallback for a key the splice refuses.
        let escaped = br#"{"kind":"ConfigMap","metadata":{"name":"a"},"\u0064ata2":1}"#.to_vec();
        for stored in [stored, escaped] {
            let response = respond_stored_object(StatusCode::CREATED, &stored, 7);
            assert_eq!(response.status(), StatusCode::CREATED);
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(body, decoded(&stored, 7, Typed::Kept));
        }
    }

    #[test]
    fn escaped_keys_are_refused_so_the_list_decodes_them() {
        let stored =
            br#"{"kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"},"\u0064ata2":1}"#;
        let mut out = Vec::new();
        assert!(splice_stored(stored, 1, Typed::Dropped, &mut out).is_err());
    }
}
