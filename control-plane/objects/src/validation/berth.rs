//! Berth's management kinds, `berth.dev/v1` `Cluster` and `NodePool`. Upstream has no rules for
//! them; these follow its conventions and messages (`Required value`, `Unsupported value`,
//! `field is immutable`).

use serde_json::Value;

use super::json::{Obj, arr, boolean, child, get, int, str_or_empty, string};
use super::meta::{self, immutable, nonnegative};
use super::names;
use super::other::valid_cidr;
use crate::field::{FieldError, Path};

const INVALID_CIDR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// A Cluster's name: a DNS-1035 label short enough that `<namespace>:<name>` ids stay short.
pub fn cluster_name(name: &str, prefix: bool) -> Vec<String> {
    let mut errs = names::name_is_dns1035_label(name, prefix);
    if !prefix && name.len() > berth_api::MAX_CLUSTER_NAME_LENGTH {
        errs.push(names::max_len_error(berth_api::MAX_CLUSTER_NAME_LENGTH));
    }
    errs
}

fn cidr(v: Option<&Value>, p: &Path, e: &mut Vec<FieldError>) {
    if let Some(c) = string(v, p, e)
        && !valid_cidr(c)
    {
        e.push(FieldError::invalid(p.clone(), c, INVALID_CIDR));
    }
}

/// A Kubernetes version as clusters ask for it: `1.33` or `1.33.1`, optionally with a `v`.
fn valid_version(v: &str) -> bool {
    let parts: Vec<&str> = v.strip_prefix('v').unwrap_or(v).split('.').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `status.observedGeneration` and `status.conditions` of either kind.
fn common_status(status: Option<&Obj>, p: &Path, e: &mut Vec<FieldError>) {
    if let Some(g) = int(
        get(status, "observedGeneration"),
        &p.child("observedGeneration"),
        e,
    ) {
        nonnegative(g, &p.child("observedGeneration"), e);
    }
    let cp = p.child("conditions");
    let mut seen = Vec::new();
    for (i, c) in arr(get(status, "conditions"), &cp, e).iter().enumerate() {
        let ip = cp.index(i);
        let Some(c) = super::json::obj(Some(c), &ip, e) else {
            continue;
        };
        let ty = str_or_empty(get(Some(c), "type"), &ip.child("type"), e);
        if ty.is_empty() {
            e.push(FieldError::required(ip.child("type"), ""));
        } else if seen.contains(&ty) {
            e.push(FieldError::duplicate(ip.child("type"), ty));
        } else {
            seen.push(ty);
        }
        let status = str_or_empty(get(Some(c), "status"), &ip.child("status"), e);
        let allowed = ["True", "False", "Unknown"];
        if !allowed.contains(&status) {
            e.push(FieldError::not_supported(
                ip.child("status"),
                status,
                &allowed,
            ));
        }
    }
}

/// A new (or updated) Cluster.
pub(crate) fn cluster(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, cluster_name, e);
    let sp = Path::new("spec");
    let spec = child(Some(root), "spec", &Path::default(), e);
    let cloud = str_or_empty(get(spec, "cloud"), &sp.child("cloud"), e);
    if cloud.is_empty() {
        e.push(FieldError::required(sp.child("cloud"), ""));
    } else if !berth_api::CLOUDS.contains(&cloud) {
        e.push(FieldError::not_supported(
            sp.child("cloud"),
            cloud,
            berth_api::CLOUDS,
        ));
    }
    let region = str_or_empty(get(spec, "region"), &sp.child("region"), e);
    if region.is_empty() && matches!(cloud, "aws" | "gcp") {
        e.push(FieldError::required(
            sp.child("region"),
            format!("a region is required for cloud {cloud:?}"),
        ));
    }
    if let Some(v) = string(
        get(spec, "kubernetesVersion"),
        &sp.child("kubernetesVersion"),
        e,
    ) && !valid_version(v)
    {
        e.push(FieldError::invalid(
            sp.child("kubernetesVersion"),
            v,
            "must be a Kubernetes version such as 1.33 or 1.33.1",
        ));
    }
    for f in ["serviceCIDR", "podCIDR"] {
        cidr(get(spec, f), &sp.child(f), e);
    }
    let ap = sp.child("apiAccess");
    let access = child(spec, "apiAccess", &sp, e);
    let cp = ap.child("allowedCIDRs");
    for (i, c) in arr(get(access, "allowedCIDRs"), &cp, e).iter().enumerate() {
        cidr(Some(c), &cp.index(i), e);
    }
    boolean(
        get(access, "anonymousHealth"),
        &ap.child("anonymousHealth"),
        e,
    );
    let lp = sp.child("limits");
    let limits = child(spec, "limits", &sp, e);
    for f in [
        "maxObjects",
        "maxStoredBytes",
        "maxWatches",
        "requestsPerSecond",
        "burst",
    ] {
        if let Some(n) = int(get(limits, f), &lp.child(f), e) {
            nonnegative(n, &lp.child(f), e);
        }
    }
    let stp = Path::new("status");
    let status = child(Some(root), "status", &Path::default(), e);
    if let Some(phase) = string(get(status, "phase"), &stp.child("phase"), e)
        && !berth_api::CLUSTER_PHASES.contains(&phase)
    {
        e.push(FieldError::not_supported(
            stp.child("phase"),
            phase,
            berth_api::CLUSTER_PHASES,
        ));
    }
    for f in [
        "clusterID",
        "endpoint",
        "certificateAuthorityData",
        "kubernetesVersion",
    ] {
        string(get(status, f), &stp.child(f), e);
    }
    common_status(status, &stp, e);
}

/// What may not change in a Cluster: where it runs and its address ranges.
pub(crate) fn cluster_update(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    let sp = Path::new("spec");
    let spec = |o: &Obj| o.get("spec").and_then(Value::as_object).cloned();
    let (n, o) = (spec(new), spec(old));
    for f in ["cloud", "region", "serviceCIDR", "podCIDR"] {
        immutable(
            n.as_ref().and_then(|s| s.get(f)),
            o.as_ref().and_then(|s| s.get(f)),
            &sp.child(f),
            e,
        );
    }
}

/// A new (or updated) NodePool.
pub(crate) fn node_pool(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_label, e);
    let sp = Path::new("spec");
    let spec = child(Some(root), "spec", &Path::default(), e);
    let cluster = str_or_empty(get(spec, "clusterName"), &sp.child("clusterName"), e);
    if cluster.is_empty() {
        e.push(FieldError::required(sp.child("clusterName"), ""));
    } else {
        for msg in cluster_name(cluster, false) {
            e.push(FieldError::invalid(sp.child("clusterName"), cluster, msg));
        }
    }
    let instance = str_or_empty(get(spec, "instanceType"), &sp.child("instanceType"), e);
    if instance.is_empty() {
        e.push(FieldError::required(sp.child("instanceType"), ""));
    }
    string(get(spec, "image"), &sp.child("image"), e);
    let zp = sp.child("zones");
    let mut zones = Vec::new();
    for (i, z) in arr(get(spec, "zones"), &zp, e).iter().enumerate() {
        match string(Some(z), &zp.index(i), e) {
            Some("") => e.push(FieldError::required(zp.index(i), "")),
            Some(z) if zones.contains(&z) => e.push(FieldError::duplicate(zp.index(i), z)),
            Some(z) => zones.push(z),
            None => {}
        }
    }
    let size = |f: &str, e: &mut Vec<FieldError>| {
        let n = int(get(spec, f), &sp.child(f), e)?;
        nonnegative(n, &sp.child(f), e);
        Some(n)
    };
    let min = size("minSize", e);
    let desired = size("desiredSize", e);
    let max = size("maxSize", e);
    if let (Some(min), Some(desired)) = (min, desired)
        && desired < min
    {
        e.push(FieldError::invalid(
            sp.child("desiredSize"),
            desired,
            "must be greater than or equal to spec.minSize",
        ));
    }
    if let (Some(lower), Some(max)) = (desired.or(min), max)
        && max < lower
    {
        let what = if desired.is_some() {
            "spec.desiredSize"
        } else {
            "spec.minSize"
        };
        e.push(FieldError::invalid(
            sp.child("maxSize"),
            max,
            format!("must be greater than or equal to {what}"),
        ));
    }
    meta::labels(get(spec, "labels"), &sp.child("labels"), e);
    super::core::taints(get(spec, "taints"), &sp.child("taints"), e);
    let stp = Path::new("status");
    let status = child(Some(root), "status", &Path::default(), e);
    for f in ["replicas", "readyReplicas"] {
        if let Some(n) = int(get(status, f), &stp.child(f), e) {
            nonnegative(n, &stp.child(f), e);
        }
    }
    let np = stp.child("nodes");
    for (i, n) in arr(get(status, "nodes"), &np, e).iter().enumerate() {
        string(Some(n), &np.index(i), e);
    }
    common_status(status, &stp, e);
}

/// What may not change in a NodePool: the cluster it belongs to.
pub(crate) fn node_pool_update(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    let at = |o: &'_ Obj| o.get("spec").and_then(|s| s.get("clusterName")).cloned();
    immutable(
        at(new).as_ref(),
        at(old).as_ref(),
        &Path::new("spec").child("clusterName"),
        e,
    );
}
