//! The store's vocabulary: keys, values, revisions, transactions and watch events.
//!
//! These types mirror etcd v3's data model, which the Kubernetes API server is built on: a single
//! strictly increasing *revision* counts committed writes, and every key carries the revision that
//! created it, the revision that last modified it and how many times it was written since creation.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A store revision. Revision 0 is never assigned: an empty store is at revision 1 and the first
/// committed write makes it 2, as in etcd.
pub type Revision = u64;

/// The revision of an empty store.
pub const INITIAL_REVISION: Revision = 1;

/// Largest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 4 * 1024;

/// Default largest value accepted, in bytes (etcd's default request limit).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1536 * 1024;

/// A key with its value and bookkeeping, as read at some revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
    /// Revision of the write that created this key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the last write to this key.
    pub mod_revision: Revision,
    /// Number of writes since creation; 1 right after creation.
    pub version: u64,
    /// When the key expires, in milliseconds since the Unix epoch, if it was written with a TTL.
    pub expires_at_ms: Option<u64>,
}

/// What a comparison in a transaction looks at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    /// The key's mod revision; 0 when the key does not exist.
    ModRevision(Revision),
    /// The key's create revision; 0 when the key does not exist.
    CreateRevision(Revision),
    /// The key's version; 0 when the key does not exist.
    Version(u64),
    /// The key's value; a missing key never equals any value.
    Value(Bytes),
}

/// How a comparison's target relates to the stored field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    /// Stored field equals the target.
    Equal,
    /// Stored field differs from the target.
    NotEqual,
    /// Stored field is less than the target.
    Less,
    /// Stored field is greater than the target.
    Greater,
}

/// One guard of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The key compared.
    pub key: Bytes,
    /// The relation that must hold.
    pub op: CompareOp,
    /// The field and value compared against.
    pub target: CompareTarget,
}

impl Compare {
    /// Holds when `key` does not exist (create-if-absent).
    pub fn absent(key: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::ModRevision(0),
        }
    }

    /// Holds when `key` was last modified at `revision` (optimistic concurrency).
    pub fn mod_revision(key: impl Into<Bytes>, revision: Revision) -> Self {
        Self {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::ModRevision(revision),
        }
    }

    /// Holds when `key` exists.
    pub fn exists(key: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            op: CompareOp::Greater,
            target: CompareTarget::ModRevision(0),
        }
    }
}

/// One operation of a transaction branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Write `value` under `key`. With a TTL, the key is deleted once it has expired.
    Put {
        key: Bytes,
        value: Bytes,
        ttl: Option<Duration>,
    },
    /// Delete `key` if it exists.
    Delete { key: Bytes },
    /// Delete every key starting with `prefix`.
    DeletePrefix { prefix: Bytes },
    /// Read `key` as the earlier operations of the branch left it.
    Get { key: Bytes },
}

impl Op {
    /// A put without TTL.
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
            ttl: None,
        }
    }

    /// A delete of one key.
    pub fn delete(key: impl Into<Bytes>) -> Self {
        Op::Delete { key: key.into() }
    }

    /// A read of one key.
    pub fn get(key: impl Into<Bytes>) -> Self {
        Op::Get { key: key.into() }
    }
}

/// An atomic compare-then-write: if every comparison holds, `success` runs, else `failure`.
/// All writes of the branch that runs share one new revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Guards, all of which must hold for `success` to run.
    pub compare: Vec<Compare>,
    /// Operations run when every guard holds.
    pub success: Vec<Op>,
    /// Operations run otherwise.
    pub failure: Vec<Op>,
}

impl Txn {
    /// An unconditional transaction running `ops`.
    pub fn ops(ops: Vec<Op>) -> Self {
        Txn {
            compare: Vec::new(),
            success: ops,
            failure: Vec::new(),
        }
    }

    /// A single put.
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Self::ops(vec![Op::put(key, value)])
    }
}

/// The result of one operation of a transaction, in the order of the branch that ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// A put; carries the previous value, if any.
    Put { prev: Option<KeyValue> },
    /// A delete (of one key or a prefix); carries what was deleted.
    Delete { deleted: Vec<KeyValue> },
    /// A get; carries the value, if the key exists.
    Get { kv: Option<KeyValue> },
}

/// What a committed transaction returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    /// Whether the guards held (and so which branch ran).
    pub succeeded: bool,
    /// The store revision after the transaction: the revision of its writes if it wrote anything.
    pub revision: Revision,
    /// One result per operation of the branch that ran.
    pub results: Vec<OpResult>,
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// The read observes every write acknowledged before it started, on any replica (read-index).
    #[default]
    Linearizable,
    /// The read is served from this replica's state as it is, which may lag the leader.
    Serializable,
}

/// A range read over every key starting with `prefix`, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    /// Only keys starting with this prefix are returned. An exact key is a prefix of itself: use
    /// [`RangeRequest::key`] for a single-key read.
    pub prefix: Bytes,
    /// Continue after this key (exclusive): the last key of the previous page.
    pub start_after: Option<Bytes>,
    /// Return at most this many keys; 0 means no limit.
    pub limit: usize,
    /// Read at this revision; `None` reads the current revision.
    pub revision: Option<Revision>,
    /// Only count the keys; return none.
    pub count_only: bool,
    /// Only the exact key `prefix`, not its descendants.
    pub exact: bool,
    /// Freshness required.
    pub consistency: Consistency,
}

impl RangeRequest {
    /// A read of every key under `prefix`.
    pub fn prefix(prefix: impl Into<Bytes>) -> Self {
        RangeRequest {
            prefix: prefix.into(),
            ..Default::default()
        }
    }

    /// A read of exactly `key`.
    pub fn key(key: impl Into<Bytes>) -> Self {
        RangeRequest {
            prefix: key.into(),
            exact: true,
            ..Default::default()
        }
    }
}

/// What a range read returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    /// Matching keys in key order, at most `limit`.
    pub kvs: Vec<KeyValue>,
    /// Whether keys beyond `limit` match.
    pub more: bool,
    /// Number of matching keys from the start of the request (including those returned).
    pub count: u64,
    /// The revision the read observed.
    pub revision: Revision,
}

/// The kind of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// A key was written (created when `kv.version == 1`).
    Put,
    /// A key was deleted; `kv` carries the key and the deletion's revision, with an empty value.
    Delete,
}

/// One change to one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The key after the change (for deletes: the key, an empty value and the delete revision).
    pub kv: KeyValue,
    /// The key before the change, if it existed.
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    /// The revision of the write that caused this event.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A watch over every key starting with `prefix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchRequest {
    /// Keys watched.
    pub prefix: Bytes,
    /// First revision delivered; `None` starts after the current revision.
    pub start_revision: Option<Revision>,
    /// When set, a progress notification is sent after this long without events.
    pub progress_interval: Option<Duration>,
}

impl WatchRequest {
    /// A watch of `prefix` from `start` (inclusive).
    pub fn prefix(prefix: impl Into<Bytes>, start: Option<Revision>) -> Self {
        WatchRequest {
            prefix: prefix.into(),
            start_revision: start,
            progress_interval: None,
        }
    }
}

/// What a watch stream yields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchResponse {
    /// Events in revision order; events of one transaction come together.
    Events(Vec<Event>),
    /// Every event up to this revision has been delivered (a bookmark).
    Progress(Revision),
}

/// A summary of a store's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// Current revision.
    pub revision: Revision,
    /// Revisions below this one have been compacted away.
    pub compact_revision: Revision,
    /// Number of live keys.
    pub keys: u64,
    /// This replica's raft id (1 for the in-memory store).
    pub member_id: u64,
    /// The current leader's raft id, if known.
    pub leader_id: Option<u64>,
    /// The raft term (0 for the in-memory store).
    pub term: u64,
    /// The last raft log index applied (0 for the in-memory store).
    pub applied_index: u64,
}
