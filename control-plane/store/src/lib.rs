//! Berth's key-value store: the only stateful part of the control plane.
//!
//! The store keeps byte-string keys and values with etcd v3's semantics, which the Kubernetes API
//! machinery is built on: a strictly increasing revision per committed write, per-key create and
//! modify revisions and versions, compare-and-swap transactions, ranges at past revisions, watches
//! from a revision with previous values, compaction, snapshots and TTL keys.
//!
//! [`Store`] is the contract. [`MemoryStore`] keeps everything in memory; [`RaftStore`] replicates
//! through openraft and persists its log in redb, acknowledging a write only once a quorum has it
//! on disk. Both wrap the same deterministic core, [`mvcc::Mvcc`], and both pass the conformance
//! suite in [`testing`].
//!
//! What this crate is not: it knows nothing of Kubernetes objects, clusters or HTTP APIs above it;
//! keys are opaque bytes, and the API server decides their layout.

mod error;
mod memory;
pub mod mvcc;
pub mod raft;
mod state;
pub mod testing;
mod types;

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;

pub use error::{Result, StoreError};
pub use memory::MemoryStore;
pub use mvcc::Limits;
pub use raft::{RaftConfig, RaftStore};
pub use state::WatchStream;
pub use types::*;

/// A key-value store with etcd v3 semantics. See the crate documentation.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Runs a transaction atomically. Returns once the write is durable (for the raft store: on
    /// a quorum of replicas).
    async fn txn(&self, txn: Txn) -> Result<TxnResponse>;

    /// Reads keys, at the current revision or an older one.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse>;

    /// Watches keys from a revision: every change in revision order, without gaps or duplicates.
    async fn watch(&self, req: WatchRequest) -> Result<WatchStream>;

    /// Discards history below `revision`.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The store's revision, size and replication state.
    async fn status(&self) -> Result<StoreStatus>;

    /// Writes a consistent copy of the key space to `path` (a backup), returning its revision.
    async fn save_snapshot(&self, path: &Path) -> Result<Revision>;

    /// Reads one key at the current revision.
    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        let mut resp = self
            .range(RangeRequest::key(Bytes::copy_from_slice(key)))
            .await?;
        Ok(resp.kvs.pop())
    }

    /// Writes one key unconditionally; returns the write's revision.
    async fn put(&self, key: &[u8], value: &[u8]) -> Result<Revision> {
        let txn = Txn::put(Bytes::copy_from_slice(key), Bytes::copy_from_slice(value));
        Ok(self.txn(txn).await?.revision)
    }

    /// Deletes one key; returns whether it existed.
    async fn delete(&self, key: &[u8]) -> Result<bool> {
        let resp = self
            .txn(Txn::ops(vec![Op::delete(Bytes::copy_from_slice(key))]))
            .await?;
        Ok(
            matches!(resp.results.first(), Some(OpResult::Delete { deleted }) if !deleted.is_empty()),
        )
    }
}

/// Compacts `store` every `interval` at the revision it had one interval earlier, so history
/// stays available for at least `interval` (as kube-apiserver's compactor does for etcd). Runs
/// until the returned handle is aborted.
pub fn spawn_compactor(
    store: std::sync::Arc<dyn Store>,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut previous: Option<Revision> = None;
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Some(rev) = previous {
                match store.compact(rev).await {
                    Ok(()) => tracing::info!(revision = rev, "compacted store history"),
                    // Another replica compacted first, or nothing was written: nothing to do.
                    Err(StoreError::Compacted { .. }) => {}
                    Err(e) => tracing::warn!(error = %e, revision = rev, "compaction failed"),
                }
            }
            previous = match store.status().await {
                Ok(status) => Some(status.revision),
                Err(_) => None,
            };
        }
    })
}
