//! ControllerRevision history shared by the DaemonSet and StatefulSet cores
//! (`pkg/controller/history` and the `getPatch`/`ApplyRevision` helpers of both controllers):
//! snapshots of a workload's pod template, their names and hashes, equality, ordering and
//! truncation.
//!
//! A revision's `data` is the strategic merge patch that restores the template:
//! `{"spec":{"template":{...,"$patch":"replace"}}}`.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use objects::selectors::LabelSelector;
use serde_json::{Map, Value, json};

use crate::meta::{self, Claim};

/// The label on pods (and DaemonSet revisions) naming the revision they were made from.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";
/// `history.ControllerRevisionHashLabel`: the hash `NewControllerRevision` stamps on a revision.
pub const REVISION_HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// Upstream trims owner names to this many characters before appending `-<hash>`.
const MAX_PREFIX: usize = 223;

/// Upstream's `getPatch`: the owner's `spec.template` with `"$patch": "replace"`, under
/// `spec.template`.
pub fn template_patch(owner: &Value) -> Value {
    let mut template = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Value::Object(m) = &mut template {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The pod template a revision restores (upstream's `ApplyRevision`, which only replaces
/// `spec.template`), or `None` when the revision holds no template.
pub fn template_of(revision: &Value) -> Option<Value> {
    let mut t = revision.pointer("/data/spec/template")?.clone();
    if let Value::Object(m) = &mut t {
        m.remove("$patch");
    }
    Some(t)
}

/// `owner` with its template replaced by the one `revision` records.
pub fn apply_revision(owner: &Value, revision: &Value) -> Value {
    let mut out = owner.clone();
    if let Some(t) = template_of(revision) {
        meta::object_at(&mut out, "spec").insert("template".into(), t);
    }
    out
}

/// Upstream's `HashControllerRevision`: FNV-1 (32-bit) over the revision data as Go's
/// `json.Marshal` writes it (keys sorted, HTML characters escaped), then the decimal collision
/// count when set, rendered with `rand.SafeEncodeString`.
pub fn hash_revision(data: &Value, probe: Option<i64>) -> String {
    let mut text = String::new();
    go_json(data, &mut text);
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h = h.wrapping_mul(0x0100_0193);
            h ^= u32::from(*b);
        }
    };
    feed(text.as_bytes());
    if let Some(p) = probe {
        feed(p.to_string().as_bytes());
    }
    safe_encode(&h.to_string())
}

/// `rand.SafeEncodeString`.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// Serialises like Go's `json.Marshal` of a `map[string]interface{}`: keys sorted, no spaces,
/// `<`, `>`, `&`, U+2028 and U+2029 escaped.
fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_string(k, out);
                out.push(':');
                go_json(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(x, out);
            }
            out.push(']');
        }
        Value::String(s) => go_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `ControllerRevisionName`: `<prefix>-<hash>`, the prefix cut to 223 characters.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let prefix = match prefix.char_indices().nth(MAX_PREFIX) {
        Some((i, _)) => &prefix[..i],
        None => prefix,
    };
    format!("{prefix}-{hash}")
}

/// Upstream's `NewControllerRevision`: the template's labels plus
/// `controller.kubernetes.io/hash`, the owner's controller reference, the data and the revision
/// number, named `<owner>-<hash>` for `collision_count`.
pub fn new_revision(
    owner: &Value,
    kind: &str,
    labels: &Value,
    data: Value,
    revision: i64,
    collision_count: Option<i64>,
) -> Value {
    let hash = hash_revision(&data, collision_count);
    let mut labels = labels.as_object().cloned().unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.into(), json!(hash));
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(meta::name(owner), &hash),
            "namespace": meta::namespace(owner),
            "labels": labels,
            "ownerReferences": [meta::owner_ref(owner, kind)],
        },
        "data": data,
        "revision": revision,
    })
}

/// A revision's `revision` number.
pub fn number(revision: &Value) -> i64 {
    meta::int_at(revision, "/revision", 0)
}

/// `SortControllerRevisions`: by revision number, then creation time, then name.
pub fn sort(revisions: &mut [Value]) {
    revisions.sort_by(compare);
}

fn compare(a: &Value, b: &Value) -> Ordering {
    let created = |r: &Value| meta::parse_time(meta::str_at(r, "/metadata/creationTimestamp"));
    number(a)
        .cmp(&number(b))
        .then_with(|| {
            created(a)
                .unwrap_or(i64::MIN)
                .cmp(&created(b).unwrap_or(i64::MIN))
        })
        .then_with(|| meta::name(a).cmp(meta::name(b)))
}

/// `EqualRevision`: the same data (a differing numeric hash label rules equality out, as
/// upstream; safe-encoded hashes never parse as numbers).
pub fn equal(a: &Value, b: &Value) -> bool {
    let numeric = |r: &Value| {
        meta::str_at(
            r,
            &format!("/metadata/labels/{}", escape(REVISION_HASH_LABEL)),
        )
        .parse::<i32>()
        .ok()
    };
    if let (Some(x), Some(y)) = (numeric(a), numeric(b))
        && x != y
    {
        return false;
    }
    a.get("data") == b.get("data")
}

/// `nextRevision`: one more than the highest revision number, 1 for no history.
pub fn next_number(revisions: &[Value]) -> i64 {
    revisions.iter().map(number).max().map_or(1, |n| n + 1)
}

/// Escapes a map key for use in a JSON pointer.
pub(crate) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The revisions a workload reads after upstream's claim (`ClaimControllerRevisions`): the ones
/// it controls or adopts, and the ones it must release.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claimed {
    /// Revisions controlled by the owner (adopted ones included, with the reference added).
    pub owned: Vec<Value>,
    /// Orphans matching the selector, with the owner's controller reference added: write them
    /// back.
    pub adopt: Vec<Value>,
    /// Owned revisions that stopped matching, with the reference removed: write them back.
    pub release: Vec<Value>,
}

/// Claims revisions of the owner's namespace by selector, as `ClaimControllerRevisions` does;
/// an empty selector matches nothing.
pub fn claim(owner: &Value, kind: &str, selector: &LabelSelector, revisions: &[Value]) -> Claimed {
    let mut out = Claimed::default();
    for r in revisions
        .iter()
        .filter(|r| meta::namespace(r) == meta::namespace(owner))
    {
        let matches = !selector.is_empty() && selector.matches_object(r);
        match meta::claim(owner, r, matches) {
            Claim::Owned => out.owned.push(r.clone()),
            Claim::Adopt => {
                let adopted = meta::with_owner(r, meta::owner_ref(owner, kind));
                out.adopt.push(adopted.clone());
                out.owned.push(adopted);
            }
            Claim::Release => out.release.push(meta::without_owner(r, meta::uid(owner))),
            Claim::Ignore => {}
        }
    }
    out
}

/// The names of non-live revisions to delete so that at most `limit` of them remain, oldest
/// first (the StatefulSet's `truncateHistory`). `revisions` must be sorted with [`sort`].
pub fn truncate(revisions: &[Value], live: &BTreeSet<String>, limit: i64) -> Vec<String> {
    let history: Vec<&Value> = revisions
        .iter()
        .filter(|r| !live.contains(meta::name(r)))
        .collect();
    let excess = history.len() as i64 - limit.max(0);
    history
        .into_iter()
        .take(excess.max(0) as usize)
        .map(|r| meta::name(r).to_owned())
        .collect()
}

/// A copy of `revision` with another revision number (upstream's `UpdateControllerRevision`
/// when an older template comes back).
pub fn with_number(revision: &Value, n: i64) -> Value {
    let mut out = revision.clone();
    if let Value::Object(m) = &mut out {
        m.insert("revision".into(), json!(n));
    }
    out
}

/// Sets a label on a copy of `obj`.
pub(crate) fn with_label(obj: &Value, key: &str, value: &str) -> Value {
    let mut out = obj.clone();
    let metadata = meta::object_at(&mut out, "metadata");
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    labels[key] = json!(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_like_encoding_json() {
        let mut s = String::new();
        go_json(&json!({"b": "<a&b>", "a": [1, 2.5, null, true]}), &mut s);
        assert_eq!(s, r#"{"a":[1,2.5,null,true],"b":"\u003ca\u0026b\u003e"}"#);
    }

    #[test]
    fn names_and_hashes() {
        let data = json!({"spec": {"template": {"$patch": "replace"}}});
        let h = hash_revision(&data, None);
        assert_eq!(h, hash_revision(&data, None));
        assert_ne!(h, hash_revision(&data, Some(1)));
        assert!(
            h.bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
        );
        let long = "x".repeat(300);
        assert_eq!(revision_name(&long, "h").len(), 225);
    }
}
