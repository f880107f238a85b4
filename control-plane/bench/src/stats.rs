//! Latency samples and the figures printed from them.

use std::time::Duration;

/// Latencies of one scenario and the wall time it took.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    latencies: Vec<Duration>,
    pub(crate) wall: Duration,
}

impl Samples {
    pub(crate) fn new(mut latencies: Vec<Duration>, wall: Duration) -> Self {
        latencies.sort_unstable();
        Samples { latencies, wall }
    }

    /// Adds `other`'s requests and wall time (rounds of the same workload).
    pub(crate) fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
        self.wall += other.wall;
    }

    pub(crate) fn count(&self) -> usize {
        self.latencies.len()
    }

    /// Operations per second over the wall time.
    pub(crate) fn throughput(&self) -> f64 {
        self.count() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile (0..=1), nearest rank.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank =
            ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1]
    }

    pub(crate) fn mean(&self) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.iter().sum::<Duration>() / self.latencies.len() as u32
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Resident set size of process `pid` in bytes, from `/proc`.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time (user + system) process `pid` has used so far.
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) are space separated; utime and
    // stime are the 14th and 15th fields overall.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports in clock ticks of 1/100 s on every platform Berth runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// Runs `total` operations spread over `workers` concurrent tasks (the first `total % workers`
/// do one more) and records each operation's latency. `op(worker, i)` performs operation `i` of
/// `worker`; the first error ends the run.
pub(crate) async fn fan_out<F, Fut>(workers: usize, total: usize, op: F) -> anyhow::Result<Samples>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let op = op.clone();
            let n = total / workers + usize::from(w < total % workers);
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(n);
                for i in 0..n {
                    let t = std::time::Instant::now();
                    op(w, i).await?;
                    lat.push(t.elapsed());
                }
                anyhow::Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(Samples::new(all, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let s = Samples::new(
            (1..=100).map(Duration::from_millis).collect(),
            Duration::from_secs(1),
        );
        assert_eq!(s.quantile(0.5), Duration::from_millis(50));
        assert_eq!(s.quantile(0.99), Duration::from_millis(99));
        assert_eq!(s.quantile(1.0), Duration::from_millis(100));
        assert_eq!(s.throughput(), 100.0);
        assert_eq!(s.mean(), Duration::from_micros(50_500));
    }
}
