//! The Gateway API CRDs and their safe-upgrades admission policy: every rule compiles, and
//! representative rules accept valid objects and reject invalid ones with upstream's messages.

use cel_rules::{Outcome, Program, Validator};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use objects::field::Path;
use serde_json::{Value, json};

const DIR: &str = "/work/shared/data/crds/gateway-api";

fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{DIR}/{file}")).expect("read CRD file");
    text.split("\n---")
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|d| serde_saphyr::from_str::<Value>(d).expect("YAML"))
        .collect()
}

fn crds() -> Vec<CustomResourceDefinition> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(DIR).expect("gateway-api CRDs") {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".yaml") || name.contains("vap_") {
            continue;
        }
        for doc in documents(&name) {
            if doc["kind"] == "CustomResourceDefinition" {
                out.push(serde_json::from_value(doc).expect("a CRD"));
            }
        }
    }
    out
}

fn count_rules(v: &Value) -> usize {
    match v {
        Value::Object(m) => {
            let own = m
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            own + m.values().map(count_rules).sum::<usize>()
        }
        Value::Array(a) => a.iter().map(count_rules).sum(),
        _ => 0,
    }
}

fn validator(kind: &str, version: &str) -> Validator {
    let crd = crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .expect("CRD");
    let (i, v) = crd
        .spec
        .versions
        .iter()
        .enumerate()
        .find(|(_, v)| v.name == version)
        .expect("version");
    let schema = v
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    let base = Path::new("spec")
        .child("versions")
        .index(i)
        .child("schema")
        .child("openAPIV3Schema");
    Validator::new(schema, &base).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn every_rule_of_every_version_compiles() {
    let mut rules = 0;
    for crd in crds() {
        for (i, v) in crd.spec.versions.iter().enumerate() {
            let schema = v
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap();
            rules += count_rules(&serde_json::to_value(schema).unwrap());
            let base = Path::new("spec")
                .child("versions")
                .index(i)
                .child("schema")
                .child("openAPIV3Schema");
            if let Err(errs) = Validator::new(schema, &base) {
                let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
                panic!("{} {}: {}", crd.spec.names.kind, v.name, text.join("\n"));
            }
        }
    }
    assert!(rules >= 250, "only {rules} rules found");
}

fn route(spec: Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "default", "labels": {"a": "b"}},
        "spec": spec,
    })
}

fn messages(v: &Validator, obj: &Value, old: Option<&Value>) -> Vec<String> {
    v.validate(obj, old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn httproute_rules_accept_valid_and_reject_invalid() {
    let v = validator("HTTPRoute", "v1");
    // Objects as validation sees them: after defaulting (group, kind, weight).
    let parent = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    let valid = route(json!({
        "parentRefs": [parent],
        "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
            "backendRefs": [{"group": "", "kind": "Service", "name": "svc", "port": 80, "weight": 1}],
        }],
    }));
    assert_eq!(messages(&v, &valid, None), Vec::<String>::new());

    // Two references to the same parent need sectionName.
    let dup = route(json!({
        "parentRefs": [parent, parent],
    }));
    assert_eq!(
        messages(&v, &dup, None),
        [
            "spec.parentRefs: Invalid value: \"array\": sectionName must be unique when parentRefs includes 2 or more references to the same parent"
        ]
    );
    let mut with_section = parent.clone();
    with_section["sectionName"] = json!("https");
    let mixed = route(json!({"parentRefs": [parent, with_section]}));
    assert_eq!(
        messages(&v, &mixed, None),
        [
            "spec.parentRefs: Invalid value: \"array\": sectionName must be specified when parentRefs includes 2 or more references to the same parent"
        ]
    );

    // A path value must start with '/'.
    let bad_path = route(json!({
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "api"}}]}],
    }));
    let got = messages(&v, &bad_path, None);
    assert!(
        got.contains(&"spec.rules[0].matches[0].path: Invalid value: \"object\": value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']".to_owned()),
        "{got:?}"
    );

    // A Service backend needs a port.
    let no_port = route(json!({
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [{"group": "", "kind": "Service", "name": "svc", "weight": 1}]}],
    }));
    assert_eq!(
        messages(&v, &no_port, None),
        [
            "spec.rules[0].backendRefs[0]: Invalid value: \"object\": Must have port for Service reference"
        ]
    );
}

#[test]
fn gateway_rules_use_escaped_and_root_fields() {
    let v = validator("Gateway", "v1");
    let gw = |listeners: Value| {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "g"},
            "spec": {"gatewayClassName": "c", "listeners": listeners},
        })
    };
    let ok = gw(json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    assert_eq!(messages(&v, &ok, None), Vec::<String>::new());
    let dup = gw(json!([
        {"name": "a", "port": 80, "protocol": "HTTP"},
        {"name": "b", "port": 80, "protocol": "HTTP"},
    ]));
    let got = messages(&v, &dup, None);
    assert!(
        got.iter().any(|m| m.starts_with("spec.listeners: Invalid value: \"array\": Combination of port, protocol and hostname must be unique for each listener")),
        "{got:?}"
    );
    let http_with_tls = gw(
        json!([{"name": "h", "port": 80, "protocol": "HTTP", "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": "c"}]}}]),
    );
    assert_eq!(
        messages(&v, &http_with_tls, None),
        [
            "spec.listeners: Invalid value: \"array\": tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"
        ]
    );
}

fn policy_programs() -> Vec<(Program, String)> {
    let docs = documents("gateway.networking.k8s.io_vap_safeupgrades.yaml");
    let policy = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .expect("policy");
    let vars = [
        "object",
        "oldObject",
        "request",
        "params",
        "namespaceObject",
        "variables",
    ];
    policy["spec"]["validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let expr = v["expression"].as_str().unwrap();
            let program = Program::compile(expr, &vars).unwrap_or_else(|e| panic!("{expr}: {e}"));
            (program, v["message"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn crd_object(channel: &str, version: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "httproutes.gateway.networking.k8s.io", "annotations": {
            "gateway.networking.k8s.io/channel": channel,
            "gateway.networking.k8s.io/bundle-version": version,
        }},
        "spec": {"group": "gateway.networking.k8s.io"},
    })
}

#[test]
fn safe_upgrades_policy_evaluates() {
    let programs = policy_programs();
    assert_eq!(programs.len(), 2);
    let eval = |p: &Program, obj: &Value, old: &Value| {
        p.eval(&[("object", obj), ("oldObject", old)]).unwrap()
    };
    let null = Value::Null;
    let standard = crd_object("standard", "v1.5.0");
    let experimental = crd_object("experimental", "v1.5.0");
    // Creating anything passes the channel check; experimental over standard does not.
    assert_eq!(
        eval(&programs[0].0, &experimental, &null),
        Outcome::Bool(true)
    );
    assert_eq!(
        eval(&programs[0].0, &experimental, &standard),
        Outcome::Bool(false)
    );
    assert_eq!(
        eval(&programs[0].0, &standard, &experimental),
        Outcome::Bool(true)
    );
    // Versions before v1.5.0 are refused.
    assert_eq!(eval(&programs[1].0, &standard, &null), Outcome::Bool(true));
    let old_version = crd_object("standard", "v1.2.1");
    assert_eq!(
        eval(&programs[1].0, &old_version, &null),
        Outcome::Bool(false)
    );
    let other_group = json!({"spec": {"group": "example.com"}, "metadata": {}});
    assert_eq!(
        eval(&programs[1].0, &other_group, &null),
        Outcome::Bool(true)
    );
}

/// Misspells the first field `rule` selects on `self`: `self.port` becomes `self.portZz`.
fn misspell(rule: &str) -> Option<String> {
    let at = rule.find("self.")? + "self.".len();
    let len = rule[at..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rule.len() - at);
    (len > 0).then(|| format!("{}Zz{}", &rule[..at + len], &rule[at + len..]))
}

/// Misspells every rule of `v` that selects a field of `self`, returning how many it changed.
fn misspell_all(v: &mut Value) -> usize {
    match v {
        Value::Object(m) => {
            let mut n = 0;
            if let Some(Value::Array(rules)) = m.get_mut("x-kubernetes-validations") {
                for r in rules {
                    if let Some(bad) = r["rule"].as_str().and_then(misspell) {
                        r["rule"] = Value::String(bad);
                        n += 1;
                    }
                }
            }
            n + m
                .iter_mut()
                .filter(|(k, _)| *k != "x-kubernetes-validations")
                .map(|(_, v)| misspell_all(v))
                .sum::<usize>()
        }
        Value::Array(a) => a.iter_mut().map(misspell_all).sum(),
        _ => 0,
    }
}

/// The guard above is only worth something if the schema check sees the Gateway API's types:
/// misspelling the field each rule reads off `self` must make every such rule fail to compile.
#[test]
fn every_rule_is_type_checked_against_its_schema() {
    let (mut misspelt, mut refused) = (0, 0);
    for crd in crds() {
        for v in &crd.spec.versions {
            let schema = v
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap();
            let mut value = serde_json::to_value(schema).unwrap();
            let n = misspell_all(&mut value);
            misspelt += n;
            let schema = serde_json::from_value(value).unwrap();
            let errs = match Validator::new(&schema, &Path::new("openAPIV3Schema")) {
                Ok(_) => Vec::new(),
                Err(errs) => errs,
            };
            let undefined: Vec<String> = errs
                .iter()
                .map(ToString::to_string)
                .filter(|e| e.contains("compilation failed: ERROR: <input>:") && e.contains("Zz'"))
                .collect();
            assert_eq!(
                undefined.len(),
                n,
                "{} {}: {}",
                crd.spec.names.kind,
                v.name,
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            refused += undefined.len();
        }
    }
    assert!(misspelt >= 200, "only {misspelt} rules misspelt");
    assert_eq!(refused, misspelt);
}
