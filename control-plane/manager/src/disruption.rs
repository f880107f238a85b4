//! The disruption loop: keeps each PodDisruptionBudget's status (healthy, desired and expected
//! pods, disruptions allowed) current as its pods and their controllers change.

use std::sync::Arc;
use std::time::SystemTime;

use runtime::events::EventType;
use runtime::resource::{
    self, DEPLOYMENTS, POD_DISRUPTION_BUDGETS, PODS, REPLICA_SETS, REPLICATION_CONTROLLERS,
    STATEFUL_SETS,
};
use runtime::{Action, Key};
use serde_json::Value;

use crate::{Cluster, Error, Shared, client};

const COMPONENT: &str = "controllermanager";

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(POD_DISRUPTION_BUDGETS, move |change| {
        let obj = change.object();
        s.queues
            .disruption
            .add(c.key(resource::namespace(obj), resource::name(obj)));
    });
    // A pod or a controller's scale can change any PDB of its namespace; there are few.
    for r in [
        PODS,
        DEPLOYMENTS,
        REPLICA_SETS,
        STATEFUL_SETS,
        REPLICATION_CONTROLLERS,
    ] {
        let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
        cluster.on_change(r, move |change| {
            let ns = resource::namespace(change.object());
            for pdb in c.cache(&POD_DISRUPTION_BUDGETS).in_namespace(ns) {
                s.queues.disruption.add(c.key(ns, resource::name(&pdb)));
            }
        });
    }
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(pdb) = cluster
        .cache(&POD_DISRUPTION_BUDGETS)
        .get(&key.namespace, &key.name)
    else {
        return Ok(Action::await_change());
    };
    let in_ns = |r| -> Vec<Value> {
        cluster
            .cache(r)
            .in_namespace(&key.namespace)
            .iter()
            .map(|o| (**o).clone())
            .collect()
    };
    let pods = in_ns(&PODS);
    let mut workloads = Vec::new();
    for r in [
        &DEPLOYMENTS,
        &REPLICA_SETS,
        &STATEFUL_SETS,
        &REPLICATION_CONTROLLERS,
    ] {
        workloads.extend(in_ns(r));
    }
    let plan = controllers::disruption::reconcile(&pdb, &pods, &workloads, SystemTime::now());
    let requeue = plan.requeue_after.map(Action::requeue);
    let Some(status) = plan.status else {
        return Ok(requeue.unwrap_or_else(Action::await_change));
    };
    // Events only with a status change, so an idle PDB does not repeat them.
    let events = cluster.recorder(COMPONENT);
    for e in &plan.events {
        let kind = match e.type_ {
            controllers::event::EventType::Normal => EventType::Normal,
            controllers::event::EventType::Warning => EventType::Warning,
        };
        events.record(&pdb, kind, &e.reason, &e.message);
    }
    let mut updated = (*pdb).clone();
    updated["status"] = status;
    match client::replace_status(&cluster.client, &POD_DISRUPTION_BUDGETS, &updated).await {
        Ok(_) => {}
        // A stale cache: the watch brings the newer PDB, which queues it again.
        Err(e) if client::is_conflict(&e) || client::is_not_found(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(requeue.unwrap_or_else(Action::await_change))
}
