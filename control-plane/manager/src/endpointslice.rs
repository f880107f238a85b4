//! The EndpointSlice loop: publishes the endpoints of each Service's pods.

use std::sync::Arc;

use runtime::informer::Change;
use runtime::resource::{self, ENDPOINT_SLICES, PODS, SERVICES};
use runtime::{Action, Key};
use serde_json::Value;

use crate::{Cluster, Error, Shared, client};

fn selects(service: &Value, pod: &Value) -> bool {
    let Some(selector) = service.pointer("/spec/selector").and_then(Value::as_object) else {
        return false;
    };
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| pod.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(SERVICES, move |change| {
        let obj = change.object();
        s.queues
            .endpointslices
            .add(c.key(resource::namespace(obj), resource::name(obj)));
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(PODS, move |change| {
        let pod = change.object();
        let old = match change {
            Change::Applied { old: Some(old), .. } => Some(old),
            _ => None,
        };
        let ns = resource::namespace(pod);
        for svc in c.cache(&SERVICES).in_namespace(ns) {
            if selects(&svc, pod) || old.is_some_and(|o| selects(&svc, o)) {
                s.queues.endpointslices.add(c.key(ns, resource::name(&svc)));
            }
        }
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(ENDPOINT_SLICES, move |change| {
        let slice = change.object();
        let service = resource::str_at(slice, "/metadata/labels/kubernetes.io~1service-name");
        if !service.is_empty() {
            s.queues
                .endpointslices
                .add(c.key(resource::namespace(slice), service));
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(service) = cluster.cache(&SERVICES).get(&key.namespace, &key.name) else {
        return Ok(Action::await_change());
    };
    let pods: Vec<Value> = cluster
        .cache(&PODS)
        .in_namespace(&key.namespace)
        .iter()
        .filter(|p| selects(&service, p))
        .map(|p| (**p).clone())
        .collect();
    let slices: Vec<Value> = cluster
        .cache(&ENDPOINT_SLICES)
        .in_namespace(&key.namespace)
        .iter()
        .map(|s| (**s).clone())
        .collect();
    let plan = controllers::endpointslice::reconcile(&service, &pods, &slices);
    let client = &cluster.client;
    for slice in &plan.create {
        client::create(client, &ENDPOINT_SLICES, slice).await?;
    }
    for slice in &plan.update {
        client::replace(client, &ENDPOINT_SLICES, slice).await?;
    }
    for name in &plan.delete {
        client::delete(client, &ENDPOINT_SLICES, &key.namespace, name, None, None).await?;
    }
    Ok(Action::await_change())
}
