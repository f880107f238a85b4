//! The raft state machine: the shared [`State`] plus the raft bookkeeping, with snapshots on disk.
//!
//! The key space is applied in memory; durability comes from the raft log. A snapshot file holds
//! the key space together with the last applied log id and membership, so a replica restarts from
//! its newest snapshot and openraft re-applies the committed log after it. Snapshot files carry a
//! magic header and a checksum: a torn or foreign file is refused, never half-loaded.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, StorageError,
    StorageIOError, StoredMembership,
};
use parking_lot::Mutex;

use super::{Command, Node, NodeId, Reply, TypeConfig};
use crate::error::StoreError;
use crate::mvcc::Mvcc;
use crate::state::{State, write_file_durably};

const MAGIC: &[u8; 11] = b"BERTHSNAP1\n";
const SNAPSHOT_FILE: &str = "snapshot.bin";

type Meta = SnapshotMeta<NodeId, Node>;

#[derive(Debug, Default)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    snapshot: Option<Meta>,
}

/// The state machine; clones share everything.
#[derive(Clone)]
pub(crate) struct StateMachine {
    pub(crate) state: Arc<State>,
    applied: Arc<Mutex<Applied>>,
    dir: PathBuf,
}

fn snap_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::Snapshot(None),
        verb,
        AnyError::error(e.to_string()),
    )
    .into()
}

/// Encodes a snapshot file: magic, CRC-32 of the payload, payload.
fn encode_snapshot(meta: &Meta, mvcc: &Mvcc) -> Result<Vec<u8>, StoreError> {
    let payload = postcard::to_allocvec(&(meta, mvcc))
        .map_err(|e| StoreError::Internal(format!("encode snapshot: {e}")))?;
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Verifies a snapshot file's header and checksum; returns its payload.
fn verified_payload(bytes: &[u8]) -> Result<&[u8], StoreError> {
    let header = MAGIC.len() + 4;
    if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
        return Err(StoreError::Corrupt(
            "snapshot has no Berth snapshot header".into(),
        ));
    }
    let crc = u32::from_le_bytes(bytes[MAGIC.len()..header].try_into().expect("4 bytes"));
    let payload = &bytes[header..];
    if crc32fast::hash(payload) != crc {
        return Err(StoreError::Corrupt("snapshot checksum mismatch".into()));
    }
    Ok(payload)
}

/// Reads only the metadata of a snapshot file (it is encoded first).
fn decode_meta(bytes: &[u8]) -> Result<Meta, StoreError> {
    let payload = verified_payload(bytes)?;
    let (meta, _) = postcard::take_from_bytes::<Meta>(payload)
        .map_err(|e| StoreError::Corrupt(format!("snapshot: {e}")))?;
    Ok(meta)
}

/// Decodes and verifies a snapshot file.
fn decode_snapshot(bytes: &[u8]) -> Result<(Meta, Mvcc), StoreError> {
    let payload = verified_payload(bytes)?;
    let (meta, mut mvcc): (Meta, Mvcc) =
        postcard::from_bytes(payload).map_err(|e| StoreError::Corrupt(format!("snapshot: {e}")))?;
    mvcc.restore_derived()?;
    Ok((meta, mvcc))
}

impl StateMachine {
    /// Loads the newest snapshot in `dir`, or starts empty.
    pub(crate) fn open(dir: &Path, limits: crate::Limits) -> Result<Self, StoreError> {
        let path = dir.join(SNAPSHOT_FILE);
        let (applied, mvcc) = match std::fs::read(&path) {
            Ok(bytes) => {
                let (meta, mvcc) = decode_snapshot(&bytes)
                    .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
                let applied = Applied {
                    last_applied: meta.last_log_id,
                    membership: meta.last_membership.clone(),
                    snapshot: Some(meta),
                };
                (applied, mvcc)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Applied::default(), Mvcc::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(StateMachine {
            state: Arc::new(State::new(mvcc, limits)),
            applied: Arc::new(Mutex::new(applied)),
            dir: dir.to_owned(),
        })
    }

    pub(crate) fn last_applied_index(&self) -> u64 {
        self.applied.lock().last_applied.map_or(0, |l| l.index)
    }

    fn snapshot_bytes(&self) -> Result<(Meta, Vec<u8>), StoreError> {
        // Holding `applied` keeps apply out, so the key space matches the log id.
        let applied = self.applied.lock();
        let Some(last) = applied.last_applied else {
            return Err(StoreError::Internal("nothing applied yet".into()));
        };
        let meta = Meta {
            last_log_id: Some(last),
            last_membership: applied.membership.clone(),
            snapshot_id: format!("{}-{}", last.leader_id.term, last.index),
        };
        let bytes = self.state.read(|mvcc| encode_snapshot(&meta, mvcc))?;
        Ok((meta, bytes))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let this = self.clone();
        let (meta, bytes) = tokio::task::spawn_blocking(move || {
            let (meta, bytes) = this.snapshot_bytes()?;
            write_file_durably(&this.dir.join(SNAPSHOT_FILE), &bytes)?;
            this.applied.lock().snapshot = Some(meta.clone());
            Ok::<_, StoreError>((meta, bytes))
        })
        .await
        .map_err(|e| snap_err(ErrorVerb::Write, e))?
        .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = bytes.len(), "built raft snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        let applied = self.applied.lock();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut applied = self.applied.lock();
        let mut replies = Vec::new();
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            replies.push(match entry.payload {
                EntryPayload::Blank => Reply::None,
                EntryPayload::Normal(Command::Txns { now_ms, txns }) => Reply::Txns(
                    self.state
                        .apply_all(&txns, now_ms)
                        .into_iter()
                        .map(|r| r.map_err(Into::into))
                        .collect(),
                ),
                EntryPayload::Normal(Command::Compact(rev)) => {
                    Reply::Compact(self.state.compact(rev).map_err(Into::into))
                }
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    Reply::None
                }
            });
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let (_, mvcc) = decode_snapshot(&bytes).map_err(|e| snap_err(ErrorVerb::Read, e))?;
        write_file_durably(&self.dir.join(SNAPSHOT_FILE), &bytes)
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        let mut applied = self.applied.lock();
        self.state.replace(mvcc);
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        applied.snapshot = Some(meta.clone());
        tracing::info!(snapshot = %meta.snapshot_id, "installed raft snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        if self.applied.lock().snapshot.is_none() {
            return Ok(None);
        }
        // The file's own metadata, not a copy kept beside it: a snapshot being replaced while we
        // read must still describe exactly the key space it holds.
        let bytes = std::fs::read(self.dir.join(SNAPSHOT_FILE))
            .map_err(|e| snap_err(ErrorVerb::Read, e))?;
        let meta = decode_meta(&bytes).map_err(|e| snap_err(ErrorVerb::Read, e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
