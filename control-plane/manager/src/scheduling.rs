//! The scheduler loop: places pods with no `spec.nodeName` on nodes and binds them.
//!
//! Each cluster keeps a [`scheduler::Snapshot`] of its nodes and the pods on them, fed by the
//! informers. A decision assumes the pod onto its node at once, so the next decision already
//! counts it, and the binding is written in the background (bounded); a failed binding undoes
//! the assumption and retries the pod with backoff. A pod that fits nowhere gets upstream's
//! `PodScheduled=False` condition and a `FailedScheduling` Event with the explanation, and is
//! retried when a node or a pod changes (or every five minutes, as upstream's flush).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use parking_lot::Mutex;
use runtime::events::EventType;
use runtime::informer::Change;
use runtime::resource::{self, NAMESPACES, NODES, PODS};
use runtime::{Action, Key};
use scheduler::{Outcome, PodInfo, Scheduler, Snapshot};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{Cluster, DEFAULT_SCHEDULER, Error, Shared, client};

const COMPONENT: &str = "default-scheduler";
/// How many bindings may be in flight per cluster.
const BINDINGS_IN_FLIGHT: usize = 256;
/// Upstream's `podMaxInUnschedulablePodsDuration`.
const UNSCHEDULABLE_FLUSH: Duration = Duration::from_secs(300);

type PodKey = (String, String);

/// A cluster's scheduling state.
pub(crate) struct State {
    inner: Mutex<Inner>,
    bindings: Arc<Semaphore>,
}

impl Default for State {
    fn default() -> Self {
        State {
            inner: Mutex::default(),
            bindings: Arc::new(Semaphore::new(BINDINGS_IN_FLIGHT)),
        }
    }
}

struct Inner {
    snapshot: Snapshot,
    scheduler: Scheduler,
    /// Where each pod in the snapshot sits.
    placed: HashMap<PodKey, String>,
    /// Pods that fit nowhere at their last attempt.
    unschedulable: HashSet<PodKey>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            snapshot: Snapshot::default(),
            // A non-zero seed makes ties between equally good nodes random, as upstream's
            // selectHost, rather than always the first.
            scheduler: Scheduler::new(rand::random::<u64>() | 1),
            placed: HashMap::default(),
            unschedulable: HashSet::default(),
        }
    }
}

impl Inner {
    fn unplace(&mut self, key: &PodKey) {
        if let Some(node) = self.placed.remove(key) {
            self.snapshot.remove_pod(&node, &key.0, &key.1);
        }
    }
}

fn wants_scheduling(pod: &Value) -> bool {
    let scheduler = resource::str_at(pod, "/spec/schedulerName");
    resource::str_at(pod, "/spec/nodeName").is_empty()
        && (scheduler.is_empty() || scheduler == DEFAULT_SCHEDULER)
        && !resource::is_deleting(pod)
        && !matches!(
            resource::str_at(pod, "/status/phase"),
            "Succeeded" | "Failed"
        )
}

fn retry_unschedulable(cluster: &Cluster, shared: &Shared, inner: &mut Inner) {
    for (ns, name) in inner.unschedulable.drain() {
        shared.queues.scheduling.add(cluster.key(&ns, &name));
    }
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(NODES, move |change| {
        let mut inner = c.scheduling.inner.lock();
        match change {
            Change::Applied { new, .. } => {
                if let Err(e) = inner.snapshot.upsert_node_object(new) {
                    tracing::warn!(node = resource::name(new), error = %e, "cannot read node for scheduling");
                }
            }
            Change::Deleted(node) => {
                let name = resource::name(node);
                inner.snapshot.remove_node(name);
                inner.placed.retain(|_, n| n != name);
            }
        }
        retry_unschedulable(&c, &s, &mut inner);
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(PODS, move |change| {
        let pod = change.object();
        let key = (
            resource::namespace(pod).to_string(),
            resource::name(pod).to_string(),
        );
        let node = resource::str_at(pod, "/spec/nodeName");
        let terminal = matches!(
            resource::str_at(pod, "/status/phase"),
            "Succeeded" | "Failed"
        );
        let mut inner = c.scheduling.inner.lock();
        match change {
            Change::Applied { .. } if !node.is_empty() && !terminal => {
                if inner.placed.get(&key).map(String::as_str) != Some(node) {
                    inner.unplace(&key);
                    match inner.snapshot.add_pod_object(pod) {
                        Ok(()) => {
                            inner.placed.insert(key.clone(), node.to_string());
                        }
                        Err(e) => tracing::debug!(error = %e, "bound pod not in the snapshot"),
                    }
                }
                inner.unschedulable.remove(&key);
            }
            Change::Applied { .. } => {
                let was_placed = inner.placed.contains_key(&key);
                inner.unplace(&key);
                if was_placed {
                    retry_unschedulable(&c, &s, &mut inner);
                }
                // Status-only updates (our own PodScheduled condition among them) do not
                // change where a pod fits; upstream's queue ignores them too.
                let changed = match change {
                    Change::Applied { old: Some(old), .. } => {
                        old.get("spec") != pod.get("spec")
                            || old.pointer("/metadata/labels") != pod.pointer("/metadata/labels")
                    }
                    _ => true,
                };
                if changed && wants_scheduling(pod) {
                    s.queues.scheduling.add(c.key(&key.0, &key.1));
                }
            }
            Change::Deleted(_) => {
                inner.unschedulable.remove(&key);
                let was_placed = inner.placed.contains_key(&key);
                inner.unplace(&key);
                if was_placed {
                    retry_unschedulable(&c, &s, &mut inner);
                }
            }
        }
    });
    let c = Arc::clone(cluster);
    cluster.on_change(NAMESPACES, move |change| {
        if let Change::Applied { new, .. } = change {
            let labels = new
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            c.scheduling
                .inner
                .lock()
                .snapshot
                .set_namespace_labels(resource::name(new), labels);
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(pod) = cluster.cache(&PODS).get(&key.namespace, &key.name) else {
        return Ok(Action::await_change());
    };
    if !wants_scheduling(&pod) {
        return Ok(Action::await_change());
    }
    let events = cluster.recorder(COMPONENT);
    let info = match PodInfo::from_api(&pod) {
        Ok(mut info) => {
            if info.spread.is_empty() {
                info.spread = system_default_spread(&cluster, &pod);
            }
            Arc::new(info)
        }
        Err(e) => {
            events.record(
                &pod,
                EventType::Warning,
                "FailedScheduling",
                &format!("cannot read the pod: {e}"),
            );
            return Ok(Action::await_change());
        }
    };
    let pod_key = (key.namespace.clone(), key.name.clone());
    let permit = Arc::clone(&cluster.scheduling.bindings)
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    let outcome = {
        let mut inner = cluster.scheduling.inner.lock();
        let inner = &mut *inner;
        let outcome = inner.scheduler.schedule_or_preempt(&info, &inner.snapshot);
        match &outcome {
            Outcome::Scheduled(node) => {
                if inner.snapshot.assume(Arc::clone(&info), node).is_ok() {
                    inner.placed.insert(pod_key.clone(), node.clone());
                }
                inner.unschedulable.remove(&pod_key);
            }
            _ => {
                inner.unschedulable.insert(pod_key.clone());
            }
        }
        outcome
    };
    match outcome {
        Outcome::Scheduled(node) => {
            let (cluster, shared) = (Arc::clone(&cluster), Arc::clone(&shared));
            tokio::spawn(async move {
                let _permit = permit;
                let binding = json!({
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": key.name, "namespace": key.namespace, "uid": resource::uid(&pod)},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                });
                match client::post_subresource(
                    &cluster.client,
                    &PODS,
                    &key.namespace,
                    &key.name,
                    "binding",
                    &binding,
                )
                .await
                {
                    Ok(()) => events.record(
                        &pod,
                        EventType::Normal,
                        "Scheduled",
                        &format!(
                            "Successfully assigned {}/{} to {node}",
                            key.namespace, key.name
                        ),
                    ),
                    Err(e) => {
                        cluster.scheduling.inner.lock().unplace(&pod_key);
                        if !client::is_not_found(&e) {
                            tracing::warn!(pod = %key, node, error = %e, "binding failed; retrying");
                            shared.queues.scheduling.add_rate_limited(key);
                        }
                    }
                }
            });
            Ok(Action::await_change())
        }
        Outcome::Unschedulable(err) => {
            drop(permit);
            let message = err.to_string();
            events.record(&pod, EventType::Warning, "FailedScheduling", &message);
            set_unschedulable(&cluster, &pod, &message, None).await?;
            Ok(Action::requeue(UNSCHEDULABLE_FLUSH))
        }
        Outcome::Preempt(fit, preemption) => {
            drop(permit);
            let message = fit.to_string();
            events.record(&pod, EventType::Warning, "FailedScheduling", &message);
            set_unschedulable(&cluster, &pod, &message, Some(&preemption.node)).await?;
            for victim in &preemption.victims {
                if let Some(v) = cluster.cache(&PODS).get(&victim.namespace, &victim.name) {
                    events.record(
                        &v,
                        EventType::Normal,
                        "Preempted",
                        &format!(
                            "Preempted by pod {} on node {}",
                            resource::uid(&pod),
                            preemption.node
                        ),
                    );
                    client::delete(
                        &cluster.client,
                        &PODS,
                        &victim.namespace,
                        &victim.name,
                        Some(resource::uid(&v)),
                        None,
                    )
                    .await?;
                }
            }
            Ok(Action::requeue(Duration::from_secs(1)))
        }
    }
}

/// Upstream's system default topology spreading for pods that set none: soft spreading over
/// hostnames (maxSkew 3) and zones (maxSkew 5) among the pods selected by the same controller
/// and Services as this one.
fn system_default_spread(cluster: &Cluster, pod: &Value) -> Vec<scheduler::SpreadConstraint> {
    use objects::selectors::{LabelSelector, Requirement};
    let ns = resource::namespace(pod);
    let mut requirements = Vec::new();
    if let Some(rs) = crate::replicaset::controller_of(pod, "ReplicaSet")
        && let Some(rs) = cluster.cache(&runtime::resource::REPLICA_SETS).get(ns, rs)
        && let Some(sel) = rs.pointer("/spec/selector")
        && let Ok(sel) = LabelSelector::from_api(sel)
    {
        requirements.extend(sel.0);
    }
    let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
    for svc in cluster.cache(&runtime::resource::SERVICES).in_namespace(ns) {
        let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
            continue;
        };
        let selects = !selector.is_empty()
            && selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if selects {
            requirements.extend(selector.iter().filter_map(|(k, v)| {
                Some(Requirement::In(k.clone(), vec![v.as_str()?.to_string()]))
            }));
        }
    }
    if requirements.is_empty() {
        return Vec::new();
    }
    // A Service selecting what the controller selects adds the same requirements again.
    let mut unique: Vec<Requirement> = Vec::new();
    for r in requirements {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    let selector = LabelSelector(unique);
    [
        ("kubernetes.io/hostname", 3),
        ("topology.kubernetes.io/zone", 5),
    ]
    .into_iter()
    .map(|(key, skew)| scheduler::SpreadConstraint {
        max_skew: skew,
        topology_key: key.to_string(),
        hard: false,
        selector: Some(selector.clone()),
        min_domains: 1,
        honor_node_affinity: true,
        honor_node_taints: false,
    })
    .collect()
}

/// Writes `PodScheduled=False` (and the nominated node) unless the pod already says so.
async fn set_unschedulable(
    cluster: &Cluster,
    pod: &Value,
    message: &str,
    nominated: Option<&str>,
) -> Result<(), Error> {
    let current = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"))
        });
    let same = current.is_some_and(|c| {
        c.get("status").and_then(Value::as_str) == Some("False")
            && c.get("message").and_then(Value::as_str) == Some(message)
    }) && nominated
        .is_none_or(|n| resource::str_at(pod, "/status/nominatedNodeName") == n);
    if same {
        return Ok(());
    }
    let mut patch = json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": resource::time_now(),
    }]}});
    if let Some(node) = nominated {
        patch["status"]["nominatedNodeName"] = json!(node);
    }
    let api = PODS.api(&cluster.client, Some(resource::namespace(pod)));
    match api
        .patch_status(
            resource::name(pod),
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if client::is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
