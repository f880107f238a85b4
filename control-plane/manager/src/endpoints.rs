//! The Endpoints loop: publishes core/v1 Endpoints for each Service with a selector, and
//! deletes them with their Service.

use std::sync::Arc;

use controllers::endpoints::Write;
use runtime::informer::Change;
use runtime::resource::{self, ENDPOINTS, PODS, SERVICES};
use runtime::{Action, Key};
use serde_json::Value;

use crate::{Cluster, Error, Shared, client};

fn selects(service: &Value, pod: &Value) -> bool {
    let Some(selector) = service.pointer("/spec/selector").and_then(Value::as_object) else {
        return false;
    };
    selector
        .iter()
        .all(|(k, v)| pod.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(SERVICES, move |change| {
        let obj = change.object();
        s.queues
            .endpoints
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
                s.queues.endpoints.add(c.key(ns, resource::name(&svc)));
            }
        }
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(ENDPOINTS, move |change| {
        // Endpoints edited or deleted behind the controller's back are put right; Endpoints of
        // no Service may be someone else's and are left alone.
        let ep = change.object();
        let (ns, name) = (resource::namespace(ep), resource::name(ep));
        if c.cache(&SERVICES).get(ns, name).is_some() {
            s.queues.endpoints.add(c.key(ns, name));
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let client = &cluster.client;
    let existing = cluster.cache(&ENDPOINTS).get(&key.namespace, &key.name);
    let Some(service) = cluster.cache(&SERVICES).get(&key.namespace, &key.name) else {
        // The Service is gone: so are its Endpoints, as upstream.
        if existing.is_some() {
            client::delete(client, &ENDPOINTS, &key.namespace, &key.name, None, None).await?;
        }
        return Ok(Action::await_change());
    };
    let pods: Vec<Value> = cluster
        .cache(&PODS)
        .in_namespace(&key.namespace)
        .iter()
        .filter(|p| selects(&service, p))
        .map(|p| (**p).clone())
        .collect();
    let result = match controllers::endpoints::reconcile(&service, &pods, existing.as_deref()) {
        None => return Ok(Action::await_change()),
        Some(Write::Create(ep)) => client::create(client, &ENDPOINTS, &ep).await,
        Some(Write::Update(ep)) => client::replace(client, &ENDPOINTS, &ep).await,
    };
    match result {
        Ok(_) => Ok(Action::await_change()),
        // A stale cache: the watch brings the newer Endpoints, which queue the Service again.
        Err(e) if client::is_conflict(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}
