//! An in-memory cloud for controller tests.
//!
//! It checks its input like a real cloud does (known images, instance types, zones, subnets and
//! security groups; targets must be the cluster's instances), changes state at once, can be
//! switched "down" to return retryable errors, and counts the calls that change something so a
//! test can assert that a converged reconcile changes nothing. It passes the conformance suite in
//! [`crate::testing`].

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::plan::diff_targets;
use crate::tags::{self, is_owned};
use crate::{
    AddressKind, Cloud, ClusterId, FatalError, FatalKind, Ingress, Instance, InstanceError,
    InstanceOp, InstanceSpec, InstanceState, Instances, InventoryError, InventoryOp, Listener,
    LoadBalancer, LoadBalancerError, LoadBalancerOp, LoadBalancerSpec, LoadBalancers, NodeAddress,
    OwnedResource, ProviderId, RetryKind, RetryableError, ServiceKey, Zone, Zones,
};

/// The fake's default region.
pub const REGION: &str = "fake-region-1";
/// The fake's default zones.
pub const ZONES: [&str; 3] = ["fake-region-1a", "fake-region-1b", "fake-region-1c"];
/// The fake's default image.
pub const IMAGE: &str = "fake-image-1";
/// The fake's default instance type.
pub const INSTANCE_TYPE: &str = "fake.small";
/// The fake's default security group.
pub const SECURITY_GROUP: &str = "sg-fake";

struct FakeInstance {
    cluster: ClusterId,
    instance: Instance,
    user_data: Vec<u8>,
}

#[derive(Default)]
struct State {
    down: bool,
    mutations: u64,
    next_ip: u32,
    /// Instances by name; names are unique across clusters, as in GCP.
    instances: BTreeMap<String, FakeInstance>,
    load_balancers: BTreeMap<(ClusterId, ServiceKey), LoadBalancer>,
}

/// An in-memory cloud.
pub struct FakeCloud {
    region: String,
    zones: Vec<String>,
    images: BTreeSet<String>,
    instance_types: BTreeSet<String>,
    /// Subnet name to zone.
    subnets: BTreeMap<String, String>,
    security_groups: BTreeSet<String>,
    state: Mutex<State>,
}

impl Default for FakeCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCloud {
    /// A fake with [`REGION`], [`ZONES`], one subnet per zone (`subnet-<zone>`), [`IMAGE`],
    /// [`INSTANCE_TYPE`] and [`SECURITY_GROUP`].
    pub fn new() -> Self {
        FakeCloud {
            region: REGION.into(),
            zones: ZONES.iter().map(|z| z.to_string()).collect(),
            images: BTreeSet::from([IMAGE.to_owned()]),
            instance_types: BTreeSet::from([INSTANCE_TYPE.to_owned()]),
            subnets: ZONES
                .iter()
                .map(|z| (format!("subnet-{z}"), z.to_string()))
                .collect(),
            security_groups: BTreeSet::from([SECURITY_GROUP.to_owned()]),
            state: Mutex::new(State::default()),
        }
    }

    /// Makes every call fail as if the cloud were unreachable (`true`) or works again (`false`).
    pub fn set_down(&self, down: bool) {
        self.state.lock().down = down;
    }

    /// How many calls changed something so far.
    pub fn mutations(&self) -> u64 {
        self.state.lock().mutations
    }

    /// The user-data an instance was created with.
    pub fn user_data(&self, id: &ProviderId) -> Option<Vec<u8>> {
        self.state
            .lock()
            .instances
            .get(id.instance_id())
            .map(|i| i.user_data.clone())
    }

    fn check_up(&self, state: &State, call: &'static str) -> Result<(), RetryableError> {
        if state.down {
            Err(RetryableError::new(
                call,
                RetryKind::Unavailable,
                "the fake cloud is down",
            ))
        } else {
            Ok(())
        }
    }

    fn check_spec(&self, spec: &InstanceSpec) -> Result<(), FatalError> {
        let call = "fake:CreateInstance";
        let reject = |kind, what: &str| Err(FatalError::new(call, kind, what.to_owned()));
        if !self.zones.contains(&spec.zone) {
            return reject(
                FatalKind::UnknownZone,
                &format!("zone {:?} is not in {}", spec.zone, self.region),
            );
        }
        if !self.images.contains(&spec.image) {
            return reject(
                FatalKind::UnknownImage,
                &format!("image {:?} does not exist", spec.image),
            );
        }
        if !self.instance_types.contains(&spec.instance_type) {
            return reject(
                FatalKind::UnknownInstanceType,
                &format!("instance type {:?} does not exist", spec.instance_type),
            );
        }
        if let Some(subnet) = &spec.subnet
            && self.subnets.get(subnet) != Some(&spec.zone)
        {
            return reject(
                FatalKind::UnknownSubnet,
                &format!("subnet {subnet:?} does not exist in zone {:?}", spec.zone),
            );
        }
        if let Some(sg) = spec
            .security_groups
            .iter()
            .find(|g| !self.security_groups.contains(*g))
        {
            return reject(
                FatalKind::UnknownSecurityGroup,
                &format!("security group {sg:?} does not exist"),
            );
        }
        Ok(())
    }

    fn check_targets(
        state: &State,
        cluster: &ClusterId,
        nodes: &BTreeSet<ProviderId>,
    ) -> Result<BTreeSet<String>, crate::Failure> {
        let mut targets = BTreeSet::new();
        for node in nodes {
            let ProviderId::Fake { name, .. } = node else {
                return Err(crate::Failure::InvalidInput(format!(
                    "{node} is not a fake provider ID"
                )));
            };
            match state.instances.get(name) {
                Some(i) if &i.cluster == cluster && i.instance.provider_id == *node => {
                    targets.insert(name.clone());
                }
                _ => {
                    return Err(FatalError::new(
                        "fake:RegisterTargets",
                        FatalKind::UnknownInstance,
                        format!("{node} is not an instance of cluster {cluster}"),
                    )
                    .into());
                }
            }
        }
        Ok(targets)
    }
}

#[async_trait]
impl Instances for FakeCloud {
    async fn create_instance(
        &self,
        cluster: &ClusterId,
        spec: &InstanceSpec,
    ) -> Result<Instance, InstanceError> {
        let err = |f: crate::Failure| InstanceError::new(InstanceOp::Create, &spec.name, f);
        spec.validate()
            .map_err(|e| InstanceError::invalid(InstanceOp::Create, &spec.name, e))?;
        let mut state = self.state.lock();
        self.check_up(&state, "fake:CreateInstance")
            .map_err(|e| err(e.into()))?;
        if let Some(existing) = state.instances.get(&spec.name) {
            if &existing.cluster == cluster {
                return Ok(existing.instance.clone());
            }
            return Err(err(FatalError::new(
                "fake:CreateInstance",
                FatalKind::Conflict,
                format!("instance name {:?} is taken by another cluster", spec.name),
            )
            .into()));
        }
        self.check_spec(spec).map_err(|e| err(e.into()))?;
        state.next_ip += 1;
        state.mutations += 1;
        let ip = state.next_ip;
        let instance = Instance {
            provider_id: ProviderId::Fake {
                zone: spec.zone.clone(),
                name: spec.name.clone(),
            },
            name: spec.name.clone(),
            zone: spec.zone.clone(),
            instance_type: spec.instance_type.clone(),
            state: InstanceState::Running,
            addresses: vec![
                NodeAddress {
                    kind: AddressKind::InternalIp,
                    address: format!("10.0.{}.{}", ip / 250, ip % 250 + 2),
                },
                NodeAddress {
                    kind: AddressKind::Hostname,
                    address: spec.name.clone(),
                },
            ],
            tags: tags::instance_tags(cluster, &spec.name, &spec.tags),
        };
        state.instances.insert(
            spec.name.clone(),
            FakeInstance {
                cluster: cluster.clone(),
                instance: instance.clone(),
                user_data: spec.user_data.clone(),
            },
        );
        Ok(instance)
    }

    async fn describe_instance(
        &self,
        cluster: &ClusterId,
        id: &ProviderId,
    ) -> Result<Option<Instance>, InstanceError> {
        let state = self.state.lock();
        self.check_up(&state, "fake:DescribeInstances")
            .map_err(|e| InstanceError::new(InstanceOp::Describe, id.to_string(), e))?;
        Ok(state
            .instances
            .get(id.instance_id())
            .filter(|i| &i.cluster == cluster && i.instance.provider_id == *id)
            .map(|i| i.instance.clone()))
    }

    async fn list_instances(&self, cluster: &ClusterId) -> Result<Vec<Instance>, InstanceError> {
        let state = self.state.lock();
        self.check_up(&state, "fake:DescribeInstances")
            .map_err(|e| InstanceError::new(InstanceOp::List, cluster.as_str(), e))?;
        Ok(state
            .instances
            .values()
            .filter(|i| &i.cluster == cluster)
            .map(|i| i.instance.clone())
            .collect())
    }

    async fn terminate_instance(
        &self,
        cluster: &ClusterId,
        id: &ProviderId,
    ) -> Result<(), InstanceError> {
        let err = |f: crate::Failure| InstanceError::new(InstanceOp::Terminate, id.to_string(), f);
        let mut state = self.state.lock();
        self.check_up(&state, "fake:TerminateInstances")
            .map_err(|e| err(e.into()))?;
        match state.instances.get(id.instance_id()) {
            Some(i) if i.instance.provider_id == *id => {
                if &i.cluster != cluster {
                    return Err(err(FatalError::new(
                        "fake:TerminateInstances",
                        FatalKind::Conflict,
                        format!("{id} belongs to another cluster"),
                    )
                    .into()));
                }
                state.instances.remove(id.instance_id());
                state.mutations += 1;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl LoadBalancers for FakeCloud {
    async fn ensure_load_balancer(
        &self,
        cluster: &ClusterId,
        spec: &LoadBalancerSpec,
    ) -> Result<LoadBalancer, LoadBalancerError> {
        let subject = spec.service.to_string();
        let err = |f: crate::Failure| LoadBalancerError::new(LoadBalancerOp::Ensure, &subject, f);
        spec.validate()
            .map_err(|e| LoadBalancerError::invalid(LoadBalancerOp::Ensure, &subject, e))?;
        let mut state = self.state.lock();
        self.check_up(&state, "fake:CreateLoadBalancer")
            .map_err(|e| err(e.into()))?;
        let targets = Self::check_targets(&state, cluster, &spec.nodes).map_err(err)?;
        let name = tags::load_balancer_name(cluster, &spec.service);
        let mut ports = spec.ports.clone();
        ports.sort();
        let wanted = LoadBalancer {
            service: spec.service.clone(),
            name: name.clone(),
            ingress: vec![Ingress::Hostname(format!("{name}.lb.fake.invalid"))],
            listeners: ports
                .into_iter()
                .map(|port| Listener {
                    port,
                    targets: targets.clone(),
                })
                .collect(),
        };
        let key = (cluster.clone(), spec.service.clone());
        if state.load_balancers.get(&key) != Some(&wanted) {
            state.load_balancers.insert(key, wanted.clone());
            state.mutations += 1;
        }
        Ok(wanted)
    }

    async fn update_targets(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
        nodes: &BTreeSet<ProviderId>,
    ) -> Result<LoadBalancer, LoadBalancerError> {
        let subject = service.to_string();
        let err =
            |f: crate::Failure| LoadBalancerError::new(LoadBalancerOp::UpdateTargets, &subject, f);
        let mut state = self.state.lock();
        self.check_up(&state, "fake:RegisterTargets")
            .map_err(|e| err(e.into()))?;
        let targets = Self::check_targets(&state, cluster, nodes).map_err(err)?;
        let key = (cluster.clone(), service.clone());
        let Some(lb) = state.load_balancers.get_mut(&key) else {
            return Err(err(FatalError::new(
                "fake:RegisterTargets",
                FatalKind::Rejected,
                "no load balancer for this Service",
            )
            .into()));
        };
        let mut changed = false;
        for l in &mut lb.listeners {
            changed |= !diff_targets(&targets, &l.targets).is_empty();
            l.targets = targets.clone();
        }
        let lb = lb.clone();
        if changed {
            state.mutations += 1;
        }
        Ok(lb)
    }

    async fn get_load_balancer(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<Option<LoadBalancer>, LoadBalancerError> {
        let state = self.state.lock();
        self.check_up(&state, "fake:DescribeLoadBalancers")
            .map_err(|e| LoadBalancerError::new(LoadBalancerOp::Get, service.to_string(), e))?;
        Ok(state
            .load_balancers
            .get(&(cluster.clone(), service.clone()))
            .cloned())
    }

    async fn delete_load_balancer(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<(), LoadBalancerError> {
        let mut state = self.state.lock();
        self.check_up(&state, "fake:DeleteLoadBalancer")
            .map_err(|e| LoadBalancerError::new(LoadBalancerOp::Delete, service.to_string(), e))?;
        if state
            .load_balancers
            .remove(&(cluster.clone(), service.clone()))
            .is_some()
        {
            state.mutations += 1;
        }
        Ok(())
    }
}

#[async_trait]
impl Zones for FakeCloud {
    fn region(&self) -> &str {
        &self.region
    }

    async fn zones(&self) -> Result<Vec<Zone>, InventoryError> {
        let state = self.state.lock();
        self.check_up(&state, "fake:DescribeZones")
            .map_err(|e| InventoryError::new(InventoryOp::Zones, "", e))?;
        Ok(self
            .zones
            .iter()
            .map(|z| Zone {
                name: z.clone(),
                region: self.region.clone(),
                available: true,
            })
            .collect())
    }
}

#[async_trait]
impl Cloud for FakeCloud {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn owned_resources(
        &self,
        cluster: &ClusterId,
    ) -> Result<Vec<OwnedResource>, InventoryError> {
        let state = self.state.lock();
        self.check_up(&state, "fake:DescribeTags")
            .map_err(|e| InventoryError::new(InventoryOp::OwnedResources, cluster.as_str(), e))?;
        let instances = state
            .instances
            .values()
            .filter(|i| is_owned(&i.instance.tags, cluster))
            .map(|i| OwnedResource {
                kind: "fake:instance".into(),
                id: i.instance.name.clone(),
            });
        let lbs = state
            .load_balancers
            .iter()
            .filter(|((c, _), _)| c == cluster)
            .map(|(_, lb)| OwnedResource {
                kind: "fake:load-balancer".into(),
                id: lb.name.clone(),
            });
        Ok(instances.chain(lbs).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Suite};

    fn fixture() -> Fixture {
        Fixture {
            zones: [ZONES[0].into(), ZONES[1].into()],
            subnets: [
                Some(format!("subnet-{}", ZONES[0])),
                Some(format!("subnet-{}", ZONES[1])),
            ],
            image: IMAGE.into(),
            instance_type: INSTANCE_TYPE.into(),
            security_groups: vec![SECURITY_GROUP.into()],
            ..Fixture::new("fake-suite")
        }
    }

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let cloud = FakeCloud::new();
        Suite::new(&cloud, fixture()).run_all().await;
    }

    #[tokio::test]
    async fn reports_a_down_cloud_as_retryable() {
        let cloud = FakeCloud::new();
        cloud.set_down(true);
        Suite::new(&cloud, fixture()).cloud_down().await;
    }

    #[tokio::test]
    async fn a_converged_ensure_changes_nothing() {
        let cloud = FakeCloud::new();
        let suite = Suite::new(&cloud, fixture());
        let cluster = suite.fixture().cluster.clone();
        let node = cloud
            .create_instance(&cluster, &suite.instance_spec("n1", 0))
            .await
            .unwrap();
        let spec = suite.load_balancer_spec(BTreeSet::from([node.provider_id.clone()]));
        cloud.ensure_load_balancer(&cluster, &spec).await.unwrap();
        let before = cloud.mutations();
        cloud.ensure_load_balancer(&cluster, &spec).await.unwrap();
        cloud
            .update_targets(&cluster, &spec.service, &spec.nodes)
            .await
            .unwrap();
        assert_eq!(cloud.mutations(), before);
        assert_eq!(
            cloud.user_data(&node.provider_id).as_deref(),
            Some(&b"#!/bin/sh\necho n1\n"[..])
        );
    }
}
