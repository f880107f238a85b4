//! Resource quantities (`500m`, `1Gi`, `1e3`): parsing for comparison.
//!
//! Values are held as nano-units in an `i128`, the precision upstream's `resource.Quantity`
//! keeps (smaller fractions round up, as upstream does). Absurdly large values saturate, which
//! keeps comparisons right for anything a real object carries.

/// Upstream's message for a string that is not a quantity.
pub(crate) const QUANTITY_SYNTAX: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed quantity in nano-units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Quantity(pub i128);

impl Quantity {
    /// Whether the value is a whole number.
    pub(crate) fn is_integer(self) -> bool {
        self.0 % 1_000_000_000 == 0
    }
}

fn pow(base: i128, exp: u32) -> i128 {
    base.checked_pow(exp).unwrap_or(i128::MAX)
}

/// Parses a quantity string; `None` when it is not one.
pub(crate) fn parse(s: &str) -> Option<Quantity> {
    let s = s.trim();
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_len = rest
        .bytes()
        .take_while(|c| c.is_ascii_digit() || *c == b'.')
        .count();
    let (num, suffix) = rest.split_at(num_len);
    if num.is_empty() || num.matches('.').count() > 1 || num == "." {
        return None;
    }
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    // Scale: value = digits * 10^dec_exp * 2^bin_exp.
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mut mant: i128 = 0;
    let mut dropped = 0i32;
    for c in digits.bytes() {
        match mant
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(c - b'0')))
        {
            Some(m) if m < 10i128.pow(30) => mant = m,
            _ => dropped += 1,
        }
    }
    let mut dec_exp: i32 = dropped - i32::try_from(frac_part.len()).ok()?;
    let mut bin_exp: u32 = 0;
    match suffix {
        "" => {}
        "n" => dec_exp -= 9,
        "u" => dec_exp -= 6,
        "m" => dec_exp -= 3,
        "k" => dec_exp += 3,
        "M" => dec_exp += 6,
        "G" => dec_exp += 9,
        "T" => dec_exp += 12,
        "P" => dec_exp += 15,
        "E" => dec_exp += 18,
        "Ki" => bin_exp = 10,
        "Mi" => bin_exp = 20,
        "Gi" => bin_exp = 30,
        "Ti" => bin_exp = 40,
        "Pi" => bin_exp = 50,
        "Ei" => bin_exp = 60,
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            let (sign, digits) = match exp.as_bytes().first() {
                Some(b'-') => (-1, &exp[1..]),
                Some(b'+') => (1, &exp[1..]),
                _ => (1, exp),
            };
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let n: i32 = digits.parse().ok()?;
            dec_exp += sign * n;
        }
    }
    // To nano-units.
    dec_exp += 9;
    let mut v = mant.saturating_mul(pow(2, bin_exp));
    if dec_exp >= 0 {
        v = v.saturating_mul(pow(10, u32::try_from(dec_exp).ok()?));
    } else {
        let d = pow(10, dec_exp.unsigned_abs());
        let q = v / d;
        v = if v % d != 0 { q + 1 } else { q };
    }
    Some(Quantity(if neg { -v } else { v }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares() {
        assert_eq!(parse("500m"), parse("0.5"));
        assert_eq!(parse("1Gi"), parse("1073741824"));
        assert_eq!(parse("1e3"), parse("1k"));
        assert!(parse("2") > parse("1500m"));
        assert!(parse("-1").unwrap() < Quantity(0));
        assert!(parse("1.5").is_some_and(|q| !q.is_integer()));
        assert!(parse("abc").is_none());
        assert!(parse("1Xi").is_none());
        assert!(parse("").is_none());
    }
}
