//! The raft log, vote and commit pointer, persisted in redb.
//!
//! Appends are written by a thread of their own, the log writer: `append` hands the entries
//! over and returns at once (they are readable from then on), and the writer commits them with
//! immediate durability (one fsync) and reports back through openraft's callback. Appends that
//! queue up while an fsync runs share the next one. Raft's loop and the store's runtime thus
//! never wait for the disk themselves; other writes (vote, truncation, purge) go through the
//! same writer, in order, and are awaited. The first transaction on a new file stamps it with
//! a format marker and the replica's id: opening a file without the marker, or with another
//! replica's id, fails instead of silently joining the wrong history.

// Openraft's `StorageError` is large and is the error type its traits require.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError,
    StorageIOError, Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NodeId, TypeConfig};
use crate::error::StoreError;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const FORMAT: &[u8] = b"berth-raft-log-v1";

type Entry = openraft::Entry<TypeConfig>;

/// What a storage operation was doing, for openraft's storage errors.
type Ctx = (ErrorSubject<NodeId>, ErrorVerb);

/// Maps any displayable error to openraft's storage error, saying what was being done.
trait OrStorage<T> {
    fn ctx(self, ctx: &Ctx) -> Result<T, StorageError<NodeId>>;
}

impl<T, E: std::fmt::Display> OrStorage<T> for Result<T, E> {
    fn ctx(self, (subject, verb): &Ctx) -> Result<T, StorageError<NodeId>> {
        self.map_err(|e| {
            StorageIOError::new(subject.clone(), *verb, AnyError::error(e.to_string())).into()
        })
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("raft types always encode")
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The log store. Cloning shares the database and the writer.
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Arc<Database>,
    /// Entries handed to the writer and not yet durable. Readers take this lock around their
    /// read of the database, and the writer takes it to forget entries once durable and to
    /// truncate or purge, so a reader sees each entry once.
    unflushed: Arc<Mutex<Unflushed>>,
    writer: mpsc::Sender<Job>,
}

/// Index → log id and encoded entry.
type Unflushed = BTreeMap<u64, (LogId<NodeId>, Arc<[u8]>)>;

type Work = Box<dyn FnOnce(&Database) -> Result<(), StorageError<NodeId>> + Send>;

/// What the log writer does, in the order asked.
enum Job {
    Append {
        records: Vec<(LogId<NodeId>, Arc<[u8]>)>,
        callback: LogFlushed<TypeConfig>,
    },
    /// Any other write; its outcome goes to `done` if someone waits for it.
    Write {
        work: Work,
        done: Option<tokio::sync::oneshot::Sender<Result<(), StorageError<NodeId>>>>,
    },
}

/// The log writer's loop: runs jobs in order until every `LogStore` is gone. It holds the
/// database only while it works, so the file closes as soon as the stores are dropped.
fn write_loop(
    db: std::sync::Weak<Database>,
    unflushed: Arc<Mutex<Unflushed>>,
    jobs: mpsc::Receiver<Job>,
) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let Some(db) = db.upgrade() else { return };
        match job {
            Job::Append { records, callback } => {
                let mut batch = vec![(records, callback)];
                // Appends that queued meanwhile share this fsync; anything else waits its turn.
                while let Ok(job) = jobs.try_recv() {
                    match job {
                        Job::Append { records, callback } => batch.push((records, callback)),
                        other => {
                            next = Some(other);
                            break;
                        }
                    }
                }
                let result = commit_entries(&db, batch.iter().flat_map(|(r, _)| r));
                if result.is_ok() {
                    let mut unflushed = unflushed.lock().expect("log lock");
                    for (log_id, _) in batch.iter().flat_map(|(r, _)| r) {
                        if unflushed.get(&log_id.index).map(|(id, _)| id) == Some(log_id) {
                            unflushed.remove(&log_id.index);
                        }
                    }
                }
                for (_, callback) in batch {
                    callback.log_io_completed(
                        result
                            .as_ref()
                            .map(|_| ())
                            .map_err(|e| std::io::Error::other(e.to_string())),
                    );
                }
            }
            Job::Write { work, done } => {
                let result = work(&db);
                match done {
                    Some(done) => {
                        let _ = done.send(result);
                    }
                    None => {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "raft log write failed");
                        }
                    }
                }
            }
        }
    }
}

/// Writes `records` in one transaction and waits for the fsync.
fn commit_entries<'a>(
    db: &Database,
    records: impl Iterator<Item = &'a (LogId<NodeId>, Arc<[u8]>)>,
) -> Result<(), StorageError<NodeId>> {
    let werr: Ctx = (ErrorSubject::Logs, ErrorVerb::Write);
    let tx = db.begin_write().ctx(&werr)?;
    {
        let mut table = tx.open_table(LOG).ctx(&werr)?;
        for (log_id, bytes) in records {
            table.insert(log_id.index, &bytes[..]).ctx(&werr)?;
        }
    }
    // Immediate durability: the commit returns after fsync.
    tx.commit().ctx(&werr)
}

impl LogStore {
    /// Opens or creates the log at `path` for replica `node_id`. The receiver completes once
    /// the log writer has finished and closed the file (after every clone is dropped).
    pub(crate) fn open(
        path: &Path,
        node_id: NodeId,
        cache_bytes: usize,
    ) -> Result<(Self, tokio::sync::oneshot::Receiver<()>), StoreError> {
        let existed = path.exists();
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| {
                StoreError::Corrupt(format!("{} is not a Berth raft log: {e}", path.display()))
            })?;
        let db = Arc::new(db);
        let unflushed: Arc<Mutex<Unflushed>> = Arc::default();
        let (writer, jobs) = mpsc::channel();
        let store = LogStore {
            db: Arc::clone(&db),
            unflushed: Arc::clone(&unflushed),
            writer,
        };
        let id = node_id.to_be_bytes();
        let meta = |key: &str| -> Result<Option<Vec<u8>>, StoreError> {
            let tx = store.db.begin_read().map_err(internal)?;
            match tx.open_table(META) {
                Ok(table) => Ok(table
                    .get(key)
                    .map_err(internal)?
                    .map(|v| v.value().to_vec())),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
                Err(e) => Err(internal(e)),
            }
        };
        match (meta("format")?, meta("node_id")?) {
            (Some(format), Some(stored)) => {
                if format != FORMAT {
                    return Err(StoreError::Corrupt(format!(
                        "{} has format {:?}, expected {:?}",
                        path.display(),
                        String::from_utf8_lossy(&format),
                        String::from_utf8_lossy(FORMAT)
                    )));
                }
                if stored != id {
                    return Err(StoreError::Corrupt(format!(
                        "{} belongs to replica {}, not {node_id}: use that replica's data directory",
                        path.display(),
                        u64::from_be_bytes(stored.try_into().unwrap_or_default())
                    )));
                }
            }
            (None, None) if !existed || store.is_blank()? => {
                let tx = store.db.begin_write().map_err(internal)?;
                {
                    let mut table = tx.open_table(META).map_err(internal)?;
                    table.insert("format", FORMAT).map_err(internal)?;
                    table.insert("node_id", &id[..]).map_err(internal)?;
                    tx.open_table(LOG).map_err(internal)?;
                }
                tx.commit().map_err(internal)?;
            }
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "{} is a redb file but not a Berth raft log",
                    path.display()
                )));
            }
        }
        let (closed, on_close) = tokio::sync::oneshot::channel();
        let db = Arc::downgrade(&db);
        std::thread::Builder::new()
            .name("berth-raft-log".into())
            .spawn(move || {
                write_loop(db, unflushed, jobs);
                let _ = closed.send(());
            })
            .map_err(|e| StoreError::Internal(format!("starting the raft log writer: {e}")))?;
        Ok((store, on_close))
    }

    fn is_blank(&self) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(internal)?;
        Ok(tx.list_tables().map_err(internal)?.next().is_none())
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError<NodeId>> {
        let tx = self
            .db
            .begin_read()
            .ctx(&(ErrorSubject::Store, ErrorVerb::Read))?;
        let table = tx
            .open_table(META)
            .ctx(&(ErrorSubject::Store, ErrorVerb::Read))?;
        let value = table
            .get(key)
            .ctx(&(ErrorSubject::Store, ErrorVerb::Read))?;
        value
            .map(|v| decode(v.value()))
            .transpose()
            .ctx(&(ErrorSubject::Store, ErrorVerb::Read))
    }

    #[cfg(test)]
    pub(crate) fn db(&self) -> Arc<Database> {
        Arc::clone(&self.db)
    }

    /// Runs `work` on the log writer after everything handed to it before, and waits for it.
    async fn write(
        &self,
        work: impl FnOnce(&Database) -> Result<(), StorageError<NodeId>> + Send + 'static,
    ) -> Result<(), StorageError<NodeId>> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.send(Job::Write {
            work: Box::new(work),
            done: Some(done),
        })?;
        outcome.await.map_err(|_| writer_gone())?
    }

    fn send(&self, job: Job) -> Result<(), StorageError<NodeId>> {
        self.writer.send(job).map_err(|_| writer_gone())
    }
}

fn write_meta<T: Serialize>(
    db: &Database,
    key: &str,
    value: &T,
    durability: Durability,
) -> Result<(), StorageError<NodeId>> {
    let werr: Ctx = (ErrorSubject::Store, ErrorVerb::Write);
    let mut tx = db.begin_write().ctx(&werr)?;
    tx.set_durability(durability).ctx(&werr)?;
    {
        let mut table = tx.open_table(META).ctx(&werr)?;
        table.insert(key, encode(value).as_slice()).ctx(&werr)?;
    }
    tx.commit().ctx(&werr)
}

fn writer_gone() -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::Logs,
        ErrorVerb::Write,
        AnyError::error("the raft log writer stopped"),
    )
    .into()
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("raft log: {e}"))
}

/// Reads go to the database directly: redb reads never wait for a writer, and the log's pages
/// are mostly in its cache.
impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(*i),
            Bound::Excluded(i) => Bound::Excluded(*i),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(*i),
            Bound::Excluded(i) => Bound::Excluded(*i),
            Bound::Unbounded => Bound::Unbounded,
        };
        let rerr: Ctx = (ErrorSubject::Logs, ErrorVerb::Read);
        let unflushed = self.unflushed.lock().expect("log lock");
        let mut entries = BTreeMap::new();
        let tx = self.db.begin_read().ctx(&rerr)?;
        let table = tx.open_table(LOG).ctx(&rerr)?;
        for item in table.range::<u64>((start, end)).ctx(&rerr)? {
            let (index, value) = item.ctx(&rerr)?;
            entries.insert(index.value(), decode::<Entry>(value.value()).ctx(&rerr)?);
        }
        // Not yet durable, but readable (and newer than anything stored at the same index).
        for (index, (_, bytes)) in unflushed.range((start, end)) {
            entries.insert(*index, decode::<Entry>(bytes).ctx(&rerr)?);
        }
        Ok(entries.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.read_meta("last_purged")?;
        let rerr: Ctx = (ErrorSubject::Logs, ErrorVerb::Read);
        let unflushed = self.unflushed.lock().expect("log lock");
        let last = match unflushed.last_key_value() {
            Some((_, (log_id, _))) => Some(*log_id),
            None => {
                let tx = self.db.begin_read().ctx(&rerr)?;
                let table = tx.open_table(LOG).ctx(&rerr)?;
                match table.last().ctx(&rerr)? {
                    Some((_, value)) => Some(decode::<Entry>(value.value()).ctx(&rerr)?.log_id),
                    None => None,
                }
            }
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote = *vote;
        self.write(move |db| write_meta(db, "vote", &vote, Durability::Immediate))
            .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read_meta("vote")
    }

    /// The commit pointer is a hint that lets a restarted replica re-apply its committed log
    /// before hearing from a leader. It is written without its own fsync (the next append's
    /// persists it) and without waiting: losing the newest value only means re-applying a
    /// little later.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.send(Job::Write {
            work: Box::new(move |db| write_meta(db, "committed", &committed, Durability::None)),
            done: None,
        })
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .read_meta::<Option<LogId<NodeId>>>("committed")?
            .flatten())
    }

    /// Hands the entries to the log writer and returns: they are readable at once, and
    /// `callback` hears when they are durable.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let records: Vec<(LogId<NodeId>, Arc<[u8]>)> = entries
            .into_iter()
            .map(|e| (e.log_id, Arc::from(encode(&e))))
            .collect();
        {
            let mut unflushed = self.unflushed.lock().expect("log lock");
            for (log_id, bytes) in &records {
                unflushed.insert(log_id.index, (*log_id, Arc::clone(bytes)));
            }
        }
        self.send(Job::Append { records, callback })
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let unflushed = Arc::clone(&self.unflushed);
        self.write(move |db| {
            let werr: Ctx = (ErrorSubject::Logs, ErrorVerb::Delete);
            let mut unflushed = unflushed.lock().expect("log lock");
            unflushed.retain(|index, _| *index < log_id.index);
            let tx = db.begin_write().ctx(&werr)?;
            {
                let mut table = tx.open_table(LOG).ctx(&werr)?;
                table.retain_in(log_id.index.., |_, _| false).ctx(&werr)?;
            }
            tx.commit().ctx(&werr)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let unflushed = Arc::clone(&self.unflushed);
        self.write(move |db| {
            let werr: Ctx = (ErrorSubject::Logs, ErrorVerb::Delete);
            let mut unflushed = unflushed.lock().expect("log lock");
            unflushed.retain(|index, _| *index > log_id.index);
            let tx = db.begin_write().ctx(&werr)?;
            {
                let mut meta = tx.open_table(META).ctx(&werr)?;
                meta.insert("last_purged", encode(&log_id).as_slice())
                    .ctx(&werr)?;
                let mut table = tx.open_table(LOG).ctx(&werr)?;
                table.retain_in(..=log_id.index, |_, _| false).ctx(&werr)?;
            }
            tx.commit().ctx(&werr)
        })
        .await
    }
}
