//! The horizontal pod autoscaler loop: every 15 seconds (upstream's sync period) each
//! HorizontalPodAutoscaler's target is read from the caches, kept within `minReplicas` and
//! `maxReplicas` through its `scale` subresource, and the HPA's status says why it cannot do
//! more (Berth serves no metrics API).

use std::sync::Arc;
use std::time::SystemTime;

use kube::api::{Patch, PatchParams};
use runtime::events::EventType;
use runtime::resource::{
    self, DEPLOYMENTS, HORIZONTAL_POD_AUTOSCALERS, REPLICA_SETS, REPLICATION_CONTROLLERS, Resource,
    STATEFUL_SETS,
};
use runtime::{Action, Key};
use serde_json::{Value, json};

use crate::{Cluster, Error, Shared, client};

const COMPONENT: &str = "horizontal-pod-autoscaler";

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(HORIZONTAL_POD_AUTOSCALERS, move |change| {
        let obj = change.object();
        s.queues
            .autoscalers
            .add(c.key(resource::namespace(obj), resource::name(obj)));
    });
    // The targets are read from these caches.
    for r in [
        DEPLOYMENTS,
        REPLICA_SETS,
        STATEFUL_SETS,
        REPLICATION_CONTROLLERS,
    ] {
        cluster.on_change(r, |_| {});
    }
}

/// The scalable kind `scaleTargetRef` names.
fn target_resource(target: &Value) -> Option<Resource> {
    let api_version = resource::str_at(target, "/apiVersion");
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let kind = resource::str_at(target, "/kind");
    [
        DEPLOYMENTS,
        REPLICA_SETS,
        STATEFUL_SETS,
        REPLICATION_CONTROLLERS,
    ]
    .into_iter()
    .find(|r| r.kind == kind && r.group == group)
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(hpa) = cluster
        .cache(&HORIZONTAL_POD_AUTOSCALERS)
        .get(&key.namespace, &key.name)
    else {
        return Ok(Action::await_change());
    };
    let target_ref = hpa
        .pointer("/spec/scaleTargetRef")
        .cloned()
        .unwrap_or_default();
    let target_name = resource::str_at(&target_ref, "/name").to_owned();
    let target = target_resource(&target_ref);
    let replicas = match &target {
        None => Err(format!(
            "no scale subresource for kind {} in {}",
            resource::str_at(&target_ref, "/kind"),
            resource::str_at(&target_ref, "/apiVersion")
        )),
        Some(r) => match cluster.cache(r).get(&key.namespace, &target_name) {
            Some(obj) => Ok(obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)),
            None => {
                let plural = if r.group.is_empty() {
                    r.plural.to_string()
                } else {
                    format!("{}.{}", r.plural, r.group)
                };
                Err(format!("{plural} \"{target_name}\" not found"))
            }
        },
    };
    let plan = controllers::podautoscaler::reconcile(&hpa, replicas, SystemTime::now());
    let requeue = Action::requeue(controllers::podautoscaler::SYNC_PERIOD);
    if let (Some(n), Some(r)) = (plan.scale_to, &target) {
        let api = r.api(&cluster.client, Some(&key.namespace));
        let patch = json!({"spec": {"replicas": n}});
        match api
            .patch_scale(&target_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if client::is_not_found(&e) => return Ok(requeue),
            Err(e) => return Err(e.into()),
        }
    }
    let events = cluster.recorder(COMPONENT);
    for e in &plan.events {
        let kind = match e.type_ {
            controllers::event::EventType::Normal => EventType::Normal,
            controllers::event::EventType::Warning => EventType::Warning,
        };
        events.record(&hpa, kind, &e.reason, &e.message);
    }
    if let Some(status) = plan.status {
        let mut updated = (*hpa).clone();
        updated["status"] = status;
        match client::replace_status(&cluster.client, &HORIZONTAL_POD_AUTOSCALERS, &updated).await {
            Ok(_) => {}
            Err(e) if client::is_conflict(&e) || client::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(requeue)
}
