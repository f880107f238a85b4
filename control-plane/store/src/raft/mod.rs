//! The replicated store: openraft for consensus, redb for the log, [`Mvcc`](crate::mvcc::Mvcc) as
//! the state machine.
//!
//! A write is acknowledged only after its log entry is durable on a quorum and applied locally.
//! Concurrent writes are batched: while proposals are in flight, new transactions queue up and
//! go out together as one log entry, so they share one append and one fsync (group commit).
//! Each transaction in a batch still gets its own revision.
//!
//! Any replica accepts writes and reads. A follower forwards proposals to the leader and waits
//! until it has applied them itself, so a client reading its own writes from the same replica
//! sees them. Linearizable reads use read-index: the leader confirms its leadership with a quorum
//! and names a log index; the serving replica waits to have applied that far.

mod log;
mod net;
pub mod remote;
mod sm;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, Raft, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::Store;
use crate::error::{Result, StoreError};
use crate::memory::expiry_txn;
use crate::mvcc::{Limits, validate};
use crate::state::{EXPIRY_SWEEP, State, WatchStream, now_ms};
use crate::types::{
    Consistency, RangeRequest, RangeResponse, Revision, StoreStatus, Txn, TxnResponse, WatchRequest,
};

/// A replica's id.
pub type NodeId = u64;
/// A replica's address (`host:port` of its raft listener).
pub type Node = BasicNode;

/// What goes into one raft log entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    /// Transactions applied in order, each at its own revision. `now_ms` is the proposer's clock,
    /// used for TTLs, so that every replica computes the same expiry.
    Txns { now_ms: u64, txns: Vec<Txn> },
    /// Compact history below the revision.
    Compact(Revision),
}

/// What applying one log entry returns.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reply {
    /// Entries without a command (blank, membership).
    None,
    /// One result per transaction of a [`Command::Txns`].
    Txns(Vec<std::result::Result<TxnResponse, WireError>>),
    /// The result of a [`Command::Compact`].
    Compact(std::result::Result<(), WireError>),
}

openraft::declare_raft_types!(
    /// Openraft's type configuration for Berth's store.
    pub TypeConfig:
        D = Command,
        R = Reply,
        NodeId = NodeId,
        Node = Node,
);

/// A [`StoreError`] in a form that crosses the wire between replicas and to remote clients.
#[derive(Clone, Debug, Serialize, Deserialize, thiserror::Error)]
pub enum WireError {
    /// See [`StoreError::Compacted`].
    #[error("compacted")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// See [`StoreError::FutureRevision`].
    #[error("future revision")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// See [`StoreError::ValueTooLarge`].
    #[error("value too large")]
    ValueTooLarge { size: usize, limit: usize },
    /// See [`StoreError::InvalidKey`].
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// See [`StoreError::DuplicateKey`].
    #[error("duplicate key: {0}")]
    DuplicateKey(String),
    /// See [`StoreError::Unavailable`].
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Any other failure, as text.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for WireError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Compacted {
                requested,
                compacted,
            } => WireError::Compacted {
                requested,
                compacted,
            },
            StoreError::FutureRevision { requested, current } => {
                WireError::FutureRevision { requested, current }
            }
            StoreError::ValueTooLarge { size, limit } => WireError::ValueTooLarge { size, limit },
            StoreError::InvalidKey(s) => WireError::InvalidKey(s),
            StoreError::DuplicateKey(s) => WireError::DuplicateKey(s),
            StoreError::Unavailable(s) => WireError::Unavailable(s),
            other => WireError::Internal(other.to_string()),
        }
    }
}

impl From<WireError> for StoreError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Compacted {
                requested,
                compacted,
            } => StoreError::Compacted {
                requested,
                compacted,
            },
            WireError::FutureRevision { requested, current } => {
                StoreError::FutureRevision { requested, current }
            }
            WireError::ValueTooLarge { size, limit } => StoreError::ValueTooLarge { size, limit },
            WireError::InvalidKey(s) => StoreError::InvalidKey(s),
            WireError::DuplicateKey(s) => StoreError::DuplicateKey(s),
            WireError::Unavailable(s) => StoreError::Unavailable(s),
            WireError::Internal(s) => StoreError::Internal(s),
        }
    }
}

/// Why a replica did not take a proposal or a read-index request itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ProposeError {
    /// This replica is not the leader; the leader is at this address, if known.
    NotLeader(Option<String>),
    /// Anything else.
    Failed(WireError),
}

/// A membership change, sent to any replica.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MemberChange {
    /// Add a replica as a voter: it first catches up as a learner.
    Add { id: NodeId, addr: String },
    /// Remove a voter.
    Remove { id: NodeId },
}

/// Settings of one replica.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// This replica's id; unique in the cluster, never reused.
    pub node_id: NodeId,
    /// Where this replica keeps its log and snapshots.
    pub data_dir: PathBuf,
    /// The `host:port` other replicas reach this one at.
    pub advertise: String,
    /// The initial voters (id → `host:port`), this replica included. The replica with the
    /// smallest id initialises the cluster when it has never been initialised.
    pub initial_members: BTreeMap<NodeId, String>,
    /// Leader heartbeat interval.
    pub heartbeat: Duration,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// How long a write or linearizable read may wait for a quorum before failing.
    pub request_timeout: Duration,
    /// Log entries between snapshots.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot, so that briefly lagging replicas catch up from the
    /// log rather than by receiving the whole snapshot.
    pub snapshot_keep_logs: u64,
    /// Transaction limits.
    pub limits: Limits,
    /// redb page cache size.
    pub cache_bytes: usize,
}

impl RaftConfig {
    /// A single-replica store in `data_dir`.
    pub fn single(data_dir: impl Into<PathBuf>, advertise: impl Into<String>) -> Self {
        let advertise = advertise.into();
        RaftConfig {
            node_id: 1,
            data_dir: data_dir.into(),
            initial_members: BTreeMap::from([(1, advertise.clone())]),
            advertise,
            heartbeat: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(500), Duration::from_millis(1000)),
            request_timeout: Duration::from_secs(5),
            snapshot_every: 20_000,
            snapshot_keep_logs: 1_000,
            limits: Limits::default(),
            cache_bytes: 32 << 20,
        }
    }
}

/// Transactions waiting to be proposed, each with where its result goes.
type Pending = (Txn, oneshot::Sender<Result<TxnResponse>>);

/// Most transactions put in one log entry.
const MAX_BATCH: usize = 2048;
/// Most batches in flight at once; more writes wait and join the next batch. One is the classic
/// group commit: measured with 16 and 256 writers it beat 2 and 4 by 1.5x to 2x, since every
/// batch in flight costs its own log append and fsync.
const MAX_IN_FLIGHT: usize = 1;

pub(crate) struct Inner {
    /// The log's database, for tests that hold its write lock (a slow disk).
    #[cfg(test)]
    log_db: Arc<redb::Database>,
    pub(crate) raft: Raft<TypeConfig>,
    sm: sm::StateMachine,
    state: Arc<State>,
    config: RaftConfig,
    client: reqwest::Client,
    batches: mpsc::UnboundedSender<Pending>,
    /// Completes when the log writer has closed the log file.
    log_closed: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

/// The replicated store. Cloning shares the replica.
#[derive(Clone)]
pub struct RaftStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for RaftStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftStore")
            .field("node_id", &self.inner.config.node_id)
            .finish()
    }
}

impl RaftStore {
    /// Opens (or creates) the replica in `config.data_dir` and starts raft. Serve
    /// [`RaftStore::router`] on `config.advertise`, then call [`RaftStore::bootstrap`].
    ///
    /// Raft, the log and the state machine run on the store's own runtime (see
    /// [`store_runtime`]), whichever runtime calls this.
    pub async fn open(config: RaftConfig) -> Result<Self> {
        store_runtime()
            .spawn(Self::open_here(config))
            .await
            .map_err(|e| StoreError::Internal(format!("opening the store: {e}")))?
    }

    async fn open_here(config: RaftConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir)?;
        check_data_dir(&config.data_dir)?;
        let (log, log_closed) = log::LogStore::open(
            &config.data_dir.join("raft-log.redb"),
            config.node_id,
            config.cache_bytes,
        )?;
        let sm = sm::StateMachine::open(&config.data_dir, config.limits)?;
        let state = Arc::clone(&sm.state);
        let raft_config = Config {
            cluster_name: "berth".into(),
            heartbeat_interval: config.heartbeat.as_millis() as u64,
            election_timeout_min: config.election_timeout.0.as_millis() as u64,
            election_timeout_max: config.election_timeout.1.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.snapshot_keep_logs,
            max_payload_entries: 64,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StoreError::Internal(format!("raft config: {e}")))?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(8)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| StoreError::Internal(format!("http client: {e}")))?;
        let network = net::Network {
            client: client.clone(),
        };
        #[cfg(test)]
        let log_db = log.db();
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log,
            sm.clone(),
        )
        .await
        .map_err(|e| StoreError::Internal(format!("start raft: {e}")))?;
        let (batches, queue) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            #[cfg(test)]
            log_db,
            raft,
            sm,
            state,
            config,
            client,
            batches,
            log_closed: std::sync::Mutex::new(Some(log_closed)),
        });
        tokio::spawn(run_batcher(Arc::downgrade(&inner), queue));
        tokio::spawn(sweep_expired(Arc::downgrade(&inner)));
        Ok(RaftStore { inner })
    }

    /// Opens a single-replica store, initialises it if new, and waits until it leads.
    pub async fn open_single(data_dir: impl Into<PathBuf>) -> Result<Self> {
        let store = Self::open(RaftConfig::single(data_dir, "127.0.0.1:0")).await?;
        store.bootstrap().await?;
        store.wait_for_leader(Duration::from_secs(10)).await?;
        Ok(store)
    }

    /// The HTTP routes of this replica: raft RPC and the store API.
    pub fn router(&self) -> axum::Router {
        net::router(Arc::clone(&self.inner))
    }

    /// Initialises the cluster with `initial_members` if this replica has the smallest id and the
    /// cluster was never initialised; otherwise does nothing (the others wait to be contacted).
    pub async fn bootstrap(&self) -> Result<()> {
        let config = &self.inner.config;
        let first = config.initial_members.keys().next().copied();
        if first != Some(config.node_id) {
            return Ok(());
        }
        let initialized = self
            .inner
            .raft
            .is_initialized()
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        let members: BTreeMap<NodeId, Node> = config
            .initial_members
            .iter()
            .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
            .collect();
        tracing::info!(members = ?config.initial_members, "initialising raft cluster");
        self.inner
            .raft
            .initialize(members)
            .await
            .map_err(|e| StoreError::Internal(format!("initialise cluster: {e}")))
    }

    /// Waits until some replica is known to lead.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId> {
        let metrics = self
            .inner
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is elected")
            .await
            .map_err(|e| StoreError::Unavailable(format!("no leader: {e}")))?;
        Ok(metrics.current_leader.expect("checked"))
    }

    /// Stops raft. The store answers `Unavailable` afterwards.
    pub async fn shutdown(&self) {
        let _ = self.inner.raft.shutdown().await;
        // Raft's tasks have dropped the log; the writer finishes what it was handed and closes
        // the file, so the directory can be opened again at once.
        let closed = self.inner.log_closed.lock().expect("log lock").take();
        if let Some(closed) = closed {
            let _ = tokio::time::timeout(Duration::from_secs(10), closed).await;
        }
    }

    /// This replica's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.config.node_id
    }

    /// Current voters and learners (id → address).
    pub fn members(&self) -> BTreeMap<NodeId, String> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect()
    }
}

/// The runtime every replica in this process runs raft on: its own thread, apart from the
/// runtime that serves the API.
///
/// A write passes through several of raft's tasks (the batcher, raft's loop, the log append, the
/// state machine); sharing worker threads with the API, each hop waited behind whatever the API
/// was doing, such as a burst of watch deliveries after another tenant's write, and a one-entry
/// write took 2 to 4 ms instead of 1. On a thread of its own, which sleeps while the disk works,
/// the operating system runs it as soon as it wakes.
fn store_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("berth-store")
            .enable_all()
            .build()
            .expect("the store's runtime starts")
    })
}

/// Refuses data directories that hold something other than a Berth store.
fn check_data_dir(dir: &Path) -> Result<()> {
    const MARKER: &str = "BERTH_STORE";
    const CONTENT: &str = "berth store v1\n";
    let marker = dir.join(MARKER);
    match std::fs::read_to_string(&marker) {
        Ok(content) if content == CONTENT => Ok(()),
        Ok(other) => Err(StoreError::Corrupt(format!(
            "{} holds {:?}; this Berth reads {:?}",
            marker.display(),
            other.trim(),
            CONTENT.trim()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let foreign: Vec<String> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !matches!(name.as_str(), "admin.kubeconfig" | "pki"))
                .collect();
            if !foreign.is_empty() {
                return Err(StoreError::Corrupt(format!(
                    "{} is not empty and is not a Berth data directory (found {}); use an empty directory",
                    dir.display(),
                    foreign.join(", ")
                )));
            }
            crate::state::write_file_durably(&marker, CONTENT.as_bytes())
        }
        Err(e) => Err(e.into()),
    }
}

impl Inner {
    /// Proposes `cmd` to the leader (here or elsewhere) and waits until this replica applied it.
    async fn propose(&self, cmd: Command) -> Result<Reply> {
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        loop {
            let outcome = match self.propose_here(cmd.clone()).await {
                Err(ProposeError::NotLeader(Some(leader))) => self.forward(&leader, &cmd).await,
                other => other,
            };
            match outcome {
                Ok((index, reply)) => {
                    self.wait_applied(index, deadline).await?;
                    return Ok(reply);
                }
                Err(ProposeError::NotLeader(_)) if tokio::time::Instant::now() < deadline => {
                    // An election is under way: nothing was appended, so trying again is safe.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(ProposeError::NotLeader(_)) => {
                    return Err(StoreError::Unavailable(
                        "no raft leader was elected in time".into(),
                    ));
                }
                Err(ProposeError::Failed(e)) => return Err(e.into()),
            }
        }
    }

    /// Proposes `cmd` to this replica's raft, which must lead.
    async fn propose_here(&self, cmd: Command) -> std::result::Result<(u64, Reply), ProposeError> {
        let write = self.raft.client_write(cmd);
        match tokio::time::timeout(self.config.request_timeout, write).await {
            Ok(Ok(resp)) => Ok((resp.log_id.index, resp.data)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                let leader = f
                    .leader_node
                    .map(|n| n.addr)
                    .filter(|a| *a != self.config.advertise);
                Err(ProposeError::NotLeader(leader))
            }
            Ok(Err(e)) => Err(ProposeError::Failed(WireError::Unavailable(format!(
                "raft: {e}"
            )))),
            Err(_) => Err(ProposeError::Failed(WireError::Unavailable(
                "timed out waiting for a quorum to commit; the write may still be applied later"
                    .into(),
            ))),
        }
    }

    async fn forward(
        &self,
        leader: &str,
        cmd: &Command,
    ) -> std::result::Result<(u64, Reply), ProposeError> {
        let url = format!("http://{leader}/store/propose");
        let response = self
            .client
            .post(&url)
            .timeout(self.config.request_timeout)
            .body(net::encode(cmd))
            .send()
            .await;
        let bytes = match response {
            Ok(r) => r.bytes().await,
            // The leader could not be reached, so it holds nothing of this proposal.
            Err(e) if e.is_connect() => return Err(ProposeError::NotLeader(None)),
            Err(e) => Err(e),
        };
        let bytes = bytes.map_err(|e| {
            ProposeError::Failed(WireError::Unavailable(format!(
                "forwarding to leader {leader} failed ({e}); the write may or may not have been applied"
            )))
        })?;
        postcard::from_bytes(&bytes).map_err(|e| {
            ProposeError::Failed(WireError::Internal(format!("bad reply from leader: {e}")))
        })?
    }

    /// Confirms leadership with a quorum and returns the index reads must wait for.
    async fn read_index_here(&self) -> std::result::Result<u64, ProposeError> {
        match tokio::time::timeout(self.config.request_timeout, self.raft.get_read_log_id()).await {
            Ok(Ok((read, _))) => Ok(read.map_or(0, |l| l.index)),
            Ok(Err(RaftError::APIError(e))) => match e {
                openraft::error::CheckIsLeaderError::ForwardToLeader(f) => {
                    Err(ProposeError::NotLeader(
                        f.leader_node
                            .map(|n| n.addr)
                            .filter(|a| *a != self.config.advertise),
                    ))
                }
                other => Err(ProposeError::Failed(WireError::Unavailable(
                    other.to_string(),
                ))),
            },
            Ok(Err(e)) => Err(ProposeError::Failed(WireError::Unavailable(e.to_string()))),
            Err(_) => Err(ProposeError::Failed(WireError::Unavailable(
                "timed out confirming leadership with a quorum".into(),
            ))),
        }
    }

    /// Waits until this replica has applied everything committed before the read started.
    async fn linearize(&self) -> Result<()> {
        // The read-index round trip proves nothing a sole voter does not already know.
        if self.sole_voter_caught_up() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        loop {
            let outcome = match self.read_index_here().await {
                Err(ProposeError::NotLeader(Some(leader))) => {
                    let url = format!("http://{leader}/store/read-index");
                    match self
                        .client
                        .post(&url)
                        .timeout(self.config.request_timeout)
                        .send()
                        .await
                    {
                        Ok(r) => match r.bytes().await {
                            Ok(b) => postcard::from_bytes(&b).unwrap_or_else(|e| {
                                Err(ProposeError::Failed(WireError::Internal(e.to_string())))
                            }),
                            Err(_) => Err(ProposeError::NotLeader(None)),
                        },
                        Err(_) => Err(ProposeError::NotLeader(None)),
                    }
                }
                other => other,
            };
            match outcome {
                Ok(index) => return self.wait_applied(index, deadline).await,
                Err(ProposeError::NotLeader(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(ProposeError::NotLeader(_)) => {
                    return Err(StoreError::Unavailable(
                        "no raft leader to confirm the read".into(),
                    ));
                }
                Err(ProposeError::Failed(e)) => return Err(e.into()),
            }
        }
    }

    /// Whether this replica may answer a linearizable read from what it has applied, without
    /// asking raft for a read index: it is the only voter, it leads, and it has applied an
    /// entry of its own term (so everything of earlier terms too).
    ///
    /// Such a read is linearizable: a write is acknowledged only once applied here, so every
    /// write acknowledged before the read began is visible, and no other replica can lead or
    /// commit while this one is the sole voter (a new voter first enters this replica's own
    /// log). etcd answers a single member's read index just as directly. What it saves: a
    /// round trip through raft's loop, which on a busy store queues behind the writes it is
    /// handling (before the log had its own writer thread, behind the fsync in progress).
    /// With more than one voter, reads take the read-index path.
    fn sole_voter_caught_up(&self) -> bool {
        let me = self.config.node_id;
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.state.is_leader()
            && m.current_leader == Some(me)
            && m.last_applied.map(|l| l.leader_id.term) == Some(m.current_term)
            && m.membership_config.membership().voter_ids().eq([me])
    }

    async fn wait_applied(&self, index: u64, deadline: tokio::time::Instant) -> Result<()> {
        if self.sm.last_applied_index() >= index {
            return Ok(());
        }
        let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.raft
            .wait(Some(timeout.max(Duration::from_millis(1))))
            .applied_index_at_least(Some(index), "apply")
            .await
            .map(|_| ())
            .map_err(|e| {
                StoreError::Unavailable(format!("replica did not catch up to index {index}: {e}"))
            })
    }

    async fn change_members(&self, change: MemberChange) -> std::result::Result<(), ProposeError> {
        let leader = self.raft.current_leader().await;
        if leader != Some(self.config.node_id) {
            let metrics = self.raft.metrics().borrow().clone();
            let addr = leader.and_then(|l| {
                metrics
                    .membership_config
                    .nodes()
                    .find(|(id, _)| **id == l)
                    .map(|(_, n)| n.addr.clone())
            });
            let Some(addr) = addr else {
                return Err(ProposeError::NotLeader(None));
            };
            let url = format!("http://{addr}/store/members");
            let bytes = self
                .client
                .post(&url)
                .body(net::encode(&change))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| ProposeError::Failed(WireError::Unavailable(e.to_string())))?
                .bytes()
                .await
                .map_err(|e| ProposeError::Failed(WireError::Unavailable(e.to_string())))?;
            return postcard::from_bytes(&bytes)
                .map_err(|e| ProposeError::Failed(WireError::Internal(e.to_string())))?;
        }
        let failed = |e: String| ProposeError::Failed(WireError::Unavailable(e));
        match change {
            MemberChange::Add { id, addr } => {
                self.raft
                    .add_learner(id, BasicNode { addr }, true)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
            }
            MemberChange::Remove { id } => {
                self.raft
                    .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// Gathers queued transactions into batches and proposes them.
async fn run_batcher(inner: std::sync::Weak<Inner>, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        tokio::spawn(async move {
            let (txns, replies): (Vec<Txn>, Vec<_>) = batch.into_iter().unzip();
            let count = txns.len();
            let result = inner
                .propose(Command::Txns {
                    now_ms: now_ms(),
                    txns,
                })
                .await;
            drop(slot);
            match result {
                Ok(Reply::Txns(results)) if results.len() == count => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(result.map_err(Into::into));
                    }
                }
                Ok(other) => {
                    for reply in replies {
                        let _ = reply.send(Err(StoreError::Internal(format!(
                            "unexpected reply {other:?}"
                        ))));
                    }
                }
                Err(e) => {
                    let wire = WireError::from(e);
                    for reply in replies {
                        let _ = reply.send(Err(wire.clone().into()));
                    }
                }
            }
        });
    }
}

/// On the leader, deletes expired TTL keys through the log.
async fn sweep_expired(inner: std::sync::Weak<Inner>) {
    let mut tick = tokio::time::interval(EXPIRY_SWEEP);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let leads = inner.raft.metrics().borrow().current_leader == Some(inner.config.node_id);
        if !leads {
            continue;
        }
        let now = now_ms();
        let expired = inner.state.read(|m| m.expired(now, 1000));
        if expired.is_empty() {
            continue;
        }
        let txns = expired
            .into_iter()
            .map(|(key, rev)| expiry_txn(key, rev))
            .collect();
        if let Err(e) = inner.propose(Command::Txns { now_ms: now, txns }).await {
            tracing::warn!(error = %e, "deleting expired keys failed; will retry");
        }
    }
}

#[async_trait]
impl Store for RaftStore {
    #[tracing::instrument(name = "store.txn", level = "debug", skip_all, fields(ops = txn.success.len() + txn.failure.len()))]
    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        validate(&txn, &self.inner.state.limits)?;
        let (tx, rx) = oneshot::channel();
        self.inner
            .batches
            .send((txn, tx))
            .map_err(|_| StoreError::Unavailable("store is shutting down".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("store is shutting down".into()))?
    }

    #[tracing::instrument(name = "store.range", level = "debug", skip_all, fields(limit = req.limit))]
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        if req.consistency == Consistency::Linearizable {
            self.inner.linearize().await?;
        }
        self.inner.state.range(&req)
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        self.inner.state.watch(req)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self.inner.propose(Command::Compact(revision)).await? {
            Reply::Compact(result) => result.map_err(Into::into),
            other => Err(StoreError::Internal(format!("unexpected reply {other:?}"))),
        }
    }

    async fn status(&self) -> Result<StoreStatus> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        Ok(self.inner.state.read(|m| StoreStatus {
            revision: m.revision(),
            compact_revision: m.compact_revision(),
            keys: m.len(),
            member_id: self.inner.config.node_id,
            leader_id: metrics.current_leader,
            term: metrics.current_term,
            applied_index: metrics.last_applied.map_or(0, |l| l.index),
        }))
    }

    async fn save_snapshot(&self, path: &Path) -> Result<Revision> {
        let state = Arc::clone(&self.inner.state);
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || state.save(&path))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RangeRequest;

    /// A sole voter's linearizable reads do not queue behind a log append that is waiting for
    /// the disk: here the log's write lock is held, so the append cannot finish.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sole_voters_reads_do_not_wait_for_a_log_append() {
        let dir = tempfile::tempdir().unwrap();
        let store = RaftStore::open_single(dir.path().join("data"))
            .await
            .unwrap();
        store.put(b"/a", b"1").await.unwrap();
        let held = store.inner.log_db.begin_write().unwrap();
        let writer = tokio::spawn({
            let store = store.clone();
            async move { store.put(b"/b", b"2").await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!writer.is_finished(), "the append waits for the log");
        let read =
            tokio::time::timeout(Duration::from_secs(2), store.range(RangeRequest::key("/a")))
                .await
                .expect("a linearizable read does not wait for the append")
                .unwrap();
        assert_eq!(read.kvs[0].value, &b"1"[..]);
        drop(held);
        writer.await.unwrap().unwrap();
        let read = store.range(RangeRequest::key("/b")).await.unwrap();
        assert_eq!(
            read.kvs[0].value,
            &b"2"[..],
            "an acknowledged write is read back"
        );
        store.shutdown().await;
    }

    /// The local read is for a replica that leads alone and has applied an entry of its term;
    /// a replica that does not lead (here: not yet bootstrapped) asks for a read index.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_a_leading_sole_voter_reads_locally() {
        let dir = tempfile::tempdir().unwrap();
        let store = RaftStore::open(RaftConfig::single(dir.path().join("data"), "127.0.0.1:0"))
            .await
            .unwrap();
        assert!(!store.inner.sole_voter_caught_up(), "no leader yet");
        store.bootstrap().await.unwrap();
        store
            .wait_for_leader(Duration::from_secs(10))
            .await
            .unwrap();
        // The metrics that say so are published just after the leader's first entry applies.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !store.inner.sole_voter_caught_up() {
            assert!(
                std::time::Instant::now() < deadline,
                "a leading sole voter reads locally"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store.shutdown().await;
    }
}
