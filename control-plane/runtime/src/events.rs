//! Recording Events about objects, aggregated like upstream's `EventCorrelator`.
//!
//! A repeat of the same event (same object, type, reason and message) bumps the existing
//! Event's `count` and `lastTimestamp` instead of creating a new one, and each object gets a
//! token bucket (burst 25, one more every 5 minutes, as upstream's spam filter) so a loop in
//! trouble cannot flood the store. Recording never blocks the caller: events go through a
//! bounded channel to a writer task and are dropped (with a debug log) when it is full.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::resource::{self, EVENTS};

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something the user may need to act on.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// How many events an object may get in a burst.
const BURST: f64 = 25.0;
/// How often an object earns one more event.
const REFILL_EVERY: Duration = Duration::from_secs(300);
/// How many distinct events are remembered for aggregation.
const REMEMBERED: usize = 4096;

struct Record {
    regarding: Value,
    kind: EventType,
    reason: String,
    message: String,
}

/// A handle to record events; cheap to clone.
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
}

impl Recorder {
    /// A recorder writing core/v1 Events through `client` as `component` (e.g.
    /// `deployment-controller`, `default-scheduler`).
    pub fn spawn(client: kube::Client, component: &'static str) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(writer(client, component, rx));
        Recorder { tx }
    }

    /// Records an event about `regarding` (an object in JSON form).
    pub fn record(&self, regarding: &Value, kind: EventType, reason: &str, message: &str) {
        let regarding = json!({
            "apiVersion": regarding.get("apiVersion"),
            "kind": regarding.get("kind"),
            "metadata": {
                "name": resource::name(regarding),
                "namespace": resource::namespace(regarding),
                "uid": resource::uid(regarding),
                "resourceVersion": resource::resource_version(regarding),
            },
        });
        let record = Record {
            regarding,
            kind,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        if self.tx.try_send(record).is_err() {
            tracing::debug!(reason, "event dropped: the event writer is behind");
        }
    }
}

/// What makes two events the same: object uid, type, reason, message.
type Aggregate = (String, &'static str, String, String);
/// The Event written for an aggregate: name, namespace, count.
type Recorded = (String, String, i64);

struct Bucket {
    tokens: f64,
    at: Instant,
}

async fn writer(client: kube::Client, component: &'static str, mut rx: mpsc::Receiver<Record>) {
    let mut seen: HashMap<Aggregate, Recorded> = HashMap::new();
    let mut buckets: HashMap<String, Bucket> = HashMap::new();
    while let Some(r) = rx.recv().await {
        let uid = resource::uid(&r.regarding).to_string();
        let bucket = buckets.entry(uid.clone()).or_insert(Bucket {
            tokens: BURST,
            at: Instant::now(),
        });
        let earned = bucket.at.elapsed().as_secs_f64() / REFILL_EVERY.as_secs_f64();
        bucket.tokens = (bucket.tokens + earned).min(BURST);
        bucket.at = Instant::now();
        if bucket.tokens < 1.0 {
            tracing::debug!(reason = %r.reason, "event dropped by the per-object spam filter");
            continue;
        }
        bucket.tokens -= 1.0;
        if buckets.len() > REMEMBERED {
            buckets.clear();
        }
        let ns = match resource::namespace(&r.regarding) {
            "" => "default".to_string(),
            ns => ns.to_string(),
        };
        let api: Api<DynamicObject> = EVENTS.api(&client, Some(&ns));
        let second = resource::time_now();
        let key = (uid, r.kind.as_str(), r.reason.clone(), r.message.clone());
        if let Some((name, ev_ns, count)) = seen.get(&key).cloned() {
            let patch = json!({"count": count + 1, "lastTimestamp": second});
            let api: Api<DynamicObject> = EVENTS.api(&client, Some(&ev_ns));
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                seen.insert(key, (name, ev_ns, count + 1));
                continue;
            }
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!("{}.{nanos:x}", resource::name(&r.regarding));
        let m = &r.regarding["metadata"];
        let mut involved = json!({
            "apiVersion": r.regarding["apiVersion"],
            "kind": r.regarding["kind"],
            "name": m["name"],
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
        });
        if m["namespace"].as_str().is_some_and(|s| !s.is_empty()) {
            involved["namespace"] = m["namespace"].clone();
        }
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved,
            "reason": r.reason,
            "message": r.message,
            "type": r.kind.as_str(),
            "source": {"component": component},
            "firstTimestamp": second,
            "lastTimestamp": second,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": component,
        });
        let Ok(obj) = resource::from_value(event) else {
            continue;
        };
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {
                if seen.len() > REMEMBERED {
                    seen.clear();
                }
                seen.insert(key, (name, ns, 1));
            }
            Err(e) => tracing::debug!(error = %e, "cannot write an event"),
        }
    }
}
