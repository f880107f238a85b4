//! The resource quota loop: keeps each ResourceQuota's `status.hard` and `status.used` current.
//! Pod changes requeue the quotas of their namespace; every quota is also resynced every five
//! minutes (upstream's `--resource-quota-sync-period`), which is when object counts other than
//! pods catch up. Those counts are read with a live `list` of the kind in the quota's namespace,
//! only for the kinds a quota names.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use runtime::resource::{self, PODS, RESOURCE_QUOTAS, Resource};
use runtime::{Action, Key};
use serde_json::Value;

use crate::{Cluster, Error, Shared, client};

/// Upstream's full resync period.
const RESYNC: Duration = Duration::from_secs(5 * 60);

/// The kinds a `count/<resource>.<group>` quota may name that Berth serves.
const COUNTABLE: &[Resource] = &[
    resource::PODS,
    resource::SERVICES,
    resource::CONFIG_MAPS,
    resource::SECRETS,
    resource::SERVICE_ACCOUNTS,
    resource::PERSISTENT_VOLUME_CLAIMS,
    resource::REPLICATION_CONTROLLERS,
    resource::RESOURCE_QUOTAS,
    resource::LIMIT_RANGES,
    resource::ENDPOINTS,
    resource::DEPLOYMENTS,
    resource::REPLICA_SETS,
    resource::STATEFUL_SETS,
    resource::DAEMON_SETS,
    resource::CONTROLLER_REVISIONS,
    resource::JOBS,
    resource::CRON_JOBS,
    resource::LEASES,
    resource::ENDPOINT_SLICES,
    resource::INGRESSES,
    resource::NETWORK_POLICIES,
    resource::POD_DISRUPTION_BUDGETS,
    resource::HORIZONTAL_POD_AUTOSCALERS,
    resource::ROLES,
    resource::ROLE_BINDINGS,
];

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(RESOURCE_QUOTAS, move |change| {
        let obj = change.object();
        s.queues
            .resourcequotas
            .add(c.key(resource::namespace(obj), resource::name(obj)));
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(PODS, move |change| {
        let ns = resource::namespace(change.object());
        for q in c.cache(&RESOURCE_QUOTAS).in_namespace(ns) {
            s.queues.resourcequotas.add(c.key(ns, resource::name(&q)));
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(quota) = cluster
        .cache(&RESOURCE_QUOTAS)
        .get(&key.namespace, &key.name)
    else {
        return Ok(Action::await_change());
    };
    let hard: Vec<String> = quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut listed: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for name in &hard {
        let Some(source) = controllers::resourcequota::count_source(name) else {
            continue;
        };
        let Some(r) = COUNTABLE
            .iter()
            .find(|r| r.group == source.0 && r.plural == source.1)
        else {
            continue;
        };
        if !listed.contains_key(&source) {
            let api = r.api(&cluster.client, Some(&key.namespace));
            let list = api.list(&ListParams::default()).await?;
            listed.insert(
                source.clone(),
                list.items.into_iter().map(resource::to_value).collect(),
            );
        }
        let n = controllers::resourcequota::count(name, &listed[&source]);
        counts.insert(name.clone(), n);
    }
    let pods: Vec<Value> = cluster
        .cache(&PODS)
        .in_namespace(&key.namespace)
        .iter()
        .map(|o| (**o).clone())
        .collect();
    let Some(status) = controllers::resourcequota::status(&quota, &pods, &counts) else {
        return Ok(Action::requeue(RESYNC));
    };
    let mut updated = (*quota).clone();
    updated["status"] = status;
    match client::replace_status(&cluster.client, &RESOURCE_QUOTAS, &updated).await {
        Ok(_) => {}
        // A stale cache: the watch brings the newer quota, which queues it again.
        Err(e) if client::is_conflict(&e) || client::is_not_found(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::requeue(RESYNC))
}
