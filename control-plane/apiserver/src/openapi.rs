//! OpenAPI documents generated from the types of the served kinds.
//!
//! `/openapi/v3` lists one document per group version; each carries the schemas
//! (`components.schemas`, named like `io.k8s.api.core.v1.Pod` and tagged with
//! `x-kubernetes-group-version-kind`, which `kubectl explain` looks for) and the paths with their
//! operations and parameters (kubectl checks there that the server takes `fieldValidation`, and
//! then leaves validation to the server). `/openapi/v2` is the same in Swagger 2.0 form. Schemas
//! come from k8s-openapi's `schemars` implementations; nothing is vendored from upstream.

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
        for def in defs {
            if let Some(name) = with_type(def.group, def.kind, AddSchema(&mut generator)) {
                for (p, item) in paths_for(def, &name, true) {
                    paths.insert(p, item);
                }
                kinds.push((name, *def));
            }
        }
        let mut schemas = generator.take_definitions(true);
        tag_kinds(&mut schemas, &kinds);
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
    for def in registry.all() {
        if let Some(name) = with_type(def.group, def.kind, AddSchema(&mut generator)) {
            for (p, item) in paths_for(def, &name, false) {
                paths.insert(p, item);
            }
            kinds.push((name, def));
        }
    }
    let mut definitions = generator.take_definitions(true);
    tag_kinds(&mut definitions, &kinds);
    let v2 = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::VersionInfo::current_git_version()},
        "paths": paths,
        "definitions": definitions,
    })
    .to_string();
    OpenApi {
        v3_index: json!({"paths": index}),
        v3,
        v2,
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
}
