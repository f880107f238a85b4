//! The StatefulSet loop: pods `<set>-<ordinal>` with their claims, created and removed in
//! order, rolled to the update revision, with the ControllerRevision history.

use std::sync::Arc;
use std::time::SystemTime;

use controllers::statefulset as core;
use runtime::resource::{
    self, CONTROLLER_REVISIONS, PERSISTENT_VOLUME_CLAIMS, PODS, STATEFUL_SETS,
};
use runtime::{Action, Key};
use serde_json::Value;

use crate::job::CONFLICT_RETRY;
use crate::owners;
use crate::replicaset::ORPHANS;
use crate::{Cluster, Error, Shared, client};

const COMPONENT: &str = "statefulset-controller";

/// The plan's events for writes that happened: a pod-creation event names its pod, and pods
/// after the first failed creation were never created.
fn events_for_created(
    events: &[controllers::event::Event],
    not_created: &[&str],
) -> Vec<controllers::event::Event> {
    events
        .iter()
        .filter(|e| {
            e.reason != "SuccessfulCreate"
                || !not_created
                    .iter()
                    .any(|p| e.message.contains(&format!("Pod {p} ")))
        })
        .cloned()
        .collect()
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(STATEFUL_SETS, move |change| {
        owners::route_owner(&c, change, &s.sts_expectations, &s.queues.statefulsets);
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(PODS, move |change| {
        owners::route_owned(
            &c,
            change,
            "StatefulSet",
            &STATEFUL_SETS,
            Some(&s.sts_expectations),
            &s.queues.statefulsets,
            None,
        );
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(CONTROLLER_REVISIONS, move |change| {
        let ns = resource::namespace(change.object());
        for name in owners::controllers(change, "StatefulSet") {
            s.queues.statefulsets.add(c.key(ns, name));
        }
    });
    // A claim being deleted blocks its pod; its disappearance lets the set go on.
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(PERSISTENT_VOLUME_CLAIMS, move |change| {
        let ns = resource::namespace(change.object());
        for set in c.cache(&STATEFUL_SETS).in_namespace(ns) {
            s.queues.statefulsets.add(c.key(ns, resource::name(&set)));
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(set) = cluster.cache(&STATEFUL_SETS).get(&key.namespace, &key.name) else {
        shared.sts_expectations.forget(&key);
        return Ok(Action::await_change());
    };
    if !shared.sts_expectations.satisfied(&key) {
        return Ok(Action::await_change());
    }
    let ns = key.namespace.as_str();
    let pod_cache = cluster.cache(&PODS);
    let mut pods: Vec<Value> = pod_cache
        .controlled_by(resource::uid(&set))
        .iter()
        .map(|p| (**p).clone())
        .collect();
    pods.extend(
        pod_cache
            .by_index(ORPHANS, ns)
            .iter()
            .map(|p| (**p).clone()),
    );
    let list = |r| -> Vec<Value> {
        cluster
            .cache(r)
            .in_namespace(ns)
            .iter()
            .map(|o| (**o).clone())
            .collect()
    };
    let claims = list(&PERSISTENT_VOLUME_CLAIMS);
    let revisions = list(&CONTROLLER_REVISIONS);
    let plan = core::reconcile(&set, &pods, &claims, &revisions, SystemTime::now())?;
    let client = &cluster.client;
    let events = cluster.recorder(COMPONENT);

    for r in &plan.update_revisions {
        client::replace(client, &CONTROLLER_REVISIONS, r).await?;
    }
    if let Some(r) = &plan.create_revision {
        match client::create(client, &CONTROLLER_REVISIONS, r).await {
            Ok(_) => {}
            Err(e) if client::is_conflict(&e) => return Ok(Action::requeue(CONFLICT_RETRY)),
            Err(e) => return Err(e.into()),
        }
    }
    for pod in plan.adopt.iter().chain(&plan.release) {
        client::replace(client, &PODS, pod).await?;
    }
    for claim in &plan.create_claims {
        match client::create(client, &PERSISTENT_VOLUME_CLAIMS, claim).await {
            Ok(_) => {}
            Err(e) if client::is_conflict(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for claim in &plan.update_claims {
        client::replace(client, &PERSISTENT_VOLUME_CLAIMS, claim).await?;
    }

    // Deletions first: a failed pod is deleted and recreated under the same name.
    shared
        .sts_expectations
        .expect(&key, plan.create.len() as i64, plan.delete.len() as i64);
    for (i, name) in plan.delete.iter().enumerate() {
        let uid = pod_cache
            .get(ns, name)
            .map(|p| resource::uid(&p).to_string());
        if let Err(e) = client::delete(client, &PODS, ns, name, uid.as_deref(), None).await {
            for _ in i..plan.delete.len() {
                shared.sts_expectations.deletion_observed(&key);
            }
            for _ in &plan.create {
                shared.sts_expectations.creation_observed(&key);
            }
            return Err(e.into());
        }
    }
    for (i, pod) in plan.create.iter().enumerate() {
        let result = client::create(client, &PODS, pod).await;
        if let Err(e) = result {
            for _ in i..plan.create.len() {
                shared.sts_expectations.creation_observed(&key);
            }
            let not_created: Vec<&str> = plan.create[i..].iter().map(resource::name).collect();
            owners::record(
                &events,
                &set,
                &events_for_created(&plan.events, &not_created),
            );
            if client::is_conflict(&e) {
                // The namesake is still terminating; its removal wakes the set.
                return Ok(Action::await_change());
            }
            events.record(
                &set,
                runtime::events::EventType::Warning,
                "FailedCreate",
                &format!(
                    "create Pod {} in StatefulSet {} failed error: {e}",
                    resource::name(pod),
                    key.name
                ),
            );
            return Err(e.into());
        }
    }
    for pod in &plan.update {
        client::replace(client, &PODS, pod).await?;
    }
    owners::record(&events, &set, &plan.events);
    if let Some(status) = plan.status {
        let mut obj = (*set).clone();
        obj["status"] = status;
        match client::replace_status(client, &STATEFUL_SETS, &obj).await {
            Ok(_) => {}
            Err(e) if client::is_conflict(&e) => return Ok(Action::requeue(CONFLICT_RETRY)),
            Err(e) if client::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    for name in &plan.delete_revisions {
        client::delete(client, &CONTROLLER_REVISIONS, ns, name, None, None).await?;
    }
    Ok(plan
        .requeue_after
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

#[cfg(test)]
mod tests {
    use controllers::event::Event;

    use super::*;

    #[test]
    fn events_of_pods_never_created_are_dropped() {
        let events = vec![
            Event::normal(
                "SuccessfulDelete",
                "delete Pod web-1 in StatefulSet web successful",
            ),
            Event::normal(
                "SuccessfulCreate",
                "create Pod web-1 in StatefulSet web successful",
            ),
            Event::normal(
                "SuccessfulCreate",
                "create Pod web-2 in StatefulSet web successful",
            ),
            Event::normal(
                "SuccessfulCreate",
                "create Pod web-10 in StatefulSet web successful",
            ),
        ];
        let kept = events_for_created(&events, &["web-1"]);
        assert_eq!(kept.len(), 3);
        assert!(
            kept.iter()
                .all(|e| !e.message.starts_with("create Pod web-1 "))
        );
        assert!(
            kept.iter()
                .any(|e| e.message.starts_with("create Pod web-10 "))
        );
    }
}
