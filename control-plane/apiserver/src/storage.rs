//! Kubernetes objects in the key-value store.
//!
//! Keys are `/registry/<cluster>/<group>/<resource>/[<namespace>/]<name>` (`core` for the core
//! group): every key starts with the logical cluster, so a request scoped to one cluster cannot
//! name another's data. Values are the object's JSON without `metadata.resourceVersion`; on the
//! way out the resourceVersion is set from the key's mod revision, as kube-apiserver does with
//! etcd. Optimistic concurrency is a compare on that mod revision.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use store::{
    Compare, Consistency, Event, EventKind, KeyValue, Op, OpResult, RangeRequest, Revision, Store,
    Txn, WatchRequest, WatchStream,
};

use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceDef;

/// Where objects of `def` live in `cluster`; with `namespace` for namespaced resources.
pub fn object_key(cluster: &str, def: &ResourceDef, namespace: Option<&str>, name: &str) -> Bytes {
    match namespace.filter(|_| def.namespaced) {
        Some(ns) => format!(
            "/registry/{cluster}/{}/{}/{ns}/{name}",
            def.storage_group(),
            def.plural
        ),
        None => format!(
            "/registry/{cluster}/{}/{}/{name}",
            def.storage_group(),
            def.plural
        ),
    }
    .into()
}

/// The prefix of every object of `def` in `cluster` (in `namespace`, if given).
pub fn list_prefix(cluster: &str, def: &ResourceDef, namespace: Option<&str>) -> Bytes {
    match namespace.filter(|_| def.namespaced) {
        Some(ns) => format!(
            "/registry/{cluster}/{}/{}/{ns}/",
            def.storage_group(),
            def.plural
        ),
        None => format!(
            "/registry/{cluster}/{}/{}/",
            def.storage_group(),
            def.plural
        ),
    }
    .into()
}

/// The prefix of everything a logical cluster stores.
pub fn cluster_prefix(cluster: &str) -> Bytes {
    format!("/registry/{cluster}/").into()
}

/// Decodes a stored object and stamps its resourceVersion.
pub fn decode(kv: &KeyValue) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("undecodable object at {:?}: {e}", kv.key)))?;
    set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(obj: &mut Value, rev: Revision) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

/// Encodes an object for storage, without its resourceVersion.
pub fn encode(obj: &Value) -> Vec<u8> {
    if obj.pointer("/metadata/resourceVersion").is_none() {
        return serde_json::to_vec(obj).expect("JSON values always encode");
    }
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(&obj).expect("JSON values always encode")
}

/// The write of an object, expiring after `ttl` if given (Events).
fn put_op(key: &Bytes, obj: &Value, ttl: Option<std::time::Duration>) -> Op {
    Op::Put {
        key: key.clone(),
        value: encode(obj).into(),
        ttl,
    }
}

/// An object a create wrote: as the caller built it (with its resourceVersion), and the bytes
/// the store holds, from which a response can be written without encoding it again.
#[derive(Debug)]
pub struct Created {
    pub object: Value,
    /// The stored encoding (no resourceVersion: that is the revision).
    pub stored: Bytes,
    pub revision: Revision,
}

/// Why a conditional write did not happen.
#[derive(Debug)]
pub enum WriteConflict {
    /// The key does not exist (any more).
    Missing,
    /// The key exists; it holds this object now.
    Changed(Value),
}

/// The object store of the API server: typed access to the key-value store.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn Store>,
    /// Per-cluster accounting of stored objects and bytes, with their limits.
    usage: Option<fairness::Fairness>,
}

/// The logical cluster an object key belongs to (`/registry/<cluster>/...`).
pub fn cluster_of(key: &[u8]) -> Option<&str> {
    let rest = key.strip_prefix(b"/registry/")?;
    let end = rest.iter().position(|b| *b == b'/')?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// A refused write as clients see it: 403, as upstream's quota admission words its refusals.
pub(crate) fn limit_error(rejected: fairness::Rejected) -> ApiError {
    ApiError::forbidden(format!("exceeded quota: {}", rejected.message))
}

/// A page of a list.
#[derive(Debug)]
pub struct Page<T = Value> {
    /// Matching objects, in key order.
    pub items: Vec<T>,
    /// The revision the list was read at.
    pub revision: Revision,
    /// The last key read, when more keys remain.
    pub continue_after: Option<Bytes>,
    /// Keys beyond this page (before filtering), when known.
    pub remaining: Option<u64>,
}

impl Objects {
    /// Objects over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Objects { store, usage: None }
    }

    /// Objects over `store`, counting each cluster's objects and bytes against its limits.
    pub fn with_usage(store: Arc<dyn Store>, usage: fairness::Fairness) -> Self {
        Objects {
            store,
            usage: Some(usage),
        }
    }

    fn record(&self, key: &[u8], objects: i64, bytes: i64) {
        if let (Some(usage), Some(cluster)) = (&self.usage, cluster_of(key)) {
            usage.record(cluster, objects, bytes);
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Reads one object, seeing every write acknowledged before the read (a quorum read).
    pub async fn get(&self, key: &Bytes) -> ApiResult<Option<Value>> {
        self.get_with(key, Consistency::Linearizable).await
    }

    /// Reads one object with the given freshness. Serializable reads are served by this replica
    /// as it is, like upstream's admission plugins reading from informer caches.
    pub async fn get_with(
        &self,
        key: &Bytes,
        consistency: Consistency,
    ) -> ApiResult<Option<Value>> {
        self.get_stored(key, consistency)
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// Reads one object as the store holds it (its revision is `mod_revision`), for callers
    /// that need only a field or two of it.
    pub async fn get_stored(
        &self,
        key: &Bytes,
        consistency: Consistency,
    ) -> ApiResult<Option<KeyValue>> {
        let resp = self
            .store
            .range(RangeRequest {
                consistency,
                ..RangeRequest::key(key.clone())
            })
            .await?;
        Ok(resp.kvs.into_iter().next())
    }

    /// Creates an object if its key is free. `Ok(None)` when the key exists.
    pub async fn create(&self, key: &Bytes, obj: &Value) -> ApiResult<Option<Value>> {
        let created = self.create_with(key, obj.clone(), &[], None).await?;
        Ok(created.map(|c| c.object))
    }

    /// Creates an object and claims `claims` (allocation keys) in one transaction, if the key
    /// and every claim are free. `Ok(None)` when any of them is taken.
    pub async fn create_with(
        &self,
        key: &Bytes,
        mut obj: Value,
        claims: &[Bytes],
        ttl: Option<std::time::Duration>,
    ) -> ApiResult<Option<Created>> {
        let put = put_op(key, &obj, ttl);
        let (len, stored) = match &put {
            Op::Put { value, .. } => (value.len() as i64, value.clone()),
            _ => (0, Bytes::new()),
        };
        if let (Some(usage), Some(cluster)) = (&self.usage, cluster_of(key)) {
            usage.check_growth(cluster, 1, len).map_err(limit_error)?;
        }
        let mut compare = vec![Compare::absent(key.clone())];
        let mut success = vec![put];
        for c in claims {
            compare.push(Compare::absent(c.clone()));
            success.push(Op::put(c.clone(), key.clone()));
        }
        let txn = Txn {
            compare,
            success,
            failure: vec![],
        };
        let resp = self.store.txn(txn).await?;
        if !resp.succeeded {
            return Ok(None);
        }
        self.record(key, 1, len);
        set_resource_version(&mut obj, resp.revision);
        Ok(Some(Created {
            object: obj,
            stored,
            revision: resp.revision,
        }))
    }

    /// Writes `obj` if the key is still at `expected` revision.
    pub async fn update(
        &self,
        key: &Bytes,
        expected: Revision,
        obj: &Value,
    ) -> ApiResult<Result<Value, WriteConflict>> {
        self.update_with(key, expected, obj, &Default::default(), None)
            .await
    }

    /// Writes `obj` and claims and releases allocation keys, in one transaction. A claim that
    /// is taken shows as `WriteConflict::Changed` with the current object.
    pub(crate) async fn update_with(
        &self,
        key: &Bytes,
        expected: Revision,
        obj: &Value,
        alloc: &crate::alloc::Allocation,
        ttl: Option<std::time::Duration>,
    ) -> ApiResult<Result<Value, WriteConflict>> {
        let put = put_op(key, obj, ttl);
        let len = match &put {
            Op::Put { value, .. } => value.len() as i64,
            _ => 0,
        };
        let mut compare = vec![Compare::mod_revision(key.clone(), expected)];
        let mut success = vec![put];
        for c in &alloc.claim {
            compare.push(Compare::absent(c.clone()));
            success.push(Op::put(c.clone(), key.clone()));
        }
        success.extend(alloc.release.iter().map(|r| Op::delete(r.clone())));
        let txn = Txn {
            compare,
            success,
            failure: vec![Op::get(key.clone())],
        };
        let resp = self.store.txn(txn).await?;
        if resp.succeeded {
            if let Some(OpResult::Put { prev }) = resp.results.first() {
                let before = prev.as_ref().map_or(0, |kv| kv.value.len() as i64);
                self.record(key, 0, len - before);
            }
            let mut obj = obj.clone();
            set_resource_version(&mut obj, resp.revision);
            return Ok(Ok(obj));
        }
        Ok(Err(conflict_from(&resp.results)?))
    }

    /// Deletes the key if it is still at `expected` revision; returns the deleted object.
    pub async fn delete(
        &self,
        key: &Bytes,
        expected: Revision,
    ) -> ApiResult<Result<Value, WriteConflict>> {
        self.delete_with(key, expected, &[]).await
    }

    /// Deletes the key and releases allocation keys in one transaction.
    pub async fn delete_with(
        &self,
        key: &Bytes,
        expected: Revision,
        release: &[Bytes],
    ) -> ApiResult<Result<Value, WriteConflict>> {
        let mut success = vec![Op::delete(key.clone())];
        success.extend(release.iter().map(|r| Op::delete(r.clone())));
        let txn = Txn {
            compare: vec![Compare::mod_revision(key.clone(), expected)],
            success,
            failure: vec![Op::get(key.clone())],
        };
        let resp = self.store.txn(txn).await?;
        if resp.succeeded {
            let Some(OpResult::Delete { deleted }) = resp.results.first() else {
                return Err(ApiError::internal("delete returned no result"));
            };
            let Some(kv) = deleted.first() else {
                return Ok(Err(WriteConflict::Missing));
            };
            self.record(key, -1, -(kv.value.len() as i64));
            return Ok(Ok(decode(kv)?));
        }
        Ok(Err(conflict_from(&resp.results)?))
    }

    /// Reads one page under `prefix`. `filter` decides which objects count towards `limit`;
    /// reading goes on until `limit` objects matched or the prefix is exhausted, as
    /// kube-apiserver's etcd storage does.
    pub async fn list(
        &self,
        prefix: &Bytes,
        revision: Option<Revision>,
        consistency: Consistency,
        start_after: Option<Bytes>,
        limit: usize,
        filter: &(dyn Fn(&Value) -> bool + Sync),
    ) -> ApiResult<Page> {
        let pick = |kv: &KeyValue| -> ApiResult<Option<Value>> {
            let obj = decode(kv)?;
            Ok(filter(&obj).then_some(obj))
        };
        self.list_with(prefix, revision, consistency, start_after, limit, &pick)
            .await
    }

    /// Reads one page under `prefix` as stored, undecoded: for lists that select nothing and
    /// serve objects as they are stored.
    pub async fn list_stored(
        &self,
        prefix: &Bytes,
        revision: Option<Revision>,
        consistency: Consistency,
        start_after: Option<Bytes>,
        limit: usize,
    ) -> ApiResult<Page<KeyValue>> {
        let pick = |kv: &KeyValue| -> ApiResult<Option<KeyValue>> { Ok(Some(kv.clone())) };
        self.list_with(prefix, revision, consistency, start_after, limit, &pick)
            .await
    }

    /// [`Objects::list`] with `pick` deciding what each key-value becomes (`None`: it does not
    /// match, and does not count towards `limit`).
    async fn list_with<T>(
        &self,
        prefix: &Bytes,
        revision: Option<Revision>,
        consistency: Consistency,
        start_after: Option<Bytes>,
        limit: usize,
        pick: &(dyn Fn(&KeyValue) -> ApiResult<Option<T>> + Sync),
    ) -> ApiResult<Page<T>> {
        let mut items = Vec::new();
        let mut start = start_after;
        let mut revision = revision;
        let batch = if limit == 0 { 0 } else { limit.max(64) };
        loop {
            let req = RangeRequest {
                prefix: prefix.clone(),
                start_after: start.clone(),
                limit: batch,
                revision,
                consistency,
                ..Default::default()
            };
            let resp = self.store.range(req).await?;
            // Later pages of one list are read at the revision of the first.
            revision = Some(resp.revision);
            let total = resp.count;
            for (i, kv) in resp.kvs.iter().enumerate() {
                if let Some(item) = pick(kv)? {
                    items.push(item);
                    if limit > 0 && items.len() == limit {
                        let read = i as u64 + 1;
                        let more = read < total;
                        return Ok(Page {
                            items,
                            revision: resp.revision,
                            continue_after: more.then(|| kv.key.clone()),
                            remaining: more.then(|| total - read),
                        });
                    }
                }
            }
            if !resp.more {
                return Ok(Page {
                    items,
                    revision: resp.revision,
                    continue_after: None,
                    remaining: None,
                });
            }
            start = resp.kvs.last().map(|kv| kv.key.clone());
        }
    }

    /// Watches `prefix` from `start` (inclusive).
    pub async fn watch(
        &self,
        prefix: &Bytes,
        start: Revision,
        progress: Option<std::time::Duration>,
    ) -> ApiResult<WatchStream> {
        let mut req = WatchRequest::prefix(prefix.clone(), Some(start));
        req.progress_interval = progress;
        Ok(self.store.watch(req).await?)
    }
}

fn conflict_from(results: &[OpResult]) -> ApiResult<WriteConflict> {
    match results.first() {
        Some(OpResult::Get { kv: Some(kv) }) => Ok(WriteConflict::Changed(decode(kv)?)),
        Some(OpResult::Get { kv: None }) => Ok(WriteConflict::Missing),
        other => Err(ApiError::internal(format!(
            "unexpected txn result {other:?}"
        ))),
    }
}

/// A store event as an object change: the object after (for deletes, the last state, stamped with
/// the deletion's revision) and before.
pub fn event_objects(event: &Event) -> ApiResult<(EventKind, Value, Option<Value>)> {
    let prev = event.prev_kv.as_ref().map(decode).transpose()?;
    match event.kind {
        EventKind::Put => Ok((EventKind::Put, decode(&event.kv)?, prev)),
        EventKind::Delete => {
            let mut obj = prev
                .clone()
                .ok_or_else(|| ApiError::internal("delete event without previous value"))?;
            set_resource_version(&mut obj, event.kv.mod_revision);
            Ok((EventKind::Delete, obj, prev))
        }
    }
}
