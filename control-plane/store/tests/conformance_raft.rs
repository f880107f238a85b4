//! The conformance suite against a single-replica raft store on disk.

use std::sync::Arc;

use store::{RaftStore, Store};

store::store_conformance!({
    let dir = tempfile::tempdir().unwrap();
    let store = RaftStore::open_single(dir.path().join("data"))
        .await
        .unwrap();
    (Arc::new(store) as Arc<dyn Store>, dir)
});
