//! Pods and pod templates: upstream's `ValidatePodSpec`, containers, volumes, tolerations and
//! `ValidatePodUpdate` (`pkg/apis/core/validation/validation.go`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::json::{
    IntOrStr, Obj, arr, boolean, child, get, int, int_or_str, obj, str_map, str_or_empty, string,
};
use super::meta::{self, nonnegative};
use super::names;
use super::quantity;
use crate::field::{ErrorType, FieldError, Path};

/// `field: Not found: "value"`; `field.rs` has no constructor for it.
pub(crate) fn not_found(p: Path, value: &str) -> FieldError {
    FieldError {
        kind: ErrorType::NotFound,
        field: p,
        value: Some(Value::from(value)),
        detail: String::new(),
    }
}

/// Validates `v` against a fixed set; empty is `Required`, anything else `NotSupported`.
pub(crate) fn one_of(v: &str, allowed: &[&str], p: &Path, e: &mut Vec<FieldError>) {
    if v.is_empty() {
        e.push(FieldError::required(p.clone(), ""));
    } else if !allowed.contains(&v) {
        e.push(FieldError::not_supported(p.clone(), v, allowed));
    }
}

/// The protocols a port may name, sorted as upstream lists them.
pub(crate) const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Volume source fields, in the order upstream checks them.
pub(crate) const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flexVolume",
    "persistentVolumeClaim",
    "rbd",
    "quobyte",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "storageos",
    "configMap",
    "projected",
    "csi",
    "ephemeral",
    "image",
];

/// Upstream's `ValidateVolumes`; returns the names declared (for volume mounts).
fn volumes(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (i, vol) in arr(v, p, e).iter().enumerate() {
        let ip = p.index(i);
        let Some(vol) = obj(Some(vol), &ip, e) else {
            continue;
        };
        let name = str_or_empty(get(Some(vol), "name"), &ip.child("name"), e);
        if name.is_empty() {
            e.push(FieldError::required(ip.child("name"), ""));
        } else {
            for msg in names::dns1123_label(name) {
                e.push(FieldError::invalid(ip.child("name"), name, msg));
            }
        }
        if seen.contains(name) {
            e.push(FieldError::duplicate(ip.child("name"), name));
        } else {
            seen.insert(name.to_owned());
        }
        volume_source(vol, &ip, e);
    }
    seen
}

fn default_mode(src: Option<&Obj>, key: &str, p: &Path, e: &mut Vec<FieldError>) {
    if let Some(m) = int(get(src, key), &p.child(key), e)
        && !(0..=0o777).contains(&m)
    {
        e.push(FieldError::invalid(
            p.child(key),
            m,
            "must be a number between 0 and 0777 (octal), both inclusive",
        ));
    }
}

fn key_to_paths(src: Option<&Obj>, p: &Path, e: &mut Vec<FieldError>) {
    let ip = p.child("items");
    for (i, item) in arr(get(src, "items"), &ip, e).iter().enumerate() {
        let kp = ip.index(i);
        let item = obj(Some(item), &kp, e);
        let key = str_or_empty(get(item, "key"), &kp.child("key"), e);
        if key.is_empty() {
            e.push(FieldError::required(kp.child("key"), ""));
        }
        let path = str_or_empty(get(item, "path"), &kp.child("path"), e);
        if path.is_empty() {
            e.push(FieldError::required(kp.child("path"), ""));
        } else {
            local_descending_path(path, &kp.child("path"), e);
        }
        default_mode(item, "mode", &kp, e);
    }
}

/// Upstream's `validateLocalDescendingPath`: relative, no `..` element.
fn local_descending_path(path: &str, p: &Path, e: &mut Vec<FieldError>) {
    if path.starts_with('/') {
        e.push(FieldError::invalid(
            p.clone(),
            path,
            "must be a relative path",
        ));
    }
    if path.split(['/', '\\']).any(|s| s == "..") {
        e.push(FieldError::invalid(
            p.clone(),
            path,
            "must not contain '..'",
        ));
    }
}

fn volume_source(vol: &Obj, p: &Path, e: &mut Vec<FieldError>) {
    let mut found = 0;
    for &src in VOLUME_SOURCES {
        if get(Some(vol), src).is_none() {
            continue;
        }
        if found > 0 {
            e.push(FieldError::forbidden(
                p.child(src),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        found += 1;
        let sp = p.child(src);
        let s = obj(get(Some(vol), src), &sp, e);
        let required = |key: &str, e: &mut Vec<FieldError>| {
            if str_or_empty(get(s, key), &sp.child(key), e).is_empty() {
                e.push(FieldError::required(sp.child(key), ""));
            }
        };
        match src {
            "hostPath" => {
                required("path", e);
                let t = str_or_empty(get(s, "type"), &sp.child("type"), e);
                let allowed = [
                    "",
                    "BlockDevice",
                    "CharDevice",
                    "Directory",
                    "DirectoryOrCreate",
                    "File",
                    "FileOrCreate",
                    "Socket",
                ];
                if !allowed.contains(&t) {
                    e.push(FieldError::not_supported(sp.child("type"), t, &allowed));
                }
            }
            "secret" => {
                required("secretName", e);
                default_mode(s, "defaultMode", &sp, e);
                key_to_paths(s, &sp, e);
            }
            "configMap" => {
                required("name", e);
                default_mode(s, "defaultMode", &sp, e);
                key_to_paths(s, &sp, e);
            }
            "persistentVolumeClaim" => required("claimName", e),
            "nfs" => {
                required("server", e);
                required("path", e);
            }
            "downwardAPI" | "projected" => default_mode(s, "defaultMode", &sp, e),
            "csi" => required("driver", e),
            "emptyDir" => {
                if let Some(q) = string(get(s, "sizeLimit"), &sp.child("sizeLimit"), e) {
                    match quantity::parse(q) {
                        None => e.push(FieldError::invalid(
                            sp.child("sizeLimit"),
                            q,
                            quantity::QUANTITY_SYNTAX,
                        )),
                        Some(v) if v.0 < 0 => e.push(FieldError::forbidden(
                            sp.child("sizeLimit"),
                            "SizeLimit field must be a valid resource quantity",
                        )),
                        Some(_) => {}
                    }
                }
            }
            _ => {}
        }
    }
    if found == 0 {
        e.push(FieldError::required(
            p.clone(),
            "must specify a volume type",
        ));
    }
}

fn container_ports(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    let mut names_seen = BTreeSet::new();
    for (i, port) in arr(v, p, e).iter().enumerate() {
        let ip = p.index(i);
        let port = obj(Some(port), &ip, e);
        let name = str_or_empty(get(port, "name"), &ip.child("name"), e);
        if !name.is_empty() {
            let msgs = names::port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    e.push(FieldError::invalid(ip.child("name"), name, msg));
                }
            } else if !names_seen.insert(name) {
                e.push(FieldError::duplicate(ip.child("name"), name));
            }
        }
        let cp = int(get(port, "containerPort"), &ip.child("containerPort"), e).unwrap_or(0);
        if cp == 0 {
            e.push(FieldError::required(ip.child("containerPort"), ""));
        } else {
            for msg in names::port_num(cp) {
                e.push(FieldError::invalid(ip.child("containerPort"), cp, msg));
            }
        }
        let hp = int(get(port, "hostPort"), &ip.child("hostPort"), e).unwrap_or(0);
        if hp != 0 {
            for msg in names::port_num(hp) {
                e.push(FieldError::invalid(ip.child("hostPort"), hp, msg));
            }
        }
        let proto = str_or_empty(get(port, "protocol"), &ip.child("protocol"), e);
        one_of(proto, PROTOCOLS, &ip.child("protocol"), e);
    }
}

fn env(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    for (i, ev) in arr(v, p, e).iter().enumerate() {
        let ip = p.index(i);
        let ev = obj(Some(ev), &ip, e);
        let name = str_or_empty(get(ev, "name"), &ip.child("name"), e);
        if name.is_empty() {
            e.push(FieldError::required(ip.child("name"), ""));
        } else {
            for msg in names::env_var_name(name) {
                e.push(FieldError::invalid(ip.child("name"), name, msg));
            }
        }
        let vp = ip.child("valueFrom");
        let Some(from) = obj(get(ev, "valueFrom"), &vp, e) else {
            continue;
        };
        let mut sources = 0;
        if let Some(fr) = child(Some(from), "fieldRef", &vp, e) {
            sources += 1;
            let fp = vp.child("fieldRef");
            if str_or_empty(get(Some(fr), "apiVersion"), &fp.child("apiVersion"), e).is_empty() {
                e.push(FieldError::required(fp.child("apiVersion"), ""));
            } else if str_or_empty(get(Some(fr), "fieldPath"), &fp.child("fieldPath"), e).is_empty()
            {
                e.push(FieldError::required(fp.child("fieldPath"), ""));
            }
        }
        if let Some(rf) = child(Some(from), "resourceFieldRef", &vp, e) {
            sources += 1;
            let rp = vp.child("resourceFieldRef");
            if str_or_empty(get(Some(rf), "resource"), &rp.child("resource"), e).is_empty() {
                e.push(FieldError::required(rp.child("resource"), ""));
            }
        }
        for key in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(kr) = child(Some(from), key, &vp, e) {
                sources += 1;
                let kp = vp.child(key);
                let n = str_or_empty(get(Some(kr), "name"), &kp.child("name"), e);
                for msg in names::dns1123_subdomain(n) {
                    e.push(FieldError::invalid(kp.child("name"), n, msg));
                }
                let k = str_or_empty(get(Some(kr), "key"), &kp.child("key"), e);
                if k.is_empty() {
                    e.push(FieldError::required(kp.child("key"), ""));
                } else {
                    for msg in names::config_map_key(k) {
                        e.push(FieldError::invalid(kp.child("key"), k, msg));
                    }
                }
            }
        }
        let value = str_or_empty(get(ev, "value"), &ip.child("value"), e);
        if sources == 0 {
            e.push(FieldError::invalid(
                vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !value.is_empty() {
            e.push(FieldError::invalid(
                vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            e.push(FieldError::invalid(
                vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn env_from(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    for (i, ef) in arr(v, p, e).iter().enumerate() {
        let ip = p.index(i);
        let ef = obj(Some(ef), &ip, e);
        let prefix = str_or_empty(get(ef, "prefix"), &ip.child("prefix"), e);
        if !prefix.is_empty() {
            for msg in names::env_var_name(prefix) {
                e.push(FieldError::invalid(ip.child("prefix"), prefix, msg));
            }
        }
        let mut sources = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(r) = child(ef, key, &ip, e) {
                sources += 1;
                let rp = ip.child(key);
                let n = str_or_empty(get(Some(r), "name"), &rp.child("name"), e);
                if n.is_empty() {
                    e.push(FieldError::required(rp.child("name"), ""));
                } else {
                    for msg in names::name_is_dns_subdomain(n, true) {
                        e.push(FieldError::invalid(rp.child("name"), n, msg));
                    }
                }
            }
        }
        if sources == 0 {
            e.push(FieldError::invalid(
                p.clone(),
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if sources > 1 {
            e.push(FieldError::invalid(
                p.clone(),
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn volume_mounts(v: Option<&Value>, vols: &BTreeSet<String>, p: &Path, e: &mut Vec<FieldError>) {
    let mut mount_points = BTreeSet::new();
    for (i, m) in arr(v, p, e).iter().enumerate() {
        let ip = p.index(i);
        let m = obj(Some(m), &ip, e);
        let name = str_or_empty(get(m, "name"), &ip.child("name"), e);
        if name.is_empty() {
            e.push(FieldError::required(ip.child("name"), ""));
        }
        if !vols.contains(name) {
            e.push(not_found(ip.child("name"), name));
        }
        let mp = str_or_empty(get(m, "mountPath"), &ip.child("mountPath"), e);
        if mp.is_empty() {
            e.push(FieldError::required(ip.child("mountPath"), ""));
        }
        if !mount_points.insert(mp) {
            e.push(FieldError::invalid(
                ip.child("mountPath"),
                mp,
                "must be unique",
            ));
        }
        let sub = str_or_empty(get(m, "subPath"), &ip.child("subPath"), e);
        if !sub.is_empty() {
            local_descending_path(sub, &p.child("subPath"), e);
        }
        let expr = str_or_empty(get(m, "subPathExpr"), &ip.child("subPathExpr"), e);
        if !expr.is_empty() {
            if !sub.is_empty() {
                e.push(FieldError::invalid(
                    ip.child("subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            local_descending_path(expr, &p.child("subPathExpr"), e);
        }
    }
}

/// `cpu`, `memory`, `ephemeral-storage`, `hugepages-*`: upstream's standard container resources.
fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// Upstream's `IsStandardResourceName`: container resources plus quota names.
fn is_standard_resource(name: &str) -> bool {
    is_standard_container_resource(name)
        || matches!(
            name,
            "pods"
                | "services"
                | "replicationcontrollers"
                | "resourcequotas"
                | "secrets"
                | "configmaps"
                | "persistentvolumeclaims"
                | "storage"
                | "requests.cpu"
                | "requests.memory"
                | "requests.storage"
                | "requests.ephemeral-storage"
                | "limits.cpu"
                | "limits.memory"
                | "limits.ephemeral-storage"
                | "services.nodeports"
                | "services.loadbalancers"
        )
        || name.starts_with("requests.hugepages-")
}

/// Native resources are unprefixed or in `kubernetes.io`; only they (not hugepages) may be
/// overcommitted.
fn overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !name.starts_with("hugepages-")
}

fn resource_list<'a>(
    v: Option<&'a Value>,
    p: &Path,
    e: &mut Vec<FieldError>,
) -> Vec<(&'a str, &'a str, Option<quantity::Quantity>)> {
    let Some(m) = obj(v, p, e) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, q) in m {
        let kp = p.key(name);
        for msg in names::qualified_name(name) {
            e.push(FieldError::invalid(kp.clone(), name.as_str(), msg));
        }
        if !name.contains('/') {
            if !is_standard_resource(name) {
                e.push(FieldError::invalid(
                    kp.clone(),
                    name.as_str(),
                    "must be a standard resource type or fully qualified",
                ));
            }
            if !is_standard_container_resource(name) {
                e.push(FieldError::invalid(
                    kp.clone(),
                    name.as_str(),
                    "must be a standard resource for containers",
                ));
            }
        }
        let text = match q {
            Value::String(s) => s.as_str(),
            Value::Number(_) => {
                // Numbers are quantities too; compare them through their JSON text.
                out.push((name.as_str(), "", quantity::parse(&q.to_string())));
                continue;
            }
            other => {
                e.push(FieldError::invalid(
                    kp,
                    other.clone(),
                    "must be of type string",
                ));
                continue;
            }
        };
        let parsed = quantity::parse(text);
        match parsed {
            None => e.push(FieldError::invalid(kp, text, quantity::QUANTITY_SYNTAX)),
            Some(v) if v.0 < 0 => e.push(FieldError::invalid(kp, text, meta::IS_NEGATIVE)),
            Some(v) if !overcommit_allowed(name) && !v.is_integer() => {
                e.push(FieldError::invalid(kp, text, "must be an integer"))
            }
            Some(_) => {}
        }
        out.push((name.as_str(), text, parsed));
    }
    out
}

/// Upstream's `ValidateContainerResourceRequirements`.
fn resources(r: Option<&Obj>, p: &Path, e: &mut Vec<FieldError>) {
    let lp = p.child("limits");
    let rp = p.child("requests");
    let limits = resource_list(get(r, "limits"), &lp, e);
    let requests = resource_list(get(r, "requests"), &rp, e);
    for (name, text, q) in &requests {
        let shown = |t: &str, q: Option<quantity::Quantity>| {
            if t.is_empty() {
                q.map(|q| (q.0 / 1_000_000_000).to_string())
                    .unwrap_or_default()
            } else {
                t.to_owned()
            }
        };
        match limits.iter().find(|(n, _, _)| n == name) {
            Some((_, ltext, lq)) => {
                let (Some(q), Some(lq)) = (q, lq) else {
                    continue;
                };
                if q != lq && !overcommit_allowed(name) {
                    e.push(FieldError::invalid(
                        rp.clone(),
                        shown(text, Some(*q)),
                        format!(
                            "must be equal to {name} limit of {}",
                            shown(ltext, Some(*lq))
                        ),
                    ));
                } else if q > lq {
                    e.push(FieldError::invalid(
                        rp.clone(),
                        shown(text, Some(*q)),
                        format!(
                            "must be less than or equal to {name} limit of {}",
                            shown(ltext, Some(*lq))
                        ),
                    ));
                }
            }
            None if !overcommit_allowed(name) => e.push(FieldError::required(
                lp.clone(),
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
}

fn port_num_or_name(v: Option<IntOrStr<'_>>, p: &Path, e: &mut Vec<FieldError>) {
    match v {
        Some(IntOrStr::Int(n)) => {
            for msg in names::port_num(n) {
                e.push(FieldError::invalid(p.clone(), n, msg));
            }
        }
        Some(IntOrStr::Str(s)) => {
            for msg in names::port_name(s) {
                e.push(FieldError::invalid(p.clone(), s, msg));
            }
        }
        None => {
            for msg in names::port_num(0) {
                e.push(FieldError::invalid(p.clone(), 0, msg));
            }
        }
    }
}

/// Upstream's `validateHandler` for probes and lifecycle hooks.
fn handler(h: &Obj, kinds: &[&str], grace: Option<i64>, p: &Path, e: &mut Vec<FieldError>) {
    let mut n = 0;
    for &k in kinds {
        let Some(a) = child(Some(h), k, p, e) else {
            continue;
        };
        let kp = p.child(k);
        if n > 0 {
            e.push(FieldError::forbidden(
                kp,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        n += 1;
        match k {
            "exec" if arr(get(Some(a), "command"), &kp.child("command"), e).is_empty() => {
                e.push(FieldError::required(kp.child("command"), ""));
            }
            "httpGet" => {
                if str_or_empty(get(Some(a), "path"), &kp.child("path"), e).is_empty() {
                    e.push(FieldError::required(kp.child("path"), ""));
                }
                let port = int_or_str(get(Some(a), "port"), &kp.child("port"), e);
                port_num_or_name(port, &kp.child("port"), e);
                let scheme = str_or_empty(get(Some(a), "scheme"), &kp.child("scheme"), e);
                if scheme != "HTTP" && scheme != "HTTPS" {
                    e.push(FieldError::not_supported(
                        kp.child("scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" => {
                let port = int_or_str(get(Some(a), "port"), &kp.child("port"), e);
                port_num_or_name(port, &kp.child("port"), e);
            }
            "grpc" => {
                let port = int(get(Some(a), "port"), &kp.child("port"), e).unwrap_or(0);
                port_num_or_name(Some(IntOrStr::Int(port)), &kp.child("port"), e);
            }
            "sleep" => {
                let secs = int(get(Some(a), "seconds"), &kp.child("seconds"), e).unwrap_or(0);
                if let Some(g) = grace
                    && (secs < 0 || secs > g)
                {
                    e.push(FieldError::invalid(
                        kp,
                        secs,
                        format!(
                            "must be non-negative and less than terminationGracePeriodSeconds ({g})"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        e.push(FieldError::required(
            p.clone(),
            "must specify a handler type",
        ));
    }
}

const PROBE_HANDLERS: &[&str] = &["exec", "httpGet", "tcpSocket", "grpc"];
const LIFECYCLE_HANDLERS: &[&str] = &["exec", "httpGet", "tcpSocket", "sleep"];

fn probe(c: &Obj, key: &str, grace: Option<i64>, p: &Path, e: &mut Vec<FieldError>) {
    let Some(pr) = child(Some(c), key, p, e) else {
        return;
    };
    let pp = p.child(key);
    handler(pr, PROBE_HANDLERS, grace, &pp, e);
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        let v = int(get(Some(pr), f), &pp.child(f), e).unwrap_or(0);
        nonnegative(v, &pp.child(f), e);
    }
    let tgps = int(
        get(Some(pr), "terminationGracePeriodSeconds"),
        &pp.child("terminationGracePeriodSeconds"),
        e,
    );
    if let Some(t) = tgps
        && t <= 0
    {
        e.push(FieldError::invalid(
            pp.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    let st = int(
        get(Some(pr), "successThreshold"),
        &pp.child("successThreshold"),
        &mut Vec::new(),
    )
    .unwrap_or(0);
    match key {
        "livenessProbe" | "startupProbe" if st != 1 => e.push(FieldError::invalid(
            pp.child("successThreshold"),
            st,
            "must be 1",
        )),
        "readinessProbe" if tgps.is_some() => e.push(FieldError::invalid(
            pp.child("terminationGracePeriodSeconds"),
            tgps.unwrap_or(0),
            "must not be set for readinessProbes",
        )),
        _ => {}
    }
}

fn lifecycle(c: &Obj, grace: Option<i64>, p: &Path, e: &mut Vec<FieldError>) {
    let lp = p.child("lifecycle");
    let Some(l) = child(Some(c), "lifecycle", p, e) else {
        return;
    };
    for hook in ["postStart", "preStop"] {
        if let Some(h) = child(Some(l), hook, &lp, e) {
            handler(h, LIFECYCLE_HANDLERS, grace, &lp.child(hook), e);
        }
    }
}

/// Upstream's `validateContainerCommon` (plus the pod-only image whitespace check).
fn container_common(
    c: &Obj,
    vols: &BTreeSet<String>,
    is_pod: bool,
    p: &Path,
    e: &mut Vec<FieldError>,
) {
    let name = str_or_empty(get(Some(c), "name"), &p.child("name"), e);
    if name.is_empty() {
        e.push(FieldError::required(p.child("name"), ""));
    } else {
        for msg in names::dns1123_label(name) {
            e.push(FieldError::invalid(p.child("name"), name, msg));
        }
    }
    let image = str_or_empty(get(Some(c), "image"), &p.child("image"), e);
    if image.is_empty() {
        e.push(FieldError::required(p.child("image"), ""));
    }
    let tmp = str_or_empty(
        get(Some(c), "terminationMessagePolicy"),
        &p.child("terminationMessagePolicy"),
        e,
    );
    one_of(
        tmp,
        &["File", "FallbackToLogsOnError"],
        &p.child("terminationMessagePolicy"),
        e,
    );
    container_ports(get(Some(c), "ports"), &p.child("ports"), e);
    env(get(Some(c), "env"), &p.child("env"), e);
    env_from(get(Some(c), "envFrom"), &p.child("envFrom"), e);
    volume_mounts(
        get(Some(c), "volumeMounts"),
        vols,
        &p.child("volumeMounts"),
        e,
    );
    let ipp = str_or_empty(
        get(Some(c), "imagePullPolicy"),
        &p.child("imagePullPolicy"),
        e,
    );
    one_of(
        ipp,
        &["Always", "IfNotPresent", "Never"],
        &p.child("imagePullPolicy"),
        e,
    );
    resources(child(Some(c), "resources", p, e), &p.child("resources"), e);
    if is_pod && image.trim() != image {
        e.push(FieldError::invalid(
            p.child("image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
}

/// The regular and init containers' names, and the host ports they claim.
fn host_port_conflicts(cs: &[&Obj], p: &Path, e: &mut Vec<FieldError>) {
    let mut seen = BTreeSet::new();
    let mut scratch = Vec::new();
    for (ci, c) in cs.iter().enumerate() {
        let pp = p.index(ci).child("ports");
        for (pi, port) in arr(get(Some(c), "ports"), &pp, &mut scratch)
            .iter()
            .enumerate()
        {
            let hp = port.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let proto = port.get("protocol").and_then(Value::as_str).unwrap_or("");
            let ip = port.get("hostIP").and_then(Value::as_str).unwrap_or("");
            let key = format!("{proto}/{ip}/{hp}");
            if !seen.insert(key.clone()) {
                e.push(FieldError::duplicate(pp.index(pi).child("hostPort"), key));
            }
        }
    }
}

/// Upstream's `ValidateTolerations`.
pub(crate) fn tolerations(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    for (i, t) in arr(v, p, e).iter().enumerate() {
        let ip = p.index(i);
        let t = obj(Some(t), &ip, e);
        let key = str_or_empty(get(t, "key"), &ip.child("key"), e);
        if !key.is_empty() {
            meta::label_name(key, &ip.child("key"), e);
        }
        let op = str_or_empty(get(t, "operator"), &ip.child("operator"), e);
        if key.is_empty() && op != "Exists" {
            e.push(FieldError::invalid(
                ip.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = str_or_empty(get(t, "effect"), &ip.child("effect"), e);
        let secs = int(
            get(t, "tolerationSeconds"),
            &ip.child("tolerationSeconds"),
            e,
        );
        if secs.is_some() && effect != "NoExecute" {
            e.push(FieldError::invalid(
                ip.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = str_or_empty(get(t, "value"), &ip.child("value"), e);
        match op {
            "" | "Equal" => {
                let errs = names::label_value(value);
                if !errs.is_empty() {
                    e.push(FieldError::invalid(
                        ip.child("operator"),
                        value,
                        errs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    e.push(FieldError::invalid(
                        ip.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => e.push(FieldError::not_supported(
                ip.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            let allowed = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
            if !allowed.contains(&effect) {
                e.push(FieldError::not_supported(
                    ip.child("effect"),
                    effect,
                    &allowed,
                ));
            }
        }
    }
}

fn node_affinity(spec: Option<&Obj>, p: &Path, e: &mut Vec<FieldError>) {
    let ap = p.child("affinity");
    let Some(aff) = child(spec, "affinity", p, e) else {
        return;
    };
    let np = ap.child("nodeAffinity");
    let Some(na) = child(Some(aff), "nodeAffinity", &ap, e) else {
        return;
    };
    let rp = np.child("requiredDuringSchedulingIgnoredDuringExecution");
    if let Some(req) = child(
        Some(na),
        "requiredDuringSchedulingIgnoredDuringExecution",
        &np,
        e,
    ) {
        let tp = rp.child("nodeSelectorTerms");
        let terms = arr(get(Some(req), "nodeSelectorTerms"), &tp, e);
        if terms.is_empty() {
            e.push(FieldError::required(
                tp.clone(),
                "must have at least one node selector term",
            ));
        }
        for (i, term) in terms.iter().enumerate() {
            let term = obj(Some(term), &tp.index(i), e);
            let xp = tp.index(i).child("matchExpressions");
            for (j, x) in arr(get(term, "matchExpressions"), &xp, e)
                .iter()
                .enumerate()
            {
                let jp = xp.index(j);
                let x = obj(Some(x), &jp, e);
                let op = str_or_empty(get(x, "operator"), &jp.child("operator"), e);
                let n = arr(get(x, "values"), &jp.child("values"), e).len();
                match op {
                    "In" | "NotIn" if n == 0 => e.push(FieldError::required(
                        jp.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    )),
                    "Exists" | "DoesNotExist" if n > 0 => e.push(FieldError::forbidden(
                        jp.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )),
                    "Gt" | "Lt" if n != 1 => e.push(FieldError::required(
                        jp.child("values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    )),
                    "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
                    other => e.push(FieldError::invalid(
                        jp.child("operator"),
                        other,
                        "not a valid selector operator",
                    )),
                }
                let key = str_or_empty(get(x, "key"), &jp.child("key"), e);
                meta::label_name(key, &jp.child("key"), e);
            }
        }
    }
}

/// Upstream's `ValidatePodSpec`. `is_pod` is upstream's `ResourceIsPod`: false for templates.
pub(crate) fn pod_spec(spec: Option<&Obj>, p: &Path, is_pod: bool, e: &mut Vec<FieldError>) {
    let Some(spec) = spec else {
        // A missing spec decodes to the zero PodSpec.
        let empty = Obj::new();
        return pod_spec(Some(&empty), p, is_pod, e);
    };
    let s = Some(spec);
    let grace = int(
        get(s, "terminationGracePeriodSeconds"),
        &p.child("terminationGracePeriodSeconds"),
        e,
    );
    if grace.is_none() {
        e.push(FieldError::required(
            p.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let vols = volumes(get(s, "volumes"), &p.child("volumes"), e);

    let cp = p.child("containers");
    let containers: Vec<&Obj> = arr(get(s, "containers"), &cp, e)
        .iter()
        .enumerate()
        .filter_map(|(i, c)| obj(Some(c), &cp.index(i), e))
        .collect();
    if containers.is_empty() {
        e.push(FieldError::required(cp.clone(), ""));
    }
    let mut all_names = BTreeSet::new();
    let mut scratch = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let ip = cp.index(i);
        container_common(c, &vols, is_pod, &ip, e);
        let name = str_or_empty(get(Some(c), "name"), &ip, &mut scratch);
        if !all_names.insert(name.to_owned()) {
            e.push(FieldError::duplicate(ip.child("name"), name));
        }
        lifecycle(c, grace, &ip, e);
        for pr in ["livenessProbe", "readinessProbe", "startupProbe"] {
            probe(c, pr, grace, &ip, e);
        }
        if get(Some(c), "restartPolicy").is_some() {
            e.push(FieldError::forbidden(
                ip.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    host_port_conflicts(&containers, &cp, e);

    let icp = p.child("initContainers");
    let inits: Vec<&Obj> = arr(get(s, "initContainers"), &icp, e)
        .iter()
        .enumerate()
        .filter_map(|(i, c)| obj(Some(c), &icp.index(i), e))
        .collect();
    for (i, c) in inits.iter().enumerate() {
        let ip = icp.index(i);
        container_common(c, &vols, is_pod, &ip, e);
        let rp = str_or_empty(get(Some(c), "restartPolicy"), &ip.child("restartPolicy"), e);
        let restart_always = rp == "Always";
        if get(Some(c), "restartPolicy").is_some() && !restart_always {
            e.push(FieldError::not_supported(
                ip.child("restartPolicy"),
                rp,
                &["Always"],
            ));
        }
        let name = str_or_empty(get(Some(c), "name"), &ip, &mut scratch);
        if all_names.contains(name) {
            e.push(FieldError::duplicate(ip.child("name"), name));
        } else if !name.is_empty() {
            all_names.insert(name.to_owned());
        }
        host_port_conflicts(&[c], &icp, e);
        if restart_always {
            lifecycle(c, grace, &ip, e);
            for pr in ["livenessProbe", "readinessProbe", "startupProbe"] {
                probe(c, pr, grace, &ip, e);
            }
        } else {
            for f in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if get(Some(c), f).is_some() {
                    e.push(FieldError::forbidden(
                        ip.child(f),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }

    let sc = child(s, "securityContext", p, e);
    let host_network = boolean(get(s, "hostNetwork"), &p.child("hostNetwork"), e) == Some(true);
    if host_network {
        for (i, c) in containers.iter().enumerate() {
            let pp = cp.index(i).child("ports");
            for (j, port) in arr(get(Some(c), "ports"), &pp, &mut scratch)
                .iter()
                .enumerate()
            {
                let hp = port.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                let cport = port
                    .get("containerPort")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if (is_pod || hp != 0) && hp != cport {
                    e.push(FieldError::invalid(
                        pp.index(j).child("hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    let restart = str_or_empty(get(s, "restartPolicy"), &p.child("restartPolicy"), e);
    one_of(
        restart,
        &["Always", "OnFailure", "Never"],
        &p.child("restartPolicy"),
        e,
    );
    let dns = str_or_empty(get(s, "dnsPolicy"), &p.child("dnsPolicy"), e);
    one_of(
        dns,
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        &p.child("dnsPolicy"),
        e,
    );
    meta::labels(get(s, "nodeSelector"), &p.child("nodeSelector"), e);
    if let Some(sc) = sc {
        let sp = p.child("securityContext");
        for f in ["runAsUser", "runAsGroup", "fsGroup"] {
            if let Some(id) = int(get(Some(sc), f), &sp.child(f), e)
                && !(0..=4_294_967_295).contains(&id)
            {
                e.push(FieldError::invalid(
                    sp.child(f),
                    id,
                    names::inclusive_range_error(0, 4_294_967_295),
                ));
            }
        }
    }
    node_affinity(s, p, e);
    let dns_config = child(s, "dnsConfig", p, e);
    if dns == "None" {
        match dns_config {
            None => e.push(FieldError::required(
                p.child("dnsConfig"),
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )),
            Some(dc) => {
                let np = p.child("dnsConfig").child("nameservers");
                if arr(get(Some(dc), "nameservers"), &np, e).is_empty() {
                    e.push(FieldError::required(
                        np,
                        "must provide at least one DNS nameserver when `dnsPolicy` is None",
                    ));
                }
            }
        }
    }
    for (f, rule) in [
        (
            "serviceAccountName",
            names::dns1123_subdomain as fn(&str) -> Vec<String>,
        ),
        ("nodeName", names::dns1123_subdomain),
        ("priorityClassName", names::dns1123_subdomain),
        ("hostname", names::dns1123_label),
        ("subdomain", names::dns1123_label),
    ] {
        let v = str_or_empty(get(s, f), &p.child(f), e);
        if !v.is_empty() {
            for msg in rule(v) {
                e.push(FieldError::invalid(p.child(f), v, msg));
            }
        }
    }
    if let Some(ads) = int(
        get(s, "activeDeadlineSeconds"),
        &p.child("activeDeadlineSeconds"),
        e,
    ) && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        e.push(FieldError::invalid(
            p.child("activeDeadlineSeconds"),
            ads,
            names::inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    tolerations(get(s, "tolerations"), &p.child("tolerations"), e);
    if let Some(pp) = string(get(s, "preemptionPolicy"), &p.child("preemptionPolicy"), e) {
        one_of(
            pp,
            &["PreemptLowerPriority", "Never"],
            &p.child("preemptionPolicy"),
            e,
        );
    }
    let gp = p.child("schedulingGates");
    let mut gates = BTreeSet::new();
    for (i, g) in arr(get(s, "schedulingGates"), &gp, e).iter().enumerate() {
        let g = obj(Some(g), &gp.index(i), e);
        let name = str_or_empty(get(g, "name"), &gp.index(i).child("name"), e);
        for msg in names::qualified_name(name) {
            e.push(FieldError::invalid(gp.index(i), name, msg));
        }
        if !gates.insert(name) {
            e.push(FieldError::duplicate(gp.index(i), name));
        }
    }
}

/// Upstream's `ValidatePodTemplateSpec` at `p` (e.g. `spec.template`).
pub(crate) fn pod_template(t: Option<&Obj>, p: &Path, e: &mut Vec<FieldError>) {
    let mp = p.child("metadata");
    let m = child(t, "metadata", p, e);
    meta::labels(get(m, "labels"), &p.child("labels"), e);
    meta::annotations(get(m, "annotations"), &p.child("annotations"), e);
    pod_spec(child(t, "spec", p, e), &p.child("spec"), false, e);
    let _ = mp;
}

/// The labels of a pod template (`template.metadata.labels`), ignoring type errors (reported
/// elsewhere).
pub(crate) fn template_labels(t: Option<&Obj>) -> Vec<(&str, &str)> {
    let m = t.and_then(|t| t.get("metadata")).and_then(Value::as_object);
    str_map(
        m.and_then(|m| m.get("labels")),
        &Path::default(),
        &mut Vec::new(),
    )
}

/// Pod create: metadata, spec, and the pod-only checks.
pub(crate) fn pod_create(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let sp = Path::new("spec");
    let spec = child(Some(root), "spec", &Path::default(), e);
    pod_spec(spec, &sp, true, e);
    if str_or_empty(get(spec, "serviceAccountName"), &sp, &mut Vec::new()).is_empty() {
        let vp = sp.child("volumes");
        for (vi, vol) in arr(get(spec, "volumes"), &vp, &mut Vec::new())
            .iter()
            .enumerate()
        {
            let sources = vol
                .get("projected")
                .and_then(|p| p.get("sources"))
                .and_then(Value::as_array);
            for (si, src) in sources.into_iter().flatten().enumerate() {
                if src.get("serviceAccountToken").is_some_and(|t| !t.is_null()) {
                    e.push(FieldError::forbidden(
                        vp.index(vi)
                            .child("projected")
                            .child("sources")
                            .index(si)
                            .child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
}

/// The spec fields a pod update may change, as upstream lists them.
const POD_UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A line per differing leaf between two JSON values, `-` for the old side, `+` for the new.
pub(crate) fn json_diff(prefix: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                json_diff(
                    &p,
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                json_diff(&format!("{prefix}[{i}]"), x, y, out);
            }
        }
        (a, b) if a != b => {
            if !a.is_null() {
                out.push(format!("- {prefix}: {a}"));
            }
            if !b.is_null() {
                out.push(format!("+ {prefix}: {b}"));
            }
        }
        _ => {}
    }
}

/// Whether the old toleration, ignoring `tolerationSeconds`, is among the new ones.
fn toleration_kept(old: &Value, new: &[Value]) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("tolerationSeconds");
            m.retain(|_, v| !v.is_null());
        }
        v
    };
    let o = strip(old);
    new.iter().any(|n| strip(n) == o)
}

/// Upstream's `ValidatePodUpdate`.
pub(crate) fn pod_update(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta_update(new, old, e);
    pod_create(new, e);
    let sp = Path::new("spec");
    let mut scratch = Vec::new();
    let empty = Obj::new();
    let ns = child(Some(new), "spec", &Path::default(), &mut scratch).unwrap_or(&empty);
    let os = child(Some(old), "spec", &Path::default(), &mut scratch).unwrap_or(&empty);

    for key in ["containers", "initContainers"] {
        let n = arr(ns.get(key), &sp, &mut scratch);
        let o = arr(os.get(key), &sp, &mut scratch);
        if n.len() != o.len() {
            e.push(FieldError::forbidden(
                sp.child(key),
                "pod updates may not add or remove containers",
            ));
            return;
        }
    }
    let n_ads = ns.get("activeDeadlineSeconds").and_then(Value::as_i64);
    let o_ads = os.get("activeDeadlineSeconds").and_then(Value::as_i64);
    let ads_path = sp.child("activeDeadlineSeconds");
    match (n_ads, o_ads) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            e.push(FieldError::invalid(
                ads_path,
                n,
                names::inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return;
        }
        (Some(n), Some(o)) if o < n => {
            e.push(FieldError::invalid(
                ads_path,
                n,
                "must be less than or equal to previous value",
            ));
            return;
        }
        (None, Some(_)) => e.push(FieldError::invalid(
            ads_path,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let old_tol = arr(os.get("tolerations"), &sp, &mut scratch);
    let new_tol = arr(ns.get("tolerations"), &sp, &mut scratch);
    if !old_tol.iter().all(|t| toleration_kept(t, new_tol)) {
        e.push(FieldError::forbidden(
            sp.child("tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }

    // Munge the new spec with the old values of every field that may change, then compare.
    let mut munged = ns.clone();
    for key in ["containers", "initContainers"] {
        if let (Some(Value::Array(nc)), Some(Value::Array(oc))) = (munged.get_mut(key), os.get(key))
        {
            for (n, o) in nc.iter_mut().zip(oc) {
                if let Some(n) = n.as_object_mut() {
                    match o.get("image") {
                        Some(img) => n.insert("image".to_owned(), img.clone()),
                        None => n.remove("image"),
                    };
                }
            }
        }
    }
    for key in ["activeDeadlineSeconds", "tolerations"] {
        match os.get(key) {
            Some(v) => munged.insert(key.to_owned(), v.clone()),
            None => munged.remove(key),
        };
    }
    let old_grace = os
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    let new_grace = ns
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
        munged.insert(
            "terminationGracePeriodSeconds".to_owned(),
            Value::from(old_grace.unwrap_or(0)),
        );
    }
    // Scheduling gates may only be removed.
    let gp = sp.child("schedulingGates");
    let old_gates: Vec<&Value> = arr(os.get("schedulingGates"), &gp, &mut scratch)
        .iter()
        .filter_map(|g| g.get("name"))
        .collect();
    for (i, g) in arr(ns.get("schedulingGates"), &gp, &mut scratch)
        .iter()
        .enumerate()
    {
        if let Some(name) = g.get("name")
            && !old_gates.contains(&name)
        {
            e.push(FieldError::forbidden(
                gp.index(i).child("name"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    name.as_str().unwrap_or_default()
                ),
            ));
        }
    }
    match os.get("schedulingGates") {
        Some(v) => munged.insert("schedulingGates".to_owned(), v.clone()),
        None => munged.remove("schedulingGates"),
    };

    let (o, m) = (Value::Object(os.clone()), Value::Object(munged));
    let mut diff = Vec::new();
    json_diff("", &o, &m, &mut diff);
    if !diff.is_empty() {
        e.push(FieldError::forbidden(
            sp,
            format!(
                "pod updates may not change fields other than {POD_UPDATABLE}\n{}",
                diff.join("\n")
            ),
        ));
    }
}
