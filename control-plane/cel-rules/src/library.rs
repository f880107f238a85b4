//! Kubernetes' CEL libraries on top of the standard environment (k8s.io/apiserver/pkg/cel/library):
//! lists, regex, the typed IP, CIDR, URL and quantity libraries, plus the cel-go strings
//! extension.

use std::cmp::Ordering;
use std::sync::{Arc, LazyLock};

use cel::common::types::{self, CelBool, CelInt, CelString};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{Env, ExecutionError, Value};

/// The one environment every program runs in: built once, shared.
pub(crate) static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(build()));

/// Every function name a program may call, with the macros: what compiling checks calls against.
pub(crate) const FUNCTIONS: &[&str] = &[
    // Standard CEL.
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "size",
    "matches",
    "startsWith",
    "endsWith",
    "contains",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "duration",
    "timestamp",
    "type",
    "dyn",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    // cel-go strings extension.
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
    "format",
    "strings.quote",
    "reverse",
    // Kubernetes lists, regex, IP, CIDR, URL and quantity libraries.
    "isSorted",
    "sum",
    "min",
    "max",
    "find",
    "findAll",
    "isIP",
    "isCIDR",
    "isURL",
    "isQuantity",
    // ip.go
    "ip",
    "ip.isCanonical",
    "family",
    "isUnspecified",
    "isLoopback",
    "isLinkLocalMulticast",
    "isLinkLocalUnicast",
    "isGlobalUnicast",
    // cidr.go
    "cidr",
    "containsIP",
    "containsCIDR",
    "masked",
    "prefixLength",
    // urls.go
    "url",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
    // quantity.go
    "quantity",
    "sign",
    "isInteger",
    "asInteger",
    "asApproximateFloat",
    "add",
    "sub",
    "isGreaterThan",
    "isLessThan",
    "compareTo",
];

fn build() -> Env {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .expect("the strings extension declares once");
    register(&mut env).expect("the Kubernetes libraries declare once");
    env
}

type R<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    use types::{DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE};
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], list_min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], list_max)?;
    env.add_member_overload(
        "indexOf",
        "list_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        list_index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        list_last_index_of,
    )?;
    env.add_member_overload("find", "string_find", STRING_TYPE, vec![STRING_TYPE], find)?;
    env.add_member_overload(
        "findAll",
        "string_find_all",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_n",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all_n,
    )?;
    ip::register(env)?;
    cidr::register(env)?;
    urls::register(env)?;
    quantity::register(env)?;
    Ok(())
}

fn owned<'b, 'v>(v: Value) -> R<'b, 'v> {
    let boxed: Box<dyn Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn list_arg(v: &dyn Val) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match Value::try_from(v)? {
        Value::List(l) => Ok(l),
        other => Err(other.error_expected_type(cel::objects::ValueType::List)),
    }
}

fn str_arg(v: &dyn Val) -> Result<&str, ExecutionError> {
    v.downcast_ref::<CelString>()
        .map(|s| s.inner())
        .ok_or_else(|| ExecutionError::UnexpectedType {
            got: v.get_type().name().to_owned(),
            want: "string".to_owned(),
        })
}

/// CEL ordering for the comparable scalar types; `None` for mixed or unordered types.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::UInt(a), Value::UInt(b)) => Some(a.cmp(b)),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
        (Value::Int(a), Value::UInt(b)) => Some(i128::from(*a).cmp(&i128::from(*b))),
        (Value::UInt(a), Value::Int(b)) => Some(i128::from(*a).cmp(&i128::from(*b))),
        (Value::Int(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
        (Value::Float(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Value::UInt(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
        (Value::Float(a), Value::UInt(b)) => a.partial_cmp(&(*b as f64)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Bytes(a), Value::Bytes(b)) => Some(a.cmp(b)),
        (Value::Duration(a), Value::Duration(b)) => Some(a.cmp(b)),
        (Value::Timestamp(a), Value::Timestamp(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn no_overload(function: &str, a: &Value, b: &Value) -> ExecutionError {
    ExecutionError::no_such_overload(
        function,
        vec![a.type_of().to_string(), b.type_of().to_string()],
    )
}

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let list = list_arg(&*args[0])?;
    for w in list.windows(2) {
        match compare(&w[0], &w[1]) {
            Some(Ordering::Greater) => return owned(Value::Bool(false)),
            Some(_) => {}
            None => return Err(no_overload("isSorted", &w[0], &w[1])),
        }
    }
    owned(Value::Bool(true))
}

fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let list = list_arg(&*args[0])?;
    let mut acc = match list.first() {
        None => return owned(Value::Int(0)),
        Some(Value::Int(_)) => Value::Int(0),
        Some(Value::UInt(_)) => Value::UInt(0),
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(Value::Duration(_)) => Value::Duration(chrono::Duration::zero()),
        Some(other) => return Err(no_overload("sum", other, other)),
    };
    for item in list.iter() {
        acc = match (&acc, item) {
            (Value::Int(a), Value::Int(b)) => Value::Int(
                a.checked_add(*b)
                    .ok_or_else(|| ExecutionError::Overflow("+", Value::Int(*a), Value::Int(*b)))?,
            ),
            (Value::UInt(a), Value::UInt(b)) => {
                Value::UInt(a.checked_add(*b).ok_or_else(|| {
                    ExecutionError::Overflow("+", Value::UInt(*a), Value::UInt(*b))
                })?)
            }
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            (Value::Duration(a), Value::Duration(b)) => Value::Duration(*a + *b),
            (a, b) => return Err(no_overload("sum", a, b)),
        };
    }
    owned(acc)
}

fn extreme<'b, 'v>(args: Vec<CowVal<'b, 'v>>, name: &str, want: Ordering) -> R<'b, 'v> {
    let list = list_arg(&*args[0])?;
    let mut best = list.first().ok_or_else(|| {
        ExecutionError::function_error(name, format!("{name}(list) called on an empty list"))
    })?;
    for item in list.iter().skip(1) {
        match compare(item, best) {
            Some(o) if o == want => best = item,
            Some(_) => {}
            None => return Err(no_overload(name, best, item)),
        }
    }
    owned(best.clone())
}

fn list_min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    extreme(args, "min", Ordering::Less)
}

fn list_max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    extreme(args, "max", Ordering::Greater)
}

fn list_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let list = list_arg(&*args[0])?;
    let needle = Value::try_from(&*args[1])?;
    let i = list
        .iter()
        .position(|v| *v == needle)
        .map_or(-1, |i| i as i64);
    owned(Value::Int(i))
}

fn list_last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let list = list_arg(&*args[0])?;
    let needle = Value::try_from(&*args[1])?;
    let i = list
        .iter()
        .rposition(|v| *v == needle)
        .map_or(-1, |i| i as i64);
    owned(Value::Int(i))
}

fn regex(function: &str, re: &str) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(re).map_err(|e| ExecutionError::function_error(function, e))
}

fn find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let s = str_arg(&*args[0])?;
    let re = regex("find", str_arg(&*args[1])?)?;
    let found = re.find(s).map_or("", |m| m.as_str());
    owned(Value::String(Arc::new(found.to_owned())))
}

fn find_all_limited<'b, 'v>(args: Vec<CowVal<'b, 'v>>, limit: i64) -> R<'b, 'v> {
    let s = str_arg(&*args[0])?;
    let re = regex("findAll", str_arg(&*args[1])?)?;
    let take = if limit < 0 {
        usize::MAX
    } else {
        limit as usize
    };
    let all: Vec<Value> = re
        .find_iter(s)
        .take(take)
        .map(|m| Value::String(Arc::new(m.as_str().to_owned())))
        .collect();
    owned(Value::List(Arc::new(all)))
}

fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    find_all_limited(args, -1)
}

fn find_all_n<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let n = match Value::try_from(&*args[2])? {
        Value::Int(n) => n,
        other => return Err(other.error_expected_type(cel::objects::ValueType::Int)),
    };
    find_all_limited(args, n)
}

fn predicate<'b, 'v>(args: Vec<CowVal<'b, 'v>>, f: fn(&str) -> bool) -> R<'b, 'v> {
    let s = str_arg(&*args[0])?;
    owned(Value::Bool(f(s)))
}

/// The library value of type `T` that `v` holds, as an overload declared for `T` receives it.
fn val_arg<T: StaticVal>(v: &dyn Val) -> Result<&T, ExecutionError> {
    v.downcast_ref::<T>()
        .ok_or_else(|| ExecutionError::UnexpectedType {
            got: v.get_type().name().to_owned(),
            want: T::cel_type().name().to_owned(),
        })
}

fn bool_val<'b, 'v>(b: bool) -> R<'b, 'v> {
    Ok(CowVal::owned(CelBool::from(b)))
}

fn int_val<'b, 'v>(i: i64) -> R<'b, 'v> {
    Ok(CowVal::owned(CelInt::from(i)))
}

fn string_val<'b, 'v>(s: String) -> R<'b, 'v> {
    Ok(CowVal::owned(CelString::from(s)))
}

/// Go's `%q` of a string, as upstream's messages quote their input.
fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// Implements [`Val`] for a library type: its CEL type (`type()` of a value), equality by
/// `PartialEq`, and downcasting, so that overloads declared for the type receive it.
macro_rules! library_val {
    ($t:ty, $cel:expr) => {
        impl cel::common::value::Val for $t {
            fn get_type(&self) -> &cel::common::types::Type {
                <Self as cel::common::value::Val>::cel_type()
            }
            fn cel_type() -> &'static cel::common::types::Type {
                &$cel
            }
            fn equals(&self, other: &dyn cel::common::value::Val) -> bool {
                other.downcast_ref::<$t>().is_some_and(|o| o == self)
            }
            fn clone_as_boxed<'v>(&self) -> Box<dyn cel::common::value::Val + 'v> {
                Box::new(self.clone())
            }
            fn as_any(&self) -> Option<&dyn std::any::Any> {
                Some(self)
            }
        }
        impl cel::common::value::StaticVal for $t {}
    };
}

// After the macro, which they use.
mod cidr;
mod ip;
mod quantity;
mod urls;
