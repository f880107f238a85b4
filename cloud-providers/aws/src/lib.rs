//! Berth's AWS cloud provider: [`cloud::Cloud`] on EC2 instances and ELBv2 network load
//! balancers, through the official AWS SDK.
//!
//! Region and credentials come from the SDK's standard chain (environment, profile, IMDS, …) and
//! endpoint overrides from `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_EC2` and
//! `AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2`, which the SDK reads itself; [`AwsConfig`] can
//! also set them in code. Every resource is tagged `kubernetes.io/cluster/<cluster-id>=owned` and
//! `berth.dev/cluster=<cluster-id>` (plus `berth.dev/instance` or `berth.dev/service`) and is
//! looked up by those tags or by its deterministic name before anything is created, so a crash
//! between two calls neither leaks nor duplicates a resource.
//!
//! It is not a controller and keeps no state beyond the clients and the region's zone list. It
//! creates no VPCs, subnets or security groups: those belong to the cluster's network, made by
//! whoever made the cluster (the tests make their own).

mod error;
mod instances;
mod load_balancers;

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::types::Filter;
use cloud::{
    Cloud, ClusterId, FatalError, FatalKind, InventoryError, InventoryOp, OwnedResource, Zone,
    Zones, tags,
};

/// How to reach AWS, beyond what the standard chain provides.
#[derive(Debug, Clone, Default)]
pub struct AwsConfig {
    /// The region; `None` uses the standard chain (`AWS_REGION`, the profile, IMDS).
    pub region: Option<String>,
    /// An EC2 endpoint, overriding `AWS_ENDPOINT_URL_EC2`.
    pub ec2_endpoint: Option<String>,
    /// An ELBv2 endpoint, overriding `AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2`.
    pub elbv2_endpoint: Option<String>,
    /// Where load balancers go. `None` finds, per cluster, the subnets tagged
    /// `kubernetes.io/cluster/<cluster-id>` (one per zone, the first by ID) and their VPC.
    pub load_balancer_network: Option<LoadBalancerNetwork>,
}

/// The subnets and VPC of load balancers, when given explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerNetwork {
    /// The VPC of the target groups.
    pub vpc_id: String,
    /// One subnet per zone the load balancer serves.
    pub subnet_ids: Vec<String>,
}

/// The AWS provider.
pub struct AwsCloud {
    ec2: aws_sdk_ec2::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    region: String,
    lb_network: Option<LoadBalancerNetwork>,
}

fn connect_err(failure: impl Into<cloud::Failure>) -> InventoryError {
    InventoryError::new(InventoryOp::Connect, "", failure)
}

impl AwsCloud {
    /// Loads the standard chain, applies `config` and checks that the region exists.
    pub async fn connect(config: AwsConfig) -> Result<Self, InventoryError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        Self::connect_with(&loader.load().await, config).await
    }

    /// Applies `config` to an SDK config loaded by the caller and checks that the region exists.
    pub async fn connect_with(sdk: &SdkConfig, config: AwsConfig) -> Result<Self, InventoryError> {
        let cloud = Self::from_sdk_config(sdk, config)?;
        cloud.check_region().await?;
        Ok(cloud)
    }

    /// Builds the clients from an SDK config without any call; [`AwsCloud::connect`] also checks
    /// the region.
    pub fn from_sdk_config(sdk: &SdkConfig, config: AwsConfig) -> Result<Self, InventoryError> {
        let region = config
            .region
            .clone()
            .or_else(|| sdk.region().map(|r| r.to_string()))
            .ok_or_else(|| {
                connect_err(FatalError::new(
                    "aws-config:region",
                    FatalKind::UnknownRegion,
                    "no region configured: set AWS_REGION or a profile region",
                ))
            })?;
        if sdk.credentials_provider().is_none() {
            return Err(connect_err(FatalError::new(
                "aws-config:credentials",
                FatalKind::Unauthenticated,
                "no credentials provider configured",
            )));
        }
        let mut ec2 = aws_sdk_ec2::config::Builder::from(sdk).region(Region::new(region.clone()));
        if let Some(url) = &config.ec2_endpoint {
            ec2 = ec2.endpoint_url(url);
        }
        let mut elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
            .region(Region::new(region.clone()));
        if let Some(url) = &config.elbv2_endpoint {
            elb = elb.endpoint_url(url);
        }
        Ok(AwsCloud {
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb.build()),
            region,
            lb_network: config.load_balancer_network,
        })
    }

    /// The EC2 client, for callers that prepare networks in tests.
    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        &self.ec2
    }

    /// The ELBv2 client.
    pub fn elbv2(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        &self.elb
    }

    async fn check_region(&self) -> Result<(), InventoryError> {
        let call = "ec2:DescribeRegions";
        let out = self
            .ec2
            .describe_regions()
            .all_regions(true)
            .send()
            .await
            .map_err(|e| connect_err(error::failure(call, e)))?;
        let known = out
            .regions()
            .iter()
            .any(|r| r.region_name() == Some(self.region.as_str()));
        if known {
            Ok(())
        } else {
            Err(connect_err(FatalError::new(
                call,
                FatalKind::UnknownRegion,
                format!("region {:?} does not exist", self.region),
            )))
        }
    }

    /// Filters that select what `cluster` owns.
    fn owner_filters(cluster: &ClusterId) -> Vec<Filter> {
        vec![
            Filter::builder()
                .name(format!("tag:{}", tags::cluster_tag_key(cluster)))
                .values(tags::OWNED)
                .build(),
            Filter::builder()
                .name(format!("tag:{}", tags::TAG_CLUSTER))
                .values(cluster.as_str())
                .build(),
        ]
    }
}

/// Tags as a map, from EC2 or ELBv2 tag lists.
fn tag_map<'a>(
    pairs: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k?.to_owned(), v.unwrap_or("").to_owned())))
        .collect()
}

#[async_trait]
impl Zones for AwsCloud {
    fn region(&self) -> &str {
        &self.region
    }

    async fn zones(&self) -> Result<Vec<Zone>, InventoryError> {
        let out = self
            .ec2
            .describe_availability_zones()
            .send()
            .await
            .map_err(|e| {
                InventoryError::new(
                    InventoryOp::Zones,
                    "",
                    error::failure("ec2:DescribeAvailabilityZones", e),
                )
            })?;
        let mut zones: Vec<Zone> = out
            .availability_zones()
            .iter()
            .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
            .filter_map(|z| {
                Some(Zone {
                    name: z.zone_name()?.to_owned(),
                    region: z.region_name().unwrap_or(&self.region).to_owned(),
                    available: z.state().is_some_and(|s| s.as_str() == "available"),
                })
            })
            .collect();
        zones.sort();
        Ok(zones)
    }
}

#[async_trait]
impl Cloud for AwsCloud {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn owned_resources(
        &self,
        cluster: &ClusterId,
    ) -> Result<Vec<OwnedResource>, InventoryError> {
        let err = |f| InventoryError::new(InventoryOp::OwnedResources, cluster.as_str(), f);
        let mut owned = Vec::new();
        for i in self.owned_instances(cluster).await.map_err(err)? {
            owned.push(OwnedResource {
                kind: "ec2:instance".into(),
                id: i.instance_id().unwrap_or_default().to_owned(),
            });
        }
        owned.extend(self.owned_elb_resources(cluster, None).await.map_err(err)?);
        owned.sort();
        Ok(owned)
    }
}
