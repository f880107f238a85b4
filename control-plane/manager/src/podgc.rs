//! The pod garbage collector loop: every period, force-deletes terminated pods beyond the
//! threshold, pods of nodes that are gone, and terminating pods that were never scheduled.
//!
//! One key per cluster; it runs every [`CHECK_PERIOD`], when a node is deleted, and when a
//! pod without a node starts terminating. Which nodes have been missing since when is kept per
//! cluster between runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use controllers::podgc::{self, CHECK_PERIOD, Missing};
use parking_lot::Mutex;
use runtime::informer::Change;
use runtime::resource::{self, NODES, PODS};
use runtime::{Action, Key};
use serde_json::Value;

use crate::{Cluster, Error, Shared, client};

/// The name of the loop's single key in each cluster.
const KEY: &str = "podgc";

/// The nodes each cluster's collector has seen missing.
#[derive(Debug, Default)]
pub(crate) struct State {
    missing: Mutex<HashMap<Arc<str>, Missing>>,
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    shared.queues.podgc.add(cluster.key("", KEY));
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(NODES, move |change| {
        if let Change::Deleted(_) = change {
            s.queues.podgc.add(c.key("", KEY));
        }
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(PODS, move |change| {
        if let Change::Applied { new, .. } = change
            && resource::is_deleting(new)
            && resource::str_at(new, "/spec/nodeName").is_empty()
        {
            s.queues.podgc.add(c.key("", KEY));
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let (pods_cache, nodes_cache) = (cluster.cache(&PODS), cluster.cache(&NODES));
    if !pods_cache.is_synced() || !nodes_cache.is_synced() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let pods: Vec<Value> = pods_cache.list().iter().map(|p| (**p).clone()).collect();
    let nodes: Vec<Value> = nodes_cache.list().iter().map(|n| (**n).clone()).collect();
    let missing = shared
        .podgc
        .missing
        .lock()
        .get(&key.cluster)
        .cloned()
        .unwrap_or_default();
    let plan = podgc::plan(
        &pods,
        &nodes,
        shared.config.terminated_pod_gc_threshold,
        &missing,
        SystemTime::now(),
    );
    shared
        .podgc
        .missing
        .lock()
        .insert(Arc::clone(&key.cluster), plan.missing.clone());
    for (ns, name, uid, reason) in &plan.delete {
        if *reason == podgc::Reason::Orphaned {
            // Confirm with a live read, as upstream: the cache may lag a node's return.
            let node = pods_cache
                .get(ns, name)
                .map(|p| resource::str_at(&p, "/spec/nodeName").to_owned())
                .unwrap_or_default();
            if client::get(&cluster.client, &NODES, "", &node)
                .await?
                .is_some()
            {
                continue;
            }
        }
        tracing::info!(cluster = %key.cluster, namespace = %ns, pod = %name, ?reason, "garbage collecting pod");
        client::force_delete(&cluster.client, &PODS, ns, name, uid).await?;
    }
    Ok(Action::requeue(plan.requeue_after.unwrap_or(CHECK_PERIOD)))
}
