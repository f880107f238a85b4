//! ELBv2 network load balancers: one per Service, one listener and one target group per port,
//! the cluster's instances registered on the port's NodePort.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    self as elbt, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum,
    TargetDescription, TargetTypeEnum,
};
use cloud::plan::{ExistingPort, diff_targets, plan_ports};
use cloud::retry::{Backoff, retry};
use cloud::{
    ClusterId, Failure, FatalError, FatalKind, HealthCheck, Ingress, Listener, LoadBalancer,
    LoadBalancerError, LoadBalancerOp, LoadBalancerSpec, LoadBalancers, OwnedResource, Protocol,
    ProviderId, RetryKind, ServiceKey, ServicePort, tags,
};
use tracing::warn;

use crate::error::failure;
use crate::{AwsCloud, LoadBalancerNetwork};

/// A listener and its target group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortIds {
    listener: String,
    target_group: String,
}

fn protocol(p: Protocol) -> ProtocolEnum {
    match p {
        Protocol::Tcp => ProtocolEnum::Tcp,
        Protocol::Udp => ProtocolEnum::Udp,
    }
}

fn from_protocol(p: Option<&ProtocolEnum>) -> Option<Protocol> {
    match p? {
        ProtocolEnum::Tcp => Some(Protocol::Tcp),
        ProtocolEnum::Udp => Some(Protocol::Udp),
        _ => None,
    }
}

fn elb_tags(map: &BTreeMap<String, String>) -> Vec<elbt::Tag> {
    map.iter()
        .map(|(k, v)| elbt::Tag::builder().key(k).value(v).build())
        .collect()
}

fn node_ids(nodes: &BTreeSet<ProviderId>) -> Result<Vec<String>, Failure> {
    nodes
        .iter()
        .map(|n| match n {
            ProviderId::Aws { instance_id, .. } => Ok(instance_id.clone()),
            other => Err(Failure::InvalidInput(format!(
                "{other} is not an aws:/// provider ID"
            ))),
        })
        .collect()
}

impl AwsCloud {
    /// Tags of ELBv2 resources, 20 ARNs per call (the API's limit).
    async fn elb_tags_of(
        &self,
        arns: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, Failure> {
        let mut out = BTreeMap::new();
        for chunk in arns.chunks(20) {
            let resp = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| failure("elbv2:DescribeTags", e))?;
            for d in resp.tag_descriptions() {
                if let Some(arn) = d.resource_arn() {
                    out.insert(
                        arn.to_owned(),
                        crate::tag_map(d.tags().iter().map(|t| (t.key(), t.value()))),
                    );
                }
            }
        }
        Ok(out)
    }

    /// Checks that a resource found by name is this Service's; anything else is a conflict.
    async fn check_owner(
        &self,
        arn: &str,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<(), Failure> {
        let tags = self
            .elb_tags_of(&[arn.to_owned()])
            .await?
            .remove(arn)
            .unwrap_or_default();
        if tags::is_owned(&tags, cluster)
            && tags
                .get(tags::TAG_SERVICE)
                .is_some_and(|s| *s == service.to_string())
        {
            Ok(())
        } else {
            Err(FatalError::new(
                "elbv2:DescribeTags",
                FatalKind::Conflict,
                format!("{arn} has the name Berth derives for {service} but is not owned by cluster {cluster}"),
            )
            .into())
        }
    }

    async fn find_lb(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<Option<elbt::LoadBalancer>, Failure> {
        let name = tags::load_balancer_name(cluster, service);
        let lb = match self.elb.describe_load_balancers().names(&name).send().await {
            Ok(out) => out.load_balancers().first().cloned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
            {
                None
            }
            Err(e) => return Err(failure("elbv2:DescribeLoadBalancers", e)),
        };
        if let Some(arn) = lb.as_ref().and_then(|l| l.load_balancer_arn()) {
            self.check_owner(arn, cluster, service).await?;
        }
        Ok(lb)
    }

    async fn find_target_group(&self, name: &str) -> Result<Option<elbt::TargetGroup>, Failure> {
        match self.elb.describe_target_groups().names(name).send().await {
            Ok(out) => Ok(out.target_groups().first().cloned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_target_group_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(failure("elbv2:DescribeTargetGroups", e)),
        }
    }

    /// The listeners of a load balancer with the ports they serve.
    async fn lb_ports(&self, lb_arn: &str) -> Result<Vec<ExistingPort<PortIds>>, Failure> {
        let listeners = self
            .elb
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .send()
            .await
            .map_err(|e| failure("elbv2:DescribeListeners", e))?;
        // moto answers TargetGroupNotFound for a load balancer without target groups.
        let groups = match self
            .elb
            .describe_target_groups()
            .load_balancer_arn(lb_arn)
            .send()
            .await
        {
            Ok(out) => out.target_groups().to_vec(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_target_group_not_found_exception()) =>
            {
                Vec::new()
            }
            Err(e) => return Err(failure("elbv2:DescribeTargetGroups", e)),
        };
        let mut ports = Vec::new();
        for l in listeners.listeners() {
            let tg_arn = l
                .default_actions()
                .iter()
                .find_map(|a| a.target_group_arn());
            let tg = groups.iter().find(|g| g.target_group_arn() == tg_arn);
            let (Some(listener), Some(tg), Some(port), Some(proto)) =
                (l.listener_arn(), tg, l.port(), from_protocol(l.protocol()))
            else {
                continue;
            };
            ports.push(ExistingPort {
                port: ServicePort {
                    protocol: proto,
                    port: u16::try_from(port).unwrap_or(0),
                    node_port: u16::try_from(tg.port().unwrap_or(0)).unwrap_or(0),
                },
                id: PortIds {
                    listener: listener.to_owned(),
                    target_group: tg.target_group_arn().unwrap_or_default().to_owned(),
                },
            });
        }
        Ok(ports)
    }

    async fn registered_targets(&self, tg_arn: &str) -> Result<BTreeSet<String>, Failure> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(tg_arn)
            .send()
            .await
            .map_err(|e| failure("elbv2:DescribeTargetHealth", e))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter(|d| {
                d.target_health()
                    .and_then(|h| h.state())
                    .is_none_or(|s| s.as_str() != "draining")
            })
            .filter_map(|d| d.target().and_then(|t| t.id()).map(String::from))
            .collect())
    }

    async fn sync_targets(
        &self,
        tg_arn: &str,
        node_port: u16,
        desired: &BTreeSet<String>,
    ) -> Result<(), Failure> {
        let actual = self.registered_targets(tg_arn).await?;
        let diff = diff_targets(desired, &actual);
        let targets = |ids: &[String]| -> Vec<TargetDescription> {
            ids.iter()
                .map(|id| {
                    TargetDescription::builder()
                        .id(id)
                        .port(i32::from(node_port))
                        .build()
                })
                .collect()
        };
        if !diff.deregister.is_empty() {
            self.elb
                .deregister_targets()
                .target_group_arn(tg_arn)
                .set_targets(Some(targets(&diff.deregister)))
                .send()
                .await
                .map_err(|e| failure("elbv2:DeregisterTargets", e))?;
        }
        if !diff.register.is_empty() {
            self.elb
                .register_targets()
                .target_group_arn(tg_arn)
                .set_targets(Some(targets(&diff.register)))
                .send()
                .await
                .map_err(|e| failure("elbv2:RegisterTargets", e))?;
        }
        Ok(())
    }

    /// The instance IDs of `nodes`, each checked to be a live instance of `cluster`: a load
    /// balancer never sends a Service's traffic to another cluster's machines.
    async fn check_nodes(
        &self,
        cluster: &ClusterId,
        nodes: &BTreeSet<ProviderId>,
    ) -> Result<BTreeSet<String>, Failure> {
        let ids = node_ids(nodes)?;
        let found = self.instances_by_id(&ids).await?;
        let live: BTreeSet<String> = found
            .iter()
            .filter(|i| tags::is_owned(&crate::instances::instance_tags(i), cluster))
            .filter(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .is_some_and(|n| !matches!(n.as_str(), "shutting-down" | "terminated"))
            })
            .filter_map(|i| i.instance_id().map(String::from))
            .collect();
        match ids.iter().find(|id| !live.contains(*id)) {
            Some(missing) => Err(FatalError::new(
                "ec2:DescribeInstances",
                FatalKind::UnknownInstance,
                format!("{missing} is not a running instance of cluster {cluster}"),
            )
            .into()),
            None => Ok(live),
        }
    }

    /// Where the cluster's load balancers go.
    async fn network(&self, cluster: &ClusterId) -> Result<LoadBalancerNetwork, Failure> {
        if let Some(net) = &self.lb_network {
            return Ok(net.clone());
        }
        let call = "ec2:DescribeSubnets";
        let out = self
            .ec2
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag-key")
                    .values(tags::cluster_tag_key(cluster))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| failure(call, e))?;
        let mut by_zone: BTreeMap<String, (String, String)> = BTreeMap::new();
        for s in out.subnets() {
            if let (Some(zone), Some(id), Some(vpc)) =
                (s.availability_zone(), s.subnet_id(), s.vpc_id())
            {
                let entry = by_zone
                    .entry(zone.to_owned())
                    .or_insert_with(|| (id.to_owned(), vpc.to_owned()));
                if id < entry.0.as_str() {
                    *entry = (id.to_owned(), vpc.to_owned());
                }
            }
        }
        let vpcs: BTreeSet<&String> = by_zone.values().map(|(_, v)| v).collect();
        match (vpcs.len(), vpcs.first()) {
            (1, Some(vpc)) => Ok(LoadBalancerNetwork {
                vpc_id: (*vpc).clone(),
                subnet_ids: by_zone.values().map(|(s, _)| s.clone()).collect(),
            }),
            _ => Err(FatalError::new(
                call,
                FatalKind::UnknownSubnet,
                format!(
                    "load balancers need subnets of one VPC tagged {}: found VPCs {vpcs:?}",
                    tags::cluster_tag_key(cluster)
                ),
            )
            .into()),
        }
    }

    async fn ensure_target_group(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
        lb_name: &str,
        port: &ServicePort,
        vpc: &str,
        hc: &HealthCheck,
    ) -> Result<String, Failure> {
        let name = tags::port_resource_name(lb_name, port);
        if let Some(tg) = self.find_target_group(&name).await? {
            let arn = tg.target_group_arn().unwrap_or_default().to_owned();
            self.check_owner(&arn, cluster, service).await?;
            let same = tg.port() == Some(i32::from(port.node_port))
                && from_protocol(tg.protocol()) == Some(port.protocol);
            if same {
                return Ok(arn);
            }
            // Left over from an earlier spec (a crash before its listener was made): replace.
            self.delete_target_group(&arn).await?;
        }
        let mut tg_tags = tags::service_tags(cluster, service);
        tg_tags.insert(
            tags::TAG_PORT.into(),
            format!("{}/{}", port.port, port.protocol.as_str()),
        );
        let out = self
            .elb
            .create_target_group()
            .name(&name)
            .protocol(protocol(port.protocol))
            .port(i32::from(port.node_port))
            .vpc_id(vpc)
            .target_type(TargetTypeEnum::Instance)
            .health_check_enabled(true)
            .health_check_protocol(ProtocolEnum::Http)
            .health_check_port(hc.port.to_string())
            .health_check_path(&hc.path)
            .health_check_interval_seconds(i32::from(hc.interval_seconds))
            .healthy_threshold_count(i32::from(hc.healthy_threshold))
            .unhealthy_threshold_count(i32::from(hc.unhealthy_threshold))
            .set_tags(Some(elb_tags(&tg_tags)))
            .send()
            .await
            .map_err(|e| failure("elbv2:CreateTargetGroup", e))?;
        out.target_groups()
            .first()
            .and_then(|g| g.target_group_arn())
            .map(String::from)
            .ok_or_else(|| {
                FatalError::new(
                    "elbv2:CreateTargetGroup",
                    FatalKind::Rejected,
                    "no target group returned",
                )
                .into()
            })
    }

    /// Deletes a target group, waiting out "in use" while a just-deleted listener or load
    /// balancer lets go of it.
    async fn delete_target_group(&self, arn: &str) -> Result<(), Failure> {
        retry(
            Backoff::CONSISTENCY,
            |f: &Failure| f.is_retryable(),
            || async {
                match self
                    .elb
                    .delete_target_group()
                    .target_group_arn(arn)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_in_use_exception()) =>
                    {
                        Err(Failure::Retryable(cloud::RetryableError::new(
                            "elbv2:DeleteTargetGroup",
                            RetryKind::NotYetConsistent,
                            "target group still in use",
                        )))
                    }
                    Err(e) if crate::error::has_code(&e, "TargetGroupNotFound") => Ok(()),
                    Err(e) => Err(failure("elbv2:DeleteTargetGroup", e)),
                }
            },
        )
        .await
    }

    async fn converge(
        &self,
        cluster: &ClusterId,
        spec: &LoadBalancerSpec,
        lb_arn: &str,
        lb_name: &str,
        targets: &BTreeSet<String>,
        net: &LoadBalancerNetwork,
    ) -> Result<(), Failure> {
        let plan = plan_ports(&spec.ports, &self.lb_ports(lb_arn).await?);
        for old in &plan.delete {
            self.elb
                .delete_listener()
                .listener_arn(&old.id.listener)
                .send()
                .await
                .map_err(|e| failure("elbv2:DeleteListener", e))?;
            self.delete_target_group(&old.id.target_group).await?;
        }
        let mut groups: Vec<(String, u16)> = plan
            .keep
            .iter()
            .map(|k| (k.id.target_group.clone(), k.port.node_port))
            .collect();
        for port in &plan.create {
            let tg = self
                .ensure_target_group(
                    cluster,
                    &spec.service,
                    lb_name,
                    port,
                    &net.vpc_id,
                    &spec.health_check,
                )
                .await?;
            let mut l_tags = tags::service_tags(cluster, &spec.service);
            l_tags.insert(
                tags::TAG_PORT.into(),
                format!("{}/{}", port.port, port.protocol.as_str()),
            );
            self.elb
                .create_listener()
                .load_balancer_arn(lb_arn)
                .protocol(protocol(port.protocol))
                .port(i32::from(port.port))
                .default_actions(
                    elbt::Action::builder()
                        .r#type(ActionTypeEnum::Forward)
                        .target_group_arn(&tg)
                        .build(),
                )
                .set_tags(Some(elb_tags(&l_tags)))
                .send()
                .await
                .map_err(|e| failure("elbv2:CreateListener", e))?;
            groups.push((tg, port.node_port));
        }
        for (tg, node_port) in &groups {
            self.sync_targets(tg, *node_port, targets).await?;
        }
        Ok(())
    }

    async fn read_lb(
        &self,
        service: &ServiceKey,
        lb: &elbt::LoadBalancer,
    ) -> Result<LoadBalancer, Failure> {
        let arn = lb.load_balancer_arn().unwrap_or_default();
        let mut listeners = Vec::new();
        for p in self.lb_ports(arn).await? {
            listeners.push(Listener {
                targets: self.registered_targets(&p.id.target_group).await?,
                port: p.port,
            });
        }
        listeners.sort_by(|a, b| a.port.cmp(&b.port));
        Ok(LoadBalancer {
            service: service.clone(),
            name: lb.load_balancer_name().unwrap_or_default().to_owned(),
            ingress: lb
                .dns_name()
                .map(|d| Ingress::Hostname(d.to_owned()))
                .into_iter()
                .collect(),
            listeners,
        })
    }

    async fn delete_all(&self, cluster: &ClusterId, service: &ServiceKey) -> Result<(), Failure> {
        if let Some(lb) = self.find_lb(cluster, service).await? {
            let arn = lb.load_balancer_arn().unwrap_or_default();
            self.elb
                .delete_load_balancer()
                .load_balancer_arn(arn)
                .send()
                .await
                .map_err(|e| failure("elbv2:DeleteLoadBalancer", e))?;
        }
        // Target groups outlive their load balancer, and a crash may have left some that no
        // listener used: delete every one tagged with this Service.
        for r in self.owned_elb_resources(cluster, Some(service)).await? {
            if r.kind == "elbv2:target-group" {
                self.delete_target_group(&r.id).await?;
            }
        }
        Ok(())
    }

    /// The ELBv2 resources owned by `cluster` (and, if given, by `service`).
    pub(crate) async fn owned_elb_resources(
        &self,
        cluster: &ClusterId,
        service: Option<&ServiceKey>,
    ) -> Result<Vec<OwnedResource>, Failure> {
        let mut arns: Vec<(String, &'static str)> = Vec::new();
        let mut lbs = self.elb.describe_load_balancers().into_paginator().send();
        while let Some(page) = lbs.next().await {
            let page = page.map_err(|e| failure("elbv2:DescribeLoadBalancers", e))?;
            arns.extend(
                page.load_balancers().iter().filter_map(|l| {
                    Some((l.load_balancer_arn()?.to_owned(), "elbv2:load-balancer"))
                }),
            );
        }
        let mut tgs = self.elb.describe_target_groups().into_paginator().send();
        while let Some(page) = tgs.next().await {
            let page = page.map_err(|e| failure("elbv2:DescribeTargetGroups", e))?;
            arns.extend(
                page.target_groups()
                    .iter()
                    .filter_map(|g| Some((g.target_group_arn()?.to_owned(), "elbv2:target-group"))),
            );
        }
        let all: Vec<String> = arns.iter().map(|(a, _)| a.clone()).collect();
        let tags_by_arn = self.elb_tags_of(&all).await?;
        Ok(arns
            .into_iter()
            .filter(|(arn, _)| {
                tags_by_arn.get(arn).is_some_and(|t| {
                    tags::is_owned(t, cluster)
                        && service.is_none_or(|s| t.get(tags::TAG_SERVICE) == Some(&s.to_string()))
                })
            })
            .map(|(id, kind)| OwnedResource {
                kind: kind.into(),
                id,
            })
            .collect())
    }
}

#[async_trait]
impl LoadBalancers for AwsCloud {
    async fn ensure_load_balancer(
        &self,
        cluster: &ClusterId,
        spec: &LoadBalancerSpec,
    ) -> Result<LoadBalancer, LoadBalancerError> {
        let subject = spec.service.to_string();
        let err = |f: Failure| LoadBalancerError::new(LoadBalancerOp::Ensure, &subject, f);
        spec.validate()
            .map_err(|e| LoadBalancerError::invalid(LoadBalancerOp::Ensure, &subject, e))?;
        let targets = self.check_nodes(cluster, &spec.nodes).await.map_err(err)?;
        let net = self.network(cluster).await.map_err(err)?;
        let name = tags::load_balancer_name(cluster, &spec.service);
        let (lb, created) = match self.find_lb(cluster, &spec.service).await.map_err(err)? {
            Some(lb) => (lb, false),
            None => {
                let out = self
                    .elb
                    .create_load_balancer()
                    .name(&name)
                    .r#type(LoadBalancerTypeEnum::Network)
                    .scheme(LoadBalancerSchemeEnum::InternetFacing)
                    .set_subnets(Some(net.subnet_ids.clone()))
                    .set_tags(Some(elb_tags(&tags::service_tags(cluster, &spec.service))))
                    .send()
                    .await
                    .map_err(|e| err(failure("elbv2:CreateLoadBalancer", e)))?;
                let lb = out.load_balancers().first().cloned().ok_or_else(|| {
                    err(FatalError::new(
                        "elbv2:CreateLoadBalancer",
                        FatalKind::Rejected,
                        "no load balancer returned",
                    )
                    .into())
                })?;
                (lb, true)
            }
        };
        let arn = lb.load_balancer_arn().unwrap_or_default().to_owned();
        if let Err(f) = self
            .converge(cluster, spec, &arn, &name, &targets, &net)
            .await
        {
            if created {
                // Leave nothing half-built behind a load balancer that did not exist before.
                if let Err(cleanup) = self.delete_all(cluster, &spec.service).await {
                    warn!(service = %spec.service, error = %cleanup, "cleanup after a failed ensure failed");
                }
            }
            return Err(err(f));
        }
        self.read_lb(&spec.service, &lb).await.map_err(err)
    }

    async fn update_targets(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
        nodes: &BTreeSet<ProviderId>,
    ) -> Result<LoadBalancer, LoadBalancerError> {
        let subject = service.to_string();
        let err = |f: Failure| LoadBalancerError::new(LoadBalancerOp::UpdateTargets, &subject, f);
        let Some(lb) = self.find_lb(cluster, service).await.map_err(err)? else {
            return Err(err(FatalError::new(
                "elbv2:DescribeLoadBalancers",
                FatalKind::Rejected,
                "the Service has no load balancer",
            )
            .into()));
        };
        let targets = self.check_nodes(cluster, nodes).await.map_err(err)?;
        for p in self
            .lb_ports(lb.load_balancer_arn().unwrap_or_default())
            .await
            .map_err(err)?
        {
            self.sync_targets(&p.id.target_group, p.port.node_port, &targets)
                .await
                .map_err(err)?;
        }
        self.read_lb(service, &lb).await.map_err(err)
    }

    async fn get_load_balancer(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<Option<LoadBalancer>, LoadBalancerError> {
        let err = |f: Failure| LoadBalancerError::new(LoadBalancerOp::Get, service.to_string(), f);
        match self.find_lb(cluster, service).await.map_err(err)? {
            Some(lb) => Ok(Some(self.read_lb(service, &lb).await.map_err(err)?)),
            None => Ok(None),
        }
    }

    async fn delete_load_balancer(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<(), LoadBalancerError> {
        self.delete_all(cluster, service)
            .await
            .map_err(|f| LoadBalancerError::new(LoadBalancerOp::Delete, service.to_string(), f))
    }
}
