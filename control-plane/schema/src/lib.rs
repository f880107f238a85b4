//! Structural schemas for CustomResourceDefinitions, as upstream's apiextensions-apiserver has them.
//!
//! [`Structural::new`] turns a CRD version's `openAPIV3Schema` into a compiled schema, refusing
//! what upstream refuses (non-structural schemas, bad list types, defaults that do not validate or
//! are not pruned) with upstream's paths and messages. The compiled schema then validates
//! ([`Structural::validate`], kube-openapi's validator as the custom resource handler uses it,
//! plus embedded-resource and list-type checks), prunes unknown fields ([`Structural::prune`]),
//! applies defaults ([`Structural::default`]) and renders itself for publishing
//! ([`Structural::openapi_v3`], [`Structural::openapi_v2`]).
//!
//! It is not the API server: it knows nothing of storage, versions, conversion, subresources or
//! the generic `ObjectMeta` validation of the root `metadata` (name format, labels…), and it does
//! not evaluate `x-kubernetes-validations` (CEL); those rules are kept and published untouched.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use objects::field::{FieldError, Path};
use regex::Regex;
use serde_json::Value;

mod check;
mod defaulting;
mod formats;
mod listtype;
mod openapi;
mod pruning;
mod validation;

#[cfg(test)]
mod tests;

/// What a schema says about keys that are not among its `properties`.
#[derive(Clone, Debug)]
pub enum AdditionalProperties {
    /// `additionalProperties: true` or `false`.
    Bool(bool),
    /// `additionalProperties: {schema}`.
    Schema(Box<Structural>),
}

/// A compiled schema node: the structural part (type, properties, items, additionalProperties,
/// extensions) used for pruning and defaulting, plus the value validations kube-openapi checks.
///
/// Nodes under `allOf`/`anyOf`/`oneOf`/`not` are `Structural` too; they only validate.
#[derive(Clone, Debug, Default)]
pub struct Structural {
    type_name: String,
    format: String,
    /// The format as the validator sees it: empty when upstream strips it as unsupported.
    validated_format: String,
    description: Option<String>,
    title: Option<String>,
    nullable: bool,
    default: Option<Value>,
    example: Option<Value>,
    external_docs: Option<Value>,
    int_or_string: bool,
    preserve_unknown_fields: Option<bool>,
    embedded_resource: bool,
    list_type: Option<String>,
    list_map_keys: Vec<String>,
    map_type: Option<String>,
    x_validations: Option<Value>,
    properties: BTreeMap<String, Structural>,
    items: Option<Box<Structural>>,
    additional_properties: Option<AdditionalProperties>,
    v: Box<ValueValidation>,
}

/// Value validations (everything that does not shape the object).
#[derive(Clone, Debug, Default)]
struct ValueValidation {
    enum_: Option<Vec<Value>>,
    pattern: Option<(String, Option<Regex>)>,
    maximum: Option<f64>,
    exclusive_maximum: bool,
    minimum: Option<f64>,
    exclusive_minimum: bool,
    multiple_of: Option<f64>,
    max_length: Option<i64>,
    min_length: Option<i64>,
    max_items: Option<i64>,
    min_items: Option<i64>,
    unique_items: bool,
    max_properties: Option<i64>,
    min_properties: Option<i64>,
    required: Vec<String>,
    all_of: Vec<Structural>,
    any_of: Vec<Structural>,
    one_of: Vec<Structural>,
    not: Option<Box<Structural>>,
}

impl ValueValidation {
    fn is_empty(&self) -> bool {
        self.enum_.is_none()
            && self.pattern.is_none()
            && self.maximum.is_none()
            && !self.exclusive_maximum
            && self.minimum.is_none()
            && !self.exclusive_minimum
            && self.multiple_of.is_none()
            && self.max_length.is_none()
            && self.min_length.is_none()
            && self.max_items.is_none()
            && self.min_items.is_none()
            && !self.unique_items
            && self.max_properties.is_none()
            && self.min_properties.is_none()
            && self.required.is_empty()
            && self.all_of.is_empty()
            && self.any_of.is_empty()
            && self.one_of.is_empty()
            && self.not.is_none()
    }
}

/// Formats kube-openapi validates for CRDs (`pkg/apiserver/validation/formats.go`); any other
/// format is stripped before validation, so it never fails.
const SUPPORTED_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
];

impl Structural {
    /// Compiles `props` and checks it the way upstream checks a CRD version's schema: the
    /// OpenAPI restrictions for CRDs, structurality, list and map types, and defaults (which must
    /// validate and be pruned). Paths in errors start at `base`, e.g.
    /// `spec.versions[0].schema.openAPIV3Schema`.
    pub fn new_at(props: &JSONSchemaProps, base: &Path) -> Result<Structural, Vec<FieldError>> {
        let s = Structural::convert(props);
        let errors = check::check(props, &s, base);
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(errors)
        }
    }

    /// [`Structural::new_at`] with paths starting at `openAPIV3Schema`'s own fields.
    pub fn new(props: &JSONSchemaProps) -> Result<Structural, Vec<FieldError>> {
        Structural::new_at(props, &Path::default())
    }

    /// Compiles `props` without checking it (for schemas already accepted, e.g. read back from
    /// storage). Invalid patterns never match.
    pub fn compile(props: &JSONSchemaProps) -> Structural {
        Structural::convert(props)
    }

    fn convert(p: &JSONSchemaProps) -> Structural {
        let format = p.format.clone().unwrap_or_default();
        let normalized = format.replace('-', "");
        let validated_format = if SUPPORTED_FORMATS.contains(&normalized.as_str()) {
            normalized
        } else {
            String::new()
        };
        let items = match &p.items {
            Some(JSONSchemaPropsOrArray::Schema(s)) => Some(Box::new(Structural::convert(s))),
            Some(JSONSchemaPropsOrArray::Schemas(v)) => {
                v.first().map(|s| Box::new(Structural::convert(s)))
            }
            None => None,
        };
        let additional_properties = match &p.additional_properties {
            Some(JSONSchemaPropsOrBool::Bool(b)) => Some(AdditionalProperties::Bool(*b)),
            Some(JSONSchemaPropsOrBool::Schema(s)) => Some(AdditionalProperties::Schema(Box::new(
                Structural::convert(s),
            ))),
            None => None,
        };
        let list = |v: &Option<Vec<JSONSchemaProps>>| -> Vec<Structural> {
            v.iter().flatten().map(Structural::convert).collect()
        };
        let v = ValueValidation {
            enum_: p
                .enum_
                .as_ref()
                .map(|e| e.iter().map(|j| j.0.clone()).collect()),
            pattern: p
                .pattern
                .as_ref()
                .map(|pat| (pat.clone(), compile_pattern(pat).ok())),
            maximum: p.maximum,
            exclusive_maximum: p.exclusive_maximum.unwrap_or(false),
            minimum: p.minimum,
            exclusive_minimum: p.exclusive_minimum.unwrap_or(false),
            multiple_of: p.multiple_of,
            max_length: p.max_length,
            min_length: p.min_length,
            max_items: p.max_items,
            min_items: p.min_items,
            unique_items: p.unique_items.unwrap_or(false),
            max_properties: p.max_properties,
            min_properties: p.min_properties,
            required: p.required.clone().unwrap_or_default(),
            all_of: list(&p.all_of),
            any_of: list(&p.any_of),
            one_of: list(&p.one_of),
            not: p.not.as_ref().map(|n| Box::new(Structural::convert(n))),
        };
        Structural {
            type_name: p.type_.clone().unwrap_or_default(),
            format,
            validated_format,
            description: p.description.clone(),
            title: p.title.clone(),
            nullable: p.nullable.unwrap_or(false),
            default: p
                .default
                .as_ref()
                .map(|j| j.0.clone())
                .filter(|v| !v.is_null()),
            example: p.example.as_ref().map(|j| j.0.clone()),
            external_docs: p
                .external_docs
                .as_ref()
                .and_then(|d| serde_json::to_value(d).ok()),
            int_or_string: p.x_kubernetes_int_or_string.unwrap_or(false),
            preserve_unknown_fields: p.x_kubernetes_preserve_unknown_fields,
            embedded_resource: p.x_kubernetes_embedded_resource.unwrap_or(false),
            list_type: p.x_kubernetes_list_type.clone(),
            list_map_keys: p.x_kubernetes_list_map_keys.clone().unwrap_or_default(),
            map_type: p.x_kubernetes_map_type.clone(),
            x_validations: p
                .x_kubernetes_validations
                .as_ref()
                .filter(|v| !v.is_empty())
                .and_then(|v| serde_json::to_value(v).ok()),
            properties: p
                .properties
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Structural::convert(v)))
                .collect(),
            items,
            additional_properties,
            v: Box::new(v),
        }
    }

    /// `type`, empty when unset.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// `format` as written in the schema, empty when unset.
    pub fn format(&self) -> &str {
        &self.format
    }

    /// `description`, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// `nullable`.
    pub fn nullable(&self) -> bool {
        self.nullable
    }

    /// `default`, if any (never JSON `null`).
    pub fn default_value(&self) -> Option<&Value> {
        self.default.as_ref()
    }

    /// `properties` (empty when unset).
    pub fn properties(&self) -> &BTreeMap<String, Structural> {
        &self.properties
    }

    /// `items`, if any.
    pub fn items(&self) -> Option<&Structural> {
        self.items.as_deref()
    }

    /// `additionalProperties`, if any.
    pub fn additional_properties(&self) -> Option<&AdditionalProperties> {
        self.additional_properties.as_ref()
    }

    /// The schema that applies to a key not among `properties`: the `additionalProperties`
    /// schema, if it is one.
    pub fn additional_properties_schema(&self) -> Option<&Structural> {
        match &self.additional_properties {
            Some(AdditionalProperties::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// `x-kubernetes-list-type`, if set.
    pub fn list_type(&self) -> Option<&str> {
        self.list_type.as_deref()
    }

    /// `x-kubernetes-list-map-keys` (empty when unset).
    pub fn list_map_keys(&self) -> &[String] {
        &self.list_map_keys
    }

    /// `x-kubernetes-map-type`, if set.
    pub fn map_type(&self) -> Option<&str> {
        self.map_type.as_deref()
    }

    /// `x-kubernetes-int-or-string`.
    pub fn is_int_or_string(&self) -> bool {
        self.int_or_string
    }

    /// `x-kubernetes-preserve-unknown-fields: true`.
    pub fn preserve_unknown_fields(&self) -> bool {
        self.preserve_unknown_fields == Some(true)
    }

    /// `x-kubernetes-embedded-resource`.
    pub fn is_embedded_resource(&self) -> bool {
        self.embedded_resource
    }

    /// `x-kubernetes-validations` as JSON (the CEL rules, untouched), if any.
    pub fn x_validations(&self) -> Option<&Value> {
        self.x_validations.as_ref()
    }

    /// `required` (empty when unset).
    pub fn required(&self) -> &[String] {
        &self.v.required
    }

    /// `enum`, if set.
    pub fn enum_values(&self) -> Option<&[Value]> {
        self.v.enum_.as_deref()
    }

    /// `maxLength`, `maxItems` and `maxProperties`, as CEL cost estimation needs them.
    pub fn max_length(&self) -> Option<i64> {
        self.v.max_length
    }

    /// `maxItems`, if set.
    pub fn max_items(&self) -> Option<i64> {
        self.v.max_items
    }

    /// `maxProperties`, if set.
    pub fn max_properties(&self) -> Option<i64> {
        self.v.max_properties
    }

    /// Follows a path of field names from this node through `properties` and
    /// `additionalProperties` schemas (`["spec", "replicas"]`).
    pub fn lookup(&self, path: &[&str]) -> Option<&Structural> {
        let mut s = self;
        for k in path {
            s = match s.properties.get(*k) {
                Some(p) => p,
                None => s.additional_properties_schema()?,
            };
        }
        Some(s)
    }
}

/// Compiles an ECMA/RE2 `pattern` as upstream's Go `regexp` would (unanchored search).
fn compile_pattern(p: &str) -> Result<Regex, regex::Error> {
    Regex::new(p)
}

impl Structural {
    /// Validates a custom object (the whole object, `apiVersion` to `status`) as the custom
    /// resource handler does after pruning and defaulting: kube-openapi's schema validator, then
    /// embedded resources, then `x-kubernetes-list-type` `set`/`map` uniqueness.
    pub fn validate(&self, value: &Value) -> Vec<FieldError> {
        let mut v = validation::Validator::new(None);
        v.node(self, &mut String::new(), value);
        let mut out = v.out;
        listtype::embedded(None, value, self, &mut out);
        if let Value::Object(map) = value {
            listtype::list_sets_and_maps(None, self, map, &mut out);
        }
        out
    }

    /// Validates `value` against this node only with kube-openapi's validator, paths starting
    /// at `base` (for values below the root, such as a default or a patch's sub-document).
    pub fn validate_value(&self, base: &Path, value: &Value) -> Vec<FieldError> {
        let mut v = validation::Validator::new(Some(base));
        v.node(self, &mut String::new(), value);
        v.out
    }

    /// Drops fields the schema does not specify from a custom object, keeping the root's
    /// `apiVersion`, `kind` and `metadata` and those of embedded resources. Returns the dropped
    /// paths, sorted (`spec.foo`), for `unknown field` warnings and strict field validation.
    pub fn prune(&self, value: &mut Value) -> Vec<String> {
        pruning::prune(value, self, true)
    }

    /// Applies `default`s to a custom object: missing properties, and nulls where the schema is
    /// not nullable, get a copy of their default; recursing through properties,
    /// additionalProperties and items.
    pub fn default(&self, value: &mut Value) {
        defaulting::default(value, self);
    }

    /// Removes `null` values of non-nullable fields that have no default, as upstream does after
    /// defaulting when reading objects from storage and on writes.
    pub fn prune_nulls(&self, value: &mut Value) {
        defaulting::prune_nulls(value, self);
    }

    /// The schema as published in `/openapi/v3` (without the group-version-kind extension,
    /// which only the API server knows).
    pub fn openapi_v3(&self) -> Value {
        openapi::publish(self, false)
    }

    /// The schema as published in `/openapi/v2`: without `nullable`, `allOf`/`anyOf`/`oneOf`/`not`,
    /// and without the shape of nullable or unknown-field-preserving nodes.
    pub fn openapi_v2(&self) -> Value {
        openapi::publish(self, true)
    }
}
