//! One compiled CEL expression and its evaluation over JSON values.

use std::collections::HashMap;

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use cel::{Context, ExecutionError, Value};
use serde_json::Value as Json;

use crate::cost;
use crate::library::{ENV, FUNCTIONS};

/// Why an expression does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The text is not CEL.
    #[error("ERROR: <input>:{line}:{column}: Syntax error: {message}")]
    Syntax {
        /// 1-based line of the first error.
        line: isize,
        /// 1-based column of the first error.
        column: isize,
        /// The parser's explanation.
        message: String,
    },
    /// The expression names a variable that is not declared.
    #[error("ERROR: <input>:1:1: undeclared reference to '{0}' (in container '')")]
    UndeclaredReference(String),
    /// The expression calls a function this environment does not have.
    #[error("ERROR: <input>:1:1: undeclared reference to '{0}' (in container '')")]
    UndeclaredFunction(String),
    /// A CRD rule does not type-check against its schema: it selects a field the schema does
    /// not declare (`undefined field 'x'`), or applies an operator to operands of types it has
    /// no overload for (`found no matching overload for '_+_' applied to '(string, int)'`).
    #[error("ERROR: <input>:{line}:{column}: {message}")]
    Check {
        /// 1-based line of the offending node, as cel-go reports it.
        line: isize,
        /// 1-based column of the offending node: a selection's `.`, an operator's symbol, a
        /// call's `(`.
        column: isize,
        /// cel-go's explanation.
        message: String,
    },
}

/// Why an evaluation failed, in cel-go's words where a client sees them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A map or object lacks the key the expression reads.
    #[error("no such key: {0}")]
    NoSuchKey(String),
    /// A function or operator was applied to arguments of types it does not take.
    #[error("no such overload")]
    NoSuchOverload,
    /// The evaluation cost more than the per-call limit.
    #[error("operation cancelled: actual cost limit exceeded")]
    CostLimitExceeded,
    /// The expression evaluated to neither a boolean nor a string.
    #[error("expected a bool or string result, got {0}")]
    UnexpectedResult(String),
    /// Any other runtime error (index out of bounds, division by zero, overflow...).
    #[error("{0}")]
    Other(String),
}

impl From<ExecutionError> for EvalError {
    fn from(e: ExecutionError) -> Self {
        match e {
            ExecutionError::NoSuchKey(k) => EvalError::NoSuchKey(k.to_string()),
            ExecutionError::NoSuchOverload(_)
            | ExecutionError::UnexpectedType { .. }
            | ExecutionError::ValuesNotComparable(..)
            | ExecutionError::UnsupportedBinaryOperator(..)
            | ExecutionError::UnsupportedTargetType { .. } => EvalError::NoSuchOverload,
            ExecutionError::IndexOutOfBounds(i) => EvalError::Other(format!(
                "index out of bounds: {}",
                crate::program::display(&i)
            )),
            ExecutionError::DivisionByZero(_) => EvalError::Other("division by zero".to_owned()),
            ExecutionError::RemainderByZero(_) => EvalError::Other("modulus by zero".to_owned()),
            ExecutionError::Overflow(..) => EvalError::Other("integer overflow".to_owned()),
            ExecutionError::FunctionError { message, .. } => EvalError::Other(message),
            other => EvalError::Other(other.to_string()),
        }
    }
}

/// What an expression evaluated to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A boolean: a validation, a match condition.
    Bool(bool),
    /// A string: a message expression.
    String(String),
}

/// A compiled CEL expression: parsed once, evaluated many times.
#[derive(Debug)]
pub struct Program {
    program: cel::Program,
    source: String,
    uses: Vec<String>,
}

impl Program {
    /// Compiles `expr` for an environment that declares the variables `vars` and Kubernetes'
    /// libraries. Names outside `vars` and functions outside the libraries are compile errors.
    pub fn compile(expr: &str, vars: &[&str]) -> Result<Program, CompileError> {
        let program = ENV.compile(expr).map_err(|errors| {
            let first = errors.errors.first();
            CompileError::Syntax {
                line: first.map_or(1, |e| e.pos.0.max(0) + 1),
                column: first.map_or(1, |e| e.pos.1.max(0) + 1),
                message: first.map_or_else(|| errors.to_string(), |e| e.msg.clone()),
            }
        })?;
        let mut check = Checker {
            vars,
            scopes: Vec::new(),
            uses: Vec::new(),
            error: None,
        };
        check.walk(program.expression());
        if let Some(e) = check.error {
            return Err(e);
        }
        Ok(Program {
            program,
            source: expr.to_owned(),
            uses: check.uses,
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression reads the declared variable `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.uses.iter().any(|u| u == name)
    }

    pub(crate) fn ast(&self) -> &IdedExpr {
        self.program.expression()
    }

    /// Where each node of the expression was written.
    pub(crate) fn source_info(&self) -> &cel::common::ast::SourceInfo {
        self.program.source_info()
    }

    /// Evaluates with each `(name, value)` bound; JSON `null` binds CEL `null`. Fails with
    /// [`EvalError::CostLimitExceeded`] past the per-call limit (see [`crate::PER_CALL_LIMIT`]).
    pub fn eval(&self, activation: &[(&str, &Json)]) -> Result<Outcome, EvalError> {
        let cost = cost::runtime(self.ast(), &|name| {
            activation.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        });
        if cost > crate::PER_CALL_LIMIT {
            return Err(EvalError::CostLimitExceeded);
        }
        let mut ctx = Context::with_env(ENV.clone());
        for (name, value) in activation {
            ctx.add_variable_as_val(*name, to_val(value));
        }
        self.run(&ctx)
    }

    pub(crate) fn run(&self, ctx: &Context<'_, '_>) -> Result<Outcome, EvalError> {
        let out = Value::resolve_val(self.program.expression(), ctx)?;
        if let Some(b) = out.downcast_ref::<CelBool>() {
            return Ok(Outcome::Bool(*b.inner()));
        }
        if let Some(s) = out.downcast_ref::<CelString>() {
            return Ok(Outcome::String(s.inner().to_owned()));
        }
        Err(EvalError::UnexpectedResult(
            out.get_type().name().to_owned(),
        ))
    }
}

/// A CEL value as cel-go prints it in errors.
pub(crate) fn display(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::String(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

/// JSON into CEL, borrowing every string: numbers that are integers become `int`, others
/// `double`; objects become maps with string keys.
pub(crate) fn to_val(v: &Json) -> Box<dyn Val + '_> {
    match v {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Json::String(s) => Box::new(CelString::from(s.as_str())),
        Json::Array(items) => Box::new(CelList::from(items.iter().map(to_val).collect::<Vec<_>>())),
        Json::Object(map) => {
            let entries: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = map
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.as_str()), to_val(v)))
                .collect();
            Box::new(CelMap::from(entries))
        }
    }
}

/// Checks names against the declared variables and the library, tracking comprehension scopes.
struct Checker<'a> {
    vars: &'a [&'a str],
    scopes: Vec<Vec<String>>,
    uses: Vec<String>,
    error: Option<CompileError>,
}

impl Checker<'_> {
    fn walk(&mut self, e: &IdedExpr) {
        if self.error.is_some() {
            return;
        }
        match &e.expr {
            Expr::Ident(name) => self.ident(name),
            Expr::Select(s) => {
                // A namespaced function or a qualified identifier is not used here: selects
                // on declared variables are the only qualified names the environment has.
                self.walk(&s.operand);
            }
            Expr::Call(c) => {
                if let Some(t) = &c.target
                    && let Expr::Ident(ns) = &t.expr
                    && FUNCTIONS.contains(&format!("{ns}.{}", c.func_name).as_str())
                {
                    // A namespaced function such as `ip.isCanonical(s)` or `strings.quote(s)`:
                    // the target names the namespace, not a variable, as when evaluating.
                    c.args.iter().for_each(|a| self.walk(a));
                    return;
                }
                if !is_operator(&c.func_name) && !FUNCTIONS.contains(&c.func_name.as_str()) {
                    self.error = Some(CompileError::UndeclaredFunction(c.func_name.clone()));
                    return;
                }
                if let Some(t) = &c.target {
                    self.walk(t);
                }
                for a in &c.args {
                    self.walk(a);
                }
            }
            Expr::List(l) => l.elements.iter().for_each(|x| self.walk(x)),
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.walk(&me.key);
                        self.walk(&me.value);
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.walk(&f.value);
                    }
                }
            }
            Expr::Comprehension(c) => {
                self.walk(&c.iter_range);
                self.walk(&c.accu_init);
                let mut scope = vec![c.iter_var.clone(), c.accu_var.clone()];
                if let Some(v2) = &c.iter_var2 {
                    scope.push(v2.clone());
                }
                self.scopes.push(scope);
                self.walk(&c.loop_cond);
                self.walk(&c.loop_step);
                self.walk(&c.result);
                self.scopes.pop();
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn ident(&mut self, name: &str) {
        if self.scopes.iter().any(|s| s.iter().any(|v| v == name)) {
            return;
        }
        if self.vars.contains(&name) {
            if !self.uses.iter().any(|u| u == name) {
                self.uses.push(name.to_owned());
            }
            return;
        }
        const TYPES: &[&str] = &[
            "int",
            "uint",
            "double",
            "string",
            "bytes",
            "bool",
            "list",
            "map",
            "null_type",
            "type",
            "duration",
            "timestamp",
            "dyn",
        ];
        if !TYPES.contains(&name) {
            self.error = Some(CompileError::UndeclaredReference(name.to_owned()));
        }
    }
}

fn is_operator(name: &str) -> bool {
    name.starts_with('_')
        || name == "-_"
        || name.starts_with('@')
        || name.starts_with('!')
        || name == "optional.of"
        || name == "optional.none"
        || name == "optional.ofNonZeroValue"
        || name == "hasValue"
        || name == "value"
        || name == "orValue"
        || name == "or"
}

/// Where a schema declares properties whose names are not CEL identifiers: those are bound
/// under upstream's escaped names (`namespace` as `__namespace__`, `a-b` as `a__dash__b`).
#[derive(Debug, Default)]
pub(crate) struct Shape {
    props: HashMap<String, (Option<String>, Option<Shape>)>,
    items: Option<Box<Shape>>,
    additional: Option<Box<Shape>>,
}

const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Upstream's escaping of a property name, `None` when it needs none.
pub(crate) fn escape(name: &str) -> Option<String> {
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    if !name.contains(['.', '-', '/']) && !name.contains("__") {
        return None;
    }
    Some(
        name.replace("__", "__underscores__")
            .replace('.', "__dot__")
            .replace('-', "__dash__")
            .replace('/', "__slash__"),
    )
}

impl Shape {
    /// The shape of `s`, `None` when nothing below needs escaping.
    pub(crate) fn of(
        s: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps,
    ) -> Option<Shape> {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
            JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
        };
        let mut shape = Shape::default();
        for (name, p) in s.properties.iter().flatten() {
            let esc = escape(name);
            let sub = Shape::of(p);
            if esc.is_some() || sub.is_some() {
                shape.props.insert(name.clone(), (esc, sub));
            }
        }
        if let Some(JSONSchemaPropsOrArray::Schema(items)) = &s.items {
            shape.items = Shape::of(items).map(Box::new);
        }
        if let Some(JSONSchemaPropsOrBool::Schema(a)) = &s.additional_properties {
            shape.additional = Shape::of(a).map(Box::new);
        }
        let empty = shape.props.is_empty() && shape.items.is_none() && shape.additional.is_none();
        (!empty).then_some(shape)
    }
}

/// [`to_val`] with the property names `shape` marks escaped.
pub(crate) fn to_val_shaped<'a>(v: &'a Json, shape: Option<&Shape>) -> Box<dyn Val + 'a> {
    let Some(shape) = shape else {
        return to_val(v);
    };
    match v {
        Json::Array(items) => Box::new(CelList::from(
            items
                .iter()
                .map(|x| to_val_shaped(x, shape.items.as_deref()))
                .collect::<Vec<_>>(),
        )),
        Json::Object(map) => {
            let entries: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = map
                .iter()
                .map(|(k, v)| match shape.props.get(k) {
                    Some((esc, sub)) => {
                        let key = match esc {
                            Some(e) => CelMapKey::from(e.clone()),
                            None => CelMapKey::from(k.as_str()),
                        };
                        (key, to_val_shaped(v, sub.as_ref()))
                    }
                    None => (
                        CelMapKey::from(k.as_str()),
                        to_val_shaped(v, shape.additional.as_deref()),
                    ),
                })
                .collect();
            Box::new(CelMap::from(entries))
        }
        other => to_val(other),
    }
}

impl Shape {
    /// The shape of property `name`'s value.
    pub(crate) fn child(&self, name: &str) -> Option<&Shape> {
        match self.props.get(name) {
            Some((_, sub)) => sub.as_ref(),
            None => self.additional.as_deref(),
        }
    }
}
