//! The Namespace lifecycle loop: empties a namespace being deleted, then releases it.
//!
//! As upstream's namespace controller: for every namespaced resource discovery lists, delete
//! the namespace's collection (background propagation), then check what remains. While objects
//! remain (pods finishing gracefully, objects holding finalizers), the namespace's conditions
//! say so and the loop checks again shortly; once nothing remains, the `kubernetes` finalizer
//! is removed through `namespaces/finalize` and the API server deletes the namespace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, ListParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use runtime::resource::{self, NAMESPACES};
use runtime::{Action, Key};
use serde_json::{Value, json};

use crate::{Cluster, Error, Shared, client};

/// The finalizer this loop owns.
const FINALIZER: &str = "kubernetes";
/// How soon to look again while content remains.
const RECHECK: Duration = Duration::from_secs(2);

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(NAMESPACES, move |change| {
        let ns = change.object();
        if resource::is_deleting(ns) {
            s.queues.namespaces.add(c.key("", resource::name(ns)));
        }
    });
}

fn has_finalizer(ns: &Value) -> bool {
    ns.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|v| v.as_str() == Some(FINALIZER)))
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    // Read the namespace live: acting on a stale copy could finalize a namespace that a
    // newer state says is still filling.
    let api = NAMESPACES.api(&cluster.client, None);
    let Some(ns) = api.get_opt(&key.name).await? else {
        return Ok(Action::await_change());
    };
    let ns = resource::to_value(ns);
    if !resource::is_deleting(&ns) || !has_finalizer(&ns) {
        return Ok(Action::await_change());
    }
    let outcome = delete_all_content(&cluster, &key.name).await;
    let mut conditions = conditions(&outcome);
    let old_conditions = ns.pointer("/status/conditions").cloned();
    keep_transition_times(&mut conditions, old_conditions.as_ref());
    if old_conditions.as_ref() != Some(&conditions) {
        let mut updated = ns.clone();
        updated["status"]["conditions"] = conditions;
        match client::replace_status(&cluster.client, &NAMESPACES, &updated).await {
            Ok(_) => {}
            Err(e) if client::is_conflict(&e) => return Ok(Action::requeue(Duration::ZERO)),
            Err(e) => return Err(e.into()),
        }
    }
    if outcome.remaining.is_empty() && outcome.failures.is_empty() && outcome.discovered {
        let latest = resource::to_value(api.get(&key.name).await?);
        let mut finalized = latest.clone();
        let finalizers: Vec<Value> = latest
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter(|v| v.as_str() != Some(FINALIZER))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        finalized["spec"]["finalizers"] = json!(finalizers);
        let _: kube::core::DynamicObject = api
            .replace_subresource("finalize", &key.name, &PostParams::default(), &finalized)
            .await?;
        tracing::info!(cluster = %key.cluster, namespace = %key.name, "namespace emptied and finalized");
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(RECHECK))
}

#[derive(Default)]
struct Outcome {
    discovered: bool,
    failures: Vec<String>,
    /// Resource → how many objects remain.
    remaining: BTreeMap<String, usize>,
    /// Finalizer → how many remaining objects hold it.
    finalizers: BTreeMap<String, usize>,
}

async fn delete_all_content(cluster: &Cluster, namespace: &str) -> Outcome {
    let mut outcome = Outcome::default();
    let discovery = match Discovery::new(cluster.client.clone()).run().await {
        Ok(d) => d,
        Err(e) => {
            outcome.failures.push(format!("discovery failed: {e}"));
            return outcome;
        }
    };
    outcome.discovered = true;
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced
                || !caps.supports_operation(verbs::LIST)
                || ar.plural.contains('/')
            {
                continue;
            }
            let api: kube::Api<kube::core::DynamicObject> =
                kube::Api::namespaced_with(cluster.client.clone(), namespace, &ar);
            if caps.supports_operation(verbs::DELETE_COLLECTION) {
                let dp = DeleteParams::background();
                if let Err(e) = api.delete_collection(&dp, &ListParams::default()).await {
                    outcome
                        .failures
                        .push(format!("failed to delete {}: {e}", ar.plural));
                    continue;
                }
            }
            match api.list(&ListParams::default()).await {
                Ok(list) if !list.items.is_empty() => {
                    let resource_name = if ar.group.is_empty() {
                        ar.plural.clone()
                    } else {
                        format!("{}.{}", ar.plural, ar.group)
                    };
                    outcome.remaining.insert(resource_name, list.items.len());
                    for item in &list.items {
                        for f in item.metadata.finalizers.iter().flatten() {
                            *outcome.finalizers.entry(f.clone()).or_default() += 1;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => outcome
                    .failures
                    .push(format!("failed to list {}: {e}", ar.plural)),
            }
        }
    }
    outcome
}

/// The namespace's deletion conditions, in upstream's order and words.
fn conditions(o: &Outcome) -> Value {
    let at = resource::time_now();
    let cond = |t: &str, status: bool, reason: &str, message: String| {
        json!({
            "type": t,
            "status": if status { "True" } else { "False" },
            "reason": reason,
            "message": message,
            "lastTransitionTime": at,
        })
    };
    let remaining = o
        .remaining
        .iter()
        .map(|(r, n)| format!("{r} has {n} resource instances"))
        .collect::<Vec<_>>()
        .join(", ");
    let finalizers = o
        .finalizers
        .iter()
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect::<Vec<_>>()
        .join(", ");
    json!([
        if o.discovered {
            cond(
                "NamespaceDeletionDiscoveryFailure",
                false,
                "ResourcesDiscovered",
                "All resources successfully discovered".into(),
            )
        } else {
            cond(
                "NamespaceDeletionDiscoveryFailure",
                true,
                "DiscoveryFailed",
                o.failures.join(", "),
            )
        },
        cond(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into()
        ),
        if o.failures.is_empty() {
            cond(
                "NamespaceDeletionContentFailure",
                false,
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".into(),
            )
        } else {
            cond(
                "NamespaceDeletionContentFailure",
                true,
                "ContentDeletionFailed",
                o.failures.join(", "),
            )
        },
        if o.remaining.is_empty() {
            cond(
                "NamespaceContentRemaining",
                false,
                "ContentRemoved",
                "All content successfully removed".into(),
            )
        } else {
            cond(
                "NamespaceContentRemaining",
                true,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {remaining}"),
            )
        },
        if o.finalizers.is_empty() {
            cond(
                "NamespaceFinalizersRemaining",
                false,
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished".into(),
            )
        } else {
            cond(
                "NamespaceFinalizersRemaining",
                true,
                "SomeFinalizersRemain",
                format!("Some content in the namespace has finalizers remaining: {finalizers}"),
            )
        },
    ])
}

/// Keeps each condition's `lastTransitionTime` from `old` when its status, reason and message
/// did not change, so an unchanged state writes nothing.
fn keep_transition_times(conditions: &mut Value, old: Option<&Value>) {
    let Some(old) = old.and_then(Value::as_array) else {
        return;
    };
    for c in conditions.as_array_mut().into_iter().flatten() {
        let same = old.iter().find(|o| {
            ["type", "status", "reason", "message"]
                .iter()
                .all(|k| o.get(*k) == c.get(*k))
        });
        if let Some(o) = same {
            c["lastTransitionTime"] = o["lastTransitionTime"].clone();
        }
    }
}
