//! Berth's cloud provider layer: the traits through which the cloud controller manager turns node
//! pools into VMs and Services of type LoadBalancer into network load balancers, and the values
//! that cross them.
//!
//! The crate is SDK-free: it knows no AWS or Google crate, only the shapes every cloud shares
//! ([`Instances`], [`LoadBalancers`], [`Zones`], bundled as [`Cloud`]), the errors they return
//! (fatal and retryable told apart, naming the cloud call that failed), provider IDs, ownership
//! tags and the pure decisions every provider makes the same way ([`plan`]). It also ships
//! [`fake::FakeCloud`], an in-memory cloud for controller tests, and [`testing`], the conformance
//! suite that every implementation, the fake included, must pass.
//!
//! It is not a controller: it does not watch Services or node pools, and it keeps no state of its
//! own. Every operation is idempotent and finds what already exists by ownership tags (or
//! deterministic names) before creating anything, so a caller may repeat any call after a crash.

pub mod error;
pub mod fake;
pub mod node;
pub mod plan;
pub mod provider_id;
pub mod retry;
pub mod tags;
pub mod testing;
mod types;

use std::collections::BTreeSet;

use async_trait::async_trait;

pub use error::{
    BoxError, CloudError, Failure, FatalError, FatalKind, InstanceError, InstanceOp,
    InventoryError, InventoryOp, LoadBalancerError, LoadBalancerOp, RetryKind, RetryableError,
};
pub use node::{NodeInit, node_init};
pub use provider_id::{ParseProviderIdError, ProviderId};
pub use types::*;

/// Virtual machines of a cluster.
#[async_trait]
pub trait Instances: Send + Sync {
    /// Creates an instance, or returns the one of the same name that the cluster already owns
    /// (idempotent: repeating a create after a crash never makes a second VM). The returned
    /// instance may still be pending. On any error, no instance of this name was left behind by
    /// this call.
    async fn create_instance(
        &self,
        cluster: &ClusterId,
        spec: &InstanceSpec,
    ) -> Result<Instance, InstanceError>;

    /// Describes an instance the cluster owns; `None` if it does not exist, has terminated, or
    /// belongs to another cluster.
    async fn describe_instance(
        &self,
        cluster: &ClusterId,
        id: &ProviderId,
    ) -> Result<Option<Instance>, InstanceError>;

    /// Lists the cluster's instances that are not terminated or shutting down, sorted by name.
    async fn list_instances(&self, cluster: &ClusterId) -> Result<Vec<Instance>, InstanceError>;

    /// Terminates an instance the cluster owns. Succeeds if it is already gone; refuses (fatal,
    /// [`FatalKind::Conflict`]) an instance of another cluster.
    async fn terminate_instance(
        &self,
        cluster: &ClusterId,
        id: &ProviderId,
    ) -> Result<(), InstanceError>;
}

/// Network load balancers for Services of type LoadBalancer.
#[async_trait]
pub trait LoadBalancers: Send + Sync {
    /// Creates or converges the load balancer of `spec.service`: one listener per port, each
    /// forwarding to the port's NodePort on `spec.nodes`, with the health check. Idempotent. If
    /// the load balancer did not exist and creation fails part way, what was created is deleted
    /// before the error is returned.
    async fn ensure_load_balancer(
        &self,
        cluster: &ClusterId,
        spec: &LoadBalancerSpec,
    ) -> Result<LoadBalancer, LoadBalancerError>;

    /// Sets the nodes that receive the Service's traffic, on every listener.
    async fn update_targets(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
        nodes: &BTreeSet<ProviderId>,
    ) -> Result<LoadBalancer, LoadBalancerError>;

    /// Reads the load balancer of a Service; `None` if there is none.
    async fn get_load_balancer(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<Option<LoadBalancer>, LoadBalancerError>;

    /// Deletes the load balancer of a Service and everything created for it. Succeeds if it is
    /// already gone.
    async fn delete_load_balancer(
        &self,
        cluster: &ClusterId,
        service: &ServiceKey,
    ) -> Result<(), LoadBalancerError>;
}

/// The provider's region and its zones.
#[async_trait]
pub trait Zones: Send + Sync {
    /// The region this provider works in.
    fn region(&self) -> &str;

    /// The zones of the region, sorted by name.
    async fn zones(&self) -> Result<Vec<Zone>, InventoryError>;
}

/// One cloud: everything the cloud controller manager needs.
#[async_trait]
pub trait Cloud: Instances + LoadBalancers + Zones {
    /// The provider's name, which is also its provider ID scheme: `aws`, `gce` or `fake`.
    fn name(&self) -> &'static str;

    /// Every resource the provider created for `cluster` that still exists. Empty after all of
    /// the cluster's instances and load balancers were deleted: that is how cluster deletion
    /// proves it leaked nothing.
    async fn owned_resources(
        &self,
        cluster: &ClusterId,
    ) -> Result<Vec<OwnedResource>, InventoryError>;
}
