//! The quantity library (k8s.io/apiserver/pkg/cel/library/quantity.go) over a port of
//! `resource.Quantity` (k8s.io/apimachinery/pkg/api/resource/quantity.go).
//!
//! A quantity keeps upstream's two representations, because `isInteger()` and `asInteger()`
//! answer from them: `int64Amount` (an `int64` times a power of ten) converts to an integer only
//! with a scale of zero or more, `inf.Dec` never. Values are exact decimals; where upstream's
//! `inf.Dec` grows without bound, this one stops at 38 significant digits and fails instead.

use std::cmp::Ordering;

use cel::common::types::{CelDouble, INT_TYPE, STRING_TYPE, Type};
use cel::common::value::CowVal;
use cel::{Env, ExecutionError};

use super::{R, bool_val, int_val, predicate, str_arg, val_arg};

/// Upstream's `kubernetes.Quantity`.
static QUANTITY_TYPE: Type = Type::new_unspecified_type("kubernetes.Quantity");

/// The most significant digits a decimal keeps (`i128` holds any 38-digit number).
const MAX_DIGITS: usize = 38;

#[derive(Debug, Clone, Copy)]
enum Repr {
    /// `int64Amount`: `value` × 10^`scale`.
    Int { value: i64, scale: i32 },
    /// `inf.Dec`: `m` × 10^`scale`, without trailing zeros in `m`.
    Dec { m: i128, scale: i64 },
}

/// A `resource.Quantity`; equal when `Cmp` says so (`1` equals `1000m`).
#[derive(Debug, Clone, Copy)]
struct Quantity(Repr);

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

library_val!(Quantity, QUANTITY_TYPE);

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let q = || QUANTITY_TYPE.to_owned();
    env.add_overload("isQuantity", "is_quantity", vec![STRING_TYPE], is_quantity)?;
    env.add_overload(
        "quantity",
        "string_to_quantity",
        vec![STRING_TYPE],
        string_to_quantity,
    )?;
    env.add_member_overload("sign", "quantity_sign", q(), vec![], sign)?;
    env.add_member_overload("isInteger", "quantity_is_integer", q(), vec![], is_integer)?;
    env.add_member_overload("asInteger", "quantity_as_integer", q(), vec![], as_integer)?;
    env.add_member_overload(
        "asApproximateFloat",
        "quantity_get_float",
        q(),
        vec![],
        as_approximate_float,
    )?;
    env.add_member_overload("add", "quantity_add", q(), vec![q()], add)?;
    env.add_member_overload("add", "quantity_add_int", q(), vec![INT_TYPE], add)?;
    env.add_member_overload("sub", "quantity_sub", q(), vec![q()], sub)?;
    env.add_member_overload("sub", "quantity_sub_int", q(), vec![INT_TYPE], sub)?;
    env.add_member_overload("isLessThan", "quantity_less", q(), vec![q()], is_less_than)?;
    env.add_member_overload(
        "isGreaterThan",
        "quantity_greater",
        q(),
        vec![q()],
        is_greater_than,
    )?;
    env.add_member_overload(
        "compareTo",
        "quantity_compare_to",
        q(),
        vec![q()],
        compare_to,
    )?;
    Ok(())
}

/// Why a string is not a quantity: upstream's `ErrFormatWrong`, `ErrNumeric`, `ErrSuffix`, or
/// a value past what this port represents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParseError {
    Format,
    Numeric,
    Suffix,
    TooPrecise,
}

impl ParseError {
    fn message(self) -> &'static str {
        match self {
            ParseError::Format => {
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            }
            ParseError::Numeric => "unable to parse numeric part of quantity",
            ParseError::Suffix => "unable to parse quantity's suffix",
            ParseError::TooPrecise => "quantity has more significant digits than supported (38)",
        }
    }
}

/// The parts of a quantity string: `(positive, has digits, numerator, denominator, suffix)`.
type Parts<'a> = (bool, bool, &'a str, &'a str, &'a str);

/// Upstream's `parseQuantityString`, quirks included: leading zeros are dropped, `1.` and a bare
/// sign are accepted.
fn parse_quantity_string(s: &str) -> Result<Parts<'_>, ParseError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut positive = true;
    let mut pos = 0;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    let digits_from = |from: usize| (from..end).find(|&i| !b[i].is_ascii_digit());
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    let has_digits = |upto: usize| b[..upto].iter().any(u8::is_ascii_digit);
    if pos >= end {
        return Ok((positive, true, "0", "", ""));
    }
    let Some(i) = digits_from(pos) else {
        return Ok((positive, true, &s[pos..], "", ""));
    };
    let num = if i == pos { "0" } else { &s[pos..i] };
    pos = i;
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let Some(i) = digits_from(pos) else {
            return Ok((positive, has_digits(end), num, &s[pos..], ""));
        };
        denom = &s[pos..i];
        pos = i;
    }
    let value_has_digits = has_digits(pos);
    let suffix_start = pos;
    let Some(i) = (pos..end).find(|&i| !b"eEinumkKMGTP".contains(&b[i])) else {
        return Ok((positive, value_has_digits, num, denom, &s[suffix_start..]));
    };
    pos = i;
    if matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    if digits_from(pos).is_some() {
        return Err(ParseError::Format);
    }
    Ok((positive, value_has_digits, num, denom, &s[suffix_start..]))
}

/// Upstream's `suffixHandler.interpret`: `(base, exponent, binary)`.
fn interpret(suffix: &str) -> Option<(u32, i32, bool)> {
    let dec = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = dec {
        return Some((10, e, false));
    }
    let bin = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = bin {
        return Some((2, e, true));
    }
    let rest = suffix.strip_prefix(['e', 'E']).filter(|r| !r.is_empty())?;
    // Go truncates the parsed int64 to an int32.
    rest.parse::<i64>().ok().map(|e| (10, e as i32, false))
}

/// Upstream's `ParseQuantity`.
fn parse_quantity(s: &str) -> Result<Quantity, ParseError> {
    if s.is_empty() {
        return Err(ParseError::Format);
    }
    let (positive, has_digits, num, denom, suffix) = parse_quantity_string(s)?;
    let (base, exponent, binary) = interpret(suffix).ok_or(ParseError::Suffix)?;

    // The fast path: an int64 and a decimal scale of at least nano.
    let digits = (num.len() + denom.len()) as i64;
    let (precision, mut scale, mantissa) = if !binary {
        (18 - digits, exponent, 1i64)
    } else if exponent >= 0 && denom.is_empty() {
        let p = 15 - num.len() as i64 - (exponent as f32 * 3.0 / 10.0) as i64 - 1;
        (p, 0, 1i64 << exponent)
    } else {
        (-1, 0, 1)
    };
    if precision >= 0 {
        scale = scale.wrapping_sub(denom.len() as i32);
        if scale >= -9 {
            let value: i64 = format!("{num}{denom}")
                .parse()
                .map_err(|_| ParseError::Numeric)?;
            if let Some(v) = value.checked_mul(mantissa) {
                let value = if positive { v } else { -v };
                return Ok(Quantity(Repr::Int { value, scale }));
            }
        }
    }

    // The slow path: an exact decimal, rounded up to nano, binary values capped at int64.
    if !has_digits {
        return Err(ParseError::Numeric);
    }
    let mut digits: Vec<u8> = num.bytes().chain(denom.bytes()).map(|d| d - b'0').collect();
    let mut e = -(denom.len() as i64);
    if base == 10 {
        e += i64::from(exponent);
    } else {
        for _ in 0..exponent / 20 {
            mul_small(&mut digits, 1 << 20);
        }
        mul_small(&mut digits, 1 << (exponent % 20));
    }
    if e < -9 {
        let drop = usize::try_from(-9 - e)
            .unwrap_or(usize::MAX)
            .min(digits.len());
        let kept = digits.len() - drop;
        let round_up = digits[kept..].iter().any(|&d| d != 0);
        digits.truncate(kept);
        if round_up {
            increment(&mut digits);
        }
        e = -9;
    }
    let first = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    digits.drain(..first);
    let zeros = digits.iter().rev().take_while(|&&d| d == 0).count();
    digits.truncate(digits.len() - zeros);
    e += zeros as i64;
    let cap = (i128::from(i64::MAX), 0);
    let (m, scale) = if binary && digits.len() as i64 + e > 19 {
        cap
    } else if digits.len() > MAX_DIGITS {
        return Err(ParseError::TooPrecise);
    } else {
        let m = digits
            .iter()
            .fold(0i128, |acc, &d| acc * 10 + i128::from(d));
        if binary && cmp_dec((m, e), cap) == Ordering::Greater {
            cap
        } else {
            (m, if m == 0 { 0 } else { e })
        }
    };
    let m = if positive { m } else { -m };
    Ok(Quantity(Repr::Dec { m, scale }))
}

/// `digits` (most significant first) times `k`.
fn mul_small(digits: &mut Vec<u8>, k: u64) {
    let mut carry = 0u64;
    for d in digits.iter_mut().rev() {
        let v = u64::from(*d) * k + carry;
        *d = (v % 10) as u8;
        carry = v / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

/// `digits` plus one.
fn increment(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d < 9 {
            *d += 1;
            return;
        }
        *d = 0;
    }
    digits.insert(0, 1);
}

/// `m` × 10^`k`, if it fits.
fn scale_up(m: i128, k: i128) -> Option<i128> {
    if m == 0 {
        return Some(0);
    }
    let k = u32::try_from(k).ok()?;
    m.checked_mul(10i128.checked_pow(k)?)
}

/// Exact comparison of `m` × 10^`e` decimals.
fn cmp_dec(a: (i128, i64), b: (i128, i64)) -> Ordering {
    let (sa, sb) = (a.0.signum(), b.0.signum());
    if sa != sb || sa == 0 {
        return sa.cmp(&sb);
    }
    let diff = i128::from(a.1) - i128::from(b.1);
    let ord = if diff >= 0 {
        // A mantissa too large to scale is larger than any other.
        scale_up(a.0, diff).map_or(Ordering::Greater, |x| x.abs().cmp(&b.0.abs()))
    } else {
        scale_up(b.0, -diff).map_or(Ordering::Less, |y| a.0.abs().cmp(&y.abs()))
    };
    if sa < 0 { ord.reverse() } else { ord }
}

/// `positiveScaleInt64`: `base` × 10^`scale` as an int64.
fn positive_scale_i64(base: i64, scale: i64) -> Option<i64> {
    let mut v = base;
    for _ in 0..scale {
        if v == 0 {
            break;
        }
        v = v.checked_mul(10)?;
    }
    Some(v)
}

/// `int64Amount.Add`: `None` where upstream falls back to `inf.Dec`.
fn int_add(a: (i64, i32), b: (i64, i32)) -> Option<(i64, i32)> {
    if b.0 == 0 {
        return Some(a);
    }
    if a.0 == 0 {
        return Some(b);
    }
    let diff = i64::from(a.1) - i64::from(b.1);
    if diff >= 0 {
        let c = positive_scale_i64(a.0, diff)?;
        Some((c.checked_add(b.0)?, b.1))
    } else {
        let c = positive_scale_i64(b.0, -diff)?;
        Some((a.0.checked_add(c)?, a.1))
    }
}

/// `m` × 10^`scale` without trailing zeros in `m`.
fn normalize(mut m: i128, mut scale: i64) -> Repr {
    if m == 0 {
        return Repr::Dec { m: 0, scale: 0 };
    }
    while m % 10 == 0 {
        m /= 10;
        scale += 1;
    }
    Repr::Dec { m, scale }
}

impl Quantity {
    fn dec(&self) -> (i128, i64) {
        match self.0 {
            Repr::Int { value, scale } => (i128::from(value), i64::from(scale)),
            Repr::Dec { m, scale } => (m, scale),
        }
    }

    fn cmp(&self, other: &Quantity) -> Ordering {
        cmp_dec(self.dec(), other.dec())
    }

    /// `Quantity.Add`: int64 arithmetic while it fits, exact decimals after.
    fn add(&self, other: &Quantity) -> Option<Quantity> {
        if let (
            Repr::Int {
                value: a,
                scale: sa,
            },
            Repr::Int {
                value: b,
                scale: sb,
            },
        ) = (self.0, other.0)
            && let Some((value, scale)) = int_add((a, sa), (b, sb))
        {
            return Some(Quantity(Repr::Int { value, scale }));
        }
        let ((m1, e1), (m2, e2)) = (self.dec(), other.dec());
        let e = e1.min(e2);
        let a = scale_up(m1, i128::from(e1) - i128::from(e))?;
        let b = scale_up(m2, i128::from(e2) - i128::from(e))?;
        Some(Quantity(normalize(a.checked_add(b)?, e)))
    }

    /// `Quantity.Sub`, through `int64Amount.Sub`'s negation.
    fn sub(&self, other: &Quantity) -> Option<Quantity> {
        let negated = match other.0 {
            Repr::Int { value, scale } => Repr::Int {
                value: value.wrapping_neg(),
                scale,
            },
            Repr::Dec { m, scale } => Repr::Dec { m: -m, scale },
        };
        self.add(&Quantity(negated))
    }

    /// `Quantity.AsInt64`.
    fn as_i64(&self) -> Option<i64> {
        match self.0 {
            Repr::Int { value, scale: 0 } => Some(value),
            Repr::Int { value, scale } if scale > 0 => positive_scale_i64(value, scale.into()),
            _ => None,
        }
    }

    /// `Quantity.AsApproximateFloat64`: the mantissa times Go's `math.Pow10` of the exponent.
    fn as_f64(&self) -> f64 {
        let (m, e) = self.dec();
        let base = m as f64;
        if e == 0 {
            return base;
        }
        base * go_pow10(e)
    }
}

/// Go's `math.Pow10`, table for table, so that products round as upstream's do.
fn go_pow10(n: i64) -> f64 {
    let p = |k: i64| format!("1e{k}").parse::<f64>().unwrap_or(f64::INFINITY);
    match n {
        0..=308 => p(n / 32 * 32) * p(n % 32),
        -323..=-1 => p(-(-n / 32 * 32)) / p(-n % 32),
        n if n > 0 => f64::INFINITY,
        _ => 0.0,
    }
}

fn quantity<'a>(v: &'a CowVal<'_, '_>) -> Result<&'a Quantity, ExecutionError> {
    val_arg::<Quantity>(&**v)
}

fn is_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    predicate(args, |s| {
        matches!(parse_quantity(s), Ok(_) | Err(ParseError::TooPrecise))
    })
}

fn string_to_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let q = parse_quantity(str_arg(&*args[0])?)
        .map_err(|e| ExecutionError::function_error("quantity", e.message()))?;
    Ok(CowVal::owned(q))
}

fn sign<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    int_val(quantity(&args[0])?.dec().0.signum() as i64)
}

fn is_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    bool_val(quantity(&args[0])?.as_i64().is_some())
}

fn as_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    match quantity(&args[0])?.as_i64() {
        Some(i) => int_val(i),
        None => Err(ExecutionError::function_error(
            "asInteger",
            "cannot convert value to integer",
        )),
    }
}

fn as_approximate_float<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    Ok(CowVal::owned(CelDouble::from(quantity(&args[0])?.as_f64())))
}

/// The right operand of `add` and `sub`: a quantity, or an int as `resource.NewQuantity` makes it.
fn operand(v: &CowVal<'_, '_>) -> Result<Quantity, ExecutionError> {
    if let Ok(i) = <&i64>::try_from(&**v) {
        return Ok(Quantity(Repr::Int {
            value: *i,
            scale: 0,
        }));
    }
    quantity(v).copied()
}

fn arithmetic<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    name: &str,
    f: fn(&Quantity, &Quantity) -> Option<Quantity>,
) -> R<'b, 'v> {
    let q = f(quantity(&args[0])?, &operand(&args[1])?).ok_or_else(|| {
        ExecutionError::function_error(name, "quantity has more significant digits than supported")
    })?;
    Ok(CowVal::owned(q))
}

fn add<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    arithmetic(args, "add", Quantity::add)
}

fn sub<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    arithmetic(args, "sub", Quantity::sub)
}

fn ordering(args: &[CowVal<'_, '_>]) -> Result<Ordering, ExecutionError> {
    Ok(quantity(&args[0])?.cmp(quantity(&args[1])?))
}

fn is_less_than<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    bool_val(ordering(&args)? == Ordering::Less)
}

fn is_greater_than<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    bool_val(ordering(&args)? == Ordering::Greater)
}

fn compare_to<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    int_val(ordering(&args)? as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        parse_quantity(s).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn representations_follow_upstream() {
        // The fast path keeps an int64 and a scale, uncapped.
        assert!(matches!(
            q("1e100").0,
            Repr::Int {
                value: 1,
                scale: 100
            }
        ));
        assert!(matches!(
            q("1.000").0,
            Repr::Int {
                value: 1000,
                scale: -3
            }
        ));
        assert!(matches!(
            q("1Ki").0,
            Repr::Int {
                value: 1024,
                scale: 0
            }
        ));
        // Too many digits, a binary fraction, or a large binary suffix take the decimal path.
        assert!(matches!(
            q("1.5Gi").0,
            Repr::Dec {
                m: 1610612736,
                scale: 0
            }
        ));
        assert!(matches!(q("1Ei").0, Repr::Dec { .. }));
        // Below nano rounds up, away from zero.
        assert!(matches!(q("0.0000000001").0, Repr::Dec { m: 1, scale: -9 }));
        assert!(matches!(
            q("-0.0000000001").0,
            Repr::Dec { m: -1, scale: -9 }
        ));
        // Binary values are capped at the largest int64.
        assert!(
            matches!(q("99999999999999999999Ei").0, Repr::Dec { m, scale: 0 } if m == i64::MAX.into())
        );
        // Quirks of the grammar upstream accepts.
        assert_eq!(q("-"), q("0"));
        assert_eq!(q("007"), q("7"));
        assert_eq!(q("1."), q("1"));
        for bad in ["", "1x", "1e", "1e+", "1Ke3", "--1", "1.2.3", "1 "] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_quantity(".Ei"), Err(ParseError::Numeric));
        assert_eq!(parse_quantity("1ki"), Err(ParseError::Suffix));
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(q("1").cmp(&q("1000m")), Ordering::Equal);
        assert_eq!(q("0.1").add(&q("0.2")).unwrap(), q("300m"));
        assert_eq!(q("1e100").cmp(&q("1e99")), Ordering::Greater);
        assert_eq!(q("-1e100").cmp(&q("-1e99")), Ordering::Less);
        assert_eq!(q("1Mi").sub(&q("1Ki")).unwrap(), q("1047552"));
        // int64 overflow moves to the decimal representation.
        let big = q("9223372036854775807").add(&q("1")).unwrap();
        assert!(matches!(big.0, Repr::Dec { .. }));
        assert_eq!(big.as_i64(), None);
        assert_eq!(q("2k").as_i64(), Some(2000));
        assert_eq!(q("1000m").as_i64(), None);
        assert_eq!(q("1.5").as_f64(), 1.5);
        assert_eq!(q("250m").as_f64(), 0.25);
    }
}
