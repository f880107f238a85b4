//! Discovery documents: what kubectl reads to learn which resources exist.
//!
//! Both forms are served: the legacy per-group documents (`APIVersions`, `APIGroupList`,
//! `APIGroup`, `APIResourceList`) and aggregated discovery (`APIGroupDiscoveryList`, v2 and
//! v2beta1), which newer kubectl asks for with an `Accept` header and caches by ETag.

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceDef};

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0],
    })
}

/// `/apis`.
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| api_group(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, if served.
pub fn api_group_doc(registry: &Registry, group: &str) -> Option<Value> {
    let (g, vs) = registry
        .groups()
        .iter()
        .find(|(g, _)| g == group && !g.is_empty())?;
    let mut doc = api_group(g, vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn api_resource(def: &ResourceDef) -> Value {
    let mut r = json!({
        "name": def.plural,
        "singularName": def.singular,
        "namespaced": def.namespaced,
        "kind": def.kind,
        "verbs": def.verbs,
    });
    if !def.short_names.is_empty() {
        r["shortNames"] = json!(def.short_names);
    }
    if !def.categories.is_empty() {
        r["categories"] = json!(def.categories);
    }
    r
}

/// `/api/v1` or `/apis/<group>/<version>`, if served.
pub fn api_resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    if group.is_empty() && version == "v1" {
        // The legacy `bindings` resource: create-only, superseded by `pods/binding`.
        resources.push(json!({"name": "bindings", "singularName": "binding", "namespaced": true, "kind": "Binding", "verbs": ["create"]}));
    }
    for def in registry.resources(group, version) {
        resources.push(api_resource(def));
        for sub in def.subresources.iter() {
            let (g, v, k) = sub.response_kind(def);
            let mut r = json!({
                "name": format!("{}/{}", def.plural, sub.name()),
                "singularName": "",
                "namespaced": def.namespaced,
                "kind": k,
                "verbs": sub.verbs(),
            });
            if !g.is_empty() || *sub != crate::registry::Subresource::Status {
                r["group"] = json!(g);
                r["version"] = json!(v);
            }
            resources.push(r);
        }
    }
    if resources.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}

/// The media type of aggregated discovery for `version` (`v2` or `v2beta1`).
pub fn aggregated_media_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// Which aggregated discovery version an `Accept` header asks for, if any.
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let p = part.replace(' ', "");
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if p.contains("v=v2") {
                return Some("v2");
            }
        }
    }
    None
}

/// Aggregated discovery for `/api` (core only) or `/apis` (every named group).
pub fn aggregated(registry: &Registry, core: bool, version: &str) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = registry
                        .resources(g, v)
                        .map(|d| {
                            let mut r = json!({
                                "resource": d.plural,
                                "responseKind": {"group": d.group, "version": d.version, "kind": d.kind},
                                "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": d.singular,
                                "verbs": d.verbs,
                            });
                            if !d.short_names.is_empty() {
                                r["shortNames"] = json!(d.short_names);
                            }
                            if !d.categories.is_empty() {
                                r["categories"] = json!(d.categories);
                            }
                            if !d.subresources.is_empty() {
                                r["subresources"] = d
                                    .subresources
                                    .iter()
                                    .map(|s| {
                                        let (g, v, k) = s.response_kind(d);
                                        json!({
                                            "subresource": s.name(),
                                            "responseKind": {"group": g, "version": v, "kind": k},
                                            "verbs": s.verbs(),
                                        })
                                    })
                                    .collect();
                            }
                            r
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_and_token_requests_are_create_only() {
        let r = Registry::builtin();
        let authz = api_resource_list(&r, "authorization.k8s.io", "v1").unwrap();
        let names: Vec<&str> = authz["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "localsubjectaccessreviews",
                "selfsubjectaccessreviews",
                "selfsubjectrulesreviews",
                "subjectaccessreviews"
            ]
        );
        for res in authz["resources"].as_array().unwrap() {
            assert_eq!(res["verbs"], serde_json::json!(["create"]), "{res}");
        }
        let core = api_resource_list(&r, "", "v1").unwrap();
        let token = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "serviceaccounts/token")
            .expect("serviceaccounts/token is listed");
        assert_eq!(token["kind"], "TokenRequest");
        assert_eq!(token["group"], "authentication.k8s.io");
        assert_eq!(token["verbs"], serde_json::json!(["create"]));
        let authn = api_resource_list(&r, "authentication.k8s.io", "v1").unwrap();
        assert_eq!(authn["resources"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn documents_list_every_resource() {
        let r = Registry::builtin();
        let core = api_resource_list(&r, "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for n in [
            "pods",
            "pods/status",
            "pods/binding",
            "namespaces",
            "services",
            "bindings",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        let apis = api_group_list(&r);
        assert!(
            apis["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "apps")
        );
        let agg = aggregated(&r, false, "v2");
        let apps = agg["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .unwrap();
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deploy["scope"], "Namespaced");
        assert_eq!(deploy["shortNames"][0], "deploy");
        assert_eq!(
            wants_aggregated(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2")
        );
        assert_eq!(wants_aggregated("application/json"), None);
    }
}
