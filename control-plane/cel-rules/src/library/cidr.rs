//! The CIDR library (k8s.io/apiserver/pkg/cel/library/cidr.go): `cidr()`, `isCIDR()`,
//! `string(CIDR)` and the accessors of Go's `netip.Prefix`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cel::common::types::{STRING_TYPE, Type};
use cel::common::value::CowVal;
use cel::{Env, ExecutionError};

use super::ip::{IP_TYPE, Ip, parse_addr, parse_ip};
use super::{R, bool_val, int_val, predicate, quote, str_arg, string_val, val_arg};

/// Upstream's `net.CIDR`, an opaque type.
static CIDR_TYPE: Type = Type::new_unspecified_type("net.CIDR");

/// A prefix as `netip.Prefix` holds it: the address as written, not masked, and its length.
/// Equality is `netip.Prefix`'s, so `10.0.0.1/8` is not `10.0.0.0/8`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    bits: u8,
}

library_val!(Cidr, CIDR_TYPE);

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let cidr = || CIDR_TYPE.to_owned();
    env.add_overload("isCIDR", "is_cidr", vec![STRING_TYPE], is_cidr)?;
    env.add_overload("cidr", "string_to_cidr", vec![STRING_TYPE], string_to_cidr)?;
    env.add_overload("string", "cidr_to_string", vec![cidr()], to_string)?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_string",
        cidr(),
        vec![STRING_TYPE],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_ip",
        cidr(),
        vec![IP_TYPE.to_owned()],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr_string",
        cidr(),
        vec![STRING_TYPE],
        contains_cidr,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr",
        cidr(),
        vec![cidr()],
        contains_cidr,
    )?;
    env.add_member_overload("ip", "cidr_ip", cidr(), vec![], ip)?;
    env.add_member_overload("masked", "cidr_masked", cidr(), vec![], masked)?;
    env.add_member_overload(
        "prefixLength",
        "cidr_prefix_length",
        cidr(),
        vec![],
        prefix_length,
    )?;
    Ok(())
}

/// Upstream's `parseCIDR`: Go's `netip.ParsePrefix` (no zone, a decimal length without sign or
/// leading zeros) without IPv4-mapped IPv6 addresses.
fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let err = |msg: &str| format!("netip.ParsePrefix({}): {msg}", quote(s));
    let Some((addr, len)) = s.rsplit_once('/') else {
        return Err(err("no '/'"));
    };
    let ip = parse_addr(addr).map_err(|e| err(&e))?;
    if addr.contains('%') {
        return Err(err("IPv6 zones cannot be present in a prefix"));
    }
    let bad_bits = || err(&format!("bad bits after slash: {}", quote(len)));
    if len.is_empty()
        || !len.bytes().all(|b| b.is_ascii_digit())
        || (len.len() > 1 && len.starts_with('0'))
    {
        return Err(bad_bits());
    }
    let bits: u32 = len.parse().map_err(|_| bad_bits())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if bits > max {
        return Err(err("prefix length out of range"));
    }
    if let IpAddr::V6(v6) = ip
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!(
            "IPv4-mapped IPv6 address {} is not allowed",
            quote(s)
        ));
    }
    Ok(Cidr {
        addr: ip,
        bits: bits as u8,
    })
}

fn cidr_error(e: String) -> ExecutionError {
    ExecutionError::function_error(
        "cidr",
        format!("network address parse error during conversion from string: {e}"),
    )
}

impl Cidr {
    /// `netip.Prefix.Masked`: the address with the bits past the prefix cleared.
    fn masked(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32u32.saturating_sub(self.bits.into()))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(self.bits.into()))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Cidr {
            addr,
            bits: self.bits,
        }
    }

    /// `netip.Prefix.Contains`: same family, same leading bits.
    fn contains(&self, ip: IpAddr) -> bool {
        let within = Cidr {
            addr: ip,
            bits: self.bits,
        };
        self.addr.is_ipv4() == ip.is_ipv4() && within.masked() == self.masked()
    }
}

fn cidr<'a>(args: &'a [CowVal<'_, '_>]) -> Result<&'a Cidr, ExecutionError> {
    val_arg::<Cidr>(&*args[0])
}

fn is_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    predicate(args, |s| parse_cidr(s).is_ok())
}

fn string_to_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let c = parse_cidr(str_arg(&*args[0])?).map_err(cidr_error)?;
    Ok(CowVal::owned(c))
}

fn to_string<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let c = cidr(&args)?;
    string_val(format!("{}/{}", c.addr, c.bits))
}

fn contains_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let c = cidr(&args)?;
    let ip = match str_arg(&*args[1]) {
        Ok(s) => parse_ip(s).map_err(|e| ExecutionError::function_error("containsIP", e))?,
        Err(_) => val_arg::<Ip>(&*args[1])?.0,
    };
    bool_val(c.contains(ip))
}

/// Upstream's `cidrContainsCIDR`: the other prefix is at least as long, and masked to this
/// one's length it is this one.
fn contains_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    let c = cidr(&args)?;
    let other = match str_arg(&*args[1]) {
        Ok(s) => parse_cidr(s).map_err(cidr_error)?,
        Err(_) => val_arg::<Cidr>(&*args[1])?.clone(),
    };
    let same_prefix = Cidr {
        addr: other.addr,
        bits: c.bits,
    }
    .masked()
        == c.masked();
    bool_val(same_prefix && c.bits <= other.bits)
}

fn ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    Ok(CowVal::owned(Ip(cidr(&args)?.addr)))
}

fn masked<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    Ok(CowVal::owned(cidr(&args)?.masked()))
}

fn prefix_length<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> R<'b, 'v> {
    int_val(i64::from(cidr(&args)?.bits))
}
