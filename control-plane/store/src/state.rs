//! The applied key space shared by readers, the writer and watchers.
//!
//! [`State`] pairs the [`Mvcc`] with a feed of committed changes. The writer applies under the
//! write lock and publishes while still holding it, so the feed is in revision order; a watcher
//! subscribes to the feed *before* reading its backlog from the history, so no revision falls
//! between the two. A watcher that falls behind the feed (or sees a snapshot replace the state)
//! catches up from the history, or ends with [`StoreError::Compacted`] when that history is gone.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use parking_lot::RwLock;
use tokio::sync::broadcast;

use crate::error::{Result, StoreError};
use crate::mvcc::{Limits, Mvcc};
use crate::types::{
    Event, RangeRequest, RangeResponse, Revision, Txn, TxnResponse, WatchRequest, WatchResponse,
};

/// Commits kept for watchers that are behind; past that they catch up from the history.
const FEED_CAPACITY: usize = 4096;

/// A stream of watch responses. It ends with an error when the watcher can no longer be served
/// without a gap (history compacted), and never otherwise while the store lives.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse>> + Send>>;

/// What one apply published.
#[derive(Debug)]
pub(crate) enum Commit {
    /// Writes that moved the store to `revision`.
    Applied {
        revision: Revision,
        events: Vec<Event>,
    },
    /// The whole state was replaced (a snapshot was installed): catch up from the history.
    Reset,
}

/// The applied key space and its change feed.
#[derive(Debug)]
pub(crate) struct State {
    mvcc: RwLock<Mvcc>,
    feed: broadcast::Sender<Arc<Commit>>,
    pub(crate) limits: Limits,
}

impl State {
    pub(crate) fn new(mvcc: Mvcc, limits: Limits) -> Self {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        State {
            mvcc: RwLock::new(mvcc),
            feed,
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
                    let _ = self.feed.send(Arc::new(Commit::Applied {
                        revision: response.revision,
                        events,
                    }));
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
        let _ = self.feed.send(Arc::new(Commit::Reset));
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
        // Subscribe first: every commit after the backlog's revision is then in `feed`.
        let feed = self.feed.subscribe();
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
            feed,
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
    feed: broadcast::Receiver<Arc<Commit>>,
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
            let received = match &mut self.progress {
                Some(tick) => tokio::select! {
                    r = self.feed.recv() => r,
                    _ = tick.tick() => {
                        if std::mem::take(&mut self.sent_since_tick) {
                            continue;
                        }
                        return Some(Ok(WatchResponse::Progress(self.seen)));
                    }
                },
                None => self.feed.recv().await,
            };
            match received {
                Ok(commit) => match &*commit {
                    Commit::Applied { revision, events } => {
                        if *revision <= self.seen {
                            continue;
                        }
                        self.seen = *revision;
                        let mine: Vec<Event> = events
                            .iter()
                            .filter(|e| {
                                e.revision() >= self.start && e.kv.key.starts_with(&self.prefix)
                            })
                            .cloned()
                            .collect();
                        if !mine.is_empty() {
                            self.sent_since_tick = true;
                            return Some(Ok(WatchResponse::Events(mine)));
                        }
                    }
                    Commit::Reset => {
                        if let Some(r) = self.catch_up() {
                            return Some(r);
                        }
                    }
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Some(r) = self.catch_up() {
                        return Some(r);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return Some(Err(StoreError::Unavailable(
                        "store is shutting down".into(),
                    )));
                }
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
