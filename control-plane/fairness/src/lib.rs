//! Per-cluster limits and API priority and fairness for Berth's API server.
//!
//! Every request of a logical cluster passes [`Fairness::admit`] before it runs: first a token
//! bucket per cluster (requests per second with a burst; over it the request waits for its
//! token, spaced evenly at the rate, while fewer than a queue's length or a burst wait, and is
//! refused with a `Retry-After` beyond that), then a seat among a fixed number of server-wide seats. When every seat
//! is taken a request waits in its cluster's queue (bounded in length and in time), and a freed
//! seat goes to the waiting cluster with the fewest seats in use, so that a flooding cluster
//! cannot starve a light one. This is upstream's API priority and fairness
//! (`k8s.io/apiserver/pkg/util/flowcontrol`) reduced to one priority level whose flows are
//! logical clusters: no FlowSchemas, no shuffle sharding (each cluster has its own queue), and
//! every request costs one seat.
//!
//! The crate also counts open watches per cluster ([`Fairness::watch`]) and the objects and bytes
//! a cluster stores ([`Fairness::check_growth`], [`Fairness::record`]).
//!
//! Heavy reads: a seat is one request whatever it costs, but a list, or the initial events of a
//! watch, sends every object of a resource, thousands of encodes and megabytes of writes. Upstream
//! charges such requests more seats (its work estimator); here each cluster may run at most
//! [`Config::heavy_reads`] of them at once ([`Fairness::heavy_read`]), and the rest wait their
//! turn. A tenant whose 300 watches all start with initial events then has a few streaming at a
//! time, not 300 tasks in the runtime's queues ahead of every other tenant's request.
//!
//! What it is not: it knows no HTTP. It says why a request is refused ([`Rejected`]: a reason, a
//! `Retry-After` and a message naming the limit); the API server turns that into a response.
//!
//! Seat shares: while seats are contended a cluster holds at most
//! `max(1, total_seats / active clusters)` seats, where a cluster is active while it has requests
//! running or waiting. A lone cluster may use every seat; when a second cluster arrives, the first
//! one gets no new seat until it is under its share. This keeps seats free for light clusters
//! instead of handing every freed seat straight back to the flood.

mod bucket;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::bucket::Bucket;

/// The limits of one logical cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Requests per second, refilled continuously; 0 means no rate limit.
    pub requests_per_second: u32,
    /// How many requests may come at once after a quiet period (the bucket's size, at least 1).
    pub burst: u32,
    /// Watches open at the same time.
    pub max_watches: u32,
    /// Objects stored.
    pub max_objects: u64,
    /// Bytes of stored objects.
    pub max_stored_bytes: u64,
}

impl Default for Limits {
    /// The server-wide defaults: 100 requests per second with a burst of 200, 1,000 watches,
    /// 100,000 objects and 1 GiB.
    fn default() -> Self {
        Limits {
            requests_per_second: 100,
            burst: 200,
            max_watches: 1000,
            max_objects: 100_000,
            max_stored_bytes: 1 << 30,
        }
    }
}

/// Server-wide configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Requests (watches excepted) running at the same time across all clusters.
    pub total_seats: usize,
    /// Requests one cluster may have waiting for a seat; more are refused with
    /// [`Reason::QueueFull`].
    pub queue_length: usize,
    /// How long a request may wait for a seat (or a heavy read for its turn) before it is
    /// refused with [`Reason::QueueTimeout`].
    pub queue_wait: Duration,
    /// Heavy reads (lists, watches' initial events) one cluster may run at once; more wait.
    pub heavy_reads: usize,
    /// The limits of clusters that have none of their own.
    pub defaults: Limits,
}

impl Default for Config {
    /// 600 seats (upstream's 400 read-only plus 200 mutating), queues of 50 (upstream's
    /// `queueLengthLimit`) and 15 seconds of waiting (a quarter of upstream's request timeout).
    fn default() -> Self {
        Config {
            total_seats: 600,
            queue_length: 50,
            queue_wait: Duration::from_secs(15),
            heavy_reads: 4,
            defaults: Limits::default(),
        }
    }
}

/// What kind of request asks for admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// The server's own work (its controllers, health checks): never limited, never queued.
    Exempt,
    /// A request that changes nothing (get, list).
    ReadOnly,
    /// A request that writes.
    Mutating,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The cluster's token bucket is empty.
    RateLimited,
    /// Every seat is taken and the cluster's queue is full.
    QueueFull,
    /// The request waited for a seat longer than the configured wait.
    QueueTimeout,
    /// The cluster has as many watches open as it may.
    TooManyWatches,
    /// The write would take the cluster over its object count.
    ObjectLimit,
    /// The write would take the cluster over its stored bytes.
    ByteLimit,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 6] = [
        Reason::RateLimited,
        Reason::QueueFull,
        Reason::QueueTimeout,
        Reason::TooManyWatches,
        Reason::ObjectLimit,
        Reason::ByteLimit,
    ];

    /// A stable snake-case name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RateLimited => "rate_limited",
            Reason::QueueFull => "queue_full",
            Reason::QueueTimeout => "queue_timeout",
            Reason::TooManyWatches => "too_many_watches",
            Reason::ObjectLimit => "object_limit",
            Reason::ByteLimit => "byte_limit",
        }
    }

    /// The HTTP status upstream would answer with: 429 Too Many Requests for load (retrying
    /// later helps), 403 Forbidden for storage limits (like an exceeded ResourceQuota).
    pub fn status_code(self) -> u16 {
        match self {
            Reason::ObjectLimit | Reason::ByteLimit => 403,
            _ => 429,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejected {
    /// Which limit refused it.
    pub reason: Reason,
    /// When to try again: whole seconds, at least one, for load refusals; zero for storage
    /// limits, where waiting does not help.
    pub retry_after: Duration,
    /// A sentence naming the cluster and the limit, for the response's message.
    pub message: String,
}

/// What a cluster stores and holds open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Objects stored.
    pub objects: u64,
    /// Bytes of stored objects.
    pub bytes: u64,
    /// Watches open.
    pub watches: u32,
}

/// A snapshot of the counters, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Seats in use across all clusters (exempt requests are not counted).
    pub in_flight: usize,
    /// Requests waiting for a seat across all clusters.
    pub queued: usize,
    /// Per cluster, for every cluster known since it was last forgotten or that has requests
    /// running or waiting.
    pub clusters: BTreeMap<String, ClusterStats>,
}

/// The counters of one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Seats in use.
    pub in_flight: usize,
    /// Requests waiting for a seat.
    pub queued: usize,
    /// Watches open.
    pub watches: u32,
    /// Refusals so far, by reason; reasons that never happened are absent.
    pub rejected: BTreeMap<Reason, u64>,
    /// Requests so far that waited for a token of the rate limit instead of being refused.
    pub paced: u64,
}

/// Limits and fairness shared by every request of the server; cheap to clone.
#[derive(Clone)]
pub struct Fairness {
    inner: Arc<Inner>,
}

impl fmt::Debug for Fairness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fairness")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: Config,
    /// Limits, buckets and usage of each cluster. Read-locked on every call; write-locked only
    /// to add or remove a cluster.
    clusters: RwLock<HashMap<Arc<str>, Arc<Cluster>>>,
    /// Seat accounting. Held only for short, non-async sections.
    seats: Mutex<Seats>,
}

/// One cluster's limits and counters.
struct Cluster {
    name: Arc<str>,
    gate: Mutex<Gate>,
    watches: AtomicU32,
    objects: AtomicU64,
    bytes: AtomicU64,
    rejected: [AtomicU64; Reason::ALL.len()],
    /// Requests that waited for a rate-limit token.
    paced: AtomicU64,
    /// Turns for heavy reads.
    heavy: Arc<tokio::sync::Semaphore>,
}

struct Gate {
    limits: Limits,
    bucket: Bucket,
}

/// The seats of the whole server and the queues of the clusters that use them.
#[derive(Default)]
struct Seats {
    in_flight: usize,
    queued: usize,
    /// Only active clusters (with requests running or waiting) have a flow, so `flows.len()` is
    /// the number of active clusters.
    flows: HashMap<Arc<str>, Flow>,
    next_ticket: u64,
}

#[derive(Default)]
struct Flow {
    in_flight: usize,
    queue: VecDeque<Waiter>,
}

impl Flow {
    fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.queue.is_empty()
    }
}

struct Waiter {
    /// Increasing across the server: the oldest waiter has the smallest ticket.
    ticket: u64,
    grant: oneshot::Sender<Seat>,
}

/// A seat held by a running request; it is given back when dropped.
#[must_use = "the seat is released as soon as it is dropped"]
pub struct Seat {
    held: Option<Held>,
}

struct Held {
    inner: Arc<Inner>,
    cluster: Arc<str>,
}

impl fmt::Debug for Seat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.held {
            Some(held) => f.debug_tuple("Seat").field(&held.cluster).finish(),
            None => f.write_str("Seat(exempt)"),
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            held.inner.release(&held.cluster);
        }
    }
}

/// A heavy read's turn (see [`Fairness::heavy_read`]); the next one waiting gets it when this
/// is dropped.
#[must_use = "the turn is given back as soon as it is dropped"]
#[derive(Debug)]
pub struct HeavyRead {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// An open watch; the cluster's watch count goes down when it is dropped.
#[must_use = "the watch is no longer counted once the permit is dropped"]
pub struct WatchPermit {
    cluster: Arc<Cluster>,
}

impl fmt::Debug for WatchPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WatchPermit")
            .field(&self.cluster.name)
            .finish()
    }
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        self.cluster.watches.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Fairness {
    /// Limits and fairness with no cluster known yet; clusters get `config.defaults` until
    /// [`Fairness::set_limits`] says otherwise.
    pub fn new(config: Config) -> Self {
        Fairness {
            inner: Arc::new(Inner {
                config,
                clusters: RwLock::new(HashMap::new()),
                seats: Mutex::new(Seats::default()),
            }),
        }
    }

    /// The configuration this was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Gives `cluster` its own limits. A smaller burst takes effect at once; usage is kept.
    pub fn set_limits(&self, cluster: &str, limits: Limits) {
        let state = self.inner.cluster(cluster);
        let mut gate = state.gate.lock();
        gate.limits = limits;
        gate.bucket.clamp(limits.burst);
    }

    /// The limits `cluster` is held to.
    pub fn limits(&self, cluster: &str) -> Limits {
        match self.inner.clusters.read().get(cluster) {
            Some(state) => state.gate.lock().limits,
            None => self.inner.config.defaults,
        }
    }

    /// Forgets a deleted cluster: its limits, bucket, usage and counters. Requests and watches
    /// still running keep their seats and permits until they end, but no longer count against a
    /// cluster of the same name created afterwards.
    pub fn forget(&self, cluster: &str) {
        self.inner.clusters.write().remove(cluster);
    }

    /// Admits one request of `cluster`: refused at once when the cluster is over its rate,
    /// otherwise given a seat, after waiting in the cluster's queue if every seat is taken.
    ///
    /// Dropping the returned future while it waits gives up its place without leaking a seat.
    pub async fn admit(&self, cluster: &str, class: Class) -> Result<Seat, Rejected> {
        if class == Class::Exempt {
            return Ok(Seat { held: None });
        }
        let state = self.inner.cluster(cluster);
        state
            .take_token(self.inner.config.queue_length, self.inner.config.queue_wait)
            .await?;
        let (mut rx, ticket) = match self.inner.try_seat(&state)? {
            Enqueued::Seated(seat) => return Ok(seat),
            Enqueued::Waiting(rx, ticket) => (rx, ticket),
        };
        let mut place = Place {
            inner: &self.inner,
            cluster: &state.name,
            ticket,
            armed: true,
        };
        let timed_out = match tokio::time::timeout(self.inner.config.queue_wait, &mut rx).await {
            Ok(Ok(seat)) => {
                place.armed = false;
                return Ok(seat);
            }
            // Waiters are only dropped unanswered when their receiver is gone, so this is not
            // expected; it is a refusal all the same.
            Ok(Err(_)) => false,
            Err(_) => true,
        };
        // Give up the place first: if a seat was granted meanwhile, it is in the channel.
        drop(place);
        if let Ok(seat) = rx.try_recv() {
            return Ok(seat);
        }
        let wait = self.inner.config.queue_wait;
        let message = if timed_out {
            format!(
                "cluster {cluster} waited {}s for a free seat, the longest a request may wait; \
                 the server is busy; retry after 1s",
                wait.as_secs_f64()
            )
        } else {
            format!("cluster {cluster} lost its place in the queue; retry after 1s")
        };
        Err(state.reject(Reason::QueueTimeout, Duration::from_secs(1), message))
    }

    /// Waits for `cluster`'s turn to run a heavy read (a list, a watch's initial events), at most
    /// [`Config::queue_wait`]; hold the turn until the read has been sent. The server's own
    /// loops (exempt requests) do not ask.
    pub async fn heavy_read(&self, cluster: &str) -> Result<HeavyRead, Rejected> {
        let state = self.inner.cluster(cluster);
        let turns = Arc::clone(&state.heavy);
        let wait = self.inner.config.queue_wait;
        match tokio::time::timeout(wait, turns.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(HeavyRead { _permit: permit }),
            // The semaphore is never closed; a timeout is the only way here.
            _ => {
                let message = format!(
                    "cluster {cluster} waited {}s for its turn to list; it runs {} lists and \
                     watch starts at a time; retry after 1s",
                    wait.as_secs_f64(),
                    self.inner.config.heavy_reads.max(1)
                );
                Err(state.reject(Reason::QueueTimeout, Duration::from_secs(1), message))
            }
        }
    }

    /// Opens a watch of `cluster` if it has fewer than its `max_watches` open.
    pub fn watch(&self, cluster: &str) -> Result<WatchPermit, Rejected> {
        let state = self.inner.cluster(cluster);
        let max = state.gate.lock().limits.max_watches;
        let before = state.watches.fetch_add(1, Ordering::Relaxed);
        if before >= max {
            state.watches.fetch_sub(1, Ordering::Relaxed);
            let message = format!(
                "cluster {cluster} is limited to {max} open watches; close one or retry after 1s"
            );
            return Err(state.reject(Reason::TooManyWatches, Duration::from_secs(1), message));
        }
        Ok(WatchPermit { cluster: state })
    }

    /// Checks that a write changing `cluster` by `objects` objects and `bytes` bytes keeps it
    /// within its limits. Shrinking (zero or negative deltas) always passes, so that a cluster
    /// over its limits can still delete. Record the change with [`Fairness::record`] once the
    /// write succeeded.
    pub fn check_growth(&self, cluster: &str, objects: i64, bytes: i64) -> Result<(), Rejected> {
        let state = self.inner.cluster(cluster);
        let limits = state.gate.lock().limits;
        if objects > 0 {
            let have = state.objects.load(Ordering::Relaxed);
            if have.saturating_add(objects.unsigned_abs()) > limits.max_objects {
                let message = format!(
                    "cluster {cluster} is limited to {} objects and stores {have}; \
                     delete objects before creating more",
                    limits.max_objects
                );
                return Err(state.reject(Reason::ObjectLimit, Duration::ZERO, message));
            }
        }
        if bytes > 0 {
            let have = state.bytes.load(Ordering::Relaxed);
            if have.saturating_add(bytes.unsigned_abs()) > limits.max_stored_bytes {
                let message = format!(
                    "cluster {cluster} is limited to {} bytes of stored objects and stores {have}; \
                     this write would add {bytes}",
                    limits.max_stored_bytes
                );
                return Err(state.reject(Reason::ByteLimit, Duration::ZERO, message));
            }
        }
        Ok(())
    }

    /// Records a successful write that changed `cluster` by `objects` objects and `bytes` bytes
    /// (negative for deletes). Usage never goes below zero.
    pub fn record(&self, cluster: &str, objects: i64, bytes: i64) {
        let state = self.inner.cluster(cluster);
        add(&state.objects, objects);
        add(&state.bytes, bytes);
    }

    /// Sets `cluster`'s usage to a counted value, for example after listing its keys at start.
    pub fn reset_usage(&self, cluster: &str, objects: u64, bytes: u64) {
        let state = self.inner.cluster(cluster);
        state.objects.store(objects, Ordering::Relaxed);
        state.bytes.store(bytes, Ordering::Relaxed);
    }

    /// What `cluster` stores and holds open.
    pub fn usage(&self, cluster: &str) -> Usage {
        match self.inner.clusters.read().get(cluster) {
            Some(state) => Usage {
                objects: state.objects.load(Ordering::Relaxed),
                bytes: state.bytes.load(Ordering::Relaxed),
                watches: state.watches.load(Ordering::Relaxed),
            },
            None => Usage::default(),
        }
    }

    /// A snapshot of seats, queues and refusals, overall and per cluster.
    pub fn stats(&self) -> Stats {
        let mut clusters = BTreeMap::new();
        for (name, state) in self.inner.clusters.read().iter() {
            let rejected = Reason::ALL
                .iter()
                .filter_map(|&reason| {
                    let n = state.rejected[reason.index()].load(Ordering::Relaxed);
                    (n > 0).then_some((reason, n))
                })
                .collect();
            let stats = ClusterStats {
                watches: state.watches.load(Ordering::Relaxed),
                rejected,
                paced: state.paced.load(Ordering::Relaxed),
                ..ClusterStats::default()
            };
            clusters.insert(name.to_string(), stats);
        }
        let seats = self.inner.seats.lock();
        for (name, flow) in &seats.flows {
            let stats = clusters.entry(name.to_string()).or_default();
            stats.in_flight = flow.in_flight;
            stats.queued = flow.queue.len();
        }
        Stats {
            in_flight: seats.in_flight,
            queued: seats.queued,
            clusters,
        }
    }
}

/// Adds a signed delta to a counter, stopping at zero and at the maximum.
fn add(counter: &AtomicU64, delta: i64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |have| {
        Some(if delta >= 0 {
            have.saturating_add(delta.unsigned_abs())
        } else {
            have.saturating_sub(delta.unsigned_abs())
        })
    });
}

/// The outcome of asking for a seat without waiting.
enum Enqueued {
    Seated(Seat),
    Waiting(oneshot::Receiver<Seat>, u64),
}

/// A request's place in its cluster's queue; dropping it while armed leaves the queue.
struct Place<'a> {
    inner: &'a Arc<Inner>,
    cluster: &'a Arc<str>,
    ticket: u64,
    armed: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.leave(self.cluster, self.ticket);
        }
    }
}

impl Inner {
    /// The state of `name`, created with the default limits on first use.
    fn cluster(&self, name: &str) -> Arc<Cluster> {
        if let Some(state) = self.clusters.read().get(name) {
            return state.clone();
        }
        self.clusters
            .write()
            .entry(Arc::from(name))
            .or_insert_with_key(|name| {
                let limits = self.config.defaults;
                Arc::new(Cluster {
                    name: name.clone(),
                    gate: Mutex::new(Gate {
                        limits,
                        bucket: Bucket::full(limits.burst, Instant::now()),
                    }),
                    watches: AtomicU32::new(0),
                    objects: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                    rejected: Default::default(),
                    paced: AtomicU64::new(0),
                    heavy: Arc::new(tokio::sync::Semaphore::new(self.config.heavy_reads.max(1))),
                })
            })
            .clone()
    }

    /// The most seats one cluster may hold while `active` clusters use the server.
    fn share(&self, active: usize) -> usize {
        (self.config.total_seats / active.max(1)).max(1)
    }

    /// Seats the request at once if a seat is free, its cluster is under its share and nobody of
    /// its cluster waits ahead of it; otherwise queues it.
    fn try_seat(self: &Arc<Inner>, state: &Cluster) -> Result<Enqueued, Rejected> {
        let mut seats = self.seats.lock();
        let known = seats.flows.contains_key(&*state.name);
        let share = self.share(seats.flows.len() + usize::from(!known));
        let total_free = seats.in_flight < self.config.total_seats;
        let ticket = seats.next_ticket;
        let seats = &mut *seats;
        let flow = seats.flows.entry(state.name.clone()).or_default();
        if total_free && flow.queue.is_empty() && flow.in_flight < share {
            flow.in_flight += 1;
            seats.in_flight += 1;
            return Ok(Enqueued::Seated(Seat {
                held: Some(Held {
                    inner: self.clone(),
                    cluster: state.name.clone(),
                }),
            }));
        }
        if flow.queue.len() >= self.config.queue_length {
            if flow.is_idle() {
                seats.flows.remove(&*state.name);
            }
            let message = format!(
                "cluster {} has {} requests waiting for a seat, the most it may; \
                 retry after 1s",
                state.name, self.config.queue_length
            );
            return Err(state.reject(Reason::QueueFull, Duration::from_secs(1), message));
        }
        let (tx, rx) = oneshot::channel();
        flow.queue.push_back(Waiter { ticket, grant: tx });
        seats.queued += 1;
        seats.next_ticket += 1;
        Ok(Enqueued::Waiting(rx, ticket))
    }

    /// Gives back a seat of `cluster` and hands free seats to waiters.
    fn release(self: &Arc<Inner>, cluster: &Arc<str>) {
        let grants = {
            let mut seats = self.seats.lock();
            seats.in_flight -= 1;
            if let Some(flow) = seats.flows.get_mut(cluster) {
                flow.in_flight -= 1;
                if flow.is_idle() {
                    seats.flows.remove(cluster);
                }
            }
            self.dispatch(&mut seats)
        };
        send(grants);
    }

    /// Removes a waiter that gave up (timed out or was dropped), if it is still queued.
    fn leave(self: &Arc<Inner>, cluster: &Arc<str>, ticket: u64) {
        let grants = {
            let mut seats = self.seats.lock();
            let Some(flow) = seats.flows.get_mut(cluster) else {
                return;
            };
            let Some(at) = flow.queue.iter().position(|w| w.ticket == ticket) else {
                return;
            };
            flow.queue.remove(at);
            let idle = flow.is_idle();
            seats.queued -= 1;
            if idle {
                seats.flows.remove(cluster);
            }
            // One active cluster fewer raises everyone's share.
            self.dispatch(&mut seats)
        };
        send(grants);
    }

    /// Hands free seats to waiting clusters: each time to the one with the fewest seats in use
    /// among those under their share, the longest waiter first among equals. The seats are
    /// returned to be sent once the lock is released, because a seat whose waiter is gone is
    /// dropped, and dropping a seat takes the lock.
    fn dispatch(self: &Arc<Inner>, seats: &mut Seats) -> Vec<(oneshot::Sender<Seat>, Seat)> {
        let mut grants = Vec::new();
        while seats.in_flight < self.config.total_seats && seats.queued > 0 {
            let share = self.share(seats.flows.len());
            let next = seats
                .flows
                .iter()
                .filter(|(_, flow)| flow.in_flight < share)
                .filter_map(|(name, flow)| {
                    let head = flow.queue.front()?;
                    Some(((flow.in_flight, head.ticket), name))
                })
                .min_by_key(|(key, _)| *key)
                .map(|(_, name)| name.clone());
            let Some(name) = next else { break };
            let Some(flow) = seats.flows.get_mut(&name) else {
                break;
            };
            let Some(waiter) = flow.queue.pop_front() else {
                break;
            };
            seats.queued -= 1;
            if waiter.grant.is_closed() {
                // The waiter is gone and its place was not yet removed.
                if flow.is_idle() {
                    seats.flows.remove(&name);
                }
                continue;
            }
            flow.in_flight += 1;
            seats.in_flight += 1;
            let seat = Seat {
                held: Some(Held {
                    inner: self.clone(),
                    cluster: name,
                }),
            };
            grants.push((waiter.grant, seat));
        }
        grants
    }
}

/// Sends granted seats; a seat whose waiter went away meanwhile is dropped, which releases it.
fn send(grants: Vec<(oneshot::Sender<Seat>, Seat)>) {
    for (tx, seat) in grants {
        let _ = tx.send(seat);
    }
}

impl Cluster {
    /// Takes a token from the cluster's bucket, or refuses the request.
    /// Takes a token of the cluster's rate limit, waiting for it when the cluster is over its
    /// rate and fewer than `queue` (or the burst, if larger) requests wait already (see
    /// [`Bucket`]), so that a cluster over
    /// its rate is slowed to it evenly, as upstream's fair queuing holds requests rather than
    /// refusing them; refused with a `Retry-After` beyond that.
    /// No request waits longer than `max_wait` for its token either.
    async fn take_token(&self, queue: usize, max_wait: Duration) -> Result<(), Rejected> {
        let (rate, burst, reserved) = {
            let mut gate = self.gate.lock();
            let Limits {
                requests_per_second: rate,
                burst,
                ..
            } = gate.limits;
            // A cluster may run ahead of its rate by its burst or a queue, whichever is longer
            // (upstream spreads one flow over several queues of `queueLengthLimit` each), and
            // at `rate` tokens a second `max_wait` covers at most this many lent tokens.
            let in_time = (f64::from(rate) * max_wait.as_secs_f64()) as u64;
            let lent = (queue as u64).max(u64::from(burst)).min(in_time);
            let queue = u32::try_from(lent).unwrap_or(u32::MAX);
            (
                rate,
                burst,
                gate.bucket.reserve(Instant::now(), rate, burst, queue),
            )
        };
        let wait = match reserved {
            Ok(wait) => wait,
            Err(wait) => {
                let retry_after = whole_seconds(wait);
                let message = format!(
                    "cluster {} is limited to {rate} requests per second (burst {burst}); retry after {}s",
                    self.name,
                    retry_after.as_secs()
                );
                return Err(self.reject(Reason::RateLimited, retry_after, message));
            }
        };
        if !wait.is_zero() {
            self.paced.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    fn reject(&self, reason: Reason, retry_after: Duration, message: String) -> Rejected {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
        Rejected {
            reason,
            retry_after,
            message,
        }
    }
}

/// Rounds a wait up to whole seconds, at least one, as `Retry-After` carries.
fn whole_seconds(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests;
