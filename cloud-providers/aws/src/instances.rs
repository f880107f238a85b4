//! EC2 instances.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    self as ec2t, Filter, InstanceStateName, ResourceType, Tag, TagSpecification,
};
use cloud::plan::{Found, select_owned};
use cloud::retry::{Backoff, retry};
use cloud::{
    AddressKind, ClusterId, Failure, FatalError, FatalKind, Instance, InstanceError, InstanceOp,
    InstanceSpec, InstanceState, Instances, NodeAddress, ProviderId, RetryKind, RetryableError,
    Zones, tags,
};

use crate::AwsCloud;
use crate::error::{failure, has_code};

/// States of instances that still exist as far as a cluster is concerned.
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

fn state(s: Option<&InstanceStateName>) -> InstanceState {
    match s {
        Some(InstanceStateName::Pending) | None => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(InstanceStateName::Stopping) => InstanceState::Stopping,
        Some(InstanceStateName::Stopped) => InstanceState::Stopped,
        Some(InstanceStateName::ShuttingDown) => InstanceState::ShuttingDown,
        Some(_) => InstanceState::Terminated,
    }
}

pub(crate) fn instance_tags(i: &ec2t::Instance) -> std::collections::BTreeMap<String, String> {
    crate::tag_map(i.tags().iter().map(|t| (t.key(), t.value())))
}

fn convert(i: &ec2t::Instance) -> Option<Instance> {
    let id = i.instance_id()?;
    let zone = i
        .placement()
        .and_then(|p| p.availability_zone())?
        .to_owned();
    let tags = instance_tags(i);
    let mut addresses = Vec::new();
    let mut push = |kind, a: Option<&str>| {
        if let Some(a) = a.filter(|a| !a.is_empty()) {
            addresses.push(NodeAddress {
                kind,
                address: a.to_owned(),
            });
        }
    };
    push(AddressKind::InternalIp, i.private_ip_address());
    push(AddressKind::ExternalIp, i.public_ip_address());
    push(AddressKind::InternalDns, i.private_dns_name());
    push(AddressKind::Hostname, i.private_dns_name());
    push(AddressKind::ExternalDns, i.public_dns_name());
    Some(Instance {
        provider_id: ProviderId::Aws {
            zone: zone.clone(),
            instance_id: id.to_owned(),
        },
        name: tags
            .get(tags::TAG_INSTANCE)
            .cloned()
            .unwrap_or_else(|| id.to_owned()),
        zone,
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        state: state(i.state().and_then(|s| s.name())),
        addresses,
        tags,
    })
}

fn aws_instance_id(op: InstanceOp, id: &ProviderId) -> Result<&str, InstanceError> {
    match id {
        ProviderId::Aws { instance_id, .. } => Ok(instance_id),
        other => Err(InstanceError::invalid(
            op,
            other.to_string(),
            "not an aws:/// provider ID",
        )),
    }
}

/// A token that makes RunInstances idempotent on real AWS for the same cluster and name.
fn client_token(cluster: &ClusterId, spec: &InstanceSpec) -> String {
    format!(
        "berth-{:016x}",
        tags::stable_hash(&[
            cluster.as_str(),
            &spec.name,
            &spec.image,
            &spec.instance_type,
            &spec.zone
        ])
    )
}

impl AwsCloud {
    /// Runs DescribeInstances with `filters` over every page.
    async fn describe_instances(
        &self,
        filters: Vec<Filter>,
    ) -> Result<Vec<ec2t::Instance>, Failure> {
        let mut pages = self
            .ec2
            .describe_instances()
            .set_filters(Some(filters))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("ec2:DescribeInstances", e))?;
            for r in page.reservations() {
                out.extend(r.instances().iter().cloned());
            }
        }
        Ok(out)
    }

    /// The cluster's instances that are not terminated or shutting down.
    pub(crate) async fn owned_instances(
        &self,
        cluster: &ClusterId,
    ) -> Result<Vec<ec2t::Instance>, Failure> {
        let mut filters = Self::owner_filters(cluster);
        filters.push(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.map(String::from).to_vec()))
                .build(),
        );
        self.describe_instances(filters).await
    }

    /// Instances by ID, whatever their owner; missing IDs are simply absent (a filter, unlike
    /// `InstanceIds`, does not fail on an unknown ID).
    pub(crate) async fn instances_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<ec2t::Instance>, Failure> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.describe_instances(vec![
            Filter::builder()
                .name("instance-id")
                .set_values(Some(ids.to_vec()))
                .build(),
        ])
        .await
    }

    async fn check_placement(&self, spec: &InstanceSpec) -> Result<(), Failure> {
        let zones = self.zones().await.map_err(|e| e.failure)?;
        if !zones.iter().any(|z| z.name == spec.zone) {
            return Err(FatalError::new(
                "ec2:DescribeAvailabilityZones",
                FatalKind::UnknownZone,
                format!("zone {:?} is not in region {}", spec.zone, self.region),
            )
            .into());
        }
        if let Some(subnet) = &spec.subnet {
            let call = "ec2:DescribeSubnets";
            let out = self
                .ec2
                .describe_subnets()
                .filters(Filter::builder().name("subnet-id").values(subnet).build())
                .send()
                .await
                .map_err(|e| failure(call, e))?;
            match out.subnets().first().and_then(|s| s.availability_zone()) {
                None => {
                    return Err(FatalError::new(
                        call,
                        FatalKind::UnknownSubnet,
                        format!("subnet {subnet:?} does not exist"),
                    )
                    .into());
                }
                Some(az) if az != spec.zone => {
                    return Err(FatalError::new(
                        call,
                        FatalKind::UnknownSubnet,
                        format!("subnet {subnet:?} is in zone {az}, not {}", spec.zone),
                    )
                    .into());
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    async fn find_instance(
        &self,
        cluster: &ClusterId,
        name: &str,
    ) -> Result<Option<ec2t::Instance>, Failure> {
        let mut filters = Self::owner_filters(cluster);
        filters.push(
            Filter::builder()
                .name(format!("tag:{}", tags::TAG_INSTANCE))
                .values(name)
                .build(),
        );
        filters.push(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.map(String::from).to_vec()))
                .build(),
        );
        let found = self.describe_instances(filters).await?;
        let keys: Vec<(Option<i128>, String)> = found
            .iter()
            .filter_map(|i| {
                Some((
                    i.launch_time().map(|t| t.as_nanos()),
                    i.instance_id()?.to_owned(),
                ))
            })
            .collect();
        let by_id = |id: &str| found.iter().find(|i| i.instance_id() == Some(id)).cloned();
        match select_owned(keys) {
            Found::Missing => Ok(None),
            Found::One(id) => Ok(by_id(&id)),
            Found::Duplicates { keep, extra } => {
                // A crash between RunInstances and its bookkeeping on a cloud without idempotency
                // tokens left copies: keep the oldest, end the rest.
                tracing::warn!(cluster = %cluster, name, ?extra, "terminating duplicate instances");
                self.ec2
                    .terminate_instances()
                    .set_instance_ids(Some(extra))
                    .send()
                    .await
                    .map_err(|e| failure("ec2:TerminateInstances", e))?;
                Ok(by_id(&keep))
            }
        }
    }
}

#[async_trait]
impl Instances for AwsCloud {
    async fn create_instance(
        &self,
        cluster: &ClusterId,
        spec: &InstanceSpec,
    ) -> Result<Instance, InstanceError> {
        let err = |f: Failure| InstanceError::new(InstanceOp::Create, &spec.name, f);
        spec.validate()
            .map_err(|e| InstanceError::invalid(InstanceOp::Create, &spec.name, e))?;
        self.check_placement(spec).await.map_err(err)?;
        if let Some(existing) = self.find_instance(cluster, &spec.name).await.map_err(err)?
            && let Some(i) = convert(&existing)
        {
            return Ok(i);
        }
        let mut all_tags = tags::instance_tags(cluster, &spec.name, &spec.tags);
        all_tags
            .entry("Name".into())
            .or_insert_with(|| spec.name.clone());
        let tag_list: Vec<Tag> = all_tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let call = "ec2:RunInstances";
        let out = self
            .ec2
            .run_instances()
            .image_id(&spec.image)
            .instance_type(ec2t::InstanceType::from(spec.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .placement(
                ec2t::Placement::builder()
                    .availability_zone(&spec.zone)
                    .build(),
            )
            .set_subnet_id(spec.subnet.clone())
            .set_security_group_ids(
                (!spec.security_groups.is_empty()).then(|| spec.security_groups.clone()),
            )
            .user_data(aws_smithy_types::base64::encode(&spec.user_data))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(tag_list))
                    .build(),
            )
            .client_token(client_token(cluster, spec))
            .send()
            .await
            .map_err(|e| err(failure(call, e)))?;
        let launched = out.instances().first().and_then(convert).ok_or_else(|| {
            err(RetryableError::new(
                call,
                RetryKind::NotYetConsistent,
                "RunInstances returned no instance",
            )
            .into())
        })?;
        // Eventual consistency: wait until Describe sees it, so a list right after a create
        // includes it. If it never shows up in time, the instance still exists and the caller's
        // next list or create (which finds it by tag) sees it.
        let id = launched.provider_id.instance_id().to_owned();
        let seen = retry(
            Backoff::CONSISTENCY,
            |f: &Failure| f.is_retryable(),
            || async {
                match self
                    .instances_by_id(std::slice::from_ref(&id))
                    .await?
                    .first()
                    .and_then(convert)
                {
                    Some(i) => Ok(i),
                    None => Err(RetryableError::new(
                        "ec2:DescribeInstances",
                        RetryKind::NotYetConsistent,
                        "not visible yet",
                    )
                    .into()),
                }
            },
        )
        .await;
        Ok(seen.unwrap_or(launched))
    }

    async fn describe_instance(
        &self,
        cluster: &ClusterId,
        id: &ProviderId,
    ) -> Result<Option<Instance>, InstanceError> {
        let instance_id = aws_instance_id(InstanceOp::Describe, id)?;
        let found = self
            .instances_by_id(&[instance_id.to_owned()])
            .await
            .map_err(|f| InstanceError::new(InstanceOp::Describe, id.to_string(), f))?;
        Ok(found
            .iter()
            .filter(|i| tags::is_owned(&instance_tags(i), cluster))
            .filter_map(convert)
            .find(|i| !i.state.is_gone()))
    }

    async fn list_instances(&self, cluster: &ClusterId) -> Result<Vec<Instance>, InstanceError> {
        let found = self
            .owned_instances(cluster)
            .await
            .map_err(|f| InstanceError::new(InstanceOp::List, cluster.as_str(), f))?;
        let mut list: Vec<Instance> = found
            .iter()
            .filter_map(convert)
            .filter(|i| !i.state.is_gone())
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn terminate_instance(
        &self,
        cluster: &ClusterId,
        id: &ProviderId,
    ) -> Result<(), InstanceError> {
        let err = |f: Failure| InstanceError::new(InstanceOp::Terminate, id.to_string(), f);
        let instance_id = aws_instance_id(InstanceOp::Terminate, id)?;
        let found = self
            .instances_by_id(&[instance_id.to_owned()])
            .await
            .map_err(err)?;
        let Some(instance) = found.first() else {
            return Ok(());
        };
        if state(instance.state().and_then(|s| s.name())).is_gone() {
            return Ok(());
        }
        if !tags::is_owned(&instance_tags(instance), cluster) {
            return Err(err(FatalError::new(
                "ec2:DescribeInstances",
                FatalKind::Conflict,
                format!("{id} is not owned by cluster {cluster}"),
            )
            .into()));
        }
        match self
            .ec2
            .terminate_instances()
            .instance_ids(instance_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if has_code(&e, "InvalidInstanceID.NotFound") => Ok(()),
            Err(e) => Err(err(failure("ec2:TerminateInstances", e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_are_stable_and_per_instance() {
        let c = ClusterId::new("prod").unwrap();
        let spec = InstanceSpec {
            name: "pool-1".into(),
            image: "ami-1".into(),
            instance_type: "t3.micro".into(),
            zone: "us-east-1a".into(),
            subnet: None,
            security_groups: vec![],
            user_data: vec![],
            tags: Default::default(),
        };
        let t = client_token(&c, &spec);
        assert_eq!(t, client_token(&c, &spec.clone()));
        assert!(t.len() <= 64, "EC2 allows 64 ASCII characters");
        let mut other = spec.clone();
        other.name = "pool-2".into();
        assert_ne!(t, client_token(&c, &other));
    }

    #[test]
    fn converts_an_ec2_instance() {
        let i = ec2t::Instance::builder()
            .instance_id("i-0abc")
            .instance_type(ec2t::InstanceType::T3Micro)
            .placement(
                ec2t::Placement::builder()
                    .availability_zone("us-east-1b")
                    .build(),
            )
            .private_ip_address("10.0.1.5")
            .private_dns_name("ip-10-0-1-5.ec2.internal")
            .state(
                ec2t::InstanceState::builder()
                    .name(InstanceStateName::Running)
                    .build(),
            )
            .tags(
                Tag::builder()
                    .key(tags::TAG_INSTANCE)
                    .value("node-1")
                    .build(),
            )
            .build();
        let c = convert(&i).unwrap();
        assert_eq!(c.provider_id.to_string(), "aws:///us-east-1b/i-0abc");
        assert_eq!(c.name, "node-1");
        assert_eq!(c.instance_type, "t3.micro");
        assert_eq!(c.state, InstanceState::Running);
        assert_eq!(
            c.addresses[0],
            NodeAddress {
                kind: AddressKind::InternalIp,
                address: "10.0.1.5".into()
            }
        );
        assert_eq!(c.addresses.len(), 3);
    }
}
