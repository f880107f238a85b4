//! A simplified cost model, after cel-go's: used statically over a schema's size bounds when a
//! rule is compiled, and at run time over the actual sizes of the values it is bound to.
//!
//! Each call, select and identifier costs 1, literals 0. A comprehension (`all`, `exists`,
//! `exists_one`, `map`, `filter`) costs its range plus `n` times its step and condition, `n`
//! being the range's size. String functions add a tenth of the string's length, list functions
//! (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`, `join`, `in`) the list's length;
//! `startsWith`, `endsWith`, `ip.isCanonical`, `containsIP` and `containsCIDR` a tenth of their
//! argument's length (upstream's library/cost.go charges parsing a string as traversing it; the
//! IP, CIDR, URL and quantity accessors and arithmetic cost the call's 1).
//! A size is known when the operand is a path from a variable (`self.spec.rules`, or a
//! comprehension's variable over such a path); otherwise it counts as 1.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use serde_json::Value as Json;

/// One step of a path from a variable.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    /// A field or a constant map key.
    Field(String),
    /// Any element of a list or map.
    Any,
}

/// How big a value reached by a path can be: elements, entries or characters.
pub(crate) trait Sizes {
    /// The size of the value at `path` from variable `root`, if known.
    fn size(&self, root: &str, path: &[Seg]) -> Option<u64>;
}

struct Estimator<'a> {
    sizes: &'a dyn Sizes,
    /// Comprehension variables bound to paths.
    scopes: Vec<(String, (String, Vec<Seg>))>,
}

/// Functions whose cost grows with their receiver's (or first argument's) length.
const STRING_FUNCTIONS: &[&str] = &[
    "matches",
    "contains",
    "find",
    "findAll",
    "split",
    "replace",
    "lowerAscii",
    "upperAscii",
    "trim",
    "substring",
    "charAt",
    "isIP",
    "isCIDR",
    "isURL",
    "isQuantity",
    "ip",
    "cidr",
    "url",
    "quantity",
];
/// Functions whose cost grows with their list's length.
const LIST_FUNCTIONS: &[&str] = &[
    "isSorted",
    "sum",
    "min",
    "max",
    "indexOf",
    "lastIndexOf",
    "join",
    "@in",
];
/// Functions whose cost grows with their argument's length.
const PREFIX_FUNCTIONS: &[&str] = &[
    "startsWith",
    "endsWith",
    "isCanonical",
    "containsIP",
    "containsCIDR",
];

impl Estimator<'_> {
    fn path(&self, e: &IdedExpr) -> Option<(String, Vec<Seg>)> {
        match &e.expr {
            Expr::Ident(name) => {
                if let Some((_, p)) = self.scopes.iter().rev().find(|(v, _)| v == name) {
                    return Some(p.clone());
                }
                Some((name.clone(), Vec::new()))
            }
            Expr::Select(s) if !s.test => {
                let (root, mut p) = self.path(&s.operand)?;
                p.push(Seg::Field(s.field.clone()));
                Some((root, p))
            }
            Expr::Call(c) if c.func_name == "_[_]" && c.args.len() == 2 => {
                let (root, mut p) = self.path(&c.args[0])?;
                match &c.args[1].expr {
                    Expr::Literal(cel::common::ast::LiteralValue::String(s)) => {
                        p.push(Seg::Field(s.to_string()))
                    }
                    _ => p.push(Seg::Any),
                }
                Some((root, p))
            }
            _ => None,
        }
    }

    fn size(&self, e: &IdedExpr) -> u64 {
        if let Some((root, p)) = self.path(e) {
            return self.sizes.size(&root, &p).unwrap_or(1);
        }
        if let Expr::Comprehension(c) = &e.expr {
            return self.size(&c.iter_range);
        }
        if let Expr::List(l) = &e.expr {
            return l.elements.len() as u64;
        }
        1
    }

    fn cost(&mut self, e: &IdedExpr) -> u64 {
        match &e.expr {
            Expr::Literal(_) | Expr::Unspecified => 0,
            Expr::Ident(_) => 1,
            Expr::Select(s) => self.cost(&s.operand).saturating_add(1),
            Expr::Call(c) => {
                let mut total: u64 = 1;
                if let Some(t) = &c.target {
                    total = total.saturating_add(self.cost(t));
                }
                for a in &c.args {
                    total = total.saturating_add(self.cost(a));
                }
                let subject = c.target.as_deref().or(c.args.first());
                let name = c.func_name.as_str();
                if let Some(subject) = subject {
                    if PREFIX_FUNCTIONS.contains(&name) {
                        let arg = c.args.last().map_or(1, |a| self.size(a));
                        total = total.saturating_add(arg.div_ceil(10));
                    } else if STRING_FUNCTIONS.contains(&name) {
                        total = total.saturating_add(self.size(subject).div_ceil(10));
                    } else if LIST_FUNCTIONS.contains(&name) {
                        let list = if name == "@in" {
                            c.args.get(1).unwrap_or(subject)
                        } else {
                            subject
                        };
                        total = total.saturating_add(self.size(list));
                    }
                }
                total
            }
            Expr::List(l) => l
                .elements
                .iter()
                .fold(1u64, |acc, x| acc.saturating_add(self.cost(x))),
            Expr::Map(m) => m.entries.iter().fold(1u64, |acc, entry| match &entry.expr {
                EntryExpr::MapEntry(me) => {
                    let k = self.cost(&me.key);
                    acc.saturating_add(k).saturating_add(self.cost(&me.value))
                }
                EntryExpr::StructField(f) => acc.saturating_add(self.cost(&f.value)),
            }),
            Expr::Struct(s) => s.entries.iter().fold(1u64, |acc, entry| match &entry.expr {
                EntryExpr::StructField(f) => acc.saturating_add(self.cost(&f.value)),
                EntryExpr::MapEntry(me) => acc.saturating_add(self.cost(&me.value)),
            }),
            Expr::Comprehension(c) => {
                let range = self.cost(&c.iter_range);
                let n = self.size(&c.iter_range);
                let init = self.cost(&c.accu_init);
                let bound = self.path(&c.iter_range).map(|(root, mut p)| {
                    p.push(Seg::Any);
                    (root, p)
                });
                let pushed = if let Some(b) = bound {
                    self.scopes.push((c.iter_var.clone(), b));
                    true
                } else {
                    false
                };
                let body = self
                    .cost(&c.loop_cond)
                    .saturating_add(self.cost(&c.loop_step));
                if pushed {
                    self.scopes.pop();
                }
                let result = self.cost(&c.result);
                range
                    .saturating_add(init)
                    .saturating_add(n.saturating_mul(body))
                    .saturating_add(result)
            }
        }
    }
}

/// The cost of `e` given `sizes`.
pub(crate) fn estimate(e: &IdedExpr, sizes: &dyn Sizes) -> u64 {
    Estimator {
        sizes,
        scopes: Vec::new(),
    }
    .cost(e)
}

struct JsonSizes<'a, F: Fn(&str) -> Option<&'a Json>>(F);

impl<'a, F: Fn(&str) -> Option<&'a Json>> Sizes for JsonSizes<'a, F> {
    fn size(&self, root: &str, path: &[Seg]) -> Option<u64> {
        let v = (self.0)(root)?;
        Some(json_size(v, path))
    }
}

fn json_size(v: &Json, path: &[Seg]) -> u64 {
    match path.split_first() {
        None => match v {
            Json::Array(a) => a.len() as u64,
            Json::Object(o) => o.len() as u64,
            Json::String(s) => s.len() as u64,
            _ => 1,
        },
        Some((Seg::Field(f), rest)) => match v {
            Json::Object(o) => o.get(f).map_or(0, |x| json_size(x, rest)),
            _ => 0,
        },
        Some((Seg::Any, rest)) => match v {
            Json::Array(a) => a.iter().map(|x| json_size(x, rest)).max().unwrap_or(0),
            Json::Object(o) => o.values().map(|x| json_size(x, rest)).max().unwrap_or(0),
            _ => 0,
        },
    }
}

/// The cost of evaluating `e` with variables bound as `vars` says.
pub(crate) fn runtime<'a>(e: &IdedExpr, vars: &dyn Fn(&str) -> Option<&'a Json>) -> u64 {
    estimate(e, &JsonSizes(vars))
}

/// Upstream's message for a static cost over its limit.
pub(crate) fn cost_error_message(what: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_owned()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{what} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}
