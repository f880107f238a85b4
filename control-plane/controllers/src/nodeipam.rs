//! The node IPAM controller's core (`pkg/controller/nodeipam`, the `RangeAllocator`): each node
//! gets its own pod CIDR, a `/24` (by default) carved from the cluster's pod CIDR.
//!
//! An [`Allocator`] is the state upstream keeps in memory: which subnets are taken, by which
//! node, and where the next search starts. The loop rebuilds it from the nodes when it starts
//! ([`Allocator::occupy`] for every node that has a CIDR), then [`Allocator::sync`]s each node
//! it sees and [`Allocator::release`]s each node deleted. A subnet is never handed out twice;
//! the search goes round the range from just past the last subnet given (upstream's
//! `CidrSet.AllocateNext`), so a freed subnet is reused only after the others.
//!
//! IPv4 only: dual-stack clusters (a second cluster CIDR) are not supported.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::meta;

/// The default cluster pod CIDR.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.244.0.0/16";
/// Upstream's `--node-cidr-mask-size-ipv4` default.
pub const DEFAULT_NODE_MASK: u8 = 24;

/// Why a range cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not an IPv4 CIDR such as `10.244.0.0/16`.
    #[error("invalid IPv4 CIDR {0:?}")]
    Invalid(String),
    /// The node mask does not fit in the cluster range.
    #[error("node mask /{mask} does not fit in {cidr}")]
    Mask {
        /// The cluster range.
        cidr: String,
        /// The node mask.
        mask: u8,
    },
}

/// The pod CIDR allocation state of one cluster.
#[derive(Debug, Clone)]
pub struct Allocator {
    base: u32,
    mask: u8,
    count: u32,
    next: u32,
    taken: BTreeMap<u32, String>,
}

fn parse(cidr: &str) -> Option<(u32, u8)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((u32::from(ip), len))
}

fn prefix_mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

impl Allocator {
    /// An empty allocator handing out `/node_mask` subnets of `cluster_cidr`.
    pub fn new(cluster_cidr: &str, node_mask: u8) -> Result<Allocator, CidrError> {
        let (ip, len) =
            parse(cluster_cidr).ok_or_else(|| CidrError::Invalid(cluster_cidr.into()))?;
        if node_mask < len || node_mask > 32 || node_mask - len > 24 {
            return Err(CidrError::Mask {
                cidr: cluster_cidr.into(),
                mask: node_mask,
            });
        }
        Ok(Allocator {
            base: ip & prefix_mask(len),
            mask: node_mask,
            count: 1 << (node_mask - len),
            next: 0,
            taken: BTreeMap::new(),
        })
    }

    fn index_of(&self, cidr: &str) -> Option<u32> {
        let (ip, len) = parse(cidr)?;
        if len != self.mask {
            return None;
        }
        let offset = ip.checked_sub(self.base)? >> (32 - self.mask);
        (offset < self.count).then_some(offset)
    }

    fn cidr_at(&self, index: u32) -> String {
        let ip = Ipv4Addr::from(self.base + (index << (32 - self.mask)));
        format!("{ip}/{}", self.mask)
    }

    /// Marks the subnets a node already carries as taken by it (subnets outside the range are
    /// ignored, as upstream).
    pub fn occupy(&mut self, node: &Value) {
        for cidr in node_cidrs(node) {
            if let Some(i) = self.index_of(&cidr) {
                self.taken.insert(i, meta::name(node).to_owned());
            }
        }
    }

    /// Frees the subnets held by the node named `name`.
    pub fn release(&mut self, name: &str) {
        self.taken.retain(|_, n| n != name);
    }

    /// How many subnets are taken.
    pub fn taken(&self) -> usize {
        self.taken.len()
    }

    /// The merge patch that gives `node` a subnet, if it has none, after taking it; `Err` when
    /// the range is full. A node with a subnet is recorded as holding it.
    pub fn sync(&mut self, node: &Value) -> Result<Option<Value>, Full> {
        if !node_cidrs(node).is_empty() {
            self.occupy(node);
            return Ok(None);
        }
        let name = meta::name(node);
        if let Some((&i, _)) = self.taken.iter().find(|(_, n)| *n == name) {
            // Taken for this node by an earlier sync whose write is not yet seen.
            let cidr = self.cidr_at(i);
            return Ok(Some(json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})));
        }
        for step in 0..self.count {
            let i = (self.next + step) % self.count;
            if let std::collections::btree_map::Entry::Vacant(slot) = self.taken.entry(i) {
                slot.insert(name.to_owned());
                self.next = (i + 1) % self.count;
                let cidr = self.cidr_at(i);
                return Ok(Some(json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})));
            }
        }
        Err(Full)
    }
}

/// The cluster pod range has no free subnet (upstream's `CIDRNotAvailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no remaining CIDRs left to allocate in the accepted range")]
pub struct Full;

/// The node's `spec.podCIDRs`, or `spec.podCIDR` alone.
fn node_cidrs(node: &Value) -> Vec<String> {
    let list: Vec<String> = node
        .pointer("/spec/podCIDRs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if !list.is_empty() {
        return list;
    }
    let one = meta::str_at(node, "/spec/podCIDR");
    if one.is_empty() {
        Vec::new()
    } else {
        vec![one.to_owned()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cidr: Option<&str>) -> Value {
        let mut n = json!({"metadata": {"name": name}, "spec": {}});
        if let Some(c) = cidr {
            n["spec"] = json!({"podCIDR": c, "podCIDRs": [c]});
        }
        n
    }

    fn apply(node: &Value, patch: &Value) -> Value {
        let mut n = node.clone();
        n["spec"] = patch["spec"].clone();
        n
    }

    #[test]
    fn nodes_get_distinct_subnets_and_the_second_sync_writes_nothing() {
        let mut a = Allocator::new(DEFAULT_CLUSTER_CIDR, DEFAULT_NODE_MASK).unwrap();
        let p1 = a.sync(&node("a", None)).unwrap().unwrap();
        let p2 = a.sync(&node("b", None)).unwrap().unwrap();
        assert_eq!(
            p1,
            json!({"spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}})
        );
        assert_eq!(p2["spec"]["podCIDR"], "10.244.1.0/24");
        let n1 = apply(&node("a", None), &p1);
        assert_eq!(a.sync(&n1), Ok(None));
        // Syncing again before the write is seen repeats the same subnet.
        assert_eq!(a.sync(&node("b", None)).unwrap().unwrap(), p2);
    }

    #[test]
    fn state_rebuilt_from_nodes_never_hands_out_a_taken_subnet() {
        let mut a = Allocator::new("10.244.0.0/16", 24).unwrap();
        a.occupy(&node("a", Some("10.244.0.0/24")));
        a.occupy(&node("b", Some("10.244.1.0/24")));
        a.occupy(&node("x", Some("192.168.0.0/24")));
        assert_eq!(a.taken(), 2);
        let p = a.sync(&node("c", None)).unwrap().unwrap();
        assert_eq!(p["spec"]["podCIDR"], "10.244.2.0/24");
    }

    #[test]
    fn released_subnets_come_back_after_the_range_wraps_and_a_full_range_says_so() {
        let mut a = Allocator::new("10.0.0.0/23", 24).unwrap();
        assert_eq!(
            a.sync(&node("a", None)).unwrap().unwrap()["spec"]["podCIDR"],
            "10.0.0.0/24"
        );
        assert_eq!(
            a.sync(&node("b", None)).unwrap().unwrap()["spec"]["podCIDR"],
            "10.0.1.0/24"
        );
        assert_eq!(a.sync(&node("c", None)), Err(Full));
        a.release("a");
        assert_eq!(
            a.sync(&node("c", None)).unwrap().unwrap()["spec"]["podCIDR"],
            "10.0.0.0/24"
        );
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(Allocator::new("10.244.0.0", 24).is_err());
        assert!(Allocator::new("10.244.0.0/25", 24).is_err());
        assert!(Allocator::new("fd00::/64", 80).is_err());
    }
}
