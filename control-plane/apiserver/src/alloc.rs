//! Service ClusterIP and NodePort allocation.
//!
//! Each allocated address or port is a key of its own in the cluster's part of the store
//! (`/registry/<cluster>/_alloc/clusterips/<ip>`, `.../nodeports/<port>`), claimed and released in
//! the same transaction that writes or deletes the Service. The store's compare-and-swap then
//! guarantees what a separate allocator could only approximate: no address is ever given twice,
//! and none leaks when a write fails.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use bytes::Bytes;
use objects::field::{FieldError, Path};
use serde_json::{Value, json};
use store::{Consistency, RangeRequest};

use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceDef;
use crate::storage::Objects;

/// The ranges Services are given addresses and node ports from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRanges {
    /// The service CIDR's network address.
    pub network: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// The NodePort range, inclusive.
    pub node_ports: (u16, u16),
}

impl Default for ServiceRanges {
    fn default() -> Self {
        ServiceRanges {
            network: Ipv4Addr::new(10, 96, 0, 0),
            prefix: 12,
            node_ports: (30000, 32767),
        }
    }
}

impl ServiceRanges {
    /// Parses `10.96.0.0/12` and `30000-32767`.
    pub fn parse(cidr: &str, ports: &str) -> Result<Self, String> {
        let (net, prefix) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr:?} is not a CIDR"))?;
        let network: Ipv4Addr = net
            .parse()
            .map_err(|_| format!("{net:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("{prefix:?} is not a prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("prefix /{prefix} must be between /8 and /30"));
        }
        let mask = u32::MAX << (32 - prefix);
        let network = Ipv4Addr::from(u32::from(network) & mask);
        let (lo, hi) = ports
            .split_once('-')
            .ok_or_else(|| format!("{ports:?} is not a port range"))?;
        let lo: u16 = lo.parse().map_err(|_| format!("{lo:?} is not a port"))?;
        let hi: u16 = hi.parse().map_err(|_| format!("{hi:?} is not a port"))?;
        if lo == 0 || lo > hi {
            return Err(format!("{ports:?} is not a valid port range"));
        }
        Ok(ServiceRanges {
            network,
            prefix,
            node_ports: (lo, hi),
        })
    }

    fn cidr(&self) -> String {
        format!("{}/{}", self.network, self.prefix)
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.network)
    }

    /// Usable addresses: not the network address, not the broadcast address.
    fn size(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 2
    }
}

fn ip_key(cluster: &str, ip: Ipv4Addr) -> Bytes {
    format!("/registry/{cluster}/_alloc/clusterips/{ip}").into()
}

fn port_key(cluster: &str, port: u16) -> Bytes {
    format!("/registry/{cluster}/_alloc/nodeports/{port}").into()
}

/// Keys to claim and release in the write of one Service.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Allocation {
    pub(crate) claim: Vec<Bytes>,
    pub(crate) release: Vec<Bytes>,
}

fn service_type(svc: &Value) -> &str {
    svc.pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn cluster_ip(svc: &Value) -> Option<&str> {
    svc.pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn wants_node_ports(svc: &Value) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .map(|p| p as u16)
                .collect()
        })
        .unwrap_or_default()
}

/// Every key a stored Service holds, for releasing them when it is deleted.
pub(crate) fn held_keys(cluster: &str, svc: &Value) -> Vec<Bytes> {
    let mut keys = Vec::new();
    if let Some(ip) = cluster_ip(svc).and_then(|s| s.parse::<Ipv4Addr>().ok()) {
        keys.push(ip_key(cluster, ip));
    }
    keys.extend(node_ports(svc).into_iter().map(|p| port_key(cluster, p)));
    keys
}

async fn taken(objects: &Objects, prefix: String) -> ApiResult<BTreeSet<String>> {
    let req = RangeRequest {
        consistency: Consistency::Serializable,
        ..RangeRequest::prefix(prefix.clone())
    };
    let resp = objects.store().range(req).await?;
    Ok(resp
        .kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key[prefix.len()..]).into_owned())
        .collect())
}

fn invalid(def: &ResourceDef, svc: &Value, error: FieldError) -> ApiError {
    let name = svc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ApiError::invalid(def, name, &[error])
}

/// Fills in `new`'s ClusterIP and NodePorts and says which keys its write must claim and
/// release. `old` is the stored Service on update: values the update leaves unset are kept,
/// as upstream does.
pub(crate) async fn plan(
    objects: &Objects,
    cluster: &str,
    ranges: &ServiceRanges,
    def: &ResourceDef,
    new: &mut Value,
    old: Option<&Value>,
) -> ApiResult<Allocation> {
    let mut alloc = Allocation::default();
    if let Some(old) = old {
        if cluster_ip(new).is_none()
            && service_type(new) != "ExternalName"
            && let Some(ip) = cluster_ip(old)
        {
            new["spec"]["clusterIP"] = json!(ip);
            new["spec"]["clusterIPs"] = json!([ip]);
        }
        // Ports that kept their number keep their node port.
        let old_ports = old
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if wants_node_ports(new)
            && let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut)
        {
            for p in ports.iter_mut().filter(|p| p.get("nodePort").is_none()) {
                if let Some(np) = old_ports
                    .iter()
                    .find(|o| o.get("port") == p.get("port"))
                    .and_then(|o| o.get("nodePort"))
                {
                    p["nodePort"] = np.clone();
                }
            }
        }
    }

    // ClusterIP.
    let old_ip = old.and_then(cluster_ip).map(str::to_owned);
    match service_type(new) {
        "ExternalName" => {}
        _ => match cluster_ip(new).map(str::to_owned) {
            Some(ip) if ip == "None" => {}
            Some(ip) if Some(&ip) == old_ip.as_ref() => {}
            Some(ip) => {
                let path = Path::new("spec").child("clusterIPs");
                let addr: Ipv4Addr = ip.parse().map_err(|_| {
                    invalid(
                        def,
                        new,
                        FieldError::invalid(
                            path.clone(),
                            json!([ip]),
                            "must be a valid IP address",
                        ),
                    )
                })?;
                if !ranges.contains(addr) {
                    return Err(invalid(
                        def,
                        new,
                        FieldError::invalid(
                            path,
                            json!([ip]),
                            format!(
                                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                                ranges.cidr()
                            ),
                        ),
                    ));
                }
                alloc.claim.push(ip_key(cluster, addr));
            }
            None => {
                let used =
                    taken(objects, format!("/registry/{cluster}/_alloc/clusterips/")).await?;
                let base = u32::from(ranges.network);
                // The first address is kept for the `kubernetes` Service, as upstream does.
                let n = ranges.size() - 1;
                let start = rand::random_range(0..n);
                let free = (0..n)
                    .map(|i| Ipv4Addr::from(base + 2 + (start + i) % n))
                    .find(|ip| !used.contains(&ip.to_string()))
                    .ok_or_else(|| {
                        invalid(
                            def,
                            new,
                            FieldError::invalid(
                                Path::new("spec").child("clusterIPs"),
                                json!([]),
                                format!(
                                    "failed to allocate a serviceIP: range is full ({})",
                                    ranges.cidr()
                                ),
                            ),
                        )
                    })?;
                new["spec"]["clusterIP"] = json!(free.to_string());
                new["spec"]["clusterIPs"] = json!([free.to_string()]);
                alloc.claim.push(ip_key(cluster, free));
            }
        },
    }
    if let Some(ip) = old_ip
        .as_deref()
        .filter(|ip| *ip != "None")
        .and_then(|s| s.parse::<Ipv4Addr>().ok())
        && cluster_ip(new) != old_ip.as_deref()
    {
        alloc.release.push(ip_key(cluster, ip));
    }

    // NodePorts.
    let old_node_ports: BTreeSet<u16> = old
        .map(node_ports)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut kept = BTreeSet::new();
    if wants_node_ports(new) {
        let mut used: Option<BTreeSet<String>> = None;
        let (lo, hi) = ranges.node_ports;
        let count = new
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for i in 0..count {
            let path = Path::new("spec").child("ports").index(i).child("nodePort");
            match new["spec"]["ports"][i]
                .get("nodePort")
                .and_then(Value::as_u64)
            {
                Some(p) => {
                    let p = p as u16;
                    if !(lo..=hi).contains(&p) {
                        return Err(invalid(
                            def,
                            new,
                            FieldError::invalid(
                                path,
                                p,
                                format!(
                                    "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                                ),
                            ),
                        ));
                    }
                    if !old_node_ports.contains(&p) && !kept.contains(&p) {
                        alloc.claim.push(port_key(cluster, p));
                    }
                    kept.insert(p);
                }
                None => {
                    if used.is_none() {
                        used = Some(
                            taken(objects, format!("/registry/{cluster}/_alloc/nodeports/"))
                                .await?,
                        );
                    }
                    let used = used.as_ref().expect("just read");
                    let span = u32::from(hi - lo) + 1;
                    let start = rand::random_range(0..span);
                    let free = (0..span)
                        .map(|k| lo + ((start + k) % span) as u16)
                        .find(|p| !used.contains(&p.to_string()) && !kept.contains(p))
                        .ok_or_else(|| {
                            invalid(
                                def,
                                new,
                                FieldError::invalid(path.clone(), json!(null), "range is full"),
                            )
                        })?;
                    new["spec"]["ports"][i]["nodePort"] = json!(free);
                    alloc.claim.push(port_key(cluster, free));
                    kept.insert(free);
                }
            }
        }
    }
    alloc.release.extend(
        old_node_ports
            .difference(&kept)
            .map(|p| port_key(cluster, *p)),
    );
    Ok(alloc)
}

/// After a write whose claims failed: the error for a value the client asked for that another
/// Service holds, or `None` when only values chosen here were taken (the caller plans again).
pub(crate) async fn explain_taken(
    objects: &Objects,
    cluster: &str,
    def: &ResourceDef,
    requested: &Value,
    alloc: &Allocation,
) -> ApiResult<Option<ApiError>> {
    for key in &alloc.claim {
        let resp = objects
            .store()
            .range(RangeRequest::key(key.clone()))
            .await?;
        if resp.kvs.is_empty() {
            continue;
        }
        if let Some(ip) = cluster_ip(requested)
            .filter(|ip| *key == ip_key(cluster, ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)))
        {
            return Ok(Some(invalid(
                def,
                requested,
                FieldError::invalid(
                    Path::new("spec").child("clusterIPs"),
                    json!([ip]),
                    format!("failed to allocate IP {ip}: provided IP is already allocated"),
                ),
            )));
        }
        let ports = requested
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, p) in ports.iter().enumerate() {
            if let Some(np) = p.get("nodePort").and_then(Value::as_u64)
                && *key == port_key(cluster, np as u16)
            {
                return Ok(Some(invalid(
                    def,
                    requested,
                    FieldError::invalid(
                        Path::new("spec").child("ports").index(i).child("nodePort"),
                        np,
                        "provided port is already allocated",
                    ),
                )));
            }
        }
    }
    Ok(None)
}

/// The error when allocation keeps losing races (the range is nearly full).
pub(crate) fn exhausted(def: &ResourceDef, svc: &Value) -> ApiError {
    invalid(
        def,
        svc,
        FieldError::invalid(
            Path::new("spec").child("clusterIPs"),
            svc.pointer("/spec/clusterIPs")
                .cloned()
                .unwrap_or(json!([])),
            "failed to allocate a ClusterIP or node port after several attempts; the range may be nearly full",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_contain() {
        let r = ServiceRanges::parse("10.96.5.5/12", "30000-32767").unwrap();
        assert_eq!(r.network, Ipv4Addr::new(10, 96, 0, 0));
        assert!(r.contains(Ipv4Addr::new(10, 111, 255, 254)));
        assert!(!r.contains(Ipv4Addr::new(10, 112, 0, 1)));
        assert_eq!(r.size(), (1 << 20) - 2);
        assert!(ServiceRanges::parse("10.0.0.0", "1-2").is_err());
        assert!(ServiceRanges::parse("10.0.0.0/24", "5-4").is_err());
    }

    #[test]
    fn held_keys_name_ip_and_ports() {
        let svc = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080}]}});
        let keys = held_keys("c1", &svc);
        assert_eq!(
            keys,
            vec![
                Bytes::from("/registry/c1/_alloc/clusterips/10.96.0.10"),
                Bytes::from("/registry/c1/_alloc/nodeports/30080")
            ]
        );
    }
}
