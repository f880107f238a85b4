use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::{Value, json};

use super::*;

fn props(v: Value) -> JSONSchemaProps {
    serde_json::from_value(v).expect("schema JSON")
}

fn base() -> Path {
    Path::new("spec")
        .child("versions")
        .index(0)
        .child("schema")
        .child("openAPIV3Schema")
}

fn schema(v: Value) -> Structural {
    match Structural::new_at(&props(v), &base()) {
        Ok(s) => s,
        Err(e) => panic!("schema refused: {}", objects::field::aggregate_message(&e)),
    }
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

#[test]
fn structural_checks_report_upstream_messages() {
    let p = "spec.versions[0].schema.openAPIV3Schema";
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "missing type on a field",
            json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}),
            vec![format!(
                "{p}.properties[spec].type: Required value: must not be empty for specified object fields"
            )],
        ),
        (
            "root not object",
            json!({"type": "string"}),
            vec![format!(
                "{p}.type: Invalid value: \"string\": must be object at the root"
            )],
        ),
        (
            "array without items",
            json!({"type": "object", "properties": {"a": {"type": "array"}}}),
            vec![format!(
                "{p}.properties[a].items: Required value: must be specified"
            )],
        ),
        (
            "type under anyOf",
            json!({"type": "object", "properties": {"a": {"type": "object", "anyOf": [{"type": "string"}]}}}),
            vec![format!(
                "{p}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"
            )],
        ),
        (
            "incomplete junctor at the root",
            json!({"type": "object", "anyOf": [{"properties": {"b": {}}}]}),
            vec![format!(
                "{p}.properties[b]: Required value: because it is defined in {p}.anyOf[0].properties[b]"
            )],
        ),
        (
            "metadata restricted beyond name",
            json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}}),
            vec![format!(
                "{p}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
            )],
        ),
        (
            "additionalProperties with properties",
            json!({"type": "object", "properties": {"m": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}}}),
            vec![format!(
                "{p}.properties[m].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
            )],
        ),
        (
            "list map keys neither required nor defaulted",
            json!({"type": "object", "properties": {"l": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}),
            vec![format!(
                "{p}.properties[l].items.properties[name].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"
            )],
        ),
        (
            "set of granular objects",
            json!({"type": "object", "properties": {"l": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "object"}}}}),
            vec![format!(
                "{p}.properties[l].items.x-kubernetes-map-type: Invalid value: null: must be atomic as item of a list with x-kubernetes-list-type=set"
            )],
        ),
        (
            "default of wrong type",
            json!({"type": "object", "properties": {"n": {"type": "integer", "default": "x"}}}),
            vec![format!(
                "{p}.properties[n].default: Invalid value: \"string\":  in body must be of type integer: \"string\""
            )],
        ),
        (
            "default with unknown fields",
            json!({"type": "object", "properties": {"o": {"type": "object", "properties": {"a": {"type": "string"}}, "default": {"a": "x", "b": "y"}}}}),
            vec![format!(
                "{p}.properties[o].default: Invalid value: {{\"a\":\"x\",\"b\":\"y\"}}: must not have unknown fields"
            )],
        ),
        (
            "default in top-level metadata",
            json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}}),
            vec![format!(
                "{p}.properties[metadata].default: Forbidden: must not be set in top-level metadata"
            )],
        ),
        (
            "bad pattern",
            json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "("}}}),
            vec![],
        ),
    ];
    for (name, v, want) in cases {
        let got = match Structural::new_at(&props(v), &base()) {
            Ok(_) => vec![],
            Err(e) => messages(&e),
        };
        if name == "bad pattern" {
            assert_eq!(got.len(), 1, "{name}: {got:?}");
            assert!(
                got[0].starts_with(&format!("{p}.properties[s].pattern: Invalid value: \"(\": must be a valid regular expression, but isn't: ")),
                "{name}: {got:?}"
            );
            continue;
        }
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn int_or_string_patterns_are_structural() {
    schema(json!({"type": "object", "properties": {
        "a": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "b": {"x-kubernetes-int-or-string": true, "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^x"}]},
        "c": {"x-kubernetes-preserve-unknown-fields": true},
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}},
    }}));
}

fn object_schema() -> Structural {
    schema(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["replicas"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 100},
                    "mode": {"type": "string", "enum": ["Fast", "Slow"]},
                    "name": {"type": "string", "maxLength": 5, "minLength": 2, "pattern": "^[a-z]+$"},
                    "when": {"type": "string", "format": "date-time"},
                    "odd": {"type": "string", "format": "no-such-format"},
                    "port": {"x-kubernetes-int-or-string": true},
                    "ratio": {"type": "number", "multipleOf": 0.5},
                    "opt": {"type": "string", "nullable": true},
                    "tags": {"type": "array", "maxItems": 2, "minItems": 1, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "listeners": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "required": ["name"], "properties": {
                            "name": {"type": "string"},
                            "port": {"type": "integer", "format": "int32"},
                            "proto": {"type": "string", "default": "TCP"},
                        }},
                    },
                    "labels": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
                    "closed": {"type": "object", "additionalProperties": false},
                    "choice": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                               "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"known": {"type": "object", "properties": {"x": {"type": "string"}}}}},
                }
            }
        }
    }))
}

#[test]
fn validation_reports_upstream_messages() {
    let s = object_schema();
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "valid",
            json!({"spec": {"replicas": 3, "mode": "Fast", "port": "http", "opt": null}}),
            vec![],
        ),
        (
            "type",
            json!({"spec": {"replicas": "3"}}),
            vec![
                "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
            ],
        ),
        (
            "required",
            json!({"spec": {}}),
            vec!["spec.replicas: Required value"],
        ),
        (
            "enum",
            json!({"spec": {"replicas": 1, "mode": "Medium"}}),
            vec!["spec.mode: Unsupported value: \"Medium\": supported values: \"Fast\", \"Slow\""],
        ),
        (
            "maximum and minimum",
            json!({"spec": {"replicas": 200}}),
            vec![
                "spec.replicas: Invalid value: 200: spec.replicas in body should be less than or equal to 100",
            ],
        ),
        (
            "string limits and pattern",
            json!({"spec": {"replicas": 1, "name": "ABCDEFG"}}),
            vec![
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.name: Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'",
            ],
        ),
        (
            "min length",
            json!({"spec": {"replicas": 1, "name": "a"}}),
            vec![
                "spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long",
            ],
        ),
        (
            "format, unknown formats ignored",
            json!({"spec": {"replicas": 1, "when": "yesterday", "odd": "anything"}}),
            vec![
                "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"",
            ],
        ),
        (
            "int-or-string",
            json!({"spec": {"replicas": 1, "port": true}}),
            vec![
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
            ],
        ),
        (
            "multipleOf",
            json!({"spec": {"replicas": 1, "ratio": 0.7}}),
            vec!["spec.ratio: Invalid value: 0.7: spec.ratio in body should be a multiple of 0.5"],
        ),
        (
            "null where not nullable",
            json!({"spec": {"replicas": null}}),
            vec![
                "spec.replicas: Invalid value: \"null\": spec.replicas in body must be of type integer: \"null\"",
            ],
        ),
        (
            "items and set",
            json!({"spec": {"replicas": 1, "tags": ["a", "b", "a"]}}),
            vec![
                "spec.tags: Too many: 3: must have at most 2 items",
                "spec.tags[2]: Duplicate value: \"a\"",
            ],
        ),
        (
            "min items",
            json!({"spec": {"replicas": 1, "tags": []}}),
            vec!["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"],
        ),
        (
            "list map",
            json!({"spec": {"replicas": 1, "listeners": [{"name": "a", "port": "x"}, {"name": "b"}, {"name": "a"}]}}),
            vec![
                "spec.listeners[0].port: Invalid value: \"string\": spec.listeners[0].port in body must be of type integer: \"string\"",
                "spec.listeners[2]: Duplicate value: {\"name\":\"a\"}",
            ],
        ),
        (
            "additionalProperties",
            json!({"spec": {"replicas": 1, "labels": {"a": 1}, "closed": {"x": 1}}}),
            vec![
                "spec.closed: Invalid value: \"x\": spec.closed.x in body is a forbidden property",
                "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\"",
            ],
        ),
        (
            "maxProperties",
            json!({"spec": {"replicas": 1, "labels": {"a": "1", "b": "2"}}}),
            vec!["spec.labels: Too many: 2: must have at most 1 items"],
        ),
        (
            "oneOf",
            json!({"spec": {"replicas": 1, "choice": {"a": "x", "b": "y"}}}),
            vec![
                "<nil>: Invalid value: \"\": \"spec.choice\" must validate one and only one schema (oneOf). Found 2 valid alternatives",
            ],
        ),
        (
            "embedded resource",
            json!({"spec": {"replicas": 1, "template": {"kind": "Bad_Kind", "metadata": {"name": "a/b"}}}}),
            vec![
                "spec.template.apiVersion: Required value: must not be empty",
                "spec.template.kind: Invalid value: \"Bad_Kind\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                "spec.template.metadata.name: Invalid value: \"a/b\": may not contain '/'",
            ],
        ),
    ];
    for (name, v, want) in cases {
        assert_eq!(messages(&s.validate(&v)), want, "{name}");
    }
}

#[test]
fn pruning_drops_unknown_fields_and_reports_paths() {
    let s = object_schema();
    let mut v = json!({
        "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n", "whatever": 1},
        "extra": 1,
        "spec": {
            "replicas": 1, "bogus": {"deep": true},
            "listeners": [{"name": "a", "junk": 1}],
            "labels": {"a": "b"},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"any": 1}},
            "free": {"anything": 1, "known": {"x": "1", "y": 2}},
        },
    });
    let pruned = s.prune(&mut v);
    assert_eq!(
        pruned,
        vec![
            "extra",
            "spec.bogus",
            "spec.free.known.y",
            "spec.listeners[0].junk"
        ]
    );
    assert_eq!(
        v,
        json!({
            "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n", "whatever": 1},
            "spec": {
                "replicas": 1,
                "listeners": [{"name": "a"}],
                "labels": {"a": "b"},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"any": 1}},
                "free": {"anything": 1, "known": {"x": "1"}},
            },
        })
    );
}

#[test]
fn defaulting_fills_missing_and_non_nullable_nulls() {
    let s = schema(
        json!({"type": "object", "properties": {"spec": {"type": "object", "default": {}, "properties": {
            "a": {"type": "string", "default": "A"},
            "n": {"type": "string", "nullable": true, "default": "N"},
            "m": {"type": "object", "additionalProperties": {"type": "object", "properties": {"x": {"type": "integer", "default": 1}}}},
            "l": {"type": "array", "items": {"type": "object", "properties": {"y": {"type": "boolean", "default": true}}}},
        }}}}),
    );
    let cases = vec![
        (json!({}), json!({"spec": {"a": "A", "n": "N"}})),
        (
            json!({"spec": {"a": null, "n": null, "m": {"k": {}}, "l": [{}, {"y": false}]}}),
            json!({"spec": {"a": "A", "n": null, "m": {"k": {"x": 1}}, "l": [{"y": true}, {"y": false}]}}),
        ),
    ];
    for (mut input, want) in cases {
        s.default(&mut input);
        assert_eq!(input, want);
    }
}

#[test]
fn publishing_follows_the_openapi_builder() {
    let s = schema(json!({"type": "object", "properties": {
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "n": {"type": "string", "nullable": true},
            "p": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "u": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}},
        }, "required": ["n"]},
    }}));
    let v3 = s.openapi_v3();
    assert_eq!(
        v3["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(
        v3["properties"]["spec"]["properties"]["n"],
        json!({"type": "string", "nullable": true})
    );
    assert_eq!(
        v3["properties"]["spec"]["properties"]["p"]["anyOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    let v2 = s.openapi_v2();
    assert_eq!(
        v2["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    let spec = &v2["properties"]["spec"];
    assert_eq!(spec["properties"]["n"], json!({}));
    assert_eq!(
        spec["properties"]["p"],
        json!({"x-kubernetes-int-or-string": true})
    );
    assert_eq!(
        spec["properties"]["u"],
        json!({"x-kubernetes-preserve-unknown-fields": true})
    );
    assert!(spec.get("required").is_none());
    assert_eq!(v2["properties"]["kind"]["type"], "string");
}

#[test]
fn go_number_formatting() {
    use crate::validation::go_num;
    assert_eq!(go_num(100.0), "100");
    assert_eq!(go_num(0.5), "0.5");
    assert_eq!(go_num(1_000_000.0), "1e+06");
    assert_eq!(go_num(123_456.5), "123456.5");
    assert_eq!(go_num(0.00001), "1e-05");
}
