//! The values that cross the provider traits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::ProviderId;

/// The most user-data any provider accepts: EC2's limit (GCP allows more).
pub const MAX_USER_DATA_BYTES: usize = 16 * 1024;

/// A DNS-label-like name: lower-case letters, digits and `-`, starting with a letter and not
/// ending with `-`, at most `max` bytes. Every provider accepts such names in tags, labels and
/// resource names.
pub fn check_dns_label(what: &str, s: &str, max: usize) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.as_bytes()[0].is_ascii_lowercase()
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {s:?} must be 1-{max} lower-case letters, digits or '-', start with a letter and not end with '-'"
        ))
    }
}

/// The ID of a tenant cluster, the owner of every resource a provider creates for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterId(String);

impl ClusterId {
    /// The longest accepted cluster ID; leaves room in 63-byte cloud names for a suffix.
    pub const MAX_LEN: usize = 40;

    /// Checks and wraps a cluster ID.
    pub fn new(id: impl Into<String>) -> Result<Self, String> {
        let id = id.into();
        check_dns_label("cluster ID", &id, Self::MAX_LEN)?;
        Ok(ClusterId(id))
    }

    /// The ID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Service a load balancer belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
}

impl ServiceKey {
    /// A Service key.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ServiceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Checks both parts are DNS labels, as Kubernetes requires.
    pub fn validate(&self) -> Result<(), String> {
        check_dns_label("Service namespace", &self.namespace, 63)?;
        check_dns_label("Service name", &self.name, 63)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What to create: one VM of a node pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// The instance's name, unique within the cluster; the key that makes creation idempotent.
    pub name: String,
    /// The machine image: an AMI ID, or a GCP image URL or family.
    pub image: String,
    /// The instance type or machine type, such as `t3.medium` or `e2-medium`.
    pub instance_type: String,
    /// The zone, which must belong to the provider's region.
    pub zone: String,
    /// The subnet (AWS subnet ID, GCP subnetwork). `None` lets the provider choose its default.
    pub subnet: Option<String>,
    /// Security groups (AWS group IDs) or network tags (GCP) for firewalling.
    pub security_groups: Vec<String>,
    /// Data the node reads on boot (API URL, cluster CA, bootstrap token), at most
    /// [`MAX_USER_DATA_BYTES`].
    pub user_data: Vec<u8>,
    /// Extra tags (AWS) or labels (GCP). Keys under `berth.dev/` and `kubernetes.io/` are reserved.
    pub tags: BTreeMap<String, String>,
}

impl InstanceSpec {
    /// Checks what every provider requires before any cloud call.
    pub fn validate(&self) -> Result<(), String> {
        check_dns_label("instance name", &self.name, 63)?;
        for (what, v) in [
            ("image", &self.image),
            ("instance type", &self.instance_type),
            ("zone", &self.zone),
        ] {
            if v.trim().is_empty() {
                return Err(format!("{what} is empty"));
            }
        }
        if self.user_data.len() > MAX_USER_DATA_BYTES {
            return Err(format!(
                "user-data is {} bytes, more than the {MAX_USER_DATA_BYTES} bytes every provider accepts",
                self.user_data.len()
            ));
        }
        for key in self.tags.keys() {
            if crate::tags::is_reserved(key) {
                return Err(format!("tag {key:?} is reserved for Berth and Kubernetes"));
            }
        }
        Ok(())
    }
}

/// The lifecycle state of an instance, normalised across providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    /// Being created or booting.
    Pending,
    /// Running.
    Running,
    /// Being stopped.
    Stopping,
    /// Stopped; still exists and still costs its disks.
    Stopped,
    /// Being deleted.
    ShuttingDown,
    /// Gone, though the cloud may still list it for a while.
    Terminated,
}

impl InstanceState {
    /// Whether the instance is gone or going; such instances are not part of a cluster.
    pub fn is_gone(self) -> bool {
        matches!(
            self,
            InstanceState::ShuttingDown | InstanceState::Terminated
        )
    }
}

/// The kind of a node address, as in the Node API's `status.addresses[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddressKind {
    /// `InternalIP`.
    InternalIp,
    /// `ExternalIP`.
    ExternalIp,
    /// `InternalDNS`.
    InternalDns,
    /// `ExternalDNS`.
    ExternalDns,
    /// `Hostname`.
    Hostname,
}

impl AddressKind {
    /// The Node API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressKind::InternalIp => "InternalIP",
            AddressKind::ExternalIp => "ExternalIP",
            AddressKind::InternalDns => "InternalDNS",
            AddressKind::ExternalDns => "ExternalDNS",
            AddressKind::Hostname => "Hostname",
        }
    }
}

/// One address of an instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeAddress {
    /// The kind of address.
    pub kind: AddressKind,
    /// The address itself.
    pub address: String,
}

/// An instance as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The provider ID that goes into the Node's `spec.providerID`.
    pub provider_id: ProviderId,
    /// The name it was created with.
    pub name: String,
    /// The zone it runs in.
    pub zone: String,
    /// Its instance type.
    pub instance_type: String,
    /// Its lifecycle state.
    pub state: InstanceState,
    /// Its addresses.
    pub addresses: Vec<NodeAddress>,
    /// All its tags or labels, Berth's included.
    pub tags: BTreeMap<String, String>,
}

/// A zone of the provider's region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Zone {
    /// The zone name.
    pub name: String,
    /// The region it belongs to.
    pub region: String,
    /// Whether the cloud accepts new instances there.
    pub available: bool,
}

/// A transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The upper-case name clouds use.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// One port of a Service of type LoadBalancer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePort {
    /// The protocol.
    pub protocol: Protocol,
    /// The port clients connect to on the load balancer.
    pub port: u16,
    /// The NodePort every node listens on for this Service port.
    pub node_port: u16,
}

/// How the load balancer checks that a node can serve the Service: an HTTP GET, as kube-proxy's
/// health endpoint (`:10256/healthz`) or a Service's `healthCheckNodePort` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The node port to probe.
    pub port: u16,
    /// The HTTP path to probe.
    pub path: String,
    /// Seconds between probes.
    pub interval_seconds: u16,
    /// Consecutive successes before a node counts as healthy.
    pub healthy_threshold: u8,
    /// Consecutive failures before a node counts as unhealthy.
    pub unhealthy_threshold: u8,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            port: 10256,
            path: "/healthz".into(),
            interval_seconds: 10,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }
}

/// What a Service of type LoadBalancer needs from the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerSpec {
    /// The Service; with the cluster ID it names the load balancer.
    pub service: ServiceKey,
    /// One listener per port, forwarding to the port's NodePort on every node.
    pub ports: Vec<ServicePort>,
    /// The nodes that receive traffic.
    pub nodes: BTreeSet<ProviderId>,
    /// The health check of the nodes.
    pub health_check: HealthCheck,
}

impl LoadBalancerSpec {
    /// Checks what every provider requires before any cloud call.
    pub fn validate(&self) -> Result<(), String> {
        self.service.validate()?;
        if self.ports.is_empty() {
            return Err("a load balancer needs at least one port".into());
        }
        let mut seen = BTreeSet::new();
        for p in &self.ports {
            if p.port == 0 || p.node_port == 0 {
                return Err(format!(
                    "port {} -> node port {}: ports must be non-zero",
                    p.port, p.node_port
                ));
            }
            if !seen.insert((p.protocol, p.port)) {
                return Err(format!(
                    "port {}/{} appears twice",
                    p.port,
                    p.protocol.as_str()
                ));
            }
        }
        let hc = &self.health_check;
        if hc.port == 0 || !hc.path.starts_with('/') {
            return Err(format!(
                "health check {}:{} needs a non-zero port and a path starting with /",
                hc.port, hc.path
            ));
        }
        if !(2..=10).contains(&hc.healthy_threshold) || !(2..=10).contains(&hc.unhealthy_threshold)
        {
            return Err("health check thresholds must be between 2 and 10".into());
        }
        if !(5..=300).contains(&hc.interval_seconds) {
            return Err("health check interval must be between 5 and 300 seconds".into());
        }
        Ok(())
    }
}

/// Where clients reach a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ingress {
    /// An IP address (GCP).
    Ip(String),
    /// A DNS name (AWS).
    Hostname(String),
}

/// One listener of a load balancer and the instances it forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The Service port.
    pub port: ServicePort,
    /// The instances registered as targets, by [`ProviderId::instance_id`].
    pub targets: BTreeSet<String>,
}

/// A load balancer as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    /// The Service it serves.
    pub service: ServiceKey,
    /// The cloud's name of the load balancer.
    pub name: String,
    /// Where clients reach it; goes into the Service's `status.loadBalancer.ingress`.
    pub ingress: Vec<Ingress>,
    /// Its listeners, sorted by port.
    pub listeners: Vec<Listener>,
}

/// A cloud resource owned by a cluster: what must be gone after the cluster is deleted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OwnedResource {
    /// The resource type, such as `ec2:instance` or `compute:forwardingRule`.
    pub kind: String,
    /// The cloud's ID or name of the resource.
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InstanceSpec {
        InstanceSpec {
            name: "pool-a-1".into(),
            image: "ami-1".into(),
            instance_type: "t3.small".into(),
            zone: "us-east-1a".into(),
            subnet: None,
            security_groups: vec![],
            user_data: b"#cloud-config".to_vec(),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn instance_spec_validation() {
        type Edit = fn(&mut InstanceSpec);
        let cases: [(&str, Edit, Option<&str>); 8] = [
            ("valid", |_| {}, None),
            (
                "upper-case name",
                |s| s.name = "Web".into(),
                Some("instance name \"Web\""),
            ),
            (
                "name ends with dash",
                |s| s.name = "web-".into(),
                Some("instance name \"web-\""),
            ),
            (
                "name too long",
                |s| s.name = "a".repeat(64),
                Some("must be 1-63"),
            ),
            (
                "empty image",
                |s| s.image = " ".into(),
                Some("image is empty"),
            ),
            ("empty zone", |s| s.zone.clear(), Some("zone is empty")),
            (
                "user-data too large",
                |s| s.user_data = vec![0; MAX_USER_DATA_BYTES + 1],
                Some("user-data is 16385 bytes"),
            ),
            (
                "reserved tag",
                |s| {
                    s.tags.insert("berth.dev/cluster".into(), "x".into());
                },
                Some("reserved"),
            ),
        ];
        for (name, edit, want) in cases {
            let mut s = spec();
            edit(&mut s);
            match (s.validate(), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{name}: {e:?} lacks {w:?}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn load_balancer_spec_validation() {
        let base = LoadBalancerSpec {
            service: ServiceKey::new("default", "web"),
            ports: vec![ServicePort {
                protocol: Protocol::Tcp,
                port: 80,
                node_port: 30080,
            }],
            nodes: BTreeSet::new(),
            health_check: HealthCheck::default(),
        };
        type Edit = fn(&mut LoadBalancerSpec);
        let cases: [(&str, Edit, Option<&str>); 7] = [
            ("valid", |_| {}, None),
            ("no ports", |s| s.ports.clear(), Some("at least one port")),
            (
                "zero node port",
                |s| s.ports[0].node_port = 0,
                Some("non-zero"),
            ),
            (
                "duplicate port",
                |s| s.ports.push(s.ports[0].clone()),
                Some("appears twice"),
            ),
            (
                "bad namespace",
                |s| s.service.namespace = "Kube_System".into(),
                Some("Service namespace"),
            ),
            (
                "bad health path",
                |s| s.health_check.path = "healthz".into(),
                Some("path starting with /"),
            ),
            (
                "bad threshold",
                |s| s.health_check.healthy_threshold = 1,
                Some("between 2 and 10"),
            ),
        ];
        for (name, edit, want) in cases {
            let mut s = base.clone();
            edit(&mut s);
            match (s.validate(), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{name}: {e:?} lacks {w:?}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn cluster_ids() {
        assert!(ClusterId::new("prod-eu-1").is_ok());
        for bad in ["", "1abc", "Prod", "a_b", "a-", &"a".repeat(41)] {
            assert!(ClusterId::new(bad).is_err(), "{bad:?}");
        }
    }
}
