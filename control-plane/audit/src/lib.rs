//! Berth's audit log: upstream's `audit.k8s.io/v1` policies and events.
//!
//! The API server hands every finished request to [`Auditor::log`] as a [`Record`]. The
//! [`Policy`] (upstream's policy format, first matching rule wins) decides its [`Level`]; a
//! request at a level above `None` becomes one JSON line: an upstream `Event` at stage
//! `ResponseComplete`, plus two fields of Berth's own, `cluster` (the logical cluster) and
//! `latency` (the request's duration as milliseconds with three decimals, for example
//! `"1.234ms"`).
//!
//! Logging never blocks or slows the request path: records go through a bounded channel to a
//! background task that writes them. When the channel is full the record is dropped and counted
//! ([`Auditor::dropped`]), and the writer warns once a second while records are being dropped.
//!
//! What it is not: it knows no HTTP (the caller fills in the record), writes only the
//! `ResponseComplete` stage, and does not rotate files (point it at a file that logrotate's
//! `copytruncate` manages, or at stdout).

mod event;
mod policy;

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

pub use crate::policy::{
    Decision, Error, GroupResources, Level, Policy, RequestAttrs, Rule, Stage,
};

/// Records waiting to be written before new ones are dropped.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One finished request, as the API server saw it. Empty strings mean "absent", as in
/// [`RequestAttrs`]: an empty `resource` marks a non-resource request.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The logical cluster the request addressed.
    pub cluster: String,
    /// The request's audit ID (upstream takes it from the `Audit-ID` header); a random UUID is
    /// used when absent.
    pub audit_id: Option<String>,
    /// The authenticated user's name.
    pub user: String,
    /// The user's UID.
    pub uid: String,
    /// The user's groups.
    pub groups: Vec<String>,
    /// The Kubernetes verb, or the lower-case HTTP method of a non-resource request.
    pub verb: String,
    /// The API group; empty for the core group.
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The resource.
    pub resource: String,
    /// The subresource.
    pub subresource: String,
    /// The namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The path and query as received.
    pub request_uri: String,
    /// The client's address.
    pub source_ip: Option<IpAddr>,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// The response's HTTP status.
    pub code: u16,
    /// When the request was received.
    pub received: SystemTime,
    /// How long it took to answer.
    pub latency: Duration,
    /// The request body, logged at level `Request` and above.
    pub request_object: Option<serde_json::Value>,
    /// The response body, logged at level `RequestResponse`.
    pub response_object: Option<serde_json::Value>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            cluster: String::new(),
            audit_id: None,
            user: String::new(),
            uid: String::new(),
            groups: Vec::new(),
            verb: String::new(),
            api_group: String::new(),
            api_version: String::new(),
            resource: String::new(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
            request_uri: String::new(),
            source_ip: None,
            user_agent: String::new(),
            code: 0,
            received: SystemTime::UNIX_EPOCH,
            latency: Duration::ZERO,
            request_object: None,
            response_object: None,
        }
    }
}

impl Record {
    /// The attributes a policy matches on. The path of a non-resource request is the request
    /// URI without its query.
    pub fn attrs(&self) -> RequestAttrs<'_> {
        let path = self
            .request_uri
            .split_once('?')
            .map_or(self.request_uri.as_str(), |(path, _)| path);
        RequestAttrs {
            user: &self.user,
            groups: &self.groups,
            verb: &self.verb,
            api_group: &self.api_group,
            resource: &self.resource,
            subresource: &self.subresource,
            namespace: &self.namespace,
            name: &self.name,
            path,
        }
    }
}

/// Where events are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// Standard output.
    Stdout,
    /// A file, created if missing and appended to.
    File(PathBuf),
}

impl Sink {
    /// `-` is standard output; anything else a file path (upstream's `--audit-log-path`).
    pub fn parse(text: &str) -> Sink {
        if text == "-" {
            Sink::Stdout
        } else {
            Sink::File(PathBuf::from(text))
        }
    }
}

/// The audit log of a server; cheap to clone.
#[derive(Clone, Debug)]
pub struct Auditor {
    tx: mpsc::Sender<Message>,
    policy: Arc<Policy>,
    dropped: Arc<AtomicU64>,
}

enum Message {
    Event(Box<Pending>),
    Flush(oneshot::Sender<()>),
}

/// A record the policy said to log, with what it decided.
struct Pending {
    record: Record,
    decision: Decision,
}

impl Auditor {
    /// Opens `sink` and starts the writer task with room for [`DEFAULT_CAPACITY`] records.
    ///
    /// Must be called within a Tokio runtime. Fails only if the file cannot be opened.
    pub fn spawn(sink: Sink, policy: Policy) -> io::Result<Auditor> {
        Auditor::spawn_with_capacity(sink, policy, DEFAULT_CAPACITY)
    }

    /// [`Auditor::spawn`] with room for `capacity` waiting records (at least one).
    pub fn spawn_with_capacity(sink: Sink, policy: Policy, capacity: usize) -> io::Result<Auditor> {
        let out: Box<dyn AsyncWrite + Send + Unpin> = match sink {
            Sink::Stdout => Box::new(tokio::io::stdout()),
            Sink::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("audit log {}: {e}", path.display()))
                    })?;
                Box::new(tokio::fs::File::from_std(file))
            }
        };
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_events(rx, out, dropped.clone()));
        Ok(Auditor {
            tx,
            policy: Arc::new(policy),
            dropped,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Logs a finished request if the policy says so. Never waits: when the writer is behind,
    /// the record is dropped and counted.
    pub fn log(&self, record: Record) {
        let decision = self.policy.decide(&record.attrs());
        if !decision.logs() {
            return;
        }
        let message = Message::Event(Box::new(Pending { record, decision }));
        if self.tx.try_send(message).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records dropped so far because the writer was behind (or gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every record logged before the call is written and flushed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Events written before the buffer is handed to the sink even if more are waiting.
const BATCH_BYTES: usize = 64 * 1024;

/// The writer task: renders events into a buffer and writes it whenever the channel runs dry,
/// the buffer is large, or a flush is asked for. Ends when every [`Auditor`] is gone.
async fn write_events(
    mut rx: mpsc::Receiver<Message>,
    mut out: Box<dyn AsyncWrite + Send + Unpin>,
    dropped: Arc<AtomicU64>,
) {
    let mut buf = Vec::with_capacity(BATCH_BYTES);
    let mut reported = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            message = rx.recv() => message,
            _ = tick.tick() => {
                let now = dropped.load(Ordering::Relaxed);
                if now > reported {
                    tracing::warn!(
                        dropped = now - reported,
                        total = now,
                        "audit log is behind: events dropped"
                    );
                    reported = now;
                }
                continue;
            }
        };
        match message {
            Some(Message::Event(pending)) => {
                event::render(&pending.record, pending.decision, &mut buf);
                if rx.is_empty() || buf.len() >= BATCH_BYTES {
                    write(&mut out, &mut buf).await;
                }
            }
            Some(Message::Flush(done)) => {
                write(&mut out, &mut buf).await;
                let _ = done.send(());
            }
            None => {
                write(&mut out, &mut buf).await;
                return;
            }
        }
    }
}

async fn write(out: &mut (dyn AsyncWrite + Send + Unpin), buf: &mut Vec<u8>) {
    if buf.is_empty() {
        return;
    }
    let result = async {
        out.write_all(buf).await?;
        out.flush().await
    }
    .await;
    if let Err(error) = result {
        tracing::error!(%error, bytes = buf.len(), "cannot write the audit log");
    }
    buf.clear();
}

#[cfg(test)]
mod tests;
