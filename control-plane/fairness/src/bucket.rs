//! A token bucket in integer arithmetic, so that refills and waits are exact.

use std::time::Duration;

use tokio::time::Instant;

/// One token, in the bucket's units (a nanotoken each).
const TOKEN: i128 = 1_000_000_000;

/// A token bucket that holds up to `burst` tokens and gains `rate` tokens per second. An empty
/// bucket lends up to a queue's worth of tokens from its future refills: their takers wait
/// until their token would have arrived, so callers over the rate are spaced evenly, as
/// golang.org/x/time/rate's `Reserve` does, rather than refused together and retrying together.
///
/// The clock is an argument, so the bucket itself is plain data.
#[derive(Debug)]
pub(crate) struct Bucket {
    /// Tokens held, in nanotokens; negative while tokens are lent.
    units: i128,
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

    /// Takes one token at `now`: `Ok` with how long the taker waits for it (zero when the
    /// bucket held one), borrowing at most `queue` tokens ahead of the refill; `Err` with how
    /// long until a token would be free, when that many are already lent.
    ///
    /// A `rate` of 0 means no rate limit: every take succeeds at once.
    pub(crate) fn reserve(
        &mut self,
        now: Instant,
        rate: u32,
        burst: u32,
        queue: u32,
    ) -> Result<Duration, Duration> {
        if rate == 0 {
            return Ok(Duration::ZERO);
        }
        self.refill(now, rate, burst);
        if self.units >= TOKEN {
            self.units -= TOKEN;
            return Ok(Duration::ZERO);
        }
        // One nanotoken per nanosecond per unit of rate: the wait is the shortfall over the rate.
        // The shortfall is positive here, so the unsigned ceiling division applies.
        let shortfall = u128::try_from(TOKEN - self.units).unwrap_or(u128::MAX);
        let wait = shortfall.div_ceil(u128::from(rate));
        let wait = Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX));
        if self.units - TOKEN < -i128::from(queue) * TOKEN {
            // The queue is full: the earliest a token is free is after the lent ones.
            return Err(wait);
        }
        self.units -= TOKEN;
        Ok(wait)
    }

    /// Drops tokens above a (new, smaller) burst.
    pub(crate) fn clamp(&mut self, burst: u32) {
        self.units = self.units.min(capacity(burst));
    }

    fn refill(&mut self, now: Instant, rate: u32, burst: u32) {
        let elapsed = i128::try_from(now.saturating_duration_since(self.last).as_nanos())
            .unwrap_or(i128::MAX);
        self.last = now;
        let gained = elapsed.saturating_mul(i128::from(rate));
        self.units = self.units.saturating_add(gained).min(capacity(burst));
    }
}

/// The most nanotokens a bucket holds: `burst` tokens, and at least one so that a request can
/// ever pass.
fn capacity(burst: u32) -> i128 {
    i128::from(burst.max(1)) * TOKEN
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Result<Duration, Duration> = Ok(Duration::ZERO);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn starts_full_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(3, t0);
        for _ in 0..3 {
            assert_eq!(bucket.reserve(t0, 10, 3, 0), NOW);
        }
        // Empty, nothing lent: at 10 per second the next token is 100ms away.
        assert_eq!(bucket.reserve(t0, 10, 3, 0), Err(ms(100)));
        // 40ms later it is 60ms away.
        let t1 = t0 + ms(40);
        assert_eq!(bucket.reserve(t1, 10, 3, 0), Err(ms(60)));
        let t2 = t0 + ms(100);
        assert_eq!(bucket.reserve(t2, 10, 3, 0), NOW);
        assert!(bucket.reserve(t2, 10, 3, 0).is_err());
    }

    #[test]
    fn an_empty_bucket_lends_a_queue_of_tokens_spaced_at_the_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(1, t0);
        assert_eq!(bucket.reserve(t0, 10, 1, 3), NOW);
        assert_eq!(bucket.reserve(t0, 10, 1, 3), Ok(ms(100)));
        assert_eq!(bucket.reserve(t0, 10, 1, 3), Ok(ms(200)));
        assert_eq!(bucket.reserve(t0, 10, 1, 3), Ok(ms(300)));
        // Three lent: the next would be free after them.
        assert_eq!(bucket.reserve(t0, 10, 1, 3), Err(ms(400)));
        // Time repays the loan: 150ms later one lent token is paid back, one more may be lent.
        let t1 = t0 + ms(150);
        assert_eq!(bucket.reserve(t1, 10, 1, 3), Ok(ms(250)));
        assert_eq!(bucket.reserve(t1, 10, 1, 3), Err(ms(350)));
        // Long after, the bucket is full again (never above its burst).
        let t2 = t0 + Duration::from_secs(3600);
        assert_eq!(bucket.reserve(t2, 10, 1, 3), NOW);
        assert_eq!(bucket.reserve(t2, 10, 1, 3), Ok(ms(100)));
    }

    #[test]
    fn never_holds_more_than_the_burst() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(2, t0);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(bucket.reserve(later, 1, 2, 0), NOW);
        assert_eq!(bucket.reserve(later, 1, 2, 0), NOW);
        assert_eq!(bucket.reserve(later, 1, 2, 0), Err(Duration::from_secs(1)));
    }

    #[test]
    fn zero_rate_is_unlimited_and_zero_burst_still_admits_one() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(0, t0);
        for _ in 0..1000 {
            assert_eq!(bucket.reserve(t0, 0, 0, 0), NOW);
        }
        assert_eq!(bucket.reserve(t0, 5, 0, 0), NOW);
        assert_eq!(bucket.reserve(t0, 5, 0, 0), Err(ms(200)));
    }

    #[test]
    fn clamp_drops_tokens_above_a_smaller_burst() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(100, t0);
        bucket.clamp(1);
        assert_eq!(bucket.reserve(t0, 1, 1, 0), NOW);
        assert!(bucket.reserve(t0, 1, 1, 0).is_err());
    }
}
