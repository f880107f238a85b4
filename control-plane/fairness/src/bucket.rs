//! A token bucket in integer arithmetic, so that refills and waits are exact.

use std::time::Duration;

use tokio::time::Instant;

/// One token, in the bucket's units (a nanotoken each).
const TOKEN: u128 = 1_000_000_000;

/// A token bucket that holds up to `burst` tokens and gains `rate` tokens per second.
///
/// The clock is an argument, so the bucket itself is plain data.
#[derive(Debug)]
pub(crate) struct Bucket {
    /// Tokens held, in nanotokens.
    units: u128,
    /// When `units` was last brought up to date.
    last: Instant,
}

impl Bucket {
    /// A full bucket of `burst` tokens.
    pub(crate) fn full(burst: u32, now: Instant) -> Self {
        Bucket {
            units: capacity(burst),
            last: now,
        }
    }

    /// Takes one token at `now`, or says how long until one is available.
    ///
    /// A `rate` of 0 means no rate limit: every take succeeds.
    pub(crate) fn take(&mut self, now: Instant, rate: u32, burst: u32) -> Result<(), Duration> {
        if rate == 0 {
            return Ok(());
        }
        self.refill(now, rate, burst);
        if self.units >= TOKEN {
            self.units -= TOKEN;
            return Ok(());
        }
        // One nanotoken per nanosecond per unit of rate: the wait is the shortfall over the rate.
        let wait = (TOKEN - self.units).div_ceil(u128::from(rate));
        Err(Duration::from_nanos(
            u64::try_from(wait).unwrap_or(u64::MAX),
        ))
    }

    /// Drops tokens above a (new, smaller) burst.
    pub(crate) fn clamp(&mut self, burst: u32) {
        self.units = self.units.min(capacity(burst));
    }

    fn refill(&mut self, now: Instant, rate: u32, burst: u32) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = now;
        let gained = elapsed.saturating_mul(u128::from(rate));
        self.units = self.units.saturating_add(gained).min(capacity(burst));
    }
}

/// The most nanotokens a bucket holds: `burst` tokens, and at least one so that a request can
/// ever pass.
fn capacity(burst: u32) -> u128 {
    u128::from(burst.max(1)) * TOKEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_full_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(3, t0);
        for _ in 0..3 {
            assert_eq!(bucket.take(t0, 10, 3), Ok(()));
        }
        // Empty: at 10 per second the next token is 100ms away.
        assert_eq!(bucket.take(t0, 10, 3), Err(Duration::from_millis(100)));
        // 40ms later it is 60ms away.
        let t1 = t0 + Duration::from_millis(40);
        assert_eq!(bucket.take(t1, 10, 3), Err(Duration::from_millis(60)));
        let t2 = t0 + Duration::from_millis(100);
        assert_eq!(bucket.take(t2, 10, 3), Ok(()));
        assert!(bucket.take(t2, 10, 3).is_err());
    }

    #[test]
    fn never_holds_more_than_the_burst() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(2, t0);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(bucket.take(later, 1, 2), Ok(()));
        assert_eq!(bucket.take(later, 1, 2), Ok(()));
        assert_eq!(bucket.take(later, 1, 2), Err(Duration::from_secs(1)));
    }

    #[test]
    fn zero_rate_is_unlimited_and_zero_burst_still_admits_one() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(0, t0);
        for _ in 0..1000 {
            assert_eq!(bucket.take(t0, 0, 0), Ok(()));
        }
        assert_eq!(bucket.take(t0, 5, 0), Ok(()));
        assert_eq!(bucket.take(t0, 5, 0), Err(Duration::from_millis(200)));
    }

    #[test]
    fn clamp_drops_tokens_above_a_smaller_burst() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(100, t0);
        bucket.clamp(1);
        assert_eq!(bucket.take(t0, 1, 1), Ok(()));
        assert!(bucket.take(t0, 1, 1).is_err());
    }
}
