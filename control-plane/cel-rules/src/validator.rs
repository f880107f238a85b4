//! `x-kubernetes-validations`: compiling a CRD version's rules once and running them on writes.

use std::collections::{BTreeMap, HashMap};

use cel::Context;
use cel::common::types::{CelMap, CelMapKey, CelOptional};
use cel::common::value::Val;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, ValidationRule,
};
use objects::field::{ErrorType, FieldError, Path};
use serde_json::Value as Json;

use crate::cost::{self, Seg, Sizes};
use crate::library::ENV;
use crate::program::{EvalError, Outcome, Program, Shape, to_val_shaped};
use crate::typecheck;
use crate::{
    MAX_REQUEST_SIZE_BYTES, PER_CALL_LIMIT, RUNTIME_CEL_COST_BUDGET, STATIC_ESTIMATED_COST_LIMIT,
    STATIC_ESTIMATED_CRD_COST_LIMIT,
};

/// The compiled rules of one schema: built once per CRD version, run on every write.
#[derive(Debug)]
pub struct Validator {
    root: Node,
}

#[derive(Debug, Default)]
struct Node {
    type_name: String,
    rules: Vec<Rule>,
    properties: BTreeMap<String, Node>,
    additional: Option<Box<Node>>,
    items: Option<Box<Node>>,
    list_map_keys: Option<Vec<String>>,
    map_correlatable: bool,
    /// Escaped property names for binding `self`, where this node has rules.
    shape: Option<Shape>,
    /// Whether this node or one below has rules.
    live: bool,
}

#[derive(Debug)]
struct Rule {
    program: Program,
    text: String,
    message: String,
    message_expression: Option<Program>,
    reason: Option<String>,
    field_path: Option<String>,
    transition: bool,
    optional_old_self: bool,
}

/// A schema node's size bounds, for the static cost estimate.
struct SchemaSizes<'a>(&'a JSONSchemaProps);

fn unbounded_items(element: Option<&JSONSchemaProps>) -> u64 {
    // Upstream estimates an unbounded list or map from the largest request and the smallest
    // serialized element ("{}", "\"\"", "0" …) plus its separator.
    let min_size: u64 = match element.and_then(|e| e.type_.as_deref()) {
        Some("integer") | Some("number") => 1,
        Some("boolean") => 4,
        _ => 2,
    };
    (MAX_REQUEST_SIZE_BYTES - 2) / (min_size + 1)
}

pub(crate) fn items_schema(s: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match &s.items {
        Some(JSONSchemaPropsOrArray::Schema(b)) => Some(b),
        Some(JSONSchemaPropsOrArray::Schemas(v)) => v.first(),
        None => None,
    }
}

pub(crate) fn additional_schema(s: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match &s.additional_properties {
        Some(JSONSchemaPropsOrBool::Schema(b)) => Some(b),
        _ => None,
    }
}

fn max_size(s: &JSONSchemaProps) -> u64 {
    let bound = |v: Option<i64>| v.map(|n| n.max(0) as u64);
    match s.type_.as_deref() {
        Some("array") => bound(s.max_items).unwrap_or_else(|| unbounded_items(items_schema(s))),
        Some("object") => {
            bound(s.max_properties).unwrap_or_else(|| unbounded_items(additional_schema(s)))
        }
        Some("string") => bound(s.max_length).unwrap_or(MAX_REQUEST_SIZE_BYTES),
        _ => bound(s.max_length)
            .or(bound(s.max_items))
            .unwrap_or(MAX_REQUEST_SIZE_BYTES),
    }
}

impl Sizes for SchemaSizes<'_> {
    fn size(&self, root: &str, path: &[Seg]) -> Option<u64> {
        if root != "self" && root != "oldSelf" {
            return None;
        }
        let mut s = self.0;
        for seg in path {
            s = match seg {
                Seg::Field(f) => match s.properties.as_ref().and_then(|p| p.get(f)) {
                    Some(p) => p,
                    None => additional_schema(s)?,
                },
                Seg::Any => items_schema(s).or_else(|| additional_schema(s))?,
            };
        }
        Some(max_size(s))
    }
}

/// Go's `%#v` of the internal `apiextensions.ValidationRule`, as upstream prints the value of
/// a rule that does not compile.
fn go_rule(r: &ValidationRule) -> String {
    let ptr = |set: bool, ty: &str| {
        if set {
            format!("(*{ty})(0xc000000000)")
        } else {
            format!("(*{ty})(nil)")
        }
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{:?}, Message:{:?}, MessageExpression:{:?}, Reason:{}, FieldPath:{:?}, OptionalOldSelf:{}}}",
        r.rule,
        r.message.as_deref().unwrap_or(""),
        r.message_expression.as_deref().unwrap_or(""),
        ptr(r.reason.is_some(), "apiextensions.FieldValueErrorReason"),
        r.field_path.as_deref().unwrap_or(""),
        ptr(r.optional_old_self.is_some(), "bool"),
    )
}

/// `Invalid value: <raw>: detail` where `<raw>` is printed as is, not quoted.
fn invalid_raw(field: Path, raw: String, detail: &str) -> FieldError {
    FieldError {
        kind: ErrorType::Invalid,
        field,
        value: None,
        detail: format!("{raw}: {detail}"),
    }
}

struct Builder {
    errors: Vec<FieldError>,
    total_cost: u64,
}

impl Builder {
    fn node(
        &mut self,
        s: &JSONSchemaProps,
        path: &Path,
        cardinality: u64,
        uncorrelatable: Option<&Path>,
        root: bool,
    ) -> Node {
        let mut node = Node {
            type_name: s.type_.clone().unwrap_or_default(),
            map_correlatable: matches!(
                s.x_kubernetes_map_type.as_deref(),
                None | Some("granular") | Some("atomic")
            ),
            ..Node::default()
        };
        if let Some(rules) = &s.x_kubernetes_validations {
            for (i, r) in rules.iter().enumerate() {
                if let Some(rule) = self.rule(
                    s,
                    r,
                    &path.child("x-kubernetes-validations").index(i),
                    cardinality,
                    uncorrelatable,
                    root,
                ) {
                    node.rules.push(rule);
                }
            }
        }
        if !node.rules.is_empty() {
            node.shape = Shape::of(s);
        }
        if let Some(props) = &s.properties {
            for (name, p) in props {
                let child = self.node(
                    p,
                    &path.child("properties").key(name),
                    cardinality,
                    uncorrelatable,
                    false,
                );
                if child.live {
                    node.properties.insert(name.clone(), child);
                }
            }
        }
        if let Some(a) = additional_schema(s) {
            let card = cardinality.saturating_mul(max_size(s));
            let child = self.node(
                a,
                &path.child("additionalProperties"),
                card,
                uncorrelatable,
                false,
            );
            if child.live {
                node.additional = Some(Box::new(child));
            }
        }
        if let Some(items) = items_schema(s) {
            let card = cardinality.saturating_mul(max_size(s));
            let is_map = s.x_kubernetes_list_type.as_deref() == Some("map");
            let own;
            let unc = if is_map {
                uncorrelatable
            } else {
                own = path.clone();
                Some(uncorrelatable.unwrap_or(&own))
            };
            let child = self.node(items, &path.child("items"), card, unc, false);
            if child.live {
                node.items = Some(Box::new(child));
            }
            if is_map {
                node.list_map_keys = Some(s.x_kubernetes_list_map_keys.clone().unwrap_or_default());
            }
        }
        node.live = !node.rules.is_empty()
            || !node.properties.is_empty()
            || node.additional.is_some()
            || node.items.is_some();
        node
    }

    fn rule(
        &mut self,
        s: &JSONSchemaProps,
        r: &ValidationRule,
        path: &Path,
        cardinality: u64,
        uncorrelatable: Option<&Path>,
        root: bool,
    ) -> Option<Rule> {
        let rule_path = path.child("rule");
        if r.rule.trim().is_empty() {
            self.errors
                .push(FieldError::required(rule_path, "rule is not specified"));
            return None;
        }
        let optional_old_self = r.optional_old_self == Some(true);
        let compile = |text: &str| {
            Program::compile(text, &["self", "oldSelf"]).and_then(|p| {
                typecheck::check(&p, s, root, optional_old_self)?;
                Ok(p)
            })
        };
        let program = match compile(&r.rule) {
            Ok(p) => p,
            Err(e) => {
                self.errors.push(invalid_raw(
                    rule_path,
                    go_rule(r),
                    &format!("compilation failed: {e}"),
                ));
                return None;
            }
        };
        let sizes = SchemaSizes(s);
        let cost = cost::estimate(program.ast(), &sizes).saturating_mul(cardinality);
        if cost > STATIC_ESTIMATED_COST_LIMIT {
            self.errors.push(FieldError::forbidden(
                rule_path.clone(),
                cost::cost_error_message("estimated rule cost", cost, STATIC_ESTIMATED_COST_LIMIT),
            ));
        }
        self.total_cost = self.total_cost.saturating_add(cost);
        let transition = program.uses("oldSelf");
        if transition && let Some(unc) = uncorrelatable {
            self.errors.push(FieldError::invalid(
                rule_path.clone(),
                r.rule.clone(),
                format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {unc}"),
            ));
        }
        let message_expression = match r
            .message_expression
            .as_deref()
            .filter(|m| !m.trim().is_empty())
        {
            None => None,
            Some(m) => match compile(m) {
                Ok(p) => {
                    let cost = cost::estimate(p.ast(), &sizes).saturating_mul(cardinality);
                    if cost > STATIC_ESTIMATED_COST_LIMIT {
                        self.errors.push(FieldError::forbidden(
                            path.child("messageExpression"),
                            cost::cost_error_message(
                                "estimated messageExpression cost",
                                cost,
                                STATIC_ESTIMATED_COST_LIMIT,
                            ),
                        ));
                    }
                    self.total_cost = self.total_cost.saturating_add(cost);
                    Some(p)
                }
                Err(e) => {
                    self.errors.push(invalid_raw(
                        path.child("messageExpression"),
                        go_rule(r),
                        &format!("messageExpression compilation failed: {e}"),
                    ));
                    None
                }
            },
        };
        Some(Rule {
            program,
            text: r.rule.trim().to_owned(),
            message: r.message.as_deref().unwrap_or("").trim().to_owned(),
            message_expression,
            reason: r.reason.clone(),
            field_path: r.field_path.clone().filter(|f| !f.is_empty()),
            transition,
            optional_old_self,
        })
    }
}

impl Validator {
    /// Compiles every `x-kubernetes-validations` rule (and `messageExpression`) under `props`,
    /// following `properties`, `items` and `additionalProperties` as upstream does (rules under
    /// `allOf`, `anyOf`, `oneOf` and `not` are not structural and are not run). `base` is where
    /// the schema sits, e.g. `spec.versions[0].schema.openAPIV3Schema`; errors are upstream's,
    /// with its paths, including static cost estimates over the limits.
    pub fn new(props: &JSONSchemaProps, base: &Path) -> Result<Validator, Vec<FieldError>> {
        let mut b = Builder {
            errors: Vec::new(),
            total_cost: 0,
        };
        let root = b.node(props, base, 1, None, true);
        if b.total_cost > STATIC_ESTIMATED_CRD_COST_LIMIT {
            b.errors.push(FieldError::forbidden(
                base.clone(),
                cost::cost_error_message(
                    "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                    b.total_cost,
                    STATIC_ESTIMATED_CRD_COST_LIMIT,
                ),
            ));
        }
        if b.errors.is_empty() {
            Ok(Validator { root })
        } else {
            Err(b.errors)
        }
    }

    /// Whether any rule was compiled: a validator without rules need not run.
    pub fn is_empty(&self) -> bool {
        !self.root.live
    }

    /// Runs every rule at every node where `new` has a value, with `oldSelf` bound to the
    /// correlated part of `old` (an update's previous object). Paths are relative to the
    /// object, as upstream reports them for a custom resource.
    pub fn validate(&self, new: &Json, old: Option<&Json>) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut budget = RUNTIME_CEL_COST_BUDGET as i64;
        self.root
            .validate(&Path::default(), new, old, true, &mut budget, &mut errs);
        errs
    }
}

/// The root object as upstream binds it: `metadata` reduced to `name` and `generateName`.
fn root_val<'a>(v: &'a Json, shape: Option<&Shape>) -> Box<dyn Val + 'a> {
    let Json::Object(map) = v else {
        return to_val_shaped(v, shape);
    };
    let entries: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = map
        .iter()
        .map(|(k, v)| {
            let val = match (k.as_str(), v) {
                ("metadata", Json::Object(meta)) => {
                    let kept: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = meta
                        .iter()
                        .filter(|(k, _)| *k == "name" || *k == "generateName")
                        .map(|(k, v)| (CelMapKey::from(k.as_str()), to_val_shaped(v, None)))
                        .collect();
                    Box::new(CelMap::from(kept)) as Box<dyn Val + '_>
                }
                _ => to_val_shaped(v, shape.and_then(|s| s.child(k))),
            };
            (CelMapKey::from(k.as_str()), val)
        })
        .collect();
    Box::new(CelMap::from(entries))
}

const BUDGET_EXHAUSTED: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";

impl Node {
    #[allow(clippy::too_many_arguments)]
    fn validate(
        &self,
        path: &Path,
        new: &Json,
        old: Option<&Json>,
        is_root: bool,
        budget: &mut i64,
        errs: &mut Vec<FieldError>,
    ) {
        if *budget < 0 || new.is_null() || !self.live {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        if !self.rules.is_empty() {
            self.run_rules(path, new, old, is_root, budget, errs);
            if *budget < 0 {
                return;
            }
        }
        match new {
            Json::Object(map) => {
                let old_map = old
                    .and_then(Json::as_object)
                    .filter(|_| self.map_correlatable);
                if let Some(a) = &self.additional {
                    for (k, v) in map {
                        let ov = old_map.and_then(|m| m.get(k));
                        a.validate(&path.key(k), v, ov, false, budget, errs);
                        if *budget < 0 {
                            return;
                        }
                    }
                }
                for (k, v) in map {
                    if let Some(p) = self.properties.get(k) {
                        let ov = old_map.and_then(|m| m.get(k));
                        p.validate(&path.child(k), v, ov, false, budget, errs);
                        if *budget < 0 {
                            return;
                        }
                    }
                }
            }
            Json::Array(items) => {
                if let Some(item) = &self.items {
                    let old_items = old.and_then(Json::as_array);
                    for (i, v) in items.iter().enumerate() {
                        let ov = match (&self.list_map_keys, old_items) {
                            (Some(keys), Some(olds)) => olds.iter().find(|o| same_keys(keys, v, o)),
                            _ => None,
                        };
                        item.validate(&path.index(i), v, ov, false, budget, errs);
                        if *budget < 0 {
                            return;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn run_rules(
        &self,
        path: &Path,
        new: &Json,
        old: Option<&Json>,
        is_root: bool,
        budget: &mut i64,
        errs: &mut Vec<FieldError>,
    ) {
        if *budget <= 0 {
            errs.push(FieldError::invalid(
                path.clone(),
                self.type_name.clone(),
                BUDGET_EXHAUSTED,
            ));
            *budget = -1;
            return;
        }
        let mut ctx = Context::with_env(ENV.clone());
        let shape = self.shape.as_ref();
        let convert = |v| {
            if is_root {
                root_val(v, shape)
            } else {
                to_val_shaped(v, shape)
            }
        };
        ctx.add_variable_as_val("self", convert(new));
        let mut opt_ctx = None;
        if let Some(o) = old {
            ctx.add_variable_as_val("oldSelf", convert(o));
        } else if self.rules.iter().any(|r| r.optional_old_self) {
            let mut c = Context::with_env(ENV.clone());
            c.add_variable_as_val("self", convert(new));
            c.add_variable_as_val("oldSelf", Box::new(CelOptional::none()));
            opt_ctx = Some(c);
        }
        let vars = |name: &str| match name {
            "self" => Some(new),
            "oldSelf" => old,
            _ => None,
        };
        for rule in &self.rules {
            let ctx = match (rule.transition, old, &opt_ctx) {
                (true, None, Some(c)) if rule.optional_old_self => c,
                (true, None, _) => continue,
                _ => &ctx,
            };
            let cost = cost::runtime(rule.program.ast(), &vars);
            if cost > PER_CALL_LIMIT {
                errs.push(FieldError::invalid(
                    path.clone(),
                    self.type_name.clone(),
                    format!(
                        "'{}': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                        EvalError::CostLimitExceeded,
                        rule.error_string()
                    ),
                ));
                *budget = -1;
                return;
            }
            if cost as i64 > *budget {
                errs.push(FieldError::invalid(
                    path.clone(),
                    self.type_name.clone(),
                    BUDGET_EXHAUSTED,
                ));
                *budget = -1;
                return;
            }
            *budget -= cost as i64;
            match rule.program.run(ctx) {
                Ok(Outcome::Bool(true)) => {}
                Ok(Outcome::Bool(false)) => {
                    let detail = rule.failure_message(ctx, &vars, budget);
                    errs.push(self.failure(path, rule, detail));
                }
                Ok(Outcome::String(_)) | Err(EvalError::NoSuchOverload) => {
                    errs.push(FieldError::invalid(
                        path.clone(),
                        self.type_name.clone(),
                        format!(
                            "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {}",
                            rule.error_string()
                        ),
                    ));
                }
                Err(e) => errs.push(FieldError::invalid(
                    path.clone(),
                    self.type_name.clone(),
                    format!("{e} evaluating rule: {}", rule.error_string()),
                )),
            }
        }
    }

    fn failure(&self, path: &Path, rule: &Rule, detail: String) -> FieldError {
        let path = match &rule.field_path {
            Some(fp) => self.resolve_field_path(path, fp),
            None => path.clone(),
        };
        match rule.reason.as_deref() {
            Some("FieldValueForbidden") => FieldError::forbidden(path, detail),
            Some("FieldValueRequired") => FieldError::required(path, detail),
            Some("FieldValueDuplicate") => FieldError {
                kind: ErrorType::Duplicate,
                field: path,
                value: Some(Json::String(self.type_name.clone())),
                detail,
            },
            _ => FieldError::invalid(path, self.type_name.clone(), detail),
        }
    }

    /// Appends a rule's `fieldPath` (`.a.b`, `['a']`, `.a['b.c']`) to `path`, naming map keys as
    /// keys and properties as fields, as the schema below this node says.
    fn resolve_field_path(&self, path: &Path, fp: &str) -> Path {
        let mut out = path.clone();
        let mut node = Some(self);
        let mut rest = fp;
        while !rest.is_empty() {
            let (name, tail) = if let Some(r) = rest.strip_prefix("['") {
                match r.find("']") {
                    Some(end) => (&r[..end], &r[end + 2..]),
                    None => break,
                }
            } else if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                (&r[..end], &r[end..])
            } else {
                break;
            };
            let prop = node.and_then(|n| n.properties.get(name));
            out = match (prop, node.and_then(|n| n.additional.as_deref())) {
                (None, Some(_)) => out.key(name),
                _ => out.child(name),
            };
            node = prop.or_else(|| node.and_then(|n| n.additional.as_deref()));
            rest = tail;
        }
        out
    }
}

impl Rule {
    fn error_string(&self) -> &str {
        if self.message.is_empty() {
            &self.text
        } else {
            &self.message
        }
    }

    fn default_message(&self) -> String {
        if self.message.is_empty() {
            format!("failed rule: {}", self.text)
        } else {
            self.message.clone()
        }
    }

    fn failure_message<'a>(
        &self,
        ctx: &Context<'_, '_>,
        vars: &dyn Fn(&str) -> Option<&'a Json>,
        budget: &mut i64,
    ) -> String {
        let Some(expr) = &self.message_expression else {
            return self.default_message();
        };
        let cost = cost::runtime(expr.ast(), vars);
        if cost as i64 > *budget {
            return self.default_message();
        }
        *budget -= cost as i64;
        match expr.run(ctx) {
            Ok(Outcome::String(s)) => {
                let s = s.trim();
                if s.is_empty()
                    || s.len() > crate::MAX_EVALUATED_MESSAGE_EXPRESSION_SIZE_BYTES
                    || s.contains('\n')
                {
                    self.default_message()
                } else {
                    s.to_owned()
                }
            }
            _ => self.default_message(),
        }
    }
}

fn same_keys(keys: &[String], a: &Json, b: &Json) -> bool {
    keys.iter().all(|k| a.get(k) == b.get(k))
}
