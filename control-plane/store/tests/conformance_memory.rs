//! The conformance suite against the in-memory store.

use std::sync::Arc;

use store::{MemoryStore, Store};

store::store_conformance!((Arc::new(MemoryStore::default()) as Arc<dyn Store>, ()));
