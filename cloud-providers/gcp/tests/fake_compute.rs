//! The GCP provider against the in-repo fake of the Compute REST endpoints
//! (`gcp::fake_server`): the conformance suite, a cloud that is down, bad input, and crashes
//! between calls. Everything runs on 127.0.0.1; nothing here reaches Google.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Result;
use cloud::testing::{Fixture, Suite, service};
use cloud::{Cloud, tags};
use cloud::{
    ClusterId, FatalKind, InstanceSpec, Instances, LoadBalancers, ProviderId, RetryKind, Zones,
};
use gcp::fake_server::{self, FakeCompute};
use gcp::{GcpCloud, GcpConfig};

fn config(fake: &FakeCompute) -> GcpConfig {
    let mut config = GcpConfig::new(fake_server::PROJECT, fake_server::REGION);
    config.endpoint = Some(fake.endpoint());
    config.credentials = Some(google_cloud_auth::credentials::anonymous::Builder::new().build());
    config.operation_poll = Duration::from_millis(5);
    config
}

async fn connect(fake: &FakeCompute) -> GcpCloud {
    GcpCloud::connect(config(fake))
        .await
        .unwrap_or_else(|e| panic!("connect to the fake: {e}"))
}

fn fixture(cluster: &str) -> Fixture {
    Fixture {
        zones: [
            fake_server::ZONES[0].to_owned(),
            fake_server::ZONES[1].to_owned(),
        ],
        subnets: [None, None],
        image: fake_server::IMAGE.into(),
        instance_type: fake_server::MACHINE_TYPES[0].into(),
        security_groups: vec!["berth-node".into()],
        unknown_image: "projects/debian-cloud/global/images/family/debian-99".into(),
        unknown_instance_type: "e2-no-such-type".into(),
        unknown_zone: "us-central1-z".into(),
        missing_instance: ProviderId::Gce {
            project: fake_server::PROJECT.into(),
            zone: fake_server::ZONES[0].into(),
            name: "berth-missing".into(),
        },
        ..Fixture::new(cluster)
    }
}

fn names(fake: &FakeCompute, kind: &str) -> Vec<String> {
    fake.resources(kind)
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn conformance_suite_against_the_fake() -> Result<()> {
    let fake = FakeCompute::start().await?;
    let cloud = connect(&fake).await;
    Suite::new(&cloud, fixture("gcp-suite")).run_all().await;
    // The provider waited for its operations rather than trusting the first answer.
    assert!(
        fake.operation_polls() > 20,
        "only {} operation polls",
        fake.operation_polls()
    );
    for kind in [
        "instances",
        "addresses",
        "targetPools",
        "forwardingRules",
        "httpHealthChecks",
    ] {
        assert_eq!(
            names(&fake, kind),
            Vec::<String>::new(),
            "{kind} left behind"
        );
    }
    fake.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_cloud_that_is_down_gives_retryable_errors() -> Result<()> {
    let fake = FakeCompute::start().await?;
    let cloud = connect(&fake).await;
    fake.stop().await;
    Suite::new(&cloud, fixture("gcp-down")).cloud_down().await;
    Ok(())
}

#[tokio::test]
async fn unknown_region_and_bad_instance_input_fail_clearly() -> Result<()> {
    let fake = FakeCompute::start().await?;
    let mut bad_region = config(&fake);
    bad_region.region = "mars-east1".into();
    let err = GcpCloud::connect(bad_region)
        .await
        .err()
        .expect("an unknown region fails");
    assert_eq!(
        err.failure.fatal_kind(),
        Some(FatalKind::UnknownRegion),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "connect: compute.regions.get failed (unknown region): region \"mars-east1\" does not exist in project \"berth-fake\""
    );

    let cloud = connect(&fake).await;
    let cluster = ClusterId::new("gcp-bad").map_err(anyhow::Error::msg)?;
    let suite = Suite::new(&cloud, fixture("gcp-bad"));
    type Edit = fn(&mut InstanceSpec);
    let cases: [(Edit, Option<FatalKind>, &str); 6] = [
        (
            |s| s.instance_type = "e2-no-such-type".into(),
            Some(FatalKind::UnknownInstanceType),
            "create instance \"bad\": compute.instances.insert failed (unknown instance type): HTTP 400 invalid: Invalid value for field 'resource.machineType': 'zones/us-central1-a/machineTypes/e2-no-such-type'. Machine type with name 'e2-no-such-type' does not exist in zone 'us-central1-a'.",
        ),
        (
            |s| s.image = "debian-99".into(),
            Some(FatalKind::UnknownImage),
            "create instance \"bad\": compute.instances.insert failed (unknown image): HTTP 404 notFound: The resource 'projects/berth-fake/global/images/debian-99' was not found",
        ),
        (
            |s| s.zone = "europe-west1-b".into(),
            Some(FatalKind::UnknownZone),
            "create instance \"bad\": compute.zones.list failed (unknown zone): zone \"europe-west1-b\" is not in region us-central1",
        ),
        (
            |s| s.subnet = Some("no-such-subnet".into()),
            Some(FatalKind::UnknownSubnet),
            "create instance \"bad\": compute.instances.insert failed (unknown subnet): HTTP 404 notFound: The resource 'projects/berth-fake/regions/us-central1/subnetworks/no-such-subnet' was not found",
        ),
        (
            |s| {
                s.tags.insert("Team".into(), "x".into());
            },
            None,
            "create instance \"bad\": invalid input: tag Team=\"x\" is not a valid GCP label: keys and values are at most 63 lower-case letters, digits, '-' or '_', keys start with a letter",
        ),
        (
            |s| s.security_groups = vec!["Not A Tag".into()],
            None,
            "create instance \"bad\": invalid input: network tag \"Not A Tag\" must be 1-63 lower-case letters, digits or '-', start with a letter and not end with '-'",
        ),
    ];
    for (edit, kind, message) in cases {
        let mut spec = suite.instance_spec("bad", 0);
        edit(&mut spec);
        let err = cloud
            .create_instance(&cluster, &spec)
            .await
            .expect_err(message);
        assert!(!err.is_retryable(), "{err}");
        assert_eq!(err.failure.fatal_kind(), kind, "{err}");
        assert_eq!(err.to_string(), message);
    }
    assert!(
        names(&fake, "instances").is_empty(),
        "a failed create left an instance"
    );
    assert!(cloud.owned_resources(&cluster).await?.is_empty());
    fake.stop().await;
    Ok(())
}

#[tokio::test]
async fn user_data_labels_and_network_tags_reach_compute() -> Result<()> {
    let fake = FakeCompute::start().await?;
    let cloud = connect(&fake).await;
    let cluster = ClusterId::new("gcp-meta").map_err(anyhow::Error::msg)?;
    let suite = Suite::new(&cloud, fixture("gcp-meta"));
    let mut text = suite.instance_spec("text", 0);
    text.user_data = b"#cloud-config\nruncmd: [echo hi]\n".to_vec();
    let mut binary = suite.instance_spec("binary", 1);
    binary.user_data = vec![0x1f, 0x8b, 0x08, 0x00];
    let t = cloud.create_instance(&cluster, &text).await?;
    let b = cloud.create_instance(&cluster, &binary).await?;
    let zone = |i: &cloud::Instance| i.zone.clone();
    assert_eq!(
        fake.metadata(&zone(&t), "text", "user-data").as_deref(),
        Some("#cloud-config\nruncmd: [echo hi]\n")
    );
    assert_eq!(fake.metadata(&zone(&t), "text", "user-data-encoding"), None);
    assert_eq!(
        fake.metadata(&zone(&b), "binary", "user-data").as_deref(),
        Some("H4sIAA==")
    );
    assert_eq!(
        fake.metadata(&zone(&b), "binary", "user-data-encoding")
            .as_deref(),
        Some("base64")
    );
    let stored = fake
        .resources("instances")
        .into_iter()
        .find(|i| i["name"] == "text")
        .expect("stored");
    assert_eq!(stored["labels"]["kubernetes-io-cluster-gcp-meta"], "owned");
    assert_eq!(stored["labels"]["berth-dev-cluster"], "gcp-meta");
    assert_eq!(stored["labels"]["berth-dev-instance"], "text");
    assert_eq!(stored["labels"]["berth-test"], "conformance");
    assert_eq!(stored["tags"]["items"][0], "berth-node");
    assert_eq!(
        stored["status"], "RUNNING",
        "the insert operation was awaited"
    );
    assert!(tags::is_owned(&t.tags, &cluster));
    for i in [t, b] {
        cloud.terminate_instance(&cluster, &i.provider_id).await?;
    }
    assert!(names(&fake, "instances").is_empty());
    fake.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_crash_after_an_accepted_insert_neither_leaks_nor_duplicates() -> Result<()> {
    let fake = FakeCompute::start().await?;
    let cloud = connect(&fake).await;
    let cluster = ClusterId::new("gcp-crash-vm").map_err(anyhow::Error::msg)?;
    let suite = Suite::new(&cloud, fixture("gcp-crash-vm"));
    let spec = suite.instance_spec("node-1", 0);

    // The insert is accepted, then the cloud is gone before its operation is awaited.
    fake.fail_from("POST", "/operations/");
    let err = cloud
        .create_instance(&cluster, &spec)
        .await
        .expect_err("down");
    assert!(err.is_retryable(), "{err}");
    fake.heal();
    assert_eq!(names(&fake, "instances"), ["node-1"]);

    let i = cloud.create_instance(&cluster, &spec).await?;
    assert_eq!(i.name, "node-1");
    // Again in another zone: the cluster's node-1 is found by label, not made twice.
    let again = cloud
        .create_instance(&cluster, &suite.instance_spec("node-1", 1))
        .await?;
    assert_eq!(again.provider_id, i.provider_id);
    assert_eq!(names(&fake, "instances"), ["node-1"]);

    // Another cluster cannot take the name: Compute's 409 is reported as a conflict.
    let other = ClusterId::new("gcp-crash-vm-other").map_err(anyhow::Error::msg)?;
    let err = cloud
        .create_instance(&other, &spec)
        .await
        .expect_err("name taken");
    assert_eq!(err.failure.fatal_kind(), Some(FatalKind::Conflict), "{err}");

    cloud.terminate_instance(&cluster, &i.provider_id).await?;
    assert!(cloud.owned_resources(&cluster).await?.is_empty());
    fake.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_crash_before_the_forwarding_rules_is_completed_by_the_next_ensure() -> Result<()> {
    let fake = FakeCompute::start().await?;
    let cloud = connect(&fake).await;
    let cluster = ClusterId::new("gcp-crash-lb").map_err(anyhow::Error::msg)?;
    let suite = Suite::new(&cloud, fixture("gcp-crash-lb"));
    let node = cloud
        .create_instance(&cluster, &suite.instance_spec("node-1", 0))
        .await?;
    let spec = suite.load_balancer_spec(BTreeSet::from([node.provider_id.clone()]));

    // Address, health check and pool are made; then the cloud is gone from the first forwarding
    // rule on, so the provider's own cleanup cannot run either: as if it had crashed there.
    fake.fail_from("POST", "/forwardingRules");
    let err = cloud
        .ensure_load_balancer(&cluster, &spec)
        .await
        .expect_err("down");
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.failure.retry_kind(), Some(RetryKind::Unavailable));
    assert!(
        err.to_string()
            .contains("compute.forwardingRules.insert failed"),
        "{err}"
    );
    fake.heal();
    let lb_name = tags::load_balancer_name(&cluster, &service());
    let just_lb = vec![lb_name.clone()];
    assert_eq!(names(&fake, "addresses"), just_lb);
    assert_eq!(names(&fake, "targetPools"), just_lb);
    assert_eq!(names(&fake, "httpHealthChecks"), just_lb);
    assert!(names(&fake, "forwardingRules").is_empty());
    let ip = fake.resources("addresses")[0]["address"].clone();

    let lb = cloud.ensure_load_balancer(&cluster, &spec).await?;
    assert_eq!(
        lb.ingress,
        [cloud::Ingress::Ip(
            ip.as_str().unwrap_or_default().to_owned()
        )],
        "the address made before the crash is kept"
    );
    assert_eq!(names(&fake, "addresses"), just_lb);
    assert_eq!(names(&fake, "targetPools"), just_lb);
    assert_eq!(names(&fake, "httpHealthChecks"), just_lb);
    assert_eq!(
        names(&fake, "forwardingRules"),
        [format!("{lb_name}-tcp-443"), format!("{lb_name}-tcp-80")]
    );
    assert_eq!(
        lb.listeners.iter().map(|l| l.port.port).collect::<Vec<_>>(),
        [80, 443]
    );
    for rule in fake.resources("forwardingRules") {
        assert_eq!(rule["IPAddress"], ip);
        assert!(
            rule["target"]
                .as_str()
                .unwrap_or_default()
                .ends_with(&lb_name)
        );
    }

    // A delete interrupted after the forwarding rules is finished by the next one.
    fake.fail_from("DELETE", "/targetPools/");
    let err = cloud
        .delete_load_balancer(&cluster, &service())
        .await
        .expect_err("down");
    assert!(err.is_retryable(), "{err}");
    fake.heal();
    assert!(names(&fake, "forwardingRules").is_empty());
    cloud.delete_load_balancer(&cluster, &service()).await?;
    cloud.delete_load_balancer(&cluster, &service()).await?;
    cloud
        .terminate_instance(&cluster, &node.provider_id)
        .await?;
    let owned = cloud.owned_resources(&cluster).await?;
    assert!(owned.is_empty(), "{owned:?}");
    fake.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_changed_health_check_is_updated_in_place() -> Result<()> {
    let fake = FakeCompute::start().await?;
    let cloud = connect(&fake).await;
    let cluster = ClusterId::new("gcp-hc").map_err(anyhow::Error::msg)?;
    let suite = Suite::new(&cloud, fixture("gcp-hc"));
    let mut spec = suite.load_balancer_spec(BTreeSet::new());
    cloud.ensure_load_balancer(&cluster, &spec).await?;
    let before = fake.resources("httpHealthChecks");
    assert_eq!(before[0]["requestPath"], "/healthz");
    assert_eq!(before[0]["port"], 10256);
    spec.health_check.path = "/livez".into();
    spec.health_check.interval_seconds = 30;
    cloud.ensure_load_balancer(&cluster, &spec).await?;
    let after = fake.resources("httpHealthChecks");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["id"], before[0]["id"], "updated, not replaced");
    assert_eq!(after[0]["requestPath"], "/livez");
    assert_eq!(after[0]["checkIntervalSec"], 30);
    let owned: BTreeMap<String, usize> =
        cloud
            .owned_resources(&cluster)
            .await?
            .into_iter()
            .fold(BTreeMap::new(), |mut m, r| {
                *m.entry(r.kind).or_default() += 1;
                m
            });
    assert_eq!(
        owned,
        BTreeMap::from([
            ("compute:address".to_owned(), 1),
            ("compute:forwardingRule".to_owned(), 2),
            ("compute:httpHealthCheck".to_owned(), 1),
            ("compute:targetPool".to_owned(), 1),
        ])
    );
    cloud.delete_load_balancer(&cluster, &service()).await?;
    assert!(cloud.owned_resources(&cluster).await?.is_empty());
    assert_eq!(cloud.region(), fake_server::REGION);
    fake.stop().await;
    Ok(())
}
