//! ValidatingAdmissionPolicy and its bindings: compiled once, evaluated per request as
//! upstream's `policy/validating` dispatcher and validator do.

use std::collections::BTreeMap;

use cel_rules::{EvalError, Outcome, Program};
use serde_json::{Value, json};

use crate::attributes::Attributes;
use crate::matching::MatchResources;
use crate::params::{self, ParamKind, ParamRef, ParamScope, ParamSource};
use crate::status::Denial;

/// The variables a policy's expressions may read. `authorizer` is not among them: expressions
/// that use it fail to compile, and are handled by the policy's failure policy.
const POLICY_VARS: &[&str] = &[
    "object",
    "oldObject",
    "request",
    "params",
    "namespaceObject",
    "variables",
];

/// Upstream `MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = cel_rules::MAX_EVALUATED_MESSAGE_EXPRESSION_SIZE_BYTES;
/// Upstream `maxAuditAnnotationValueLength`.
const MAX_AUDIT_VALUE: usize = 10 * 1024;

/// An expression and its compiled form (or why it does not compile).
#[derive(Debug)]
pub(crate) struct Expr {
    source: String,
    program: Result<Program, String>,
}

impl Expr {
    /// Compiles `source` after inlining `variables.<name>` references.
    pub(crate) fn compile(source: &str, vars: &[&str], variables: &[(String, String)]) -> Expr {
        let inlined = inline_variables(source, variables);
        Expr {
            source: source.to_owned(),
            program: Program::compile(&inlined, vars)
                .map_err(|e| format!("compilation error: {e}")),
        }
    }

    /// Evaluates, with upstream's error text (`expression '<src>' resulted in error: <err>`).
    pub(crate) fn eval(&self, activation: &[(&str, &Value)]) -> Result<Outcome, String> {
        let p = self.program.as_ref().map_err(Clone::clone)?;
        p.eval(activation).map_err(|e| {
            format!(
                "expression '{}' resulted in error: {}",
                self.source,
                eval_error_text(&e)
            )
        })
    }

    fn eval_raw(&self, activation: &[(&str, &Value)]) -> Option<Result<Outcome, EvalError>> {
        self.program.as_ref().ok().map(|p| p.eval(activation))
    }
}

fn eval_error_text(e: &EvalError) -> String {
    e.to_string()
}

/// Replaces each `variables.<name>` outside string literals by the variable's expression in
/// parentheses (itself already inlined). The interpreter underneath returns only booleans and
/// strings from an evaluation, so variables of other types cannot be evaluated separately;
/// inlining gives the same results, at the cost of evaluating a shared variable more than once.
fn inline_variables(src: &str, variables: &[(String, String)]) -> String {
    if variables.is_empty() || !src.contains("variables") {
        return src.to_owned();
    }
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            out.push(c);
            i += 1;
            continue;
        }
        let prev_ident =
            i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == '.');
        let rest: String = chars[i..].iter().take(10).collect();
        if !prev_ident && rest == "variables." {
            let start = i + 10;
            let mut end = start;
            while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                end += 1;
            }
            let name: String = chars[start..end].iter().collect();
            if let Some((_, expr)) = variables.iter().find(|(n, _)| *n == name) {
                out.push('(');
                out.push_str(expr);
                out.push(')');
                i = end;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

#[derive(Debug)]
struct Validation {
    expr: Expr,
    message: String,
    message_expr: Option<Expr>,
    reason: Option<String>,
}

/// A compiled ValidatingAdmissionPolicy.
#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) name: String,
    fail: bool,
    constraints: MatchResources,
    conditions: Vec<Expr>,
    validations: Vec<Validation>,
    audit: Vec<(String, Expr)>,
    /// `paramKind`: resolved against what the server serves on each request that matches.
    param_kind: Option<ParamKind>,
}

impl Policy {
    pub(crate) fn compile(obj: &Value) -> Policy {
        let name = str_at(obj, "/metadata/name");
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let fail = spec.get("failurePolicy").and_then(Value::as_str) != Some("Ignore");
        let mut variables: Vec<(String, String)> = Vec::new();
        for v in spec
            .get("variables")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let n = str_at(v, "/name");
            let e = inline_variables(&str_at(v, "/expression"), &variables);
            variables.push((n, e));
        }
        let c = |src: &str| Expr::compile(src, POLICY_VARS, &variables);
        let conditions = spec
            .get("matchConditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|m| c(&str_at(m, "/expression")))
            .collect();
        let validations = spec
            .get("validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| Validation {
                expr: c(&str_at(v, "/expression")),
                message: str_at(v, "/message"),
                message_expr: v
                    .get("messageExpression")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(c),
                reason: v.get("reason").and_then(Value::as_str).map(str::to_owned),
            })
            .collect();
        let audit = spec
            .get("auditAnnotations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| (str_at(a, "/key"), c(&str_at(a, "/valueExpression"))))
            .collect();
        let param_kind = spec
            .get("paramKind")
            .filter(|p| !p.is_null())
            .map(params::parse_param_kind);
        Policy {
            name,
            fail,
            constraints: MatchResources::parse(spec.get("matchConstraints")),
            conditions,
            validations,
            audit,
            param_kind,
        }
    }
}

/// A compiled ValidatingAdmissionPolicyBinding.
#[derive(Debug)]
pub(crate) struct Binding {
    pub(crate) name: String,
    pub(crate) policy: String,
    actions: Vec<String>,
    resources: Option<MatchResources>,
    param_ref: Option<ParamRef>,
}

impl Binding {
    pub(crate) fn compile(obj: &Value) -> Binding {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        Binding {
            name: str_at(obj, "/metadata/name"),
            policy: str_at(spec, "/policyName"),
            actions: spec
                .get("validationActions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            resources: spec
                .get("matchResources")
                .filter(|m| !m.is_null())
                .map(|m| MatchResources::parse(Some(m))),
            param_ref: spec
                .get("paramRef")
                .filter(|p| !p.is_null())
                .map(ParamRef::parse),
        }
    }
}

fn str_at(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// One refused validation: the message and the reason (`None` for evaluation errors).
struct Decision {
    index: usize,
    message: String,
    reason: Option<String>,
}

/// What the policies said about a request.
#[derive(Debug, Default)]
pub(crate) struct PolicyResult {
    pub(crate) warnings: Vec<String>,
    pub(crate) audit_annotations: BTreeMap<String, String>,
}

struct Denied<'a> {
    policy: &'a str,
    binding: Option<&'a str>,
    message: String,
    reason: Option<String>,
}

/// Runs every policy with its bindings over `a` (upstream `validating.dispatcher.Dispatch`),
/// once per param object for policies with a `paramKind`, read from `source`.
pub(crate) async fn validate(
    policies: &[&Policy],
    bindings: &[&Binding],
    a: &Attributes,
    source: &dyn ParamSource,
) -> Result<PolicyResult, Denial> {
    let mut out = PolicyResult::default();
    let mut denied: Vec<Denied<'_>> = Vec::new();
    let object = a.object.clone().unwrap_or(Value::Null);
    let old = a.old_object.clone().unwrap_or(Value::Null);
    let request = a.cel_request();
    // A namespace's namespaceObject is unset upstream (it has its own name as namespace).
    let ns = if a.is_namespace() {
        Value::Null
    } else {
        a.namespace_object.clone().unwrap_or(Value::Null)
    };
    let empty = json!({});
    let activation: [(&str, &Value); 6] = [
        ("object", &object),
        ("oldObject", &old),
        ("request", &request),
        ("params", &Value::Null),
        ("namespaceObject", &ns),
        ("variables", &empty),
    ];
    for p in policies {
        if !p.constraints.matches(a).unwrap_or(false) {
            continue;
        }
        // Upstream resolves paramKind when it loads the policy (generic/policy_source.go); an
        // unknown kind is the policy's configuration error.
        let kind = match &p.param_kind {
            None => None,
            Some(kind) => match resolve(kind, source).await {
                Ok(resolved) => Some(resolved),
                Err(e) => {
                    if p.fail {
                        denied.push(Denied {
                            policy: &p.name,
                            binding: None,
                            message: format!("failed to configure policy: {e}"),
                            reason: None,
                        });
                    }
                    continue;
                }
            },
        };
        let mut audit: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for b in bindings.iter().filter(|b| b.policy == p.name) {
            match b.resources.as_ref().map_or(Ok(true), |m| m.matches(a)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    if p.fail {
                        denied.push(Denied {
                            policy: &p.name,
                            binding: Some(&b.name),
                            message: format!("failed to configure binding: {}", e.message),
                            reason: None,
                        });
                    }
                    continue;
                }
            }
            let params = match params::collect(kind, b.param_ref.as_ref(), a, source).await {
                Ok(params) => params,
                Err(e) => {
                    if p.fail {
                        denied.push(Denied {
                            policy: &p.name,
                            binding: Some(&b.name),
                            message: format!("failed to configure binding: {e}"),
                            reason: None,
                        });
                    }
                    continue;
                }
            };
            let mut decisions = Vec::new();
            let mut annotations = Vec::new();
            for param in &params {
                let mut activation = activation;
                activation[3] = ("params", param);
                let (d, an) = evaluate(p, &activation);
                decisions.extend(d);
                annotations.extend(an);
            }
            for d in decisions {
                for action in &b.actions {
                    match action.as_str() {
                        "Deny" => denied.push(Denied {
                            policy: &p.name,
                            binding: Some(&b.name),
                            message: d.message.clone(),
                            reason: d.reason.clone(),
                        }),
                        "Warn" => out.warnings.push(format!(
                            "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                            p.name, b.name, d.message
                        )),
                        "Audit" => {
                            let value = json!([{
                                "message": d.message,
                                "policy": b.policy,
                                "binding": b.name,
                                "expressionIndex": d.index,
                                "validationActions": b.actions,
                            }]);
                            out.audit_annotations
                                .entry("validation.policy.admission.k8s.io/validation_failure".into())
                                .or_insert_with(|| value.to_string());
                        }
                        _ => {}
                    }
                }
            }
            for an in annotations {
                match an {
                    Ok((k, v)) => {
                        let vs = audit.entry(k).or_default();
                        if !vs.contains(&v) {
                            vs.push(v);
                        }
                    }
                    Err(message) => denied.push(Denied {
                        policy: &p.name,
                        binding: Some(&b.name),
                        message,
                        reason: None,
                    }),
                }
            }
        }
        for (k, vs) in audit {
            out.audit_annotations
                .insert(format!("{}/{k}", p.name), vs.join(", "));
        }
    }
    let Some(d) = denied.into_iter().next() else {
        return Ok(out);
    };
    let message = match d.binding {
        Some(b) => format!(
            "ValidatingAdmissionPolicy '{}' with binding '{b}' denied request: {}",
            d.policy, d.message
        ),
        None => format!(
            "ValidatingAdmissionPolicy '{}' denied request: {}",
            d.policy, d.message
        ),
    };
    let mut denial = Denial::forbidden(
        &a.resource.group,
        &a.resource.resource,
        &a.display_name(),
        &message,
    );
    let reason = d
        .reason
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "Invalid".into());
    denial.code = match reason.as_str() {
        "Forbidden" => 403,
        "Unauthorized" => 401,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    };
    denial.reason = reason;
    if let Some(Value::Object(details)) = &mut denial.details {
        details.insert("causes".into(), json!([{"message": message}]));
    }
    Err(denial)
}

/// A `paramKind` as served: the kind and its scope, or the policy's configuration error.
async fn resolve<'k>(
    kind: &'k ParamKind,
    source: &dyn ParamSource,
) -> Result<(&'k crate::attributes::Gvk, ParamScope), String> {
    let kind = kind.as_ref().map_err(Clone::clone)?;
    match source.scope(kind).await? {
        Some(scope) => Ok((kind, scope)),
        None => Err(format!(
            "failed to find resource referenced by paramKind: '{}'",
            params::gvk_string(kind)
        )),
    }
}

type Annotation = Result<(String, String), String>;

/// Upstream `validator.Validate`: match conditions, validations with their messages, audit
/// annotations. Errors deny under `failurePolicy: Fail` and are dropped under `Ignore`.
fn evaluate(p: &Policy, activation: &[(&str, &Value)]) -> (Vec<Decision>, Vec<Annotation>) {
    let error = |index: usize, message: String| Decision {
        index,
        message,
        reason: None,
    };
    let mut errors = Vec::new();
    for c in &p.conditions {
        match c.eval(activation) {
            Ok(Outcome::Bool(false)) => return (Vec::new(), Vec::new()),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        if !p.fail {
            return (Vec::new(), Vec::new());
        }
        let message = if errors.len() == 1 {
            errors.remove(0)
        } else {
            format!("[{}]", errors.join(", "))
        };
        return (vec![error(0, message)], Vec::new());
    }
    let mut decisions = Vec::new();
    for (i, v) in p.validations.iter().enumerate() {
        match v.expr.eval(activation) {
            Ok(Outcome::Bool(true)) => {}
            Err(e) => {
                if p.fail {
                    decisions.push(error(i, e));
                }
            }
            Ok(_) => {
                let mut message = String::new();
                if let Some(Some(Ok(Outcome::String(s)))) =
                    v.message_expr.as_ref().map(|m| m.eval_raw(activation))
                {
                    let s = s.trim();
                    if s.len() <= MAX_MESSAGE_BYTES && !s.contains('\n') {
                        message = s.to_owned();
                    }
                }
                if message.is_empty() {
                    message = v.message.trim().to_owned();
                }
                if message.is_empty() {
                    message = format!("failed expression: {}", v.expr.source.trim());
                }
                decisions.push(Decision {
                    index: i,
                    message,
                    reason: Some(v.reason.clone().unwrap_or_else(|| "Invalid".into())),
                });
            }
        }
    }
    let mut annotations = Vec::new();
    for (key, e) in &p.audit {
        match e.eval_raw(activation) {
            Some(Ok(Outcome::String(s))) => {
                let mut s = s.trim().to_owned();
                if !s.is_empty() {
                    if s.len() > MAX_AUDIT_VALUE {
                        let mut cut = MAX_AUDIT_VALUE;
                        while !s.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        s.truncate(cut);
                    }
                    annotations.push(Ok((key.clone(), s)));
                }
            }
            Some(Err(EvalError::UnexpectedResult(t))) if t.contains("null") => {}
            Some(Ok(Outcome::Bool(_))) => {
                if p.fail {
                    annotations.push(Err(format!(
                        "valueExpression '{}' resulted in unsupported return type: bool. Return type must be either string or null.",
                        e.source
                    )));
                }
            }
            _ => {
                if p.fail
                    && let Err(msg) = e.eval(activation)
                {
                    annotations.push(Err(msg));
                }
            }
        }
    }
    (decisions, annotations)
}

#[cfg(test)]
mod tests {
    use super::inline_variables;

    #[test]
    fn inlining_skips_strings_and_other_identifiers() {
        let vars = vec![
            ("a".to_owned(), "object.x".to_owned()),
            ("b".to_owned(), "(object.x) + 1".to_owned()),
        ];
        let cases = [
            ("variables.a == 1", "(object.x) == 1"),
            ("variables.b > variables.a", "((object.x) + 1) > (object.x)"),
            (
                "'variables.a' == x.variables.a",
                "'variables.a' == x.variables.a",
            ),
            ("variables.unknown", "variables.unknown"),
            ("myvariables.a", "myvariables.a"),
        ];
        for (src, want) in cases {
            assert_eq!(inline_variables(src, &vars), want, "{src}");
        }
    }
}
