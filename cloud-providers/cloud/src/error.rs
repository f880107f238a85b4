//! Errors of cloud operations.
//!
//! Every provider call ends in one of three failures: the input was rejected before any cloud call
//! ([`Failure::InvalidInput`]), the cloud refused in a way that the same request will meet again
//! ([`FatalError`]), or the cloud could not answer now and the same request may succeed later
//! ([`RetryableError`]). Callers decide on retries by type, never by parsing messages.

use std::fmt;

/// A boxed underlying error, usually the SDK's own.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a fatal call failed; decides what a controller reports to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatalKind {
    /// The instance type does not exist in this region or zone.
    UnknownInstanceType,
    /// The machine image does not exist or is not visible to this account.
    UnknownImage,
    /// The zone does not exist in the provider's region.
    UnknownZone,
    /// The region does not exist.
    UnknownRegion,
    /// The subnet (or network) does not exist or does not fit the zone.
    UnknownSubnet,
    /// A security group (or firewall tag) does not exist.
    UnknownSecurityGroup,
    /// An instance named as a load balancer target does not exist or is not the cluster's.
    UnknownInstance,
    /// No credentials were found, or the cloud rejected them.
    Unauthenticated,
    /// The credentials are valid but lack a permission.
    Forbidden,
    /// A quota or limit was reached.
    QuotaExceeded,
    /// A resource with the wanted name exists but is not owned by this cluster.
    Conflict,
    /// The cloud rejected the request for another reason.
    Rejected,
}

impl fmt::Display for FatalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FatalKind::UnknownInstanceType => "unknown instance type",
            FatalKind::UnknownImage => "unknown image",
            FatalKind::UnknownZone => "unknown zone",
            FatalKind::UnknownRegion => "unknown region",
            FatalKind::UnknownSubnet => "unknown subnet",
            FatalKind::UnknownSecurityGroup => "unknown security group",
            FatalKind::UnknownInstance => "unknown instance",
            FatalKind::Unauthenticated => "not authenticated",
            FatalKind::Forbidden => "forbidden",
            FatalKind::QuotaExceeded => "quota exceeded",
            FatalKind::Conflict => "conflict",
            FatalKind::Rejected => "rejected",
        })
    }
}

/// Why a retryable call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    /// The cloud throttled the caller.
    Throttled,
    /// The cloud endpoint could not be reached or answered with a server error.
    Unavailable,
    /// The call timed out.
    Timeout,
    /// A resource that was just created or changed is not yet visible (eventual consistency).
    NotYetConsistent,
}

impl fmt::Display for RetryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryKind::Throttled => "throttled",
            RetryKind::Unavailable => "cloud unavailable",
            RetryKind::Timeout => "timed out",
            RetryKind::NotYetConsistent => "not yet consistent",
        })
    }
}

/// A cloud call that failed in a way that repeating it will not fix.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed ({kind}): {message}")]
pub struct FatalError {
    /// The cloud API call, such as `ec2:RunInstances` or `compute.instances.insert`.
    pub call: &'static str,
    /// The classified reason.
    pub kind: FatalKind,
    /// The cloud's own message (or ours when the provider detected the problem).
    pub message: String,
    /// The underlying SDK error, if any.
    #[source]
    pub source: Option<BoxError>,
}

/// A cloud call that failed in a way that repeating it later may fix.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed ({kind}): {message}")]
pub struct RetryableError {
    /// The cloud API call, such as `ec2:DescribeInstances`.
    pub call: &'static str,
    /// The classified reason.
    pub kind: RetryKind,
    /// The cloud's own message, or the transport error.
    pub message: String,
    /// The underlying SDK error, if any.
    #[source]
    pub source: Option<BoxError>,
}

impl FatalError {
    /// A fatal error without an underlying SDK error.
    pub fn new(call: &'static str, kind: FatalKind, message: impl Into<String>) -> Self {
        FatalError {
            call,
            kind,
            message: message.into(),
            source: None,
        }
    }
}

impl RetryableError {
    /// A retryable error without an underlying SDK error.
    pub fn new(call: &'static str, kind: RetryKind, message: impl Into<String>) -> Self {
        RetryableError {
            call,
            kind,
            message: message.into(),
            source: None,
        }
    }
}

/// How an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The input was rejected before any cloud call was made.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A cloud call failed and will fail again if repeated.
    #[error(transparent)]
    Fatal(FatalError),
    /// A cloud call failed and may succeed if repeated later.
    #[error(transparent)]
    Retryable(RetryableError),
}

impl From<FatalError> for Failure {
    fn from(e: FatalError) -> Self {
        Failure::Fatal(e)
    }
}

impl From<RetryableError> for Failure {
    fn from(e: RetryableError) -> Self {
        Failure::Retryable(e)
    }
}

impl Failure {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Retryable(_))
    }

    /// The fatal kind, if this is a fatal cloud error.
    pub fn fatal_kind(&self) -> Option<FatalKind> {
        match self {
            Failure::Fatal(e) => Some(e.kind),
            _ => None,
        }
    }

    /// The retry kind, if this is a retryable cloud error.
    pub fn retry_kind(&self) -> Option<RetryKind> {
        match self {
            Failure::Retryable(e) => Some(e.kind),
            _ => None,
        }
    }
}

/// An operation on instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceOp {
    /// [`crate::Instances::create_instance`].
    Create,
    /// [`crate::Instances::describe_instance`].
    Describe,
    /// [`crate::Instances::list_instances`].
    List,
    /// [`crate::Instances::terminate_instance`].
    Terminate,
}

/// An operation on load balancers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancerOp {
    /// [`crate::LoadBalancers::ensure_load_balancer`].
    Ensure,
    /// [`crate::LoadBalancers::update_targets`].
    UpdateTargets,
    /// [`crate::LoadBalancers::get_load_balancer`].
    Get,
    /// [`crate::LoadBalancers::delete_load_balancer`].
    Delete,
}

/// An operation on the provider's inventory (region, zones, owned resources).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryOp {
    /// Connecting to the cloud and checking the region.
    Connect,
    /// [`crate::Zones::zones`].
    Zones,
    /// [`crate::Cloud::owned_resources`].
    OwnedResources,
}

macro_rules! op_display {
    ($ty:ty, $($variant:ident => $text:literal),+ $(,)?) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$variant => $text),+ })
            }
        }
    };
}
op_display!(InstanceOp, Create => "create instance", Describe => "describe instance",
    List => "list instances", Terminate => "terminate instance");
op_display!(LoadBalancerOp, Ensure => "ensure load balancer", UpdateTargets => "update load balancer targets",
    Get => "get load balancer", Delete => "delete load balancer");
op_display!(InventoryOp, Connect => "connect", Zones => "list zones", OwnedResources => "list owned resources");

/// A failed operation: which one, on what, and how it failed.
///
/// `Display` reads as one sentence, for example
/// `create instance "web-1": ec2:RunInstances failed (unknown image): ...`. `source()` skips the
/// [`Failure`] layer (already in the message) and yields the SDK's error.
#[derive(Debug)]
pub struct CloudError<Op> {
    /// The operation that failed.
    pub op: Op,
    /// What the operation was about: an instance name, a provider ID, a Service.
    pub subject: String,
    /// How it failed.
    pub failure: Failure,
}

impl<Op> CloudError<Op> {
    /// Wraps a failure of `op` on `subject`.
    pub fn new(op: Op, subject: impl Into<String>, failure: impl Into<Failure>) -> Self {
        CloudError {
            op,
            subject: subject.into(),
            failure: failure.into(),
        }
    }

    /// An input error, raised before any cloud call.
    pub fn invalid(op: Op, subject: impl Into<String>, reason: impl Into<String>) -> Self {
        CloudError {
            op,
            subject: subject.into(),
            failure: Failure::InvalidInput(reason.into()),
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.failure.is_retryable()
    }
}

impl<Op: fmt::Display> fmt::Display for CloudError<Op> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            write!(f, "{}: {}", self.op, self.failure)
        } else {
            write!(f, "{} {:?}: {}", self.op, self.subject, self.failure)
        }
    }
}

impl<Op: fmt::Debug + fmt::Display> std::error::Error for CloudError<Op> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.failure)
    }
}

/// A failed instance operation.
pub type InstanceError = CloudError<InstanceOp>;
/// A failed load balancer operation.
pub type LoadBalancerError = CloudError<LoadBalancerOp>;
/// A failed inventory operation.
pub type InventoryError = CloudError<InventoryOp>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn message_names_operation_subject_call_and_reason() {
        let e = InstanceError::new(
            InstanceOp::Create,
            "web-1",
            FatalError::new(
                "ec2:RunInstances",
                FatalKind::UnknownImage,
                "ami-123 does not exist",
            ),
        );
        assert_eq!(
            e.to_string(),
            "create instance \"web-1\": ec2:RunInstances failed (unknown image): ami-123 does not exist"
        );
        assert!(!e.is_retryable());
        assert_eq!(e.failure.fatal_kind(), Some(FatalKind::UnknownImage));
    }

    #[test]
    fn retryable_is_distinguished_and_source_is_the_sdk_error() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = LoadBalancerError::new(
            LoadBalancerOp::Delete,
            "default/web",
            RetryableError {
                call: "elbv2:DeleteLoadBalancer",
                kind: RetryKind::Unavailable,
                message: "dispatch failure".into(),
                source: Some(Box::new(io)),
            },
        );
        assert!(e.is_retryable());
        assert_eq!(e.failure.retry_kind(), Some(RetryKind::Unavailable));
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("refused")
        );
    }

    #[test]
    fn invalid_input_has_no_cloud_call() {
        let e = InventoryError::invalid(InventoryOp::Zones, "", "region is empty");
        assert_eq!(e.to_string(), "list zones: invalid input: region is empty");
        assert!(!e.is_retryable());
        assert!(e.source().is_none());
    }
}
