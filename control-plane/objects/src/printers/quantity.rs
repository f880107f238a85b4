//! Resource quantities as upstream's `resource.Quantity.String()` prints them: the canonical form
//! (`1.5Gi` → `1536Mi`, `1000m` → `1`, `1.5` → `1500m`, `2000` → `2k`).

/// How a quantity was written, which decides how it is printed (`resource.Format`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `Ki`, `Mi`, … suffixes.
    BinarySi,
    /// `m`, `k`, `M`, … suffixes, or none.
    DecimalSi,
    /// `e3`, `E-6`.
    DecimalExponent,
}

/// The canonical text of a quantity written as `s`, or `None` when `s` is not a quantity.
pub(super) fn canonical(s: &str) -> Option<String> {
    let (mut mantissa, mut scale, format) = parse(s)?;
    // Upstream keeps nine decimal places and rounds anything finer up (away from zero).
    if scale < -9 {
        let div = pow10(u32::try_from(-9 - scale).ok()?)?;
        let rounded = mantissa / div
            + if mantissa % div != 0 {
                mantissa.signum()
            } else {
                0
            };
        mantissa = rounded;
        scale = -9;
    }
    if mantissa == 0 {
        return Some("0".to_owned());
    }
    let mut format = format;
    if format == Format::BinarySi {
        let integer = integer_value(mantissa, scale);
        match integer {
            Some(v) if v > -1024 && v < 1024 => format = Format::DecimalSi,
            Some(_) => {}
            None => format = Format::DecimalSi,
        }
    }
    if format == Format::BinarySi {
        let mut v = integer_value(mantissa, scale)?;
        let mut exp = 0;
        while v != 0 && v % 1024 == 0 {
            v /= 1024;
            exp += 1;
        }
        let suffix = match exp {
            0 => "",
            1 => "Ki",
            2 => "Mi",
            3 => "Gi",
            4 => "Ti",
            5 => "Pi",
            6 => "Ei",
            _ => return None,
        };
        return Some(format!("{v}{suffix}"));
    }
    // Decimal: strip factors of ten, then move the exponent down to a multiple of three.
    let mut exp = scale;
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exp = exp.checked_add(1)?;
    }
    let down = exp.rem_euclid(3);
    mantissa = mantissa.checked_mul(pow10(down.unsigned_abs())?)?;
    exp = exp.checked_sub(down)?;
    let suffix = if exp == 0 {
        String::new()
    } else if format == Format::DecimalExponent {
        format!("e{exp}")
    } else {
        match exp {
            -9 => "n".to_owned(),
            -6 => "u".to_owned(),
            -3 => "m".to_owned(),
            3 => "k".to_owned(),
            6 => "M".to_owned(),
            9 => "G".to_owned(),
            12 => "T".to_owned(),
            15 => "P".to_owned(),
            18 => "E".to_owned(),
            _ => format!("e{exp}"),
        }
    };
    Some(format!("{mantissa}{suffix}"))
}

/// `(mantissa, decimal scale, format)`: the value is `mantissa × 10^scale`, binary suffixes
/// already multiplied in.
fn parse(s: &str) -> Option<(i128, i32, Format)> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return None;
    }
    let mut mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut scale = -i32::try_from(fraction.len()).ok()?;
    let (format, binary, decimal) = match suffix {
        "" => (Format::DecimalSi, 0, 0),
        "Ki" => (Format::BinarySi, 1, 0),
        "Mi" => (Format::BinarySi, 2, 0),
        "Gi" => (Format::BinarySi, 3, 0),
        "Ti" => (Format::BinarySi, 4, 0),
        "Pi" => (Format::BinarySi, 5, 0),
        "Ei" => (Format::BinarySi, 6, 0),
        "n" => (Format::DecimalSi, 0, -9),
        "u" => (Format::DecimalSi, 0, -6),
        "m" => (Format::DecimalSi, 0, -3),
        "k" => (Format::DecimalSi, 0, 3),
        "M" => (Format::DecimalSi, 0, 6),
        "G" => (Format::DecimalSi, 0, 9),
        "T" => (Format::DecimalSi, 0, 12),
        "P" => (Format::DecimalSi, 0, 15),
        "E" => (Format::DecimalSi, 0, 18),
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            (Format::DecimalExponent, 0, exp.parse::<i32>().ok()?)
        }
    };
    for _ in 0..binary {
        mantissa = mantissa.checked_mul(1024)?;
    }
    scale = scale.checked_add(decimal)?;
    if negative {
        mantissa = -mantissa;
    }
    Some((mantissa, scale, format))
}

/// The value as an integer, if it is one.
fn integer_value(mantissa: i128, scale: i32) -> Option<i128> {
    if scale >= 0 {
        mantissa.checked_mul(pow10(u32::try_from(scale).ok()?)?)
    } else {
        let div = pow10(u32::try_from(-scale).ok()?)?;
        (mantissa % div == 0).then_some(mantissa / div)
    }
}

fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn canonical_forms() {
        for (input, want) in [
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("512", "512"),
            ("2048", "2048"),
            ("2000", "2k"),
            ("1000m", "1"),
            ("1.5", "1500m"),
            ("100m", "100m"),
            ("0", "0"),
            ("0Mi", "0"),
            ("0.0", "0"),
            ("1e3", "1e3"),
            ("1200e-3", "1200e-3"),
            ("1.2e3", "1200"),
            ("0.3Ki", "307200m"),
            ("1Ki", "1Ki"),
            ("1023", "1023"),
            ("-1Gi", "-1Gi"),
            ("0.0000000001", "1n"),
            ("10G", "10G"),
            ("500Mi", "500Mi"),
        ] {
            assert_eq!(canonical(input).as_deref(), Some(want), "{input}");
        }
        for bad in [
            "",
            "Gi",
            "1.2.3",
            "1Xi",
            "1e",
            "abc",
            "10e2147483647",
            "1e-2147483648",
            "999999999999999999999999999999Ei",
            "1234567890123456789012345678901",
        ] {
            assert_eq!(canonical(bad), None, "{bad}");
        }
    }
}
