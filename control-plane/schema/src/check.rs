//! The checks upstream runs on a CRD version's schema: structurality
//! (`pkg/apiserver/schema/validation.go`), defaults (`defaulting/validation.go`) and the OpenAPI
//! restrictions for CRDs (`pkg/apis/apiextensions/validation/validation.go`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use objects::field::{FieldError, Path};
use serde_json::Value;

use crate::validation::Validator;
use crate::{AdditionalProperties, Structural, listtype, pruning};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

pub(crate) fn check(props: &JSONSchemaProps, s: &Structural, base: &Path) -> Vec<FieldError> {
    let mut structural = Vec::new();
    invariants(s, Level::Root, base, &mut structural);
    // Upstream checks completeness for the root's junctors only (`complete.go`).
    completeness_vv(s, s, base, base, &mut structural);
    structural.sort_by_key(|e| e.to_string());

    let mut all = structural;
    if all.is_empty() {
        defaults(base, s, s, true, false, &mut all);
    }
    let mut schema = Vec::new();
    openapi_schema(
        props,
        base,
        &Ssv {
            allow_defaults: true,
            disallow_reason: String::new(),
            inside_meta: false,
        },
        true,
        &mut schema,
    );
    all.extend(schema);
    all
}

// ---- structurality ----

fn invariants(s: &Structural, lvl: Level, p: &Path, out: &mut Vec<FieldError>) {
    if s.type_name == "array" && s.items.is_none() {
        out.push(FieldError::required(p.child("items"), "must be specified"));
    }
    if let Some(i) = &s.items {
        invariants(i, Level::Item, &p.child("items"), out);
    }
    for (k, v) in &s.properties {
        invariants(v, Level::Field, &p.child("properties").key(k), out);
    }
    if let Some(ap) = &s.additional_properties {
        if lvl == Level::Root {
            out.push(FieldError::forbidden(
                p.child("additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let AdditionalProperties::Schema(a) = ap {
            invariants(a, Level::Field, &p.child("additionalProperties"), out);
        }
    }
    if s.int_or_string && s.preserve_unknown_fields() {
        out.push(FieldError::invalid(
            p.child("x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.int_or_string && s.embedded_resource {
        out.push(FieldError::invalid(
            p.child("x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_any_of(&s.v.any_of);
    let skip_first_all_of_any_of =
        s.v.all_of
            .first()
            .is_some_and(|a| is_int_or_string_any_of(&a.v.any_of));
    value_validation(s, skip_any_of, skip_first_all_of_any_of, lvl, p, out);

    let check_metadata = lvl == Level::Root || s.embedded_resource;
    if s.embedded_resource && s.type_name != "object" {
        let msg = "must be object if x-kubernetes-embedded-resource is true";
        out.push(if s.type_name.is_empty() {
            FieldError::required(p.child("type"), msg)
        } else {
            FieldError::invalid(p.child("type"), s.type_name.clone(), msg)
        });
    } else if s.type_name.is_empty() && !s.int_or_string && !s.preserve_unknown_fields() {
        let msg = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(FieldError::required(p.child("type"), msg));
    }
    if s.embedded_resource && s.additional_properties.is_some() {
        out.push(FieldError::forbidden(
            p.child("additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !s.type_name.is_empty() && s.type_name != "object" {
        out.push(FieldError::invalid(
            p.child("type"),
            s.type_name.clone(),
            "must be object at the root",
        ));
    }
    for f in ["kind", "apiVersion"] {
        if let Some(k) = s.properties.get(f)
            && check_metadata
            && k.type_name != "string"
        {
            out.push(FieldError::invalid(
                p.child("properties").key(f).child("type"),
                k.type_name.clone(),
                "must be string",
            ));
        }
    }
    if let Some(m) = s.properties.get("metadata") {
        let mp = p.child("properties").key("metadata");
        if check_metadata && m.type_name != "object" {
            out.push(FieldError::invalid(
                mp.child("type"),
                m.type_name.clone(),
                "must be object",
            ));
        }
        if lvl == Level::Root && !metadata_only_names(m) {
            out.push(FieldError::forbidden(
                mp,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    if s.embedded_resource && !s.preserve_unknown_fields() && s.properties.is_empty() {
        out.push(FieldError::required(
            p.child("properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// Whether the root `metadata` schema restricts at most `name` and `generateName` (its type and
/// default are checked elsewhere).
fn metadata_only_names(m: &Structural) -> bool {
    let names = m
        .properties
        .keys()
        .all(|k| k == "name" || k == "generateName");
    names
        && m.items.is_none()
        && m.additional_properties.is_none()
        && m.v.is_empty()
        && m.description.is_none()
        && m.title.is_none()
        && !m.nullable
        && m.external_docs.is_none()
        && !m.int_or_string
        && m.preserve_unknown_fields.is_none()
        && !m.embedded_resource
        && m.list_type.is_none()
        && m.list_map_keys.is_empty()
        && m.map_type.is_none()
        && m.x_validations.is_none()
        && m.format.is_empty()
}

fn only_type(s: &Structural, t: &str) -> bool {
    let bare = Structural {
        type_name: t.to_owned(),
        ..<Structural as Default>::default()
    };
    s.type_name == t && format!("{s:?}") == format!("{bare:?}")
}

fn is_int_or_string_any_of(any_of: &[Structural]) -> bool {
    any_of.len() == 2 && only_type(&any_of[0], "integer") && only_type(&any_of[1], "string")
}

fn value_validation(
    s: &Structural,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    lvl: Level,
    p: &Path,
    out: &mut Vec<FieldError>,
) {
    let v = &s.v;
    if !skip_any_of {
        for (i, n) in v.any_of.iter().enumerate() {
            nested(n, false, lvl, &p.child("anyOf").index(i), out);
        }
    }
    for (i, n) in v.all_of.iter().enumerate() {
        nested(
            n,
            skip_first_all_of_any_of && i == 0,
            lvl,
            &p.child("allOf").index(i),
            out,
        );
    }
    for (i, n) in v.one_of.iter().enumerate() {
        nested(n, false, lvl, &p.child("oneOf").index(i), out);
    }
    if let Some(n) = &v.not {
        nested(n, false, lvl, &p.child("not"), out);
    }
    if let Some((pat, None)) = &v.pattern {
        let err = crate::compile_pattern(pat).err().map(|e| e.to_string());
        out.push(FieldError::invalid(
            p.child("pattern"),
            pat.clone(),
            format!(
                "must be a valid regular expression, but isn't: {}",
                err.unwrap_or_default()
            ),
        ));
    }
}

fn nested(n: &Structural, skip_any_of: bool, lvl: Level, p: &Path, out: &mut Vec<FieldError>) {
    value_validation(n, skip_any_of, false, lvl, p, out);
    if let Some(i) = &n.items {
        nested(i, false, lvl, &p.child("items"), out);
    }
    for (k, f) in &n.properties {
        nested(f, false, Level::Field, &p.child("properties").key(k), out);
    }
    let forbid = |out: &mut Vec<FieldError>, f: &str, msg: &str| {
        out.push(FieldError::forbidden(p.child(f), msg));
    };
    if !n.type_name.is_empty() {
        forbid(out, "type", "must be empty to be structural");
    }
    if n.additional_properties.is_some() {
        forbid(
            out,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if n.default.is_some() {
        forbid(out, "default", "must be undefined to be structural");
    }
    if n.title.as_deref().is_some_and(|t| !t.is_empty()) {
        forbid(out, "title", "must be empty to be structural");
    }
    if n.description.as_deref().is_some_and(|t| !t.is_empty()) {
        forbid(out, "description", "must be empty to be structural");
    }
    if n.nullable {
        forbid(out, "nullable", "must be false to be structural");
    }
    if n.external_docs.is_some() {
        forbid(out, "externalDocs", "must be undefined to be structural");
    }
    if n.preserve_unknown_fields() {
        forbid(
            out,
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        );
    }
    if n.embedded_resource {
        forbid(
            out,
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        );
    }
    if n.int_or_string {
        forbid(
            out,
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        );
    }
    if !n.list_map_keys.is_empty() {
        forbid(
            out,
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    if n.list_type.is_some() {
        forbid(
            out,
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        );
    }
    if n.map_type.is_some() {
        forbid(
            out,
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        );
    }
    if n.x_validations.is_some() {
        forbid(
            out,
            "x-kubernetes-validations",
            "must be empty to be structural",
        );
    }
    if n.properties.contains_key("metadata") {
        out.push(FieldError::forbidden(
            p.child("properties").key("metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Every field or item constrained under a junctor must also be specified structurally.
fn completeness_vv(
    v: &Structural,
    s: &Structural,
    sp: &Path,
    vp: &Path,
    out: &mut Vec<FieldError>,
) {
    if let Some(n) = &v.v.not {
        completeness_nested(n, Some(s), sp, &vp.child("not"), out);
    }
    for (name, list) in [
        ("allOf", &v.v.all_of),
        ("anyOf", &v.v.any_of),
        ("oneOf", &v.v.one_of),
    ] {
        for (i, n) in list.iter().enumerate() {
            completeness_nested(n, Some(s), sp, &vp.child(name).index(i), out);
        }
    }
}

fn completeness_nested(
    v: &Structural,
    s: Option<&Structural>,
    sp: &Path,
    vp: &Path,
    out: &mut Vec<FieldError>,
) {
    let Some(s) = s else {
        out.push(FieldError::required(
            sp.clone(),
            format!("because it is defined in {vp}"),
        ));
        return;
    };
    completeness_vv(v, s, sp, vp, out);
    if let Some(vi) = &v.items {
        completeness_nested(
            vi,
            s.items.as_deref(),
            &sp.child("items"),
            &vp.child("items"),
            out,
        );
    }
    for (k, vf) in &v.properties {
        let skp = sp.child("properties").key(k);
        let vkp = vp.child("properties").key(k);
        match s.properties.get(k) {
            None => out.push(FieldError::required(
                skp,
                format!("because it is defined in {vkp}"),
            )),
            Some(sf) => completeness_nested(vf, Some(sf), &skp, &vkp, out),
        }
    }
}

// ---- defaults ----

fn defaults(
    p: &Path,
    s: &Structural,
    root: &Structural,
    is_root: bool,
    inside_meta: bool,
    out: &mut Vec<FieldError>,
) {
    let embedded = s.embedded_resource || is_root;
    let (root, inside_meta) = if embedded {
        (s, false)
    } else {
        (root, inside_meta)
    };
    if let Some(d) = &s.default {
        let dp = p.child("default");
        if !inside_meta {
            if pruning::needs_pruning(d, s, s.embedded_resource) {
                out.push(FieldError::invalid(
                    dp.clone(),
                    d.clone(),
                    "must not have unknown fields",
                ));
            }
            let mut errs = Vec::new();
            if s.embedded_resource {
                listtype::embedded(Some(&dp), d, s, &mut errs);
            }
            if errs.is_empty() {
                let mut v = Validator::new(Some(&dp));
                v.node(s, &mut String::new(), d);
                errs = v.out;
            }
            out.extend(errs);
        } else {
            let mut v = Validator::new(Some(&dp));
            v.node(s, &mut String::new(), d);
            out.extend(v.out);
        }
    }
    let _ = root;
    if let Some(i) = &s.items {
        defaults(&p.child("items"), i, root, false, inside_meta, out);
    }
    for (k, sub) in &s.properties {
        let sub_meta =
            inside_meta || (embedded && matches!(k.as_str(), "metadata" | "apiVersion" | "kind"));
        defaults(
            &p.child("properties").key(k),
            sub,
            root,
            false,
            sub_meta,
            out,
        );
    }
}

// ---- OpenAPI restrictions for CRDs ----

struct Ssv {
    allow_defaults: bool,
    disallow_reason: String,
    inside_meta: bool,
}

impl Ssv {
    fn forbid_defaults(&self, reason: String) -> Ssv {
        Ssv {
            allow_defaults: false,
            disallow_reason: reason,
            inside_meta: self.inside_meta,
        }
    }
}

const OPENAPI_V3_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

fn standard(s: &JSONSchemaProps, p: &Path, ssv: &Ssv, out: &mut Vec<FieldError>) {
    if let Some(t) = s.type_.as_deref()
        && !t.is_empty()
        && !OPENAPI_V3_TYPES.contains(&t)
        && t != "null"
    {
        out.push(FieldError::not_supported(
            p.child("type"),
            t,
            OPENAPI_V3_TYPES,
        ));
    }
    if s.default.is_some() && !ssv.allow_defaults {
        let mut detail = "must not be set".to_owned();
        if !ssv.disallow_reason.is_empty() {
            detail.push(' ');
            detail.push_str(&ssv.disallow_reason);
        }
        out.push(FieldError::forbidden(p.child("default"), detail));
    }
    if s.id.as_deref().is_some_and(|i| !i.is_empty()) {
        out.push(FieldError::forbidden(p.child("id"), "id is not supported"));
    }
    if s.additional_items.is_some() {
        out.push(FieldError::forbidden(
            p.child("additionalItems"),
            "additionalItems is not supported",
        ));
    }
    if s.pattern_properties.as_ref().is_some_and(|m| !m.is_empty()) {
        out.push(FieldError::forbidden(
            p.child("patternProperties"),
            "patternProperties is not supported",
        ));
    }
    if s.definitions.as_ref().is_some_and(|m| !m.is_empty()) {
        out.push(FieldError::forbidden(
            p.child("definitions"),
            "definitions is not supported",
        ));
    }
    if s.dependencies.is_some() {
        out.push(FieldError::forbidden(
            p.child("dependencies"),
            "dependencies is not supported",
        ));
    }
    if s.ref_path.is_some() {
        out.push(FieldError::forbidden(
            p.child("$ref"),
            "$ref is not supported",
        ));
    }
    if s.type_.as_deref() == Some("null") {
        out.push(FieldError::forbidden(
            p.child("type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if matches!(&s.items, Some(JSONSchemaPropsOrArray::Schemas(v)) if !v.is_empty()) {
        out.push(FieldError::forbidden(
            p.child("items"),
            "items must be a schema object and not an array",
        ));
    }
    if ssv.inside_meta && s.x_kubernetes_embedded_resource == Some(true) {
        out.push(FieldError::forbidden(
            p.child("x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
}

fn openapi_schema(
    s: &JSONSchemaProps,
    p: &Path,
    ssv: &Ssv,
    is_root: bool,
    out: &mut Vec<FieldError>,
) {
    standard(s, p, ssv, out);
    if s.unique_items == Some(true) {
        out.push(FieldError::forbidden(
            p.child("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let has_props = s.properties.as_ref().is_some_and(|m| !m.is_empty());
    if let Some(ap) = &s.additional_properties {
        if has_props && !matches!(ap, JSONSchemaPropsOrBool::Bool(true)) {
            out.push(FieldError::forbidden(
                p.child("additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        let sub;
        let ssv2 = if ssv.inside_meta {
            sub = ssv.forbid_defaults(
                "inside additionalProperties applying to object metadata".to_owned(),
            );
            &sub
        } else {
            ssv
        };
        if let JSONSchemaPropsOrBool::Schema(a) = ap {
            openapi_schema(a, &p.child("additionalProperties"), ssv2, false, out);
        }
    }
    let embedded = s.x_kubernetes_embedded_resource == Some(true);
    for (k, v) in s.properties.iter().flatten() {
        let pp = p.child("properties").key(k);
        if (is_root || embedded) && matches!(k.as_str(), "metadata" | "kind" | "apiVersion") {
            let mut sub = Ssv {
                allow_defaults: ssv.allow_defaults,
                disallow_reason: ssv.disallow_reason.clone(),
                inside_meta: true,
            };
            if is_root {
                sub = sub.forbid_defaults(format!("in top-level {k}"));
            }
            openapi_schema(v, &pp, &sub, false, out);
        } else {
            openapi_schema(v, &pp, ssv, false, out);
        }
    }
    if let Some(n) = &s.not {
        openapi_schema(n, &p.child("not"), ssv, false, out);
    }
    for (name, list) in [
        ("allOf", &s.all_of),
        ("oneOf", &s.one_of),
        ("anyOf", &s.any_of),
    ] {
        for (i, n) in list.iter().flatten().enumerate() {
            openapi_schema(n, &p.child(name).index(i), ssv, false, out);
        }
    }
    for (k, d) in s.definitions.iter().flatten() {
        openapi_schema(d, &p.child("definitions").key(k), ssv, false, out);
    }
    match &s.items {
        Some(JSONSchemaPropsOrArray::Schema(i)) => {
            openapi_schema(i, &p.child("items"), ssv, false, out)
        }
        Some(JSONSchemaPropsOrArray::Schemas(v)) => {
            for (i, n) in v.iter().enumerate() {
                openapi_schema(n, &p.child("items").index(i), ssv, false, out);
            }
        }
        None => {}
    }
    if s.x_kubernetes_preserve_unknown_fields == Some(false) {
        out.push(FieldError::invalid(
            p.child("x-kubernetes-preserve-unknown-fields"),
            false,
            "must be true or undefined",
        ));
    }
    let ty = s.type_.as_deref().unwrap_or("");
    if let Some(mt) = &s.x_kubernetes_map_type {
        if ty != "object" {
            let msg = "must be object if x-kubernetes-map-type is specified";
            out.push(if ty.is_empty() {
                FieldError::required(p.child("type"), msg)
            } else {
                FieldError::invalid(p.child("type"), ty, msg)
            });
        }
        if mt != "atomic" && mt != "granular" {
            out.push(FieldError::not_supported(
                p.child("x-kubernetes-map-type"),
                mt.as_str(),
                &["atomic", "granular"],
            ));
        }
    }
    let items = match &s.items {
        Some(JSONSchemaPropsOrArray::Schema(i)) => Some(&**i),
        _ => None,
    };
    let lt = s.x_kubernetes_list_type.as_deref();
    if let Some(lt) = lt {
        if ty != "array" {
            let msg = "must be array if x-kubernetes-list-type is specified";
            out.push(if ty.is_empty() {
                FieldError::required(p.child("type"), msg)
            } else {
                FieldError::invalid(p.child("type"), ty, msg)
            });
        } else if lt == "set"
            && let Some(is) = items
        {
            let msg = "must be atomic as item of a list with x-kubernetes-list-type=set";
            match is.type_.as_deref() {
                Some("array") => {
                    if let Some(ilt) = &is.x_kubernetes_list_type
                        && ilt != "atomic"
                    {
                        out.push(FieldError::invalid(
                            p.child("items").child("x-kubernetes-list-type"),
                            ilt.as_str(),
                            msg,
                        ));
                    }
                }
                Some("object") if is.x_kubernetes_map_type.as_deref() != Some("atomic") => {
                    let v = is
                        .x_kubernetes_list_type
                        .clone()
                        .map_or(Value::Null, Value::String);
                    out.push(FieldError::invalid(
                        p.child("items").child("x-kubernetes-map-type"),
                        v,
                        msg,
                    ));
                }
                _ => {}
            }
        }
        if lt != "atomic" && lt != "set" && lt != "map" {
            out.push(FieldError::not_supported(
                p.child("x-kubernetes-list-type"),
                lt,
                &["atomic", "set", "map"],
            ));
        }
    }
    let keys = s.x_kubernetes_list_map_keys.as_deref().unwrap_or(&[]);
    if !keys.is_empty() {
        let msg = "must be map if x-kubernetes-list-map-keys is non-empty";
        match lt {
            None => out.push(FieldError::required(p.child("x-kubernetes-list-type"), msg)),
            Some("map") => {}
            Some(other) => out.push(FieldError::invalid(
                p.child("x-kubernetes-list-type"),
                other,
                msg,
            )),
        }
    }
    if lt == Some("map") {
        if keys.is_empty() {
            out.push(FieldError::required(
                p.child("x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match &s.items {
            None => out.push(FieldError::required(
                p.child("items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(JSONSchemaPropsOrArray::Schemas(v)) => out.push(FieldError::invalid(
                p.child("items"),
                serde_json::to_value(v).unwrap_or(Value::Null),
                "must only have a single schema if x-kubernetes-list-type is map",
            )),
            Some(JSONSchemaPropsOrArray::Schema(is)) => {
                let ity = is.type_.as_deref().unwrap_or("");
                if ity != "object" {
                    out.push(FieldError::invalid(
                        p.child("items").child("type"),
                        ity,
                        "must be object if parent array's x-kubernetes-list-type is map",
                    ));
                } else {
                    let keys_json = Value::from(keys.to_vec());
                    let mut seen = std::collections::HashSet::new();
                    for k in keys {
                        match is.properties.as_ref().and_then(|m| m.get(k)) {
                            Some(ks) => {
                                let kt = ks.type_.as_deref().unwrap_or("");
                                if kt == "array" || kt == "object" {
                                    out.push(FieldError::invalid(
                                        p.child("items").child("properties").key(k).child("type"),
                                        ity,
                                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                                    ));
                                }
                            }
                            None => out.push(FieldError::invalid(
                                p.child("x-kubernetes-list-map-keys"),
                                keys_json.clone(),
                                "entries must all be names of item properties",
                            )),
                        }
                        if !seen.insert(k) {
                            out.push(FieldError::invalid(
                                p.child("x-kubernetes-list-map-keys"),
                                keys_json.clone(),
                                "must not contain duplicate entries",
                            ));
                        }
                    }
                }
            }
        }
    }
    map_list_keys_map_set(s, items, p, out);
}

fn map_list_keys_map_set(
    s: &JSONSchemaProps,
    items: Option<&JSONSchemaProps>,
    p: &Path,
    out: &mut Vec<FieldError>,
) {
    let (Some(is), Some(lt)) = (items, s.x_kubernetes_list_type.as_deref()) else {
        return;
    };
    if lt != "set" && lt != "map" {
        return;
    }
    if is.nullable == Some(true) {
        out.push(FieldError::forbidden(
            p.child("items").child("nullable"),
            format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
        ));
    }
    if lt == "map" {
        let required = is.required.as_deref().unwrap_or(&[]);
        for k in s.x_kubernetes_list_map_keys.iter().flatten() {
            let Some(obj) = is.properties.as_ref().and_then(|m| m.get(k)) else {
                continue;
            };
            let kp = p.child("items").child("properties").key(k);
            if !required.contains(k) && obj.default.is_none() {
                out.push(FieldError::required(
                    kp.child("default"),
                    "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                ));
            }
            if obj.nullable == Some(true) {
                out.push(FieldError::forbidden(
                    kp.child("nullable"),
                    "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                ));
            }
        }
    }
}
