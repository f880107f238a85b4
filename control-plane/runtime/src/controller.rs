//! The controller driver: workers that take keys from a [`Queue`] and reconcile them.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::Instrument;

use crate::queue::{Key, Queue};

/// What to do with a key after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile again after `delay` even if nothing changes.
    pub fn requeue(delay: Duration) -> Self {
        Action {
            requeue_after: Some(delay),
        }
    }

    /// Reconcile again only when something the controller watches changes.
    pub fn await_change() -> Self {
        Action::default()
    }

    /// The requested delay, if any.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// Runs `workers` workers for controller `name` until `shutdown` turns true.
///
/// A reconcile that returns `Ok(action)` clears the key's backoff and requeues it when the
/// action asks; one that returns `Err` is logged and requeued with the key's backoff (the
/// error policy of every Berth controller: transient API errors heal, persistent ones are
/// retried ever more slowly and stay visible in the log).
pub async fn run<F, Fut, E>(
    name: &'static str,
    queue: Arc<Queue>,
    workers: usize,
    reconcile: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Key) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send,
    E: Display + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let queue = Arc::clone(&queue);
        let reconcile = reconcile.clone();
        tasks.spawn(async move {
            while let Some(key) = queue.next().await {
                let span = tracing::info_span!(
                    "reconcile",
                    controller = name,
                    cluster = %key.cluster,
                    namespace = %key.namespace,
                    name = %key.name,
                );
                let started = Instant::now();
                let result = reconcile(key.clone()).instrument(span).await;
                let elapsed = started.elapsed();
                match result {
                    Ok(action) => {
                        queue.forget(&key);
                        if let Some(delay) = action.requeue_after() {
                            queue.add_after(key.clone(), delay);
                        }
                        tracing::debug!(controller = name, %key, ?elapsed, "reconciled");
                    }
                    Err(e) => {
                        let failures = queue.failures(&key) + 1;
                        tracing::warn!(controller = name, %key, error = %e, failures, "reconcile failed; retrying with backoff");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
    let _ = shutdown.wait_for(|s| *s).await;
    queue.shut_down();
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn errors_are_retried_with_backoff_and_successes_requeue_when_asked() {
        let queue = Queue::new();
        let calls = Arc::new(AtomicU32::new(0));
        let (stop, rx) = watch::channel(false);
        let driver = tokio::spawn(run(
            "test",
            Arc::clone(&queue),
            2,
            {
                let calls = Arc::clone(&calls);
                move |_key: Key| {
                    let calls = Arc::clone(&calls);
                    async move {
                        match calls.fetch_add(1, Ordering::SeqCst) {
                            0 | 1 => Err("transient"),
                            2 => Ok(Action::requeue(Duration::from_secs(30))),
                            _ => Ok(Action::await_change()),
                        }
                    }
                }
            },
            rx,
        ));
        queue.add(Key::new(&Arc::from("c"), "ns", "x"));
        // Two failures (5 ms, then 10 ms backoff), then a success asking for 30 s.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "await_change must not requeue"
        );
        stop.send_replace(true);
        driver.await.unwrap();
    }
}
