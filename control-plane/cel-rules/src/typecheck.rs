//! A schema-aware static check of CRD rules: the part of cel-go's checker that refuses a rule
//! when the CRD is written, with the schema's types (upstream `SchemaDeclType`) declared for
//! `self` and `oldSelf`.
//!
//! It reports two kinds of errors, in cel-go's words and at cel-go's positions:
//! - a field selected (`self.x`, `has(self.x)`, `self.?x`) that an object schema does not
//!   declare: `undefined field 'x'`;
//! - an operator, or `size`, applied to operands whose types are all known precisely (from the
//!   schema or from literals) and that it has no overload for:
//!   `found no matching overload for '_+_' applied to '(string, int)'`.
//!
//! It never refuses what cel-go accepts: whatever it cannot type precisely is `dyn`, which
//! matches everything. That includes `x-kubernetes-int-or-string`, schemas without a type,
//! the unknown fields of `x-kubernetes-preserve-unknown-fields` objects (upstream refuses
//! those, this check lets them pass), results of functions it does not model, comprehension
//! accumulators and objects' type names (cel-go prints generated names, so mismatches involving
//! objects are not reported).

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, SourceInfo};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrBool,
};

use crate::program::{CompileError, Program, escape};
use crate::validator::{additional_schema, items_schema};

/// A CEL type as the checker knows it; [`Ty::Dyn`] when it does not.
#[derive(Clone, Debug)]
enum Ty<'s> {
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    /// A type value (`int`, `type(x)`).
    Type,
    List(Box<Ty<'s>>),
    Map(Box<Ty<'s>>, Box<Ty<'s>>),
    /// An object schema with `properties`; `true` at the root of a resource, where `apiVersion`,
    /// `kind` and `metadata` are declared whatever the schema says.
    Object(&'s JSONSchemaProps, bool),
    /// `metadata` at the root of a resource: `name` and `generateName`, and whatever the
    /// schema declares (upstream declares only those two unless the schema does).
    Meta(Option<&'s JSONSchemaProps>),
    Optional(Box<Ty<'s>>),
}

impl<'s> Ty<'s> {
    /// The type upstream declares for values of `s` (`SchemaDeclType`), `dyn` where it is
    /// not sure. `root` is true at the root of a resource or an embedded resource.
    fn of(s: &'s JSONSchemaProps, root: bool) -> Ty<'s> {
        if s.x_kubernetes_int_or_string == Some(true) {
            return Ty::Dyn;
        }
        let embedded = |c: &JSONSchemaProps| c.x_kubernetes_embedded_resource == Some(true);
        match s.type_.as_deref() {
            Some("object") => {
                if let Some(a) = additional_schema(s) {
                    return Ty::Map(Box::new(Ty::String), Box::new(Ty::of(a, embedded(a))));
                }
                if matches!(
                    s.additional_properties,
                    Some(JSONSchemaPropsOrBool::Bool(true))
                ) {
                    return Ty::Dyn;
                }
                let no_props = s.properties.as_ref().is_none_or(|p| p.is_empty());
                if no_props && !root && s.x_kubernetes_preserve_unknown_fields == Some(true) {
                    return Ty::Dyn;
                }
                Ty::Object(s, root)
            }
            Some("array") => Ty::List(Box::new(
                items_schema(s).map_or(Ty::Dyn, |i| Ty::of(i, embedded(i))),
            )),
            Some("string") => match s.format.as_deref() {
                Some("byte") => Ty::Bytes,
                Some("duration") => Ty::Duration,
                Some("date") | Some("date-time") => Ty::Timestamp,
                _ => Ty::String,
            },
            Some("integer") => Ty::Int,
            Some("number") => Ty::Double,
            Some("boolean") => Ty::Bool,
            _ => Ty::Dyn,
        }
    }

    /// The type of field `name` selected on this object type: `None` when it is undefined.
    fn field(&self, name: &str) -> Option<Ty<'s>> {
        match self {
            Ty::Object(s, root) => {
                if *root {
                    match name {
                        "apiVersion" | "kind" => return Some(Ty::String),
                        "metadata" => {
                            return Some(Ty::Meta(
                                s.properties.as_ref().and_then(|p| p.get("metadata")),
                            ));
                        }
                        _ => {}
                    }
                }
                let declared = s.properties.as_ref().and_then(|props| {
                    props.iter().find(|(p, _)| {
                        // Upstream declares escaped names; a reserved word is also found
                        // unescaped (`recognizeKeywordAsFieldName`).
                        escape(p).as_deref().unwrap_or(p) == name || *p == name
                    })
                });
                match declared {
                    Some((_, p)) => Some(Ty::of(p, p.x_kubernetes_embedded_resource == Some(true))),
                    // Upstream refuses unknown fields of objects that preserve them; let them be.
                    None if s.x_kubernetes_preserve_unknown_fields == Some(true) => Some(Ty::Dyn),
                    None => None,
                }
            }
            Ty::Meta(_) if matches!(name, "name" | "generateName") => Some(Ty::String),
            Ty::Meta(Some(declared)) => match Ty::of(declared, false) {
                t @ Ty::Object(..) => t.field(name),
                _ => Some(Ty::Dyn),
            },
            Ty::Meta(None) => None,
            Ty::Map(_, v) => Some((**v).clone()),
            _ => Some(Ty::Dyn),
        }
    }

    /// cel-go's name of the type, `None` unless known exactly and printable as cel-go does.
    fn name(&self) -> Option<String> {
        Some(match self {
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Uint => "uint".into(),
            Ty::Double => "double".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Duration => "google.protobuf.Duration".into(),
            Ty::Timestamp => "google.protobuf.Timestamp".into(),
            Ty::List(e) => format!("list({})", e.name()?),
            Ty::Map(k, v) => format!("map({}, {})", k.name()?, v.name()?),
            Ty::Dyn | Ty::Null | Ty::Type | Ty::Object(..) | Ty::Meta(_) | Ty::Optional(_) => {
                return None;
            }
        })
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }

    /// The same type, as far as results go: what `[a, b]` and `c ? a : b` keep.
    fn same(&self, other: &Ty<'s>) -> bool {
        match (self, other) {
            (Ty::List(a), Ty::List(b)) | (Ty::Optional(a), Ty::Optional(b)) => a.same(b),
            (Ty::Map(k1, v1), Ty::Map(k2, v2)) => k1.same(k2) && v1.same(v2),
            (Ty::Object(a, r1), Ty::Object(b, r2)) => std::ptr::eq(*a, *b) && r1 == r2,
            (Ty::Dyn, _) | (_, Ty::Dyn) => false,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

/// Type-checks a compiled CRD rule (or message expression) with `self` of schema `s`; `root`
/// when `s` is the root of the resource or an embedded resource; `oldSelf` is optional when
/// the rule sets `optionalOldSelf`.
pub(crate) fn check(
    program: &Program,
    s: &JSONSchemaProps,
    root: bool,
    optional_old_self: bool,
) -> Result<(), CompileError> {
    let self_ty = Ty::of(s, root || s.x_kubernetes_embedded_resource == Some(true));
    let old_ty = if optional_old_self {
        Ty::Optional(Box::new(self_ty.clone()))
    } else {
        self_ty.clone()
    };
    let mut c = Checker {
        scopes: vec![("self".to_owned(), self_ty), ("oldSelf".to_owned(), old_ty)],
        errors: Vec::new(),
    };
    c.infer(program.ast());
    let info = program.source_info();
    let source = program.source();
    c.errors
        .into_iter()
        .map(|(id, message)| {
            let (line, column) = position(info, source, id);
            CompileError::Check {
                line,
                column,
                message,
            }
        })
        // cel-go reports errors sorted by position; the first is what a client sees first.
        .min_by_key(|e| match e {
            CompileError::Check { line, column, .. } => (*line, *column),
            _ => (0, 0),
        })
        .map_or(Ok(()), Err)
}

/// The 1-based line and column of node `id`, as cel-go prints them: in characters, while the
/// parser's offsets are in bytes.
fn position(info: &SourceInfo, source: &str, id: u64) -> (isize, isize) {
    let Some((start, _)) = info.offset_for(id) else {
        return (1, 1);
    };
    let mut end = (start as usize).min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() as isize + 1;
    let column = before[line_start..].chars().count() as isize + 1;
    (line, column)
}

struct Checker<'s> {
    /// Variables in scope, innermost last.
    scopes: Vec<(String, Ty<'s>)>,
    /// Node ids and messages of the errors found.
    errors: Vec<(u64, String)>,
}

impl<'s> Checker<'s> {
    fn infer(&mut self, e: &IdedExpr) -> Ty<'s> {
        match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::UInt(_) => Ty::Uint,
            },
            Expr::Ident(name) => self.ident(name),
            Expr::Select(s) => {
                let operand = self.infer(&s.operand);
                let t = self.select(e.id, operand, &s.field);
                if s.test { Ty::Bool } else { t }
            }
            Expr::Call(c) => {
                let target = c.target.as_ref().map(|t| self.infer(t));
                let args: Vec<Ty<'s>> = c.args.iter().map(|a| self.infer(a)).collect();
                self.call(e.id, &c.func_name, target, args, &c.args)
            }
            Expr::List(l) => {
                let elems: Vec<Ty<'s>> = l.elements.iter().map(|x| self.infer(x)).collect();
                if !l.optional_indices.is_empty() {
                    return Ty::List(Box::new(Ty::Dyn));
                }
                Ty::List(Box::new(unify(&elems)))
            }
            Expr::Map(m) => {
                let (mut keys, mut values) = (Vec::new(), Vec::new());
                let mut optional = false;
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        keys.push(self.infer(&me.key));
                        values.push(self.infer(&me.value));
                        optional |= me.optional;
                    }
                }
                if optional {
                    return Ty::Map(Box::new(Ty::Dyn), Box::new(Ty::Dyn));
                }
                Ty::Map(Box::new(unify(&keys)), Box::new(unify(&values)))
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.infer(&f.value);
                    }
                }
                Ty::Dyn
            }
            Expr::Comprehension(c) => {
                let range = self.infer(&c.iter_range);
                let init = self.infer(&c.accu_init);
                let (first, second) = match (&range, &c.iter_var2) {
                    (Ty::List(elem), None) => ((**elem).clone(), None),
                    (Ty::List(elem), Some(_)) => (Ty::Int, Some((**elem).clone())),
                    (Ty::Map(k, _), None) => ((**k).clone(), None),
                    (Ty::Map(k, v), Some(_)) => ((**k).clone(), Some((**v).clone())),
                    (_, v2) => (Ty::Dyn, v2.as_ref().map(|_| Ty::Dyn)),
                };
                let depth = self.scopes.len();
                // The accumulator is `dyn` inside the loop: its steps are the macros' own.
                self.scopes.push((c.accu_var.clone(), Ty::Dyn));
                self.scopes.push((c.iter_var.clone(), first));
                if let (Some(v2), Some(t2)) = (&c.iter_var2, second) {
                    self.scopes.push((v2.clone(), t2));
                }
                self.infer(&c.loop_cond);
                self.infer(&c.loop_step);
                self.scopes.truncate(depth);
                // The result sees the accumulator only, typed by its initial value when that
                // is a scalar (`all` and `exists` start from a bool).
                let accu = match init {
                    Ty::Bool | Ty::Int => init,
                    _ => Ty::Dyn,
                };
                self.scopes.push((c.accu_var.clone(), accu));
                let result = self.infer(&c.result);
                self.scopes.truncate(depth);
                result
            }
            Expr::Unspecified => Ty::Dyn,
        }
    }

    fn ident(&self, name: &str) -> Ty<'s> {
        if let Some((_, t)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
            return t.clone();
        }
        match name {
            "int" | "uint" | "double" | "string" | "bytes" | "bool" | "list" | "map"
            | "null_type" | "type" | "duration" | "timestamp" | "dyn" => Ty::Type,
            _ => Ty::Dyn,
        }
    }

    /// `operand.field`, also on an optional operand (whose result is optional).
    fn select(&mut self, id: u64, operand: Ty<'s>, field: &str) -> Ty<'s> {
        let (operand, optional) = match operand {
            Ty::Optional(inner) => (*inner, true),
            t => (t, false),
        };
        let t = match operand.field(field) {
            Some(t) => t,
            None => {
                self.errors.push((id, format!("undefined field '{field}'")));
                Ty::Dyn
            }
        };
        if optional {
            Ty::Optional(Box::new(t))
        } else {
            t
        }
    }

    fn no_overload(&mut self, id: u64, func: &str, args: &[&Ty<'s>], receiver: bool) {
        let names: Option<Vec<String>> = args.iter().map(|t| t.name()).collect();
        let Some(names) = names else {
            return;
        };
        let signature = if receiver {
            format!("{}.({})", names[0], names[1..].join(", "))
        } else {
            format!("({})", names.join(", "))
        };
        self.errors.push((
            id,
            format!("found no matching overload for '{func}' applied to '{signature}'"),
        ));
    }

    fn call(
        &mut self,
        id: u64,
        func: &str,
        target: Option<Ty<'s>>,
        args: Vec<Ty<'s>>,
        arg_exprs: &[IdedExpr],
    ) -> Ty<'s> {
        match (func, target, args.as_slice()) {
            ("_?._", None, [operand, _]) => {
                let Some(Expr::Literal(LiteralValue::String(field))) =
                    arg_exprs.get(1).map(|a| &a.expr)
                else {
                    return Ty::Dyn;
                };
                let t = self.select(id, operand.clone(), field.inner());
                match t {
                    Ty::Optional(_) => t,
                    t => Ty::Optional(Box::new(t)),
                }
            }
            ("_[_]", None, [a, _]) => match a {
                Ty::List(e) => (**e).clone(),
                Ty::Map(_, v) => (**v).clone(),
                _ => Ty::Dyn,
            },
            ("_[?_]", None, [a, _]) => {
                let container = match a {
                    Ty::Optional(inner) => &**inner,
                    t => t,
                };
                Ty::Optional(Box::new(match container {
                    Ty::List(e) => (**e).clone(),
                    Ty::Map(_, v) => (**v).clone(),
                    _ => Ty::Dyn,
                }))
            }
            ("_&&_" | "_||_", None, [a, b]) => {
                if !a.is_bool_or_vague() || !b.is_bool_or_vague() {
                    self.no_overload(id, func, &[a, b], false);
                }
                Ty::Bool
            }
            ("!_", None, [a]) => {
                if !a.is_bool_or_vague() {
                    self.no_overload(id, func, &[a], false);
                }
                Ty::Bool
            }
            ("@not_strictly_false", None, _) => Ty::Bool,
            ("_?_:_", None, [c, a, b]) => {
                if !c.is_bool_or_vague() {
                    self.no_overload(id, func, &[c, a, b], false);
                }
                if a.same(b) { a.clone() } else { Ty::Dyn }
            }
            ("-_", None, [a]) => match a {
                Ty::Int | Ty::Double | Ty::Duration => a.clone(),
                _ => {
                    self.no_overload(id, func, &[a], false);
                    Ty::Dyn
                }
            },
            ("_+_" | "_-_" | "_*_" | "_/_" | "_%_", None, [a, b]) => match arithmetic(func, a, b) {
                Some(t) => t,
                None => {
                    self.no_overload(id, func, &[a, b], false);
                    Ty::Dyn
                }
            },
            ("_<_" | "_<=_" | "_>_" | "_>=_", None, [a, b]) => {
                let ordered = |t: &Ty| {
                    matches!(
                        t,
                        Ty::Bool
                            | Ty::Int
                            | Ty::Uint
                            | Ty::Double
                            | Ty::String
                            | Ty::Bytes
                            | Ty::Duration
                            | Ty::Timestamp
                    )
                };
                let ok = (a.is_numeric() && b.is_numeric())
                    || (ordered(a) && std::mem::discriminant(a) == std::mem::discriminant(b));
                if !ok {
                    self.no_overload(id, func, &[a, b], false);
                }
                Ty::Bool
            }
            ("_==_" | "_!=_", None, [a, b]) => {
                if class(a).is_some() && class(b).is_some() && class(a) != class(b) {
                    self.no_overload(id, func, &[a, b], false);
                }
                Ty::Bool
            }
            ("@in", None, [a, b]) => {
                let contained = match b {
                    Ty::List(e) => Some(&**e),
                    Ty::Map(k, _) => Some(&**k),
                    _ => None,
                };
                match contained {
                    Some(e) if class(a).is_some() && class(e).is_some() && class(a) != class(e) => {
                        self.no_overload(id, func, &[a, b], false);
                    }
                    None if class(b).is_some() => self.no_overload(id, func, &[a, b], false),
                    _ => {}
                }
                Ty::Bool
            }
            ("size", None, [a]) => {
                if !a.has_size() {
                    self.no_overload(id, func, &[a], false);
                }
                Ty::Int
            }
            ("size", Some(t), []) => {
                if !t.has_size() {
                    self.no_overload(id, func, &[&t], true);
                }
                Ty::Int
            }
            ("hasValue", Some(Ty::Optional(_)), []) => Ty::Bool,
            ("value", Some(Ty::Optional(inner)), []) => *inner,
            ("orValue", Some(Ty::Optional(inner)), [d]) => {
                if inner.same(d) {
                    *inner
                } else {
                    Ty::Dyn
                }
            }
            ("or", Some(Ty::Optional(inner)), [Ty::Optional(other)]) => {
                if inner.same(other) {
                    Ty::Optional(inner)
                } else {
                    Ty::Optional(Box::new(Ty::Dyn))
                }
            }
            ("int", None, [_]) => Ty::Int,
            ("uint", None, [_]) => Ty::Uint,
            ("double", None, [_]) => Ty::Double,
            ("string", None, [_]) => Ty::String,
            ("bytes", None, [_]) => Ty::Bytes,
            ("bool", None, [_]) => Ty::Bool,
            ("duration", None, [_]) => Ty::Duration,
            ("timestamp", None, [_]) => Ty::Timestamp,
            ("type", None, [_]) => Ty::Type,
            ("matches", None, [_, _]) => Ty::Bool,
            ("startsWith" | "endsWith" | "matches", Some(t), [_]) => {
                if t.name().is_some() && !matches!(t, Ty::String) {
                    // Only the receiver is checked: the overloads all take a string.
                    let arg = args[0].clone();
                    if arg.name().is_some() {
                        self.no_overload(id, func, &[&t, &arg], true);
                    }
                }
                Ty::Bool
            }
            _ => Ty::Dyn,
        }
    }
}

impl Ty<'_> {
    fn is_bool_or_vague(&self) -> bool {
        matches!(self, Ty::Bool) || self.name().is_none()
    }

    /// Whether `size` takes it (or it is not known exactly).
    fn has_size(&self) -> bool {
        matches!(self, Ty::String | Ty::Bytes | Ty::List(_) | Ty::Map(..)) || self.name().is_none()
    }
}

/// For equality: which values can ever be equal, for types known exactly. Numbers compare
/// across types; lists and maps are not compared element-wise here.
fn class(t: &Ty) -> Option<u8> {
    t.name()?;
    Some(match t {
        Ty::Int | Ty::Uint | Ty::Double => 0,
        Ty::Bool => 1,
        Ty::String => 2,
        Ty::Bytes => 3,
        Ty::Duration => 4,
        Ty::Timestamp => 5,
        Ty::List(_) => 6,
        Ty::Map(..) => 7,
        _ => return None,
    })
}

/// The result of an arithmetic operator on `a` and `b`: `None` when both are known exactly and
/// cel-go has no overload for them, `dyn` when either is not known exactly.
fn arithmetic<'s>(op: &str, a: &Ty<'s>, b: &Ty<'s>) -> Option<Ty<'s>> {
    if a.name().is_none() || b.name().is_none() {
        // A list of unknown elements is still a list.
        return match (op, a, b) {
            ("_+_", Ty::List(_), Ty::List(_)) => Some(Ty::List(Box::new(Ty::Dyn))),
            _ => Some(Ty::Dyn),
        };
    }
    use Ty::*;
    let same = std::mem::discriminant(a) == std::mem::discriminant(b);
    Some(match (op, a, b) {
        ("_+_" | "_-_" | "_*_" | "_/_", Int | Uint | Double, _) if same => a.clone(),
        ("_%_", Int | Uint, _) if same => a.clone(),
        ("_+_", String | Bytes, _) if same => a.clone(),
        ("_+_", List(x), List(y)) => {
            if x.same(y) {
                a.clone()
            } else {
                List(Box::new(Dyn))
            }
        }
        ("_+_", Timestamp, Duration) | ("_+_", Duration, Timestamp) => Timestamp,
        ("_+_" | "_-_", Duration, Duration) => Duration,
        ("_-_", Timestamp, Timestamp) => Duration,
        ("_-_", Timestamp, Duration) => Timestamp,
        _ => return None,
    })
}

/// The element type of a list literal: the elements' when they all agree.
fn unify<'s>(types: &[Ty<'s>]) -> Ty<'s> {
    match types.split_first() {
        Some((first, rest)) if rest.iter().all(|t| first.same(t)) => first.clone(),
        _ => Ty::Dyn,
    }
}
