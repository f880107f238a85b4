//! What the workload loops share: routing a change of an owned object to its owner's key,
//! counting it against the owner's expectations, and recording the Events a core's plan asks
//! for.

use std::sync::Arc;
use std::time::Duration;

use runtime::informer::Change;
use runtime::queue::Queue;
use runtime::resource::{self, Resource};
use serde_json::{Value, json};

use crate::Cluster;
use crate::expectations::Expectations;
use crate::replicaset::controller_of;

/// Routes a change of an owner (a ReplicaSet, Job, ...) to its own key, forgetting its
/// expectations when it is gone; returns the key for loops that queue it elsewhere too.
pub(crate) fn route_owner(
    cluster: &Cluster,
    change: &Change,
    expectations: &Expectations,
    queue: &Queue,
) -> runtime::Key {
    let obj = change.object();
    let key = cluster.key(resource::namespace(obj), resource::name(obj));
    if let Change::Deleted(_) = change {
        expectations.forget(&key);
    }
    queue.add(key.clone());
    key
}

/// Routes a change of an object that a `kind` controller may own (pods, mostly) as upstream's
/// workload controllers do: counts it against its controller's expectations (for loops that
/// keep them), queues its
/// controller (now and before, when that changed), and when it has no controller queues every
/// `owner` object of its namespace, any of which may adopt it. With `delay`, owners are queued
/// after it, so a burst of changes folds into one sync.
pub(crate) fn route_owned(
    cluster: &Cluster,
    change: &Change,
    kind: &str,
    owner: &Resource,
    expectations: Option<&Expectations>,
    queue: &Arc<Queue>,
    delay: Option<Duration>,
) {
    let obj = change.object();
    let ns = resource::namespace(obj);
    if let Some(expectations) = expectations
        && let Some(name) = controller_of(obj, kind)
    {
        let key = cluster.key(ns, name);
        match observed(change) {
            Some(Observed::Creation) => expectations.creation_observed(&key),
            Some(Observed::Deletion) => expectations.deletion_observed(&key),
            None => {}
        }
    }
    if is_orphan(change) {
        for o in cluster.cache(owner).in_namespace(ns) {
            queue.add(cluster.key(ns, resource::name(&o)));
        }
    }
    for name in controllers(change, kind) {
        let key = cluster.key(ns, name);
        match delay {
            Some(d) => queue.add_after(key, d),
            None => queue.add(key),
        }
    }
}

/// How a change of an owned object bears on its owner's expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// The object was created (and is not already being deleted).
    Creation,
    /// The object started being deleted, or disappeared without having been seen doing so.
    Deletion,
}

/// The expectation `change` satisfies, if any, as upstream's controllers count pods: a
/// creation when a live object first appears, a deletion when its `deletionTimestamp` first
/// appears or it vanishes without one.
pub(crate) fn observed(change: &Change) -> Option<Observed> {
    match change {
        Change::Applied { old: None, new } if !resource::is_deleting(new) => {
            Some(Observed::Creation)
        }
        Change::Applied {
            old: Some(old),
            new,
        } if resource::is_deleting(new) && !resource::is_deleting(old) => Some(Observed::Deletion),
        Change::Deleted(last) if !resource::is_deleting(last) => Some(Observed::Deletion),
        _ => None,
    }
}

/// The names of the `kind` controllers of the changed object: its controller now and, when
/// that changed, its controller before.
pub(crate) fn controllers<'a>(change: &'a Change, kind: &str) -> Vec<&'a str> {
    let mut owners: Vec<&str> = controller_of(change.object(), kind).into_iter().collect();
    if let Change::Applied { old: Some(old), .. } = change
        && let Some(prev) = controller_of(old, kind)
        && !owners.contains(&prev)
    {
        owners.push(prev);
    }
    owners
}

/// Whether the changed object has no controller at all, so any owner of its namespace may
/// adopt it.
pub(crate) fn is_orphan(change: &Change) -> bool {
    resource::controller_uid(change.object()).is_none()
}

/// The Event type the recorder writes for a core's Event type.
pub(crate) fn event_type(t: controllers::event::EventType) -> runtime::events::EventType {
    match t {
        controllers::event::EventType::Normal => runtime::events::EventType::Normal,
        controllers::event::EventType::Warning => runtime::events::EventType::Warning,
    }
}

/// Records `events` about `regarding`.
pub(crate) fn record(
    recorder: &runtime::events::Recorder,
    regarding: &Value,
    events: &[controllers::event::Event],
) {
    for e in events {
        recorder.record(regarding, event_type(e.type_), &e.reason, &e.message);
    }
}

/// The strategic merge patch that removes `finalizer` and leaves every other finalizer alone
/// (upstream's Job controller removes its tracking finalizer with the same patch).
pub(crate) fn remove_finalizer_patch(finalizer: &str) -> Value {
    json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [finalizer]}})
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn pod(owner: Option<(&str, &str)>, deleting: bool) -> Arc<Value> {
        let mut p = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}});
        if let Some((kind, name)) = owner {
            p["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "batch/v1", "kind": kind, "name": name,
                "uid": format!("uid-{name}"), "controller": true,
            }]);
        }
        if deleting {
            p["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        Arc::new(p)
    }

    #[test]
    fn creations_and_deletions_are_observed_once() {
        let live = pod(None, false);
        let deleting = pod(None, true);
        let cases = [
            (
                Change::Applied {
                    old: None,
                    new: live.clone(),
                },
                Some(Observed::Creation),
            ),
            (
                Change::Applied {
                    old: None,
                    new: deleting.clone(),
                },
                None,
            ),
            (
                Change::Applied {
                    old: Some(live.clone()),
                    new: live.clone(),
                },
                None,
            ),
            (
                Change::Applied {
                    old: Some(live.clone()),
                    new: deleting.clone(),
                },
                Some(Observed::Deletion),
            ),
            (
                Change::Applied {
                    old: Some(deleting.clone()),
                    new: deleting.clone(),
                },
                None,
            ),
            (Change::Deleted(live.clone()), Some(Observed::Deletion)),
            (Change::Deleted(deleting.clone()), None),
        ];
        for (change, want) in cases {
            assert_eq!(observed(&change), want, "{change:?}");
        }
    }

    #[test]
    fn a_changed_controller_wakes_old_and_new_owner() {
        let change = Change::Applied {
            old: Some(pod(Some(("Job", "a")), false)),
            new: pod(Some(("Job", "b")), false),
        };
        assert_eq!(controllers(&change, "Job"), ["b", "a"]);
        assert!(controllers(&change, "CronJob").is_empty());
        assert!(!is_orphan(&change));
        let same = Change::Applied {
            old: Some(pod(Some(("Job", "a")), false)),
            new: pod(Some(("Job", "a")), false),
        };
        assert_eq!(controllers(&same, "Job"), ["a"]);
        assert!(is_orphan(&Change::Deleted(pod(None, false))));
    }

    #[test]
    fn event_types_map_one_to_one() {
        assert_eq!(
            event_type(controllers::event::EventType::Normal),
            runtime::events::EventType::Normal
        );
        assert_eq!(
            event_type(controllers::event::EventType::Warning),
            runtime::events::EventType::Warning
        );
    }

    #[test]
    fn the_finalizer_patch_names_only_that_finalizer() {
        assert_eq!(
            remove_finalizer_patch("batch.kubernetes.io/job-tracking"),
            json!({"metadata": {
                "$deleteFromPrimitiveList/finalizers": ["batch.kubernetes.io/job-tracking"],
            }})
        );
    }
}
