//! Smaller kinds: `Lease`, `PriorityClass`, `StorageClass`, `PodDisruptionBudget`, `Ingress`
//! and `NetworkPolicy` (upstream's coordination, scheduling, storage, policy and networking
//! validation packages).

use std::net::IpAddr;

use serde_json::Value;

use super::json::{
    IntOrStr, Obj, arr, boolean, child, get, int, int_or_str, obj, str_or_empty, string,
};
use super::meta::{self, immutable, nonnegative};
use super::names;
use super::pod::{PROTOCOLS, one_of};
use crate::field::{FieldError, Path};

fn spec_path() -> Path {
    Path::new("spec")
}

/// Upstream's `ValidateLease`.
pub(crate) fn lease(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    if let Some(d) = int(
        get(spec, "leaseDurationSeconds"),
        &sp.child("leaseDurationSeconds"),
        e,
    ) && d <= 0
    {
        e.push(FieldError::invalid(
            sp.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = int(
        get(spec, "leaseTransitions"),
        &sp.child("leaseTransitions"),
        e,
    ) {
        nonnegative(t, &sp.child("leaseTransitions"), e);
    }
    let _ = string(get(spec, "holderIdentity"), &sp.child("holderIdentity"), e);
}

/// Upstream's `HighestUserDefinablePriority`.
const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;

/// Upstream's `ValidatePriorityClass`.
pub(crate) fn priority_class(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, false, names::name_is_dns_subdomain, e);
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = int(get(Some(root), "value"), &Path::new("value"), e).unwrap_or(0);
    if name.starts_with("system-") {
        let known = match name {
            "system-node-critical" => Some(2_000_001_000),
            "system-cluster-critical" => Some(2_000_000_000),
            _ => None,
        };
        let err = match known {
            None => Some(format!("{name} is not a known system priority class")),
            Some(v) if v != value => Some(format!("value of {name} PriorityClass must be {v}")),
            Some(_) => None,
        };
        if let Some(err) = err {
            e.push(FieldError::forbidden(
                Path::new("metadata").child("name"),
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {err}"),
            ));
        }
    } else if value > HIGHEST_USER_PRIORITY {
        e.push(FieldError::forbidden(
            Path::new("value"),
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"),
        ));
    }
    if let Some(pp) = string(
        get(Some(root), "preemptionPolicy"),
        &Path::new("preemptionPolicy"),
        e,
    ) {
        one_of(
            pp,
            &["PreemptLowerPriority", "Never"],
            &Path::new("preemptionPolicy"),
            e,
        );
    }
    boolean(
        get(Some(root), "globalDefault"),
        &Path::new("globalDefault"),
        e,
    );
}

/// Upstream's `ValidatePriorityClassUpdate` beyond the create rules.
pub(crate) fn priority_class_update(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    let v = |o: &Obj| o.get("value").and_then(Value::as_i64).unwrap_or(0);
    if v(new) != v(old) {
        e.push(FieldError::forbidden(
            Path::new("value"),
            "may not be changed in an update.",
        ));
    }
    immutable(
        new.get("preemptionPolicy"),
        old.get("preemptionPolicy"),
        &Path::new("preemptionPolicy"),
        e,
    );
}

/// Upstream's `ValidateStorageClass`.
pub(crate) fn storage_class(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, false, names::name_is_dns_subdomain, e);
    let pp = Path::new("provisioner");
    let prov = str_or_empty(get(Some(root), "provisioner"), &pp, e);
    if prov.is_empty() {
        e.push(FieldError::required(pp.clone(), ""));
    } else {
        for msg in names::qualified_name(&prov.to_lowercase()) {
            e.push(FieldError::invalid(pp.clone(), prov, msg));
        }
    }
    let rp = Path::new("reclaimPolicy");
    if let Some(r) = string(get(Some(root), "reclaimPolicy"), &rp, e)
        && r != "Delete"
        && r != "Retain"
    {
        e.push(FieldError::not_supported(rp, r, &["Delete", "Retain"]));
    }
    let bp = Path::new("volumeBindingMode");
    match string(get(Some(root), "volumeBindingMode"), &bp, e) {
        None => e.push(FieldError::required(bp, "")),
        Some(m) if m != "Immediate" && m != "WaitForFirstConsumer" => e.push(
            FieldError::not_supported(bp, m, &["Immediate", "WaitForFirstConsumer"]),
        ),
        Some(_) => {}
    }
    let params = obj(get(Some(root), "parameters"), &Path::new("parameters"), e);
    if let Some(params) = params {
        let size: usize = params
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if params.len() > 512 {
            e.push(FieldError::too_many(
                Path::new("parameters"),
                params.len(),
                512,
            ));
        }
        if size > 256 * 1024 {
            e.push(FieldError::too_long(Path::new("parameters"), 256 * 1024));
        }
        for k in params.keys() {
            if k.is_empty() {
                e.push(FieldError::invalid(
                    Path::new("parameters"),
                    k.as_str(),
                    "field can not be empty.",
                ));
            }
        }
    }
    boolean(
        get(Some(root), "allowVolumeExpansion"),
        &Path::new("allowVolumeExpansion"),
        e,
    );
}

/// Upstream's `ValidateStorageClassUpdate` beyond the create rules.
pub(crate) fn storage_class_update(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    let norm = |o: &Obj, k: &str| o.get(k).filter(|v| !v.is_null()).cloned();
    if norm(new, "parameters") != norm(old, "parameters") {
        e.push(FieldError::forbidden(
            Path::new("parameters"),
            "updates to parameters are forbidden.",
        ));
    }
    if norm(new, "provisioner") != norm(old, "provisioner") {
        e.push(FieldError::forbidden(
            Path::new("provisioner"),
            "updates to provisioner are forbidden.",
        ));
    }
    if norm(new, "reclaimPolicy") != norm(old, "reclaimPolicy") {
        e.push(FieldError::forbidden(
            Path::new("reclaimPolicy"),
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    immutable(
        new.get("volumeBindingMode"),
        old.get("volumeBindingMode"),
        &Path::new("volumeBindingMode"),
        e,
    );
}

fn int_or_percent(raw: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    match int_or_str(raw, p, e) {
        Some(IntOrStr::Int(i)) => nonnegative(i, p, e),
        Some(IntOrStr::Str(s)) => {
            let digits = s.strip_suffix('%');
            let ok = digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
            if !ok {
                e.push(FieldError::invalid(
                    p.clone(),
                    s,
                    names::regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        "[0-9]+%",
                        &["1%", "93%"],
                    ),
                ));
            } else if digits
                .and_then(|d| d.parse::<u64>().ok())
                .is_some_and(|n| n > 100)
            {
                e.push(FieldError::invalid(
                    p.clone(),
                    s,
                    "must not be greater than 100%",
                ));
            }
        }
        None => {}
    }
}

/// Upstream's `ValidatePodDisruptionBudget`.
pub(crate) fn pdb(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    let (min, max) = (get(spec, "minAvailable"), get(spec, "maxUnavailable"));
    if min.is_some() && max.is_some() {
        e.push(FieldError::invalid(
            sp.clone(),
            spec.cloned().map(Value::Object).unwrap_or(Value::Null),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    int_or_percent(min, &sp.child("minAvailable"), e);
    int_or_percent(max, &sp.child("maxUnavailable"), e);
    meta::label_selector(child(spec, "selector", &sp, e), &sp.child("selector"), e);
    if let Some(p) = string(
        get(spec, "unhealthyPodEvictionPolicy"),
        &sp.child("unhealthyPodEvictionPolicy"),
        e,
    ) && p != "AlwaysAllow"
        && p != "IfHealthyBudget"
    {
        e.push(FieldError::not_supported(
            sp.child("unhealthyPodEvictionPolicy"),
            p,
            &["AlwaysAllow", "IfHealthyBudget"],
        ));
    }
}

fn host_rule(host: &str, p: &Path, e: &mut Vec<FieldError>) {
    if host.parse::<IpAddr>().is_ok() {
        e.push(FieldError::invalid(
            p.clone(),
            host,
            "must be a DNS name, not an IP address",
        ));
        return;
    }
    if let Some(rest) = host.strip_prefix("*.") {
        if !names::dns1123_subdomain(rest).is_empty() || host.len() > 253 {
            e.push(FieldError::invalid(
                p.clone(),
                host,
                names::regex_error(
                    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
                    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
                    &["*.example.com"],
                ),
            ));
        }
    } else {
        for msg in names::dns1123_subdomain(host) {
            e.push(FieldError::invalid(p.clone(), host, msg));
        }
    }
}

fn ingress_backend(b: &Obj, p: &Path, e: &mut Vec<FieldError>) {
    let svc = child(Some(b), "service", p, e);
    let res = get(Some(b), "resource");
    match (svc, res) {
        (Some(_), Some(_)) => {
            e.push(FieldError::invalid(
                p.clone(),
                "",
                "cannot set both resource and service backends",
            ));
            return;
        }
        (None, None) => {
            e.push(FieldError::invalid(
                p.clone(),
                Value::Object(b.clone()),
                "resource or service backend is required",
            ));
            return;
        }
        _ => {}
    }
    let Some(svc) = svc else { return };
    let sp = p.child("service");
    let name = str_or_empty(get(Some(svc), "name"), &sp.child("name"), e);
    if name.is_empty() {
        e.push(FieldError::required(sp.child("name"), ""));
    } else {
        for msg in names::dns1035_label(name) {
            e.push(FieldError::invalid(sp.child("name"), name, msg));
        }
    }
    let pp = sp.child("port");
    let port = child(Some(svc), "port", &sp, e);
    let pname = str_or_empty(get(port, "name"), &pp.child("name"), e);
    let pnum = int(get(port, "number"), &pp.child("number"), e).unwrap_or(0);
    if pname.is_empty() && pnum == 0 {
        e.push(FieldError::required(pp, "port name or number is required"));
    } else if !pname.is_empty() && pnum != 0 {
        e.push(FieldError::invalid(
            pp,
            port.cloned().map(Value::Object).unwrap_or(Value::Null),
            "cannot set both port name & port number",
        ));
    } else if !pname.is_empty() {
        for msg in names::port_name(pname) {
            e.push(FieldError::invalid(pp.child("name"), pname, msg));
        }
    } else {
        for msg in names::port_num(pnum) {
            e.push(FieldError::invalid(pp.child("number"), pnum, msg));
        }
    }
}

/// Upstream's `ValidateIngressCreate` (networking.k8s.io/v1).
pub(crate) fn ingress(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    let rp = sp.child("rules");
    let rules = arr(get(spec, "rules"), &rp, e);
    let default_backend = child(spec, "defaultBackend", &sp, e);
    if rules.is_empty() && default_backend.is_none() {
        e.push(FieldError::invalid(
            sp.clone(),
            Value::from(rules.to_vec()),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        ingress_backend(b, &sp.child("defaultBackend"), e);
    }
    for (i, r) in rules.iter().enumerate() {
        let ip = rp.index(i);
        let r = obj(Some(r), &ip, e);
        let host = str_or_empty(get(r, "host"), &ip.child("host"), e);
        if !host.is_empty() {
            host_rule(host, &ip.child("host"), e);
        }
        let hp = ip.child("http");
        let Some(http) = child(r, "http", &ip, e) else {
            continue;
        };
        let pp = hp.child("paths");
        let paths = arr(get(Some(http), "paths"), &pp, e);
        if paths.is_empty() {
            e.push(FieldError::required(pp.clone(), ""));
        }
        for (j, p) in paths.iter().enumerate() {
            let jp = pp.index(j);
            let Some(p) = obj(Some(p), &jp, e) else {
                continue;
            };
            let path = str_or_empty(get(Some(p), "path"), &jp.child("path"), e);
            match string(get(Some(p), "pathType"), &jp.child("pathType"), e) {
                None => e.push(FieldError::required(
                    jp.child("pathType"),
                    "pathType must be specified",
                )),
                Some(t @ ("Exact" | "Prefix")) => {
                    if !path.starts_with('/') {
                        e.push(FieldError::invalid(
                            jp.child("path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                    let _ = t;
                }
                Some("ImplementationSpecific") => {
                    if !path.is_empty() && !path.starts_with('/') {
                        e.push(FieldError::invalid(
                            jp.child("path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                }
                Some(other) => e.push(FieldError::not_supported(
                    jp.child("pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            match child(Some(p), "backend", &jp, e) {
                Some(b) => ingress_backend(b, &jp.child("backend"), e),
                None => e.push(FieldError::invalid(
                    jp.child("backend"),
                    Value::Null,
                    "resource or service backend is required",
                )),
            }
        }
    }
    if let Some(class) = string(
        get(spec, "ingressClassName"),
        &sp.child("ingressClassName"),
        e,
    ) {
        for msg in names::dns1123_subdomain(class) {
            e.push(FieldError::invalid(
                sp.child("ingressClassName"),
                class,
                msg,
            ));
        }
    }
    let tp = sp.child("tls");
    for (i, t) in arr(get(spec, "tls"), &tp, e).iter().enumerate() {
        let t = obj(Some(t), &tp.index(i), e);
        let hp = tp.index(i).child("hosts");
        for (j, h) in arr(get(t, "hosts"), &hp, e).iter().enumerate() {
            if let Some(h) = string(Some(h), &hp.index(j), e) {
                host_rule(h, &hp.index(j), e);
            }
        }
    }
}

pub(crate) fn valid_cidr(c: &str) -> bool {
    c.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<IpAddr>().is_ok_and(|ip| {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            bits.parse::<u8>().is_ok_and(|b| b <= max)
        })
    })
}

fn np_peers(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    for (i, peer) in arr(v, p, e).iter().enumerate() {
        let pp = p.index(i);
        let Some(peer) = obj(Some(peer), &pp, e) else {
            continue;
        };
        let mut n = 0;
        for sel in ["podSelector", "namespaceSelector"] {
            if let Some(s) = child(Some(peer), sel, &pp, e) {
                n = 1;
                meta::label_selector(Some(s), &pp.child(sel), e);
            }
        }
        if let Some(b) = child(Some(peer), "ipBlock", &pp, e) {
            if n > 0 {
                e.push(FieldError::forbidden(
                    pp.clone(),
                    "may not specify both ipBlock and another peer",
                ));
            }
            n += 1;
            let bp = pp.child("ipBlock");
            let cidr = str_or_empty(get(Some(b), "cidr"), &bp.child("cidr"), e);
            if cidr.is_empty() {
                e.push(FieldError::required(bp.child("cidr"), ""));
            } else if !valid_cidr(cidr) {
                e.push(FieldError::invalid(
                    bp.child("cidr"),
                    cidr,
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
            let xp = bp.child("except");
            for (j, x) in arr(get(Some(b), "except"), &xp, e).iter().enumerate() {
                if let Some(x) = string(Some(x), &xp.index(j), e)
                    && !valid_cidr(x)
                {
                    e.push(FieldError::invalid(
                        xp.index(j),
                        x,
                        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                    ));
                }
            }
        }
        if n == 0 {
            e.push(FieldError::required(pp, "must specify a peer"));
        }
    }
}

fn np_ports(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    for (i, port) in arr(v, p, e).iter().enumerate() {
        let pp = p.index(i);
        let port = obj(Some(port), &pp, e);
        if let Some(proto) = string(get(port, "protocol"), &pp.child("protocol"), e)
            && !PROTOCOLS.contains(&proto)
        {
            e.push(FieldError::not_supported(
                pp.child("protocol"),
                proto,
                PROTOCOLS,
            ));
        }
        let pv = int_or_str(get(port, "port"), &pp.child("port"), e);
        match pv {
            Some(IntOrStr::Int(n)) => {
                for msg in names::port_num(n) {
                    e.push(FieldError::invalid(pp.child("port"), n, msg));
                }
            }
            Some(IntOrStr::Str(s)) => {
                for msg in names::port_name(s) {
                    e.push(FieldError::invalid(pp.child("port"), s, msg));
                }
            }
            None => {}
        }
        if let Some(end) = int(get(port, "endPort"), &pp.child("endPort"), e) {
            match pv {
                Some(IntOrStr::Int(n)) => {
                    if end < n {
                        e.push(FieldError::invalid(
                            pp.child("endPort"),
                            end,
                            "must be greater than or equal to `port`",
                        ));
                    }
                    for msg in names::port_num(end) {
                        e.push(FieldError::invalid(pp.child("endPort"), end, msg));
                    }
                }
                Some(IntOrStr::Str(_)) => e.push(FieldError::forbidden(
                    pp.child("endPort"),
                    "may not be specified when `port` is non-numeric",
                )),
                None => e.push(FieldError::required(
                    pp.child("port"),
                    "must be specified when `endPort` is specified",
                )),
            }
        }
    }
}

/// Upstream's `ValidateNetworkPolicy`.
pub(crate) fn network_policy(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    meta::label_selector(
        child(spec, "podSelector", &sp, e),
        &sp.child("podSelector"),
        e,
    );
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        let dp = sp.child(dir);
        for (i, rule) in arr(get(spec, dir), &dp, e).iter().enumerate() {
            let rp = dp.index(i);
            let rule = obj(Some(rule), &rp, e);
            np_ports(get(rule, "ports"), &rp.child("ports"), e);
            np_peers(get(rule, peers), &rp.child(peers), e);
        }
    }
    let tp = sp.child("policyTypes");
    let types = arr(get(spec, "policyTypes"), &tp, e);
    for (i, t) in types.iter().enumerate() {
        if let Some(t) = string(Some(t), &tp.index(i), e)
            && t != "Ingress"
            && t != "Egress"
        {
            e.push(FieldError::not_supported(
                tp.index(i),
                t,
                &["Egress", "Ingress"],
            ));
        }
    }
    if types.len() > 2 {
        e.push(FieldError::invalid(
            tp,
            Value::from(types.to_vec()),
            "may not specify more than two policyTypes",
        ));
    }
}
