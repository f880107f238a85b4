//! A custom resource version's schema, compiled once per CRD version: structural validation,
//! pruning, defaulting and `x-kubernetes-validations` rules.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use objects::field::{ErrorType, FieldError, Path};
use serde_json::Value;

/// The compiled `openAPIV3Schema` of one version of a CRD.
pub(crate) struct Validator {
    /// The structural schema: types, formats, limits, pruning and defaults.
    structural: schema::Structural,
    /// The `x-kubernetes-validations` rules, compiled.
    rules: Option<cel_rules::Validator>,
    /// The schema's list and map types, for server-side apply.
    types: fieldmanager::CrdTypes,
    /// Whether the schema declares any `default`: objects are then defaulted when read too.
    has_defaults: bool,
}

fn declares_default(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => {
            m.contains_key("default")
                || m.iter().any(|(k, v)| {
                    k != "default" && k != "enum" && k != "example" && declares_default(v)
                })
        }
        Value::Array(a) => a.iter().any(declares_default),
        _ => false,
    }
}

fn props_of(schema: &Value, path: &Path) -> Result<JSONSchemaProps, Vec<FieldError>> {
    serde_json::from_value(schema.clone()).map_err(|e| {
        vec![FieldError::invalid(
            path.clone(),
            "",
            format!("not a valid schema: {e}"),
        )]
    })
}

impl Validator {
    /// Compiles `schema` (the version's `openAPIV3Schema`).
    pub(crate) fn new(schema: &Value) -> Result<Validator, String> {
        let base = Path::default();
        let text = |errs: Vec<FieldError>| -> String {
            errs.iter()
                .map(|e| format!("{}: {}", e.field, e.body()))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let props = props_of(schema, &base).map_err(text)?;
        let rules = cel_rules::Validator::new(&props, &base).map_err(text)?;
        Ok(Validator {
            // Checked when the CRD was written; a stricter server still serves what it stored.
            structural: schema::Structural::compile(&props),
            rules: (!rules.is_empty()).then_some(rules),
            types: fieldmanager::CrdTypes::new(props),
            has_defaults: declares_default(schema),
        })
    }

    /// Checks `schema` as CRD validation does, reporting problems under `path`.
    pub(crate) fn check(schema: &Value, path: &Path) -> Result<(), Vec<FieldError>> {
        let props = props_of(schema, path)?;
        let mut errors = match schema::Structural::new_at(&props, path) {
            Ok(_) => Vec::new(),
            Err(errors) => errors,
        };
        if let Err(rule_errors) = cel_rules::Validator::new(&props, path) {
            errors.extend(rule_errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Drops unknown fields and applies defaults; returns the dropped fields' paths.
    pub(crate) fn prune_and_default(&self, obj: &mut Value) -> Vec<String> {
        let pruned = self.structural.prune(obj);
        self.structural.default(obj);
        self.structural.prune_nulls(obj);
        pruned
    }

    /// Applies the schema's defaults to an object read from storage, as upstream does when it
    /// decodes one: objects stored before a default was added show it. Returns whether the
    /// schema has defaults at all (nothing is done otherwise).
    pub(crate) fn default_on_read(&self, obj: &mut Value) -> bool {
        if self.has_defaults {
            self.structural.default(obj);
        }
        self.has_defaults
    }

    /// Whether reads change objects (the schema declares defaults).
    pub(crate) fn defaults_on_read(&self) -> bool {
        self.has_defaults
    }

    /// The schema as the OpenAPI documents publish it (v3, or v2 when `v3` is false).
    pub(crate) fn published(&self, v3: bool) -> Value {
        if v3 {
            self.structural.openapi_v3()
        } else {
            self.structural.openapi_v2()
        }
    }

    /// The schema's list and map types, for server-side apply and managedFields.
    pub(crate) fn types(&self) -> &fieldmanager::CrdTypes {
        &self.types
    }

    /// Validates `obj` (and, for transition rules, against `old`).
    pub(crate) fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = self.structural.validate(obj);
        let Some(rules) = &self.rules else {
            return errors;
        };
        // As upstream (`hasBlockingErr`), rules do not run on an object whose shape is not the
        // schema's (a wrong type, a missing required field, a value outside the enum, too long
        // or too many); other schema errors do not stop them.
        let blocking = errors.iter().any(|e| {
            matches!(
                e.kind,
                ErrorType::TypeInvalid
                    | ErrorType::Required
                    | ErrorType::NotSupported(_)
                    | ErrorType::TooLong { .. }
                    | ErrorType::TooMany { .. }
            )
        });
        if blocking {
            errors.push(FieldError::invalid(
                Path::new("<nil>"),
                Value::Null,
                "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        } else {
            errors.extend(rules.validate(obj, old));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validator() -> Validator {
        Validator::new(&json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "required": ["size"],
                "x-kubernetes-validations": [{"rule": "self.size < 10", "message": "too big"}],
                "properties": {
                    "size": {"type": "integer"},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "name": {"type": "string", "maxLength": 3},
                    "note": {"type": "string", "pattern": "^x"},
                },
            }},
        }))
        .unwrap()
    }

    fn reasons(errors: &[FieldError]) -> Vec<(String, &'static str)> {
        errors
            .iter()
            .map(|e| (e.field.to_string(), e.kind.reason()))
            .collect()
    }

    const NOT_CHECKED: (&str, &str) = ("<nil>", "FieldValueInvalid");

    #[test]
    fn schema_errors_that_change_the_objects_shape_stop_the_rules_as_upstream() {
        let v = validator();
        // Valid shape: the rule runs.
        let errors = v.validate(&json!({"spec": {"size": 20}}), None);
        assert_eq!(reasons(&errors), [("spec".into(), "FieldValueInvalid")]);
        // A pattern violation does not stop the rules.
        let errors = v.validate(&json!({"spec": {"size": 20, "note": "y"}}), None);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[1].detail, "too big");
        // A wrong type, a missing required field, a value outside the enum, or one too long do.
        for (spec, reason) in [
            (json!({"size": "big"}), "FieldValueTypeInvalid"),
            (json!({}), "FieldValueRequired"),
            (json!({"size": 20, "mode": "c"}), "FieldValueNotSupported"),
            (json!({"size": 20, "name": "long"}), "FieldValueTooLong"),
        ] {
            let errors = v.validate(&json!({ "spec": spec }), None);
            let got = reasons(&errors);
            assert_eq!(got.len(), 2, "{spec}: {errors:?}");
            assert_eq!(got[0].1, reason, "{spec}");
            assert_eq!((got[1].0.as_str(), got[1].1), NOT_CHECKED, "{spec}");
            assert!(
                errors[1]
                    .detail
                    .starts_with("some validation rules were not checked")
            );
        }
    }
}
