//! Berth's control-loop runtime: what every controller and the scheduler are built from.
//!
//! - [`informer`]: list + watch of one resource in one logical cluster (kube's `watcher`, which
//!   relists on 410 Gone and resumes from the last resourceVersion otherwise) feeding an indexed
//!   [`cache::Cache`] that many controllers share, and notifying subscribers of each change.
//! - [`queue`]: a work queue that dedupes keys, never hands the same key to two workers, backs
//!   off per key on failure, delays requeues, and serves logical clusters round-robin so one
//!   busy tenant cannot starve the others.
//! - [`controller`]: the driver: workers take keys from the queue and call
//!   `reconcile(key) -> Result<Action, E>`; errors go through the error policy.
//! - [`leader`]: leader election over `coordination.k8s.io/v1` Leases, so each loop runs once
//!   when several replicas serve.
//! - [`events`]: an Event recorder that aggregates repeats like upstream's correlator, so a loop
//!   cannot flood the store.
//!
//! What this crate is not: it knows no controller's logic and never touches the store; every
//! read and write goes through a [`kube::Client`], which may sit on a socket or on the API
//! server's router in-process. Objects are plain `serde_json::Value`s in the API's JSON form.

pub mod cache;
pub mod controller;
pub mod events;
pub mod informer;
pub mod leader;
pub mod queue;
pub mod resource;

pub use controller::Action;
pub use queue::Key;
