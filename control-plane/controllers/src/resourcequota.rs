//! The ResourceQuota controller's core (`pkg/controller/resourcequota`): a quota's
//! `status.hard` mirrors `spec.hard` and `status.used` is the namespace's usage of every
//! resource `spec.hard` names.
//!
//! [`status`] takes the quota, the pods of its namespace and the object counts the loop
//! gathered (keyed by the `spec.hard` name, see [`count_source`] and [`count`]) and returns the
//! new status, or `None` when the stored one already says the same (quantities compared by
//! value, as upstream's `quota.Equals`).
//!
//! Usage, as upstream's evaluators compute it:
//! - `pods`, `count/pods`: pods that are not terminal (`Succeeded`/`Failed`).
//! - `requests.cpu`/`cpu`, `requests.memory`/`memory`, `limits.cpu`, `limits.memory`: summed
//!   over the non-terminal pods; a pod's value is the sum over its containers, or its largest
//!   init container's when that is larger (upstream's `PodRequests`, without sidecar
//!   accounting or pod overhead).
//! - object counts (`services`, `configmaps`, `secrets`, `persistentvolumeclaims`,
//!   `replicationcontrollers`, `resourcequotas`, `count/<resource>[.<group>]`) and
//!   `services.loadbalancers`/`services.nodeports`: from the loop's counts.
//! - any other resource reports `0`, as upstream sets unmatched hard resources to zero.
//!
//! Where this differs from upstream: used quantities are printed by one canonical formatter,
//! not in the format of the first summed operand: CPU as whole cores (`2`) or millicores
//! (`1500m`), everything else as a plain integer or, for byte-sized values, the largest binary
//! suffix that is exact (`1Gi`, `1536Mi`, `1000` stays `1000`). So `1G` of memory requests
//! shows as `1000000000` where upstream would keep `1G`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::meta;

/// Where the count of `hard_key` comes from: `(group, plural)` of the kind the loop must list
/// in the quota's namespace, or `None` when the pods (or nothing) provide it.
pub fn count_source(hard_key: &str) -> Option<(String, String)> {
    match hard_key {
        "services" | "services.loadbalancers" | "services.nodeports" => {
            Some((String::new(), "services".into()))
        }
        "configmaps"
        | "secrets"
        | "persistentvolumeclaims"
        | "replicationcontrollers"
        | "resourcequotas" => Some((String::new(), hard_key.into())),
        "count/pods" => None,
        _ => {
            let rest = hard_key.strip_prefix("count/")?;
            let (plural, group) = rest.split_once('.').unwrap_or((rest, ""));
            Some((group.into(), plural.into()))
        }
    }
}

/// The usage of `hard_key` among `objects` (the kind [`count_source`] names, in the quota's
/// namespace).
pub fn count(hard_key: &str, objects: &[Value]) -> i64 {
    match hard_key {
        "services.loadbalancers" => objects
            .iter()
            .filter(|s| meta::str_at(s, "/spec/type") == "LoadBalancer")
            .count() as i64,
        "services.nodeports" => objects
            .iter()
            .map(|s| {
                let ports = s
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                match meta::str_at(s, "/spec/type") {
                    "NodePort" => ports.len() as i64,
                    "LoadBalancer"
                        if s.pointer("/spec/allocateLoadBalancerNodePorts")
                            == Some(&Value::Bool(false)) =>
                    {
                        ports
                            .iter()
                            .filter(|p| meta::int_at(p, "/nodePort", 0) != 0)
                            .count() as i64
                    }
                    "LoadBalancer" => ports.len() as i64,
                    _ => 0,
                }
            })
            .sum(),
        _ => objects.len() as i64,
    }
}

/// The quota's new status, or `None` when the stored status already matches.
pub fn status(quota: &Value, pods: &[Value], counts: &BTreeMap<String, i64>) -> Option<Value> {
    let hard = quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let ns = meta::namespace(quota);
    let live: Vec<&Value> = pods
        .iter()
        .filter(|p| meta::namespace(p) == ns)
        .filter(|p| !matches!(meta::str_at(p, "/status/phase"), "Succeeded" | "Failed"))
        .collect();
    let mut used = Map::new();
    for key in hard.keys() {
        let text = match key.as_str() {
            "pods" | "count/pods" => live.len().to_string(),
            "requests.cpu" | "cpu" => format_cpu(sum(&live, "requests", "cpu")),
            "limits.cpu" => format_cpu(sum(&live, "limits", "cpu")),
            "requests.memory" | "memory" => format_bytes(sum(&live, "requests", "memory")),
            "limits.memory" => format_bytes(sum(&live, "limits", "memory")),
            other => counts.get(other).copied().unwrap_or(0).to_string(),
        };
        used.insert(key.clone(), Value::String(text));
    }
    let new = json!({"hard": hard, "used": used});
    let old = quota.get("status").cloned().unwrap_or(Value::Null);
    if same_quantities(old.get("hard"), new.get("hard"))
        && same_quantities(old.get("used"), new.get("used"))
    {
        return None;
    }
    Some(new)
}

/// The pods' total of `resource` in `kind` (`requests`/`limits`), in milli-units.
fn sum(pods: &[&Value], kind: &str, resource: &str) -> i128 {
    let of = |c: &Value| -> i128 {
        c.pointer(&format!("/resources/{kind}/{resource}"))
            .and_then(Value::as_str)
            .and_then(milli_value)
            .unwrap_or(0)
    };
    let list = |p: &Value, field: &str| -> Vec<i128> {
        p.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .map(|cs| cs.iter().map(of).collect())
            .unwrap_or_default()
    };
    pods.iter()
        .map(|p| {
            let containers: i128 = list(p, "containers").into_iter().sum();
            let init = list(p, "initContainers").into_iter().max().unwrap_or(0);
            containers.max(init)
        })
        .sum()
}

/// Whether two `name → quantity` maps hold the same names with equal values.
fn same_quantities(a: Option<&Value>, b: Option<&Value>) -> bool {
    let empty = Map::new();
    let a = a.and_then(Value::as_object).unwrap_or(&empty);
    let b = b.and_then(Value::as_object).unwrap_or(&empty);
    a.len() == b.len()
        && a.iter().all(|(k, va)| {
            let vb = b.get(k);
            match (va.as_str(), vb.and_then(Value::as_str)) {
                (Some(x), Some(y)) => {
                    x == y || (milli_value(x).is_some() && milli_value(x) == milli_value(y))
                }
                _ => Some(va) == vb,
            }
        })
}

/// CPU in milli-units as upstream prints it canonically: whole cores or `<n>m`.
pub fn format_cpu(millis: i128) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// A byte (or plain) count given in milli-units: with the largest exact binary suffix, else
/// as a plain integer (rounded up, as `Value()` does).
pub fn format_bytes(millis: i128) -> String {
    let mut n = (millis + 999).div_euclid(1000);
    if n == 0 {
        return "0".into();
    }
    let mut suffix = "";
    for s in ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"] {
        if n % 1024 != 0 {
            break;
        }
        n /= 1024;
        suffix = s;
    }
    format!("{n}{suffix}")
}

/// A quantity's value in milli-units, rounded up; `None` when `s` is not a quantity.
pub fn milli_value(s: &str) -> Option<i128> {
    let s = s.trim();
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return None;
    }
    let mut exp10: i32 = 3 - frac_part.len() as i32;
    let mut exp2 = 0u32;
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
        other => exp10 += other.strip_prefix(['e', 'E'])?.parse::<i32>().ok()?,
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 || !(-30..=30).contains(&exp10) {
        return None;
    }
    let m: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let m = m.checked_mul(1i128.checked_shl(exp2)?)?;
    let v = if exp10 >= 0 {
        m.checked_mul(10i128.checked_pow(exp10 as u32)?)?
    } else {
        let d = 10i128.pow((-exp10) as u32);
        m / d + i128::from(m % d != 0)
    };
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(hard: Value) -> Value {
        json!({"metadata": {"name": "q", "namespace": "team"}, "spec": {"hard": hard}})
    }

    fn pod(name: &str, phase: &str, containers: Value) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "team"},
            "spec": {"containers": containers},
            "status": {"phase": phase},
        })
    }

    fn res(req_cpu: &str, req_mem: &str, lim_cpu: &str, lim_mem: &str) -> Value {
        json!({"name": "c", "resources": {
            "requests": {"cpu": req_cpu, "memory": req_mem},
            "limits": {"cpu": lim_cpu, "memory": lim_mem},
        }})
    }

    #[test]
    fn pods_and_compute_resources_of_live_pods() {
        let q = quota(json!({
            "pods": "10", "requests.cpu": "4", "cpu": "4", "requests.memory": "4Gi",
            "limits.cpu": "8", "limits.memory": "8Gi",
        }));
        let pods = [
            pod(
                "a",
                "Running",
                json!([
                    res("250m", "512Mi", "500m", "1Gi"),
                    res("250m", "512Mi", "1", "1Gi")
                ]),
            ),
            pod("b", "Pending", json!([res("1", "1Gi", "1500m", "1Gi")])),
            pod("done", "Succeeded", json!([res("4", "4Gi", "4", "4Gi")])),
            json!({"metadata": {"name": "x", "namespace": "other"}, "spec": {"containers": [res("4", "4Gi", "4", "4Gi")]}}),
        ];
        let status = status(&q, &pods, &BTreeMap::new()).unwrap();
        assert_eq!(status["hard"], q["spec"]["hard"]);
        assert_eq!(
            status["used"],
            json!({
                "pods": "2", "requests.cpu": "1500m", "cpu": "1500m", "requests.memory": "2Gi",
                "limits.cpu": "3", "limits.memory": "3Gi",
            })
        );
        // Written back, the same state plans nothing.
        let mut stored = q.clone();
        stored["status"] = status;
        assert_eq!(super::status(&stored, &pods, &BTreeMap::new()), None);
    }

    #[test]
    fn init_containers_count_when_larger() {
        let q = quota(json!({"requests.cpu": "4"}));
        let mut p = pod("a", "Running", json!([res("100m", "1", "1", "1")]));
        p["spec"]["initContainers"] = json!([res("2", "1", "2", "1")]);
        assert_eq!(
            status(&q, &[p], &BTreeMap::new()).unwrap()["used"]["requests.cpu"],
            "2"
        );
    }

    #[test]
    fn object_counts_and_unknown_resources() {
        let q = quota(json!({
            "services": "5", "count/configmaps": "5", "services.nodeports": "2",
            "services.loadbalancers": "1", "count/deployments.apps": "3", "requests.storage": "1Gi",
        }));
        assert_eq!(
            count_source("services.nodeports"),
            Some((String::new(), "services".into()))
        );
        assert_eq!(
            count_source("count/deployments.apps"),
            Some(("apps".into(), "deployments".into()))
        );
        assert_eq!(
            count_source("count/configmaps"),
            Some((String::new(), "configmaps".into()))
        );
        assert_eq!(count_source("pods"), None);
        let services = [
            json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}),
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}}),
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
        ];
        let mut counts = BTreeMap::new();
        for key in ["services", "services.nodeports", "services.loadbalancers"] {
            counts.insert(key.to_owned(), count(key, &services));
        }
        counts.insert("count/configmaps".into(), 2);
        counts.insert("count/deployments.apps".into(), 1);
        let status = status(&q, &[], &counts).unwrap();
        assert_eq!(
            status["used"],
            json!({
                "services": "3", "count/configmaps": "2", "services.nodeports": "3",
                "services.loadbalancers": "1", "count/deployments.apps": "1", "requests.storage": "0",
            })
        );
    }

    #[test]
    fn equal_quantities_in_other_spellings_are_unchanged() {
        let mut q = quota(json!({"requests.memory": "1Gi", "pods": "2"}));
        q["status"] = json!({"hard": {"requests.memory": "1024Mi", "pods": "2"}, "used": {"requests.memory": "0", "pods": "0"}});
        assert_eq!(status(&q, &[], &BTreeMap::new()), None);
        q["spec"]["hard"]["pods"] = json!("3");
        assert!(status(&q, &[], &BTreeMap::new()).is_some());
    }

    #[test]
    fn formats() {
        assert_eq!(format_cpu(1500), "1500m");
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_cpu(0), "0");
        assert_eq!(format_bytes(milli_value("1536Mi").unwrap()), "1536Mi");
        assert_eq!(format_bytes(milli_value("1G").unwrap()), "1000000000");
        assert_eq!(format_bytes(milli_value("1Gi").unwrap()), "1Gi");
        assert_eq!(milli_value("0.1"), Some(100));
        assert_eq!(milli_value("abc"), None);
    }
}
