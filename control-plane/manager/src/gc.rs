//! The garbage collector: deletes objects whose owners are gone, and carries out foreground
//! and orphan deletion, as upstream's garbage collector does with ownerReferences.
//!
//! The collector keeps a graph of every object of the kinds it watches (uid → where the
//! object is, which owners it names) fed by the informers. It works per object uid:
//! - an object whose owners are all absent is deleted (absence is confirmed with a live read,
//!   so a cache that has not caught up never costs an object its life); owners that are absent
//!   while others remain are removed from its ownerReferences;
//! - an owner being deleted with the `orphan` finalizer has its references removed from every
//!   dependent, then the finalizer;
//! - an owner being deleted with the `foregroundDeletion` finalizer has its dependents deleted
//!   (in the foreground themselves when they own others) and keeps the finalizer until no
//!   dependent with `blockOwnerDeletion: true` remains.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::PropagationPolicy;
use parking_lot::Mutex;
use runtime::informer::Change;
use runtime::resource::{self, Resource};
use runtime::{Action, Key};
use serde_json::{Value, json};

use crate::{Cluster, Error, Shared, client};

/// The kinds whose objects the collector tracks (every built-in kind that owns or is owned in
/// practice).
const WATCHED: &[Resource] = &[
    resource::PODS,
    resource::SERVICES,
    resource::ENDPOINTS,
    resource::CONFIG_MAPS,
    resource::SECRETS,
    resource::SERVICE_ACCOUNTS,
    resource::PERSISTENT_VOLUME_CLAIMS,
    resource::REPLICATION_CONTROLLERS,
    resource::NODES,
    resource::DEPLOYMENTS,
    resource::REPLICA_SETS,
    resource::STATEFUL_SETS,
    resource::DAEMON_SETS,
    resource::CONTROLLER_REVISIONS,
    resource::JOBS,
    resource::CRON_JOBS,
    resource::ENDPOINT_SLICES,
    resource::LEASES,
    resource::POD_DISRUPTION_BUDGETS,
    resource::HORIZONTAL_POD_AUTOSCALERS,
    resource::INGRESSES,
    resource::ROLES,
    resource::ROLE_BINDINGS,
];

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

#[derive(Debug, Clone)]
struct Node {
    resource: Resource,
    namespace: String,
    name: String,
    owners: Vec<String>,
}

/// A cluster's ownership graph.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    inner: Mutex<GraphInner>,
    /// The custom resources watched besides [`WATCHED`], by CRD name (`<plural>.<group>`),
    /// with their informers' tasks.
    custom: Mutex<HashMap<String, (Resource, tokio::task::JoinHandle<()>)>>,
}

#[derive(Debug, Default)]
struct GraphInner {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl GraphInner {
    fn remove(&mut self, uid: &str) -> Option<Node> {
        let node = self.nodes.remove(uid)?;
        for owner in &node.owners {
            if let Some(set) = self.dependents.get_mut(owner) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(owner);
                }
            }
        }
        Some(node)
    }

    fn insert(&mut self, uid: &str, node: Node) {
        self.remove(uid);
        for owner in &node.owners {
            self.dependents
                .entry(owner.clone())
                .or_default()
                .insert(uid.to_string());
        }
        self.nodes.insert(uid.to_string(), node);
    }
}

/// What the collector reads of an object it watches only for ownership: identity, version,
/// owners, finalizers and deletion. Everything else (labels, annotations, managedFields…) is
/// dropped before it reaches the cache, which holds every object of those kinds.
pub(crate) fn projection(obj: Value) -> Value {
    const KEPT: &[&str] = &[
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "ownerReferences",
        "finalizers",
        "deletionTimestamp",
    ];
    let mut meta = serde_json::Map::new();
    if let Some(Value::Object(m)) = obj.get("metadata") {
        for k in KEPT {
            if let Some(v) = m.get(*k) {
                meta.insert((*k).to_string(), v.clone());
            }
        }
    }
    json!({"metadata": meta})
}

fn owner_uids(obj: &Value) -> Vec<String> {
    resource::owner_references(obj)
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

fn finalizers(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    finalizers(obj).contains(&f)
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    for r in WATCHED {
        subscribe(cluster, shared, r.clone());
    }
}

/// Tracks the objects of `resource` in the graph (kinds no other loop reads in full are
/// watched as metadata only). Returns the informer.
fn subscribe(
    cluster: &Arc<Cluster>,
    shared: &Arc<Shared>,
    resource: Resource,
) -> Arc<runtime::informer::Informer> {
    let informer = cluster.metadata_informer(resource.clone());
    {
        let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
        informer.on_change(move |change| {
            let obj = change.object();
            let uid = resource::uid(obj).to_string();
            let queue = &s.queues.gc;
            match change {
                Change::Applied { old, new } => {
                    let owners = owner_uids(new);
                    let owners_changed = old.as_ref().is_none_or(|o| owner_uids(o) != owners);
                    let deleting_now = resource::is_deleting(new)
                        && (has_finalizer(new, ORPHAN) || has_finalizer(new, FOREGROUND));
                    c.gc.inner.lock().insert(
                        &uid,
                        Node {
                            resource: resource.clone(),
                            namespace: resource::namespace(new).to_string(),
                            name: resource::name(new).to_string(),
                            owners: owners.clone(),
                        },
                    );
                    if (owners_changed && !owners.is_empty()) || deleting_now {
                        queue.add(c.key("", &uid));
                    }
                    // A dependent being deleted may unblock a foreground owner.
                    if resource::is_deleting(new) {
                        for o in &owners {
                            queue.add(c.key("", o));
                        }
                    }
                }
                Change::Deleted(_) => {
                    let mut graph = c.gc.inner.lock();
                    let node = graph.remove(&uid);
                    let dependents = graph.dependents.get(&uid).cloned().unwrap_or_default();
                    drop(graph);
                    for d in dependents {
                        queue.add(c.key("", &d));
                    }
                    for o in node.map(|n| n.owners).unwrap_or_default() {
                        queue.add(c.key("", &o));
                    }
                }
            }
        });
    }
    informer
}

/// Starts tracking the objects of a custom resource (a CRD just became established), so
/// ownerReferences from and to custom objects are collected as upstream's collector does
/// for every resource discovery lists. `crd` is the CRD's name; a second call does nothing.
pub(crate) fn watch_custom(
    cluster: &Arc<Cluster>,
    shared: &Arc<Shared>,
    crd: &str,
    resource: Resource,
) {
    let mut custom = cluster.gc.custom.lock();
    if custom.get(crd).is_some_and(|(r, _)| *r == resource) {
        return;
    }
    if let Some((old, task)) = custom.remove(crd) {
        task.abort();
        cluster.forget_informer(&old);
    }
    let informer = subscribe(cluster, shared, resource.clone());
    let task = informer.spawn(cluster.client.clone(), cluster.shutdown.clone());
    tracing::info!(cluster = %cluster.id, crd, "garbage collector watches a custom resource");
    custom.insert(crd.to_owned(), (resource, task));
}

/// Stops tracking the objects of CRD `crd` (it is gone).
pub(crate) fn unwatch_custom(cluster: &Cluster, crd: &str) {
    let removed = cluster.gc.custom.lock().remove(crd);
    if let Some((resource, task)) = removed {
        task.abort();
        cluster.forget_informer(&resource);
    }
}

/// Stops tracking every custom resource of `cluster` (its loops stop).
pub(crate) fn unwatch_all_custom(cluster: &Cluster) {
    for (_, (_, task)) in cluster.gc.custom.lock().drain() {
        task.abort();
    }
}

/// Every resource the collector tracks in `cluster`.
fn watched(cluster: &Cluster) -> Vec<Resource> {
    let mut all: Vec<Resource> = WATCHED.to_vec();
    all.extend(cluster.gc.custom.lock().values().map(|(r, _)| r.clone()));
    all
}

/// The resource serving `kind` of the group of `apiVersion`, among those watched. Owners are
/// matched by group and kind, as upstream's REST mapping does: a reference may name any
/// version the resource is served at.
fn resource_for(cluster: &Cluster, api_version: &str, kind: &str) -> Option<Resource> {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    watched(cluster)
        .into_iter()
        .find(|r| r.kind == kind && r.group == group)
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    if watched(&cluster)
        .iter()
        .any(|r| !cluster.cache(r).is_synced())
    {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let uid = key.name.as_str();
    let Some(node) = cluster.gc.inner.lock().nodes.get(uid).cloned() else {
        return Ok(Action::await_change());
    };
    let Some(obj) = cluster
        .cache(&node.resource)
        .get(&node.namespace, &node.name)
    else {
        return Ok(Action::await_change());
    };
    if resource::uid(&obj) != uid {
        return Ok(Action::await_change());
    }
    if resource::is_deleting(&obj) {
        if has_finalizer(&obj, ORPHAN) {
            return orphan_dependents(&cluster, &obj, &node).await;
        }
        if has_finalizer(&obj, FOREGROUND) {
            return delete_dependents(&cluster, &obj, &node).await;
        }
        return Ok(Action::await_change());
    }
    let refs: Vec<Value> = resource::owner_references(&obj).cloned().collect();
    if refs.is_empty() {
        return Ok(Action::await_change());
    }
    let mut absent = Vec::new();
    for r in &refs {
        if !owner_exists(&cluster, &node, r).await? {
            absent.push(resource::str_at(r, "/uid").to_string());
        }
    }
    if absent.is_empty() {
        return Ok(Action::await_change());
    }
    if absent.len() == refs.len() {
        tracing::info!(cluster = %key.cluster, kind = %node.resource.kind, namespace = %node.namespace, name = %node.name, "deleting object whose owners are gone");
        client::delete(
            &cluster.client,
            &node.resource,
            &node.namespace,
            &node.name,
            Some(uid),
            Some(PropagationPolicy::Background),
        )
        .await?;
    } else {
        let kept: Vec<Value> = refs
            .into_iter()
            .filter(|r| !absent.iter().any(|a| resource::str_at(r, "/uid") == a))
            .collect();
        let patch = owners_patch(&obj, kept);
        client::merge_patch(
            &cluster.client,
            &node.resource,
            &node.namespace,
            &node.name,
            &patch,
        )
        .await?;
    }
    Ok(Action::await_change())
}

/// A merge patch setting `metadata.ownerReferences` to `refs` (removing the field when empty,
/// as the API stores it), conditional on the object's resourceVersion.
fn owners_patch(obj: &Value, refs: Vec<Value>) -> Value {
    json!({"metadata": {
        "ownerReferences": if refs.is_empty() { Value::Null } else { Value::Array(refs) },
        "resourceVersion": resource::resource_version(obj),
    }})
}

/// Whether the owner `r` of `node` exists: in the graph, or (to be sure) by a live read.
async fn owner_exists(cluster: &Cluster, node: &Node, r: &Value) -> Result<bool, Error> {
    let owner_uid = resource::str_at(r, "/uid");
    if cluster.gc.inner.lock().nodes.contains_key(owner_uid) {
        return Ok(true);
    }
    let Some(owner_resource) = resource_for(
        cluster,
        resource::str_at(r, "/apiVersion"),
        resource::str_at(r, "/kind"),
    ) else {
        // A kind the collector does not track: never collect on its account.
        return Ok(true);
    };
    let ns = if owner_resource.namespaced {
        Some(node.namespace.as_str())
    } else {
        None
    };
    let api = owner_resource.api(&cluster.client, ns);
    match api.get_opt(resource::str_at(r, "/name")).await? {
        Some(live) => Ok(live.metadata.uid.as_deref() == Some(owner_uid)),
        None => Ok(false),
    }
}

fn dependents_of(cluster: &Cluster, uid: &str) -> Vec<(Node, Arc<Value>)> {
    let graph = cluster.gc.inner.lock();
    let uids: Vec<String> = graph
        .dependents
        .get(uid)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    let nodes: Vec<Node> = uids
        .iter()
        .filter_map(|u| graph.nodes.get(u).cloned())
        .collect();
    drop(graph);
    nodes
        .into_iter()
        .filter_map(|n| {
            let obj = cluster.cache(&n.resource).get(&n.namespace, &n.name)?;
            Some((n, obj))
        })
        .collect()
}

async fn remove_finalizer(
    cluster: &Cluster,
    obj: &Value,
    node: &Node,
    f: &str,
) -> Result<(), Error> {
    let kept: Vec<&str> = finalizers(obj).into_iter().filter(|x| *x != f).collect();
    // The resourceVersion makes the patch conditional: a concurrent change fails it and the
    // collector looks again.
    let patch = json!({"metadata": {
        "finalizers": if kept.is_empty() { Value::Null } else { json!(kept) },
        "resourceVersion": resource::resource_version(obj),
    }});
    match client::merge_patch(
        &cluster.client,
        &node.resource,
        &node.namespace,
        &node.name,
        &patch,
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if client::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn orphan_dependents(cluster: &Cluster, owner: &Value, node: &Node) -> Result<Action, Error> {
    let uid = resource::uid(owner);
    for (dep_node, dep) in dependents_of(cluster, uid) {
        let kept: Vec<Value> = resource::owner_references(&dep)
            .filter(|r| resource::str_at(r, "/uid") != uid)
            .cloned()
            .collect();
        let patch = owners_patch(&dep, kept);
        match client::merge_patch(
            &cluster.client,
            &dep_node.resource,
            &dep_node.namespace,
            &dep_node.name,
            &patch,
        )
        .await
        {
            Ok(_) => {}
            Err(e) if client::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    remove_finalizer(cluster, owner, node, ORPHAN).await?;
    Ok(Action::await_change())
}

async fn delete_dependents(cluster: &Cluster, owner: &Value, node: &Node) -> Result<Action, Error> {
    let uid = resource::uid(owner);
    let mut blocking = 0;
    for (dep_node, dep) in dependents_of(cluster, uid) {
        let blocks = resource::owner_references(&dep).any(|r| {
            resource::str_at(r, "/uid") == uid
                && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
        });
        if blocks {
            blocking += 1;
        }
        if resource::is_deleting(&dep) {
            continue;
        }
        let owns_others = cluster
            .gc
            .inner
            .lock()
            .dependents
            .contains_key(resource::uid(&dep));
        let propagation = if owns_others {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        client::delete(
            &cluster.client,
            &dep_node.resource,
            &dep_node.namespace,
            &dep_node.name,
            Some(resource::uid(&dep)),
            Some(propagation),
        )
        .await?;
    }
    if blocking == 0 {
        remove_finalizer(cluster, owner, node, FOREGROUND).await?;
    }
    Ok(Action::await_change())
}
