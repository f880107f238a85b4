//! Resource quantities (`500m`, `1Gi`, `1e3`): parsing, arithmetic and upstream's canonical text.
//!
//! A value is held in nano-units in an `i128`, the precision upstream's `resource.Quantity` keeps
//! (finer values are rounded up, as upstream). The text a quantity prints is upstream's canonical
//! form in the format it was written in: `1.5` prints `1500m`, `1024Mi` prints `1Gi`, `1000` prints
//! `1k`. k8s-openapi's `Quantity` is only a string; [`Quantity::from_openapi`] parses it.

use std::cmp::Ordering;
use std::fmt;

/// How a quantity was written, which decides how it prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Decimal SI suffixes: `m`, `k`, `M`…
    DecimalSi,
    /// Binary SI suffixes: `Ki`, `Mi`, `Gi`…
    BinarySi,
    /// Decimal exponents: `1e3`.
    DecimalExponent,
}

/// A text that is not a quantity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)]
pub struct QuantityError;

/// A parsed quantity.
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// Zero, printed `0`.
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::DecimalSi,
    };

    /// A quantity of `nanos` billionths in `format`.
    pub fn from_nanos(nanos: i128, format: Format) -> Self {
        Quantity { nanos, format }
    }

    /// A whole number in decimal SI (`3` for three pods).
    pub fn from_int(v: i64) -> Self {
        Quantity::from_nanos(i128::from(v) * NANO, Format::DecimalSi)
    }

    /// Parses k8s-openapi's string quantity.
    pub fn from_openapi(
        q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    ) -> Result<Self, QuantityError> {
        q.0.parse()
    }

    /// The value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in milli-units, rounded up (upstream's `MilliValue`).
    pub fn milli_value(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000)
    }

    /// The value in units, rounded up (upstream's `Value`).
    pub fn value(&self) -> i128 {
        div_ceil(self.nanos, NANO)
    }

    /// The format the quantity prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// `self + other`, in `self`'s format (in `other`'s when `self` is zero, as upstream).
    pub fn add(&self, other: &Quantity) -> Quantity {
        let format = if self.nanos == 0 {
            other.format
        } else {
            self.format
        };
        Quantity::from_nanos(self.nanos.saturating_add(other.nanos), format)
    }

    /// `self - other`, in `self`'s format.
    pub fn sub(&self, other: &Quantity) -> Quantity {
        Quantity::from_nanos(self.nanos.saturating_sub(other.nanos), self.format)
    }

    /// `self * n`, in `self`'s format.
    pub fn mul(&self, n: i64) -> Quantity {
        Quantity::from_nanos(self.nanos.saturating_mul(i128::from(n)), self.format)
    }

    /// The k8s-openapi string form (canonical text).
    pub fn to_openapi(&self) -> k8s_openapi::apimachinery::pkg::api::resource::Quantity {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(self.to_string())
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && a > 0 { q + 1 } else { q }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, QuantityError> {
        let (neg, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, suffix) = rest.split_at(num_end);
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(QuantityError);
        }
        // (multiplier numerator as a power of 10 or 2, format)
        let (pow10, pow2, format): (i32, u32, Format) = match suffix {
            "" => (0, 0, Format::DecimalSi),
            "n" => (-9, 0, Format::DecimalSi),
            "u" => (-6, 0, Format::DecimalSi),
            "m" => (-3, 0, Format::DecimalSi),
            "k" => (3, 0, Format::DecimalSi),
            "M" => (6, 0, Format::DecimalSi),
            "G" => (9, 0, Format::DecimalSi),
            "T" => (12, 0, Format::DecimalSi),
            "P" => (15, 0, Format::DecimalSi),
            "E" => (18, 0, Format::DecimalSi),
            "Ki" => (0, 10, Format::BinarySi),
            "Mi" => (0, 20, Format::BinarySi),
            "Gi" => (0, 30, Format::BinarySi),
            "Ti" => (0, 40, Format::BinarySi),
            "Pi" => (0, 50, Format::BinarySi),
            "Ei" => (0, 60, Format::BinarySi),
            s if s.starts_with(['e', 'E']) => {
                let e: i32 = s[1..].parse().map_err(|_| QuantityError)?;
                if !(-40..=40).contains(&e) {
                    return Err(QuantityError);
                }
                (e, 0, Format::DecimalExponent)
            }
            _ => return Err(QuantityError),
        };
        // The digits as an integer with a decimal exponent.
        let digits = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(QuantityError);
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| QuantityError)?
        };
        let exp10 = pow10 + 9 - frac.len() as i32;
        let scaled = mantissa.checked_mul(1i128 << pow2).ok_or(QuantityError)?;
        let nanos = if exp10 >= 0 {
            scaled
                .checked_mul(10i128.checked_pow(exp10 as u32).ok_or(QuantityError)?)
                .ok_or(QuantityError)?
        } else {
            let d = 10i128.checked_pow((-exp10) as u32).unwrap_or(i128::MAX);
            div_ceil(scaled, d)
        };
        Ok(Quantity {
            nanos: if neg { -nanos } else { nanos },
            format,
        })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        if abs == 0 {
            return f.write_str("0");
        }
        if self.format == Format::BinarySi
            && abs.is_multiple_of(NANO as u128)
            && abs >= 1024 * NANO as u128
        {
            let mut v = abs / NANO as u128;
            let mut k = 0;
            while k < 6 && v.is_multiple_of(1024) {
                v /= 1024;
                k += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k];
            return write!(f, "{sign}{v}{suffix}");
        }
        let mut m = abs;
        let mut e = -9;
        while e < 18 && m.is_multiple_of(1000) {
            m /= 1000;
            e += 3;
        }
        if self.format == Format::DecimalExponent {
            return if e == 0 {
                write!(f, "{sign}{m}")
            } else {
                write!(f, "{sign}{m}e{e}")
            };
        }
        let suffix = match e {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        write!(f, "{sign}{m}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text() {
        let cases = [
            ("1", "1"),
            ("1.5", "1500m"),
            ("0.5", "500m"),
            ("100m", "100m"),
            ("1000m", "1"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("512", "512"),
            ("1e3", "1e3"),
            ("1E6", "1e6"),
            ("12e2", "1200"),
            ("0", "0"),
            ("-2k", "-2k"),
            ("0.1Ki", "102400m"),
            ("1n", "1n"),
            ("0.0000000001", "1n"),
        ];
        for (input, want) in cases {
            let q: Quantity = input.parse().unwrap_or_else(|_| panic!("{input}"));
            assert_eq!(q.to_string(), want, "{input}");
        }
        for bad in ["", "m", "1.2.3", "1Zi", "1 Gi", "abc", "1e"] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_and_order() {
        let a: Quantity = "500m".parse().unwrap();
        let b: Quantity = "1".parse().unwrap();
        assert_eq!(a.add(&b).to_string(), "1500m");
        assert_eq!(b.sub(&a).to_string(), "500m");
        assert!(a < b);
        let gi: Quantity = "1Gi".parse().unwrap();
        assert_eq!(Quantity::ZERO.add(&gi).to_string(), "1Gi");
        assert_eq!(b.add(&gi).to_string(), "1073741825");
        assert_eq!(
            "1Gi".parse::<Quantity>().unwrap(),
            "1073741824".parse::<Quantity>().unwrap()
        );
        assert_eq!("1.5".parse::<Quantity>().unwrap().milli_value(), 1500);
        assert_eq!("1500m".parse::<Quantity>().unwrap().value(), 2);
    }
}
