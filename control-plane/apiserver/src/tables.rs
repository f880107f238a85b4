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

    fn partial(obj: &Value, v1beta1: bool) -> Value {
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
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).expect("encodes");
        line.push(b'\n');
        Bytes::from(line)
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
            // Items of typed lists carry no type meta, as upstream encodes them.
            for item in &mut items {
                crate::crd::as_read(ctx.def, item);
                if let Some(m) = item.as_object_mut() {
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

/// One watch event for `obj` in the request's format.
pub(crate) fn watch_object(ctx: &Ctx<'_>, kind: &str, obj: Value) -> Bytes {
    Format::of(ctx).watch_object(ctx.def, kind, obj)
}
