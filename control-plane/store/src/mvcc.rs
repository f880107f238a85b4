//! The multi-version key space: a pure, deterministic state machine.
//!
//! [`Mvcc`] holds every key's versions since the last compaction and applies transactions at the
//! next revision. It knows no clocks, threads, disks or networks: the caller passes the time of a
//! write in, so every replica that applies the same transactions in the same order reaches the
//! same state. Both store implementations wrap it: the in-memory store directly, the raft store as
//! its state machine.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::ops::Bound;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::types::{
    Compare, CompareOp, CompareTarget, Event, EventKind, INITIAL_REVISION, KeyValue, MAX_KEY_BYTES,
    Op, OpResult, RangeRequest, RangeResponse, Revision, Txn, TxnResponse,
};

/// Limits a transaction must respect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest value accepted, in bytes.
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_bytes: crate::types::DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// One version of a key. A version without a value is a deletion (tombstone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Version {
    mod_rev: Revision,
    create_rev: Revision,
    version: u64,
    value: Option<Bytes>,
    expires_at_ms: Option<u64>,
}

impl Version {
    fn to_kv(&self, key: &Bytes) -> Option<KeyValue> {
        self.value.as_ref().map(|value| KeyValue {
            key: key.clone(),
            value: value.clone(),
            create_revision: self.create_rev,
            mod_revision: self.mod_rev,
            version: self.version,
            expires_at_ms: self.expires_at_ms,
        })
    }
}

/// Versions of one key in ascending revision order; never empty.
type History = Vec<Version>;

fn version_at(history: &History, rev: Revision) -> Option<&Version> {
    let idx = history.partition_point(|v| v.mod_rev <= rev);
    idx.checked_sub(1).map(|i| &history[i])
}

fn latest_live(history: &History) -> Option<&Version> {
    history.last().filter(|v| v.value.is_some())
}

/// Checks a transaction against the limits before it is proposed or applied.
pub fn validate(txn: &Txn, limits: &Limits) -> Result<()> {
    for branch in [&txn.success, &txn.failure] {
        let mut written: HashSet<&Bytes> = HashSet::new();
        let mut prefixes: Vec<&Bytes> = Vec::new();
        for op in branch.iter() {
            match op {
                Op::Put { key, value, .. } => {
                    validate_key(key)?;
                    if value.len() > limits.max_value_bytes {
                        return Err(StoreError::ValueTooLarge {
                            size: value.len(),
                            limit: limits.max_value_bytes,
                        });
                    }
                    if !written.insert(key) {
                        return Err(StoreError::DuplicateKey(
                            String::from_utf8_lossy(key).into(),
                        ));
                    }
                }
                Op::Delete { key } => {
                    validate_key(key)?;
                    if !written.insert(key) {
                        return Err(StoreError::DuplicateKey(
                            String::from_utf8_lossy(key).into(),
                        ));
                    }
                }
                Op::DeletePrefix { prefix } => {
                    if prefix.len() > MAX_KEY_BYTES {
                        return Err(StoreError::InvalidKey(format!(
                            "prefix of {} bytes exceeds {MAX_KEY_BYTES}",
                            prefix.len()
                        )));
                    }
                    prefixes.push(prefix);
                }
                Op::Get { key } => validate_key(key)?,
            }
        }
        if let Some(key) = written
            .iter()
            .find(|k| prefixes.iter().any(|p| k.starts_with(p)))
        {
            return Err(StoreError::DuplicateKey(
                String::from_utf8_lossy(key).into(),
            ));
        }
    }
    for cmp in &txn.compare {
        validate_key(&cmp.key)?;
    }
    Ok(())
}

fn validate_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::InvalidKey("key is empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::InvalidKey(format!(
            "key of {} bytes exceeds {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

/// The key space with its history since the last compaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mvcc {
    revision: Revision,
    compact_revision: Revision,
    keys: BTreeMap<Bytes, History>,
    /// Every write since the last compaction, in revision order: the index watchers catch up from.
    changes: VecDeque<(Revision, Bytes)>,
    /// Live keys written with a TTL, by expiry time. Derived from `keys`.
    #[serde(skip)]
    expiry: BTreeSet<(u64, Bytes)>,
    /// Number of live keys. Derived from `keys`.
    #[serde(skip)]
    live: u64,
}

impl Default for Mvcc {
    fn default() -> Self {
        Mvcc {
            revision: INITIAL_REVISION,
            compact_revision: 0,
            keys: BTreeMap::new(),
            changes: VecDeque::new(),
            expiry: BTreeSet::new(),
            live: 0,
        }
    }
}

impl Mvcc {
    /// An empty key space at the initial revision.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current revision.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// Revisions below this one are compacted; 0 when nothing was compacted.
    pub fn compact_revision(&self) -> Revision {
        self.compact_revision
    }

    /// Number of live keys.
    pub fn len(&self) -> u64 {
        self.live
    }

    /// Whether no key is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Rebuilds the derived indexes after deserialisation and checks the invariants that a
    /// damaged or foreign snapshot would break.
    pub fn restore_derived(&mut self) -> Result<()> {
        self.expiry.clear();
        self.live = 0;
        for (key, history) in &self.keys {
            if history.is_empty() || history.windows(2).any(|w| w[0].mod_rev >= w[1].mod_rev) {
                return Err(StoreError::Corrupt(format!(
                    "history of key {key:?} is out of order"
                )));
            }
            if history.last().is_some_and(|v| v.mod_rev > self.revision) {
                return Err(StoreError::Corrupt(format!(
                    "key {key:?} is newer than the store"
                )));
            }
            if let Some(v) = latest_live(history) {
                self.live += 1;
                if let Some(at) = v.expires_at_ms {
                    self.expiry.insert((at, key.clone()));
                }
            }
        }
        Ok(())
    }

    /// Applies `txn` at the next revision. `now_ms` is the time the write was proposed, used for
    /// TTLs. Returns the response and the events it caused, in the order of its operations.
    pub fn apply(
        &mut self,
        txn: &Txn,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<(TxnResponse, Vec<Event>)> {
        validate(txn, limits)?;
        let succeeded = txn.compare.iter().all(|c| self.compare_holds(c));
        let branch = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let rev = self.revision + 1;
        let mut results = Vec::with_capacity(branch.len());
        let mut events = Vec::new();
        for op in branch {
            let result = match op {
                Op::Put { key, value, ttl } => {
                    let expires_at_ms = ttl.map(|t| now_ms.saturating_add(t.as_millis() as u64));
                    let prev = self.put(key, value, expires_at_ms, rev);
                    let kv = self.keys[key]
                        .last()
                        .and_then(|v| v.to_kv(key))
                        .expect("just written");
                    events.push(Event {
                        kind: EventKind::Put,
                        kv,
                        prev_kv: prev.clone(),
                    });
                    OpResult::Put { prev }
                }
                Op::Delete { key } => {
                    let deleted: Vec<KeyValue> = self.delete(key, rev).into_iter().collect();
                    events.extend(deleted.iter().map(|prev| tombstone_event(prev, rev)));
                    OpResult::Delete { deleted }
                }
                Op::DeletePrefix { prefix } => {
                    let keys: Vec<Bytes> = self
                        .keys
                        .range::<[u8], _>((Bound::Included(&prefix[..]), Bound::Unbounded))
                        .take_while(|(k, _)| k.starts_with(prefix))
                        .filter(|(_, h)| latest_live(h).is_some())
                        .map(|(k, _)| k.clone())
                        .collect();
                    let mut deleted = Vec::with_capacity(keys.len());
                    for key in keys {
                        if let Some(prev) = self.delete(&key, rev) {
                            events.push(tombstone_event(&prev, rev));
                            deleted.push(prev);
                        }
                    }
                    OpResult::Delete { deleted }
                }
                Op::Get { key } => OpResult::Get {
                    kv: self
                        .keys
                        .get(key)
                        .and_then(|h| latest_live(h))
                        .and_then(|v| v.to_kv(key)),
                },
            };
            results.push(result);
        }
        if !events.is_empty() {
            self.revision = rev;
        }
        Ok((
            TxnResponse {
                succeeded,
                revision: self.revision,
                results,
            },
            events,
        ))
    }

    fn compare_holds(&self, cmp: &Compare) -> bool {
        let current = self.keys.get(&cmp.key).and_then(|h| latest_live(h));
        let ordering = match &cmp.target {
            CompareTarget::ModRevision(r) => current.map_or(0, |v| v.mod_rev).cmp(r),
            CompareTarget::CreateRevision(r) => current.map_or(0, |v| v.create_rev).cmp(r),
            CompareTarget::Version(n) => current.map_or(0, |v| v.version).cmp(n),
            CompareTarget::Value(value) => match current.and_then(|v| v.value.as_ref()) {
                Some(stored) => stored.cmp(value),
                // A missing key equals no value and orders before every value.
                None => return cmp.op == CompareOp::NotEqual,
            },
        };
        match cmp.op {
            CompareOp::Equal => ordering.is_eq(),
            CompareOp::NotEqual => ordering.is_ne(),
            CompareOp::Less => ordering.is_lt(),
            CompareOp::Greater => ordering.is_gt(),
        }
    }

    fn put(
        &mut self,
        key: &Bytes,
        value: &Bytes,
        expires_at_ms: Option<u64>,
        rev: Revision,
    ) -> Option<KeyValue> {
        let history = self.keys.entry(key.clone()).or_default();
        let prev = latest_live(history).cloned();
        let version = Version {
            mod_rev: rev,
            create_rev: prev.as_ref().map_or(rev, |p| p.create_rev),
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: Some(value.clone()),
            expires_at_ms,
        };
        history.push(version);
        self.changes.push_back((rev, key.clone()));
        if let Some(at) = prev.as_ref().and_then(|p| p.expires_at_ms) {
            self.expiry.remove(&(at, key.clone()));
        }
        if let Some(at) = expires_at_ms {
            self.expiry.insert((at, key.clone()));
        }
        if prev.is_none() {
            self.live += 1;
        }
        prev.and_then(|p| p.to_kv(key))
    }

    fn delete(&mut self, key: &Bytes, rev: Revision) -> Option<KeyValue> {
        let history = self.keys.get_mut(key)?;
        let prev = latest_live(history)?.clone();
        history.push(Version {
            mod_rev: rev,
            create_rev: 0,
            version: 0,
            value: None,
            expires_at_ms: None,
        });
        self.changes.push_back((rev, key.clone()));
        if let Some(at) = prev.expires_at_ms {
            self.expiry.remove(&(at, key.clone()));
        }
        self.live -= 1;
        prev.to_kv(key)
    }

    /// Checks that `rev` can be read: not compacted, not in the future. `None` means current.
    pub fn check_read_revision(&self, rev: Option<Revision>) -> Result<Revision> {
        let rev = rev.filter(|r| *r != 0).unwrap_or(self.revision);
        if rev > self.revision {
            return Err(StoreError::FutureRevision {
                requested: rev,
                current: self.revision,
            });
        }
        if rev < self.compact_revision {
            return Err(StoreError::Compacted {
                requested: rev,
                compacted: self.compact_revision,
            });
        }
        Ok(rev)
    }

    /// Reads keys as `req` asks. `req.consistency` is the caller's business, not this one's.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let rev = self.check_read_revision(req.revision)?;
        let mut kvs = Vec::new();
        let mut count = 0u64;
        let mut visit = |key: &Bytes, history: &History| {
            if let Some(kv) = version_at(history, rev).and_then(|v| v.to_kv(key)) {
                count += 1;
                if !req.count_only && (req.limit == 0 || kvs.len() < req.limit) {
                    kvs.push(kv);
                }
            }
        };
        if req.exact {
            if let Some(history) = self.keys.get(&req.prefix)
                && req.start_after.as_ref().is_none_or(|s| s < &req.prefix)
            {
                visit(&req.prefix, history);
            }
        } else {
            let lower = match &req.start_after {
                Some(after) if after >= &req.prefix => Bound::Excluded(&after[..]),
                _ => Bound::Included(&req.prefix[..]),
            };
            for (key, history) in self
                .keys
                .range::<[u8], _>((lower, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(&req.prefix))
            {
                visit(key, history);
            }
        }
        let more = count > kvs.len() as u64 && !req.count_only;
        Ok(RangeResponse {
            kvs,
            more,
            count,
            revision: rev,
        })
    }

    /// Every event on keys under `prefix` with a revision in `from..=to`, in revision order.
    /// Fails with [`StoreError::Compacted`] when `from` is not above the compaction revision,
    /// since the previous values of those events are gone.
    pub fn events(&self, prefix: &[u8], from: Revision, to: Revision) -> Result<Vec<Event>> {
        if from <= self.compact_revision {
            return Err(StoreError::Compacted {
                requested: from,
                compacted: self.compact_revision,
            });
        }
        let start = self.changes.partition_point(|(rev, _)| *rev < from);
        let mut events = Vec::new();
        for (rev, key) in self.changes.range(start..) {
            if *rev > to {
                break;
            }
            if !key.starts_with(prefix) {
                continue;
            }
            let history = &self.keys[key];
            let idx = history.partition_point(|v| v.mod_rev < *rev);
            let prev_kv = idx.checked_sub(1).and_then(|i| history[i].to_kv(key));
            let current = &history[idx];
            events.push(match current.to_kv(key) {
                Some(kv) => Event {
                    kind: EventKind::Put,
                    kv,
                    prev_kv,
                },
                None => {
                    tombstone_event(prev_kv.as_ref().expect("a deletion follows a value"), *rev)
                }
            });
        }
        Ok(events)
    }

    /// Drops history below `rev`: afterwards reads at revisions `>= rev` still work, and watches
    /// can start at revisions `> rev`.
    pub fn compact(&mut self, rev: Revision) -> Result<()> {
        if rev > self.revision {
            return Err(StoreError::FutureRevision {
                requested: rev,
                current: self.revision,
            });
        }
        if rev <= self.compact_revision {
            return Err(StoreError::Compacted {
                requested: rev,
                compacted: self.compact_revision,
            });
        }
        while let Some((change_rev, _)) = self.changes.front() {
            if *change_rev > rev {
                break;
            }
            let (_, key) = self.changes.pop_front().expect("front exists");
            let Some(history) = self.keys.get_mut(&key) else {
                continue;
            };
            // Keep the newest version at or below `rev` if it holds a value, and all newer ones.
            let keep_from = history.partition_point(|v| v.mod_rev <= rev);
            let keep_from = match keep_from.checked_sub(1) {
                Some(i) if history[i].value.is_some() => i,
                _ => keep_from,
            };
            history.drain(..keep_from);
            if history.is_empty() {
                self.keys.remove(&key);
            }
        }
        self.compact_revision = rev;
        Ok(())
    }

    /// Live keys whose TTL has run out at `now_ms`, with the revision that wrote them. Deleting
    /// them guarded by that revision leaves keys rewritten in the meantime alone.
    pub fn expired(&self, now_ms: u64, max: usize) -> Vec<(Bytes, Revision)> {
        self.expiry
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .take(max)
            .filter_map(|(_, key)| {
                let v = latest_live(self.keys.get(key)?)?;
                Some((key.clone(), v.mod_rev))
            })
            .collect()
    }
}

fn tombstone_event(prev: &KeyValue, rev: Revision) -> Event {
    Event {
        kind: EventKind::Delete,
        kv: KeyValue {
            key: prev.key.clone(),
            value: Bytes::new(),
            create_revision: 0,
            mod_revision: rev,
            version: 0,
            expires_at_ms: None,
        },
        prev_kv: Some(prev.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(m: &mut Mvcc, k: &str, v: &str) -> TxnResponse {
        m.apply(&Txn::put(k.to_owned(), v.to_owned()), 0, &Limits::default())
            .unwrap()
            .0
    }

    fn del(m: &mut Mvcc, k: &str) -> TxnResponse {
        m.apply(
            &Txn::ops(vec![Op::delete(k.to_owned())]),
            0,
            &Limits::default(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn revisions_versions_and_create_revision_follow_etcd() {
        let mut m = Mvcc::new();
        assert_eq!(m.revision(), 1);
        assert_eq!(put(&mut m, "a", "1").revision, 2);
        assert_eq!(put(&mut m, "a", "2").revision, 3);
        let kv = m.range(&RangeRequest::key("a")).unwrap().kvs.remove(0);
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
        assert_eq!(del(&mut m, "a").revision, 4);
        // Deleting a missing key writes nothing and keeps the revision.
        assert_eq!(del(&mut m, "a").revision, 4);
        assert_eq!(put(&mut m, "a", "3").revision, 5);
        let kv = m.range(&RangeRequest::key("a")).unwrap().kvs.remove(0);
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
    }

    #[test]
    fn range_at_old_revision_sees_old_values() {
        let mut m = Mvcc::new();
        put(&mut m, "k/a", "1");
        put(&mut m, "k/b", "1");
        put(&mut m, "k/a", "2");
        del(&mut m, "k/b");
        let at = |rev| {
            let req = RangeRequest {
                revision: Some(rev),
                ..RangeRequest::prefix("k/")
            };
            m.range(&req)
                .unwrap()
                .kvs
                .into_iter()
                .map(|kv| kv.value)
                .collect::<Vec<_>>()
        };
        assert_eq!(at(2), vec![Bytes::from("1")]);
        assert_eq!(at(3), vec![Bytes::from("1"), Bytes::from("1")]);
        assert_eq!(at(4), vec![Bytes::from("2"), Bytes::from("1")]);
        assert_eq!(at(5), vec![Bytes::from("2")]);
        assert!(matches!(
            m.range(&RangeRequest {
                revision: Some(6),
                ..RangeRequest::prefix("k/")
            }),
            Err(StoreError::FutureRevision {
                requested: 6,
                current: 5
            })
        ));
    }

    #[test]
    fn compaction_keeps_state_at_its_revision_and_refuses_older_reads() {
        let mut m = Mvcc::new();
        put(&mut m, "a", "1"); // 2
        put(&mut m, "a", "2"); // 3
        put(&mut m, "b", "1"); // 4
        del(&mut m, "b"); // 5
        put(&mut m, "a", "3"); // 6
        m.compact(5).unwrap();
        assert!(matches!(
            m.range(&RangeRequest {
                revision: Some(4),
                ..RangeRequest::prefix("")
            }),
            Err(StoreError::Compacted {
                requested: 4,
                compacted: 5
            })
        ));
        let at5 = m
            .range(&RangeRequest {
                revision: Some(5),
                ..RangeRequest::prefix("")
            })
            .unwrap();
        assert_eq!(at5.kvs.len(), 1);
        assert_eq!(at5.kvs[0].value, Bytes::from("2"));
        assert!(
            !m.keys.contains_key(&Bytes::from("b")),
            "tombstoned key is gone"
        );
        assert!(matches!(
            m.events(b"", 5, 6),
            Err(StoreError::Compacted { .. })
        ));
        let events = m.events(b"", 6, 6).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].prev_kv.as_ref().unwrap().value, Bytes::from("2"));
        assert!(matches!(m.compact(5), Err(StoreError::Compacted { .. })));
    }

    #[test]
    fn events_carry_previous_values_in_revision_order() {
        let mut m = Mvcc::new();
        put(&mut m, "p/a", "1");
        put(&mut m, "q/x", "1");
        put(&mut m, "p/a", "2");
        del(&mut m, "p/a");
        let events = m.events(b"p/", 1, m.revision()).unwrap();
        let summary: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.kind,
                    e.revision(),
                    e.prev_kv.as_ref().map(|p| p.value.clone()),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (EventKind::Put, 2, None),
                (EventKind::Put, 4, Some(Bytes::from("1"))),
                (EventKind::Delete, 5, Some(Bytes::from("2"))),
            ]
        );
    }

    #[test]
    fn transactions_compare_then_branch() {
        let mut m = Mvcc::new();
        let create = Txn {
            compare: vec![Compare::absent("a")],
            success: vec![Op::put("a", "1")],
            failure: vec![Op::get("a")],
        };
        let (first, _) = m.apply(&create, 0, &Limits::default()).unwrap();
        assert!(first.succeeded);
        let (second, events) = m.apply(&create, 0, &Limits::default()).unwrap();
        assert!(!second.succeeded);
        assert!(events.is_empty());
        assert_eq!(second.revision, 2);
        match &second.results[0] {
            OpResult::Get { kv: Some(kv) } => assert_eq!(kv.value, Bytes::from("1")),
            other => panic!("unexpected {other:?}"),
        }
        let stale = Txn {
            compare: vec![Compare::mod_revision("a", 1)],
            success: vec![Op::put("a", "2")],
            failure: vec![],
        };
        assert!(!m.apply(&stale, 0, &Limits::default()).unwrap().0.succeeded);
    }

    #[test]
    fn invalid_transactions_are_refused_before_any_write() {
        let mut m = Mvcc::new();
        let limits = Limits { max_value_bytes: 4 };
        let too_big = Txn::put("a", "12345");
        assert!(matches!(
            m.apply(&too_big, 0, &limits),
            Err(StoreError::ValueTooLarge { .. })
        ));
        let dup = Txn::ops(vec![Op::put("a", "1"), Op::delete("a")]);
        assert!(matches!(
            m.apply(&dup, 0, &limits),
            Err(StoreError::DuplicateKey(_))
        ));
        let empty = Txn::put("", "1");
        assert!(matches!(
            m.apply(&empty, 0, &limits),
            Err(StoreError::InvalidKey(_))
        ));
        let in_prefix = Txn::ops(vec![
            Op::put("p/a", "1"),
            Op::DeletePrefix {
                prefix: Bytes::from("p/"),
            },
        ]);
        assert!(matches!(
            m.apply(&in_prefix, 0, &limits),
            Err(StoreError::DuplicateKey(_))
        ));
        assert_eq!(m.revision(), 1);
        assert!(m.is_empty());
    }

    #[test]
    fn pagination_counts_and_continues() {
        let mut m = Mvcc::new();
        for i in 0..10 {
            put(&mut m, &format!("k/{i}"), "v");
        }
        let mut req = RangeRequest {
            limit: 4,
            ..RangeRequest::prefix("k/")
        };
        let page = m.range(&req).unwrap();
        assert_eq!((page.kvs.len(), page.more, page.count), (4, true, 10));
        req.start_after = Some(page.kvs[3].key.clone());
        let page = m.range(&req).unwrap();
        assert_eq!((page.kvs.len(), page.more, page.count), (4, true, 6));
        assert_eq!(page.kvs[0].key, Bytes::from("k/4"));
    }

    #[test]
    fn ttl_keys_are_reported_expired_until_deleted() {
        let mut m = Mvcc::new();
        let txn = Txn::ops(vec![Op::Put {
            key: Bytes::from("e"),
            value: Bytes::from("v"),
            ttl: Some(std::time::Duration::from_secs(10)),
        }]);
        m.apply(&txn, 1_000, &Limits::default()).unwrap();
        assert!(m.expired(10_999, 10).is_empty());
        assert_eq!(m.expired(11_000, 10), vec![(Bytes::from("e"), 2)]);
        put(&mut m, "e", "no ttl");
        assert!(
            m.expired(u64::MAX, 10).is_empty(),
            "rewriting without TTL clears the expiry"
        );
    }

    #[test]
    fn snapshot_round_trip_rebuilds_derived_state() {
        let mut m = Mvcc::new();
        put(&mut m, "a", "1");
        put(&mut m, "b", "1");
        del(&mut m, "a");
        let bytes = postcard::to_allocvec(&m).unwrap();
        let mut back: Mvcc = postcard::from_bytes(&bytes).unwrap();
        back.restore_derived().unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back.revision(), 4);
        assert_eq!(
            back.events(b"", 2, 4).unwrap(),
            m.events(b"", 2, 4).unwrap()
        );
    }
}
