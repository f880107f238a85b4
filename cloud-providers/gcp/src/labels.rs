//! Berth's ownership tags as GCP labels, and back.
//!
//! GCP label keys and values allow only lower-case letters, digits, `_` and `-` (keys start with a
//! letter; both at most 63 characters), so the `cloud` crate's tags cannot be labels as they are.
//! The mapping is fixed and reversible:
//!
//! | Berth tag | GCP label |
//! | --- | --- |
//! | `kubernetes.io/cluster/<id>=owned` | `kubernetes-io-cluster-<id>=owned` |
//! | `berth.dev/cluster=<id>` | `berth-dev-cluster=<id>` |
//! | `berth.dev/instance=<name>` | `berth-dev-instance=<name>` |
//! | `berth.dev/service=<ns>/<name>` | `berth-dev-service-namespace=<ns>`, `berth-dev-service-name=<name>` |
//! | `berth.dev/port=<port>/<PROTO>` | `berth-dev-port=<proto>-<port>` |
//! | (a listener's NodePort) | `berth-dev-node-port=<node-port>` |
//!
//! User tags must already be valid labels and may not use the reserved prefixes. Target pools and
//! legacy HTTP health checks have no labels: they carry the same Berth tags as a JSON object in
//! their `description`, as Kubernetes' own GCE provider does.

use std::collections::BTreeMap;

use cloud::tags;

/// The label of [`tags::TAG_CLUSTER`].
pub const LABEL_CLUSTER: &str = "berth-dev-cluster";
/// The label of [`tags::TAG_INSTANCE`].
pub const LABEL_INSTANCE: &str = "berth-dev-instance";
/// The namespace half of [`tags::TAG_SERVICE`].
pub const LABEL_SERVICE_NAMESPACE: &str = "berth-dev-service-namespace";
/// The name half of [`tags::TAG_SERVICE`].
pub const LABEL_SERVICE_NAME: &str = "berth-dev-service-name";
/// The label of [`tags::TAG_PORT`], as `<proto>-<port>`.
pub const LABEL_PORT: &str = "berth-dev-port";
/// The NodePort a forwarding rule was created for (target pools deliver to the Service port
/// itself, so the cloud has no other record of it).
pub const LABEL_NODE_PORT: &str = "berth-dev-node-port";
/// The prefix of the cluster ownership label.
pub const CLUSTER_LABEL_PREFIX: &str = "kubernetes-io-cluster-";

/// Label prefixes that user tags may not use.
const RESERVED_PREFIXES: [&str; 3] = ["berth-dev-", "kubernetes-io-", "goog"];

/// Whether `s` is a valid label key (`key = true`) or value.
pub fn is_valid_label(s: &str, key: bool) -> bool {
    let chars_ok = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    let start_ok = !key || s.as_bytes().first().is_some_and(u8::is_ascii_lowercase);
    s.len() <= 63 && chars_ok && start_ok
}

/// The GCP labels of Berth tags (ownership and user tags alike).
pub fn to_labels(tags: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for (k, v) in tags {
        if let Some(cluster) = k.strip_prefix(tags::CLUSTER_TAG_PREFIX) {
            labels.insert(format!("{CLUSTER_LABEL_PREFIX}{cluster}"), v.clone());
        } else if k == tags::TAG_CLUSTER {
            labels.insert(LABEL_CLUSTER.into(), v.clone());
        } else if k == tags::TAG_INSTANCE {
            labels.insert(LABEL_INSTANCE.into(), v.clone());
        } else if k == tags::TAG_SERVICE {
            let (ns, name) = v
                .split_once('/')
                .ok_or_else(|| format!("tag {k}={v:?} is not <namespace>/<name>"))?;
            labels.insert(LABEL_SERVICE_NAMESPACE.into(), ns.into());
            labels.insert(LABEL_SERVICE_NAME.into(), name.into());
        } else if k == tags::TAG_PORT {
            let (port, proto) = v
                .split_once('/')
                .ok_or_else(|| format!("tag {k}={v:?} is not <port>/<PROTOCOL>"))?;
            labels.insert(
                LABEL_PORT.into(),
                format!("{}-{port}", proto.to_ascii_lowercase()),
            );
        } else if RESERVED_PREFIXES.iter().any(|p| k.starts_with(p)) {
            return Err(format!(
                "tag {k:?} uses a label prefix reserved for Berth and GCP"
            ));
        } else {
            labels.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in &labels {
        if !is_valid_label(k, true) || !is_valid_label(v, false) {
            return Err(format!(
                "tag {k}={v:?} is not a valid GCP label: keys and values are at most 63 lower-case letters, digits, '-' or '_', keys start with a letter"
            ));
        }
    }
    Ok(labels)
}

/// Berth tags from GCP labels: the inverse of [`to_labels`]; other labels pass unchanged.
pub fn from_labels<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    let (mut ns, mut name) = (None, None);
    for (k, v) in labels {
        if let Some(cluster) = k.strip_prefix(CLUSTER_LABEL_PREFIX) {
            tags.insert(format!("{}{cluster}", tags::CLUSTER_TAG_PREFIX), v.clone());
        } else if k == LABEL_CLUSTER {
            tags.insert(tags::TAG_CLUSTER.into(), v.clone());
        } else if k == LABEL_INSTANCE {
            tags.insert(tags::TAG_INSTANCE.into(), v.clone());
        } else if k == LABEL_SERVICE_NAMESPACE {
            ns = Some(v.clone());
        } else if k == LABEL_SERVICE_NAME {
            name = Some(v.clone());
        } else if k == LABEL_PORT {
            match v.split_once('-') {
                Some((proto, port)) => {
                    tags.insert(
                        tags::TAG_PORT.into(),
                        format!("{port}/{}", proto.to_ascii_uppercase()),
                    );
                }
                None => {
                    tags.insert(k.clone(), v.clone());
                }
            }
        } else {
            tags.insert(k.clone(), v.clone());
        }
    }
    if let (Some(ns), Some(name)) = (ns, name) {
        tags.insert(tags::TAG_SERVICE.into(), format!("{ns}/{name}"));
    }
    tags
}

/// The `description` of a resource without labels: its Berth tags as a JSON object.
pub fn to_description(tags: &BTreeMap<String, String>) -> String {
    serde_json::to_string(tags).unwrap_or_default()
}

/// The Berth tags in a `description` written by [`to_description`]; empty for anything else.
pub fn from_description(description: Option<&str>) -> BTreeMap<String, String> {
    description
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default()
}

/// A Compute list filter matching every label in `labels` (the documented syntax: one
/// parenthesised expression per condition, ANDed).
pub fn filter(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("(labels.{k} = \"{v}\")"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud::{ClusterId, ServiceKey};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ownership_tags_map_to_labels_and_back() {
        let cluster = ClusterId::new("prod-eu-1").unwrap();
        let mut service = tags::service_tags(&cluster, &ServiceKey::new("default", "web"));
        service.insert(tags::TAG_PORT.into(), "443/TCP".into());
        let cases = [
            (
                tags::instance_tags(&cluster, "node-1", &map(&[("team", "db")])),
                map(&[
                    ("berth-dev-cluster", "prod-eu-1"),
                    ("berth-dev-instance", "node-1"),
                    ("kubernetes-io-cluster-prod-eu-1", "owned"),
                    ("team", "db"),
                ]),
            ),
            (
                service,
                map(&[
                    ("berth-dev-cluster", "prod-eu-1"),
                    ("berth-dev-port", "tcp-443"),
                    ("berth-dev-service-name", "web"),
                    ("berth-dev-service-namespace", "default"),
                    ("kubernetes-io-cluster-prod-eu-1", "owned"),
                ]),
            ),
        ];
        for (tags, want) in cases {
            let labels = to_labels(&tags).unwrap();
            assert_eq!(labels, want);
            assert_eq!(from_labels(&labels), tags, "round trip");
        }
    }

    #[test]
    fn the_longest_cluster_id_fits_a_label_key() {
        let cluster = ClusterId::new("a".repeat(ClusterId::MAX_LEN)).unwrap();
        let labels = to_labels(&tags::owner_tags(&cluster)).unwrap();
        assert!(labels.keys().all(|k| k.len() <= 63), "{labels:?}");
    }

    #[test]
    fn user_tags_must_be_valid_unreserved_labels() {
        let cases = [
            (("team", "db"), None),
            (("cost_center", ""), None),
            (("Team", "db"), Some("not a valid GCP label")),
            (("team", "DB"), Some("not a valid GCP label")),
            (("app.io/name", "x"), Some("not a valid GCP label")),
            (("1team", "x"), Some("not a valid GCP label")),
            (("berth-dev-cluster", "x"), Some("reserved")),
            (("kubernetes-io-cluster-x", "owned"), Some("reserved")),
            (("goog-managed", "x"), Some("reserved")),
        ];
        for ((k, v), want) in cases {
            match (to_labels(&map(&[(k, v)])), want) {
                (Ok(_), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{k}={v}: {e}"),
                (got, want) => panic!("{k}={v}: got {got:?}, want {want:?}"),
            }
        }
        let long = "a".repeat(64);
        assert!(to_labels(&map(&[(&long, "x")])).is_err());
    }

    #[test]
    fn descriptions_carry_tags() {
        let tags = map(&[
            ("berth.dev/cluster", "a"),
            ("kubernetes.io/cluster/a", "owned"),
        ]);
        let d = to_description(&tags);
        assert_eq!(
            d,
            r#"{"berth.dev/cluster":"a","kubernetes.io/cluster/a":"owned"}"#
        );
        assert_eq!(from_description(Some(&d)), tags);
        assert!(from_description(Some("made by hand")).is_empty());
        assert!(from_description(None).is_empty());
    }

    #[test]
    fn filters_use_the_documented_syntax() {
        assert_eq!(
            filter(&map(&[
                ("berth-dev-cluster", "a"),
                ("kubernetes-io-cluster-a", "owned")
            ])),
            r#"(labels.berth-dev-cluster = "a") (labels.kubernetes-io-cluster-a = "owned")"#
        );
    }
}
