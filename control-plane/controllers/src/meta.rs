//! Reading and writing the metadata and pod facts every controller core shares: names, owner
//! references, conditions, readiness and RFC 3339 times.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The `metadata.name` of an object, `""` when absent.
pub(crate) fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

/// The `metadata.namespace` of an object, `""` when absent.
pub(crate) fn namespace(obj: &Value) -> &str {
    str_at(obj, "/metadata/namespace")
}

/// The `metadata.uid` of an object, `""` when absent.
pub(crate) fn uid(obj: &Value) -> &str {
    str_at(obj, "/metadata/uid")
}

/// The string at a JSON pointer, `""` when absent or not a string.
pub(crate) fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The integer at a JSON pointer, `default` when absent.
pub(crate) fn int_at(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

/// Whether the object carries a deletion timestamp.
pub(crate) fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// A string map (labels, annotations, matchLabels) at a pointer.
pub(crate) fn string_map(obj: &Value, pointer: &str) -> BTreeMap<String, String> {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The owner reference that marks an object's controller, if any.
pub(crate) fn controller_ref(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// The owner reference a controller of `kind` sets on what it creates or adopts.
pub(crate) fn owner_ref(owner: &Value, kind: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// How a controller's view of a candidate object resolves under upstream's
/// `ControllerRefManager` rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Controlled by the owner and matching its selector.
    Owned,
    /// An orphan that matches the selector: the owner takes it.
    Adopt,
    /// Controlled by the owner but no longer matching: the owner lets go.
    Release,
    /// Someone else's, or an orphan the owner may not take.
    Ignore,
}

/// Upstream's `ClaimObject`: adopt matching orphans unless either side is being deleted, release
/// owned objects that stopped matching unless the owner is being deleted.
pub(crate) fn claim(owner: &Value, obj: &Value, matches: bool) -> Claim {
    match controller_ref(obj) {
        Some(r) if r.get("uid").and_then(Value::as_str) == Some(uid(owner)) => {
            if matches {
                Claim::Owned
            } else if is_deleting(owner) {
                Claim::Ignore
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None if matches && !is_deleting(owner) && !is_deleting(obj) => Claim::Adopt,
        None => Claim::Ignore,
    }
}

/// A copy of `obj` with `reference` appended to its owner references.
pub(crate) fn with_owner(obj: &Value, reference: Value) -> Value {
    let mut out = obj.clone();
    let meta = object_at(&mut out, "metadata");
    let refs = meta
        .entry("ownerReferences")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(a) = refs {
        a.push(reference);
    }
    out
}

/// A copy of `obj` without owner references to `owner_uid`.
pub(crate) fn without_owner(obj: &Value, owner_uid: &str) -> Value {
    let mut out = obj.clone();
    if let Some(Value::Array(refs)) = out.pointer_mut("/metadata/ownerReferences") {
        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
    }
    out
}

/// The object at `key` inside `v`, created (replacing non-objects) when missing.
pub(crate) fn object_at<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(m) = v else { unreachable!() };
    let slot = m.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Value::Object(inner) = slot else {
        unreachable!()
    };
    inner
}

/// The condition of `type_` in a `status.conditions` list.
pub(crate) fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status
        .get("conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// Whether a pod is past the scheduler and kubelet's reach: upstream's `FilterActivePods` keeps
/// pods that are neither `Succeeded`, `Failed` nor being deleted.
pub(crate) fn is_pod_active(pod: &Value) -> bool {
    let phase = str_at(pod, "/status/phase");
    phase != "Succeeded" && phase != "Failed" && !is_deleting(pod)
}

/// The pod's `Ready` condition, when it is `True`.
fn ready_condition(pod: &Value) -> Option<&Value> {
    pod.get("status")
        .and_then(|s| condition(s, "Ready"))
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

/// Whether the pod's `Ready` condition is `True`.
pub(crate) fn is_pod_ready(pod: &Value) -> bool {
    ready_condition(pod).is_some()
}

/// When the pod last became ready, in Unix seconds.
pub(crate) fn pod_ready_since(pod: &Value) -> Option<i64> {
    ready_condition(pod)
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(parse_time)
}

/// Upstream's `IsPodAvailable`: ready, and ready for longer than `min_ready_seconds`.
pub(crate) fn is_pod_available(pod: &Value, min_ready_seconds: i64, now: i64) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    min_ready_seconds == 0 || pod_ready_since(pod).is_some_and(|t| t + min_ready_seconds < now)
}

/// `now` as Unix seconds: Kubernetes times have whole-second precision.
pub(crate) fn unix_seconds(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// `seconds` as a requeue delay; never negative.
pub(crate) fn seconds(seconds: i64) -> Duration {
    Duration::from_secs(seconds.max(0) as u64)
}

/// Parses an RFC 3339 time (`2024-01-02T03:04:05Z`, fractional seconds and offsets accepted)
/// to Unix seconds.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Formats Unix seconds as Kubernetes writes times: `2024-01-02T03:04:05Z`.
pub(crate) fn format_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

// Howard Hinnant's days-from-civil algorithm for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Serialises a value with object keys sorted, whatever map order `serde_json` was built with,
/// so that hashes over it are stable.
pub(crate) fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "2026-11-27T12:00:00Z",
        ] {
            assert_eq!(format_time(parse_time(s).unwrap()), s);
        }
        assert_eq!(
            parse_time("2024-01-01T01:00:00.5+01:00"),
            parse_time("2024-01-01T00:00:00Z")
        );
        assert_eq!(parse_time("yesterday"), None);
    }
}
