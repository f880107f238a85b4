//! The ReplicaSet loop: keeps each ReplicaSet's pods at `spec.replicas`.

use std::sync::Arc;
use std::time::SystemTime;

use futures::future::join_all;
use runtime::events::EventType;
use runtime::resource::{self, PODS, REPLICA_SETS};
use runtime::{Action, Key};
use serde_json::Value;

use crate::{Cluster, Error, Shared, client};

const COMPONENT: &str = "replicaset-controller";

/// How long a pod change waits before it syncs its ReplicaSet. A sync reads every pod of the
/// set, so a rollout of thousands of pods, each changing several times, would otherwise sync
/// the set once per change; within this window the queue folds them into one sync.
const POD_EVENT_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(50);

/// The pod index of orphans (pods without a controller) by namespace.
pub(crate) const ORPHANS: &str = "orphans";

/// Files pods that have no controller under their namespace.
pub(crate) fn orphan_index() -> (&'static str, runtime::cache::IndexFn) {
    (
        ORPHANS,
        Box::new(|o| {
            if resource::controller_uid(o).is_none() {
                vec![resource::namespace(o).to_string()]
            } else {
                vec![]
            }
        }),
    )
}

/// The `namespace/name` of the ReplicaSet controlling `obj`, if one does.
pub(crate) fn controller_of<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    resource::owner_references(obj)
        .find(|r| {
            r.get("controller").and_then(Value::as_bool) == Some(true)
                && r.get("kind").and_then(Value::as_str) == Some(kind)
        })
        .and_then(|r| r.get("name"))
        .and_then(Value::as_str)
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(REPLICA_SETS, move |change| {
        crate::owners::route_owner(&c, change, &s.rs_expectations, &s.queues.replicasets);
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(PODS, move |change| {
        crate::owners::route_owned(
            &c,
            change,
            "ReplicaSet",
            &REPLICA_SETS,
            Some(&s.rs_expectations),
            &s.queues.replicasets,
            Some(POD_EVENT_DEBOUNCE),
        );
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(rs) = cluster.cache(&REPLICA_SETS).get(&key.namespace, &key.name) else {
        shared.rs_expectations.forget(&key);
        return Ok(Action::await_change());
    };
    if !shared.rs_expectations.satisfied(&key) {
        // Our last writes are not in the cache yet; their events requeue this key.
        return Ok(Action::await_change());
    }
    let pod_cache = cluster.cache(&PODS);
    let mut pods = pod_cache.controlled_by(resource::uid(&rs));
    pods.extend(pod_cache.by_index(ORPHANS, &key.namespace));
    let plan = controllers::replicaset::reconcile(&rs, &pods, SystemTime::now())?;
    let client = &cluster.client;
    let events = cluster.recorder(COMPONENT);
    for pod in plan.adopt.iter().chain(&plan.release) {
        client::replace(client, &PODS, pod).await?;
    }
    shared
        .rs_expectations
        .expect(&key, plan.create.len() as i64, plan.delete.len() as i64);
    let mut created = 0;
    let mut failure = None;
    for size in controllers::replicaset::slow_start_batches(plan.create.len()) {
        let batch = &plan.create[created..created + size];
        let results = join_all(batch.iter().map(|p| client::create(client, &PODS, p))).await;
        created += size;
        for result in results {
            match result {
                Ok(pod) => events.record(
                    &rs,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", resource::name(&pod)),
                ),
                Err(e) => {
                    shared.rs_expectations.creation_observed(&key);
                    events.record(
                        &rs,
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                    );
                    failure = Some(e);
                }
            }
        }
        if failure.is_some() {
            for _ in created..plan.create.len() {
                shared.rs_expectations.creation_observed(&key);
            }
            break;
        }
    }
    let ns = key.namespace.as_str();
    let deletions = plan.delete.iter().map(|name| {
        let uid = pod_cache
            .get(ns, name)
            .map(|p| resource::uid(&p).to_string());
        async move {
            let r = client::delete(client, &PODS, ns, name, uid.as_deref(), None).await;
            (name, r)
        }
    });
    for (name, result) in join_all(deletions).await {
        match result {
            Ok(()) => events.record(
                &rs,
                EventType::Normal,
                "SuccessfulDelete",
                &format!("Deleted pod: {name}"),
            ),
            Err(e) => {
                shared.rs_expectations.deletion_observed(&key);
                failure = Some(e);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    if let Some(status) = plan.status {
        let mut obj = (*rs).clone();
        obj["status"] = status;
        client::replace_status(client, &REPLICA_SETS, &obj).await?;
    }
    Ok(plan
        .requeue_after
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}
