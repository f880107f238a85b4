//! Turning SDK errors into [`cloud::Failure`]s: which call failed, and whether a retry can help.

use std::error::Error;

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use cloud::{Failure, FatalError, FatalKind, RetryKind, RetryableError};

/// What a cloud error code means to Berth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Fatal(FatalKind),
    Retry(RetryKind),
}

/// Classifies an EC2 or ELBv2 error code (and, for EC2's generic `InvalidParameterValue`, its
/// message). Throttling is checked before limits because `RequestLimitExceeded` is throttling.
pub(crate) fn classify_code(code: &str, message: &str, status: u16) -> Class {
    use Class::{Fatal, Retry};
    let msg = message.to_ascii_lowercase();
    match code {
        "RequestLimitExceeded"
        | "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException" => Retry(RetryKind::Throttled),
        "InvalidInstanceID.NotFound" => Retry(RetryKind::NotYetConsistent),
        "InsufficientInstanceCapacity"
        | "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "Unavailable" => Retry(RetryKind::Unavailable),
        "InvalidAMIID.NotFound" | "InvalidAMIID.Malformed" | "InvalidAMIID.Unavailable" => {
            Fatal(FatalKind::UnknownImage)
        }
        "InvalidInstanceType.NotFound" | "InvalidInstanceType" => {
            Fatal(FatalKind::UnknownInstanceType)
        }
        "InvalidSubnetID.NotFound"
        | "InvalidSubnetID.Malformed"
        | "InvalidSubnet"
        | "SubnetNotFound" => Fatal(FatalKind::UnknownSubnet),
        "InvalidGroup.NotFound"
        | "InvalidGroupId.Malformed"
        | "InvalidSecurityGroupID.NotFound"
        | "InvalidSecurityGroup" => Fatal(FatalKind::UnknownSecurityGroup),
        "InvalidTarget" => Fatal(FatalKind::UnknownInstance),
        "AuthFailure"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "MissingAuthenticationToken" => Fatal(FatalKind::Unauthenticated),
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" | "OptInRequired" => {
            Fatal(FatalKind::Forbidden)
        }
        "DuplicateLoadBalancerName"
        | "DuplicateTargetGroupName"
        | "DuplicateListener"
        | "IdempotentParameterMismatch" => Fatal(FatalKind::Conflict),
        "Unsupported" | "InvalidParameterValue" | "InvalidParameterCombination"
            if msg.contains("instance type") =>
        {
            Fatal(FatalKind::UnknownInstanceType)
        }
        "Unsupported" | "InvalidParameterValue" if msg.contains("availability zone") => {
            Fatal(FatalKind::UnknownZone)
        }
        c if c.ends_with("LimitExceeded") || c.starts_with("TooMany") => {
            Fatal(FatalKind::QuotaExceeded)
        }
        _ if status >= 500 => Retry(RetryKind::Unavailable),
        _ => Fatal(FatalKind::Rejected),
    }
}

fn looks_like_missing_credentials(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("credentials")
        && (t.contains("no credentials")
            || t.contains("not loaded")
            || t.contains("failed to load")
            || t.contains("could not load")
            || t.contains("identity"))
}

/// Turns an SDK error into a failure naming `call`, keeping the SDK error as the source.
pub(crate) fn failure<E>(call: &'static str, err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(&err).to_string();
    let class = match &err {
        SdkError::ServiceError(s) => classify_code(
            err.code().unwrap_or(""),
            err.message().unwrap_or(""),
            s.raw().status().as_u16(),
        ),
        SdkError::TimeoutError(_) => Class::Retry(RetryKind::Timeout),
        SdkError::DispatchFailure(d) if d.is_timeout() => Class::Retry(RetryKind::Timeout),
        _ if looks_like_missing_credentials(&text) => Class::Fatal(FatalKind::Unauthenticated),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Class::Retry(RetryKind::Unavailable)
        }
        SdkError::ConstructionFailure(_) => Class::Fatal(FatalKind::Rejected),
        _ => Class::Retry(RetryKind::Unavailable),
    };
    let message = match (err.code(), err.message()) {
        (Some(code), Some(m)) => format!("{code}: {m}"),
        (Some(code), None) => code.to_owned(),
        _ => text,
    };
    let source = Some(Box::new(err) as cloud::BoxError);
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

/// Whether an SDK error has the given service error code.
pub(crate) fn has_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, code: &str) -> bool {
    err.code() == Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        use Class::{Fatal, Retry};
        let cases = [
            ("RequestLimitExceeded", "", 503, Retry(RetryKind::Throttled)),
            (
                "Throttling",
                "Rate exceeded",
                400,
                Retry(RetryKind::Throttled),
            ),
            (
                "InvalidInstanceID.NotFound",
                "",
                400,
                Retry(RetryKind::NotYetConsistent),
            ),
            (
                "InsufficientInstanceCapacity",
                "",
                500,
                Retry(RetryKind::Unavailable),
            ),
            (
                "InvalidAMIID.NotFound",
                "",
                400,
                Fatal(FatalKind::UnknownImage),
            ),
            (
                "InvalidInstanceType.NotFound",
                "",
                400,
                Fatal(FatalKind::UnknownInstanceType),
            ),
            (
                "InvalidParameterValue",
                "Invalid value 't9.nope' for InstanceType. (instance type)",
                400,
                Fatal(FatalKind::UnknownInstanceType),
            ),
            (
                "InvalidParameterValue",
                "Invalid Availability Zone (us-east-1z)",
                400,
                Fatal(FatalKind::UnknownZone),
            ),
            (
                "Unsupported",
                "Your requested instance type (p5.48xlarge) is not supported in your requested Availability Zone",
                400,
                Fatal(FatalKind::UnknownInstanceType),
            ),
            (
                "InvalidParameterValue",
                "something else",
                400,
                Fatal(FatalKind::Rejected),
            ),
            (
                "InvalidSubnetID.NotFound",
                "",
                400,
                Fatal(FatalKind::UnknownSubnet),
            ),
            (
                "InvalidGroup.NotFound",
                "",
                400,
                Fatal(FatalKind::UnknownSecurityGroup),
            ),
            ("AuthFailure", "", 401, Fatal(FatalKind::Unauthenticated)),
            (
                "UnauthorizedOperation",
                "",
                403,
                Fatal(FatalKind::Forbidden),
            ),
            (
                "InstanceLimitExceeded",
                "",
                400,
                Fatal(FatalKind::QuotaExceeded),
            ),
            (
                "TooManyLoadBalancers",
                "",
                400,
                Fatal(FatalKind::QuotaExceeded),
            ),
            ("InvalidTarget", "", 400, Fatal(FatalKind::UnknownInstance)),
            (
                "DuplicateTargetGroupName",
                "",
                400,
                Fatal(FatalKind::Conflict),
            ),
            ("SomethingNew", "", 502, Retry(RetryKind::Unavailable)),
            ("SomethingNew", "", 400, Fatal(FatalKind::Rejected)),
        ];
        for (code, message, status, want) in cases {
            assert_eq!(
                classify_code(code, message, status),
                want,
                "{code} {message:?} {status}"
            );
        }
    }

    #[test]
    fn missing_credentials_are_recognised() {
        assert!(looks_like_missing_credentials(
            "failed to construct request: no credentials in the property bag"
        ));
        assert!(looks_like_missing_credentials(
            "dispatch failure: identity resolver failed: the credential provider was not enabled: credentials not loaded"
        ));
        assert!(!looks_like_missing_credentials(
            "io error: connection refused"
        ));
    }
}
