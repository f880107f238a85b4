//! Waiting for Compute operations.
//!
//! Every mutating Compute call returns an operation that is `PENDING`, `RUNNING` or `DONE`; the
//! change is only complete, and its error only known, once it is `DONE`. The provider calls the
//! operation's `wait` method (which blocks on the server for up to two minutes and may return
//! early) until the operation is done, pausing between calls that returned early, and gives up
//! with a retryable timeout after `GcpConfig::operation_timeout`. A caller that gives up (or
//! crashes) simply repeats its whole request: every step finds what already exists.

use std::time::Duration;

use cloud::{Failure, RetryKind, RetryableError};
use google_cloud_compute_v1::model::Operation;
use google_cloud_compute_v1::model::operation::Status;

use crate::GcpCloud;
use crate::error::{failure, operation_failure};

/// Where an operation lives, which decides the client that waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope<'a> {
    Zone(&'a str),
    Region(&'a str),
    Global,
}

/// The pause after the `attempt`-th early return of `wait` (0-based): doubling from `first`,
/// at most ten times `first`.
pub(crate) fn poll_delay(first: Duration, attempt: u32) -> Duration {
    first
        .saturating_mul(1u32.checked_shl(attempt.min(8)).unwrap_or(u32::MAX))
        .min(first.saturating_mul(10))
}

fn is_done(op: &Operation) -> bool {
    op.status == Some(Status::Done)
}

impl GcpCloud {
    /// Waits until `op`, returned by `call`, is done; returns its failure if it failed.
    pub(crate) async fn wait(
        &self,
        call: &'static str,
        scope: Scope<'_>,
        mut op: Operation,
    ) -> Result<(), Failure> {
        let deadline = tokio::time::Instant::now() + self.operation_timeout;
        let mut attempt = 0;
        while !is_done(&op) {
            let Some(name) = op.name.clone() else {
                // An operation without a name cannot be polled; Compute always names them.
                return Err(RetryableError::new(
                    call,
                    RetryKind::NotYetConsistent,
                    "the operation has no name to wait for",
                )
                .into());
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(RetryableError::new(
                    call,
                    RetryKind::Timeout,
                    format!(
                        "operation {name} is still {} after {:?}",
                        op.status.as_ref().and_then(|s| s.name()).unwrap_or("?"),
                        self.operation_timeout
                    ),
                )
                .into());
            }
            if attempt > 0 {
                tokio::time::sleep(poll_delay(self.operation_poll, attempt - 1)).await;
            }
            attempt += 1;
            op = match scope {
                Scope::Zone(zone) => self
                    .zone_ops
                    .wait()
                    .set_project(&self.project)
                    .set_zone(zone)
                    .set_operation(&name)
                    .send()
                    .await
                    .map_err(|e| failure("compute.zoneOperations.wait", e))?,
                Scope::Region(region) => self
                    .region_ops
                    .wait()
                    .set_project(&self.project)
                    .set_region(region)
                    .set_operation(&name)
                    .send()
                    .await
                    .map_err(|e| failure("compute.regionOperations.wait", e))?,
                Scope::Global => self
                    .global_ops
                    .wait()
                    .set_project(&self.project)
                    .set_operation(&name)
                    .send()
                    .await
                    .map_err(|e| failure("compute.globalOperations.wait", e))?,
            };
        }
        match operation_failure(call, &op) {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_delays_double_up_to_ten_times_the_first() {
        let first = Duration::from_millis(100);
        let got: Vec<u128> = (0..6).map(|a| poll_delay(first, a).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(poll_delay(first, u32::MAX), Duration::from_secs(1));
    }
}
