//! Ownership tags and deterministic names.
//!
//! Every resource a provider creates carries the cluster's ownership tag
//! (`kubernetes.io/cluster/<cluster-id>=owned`, the convention of Kubernetes' AWS provider) and
//! Berth's own tags, so that a provider finds what it created before creating it again, and a
//! cluster's deletion can prove that nothing it owned remains. Names of load balancers are derived
//! from the cluster and Service, so a retried creation names the same resource.

use std::collections::BTreeMap;

use crate::{ClusterId, ServiceKey};

/// The prefix of the cluster ownership tag key.
pub const CLUSTER_TAG_PREFIX: &str = "kubernetes.io/cluster/";
/// The value of the cluster ownership tag for resources the cluster owns.
pub const OWNED: &str = "owned";
/// Berth's tag naming the owning cluster (a second key, for filters that need a fixed key).
pub const TAG_CLUSTER: &str = "berth.dev/cluster";
/// Berth's tag naming the instance, the key of idempotent instance creation.
pub const TAG_INSTANCE: &str = "berth.dev/instance";
/// Berth's tag naming the Service (`namespace/name`) of a load balancer resource.
pub const TAG_SERVICE: &str = "berth.dev/service";
/// Berth's tag naming the Service port (`port/PROTOCOL`) of a listener or target group.
pub const TAG_PORT: &str = "berth.dev/port";

/// The ownership tag key of `cluster`.
pub fn cluster_tag_key(cluster: &ClusterId) -> String {
    format!("{CLUSTER_TAG_PREFIX}{cluster}")
}

/// Whether a user-supplied tag key is reserved for Berth or Kubernetes.
pub fn is_reserved(key: &str) -> bool {
    key.starts_with("berth.dev/") || key.starts_with("kubernetes.io/") || key.starts_with("k8s.io/")
}

/// Whether `tags` mark a resource as owned by `cluster`.
pub fn is_owned(tags: &BTreeMap<String, String>, cluster: &ClusterId) -> bool {
    tags.get(&cluster_tag_key(cluster))
        .is_some_and(|v| v == OWNED)
        && tags.get(TAG_CLUSTER).is_some_and(|v| v == cluster.as_str())
}

/// The tags every resource owned by `cluster` carries.
pub fn owner_tags(cluster: &ClusterId) -> BTreeMap<String, String> {
    BTreeMap::from([
        (cluster_tag_key(cluster), OWNED.to_owned()),
        (TAG_CLUSTER.to_owned(), cluster.as_str().to_owned()),
    ])
}

/// The tags of an instance: the user's, the owner tags and the instance name.
pub fn instance_tags(
    cluster: &ClusterId,
    name: &str,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags = user.clone();
    tags.extend(owner_tags(cluster));
    tags.insert(TAG_INSTANCE.to_owned(), name.to_owned());
    tags
}

/// The tags of a load balancer resource of `service`.
pub fn service_tags(cluster: &ClusterId, service: &ServiceKey) -> BTreeMap<String, String> {
    let mut tags = owner_tags(cluster);
    tags.insert(TAG_SERVICE.to_owned(), service.to_string());
    tags
}

/// A stable 64-bit FNV-1a hash; names derived from it must never change between releases.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0x1f; // a separator that cannot occur in names, so ("ab","c") != ("a","bc")
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The name of the load balancer of `service`: `b` and 16 hex digits, 17 bytes, which fits
/// AWS's 32-byte load balancer and target group names and GCP's 63-byte resource names with room
/// for a port suffix.
pub fn load_balancer_name(cluster: &ClusterId, service: &ServiceKey) -> String {
    format!(
        "b{:016x}",
        stable_hash(&[cluster.as_str(), &service.namespace, &service.name])
    )
}

/// The name of the per-port resource (target group, forwarding rule) of a load balancer.
pub fn port_resource_name(lb_name: &str, port: &crate::ServicePort) -> String {
    format!(
        "{lb_name}-{}-{}",
        port.protocol.as_str().to_ascii_lowercase(),
        port.port
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Protocol, ServicePort};

    #[test]
    fn ownership_needs_both_tags_with_the_right_cluster() {
        let a = ClusterId::new("a").unwrap();
        let b = ClusterId::new("b").unwrap();
        let tags = instance_tags(&a, "n1", &BTreeMap::from([("team".into(), "x".into())]));
        assert!(is_owned(&tags, &a));
        assert!(!is_owned(&tags, &b));
        assert_eq!(
            tags.get("kubernetes.io/cluster/a").map(String::as_str),
            Some("owned")
        );
        assert_eq!(
            tags.get("berth.dev/instance").map(String::as_str),
            Some("n1")
        );
        assert_eq!(tags.get("team").map(String::as_str), Some("x"));
        let mut shared = tags.clone();
        shared.insert("kubernetes.io/cluster/a".into(), "shared".into());
        assert!(!is_owned(&shared, &a), "shared resources are not owned");
    }

    #[test]
    fn names_are_stable_short_and_distinct() {
        let c = ClusterId::new("prod").unwrap();
        let web = ServiceKey::new("default", "web");
        let name = load_balancer_name(&c, &web);
        // Pinned: changing the derivation would orphan every existing load balancer.
        assert_eq!(name, "bde73e2c5c224f6d7");
        assert_eq!(name.len(), 17);
        assert_ne!(
            name,
            load_balancer_name(&c, &ServiceKey::new("defaul", "tweb"))
        );
        assert_ne!(
            name,
            load_balancer_name(&ClusterId::new("prod2").unwrap(), &web)
        );
        let port = ServicePort {
            protocol: Protocol::Tcp,
            port: 443,
            node_port: 30443,
        };
        let tg = port_resource_name(&name, &port);
        assert_eq!(tg, format!("{name}-tcp-443"));
        assert!(tg.len() <= 32);
    }

    #[test]
    fn reserved_keys() {
        for (k, reserved) in [
            ("berth.dev/x", true),
            ("kubernetes.io/cluster/a", true),
            ("k8s.io/role", true),
            ("team", false),
            ("Name", false),
        ] {
            assert_eq!(is_reserved(k), reserved, "{k}");
        }
    }
}
