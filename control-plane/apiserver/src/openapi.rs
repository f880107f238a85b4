//! OpenAPI documents generated from the types of the served kinds.
//!
//! `/openapi/v3` lists one document per group version; each carries the schemas
//! (`components.schemas`, named like `io.k8s.api.core.v1.Pod` and tagged with
//! `x-kubernetes-group-version-kind`, which `kubectl explain` looks for) and the paths with their
//! operations and parameters (kubectl checks there that the server takes `fieldValidation`, and
//! then leaves validation to the server). `/openapi/v2` is the same in Swagger 2.0 form. Schemas
//! come from k8s-openapi's `schemars` implementations; nothing is vendored from upstream.
//! Fields with a strategic merge patch strategy carry `x-kubernetes-patch-strategy` and
//! `x-kubernetes-patch-merge-key` from the table in `objects::patch::meta` (kubectl's client-side
//! `apply` and `diff` compute patches with them). `/openapi/v2` is also served in gnostic's
//! protobuf form (see [`gnostic`]), which kubectl 1.27 and older read.

mod gnostic;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::kinds::{KindVisitor, with_type};
use crate::registry::{Registry, ResourceDef};

/// The generated documents.
pub(crate) struct OpenApi {
    /// `/openapi/v3`'s index.
    pub(crate) v3_index: Value,
    /// Per group version (`api/v1`, `apis/apps/v1`): its hash and its document.
    pub(crate) v3: BTreeMap<String, (String, String)>,
    /// `/openapi/v2`.
    pub(crate) v2: String,
    /// `/openapi/v2` as gnostic's protobuf `openapi.v2.Document`.
    pub(crate) v2_proto: bytes::Bytes,
}

/// The media types of `/openapi/v2` in protobuf that a client may ask for: the one client-go
/// sends, and the spelling without `@`.
const V2_PROTO_MEDIA_TYPES: [&str; 2] = [
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    V2_PROTO_CONTENT_TYPE,
];

/// The `Content-Type` of `/openapi/v2` in protobuf, whichever spelling was asked for: `@` may not
/// appear in a media type, and client-go (Go's `mime.ParseMediaType`) fails the request on a
/// response labelled with it. kube-apiserver answers with this spelling too.
pub(crate) const V2_PROTO_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Which form of `/openapi/v2` a request gets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum V2Form {
    Json,
    /// Protobuf (labelled [`V2_PROTO_CONTENT_TYPE`]).
    Proto,
}

/// The form of `/openapi/v2` that `accept` asks for first (`None`: neither form is acceptable).
/// Like client-go, clients list what they prefer first; quality values are not weighed.
pub(crate) fn v2_media_type(accept: &str) -> Option<V2Form> {
    if accept.trim().is_empty() {
        return Some(V2Form::Json);
    }
    accept.split(',').find_map(|clause| {
        let media_type = clause.split(';').next().unwrap_or_default().trim();
        if V2_PROTO_MEDIA_TYPES
            .iter()
            .any(|t| t.eq_ignore_ascii_case(media_type))
        {
            Some(V2Form::Proto)
        } else if media_type.contains("json") || matches!(media_type, "*/*" | "application/*") {
            Some(V2Form::Json)
        } else {
            None
        }
    })
}

struct AddSchema<'a>(&'a mut schemars::SchemaGenerator);

impl KindVisitor for AddSchema<'_> {
    type Output = String;

    fn visit<
        T: k8s_openapi::Resource + schemars::JsonSchema + DeserializeOwned + Serialize + 'static,
    >(
        self,
    ) -> String {
        self.0.subschema_for::<T>();
        T::schema_name().into_owned()
    }
}

/// The schema name of a custom kind, as upstream names it: the group reversed, then version
/// and kind (`io.k8s.networking.gateway.v1.Gateway`).
fn custom_schema_name(def: &ResourceDef) -> String {
    let reversed: Vec<&str> = def.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), def.version, def.kind)
}

/// The published schema of a custom kind: the CRD's schema with `apiVersion`, `kind` and
/// `metadata` (a reference to `ObjectMeta`) described as upstream's OpenAPI builder does.
fn custom_schema(
    generator: &mut schemars::SchemaGenerator,
    def: &ResourceDef,
    v3: bool,
) -> Option<(String, Value)> {
    let custom = def.custom.as_ref()?;
    let meta_ref = generator
        .subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>()
        .to_value();
    let mut schema = custom
        .validator
        .as_ref()
        .map(|v| v.published(v3))
        .filter(Value::is_object)
        .or_else(|| custom.schema.clone())
        .unwrap_or_else(|| json!({"type": "object"}));
    if !schema.is_object() {
        schema = json!({"type": "object"});
    }
    let props = schema
        .as_object_mut()
        .expect("an object")
        .entry("properties")
        .or_insert_with(|| json!({}));
    if let Some(props) = props.as_object_mut() {
        props.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}));
        props.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}));
        let mut metadata = meta_ref;
        if let Some(m) = metadata.as_object_mut() {
            m.insert("description".into(), json!("Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"));
        }
        props.insert("metadata".into(), metadata);
    }
    Some((custom_schema_name(def), schema))
}

fn gv_path(def: &ResourceDef) -> String {
    if def.group.is_empty() {
        format!("api/{}", def.version)
    } else {
        format!("apis/{}/{}", def.group, def.version)
    }
}

fn param(name: &str, location: &str, v3: bool) -> Value {
    let mut p = json!({"name": name, "in": location, "uniqueItems": true});
    if location == "path" {
        p["required"] = json!(true);
    }
    if v3 {
        p["schema"] = json!({"type": "string", "uniqueItems": true});
    } else {
        p["type"] = json!("string");
    }
    p
}

fn operation(def: &ResourceDef, action: &str, op_id: String, schema_ref: &str, v3: bool) -> Value {
    let mut params = Vec::new();
    if matches!(action, "post" | "put" | "patch") {
        for p in ["dryRun", "fieldManager", "fieldValidation"] {
            params.push(param(p, "query", v3));
        }
    }
    if action == "patch" {
        params.push(param("force", "query", v3));
    }
    if matches!(action, "list" | "deletecollection") {
        for p in [
            "labelSelector",
            "fieldSelector",
            "limit",
            "continue",
            "resourceVersion",
            "resourceVersionMatch",
            "timeoutSeconds",
            "watch",
            "allowWatchBookmarks",
            "sendInitialEvents",
        ] {
            params.push(param(p, "query", v3));
        }
    }
    let response = if v3 {
        json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}})
    } else {
        json!({"200": {"description": "OK", "schema": {"$ref": schema_ref}}})
    };
    json!({
        "operationId": op_id,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": def.group, "version": def.version, "kind": def.kind},
        "parameters": params,
        "responses": response,
    })
}

fn paths_for(def: &ResourceDef, schema_name: &str, v3: bool) -> Vec<(String, Value)> {
    let base = format!("/{}", gv_path(def));
    let refs = if v3 {
        format!("#/components/schemas/{schema_name}")
    } else {
        format!("#/definitions/{schema_name}")
    };
    let id = format!("{}{}", def.kind, def.version);
    let mut collection = format!("{base}/{}", def.plural);
    let mut item = format!("{base}/{}/{{name}}", def.plural);
    let mut path_params = vec![param("pretty", "query", v3)];
    if def.namespaced {
        collection = format!("{base}/namespaces/{{namespace}}/{}", def.plural);
        item = format!("{base}/namespaces/{{namespace}}/{}/{{name}}", def.plural);
        path_params.push(param("namespace", "path", v3));
    }
    let mut out = Vec::new();
    out.push((
        collection,
        json!({
            "get": operation(def, "list", format!("list{id}"), &refs, v3),
            "post": operation(def, "post", format!("create{id}"), &refs, v3),
            "delete": operation(def, "deletecollection", format!("deleteCollection{id}"), &refs, v3),
            "parameters": path_params,
        }),
    ));
    let mut item_params = path_params.clone();
    item_params.push(param("name", "path", v3));
    out.push((
        item,
        json!({
            "get": operation(def, "get", format!("read{id}"), &refs, v3),
            "put": operation(def, "put", format!("replace{id}"), &refs, v3),
            "patch": operation(def, "patch", format!("patch{id}"), &refs, v3),
            "delete": operation(def, "delete", format!("delete{id}"), &refs, v3),
            "parameters": item_params,
        }),
    ));
    if def.namespaced {
        out.push((
            format!("{base}/{}", def.plural),
            json!({"get": operation(def, "list", format!("list{id}ForAllNamespaces"), &refs, v3), "parameters": [param("pretty", "query", v3)]}),
        ));
    }
    out
}

fn tag_kinds(defs: &mut serde_json::Map<String, Value>, kinds: &[(String, &ResourceDef)]) {
    for (name, def) in kinds {
        if let Some(schema) = defs.get_mut(name).and_then(Value::as_object_mut) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": def.group, "version": def.version, "kind": def.kind}]),
            );
        }
    }
}

/// The name of `definition` (`io.k8s.api.core.v1.PodSpec`) in the patch metadata table
/// (`core/v1.PodSpec`).
fn patch_meta_type(definition: &str) -> Option<String> {
    let rest = definition
        .strip_prefix("io.k8s.api.")
        .or_else(|| definition.strip_prefix("io.k8s.apimachinery.pkg.apis."))?;
    let (group_version, ty) = rest.rsplit_once('.')?;
    let (group, version) = group_version.rsplit_once('.')?;
    Some(format!("{group}/{version}.{ty}"))
}

/// Marks the fields that have a strategic merge patch strategy the way upstream's OpenAPI does.
fn tag_patch_strategies(defs: &mut serde_json::Map<String, Value>) {
    use objects::patch::meta::{self, Strategy};
    for (name, schema) in defs.iter_mut() {
        let Some(ty) = patch_meta_type(name) else {
            continue;
        };
        for field in meta::fields(&ty) {
            let strategy = match (field.strategy, field.retain_keys) {
                (Strategy::Merge(_), true) => "merge,retainKeys",
                (Strategy::Merge(_), false) => "merge",
                (Strategy::Replace, _) => "replace",
                (Strategy::Default, true) => "retainKeys",
                (Strategy::Default, false) => continue,
            };
            let Some(property) = schema
                .pointer_mut(&format!("/properties/{}", field.name))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
            if let Some(key) = field.merge_key() {
                property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            }
        }
    }
}

/// Swagger 2.0 has no `allOf` around a lone `$ref` to give it a description: upstream writes
/// `{"$ref": ..., "description": ...}`, and kubectl's OpenAPI v2 reader takes a schema with
/// neither `$ref`, `type` nor `properties` for an arbitrary value (so `explain` and validation
/// would not see below it). This rewrites schemars' draft-07 form into upstream's.
fn fold_lone_all_of(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(all_of)) = object.get("allOf")
        && let [only] = all_of.as_slice()
        && let Some(Value::String(target)) = only.get("$ref")
        && only.as_object().is_some_and(|o| o.len() == 1)
    {
        let target = target.clone();
        object.remove("allOf");
        object.insert("$ref".into(), Value::String(target));
    }
    for value in object.values_mut() {
        match value {
            Value::Object(_) => fold_lone_all_of(value),
            Value::Array(items) => items.iter_mut().for_each(fold_lone_all_of),
            _ => {}
        }
    }
}

fn hash_of(text: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    format!("{:016X}", h.finish())
}

/// Builds every document for `registry`.
pub(crate) fn build(registry: &Registry) -> OpenApi {
    let mut by_gv: BTreeMap<String, Vec<&ResourceDef>> = BTreeMap::new();
    for def in registry.all() {
        by_gv.entry(gv_path(def)).or_default().push(def);
    }
    let mut v3 = BTreeMap::new();
    let mut index = serde_json::Map::new();
    for (gv, defs) in &by_gv {
        let mut generator = SchemaSettings::openapi3().into_generator();
        let mut kinds = Vec::new();
        let mut paths = serde_json::Map::new();
        let mut custom = Vec::new();
        for def in defs {
            let name = if def.is_custom() {
                custom_schema(&mut generator, def, true).map(|(name, schema)| {
                    custom.push((name.clone(), schema));
                    name
                })
            } else {
                with_type(&def.group, &def.kind, AddSchema(&mut generator))
            };
            if let Some(name) = name {
                for (p, item) in paths_for(def, &name, true) {
                    paths.insert(p, item);
                }
                kinds.push((name, *def));
            }
        }
        let mut schemas = generator.take_definitions(true);
        schemas.extend(custom);
        tag_kinds(&mut schemas, &kinds);
        tag_patch_strategies(&mut schemas);
        let doc = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": crate::VersionInfo::current_git_version()},
            "paths": paths,
            "components": {"schemas": schemas},
        });
        let text = doc.to_string();
        let hash = hash_of(&text);
        index.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={hash}")}),
        );
        v3.insert(gv.clone(), (hash, text));
    }

    let mut generator = SchemaSettings::draft07()
        .with(|s| s.definitions_path = "/definitions".into())
        .into_generator();
    let mut kinds = Vec::new();
    let mut paths = serde_json::Map::new();
    let mut custom = Vec::new();
    for def in registry.all() {
        let name = if def.is_custom() {
            custom_schema(&mut generator, def, false).map(|(name, schema)| {
                custom.push((name.clone(), schema));
                name
            })
        } else {
            with_type(&def.group, &def.kind, AddSchema(&mut generator))
        };
        if let Some(name) = name {
            for (p, item) in paths_for(def, &name, false) {
                paths.insert(p, item);
            }
            kinds.push((name, def));
        }
    }
    let mut definitions = generator.take_definitions(true);
    definitions.extend(custom);
    tag_kinds(&mut definitions, &kinds);
    tag_patch_strategies(&mut definitions);
    let mut v2 = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::VersionInfo::current_git_version()},
        "paths": paths,
        "definitions": definitions,
    });
    fold_lone_all_of(&mut v2["definitions"]);
    OpenApi {
        v3_index: json!({"paths": index}),
        v3,
        v2_proto: gnostic::encode(&v2).into(),
        v2: v2.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_carry_schemas_kinds_and_field_validation() {
        let api = build(&Registry::builtin());
        let (_, apps) = &api.v3["apis/apps/v1"];
        let doc: Value = serde_json::from_str(apps).unwrap();
        let deploy = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deploy["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        assert!(deploy["properties"]["spec"].is_object());
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(
            api.v3_index["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        let v2: Value = serde_json::from_str(&api.v2).unwrap();
        assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    }

    fn decoded() -> gnostic::Document {
        let api = build(&Registry::builtin());
        prost::Message::decode(api.v2_proto.clone()).unwrap()
    }

    fn definition<'a>(doc: &'a gnostic::Document, name: &str) -> &'a gnostic::Schema {
        doc.definitions
            .as_ref()
            .unwrap()
            .additional_properties
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.value.as_ref())
            .unwrap_or_else(|| panic!("{name} is not defined"))
    }

    fn property<'a>(schema: &'a gnostic::Schema, name: &str) -> &'a gnostic::Schema {
        schema
            .properties
            .as_ref()
            .unwrap()
            .additional_properties
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.as_ref())
            .unwrap_or_else(|| panic!("no property {name}"))
    }

    /// The vendor extension `name`, read back from its YAML as kubectl reads it.
    fn extension(extensions: &[gnostic::NamedAny], name: &str) -> Option<Value> {
        let found = extensions.iter().find(|e| e.name == name)?;
        Some(serde_saphyr::from_str(&found.value.as_ref()?.yaml).unwrap())
    }

    #[test]
    fn v2_protobuf_carries_definitions_kinds_patch_strategies_and_paths() {
        let doc = decoded();
        assert_eq!(doc.swagger, "2.0");
        assert_eq!(doc.info.as_ref().unwrap().title, "Kubernetes");

        let deploy = definition(&doc, "io.k8s.api.apps.v1.Deployment");
        assert_eq!(
            extension(&deploy.vendor_extension, "x-kubernetes-group-version-kind"),
            Some(json!([{"group": "apps", "kind": "Deployment", "version": "v1"}]))
        );
        assert_eq!(deploy.r#type.as_ref().unwrap().value, ["object"]);
        // A described reference is a plain `$ref`, as upstream writes it in Swagger 2.0.
        let spec = property(deploy, "spec");
        assert_eq!(
            spec.r#ref,
            "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
        );
        assert!(!spec.description.is_empty() && spec.all_of.is_empty());

        let pod_spec = definition(&doc, "io.k8s.api.core.v1.PodSpec");
        let containers = property(pod_spec, "containers");
        assert_eq!(containers.r#type.as_ref().unwrap().value, ["array"]);
        assert_eq!(
            containers.items.as_ref().unwrap().schema[0].r#ref,
            "#/definitions/io.k8s.api.core.v1.Container"
        );
        assert_eq!(
            extension(&containers.vendor_extension, "x-kubernetes-patch-strategy"),
            Some(json!("merge"))
        );
        assert_eq!(
            extension(&containers.vendor_extension, "x-kubernetes-patch-merge-key"),
            Some(json!("name"))
        );
        assert_eq!(
            extension(
                &property(pod_spec, "volumes").vendor_extension,
                "x-kubernetes-patch-strategy"
            ),
            Some(json!("merge,retainKeys"))
        );
        let labels = property(
            definition(&doc, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            "labels",
        );
        assert!(matches!(
            labels.additional_properties.as_deref(),
            Some(gnostic::AdditionalPropertiesItem {
                oneof: Some(gnostic::additional_properties_item::Oneof::Schema(s))
            }) if s.r#type.as_ref().unwrap().value == ["string"]
        ));

        let paths = &doc.paths.as_ref().unwrap().path;
        let item = paths
            .iter()
            .find(|p| p.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
            .and_then(|p| p.value.as_ref())
            .unwrap();
        let patch = item.patch.as_ref().unwrap();
        assert_eq!(patch.operation_id, "patchDeploymentv1");
        assert_eq!(
            extension(&patch.vendor_extension, "x-kubernetes-group-version-kind"),
            Some(json!({"group": "apps", "kind": "Deployment", "version": "v1"}))
        );
        let query_names: Vec<&str> = patch
            .parameters
            .iter()
            .filter_map(|p| match &p.oneof {
                Some(gnostic::parameters_item::Oneof::Parameter(gnostic::Parameter {
                    oneof: Some(gnostic::parameter::Oneof::NonBodyParameter(n)),
                })) => match &n.oneof {
                    Some(gnostic::non_body_parameter::Oneof::Query(q)) => Some(q.name.as_str()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert!(query_names.contains(&"fieldValidation"), "{query_names:?}");
        assert!(item.parameters.iter().any(|p| matches!(
            &p.oneof,
            Some(gnostic::parameters_item::Oneof::Parameter(gnostic::Parameter {
                oneof: Some(gnostic::parameter::Oneof::NonBodyParameter(gnostic::NonBodyParameter {
                    oneof: Some(gnostic::non_body_parameter::Oneof::Path(p)),
                })),
            })) if p.name == "namespace" && p.required
        )));
        let ok = &patch.responses.as_ref().unwrap().response_code[0];
        assert_eq!(ok.name, "200");
    }

    /// kubectl (`k8s.io/kube-openapi/pkg/util/proto`) refuses the whole document when one schema
    /// breaks its rules, and then cannot validate, explain or apply: every definition must
    /// parse under them.
    #[test]
    fn every_v2_schema_parses_as_kubectl_parses_it() {
        fn check(s: &gnostic::Schema, names: &[&str], path: &str) -> Result<(), String> {
            let types: Vec<&str> = s
                .r#type
                .iter()
                .flat_map(|t| t.value.iter().map(String::as_str))
                .collect();
            let props = s.properties.as_ref();
            if !s.r#ref.is_empty() {
                let target = s
                    .r#ref
                    .strip_prefix("#/definitions/")
                    .ok_or(format!("{path}: reference outside definitions"))?;
                if !names.contains(&target) {
                    return Err(format!("{path}: unknown model {target}"));
                }
                if props.is_some_and(|p| !p.additional_properties.is_empty()) || !types.is_empty() {
                    return Err(format!("{path}: reference with a type or properties"));
                }
                return Ok(());
            }
            match types.as_slice() {
                [] | ["object"] => {
                    if let Some(props) = props {
                        for p in &props.additional_properties {
                            let sub = p.value.as_ref().ok_or(format!("{path}: empty property"))?;
                            check(sub, names, &format!("{path}.{}", p.name))?;
                        }
                    } else if let Some(gnostic::AdditionalPropertiesItem {
                        oneof: Some(gnostic::additional_properties_item::Oneof::Schema(sub)),
                    }) = s.additional_properties.as_deref()
                    {
                        check(sub, names, &format!("{path}.*"))?;
                    }
                }
                ["array"] => match s.items.as_ref().map(|i| i.schema.as_slice()) {
                    Some([item]) => check(item, names, &format!("{path}[]"))?,
                    _ => return Err(format!("{path}: array without exactly one item schema")),
                },
                [t] if ["string", "number", "integer", "boolean"].contains(t) => {}
                other => return Err(format!("{path}: unsupported type {other:?}")),
            }
            Ok(())
        }
        let doc = decoded();
        let defs = &doc.definitions.as_ref().unwrap().additional_properties;
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        for d in defs {
            check(d.value.as_ref().unwrap(), &names, &d.name).unwrap();
        }
    }

    #[test]
    fn v2_form_follows_accept() {
        let proto = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        let dotted = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
        for (accept, form) in [
            ("", Some(V2Form::Json)),
            ("application/json", Some(V2Form::Json)),
            ("*/*", Some(V2Form::Json)),
            (proto, Some(V2Form::Proto)),
            (dotted, Some(V2Form::Proto)),
            (
                "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json",
                Some(V2Form::Proto),
            ),
            (
                "application/json, application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                Some(V2Form::Json),
            ),
            ("text/plain", None),
        ] {
            assert_eq!(v2_media_type(accept), form, "{accept}");
        }
    }
}
