//! Backoff for the provider's own retries: eventual consistency (a just-created resource missing
//! from a describe call) and throttling beyond what an SDK retries itself.

use std::future::Future;
use std::time::Duration;

/// An exponential backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
    /// How many attempts in all, the first included.
    pub attempts: u32,
}

impl Backoff {
    /// A schedule for waiting out eventual consistency: about 30 s in all.
    pub const CONSISTENCY: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
        attempts: 12,
    };

    /// The delay after failed attempt number `attempt` (0-based), doubling up to `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Runs `op` until it succeeds, fails with an error that `retryable` rejects, or the attempts run
/// out; returns the last result.
pub async fn retry<T, E, F, Fut>(
    backoff: Backoff,
    retryable: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if attempt + 1 < backoff.attempts && retryable(&e) => {
                tokio::time::sleep(backoff.delay(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn delays_double_up_to_the_maximum() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            attempts: 10,
        };
        let delays: Vec<u128> = (0..6).map(|a| b.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(1000), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_retryable_errors_and_stops_at_the_limit() {
        let b = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(10),
            attempts: 3,
        };
        let calls = Cell::new(0);
        let r: Result<(), &str> = retry(
            b,
            |e| *e == "again",
            || {
                calls.set(calls.get() + 1);
                async { Err("again") }
            },
        )
        .await;
        assert_eq!((r, calls.get()), (Err("again"), 3));

        calls.set(0);
        let r: Result<(), &str> = retry(
            b,
            |e| *e == "again",
            || {
                calls.set(calls.get() + 1);
                async { Err("fatal") }
            },
        )
        .await;
        assert_eq!((r, calls.get()), (Err("fatal"), 1));

        calls.set(0);
        let r = retry(
            b,
            |e: &&str| *e == "again",
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { if n < 2 { Err("again") } else { Ok(n) } }
            },
        )
        .await;
        assert_eq!(r, Ok(2));
    }
}
