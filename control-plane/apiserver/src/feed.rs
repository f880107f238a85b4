//! Shared watch feeds: one store watch per resource prefix, fanned out to every API watch of
//! that resource, each change encoded (and, if a watch needs it, decoded) once for all of them.
//!
//! A feed starts with the first watch of a prefix and stops with the last. Its recent items
//! (batches of changes, and progress notifications) are kept in order in a window, and
//! every subscriber reads the window through a cursor of its own: the window is the only copy,
//! however many watches share it, and nothing else holds on to a change once it has left the
//! window. A new subscriber starts its cursor under the window's lock, so no change falls
//! between what it is replayed and what it reads live. A watch from before the window gets a
//! store watch of its own (history in the store reaches back to the last compaction). A
//! subscriber whose cursor falls out of the window is ended, and its client resumes from the
//! last resourceVersion it saw, as with kube-apiserver's watch cache.
//!
//! The window keeps at most [`WINDOW`] changes and nothing older than [`WINDOW_AGE`] (upstream's
//! watch cache keeps events at least 75 s): the feeds of idle clusters, of which a server has
//! one per watched resource of every cluster, hold nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use store::{EventKind, Revision, WatchResponse};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::{ApiError, ApiResult};
use crate::storage::{self, Objects};

/// Changes kept for watches that start slightly in the past, or that fall a little behind.
const WINDOW: usize = 4096;
/// How long a change stays in the window at most.
const WINDOW_AGE: Duration = Duration::from_secs(75);
/// How often an idle feed asks the store for a progress notification (bookmarks), which also
/// ages its window. Every idle feed of every cluster does, so this is upstream's bookmark
/// cadence, about a minute, not less.
const PROGRESS: Duration = Duration::from_secs(60);
/// How many waiting subscribers a feed wakes before it lets other tasks run (see [`wake`]).
const WAKE_BATCH: usize = 8;
/// Most store items a feed adds to its window before it wakes its subscribers.
const MAX_ITEMS_PER_WAKE: usize = 64;

/// One change, as the store reported it. It is decoded only if a watch needs the object
/// itself (selectors, tables, custom objects read at another version), at most once, and
/// shared by every watch that does; the plain JSON and metadata-only lines that most watches
/// (and the in-process informers) read are spliced from the stored bytes.
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) kind: EventKind,
    pub(crate) revision: Revision,
    event: store::Event,
    decoded: OnceLock<Option<Decoded>>,
    /// The watch lines of this change as plain JSON (`ADDED`, `MODIFIED`, `DELETED`), encoded
    /// by the first watch that sends each and shared by the others: a change is serialized
    /// once however many watches see it. `None`: the stored object does not decode.
    lines: [OnceLock<Option<Bytes>>; 3],
}

#[derive(Debug)]
struct Decoded {
    object: Value,
    previous: Option<Value>,
}

impl Change {
    fn new(event: store::Event) -> Change {
        Change {
            kind: event.kind,
            revision: event.revision(),
            event,
            decoded: OnceLock::new(),
            lines: Default::default(),
        }
    }

    /// The object's key.
    pub(crate) fn key(&self) -> &[u8] {
        &self.event.kv.key
    }

    /// Whether the object existed before this change.
    pub(crate) fn has_previous(&self) -> bool {
        self.event.prev_kv.is_some()
    }

    /// The object after the change (for a delete: its last state, at the delete's revision)
    /// and before it, decoded on first use. `None` when the store holds something undecodable.
    pub(crate) fn objects(&self) -> Option<(&Value, Option<&Value>)> {
        self.decoded
            .get_or_init(|| {
                let (_, object, previous) = storage::event_objects(&self.event).ok()?;
                Some(Decoded { object, previous })
            })
            .as_ref()
            .map(|d| (&d.object, d.previous.as_ref()))
    }

    /// The object's stored bytes as this change shows it, and the resourceVersion it has.
    fn stored(&self) -> Option<(&[u8], Revision)> {
        match self.kind {
            EventKind::Put => Some((&self.event.kv.value, self.revision)),
            EventKind::Delete => Some((&self.event.prev_kv.as_ref()?.value, self.revision)),
        }
    }

    /// The plain JSON watch line of this change as a `kind` event.
    pub(crate) fn line(&self, kind: &'static str) -> Option<Bytes> {
        let slot = match kind {
            "ADDED" => 0,
            "MODIFIED" => 1,
            _ => 2,
        };
        self.lines[slot]
            .get_or_init(|| {
                let (stored, revision) = self.stored()?;
                stored_line(kind, stored, revision)
            })
            .clone()
    }

    /// The `PartialObjectMetadata` watch line of this change as a `kind` event (for one watch:
    /// metadata-only watches are few, the garbage collector's).
    pub(crate) fn metadata_line(&self, kind: &'static str, v1beta1: bool) -> Option<Bytes> {
        let (stored, revision) = self.stored()?;
        let mut line = line_start(kind, 512);
        if crate::tables::splice_partial(stored, revision, v1beta1, &mut line).is_err() {
            line = line_start(kind, 512);
            let partial = crate::tables::Format::partial(self.objects()?.0, v1beta1);
            serde_json::to_writer(&mut line, &partial).ok()?;
        }
        line.extend_from_slice(b"}\n");
        Some(Bytes::from(line))
    }
}

/// The plain JSON watch line of a `kind` event for the stored object `stored` at `revision`,
/// spliced from its bytes: what [`encode_line`] writes for the decoded object. `None` if the
/// bytes are not an object.
pub(crate) fn stored_line(kind: &str, stored: &[u8], revision: Revision) -> Option<Bytes> {
    let mut line = line_start(kind, stored.len());
    if crate::tables::splice_object(stored, revision, &mut line).is_err() {
        // Not in the form the store writes: the long way.
        let mut object: Value = serde_json::from_slice(stored).ok()?;
        storage::set_resource_version(&mut object, revision);
        return Some(encode_line(kind, &object));
    }
    line.extend_from_slice(b"}\n");
    Some(Bytes::from(line))
}

/// A watch line up to its object: `{"type":KIND,"object":`.
fn line_start(kind: &str, object_size: usize) -> Vec<u8> {
    let mut line = Vec::with_capacity(object_size + 64);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line
}

/// `{"type":KIND,"object":OBJECT}` and a newline. `type` comes first, as upstream writes it: a
/// client's decoder then knows the event's kind before the object and can decode the object as
/// it reads it (serde's adjacently tagged enums, such as kube-rs's `WatchEvent`, buffer it
/// otherwise).
pub(crate) fn encode_line(kind: &str, object: &Value) -> Bytes {
    let mut line = line_start(kind, 256);
    serde_json::to_writer(&mut line, object).expect("JSON values always encode");
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// What a feed broadcasts.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// Changes of one store revision (or a few, in order).
    Changes(Arc<Vec<Change>>),
    /// Every change up to this revision has been sent.
    Progress(Revision),
    /// The feed failed; subscribers end with this error.
    Failed(Arc<ApiError>),
}

struct Shared {
    /// Items in order, each with when it arrived; the first has sequence number `first_seq`.
    window: VecDeque<(Instant, Item)>,
    first_seq: u64,
    /// How many changes `window` holds (kept, not recounted: a busy feed appends often).
    held: usize,
    /// Every revision at or above this one is in the window or still to come.
    covers_from: Revision,
    /// Why the feed stopped, once it has: subscribers read the window, then this.
    failed: Option<Arc<ApiError>>,
    /// The store ended the feed's watch: subscribers read the window, then end.
    closed: bool,
    /// Subscribers that have read everything and wait for the next item.
    waiting: Vec<Arc<Notify>>,
}

impl Shared {
    /// Adds what the store's watch gave (`None`: it ended); whether the feed ends with it.
    fn append(&mut self, item: Option<store::Result<WatchResponse>>, now: Instant) -> bool {
        match item {
            Some(Ok(WatchResponse::Events(events))) => {
                let batch = Arc::new(events.into_iter().map(Change::new).collect::<Vec<_>>());
                self.held += batch.len();
                self.window.push_back((now, Item::Changes(batch)));
                false
            }
            Some(Ok(WatchResponse::Progress(rev))) => {
                self.window.push_back((now, Item::Progress(rev)));
                false
            }
            Some(Err(e)) => {
                self.failed = Some(Arc::new(e.into()));
                true
            }
            // The store ended the watch: each subscriber ends once it has read the window.
            None => {
                self.closed = true;
                true
            }
        }
    }

    fn next_seq(&self) -> u64 {
        self.first_seq + self.window.len() as u64
    }

    /// Drops items from the front while the window holds too many changes or too old ones.
    fn trim(&mut self, now: Instant) {
        while let Some((at, item)) = self.window.front() {
            let too_old = now.saturating_duration_since(*at) > WINDOW_AGE;
            if self.held <= WINDOW && !too_old {
                break;
            }
            if let Item::Changes(batch) = item {
                self.held -= batch.len();
                if let Some(last) = batch.last() {
                    self.covers_from = last.revision + 1;
                }
            }
            self.window.pop_front();
            self.first_seq += 1;
        }
    }
}

/// A running feed for one prefix.
pub(crate) struct Feed {
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A subscription: the replayed window, then the live items.
pub(crate) struct Subscription {
    /// Keeps the feed running while the subscription lives.
    pub(crate) _feed: Arc<Feed>,
    pub(crate) replay: Vec<Arc<Vec<Change>>>,
    pub(crate) live: Receiver,
}

/// Why a subscriber gets no further item.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It fell out of the window; its client resumes from its last resourceVersion.
    Lagged,
    /// The feed failed or stopped (the failure, if any, was the last item).
    Closed,
}

/// A subscriber's cursor over a feed's window.
pub(crate) struct Receiver {
    shared: Arc<Mutex<Shared>>,
    /// Woken by the feed when an item is added after this subscriber started waiting.
    wake: Arc<Notify>,
    /// The sequence number this subscriber last waited for (it is in `waiting` until then).
    waits_for: Option<u64>,
    cursor: Cursor,
}

impl Receiver {
    /// The next item after the last one read, waiting for it if need be.
    pub(crate) async fn recv(&mut self) -> Result<Item, Ended> {
        loop {
            {
                let mut shared = self.shared.lock().expect("feed lock");
                if let Some(ready) = self.cursor.next(&shared) {
                    return ready;
                }
                if shared.closed {
                    return Err(Ended::Closed);
                }
                // Registered under the lock the feed appends under: an item added after this
                // check wakes this subscriber (`Notify` keeps the wake-up if it comes before
                // the wait below).
                let seq = shared.next_seq();
                if self.waits_for != Some(seq) {
                    self.waits_for = Some(seq);
                    shared.waiting.push(Arc::clone(&self.wake));
                }
            }
            self.wake.notified().await;
        }
    }

    /// The next item after the last one read, if there is one already (`None`: wait).
    pub(crate) fn try_recv(&mut self) -> Option<Result<Item, Ended>> {
        let shared = self.shared.lock().expect("feed lock");
        self.cursor.next(&shared)
    }
}

/// Where a subscriber is in its feed's window.
struct Cursor {
    next: u64,
    failure_sent: bool,
}

impl Cursor {
    /// The item after the last one read, if the window has it, under the window's lock.
    fn next(&mut self, shared: &Shared) -> Option<Result<Item, Ended>> {
        if self.next < shared.first_seq {
            return Some(Err(Ended::Lagged));
        }
        let index = (self.next - shared.first_seq) as usize;
        if let Some((_, item)) = shared.window.get(index) {
            self.next += 1;
            return Some(Ok(item.clone()));
        }
        let e = shared.failed.as_ref()?;
        if self.failure_sent {
            return Some(Err(Ended::Closed));
        }
        self.failure_sent = true;
        Some(Ok(Item::Failed(Arc::clone(e))))
    }
}

/// The feeds of one API server, by prefix.
#[derive(Default)]
pub(crate) struct Feeds {
    feeds: Mutex<HashMap<Bytes, Weak<Feed>>>,
}

impl Feeds {
    /// Subscribes to `prefix` from revision `start` (inclusive). `Ok(None)` when `start` is older
    /// than the shared feed reaches, or compacted in the store: the caller watches the store
    /// directly (and gets 410 Gone for compacted history).
    pub(crate) async fn subscribe(
        &self,
        objects: &Objects,
        prefix: &Bytes,
        start: Revision,
    ) -> ApiResult<Option<Subscription>> {
        // History the store has compacted is gone for every watch, whether or not the feed still
        // holds it, so that watches and paginated lists agree on what is too old.
        if start <= objects.store().status().await?.compact_revision {
            return Ok(None);
        }
        let feed = self.feed(objects, prefix).await?;
        let shared = feed.shared.lock().expect("feed lock");
        if start < shared.covers_from {
            return Ok(None);
        }
        let replay = shared
            .window
            .iter()
            .filter_map(|(_, item)| match item {
                Item::Changes(batch) if batch.last().is_some_and(|c| c.revision >= start) => {
                    Some(Arc::clone(batch))
                }
                _ => None,
            })
            .collect();
        let live = Receiver {
            shared: Arc::clone(&feed.shared),
            wake: Arc::new(Notify::new()),
            waits_for: None,
            cursor: Cursor {
                next: shared.next_seq(),
                failure_sent: false,
            },
        };
        drop(shared);
        Ok(Some(Subscription {
            _feed: feed,
            replay,
            live,
        }))
    }

    async fn feed(&self, objects: &Objects, prefix: &Bytes) -> ApiResult<Arc<Feed>> {
        if let Some(feed) = self
            .feeds
            .lock()
            .expect("feeds lock")
            .get(prefix)
            .and_then(Weak::upgrade)
        {
            return Ok(feed);
        }
        // Start a feed at the store's current revision; a concurrent start for the same prefix
        // is harmless: the later one replaces the earlier in the map, both stay correct.
        let from = objects.store().status().await?.revision + 1;
        let stream = objects.watch(prefix, from, Some(PROGRESS)).await?;
        let shared = Arc::new(Mutex::new(Shared {
            window: VecDeque::new(),
            first_seq: 0,
            held: 0,
            covers_from: from,
            failed: None,
            closed: false,
            waiting: Vec::new(),
        }));
        let task = tokio::spawn(run(Arc::clone(&shared), stream));
        let feed = Arc::new(Feed { shared, task });
        let mut feeds = self.feeds.lock().expect("feeds lock");
        feeds.retain(|_, f| f.strong_count() > 0);
        feeds.insert(prefix.clone(), Arc::downgrade(&feed));
        Ok(feed)
    }
}

async fn run(shared: Arc<Mutex<Shared>>, mut stream: store::WatchStream) {
    loop {
        let first = stream.next().await;
        let now = Instant::now();
        let (waiting, ended) = {
            let mut s = shared.lock().expect("feed lock");
            let mut ended = s.append(first, now);
            // What else the store has ready (commits that arrived while the last wake-up was
            // under way) goes out with it: one wake-up for all.
            for _ in 0..MAX_ITEMS_PER_WAKE {
                if ended {
                    break;
                }
                match stream.next().now_or_never() {
                    Some(item) => ended = s.append(item, now),
                    None => break,
                }
            }
            s.trim(now);
            (std::mem::take(&mut s.waiting), ended)
        };
        wake(waiting).await;
        if ended {
            return;
        }
    }
}

/// Wakes the subscribers waiting for an item, [`WAKE_BATCH`] at a time, yielding to the
/// runtime's other tasks between batches.
///
/// A watch woken is a task that encodes and writes to its socket. Woken all at once, the
/// hundreds of watches of one busy tenant would fill the runtime's queues, and every other
/// tenant's request ready meanwhile would wait behind all of them (`berth-bench tenants`:
/// tenant B's p99 was about 3x higher when tenant A's writes had 300 watches following them
/// than when the same writes had none). In batches, requests that
/// became ready meanwhile are served between batches, at the cost of the feed's later
/// watches being told a little later.
async fn wake(waiting: Vec<Arc<Notify>>) {
    for (i, batch) in waiting.chunks(WAKE_BATCH).enumerate() {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        for subscriber in batch {
            subscriber.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{MemoryStore, Store};

    async fn changes(sub: &mut Subscription, want: usize) -> Vec<Revision> {
        let mut revs: Vec<Revision> = sub
            .replay
            .iter()
            .flat_map(|b| b.iter().map(|c| c.revision))
            .collect();
        while revs.len() < want {
            match tokio::time::timeout(Duration::from_secs(5), sub.live.recv())
                .await
                .unwrap()
                .unwrap()
            {
                Item::Changes(b) => revs.extend(b.iter().map(|c| c.revision)),
                Item::Progress(_) => {}
                Item::Failed(e) => panic!("{e}"),
            }
        }
        revs
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn subscribers_share_one_feed_and_replay_the_window() {
        let store = Arc::new(MemoryStore::default());
        let objects = Objects::new(store.clone());
        let feeds = Feeds::default();
        let prefix = Bytes::from("/registry/c/core/configmaps/");
        let start = store.status().await.unwrap().revision + 1;
        let mut first = feeds
            .subscribe(&objects, &prefix, start)
            .await
            .unwrap()
            .unwrap();
        let mut revs = Vec::new();
        for i in 0..5 {
            let obj = serde_json::json!({"metadata": {"name": format!("c{i}")}});
            revs.push(
                store
                    .put(
                        format!("/registry/c/core/configmaps/d/c{i}").as_bytes(),
                        obj.to_string().as_bytes(),
                    )
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(changes(&mut first, 5).await, revs);
        // A later subscriber from the third write is replayed the rest from memory.
        let mut later = feeds
            .subscribe(&objects, &prefix, revs[2])
            .await
            .unwrap()
            .unwrap();
        assert!(
            Arc::ptr_eq(&first._feed, &later._feed),
            "one feed per prefix"
        );
        assert_eq!(changes(&mut later, 3).await, revs[2..].to_vec());
        // From before the feed started, the caller must go to the store.
        assert!(
            feeds
                .subscribe(&objects, &prefix, start - 1)
                .await
                .unwrap()
                .is_none()
        );
        // The feed stops with its last subscriber.
        drop(first);
        drop(later);
        assert!(
            feeds
                .feeds
                .lock()
                .unwrap()
                .get(&prefix)
                .unwrap()
                .upgrade()
                .is_none()
        );
    }

    async fn put(store: &MemoryStore, name: &str) -> Revision {
        let obj = serde_json::json!({"metadata": {"name": name}});
        store
            .put(
                format!("/registry/c/core/configmaps/d/{name}").as_bytes(),
                obj.to_string().as_bytes(),
            )
            .await
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_feed_forgets_its_window_and_keeps_serving_its_subscribers() {
        let store = Arc::new(MemoryStore::default());
        let objects = Objects::new(store.clone());
        let feeds = Feeds::default();
        let prefix = Bytes::from("/registry/c/core/configmaps/");
        let start = store.status().await.unwrap().revision + 1;
        let mut sub = feeds
            .subscribe(&objects, &prefix, start)
            .await
            .unwrap()
            .unwrap();
        let first = put(&store, "a").await;
        assert_eq!(changes(&mut sub, 1).await, [first]);
        let held = |sub: &Subscription| sub._feed.shared.lock().unwrap().held;
        assert_eq!(held(&sub), 1);
        // Past the window's age and the next progress notification, the change is gone from
        // memory: a watch from it is sent to the store.
        tokio::time::sleep(WINDOW_AGE + PROGRESS + Duration::from_secs(1)).await;
        loop {
            match sub.live.recv().await.unwrap() {
                Item::Progress(_) if held(&sub) == 0 => break,
                Item::Progress(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(
            feeds
                .subscribe(&objects, &prefix, first)
                .await
                .unwrap()
                .is_none()
        );
        // The subscriber goes on with the next change.
        let second = put(&store, "b").await;
        assert_eq!(changes(&mut sub, 1).await, [second]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn subscribers_are_woken_in_batches_with_other_work_between() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let other = Arc::new(Notify::new());
        let mut waiting = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..3 * WAKE_BATCH {
            let (wake, log, other) = (Arc::new(Notify::new()), log.clone(), other.clone());
            waiting.push(wake.clone());
            tasks.push(tokio::spawn(async move {
                wake.notified().await;
                log.lock().unwrap().push("watch");
                // Another tenant's request becomes ready while the feed is waking watches.
                if i == 0 {
                    other.notify_one();
                }
            }));
        }
        let request = {
            let (log, other) = (log.clone(), other.clone());
            tokio::spawn(async move {
                other.notified().await;
                log.lock().unwrap().push("request");
            })
        };
        // Let every task start waiting.
        tokio::task::yield_now().await;
        wake(waiting).await;
        for t in tasks {
            t.await.unwrap();
        }
        request.await.unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 3 * WAKE_BATCH + 1);
        let served = log.iter().position(|e| *e == "request").unwrap();
        assert!(
            served <= WAKE_BATCH,
            "the request waited for {served} watches"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_waiting_subscribers_all_get_the_next_change() {
        let store = Arc::new(MemoryStore::default());
        let objects = Objects::new(store.clone());
        let feeds = Feeds::default();
        let prefix = Bytes::from("/registry/c/core/configmaps/");
        let start = store.status().await.unwrap().revision + 1;
        let mut subs = Vec::new();
        for _ in 0..5 * WAKE_BATCH + 3 {
            let mut sub = feeds
                .subscribe(&objects, &prefix, start)
                .await
                .unwrap()
                .unwrap();
            subs.push(tokio::spawn(async move { changes(&mut sub, 2).await }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let revs = vec![put(&store, "a").await, put(&store, "b").await];
        for sub in subs {
            assert_eq!(sub.await.unwrap(), revs);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscriber_that_falls_out_of_the_window_is_ended() {
        let store = Arc::new(MemoryStore::default());
        let objects = Objects::new(store.clone());
        let feeds = Feeds::default();
        let prefix = Bytes::from("/registry/c/core/configmaps/");
        let start = store.status().await.unwrap().revision + 1;
        let mut slow = feeds
            .subscribe(&objects, &prefix, start)
            .await
            .unwrap()
            .unwrap();
        let mut last = 0;
        for i in 0..WINDOW + 10 {
            last = put(&store, &format!("c{i}")).await;
        }
        // Wait until the feed has seen every write.
        let seen = |sub: &Subscription| {
            let shared = sub._feed.shared.lock().unwrap();
            shared.covers_from > start
                && shared.window.iter().any(|(_, item)| {
                    matches!(item, Item::Changes(b) if b.last().is_some_and(|c| c.revision == last))
                })
        };
        while !seen(&slow) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut ended = None;
        for _ in 0..=WINDOW + 10 {
            match slow.live.recv().await {
                Ok(_) => {}
                Err(e) => {
                    ended = Some(e);
                    break;
                }
            }
        }
        assert!(matches!(ended, Some(Ended::Lagged)), "{ended:?}");
    }
}
