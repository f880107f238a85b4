//! Turning Compute errors into [`cloud::Failure`]s: which call failed, and whether a retry helps.
//!
//! Compute reports errors twice over: synchronously, as an HTTP status with Google's error JSON
//! (`{"error": {"code": 404, "message": "...", "errors": [{"reason": "notFound", ...}]}}`), and
//! asynchronously, in a finished operation's `error.errors[].code` (`QUOTA_EXCEEDED`,
//! `RESOURCE_NOT_FOUND`, …) with `httpErrorStatusCode`. Both go through [`classify`].

use cloud::{Failure, FatalError, FatalKind, RetryKind, RetryableError};
use google_cloud_compute_v1::model::Operation;
use google_cloud_gax::error::Error;
use google_cloud_gax::error::rpc::StatusDetails;

/// What a Compute error means to Berth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Fatal(FatalKind),
    Retry(RetryKind),
}

/// Which resource a "not found" or "invalid" message is about. Compute names the offending
/// resource by URL or field (`machineTypes/…`, `global/images/…`, `zones/…`); more specific
/// names are checked first because a machine type URL also names its zone.
fn missing_kind(message: &str) -> Option<FatalKind> {
    let m = message.to_ascii_lowercase();
    let table: [(&[&str], FatalKind); 6] = [
        (
            &["machinetype", "machine type"],
            FatalKind::UnknownInstanceType,
        ),
        (&["/images/", "image"], FatalKind::UnknownImage),
        (&["subnetwork", "/networks/"], FatalKind::UnknownSubnet),
        (&["/instances/"], FatalKind::UnknownInstance),
        (&["zones/", "zone"], FatalKind::UnknownZone),
        (&["regions/", "region"], FatalKind::UnknownRegion),
    ];
    table
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| m.contains(n)))
        .map(|(_, kind)| *kind)
}

/// Classifies an HTTP status with Compute's `reason` (or an operation's error `code`) and message.
pub(crate) fn classify(status: u16, reason: &str, message: &str) -> Class {
    use Class::{Fatal, Retry};
    match reason {
        "rateLimitExceeded" | "userRateLimitExceeded" | "RATE_LIMIT_EXCEEDED" => {
            Retry(RetryKind::Throttled)
        }
        "quotaExceeded" | "QUOTA_EXCEEDED" => Fatal(FatalKind::QuotaExceeded),
        "resourceNotReady"
        | "resourceInUseByAnotherResource"
        | "conditionNotMet"
        | "RESOURCE_NOT_READY"
        | "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE" => Retry(RetryKind::NotYetConsistent),
        "ZONE_RESOURCE_POOL_EXHAUSTED"
        | "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"
        | "backendError"
        | "internalError"
        | "INTERNAL_ERROR" => Retry(RetryKind::Unavailable),
        "alreadyExists" | "RESOURCE_ALREADY_EXISTS" => Fatal(FatalKind::Conflict),
        "authError" | "required" if status == 401 => Fatal(FatalKind::Unauthenticated),
        "forbidden" | "insufficientPermissions" | "accessNotConfigured" => {
            Fatal(FatalKind::Forbidden)
        }
        "notFound" | "invalid" | "badRequest" | "RESOURCE_NOT_FOUND" | "INVALID_FIELD_VALUE" => {
            Fatal(missing_kind(message).unwrap_or(FatalKind::Rejected))
        }
        _ => match status {
            401 => Fatal(FatalKind::Unauthenticated),
            403 => Fatal(FatalKind::Forbidden),
            404 | 400 => Fatal(missing_kind(message).unwrap_or(FatalKind::Rejected)),
            409 => Fatal(FatalKind::Conflict),
            429 => Retry(RetryKind::Throttled),
            500.. => Retry(RetryKind::Unavailable),
            _ => Fatal(FatalKind::Rejected),
        },
    }
}

/// The first `reason` of Google's error JSON, if any.
fn reason(err: &Error) -> Option<&str> {
    err.status()?.details.iter().find_map(|d| match d {
        StatusDetails::ErrorInfo(info) if !info.reason.is_empty() => Some(info.reason.as_str()),
        _ => None,
    })
}

/// Whether the error is Compute's 404.
pub(crate) fn is_not_found(err: &Error) -> bool {
    err.http_status_code() == Some(404) || reason(err) == Some("notFound")
}

/// Whether the error is Compute's 409 `alreadyExists`.
pub(crate) fn is_already_exists(err: &Error) -> bool {
    err.http_status_code() == Some(409) || reason(err) == Some("alreadyExists")
}

fn make(
    call: &'static str,
    class: Class,
    message: String,
    source: Option<cloud::BoxError>,
) -> Failure {
    match class {
        Class::Fatal(kind) => Failure::Fatal(FatalError {
            call,
            kind,
            message,
            source,
        }),
        Class::Retry(kind) => Failure::Retryable(RetryableError {
            call,
            kind,
            message,
            source,
        }),
    }
}

/// Turns a client error into a failure naming `call`, keeping the client error as the source.
pub(crate) fn failure(call: &'static str, err: Error) -> Failure {
    let (class, message) = if err.is_authentication() {
        (Class::Fatal(FatalKind::Unauthenticated), err.to_string())
    } else if err.is_timeout() {
        (Class::Retry(RetryKind::Timeout), err.to_string())
    } else if err.is_connect() || err.is_io() || err.is_transport() || err.is_exhausted() {
        (Class::Retry(RetryKind::Unavailable), err.to_string())
    } else if let Some(status) = err.http_status_code() {
        let reason = reason(&err).unwrap_or("");
        let message = err.status().map_or_else(String::new, |s| s.message.clone());
        (
            classify(status, reason, &message),
            format!("HTTP {status} {reason}: {message}"),
        )
    } else {
        // Serialization and request binding errors: a bug or bad input, not the cloud.
        (Class::Fatal(FatalKind::Rejected), err.to_string())
    };
    make(call, class, message, Some(Box::new(err)))
}

/// The failure of a finished operation, or `None` if it succeeded.
pub(crate) fn operation_failure(call: &'static str, op: &Operation) -> Option<Failure> {
    let first = op.error.as_ref().and_then(|e| e.errors.first());
    if first.is_none() && op.http_error_status_code.is_none_or(|s| s < 400) {
        return None;
    }
    let status = op
        .http_error_status_code
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(400);
    let code = first.and_then(|e| e.code.as_deref()).unwrap_or("");
    let message = first
        .and_then(|e| e.message.clone())
        .or_else(|| op.http_error_message.clone())
        .unwrap_or_default();
    let name = op.name.as_deref().unwrap_or("");
    Some(make(
        call,
        classify(status, code, &message),
        format!("operation {name} failed: {code}: {message}"),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_compute_v1::model::operation;

    #[test]
    fn reasons_and_codes() {
        use Class::{Fatal, Retry};
        let cases = [
            (
                400,
                "invalid",
                "Invalid value for field 'resource.machineType': 'zones/us-central1-a/machineTypes/e2-nope'. Machine type with name 'e2-nope' does not exist in zone 'us-central1-a'.",
                Fatal(FatalKind::UnknownInstanceType),
            ),
            (
                404,
                "notFound",
                "The resource 'projects/debian-cloud/global/images/family/debian-99' was not found",
                Fatal(FatalKind::UnknownImage),
            ),
            (
                404,
                "notFound",
                "The resource 'projects/p/zones/us-central1-z' was not found",
                Fatal(FatalKind::UnknownZone),
            ),
            (
                404,
                "notFound",
                "The resource 'projects/p/regions/mars-east1' was not found",
                Fatal(FatalKind::UnknownRegion),
            ),
            (
                404,
                "notFound",
                "The resource 'projects/p/regions/r/subnetworks/nodes' was not found",
                Fatal(FatalKind::UnknownSubnet),
            ),
            (
                400,
                "invalid",
                "The resource 'projects/p/zones/z/instances/n' was not found",
                Fatal(FatalKind::UnknownInstance),
            ),
            (
                404,
                "notFound",
                "something else",
                Fatal(FatalKind::Rejected),
            ),
            (409, "alreadyExists", "", Fatal(FatalKind::Conflict)),
            (403, "rateLimitExceeded", "", Retry(RetryKind::Throttled)),
            (429, "", "", Retry(RetryKind::Throttled)),
            (403, "quotaExceeded", "", Fatal(FatalKind::QuotaExceeded)),
            (403, "forbidden", "", Fatal(FatalKind::Forbidden)),
            (
                401,
                "required",
                "Login Required",
                Fatal(FatalKind::Unauthenticated),
            ),
            (401, "", "", Fatal(FatalKind::Unauthenticated)),
            (
                400,
                "resourceInUseByAnotherResource",
                "",
                Retry(RetryKind::NotYetConsistent),
            ),
            (
                400,
                "resourceNotReady",
                "",
                Retry(RetryKind::NotYetConsistent),
            ),
            (503, "backendError", "", Retry(RetryKind::Unavailable)),
            (502, "", "", Retry(RetryKind::Unavailable)),
            (
                400,
                "ZONE_RESOURCE_POOL_EXHAUSTED",
                "",
                Retry(RetryKind::Unavailable),
            ),
            (403, "QUOTA_EXCEEDED", "", Fatal(FatalKind::QuotaExceeded)),
            (
                404,
                "RESOURCE_NOT_FOUND",
                "The resource 'projects/p/global/images/x' was not found",
                Fatal(FatalKind::UnknownImage),
            ),
            (400, "", "", Fatal(FatalKind::Rejected)),
        ];
        for (status, reason, message, want) in cases {
            assert_eq!(
                classify(status, reason, message),
                want,
                "{status} {reason} {message:?}"
            );
        }
    }

    #[test]
    fn operations_report_their_first_error() {
        let ok = Operation::new()
            .set_name("op-1")
            .set_status(operation::Status::Done);
        assert!(operation_failure("compute.instances.insert", &ok).is_none());

        let quota = ok.clone().set_http_error_status_code(403).set_error(
            operation::Error::new().set_errors([operation::error::Errors::new()
                .set_code("QUOTA_EXCEEDED")
                .set_message("Quota 'CPUS' exceeded. Limit: 8.0 in region us-central1.")]),
        );
        let f = operation_failure("compute.instances.insert", &quota).unwrap();
        assert_eq!(f.fatal_kind(), Some(FatalKind::QuotaExceeded));
        assert_eq!(
            f.to_string(),
            "compute.instances.insert failed (quota exceeded): operation op-1 failed: QUOTA_EXCEEDED: Quota 'CPUS' exceeded. Limit: 8.0 in region us-central1."
        );

        let stockout = ok.set_error(operation::Error::new().set_errors([
            operation::error::Errors::new().set_code("ZONE_RESOURCE_POOL_EXHAUSTED"),
        ]));
        let f = operation_failure("compute.instances.insert", &stockout).unwrap();
        assert_eq!(f.retry_kind(), Some(RetryKind::Unavailable));
    }
}
