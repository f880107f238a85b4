//! The CustomResourceDefinition loop: accepts a CRD's names and marks it `Established` (so the
//! API server serves its resources), and when the CRD is deleted, deletes every object of it
//! before releasing the CRD (upstream's naming, establishing and finalizer controllers).
//!
//! The decisions are the `controllers::crd` core's; this shell reads the CRD cache, writes the
//! status, and lists and deletes the custom objects through the API like any client.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, ListParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use runtime::resource::{self, CUSTOM_RESOURCE_DEFINITIONS};
use runtime::{Action, Key};
use serde_json::{Value, json};

use crate::{Cluster, Error, Shared, client};

/// The finalizer the API server adds to a CRD being deleted; this loop removes it.
const FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
/// How soon to look again while objects of a deleted CRD remain.
const RECHECK: Duration = Duration::from_secs(1);

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(CUSTOM_RESOURCE_DEFINITIONS, move |change| {
        let crd = change.object();
        s.queues.crds.add(c.key("", resource::name(crd)));
        // A CRD that goes may free names another CRD of its group waits for.
        let group = resource::str_at(crd, "/spec/group").to_owned();
        for other in c.cache(&CUSTOM_RESOURCE_DEFINITIONS).list() {
            if resource::str_at(&other, "/spec/group") == group
                && resource::name(&other) != resource::name(crd)
            {
                s.queues.crds.add(c.key("", resource::name(&other)));
            }
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let cache = cluster.cache(&CUSTOM_RESOURCE_DEFINITIONS);
    let Some(crd) = cache.get("", &key.name) else {
        crate::gc::unwatch_custom(&cluster, &key.name);
        return Ok(Action::await_change());
    };
    let crd: Value = (*crd).clone();
    if resource::is_deleting(&crd) {
        return finalize(&cluster, &crd).await;
    }
    // The garbage collector follows ownerReferences of established custom resources too.
    if controllers_established(&crd)
        && let Some((ar, namespaced)) = custom_resource(&crd)
    {
        let r = runtime::resource::Resource {
            group: ar.group.into(),
            version: ar.version.into(),
            kind: ar.kind.into(),
            plural: ar.plural.into(),
            namespaced,
        };
        crate::gc::watch_custom(&cluster, &shared, &key.name, r);
    }
    let others: Vec<Value> = cache.list().iter().map(|o| (**o).clone()).collect();
    let Some(status) = controllers::crd::status(&crd, &others, &resource::time_now()) else {
        return Ok(Action::await_change());
    };
    let mut updated = crd;
    updated["status"] = status;
    match client::replace_status(&cluster.client, &CUSTOM_RESOURCE_DEFINITIONS, &updated).await {
        Ok(_) => Ok(Action::await_change()),
        // A stale cache: the newer CRD is on its way and queues this one again.
        Err(e) if client::is_conflict(&e) || client::is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

/// The API resource of a CRD's objects, at a version it serves.
fn custom_resource(crd: &Value) -> Option<(ApiResource, bool)> {
    let group = resource::str_at(crd, "/spec/group");
    let plural = resource::str_at(crd, "/status/acceptedNames/plural");
    let kind = resource::str_at(crd, "/status/acceptedNames/kind");
    let version = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)?
        .iter()
        .find(|v| v.get("served").and_then(Value::as_bool) == Some(true))?
        .get("name")?
        .as_str()?;
    if plural.is_empty() || kind.is_empty() {
        return None;
    }
    let namespaced = resource::str_at(crd, "/spec/scope") == "Namespaced";
    Some((
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
        namespaced,
    ))
}

/// Deletes the objects of a CRD being deleted; once none remain, removes the finalizer.
async fn finalize(cluster: &Cluster, crd: &Value) -> Result<Action, Error> {
    let has_finalizer = crd
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|v| v.as_str() == Some(FINALIZER)));
    if !has_finalizer {
        return Ok(Action::await_change());
    }
    let established = controllers_established(crd);
    let (remaining, failure) = match custom_resource(crd).filter(|_| established) {
        // Never served: there can be no objects.
        None => (0, None),
        Some((ar, _)) => {
            let api: kube::Api<DynamicObject> = kube::Api::all_with(cluster.client.clone(), &ar);
            match api.list(&ListParams::default()).await {
                Err(e) if client::is_not_found(&e) => (0, None),
                Err(e) => (1, Some(e.to_string())),
                Ok(list) => {
                    let mut failure = None;
                    for obj in &list.items {
                        let ns = obj.metadata.namespace.as_deref();
                        let name = obj.metadata.name.as_deref().unwrap_or_default();
                        let one: kube::Api<DynamicObject> = match ns {
                            Some(ns) => kube::Api::namespaced_with(cluster.client.clone(), ns, &ar),
                            None => kube::Api::all_with(cluster.client.clone(), &ar),
                        };
                        match one.delete(name, &DeleteParams::background()).await {
                            Ok(_) => {}
                            Err(e) if client::is_not_found(&e) => {}
                            Err(e) => failure = Some(e.to_string()),
                        }
                    }
                    // Objects holding finalizers of their own stay until those go.
                    let left = match api.list(&ListParams::default()).await {
                        Ok(l) => l.items.len(),
                        Err(e) if client::is_not_found(&e) => 0,
                        Err(e) => {
                            failure = Some(e.to_string());
                            1
                        }
                    };
                    (left, failure)
                }
            }
        }
    };
    let conditions = controllers::crd::cleanup_conditions(
        crd,
        remaining,
        failure.as_deref(),
        &resource::time_now(),
    );
    if crd.pointer("/status/conditions") != Some(&json!(conditions)) {
        let mut updated = crd.clone();
        updated["status"]["conditions"] = json!(conditions);
        match client::replace_status(&cluster.client, &CUSTOM_RESOURCE_DEFINITIONS, &updated).await
        {
            Ok(_) => {}
            Err(e) if client::is_conflict(&e) => return Ok(Action::requeue(Duration::ZERO)),
            Err(e) if client::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    if remaining > 0 || failure.is_some() {
        return Ok(Action::requeue(RECHECK));
    }
    // Read the CRD live: the finalizer list may have changed since the cache saw it.
    let live = match client::get(
        &cluster.client,
        &CUSTOM_RESOURCE_DEFINITIONS,
        "",
        resource::name(crd),
    )
    .await
    {
        Ok(Some(live)) => live,
        Ok(None) => return Ok(Action::await_change()),
        Err(e) => return Err(e.into()),
    };
    let mut released = live.clone();
    let finalizers: Vec<Value> = live
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter(|v| v.as_str() != Some(FINALIZER))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    released["metadata"]["finalizers"] = json!(finalizers);
    match client::replace(&cluster.client, &CUSTOM_RESOURCE_DEFINITIONS, &released).await {
        Ok(_) => {
            tracing::info!(cluster = %cluster.id, crd = %resource::name(crd), "custom objects deleted; CRD released");
            Ok(Action::await_change())
        }
        Err(e) if client::is_conflict(&e) => Ok(Action::requeue(Duration::ZERO)),
        Err(e) if client::is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

fn controllers_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Established")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}
