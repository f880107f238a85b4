//! The IP library (k8s.io/apiserver/pkg/cel/library/ip.go): `ip()`, `isIP()`,
//! `ip.isCanonical()`, `string(IP)` and the accessors of Go's `netip.Addr`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cel::common::functions::Function;
use cel::common::types::{STRING_TYPE, Type};
use cel::common::value::CowVal;
use cel::{Env, ExecutionError};

use super::{R, bool_val, int_val, predicate, quote, str_arg, string_val, val_arg};

/// Upstream's `net.IP`, an opaque type.
pub(super) static IP_TYPE: Type = Type::new_unspecified_type("net.IP");

/// An address as `netip.Addr` holds it, never with a zone nor IPv4-mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ip(pub(super) IpAddr);

library_val!(Ip, IP_TYPE);

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_overload("isIP", "is_ip", vec![STRING_TYPE], is_ip)?;
    env.add_overload("ip", "string_to_ip", vec![STRING_TYPE], string_to_ip)?;
    env.add_overload(
        "ip.isCanonical",
        "ip_is_canonical",
        vec![STRING_TYPE],
        is_canonical,
    )?;
    env.add_overload(
        "string",
        "ip_to_string",
        vec![IP_TYPE.to_owned()],
        to_string,
    )?;
    env.add_member_overload("family", "ip_family", IP_TYPE.to_owned(), vec![], family)?;
    let predicates: [(&str, &str, Function); 5] = [
        ("isUnspecified", "ip_is_unspecified", is_unspecified),
        ("isLoopback", "ip_is_loopback", is_loopback),
        (
            "isLinkLocalMulticast",
            "ip_is_link_local_multicast",
            is_link_local_multicast,
        ),
        (
            "isLinkLocalUnicast",
            "ip_is_link_local_unicast",
            is_link_local_unicast,
        ),
        ("isGlobalUnicast", "ip_is_global_unicast", is_global_unicast),
    ];
    for (name, id, f) in predicates {
        env.add_member_overload(name, id, IP_TYPE.to_owned(), vec![], f)?;
    }
    Ok(())
}

/// Go's `netip.ParseAddr` error text for `s`, or the address.
pub(super) fn parse_addr(s: &str) -> Result<IpAddr, String> {
    let err = |msg: &str| format!("ParseAddr({}): {msg}", quote(s));
    let err_at = |msg: &str, at: &str| format!("ParseAddr({}): {msg} (at {})", quote(s), quote(at));
    match s.find(['.', ':', '%']).map(|i| s.as_bytes()[i]) {
        Some(b'.') => parse_ipv4(s).map(IpAddr::V4).map_err(|(msg, at)| match at {
            Some(at) => err_at(msg, at),
            None => err(msg),
        }),
        Some(b':') => {
            // Zones are parsed, then refused by the caller with upstream's own message.
            let (addr, zone) = s.split_once('%').unwrap_or((s, ""));
            match addr.parse::<Ipv6Addr>() {
                Ok(_) if s.contains('%') && zone.is_empty() => {
                    Err(err("zone must be a non-empty string"))
                }
                Ok(a) => Ok(IpAddr::V6(a)),
                Err(_) => Err(err("invalid IPv6 address")),
            }
        }
        Some(_) => Err(err("missing IPv6 address")),
        None => Err(err("unable to parse IP")),
    }
}

/// Go's `parseIPv4`: four decimal fields, no leading zeros; errors as `(message, at)`.
fn parse_ipv4(s: &str) -> Result<Ipv4Addr, (&'static str, Option<&str>)> {
    let b = s.as_bytes();
    let mut fields = [0u8; 4];
    let (mut val, mut pos, mut digits) = (0u32, 0usize, 0usize);
    for i in 0..b.len() {
        match b[i] {
            c @ b'0'..=b'9' => {
                if digits == 1 && val == 0 {
                    return Err(("IPv4 field has octet with leading zero", None));
                }
                val = val * 10 + u32::from(c - b'0');
                digits += 1;
                if val > 255 {
                    return Err(("IPv4 field has value >255", None));
                }
            }
            b'.' => {
                if i == 0 || i == b.len() - 1 || b[i - 1] == b'.' {
                    return Err(("IPv4 field must have at least one digit", Some(&s[i..])));
                }
                if pos == 3 {
                    return Err(("IPv4 address too long", None));
                }
                fields[pos] = val as u8;
                pos += 1;
                val = 0;
                digits = 0;
            }
            _ => return Err(("unexpected character", Some(&s[i..]))),
        }
    }
    if pos < 3 {
        return Err(("IPv4 address too short", None));
    }
    fields[3] = val as u8;
    Ok(Ipv4Addr::from(fields))
}

/// Upstream's `parseIPAddr`: `netip.ParseAddr` without zones or IPv4-mapped IPv6 addresses,
/// whose meaning differs between consumers.
pub(super) fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let ip = parse_addr(s).map_err(|e| {
        format!(
            "IP Address {} parse error during conversion from string: {e}",
            quote(s)
        )
    })?;
    if s.contains('%') {
        return Err(format!(
            "IP address {} with zone value is not allowed",
            quote(s)
        ));
    }
    if let IpAddr::V6(v6) = ip
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!(
            "IPv4-mapped IPv6 address {} is not allowed",
            quote(s)
        ));
    }
    Ok(ip)
}

fn is_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    predicate(args, |s| parse_ip(s).is_ok())
}

fn string_to_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let ip = parse_ip(str_arg(&*args[0])?).map_err(|e| ExecutionError::function_error("ip", e))?;
    Ok(CowVal::owned(Ip(ip)))
}

fn is_canonical<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let s = str_arg(&*args[0])?;
    let ip = parse_ip(s).map_err(|e| ExecutionError::function_error("ip.isCanonical", e))?;
    // Rust prints addresses as `netip.Addr.String` does (RFC 5952, lower case).
    bool_val(ip.to_string() == s)
}

fn to_string<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    string_val(val_arg::<Ip>(&*args[0])?.0.to_string())
}

fn ip<'a>(args: &'a [CowVal<'_, '_>]) -> Result<&'a IpAddr, ExecutionError> {
    Ok(&val_arg::<Ip>(&*args[0])?.0)
}

fn family<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    int_val(if ip(&args)?.is_ipv4() { 4 } else { 6 })
}

fn is_unspecified<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    bool_val(ip(&args)?.is_unspecified())
}

fn is_loopback<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    bool_val(ip(&args)?.is_loopback())
}

/// `netip.Addr.IsLinkLocalMulticast`: 224.0.0.0/24, ff02::/16.
fn is_link_local_multicast<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    bool_val(match ip(&args)? {
        IpAddr::V4(a) => a.octets()[..3] == [224, 0, 0],
        IpAddr::V6(a) => a.segments()[0] & 0xff0f == 0xff02,
    })
}

fn link_local_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// `netip.Addr.IsLinkLocalUnicast`: 169.254.0.0/16, fe80::/10.
fn is_link_local_unicast<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    bool_val(link_local_unicast(ip(&args)?))
}

/// `netip.Addr.IsGlobalUnicast`: anything but the unspecified, broadcast, loopback,
/// multicast and link-local addresses; private and ULA addresses count as global.
fn is_global_unicast<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let ip = ip(&args)?;
    let excluded = match ip {
        IpAddr::V4(a) => a.is_broadcast() || a.is_multicast(),
        IpAddr::V6(a) => a.is_multicast(),
    };
    bool_val(!excluded && !ip.is_unspecified() && !ip.is_loopback() && !link_local_unicast(ip))
}
