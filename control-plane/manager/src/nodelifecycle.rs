//! The node lifecycle loop: node health from heartbeats, taints from health, and taint-based
//! eviction of the pods on tainted nodes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use controllers::nodelifecycle;
use runtime::events::EventType;
use runtime::resource::{self, LEASES, NODES, PODS};
use runtime::{Action, Key};
use serde_json::Value;

use crate::{Cluster, Error, Shared, client};

const COMPONENT: &str = "node-controller";
const LEASE_NAMESPACE: &str = "kube-node-lease";

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(NODES, move |change| {
        s.queues
            .nodes
            .add(c.key("", resource::name(change.object())));
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(LEASES, move |change| {
        let lease = change.object();
        if resource::namespace(lease) == LEASE_NAMESPACE {
            s.queues.nodes.add(c.key("", resource::name(lease)));
        }
    });
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(node) = cluster.cache(&NODES).get("", &key.name) else {
        return Ok(Action::await_change());
    };
    let lease = cluster.cache(&LEASES).get(LEASE_NAMESPACE, &key.name);
    let now = SystemTime::now();
    let plan = nodelifecycle::reconcile_node(
        &node,
        lease.as_deref(),
        shared.config.node_monitor_grace_period,
        now,
    );
    let events = cluster.recorder(COMPONENT);
    let mut current: Value = (*node).clone();
    if let Some(conditions) = &plan.conditions {
        current["status"]["conditions"] = conditions.clone();
        current = client::replace_status(&cluster.client, &NODES, &current).await?;
        events.record(
            &current,
            EventType::Normal,
            "NodeNotReady",
            &format!("Node {} status is now: NodeNotReady", key.name),
        );
        tracing::warn!(cluster = %key.cluster, node = %key.name, "node stopped posting status; marked Unknown");
    }
    if let Some(taints) = &plan.taints {
        current["spec"]["taints"] = taints.clone();
        current = client::replace(&cluster.client, &NODES, &current).await?;
    }
    let no_execute = current
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t["effect"] == "NoExecute"));
    if !no_execute {
        return Ok(plan
            .requeue_after
            .map(Action::requeue)
            .unwrap_or_else(Action::await_change));
    }
    let pods: Vec<Value> = cluster
        .cache(&PODS)
        .by_index(runtime::cache::BY_NODE_NAME, &key.name)
        .iter()
        .map(|p| (**p).clone())
        .collect();
    let evictions = nodelifecycle::evictions(&current, &pods, now);
    for (ns, name) in &evictions.delete {
        let Some(pod) = cluster.cache(&PODS).get(ns, name) else {
            continue;
        };
        events.record(
            &pod,
            EventType::Normal,
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{name}"),
        );
        client::delete(
            &cluster.client,
            &PODS,
            ns,
            name,
            Some(resource::uid(&pod)),
            None,
        )
        .await?;
    }
    Ok(earliest(plan.requeue_after, evictions.requeue_after)
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}
