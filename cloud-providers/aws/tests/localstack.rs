//! The conformance suite and the bad-input checks against LocalStack (EC2) and moto (ELBv2),
//! started by this test on free loopback ports through `localstack/up` and stopped by PID through
//! `localstack/down`, also when the test fails. Fails (never skips) when they are not installed.
//!
//! The free LocalStack has no ELBv2, so load balancers live in moto, which has its own EC2: the
//! test builds the cluster network in LocalStack (for instances) and a mirror VPC with subnets in
//! the same zones in moto (for load balancers), handed to the provider as an explicit
//! [`LoadBalancerNetwork`]. moto accepts instance IDs it has not seen as targets.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use aws::{AwsCloud, AwsConfig, LoadBalancerNetwork};
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use cloud::testing::{Fixture, Suite};
use cloud::{Cloud, ClusterId, FatalKind, InstanceOp, Instances, InventoryOp, ProviderId, tags};

const REGION: &str = "us-east-1";
const ZONES: [&str; 2] = ["us-east-1a", "us-east-1b"];

/// The repository this test runs from. The test runner's `CARGO_MANIFEST_DIR` first: the
/// compile-time one names wherever the binary was built, and a shared target dir may hand a
/// binary built in another clone (whose path may be gone) to this one.
fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// LocalStack and moto on their own ports and state dir; stopped by PID when dropped.
struct Emulators {
    state: tempfile::TempDir,
    ec2: String,
    elbv2: String,
    ls_port: u16,
    moto_port: u16,
}

impl Emulators {
    fn script(&self, name: &str) -> Command {
        let mut c = Command::new(repo_root().join("localstack").join(name));
        c.env("BERTH_LOCALSTACK_STATE", self.state.path())
            .env("BERTH_LOCALSTACK_PORT", self.ls_port.to_string())
            .env("BERTH_MOTO_PORT", self.moto_port.to_string());
        c
    }

    fn start() -> Result<Self> {
        let check = Command::new(repo_root().join("localstack/install"))
            .arg("--check")
            .output()?;
        if !check.status.success() {
            bail!(
                "LocalStack and moto are not installed; run localstack/install first ({})",
                String::from_utf8_lossy(&check.stderr).trim()
            );
        }
        let (ls_port, moto_port) = (free_port(), free_port());
        let emulators = Emulators {
            state: tempfile::tempdir()?,
            ec2: format!("http://127.0.0.1:{ls_port}"),
            elbv2: format!("http://127.0.0.1:{moto_port}"),
            ls_port,
            moto_port,
        };
        let out = emulators
            .script("up")
            .output()
            .context("running localstack/up")?;
        ensure!(
            out.status.success(),
            "localstack/up failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(emulators)
    }
}

impl Drop for Emulators {
    fn drop(&mut self) {
        match self.script("down").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "localstack/down failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("localstack/down did not run: {e}"),
        }
    }
}

/// An SDK config with static test credentials and the region; nothing from the environment that
/// could send a request off this machine.
async fn sdk_config(region: &str, max_attempts: u32) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new("test", "test", None, None, "berth-test"))
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
        .load()
        .await
}

fn ec2_client(sdk: &SdkConfig, endpoint: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .build(),
    )
}

fn owner_tags(cluster: &ClusterId) -> Vec<Tag> {
    tags::owner_tags(cluster)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tagged(kind: ResourceType, cluster: &ClusterId) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(owner_tags(cluster)))
        .build()
}

/// A VPC with one subnet per zone and a security group, all tagged as the cluster's.
struct Network {
    vpc: String,
    subnets: Vec<String>,
    security_group: String,
}

impl Network {
    async fn create(ec2: &aws_sdk_ec2::Client, cluster: &ClusterId) -> Result<Self> {
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .tag_specifications(tagged(ResourceType::Vpc, cluster))
            .send()
            .await?;
        let vpc = vpc
            .vpc()
            .and_then(|v| v.vpc_id())
            .context("no VPC ID")?
            .to_owned();
        let mut subnets = Vec::new();
        for (i, zone) in ZONES.iter().enumerate() {
            let s = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(format!("10.0.{i}.0/24"))
                .availability_zone(*zone)
                .tag_specifications(tagged(ResourceType::Subnet, cluster))
                .send()
                .await?;
            subnets.push(
                s.subnet()
                    .and_then(|s| s.subnet_id())
                    .context("no subnet ID")?
                    .to_owned(),
            );
        }
        let sg = ec2
            .create_security_group()
            .group_name(format!("{cluster}-nodes"))
            .description("Berth conformance test nodes")
            .vpc_id(&vpc)
            .tag_specifications(tagged(ResourceType::SecurityGroup, cluster))
            .send()
            .await?;
        let security_group = sg.group_id().context("no group ID")?.to_owned();
        Ok(Network {
            vpc,
            subnets,
            security_group,
        })
    }

    async fn delete(&self, ec2: &aws_sdk_ec2::Client) -> Result<()> {
        ec2.delete_security_group()
            .group_id(&self.security_group)
            .send()
            .await?;
        for s in &self.subnets {
            ec2.delete_subnet().subnet_id(s).send().await?;
        }
        ec2.delete_vpc().vpc_id(&self.vpc).send().await?;
        Ok(())
    }
}

/// Every EC2 resource tagged with the cluster that still exists. Tags are only a lead: the
/// emulators keep tags of deleted resources, and EC2 lists terminated instances for a while, so
/// each tagged resource is described to see whether it is really there.
async fn tagged_ec2_resources(
    ec2: &aws_sdk_ec2::Client,
    cluster: &ClusterId,
) -> Result<Vec<String>> {
    let out = ec2
        .describe_tags()
        .filters(
            Filter::builder()
                .name("key")
                .values(tags::cluster_tag_key(cluster))
                .build(),
        )
        .send()
        .await?;
    let mut left = Vec::new();
    for t in out.tags() {
        let id = t.resource_id().unwrap_or_default().to_owned();
        let by_id = |name: &str| Filter::builder().name(name).values(&id).build();
        let exists = match t.resource_type().map(|r| r.as_str()) {
            Some("instance") => {
                let d = ec2
                    .describe_instances()
                    .filters(by_id("instance-id"))
                    .send()
                    .await?;
                d.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .any(|i| {
                        i.state()
                            .and_then(|s| s.name())
                            .is_some_and(|n| !matches!(n.as_str(), "terminated" | "shutting-down"))
                    })
            }
            Some("vpc") => !ec2
                .describe_vpcs()
                .filters(by_id("vpc-id"))
                .send()
                .await?
                .vpcs()
                .is_empty(),
            Some("subnet") => !ec2
                .describe_subnets()
                .filters(by_id("subnet-id"))
                .send()
                .await?
                .subnets()
                .is_empty(),
            Some("security-group") => !ec2
                .describe_security_groups()
                .filters(by_id("group-id"))
                .send()
                .await?
                .security_groups()
                .is_empty(),
            // A kind this test does not create: report it rather than guess.
            _ => true,
        };
        if exists {
            left.push(format!("{:?} {id}", t.resource_type()));
        }
    }
    Ok(left)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_against_localstack_and_moto() -> Result<()> {
    let emulators = Emulators::start()?;
    let sdk = sdk_config(REGION, 3).await;
    let ls_ec2 = ec2_client(&sdk, &emulators.ec2);
    let moto_ec2 = ec2_client(&sdk, &emulators.elbv2);

    let fixture = Fixture::new("berth-aws-conformance");
    let cluster = fixture.cluster.clone();
    let net = Network::create(&ls_ec2, &cluster)
        .await
        .context("network in LocalStack")?;
    let lb_net = Network::create(&moto_ec2, &cluster)
        .await
        .context("mirror network in moto")?;
    let image = ls_ec2.describe_images().send().await?;
    let image = image
        .images()
        .iter()
        .find_map(|i| i.image_id())
        .context("LocalStack lists no images")?
        .to_owned();

    let cloud = AwsCloud::connect_with(
        &sdk,
        AwsConfig {
            region: Some(REGION.into()),
            ec2_endpoint: Some(emulators.ec2.clone()),
            elbv2_endpoint: Some(emulators.elbv2.clone()),
            load_balancer_network: Some(LoadBalancerNetwork {
                vpc_id: lb_net.vpc.clone(),
                subnet_ids: lb_net.subnets.clone(),
            }),
        },
    )
    .await?;
    let fixture = Fixture {
        zones: ZONES.map(String::from),
        subnets: [Some(net.subnets[0].clone()), Some(net.subnets[1].clone())],
        image: image.clone(),
        instance_type: "t3.micro".into(),
        security_groups: vec![net.security_group.clone()],
        unknown_image: "ami-00000000000000000".into(),
        unknown_instance_type: "t9.nope".into(),
        unknown_zone: "us-east-1z".into(),
        missing_instance: ProviderId::Aws {
            zone: ZONES[0].into(),
            instance_id: "i-00000000000000000".into(),
        },
        ..fixture
    };
    let suite = Suite::new(&cloud, fixture);

    // User-data reaches the instance unchanged.
    let spec = suite.instance_spec("user-data-check", 1);
    let i = cloud.create_instance(&cluster, &spec).await?;
    let attr = ls_ec2
        .describe_instance_attribute()
        .instance_id(i.provider_id.instance_id())
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await?;
    let stored = attr
        .user_data()
        .and_then(|v| v.value())
        .context("no user-data")?;
    assert_eq!(aws_smithy_types::base64::decode(stored)?, spec.user_data);
    cloud.terminate_instance(&cluster, &i.provider_id).await?;

    suite.run_all().await;

    net.delete(&ls_ec2)
        .await
        .context("deleting the LocalStack network")?;
    lb_net
        .delete(&moto_ec2)
        .await
        .context("deleting the moto network")?;
    let left = tagged_ec2_resources(&ls_ec2, &cluster).await?;
    assert!(
        left.is_empty(),
        "EC2 resources tagged with the cluster remain in LocalStack: {left:?}"
    );
    let left = tagged_ec2_resources(&moto_ec2, &cluster).await?;
    assert!(
        left.is_empty(),
        "EC2 resources tagged with the cluster remain in moto: {left:?}"
    );
    assert_eq!(cloud.owned_resources(&cluster).await?, vec![]);
    drop(emulators);
    Ok(())
}

#[tokio::test]
async fn bad_region_and_credentials_fail_clearly() -> Result<()> {
    let emulators = Emulators::start()?;
    let config = |region: &str| AwsConfig {
        region: Some(region.into()),
        ec2_endpoint: Some(emulators.ec2.clone()),
        elbv2_endpoint: Some(emulators.elbv2.clone()),
        load_balancer_network: None,
    };

    let err = AwsCloud::connect_with(&sdk_config("mars-east-1", 1).await, config("mars-east-1"))
        .await
        .err()
        .context("unknown region accepted")?;
    assert_eq!(
        (err.op, err.failure.fatal_kind()),
        (InventoryOp::Connect, Some(FatalKind::UnknownRegion)),
        "{err}"
    );
    assert!(err.to_string().contains("mars-east-1"), "{err}");

    // The standard chain found nothing: a provider that always fails to load.
    #[derive(Debug)]
    struct NoCredentials;
    impl aws_credential_types::provider::ProvideCredentials for NoCredentials {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "no credentials in the environment",
                ),
            ))
        }
    }
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(NoCredentials)
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    let cloud = AwsCloud::from_sdk_config(&sdk, config(REGION))?;
    let cluster = ClusterId::new("no-credentials").map_err(anyhow::Error::msg)?;
    let err = cloud
        .list_instances(&cluster)
        .await
        .err()
        .context("listed without credentials")?;
    assert_eq!(
        (err.op, err.failure.fatal_kind()),
        (InstanceOp::List, Some(FatalKind::Unauthenticated)),
        "{err}"
    );
    assert!(!err.is_retryable());
    let err = AwsCloud::connect_with(&sdk, config(REGION))
        .await
        .err()
        .context("connected without credentials")?;
    assert_eq!(
        err.failure.fatal_kind(),
        Some(FatalKind::Unauthenticated),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_cloud_that_is_down_gives_retryable_errors() -> Result<()> {
    // A port nothing listens on: connection refused, like an unreachable endpoint.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let sdk = sdk_config(REGION, 2).await;
    let config = AwsConfig {
        region: Some(REGION.into()),
        ec2_endpoint: Some(dead.clone()),
        elbv2_endpoint: Some(dead),
        load_balancer_network: None,
    };
    let err = AwsCloud::connect_with(&sdk, config.clone())
        .await
        .err()
        .context("connected to nothing")?;
    assert!(err.is_retryable(), "{err}");
    let cloud = AwsCloud::from_sdk_config(&sdk, config)?;
    let fixture = Fixture {
        zones: ZONES.map(String::from),
        missing_instance: ProviderId::Aws {
            zone: ZONES[0].into(),
            instance_id: "i-00000000000000000".into(),
        },
        ..Fixture::new("berth-aws-down")
    };
    Suite::new(&cloud, fixture).cloud_down().await;
    Ok(())
}
