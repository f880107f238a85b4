//! Compute Engine instances.
//!
//! An instance's Compute name is the spec's name, so Compute itself refuses a second instance of
//! that name in the zone (`409 alreadyExists`); before inserting, the provider also looks the
//! cluster's instance up by label in every zone, so a create repeated with another zone returns the
//! instance that already exists instead of making a second one.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use cloud::plan::{Found, select_owned};
use cloud::retry::{Backoff, retry};
use cloud::{
    AddressKind, ClusterId, Failure, FatalError, FatalKind, Instance, InstanceError, InstanceOp,
    InstanceSpec, InstanceState, Instances, NodeAddress, ProviderId, RetryKind, RetryableError,
    check_dns_label, tags,
};
use google_cloud_compute_v1::model::{
    self as gm, AccessConfig, AttachedDisk, AttachedDiskInitializeParams, Metadata,
    NetworkInterface, Tags, access_config, metadata,
};
use google_cloud_gax::paginator::Paginator as _;

use crate::error::{failure, is_already_exists, is_not_found};
use crate::operations::Scope;
use crate::{GcpCloud, labels, urls};

/// The normalised state of a Compute instance status. `TERMINATED` is Compute's word for a
/// stopped instance, which still exists; a deleted instance is simply gone (404).
pub(crate) fn state(status: Option<&str>) -> InstanceState {
    match status {
        Some("RUNNING") => InstanceState::Running,
        Some("STOPPING" | "SUSPENDING" | "PENDING_STOP") => InstanceState::Stopping,
        Some("STOPPED" | "TERMINATED" | "SUSPENDED") => InstanceState::Stopped,
        Some("DEPROVISIONING") => InstanceState::ShuttingDown,
        // PROVISIONING, STAGING, PENDING, REPAIRING and anything new.
        _ => InstanceState::Pending,
    }
}

fn status_name(i: &gm::Instance) -> Option<&str> {
    i.status.as_ref().and_then(|s| s.name())
}

/// The Berth tags of an instance.
pub(crate) fn instance_tags(i: &gm::Instance) -> BTreeMap<String, String> {
    labels::from_labels(&i.labels)
}

/// Whether a Compute instance is a live instance of `cluster`.
pub(crate) fn is_live_owned(i: &gm::Instance, cluster: &ClusterId) -> bool {
    tags::is_owned(&instance_tags(i), cluster) && !state(status_name(i)).is_gone()
}

/// The metadata items of user-data: the bytes as they are when they are UTF-8, else base64 with
/// `user-data-encoding: base64`, which cloud-init's GCE data source decodes.
pub(crate) fn user_data_items(user_data: &[u8]) -> Vec<(&'static str, String)> {
    match std::str::from_utf8(user_data) {
        Ok(text) => vec![("user-data", text.to_owned())],
        Err(_) => vec![
            ("user-data", urls::base64(user_data)),
            ("user-data-encoding", "base64".to_owned()),
        ],
    }
}

fn convert(project: &str, i: &gm::Instance) -> Option<Instance> {
    let name = i.name.clone()?;
    let zone = urls::last_segment(i.zone.as_deref()?).to_owned();
    let project = i
        .self_link
        .as_deref()
        .and_then(urls::parse_instance_url)
        .map_or(project, |(p, _, _)| p)
        .to_owned();
    let tags = instance_tags(i);
    let mut addresses = Vec::new();
    for nic in &i.network_interfaces {
        if let Some(ip) = nic.network_ip.as_deref().filter(|a| !a.is_empty()) {
            addresses.push(NodeAddress {
                kind: AddressKind::InternalIp,
                address: ip.to_owned(),
            });
        }
        for ac in &nic.access_configs {
            if let Some(ip) = ac.nat_ip.as_deref().filter(|a| !a.is_empty()) {
                addresses.push(NodeAddress {
                    kind: AddressKind::ExternalIp,
                    address: ip.to_owned(),
                });
            }
        }
    }
    addresses.push(NodeAddress {
        kind: AddressKind::Hostname,
        address: name.clone(),
    });
    Some(Instance {
        provider_id: ProviderId::Gce {
            project,
            zone: zone.clone(),
            name: name.clone(),
        },
        name: tags.get(tags::TAG_INSTANCE).cloned().unwrap_or(name),
        zone,
        instance_type: i
            .machine_type
            .as_deref()
            .map(urls::last_segment)
            .unwrap_or_default()
            .to_owned(),
        state: state(status_name(i)),
        addresses,
        tags,
    })
}

/// Project, zone and name of a `gce://` provider ID of this project.
pub(crate) fn gce_id<'a>(project: &str, id: &'a ProviderId) -> Result<(&'a str, &'a str), String> {
    match id {
        ProviderId::Gce {
            project: p,
            zone,
            name,
        } if p == project => Ok((zone, name)),
        ProviderId::Gce { project: p, .. } => Err(format!(
            "{id} is in project {p}, not in the provider's project {project}"
        )),
        other => Err(format!("{other} is not a gce:// provider ID")),
    }
}

impl GcpCloud {
    /// Every instance whose labels include all of `tags` (as labels), across zones, from every
    /// page of `instances.aggregatedList`.
    pub(crate) async fn find_instances(
        &self,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<gm::Instance>, Failure> {
        let want = labels::to_labels(tags).map_err(Failure::InvalidInput)?;
        let mut pages = self
            .instances
            .aggregated_list()
            .set_project(&self.project)
            .set_filter(labels::filter(&want))
            .by_page();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("compute.instances.aggregatedList", e))?;
            for (_, scoped) in page.items {
                // The filter runs on the server; checking again keeps a lax filter from ever
                // handing one cluster another's instance.
                out.extend(scoped.instances.into_iter().filter(|i| {
                    want.iter()
                        .all(|(k, v)| i.labels.get(k).is_some_and(|got| got == v))
                }));
            }
        }
        Ok(out)
    }

    /// An instance by zone and name; `None` on 404.
    pub(crate) async fn get_instance(
        &self,
        zone: &str,
        name: &str,
    ) -> Result<Option<gm::Instance>, Failure> {
        match self
            .instances
            .get()
            .set_project(&self.project)
            .set_zone(zone)
            .set_instance(name)
            .send()
            .await
        {
            Ok(i) => Ok(Some(i)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(failure("compute.instances.get", e)),
        }
    }

    async fn delete_instance(&self, zone: &str, name: &str) -> Result<(), Failure> {
        let call = "compute.instances.delete";
        match self
            .instances
            .delete()
            .set_project(&self.project)
            .set_zone(zone)
            .set_instance(name)
            .send()
            .await
        {
            Ok(op) => match self.wait(call, Scope::Zone(zone), op).await {
                Err(f) if f.fatal_kind() == Some(FatalKind::UnknownInstance) => Ok(()),
                other => other,
            },
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(failure(call, e)),
        }
    }

    /// The cluster's live instance of this name, in any zone. Duplicates (only possible across
    /// zones, after a crash between creates with different zones) are deleted, the oldest kept.
    async fn find_instance(
        &self,
        cluster: &ClusterId,
        name: &str,
    ) -> Result<Option<gm::Instance>, Failure> {
        let found: Vec<gm::Instance> = self
            .find_instances(&tags::instance_tags(cluster, name, &BTreeMap::new()))
            .await?
            .into_iter()
            .filter(|i| is_live_owned(i, cluster))
            .collect();
        let keys: Vec<(String, (String, String))> = found
            .iter()
            .filter_map(|i| {
                let zone = urls::last_segment(i.zone.as_deref()?).to_owned();
                Some((
                    i.creation_timestamp.clone().unwrap_or_default(),
                    (zone, i.name.clone()?),
                ))
            })
            .collect();
        let pick = |(zone, name): &(String, String)| {
            found
                .iter()
                .find(|i| {
                    i.name.as_deref() == Some(name)
                        && i.zone.as_deref().map(urls::last_segment) == Some(zone)
                })
                .cloned()
        };
        match select_owned(keys) {
            Found::Missing => Ok(None),
            Found::One(id) => Ok(pick(&id)),
            Found::Duplicates { keep, extra } => {
                tracing::warn!(cluster = %cluster, name, ?extra, "deleting duplicate instances");
                for (zone, name) in &extra {
                    self.delete_instance(zone, name).await?;
                }
                Ok(pick(&keep))
            }
        }
    }

    async fn check_zone(&self, zone: &str) -> Result<(), Failure> {
        let zones = self.region_zones().await?;
        if zones.iter().any(|z| z.name == zone) {
            Ok(())
        } else {
            Err(FatalError::new(
                "compute.zones.list",
                FatalKind::UnknownZone,
                format!("zone {zone:?} is not in region {}", self.region),
            )
            .into())
        }
    }

    fn instance_body(
        &self,
        cluster: &ClusterId,
        spec: &InstanceSpec,
        labels: BTreeMap<String, String>,
    ) -> gm::Instance {
        let mut nic = NetworkInterface::new();
        nic = match &spec.subnet {
            Some(subnet) => nic.set_subnetwork(urls::subnetwork(&self.region, subnet)),
            None => nic.set_network(&self.network),
        };
        if self.external_ips {
            nic = nic.set_access_configs([AccessConfig::new()
                .set_name("External NAT")
                .set_type(access_config::Type::OneToOneNat)]);
        }
        let items = user_data_items(&spec.user_data)
            .into_iter()
            .map(|(k, v)| metadata::Items::new().set_key(k).set_value(v));
        gm::Instance::new()
            .set_name(&spec.name)
            .set_description(format!("Berth node of cluster {cluster}"))
            .set_machine_type(urls::machine_type(&spec.zone, &spec.instance_type))
            .set_disks([AttachedDisk::new()
                .set_boot(true)
                .set_auto_delete(true)
                .set_initialize_params(
                    AttachedDiskInitializeParams::new()
                        .set_source_image(urls::source_image(&spec.image)),
                )])
            .set_network_interfaces([nic])
            .set_metadata(Metadata::new().set_items(items))
            .set_tags(Tags::new().set_items(spec.security_groups.clone()))
            .set_labels(labels.into_iter().collect::<HashMap<_, _>>())
    }

    /// The instance just created (or found after `409`), once `get` sees it.
    async fn read_back(
        &self,
        cluster: &ClusterId,
        zone: &str,
        name: &str,
    ) -> Result<Instance, Failure> {
        retry(
            Backoff::CONSISTENCY,
            |f: &Failure| f.retry_kind() == Some(RetryKind::NotYetConsistent),
            || async {
                match self.get_instance(zone, name).await? {
                    Some(i) if tags::is_owned(&instance_tags(&i), cluster) => {
                        convert(&self.project, &i).ok_or_else(|| {
                            FatalError::new(
                                "compute.instances.get",
                                FatalKind::Rejected,
                                "the instance has no name or zone",
                            )
                            .into()
                        })
                    }
                    Some(_) => Err(FatalError::new(
                        "compute.instances.get",
                        FatalKind::Conflict,
                        format!(
                            "instance {zone}/{name} exists but is not owned by cluster {cluster}"
                        ),
                    )
                    .into()),
                    None => Err(RetryableError::new(
                        "compute.instances.get",
                        RetryKind::NotYetConsistent,
                        format!("instance {zone}/{name} is not visible yet"),
                    )
                    .into()),
                }
            },
        )
        .await
    }
}

#[async_trait]
impl Instances for GcpCloud {
    async fn create_instance(
        &self,
        cluster: &ClusterId,
        spec: &InstanceSpec,
    ) -> Result<Instance, InstanceError> {
        let err = |f: Failure| InstanceError::new(InstanceOp::Create, &spec.name, f);
        let invalid = |e: String| InstanceError::invalid(InstanceOp::Create, &spec.name, e);
        spec.validate().map_err(invalid)?;
        let labels = labels::to_labels(&tags::instance_tags(cluster, &spec.name, &spec.tags))
            .map_err(invalid)?;
        for tag in &spec.security_groups {
            check_dns_label("network tag", tag, 63).map_err(invalid)?;
        }
        self.check_zone(&spec.zone).await.map_err(err)?;
        if let Some(existing) = self.find_instance(cluster, &spec.name).await.map_err(err)?
            && let Some(i) = convert(&self.project, &existing)
        {
            return Ok(i);
        }
        let call = "compute.instances.insert";
        let inserted = self
            .instances
            .insert()
            .set_project(&self.project)
            .set_zone(&spec.zone)
            .set_body(self.instance_body(cluster, spec, labels))
            .send()
            .await;
        match inserted {
            Ok(op) => self
                .wait(call, Scope::Zone(&spec.zone), op)
                .await
                .map_err(err)?,
            // An earlier attempt's insert went through (or another cluster holds the name, which
            // the read-back reports as a conflict).
            Err(e) if is_already_exists(&e) => {}
            Err(e) => return Err(err(failure(call, e))),
        }
        self.read_back(cluster, &spec.zone, &spec.name)
            .await
            .map_err(err)
    }

    async fn describe_instance(
        &self,
        cluster: &ClusterId,
        id: &ProviderId,
    ) -> Result<Option<Instance>, InstanceError> {
        let (zone, name) = gce_id(&self.project, id)
            .map_err(|e| InstanceError::invalid(InstanceOp::Describe, id.to_string(), e))?;
        let found = self
            .get_instance(zone, name)
            .await
            .map_err(|f| InstanceError::new(InstanceOp::Describe, id.to_string(), f))?;
        Ok(found
            .filter(|i| is_live_owned(i, cluster))
            .and_then(|i| convert(&self.project, &i)))
    }

    async fn list_instances(&self, cluster: &ClusterId) -> Result<Vec<Instance>, InstanceError> {
        let found = self
            .find_instances(&tags::owner_tags(cluster))
            .await
            .map_err(|f| InstanceError::new(InstanceOp::List, cluster.as_str(), f))?;
        let mut list: Vec<Instance> = found
            .iter()
            .filter(|i| is_live_owned(i, cluster))
            .filter_map(|i| convert(&self.project, i))
            .filter(|i| urls::zone_region(&i.zone) == self.region)
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
        let (zone, name) = gce_id(&self.project, id)
            .map_err(|e| InstanceError::invalid(InstanceOp::Terminate, id.to_string(), e))?;
        let Some(instance) = self.get_instance(zone, name).await.map_err(err)? else {
            return Ok(());
        };
        if !tags::is_owned(&instance_tags(&instance), cluster) {
            return Err(err(FatalError::new(
                "compute.instances.get",
                FatalKind::Conflict,
                format!("{id} is not owned by cluster {cluster}"),
            )
            .into()));
        }
        self.delete_instance(zone, name).await.map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let cases = [
            (Some("PROVISIONING"), InstanceState::Pending),
            (Some("STAGING"), InstanceState::Pending),
            (Some("RUNNING"), InstanceState::Running),
            (Some("STOPPING"), InstanceState::Stopping),
            (Some("TERMINATED"), InstanceState::Stopped),
            (Some("SUSPENDED"), InstanceState::Stopped),
            (Some("DEPROVISIONING"), InstanceState::ShuttingDown),
            (Some("SOMETHING_NEW"), InstanceState::Pending),
            (None, InstanceState::Pending),
        ];
        for (status, want) in cases {
            assert_eq!(state(status), want, "{status:?}");
        }
    }

    #[test]
    fn user_data_is_text_or_base64() {
        assert_eq!(
            user_data_items(b"#cloud-config\n"),
            vec![("user-data", "#cloud-config\n".to_owned())]
        );
        assert_eq!(
            user_data_items(&[0x1f, 0x8b, 0x08]),
            vec![
                ("user-data", "H4sI".to_owned()),
                ("user-data-encoding", "base64".to_owned())
            ]
        );
    }

    #[test]
    fn provider_ids_must_be_gce_ids_of_the_project() {
        let ok: ProviderId = "gce://p/us-central1-a/n".parse().unwrap();
        assert_eq!(gce_id("p", &ok), Ok(("us-central1-a", "n")));
        let other: ProviderId = "gce://q/us-central1-a/n".parse().unwrap();
        assert!(gce_id("p", &other).unwrap_err().contains("project q"));
        let aws: ProviderId = "aws:///us-east-1a/i-1".parse().unwrap();
        assert!(gce_id("p", &aws).unwrap_err().contains("not a gce://"));
    }

    #[test]
    fn converts_a_compute_instance() {
        let i = gm::Instance::new()
            .set_name("node-1")
            .set_zone(format!("{}projects/p/zones/us-central1-b", urls::BASE))
            .set_self_link(urls::instance_url("p", "us-central1-b", "node-1"))
            .set_machine_type(format!(
                "{}projects/p/zones/us-central1-b/machineTypes/e2-small",
                urls::BASE
            ))
            .set_status(gm::instance::Status::Running)
            .set_network_interfaces([NetworkInterface::new()
                .set_network_ip("10.128.0.5")
                .set_access_configs([AccessConfig::new().set_nat_ip("203.0.113.5")])])
            .set_labels([("berth-dev-instance".to_owned(), "node-1".to_owned())]);
        let c = convert("p", &i).unwrap();
        assert_eq!(c.provider_id.to_string(), "gce://p/us-central1-b/node-1");
        assert_eq!(c.instance_type, "e2-small");
        assert_eq!(c.state, InstanceState::Running);
        assert_eq!(
            c.tags.get(tags::TAG_INSTANCE).map(String::as_str),
            Some("node-1")
        );
        let kinds: Vec<AddressKind> = c.addresses.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            [
                AddressKind::InternalIp,
                AddressKind::ExternalIp,
                AddressKind::Hostname
            ]
        );
    }
}
