//! The schema-aware check of CRD rules: undefined fields and operators applied to the wrong
//! types are refused when the CRD is written, as cel-go refuses them; whatever cel-go accepts
//! (dyn, int-or-string, preserved unknown fields, maps) still compiles.

use cel_rules::{CompileError, Program, Validator};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use objects::field::Path;
use serde_json::{Value, json};

/// A root schema with `rules` on `spec`, where `spec` declares a bit of everything.
fn spec_schema(rules: Value) -> JSONSchemaProps {
    serde_json::from_value(json!({
        "type": "object",
        "properties": {"spec": {
            "type": "object",
            "x-kubernetes-validations": rules,
            "properties": {
                "replicas": {"type": "integer"},
                "ratio": {"type": "number"},
                "name": {"type": "string", "maxLength": 64},
                "enabled": {"type": "boolean"},
                "created": {"type": "string", "format": "date-time"},
                "ttl": {"type": "string", "format": "duration"},
                "blob": {"type": "string", "format": "byte"},
                "port": {"x-kubernetes-int-or-string": true},
                "x-prop": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "maxProperties": 10, "additionalProperties": {"type": "string", "maxLength": 64}},
                "anything": {"type": "object", "maxProperties": 10, "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true}},
                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "untyped": {"x-kubernetes-preserve-unknown-fields": true},
                "partial": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"known": {"type": "integer"}},
                },
                "embedded": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": true,
                    "x-kubernetes-preserve-unknown-fields": true,
                },
                "tags": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 64}},
                "template": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "image": {"type": "string"}},
                },
                "items": {
                    "type": "array",
                    "maxItems": 10,
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string", "maxLength": 64}, "weight": {"type": "integer"}},
                    },
                },
                "empty": {"type": "object"},
            },
        }},
    }))
    .unwrap()
}

fn compile(rule: &str) -> Result<(), Vec<String>> {
    compile_rules(json!([{"rule": rule}]))
}

fn compile_rules(rules: Value) -> Result<(), Vec<String>> {
    Validator::new(&spec_schema(rules), &Path::new("openAPIV3Schema"))
        .map(|_| ())
        .map_err(|errs| errs.iter().map(ToString::to_string).collect())
}

/// The compile error of a rule on `spec`, after "compilation failed: ".
fn error(rule: &str) -> String {
    let errs = compile(rule).expect_err(rule);
    assert_eq!(errs.len(), 1, "{errs:?}");
    let (_, detail) = errs[0]
        .split_once("compilation failed: ")
        .unwrap_or_else(|| panic!("{}", errs[0]));
    detail.to_owned()
}

#[test]
fn undefined_fields_are_refused_with_upstreams_message() {
    let errs = compile("self.replicaz > 1").unwrap_err();
    assert_eq!(
        errs,
        [
            "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.replicaz > 1\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:5: undefined field 'replicaz'"
        ]
    );
    // Nested, at the `.` of the selection.
    assert_eq!(
        error("self.template.nam == 'x'"),
        "ERROR: <input>:1:14: undefined field 'nam'"
    );
    // Inside a comprehension over a list of objects.
    assert_eq!(
        error("self.items.all(i, i.weigth > 0)"),
        "ERROR: <input>:1:20: undefined field 'weigth'"
    );
    assert_eq!(
        error("self.items.exists(i, i.name == 'a') && self.items.map(i, i.nme).size() > 0"),
        "ERROR: <input>:1:59: undefined field 'nme'"
    );
    // has() reports at its `(`.
    assert_eq!(
        error("has(self.replicaz)"),
        "ERROR: <input>:1:4: undefined field 'replicaz'"
    );
    // Optional selection.
    assert_eq!(
        error("self.?replicaz.orValue(0) > 1"),
        "ERROR: <input>:1:5: undefined field 'replicaz'"
    );
    // An object with no properties declares no fields.
    assert_eq!(
        error("self.empty.x == 1"),
        "ERROR: <input>:1:11: undefined field 'x'"
    );
    // Lines count too; the first error by position is reported.
    assert_eq!(
        error("self.name == 'a' &&\n  self.b == 1 && self.a == 2"),
        "ERROR: <input>:2:7: undefined field 'b'"
    );
    // Columns count characters, not bytes.
    assert_eq!(
        error("'éé' == '' || self.replicaz > 1"),
        "ERROR: <input>:1:19: undefined field 'replicaz'"
    );
    // Escaped names are the declared ones.
    assert_eq!(
        error("self.x_prop == 'a'"),
        "ERROR: <input>:1:5: undefined field 'x_prop'"
    );
}

#[test]
fn undefined_fields_at_the_root_and_in_old_self() {
    let root = |rule: &str| -> Result<(), Vec<String>> {
        let s: JSONSchemaProps = serde_json::from_value(json!({
            "type": "object",
            "x-kubernetes-validations": [{"rule": rule}],
            "properties": {"spec": {"type": "object", "properties": {"a": {"type": "integer"}}}},
        }))
        .unwrap();
        Validator::new(&s, &Path::new("openAPIV3Schema"))
            .map(|_| ())
            .map_err(|errs| errs.iter().map(ToString::to_string).collect())
    };
    root("self.apiVersion == 'v1' && self.kind == 'K' && self.metadata.name.startsWith(self.metadata.generateName) && self.spec.a > 0").unwrap();
    // Only name and generateName of metadata are declared upstream.
    let errs = root("has(self.metadata.labels)").unwrap_err();
    assert!(
        errs[0].ends_with("compilation failed: ERROR: <input>:1:4: undefined field 'labels'"),
        "{errs:?}"
    );
    // An embedded resource whose schema declares more of metadata.
    let embedded: JSONSchemaProps = serde_json::from_value(json!({
        "type": "object",
        "properties": {"e": {
            "type": "object",
            "x-kubernetes-embedded-resource": true,
            "x-kubernetes-validations": [{"rule": "self.metadata.labels.a == 'b' && self.kind != ''"}],
            "properties": {"metadata": {"type": "object", "properties": {
                "labels": {"type": "object", "maxProperties": 3, "additionalProperties": {"type": "string", "maxLength": 3}},
            }}},
        }},
    }))
    .unwrap();
    Validator::new(&embedded, &Path::new("openAPIV3Schema")).unwrap();
    let errs = root("self.spec.a == oldSelf.spec.b").unwrap_err();
    assert!(
        errs[0].ends_with("compilation failed: ERROR: <input>:1:28: undefined field 'b'"),
        "{errs:?}"
    );
    // optionalOldSelf makes oldSelf optional; selections see through it.
    compile_rules(json!([{"rule": "!oldSelf.hasValue() || self.replicas >= oldSelf.value().replicas", "optionalOldSelf": true}])).unwrap();
    compile_rules(
        json!([{"rule": "self.replicas >= oldSelf.replicas.orValue(0)", "optionalOldSelf": true}]),
    )
    .unwrap();
    let errs = compile_rules(
        json!([{"rule": "oldSelf.?replicaz.orValue(0) == 0", "optionalOldSelf": true}]),
    )
    .unwrap_err();
    assert!(
        errs[0].ends_with("ERROR: <input>:1:8: undefined field 'replicaz'"),
        "{errs:?}"
    );
}

#[test]
fn message_expressions_are_checked_too() {
    let errs = compile_rules(
        json!([{"rule": "self.replicas > 0", "messageExpression": "'bad: ' + self.nmae"}]),
    )
    .unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains(".x-kubernetes-validations[0].messageExpression: Invalid value: ")
            && errs[0].ends_with(
                "messageExpression compilation failed: ERROR: <input>:1:15: undefined field 'nmae'"
            ),
        "{errs:?}"
    );
}

#[test]
fn operators_on_the_wrong_types_are_refused() {
    assert_eq!(
        error("self.name + 1 == 2"),
        "ERROR: <input>:1:11: found no matching overload for '_+_' applied to '(string, int)'"
    );
    assert_eq!(
        error("self.replicas > 'a'"),
        "ERROR: <input>:1:15: found no matching overload for '_>_' applied to '(int, string)'"
    );
    assert_eq!(
        error("size(self.replicas) > 0"),
        "ERROR: <input>:1:5: found no matching overload for 'size' applied to '(int)'"
    );
    assert_eq!(
        error("self.replicas.size() > 0"),
        "ERROR: <input>:1:19: found no matching overload for 'size' applied to 'int.()'"
    );
    // Upstream's documented example, at the `==`.
    assert_eq!(
        error("self.enabled == 1"),
        "ERROR: <input>:1:14: found no matching overload for '_==_' applied to '(bool, int)'"
    );
    assert_eq!(
        error("self.ratio + 1 > 2.0"),
        "ERROR: <input>:1:12: found no matching overload for '_+_' applied to '(double, int)'"
    );
    assert_eq!(
        error("self.tags.all(t, t - 1 > 0)"),
        "ERROR: <input>:1:20: found no matching overload for '_-_' applied to '(string, int)'"
    );
    assert_eq!(
        error("self.labels['a'] * 2 > 0"),
        "ERROR: <input>:1:18: found no matching overload for '_*_' applied to '(string, int)'"
    );
    assert_eq!(
        error("self.created + self.ttl < self.name"),
        "ERROR: <input>:1:25: found no matching overload for '_<_' applied to '(google.protobuf.Timestamp, string)'"
    );
    assert_eq!(
        error("self.name && true"),
        "ERROR: <input>:1:11: found no matching overload for '_&&_' applied to '(string, bool)'"
    );
    assert_eq!(
        error("'a' in self.name"),
        "ERROR: <input>:1:5: found no matching overload for '@in' applied to '(string, string)'"
    );
    assert_eq!(
        error("self.replicas.startsWith('a')"),
        "ERROR: <input>:1:25: found no matching overload for 'startsWith' applied to 'int.(string)'"
    );
    assert_eq!(
        error("self.tags == 'a'"),
        "ERROR: <input>:1:11: found no matching overload for '_==_' applied to '(list(string), string)'"
    );
}

#[test]
fn rules_upstream_accepts_still_compile() {
    let ok = [
        // Declared fields, escaped names, nested objects, lists and maps.
        "self.replicas > 1 && self.name != '' && self.enabled",
        "self.x__dash__prop == 'a' && self.__namespace__ == 'b'",
        "self.template.name == self.template.image",
        "self.items.all(i, i.name != '' && i.weight >= 0) && self.items.exists_one(i, i.weight == 1)",
        "self.items.map(i, i.weight).sum() <= 100",
        "self.items.filter(i, i.weight > 0).size() > 0 && size(self.items) < 10",
        "self.labels.all(k, k.startsWith('a') && self.labels[k] != '')",
        "self.labels.foo == 'x' || 'foo' in self.labels || has(self.labels.bar)",
        "self.tags.all(t, t.matches('^[a-z]+$')) && 'a' in self.tags",
        "self.tags + ['x'] == ['x'] || self.tags.size() == 0",
        "!has(self.template) || has(self.template.name)",
        "has(self.items) ? self.items[0].name != '' : true",
        // Numbers compare across types; conversions give their types.
        "self.ratio > 1 && self.replicas < 2.5 && self.replicas == 3u",
        "double(self.replicas) * self.ratio > 1.0 && int(self.ratio) + 1 > 0",
        "string(self.replicas) + self.name != ''",
        "self.replicas % 2 == 0 && -self.replicas < 0 && self.replicas / 2 * 2 - 1 >= 0",
        // Formats.
        "self.created + self.ttl > timestamp('2024-01-01T00:00:00Z') && self.ttl > duration('1s')",
        "self.created - self.created == duration('0s') && size(self.blob) > 0",
        // int-or-string is dyn.
        "type(self.port) == string ? self.port.matches('^[0-9]+%$') : self.port > 0",
        "self.port + 1 > 2 || self.port == 'a' || size(self.port) > 0 || self.port.x == 1",
        // Unknown fields: preserved, untyped, maps of unknown values, embedded resources.
        "self.raw.anything.deep == 1 && has(self.raw.x) && self.raw.y + 'a' == 1",
        "self.untyped.a.b == 'x' && self.untyped + 1 == 2",
        "self.anything.a.b.c == 1 && self.anything['k'].x > 0",
        "self.partial.known > 0 && self.partial.unknown == 'x'",
        "self.embedded.apiVersion == 'v1' && self.embedded.kind == 'Pod' && self.embedded.metadata.name != ''",
        "self.embedded.spec.containers.all(c, c.image != '')",
        // Optional syntax.
        "self.?template.?name.orValue('') == '' && self.labels[?'a'].orValue('') == ''",
        "self.?items.orValue([]).size() >= 0",
        // dyn and literals.
        "dyn(self.name) + 1 == 2 || [1, 'a'].size() == 2 || {'a': 1}.a == 1",
        "self.replicas == null || self.name != null",
        "[self.replicas, self.ratio].all(x, x > 0)",
        // The libraries.
        "isQuantity(self.name) && quantity(self.name).isLessThan(quantity('1Gi'))",
        "self.name.lowerAscii().startsWith('a') && self.name.split(',').size() > 0",
    ];
    for rule in ok {
        compile(rule).unwrap_or_else(|e| panic!("{rule}: {e:?}"));
    }
}

#[test]
fn admission_policy_expressions_are_not_type_checked() {
    // No schema: anything goes when compiling.
    Program::compile("object.spec.replicaz + 'a' > 1", &["object", "oldObject"]).unwrap();
}

#[test]
fn check_errors_display_as_cel_go_does() {
    let e = CompileError::Check {
        line: 1,
        column: 5,
        message: "undefined field 'replicaz'".into(),
    };
    assert_eq!(
        e.to_string(),
        "ERROR: <input>:1:5: undefined field 'replicaz'"
    );
}
