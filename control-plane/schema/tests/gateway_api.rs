//! The Gateway API CRDs (multi-version, large, with list maps, defaults and CEL rules) must be
//! accepted, and must validate, prune and default Gateways and HTTPRoutes as upstream does.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use objects::field::{Path, aggregate_message};
use schema::Structural;
use serde_json::json;

fn load(file: &str) -> Vec<(String, Structural)> {
    let path = format!("/work/shared/data/crds/gateway-api/gateway.networking.k8s.io_{file}.yaml");
    let text = std::fs::read_to_string(&path).expect("CRD file");
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).expect("CRD YAML");
    crd.spec
        .versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let props = v
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("schema");
            let base = Path::new("spec")
                .child("versions")
                .index(i)
                .child("schema")
                .child("openAPIV3Schema");
            let s = Structural::new_at(props, &base)
                .unwrap_or_else(|e| panic!("{file} {} refused: {}", v.name, aggregate_message(&e)));
            (v.name.clone(), s)
        })
        .collect()
}

#[test]
fn gateway_versions_are_structural_and_validate() {
    let versions = load("gateways");
    assert!(versions.len() >= 2);
    for (version, s) in &versions {
        let mut ok = json!({
            "apiVersion": format!("gateway.networking.k8s.io/{version}"),
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "default"},
            "spec": {
                "gatewayClassName": "example",
                "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
            },
        });
        assert!(s.prune(&mut ok).is_empty(), "{version}");
        s.default(&mut ok);
        assert_eq!(
            ok["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["from"], "Same",
            "{version}: defaults applied"
        );
        let errs = s.validate(&ok);
        assert!(errs.is_empty(), "{version}: {}", aggregate_message(&errs));

        let mut bad = json!({
            "apiVersion": format!("gateway.networking.k8s.io/{version}"),
            "kind": "Gateway",
            "metadata": {"name": "gw"},
            "spec": {
                "listeners": [{"name": "http", "protocol": "HTTP", "port": "eighty",
                               "allowedRoutes": {"namespaces": {"from": "Everywhere"}}}],
                "bogus": true,
            },
        });
        assert_eq!(s.prune(&mut bad), vec!["spec.bogus"]);
        s.default(&mut bad);
        let got: Vec<String> = s.validate(&bad).iter().map(ToString::to_string).collect();
        for want in [
            "spec.gatewayClassName: Required value",
            "spec.listeners[0].port: Invalid value: \"string\": spec.listeners[0].port in body must be of type integer: \"string\"",
            "spec.listeners[0].allowedRoutes.namespaces.from: Unsupported value: \"Everywhere\": supported values: \"All\", \"Selector\", \"Same\"",
        ] {
            assert!(
                got.iter().any(|g| g == want),
                "{version}: missing {want:?} in {got:#?}"
            );
        }
        let dup = json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw"},
            "spec": {"gatewayClassName": "c", "listeners": [
                {"name": "a", "protocol": "HTTP", "port": 80},
                {"name": "a", "protocol": "HTTP", "port": 81},
            ]},
        });
        let got: Vec<String> = s.validate(&dup).iter().map(ToString::to_string).collect();
        assert!(
            got.contains(&"spec.listeners[1]: Duplicate value: {\"name\":\"a\"}".to_owned()),
            "{version}: {got:#?}"
        );
        let v3 = s.openapi_v3();
        assert!(
            v3["properties"]["spec"]["properties"]["listeners"]["x-kubernetes-list-type"] == "map"
        );
    }
}

#[test]
fn httproute_matches_default() {
    for (version, s) in load("httproutes") {
        let mut route = json!({
            "apiVersion": format!("gateway.networking.k8s.io/{version}"),
            "kind": "HTTPRoute",
            "metadata": {"name": "r"},
            "spec": {"rules": [{"backendRefs": [{"name": "svc", "port": 8080}]}]},
        });
        assert!(s.prune(&mut route).is_empty());
        s.default(&mut route);
        assert_eq!(
            route["spec"]["rules"][0]["matches"],
            json!([{"path": {"type": "PathPrefix", "value": "/"}}]),
            "{version}"
        );
        let errs = s.validate(&route);
        assert!(errs.is_empty(), "{version}: {}", aggregate_message(&errs));
    }
}
