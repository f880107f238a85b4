//! The conformance suite every [`Store`] implementation must pass.
//!
//! Each case takes a fresh, empty store. An implementation runs the whole suite with
//! [`store_conformance!`](crate::store_conformance), which expands to one `#[tokio::test]` per
//! case, so a failure names the case.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{
    Compare, EventKind, Op, OpResult, RangeRequest, Store, StoreError, Txn, WatchRequest,
    WatchResponse,
};

/// Expands to one `#[tokio::test]` per conformance case. `$make` is an async expression (it may
/// use `.await`) producing an `Arc<dyn Store>` (or anything that derefs to a `Store`) that is
/// empty, plus a guard value kept alive for the duration of the test (e.g. a temp dir).
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@cases $make;
            revisions_and_versions, transactions_compare_and_swap, ranges_paginate_at_a_revision,
            watch_delivers_backlog_then_live_events, watch_under_concurrent_writers_has_no_gaps,
            watch_from_compacted_revision_fails, watch_sends_progress_notifications,
            compaction_keeps_current_state, ttl_keys_expire_with_a_delete_event,
            bad_input_is_refused_and_writes_nothing, snapshot_is_written);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $make;
                $crate::testing::$case(store).await;
            }
        )*
    };
}

fn b(s: impl Into<String>) -> Bytes {
    Bytes::from(s.into())
}

async fn next_events(stream: &mut crate::WatchStream, timeout: Duration) -> Vec<crate::Event> {
    loop {
        match tokio::time::timeout(timeout, stream.next()).await {
            Ok(Some(Ok(WatchResponse::Events(events)))) => return events,
            Ok(Some(Ok(WatchResponse::Progress(_)))) => continue,
            Ok(Some(Err(e))) => panic!("watch failed: {e}"),
            Ok(None) => panic!("watch ended"),
            Err(_) => panic!("no watch event within {timeout:?}"),
        }
    }
}

/// Revisions start at 1, advance by one per writing transaction, and keys track versions.
pub async fn revisions_and_versions<S: Store + ?Sized>(store: Arc<S>) {
    let start = store.status().await.unwrap().revision;
    let r1 = store.put(b"/r/a", b"1").await.unwrap();
    assert_eq!(r1, start + 1);
    let r2 = store.put(b"/r/a", b"2").await.unwrap();
    assert_eq!(r2, r1 + 1);
    let kv = store.get(b"/r/a").await.unwrap().unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r2, 2)
    );
    assert_eq!(kv.value, b("2"));
    assert!(store.delete(b"/r/a").await.unwrap());
    assert!(
        !store.delete(b"/r/a").await.unwrap(),
        "second delete finds nothing"
    );
    assert_eq!(
        store.status().await.unwrap().revision,
        r2 + 1,
        "a no-op delete writes nothing"
    );
    assert!(store.get(b"/r/a").await.unwrap().is_none());
    let r4 = store.put(b"/r/a", b"3").await.unwrap();
    let kv = store.get(b"/r/a").await.unwrap().unwrap();
    assert_eq!(
        (kv.create_revision, kv.version),
        (r4, 1),
        "re-creation starts a new generation"
    );
}

/// Guards decide the branch; create-if-absent and update-if-unchanged work.
pub async fn transactions_compare_and_swap<S: Store + ?Sized>(store: Arc<S>) {
    let create = |v: &str| Txn {
        compare: vec![Compare::absent("/t/k")],
        success: vec![Op::put("/t/k", v.to_owned())],
        failure: vec![Op::get("/t/k")],
    };
    let first = store.txn(create("1")).await.unwrap();
    assert!(first.succeeded);
    let second = store.txn(create("2")).await.unwrap();
    assert!(!second.succeeded, "the key exists");
    let OpResult::Get { kv: Some(current) } = &second.results[0] else {
        panic!("{second:?}")
    };
    assert_eq!(current.value, b("1"));

    let update = |rev, v: &str| Txn {
        compare: vec![Compare::mod_revision("/t/k", rev)],
        success: vec![Op::put("/t/k", v.to_owned())],
        failure: vec![Op::get("/t/k")],
    };
    let ok = store.txn(update(first.revision, "3")).await.unwrap();
    assert!(ok.succeeded);
    let OpResult::Put { prev: Some(prev) } = &ok.results[0] else {
        panic!("{ok:?}")
    };
    assert_eq!(prev.value, b("1"));
    let stale = store.txn(update(first.revision, "4")).await.unwrap();
    assert!(!stale.succeeded, "a stale revision loses");
    assert_eq!(store.get(b"/t/k").await.unwrap().unwrap().value, b("3"));

    // Several keys in one transaction share one revision.
    let multi = store
        .txn(Txn::ops(vec![Op::put("/t/x", "1"), Op::put("/t/y", "1")]))
        .await
        .unwrap();
    let x = store.get(b"/t/x").await.unwrap().unwrap();
    let y = store.get(b"/t/y").await.unwrap().unwrap();
    assert_eq!(
        (x.mod_revision, y.mod_revision),
        (multi.revision, multi.revision)
    );

    let gone = store
        .txn(Txn::ops(vec![Op::DeletePrefix { prefix: b("/t/") }]))
        .await
        .unwrap();
    let OpResult::Delete { deleted } = &gone.results[0] else {
        panic!("{gone:?}")
    };
    assert_eq!(deleted.len(), 3);
}

/// Ranges honour prefix, limit, continuation and revision; counts cover the rest of the range.
pub async fn ranges_paginate_at_a_revision<S: Store + ?Sized>(store: Arc<S>) {
    for i in 0..25 {
        store
            .put(format!("/p/{i:02}").as_bytes(), b"v1")
            .await
            .unwrap();
    }
    store.put(b"/q/other", b"x").await.unwrap();
    store.put(b"/pp", b"not under /p/").await.unwrap();
    let at = store.status().await.unwrap().revision;
    for i in 0..25 {
        store
            .put(format!("/p/{i:02}").as_bytes(), b"v2")
            .await
            .unwrap();
    }
    store.delete(b"/p/00").await.unwrap();

    let mut seen = Vec::new();
    let mut req = RangeRequest {
        limit: 10,
        revision: Some(at),
        ..RangeRequest::prefix("/p/")
    };
    loop {
        let page = store.range(req.clone()).await.unwrap();
        assert_eq!(page.revision, at);
        assert!(
            page.kvs.iter().all(|kv| kv.value == b("v1")),
            "old values at the old revision"
        );
        assert_eq!(page.count as usize, 25 - seen.len());
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        if !page.more {
            break;
        }
        req.start_after = Some(page.kvs.last().unwrap().key.clone());
    }
    let expected: Vec<Bytes> = (0..25).map(|i| b(format!("/p/{i:02}"))).collect();
    assert_eq!(seen, expected);

    let now = store.range(RangeRequest::prefix("/p/")).await.unwrap();
    assert_eq!(now.kvs.len(), 24);
    assert!(now.kvs.iter().all(|kv| kv.value == b("v2")));
    let count = store.range(RangeRequest {
        count_only: true,
        ..RangeRequest::prefix("/p/")
    });
    let count = count.await.unwrap();
    assert_eq!((count.count, count.kvs.len()), (24, 0));
    let future = RangeRequest {
        revision: Some(now.revision + 100),
        ..RangeRequest::prefix("/p/")
    };
    assert!(matches!(
        store.range(future).await,
        Err(StoreError::FutureRevision { .. })
    ));
}

/// A watch from an old revision replays history, then follows new writes, with previous values.
pub async fn watch_delivers_backlog_then_live_events<S: Store + ?Sized>(store: Arc<S>) {
    let r1 = store.put(b"/w/a", b"1").await.unwrap();
    store.put(b"/x/ignored", b"1").await.unwrap();
    store.put(b"/w/a", b"2").await.unwrap();
    let mut watch = store
        .watch(WatchRequest::prefix("/w/", Some(r1)))
        .await
        .unwrap();
    let mut events = Vec::new();
    while events.len() < 2 {
        events.extend(next_events(&mut watch, Duration::from_secs(5)).await);
    }
    store.delete(b"/w/a").await.unwrap();
    store.put(b"/wx", b"outside the prefix").await.unwrap();
    store.put(b"/w/b", b"1").await.unwrap();
    while events.len() < 4 {
        events.extend(next_events(&mut watch, Duration::from_secs(5)).await);
    }
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.kind,
                e.kv.key.clone(),
                e.kv.value.clone(),
                e.prev_kv.as_ref().map(|p| p.value.clone()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (EventKind::Put, b("/w/a"), b("1"), None),
            (EventKind::Put, b("/w/a"), b("2"), Some(b("1"))),
            (EventKind::Delete, b("/w/a"), b(""), Some(b("2"))),
            (EventKind::Put, b("/w/b"), b("1"), None),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].revision() < w[1].revision()));
}

/// Many writers, several watchers: each watcher sees every write exactly once, in order.
pub async fn watch_under_concurrent_writers_has_no_gaps<S: Store + ?Sized>(store: Arc<S>) {
    const WRITERS: usize = 8;
    const WRITES: usize = 40;
    let start = store.status().await.unwrap().revision + 1;
    let mut watches = Vec::new();
    for _ in 0..3 {
        watches.push(
            store
                .watch(WatchRequest::prefix("/c/", Some(start)))
                .await
                .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..WRITES {
                revs.push(
                    store
                        .put(format!("/c/{w}/{i}").as_bytes(), b"v")
                        .await
                        .unwrap(),
                );
            }
            revs
        }));
    }
    let mut acked = HashSet::new();
    for t in tasks {
        for rev in t.await.unwrap() {
            assert!(acked.insert(rev), "revision {rev} acknowledged twice");
        }
    }
    assert_eq!(acked.len(), WRITERS * WRITES);
    for mut watch in watches {
        let mut seen = Vec::new();
        while seen.len() < WRITERS * WRITES {
            seen.extend(next_events(&mut watch, Duration::from_secs(10)).await);
        }
        assert_eq!(seen.len(), WRITERS * WRITES, "no duplicates");
        assert!(
            seen.windows(2).all(|w| w[0].revision() < w[1].revision()),
            "in order"
        );
        let revs: HashSet<_> = seen.iter().map(|e| e.revision()).collect();
        assert_eq!(revs, acked, "exactly the acknowledged writes");
    }
}

/// History below a compaction cannot be watched; the error is distinct.
pub async fn watch_from_compacted_revision_fails<S: Store + ?Sized>(store: Arc<S>) {
    let r1 = store.put(b"/k/a", b"1").await.unwrap();
    let r2 = store.put(b"/k/a", b"2").await.unwrap();
    store.put(b"/k/a", b"3").await.unwrap();
    store.compact(r2).await.unwrap();
    match store.watch(WatchRequest::prefix("/k/", Some(r1))).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!((requested, compacted), (r1, r2))
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("watch from a compacted revision must fail"),
    }
    let mut ok = store
        .watch(WatchRequest::prefix("/k/", Some(r2 + 1)))
        .await
        .unwrap();
    let events = next_events(&mut ok, Duration::from_secs(5)).await;
    assert_eq!(events[0].prev_kv.as_ref().unwrap().value, b("2"));
}

/// An idle watch reports progress at the current revision.
pub async fn watch_sends_progress_notifications<S: Store + ?Sized>(store: Arc<S>) {
    let mut req = WatchRequest::prefix("/idle/", None);
    req.progress_interval = Some(Duration::from_millis(100));
    let mut watch = store.watch(req).await.unwrap();
    let rev = store.put(b"/elsewhere", b"1").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let item = tokio::time::timeout_at(deadline, watch.next())
            .await
            .expect("progress in time");
        match item.unwrap().unwrap() {
            WatchResponse::Progress(r) if r >= rev => break,
            WatchResponse::Progress(_) => continue,
            WatchResponse::Events(e) => panic!("unexpected events {e:?}"),
        }
    }
}

/// Compaction keeps the state at its revision and refuses reads below it.
pub async fn compaction_keeps_current_state<S: Store + ?Sized>(store: Arc<S>) {
    let r1 = store.put(b"/m/a", b"1").await.unwrap();
    store.put(b"/m/b", b"1").await.unwrap();
    store.delete(b"/m/b").await.unwrap();
    let r4 = store.put(b"/m/a", b"2").await.unwrap();
    store.compact(r4).await.unwrap();
    let old = RangeRequest {
        revision: Some(r1),
        ..RangeRequest::prefix("/m/")
    };
    assert!(matches!(
        store.range(old).await,
        Err(StoreError::Compacted { .. })
    ));
    let now = store.range(RangeRequest::prefix("/m/")).await.unwrap();
    assert_eq!(now.kvs.len(), 1);
    assert_eq!(now.kvs[0].value, b("2"));
    assert_eq!(store.status().await.unwrap().compact_revision, r4);
    assert!(matches!(
        store.compact(r4).await,
        Err(StoreError::Compacted { .. })
    ));
}

/// A key written with a TTL is deleted once it expires, with a delete event.
pub async fn ttl_keys_expire_with_a_delete_event<S: Store + ?Sized>(store: Arc<S>) {
    let put = Txn::ops(vec![Op::Put {
        key: b("/e/1"),
        value: b("event"),
        ttl: Some(Duration::from_millis(300)),
    }]);
    let rev = store.txn(put).await.unwrap().revision;
    store.put(b"/e/2", b"forever").await.unwrap();
    let mut watch = store
        .watch(WatchRequest::prefix("/e/1", Some(rev + 1)))
        .await
        .unwrap();
    let events = next_events(&mut watch, Duration::from_secs(10)).await;
    assert_eq!(events[0].kind, EventKind::Delete);
    assert!(store.get(b"/e/1").await.unwrap().is_none());
    assert!(store.get(b"/e/2").await.unwrap().is_some());
}

/// Oversized values, bad keys and duplicate keys fail clearly and change nothing.
pub async fn bad_input_is_refused_and_writes_nothing<S: Store + ?Sized>(store: Arc<S>) {
    let before = store.status().await.unwrap().revision;
    let huge = vec![0u8; crate::DEFAULT_MAX_VALUE_BYTES + 1];
    let err = store.put(b"/big", &huge).await.unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err}");
    let err = store.put(b"", b"v").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidKey(_)), "{err}");
    let long_key = vec![b'k'; crate::MAX_KEY_BYTES + 1];
    let err = store.put(&long_key, b"v").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidKey(_)), "{err}");
    let dup = Txn::ops(vec![Op::put("/d", "1"), Op::put("/d", "2")]);
    let err = store.txn(dup).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateKey(_)), "{err}");
    assert!(err.is_invalid() && !err.is_retryable());
    assert_eq!(store.status().await.unwrap().revision, before);
    assert!(store.get(b"/d").await.unwrap().is_none());
}

/// A snapshot can be written while the store serves writes.
pub async fn snapshot_is_written<S: Store + ?Sized>(store: Arc<S>) {
    let mut want = BTreeMap::new();
    for i in 0..50 {
        let key = format!("/s/{i}");
        store.put(key.as_bytes(), b"v").await.unwrap();
        want.insert(key, ());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.snap");
    let rev = store.save_snapshot(&path).await.unwrap();
    assert!(rev >= 51);
    let bytes = std::fs::read(&path).unwrap();
    let mut mvcc: crate::mvcc::Mvcc = postcard::from_bytes(&bytes).unwrap();
    mvcc.restore_derived().unwrap();
    assert_eq!(mvcc.len(), 50);
}
