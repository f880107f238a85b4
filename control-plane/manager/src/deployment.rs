//! The Deployment loop: rolls ReplicaSets toward each Deployment's template.

use std::sync::Arc;
use std::time::SystemTime;

use runtime::events::EventType;
use runtime::informer::Change;
use runtime::resource::{self, DEPLOYMENTS, PODS, REPLICA_SETS};
use runtime::{Action, Key};
use serde_json::Value;

use crate::replicaset::{ORPHANS, controller_of};
use crate::{Cluster, Error, Shared, client};

const COMPONENT: &str = "deployment-controller";

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(DEPLOYMENTS, move |change| {
        let obj = change.object();
        s.queues
            .deployments
            .add(c.key(resource::namespace(obj), resource::name(obj)));
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(REPLICA_SETS, move |change| {
        crate::owners::route_owned(
            &c,
            change,
            "Deployment",
            &DEPLOYMENTS,
            None,
            &s.queues.deployments,
            None,
        );
    });
    // Recreate waits for the old pods to be gone: their deletion wakes the Deployment.
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(PODS, move |change| {
        let Change::Deleted(pod) = change else {
            return;
        };
        let ns = resource::namespace(pod);
        if let Some(rs) = controller_of(pod, "ReplicaSet")
            && let Some(rs) = c.cache(&REPLICA_SETS).get(ns, rs)
            && let Some(d) = controller_of(&rs, "Deployment")
        {
            s.queues.deployments.add(c.key(ns, d));
        }
    });
}

fn replicas(rs: &Value) -> i64 {
    rs.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(deploy) = cluster.cache(&DEPLOYMENTS).get(&key.namespace, &key.name) else {
        return Ok(Action::await_change());
    };
    if resource::is_deleting(&deploy) {
        // The garbage collector takes its ReplicaSets; upstream only syncs status here.
        return Ok(Action::await_change());
    }
    let rs_cache = cluster.cache(&REPLICA_SETS);
    let pod_cache = cluster.cache(&PODS);
    let mut owned: Vec<Value> = rs_cache
        .controlled_by(resource::uid(&deploy))
        .iter()
        .map(|r| (**r).clone())
        .collect();
    // Only Recreate reads pods (it waits for the old ones to be gone); a rolling update of
    // thousands of pods must not copy them all on every sync.
    let pods: Vec<Value> = if resource::str_at(&deploy, "/spec/strategy/type") == "Recreate" {
        owned
            .iter()
            .flat_map(|rs| pod_cache.controlled_by(resource::uid(rs)))
            .map(|p| (*p).clone())
            .collect()
    } else {
        Vec::new()
    };
    owned.extend(
        rs_cache
            .by_index(ORPHANS, &key.namespace)
            .iter()
            .map(|r| (**r).clone()),
    );
    let plan = controllers::deployment::reconcile(&deploy, &owned, &pods, SystemTime::now())?;
    let client = &cluster.client;
    let events = cluster.recorder(COMPONENT);
    for rs in plan.adopt.iter().chain(&plan.release) {
        client::replace(client, &REPLICA_SETS, rs).await?;
    }
    if let Some(rs) = &plan.create {
        match client::create(client, &REPLICA_SETS, rs).await {
            Ok(created) => events.record(
                &deploy,
                EventType::Normal,
                "ScalingReplicaSet",
                &format!(
                    "Scaled up replica set {} from 0 to {}",
                    resource::name(&created),
                    replicas(&created)
                ),
            ),
            // A ReplicaSet of that name exists; the next sync sees it (or a hash collision).
            Err(e) if client::is_conflict(&e) => return Ok(Action::requeue(Default::default())),
            Err(e) => return Err(e.into()),
        }
    }
    for rs in &plan.update {
        let before = rs_cache
            .get(resource::namespace(rs), resource::name(rs))
            .map(|r| replicas(&r));
        client::replace(client, &REPLICA_SETS, rs).await?;
        if let Some(before) = before
            && before != replicas(rs)
        {
            let direction = if replicas(rs) > before { "up" } else { "down" };
            events.record(
                &deploy,
                EventType::Normal,
                "ScalingReplicaSet",
                &format!(
                    "Scaled {direction} replica set {} from {before} to {}",
                    resource::name(rs),
                    replicas(rs)
                ),
            );
        }
    }
    for name in &plan.delete {
        let uid = rs_cache
            .get(&key.namespace, name)
            .map(|r| resource::uid(&r).to_string());
        client::delete(
            client,
            &REPLICA_SETS,
            &key.namespace,
            name,
            uid.as_deref(),
            None,
        )
        .await?;
    }
    if let Some(d) = &plan.deployment {
        client::replace_status(client, &DEPLOYMENTS, d).await?;
    }
    Ok(plan
        .requeue_after
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}
