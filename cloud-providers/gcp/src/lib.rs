//! Berth's GCP cloud provider: [`cloud::Cloud`] on Compute Engine instances and target-pool
//! network load balancers, through Google's `google-cloud-compute-v1` client.
//!
//! Instances carry the node's boot data as `user-data` metadata and Berth's ownership tags as
//! labels (mapped to GCP's label rules in [`labels`]). A Service's load balancer is a regional
//! external address, a legacy HTTP health check, a target pool of the node instances and one
//! forwarding rule per port, all named after `cloud::tags::load_balancer_name`. Every mutating
//! call returns a Compute operation, and the provider waits for it (zone, region or global) before
//! it goes on. Compute names are unique per zone, region or project, so a create repeated after a
//! crash meets `409 alreadyExists` or finds the resource by name or label first: nothing leaks and
//! nothing is made twice.
//!
//! It is not a controller and keeps no state beyond its clients. It creates no networks,
//! subnetworks or firewall rules: those belong to the cluster's network, made by whoever made the
//! cluster. Nothing here has run against real GCP; the tests run the conformance suite against
//! [`fake_server`] (feature `testing`), an in-process fake of the Compute REST endpoints the
//! provider calls.

mod error;
mod instances;
pub mod labels;
mod load_balancers;
mod operations;
pub mod urls;

#[cfg(feature = "testing")]
pub mod fake_server;

use std::time::Duration;

use async_trait::async_trait;
use cloud::{
    Cloud, ClusterId, Failure, FatalError, FatalKind, InventoryError, InventoryOp, OwnedResource,
    Zone, Zones, tags,
};
use google_cloud_compute_v1::client;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::paginator::Paginator as _;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt as _};

use crate::error::failure;

/// How to reach Compute Engine.
#[derive(Debug, Clone)]
pub struct GcpConfig {
    /// The project every resource lives in.
    pub project: String,
    /// The region of the cluster's instances and load balancers.
    pub region: String,
    /// A Compute endpoint instead of `https://compute.googleapis.com` (tests use the fake's).
    pub endpoint: Option<String>,
    /// Credentials; `None` uses Application Default Credentials.
    pub credentials: Option<google_cloud_auth::credentials::Credentials>,
    /// The network of instances without a subnetwork.
    pub network: String,
    /// Whether instances get an external IP (a one-to-one NAT access config).
    pub external_ips: bool,
    /// How long to wait for one Compute operation before giving up (retryably).
    pub operation_timeout: Duration,
    /// The first pause between operation polls when `wait` returns before the operation is done;
    /// it doubles up to ten times this.
    pub operation_poll: Duration,
}

impl GcpConfig {
    /// Defaults for `project` and `region`: the `default` network, external IPs, ten minutes per
    /// operation, polls from 500 ms.
    pub fn new(project: impl Into<String>, region: impl Into<String>) -> Self {
        GcpConfig {
            project: project.into(),
            region: region.into(),
            endpoint: None,
            credentials: None,
            network: "global/networks/default".into(),
            external_ips: true,
            operation_timeout: Duration::from_secs(600),
            operation_poll: Duration::from_millis(500),
        }
    }
}

/// The GCP provider.
pub struct GcpCloud {
    project: String,
    region: String,
    network: String,
    external_ips: bool,
    operation_timeout: Duration,
    operation_poll: Duration,
    zones: client::Zones,
    regions: client::Regions,
    instances: client::Instances,
    addresses: client::Addresses,
    health_checks: client::HttpHealthChecks,
    pools: client::TargetPools,
    rules: client::ForwardingRules,
    zone_ops: client::ZoneOperations,
    region_ops: client::RegionOperations,
    global_ops: client::GlobalOperations,
}

fn connect_err(failure: impl Into<Failure>) -> InventoryError {
    InventoryError::new(InventoryOp::Connect, "", failure)
}

/// Builds one Compute client with the shared endpoint, credentials and retry policy: idempotent
/// calls (GET, PUT, DELETE) and requests that never reached the server are retried three times
/// with a short backoff; everything else is left to the caller, who repeats whole operations.
macro_rules! build_client {
    ($ty:ty, $config:expr) => {{
        let config: &GcpConfig = $config;
        let backoff = ExponentialBackoffBuilder::new()
            .with_initial_delay(Duration::from_millis(100))
            .with_maximum_delay(Duration::from_secs(2))
            .clamp();
        let mut builder = <$ty>::builder()
            .with_retry_policy(Aip194Strict.with_attempt_limit(3))
            .with_backoff_policy(backoff)
            .with_attempt_timeout(Duration::from_secs(150));
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(credentials) = &config.credentials {
            builder = builder.with_credentials(credentials.clone());
        }
        builder.build().await.map_err(|e| {
            connect_err(FatalError {
                call: "google-cloud-auth:credentials",
                kind: FatalKind::Unauthenticated,
                message: format!("cannot build the {} client: {e}", stringify!($ty)),
                source: Some(Box::new(e)),
            })
        })?
    }};
}

impl GcpCloud {
    /// Builds the clients and checks that the region exists in the project.
    pub async fn connect(config: GcpConfig) -> Result<Self, InventoryError> {
        let cloud = Self::new(config).await?;
        cloud.check_region().await?;
        Ok(cloud)
    }

    /// Builds the clients without calling Compute; [`GcpCloud::connect`] also checks the region.
    pub async fn new(config: GcpConfig) -> Result<Self, InventoryError> {
        for (what, value) in [("project", &config.project), ("region", &config.region)] {
            if value.trim().is_empty() || value.contains('/') {
                return Err(InventoryError::invalid(
                    InventoryOp::Connect,
                    "",
                    format!("{what} {value:?} must be a non-empty name"),
                ));
            }
        }
        Ok(GcpCloud {
            zones: build_client!(client::Zones, &config),
            regions: build_client!(client::Regions, &config),
            instances: build_client!(client::Instances, &config),
            addresses: build_client!(client::Addresses, &config),
            health_checks: build_client!(client::HttpHealthChecks, &config),
            pools: build_client!(client::TargetPools, &config),
            rules: build_client!(client::ForwardingRules, &config),
            zone_ops: build_client!(client::ZoneOperations, &config),
            region_ops: build_client!(client::RegionOperations, &config),
            global_ops: build_client!(client::GlobalOperations, &config),
            project: config.project,
            region: config.region,
            network: config.network,
            external_ips: config.external_ips,
            operation_timeout: config.operation_timeout,
            operation_poll: config.operation_poll,
        })
    }

    /// The project.
    pub fn project(&self) -> &str {
        &self.project
    }

    async fn check_region(&self) -> Result<(), InventoryError> {
        let call = "compute.regions.get";
        match self
            .regions
            .get()
            .set_project(&self.project)
            .set_region(&self.region)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error::is_not_found(&e) => Err(connect_err(FatalError {
                call,
                kind: FatalKind::UnknownRegion,
                message: format!(
                    "region {:?} does not exist in project {:?}",
                    self.region, self.project
                ),
                source: Some(Box::new(e)),
            })),
            Err(e) => Err(connect_err(failure(call, e))),
        }
    }

    /// The zones of the region, from every page of `zones.list`.
    pub(crate) async fn region_zones(&self) -> Result<Vec<Zone>, Failure> {
        let mut pages = self.zones.list().set_project(&self.project).by_page();
        let mut zones = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("compute.zones.list", e))?;
            for z in page.items {
                let (Some(name), Some(region)) = (z.name, z.region) else {
                    continue;
                };
                if urls::last_segment(&region) == self.region {
                    zones.push(Zone {
                        name,
                        region: self.region.clone(),
                        available: z.status.as_ref().and_then(|s| s.name()) == Some("UP"),
                    });
                }
            }
        }
        zones.sort();
        Ok(zones)
    }
}

#[async_trait]
impl Zones for GcpCloud {
    fn region(&self) -> &str {
        &self.region
    }

    async fn zones(&self) -> Result<Vec<Zone>, InventoryError> {
        self.region_zones()
            .await
            .map_err(|f| InventoryError::new(InventoryOp::Zones, "", f))
    }
}

#[async_trait]
impl Cloud for GcpCloud {
    fn name(&self) -> &'static str {
        "gce"
    }

    async fn owned_resources(
        &self,
        cluster: &ClusterId,
    ) -> Result<Vec<OwnedResource>, InventoryError> {
        let err = |f| InventoryError::new(InventoryOp::OwnedResources, cluster.as_str(), f);
        let mut owned = Vec::new();
        for i in self
            .find_instances(&tags::owner_tags(cluster))
            .await
            .map_err(err)?
        {
            let zone = i.zone.as_deref().map(urls::last_segment).unwrap_or("");
            owned.push(OwnedResource {
                kind: "compute:instance".into(),
                id: format!("{zone}/{}", i.name.unwrap_or_default()),
            });
        }
        owned.extend(self.owned_lb_resources(cluster, None).await.map_err(err)?);
        owned.sort();
        Ok(owned)
    }
}
