//! The work queue: what needs reconciling, deduplicated, fair across logical clusters.
//!
//! Semantics follow client-go's rate-limited work queue: a key added while queued is not
//! queued twice; a key added while a worker holds it is queued again only when that worker
//! calls [`Queue::done`], so no two workers ever hold the same key; failures back off per key
//! exponentially (5 ms doubling to 1000 s) until [`Queue::forget`]. On top of that, ready keys
//! wait in one FIFO per logical cluster and workers take from the clusters in turn.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// What a controller reconciles: one object in one logical cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The logical cluster.
    pub cluster: Arc<str>,
    /// The namespace, "" for cluster-scoped objects.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl Key {
    /// The key of `namespace/name` in `cluster`.
    pub fn new(cluster: &Arc<str>, namespace: &str, name: &str) -> Self {
        Key {
            cluster: Arc::clone(cluster),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}:{}", self.cluster, self.name)
        } else {
            write!(f, "{}:{}/{}", self.cluster, self.namespace, self.name)
        }
    }
}

/// The first failure's delay.
const BASE_DELAY: Duration = Duration::from_millis(5);
/// The longest failure delay.
const MAX_DELAY: Duration = Duration::from_secs(1000);

/// The queue. Share it with `Arc`.
#[derive(Debug, Default)]
pub struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    ready: HashMap<Arc<str>, VecDeque<Key>>,
    turn: VecDeque<Arc<str>>,
    queued: HashSet<Key>,
    processing: HashSet<Key>,
    failures: HashMap<Key, u32>,
    shut: bool,
}

impl Inner {
    fn push_ready(&mut self, key: Key) {
        let fifo = self.ready.entry(Arc::clone(&key.cluster)).or_default();
        if fifo.is_empty() {
            self.turn.push_back(Arc::clone(&key.cluster));
        }
        fifo.push_back(key);
    }

    fn pop_ready(&mut self) -> Option<Key> {
        let cluster = self.turn.pop_front()?;
        let fifo = self.ready.get_mut(&cluster)?;
        let key = fifo.pop_front()?;
        if fifo.is_empty() {
            self.ready.remove(&cluster);
        } else {
            self.turn.push_back(cluster);
        }
        Some(key)
    }
}

impl Queue {
    /// An empty queue.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Queues `key` unless it is already queued.
    pub fn add(&self, key: Key) {
        let mut inner = self.inner.lock();
        if inner.shut || !inner.queued.insert(key.clone()) {
            return;
        }
        if inner.processing.contains(&key) {
            return;
        }
        inner.push_ready(key);
        drop(inner);
        self.notify.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: Key, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(queue) = weak.upgrade() {
                queue.add(key);
            }
        });
    }

    /// Queues `key` after its next backoff delay (doubling with each call until
    /// [`Queue::forget`]).
    pub fn add_rate_limited(self: &Arc<Self>, key: Key) {
        let delay = {
            let mut inner = self.inner.lock();
            let n = inner.failures.entry(key.clone()).or_default();
            *n = n.saturating_add(1);
            backoff(*n)
        };
        self.add_after(key, delay);
    }

    /// Clears `key`'s failure count.
    pub fn forget(&self, key: &Key) {
        self.inner.lock().failures.remove(key);
    }

    /// How many times `key` failed since it was last forgotten.
    pub fn failures(&self, key: &Key) -> u32 {
        self.inner.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Waits for the next key; `None` once the queue is shut down.
    pub async fn next(&self) -> Option<Key> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.inner.lock();
                if inner.shut {
                    return None;
                }
                if let Some(key) = inner.pop_ready() {
                    inner.queued.remove(&key);
                    inner.processing.insert(key.clone());
                    let more = !inner.turn.is_empty();
                    drop(inner);
                    if more {
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; if it was added meanwhile it becomes ready again.
    pub fn done(&self, key: &Key) {
        let mut inner = self.inner.lock();
        inner.processing.remove(key);
        if inner.queued.contains(key) {
            inner.push_ready(key.clone());
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// How many keys wait (queued, not being processed).
    pub fn len(&self) -> usize {
        self.inner.lock().queued.len()
    }

    /// Whether no key waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops handing out keys; every waiting [`Queue::next`] returns `None`.
    pub fn shut_down(&self) {
        self.inner.lock().shut = true;
        self.notify.notify_waiters();
    }
}

/// The delay after the `n`th consecutive failure.
pub fn backoff(n: u32) -> Duration {
    let factor = 2u64.saturating_pow(n.saturating_sub(1)).min(1 << 20);
    BASE_DELAY
        .saturating_mul(factor.try_into().unwrap_or(u32::MAX))
        .min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cluster: &str, name: &str) -> Key {
        Key::new(&Arc::from(cluster), "ns", name)
    }

    #[tokio::test]
    async fn dedupes_and_never_hands_out_a_key_twice() {
        let q = Queue::new();
        q.add(key("a", "x"));
        q.add(key("a", "x"));
        assert_eq!(q.len(), 1);
        let k = q.next().await.unwrap();
        // Added again while processing: held back until done.
        q.add(key("a", "x"));
        let held = tokio::time::timeout(Duration::from_millis(20), q.next()).await;
        assert!(
            held.is_err(),
            "a key in process must not be handed out again"
        );
        q.done(&k);
        assert_eq!(q.next().await.unwrap(), key("a", "x"));
    }

    #[tokio::test]
    async fn clusters_take_turns() {
        let q = Queue::new();
        for i in 0..3 {
            q.add(key("busy", &format!("b{i}")));
        }
        q.add(key("quiet", "q0"));
        let first = q.next().await.unwrap();
        let second = q.next().await.unwrap();
        assert_eq!(&*first.cluster, "busy");
        assert_eq!(
            &*second.cluster, "quiet",
            "the quiet cluster must not wait behind the busy one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_until_forgotten() {
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(4), Duration::from_millis(40));
        assert_eq!(backoff(40), MAX_DELAY);
        let q = Queue::new();
        let k = key("a", "x");
        q.add_rate_limited(k.clone());
        q.add_rate_limited(k.clone());
        assert_eq!(q.failures(&k), 2);
        tokio::time::sleep(Duration::from_millis(11)).await;
        assert_eq!(q.next().await.unwrap(), k);
        q.forget(&k);
        assert_eq!(q.failures(&k), 0);
    }

    #[tokio::test]
    async fn shut_down_wakes_workers() {
        let q = Queue::new();
        let waiter = tokio::spawn({
            let q = Arc::clone(&q);
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
    }
}
