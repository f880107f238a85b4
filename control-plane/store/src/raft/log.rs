//! The raft log, vote and commit pointer, persisted in redb.
//!
//! Every append is one redb write transaction committed with immediate durability (one fsync),
//! and openraft hands us everything that queued up meanwhile in one append, so concurrent
//! proposals share an fsync. The first transaction on a new file stamps it with a format marker
//! and the replica's id: opening a file without the marker, or with another replica's id, fails
//! instead of silently joining the wrong history.

// Openraft's `StorageError` is large and is the error type its traits require.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

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

/// The log store. Cloning shares the database.
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    /// Opens or creates the log at `path` for replica `node_id`.
    pub(crate) fn open(
        path: &Path,
        node_id: NodeId,
        cache_bytes: usize,
    ) -> Result<Self, StoreError> {
        let existed = path.exists();
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| {
                StoreError::Corrupt(format!("{} is not a Berth raft log: {e}", path.display()))
            })?;
        let store = LogStore { db: Arc::new(db) };
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
        Ok(store)
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

    fn write_meta<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        durability: Durability,
    ) -> Result<(), StorageError<NodeId>> {
        let werr: Ctx = (ErrorSubject::Store, ErrorVerb::Write);
        let mut tx = self.db.begin_write().ctx(&werr)?;
        tx.set_durability(durability).ctx(&werr)?;
        {
            let mut table = tx.open_table(META).ctx(&werr)?;
            table.insert(key, encode(value).as_slice()).ctx(&werr)?;
        }
        tx.commit().ctx(&werr)
    }

    #[cfg(test)]
    pub(crate) fn db(&self) -> Arc<Database> {
        Arc::clone(&self.db)
    }

    /// Runs blocking redb work without stalling other tasks. On a multi-threaded runtime the
    /// current worker becomes a blocking thread for the duration (no hand-off to the blocking
    /// pool, which costs more than a fast fsync); elsewhere the work moves to the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LogStore) -> Result<T, StorageError<NodeId>> + Send + 'static,
    ) -> Result<T, StorageError<NodeId>> {
        let handle = tokio::runtime::Handle::current();
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            return tokio::task::block_in_place(|| f(self));
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .ctx(&(ErrorSubject::Store, ErrorVerb::Write))?
    }
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("raft log: {e}"))
}

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
        self.blocking(move |this| {
            let rerr: Ctx = (ErrorSubject::Logs, ErrorVerb::Read);
            let tx = this.db.begin_read().ctx(&rerr)?;
            let table = tx.open_table(LOG).ctx(&rerr)?;
            let mut entries = Vec::new();
            for item in table.range::<u64>((start, end)).ctx(&rerr)? {
                let (_, value) = item.ctx(&rerr)?;
                entries.push(decode::<Entry>(value.value()).ctx(&rerr)?);
            }
            Ok(entries)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        self.blocking(|this| {
            let last_purged_log_id: Option<LogId<NodeId>> = this.read_meta("last_purged")?;
            let rerr: Ctx = (ErrorSubject::Logs, ErrorVerb::Read);
            let tx = this.db.begin_read().ctx(&rerr)?;
            let table = tx.open_table(LOG).ctx(&rerr)?;
            let last = match table.last().ctx(&rerr)? {
                Some((_, value)) => Some(decode::<Entry>(value.value()).ctx(&rerr)?.log_id),
                None => None,
            };
            Ok(LogState {
                last_purged_log_id,
                last_log_id: last.or(last_purged_log_id),
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote = *vote;
        self.blocking(move |this| this.write_meta("vote", &vote, Durability::Immediate))
            .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.blocking(|this| this.read_meta("vote")).await
    }

    /// The commit pointer is a hint that lets a restarted replica re-apply its committed log
    /// before hearing from a leader. It is written without its own fsync: the next log append's
    /// fsync persists it, and losing the newest value only means re-applying a little later.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.blocking(move |this| this.write_meta("committed", &committed, Durability::None))
            .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        self.blocking(|this| {
            Ok(this
                .read_meta::<Option<LogId<NodeId>>>("committed")?
                .flatten())
        })
        .await
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|e| (e.log_id.index, encode(&e)))
            .collect();
        let result = self
            .blocking(move |this| {
                let werr: Ctx = (ErrorSubject::Logs, ErrorVerb::Write);
                let tx = this.db.begin_write().ctx(&werr)?;
                {
                    let mut table = tx.open_table(LOG).ctx(&werr)?;
                    for (index, bytes) in &encoded {
                        table.insert(*index, bytes.as_slice()).ctx(&werr)?;
                    }
                }
                // Immediate durability: the commit returns after fsync.
                tx.commit().ctx(&werr)
            })
            .await;
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.blocking(move |this| {
            let werr: Ctx = (ErrorSubject::Logs, ErrorVerb::Delete);
            let tx = this.db.begin_write().ctx(&werr)?;
            {
                let mut table = tx.open_table(LOG).ctx(&werr)?;
                table.retain_in(log_id.index.., |_, _| false).ctx(&werr)?;
            }
            tx.commit().ctx(&werr)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.blocking(move |this| {
            let werr: Ctx = (ErrorSubject::Logs, ErrorVerb::Delete);
            let tx = this.db.begin_write().ctx(&werr)?;
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
