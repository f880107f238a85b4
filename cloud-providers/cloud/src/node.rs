//! What node initialisation needs from the cloud: the provider ID, the addresses and the
//! well-known topology labels of the Node an instance becomes.

use std::collections::BTreeMap;

use crate::{Instance, NodeAddress, ProviderId};

/// `topology.kubernetes.io/zone`.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
/// `topology.kubernetes.io/region`.
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";
/// `node.kubernetes.io/instance-type`.
pub const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";

/// The cloud's facts about a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInit {
    /// Goes into `spec.providerID`.
    pub provider_id: ProviderId,
    /// Goes into `status.addresses`: sorted by kind (InternalIP first), without duplicates.
    pub addresses: Vec<NodeAddress>,
    /// Labels to set on the Node.
    pub labels: BTreeMap<String, String>,
}

/// Derives a Node's cloud facts from its instance and the provider's region.
pub fn node_init(instance: &Instance, region: &str) -> NodeInit {
    let mut addresses: Vec<NodeAddress> = instance
        .addresses
        .iter()
        .filter(|a| !a.address.is_empty())
        .cloned()
        .collect();
    addresses.sort();
    addresses.dedup();
    let labels = BTreeMap::from([
        (LABEL_ZONE.to_owned(), instance.zone.clone()),
        (LABEL_REGION.to_owned(), region.to_owned()),
        (
            LABEL_INSTANCE_TYPE.to_owned(),
            instance.instance_type.clone(),
        ),
    ]);
    NodeInit {
        provider_id: instance.provider_id.clone(),
        addresses,
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AddressKind, InstanceState};

    #[test]
    fn labels_and_sorted_addresses() {
        let addr = |kind, a: &str| NodeAddress {
            kind,
            address: a.into(),
        };
        let instance = Instance {
            provider_id: "aws:///us-east-1b/i-0abc".parse().unwrap(),
            name: "pool-1".into(),
            zone: "us-east-1b".into(),
            instance_type: "m5.large".into(),
            state: InstanceState::Running,
            addresses: vec![
                addr(AddressKind::Hostname, "ip-10-0-1-5.ec2.internal"),
                addr(AddressKind::ExternalIp, "54.1.2.3"),
                addr(AddressKind::InternalIp, "10.0.1.5"),
                addr(AddressKind::InternalIp, "10.0.1.5"),
                addr(AddressKind::ExternalIp, ""),
            ],
            tags: BTreeMap::new(),
        };
        let init = node_init(&instance, "us-east-1");
        assert_eq!(init.provider_id.to_string(), "aws:///us-east-1b/i-0abc");
        assert_eq!(
            init.addresses,
            vec![
                addr(AddressKind::InternalIp, "10.0.1.5"),
                addr(AddressKind::ExternalIp, "54.1.2.3"),
                addr(AddressKind::Hostname, "ip-10-0-1-5.ec2.internal"),
            ]
        );
        assert_eq!(init.labels[LABEL_ZONE], "us-east-1b");
        assert_eq!(init.labels[LABEL_REGION], "us-east-1");
        assert_eq!(init.labels[LABEL_INSTANCE_TYPE], "m5.large");
        assert_eq!(init.labels.len(), 3);
    }
}
