//! Kubernetes' CEL libraries on top of the standard environment (k8s.io/apiserver/pkg/cel/library):
//! lists, regex, IP/CIDR, URL and quantity predicates, plus the cel-go strings extension.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use cel::common::types::{self, CelString};
use cel::common::value::{CowVal, Val};
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
    env.add_overload("isIP", "is_ip", vec![STRING_TYPE], is_ip)?;
    env.add_overload("isCIDR", "is_cidr", vec![STRING_TYPE], is_cidr)?;
    env.add_overload("isURL", "is_url", vec![STRING_TYPE], is_url)?;
    env.add_overload("isQuantity", "is_quantity", vec![STRING_TYPE], is_quantity)?;
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

/// Upstream's `isIP`: a textual IPv4 or IPv6 address, no zone, no IPv4-mapped IPv6 form.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.parse().ok()?;
    if let IpAddr::V6(v6) = ip
        && v6.to_ipv4_mapped().is_some()
    {
        return None;
    }
    Some(ip)
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let ip = parse_ip(addr)?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn is_url_str(s: &str) -> bool {
    // Go's url.ParseRequestURI: an absolute URI (scheme:...) or an absolute path, no fragment.
    if s.is_empty() || s.contains(' ') || s.contains('#') {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    match s.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

/// Upstream's `resource.ParseQuantity` grammar: sign, digits, optional fraction, optional suffix
/// (binary SI, decimal SI, or decimal exponent).
pub(crate) fn is_quantity_str(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits_end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return false;
    }
    const SUFFIXES: &[&str] = &[
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    if SUFFIXES.contains(&suffix) {
        return true;
    }
    let exp = suffix.strip_prefix(['e', 'E']);
    exp.is_some_and(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    })
}

fn predicate<'b, 'v>(args: Vec<CowVal<'b, 'v>>, f: fn(&str) -> bool) -> R<'b, 'v> {
    let s = str_arg(&*args[0])?;
    owned(Value::Bool(f(s)))
}

fn is_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    predicate(args, |s| parse_ip(s).is_some())
}

fn is_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    predicate(args, |s| parse_cidr(s).is_some())
}

fn is_url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    predicate(args, is_url_str)
}

fn is_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    predicate(args, is_quantity_str)
}
