//! Table-driven checks of the libraries, compile errors and rule semantics.

use cel_rules::{CompileError, EvalError, Outcome, Program, Validator};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use objects::field::Path;
use serde_json::{Value, json};

#[test]
fn libraries() {
    let cases: &[(&str, Outcome)] = &[
        ("'a,b'.split(',') == ['a', 'b']", Outcome::Bool(true)),
        (
            "'AbC'.lowerAscii() + 'x'.upperAscii()",
            Outcome::String("abcX".into()),
        ),
        ("'hello'.replace('l', 'L')", Outcome::String("heLLo".into())),
        ("'hello'.substring(1, 3)", Outcome::String("el".into())),
        ("'  x '.trim()", Outcome::String("x".into())),
        ("['a', 'b'].join('-')", Outcome::String("a-b".into())),
        (
            "'hello'.indexOf('l') == 2 && 'hello'.lastIndexOf('l') == 3",
            Outcome::Bool(true),
        ),
        ("'abc'.charAt(1)", Outcome::String("b".into())),
        (
            "[1, 2, 3].isSorted() && ![3, 1].isSorted()",
            Outcome::Bool(true),
        ),
        ("[1, 2, 3].sum() == 6 && [].sum() == 0", Outcome::Bool(true)),
        (
            "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3",
            Outcome::Bool(true),
        ),
        (
            "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2",
            Outcome::Bool(true),
        ),
        ("'abc 123'.find('[0-9]+')", Outcome::String("123".into())),
        (
            "'a1b22'.findAll('[0-9]+') == ['1', '22']",
            Outcome::Bool(true),
        ),
        (
            "'a1b22c3'.findAll('[0-9]+', 2) == ['1', '22']",
            Outcome::Bool(true),
        ),
        (
            "isIP('10.0.0.1') && isIP('::1') && !isIP('10.0.0.256') && !isIP('::ffff:1.2.3.4')",
            Outcome::Bool(true),
        ),
        (
            "isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.0/33') && !isCIDR('10.0.0.0')",
            Outcome::Bool(true),
        ),
        (
            "isURL('https://example.com/x') && isURL('/path') && !isURL('example com')",
            Outcome::Bool(true),
        ),
        (
            "isQuantity('100m') && isQuantity('1.5Gi') && isQuantity('1e3') && !isQuantity('1x')",
            Outcome::Bool(true),
        ),
        (
            "matches('v1.2.3', '^v1') && 'abc'.matches('b')",
            Outcome::Bool(true),
        ),
        (
            "duration('1h') > duration('30m') && timestamp('2024-01-01T00:00:00Z') < timestamp('2025-01-01T00:00:00Z')",
            Outcome::Bool(true),
        ),
        (
            "int('5') + 1 == 6 && string(1) == '1' && double(1) == 1.0 && uint(2) == 2u",
            Outcome::Bool(true),
        ),
        (
            "[1, 2, 3].exists_one(x, x > 2) && [1, 2].map(x, x * 2) == [2, 4] && [1, 2, 3].filter(x, x > 1).size() == 2",
            Outcome::Bool(true),
        ),
    ];
    for (expr, want) in cases {
        let p = Program::compile(expr, &[]).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(
            &p.eval(&[]).unwrap_or_else(|e| panic!("{expr}: {e}")),
            want,
            "{expr}"
        );
    }
}

#[test]
fn compile_errors() {
    assert_eq!(
        Program::compile("object.x == y", &["object"]).unwrap_err(),
        CompileError::UndeclaredReference("y".into())
    );
    assert_eq!(
        Program::compile("frobnicate(object)", &["object"]).unwrap_err(),
        CompileError::UndeclaredFunction("frobnicate".into())
    );
    assert!(matches!(
        Program::compile("object.x ==", &["object"]),
        Err(CompileError::Syntax { .. })
    ));
    // Comprehension variables are in scope only inside their macro.
    assert!(Program::compile("object.all(k, k != '')", &["object"]).is_ok());
}

#[test]
fn eval_errors_and_null_old_object() {
    let obj = json!({"a": 1});
    let p = Program::compile("object.b == 1", &["object"]).unwrap();
    assert_eq!(
        p.eval(&[("object", &obj)]),
        Err(EvalError::NoSuchKey("b".into()))
    );
    let p = Program::compile("oldObject == null", &["oldObject"]).unwrap();
    assert_eq!(
        p.eval(&[("oldObject", &Value::Null)]),
        Ok(Outcome::Bool(true))
    );
}

fn schema(v: Value) -> JSONSchemaProps {
    serde_json::from_value(v).unwrap()
}

fn check(s: &JSONSchemaProps, new: Value, old: Option<Value>) -> Vec<String> {
    let v = Validator::new(s, &Path::new("openAPIV3Schema")).unwrap_or_else(|e| panic!("{e:?}"));
    v.validate(&new, old.as_ref())
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn rules_messages_reasons_and_transitions() {
    let s = schema(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [
                    {"rule": "self.min <= self.max"},
                    {"rule": "self.min >= 0", "message": "min must be non-negative"},
                    {"rule": "self.max < 100", "messageExpression": "'max is ' + string(self.max)"},
                    {"rule": "self.min != 7", "reason": "FieldValueForbidden", "fieldPath": ".min", "message": "seven"},
                    {"rule": "self.max >= oldSelf.max", "message": "max may not shrink"},
                ],
                "properties": {
                    "min": {"type": "integer"},
                    "max": {"type": "integer"},
                    "tags": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "x-kubernetes-validations": [{"rule": "self != ''"}]},
                    },
                    "items": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "v": {"type": "integer"}},
                            "x-kubernetes-validations": [{"rule": "self.v >= oldSelf.v", "message": "v may not shrink"}],
                        },
                    },
                },
            },
        },
    }));
    let ok = json!({"spec": {"min": 1, "max": 2}});
    assert_eq!(check(&s, ok.clone(), None), Vec::<String>::new());
    assert_eq!(
        check(&s, json!({"spec": {"min": 3, "max": 2}}), None),
        ["spec: Invalid value: \"object\": failed rule: self.min <= self.max"]
    );
    assert_eq!(
        check(&s, json!({"spec": {"min": -1, "max": 200}}), None),
        [
            "spec: Invalid value: \"object\": min must be non-negative",
            "spec: Invalid value: \"object\": max is 200",
        ]
    );
    assert_eq!(
        check(&s, json!({"spec": {"min": 7, "max": 8}}), None),
        ["spec.min: Forbidden: seven"]
    );
    // Transition rules run only against a correlated old value.
    assert_eq!(
        check(
            &s,
            json!({"spec": {"min": 1, "max": 2}}),
            Some(json!({"spec": {"min": 1, "max": 5}}))
        ),
        ["spec: Invalid value: \"object\": max may not shrink"]
    );
    // Map values and list-map items by key.
    assert_eq!(
        check(
            &s,
            json!({"spec": {"min": 1, "max": 2, "tags": {"a": ""}}}),
            None
        ),
        ["spec.tags[a]: Invalid value: \"string\": failed rule: self != ''"]
    );
    let old = json!({"spec": {"min": 1, "max": 2, "items": [{"name": "x", "v": 5}, {"name": "y", "v": 1}]}});
    let new = json!({"spec": {"min": 1, "max": 2, "items": [{"name": "y", "v": 1}, {"name": "x", "v": 4}, {"name": "z", "v": 0}]}});
    assert_eq!(
        check(&s, new, Some(old)),
        ["spec.items[1]: Invalid value: \"object\": v may not shrink"]
    );
    // Evaluation errors name the rule.
    assert_eq!(
        check(&s, json!({"spec": {"max": 2}}), None),
        [
            "spec: Invalid value: \"object\": no such key: min evaluating rule: self.min <= self.max",
            "spec: Invalid value: \"object\": no such key: min evaluating rule: min must be non-negative",
            "spec: Invalid value: \"object\": no such key: min evaluating rule: seven",
        ]
    );
}

#[test]
fn schema_errors_are_upstreams() {
    let s = schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "self.x =="}]}},
    }));
    let errs = Validator::new(&s, &Path::new("openAPIV3Schema")).unwrap_err();
    assert_eq!(errs.len(), 1);
    let text = errs[0].to_string();
    assert!(
        text.starts_with("openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.x ==\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:"),
        "{text}"
    );
    // An unbounded list of unbounded strings scanned with a regex in a nested loop is too dear.
    let s = schema(json!({
        "type": "object",
        "properties": {"xs": {
            "type": "array",
            "items": {"type": "string"},
            "x-kubernetes-validations": [{"rule": "self.all(a, self.exists(b, a.matches(b)))"}],
        }},
    }));
    let errs = Validator::new(&s, &Path::new("openAPIV3Schema")).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "openAPIV3Schema.properties[xs].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    );
    // oldSelf below a list that is not a map list cannot be correlated.
    let s = schema(json!({
        "type": "array", "maxItems": 10,
        "items": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf"}]},
    }));
    let errs = Validator::new(&s, &Path::new("openAPIV3Schema")).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "openAPIV3Schema.items.x-kubernetes-validations[0].rule: Invalid value: \"self >= oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within openAPIV3Schema"
    );
}

#[test]
fn runtime_budget_and_per_call_limit() {
    let s = schema(json!({
        "type": "object",
        "properties": {"xs": {
            "type": "array", "maxItems": 1000,
            "items": {"type": "integer"},
            "x-kubernetes-validations": [{"rule": "self.all(a, self.all(b, a + b >= 0))"}],
        }},
    }));
    let xs: Vec<i64> = (0..1000).collect();
    let got = check(&s, json!({"xs": xs}), None);
    assert_eq!(
        got,
        [
            "xs: Invalid value: \"array\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.all(a, self.all(b, a + b >= 0))"
        ]
    );
}
