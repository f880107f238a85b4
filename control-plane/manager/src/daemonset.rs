//! The DaemonSet loop: one pod per admitting node, rolled to the current template, with the
//! ControllerRevision history.

use std::sync::Arc;
use std::time::SystemTime;

use controllers::daemonset as core;
use futures::future::join_all;
use runtime::events::EventType;
use runtime::informer::Change;
use runtime::resource::{self, CONTROLLER_REVISIONS, DAEMON_SETS, NODES, PODS};
use runtime::{Action, Key};
use serde_json::Value;

use crate::job::CONFLICT_RETRY;
use crate::owners;
use crate::replicaset::ORPHANS;
use crate::{Cluster, Error, Shared, client};

const COMPONENT: &str = "daemonset-controller";

/// Whether a change of a node can change where `ds` wants its pods: a node appearing or
/// disappearing that admits it, or an update that changes whether it admits it.
pub(crate) fn node_matters(ds: &Value, change: &Change) -> bool {
    match change {
        Change::Applied { old: None, new } => core::should_run(ds, new) != (false, false),
        Change::Applied {
            old: Some(old),
            new,
        } => core::should_run(ds, old) != core::should_run(ds, new),
        Change::Deleted(node) => core::should_run(ds, node) != (false, false),
    }
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(DAEMON_SETS, move |change| {
        owners::route_owner(&c, change, &s.ds_expectations, &s.queues.daemonsets);
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(PODS, move |change| {
        owners::route_owned(
            &c,
            change,
            "DaemonSet",
            &DAEMON_SETS,
            Some(&s.ds_expectations),
            &s.queues.daemonsets,
            None,
        );
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(NODES, move |change| {
        for ds in c.cache(&DAEMON_SETS).list() {
            if node_matters(&ds, change) {
                s.queues
                    .daemonsets
                    .add(c.key(resource::namespace(&ds), resource::name(&ds)));
            }
        }
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(CONTROLLER_REVISIONS, move |change| {
        let ns = resource::namespace(change.object());
        for name in owners::controllers(change, "DaemonSet") {
            s.queues.daemonsets.add(c.key(ns, name));
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(ds) = cluster.cache(&DAEMON_SETS).get(&key.namespace, &key.name) else {
        shared.ds_expectations.forget(&key);
        return Ok(Action::await_change());
    };
    if !shared.ds_expectations.satisfied(&key) {
        return Ok(Action::await_change());
    }
    let ns = key.namespace.as_str();
    let pod_cache = cluster.cache(&PODS);
    let mut pods: Vec<Value> = pod_cache
        .controlled_by(resource::uid(&ds))
        .iter()
        .map(|p| (**p).clone())
        .collect();
    pods.extend(
        pod_cache
            .by_index(ORPHANS, ns)
            .iter()
            .map(|p| (**p).clone()),
    );
    let nodes: Vec<Value> = cluster
        .cache(&NODES)
        .list()
        .iter()
        .map(|n| (**n).clone())
        .collect();
    let revisions: Vec<Value> = cluster
        .cache(&CONTROLLER_REVISIONS)
        .in_namespace(ns)
        .iter()
        .map(|r| (**r).clone())
        .collect();
    let plan = core::reconcile(&ds, &nodes, &pods, &revisions, SystemTime::now())?;
    let client = &cluster.client;
    let events = cluster.recorder(COMPONENT);

    for r in &plan.update_revisions {
        client::replace(client, &CONTROLLER_REVISIONS, r).await?;
    }
    if let Some(r) = &plan.create_revision {
        match client::create(client, &CONTROLLER_REVISIONS, r).await {
            Ok(_) => {}
            // Stored already; the next sync, woken by its event, sees it.
            Err(e) if client::is_conflict(&e) => return Ok(Action::requeue(CONFLICT_RETRY)),
            Err(e) => return Err(e.into()),
        }
    }
    for name in &plan.delete_revisions {
        client::delete(client, &CONTROLLER_REVISIONS, ns, name, None, None).await?;
    }
    for pod in plan.adopt.iter().chain(&plan.release).chain(&plan.relabel) {
        client::replace(client, &PODS, pod).await?;
    }

    shared
        .ds_expectations
        .expect(&key, plan.create.len() as i64, plan.delete.len() as i64);
    let mut failure = None;
    let mut created = 0;
    for size in controllers::replicaset::slow_start_batches(plan.create.len()) {
        let batch = &plan.create[created..created + size];
        let results = join_all(batch.iter().map(|p| client::create(client, &PODS, p))).await;
        created += size;
        for result in results {
            match result {
                Ok(pod) => {
                    owners::record(&events, &ds, &[core::created_event(resource::name(&pod))])
                }
                Err(e) => {
                    shared.ds_expectations.creation_observed(&key);
                    events.record(
                        &ds,
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                    );
                    failure.get_or_insert(e);
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    for _ in created..plan.create.len() {
        shared.ds_expectations.creation_observed(&key);
    }
    let deletions = plan.delete.iter().map(|name| {
        let uid = pod_cache
            .get(ns, name)
            .map(|p| resource::uid(&p).to_string());
        async move { client::delete(client, &PODS, ns, name, uid.as_deref(), None).await }
    });
    for result in join_all(deletions).await {
        if let Err(e) = result {
            shared.ds_expectations.deletion_observed(&key);
            failure.get_or_insert(e);
        }
    }
    owners::record(&events, &ds, &plan.events);
    if let Some(e) = failure {
        return Err(e.into());
    }
    if let Some(status) = plan.status {
        let mut obj = (*ds).clone();
        obj["status"] = status;
        match client::replace_status(client, &DAEMON_SETS, &obj).await {
            Ok(_) => {}
            Err(e) if client::is_conflict(&e) => return Ok(Action::requeue(CONFLICT_RETRY)),
            Err(e) if client::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(plan
        .requeue_after
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn node(name: &str, labels: Value) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": name, "labels": labels}}))
    }

    #[test]
    fn only_node_changes_that_move_daemon_pods_wake_the_daemonset() {
        let ds = json!({"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}});
        let ssd = node("n1", json!({"disk": "ssd"}));
        let hdd = node("n1", json!({"disk": "hdd"}));
        let ssd_relabelled = node("n1", json!({"disk": "ssd", "team": "a"}));
        assert!(node_matters(
            &ds,
            &Change::Applied {
                old: None,
                new: ssd.clone()
            }
        ));
        assert!(!node_matters(
            &ds,
            &Change::Applied {
                old: None,
                new: hdd.clone()
            }
        ));
        assert!(node_matters(
            &ds,
            &Change::Applied {
                old: Some(hdd.clone()),
                new: ssd.clone()
            }
        ));
        assert!(!node_matters(
            &ds,
            &Change::Applied {
                old: Some(ssd.clone()),
                new: ssd_relabelled
            }
        ));
        assert!(node_matters(&ds, &Change::Deleted(ssd)));
        assert!(!node_matters(&ds, &Change::Deleted(hdd)));
    }
}
