//! The Job controller's reconcile core (`pkg/controller/job`): claim pods, create or delete pods
//! to reach `parallelism` and `completions`, count finished pods through the
//! `batch.kubernetes.io/job-tracking` finalizer and `status.uncountedTerminatedPods`, and set the
//! terminal conditions; plus the TTL-after-finished decision (`pkg/controller/ttlafterfinished`).
//!
//! Pod accounting follows upstream's protocol: a finished pod's UID is first written to
//! `status.uncountedTerminatedPods`, then its finalizer is removed, then the UID moves into the
//! `succeeded`/`failed` counters (or, for Indexed Jobs, `completedIndexes`). The plan carries the
//! two status writes around the finalizer removals so a crash between them never loses or
//! double-counts a pod.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use objects::selectors::LabelSelector;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::event::Event;
use crate::meta::{self, Claim};

/// The finalizer that keeps a finished pod around until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation (and label) carrying an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The label tying pods to their Job's UID (the generated selector's key).
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
/// The label naming the pod's Job.
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
/// The pre-1.27 spelling of [`CONTROLLER_UID`], still written.
pub const LEGACY_CONTROLLER_UID: &str = "controller-uid";
/// The pre-1.27 spelling of [`JOB_NAME`], still written.
pub const LEGACY_JOB_NAME: &str = "job-name";
/// The environment variable an Indexed Job's containers read their index from.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The controller name of `spec.managedBy` that this controller serves.
pub const MANAGED_BY_JOB_CONTROLLER: &str = "kubernetes.io/job-controller";

/// Upstream's `MaxPodCreateDeletePerSync`.
pub const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
/// Upstream's `MaxUncountedPods`: at most this many UIDs wait in
/// `status.uncountedTerminatedPods` (and finalizer removals happen) per sync.
pub const MAX_UNCOUNTED_PODS: usize = 500;
/// Upstream's `DefaultJobPodFailureBackOff`: the delay before replacing a failed pod.
pub const DEFAULT_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream's `MaxJobPodFailureBackOff`: the doubling delay stops here.
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(360);

/// Upstream's condition reasons and messages.
pub mod reasons {
    /// Failed: more failed pods than `backoffLimit`.
    pub const BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
    /// The message of [`BACKOFF_LIMIT_EXCEEDED`].
    pub const BACKOFF_LIMIT_EXCEEDED_MESSAGE: &str = "Job has reached the specified backoff limit";
    /// Failed: active longer than `activeDeadlineSeconds`.
    pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
    /// The message of [`DEADLINE_EXCEEDED`].
    pub const DEADLINE_EXCEEDED_MESSAGE: &str = "Job was active longer than specified deadline";
    /// Failed: more failed indexes than `maxFailedIndexes`.
    pub const MAX_FAILED_INDEXES_EXCEEDED: &str = "MaxFailedIndexesExceeded";
    /// The message of [`MAX_FAILED_INDEXES_EXCEEDED`].
    pub const MAX_FAILED_INDEXES_EXCEEDED_MESSAGE: &str =
        "Job has exceeded the specified maximal number of failed indexes";
    /// Failed: every index finished and some failed.
    pub const FAILED_INDEXES: &str = "FailedIndexes";
    /// The message of [`FAILED_INDEXES`].
    pub const FAILED_INDEXES_MESSAGE: &str = "Job has failed indexes";
    /// SuccessCriteriaMet and Complete: `completions` pods succeeded.
    pub const COMPLETIONS_REACHED: &str = "CompletionsReached";
    /// The message of [`COMPLETIONS_REACHED`].
    pub const COMPLETIONS_REACHED_MESSAGE: &str = "Reached expected number of succeeded pods";
    /// SuccessCriteriaMet and Complete: a `successPolicy` rule matched.
    pub const SUCCESS_POLICY: &str = "SuccessPolicy";
    /// Suspended (True).
    pub const SUSPENDED: &str = "JobSuspended";
    /// Suspended (False).
    pub const RESUMED: &str = "JobResumed";
}

/// The annotation counting an index's earlier failures (`backoffLimitPerIndex`).
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";

/// Upstream's in-memory `backoffRecord` for one Job: the loop keeps it per Job key, passes it to
/// [`reconcile`] and stores [`Plan::backoff`] once the plan's status writes succeeded. It is
/// dropped (reset to default) when the Job finishes or is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Failed pods seen since the last success.
    pub failures_after_last_success: u32,
    /// When the newest of those failures finished, in Unix seconds.
    pub last_failure_time: Option<i64>,
}

impl Backoff {
    /// How long to wait before creating replacement pods at `now` (Unix seconds): 10 s after the
    /// first failure, doubling per further failure, capped at 6 minutes.
    pub fn remaining(&self, now: i64) -> Duration {
        let Some(last) = self.last_failure_time else {
            return Duration::ZERO;
        };
        if self.failures_after_last_success == 0 {
            return Duration::ZERO;
        }
        let mut delay = DEFAULT_POD_FAILURE_BACKOFF;
        for _ in 1..self.failures_after_last_success {
            delay *= 2;
            if delay >= MAX_POD_FAILURE_BACKOFF {
                delay = MAX_POD_FAILURE_BACKOFF;
                break;
            }
        }
        let elapsed = meta::seconds(now - last);
        delay.saturating_sub(elapsed)
    }

    /// Upstream's `newBackoffRecord`: fold in the pods that finished since the last sync.
    fn next(&self, succeeded: &[&Value], failed: &[&Value]) -> Backoff {
        let mut failed_times: Vec<i64> = failed.iter().map(|p| finished_time(p)).collect();
        failed_times.sort_unstable();
        let last_success = succeeded.iter().map(|p| finished_time(p)).max();
        match last_success {
            None if failed_times.is_empty() => *self,
            None => Backoff {
                failures_after_last_success: self.failures_after_last_success
                    + failed_times.len() as u32,
                last_failure_time: failed_times.last().copied(),
            },
            Some(success) => {
                let after: Vec<i64> = failed_times.into_iter().filter(|t| *t > success).collect();
                Backoff {
                    failures_after_last_success: after.len() as u32,
                    last_failure_time: after.last().copied(),
                }
            }
        }
    }
}

/// A pod deletion the plan asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDeletion {
    /// The pod's name.
    pub name: String,
    /// Remove [`TRACKING_FINALIZER`] before deleting, so the pod is never counted (pods the Job
    /// no longer wants: suspension, scale-down, duplicate indexes). Pods deleted because the Job
    /// failed keep it and are counted as failed.
    pub remove_finalizer_first: bool,
}

/// The writes one Job sync asks for. Apply them in field order: adopt/release, delete, create,
/// `status_with_uncounted`, `remove_finalizers`, `status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Orphan pods matching the selector, with the Job's controller reference and the tracking
    /// finalizer added.
    pub adopt: Vec<Value>,
    /// Owned pods that stopped matching, with the reference removed.
    pub release: Vec<Value>,
    /// Pods to create (with `generateName`), in order; create them in
    /// [`crate::replicaset::slow_start_batches`] and stop at the first failing batch.
    pub create: Vec<Value>,
    /// Pods to delete.
    pub delete: Vec<PodDeletion>,
    /// The status to write before removing any finalizer: newly finished pods' UIDs added to
    /// `uncountedTerminatedPods`, and the interim `FailureTarget` / `SuccessCriteriaMet`
    /// condition.
    pub status_with_uncounted: Option<Value>,
    /// Names of pods whose [`TRACKING_FINALIZER`] must be removed (after
    /// `status_with_uncounted` is written).
    pub remove_finalizers: Vec<String>,
    /// The status to write once every finalizer removal succeeded (counters moved out of
    /// `uncountedTerminatedPods`, `Complete`/`Failed` set when no pod is terminating). When a
    /// removal fails, skip this write and sync again.
    pub status: Option<Value>,
    /// The backoff record to keep for the next sync once the status writes succeeded.
    pub backoff: Backoff,
    /// Events to record on the Job. `SuccessfulCreate` (`Created pod: <name>`) is left to the
    /// loop, which learns the generated names.
    pub events: Vec<Event>,
    /// Sync again after this long (pod failure backoff, `activeDeadlineSeconds`).
    pub requeue_after: Option<Duration>,
}

impl Plan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.adopt.is_empty()
            && self.release.is_empty()
            && self.create.is_empty()
            && self.delete.is_empty()
            && self.status_with_uncounted.is_none()
            && self.remove_finalizers.is_empty()
            && self.status.is_none()
    }
}

/// What the TTL-after-finished controller does with a Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlDecision {
    /// No `ttlSecondsAfterFinished`, not finished yet, or already being deleted.
    Keep,
    /// The TTL expired: delete the Job with `propagationPolicy: Background`.
    Delete,
    /// Check again after this long.
    RequeueAfter(Duration),
}

/// Upstream's TTL-after-finished controller: a finished Job with `ttlSecondsAfterFinished` is
/// deleted once that many seconds passed since its `Complete` or `Failed` condition's
/// `lastTransitionTime`.
pub fn ttl_after_finished(job: &Value, now: SystemTime) -> TtlDecision {
    let now = meta::unix_seconds(now);
    let Some(ttl) = job
        .pointer("/spec/ttlSecondsAfterFinished")
        .and_then(Value::as_i64)
    else {
        return TtlDecision::Keep;
    };
    if meta::is_deleting(job) {
        return TtlDecision::Keep;
    }
    let Some(finished_at) = finished_condition(job)
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(meta::parse_time)
    else {
        return TtlDecision::Keep;
    };
    let expire_at = finished_at + ttl;
    if expire_at <= now {
        TtlDecision::Delete
    } else {
        TtlDecision::RequeueAfter(meta::seconds(expire_at - now))
    }
}

/// Upstream's `syncOrphanPod`: whether a pod that still carries [`TRACKING_FINALIZER`] but no
/// Job will count any more must lose it. `owner` is the Job its controller reference names
/// (matched by name and UID), or `None` when that Job is gone or the pod has no controller.
/// The loop checks this for pods released by a Job, pods of deleted Jobs, and pods of finished
/// Jobs.
pub fn orphan_needs_finalizer_removal(pod: &Value, owner: Option<&Value>) -> bool {
    if !has_finalizer(pod) {
        return false;
    }
    if let Some(r) = meta::controller_ref(pod) {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        if s("kind") != "Job" || s("apiVersion") != "batch/v1" {
            return false;
        }
        if let Some(job) = owner.filter(|j| meta::uid(j) == s("uid")) {
            if job
                .pointer("/spec/managedBy")
                .and_then(Value::as_str)
                .is_some_and(|m| m != MANAGED_BY_JOB_CONTROLLER)
            {
                return false;
            }
            if !is_finished(job) {
                return false;
            }
        }
    }
    true
}

/// The `Complete` or `Failed` condition with status `True`, if the Job finished.
fn finished_condition(job: &Value) -> Option<&Value> {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| {
            matches!(
                c.get("type").and_then(Value::as_str),
                Some("Complete" | "Failed")
            ) && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

/// Upstream's `IsJobFinished`: a `Complete` or `Failed` condition is `True`.
pub fn is_finished(job: &Value) -> bool {
    finished_condition(job).is_some()
}

/// The Job with the API server's defaults filled in where absent (`SetDefaults_Job` and the
/// Job strategy's generated selector): `parallelism` 1, `completions` 1 when both are unset,
/// `backoffLimit` 6 (MaxInt32 with `backoffLimitPerIndex`), `completionMode` `NonIndexed`,
/// `suspend` false, `podReplacementPolicy` (`Failed` with a `podFailurePolicy`, else
/// `TerminatingOrFailed`), `manualSelector` false and, unless `manualSelector` is true, the
/// four `controller-uid`/`job-name` labels on the template and the selector
/// `batch.kubernetes.io/controller-uid=<uid>`.
pub fn with_defaults(job: &Value) -> Value {
    let mut out = job.clone();
    let uid = meta::uid(job).to_owned();
    let name = meta::name(job).to_owned();
    let spec = meta::object_at(&mut out, "spec");
    if !spec.contains_key("completions") && !spec.contains_key("parallelism") {
        spec.insert("completions".into(), json!(1));
    }
    spec.entry("parallelism").or_insert(json!(1));
    let per_index = spec
        .get("backoffLimitPerIndex")
        .is_some_and(|v| !v.is_null());
    spec.entry("backoffLimit")
        .or_insert(json!(if per_index { i32::MAX as i64 } else { 6 }));
    spec.entry("completionMode").or_insert(json!("NonIndexed"));
    spec.entry("suspend").or_insert(json!(false));
    let has_failure_policy = spec.get("podFailurePolicy").is_some_and(|v| !v.is_null());
    spec.entry("podReplacementPolicy")
        .or_insert(json!(if has_failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }));
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    spec.entry("manualSelector").or_insert(json!(false));
    if !manual {
        if !spec.contains_key("selector") {
            spec.insert(
                "selector".into(),
                json!({"matchLabels": {CONTROLLER_UID: uid}}),
            );
        }
        let template = spec.entry("template").or_insert_with(|| json!({}));
        let labels = map_at(meta::object_at(template, "metadata"), "labels");
        for (k, v) in [
            (CONTROLLER_UID, &uid),
            (JOB_NAME, &name),
            (LEGACY_CONTROLLER_UID, &uid),
            (LEGACY_JOB_NAME, &name),
        ] {
            labels.entry(k).or_insert(json!(v));
        }
    }
    out
}

/// Reconciles one Job against the pods of its namespace (`pods` may include pods owned by
/// others; they are left alone). `backoff` is the record [`Plan::backoff`] returned by the
/// previous sync of this Job. The caller must not call this while creations or deletions from
/// an earlier plan are still unobserved (upstream's expectations).
pub fn reconcile(
    job: &Value,
    pods: &[Value],
    backoff: &Backoff,
    now: SystemTime,
) -> Result<Plan, Error> {
    let now = meta::unix_seconds(now);
    let job = &with_defaults(job);
    let mut plan = Plan {
        backoff: *backoff,
        ..Plan::default()
    };
    if let Some(by) = job.pointer("/spec/managedBy").and_then(Value::as_str)
        && by != MANAGED_BY_JOB_CONTROLLER
    {
        return Ok(plan);
    }
    if is_finished(job) {
        plan.backoff = Backoff::default();
        return Ok(plan);
    }
    let spec = Spec::read(job);
    if !matches!(spec.completion_mode.as_str(), "NonIndexed" | "Indexed") {
        plan.events.push(Event::warning(
            "UnknownCompletionMode",
            "Skipped Job sync because completion mode is unknown",
        ));
        return Ok(plan);
    }
    let selector = job
        .pointer("/spec/selector")
        .ok_or(Error::MissingSelector)
        .and_then(|s| LabelSelector::from_api(s).map_err(Error::Selector))?;

    // Claim pods; adopted pods get the tracking finalizer, as upstream's ClaimPods adds it.
    let mut owned: Vec<Value> = Vec::new();
    let selects = |p: &Value| !selector.is_empty() && selector.matches_object(p);
    for pod in pods
        .iter()
        .filter(|p| meta::namespace(p) == meta::namespace(job))
    {
        match meta::claim(job, pod, selects(pod)) {
            Claim::Owned => owned.push(pod.clone()),
            Claim::Adopt => {
                let mut adopted = meta::with_owner(pod, job_owner_ref(job));
                add_finalizer(&mut adopted);
                plan.adopt.push(adopted.clone());
                owned.push(adopted);
            }
            Claim::Release => plan.release.push(meta::without_owner(pod, meta::uid(job))),
            Claim::Ignore => {}
        }
    }
    let pods: Vec<&Value> = owned.iter().collect();
    let old_status = job.get("status").cloned().unwrap_or(Value::Null);
    let mut status = Status::read(&old_status);

    let mut ctx = Ctx {
        spec: &spec,
        job,
        now,
        active_pods: pods
            .iter()
            .copied()
            .filter(|p| meta::is_pod_active(p))
            .collect(),
        terminating: pods.iter().filter(|p| is_terminating(p)).count() as i64,
        terminating_indexes: pods
            .iter()
            .filter(|p| is_terminating(p))
            .filter_map(|p| completion_index(p))
            .collect(),
        ready: 0,
        succeeded: 0,
        succeeded_indexes: Intervals::default(),
        failed_indexes: None,
        delayed: BTreeMap::new(),
        plan: &mut plan,
    };
    ctx.ready = ctx
        .active_pods
        .iter()
        .filter(|p| meta::is_pod_ready(p))
        .count() as i64;
    let mut active = ctx.active_pods.len() as i64;
    let uncounted_succeeded: BTreeSet<String> =
        status.uncounted_succeeded.iter().cloned().collect();
    let uncounted_failed: BTreeSet<String> = status.uncounted_failed.iter().cloned().collect();
    let (new_succeeded, new_failed) =
        new_finished_pods(&spec, &pods, &uncounted_succeeded, &uncounted_failed);
    ctx.succeeded =
        status.succeeded + new_succeeded.len() as i64 + uncounted_succeeded.len() as i64;
    let failed = status.failed + new_failed.len() as i64 + uncounted_failed.len() as i64;

    // The first sync of a Job that is not suspended starts its clock.
    if status.start_time.is_none() && !spec.suspend {
        status.start_time = Some(now);
    }
    ctx.plan.backoff = backoff.next(&new_succeeded, &new_failed);

    let mut finished: Option<Condition> = status
        .condition("SuccessCriteriaMet")
        .filter(|c| c.status == "True")
        .cloned();
    if finished.is_none()
        && let Some(target) = status
            .condition("FailureTarget")
            .filter(|c| c.status == "True")
    {
        finished = Some(Condition::new(
            "Failed",
            &target.reason,
            &target.message,
            now,
        ));
    }
    if finished.is_none() {
        if failed > spec.backoff_limit || past_backoff_limit_on_failure(&spec, &pods) {
            finished = Some(Condition::new(
                "FailureTarget",
                reasons::BACKOFF_LIMIT_EXCEEDED,
                reasons::BACKOFF_LIMIT_EXCEEDED_MESSAGE,
                now,
            ));
        } else if let (Some(deadline), Some(start)) =
            (spec.active_deadline_seconds, status.start_time)
            && !spec.suspend
        {
            if now - start >= deadline {
                finished = Some(Condition::new(
                    "FailureTarget",
                    reasons::DEADLINE_EXCEEDED,
                    reasons::DEADLINE_EXCEEDED_MESSAGE,
                    now,
                ));
            } else {
                requeue(ctx.plan, meta::seconds(deadline - (now - start)));
            }
        }
    }

    let mut prev_succeeded_indexes = Intervals::default();
    if spec.indexed() {
        let completions = spec.completions.unwrap_or(0);
        prev_succeeded_indexes = Intervals::parse(&status.completed_indexes, completions);
        let new: BTreeSet<i64> = pods
            .iter()
            .filter(|p| meta::str_at(p, "/status/phase") == "Succeeded" && has_finalizer(p))
            .filter_map(|p| completion_index(p))
            .filter(|ix| *ix < completions)
            .collect();
        ctx.succeeded_indexes = prev_succeeded_indexes.with(new);
        ctx.succeeded = ctx.succeeded_indexes.total();
        if let Some(limit) = spec.backoff_limit_per_index {
            let failed_indexes = calculate_failed_indexes(&status, &pods, completions, limit);
            if finished.is_none() {
                if spec
                    .max_failed_indexes
                    .is_some_and(|max| failed_indexes.total() > max)
                {
                    finished = Some(Condition::new(
                        "FailureTarget",
                        reasons::MAX_FAILED_INDEXES_EXCEEDED,
                        reasons::MAX_FAILED_INDEXES_EXCEEDED_MESSAGE,
                        now,
                    ));
                } else if failed_indexes.total() > 0
                    && failed_indexes.total() + ctx.succeeded_indexes.total() >= completions
                {
                    finished = Some(Condition::new(
                        "FailureTarget",
                        reasons::FAILED_INDEXES,
                        reasons::FAILED_INDEXES_MESSAGE,
                        now,
                    ));
                }
            }
            ctx.failed_indexes = Some(failed_indexes);
            ctx.delayed = pods_with_delayed_deletion(&ctx, &pods);
        }
        if finished.is_none()
            && let Some((reason, message)) =
                match_success_policy(job, completions, &ctx.succeeded_indexes)
        {
            finished = Some(Condition::new("SuccessCriteriaMet", reason, &message, now));
        }
    }

    if finished.is_some() {
        // Upstream deletes every active pod of a finished Job, keeping their finalizers so
        // they are counted as failed.
        let doomed: Vec<&Value> = ctx.active_pods.clone();
        for p in &doomed {
            delete_pod(ctx.plan, p, false);
        }
        active -= doomed.len() as i64;
        ctx.terminating += doomed.len() as i64;
        ctx.ready -= doomed.iter().filter(|p| meta::is_pod_ready(p)).count() as i64;
    } else {
        let manage_called = !meta::is_deleting(job);
        if manage_called {
            active = manage_job(&mut ctx);
        }
        let complete = match spec.completions {
            None => ctx.succeeded > 0 && active == 0,
            Some(c) => ctx.succeeded >= c && active == 0,
        };
        if complete {
            finished = Some(Condition::new(
                "SuccessCriteriaMet",
                reasons::COMPLETIONS_REACHED,
                reasons::COMPLETIONS_REACHED_MESSAGE,
                now,
            ));
        } else if manage_called {
            if spec.suspend {
                if status.ensure_condition(
                    "Suspended",
                    "True",
                    reasons::SUSPENDED,
                    "Job suspended",
                    now,
                ) {
                    ctx.plan
                        .events
                        .push(Event::normal("Suspended", "Job suspended"));
                }
            } else if status.ensure_condition(
                "Suspended",
                "False",
                reasons::RESUMED,
                "Job resumed",
                now,
            ) {
                ctx.plan
                    .events
                    .push(Event::normal("Resumed", "Job resumed"));
                // The deadline counts continuous activity: resuming restarts the clock.
                status.start_time = Some(now);
            }
        }
    }
    status.active = active;
    status.ready = Some(ctx.ready);
    status.terminating = Some(ctx.terminating);

    track_status_and_remove_finalizers(
        &mut ctx,
        &pods,
        &mut status,
        &prev_succeeded_indexes,
        finished,
        &old_status,
    );
    Ok(plan)
}

/// The Job fields one sync reads, defaults applied.
struct Spec {
    parallelism: i64,
    completions: Option<i64>,
    completion_mode: String,
    backoff_limit: i64,
    backoff_limit_per_index: Option<i64>,
    max_failed_indexes: Option<i64>,
    active_deadline_seconds: Option<i64>,
    suspend: bool,
    only_replace_failed: bool,
    restart_on_failure: bool,
}

impl Spec {
    fn read(job: &Value) -> Spec {
        let opt = |p: &str| job.pointer(p).and_then(Value::as_i64);
        Spec {
            parallelism: meta::int_at(job, "/spec/parallelism", 1).max(0),
            completions: opt("/spec/completions"),
            completion_mode: meta::str_at(job, "/spec/completionMode").to_owned(),
            backoff_limit: meta::int_at(job, "/spec/backoffLimit", 6),
            backoff_limit_per_index: opt("/spec/backoffLimitPerIndex"),
            max_failed_indexes: opt("/spec/maxFailedIndexes"),
            active_deadline_seconds: opt("/spec/activeDeadlineSeconds"),
            suspend: job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true),
            only_replace_failed: meta::str_at(job, "/spec/podReplacementPolicy") == "Failed"
                || job
                    .pointer("/spec/podFailurePolicy")
                    .is_some_and(|v| !v.is_null()),
            restart_on_failure: meta::str_at(job, "/spec/template/spec/restartPolicy")
                == "OnFailure",
        }
    }

    fn indexed(&self) -> bool {
        self.completion_mode == "Indexed"
    }
}

/// The state one sync threads through its steps (upstream's `syncJobCtx`).
struct Ctx<'a> {
    spec: &'a Spec,
    job: &'a Value,
    now: i64,
    active_pods: Vec<&'a Value>,
    terminating: i64,
    /// Completion indexes of pods being deleted but not yet terminal.
    terminating_indexes: BTreeSet<i64>,
    ready: i64,
    succeeded: i64,
    succeeded_indexes: Intervals,
    failed_indexes: Option<Intervals>,
    /// With `backoffLimitPerIndex`: per index, the failed pod whose finalizer stays until its
    /// replacement (which inherits its failure count) exists.
    delayed: BTreeMap<i64, &'a Value>,
    plan: &'a mut Plan,
}

fn requeue(plan: &mut Plan, after: Duration) {
    plan.requeue_after = Some(plan.requeue_after.map_or(after, |d| d.min(after)));
}

fn delete_pod(plan: &mut Plan, pod: &Value, remove_finalizer_first: bool) {
    plan.delete.push(PodDeletion {
        name: meta::name(pod).to_owned(),
        remove_finalizer_first,
    });
    plan.events.push(Event::normal(
        "SuccessfulDelete",
        format!("Deleted pod: {}", meta::name(pod)),
    ));
}

/// Upstream's `manageJob`: delete all pods of a suspended Job, delete surplus or duplicate
/// pods, or create missing ones once the failure backoff allows. Returns the new active count.
fn manage_job(ctx: &mut Ctx<'_>) -> i64 {
    let spec = ctx.spec;
    let mut active = ctx.active_pods.len() as i64;
    if spec.suspend {
        let doomed = pods_for_removal(spec, &ctx.active_pods, ctx.active_pods.len());
        remove_pods(ctx, &doomed);
        return active - doomed.len() as i64;
    }
    let want = match spec.completions {
        None if ctx.succeeded > 0 => active,
        None => spec.parallelism,
        Some(c) => (c - ctx.succeeded).min(spec.parallelism).max(0),
    };
    let surplus = (active - want).max(0) as usize;
    let mut doomed = pods_for_removal(spec, &ctx.active_pods, surplus);
    doomed.truncate(MAX_POD_CREATE_DELETE_PER_SYNC);
    if !doomed.is_empty() {
        // A sync either deletes or creates, never both; deletion wins.
        remove_pods(ctx, &doomed);
        return active - doomed.len() as i64;
    }
    let terminating = if spec.only_replace_failed {
        ctx.terminating
    } else {
        0
    };
    let mut diff = want - terminating - active;
    if diff <= 0 {
        return active;
    }
    if spec.backoff_limit_per_index.is_none() {
        let remaining = ctx.plan.backoff.remaining(ctx.now);
        if !remaining.is_zero() {
            requeue(ctx.plan, remaining);
            return active;
        }
    }
    diff = diff.min(MAX_POD_CREATE_DELETE_PER_SYNC as i64);
    let template = creation_template(ctx.job);
    if spec.indexed() {
        let mut indexes = first_pending_indexes(ctx, diff as usize);
        if spec.backoff_limit_per_index.is_some() {
            let remaining = |ix: &i64| {
                ctx.delayed
                    .get(ix)
                    .map_or(Duration::ZERO, |p| index_backoff(p).remaining(ctx.now))
            };
            let wait = indexes.iter().map(remaining).filter(|d| !d.is_zero()).min();
            indexes.retain(|ix| remaining(ix).is_zero());
            if indexes.is_empty()
                && let Some(wait) = wait
            {
                requeue(ctx.plan, wait);
                return active;
            }
        }
        for ix in indexes {
            let mut pod = indexed_pod(ctx.job, &template, ix);
            if spec.backoff_limit_per_index.is_some() {
                let count = ctx
                    .delayed
                    .get(&ix)
                    .map_or(0, |p| index_failure_count(p) + 1);
                if let Some(Value::Object(a)) = pod.pointer_mut("/metadata/annotations") {
                    a.insert(INDEX_FAILURE_COUNT.into(), json!(count.to_string()));
                }
            }
            ctx.plan.create.push(pod);
            active += 1;
        }
    } else {
        for _ in 0..diff {
            ctx.plan
                .create
                .push(pod_from_template(ctx.job, &template, None));
            active += 1;
        }
    }
    active
}

/// Deletes pods the Job no longer wants: finalizer first, so they are never counted.
fn remove_pods(ctx: &mut Ctx<'_>, doomed: &[&Value]) {
    for p in doomed {
        delete_pod(ctx.plan, p, true);
    }
    ctx.terminating += doomed.len() as i64;
    ctx.ready -= doomed.iter().filter(|p| meta::is_pod_ready(p)).count() as i64;
}

/// Upstream's `activePodsForRemoval`: for Indexed Jobs first the pods without a valid index and
/// all but the best pod of each repeated index, then the least advanced pods.
fn pods_for_removal<'a>(spec: &Spec, active: &[&'a Value], at_least: usize) -> Vec<&'a Value> {
    let mut rm: Vec<&Value> = Vec::new();
    let mut left: Vec<&Value> = Vec::new();
    if spec.indexed() {
        let completions = spec.completions.unwrap_or(0);
        let mut by_index: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
        for p in active {
            match completion_index(p) {
                Some(ix) if ix < completions => by_index.entry(ix).or_default().push(p),
                _ => rm.push(p),
            }
        }
        for (_, mut same) in by_index {
            same.sort_by(|a, b| active_pods_order(a, b));
            let keep = same.pop();
            rm.extend(same);
            left.extend(keep);
        }
    } else {
        left = active.to_vec();
    }
    if rm.len() < at_least {
        left.sort_by(|a, b| active_pods_order(a, b));
        let n = at_least - rm.len();
        rm.extend(left.into_iter().take(n));
    }
    rm
}

/// `controller.ActivePods` ordering: the pod that sorts first is the least advanced and is
/// removed first.
fn active_pods_order(a: &Value, b: &Value) -> Ordering {
    let assigned = |p: &Value| !meta::str_at(p, "/spec/nodeName").is_empty();
    let phase = |p: &Value| match meta::str_at(p, "/status/phase") {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    };
    let created = |p: &Value| meta::parse_time(meta::str_at(p, "/metadata/creationTimestamp"));
    assigned(a)
        .cmp(&assigned(b))
        .then(phase(a).cmp(&phase(b)))
        .then(meta::is_pod_ready(a).cmp(&meta::is_pod_ready(b)))
        .then_with(|| {
            if meta::is_pod_ready(a) && meta::is_pod_ready(b) {
                // Ready more recently first.
                newer_first(meta::pod_ready_since(a), meta::pod_ready_since(b))
            } else {
                Ordering::Equal
            }
        })
        .then(restarts(b).cmp(&restarts(a)))
        .then_with(|| newer_first(created(a), created(b)))
}

/// Newer times first; a missing time counts as the newest.
fn newer_first(a: Option<i64>, b: Option<i64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => b.cmp(&a),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn restarts(pod: &Value) -> i64 {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
        .max()
        .unwrap_or(0)
}

/// Upstream's `firstPendingIndexes`: the lowest indexes that neither succeeded, failed, nor
/// have an active pod (nor, with `podReplacementPolicy: Failed`, a terminating one).
fn first_pending_indexes(ctx: &Ctx<'_>, count: usize) -> Vec<i64> {
    let completions = ctx.spec.completions.unwrap_or(0);
    let mut taken: BTreeSet<i64> = ctx
        .active_pods
        .iter()
        .filter_map(|p| completion_index(p))
        .collect();
    taken.extend(ctx.succeeded_indexes.iter());
    if let Some(failed) = &ctx.failed_indexes {
        taken.extend(failed.iter());
    }
    if ctx.spec.only_replace_failed {
        taken.extend(ctx.terminating_indexes.iter().copied());
    }
    (0..completions)
        .filter(|ix| !taken.contains(ix))
        .take(count)
        .collect()
}

/// The template the Job creates pods from: the tracking finalizer added and, for Indexed Jobs,
/// `JOB_COMPLETION_INDEX` exposed to every container.
fn creation_template(job: &Value) -> Value {
    let mut template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let metadata = meta::object_at(&mut template, "metadata");
    let finalizers = metadata
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(f) = finalizers
        && !f.iter().any(|x| x.as_str() == Some(TRACKING_FINALIZER))
    {
        f.push(json!(TRACKING_FINALIZER));
    }
    if meta::str_at(job, "/spec/completionMode") == "Indexed" {
        for kind in ["containers", "initContainers"] {
            let Some(Value::Array(containers)) = template.pointer_mut(&format!("/spec/{kind}"))
            else {
                continue;
            };
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                let env = c.entry("env").or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(env) = env
                    && !env.iter().any(|e| {
                        e.get("name").and_then(Value::as_str) == Some(COMPLETION_INDEX_ENV)
                    })
                {
                    env.push(json!({
                        "name": COMPLETION_INDEX_ENV,
                        "valueFrom": {"fieldRef": {
                            "fieldPath":
                                format!("metadata.annotations['{COMPLETION_INDEX}']"),
                        }},
                    }));
                }
            }
        }
    }
    template
}

/// A pod of an Indexed Job for `index`: the index annotation and label, hostname
/// `<job>-<index>`, and `generateName` `<job>-<index>-`.
fn indexed_pod(job: &Value, template: &Value, index: i64) -> Value {
    let mut pod = pod_from_template(job, template, Some(index));
    let metadata = meta::object_at(&mut pod, "metadata");
    for key in ["annotations", "labels"] {
        let map = metadata
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = map {
            m.insert(COMPLETION_INDEX.into(), json!(index.to_string()));
        }
    }
    let spec = meta::object_at(&mut pod, "spec");
    spec.insert(
        "hostname".into(),
        json!(format!("{}-{index}", meta::name(job))),
    );
    pod
}

/// Upstream's `GetPodFromTemplate` with the Job's `generateName`, controller reference and
/// namespace.
fn pod_from_template(job: &Value, template: &Value, index: Option<i64>) -> Value {
    let mut metadata = Map::new();
    let generate_name = match index {
        Some(ix) => index_generate_name(meta::name(job), ix),
        None => format!("{}-", meta::name(job)),
    };
    metadata.insert("generateName".into(), json!(generate_name));
    metadata.insert("namespace".into(), json!(meta::namespace(job)));
    for key in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{key}")) {
            metadata.insert(key.into(), v.clone());
        }
    }
    metadata.insert("ownerReferences".into(), json!([job_owner_ref(job)]));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    })
}

/// Upstream's `podGenerateNameWithIndex`: `<job>-<index>-`, the Job name cut so the prefix
/// leaves room for the random suffix within 63 characters.
fn index_generate_name(job: &str, index: i64) -> String {
    let append = format!("-{index}-");
    let max_prefix = 63 - 5 - append.len();
    let cut: String = job.chars().take(max_prefix).collect();
    format!("{cut}{append}")
}

/// The controller reference a Job sets on its pods.
fn job_owner_ref(job: &Value) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": meta::name(job),
        "uid": meta::uid(job),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The object at `key` inside a map, created (replacing non-objects) when missing.
fn map_at<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = m.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

fn add_finalizer(pod: &mut Value) {
    let metadata = meta::object_at(pod, "metadata");
    let f = metadata
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(f) = f
        && !f.iter().any(|x| x.as_str() == Some(TRACKING_FINALIZER))
    {
        f.push(json!(TRACKING_FINALIZER));
    }
}

fn has_finalizer(pod: &Value) -> bool {
    pod.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(TRACKING_FINALIZER)))
}

/// The pod's completion index from its annotation; `None` when absent or malformed.
pub fn completion_index(pod: &Value) -> Option<i64> {
    let s = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(COMPLETION_INDEX))
        .and_then(Value::as_str)?;
    s.parse::<i64>().ok().filter(|ix| *ix >= 0)
}

/// Being deleted but not yet terminal (upstream's `CountTerminatingPods`).
fn is_terminating(pod: &Value) -> bool {
    let phase = meta::str_at(pod, "/status/phase");
    meta::is_deleting(pod) && phase != "Succeeded" && phase != "Failed"
}

/// Upstream's `isPodFailed`: `Failed`, or (unless only failed pods are replaced) deleted before
/// succeeding.
fn is_pod_failed(spec: &Spec, pod: &Value) -> bool {
    let phase = meta::str_at(pod, "/status/phase");
    if phase == "Failed" {
        return true;
    }
    !spec.only_replace_failed && meta::is_deleting(pod) && phase != "Succeeded"
}

/// Finished pods that still carry the finalizer and are not yet in `uncountedTerminatedPods`
/// (upstream's `getNewFinishedPods`).
fn new_finished_pods<'a>(
    spec: &Spec,
    pods: &[&'a Value],
    uncounted_succeeded: &BTreeSet<String>,
    uncounted_failed: &BTreeSet<String>,
) -> (Vec<&'a Value>, Vec<&'a Value>) {
    let valid = |p: &Value, uncounted: &BTreeSet<String>| {
        has_finalizer(p)
            && !uncounted.contains(meta::uid(p))
            && (!spec.indexed()
                || completion_index(p).is_some_and(|ix| ix < spec.completions.unwrap_or(0)))
    };
    let succeeded = pods
        .iter()
        .copied()
        .filter(|p| valid(p, uncounted_succeeded))
        .filter(|p| meta::str_at(p, "/status/phase") == "Succeeded")
        .collect();
    let failed = pods
        .iter()
        .copied()
        .filter(|p| valid(p, uncounted_failed))
        .filter(|p| is_pod_failed(spec, p))
        .collect();
    (succeeded, failed)
}

/// Upstream's `pastBackoffLimitOnFailure`: with `restartPolicy: OnFailure`, container restarts
/// of running and pending pods count against `backoffLimit`.
fn past_backoff_limit_on_failure(spec: &Spec, pods: &[&Value]) -> bool {
    if !spec.restart_on_failure {
        return false;
    }
    let total: i64 = pods
        .iter()
        .filter(|p| matches!(meta::str_at(p, "/status/phase"), "Running" | "Pending"))
        .flat_map(|p| {
            ["initContainerStatuses", "containerStatuses"]
                .into_iter()
                .filter_map(|k| p.pointer(&format!("/status/{k}")).and_then(Value::as_array))
                .flatten()
        })
        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
        .sum();
    if spec.backoff_limit == 0 {
        total > 0
    } else {
        total >= spec.backoff_limit
    }
}

/// Upstream's `getFinishedTime`: the last container's finish, else when Ready turned False,
/// else the deletion time less the grace period, else the creation time.
fn finished_time(pod: &Value) -> i64 {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array);
    if let Some(statuses) = statuses.filter(|s| !s.is_empty()) {
        let times: Option<Vec<i64>> = statuses
            .iter()
            .map(|c| {
                c.pointer("/state/terminated/finishedAt")
                    .and_then(Value::as_str)
                    .and_then(meta::parse_time)
            })
            .collect();
        if let Some(t) = times.and_then(|t| t.into_iter().max()) {
            return t;
        }
    }
    if let Some(t) = pod
        .get("status")
        .and_then(|s| meta::condition(s, "Ready"))
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("False"))
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(meta::parse_time)
    {
        return t;
    }
    if let Some(t) = meta::parse_time(meta::str_at(pod, "/metadata/deletionTimestamp")) {
        return t - meta::int_at(pod, "/metadata/deletionGracePeriodSeconds", 0);
    }
    meta::parse_time(meta::str_at(pod, "/metadata/creationTimestamp")).unwrap_or(0)
}

/// Upstream's `calculateFailedIndexes`: the stored `failedIndexes` plus the indexes of failed,
/// still-tracked pods whose failure count reached `backoffLimitPerIndex`.
fn calculate_failed_indexes(
    status: &Status,
    pods: &[&Value],
    completions: i64,
    limit: i64,
) -> Intervals {
    let prev = Intervals::parse(status.failed_indexes.as_deref().unwrap_or(""), completions);
    let new: BTreeSet<i64> = pods
        .iter()
        .filter(|p| has_finalizer(p) && meta::str_at(p, "/status/phase") == "Failed")
        .filter_map(|p| {
            let ix = completion_index(p).filter(|ix| *ix < completions)?;
            let count = index_failure_count(p);
            (count + 1 > limit).then_some(ix)
        })
        .collect();
    prev.with(new)
}

/// Upstream's `getPodsWithDelayedDeletionPerIndex`: for each index that neither succeeded,
/// failed for good nor has an active pod, its latest failed pod still carrying the finalizer.
fn pods_with_delayed_deletion<'a>(ctx: &Ctx<'a>, pods: &[&'a Value]) -> BTreeMap<i64, &'a Value> {
    let completions = ctx.spec.completions.unwrap_or(0);
    let active: BTreeSet<i64> = ctx
        .active_pods
        .iter()
        .filter_map(|p| completion_index(p))
        .collect();
    let failed = ctx.failed_indexes.clone().unwrap_or_default();
    let mut out: BTreeMap<i64, &Value> = BTreeMap::new();
    for p in pods.iter().copied() {
        if !has_finalizer(p) || !is_pod_failed(ctx.spec, p) {
            continue;
        }
        let Some(ix) = completion_index(p).filter(|ix| *ix < completions) else {
            continue;
        };
        if ctx.succeeded_indexes.has(ix) || failed.has(ix) || active.contains(&ix) {
            continue;
        }
        match out.get(&ix) {
            Some(last)
                if index_failure_count(last) > index_failure_count(p)
                    || finished_time(p) < finished_time(last) => {}
            _ => {
                out.insert(ix, p);
            }
        }
    }
    out
}

/// The per-index backoff for replacing `last_failed`: its failure count plus one, from when it
/// finished.
fn index_backoff(last_failed: &Value) -> Backoff {
    Backoff {
        failures_after_last_success: (index_failure_count(last_failed) + 1) as u32,
        last_failure_time: Some(finished_time(last_failed)),
    }
}

/// Upstream's `matchSuccessPolicy`: the first rule whose indexes (all, or `succeededCount` of
/// them) or whose `succeededCount` alone succeeded.
fn match_success_policy(
    job: &Value,
    completions: i64,
    succeeded: &Intervals,
) -> Option<(&'static str, String)> {
    let rules = job
        .pointer("/spec/successPolicy/rules")
        .and_then(Value::as_array)?;
    if succeeded.total() == 0 {
        return None;
    }
    for (i, rule) in rules.iter().enumerate() {
        let count = rule.get("succeededCount").and_then(Value::as_i64);
        let met = match rule.get("succeededIndexes").and_then(Value::as_str) {
            Some(ixs) => {
                let required = Intervals::parse(ixs, completions);
                if required.total() == 0 {
                    continue;
                }
                let matched = required.iter().filter(|ix| succeeded.has(*ix)).count() as i64;
                matched >= count.unwrap_or(required.total())
            }
            None => count.is_some_and(|c| succeeded.total() >= c),
        };
        if met {
            return Some((
                reasons::SUCCESS_POLICY,
                format!("Matched rules at index {i}"),
            ));
        }
    }
    None
}

fn index_failure_count(pod: &Value) -> i64 {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(INDEX_FAILURE_COUNT))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Upstream's `trackJobStatusAndRemoveFinalizers` and `enactJobFinished`.
fn track_status_and_remove_finalizers(
    ctx: &mut Ctx<'_>,
    pods: &[&Value],
    status: &mut Status,
    prev_succeeded_indexes: &Intervals,
    mut finished: Option<Condition>,
    old_status: &Value,
) {
    let spec = ctx.spec;
    let now = ctx.now;
    let mut pods: Vec<&Value> = pods.to_vec();
    if spec.indexed() {
        pods.sort_by_key(|p| completion_index(p).unwrap_or(-1));
    }
    let mut with_finalizer: BTreeSet<String> = pods
        .iter()
        .filter(|p| has_finalizer(p))
        .map(|p| meta::uid(p).to_owned())
        .collect();
    status.clean_uncounted(&with_finalizer);
    let uncounted_failed_before: BTreeSet<String> =
        status.uncounted_failed.iter().cloned().collect();
    let uncounted_succeeded_before: BTreeSet<String> =
        status.uncounted_succeeded.iter().cloned().collect();
    let fails_everything = finished
        .as_ref()
        .is_some_and(|c| c.type_ != "SuccessCriteriaMet");
    let mut to_remove: Vec<&Value> = Vec::new();
    let mut new_indexes: BTreeSet<i64> = BTreeSet::new();
    let mut reached_max = false;
    let completions = spec.completions.unwrap_or(0);
    for pod in &pods {
        if !has_finalizer(pod) {
            continue;
        }
        let uid = meta::uid(pod).to_owned();
        let failed = is_pod_failed(spec, pod);
        let succeeded = meta::str_at(pod, "/status/phase") == "Succeeded";
        let delayed = ctx.delayed.values().any(|p| meta::uid(p) == uid.as_str());
        let can_remove =
            meta::is_deleting(ctx.job) || finished.is_some() || succeeded || (failed && !delayed);
        if !can_remove {
            continue;
        }
        to_remove.push(pod);
        if succeeded && !uncounted_failed_before.contains(&uid) {
            if spec.indexed() {
                if let Some(ix) = completion_index(pod).filter(|ix| *ix < completions)
                    && !prev_succeeded_indexes.has(ix)
                {
                    new_indexes.insert(ix);
                }
            } else if !uncounted_succeeded_before.contains(&uid) {
                status.uncounted_succeeded.push(uid);
            }
        } else if (failed || fails_everything)
            && !uncounted_failed_before.contains(&uid)
            && (!spec.indexed() || completion_index(pod).is_some_and(|ix| ix < completions))
        {
            status.uncounted_failed.push(uid);
        }
        if new_indexes.len() + status.uncounted_succeeded.len() + status.uncounted_failed.len()
            >= MAX_UNCOUNTED_PODS
        {
            reached_max = true;
            break;
        }
    }
    if spec.indexed() {
        let indexes = prev_succeeded_indexes.with(new_indexes);
        status.succeeded = indexes.total();
        status.completed_indexes = indexes.to_string();
        status.failed_indexes = ctx.failed_indexes.as_ref().map(Intervals::to_string);
    }
    if let Some(target) = finished.as_ref().filter(|c| c.type_ == "FailureTarget") {
        status.conditions.push(target.clone());
        finished = Some(Condition::new(
            "Failed",
            &target.reason,
            &target.message,
            now,
        ));
    }
    if let Some(met) = finished
        .as_ref()
        .filter(|c| c.type_ == "SuccessCriteriaMet")
    {
        if status.condition("SuccessCriteriaMet").is_none() {
            status.conditions.push(met.clone());
        }
        finished = Some(Condition::new("Complete", &met.reason, &met.message, now));
    }

    // Write the uncounted UIDs and interim conditions before any finalizer goes.
    let mut stored = old_status.clone();
    if !to_remove.is_empty() {
        let interim = status.write(&stored);
        if interim != stored {
            ctx.plan.status_with_uncounted = Some(interim.clone());
            stored = interim;
        }
        for p in &to_remove {
            ctx.plan.remove_finalizers.push(meta::name(p).to_owned());
            with_finalizer.remove(meta::uid(p));
        }
        status.clean_uncounted(&with_finalizer);
    }
    if !reached_max
        && let Some(cond) = &finished
        && status.uncounted_succeeded.is_empty()
        && status.uncounted_failed.is_empty()
        && ctx.terminating == 0
    {
        status.ensure_condition(&cond.type_, "True", &cond.reason, &cond.message, now);
        if cond.type_ == "Complete" {
            status.completion_time = Some(now);
            if spec.completions.is_some_and(|c| status.succeeded > c) {
                ctx.plan.events.push(Event::warning(
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                ));
            }
            ctx.plan
                .events
                .push(Event::normal("Completed", "Job completed"));
        } else {
            ctx.plan
                .events
                .push(Event::warning(&cond.reason, cond.message.clone()));
        }
        ctx.plan.backoff = Backoff::default();
    }
    let last = status.write(&stored);
    if last != stored {
        ctx.plan.status = Some(last);
    }
}

/// A Job condition as upstream writes it.
#[derive(Debug, Clone, PartialEq)]
struct Condition {
    type_: String,
    status: String,
    reason: String,
    message: String,
    last_probe_time: Option<Value>,
    last_transition_time: Option<Value>,
}

impl Condition {
    fn new(type_: &str, reason: &str, message: &str, now: i64) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status: "True".to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            last_probe_time: Some(json!(meta::format_time(now))),
            last_transition_time: Some(json!(meta::format_time(now))),
        }
    }

    fn read(v: &Value) -> Condition {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        Condition {
            type_: s("type"),
            status: s("status"),
            reason: s("reason"),
            message: s("message"),
            last_probe_time: v.get("lastProbeTime").cloned(),
            last_transition_time: v.get("lastTransitionTime").cloned(),
        }
    }

    fn write(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), json!(self.type_));
        m.insert("status".into(), json!(self.status));
        if let Some(t) = &self.last_probe_time {
            m.insert("lastProbeTime".into(), t.clone());
        }
        if let Some(t) = &self.last_transition_time {
            m.insert("lastTransitionTime".into(), t.clone());
        }
        if !self.reason.is_empty() {
            m.insert("reason".into(), json!(self.reason));
        }
        if !self.message.is_empty() {
            m.insert("message".into(), json!(self.message));
        }
        Value::Object(m)
    }
}

/// The parts of a Job status this core owns.
#[derive(Debug, Clone, PartialEq)]
struct Status {
    conditions: Vec<Condition>,
    start_time: Option<i64>,
    completion_time: Option<i64>,
    active: i64,
    succeeded: i64,
    failed: i64,
    terminating: Option<i64>,
    ready: Option<i64>,
    completed_indexes: String,
    failed_indexes: Option<String>,
    uncounted_succeeded: Vec<String>,
    uncounted_failed: Vec<String>,
}

impl Status {
    fn read(status: &Value) -> Status {
        let n = |k: &str| status.get(k).and_then(Value::as_i64);
        let time = |k: &str| {
            status
                .get(k)
                .and_then(Value::as_str)
                .and_then(meta::parse_time)
        };
        let uids = |k: &str| {
            status
                .pointer(&format!("/uncountedTerminatedPods/{k}"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        Status {
            conditions: status
                .get("conditions")
                .and_then(Value::as_array)
                .map(|c| c.iter().map(Condition::read).collect())
                .unwrap_or_default(),
            start_time: time("startTime"),
            completion_time: time("completionTime"),
            active: n("active").unwrap_or(0),
            succeeded: n("succeeded").unwrap_or(0),
            failed: n("failed").unwrap_or(0),
            terminating: n("terminating"),
            ready: n("ready"),
            completed_indexes: status
                .get("completedIndexes")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            failed_indexes: status
                .get("failedIndexes")
                .and_then(Value::as_str)
                .map(str::to_owned),
            uncounted_succeeded: uids("succeeded"),
            uncounted_failed: uids("failed"),
        }
    }

    fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Upstream's `ensureJobConditionStatus`: update a condition whose status, reason or
    /// message differ, append a new one unless it would be `False`. Returns whether it changed.
    fn ensure_condition(
        &mut self,
        type_: &str,
        status: &str,
        reason: &str,
        message: &str,
        now: i64,
    ) -> bool {
        let mut fresh = Condition::new(type_, reason, message, now);
        fresh.status = status.to_owned();
        if let Some(c) = self.conditions.iter_mut().find(|c| c.type_ == type_) {
            if c.status != status || c.reason != reason || c.message != message {
                *c = fresh;
                return true;
            }
            return false;
        }
        if status != "False" {
            self.conditions.push(fresh);
            return true;
        }
        false
    }

    /// Upstream's `cleanUncountedPodsWithoutFinalizers`: UIDs whose pod lost its finalizer move
    /// into the counters.
    fn clean_uncounted(&mut self, with_finalizer: &BTreeSet<String>) {
        let before = self.uncounted_succeeded.len();
        self.uncounted_succeeded
            .retain(|u| with_finalizer.contains(u));
        self.succeeded += (before - self.uncounted_succeeded.len()) as i64;
        let before = self.uncounted_failed.len();
        self.uncounted_failed.retain(|u| with_finalizer.contains(u));
        self.failed += (before - self.uncounted_failed.len()) as i64;
    }

    /// Renders the status as upstream serialises it (zero counters and empty strings omitted,
    /// `ready`, `terminating` and `uncountedTerminatedPods` always present), keeping fields this
    /// core does not own.
    fn write(&self, old: &Value) -> Value {
        let mut out = match old {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let mut set = |k: &str, v: Option<Value>| match v {
            Some(v) => {
                out.insert(k.into(), v);
            }
            None => {
                out.remove(k);
            }
        };
        set(
            "conditions",
            (!self.conditions.is_empty())
                .then(|| Value::Array(self.conditions.iter().map(Condition::write).collect())),
        );
        set(
            "startTime",
            self.start_time.map(|t| json!(meta::format_time(t))),
        );
        set(
            "completionTime",
            self.completion_time.map(|t| json!(meta::format_time(t))),
        );
        for (k, v) in [
            ("active", self.active),
            ("succeeded", self.succeeded),
            ("failed", self.failed),
        ] {
            set(k, (v != 0).then(|| json!(v)));
        }
        set("terminating", self.terminating.map(|v| json!(v)));
        set("ready", self.ready.map(|v| json!(v)));
        set(
            "completedIndexes",
            (!self.completed_indexes.is_empty()).then(|| json!(self.completed_indexes)),
        );
        set(
            "failedIndexes",
            self.failed_indexes.as_ref().map(|v| json!(v)),
        );
        let mut uncounted = Map::new();
        if !self.uncounted_succeeded.is_empty() {
            uncounted.insert("succeeded".into(), json!(self.uncounted_succeeded));
        }
        if !self.uncounted_failed.is_empty() {
            uncounted.insert("failed".into(), json!(self.uncounted_failed));
        }
        set("uncountedTerminatedPods", Some(Value::Object(uncounted)));
        Value::Object(out)
    }
}

/// A set of completion indexes in upstream's compressed form (`1,3-5,7`): sorted, disjoint,
/// non-adjacent inclusive intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(i64, i64)>);

impl Intervals {
    /// Parses `completedIndexes`/`failedIndexes`, dropping indexes at or above `completions`
    /// and malformed parts, as upstream's `parseIndexesFromString` does.
    pub fn parse(s: &str, completions: i64) -> Intervals {
        let mut set = BTreeSet::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i64>(), b.parse::<i64>()),
                None => (part.parse::<i64>(), part.parse::<i64>()),
            };
            let (Ok(first), Ok(last)) = (first, last) else {
                continue;
            };
            if first >= completions {
                break;
            }
            set.extend(first.max(0)..=last.min(completions - 1));
        }
        Intervals::from_set(&set)
    }

    fn from_set(set: &BTreeSet<i64>) -> Intervals {
        let mut out: Vec<(i64, i64)> = Vec::new();
        for &ix in set {
            match out.last_mut() {
                Some(last) if last.1 + 1 == ix => last.1 = ix,
                _ => out.push((ix, ix)),
            }
        }
        Intervals(out)
    }

    /// The union with `more`.
    pub fn with(&self, more: impl IntoIterator<Item = i64>) -> Intervals {
        let mut set: BTreeSet<i64> = self.iter().collect();
        set.extend(more);
        Intervals::from_set(&set)
    }

    /// Every index, ascending.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().flat_map(|(a, b)| *a..=*b)
    }

    /// How many indexes the set holds.
    pub fn total(&self) -> i64 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    /// Whether `ix` is in the set.
    pub fn has(&self, ix: i64) -> bool {
        self.0.iter().any(|(a, b)| *a <= ix && ix <= *b)
    }
}

impl std::fmt::Display for Intervals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}
