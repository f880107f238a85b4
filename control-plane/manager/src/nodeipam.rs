//! The node IPAM loop: gives every node a pod CIDR from the cluster's pod range and frees it
//! when the node is deleted.
//!
//! Each cluster's allocation state lives here, rebuilt from the nodes' CIDRs the first time
//! the loop runs for the cluster (after the node cache has listed), as upstream's range
//! allocator rebuilds its set on start. One worker, so two nodes never race for a subnet.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use controllers::nodeipam::{Allocator, DEFAULT_NODE_MASK};
use parking_lot::Mutex;
use runtime::events::EventType;
use runtime::resource::{self, NODES};
use runtime::{Action, Key};

use crate::{Cluster, Error, Shared, client};

const COMPONENT: &str = "cidrAllocator";

/// Each cluster's allocator.
#[derive(Debug, Default)]
pub(crate) struct State {
    allocators: Mutex<HashMap<Arc<str>, Allocator>>,
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(NODES, move |change| {
        s.queues
            .nodeipam
            .add(c.key("", resource::name(change.object())));
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let nodes = cluster.cache(&NODES);
    if !nodes.is_synced() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let node = nodes.get("", &key.name);
    let patch = {
        let mut allocators = shared.nodeipam.allocators.lock();
        let allocator = match allocators.get_mut(&key.cluster) {
            Some(a) => a,
            None => {
                let mut a = match Allocator::new(&shared.config.cluster_cidr, DEFAULT_NODE_MASK) {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::error!(cluster = %key.cluster, error = %e, "node IPAM disabled");
                        return Ok(Action::await_change());
                    }
                };
                for n in nodes.list() {
                    a.occupy(&n);
                }
                allocators.entry(Arc::clone(&key.cluster)).or_insert(a)
            }
        };
        let Some(node) = &node else {
            allocator.release(&key.name);
            return Ok(Action::await_change());
        };
        allocator.sync(node)
    };
    let Some(node) = node else {
        return Ok(Action::await_change());
    };
    match patch {
        Ok(None) => Ok(Action::await_change()),
        Ok(Some(patch)) => {
            client::merge_patch(&cluster.client, &NODES, "", &key.name, &patch).await?;
            Ok(Action::await_change())
        }
        Err(full) => {
            cluster.recorder(COMPONENT).record(
                &node,
                EventType::Normal,
                "CIDRNotAvailable",
                &format!("Node {} status is now: CIDRNotAvailable", key.name),
            );
            tracing::warn!(cluster = %key.cluster, node = %key.name, "{full}");
            Ok(Action::requeue(Duration::from_secs(30)))
        }
    }
}
