//! The Job loop (pods toward `completions`, finished pods counted through the tracking
//! finalizer) and the TTL-after-finished loop (finished Jobs deleted once their TTL expired).
//!
//! Beyond upstream's creation/deletion expectations the Job loop keeps two things per Job key
//! in memory: the failure backoff record the core hands back ([`controllers::job::Backoff`]),
//! and the pods whose tracking finalizer it removed but whose update the pod cache has not shown
//! yet. A Job is not synced while either expectation is outstanding, because the core would
//! count a pod that still shows the finalizer a second time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use controllers::job::{self as core, TRACKING_FINALIZER, TtlDecision};
use futures::future::join_all;
use kube::api::PropagationPolicy;
use parking_lot::Mutex;
use runtime::events::EventType;
use runtime::informer::Change;
use runtime::resource::{self, JOBS, PODS};
use runtime::{Action, Key};
use serde_json::Value;

use crate::owners;
use crate::replicaset::{ORPHANS, controller_of};
use crate::{Cluster, Error, Shared, client};

const COMPONENT: &str = "job-controller";

/// How long unobserved finalizer removals hold a Job back before it syncs regardless.
const FINALIZERS_TTL: Duration = Duration::from_secs(300);

/// How soon a sync that lost a write race with a newer copy of its object runs again.
pub(crate) const CONFLICT_RETRY: Duration = Duration::from_millis(100);

/// The Job loop's memory per Job key.
#[derive(Debug, Default)]
pub(crate) struct State {
    backoff: Mutex<HashMap<Key, core::Backoff>>,
    /// Pod UIDs whose tracking finalizer was removed but still shows in the cache.
    finalizers: Mutex<HashMap<Key, (HashSet<String>, Instant)>>,
}

impl State {
    fn backoff(&self, key: &Key) -> core::Backoff {
        self.backoff.lock().get(key).copied().unwrap_or_default()
    }

    fn set_backoff(&self, key: &Key, b: core::Backoff) {
        let mut map = self.backoff.lock();
        if b == core::Backoff::default() {
            map.remove(key);
        } else {
            map.insert(key.clone(), b);
        }
    }

    fn expect_removal(&self, key: &Key, uid: &str) {
        let mut map = self.finalizers.lock();
        let entry = map
            .entry(key.clone())
            .or_insert_with(|| (HashSet::new(), Instant::now()));
        entry.0.insert(uid.to_string());
        entry.1 = Instant::now();
    }

    fn removal_observed(&self, key: &Key, uid: &str) {
        let mut map = self.finalizers.lock();
        if let Some((set, _)) = map.get_mut(key) {
            set.remove(uid);
            if set.is_empty() {
                map.remove(key);
            }
        }
    }

    fn removals_observed(&self, key: &Key) -> bool {
        match self.finalizers.lock().get(key) {
            None => true,
            Some((set, at)) => set.is_empty() || at.elapsed() > FINALIZERS_TTL,
        }
    }

    fn forget(&self, key: &Key) {
        self.backoff.lock().remove(key);
        self.finalizers.lock().remove(key);
    }
}

/// The pod index of pods still carrying the tracking finalizer, by `namespace/name` of the Job
/// their controller reference names.
pub(crate) const TRACKED: &str = "job-tracked";

/// Files pods that carry [`TRACKING_FINALIZER`] under the Job their controller reference
/// names, so the finalizers a deleted or finished Job left behind are found without a scan.
pub(crate) fn tracked_index() -> (&'static str, runtime::cache::IndexFn) {
    (
        TRACKED,
        Box::new(|pod| match controller_of(pod, "Job") {
            Some(job) if has_tracking_finalizer(pod) => {
                vec![tracked_key(resource::namespace(pod), job)]
            }
            _ => vec![],
        }),
    )
}

fn tracked_key(namespace: &str, job: &str) -> String {
    format!("{namespace}/{job}")
}

fn has_tracking_finalizer(pod: &Value) -> bool {
    pod.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(TRACKING_FINALIZER)))
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(JOBS, move |change| {
        let key = owners::route_owner(&c, change, &s.job_expectations, &s.queues.jobs);
        s.queues.ttl.add(key);
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(PODS, move |change| {
        let pod = change.object();
        if let Some(name) = controller_of(pod, "Job")
            && (matches!(change, Change::Deleted(_)) || !has_tracking_finalizer(pod))
        {
            let key = c.key(resource::namespace(pod), name);
            s.jobs.removal_observed(&key, resource::uid(pod));
        }
        owners::route_owned(
            &c,
            change,
            "Job",
            &JOBS,
            Some(&s.job_expectations),
            &s.queues.jobs,
            None,
        );
    });
}

/// Removes the tracking finalizer from `pods`, remembering each removal until the cache shows
/// it. Returns the first failure.
async fn remove_finalizers(
    shared: &Shared,
    cluster: &Cluster,
    key: &Key,
    pods: &[Arc<Value>],
) -> Result<(), client::Error> {
    let patch = owners::remove_finalizer_patch(TRACKING_FINALIZER);
    let client = &cluster.client;
    let removals = pods.iter().map(|pod| {
        let patch = &patch;
        shared.jobs.expect_removal(key, resource::uid(pod));
        async move {
            let r = client::patch(
                client,
                &PODS,
                resource::namespace(pod),
                resource::name(pod),
                patch,
            )
            .await;
            (pod, r)
        }
    });
    let results = join_all(removals).await;
    let cache = cluster.cache(&PODS);
    let mut failure = None;
    for (pod, result) in results {
        let shown = cache.get(resource::namespace(pod), resource::name(pod));
        match result {
            // The cache may have shown the removal before it was expected.
            Ok(Some(_))
                if shown.is_some_and(|p| {
                    resource::uid(&p) == resource::uid(pod) && has_tracking_finalizer(&p)
                }) => {}
            Ok(_) => shared.jobs.removal_observed(key, resource::uid(pod)),
            Err(e) => {
                shared.jobs.removal_observed(key, resource::uid(pod));
                failure.get_or_insert(e);
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Upstream's orphan-pod sync: pods naming this Job as controller that carry the tracking
/// finalizer though no live, unfinished Job of that UID will count them.
fn stray_pods(pods: &[Arc<Value>], name: &str, job: Option<&Value>) -> Vec<Arc<Value>> {
    pods.iter()
        .filter(|p| controller_of(p, "Job") == Some(name))
        .filter(|p| core::orphan_needs_finalizer_removal(p, job))
        .cloned()
        .collect()
}

/// Writes `status` onto `job` through the status subresource; `None` when a newer copy of the
/// Job won the race (the next sync sees it).
async fn write_status(
    client: &kube::Client,
    job: &Value,
    status: Value,
) -> Result<Option<Value>, Error> {
    let mut obj = job.clone();
    obj["status"] = status;
    match client::replace_status(client, &JOBS, &obj).await {
        Ok(stored) => Ok(Some(stored)),
        Err(e) if client::is_conflict(&e) || client::is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let pod_cache = cluster.cache(&PODS);
    let ns = key.namespace.as_str();
    let job = cluster.cache(&JOBS).get(ns, &key.name);
    let tracked = pod_cache.by_index(TRACKED, &tracked_key(ns, &key.name));
    let strays = stray_pods(&tracked, &key.name, job.as_deref());
    if !strays.is_empty() {
        remove_finalizers(&shared, &cluster, &key, &strays).await?;
    }
    let Some(job) = job else {
        shared.job_expectations.forget(&key);
        shared.jobs.forget(&key);
        return Ok(Action::await_change());
    };
    if !shared.job_expectations.satisfied(&key) || !shared.jobs.removals_observed(&key) {
        // Our last writes are not in the cache yet; their events requeue this key.
        return Ok(Action::await_change());
    }
    let mut pods: Vec<Value> = pod_cache
        .controlled_by(resource::uid(&job))
        .iter()
        .map(|p| (**p).clone())
        .collect();
    pods.extend(
        pod_cache
            .by_index(ORPHANS, ns)
            .iter()
            .map(|p| (**p).clone()),
    );
    let backoff = shared.jobs.backoff(&key);
    let plan = core::reconcile(&job, &pods, &backoff, SystemTime::now())?;
    let client = &cluster.client;
    let events = cluster.recorder(COMPONENT);

    for pod in &plan.adopt {
        client::replace(client, &PODS, pod).await?;
    }
    for pod in &plan.release {
        let released = client::replace(client, &PODS, pod).await?;
        if core::orphan_needs_finalizer_removal(&released, None) {
            remove_finalizers(&shared, &cluster, &key, &[Arc::new(released)]).await?;
        }
    }

    shared
        .job_expectations
        .expect(&key, plan.create.len() as i64, plan.delete.len() as i64);
    let mut failure = None;
    for d in &plan.delete {
        let Some(pod) = pod_cache.get(ns, &d.name) else {
            shared.job_expectations.deletion_observed(&key);
            continue;
        };
        if d.remove_finalizer_first
            && let Err(e) = remove_finalizers(&shared, &cluster, &key, &[Arc::clone(&pod)]).await
        {
            shared.job_expectations.deletion_observed(&key);
            failure.get_or_insert(e);
            continue;
        }
        let deleted = client::delete(client, &PODS, ns, &d.name, Some(resource::uid(&pod)), None);
        if let Err(e) = deleted.await {
            shared.job_expectations.deletion_observed(&key);
            failure.get_or_insert(e);
        }
    }

    let mut created = 0;
    for size in controllers::replicaset::slow_start_batches(plan.create.len()) {
        if failure.is_some() {
            break;
        }
        let batch = &plan.create[created..created + size];
        let results = join_all(batch.iter().map(|p| client::create(client, &PODS, p))).await;
        created += size;
        for result in results {
            match result {
                Ok(pod) => events.record(
                    &job,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", resource::name(&pod)),
                ),
                Err(e) => {
                    shared.job_expectations.creation_observed(&key);
                    events.record(
                        &job,
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                    );
                    failure.get_or_insert(e);
                }
            }
        }
    }
    for _ in created..plan.create.len() {
        shared.job_expectations.creation_observed(&key);
    }
    if let Some(e) = failure {
        return Err(e.into());
    }

    // The counting protocol: uncounted UIDs, then finalizer removals, then the counters.
    let mut current = (*job).clone();
    if let Some(status) = plan.status_with_uncounted.clone() {
        match write_status(client, &current, status).await? {
            Some(stored) => current = stored,
            None => return Ok(Action::requeue(CONFLICT_RETRY)),
        }
    }
    let doomed: Vec<Arc<Value>> = plan
        .remove_finalizers
        .iter()
        .filter_map(|name| pod_cache.get(ns, name))
        .collect();
    remove_finalizers(&shared, &cluster, &key, &doomed).await?;
    if let Some(status) = plan.status.clone()
        && write_status(client, &current, status).await?.is_none()
    {
        return Ok(Action::requeue(CONFLICT_RETRY));
    }
    shared.jobs.set_backoff(&key, plan.backoff);
    owners::record(&events, &job, &plan.events);
    Ok(plan
        .requeue_after
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// The TTL-after-finished loop: deletes a finished Job (and, in the background, its pods) once
/// `ttlSecondsAfterFinished` passed, re-reading it live first as upstream does, so a TTL
/// extended a moment ago is honoured.
pub(crate) async fn reconcile_ttl(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(job) = cluster.cache(&JOBS).get(&key.namespace, &key.name) else {
        return Ok(Action::await_change());
    };
    match core::ttl_after_finished(&job, SystemTime::now()) {
        TtlDecision::Keep => return Ok(Action::await_change()),
        TtlDecision::RequeueAfter(d) => return Ok(Action::requeue(d)),
        TtlDecision::Delete => {}
    }
    let client = &cluster.client;
    let Some(live) = client::get(client, &JOBS, &key.namespace, &key.name).await? else {
        return Ok(Action::await_change());
    };
    match core::ttl_after_finished(&live, SystemTime::now()) {
        TtlDecision::Keep => return Ok(Action::await_change()),
        TtlDecision::RequeueAfter(d) => return Ok(Action::requeue(d)),
        TtlDecision::Delete => {}
    }
    client::delete(
        client,
        &JOBS,
        &key.namespace,
        &key.name,
        Some(resource::uid(&live)),
        Some(PropagationPolicy::Background),
    )
    .await?;
    tracing::info!(namespace = %key.namespace, job = %key.name, "deleted finished Job after its TTL");
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(name: &str) -> Key {
        Key::new(&Arc::from("c1"), "ns", name)
    }

    fn pod(job: &str, job_uid: &str, finalizer: bool) -> Arc<Value> {
        let mut p = json!({"metadata": {
            "name": format!("{job}-p"), "namespace": "ns", "uid": "p1",
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": job_uid,
                "controller": true,
            }],
        }});
        if finalizer {
            p["metadata"]["finalizers"] = json!([TRACKING_FINALIZER]);
        }
        Arc::new(p)
    }

    fn job(uid: &str, finished: bool) -> Value {
        let mut j = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "a", "namespace": "ns", "uid": uid}});
        if finished {
            j["status"] = json!({"conditions": [{"type": "Complete", "status": "True"}]});
        }
        j
    }

    #[test]
    fn finalizer_removals_hold_the_job_until_each_is_observed() {
        let state = State::default();
        let k = key("a");
        assert!(state.removals_observed(&k));
        state.expect_removal(&k, "p1");
        state.expect_removal(&k, "p2");
        state.removal_observed(&k, "p1");
        assert!(!state.removals_observed(&k));
        state.removal_observed(&k, "p2");
        assert!(state.removals_observed(&k));
        assert!(state.finalizers.lock().is_empty());
    }

    #[test]
    fn a_default_backoff_is_not_kept() {
        let state = State::default();
        let k = key("a");
        let b = core::Backoff {
            failures_after_last_success: 2,
            last_failure_time: Some(100),
        };
        state.set_backoff(&k, b);
        assert_eq!(state.backoff(&k), b);
        state.set_backoff(&k, core::Backoff::default());
        assert!(state.backoff.lock().is_empty());
        state.set_backoff(&k, b);
        state.forget(&k);
        assert_eq!(state.backoff(&k), core::Backoff::default());
    }

    #[test]
    fn only_pods_with_the_finalizer_are_indexed_under_their_job() {
        let (_, index) = tracked_index();
        assert_eq!(index(&pod("a", "j1", true)), ["ns/a"]);
        assert!(index(&pod("a", "j1", false)).is_empty());
        let mut rs_pod = (*pod("a", "j1", true)).clone();
        rs_pod["metadata"]["ownerReferences"][0]["kind"] = json!("ReplicaSet");
        assert!(index(&rs_pod).is_empty());
    }

    #[test]
    fn strays_are_pods_no_live_unfinished_job_will_count() {
        let pods = [pod("a", "j1", true)];
        assert!(stray_pods(&pods, "a", Some(&job("j1", false))).is_empty());
        assert_eq!(stray_pods(&pods, "a", Some(&job("j1", true))).len(), 1);
        assert_eq!(stray_pods(&pods, "a", Some(&job("j2", false))).len(), 1);
        assert_eq!(stray_pods(&pods, "a", None).len(), 1);
        assert!(stray_pods(&pods, "b", None).is_empty());
    }
}
