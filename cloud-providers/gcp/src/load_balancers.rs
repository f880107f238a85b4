//! Network load balancers: a regional external address, a legacy HTTP health check, a target
//! pool of the node instances and one forwarding rule per Service port.
//!
//! Target pools rather than backend services: a target pool takes instances directly, so the
//! Service's targets are exactly the node instances (a backend service needs an unmanaged
//! instance group per zone, kept in step with the nodes, and a regional health check: three more
//! resource kinds to create, sync and sweep). A target pool delivers packets to the node with the
//! load balancer's IP and the Service port unchanged; kube-proxy accepts traffic for the
//! Service's `status.loadBalancer.ingress` IP, as on GKE. The NodePort is therefore recorded on
//! the forwarding rule (label `berth-dev-node-port`) rather than used by the cloud.
//!
//! Creation order is address, health check, target pool, forwarding rules; deletion runs the
//! other way. The address stands for the load balancer: if it exists, a later ensure completes
//! whatever a crash left unfinished, and every step finds its resource by name (or, for forwarding
//! rules, by label) before it creates one.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use cloud::plan::{ExistingPort, diff_targets, plan_ports};
use cloud::{
    ClusterId, Failure, FatalError, FatalKind, HealthCheck, Ingress, Listener, LoadBalancer,
    LoadBalancerError, LoadBalancerOp, LoadBalancerSpec, LoadBalancers, OwnedResource, Protocol,
    ProviderId, ServiceKey, ServicePort, tags,
};
use google_cloud_compute_v1::model::{
    self as gm, InstanceReference, TargetPoolsAddInstanceRequest, TargetPoolsRemoveInstanceRequest,
    forwarding_rule,
};
use google_cloud_gax::paginator::Paginator as _;
use tracing::warn;

use crate::error::{failure, is_already_exists, is_not_found};
use crate::instances::{gce_id, is_live_owned};
use crate::operations::Scope;
use crate::{GcpCloud, labels, urls};

/// The labels of a resource of `service`'s load balancer.
fn service_labels(cluster: &ClusterId, service: &ServiceKey) -> BTreeMap<String, String> {
    labels::to_labels(&tags::service_tags(cluster, service))
        .expect("cluster IDs and Service keys are valid label values")
}

/// The labels of the forwarding rule of `port`.
fn rule_labels(
    cluster: &ClusterId,
    service: &ServiceKey,
    port: &ServicePort,
) -> BTreeMap<String, String> {
    let mut t = tags::service_tags(cluster, service);
    t.insert(
        tags::TAG_PORT.into(),
        format!("{}/{}", port.port, port.protocol.as_str()),
    );
    let mut l = labels::to_labels(&t).expect("ports are valid label values");
    l.insert(labels::LABEL_NODE_PORT.into(), port.node_port.to_string());
    l
}

/// The Service port a forwarding rule serves, read from its fields and NodePort label.
fn rule_port(rule: &gm::ForwardingRule) -> Option<ServicePort> {
    let protocol = match rule.ip_protocol.as_ref()?.name()? {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        _ => return None,
    };
    Some(ServicePort {
        protocol,
        port: urls::parse_port_range(rule.port_range.as_deref()?)?,
        node_port: rule.labels.get(labels::LABEL_NODE_PORT)?.parse().ok()?,
    })
}

/// Whether a health check already probes as `hc` asks.
fn health_check_matches(got: &gm::HttpHealthCheck, hc: &HealthCheck) -> bool {
    got.port == Some(i32::from(hc.port))
        && got.request_path.as_deref() == Some(hc.path.as_str())
        && got.check_interval_sec == Some(i32::from(hc.interval_seconds))
        && got.healthy_threshold == Some(i32::from(hc.healthy_threshold))
        && got.unhealthy_threshold == Some(i32::from(hc.unhealthy_threshold))
}

fn health_check_body(name: &str, description: String, hc: &HealthCheck) -> gm::HttpHealthCheck {
    gm::HttpHealthCheck::new()
        .set_name(name)
        .set_description(description)
        .set_port(i32::from(hc.port))
        .set_request_path(&hc.path)
        .set_check_interval_sec(i32::from(hc.interval_seconds))
        // Compute requires the timeout not to exceed the interval.
        .set_timeout_sec(i32::from(hc.interval_seconds.min(5)))
        .set_healthy_threshold(i32::from(hc.healthy_threshold))
        .set_unhealthy_threshold(i32::from(hc.unhealthy_threshold))
}

/// Instance names of a target pool's instance URLs.
fn pool_names(pool: &gm::TargetPool) -> BTreeSet<String> {
    pool.instances
        .iter()
        .filter_map(|u| urls::parse_instance_url(u).map(|(_, _, n)| n.to_owned()))
        .collect()
}

fn conflict(call: &'static str, what: &str, cluster: &ClusterId, service: &ServiceKey) -> Failure {
    FatalError::new(
        call,
        FatalKind::Conflict,
        format!(
            "{what} has the name Berth derives for {service} but is not owned by cluster {cluster}"
        ),
    )
    .into()
}

fn owns(t: &BTreeMap<String, String>, cluster: &ClusterId, service: &ServiceKey) -> bool {
    tags::is_owned(t, cluster)
        && t.get(tags::TAG_SERVICE)
            .is_some_and(|s| *s == service.to_string())
}

impl GcpCloud {
    /// Instance URLs of `nodes` by name, each checked to be a live instance of `cluster`: a load
    /// balancer never sends a Service's traffic to another cluster's machines.
    async fn check_nodes(
        &self,
        cluster: &ClusterId,
        nodes: &BTreeSet<ProviderId>,
    ) -> Result<BTreeMap<String, String>, Failure> {
        let mut out = BTreeMap::new();
        for id in nodes {
            let (zone, name) = gce_id(&self.project, id).map_err(Failure::InvalidInput)?;
            match self.get_instance(zone, name).await? {
                Some(i) if is_live_owned(&i, cluster) => {
                    out.insert(
                        name.to_owned(),
                        urls::instance_url(&self.project, zone, name),
                    );
                }
                _ => {
                    return Err(FatalError::new(
                        "compute.instances.get",
                        FatalKind::UnknownInstance,
                        format!("{id} is not a live instance of cluster {cluster}"),
                    )
                    .into());
                }
            }
        }
        Ok(out)
    }

    async fn get_address(&self, name: &str) -> Result<Option<gm::Address>, Failure> {
        match self
            .addresses
            .get()
            .set_project(&self.project)
            .set_region(&self.region)
            .set_address(name)
            .send()
            .await
        {
            Ok(a) => Ok(Some(a)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(failure("compute.addresses.get", e)),
        }
    }

    /// The address of `service`'s load balancer, checked to be the Service's.
    async fn find_address(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<Option<gm::Address>, Failure> {
        let name = tags::load_balancer_name(cluster, service);
        match self.get_address(&name).await? {
            Some(a) if owns(&labels::from_labels(&a.labels), cluster, service) => Ok(Some(a)),
            Some(_) => Err(conflict(
                "compute.addresses.get",
                &format!("address {name}"),
                cluster,
                service,
            )),
            None => Ok(None),
        }
    }

    async fn create_address(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<gm::Address, Failure> {
        let name = tags::load_balancer_name(cluster, service);
        let call = "compute.addresses.insert";
        let body = gm::Address::new()
            .set_name(&name)
            .set_description(format!("Berth load balancer of {service}"))
            .set_address_type(gm::address::AddressType::External)
            .set_labels(
                service_labels(cluster, service)
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            );
        match self
            .addresses
            .insert()
            .set_project(&self.project)
            .set_region(&self.region)
            .set_body(body)
            .send()
            .await
        {
            Ok(op) => self.wait(call, Scope::Region(&self.region), op).await?,
            Err(e) if is_already_exists(&e) => {}
            Err(e) => return Err(failure(call, e)),
        }
        self.find_address(cluster, service).await?.ok_or_else(|| {
            cloud::RetryableError::new(
                "compute.addresses.get",
                cloud::RetryKind::NotYetConsistent,
                format!("address {name} is not visible yet"),
            )
            .into()
        })
    }

    /// Creates or updates the health check; returns its URL.
    async fn ensure_health_check(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
        hc: &HealthCheck,
    ) -> Result<String, Failure> {
        let name = tags::load_balancer_name(cluster, service);
        let description = labels::to_description(&tags::service_tags(cluster, service));
        let existing = match self
            .health_checks
            .get()
            .set_project(&self.project)
            .set_http_health_check(&name)
            .send()
            .await
        {
            Ok(h) => Some(h),
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(failure("compute.httpHealthChecks.get", e)),
        };
        match existing {
            Some(h) => {
                if !owns(
                    &labels::from_description(h.description.as_deref()),
                    cluster,
                    service,
                ) {
                    return Err(conflict(
                        "compute.httpHealthChecks.get",
                        &format!("health check {name}"),
                        cluster,
                        service,
                    ));
                }
                if !health_check_matches(&h, hc) {
                    let call = "compute.httpHealthChecks.update";
                    let op = self
                        .health_checks
                        .update()
                        .set_project(&self.project)
                        .set_http_health_check(&name)
                        .set_body(health_check_body(&name, description, hc))
                        .send()
                        .await
                        .map_err(|e| failure(call, e))?;
                    self.wait(call, Scope::Global, op).await?;
                }
                Ok(h.self_link.unwrap_or_default())
            }
            None => {
                let call = "compute.httpHealthChecks.insert";
                match self
                    .health_checks
                    .insert()
                    .set_project(&self.project)
                    .set_body(health_check_body(&name, description, hc))
                    .send()
                    .await
                {
                    Ok(op) => self.wait(call, Scope::Global, op).await?,
                    Err(e) if is_already_exists(&e) => {}
                    Err(e) => return Err(failure(call, e)),
                }
                Ok(format!(
                    "{}projects/{}/global/httpHealthChecks/{name}",
                    urls::BASE,
                    self.project
                ))
            }
        }
    }

    async fn get_pool(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<Option<gm::TargetPool>, Failure> {
        let name = tags::load_balancer_name(cluster, service);
        match self
            .pools
            .get()
            .set_project(&self.project)
            .set_region(&self.region)
            .set_target_pool(&name)
            .send()
            .await
        {
            Ok(p)
                if owns(
                    &labels::from_description(p.description.as_deref()),
                    cluster,
                    service,
                ) =>
            {
                Ok(Some(p))
            }
            Ok(_) => Err(conflict(
                "compute.targetPools.get",
                &format!("target pool {name}"),
                cluster,
                service,
            )),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(failure("compute.targetPools.get", e)),
        }
    }

    /// Creates the target pool with `targets`, or brings an existing one's instances to them.
    /// Returns the pool's URL.
    async fn ensure_pool(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
        health_check: &str,
        targets: &BTreeMap<String, String>,
    ) -> Result<String, Failure> {
        let name = tags::load_balancer_name(cluster, service);
        if let Some(pool) = self.get_pool(cluster, service).await? {
            self.sync_pool(&pool, targets).await?;
            return Ok(pool.self_link.unwrap_or_default());
        }
        let call = "compute.targetPools.insert";
        let body = gm::TargetPool::new()
            .set_name(&name)
            .set_description(labels::to_description(&tags::service_tags(
                cluster, service,
            )))
            .set_health_checks([health_check])
            .set_instances(targets.values().cloned());
        match self
            .pools
            .insert()
            .set_project(&self.project)
            .set_region(&self.region)
            .set_body(body)
            .send()
            .await
        {
            Ok(op) => self.wait(call, Scope::Region(&self.region), op).await?,
            Err(e) if is_already_exists(&e) => {
                // A concurrent or earlier attempt made it: converge its instances instead.
                if let Some(pool) = self.get_pool(cluster, service).await? {
                    self.sync_pool(&pool, targets).await?;
                }
            }
            Err(e) => return Err(failure(call, e)),
        }
        Ok(format!(
            "{}projects/{}/regions/{}/targetPools/{name}",
            urls::BASE,
            self.project,
            self.region
        ))
    }

    /// Adds and removes pool instances so that the pool holds exactly `targets`.
    async fn sync_pool(
        &self,
        pool: &gm::TargetPool,
        targets: &BTreeMap<String, String>,
    ) -> Result<(), Failure> {
        let name = pool.name.clone().unwrap_or_default();
        let actual: BTreeMap<String, String> = pool
            .instances
            .iter()
            .filter_map(|u| Some((urls::parse_instance_url(u)?.2.to_owned(), u.clone())))
            .collect();
        let desired: BTreeSet<String> = targets.keys().cloned().collect();
        let diff = diff_targets(&desired, &actual.keys().cloned().collect());
        let refs = |names: &[String], urls: &BTreeMap<String, String>| -> Vec<InstanceReference> {
            names
                .iter()
                .filter_map(|n| urls.get(n))
                .map(|u| InstanceReference::new().set_instance(u))
                .collect()
        };
        if !diff.deregister.is_empty() {
            let call = "compute.targetPools.removeInstance";
            let op = self
                .pools
                .remove_instance()
                .set_project(&self.project)
                .set_region(&self.region)
                .set_target_pool(&name)
                .set_body(
                    TargetPoolsRemoveInstanceRequest::new()
                        .set_instances(refs(&diff.deregister, &actual)),
                )
                .send()
                .await
                .map_err(|e| failure(call, e))?;
            self.wait(call, Scope::Region(&self.region), op).await?;
        }
        if !diff.register.is_empty() {
            let call = "compute.targetPools.addInstance";
            let op = self
                .pools
                .add_instance()
                .set_project(&self.project)
                .set_region(&self.region)
                .set_target_pool(&name)
                .set_body(
                    TargetPoolsAddInstanceRequest::new()
                        .set_instances(refs(&diff.register, targets)),
                )
                .send()
                .await
                .map_err(|e| failure(call, e))?;
            self.wait(call, Scope::Region(&self.region), op).await?;
        }
        Ok(())
    }

    /// The forwarding rules labelled with `service` (or, without one, every rule of `cluster`).
    async fn find_rules(
        &self,
        cluster: &ClusterId,
        service: Option<&ServiceKey>,
    ) -> Result<Vec<gm::ForwardingRule>, Failure> {
        let want = match service {
            Some(s) => service_labels(cluster, s),
            None => labels::to_labels(&tags::owner_tags(cluster)).map_err(Failure::InvalidInput)?,
        };
        let mut pages = self
            .rules
            .list()
            .set_project(&self.project)
            .set_region(&self.region)
            .set_filter(labels::filter(&want))
            .by_page();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("compute.forwardingRules.list", e))?;
            out.extend(page.items.into_iter().filter(|r| {
                want.iter()
                    .all(|(k, v)| r.labels.get(k).is_some_and(|got| got == v))
            }));
        }
        Ok(out)
    }

    async fn delete_rule(&self, name: &str) -> Result<(), Failure> {
        let call = "compute.forwardingRules.delete";
        match self
            .rules
            .delete()
            .set_project(&self.project)
            .set_region(&self.region)
            .set_forwarding_rule(name)
            .send()
            .await
        {
            Ok(op) => self.wait(call, Scope::Region(&self.region), op).await,
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(failure(call, e)),
        }
    }

    /// Brings the forwarding rules to `spec.ports`.
    async fn converge_rules(
        &self,
        cluster: &ClusterId,
        spec: &LoadBalancerSpec,
        ip: &str,
        pool: &str,
    ) -> Result<(), Failure> {
        let existing: Vec<ExistingPort<String>> = self
            .find_rules(cluster, Some(&spec.service))
            .await?
            .iter()
            .map(|r| ExistingPort {
                // A rule whose port cannot be read is no wanted port, so the plan deletes it.
                port: rule_port(r).unwrap_or(ServicePort {
                    protocol: Protocol::Tcp,
                    port: 0,
                    node_port: 0,
                }),
                id: r.name.clone().unwrap_or_default(),
            })
            .collect();
        let plan = plan_ports(&spec.ports, &existing);
        for old in &plan.delete {
            self.delete_rule(&old.id).await?;
        }
        let lb_name = tags::load_balancer_name(cluster, &spec.service);
        for port in &plan.create {
            let name = tags::port_resource_name(&lb_name, port);
            let call = "compute.forwardingRules.insert";
            let protocol = match port.protocol {
                Protocol::Tcp => forwarding_rule::IPProtocol::Tcp,
                Protocol::Udp => forwarding_rule::IPProtocol::Udp,
            };
            let body = gm::ForwardingRule::new()
                .set_name(&name)
                .set_description(format!("Berth load balancer of {}", spec.service))
                .set_ip_address(ip)
                .set_ip_protocol(protocol)
                .set_port_range(urls::port_range(port.port))
                .set_target(pool)
                .set_load_balancing_scheme(forwarding_rule::LoadBalancingScheme::External)
                .set_labels(
                    rule_labels(cluster, &spec.service, port)
                        .into_iter()
                        .collect::<HashMap<_, _>>(),
                );
            match self
                .rules
                .insert()
                .set_project(&self.project)
                .set_region(&self.region)
                .set_body(body)
                .send()
                .await
            {
                Ok(op) => self.wait(call, Scope::Region(&self.region), op).await?,
                // Made by an attempt whose list ran before the rule was visible; the next ensure
                // plans with it.
                Err(e) if is_already_exists(&e) => {}
                Err(e) => return Err(failure(call, e)),
            }
        }
        Ok(())
    }

    async fn read_lb(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
        address: &gm::Address,
    ) -> Result<LoadBalancer, Failure> {
        let targets = self
            .get_pool(cluster, service)
            .await?
            .map(|p| pool_names(&p))
            .unwrap_or_default();
        let mut listeners: Vec<Listener> = self
            .find_rules(cluster, Some(service))
            .await?
            .iter()
            .filter_map(rule_port)
            .map(|port| Listener {
                port,
                targets: targets.clone(),
            })
            .collect();
        listeners.sort_by(|a, b| a.port.cmp(&b.port));
        Ok(LoadBalancer {
            service: service.clone(),
            name: tags::load_balancer_name(cluster, service),
            ingress: address
                .address
                .iter()
                .map(|ip| Ingress::Ip(ip.clone()))
                .collect(),
            listeners,
        })
    }

    async fn ensure(
        &self,
        cluster: &ClusterId,
        spec: &LoadBalancerSpec,
        address: Option<gm::Address>,
        targets: &BTreeMap<String, String>,
    ) -> Result<gm::Address, Failure> {
        let address = match address {
            Some(a) => a,
            None => self.create_address(cluster, &spec.service).await?,
        };
        let ip = address.address.clone().ok_or_else(|| {
            cloud::RetryableError::new(
                "compute.addresses.get",
                cloud::RetryKind::NotYetConsistent,
                "the address has no IP yet",
            )
        })?;
        let hc = self
            .ensure_health_check(cluster, &spec.service, &spec.health_check)
            .await?;
        let pool = self
            .ensure_pool(cluster, &spec.service, &hc, targets)
            .await?;
        self.converge_rules(cluster, spec, &ip, &pool).await?;
        Ok(address)
    }

    /// Deletes every resource of `service`'s load balancer, forwarding rules first. Each step
    /// treats 404 as done, so a repeated or interrupted delete finishes the job.
    async fn delete_all(&self, cluster: &ClusterId, service: &ServiceKey) -> Result<(), Failure> {
        let name = tags::load_balancer_name(cluster, service);
        for rule in self.find_rules(cluster, Some(service)).await? {
            self.delete_rule(rule.name.as_deref().unwrap_or_default())
                .await?;
        }
        if self.get_pool(cluster, service).await?.is_some() {
            let call = "compute.targetPools.delete";
            match self
                .pools
                .delete()
                .set_project(&self.project)
                .set_region(&self.region)
                .set_target_pool(&name)
                .send()
                .await
            {
                Ok(op) => self.wait(call, Scope::Region(&self.region), op).await?,
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(failure(call, e)),
            }
        }
        match self
            .health_checks
            .get()
            .set_project(&self.project)
            .set_http_health_check(&name)
            .send()
            .await
        {
            Ok(h) => {
                if !owns(
                    &labels::from_description(h.description.as_deref()),
                    cluster,
                    service,
                ) {
                    return Err(conflict(
                        "compute.httpHealthChecks.get",
                        &format!("health check {name}"),
                        cluster,
                        service,
                    ));
                }
                let call = "compute.httpHealthChecks.delete";
                match self
                    .health_checks
                    .delete()
                    .set_project(&self.project)
                    .set_http_health_check(&name)
                    .send()
                    .await
                {
                    Ok(op) => self.wait(call, Scope::Global, op).await?,
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(failure(call, e)),
                }
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(failure("compute.httpHealthChecks.get", e)),
        }
        if self.find_address(cluster, service).await?.is_some() {
            let call = "compute.addresses.delete";
            match self
                .addresses
                .delete()
                .set_project(&self.project)
                .set_region(&self.region)
                .set_address(&name)
                .send()
                .await
            {
                Ok(op) => self.wait(call, Scope::Region(&self.region), op).await?,
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(failure(call, e)),
            }
        }
        Ok(())
    }

    /// The load balancer resources owned by `cluster` (and, if given, by `service`).
    pub(crate) async fn owned_lb_resources(
        &self,
        cluster: &ClusterId,
        service: Option<&ServiceKey>,
    ) -> Result<Vec<OwnedResource>, Failure> {
        let mine = |t: &BTreeMap<String, String>| {
            tags::is_owned(t, cluster)
                && service.is_none_or(|s| t.get(tags::TAG_SERVICE) == Some(&s.to_string()))
        };
        let mut out = Vec::new();
        let owner = labels::to_labels(&tags::owner_tags(cluster)).map_err(Failure::InvalidInput)?;
        let mut pages = self
            .addresses
            .list()
            .set_project(&self.project)
            .set_region(&self.region)
            .set_filter(labels::filter(&owner))
            .by_page();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("compute.addresses.list", e))?;
            for a in page.items {
                if mine(&labels::from_labels(&a.labels)) {
                    out.push(("compute:address", a.name));
                }
            }
        }
        for r in self.find_rules(cluster, service).await? {
            out.push(("compute:forwardingRule", r.name));
        }
        // Target pools and legacy health checks have no labels (hence no label filter): their
        // owner is in the description.
        let mut pages = self
            .pools
            .list()
            .set_project(&self.project)
            .set_region(&self.region)
            .by_page();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("compute.targetPools.list", e))?;
            for p in page.items {
                if mine(&labels::from_description(p.description.as_deref())) {
                    out.push(("compute:targetPool", p.name));
                }
            }
        }
        let mut pages = self
            .health_checks
            .list()
            .set_project(&self.project)
            .by_page();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("compute.httpHealthChecks.list", e))?;
            for h in page.items {
                if mine(&labels::from_description(h.description.as_deref())) {
                    out.push(("compute:httpHealthCheck", h.name));
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|(kind, name)| OwnedResource {
                kind: kind.into(),
                id: name.unwrap_or_default(),
            })
            .collect())
    }
}

#[async_trait]
impl LoadBalancers for GcpCloud {
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
        let existing = self
            .find_address(cluster, &spec.service)
            .await
            .map_err(err)?;
        let created = existing.is_none();
        let address = match self.ensure(cluster, spec, existing, &targets).await {
            Ok(a) => a,
            Err(f) => {
                if created {
                    // Leave nothing half-built behind a load balancer that did not exist before.
                    if let Err(cleanup) = self.delete_all(cluster, &spec.service).await {
                        warn!(service = %spec.service, error = %cleanup, "cleanup after a failed ensure failed");
                    }
                }
                return Err(err(f));
            }
        };
        self.read_lb(cluster, &spec.service, &address)
            .await
            .map_err(err)
    }

    async fn update_targets(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
        nodes: &BTreeSet<ProviderId>,
    ) -> Result<LoadBalancer, LoadBalancerError> {
        let subject = service.to_string();
        let err = |f: Failure| LoadBalancerError::new(LoadBalancerOp::UpdateTargets, &subject, f);
        let missing = || {
            err(FatalError::new(
                "compute.targetPools.get",
                FatalKind::Rejected,
                "the Service has no load balancer",
            )
            .into())
        };
        let Some(address) = self.find_address(cluster, service).await.map_err(err)? else {
            return Err(missing());
        };
        let Some(pool) = self.get_pool(cluster, service).await.map_err(err)? else {
            return Err(missing());
        };
        let targets = self.check_nodes(cluster, nodes).await.map_err(err)?;
        self.sync_pool(&pool, &targets).await.map_err(err)?;
        self.read_lb(cluster, service, &address).await.map_err(err)
    }

    async fn get_load_balancer(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<Option<LoadBalancer>, LoadBalancerError> {
        let err = |f: Failure| LoadBalancerError::new(LoadBalancerOp::Get, service.to_string(), f);
        match self.find_address(cluster, service).await.map_err(err)? {
            Some(a) => Ok(Some(self.read_lb(cluster, service, &a).await.map_err(err)?)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_their_port() {
        let cluster = ClusterId::new("c").unwrap();
        let service = ServiceKey::new("default", "web");
        for port in [
            ServicePort {
                protocol: Protocol::Tcp,
                port: 443,
                node_port: 30443,
            },
            ServicePort {
                protocol: Protocol::Udp,
                port: 53,
                node_port: 30053,
            },
        ] {
            let proto = match port.protocol {
                Protocol::Tcp => forwarding_rule::IPProtocol::Tcp,
                Protocol::Udp => forwarding_rule::IPProtocol::Udp,
            };
            let rule = gm::ForwardingRule::new()
                .set_ip_protocol(proto)
                .set_port_range(urls::port_range(port.port))
                .set_labels(rule_labels(&cluster, &service, &port));
            assert_eq!(rule_port(&rule), Some(port.clone()));
            assert!(owns(&labels::from_labels(&rule.labels), &cluster, &service));
        }
        let no_label = gm::ForwardingRule::new()
            .set_ip_protocol(forwarding_rule::IPProtocol::Tcp)
            .set_port_range("80-80");
        assert_eq!(rule_port(&no_label), None);
    }

    #[test]
    fn health_check_comparison() {
        let hc = HealthCheck::default();
        let body = health_check_body("b1", String::new(), &hc);
        assert!(health_check_matches(&body, &hc));
        let changed = HealthCheck {
            path: "/livez".into(),
            ..HealthCheck::default()
        };
        assert!(!health_check_matches(&body, &changed));
        assert_eq!(body.timeout_sec, Some(5));
    }

    #[test]
    fn ownership_needs_cluster_and_service() {
        let c = ClusterId::new("c").unwrap();
        let other = ClusterId::new("d").unwrap();
        let web = ServiceKey::new("default", "web");
        let t = tags::service_tags(&c, &web);
        assert!(owns(&t, &c, &web));
        assert!(!owns(&t, &other, &web));
        assert!(!owns(&t, &c, &ServiceKey::new("default", "api")));
        assert!(!owns(&BTreeMap::new(), &c, &web));
    }
}
