//! Berth's controller cores: the reconcile logic of kube-controller-manager 1.33's ReplicaSet,
//! Deployment, DaemonSet, StatefulSet, EndpointSlice, Job, TTL-after-finished and CronJob
//! controllers as pure functions from objects to planned writes.
//!
//! Modules: [`cluster`] (the lifecycle of Berth's own `Cluster`s: provision, kubeconfig
//! Secret, status, teardown), [`replicaset`], [`deployment`], [`daemonset`], [`statefulset`], [`endpointslice`],
//! [`job`] (with [`job::ttl_after_finished`]), [`cronjob`], [`nodelifecycle`] (node health,
//! taints and taint-based eviction), [`controllerrevision`] (the
//! ControllerRevision history the DaemonSet and StatefulSet cores share), [`resourcequota`]
//! (quota usage), [`podautoscaler`] (HPA bounds and conditions without metrics), and [`event`] for the
//! Events plans ask the loop to record, in upstream's wording.
//!
//! Each core takes the objects one sync of upstream's controller reads (the owner, the objects
//! it may own, and the time) as `serde_json::Value`s in the shape the API server stores them,
//! and returns a `Plan`: the exact objects to create, update or delete and the status to write,
//! or nothing when the world already matches. Feeding the state a plan produces back in yields an
//! empty plan ("the second reconcile writes nothing"); every scenario in the tests checks this.
//!
//! What this crate is not: it never talks to the API server, reads a clock, sleeps or spawns a
//! task. The controller loop that watches, queues by object, tracks upstream's expectations
//! (not syncing a ReplicaSet while its earlier creations are unobserved), writes the plan through
//! the API and emits Events wraps these cores.
//!
//! Where the cores knowingly differ from upstream:
//! - The `pod-template-hash` is FNV-32a over the template's canonical JSON, not over Go's `spew`
//!   dump of the typed struct, so its value differs from what kube-controller-manager would pick
//!   for the same template; equal templates still hash alike and any field change (labels and
//!   annotations included) changes it.
//! - A Deployment sync computes its status from its ReplicaSets as its own writes leave them;
//!   upstream sometimes reads a stale copy within the sync and fixes it on the next one.
//! - Scale-down ranking counts co-located pods of the ReplicaSet itself, not of every
//!   ReplicaSet of the owning Deployment, and restart counts ignore init container kinds.
//! - EndpointSlices carry no `zone` (nodes are not an input), no
//!   `endpoints.kubernetes.io/last-change-trigger-time` annotation and no topology hints; ports
//!   keep the Service's order and endpoints are placed in a deterministic order.
//! - `terminatingReplicas` (an alpha field in 1.33) is not reported.
//! - Job: `podFailurePolicy` rules are not evaluated (a policy only switches on
//!   `podReplacementPolicy: Failed`, as upstream defaults it); pods of a Job with
//!   `backoffLimitPerIndex` carry `job-index-failure-count` but never
//!   `job-index-ignored-failure-count`. `spec.managedBy` other than the built-in controller
//!   makes the core plan nothing, as upstream skips such Jobs.
//! - Job: the failure backoff record upstream keeps in memory is an input and an output
//!   ([`job::Backoff`]) the loop keeps per Job. While that backoff delays replacements the
//!   status keeps the running pods in `active`; upstream briefly reports `0` there.
//! - Job: pod creation Events (`SuccessfulCreate`, `Created pod: <name>`) are the loop's to
//!   record, since only the API server knows generated names; deletions are in the plan.
//! - Job: the API server's defaults (and generated selector and labels) are applied by the core
//!   when absent, so a Job stored without them still reconciles as upstream's would.
//! - CronJob: `CRON_TZ=`/`TZ=` in `spec.schedule` is refused with the `UnsupportedSchedule`
//!   warning (upstream's controller warns and still honours it; its API server refuses new
//!   ones). Schedules are evaluated by `croner`, which matches `robfig/cron` on the standard
//!   syntax (day-of-month/day-of-week AND/OR rules included) but handles daylight-saving gaps
//!   and repeats by the Open Cron Pattern Specification; croner's extensions (`L`, `W`, `#`)
//!   are refused as `robfig/cron` refuses them.
//! - CronJob: an active reference to a Job missing from the input is dropped (`MissingJob`)
//!   without upstream's confirming GET, and a newly created Job's reference in `status.active`
//!   gets its `uid`/`resourceVersion` from the create response through
//!   [`cronjob::Plan::status_with_created`]. An unfinished owned Job absent from `active` only
//!   earns `UnexpectedJob`, without upstream's re-read of the CronJob.

//! - ControllerRevision data is the template as the API server stored it, serialised like Go's
//!   `json.Marshal` of a map, not re-encoded from Go's typed structs (which add fields such as
//!   `metadata.creationTimestamp: null`), so revision names and hashes differ from upstream's for
//!   the same template; equal templates still share a revision. The DaemonSet revision hash uses
//!   the Deployment's FNV-32a template hash.
//! - DaemonSets: where the API server does not keep the
//!   `deprecated.daemonset.template.generation` annotation, `metadata.generation` stands in for
//!   the template generation (`pod-template-generation`). Failed daemon pods are deleted on every
//!   sync without upstream's per-node backoff (the loop may add one). Rolling updates visit
//!   nodes in name order where upstream iterates a Go map.
//! - StatefulSets: a new claim is created with the owner references its retention policy asks
//!   for, where upstream creates it bare and adds them in a later sync; a pod whose only
//!   inconsistency is its claims' owners is not rewritten (upstream writes it unchanged). A claim
//!   being deleted stops the whole sync and asks for an immediate requeue (upstream returns an
//!   error and backs off). `rollingUpdate.maxUnavailable` takes upstream's `MaxUnavailableStatefulSet` path
//!   (an alpha gate, off by default in 1.33) whenever the stored object carries the field, and
//!   the default one-at-a-time path otherwise.

pub mod cluster;
pub mod controllerrevision;
pub mod crd;
pub mod cronjob;
pub mod csr;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod event;
pub mod job;
mod meta;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podautoscaler;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod rootcacert;
pub mod serviceaccount;
pub mod statefulset;

/// Why an object cannot be reconciled at all; the loop records it and waits for a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The workload has no `spec.selector` (validation forbids this for apps/v1).
    #[error("spec.selector is missing")]
    MissingSelector,
    /// The workload's selector cannot be converted.
    #[error("invalid selector: {0}")]
    Selector(#[source] objects::selectors::SelectorError),
}
