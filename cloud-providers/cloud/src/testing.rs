//! The conformance suite that every [`Cloud`] implementation passes.
//!
//! Each provider's tests build a [`Fixture`] naming resources that exist in its cloud (zones,
//! subnets, an image, an instance type) and run [`Suite::run_all`]; the fake runs it in memory,
//! AWS against LocalStack and moto, GCP against the in-repo Compute fake. The suite panics with a
//! message on the first broken expectation, like `assert!`, and finishes by checking that nothing
//! owned by the cluster remains.
//!
//! Checks that depend on eventual consistency (a list right after a create) are polled for up to
//! [`Fixture::consistency_timeout`], as a controller would requeue.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use crate::node::{LABEL_INSTANCE_TYPE, LABEL_REGION, LABEL_ZONE};
use crate::{
    AddressKind, Cloud, ClusterId, Failure, FatalKind, HealthCheck, InstanceSpec, LoadBalancer,
    LoadBalancerSpec, Protocol, ProviderId, RetryKind, ServiceKey, ServicePort, node_init, tags,
};

/// What the suite needs to know about the cloud under test.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The cluster whose resources the suite creates; nothing else may be owned by it.
    pub cluster: ClusterId,
    /// A second cluster, to check that clusters cannot see or touch each other's instances.
    pub other_cluster: ClusterId,
    /// Two zones of the region.
    pub zones: [String; 2],
    /// A subnet in each zone, or `None` for the provider's default.
    pub subnets: [Option<String>; 2],
    /// An image that exists.
    pub image: String,
    /// An instance type that exists in both zones.
    pub instance_type: String,
    /// Security groups (or network tags) that exist.
    pub security_groups: Vec<String>,
    /// An image that does not exist, in the provider's format.
    pub unknown_image: String,
    /// An instance type that does not exist.
    pub unknown_instance_type: String,
    /// A zone that does not exist in the region.
    pub unknown_zone: String,
    /// A well-formed provider ID of an instance that does not exist.
    pub missing_instance: ProviderId,
    /// How long to poll checks that depend on eventual consistency.
    pub consistency_timeout: Duration,
}

impl Fixture {
    /// A fixture for the fake's defaults, with clusters `<cluster>` and `<cluster>-other`;
    /// providers override the cloud-specific fields.
    pub fn new(cluster: &str) -> Self {
        Fixture {
            cluster: ClusterId::new(cluster).expect("valid cluster ID"),
            other_cluster: ClusterId::new(format!("{cluster}-other")).expect("valid cluster ID"),
            zones: [crate::fake::ZONES[0].into(), crate::fake::ZONES[1].into()],
            subnets: [None, None],
            image: crate::fake::IMAGE.into(),
            instance_type: crate::fake::INSTANCE_TYPE.into(),
            security_groups: vec![],
            unknown_image: "berth-no-such-image".into(),
            unknown_instance_type: "berth.no-such-type".into(),
            unknown_zone: "berth-no-such-zone-1z".into(),
            missing_instance: ProviderId::Fake {
                zone: crate::fake::ZONES[0].into(),
                name: "berth-missing".into(),
            },
            consistency_timeout: Duration::from_secs(30),
        }
    }
}

/// The conformance suite, bound to one cloud.
pub struct Suite<'a, C: Cloud + ?Sized> {
    cloud: &'a C,
    fx: Fixture,
}

/// The Service the suite balances.
pub fn service() -> ServiceKey {
    ServiceKey::new("default", "web")
}

fn port(port: u16, node_port: u16) -> ServicePort {
    ServicePort {
        protocol: Protocol::Tcp,
        port,
        node_port,
    }
}

fn ids<'i>(instances: impl IntoIterator<Item = &'i ProviderId>) -> BTreeSet<String> {
    instances
        .into_iter()
        .map(|p| p.instance_id().to_owned())
        .collect()
}

fn assert_fatal(failure: &Failure, kind: FatalKind, context: &str) {
    assert_eq!(
        failure.fatal_kind(),
        Some(kind),
        "{context}: expected a fatal {kind} error, got {failure}"
    );
}

impl<'a, C: Cloud + ?Sized> Suite<'a, C> {
    /// Binds the suite to a cloud and its fixture.
    pub fn new(cloud: &'a C, fixture: Fixture) -> Self {
        Suite { cloud, fx: fixture }
    }

    /// The fixture.
    pub fn fixture(&self) -> &Fixture {
        &self.fx
    }

    /// The spec of test instance `name` in zone `zone_index` (0 or 1) of the fixture.
    pub fn instance_spec(&self, name: &str, zone_index: usize) -> InstanceSpec {
        InstanceSpec {
            name: name.into(),
            image: self.fx.image.clone(),
            instance_type: self.fx.instance_type.clone(),
            zone: self.fx.zones[zone_index].clone(),
            subnet: self.fx.subnets[zone_index].clone(),
            security_groups: self.fx.security_groups.clone(),
            user_data: format!("#!/bin/sh\necho {name}\n").into_bytes(),
            tags: [("berth-test".to_owned(), "conformance".to_owned())].into(),
        }
    }

    /// The spec of the suite's load balancer: ports 80 and 443 on NodePorts 30080 and 30443.
    pub fn load_balancer_spec(&self, nodes: BTreeSet<ProviderId>) -> LoadBalancerSpec {
        LoadBalancerSpec {
            service: service(),
            ports: vec![port(80, 30080), port(443, 30443)],
            nodes,
            health_check: HealthCheck::default(),
        }
    }

    /// Polls `check` until it returns `Ok`, panicking with its last message after the fixture's
    /// consistency timeout.
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let deadline = tokio::time::Instant::now() + self.fx.consistency_timeout;
        loop {
            match check().await {
                Ok(v) => return v,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    panic!(
                        "{what}: still failing after {:?}: {e}",
                        self.fx.consistency_timeout
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    async fn instance_names(&self, cluster: &ClusterId) -> Result<BTreeSet<String>, String> {
        let list = self
            .cloud
            .list_instances(cluster)
            .await
            .map_err(|e| e.to_string())?;
        Ok(list.into_iter().map(|i| i.name).collect())
    }

    async fn expect_instances(&self, cluster: &ClusterId, want: &[&str]) {
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        self.eventually(&format!("instances of {cluster} are {want:?}"), || async {
            let got = self.instance_names(cluster).await?;
            if got == want {
                Ok(())
            } else {
                Err(format!("got {got:?}"))
            }
        })
        .await
    }

    /// Asserts that nothing owned by the cluster remains.
    pub async fn expect_nothing_owned(&self) {
        self.eventually("nothing owned by the cluster remains", || async {
            let owned = self
                .cloud
                .owned_resources(&self.fx.cluster)
                .await
                .map_err(|e| e.to_string())?;
            if owned.is_empty() {
                Ok(())
            } else {
                Err(format!("still owned: {owned:?}"))
            }
        })
        .await
    }

    fn check_lb(
        &self,
        lb: &LoadBalancer,
        ports: &[ServicePort],
        targets: &BTreeSet<String>,
        context: &str,
    ) {
        assert_eq!(lb.service, service(), "{context}");
        assert!(!lb.ingress.is_empty(), "{context}: no ingress");
        let mut want: Vec<ServicePort> = ports.to_vec();
        want.sort();
        let got: Vec<ServicePort> = lb.listeners.iter().map(|l| l.port.clone()).collect();
        assert_eq!(got, want, "{context}: listeners");
        for l in &lb.listeners {
            assert_eq!(
                &l.targets, targets,
                "{context}: targets of port {}",
                l.port.port
            );
        }
    }

    /// Runs every check that needs a working cloud, then checks that nothing is left.
    pub async fn run_all(&self) {
        self.zones().await;
        self.bad_instance_input().await;
        self.bad_load_balancer_input().await;
        self.lifecycle().await;
        self.expect_nothing_owned().await;
    }

    /// The region has the fixture's zones, and no others claim another region.
    pub async fn zones(&self) {
        let zones = self
            .cloud
            .zones()
            .await
            .unwrap_or_else(|e| panic!("zones: {e}"));
        let names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
        for z in &self.fx.zones {
            assert!(
                names.contains(&z.as_str()),
                "zone {z} missing from {names:?}"
            );
        }
        assert!(!names.contains(&self.fx.unknown_zone.as_str()));
        assert!(
            zones.iter().all(|z| z.region == self.cloud.region()),
            "zones outside {}: {zones:?}",
            self.cloud.region()
        );
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "zones are sorted by name");
    }

    /// Bad instance input fails with a clear, non-retryable error and leaves nothing behind.
    pub async fn bad_instance_input(&self) {
        let cluster = &self.fx.cluster;
        type Edit = fn(&mut InstanceSpec, &Fixture);
        let cases: [(&str, Edit, Option<FatalKind>); 5] = [
            (
                "unknown image",
                |s, fx| s.image = fx.unknown_image.clone(),
                Some(FatalKind::UnknownImage),
            ),
            (
                "unknown instance type",
                |s, fx| s.instance_type = fx.unknown_instance_type.clone(),
                Some(FatalKind::UnknownInstanceType),
            ),
            (
                "unknown zone",
                |s, fx| {
                    s.zone = fx.unknown_zone.clone();
                    s.subnet = None;
                },
                Some(FatalKind::UnknownZone),
            ),
            ("invalid name", |s, _| s.name = "Not_A_Name".into(), None),
            (
                "reserved tag",
                |s, _| {
                    s.tags.insert(tags::TAG_CLUSTER.into(), "x".into());
                },
                None,
            ),
        ];
        for (case, edit, kind) in cases {
            let mut spec = self.instance_spec("bad-input", 0);
            edit(&mut spec, &self.fx);
            let err = self
                .cloud
                .create_instance(cluster, &spec)
                .await
                .expect_err(case);
            assert!(!err.is_retryable(), "{case}: {err} must not be retryable");
            match kind {
                Some(kind) => assert_fatal(&err.failure, kind, case),
                None => assert!(
                    matches!(err.failure, Failure::InvalidInput(_)),
                    "{case}: expected invalid input, got {err}"
                ),
            }
        }
        if self.fx.subnets[0].is_some() {
            // A subnet of one zone with the other zone: the cloud would reject it, or worse, place
            // the instance somewhere else.
            let mut spec = self.instance_spec("bad-input", 0);
            spec.subnet = self.fx.subnets[1].clone();
            let err = self
                .cloud
                .create_instance(cluster, &spec)
                .await
                .expect_err("subnet of another zone");
            assert_fatal(
                &err.failure,
                FatalKind::UnknownSubnet,
                "subnet of another zone",
            );
        }
        let names = self
            .instance_names(cluster)
            .await
            .unwrap_or_else(|e| panic!("list: {e}"));
        assert!(
            names.is_empty(),
            "failed creates left instances behind: {names:?}"
        );
        self.expect_nothing_owned().await;
    }

    /// Bad load balancer input fails with a clear, non-retryable error and leaves nothing behind.
    pub async fn bad_load_balancer_input(&self) {
        let cluster = &self.fx.cluster;
        let mut no_ports = self.load_balancer_spec(BTreeSet::new());
        no_ports.ports.clear();
        let err = self
            .cloud
            .ensure_load_balancer(cluster, &no_ports)
            .await
            .expect_err("no ports");
        assert!(
            matches!(err.failure, Failure::InvalidInput(_)),
            "no ports: {err}"
        );

        let missing = self.load_balancer_spec(BTreeSet::from([self.fx.missing_instance.clone()]));
        let err = self
            .cloud
            .ensure_load_balancer(cluster, &missing)
            .await
            .expect_err("missing target");
        assert_fatal(&err.failure, FatalKind::UnknownInstance, "missing target");

        let lb = self
            .cloud
            .get_load_balancer(cluster, &service())
            .await
            .unwrap_or_else(|e| panic!("get: {e}"));
        assert_eq!(lb, None, "a failed ensure left a load balancer behind");
        let err = self
            .cloud
            .update_targets(cluster, &service(), &BTreeSet::new())
            .await
            .expect_err("no load balancer");
        assert!(
            !err.is_retryable(),
            "update_targets without a load balancer: {err}"
        );
        self.expect_nothing_owned().await;
    }

    /// Instances across zones, a load balancer whose targets follow them, and deletion of all.
    pub async fn lifecycle(&self) {
        let cloud = self.cloud;
        let fx = &self.fx;
        let cluster = &fx.cluster;

        // Three instances across two zones.
        let mut nodes = Vec::new();
        for (name, zone) in [("node-1", 0), ("node-2", 1), ("node-3", 0)] {
            let spec = self.instance_spec(name, zone);
            let i = cloud
                .create_instance(cluster, &spec)
                .await
                .unwrap_or_else(|e| panic!("create {name}: {e}"));
            assert_eq!(i.name, name);
            assert_eq!(i.zone, fx.zones[zone], "{name}: zone");
            assert_eq!(i.instance_type, fx.instance_type, "{name}: type");
            assert_eq!(
                i.provider_id.scheme(),
                cloud.name(),
                "{name}: provider ID scheme"
            );
            assert_eq!(
                i.provider_id.zone(),
                fx.zones[zone],
                "{name}: provider ID zone"
            );
            assert_eq!(
                i.provider_id.to_string().parse::<ProviderId>().as_ref(),
                Ok(&i.provider_id)
            );
            assert!(!i.state.is_gone(), "{name}: {:?}", i.state);
            assert!(
                tags::is_owned(&i.tags, cluster),
                "{name}: not tagged as owned: {:?}",
                i.tags
            );
            assert_eq!(
                i.tags.get("berth-test").map(String::as_str),
                Some("conformance"),
                "{name}: user tag"
            );
            nodes.push(i);
        }
        let again = cloud
            .create_instance(cluster, &self.instance_spec("node-1", 0))
            .await
            .expect("create node-1 again");
        assert_eq!(
            again.provider_id, nodes[0].provider_id,
            "a repeated create made a second instance"
        );
        self.expect_instances(cluster, &["node-1", "node-2", "node-3"])
            .await;

        // Describe and node initialisation.
        for n in &nodes {
            let d = cloud
                .describe_instance(cluster, &n.provider_id)
                .await
                .expect("describe")
                .expect("instance exists");
            let init = node_init(&d, cloud.region());
            assert_eq!(init.provider_id, n.provider_id);
            assert_eq!(init.labels[LABEL_ZONE], n.zone);
            assert_eq!(init.labels[LABEL_REGION], cloud.region());
            assert_eq!(init.labels[LABEL_INSTANCE_TYPE], fx.instance_type);
            assert!(
                init.addresses
                    .iter()
                    .any(|a| a.kind == AddressKind::InternalIp),
                "{}: no InternalIP",
                n.name
            );
        }
        let missing = cloud
            .describe_instance(cluster, &fx.missing_instance)
            .await
            .expect("describe missing");
        assert_eq!(missing, None);

        // Another cluster sees none of them and cannot terminate them.
        let other = &fx.other_cluster;
        assert!(
            self.instance_names(other)
                .await
                .expect("list other")
                .is_empty()
        );
        assert_eq!(
            cloud
                .describe_instance(other, &nodes[0].provider_id)
                .await
                .expect("describe as other"),
            None
        );
        let err = cloud
            .terminate_instance(other, &nodes[0].provider_id)
            .await
            .expect_err("terminate as other");
        assert_fatal(
            &err.failure,
            FatalKind::Conflict,
            "terminate another cluster's instance",
        );
        assert!(
            cloud
                .describe_instance(cluster, &nodes[0].provider_id)
                .await
                .expect("describe")
                .is_some()
        );

        // A load balancer with two ports over all three.
        let all: BTreeSet<ProviderId> = nodes.iter().map(|n| n.provider_id.clone()).collect();
        let spec = self.load_balancer_spec(all.clone());
        let lb = cloud
            .ensure_load_balancer(cluster, &spec)
            .await
            .unwrap_or_else(|e| panic!("ensure: {e}"));
        self.check_lb(&lb, &spec.ports, &ids(&all), "first ensure");
        let owned_before = cloud.owned_resources(cluster).await.expect("owned");
        let lb2 = cloud
            .ensure_load_balancer(cluster, &spec)
            .await
            .unwrap_or_else(|e| panic!("ensure again: {e}"));
        assert_eq!(lb2.name, lb.name);
        assert_eq!(
            lb2.ingress, lb.ingress,
            "a repeated ensure changed the address"
        );
        self.check_lb(&lb2, &spec.ports, &ids(&all), "second ensure");
        let owned_after = cloud.owned_resources(cluster).await.expect("owned");
        assert_eq!(
            owned_after, owned_before,
            "a repeated ensure created resources"
        );
        let got = cloud
            .get_load_balancer(cluster, &service())
            .await
            .expect("get")
            .expect("exists");
        self.check_lb(&got, &spec.ports, &ids(&all), "get");
        assert_eq!(
            cloud
                .get_load_balancer(other, &service())
                .await
                .expect("get as other"),
            None
        );

        // Ports change: 443 goes, 8080 comes.
        let mut changed = spec.clone();
        changed.ports = vec![port(80, 30080), port(8080, 30880)];
        let lb = cloud
            .ensure_load_balancer(cluster, &changed)
            .await
            .unwrap_or_else(|e| panic!("ensure new ports: {e}"));
        self.check_lb(&lb, &changed.ports, &ids(&all), "changed ports");

        // Terminate one node: the instance goes, and the targets follow.
        cloud
            .terminate_instance(cluster, &nodes[1].provider_id)
            .await
            .unwrap_or_else(|e| panic!("terminate: {e}"));
        cloud
            .terminate_instance(cluster, &nodes[1].provider_id)
            .await
            .expect("terminate is idempotent");
        self.expect_instances(cluster, &["node-1", "node-3"]).await;
        let d = cloud
            .describe_instance(cluster, &nodes[1].provider_id)
            .await
            .expect("describe terminated");
        assert_eq!(d, None, "a terminated instance is not described");
        let remaining: BTreeSet<ProviderId> =
            [nodes[0].provider_id.clone(), nodes[2].provider_id.clone()].into();
        let lb = cloud
            .update_targets(cluster, &service(), &remaining)
            .await
            .unwrap_or_else(|e| panic!("update: {e}"));
        self.check_lb(&lb, &changed.ports, &ids(&remaining), "after terminate");

        // A new node joins.
        let n4 = cloud
            .create_instance(cluster, &self.instance_spec("node-4", 1))
            .await
            .expect("create node-4");
        let mut grown = remaining.clone();
        grown.insert(n4.provider_id.clone());
        let lb = cloud
            .update_targets(cluster, &service(), &grown)
            .await
            .unwrap_or_else(|e| panic!("update: {e}"));
        self.check_lb(&lb, &changed.ports, &ids(&grown), "after join");
        let got = cloud
            .get_load_balancer(cluster, &service())
            .await
            .expect("get")
            .expect("exists");
        self.check_lb(&got, &changed.ports, &ids(&grown), "get after join");

        // Delete everything, twice.
        cloud
            .delete_load_balancer(cluster, &service())
            .await
            .unwrap_or_else(|e| panic!("delete: {e}"));
        cloud
            .delete_load_balancer(cluster, &service())
            .await
            .expect("delete is idempotent");
        assert_eq!(
            cloud
                .get_load_balancer(cluster, &service())
                .await
                .expect("get"),
            None
        );
        for id in &grown {
            cloud
                .terminate_instance(cluster, id)
                .await
                .unwrap_or_else(|e| panic!("terminate {id}: {e}"));
        }
        self.expect_instances(cluster, &[]).await;
    }

    /// Every operation against a cloud that cannot be reached fails with a retryable error. Call
    /// this on a provider pointed at an endpoint that is down.
    pub async fn cloud_down(&self) {
        let cloud = self.cloud;
        let cluster = &self.fx.cluster;
        fn check<T: Debug, O: std::fmt::Display + Debug>(
            r: Result<T, crate::CloudError<O>>,
            what: &str,
        ) {
            let e = r.expect_err(what);
            assert!(e.is_retryable(), "{what}: {e} must be retryable");
            assert!(
                matches!(
                    e.failure.retry_kind(),
                    Some(RetryKind::Unavailable | RetryKind::Timeout)
                ),
                "{what}: {e} must say the cloud is unavailable"
            );
        }
        check(cloud.zones().await, "zones");
        check(cloud.list_instances(cluster).await, "list");
        check(
            cloud
                .create_instance(cluster, &self.instance_spec("down-1", 0))
                .await,
            "create",
        );
        check(
            cloud
                .describe_instance(cluster, &self.fx.missing_instance)
                .await,
            "describe",
        );
        check(
            cloud
                .terminate_instance(cluster, &self.fx.missing_instance)
                .await,
            "terminate",
        );
        check(
            cloud
                .ensure_load_balancer(cluster, &self.load_balancer_spec(BTreeSet::new()))
                .await,
            "ensure",
        );
        check(cloud.get_load_balancer(cluster, &service()).await, "get");
        check(
            cloud.delete_load_balancer(cluster, &service()).await,
            "delete",
        );
        check(cloud.owned_resources(cluster).await, "owned resources");
    }
}
