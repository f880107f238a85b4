//! ReplicaSet core scenarios: build the state, reconcile, assert the exact plan, apply it, and
//! check that the settled state reconciles to an empty plan.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use controllers::replicaset::{self, Plan, slow_start_batches};
use serde_json::{Value, json};

/// 2027-01-15T00:00:00Z.
const DAY: u64 = 1_799_971_200;
/// 2027-01-15T23:53:20Z.
const NOW: u64 = DAY + 86_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn at(ago: u64) -> String {
    let s = NOW - ago - DAY;
    format!(
        "2027-01-15T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn rs(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "rs-uid", "generation": 2},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}, "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }
        }
    })
}

/// An owned pod: `node` empty for unassigned, `ready_ago` None for not ready.
fn pod(name: &str, node: &str, phase: &str, ready_ago: Option<u64>, created_ago: u64) -> Value {
    let mut conditions = vec![];
    if let Some(ago) = ready_ago {
        conditions.push(json!({"type": "Ready", "status": "True", "lastTransitionTime": at(ago)}));
    }
    json!({
        "metadata": {
            "name": name, "namespace": "ns", "uid": format!("uid-{name}"),
            "labels": {"app": "web", "tier": "front"},
            "creationTimestamp": at(created_ago),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"nodeName": node},
        "status": {"phase": phase, "conditions": conditions}
    })
}

/// Applies a plan to the state as the API server would, giving created pods names and making
/// them run ready on `node-x` an hour ago.
fn apply(rs: &mut Value, pods: &mut Vec<Value>, plan: &Plan) {
    for p in plan.adopt.iter().chain(&plan.release) {
        let i = pods
            .iter()
            .position(|q| q["metadata"]["name"] == p["metadata"]["name"])
            .unwrap();
        pods[i] = p.clone();
    }
    for (i, p) in plan.create.iter().enumerate() {
        let mut p = p.clone();
        let name = format!(
            "{}{}",
            p["metadata"]["generateName"].as_str().unwrap(),
            i + pods.len()
        );
        p["metadata"]["name"] = json!(name);
        p["metadata"]["uid"] = json!(format!("uid-{name}"));
        p["metadata"]["creationTimestamp"] = json!(at(7200));
        p["spec"]["nodeName"] = json!("node-x");
        p["status"] = json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": at(3600)}]});
        pods.push(p);
    }
    pods.retain(|p| {
        !plan
            .delete
            .iter()
            .any(|d| p["metadata"]["name"] == json!(d))
    });
    if let Some(s) = &plan.status {
        rs["status"] = s.clone();
    }
}

/// Applies plans until one is empty; returns how many non-empty plans there were.
fn settle(rs: &mut Value, pods: &mut Vec<Value>) -> usize {
    for round in 0..4 {
        let plan = replicaset::reconcile(rs, pods, now()).unwrap();
        if plan.is_empty() {
            return round;
        }
        apply(rs, pods, &plan);
    }
    panic!("did not settle: {rs}");
}

#[test]
fn scale_up_creates_pods_from_the_template() {
    let mut set = rs(3);
    let plan = replicaset::reconcile(&set, &[] as &[Value], now()).unwrap();
    assert_eq!(plan.create.len(), 3);
    assert_eq!(
        plan.create[0],
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "generateName": "web-", "namespace": "ns",
                "labels": {"app": "web", "tier": "front"}, "annotations": {"a": "b"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                    "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        })
    );
    assert!(plan.delete.is_empty());
    assert_eq!(
        plan.status,
        Some(json!({"replicas": 0, "observedGeneration": 2}))
    );
    let mut pods = vec![];
    apply(&mut set, &mut pods, &plan);
    // The status write after the pods exist, then nothing.
    assert_eq!(settle(&mut set, &mut pods), 1);
    assert_eq!(
        set["status"],
        json!({"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3,
               "availableReplicas": 3, "observedGeneration": 2})
    );
}

#[test]
fn slow_start_batches_double() {
    assert_eq!(slow_start_batches(0), Vec::<usize>::new());
    assert_eq!(slow_start_batches(1), vec![1]);
    assert_eq!(slow_start_batches(10), vec![1, 2, 4, 3]);
    assert_eq!(slow_start_batches(15), vec![1, 2, 4, 8]);
}

#[test]
fn burst_caps_one_sync() {
    let plan = replicaset::reconcile(&rs(800), &[] as &[Value], now()).unwrap();
    assert_eq!(plan.create.len(), replicaset::BURST_REPLICAS);
}

#[test]
fn scale_down_deletes_in_upstream_rank_order() {
    // Each case: pods, replicas to keep, expected deletions in order.
    let cases: Vec<(&str, Vec<Value>, i64, Vec<&str>)> = vec![
        (
            "unassigned < pending < unknown < running",
            vec![
                pod("running", "n1", "Running", Some(600), 900),
                pod("unknown", "n2", "Unknown", None, 900),
                pod("pending", "n3", "Pending", None, 900),
                pod("unassigned", "", "Pending", None, 900),
            ],
            1,
            vec!["unassigned", "pending", "unknown"],
        ),
        (
            "not ready < ready",
            vec![
                pod("ready", "n1", "Running", Some(600), 900),
                pod("not-ready", "n2", "Running", None, 900),
            ],
            1,
            vec!["not-ready"],
        ),
        (
            "doubled up on a node first",
            vec![
                pod("alone", "n1", "Running", Some(600), 900),
                pod("pair-a", "n2", "Running", Some(600), 900),
                pod("pair-b", "n2", "Running", Some(600), 900),
            ],
            1,
            vec!["pair-a", "pair-b"],
        ),
        (
            "ready more recently first (log2 buckets)",
            vec![
                pod("old", "n1", "Running", Some(80_000), 81_000),
                pod("new", "n2", "Running", Some(10), 900),
                pod("mid", "n3", "Running", Some(3000), 4000),
            ],
            1,
            vec!["new", "mid"],
        ),
        (
            "more restarts first, then newer first",
            vec![
                pod("older", "n1", "Running", None, 80_000),
                pod("newer", "n2", "Running", None, 10),
                {
                    let mut p = pod("crashy", "n3", "Running", None, 80_000);
                    p["status"]["containerStatuses"] = json!([{"name": "c", "restartCount": 4}]);
                    p
                },
            ],
            1,
            vec!["crashy", "newer"],
        ),
    ];
    // Deleting every pod takes them in list order: upstream only sorts when choosing.
    let all = vec![
        pod("b", "n1", "Running", Some(600), 900),
        pod("a", "", "Pending", None, 1),
    ];
    assert_eq!(
        replicaset::reconcile(&rs(0), &all, now()).unwrap().delete,
        vec!["b", "a"]
    );
    for (name, pods, keep, want) in cases {
        let plan = replicaset::reconcile(&rs(keep), &pods, now()).unwrap();
        assert_eq!(plan.delete, want, "{name}");
        assert!(plan.create.is_empty(), "{name}");
    }
}

#[test]
fn deletion_cost_overrides_age() {
    let mut cheap = pod("cheap", "n1", "Running", Some(80_000), 81_000);
    cheap["metadata"]["annotations"] = json!({"controller.kubernetes.io/pod-deletion-cost": "-5"});
    let pods = vec![pod("young", "n2", "Running", Some(10), 20), cheap];
    let plan = replicaset::reconcile(&rs(1), &pods, now()).unwrap();
    assert_eq!(plan.delete, vec!["cheap"]);
}

#[test]
fn adopts_matching_orphans_and_releases_mismatches() {
    let mut orphan = pod("orphan", "n1", "Running", Some(600), 900);
    orphan["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    let mut stray = pod("stray", "n1", "Running", Some(600), 900);
    stray["metadata"]["labels"] = json!({"app": "other"});
    let mut foreign = pod("foreign", "n1", "Running", Some(600), 900);
    foreign["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
    let mut dying_orphan = orphan.clone();
    dying_orphan["metadata"]["name"] = json!("dying");
    dying_orphan["metadata"]["deletionTimestamp"] = json!(at(1));
    let mut set = rs(1);
    let mut pods = vec![orphan, stray, foreign, dying_orphan];
    let plan = replicaset::reconcile(&set, &pods, now()).unwrap();
    assert_eq!(plan.adopt.len(), 1);
    assert_eq!(plan.adopt[0]["metadata"]["name"], "orphan");
    assert_eq!(
        plan.adopt[0]["metadata"]["ownerReferences"][0]["uid"],
        "rs-uid"
    );
    assert_eq!(plan.release.len(), 1);
    assert_eq!(plan.release[0]["metadata"]["ownerReferences"], json!([]));
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    apply(&mut set, &mut pods, &plan);
    assert_eq!(settle(&mut set, &mut pods), 0);
}

#[test]
fn status_counts_and_min_ready_seconds() {
    let mut set = rs(3);
    set["spec"]["minReadySeconds"] = json!(30);
    let mut partial = pod("partial", "n3", "Running", Some(10), 900);
    partial["metadata"]["labels"] = json!({"app": "web"});
    let mut pods = vec![
        pod("long-ready", "n1", "Running", Some(600), 900),
        pod("just-ready", "n2", "Running", Some(10), 900),
        partial,
        {
            let mut p = pod("done", "n4", "Succeeded", None, 900);
            p["status"]["phase"] = json!("Succeeded");
            p
        },
    ];
    let plan = replicaset::reconcile(&set, &pods, now()).unwrap();
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(
        plan.status,
        Some(
            json!({"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 3,
                    "availableReplicas": 1, "observedGeneration": 2})
        )
    );
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(30)));
    apply(&mut set, &mut pods, &plan);
    let again = replicaset::reconcile(&set, &pods, now()).unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn failure_condition_is_added_then_cleared_by_a_clean_sync() {
    let mut set = rs(0);
    let status = json!({"replicas": 0, "observedGeneration": 2});
    let failed = replicaset::with_failure(&status, "FailedCreate", "quota", now());
    assert_eq!(failed["conditions"][0]["reason"], "FailedCreate");
    set["status"] = failed;
    let plan = replicaset::reconcile(&set, &[] as &[Value], now()).unwrap();
    assert_eq!(plan.status, Some(status));
}

#[test]
fn deleting_replicaset_neither_creates_nor_adopts() {
    let mut set = rs(3);
    set["metadata"]["deletionTimestamp"] = json!(at(5));
    let mut orphan = pod("orphan", "n1", "Running", Some(600), 900);
    orphan["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    let plan = replicaset::reconcile(&set, &[orphan], now()).unwrap();
    assert!(plan.create.is_empty() && plan.adopt.is_empty());
}

#[test]
fn settled_replicaset_writes_nothing() {
    let mut set = rs(2);
    let mut pods = vec![
        pod("a", "n1", "Running", Some(600), 900),
        pod("b", "n2", "Running", Some(600), 900),
        pod("c", "n3", "Running", Some(600), 900),
    ];
    // The deletion with a status for three pods, then the status for two, then nothing.
    assert_eq!(settle(&mut set, &mut pods), 2);
    assert_eq!(pods.len(), 2);
    assert_eq!(set["status"]["replicas"], 2);
}
