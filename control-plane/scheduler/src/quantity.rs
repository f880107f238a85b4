//! Exact parsing of `resource.Quantity` text into the integers the scheduler compares.
//!
//! Upstream keeps CPU as milli-units (`MilliValue()`) and everything else as whole units
//! (`Value()`), both rounded up. Parsing goes through integer arithmetic only, so `0.1`, `100m`
//! and `1e-1` are the same 100 milli-units and `1Gi` is exactly 1073741824 bytes.

/// Parses a quantity and returns its value scaled by `10^scale`, rounded up (towards positive
/// infinity), saturating at the `i64` range. `None` when the text is not a quantity.
fn parse_scaled(s: &str, scale: i32) -> Option<i64> {
    let s = s.trim();
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(num_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if frac_part.contains('.') {
        return None;
    }
    // The quantity is digits × 10^exp10 × 2^exp2.
    let mut exp10: i32 = -(frac_part.len() as i32);
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            exp10 += exp.parse::<i32>().ok()?;
        }
    }
    exp10 += scale;
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    // More than 38 significant digits cannot be held exactly; such values saturate anyway.
    let (mut mantissa, dropped): (i128, i32) = if digits.len() > 30 {
        (digits[..30].parse().ok()?, (digits.len() - 30) as i32)
    } else if digits.is_empty() {
        (0, 0)
    } else {
        (digits.parse().ok()?, 0)
    };
    exp10 += dropped;
    let inexact_tail = dropped > 0 && digits[30..].bytes().any(|b| b != b'0');
    let limit = i128::from(i64::MAX);
    mantissa = mantissa
        .checked_shl(exp2)
        .filter(|m| *m >> exp2 == mantissa)
        .unwrap_or(limit + 1);
    let mut value = if exp10 >= 0 {
        let mut v = mantissa;
        for _ in 0..exp10 {
            v = v.saturating_mul(10);
            if v > limit {
                break;
            }
        }
        v
    } else {
        let divisor = 10i128.checked_pow((-exp10) as u32);
        match divisor {
            Some(d) => {
                let q = mantissa / d;
                if mantissa % d != 0 || inexact_tail {
                    if negative { q } else { q + 1 }
                } else {
                    q
                }
            }
            None => i128::from(mantissa != 0 && !negative),
        }
    };
    value = value.min(limit);
    Some(if negative {
        -(value as i64)
    } else {
        value as i64
    })
}

/// `Quantity.MilliValue()`: CPU in milli-units, rounded up.
pub fn milli_value(s: &str) -> Option<i64> {
    parse_scaled(s, 3)
}

/// `Quantity.Value()`: whole units (bytes, counts), rounded up.
pub fn value(s: &str) -> Option<i64> {
    parse_scaled(s, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milli_values() {
        let cases = [
            ("500m", Some(500)),
            ("1", Some(1000)),
            ("0.1", Some(100)),
            ("1.5", Some(1500)),
            ("2k", Some(2_000_000)),
            ("1e-1", Some(100)),
            ("100u", Some(1)),
            ("1n", Some(1)),
            ("0", Some(0)),
            ("-1", Some(-1000)),
            ("", None),
            ("m", None),
            ("1x", None),
            ("1.2.3", None),
        ];
        for (text, want) in cases {
            assert_eq!(milli_value(text), want, "{text}");
        }
    }

    #[test]
    fn whole_values() {
        let cases = [
            ("1Gi", Some(1 << 30)),
            ("1Ki", Some(1024)),
            ("1.5Gi", Some(1_610_612_736)),
            ("200Mi", Some(200 * 1024 * 1024)),
            ("1G", Some(1_000_000_000)),
            ("128974848", Some(128_974_848)),
            ("129e6", Some(129_000_000)),
            ("123M", Some(123_000_000)),
            ("500m", Some(1)),
            ("110", Some(110)),
            ("8Ei", Some(i64::MAX)),
            ("100E", Some(i64::MAX)),
        ];
        for (text, want) in cases {
            assert_eq!(value(text), want, "{text}");
        }
    }
}
