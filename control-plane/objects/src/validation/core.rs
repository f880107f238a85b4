//! Core kinds other than Pod: `Service`, `ConfigMap`, `Secret`, `Namespace`, `Node`, `Event`
//! (upstream's `pkg/apis/core/validation/validation.go`).

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;

use super::json::{
    IntOrStr, Obj, arr, boolean, child, get, int, int_or_str, obj, str_map, str_or_empty, string,
};
use super::meta::{self, immutable};
use super::names;
use super::pod::{PROTOCOLS, one_of};
use crate::field::{FieldError, Path};

/// Upstream's `MaxSecretSize`, also the ConfigMap limit.
pub(crate) const MAX_SECRET_SIZE: usize = 1024 * 1024;

fn spec_path() -> Path {
    Path::new("spec")
}

fn valid_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// Upstream's `ValidateService`.
pub(crate) fn service(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns1035_label, e);
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    let typ = str_or_empty(get(spec, "type"), &sp.child("type"), e);
    let cluster_ip = str_or_empty(get(spec, "clusterIP"), &sp.child("clusterIP"), e);
    let cps = sp.child("clusterIPs");
    let cluster_ips: Vec<&str> = arr(get(spec, "clusterIPs"), &cps, e)
        .iter()
        .enumerate()
        .filter_map(|(i, v)| string(Some(v), &cps.index(i), e))
        .collect();
    let headless = cluster_ip == "None";
    let pp = sp.child("ports");
    let ports: Vec<Option<&Obj>> = arr(get(spec, "ports"), &pp, e)
        .iter()
        .enumerate()
        .map(|(i, p)| obj(Some(p), &pp.index(i), e))
        .collect();
    if ports.is_empty() && !headless && typ != "ExternalName" {
        e.push(FieldError::required(pp.clone(), ""));
    }
    match typ {
        "LoadBalancer" => {
            for (i, p) in ports.iter().enumerate() {
                if get(*p, "port").and_then(Value::as_i64) == Some(10250) {
                    e.push(FieldError::invalid(
                        pp.index(i),
                        10250,
                        "may not expose port 10250 externally since it is used by kubelet",
                    ));
                }
            }
            if headless {
                e.push(FieldError::invalid(
                    sp.child("clusterIP"),
                    cluster_ip,
                    "may not be set to 'None' for LoadBalancer services",
                ));
            }
        }
        "NodePort" if headless => e.push(FieldError::invalid(
            sp.child("clusterIP"),
            cluster_ip,
            "may not be set to 'None' for NodePort services",
        )),
        "ExternalName" => {
            if !cluster_ip.is_empty() || !cluster_ips.is_empty() {
                e.push(FieldError::forbidden(
                    cps.clone(),
                    "may not be set for ExternalName services",
                ));
            }
            if get(spec, "ipFamilies").is_some_and(|v| v.as_array().is_none_or(|a| !a.is_empty())) {
                e.push(FieldError::forbidden(
                    sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                e.push(FieldError::forbidden(
                    sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let en = str_or_empty(get(spec, "externalName"), &sp.child("externalName"), e);
            let cname = en.strip_suffix('.').unwrap_or(en);
            if cname.is_empty() {
                e.push(FieldError::required(sp.child("externalName"), ""));
            } else {
                for msg in names::dns1123_subdomain(cname) {
                    e.push(FieldError::invalid(sp.child("externalName"), cname, msg));
                }
            }
        }
        _ => {}
    }
    let mut port_names = BTreeSet::new();
    let many = ports.len() > 1;
    for (i, p) in ports.iter().enumerate() {
        let ip = pp.index(i);
        let name = str_or_empty(get(*p, "name"), &ip.child("name"), e);
        if many && name.is_empty() {
            e.push(FieldError::required(ip.child("name"), ""));
        } else if !name.is_empty() {
            for msg in names::dns1123_label(name) {
                e.push(FieldError::invalid(ip.child("name"), name, msg));
            }
            if !port_names.insert(name) {
                e.push(FieldError::duplicate(ip.child("name"), name));
            }
        }
        let port = int(get(*p, "port"), &ip.child("port"), e).unwrap_or(0);
        for msg in names::port_num(port) {
            e.push(FieldError::invalid(ip.child("port"), port, msg));
        }
        let proto = str_or_empty(get(*p, "protocol"), &ip.child("protocol"), e);
        one_of(proto, PROTOCOLS, &ip.child("protocol"), e);
        let tp = ip.child("targetPort");
        match int_or_str(get(*p, "targetPort"), &tp, e) {
            Some(IntOrStr::Int(n)) => {
                for msg in names::port_num(n) {
                    e.push(FieldError::invalid(tp.clone(), n, msg));
                }
            }
            Some(IntOrStr::Str(s)) => {
                for msg in names::port_name(s) {
                    e.push(FieldError::invalid(tp.clone(), s, msg));
                }
            }
            None => {
                for msg in names::port_num(0) {
                    e.push(FieldError::invalid(tp.clone(), 0, msg));
                }
            }
        }
        if let Some(ap) = string(get(*p, "appProtocol"), &ip.child("appProtocol"), e) {
            for msg in names::qualified_name(ap) {
                e.push(FieldError::invalid(ip.child("appProtocol"), ap, msg));
            }
        }
        let np = int(get(*p, "nodePort"), &ip.child("nodePort"), e).unwrap_or(0);
        if np != 0 {
            for msg in names::port_num(np) {
                e.push(FieldError::invalid(ip.child("nodePort"), np, msg));
            }
        }
    }
    meta::labels(get(spec, "selector"), &sp.child("selector"), e);
    let sa = str_or_empty(
        get(spec, "sessionAffinity"),
        &sp.child("sessionAffinity"),
        e,
    );
    one_of(sa, &["ClientIP", "None"], &sp.child("sessionAffinity"), e);
    let sacp = sp.child("sessionAffinityConfig");
    let sac = child(spec, "sessionAffinityConfig", &sp, e);
    if sa == "ClientIP" {
        let cip = child(sac, "clientIP", &sacp, e);
        let tsp = sacp.child("clientIP").child("timeoutSeconds");
        let ts = int(get(cip, "timeoutSeconds"), &tsp, e);
        let required = |p: Path| FieldError::required(p, "when session affinity type is ClientIP");
        match (sac, cip, ts) {
            (None, _, _) => e.push(required(sacp)),
            (_, None, _) => e.push(required(sacp.child("clientIP"))),
            (_, _, None) => e.push(required(tsp)),
            (_, _, Some(t)) if t <= 0 || t > 86400 => e.push(FieldError::invalid(
                tsp,
                t,
                "must be greater than 0 and less than 86400",
            )),
            _ => {}
        }
    } else if sa == "None" && sac.is_some() {
        e.push(FieldError::forbidden(
            sacp,
            "must not be set when session affinity is None",
        ));
    }
    // Cluster IPs: format, agreement with clusterIP, families.
    if typ != "ExternalName" {
        if !cluster_ip.is_empty() && !headless && !valid_ip(cluster_ip) {
            e.push(FieldError::invalid(
                sp.child("clusterIP"),
                cluster_ip,
                IP_MSG,
            ));
        }
        if let Some(first) = cluster_ips.first()
            && !cluster_ip.is_empty()
            && *first != cluster_ip
        {
            e.push(FieldError::invalid(
                cps.clone(),
                Value::from(cluster_ips.clone()),
                "first value must match `clusterIP`",
            ));
        }
        for (i, ip) in cluster_ips.iter().enumerate().skip(1) {
            if *ip == "None" || !valid_ip(ip) {
                e.push(FieldError::invalid(cps.index(i), *ip, IP_MSG));
            }
        }
        if let Some(pol) = string(get(spec, "ipFamilyPolicy"), &sp.child("ipFamilyPolicy"), e) {
            let allowed = ["PreferDualStack", "RequireDualStack", "SingleStack"];
            if !allowed.contains(&pol) {
                e.push(FieldError::not_supported(
                    sp.child("ipFamilyPolicy"),
                    pol,
                    &allowed,
                ));
            }
        }
        let fp = sp.child("ipFamilies");
        for (i, f) in arr(get(spec, "ipFamilies"), &fp, e).iter().enumerate() {
            if let Some(f) = string(Some(f), &fp.index(i), e)
                && f != "IPv4"
                && f != "IPv6"
            {
                e.push(FieldError::not_supported(fp.index(i), f, &["IPv4", "IPv6"]));
            }
        }
    }
    let xp = sp.child("externalIPs");
    for (i, ip) in arr(get(spec, "externalIPs"), &xp, e).iter().enumerate() {
        if let Some(ip) = string(Some(ip), &xp.index(i), e)
            && !valid_ip(ip)
        {
            e.push(FieldError::invalid(xp.index(i), ip, IP_MSG));
        }
    }
    one_of(
        typ,
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        &sp.child("type"),
        e,
    );
    if typ == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if get(*p, "nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                e.push(FieldError::forbidden(
                    pp.index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    let mut port_keys = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let proto = get(*p, "protocol").and_then(Value::as_str).unwrap_or("");
        let np = get(*p, "nodePort").and_then(Value::as_i64).unwrap_or(0);
        if np != 0 && !node_ports.insert((proto, np)) {
            e.push(FieldError::duplicate(pp.index(i).child("nodePort"), np));
        }
        let port = get(*p, "port").and_then(Value::as_i64).unwrap_or(0);
        if !port_keys.insert((proto, port)) {
            e.push(FieldError::duplicate(
                pp.index(i),
                serde_json::json!({"port": port, "protocol": proto}),
            ));
        }
    }
    let etp = str_or_empty(
        get(spec, "externalTrafficPolicy"),
        &sp.child("externalTrafficPolicy"),
        e,
    );
    if typ == "NodePort" || typ == "LoadBalancer" {
        one_of(
            etp,
            &["Cluster", "Local"],
            &sp.child("externalTrafficPolicy"),
            e,
        );
    } else if !etp.is_empty() {
        e.push(FieldError::invalid(
            sp.child("externalTrafficPolicy"),
            etp,
            "may only be set for externally-accessible services",
        ));
    }
    let itp = string(
        get(spec, "internalTrafficPolicy"),
        &sp.child("internalTrafficPolicy"),
        e,
    );
    match itp {
        None if typ != "ExternalName" => {
            e.push(FieldError::required(sp.child("internalTrafficPolicy"), ""))
        }
        Some(v) if v != "Cluster" && v != "Local" => e.push(FieldError::not_supported(
            sp.child("internalTrafficPolicy"),
            v,
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    if typ != "LoadBalancer" {
        if get(spec, "loadBalancerClass").is_some() {
            e.push(FieldError::forbidden(
                sp.child("loadBalancerClass"),
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        if get(spec, "allocateLoadBalancerNodePorts").is_some() {
            e.push(FieldError::forbidden(
                sp.child("allocateLoadBalancerNodePorts"),
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
    }
}

/// The cluster IPs as the service strategy normalises them: `clusterIP` is the first entry.
fn effective_cluster_ips(o: &Obj) -> Vec<String> {
    let spec = o.get("spec").and_then(Value::as_object);
    let ip = spec
        .and_then(|s| s.get("clusterIP"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut ips: Vec<String> = spec
        .and_then(|s| s.get("clusterIPs"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if !ip.is_empty() {
        match ips.first_mut() {
            Some(first) => *first = ip.to_owned(),
            None => ips.push(ip.to_owned()),
        }
    }
    ips
}

/// Upstream's `ValidateServiceUpdate` (the parts beyond `ValidateService`): cluster IPs may not
/// change once set, except to or from `ExternalName`.
pub(crate) fn service_update(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    let typ = |o: &Obj| {
        o.get("spec")
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    if typ(new) == "ExternalName" || typ(old) == "ExternalName" {
        return;
    }
    let (n, o) = (effective_cluster_ips(new), effective_cluster_ips(old));
    let headless = |ips: &[String]| ips.first().is_some_and(|i| i == "None");
    if headless(&n) && headless(&o) {
        return;
    }
    let cps = spec_path().child("clusterIPs");
    let shown = Value::from(n.clone());
    if o.len() == n.len() {
        for (i, ip) in o.iter().enumerate() {
            if *ip != n[i] {
                e.push(FieldError::invalid(
                    cps.index(i),
                    shown.clone(),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            e.push(FieldError::invalid(
                cps.index(0),
                shown.clone(),
                "primary clusterIP can not be unset",
            ));
        } else if n[0] != o[0] {
            e.push(FieldError::invalid(
                cps.index(0),
                shown.clone(),
                "may not change once set",
            ));
        }
        let pol = new
            .get("spec")
            .and_then(|s| s.get("ipFamilyPolicy"))
            .and_then(Value::as_str);
        if n.len() == 1 && pol != Some("SingleStack") {
            e.push(FieldError::invalid(
                cps.index(0),
                shown,
                "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        e.push(FieldError::invalid(
            cps.index(0),
            shown,
            "may not change once set",
        ));
    }
}

/// Upstream's `ValidateConfigMap`.
pub(crate) fn config_map(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let dp = Path::new("data");
    let bp = Path::new("binaryData");
    let data = str_map(get(Some(root), "data"), &dp, e);
    let binary = str_map(get(Some(root), "binaryData"), &bp, e);
    let mut total = 0usize;
    for (k, v) in &data {
        for msg in names::config_map_key(k) {
            e.push(FieldError::invalid(dp.key(k), *k, msg));
        }
        if binary.iter().any(|(bk, _)| bk == k) {
            e.push(FieldError::invalid(
                dp.key(k),
                *k,
                "duplicate of key present in binaryData",
            ));
        }
        total += v.len();
    }
    for (k, v) in &binary {
        for msg in names::config_map_key(k) {
            e.push(FieldError::invalid(bp.key(k), *k, msg));
        }
        match base64_decoded_len(v) {
            Ok(n) => total += n,
            Err(msg) => e.push(FieldError::invalid(bp.key(k), "<binary>", msg)),
        }
    }
    if total > MAX_SECRET_SIZE {
        e.push(FieldError::too_long(Path::default(), MAX_SECRET_SIZE));
    }
    boolean(get(Some(root), "immutable"), &Path::new("immutable"), e);
}

/// ConfigMap and Secret updates: nothing changes once `immutable` is true.
pub(crate) fn immutable_data(new: &Obj, old: &Obj, keys: &[&str], e: &mut Vec<FieldError>) {
    if old.get("immutable") != Some(&Value::Bool(true)) {
        return;
    }
    const MSG: &str = "field is immutable when `immutable` is set";
    if new.get("immutable") != Some(&Value::Bool(true)) {
        e.push(FieldError::forbidden(Path::new("immutable"), MSG));
    }
    for k in keys {
        let norm = |o: &Obj| match o.get(*k) {
            None | Some(Value::Null) => Value::Object(Obj::new()),
            Some(v) => v.clone(),
        };
        if norm(new) != norm(old) {
            e.push(FieldError::forbidden(Path::new(k), MSG));
        }
    }
}

const B64_MSG_PREFIX: &str = "illegal base64 data at input byte";

/// The length of standard base64 `s` once decoded, or Go's error for it.
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes: Vec<(usize, u8)> = s
        .bytes()
        .enumerate()
        .filter(|(_, c)| *c != b'\n' && *c != b'\r')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        let mut n = 0;
        let mut pad = 0;
        for (i, &(pos, c)) in chunk.iter().enumerate() {
            if c == b'=' {
                if i < 2 {
                    return Err(format!("{B64_MSG_PREFIX} {pos}"));
                }
                pad += 1;
                continue;
            }
            if pad > 0 {
                return Err(format!("{B64_MSG_PREFIX} {pos}"));
            }
            let Some(v) = val(c) else {
                return Err(format!("{B64_MSG_PREFIX} {pos}"));
            };
            acc = (acc << 6) | u32::from(v);
            n += 1;
        }
        if chunk.len() < 4 {
            let pos = chunk.last().map(|(p, _)| *p + 1).unwrap_or(0);
            return Err(format!(
                "{B64_MSG_PREFIX} {}",
                pos.saturating_sub(chunk.len())
            ));
        }
        acc <<= 6 * (4 - n);
        let b = acc.to_be_bytes();
        out.extend_from_slice(&b[1..1 + (n * 6 / 8)]);
    }
    Ok(out)
}

fn base64_decoded_len(s: &str) -> Result<usize, String> {
    base64_decode(s).map(|b| b.len())
}

/// Upstream's `ValidateSecret`. `data` values are base64 as in JSON; `stringData` is merged in
/// first, as upstream's conversion does.
pub(crate) fn secret(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let dp = Path::new("data");
    let mut keys: Vec<(String, Result<Vec<u8>, String>)> = Vec::new();
    for (k, v) in str_map(get(Some(root), "data"), &dp, e) {
        keys.push((k.to_owned(), base64_decode(v)));
    }
    for (k, v) in str_map(get(Some(root), "stringData"), &Path::new("stringData"), e) {
        keys.retain(|(kk, _)| kk != k);
        keys.push((k.to_owned(), Ok(v.as_bytes().to_vec())));
    }
    let mut total = 0usize;
    for (k, v) in &keys {
        for msg in names::config_map_key(k) {
            e.push(FieldError::invalid(dp.key(k), k.as_str(), msg));
        }
        match v {
            Ok(b) => total += b.len(),
            Err(msg) => e.push(FieldError::invalid(
                dp.key(k),
                "<secret contents redacted>",
                msg.clone(),
            )),
        }
    }
    if total > MAX_SECRET_SIZE {
        e.push(FieldError::too_long(dp.clone(), MAX_SECRET_SIZE));
    }
    let value = |k: &str| keys.iter().find(|(kk, _)| kk == k).map(|(_, v)| v);
    let typ = str_or_empty(get(Some(root), "type"), &Path::new("type"), e);
    match typ {
        "kubernetes.io/service-account-token" => {
            let ann = root
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if ann.is_empty() {
                e.push(FieldError::required(
                    Path::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if typ == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match value(key) {
                None => e.push(FieldError::required(dp.key(key), "")),
                Some(Ok(b)) => {
                    if let Err(err) = serde_json::from_slice::<serde_json::Map<String, Value>>(b) {
                        e.push(FieldError::invalid(
                            dp.key(key),
                            "<secret contents redacted>",
                            err.to_string(),
                        ));
                    }
                }
                Some(Err(_)) => {}
            }
        }
        "kubernetes.io/basic-auth"
            if value("username").is_none() && value("password").is_none() =>
        {
            e.push(FieldError::required(dp.key("username"), ""));
            e.push(FieldError::required(dp.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if !matches!(value("ssh-privatekey"), Some(Ok(b)) if !b.is_empty()) =>
        {
            e.push(FieldError::required(dp.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if value(k).is_none() {
                    e.push(FieldError::required(dp.key(k), ""));
                }
            }
        }
        _ => {}
    }
    boolean(get(Some(root), "immutable"), &Path::new("immutable"), e);
}

/// Upstream's `ValidateSecretUpdate` beyond the create rules: type fixed, immutable data.
pub(crate) fn secret_update(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    let typ = |o: &Obj| match o.get("type") {
        None | Some(Value::Null) => Some(Value::from("Opaque")),
        Some(Value::String(s)) if s.is_empty() => Some(Value::from("Opaque")),
        Some(v) => Some(v.clone()),
    };
    immutable(typ(new).as_ref(), typ(old).as_ref(), &Path::new("type"), e);
    immutable_data(new, old, &["data"], e);
}

/// Upstream's `ValidateNamespace`.
pub(crate) fn namespace(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, false, names::name_is_dns_label, e);
    let fp = spec_path().child("finalizers");
    let spec = child(Some(root), "spec", &Path::default(), e);
    for (i, f) in arr(get(spec, "finalizers"), &fp, e).iter().enumerate() {
        let Some(f) = string(Some(f), &fp.index(i), e) else {
            continue;
        };
        for msg in names::qualified_name(f) {
            e.push(FieldError::invalid(fp.clone(), f, msg));
        }
        if !f.contains('/') && f != "kubernetes" {
            e.push(FieldError::invalid(
                fp.clone(),
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

/// Upstream's `ValidateNode` (taints, pod CIDRs, provider ID immutability lives in update).
pub(crate) fn node(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, false, names::name_is_dns_subdomain, e);
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    taints(get(spec, "taints"), &sp.child("taints"), e);
    let cp = sp.child("podCIDRs");
    for (i, c) in arr(get(spec, "podCIDRs"), &cp, e).iter().enumerate() {
        if let Some(c) = string(Some(c), &cp.index(i), e) {
            let ok = c
                .split_once('/')
                .is_some_and(|(ip, bits)| valid_ip(ip) && bits.parse::<u8>().is_ok());
            if !ok {
                e.push(FieldError::invalid(
                    cp.index(i),
                    c,
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
    }
}

/// Upstream's `validateNodeTaints`: keys, values and effects, unique by key and effect.
pub(crate) fn taints(v: Option<&Value>, tp: &Path, e: &mut Vec<FieldError>) {
    let mut seen = BTreeSet::new();
    for (i, t) in arr(v, tp, e).iter().enumerate() {
        let ip = tp.index(i);
        let t = obj(Some(t), &ip, e);
        let key = str_or_empty(get(t, "key"), &ip.child("key"), e);
        meta::label_name(key, &ip.child("key"), e);
        let value = str_or_empty(get(t, "value"), &ip.child("value"), e);
        let errs = names::label_value(value);
        if !errs.is_empty() {
            e.push(FieldError::invalid(
                ip.child("value"),
                value,
                errs.join(";"),
            ));
        }
        let effect = str_or_empty(get(t, "effect"), &ip.child("effect"), e);
        if effect.is_empty() {
            e.push(FieldError::required(ip.child("effect"), ""));
        } else {
            let allowed = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
            if !allowed.contains(&effect) {
                e.push(FieldError::not_supported(
                    ip.child("effect"),
                    effect,
                    &allowed,
                ));
            }
        }
        if !seen.insert((effect, key)) {
            let mut d =
                FieldError::duplicate(ip, t.cloned().map(Value::Object).unwrap_or(Value::Null));
            d.detail = "taints must be unique by key and effect pair".to_owned();
            e.push(d);
        }
    }
}

/// Upstream's legacy `ValidateEventCreate` for core/v1 Events.
pub(crate) fn event(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let ns = root
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let iop = Path::new("involvedObject");
    let io = child(Some(root), "involvedObject", &Path::default(), e);
    let io_ns = str_or_empty(get(io, "namespace"), &iop.child("namespace"), e);
    let mismatch = if io_ns.is_empty() {
        !ns.is_empty() && ns != "default"
    } else {
        ns != io_ns
    };
    if mismatch {
        e.push(FieldError::invalid(
            iop.child("namespace"),
            io_ns,
            "does not match event.namespace",
        ));
    }
    let typ = str_or_empty(get(Some(root), "type"), &Path::new("type"), e);
    if !typ.is_empty() && typ != "Normal" && typ != "Warning" {
        e.push(FieldError::not_supported(
            Path::new("type"),
            typ,
            &["Normal", "Warning"],
        ));
    }
    if let Some(c) = int(get(Some(root), "count"), &Path::new("count"), e) {
        meta::nonnegative(c, &Path::new("count"), e);
    }
}

/// Upstream's `ValidateServiceAccount`.
pub(crate) fn service_account(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let sp = Path::new("secrets");
    for (i, s) in arr(get(Some(root), "secrets"), &sp, e).iter().enumerate() {
        obj(Some(s), &sp.index(i), e);
    }
}
