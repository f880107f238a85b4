//! The in-memory store: the [`Mvcc`] behind a lock, with no durability.
//!
//! It is the reference implementation of [`Store`]: tests of higher layers run on it, and the
//! raft store must behave exactly like it (both pass [`crate::testing`]).

use std::path::Path;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use bytes::Bytes;

use crate::Store;
use crate::error::Result;
use crate::mvcc::{Limits, Mvcc};
use crate::state::{EXPIRY_SWEEP, State, WatchStream, now_ms};
use crate::types::{
    Compare, Op, RangeRequest, RangeResponse, Revision, StoreStatus, Txn, TxnResponse, WatchRequest,
};

/// A store that lives in this process's memory only.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<State>,
}

impl MemoryStore {
    /// An empty store. Inside a tokio runtime it also starts deleting expired TTL keys.
    pub fn new(limits: Limits) -> Self {
        let state = Arc::new(State::new(Mvcc::new(), limits));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep_expired(Arc::downgrade(&state)));
        }
        MemoryStore { state }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// Deletes expired keys until the store is dropped.
async fn sweep_expired(state: Weak<State>) {
    let mut tick = tokio::time::interval(EXPIRY_SWEEP);
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        let now = now_ms();
        let expired = state.read(|m| m.expired(now, 1000));
        let txns: Vec<Txn> = expired
            .into_iter()
            .map(|(key, rev)| expiry_txn(key, rev))
            .collect();
        state.apply_all(&txns, now);
    }
}

/// Deletes `key` only if it is still the version that expired.
pub(crate) fn expiry_txn(key: Bytes, rev: Revision) -> Txn {
    Txn {
        compare: vec![Compare::mod_revision(key.clone(), rev)],
        success: vec![Op::Delete { key }],
        failure: vec![],
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        crate::mvcc::validate(&txn, &self.state.limits)?;
        self.state
            .apply_all([&txn], now_ms())
            .pop()
            .expect("one result per transaction")
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        self.state.range(&req)
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        self.state.watch(req)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.state.compact(revision)
    }

    async fn status(&self) -> Result<StoreStatus> {
        Ok(self.state.read(|m| StoreStatus {
            revision: m.revision(),
            compact_revision: m.compact_revision(),
            keys: m.len(),
            member_id: 1,
            leader_id: Some(1),
            term: 0,
            applied_index: 0,
        }))
    }

    async fn save_snapshot(&self, path: &Path) -> Result<Revision> {
        let state = Arc::clone(&self.state);
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || state.save(&path))
            .await
            .map_err(|e| crate::StoreError::Internal(e.to_string()))?
    }
}
