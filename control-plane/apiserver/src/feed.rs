//! Shared watch feeds: one store watch per resource prefix, decoded once, fanned out to every
//! API watch of that resource.
//!
//! A feed starts with the first watch of a prefix and stops with the last. It keeps the most
//! recent events decoded in a window, so a watch that starts a little in the past is served from
//! memory. The window and the live broadcast are updated under one lock, which a new subscriber
//! also takes while it copies the window and subscribes: no event falls between the two. A watch
//! from before the window gets a store watch of its own (history in the store reaches back to the
//! last compaction). A subscriber that falls too far behind the broadcast is ended, and its client
//! resumes from the last resourceVersion it saw, as with kube-apiserver's watch cache.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use store::{EventKind, Revision, WatchResponse};
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::storage::{self, Objects};

/// Events kept for watches that start slightly in the past.
const WINDOW: usize = 4096;
/// Batches a subscriber may fall behind before it is ended (it then resumes from its last
/// resourceVersion, from the window or the store). The channel's slots are allocated up front
/// for every feed, and a server has one feed per watched resource of every logical cluster
/// (about 36 for the in-process loops alone), so this stays small: at 128 the slots of 1,000
/// idle tenant clusters held 200 MiB. Each slot is a batch of changes, so 32 batches are
/// often many more events; upstream's watch cache likewise ends a watcher that falls a
/// buffer of 10 to 1,000 events behind.
const BACKLOG: usize = 32;
/// How often an idle feed asks the store for a progress notification (bookmarks). Every idle
/// feed of every cluster does, so this is upstream's bookmark cadence, about a minute, not less.
const PROGRESS: Duration = Duration::from_secs(60);

/// One decoded change.
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) kind: EventKind,
    pub(crate) revision: Revision,
    pub(crate) object: Arc<Value>,
    pub(crate) previous: Option<Arc<Value>>,
    /// The watch lines of this change as plain JSON (`ADDED`, `MODIFIED`, `DELETED`), encoded
    /// by the first watch that sends each and shared by the others: a change is serialized
    /// once however many watches see it.
    pub(crate) lines: [std::sync::OnceLock<Bytes>; 3],
}

impl Change {
    /// The plain JSON watch line of this change as an event of type `kind`.
    pub(crate) fn line(&self, kind: &'static str) -> Bytes {
        let slot = match kind {
            "ADDED" => 0,
            "MODIFIED" => 1,
            _ => 2,
        };
        self.lines[slot]
            .get_or_init(|| encode_line(kind, &self.object))
            .clone()
    }
}

/// `{"type":KIND,"object":OBJECT}` and a newline.
pub(crate) fn encode_line(kind: &str, object: &Value) -> Bytes {
    let mut line = Vec::with_capacity(256);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
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
    window: VecDeque<Arc<Vec<Change>>>,
    /// How many changes `window` holds (kept, not recounted: a busy feed appends often).
    held: usize,
    /// Every revision at or above this one is in the window or still to come.
    covers_from: Revision,
    tx: broadcast::Sender<Item>,
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

/// A subscription: the replayed window, then the live broadcast.
pub(crate) struct Subscription {
    /// Keeps the feed running while the subscription lives.
    pub(crate) _feed: Arc<Feed>,
    pub(crate) replay: Vec<Arc<Vec<Change>>>,
    pub(crate) live: broadcast::Receiver<Item>,
}

/// The feeds of one API server, by prefix.
#[derive(Default)]
pub(crate) struct Feeds {
    feeds: Mutex<HashMap<Bytes, Weak<Feed>>>,
}

fn decode_changes(events: &[store::Event]) -> Vec<Change> {
    events
        .iter()
        .filter_map(|e| {
            let (kind, object, previous) = storage::event_objects(e).ok()?;
            Some(Change {
                lines: Default::default(),
                kind,
                revision: e.revision(),
                object: Arc::new(object),
                previous: previous.map(Arc::new),
            })
        })
        .collect()
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
            .filter(|batch| batch.last().is_some_and(|c| c.revision >= start))
            .cloned()
            .collect();
        let live = shared.tx.subscribe();
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
        let (tx, _) = broadcast::channel(BACKLOG);
        let shared = Arc::new(Mutex::new(Shared {
            window: VecDeque::new(),
            held: 0,
            covers_from: from,
            tx,
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
    while let Some(item) = stream.next().await {
        let item = match item {
            Ok(WatchResponse::Events(events)) => Item::Changes(Arc::new(decode_changes(&events))),
            Ok(WatchResponse::Progress(rev)) => Item::Progress(rev),
            Err(e) => Item::Failed(Arc::new(e.into())),
        };
        let mut s = shared.lock().expect("feed lock");
        if let Item::Changes(batch) = &item {
            s.window.push_back(Arc::clone(batch));
            s.held += batch.len();
            while s.held > WINDOW {
                let Some(old) = s.window.pop_front() else {
                    break;
                };
                s.held -= old.len();
                if let Some(last) = old.last() {
                    s.covers_from = last.revision + 1;
                }
            }
        }
        let failed = matches!(item, Item::Failed(_));
        let _ = s.tx.send(item);
        if failed {
            return;
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
}
