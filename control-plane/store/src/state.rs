//! The applied key space shared by readers, the writer and watchers.
//!
//! [`State`] pairs the [`Mvcc`] with the watchers of committed changes. The writer applies under
//! the write lock and publishes while still holding it, so every watcher's inbox is in revision
//! order; a watcher registers *before* reading its backlog from the history, so no revision
//! falls between the two. A commit goes only to the watchers whose prefix one of its keys
//! starts with (found through an index of prefixes by length), so a write costs the same
//! however many watchers there are elsewhere in the key space — a server with a thousand
//! logical clusters has tens of thousands of watches. A watcher whose inbox overflows (or that
//! sees a snapshot replace the state) catches up from the history, or ends with
//! [`StoreError::Compacted`] when that history is gone.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use parking_lot::{Mutex, RwLock};

use crate::error::{Result, StoreError};
use crate::mvcc::{Limits, Mvcc};
use crate::types::{
    Event, RangeRequest, RangeResponse, Revision, Txn, TxnResponse, WatchRequest, WatchResponse,
};

/// Commits kept for a watcher that is behind; past that it catches up from the history.
const INBOX_CAPACITY: usize = 1024;

/// Where the commits a watcher must see wait for it.
#[derive(Debug, Default)]
struct Inbox {
    queue: Mutex<VecDeque<Arc<Commit>>>,
    /// Commits were dropped (inbox full, or the state was replaced): catch up from the history.
    lagged: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Inbox {
    fn deliver(&self, commit: &Arc<Commit>) {
        {
            let mut queue = self.queue.lock();
            if queue.len() < INBOX_CAPACITY {
                queue.push_back(Arc::clone(commit));
            } else {
                self.lagged.store(true, Ordering::Release);
            }
        }
        self.notify.notify_one();
    }

    fn lag(&self) {
        self.lagged.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

/// Every watcher, by prefix.
#[derive(Debug, Default)]
struct Watchers {
    next_id: u64,
    by_prefix: HashMap<Bytes, Vec<(u64, Arc<Inbox>)>>,
    /// How many watchers have a prefix of each length.
    lengths: BTreeMap<usize, usize>,
}

impl Watchers {
    fn add(&mut self, prefix: &Bytes, inbox: Arc<Inbox>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.by_prefix
            .entry(prefix.clone())
            .or_default()
            .push((id, inbox));
        *self.lengths.entry(prefix.len()).or_default() += 1;
        id
    }

    fn remove(&mut self, prefix: &Bytes, id: u64) {
        if let Some(list) = self.by_prefix.get_mut(prefix) {
            let before = list.len();
            list.retain(|(i, _)| *i != id);
            if list.len() < before
                && let Some(n) = self.lengths.get_mut(&prefix.len())
            {
                *n -= 1;
                if *n == 0 {
                    self.lengths.remove(&prefix.len());
                }
            }
            if list.is_empty() {
                self.by_prefix.remove(prefix);
            }
        }
    }

    /// Hands `commit` to every watcher a key of `events` concerns, once each.
    fn publish(&self, events: &[Event], commit: &Arc<Commit>) {
        let mut sent: Vec<u64> = Vec::new();
        for e in events {
            let key = &e.kv.key;
            for (&len, _) in self.lengths.range(..=key.len()) {
                let Some(list) = self.by_prefix.get(&key[..len]) else {
                    continue;
                };
                for (id, inbox) in list {
                    if !sent.contains(id) {
                        sent.push(*id);
                        inbox.deliver(commit);
                    }
                }
            }
        }
    }
}

/// A stream of watch responses. It ends with an error when the watcher can no longer be served
/// without a gap (history compacted), and never otherwise while the store lives.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse>> + Send>>;

/// What one apply published: writes that moved the store to `revision`.
#[derive(Debug)]
pub(crate) struct Commit {
    revision: Revision,
    events: Vec<Event>,
}

/// The applied key space and its change feed.
#[derive(Debug)]
pub(crate) struct State {
    mvcc: RwLock<Mvcc>,
    watchers: Mutex<Watchers>,
    pub(crate) limits: Limits,
}

impl State {
    pub(crate) fn new(mvcc: Mvcc, limits: Limits) -> Self {
        State {
            mvcc: RwLock::new(mvcc),
            watchers: Mutex::new(Watchers::default()),
            limits,
        }
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&Mvcc) -> R) -> R {
        f(&self.mvcc.read())
    }

    /// Applies transactions in order and publishes their events. Each transaction gets its own
    /// result; a refused one changes nothing.
    pub(crate) fn apply_all<'a>(
        &self,
        txns: impl IntoIterator<Item = &'a Txn>,
        now_ms: u64,
    ) -> Vec<Result<TxnResponse>> {
        let mut mvcc = self.mvcc.write();
        txns.into_iter()
            .map(|txn| {
                let (response, events) = mvcc.apply(txn, now_ms, &self.limits)?;
                if !events.is_empty() {
                    let watchers = self.watchers.lock();
                    if !watchers.by_prefix.is_empty() {
                        let commit = Arc::new(Commit {
                            revision: response.revision,
                            events,
                        });
                        watchers.publish(&commit.events, &commit);
                    }
                }
                Ok(response)
            })
            .collect()
    }

    pub(crate) fn compact(&self, revision: Revision) -> Result<()> {
        self.mvcc.write().compact(revision)
    }

    /// Replaces the whole state, as installing a snapshot does.
    pub(crate) fn replace(&self, mvcc: Mvcc) {
        let mut guard = self.mvcc.write();
        *guard = mvcc;
        for list in self.watchers.lock().by_prefix.values() {
            for (_, inbox) in list {
                inbox.lag();
            }
        }
    }

    pub(crate) fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        self.mvcc.read().range(req)
    }

    /// Serialises the key space. Holds the read lock while encoding, so writers wait.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mvcc = self.mvcc.read();
        postcard::to_allocvec(&*mvcc)
            .map_err(|e| StoreError::Internal(format!("encode snapshot: {e}")))
    }

    /// Writes the key space to `path` atomically (temporary file, fsync, rename).
    pub(crate) fn save(&self, path: &Path) -> Result<Revision> {
        let revision = self.read(|m| m.revision());
        let bytes = self.encode()?;
        write_file_durably(path, &bytes)?;
        Ok(revision)
    }

    pub(crate) fn watch(self: &Arc<Self>, req: WatchRequest) -> Result<WatchStream> {
        // Register first: every commit after the backlog's revision then reaches the inbox.
        let inbox = Arc::new(Inbox::default());
        let id = self.watchers.lock().add(&req.prefix, Arc::clone(&inbox));
        let (backlog, current) = {
            let mvcc = self.mvcc.read();
            let current = mvcc.revision();
            let start = req.start_revision.unwrap_or(current + 1);
            let backlog = if start <= current {
                mvcc.events(&req.prefix, start, current)?
            } else {
                Vec::new()
            };
            (backlog, current)
        };
        let watcher = Watcher {
            state: Arc::clone(self),
            prefix: req.prefix,
            start: req.start_revision.unwrap_or(current + 1),
            seen: current,
            inbox,
            id,
            pending: if backlog.is_empty() {
                None
            } else {
                Some(backlog)
            },
            progress: req.progress_interval.map(|d| {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick
            }),
            sent_since_tick: false,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(
            watcher,
            |mut w| async move {
                let item = w.next().await?;
                Some((item, w))
            },
        )))
    }
}

struct Watcher {
    state: Arc<State>,
    prefix: Bytes,
    /// First revision the watcher asked for.
    start: Revision,
    /// Every revision up to this one has been delivered (or did not concern the watcher).
    seen: Revision,
    inbox: Arc<Inbox>,
    /// This watcher's registration.
    id: u64,
    pending: Option<Vec<Event>>,
    progress: Option<tokio::time::Interval>,
    sent_since_tick: bool,
    done: bool,
}

impl Watcher {
    async fn next(&mut self) -> Option<Result<WatchResponse>> {
        if self.done {
            return None;
        }
        if let Some(events) = self.pending.take() {
            self.sent_since_tick = true;
            return Some(Ok(WatchResponse::Events(events)));
        }
        loop {
            if self.inbox.lagged.swap(false, Ordering::AcqRel) {
                self.inbox.queue.lock().clear();
                if let Some(r) = self.catch_up() {
                    return Some(r);
                }
                continue;
            }
            let next = self.inbox.queue.lock().pop_front();
            if let Some(commit) = next {
                if commit.revision <= self.seen {
                    continue;
                }
                self.seen = commit.revision;
                let mine: Vec<Event> = commit
                    .events
                    .iter()
                    .filter(|e| e.revision() >= self.start && e.kv.key.starts_with(&self.prefix))
                    .cloned()
                    .collect();
                if !mine.is_empty() {
                    self.sent_since_tick = true;
                    return Some(Ok(WatchResponse::Events(mine)));
                }
                continue;
            }
            match &mut self.progress {
                Some(tick) => tokio::select! {
                    _ = self.inbox.notify.notified() => {}
                    _ = tick.tick() => {
                        if std::mem::take(&mut self.sent_since_tick) {
                            continue;
                        }
                        // Every commit up to the current revision has been published (under
                        // the write lock this read lock excludes): if none is waiting, all
                        // of them have been seen.
                        let current = self.state.read(|m| m.revision());
                        if !self.inbox.queue.lock().is_empty()
                            || self.inbox.lagged.load(Ordering::Acquire)
                        {
                            continue;
                        }
                        self.seen = self.seen.max(current);
                        return Some(Ok(WatchResponse::Progress(self.seen)));
                    }
                },
                None => self.inbox.notify.notified().await,
            }
        }
    }

    /// Reads what the feed skipped from the history. `None` when there was nothing to send.
    fn catch_up(&mut self) -> Option<Result<WatchResponse>> {
        let from = (self.seen + 1).max(self.start);
        let result = self.state.read(|m| {
            let current = m.revision();
            if current < from {
                return Ok((Vec::new(), current.max(self.seen)));
            }
            m.events(&self.prefix, from, current)
                .map(|events| (events, current))
        });
        match result {
            Ok((events, current)) => {
                self.seen = current;
                if events.is_empty() {
                    None
                } else {
                    self.sent_since_tick = true;
                    Some(Ok(WatchResponse::Events(events)))
                }
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.state.watchers.lock().remove(&self.prefix, self.id);
    }
}

/// Writes `bytes` to `path` so that after a crash the file is either absent, the old one, or
/// completely the new one.
pub(crate) fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How often expired TTL keys are looked for.
pub(crate) const EXPIRY_SWEEP: Duration = Duration::from_millis(500);
