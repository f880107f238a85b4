//! StatefulSet core scenarios: build the state, reconcile, assert the plan, apply it as the API
//! server and kubelet would, and check that the settled state reconciles to an empty plan.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use controllers::event::Event;
use controllers::statefulset::{self, Plan};
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

fn sts(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "sts-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "serviceName": "web-svc",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "c", "image": "web:1",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "scratch", "emptyDir": {}}]
                }
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            }],
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}
        }
    })
}

struct World {
    set: Value,
    pods: Vec<Value>,
    claims: Vec<Value>,
    revisions: Vec<Value>,
    serial: u64,
    /// Whether created pods come up running and ready.
    ready: bool,
}

impl World {
    fn new(set: Value) -> World {
        World {
            set,
            pods: vec![],
            claims: vec![],
            revisions: vec![],
            serial: 0,
            ready: true,
        }
    }

    fn reconcile(&self) -> Plan {
        statefulset::reconcile(&self.set, &self.pods, &self.claims, &self.revisions, now()).unwrap()
    }

    fn apply(&mut self, plan: &Plan) {
        self.serial += 1;
        let replace = |list: &mut Vec<Value>, o: &Value| {
            let i = list
                .iter()
                .position(|q| q["metadata"]["name"] == o["metadata"]["name"])
                .unwrap();
            list[i] = o.clone();
        };
        for r in &plan.update_revisions {
            replace(&mut self.revisions, r);
        }
        if let Some(r) = &plan.create_revision {
            let mut r = r.clone();
            r["metadata"]["creationTimestamp"] = json!(at(20_000 - self.serial));
            self.revisions.push(r);
        }
        for p in plan.adopt.iter().chain(&plan.release).chain(&plan.update) {
            replace(&mut self.pods, p);
        }
        for c in &plan.create_claims {
            let mut c = c.clone();
            c["metadata"]["uid"] =
                json!(format!("uid-{}", c["metadata"]["name"].as_str().unwrap()));
            self.claims.push(c);
        }
        for c in &plan.update_claims {
            replace(&mut self.claims, c);
        }
        self.pods.retain(|p| {
            !plan
                .delete
                .iter()
                .any(|d| p["metadata"]["name"] == json!(d))
        });
        for p in &plan.create {
            let mut p = p.clone();
            let name = p["metadata"]["name"].as_str().unwrap().to_owned();
            p["metadata"]["uid"] = json!(format!("uid-{name}-{}", self.serial));
            p["metadata"]["creationTimestamp"] = json!(at(10_000 - self.serial));
            p["status"] = if self.ready {
                json!({"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": at(3600)}]})
            } else {
                json!({"phase": "Pending"})
            };
            self.pods.push(p);
        }
        self.revisions.retain(|r| {
            !plan
                .delete_revisions
                .iter()
                .any(|d| r["metadata"]["name"] == json!(d))
        });
        if let Some(s) = &plan.status {
            self.set["status"] = s.clone();
        }
    }

    fn settle(&mut self) -> usize {
        for round in 0..30 {
            let plan = self.reconcile();
            if plan.is_empty() {
                return round;
            }
            self.apply(&plan);
        }
        panic!("did not settle: {}", self.set);
    }

    fn pod_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    }

    fn images(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .pods
            .iter()
            .map(|p| {
                format!(
                    "{}={}",
                    p["metadata"]["name"].as_str().unwrap(),
                    p["spec"]["containers"][0]["image"].as_str().unwrap()
                )
            })
            .collect();
        v.sort();
        v
    }

    fn set_image(&mut self, image: &str) {
        self.set["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        let g = self.set["metadata"]["generation"].as_i64().unwrap() + 1;
        self.set["metadata"]["generation"] = json!(g);
    }
}

fn normal(reason: &'static str, message: &str) -> Event {
    Event::normal(reason, message)
}

#[test]
fn ordered_ready_creates_one_pod_at_a_time_with_its_claim() {
    let mut w = World::new(sts(3));
    let plan = w.reconcile();
    let rev = plan.create_revision.clone().unwrap();
    let rev_name = rev["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(rev_name.starts_with("web-"));
    assert_eq!(rev["revision"], json!(1));
    assert_eq!(rev["metadata"]["labels"]["app"], json!("web"));
    assert_eq!(rev["data"]["spec"]["template"]["$patch"], json!("replace"));
    assert_eq!(
        plan.create_claims,
        vec![json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-web-0", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        })]
    );
    assert_eq!(
        plan.create,
        vec![json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-0", "generateName": "web-", "namespace": "ns",
                "labels": {"app": "web", "statefulset.kubernetes.io/pod-name": "web-0",
                    "apps.kubernetes.io/pod-index": "0", "controller-revision-hash": rev_name},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                    "uid": "sts-uid", "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": {
                "containers": [{"name": "c", "image": "web:1",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
                    {"name": "scratch", "emptyDir": {}}
                ],
                "hostname": "web-0",
                "subdomain": "web-svc"
            }
        })]
    );
    assert_eq!(
        plan.events,
        vec![
            normal(
                "SuccessfulCreate",
                "create Claim data-web-0 Pod web-0 in StatefulSet web success"
            ),
            normal(
                "SuccessfulCreate",
                "create Pod web-0 in StatefulSet web successful"
            ),
        ]
    );
    assert_eq!(
        plan.status,
        Some(
            json!({"observedGeneration": 1, "replicas": 0, "currentRevision": rev_name,
            "updateRevision": rev_name, "collisionCount": 0, "availableReplicas": 0})
        )
    );
    w.apply(&plan);
    // One pod per sync, then the status catches up.
    assert_eq!(w.settle(), 3);
    assert_eq!(w.pod_names(), vec!["web-0", "web-1", "web-2"]);
    assert_eq!(w.claims.len(), 3);
    assert_eq!(
        w.set["status"],
        json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3,
            "updatedReplicas": 3, "currentRevision": rev_name, "updateRevision": rev_name,
            "collisionCount": 0, "availableReplicas": 3})
    );
}

#[test]
fn ordered_ready_waits_for_running_and_ready() {
    let mut w = World::new(sts(3));
    w.ready = false;
    let plan = w.reconcile();
    w.apply(&plan);
    // web-0 is Pending: nothing else happens until it runs ready.
    let plan = w.reconcile();
    assert!(plan.create.is_empty());
    w.apply(&plan);
    assert!(w.reconcile().is_empty());
    w.pods[0]["status"] = json!({"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": at(10)}]});
    let plan = w.reconcile();
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0]["metadata"]["name"], json!("web-1"));
}

#[test]
fn parallel_creates_and_deletes_all_at_once() {
    let mut set = sts(3);
    set["spec"]["podManagementPolicy"] = json!("Parallel");
    let mut w = World::new(set);
    w.ready = false;
    let plan = w.reconcile();
    let names: Vec<&Value> = plan.create.iter().map(|p| &p["metadata"]["name"]).collect();
    assert_eq!(names, vec!["web-0", "web-1", "web-2"]);
    assert_eq!(plan.create_claims.len(), 3);
    w.apply(&plan);
    w.settle();
    assert_eq!(w.set["status"]["replicas"], json!(3));
    assert_eq!(w.set["status"]["readyReplicas"], Value::Null);
    w.set["spec"]["replicas"] = json!(0);
    let plan = w.reconcile();
    assert_eq!(plan.delete, vec!["web-2", "web-1", "web-0"]);
    w.apply(&plan);
    w.settle();
    assert!(w.pods.is_empty());
    // Retain: the claims stay.
    assert_eq!(w.claims.len(), 3);
}

#[test]
fn ordered_scale_down_goes_from_the_highest_ordinal() {
    let mut w = World::new(sts(3));
    w.settle();
    w.set["spec"]["replicas"] = json!(1);
    let plan = w.reconcile();
    assert_eq!(plan.delete, vec!["web-2"]);
    assert_eq!(
        plan.events,
        vec![normal(
            "SuccessfulDelete",
            "delete Pod web-2 in StatefulSet web successful"
        )]
    );
    w.apply(&plan);
    let plan = w.reconcile();
    assert_eq!(plan.delete, vec!["web-1"]);
    w.apply(&plan);
    w.settle();
    assert_eq!(w.pod_names(), vec!["web-0"]);
    assert_eq!(w.set["status"]["replicas"], json!(1));
}

#[test]
fn ordered_scale_down_waits_for_terminating_pods() {
    let mut w = World::new(sts(3));
    w.settle();
    w.set["spec"]["replicas"] = json!(1);
    w.pods
        .iter_mut()
        .find(|p| p["metadata"]["name"] == "web-2")
        .unwrap()["metadata"]["deletionTimestamp"] = json!(at(5));
    let plan = w.reconcile();
    assert!(plan.delete.is_empty());
}

#[test]
fn start_ordinal_shifts_names() {
    let mut set = sts(2);
    set["spec"]["ordinals"] = json!({"start": 5});
    let mut w = World::new(set);
    w.settle();
    assert_eq!(w.pod_names(), vec!["web-5", "web-6"]);
    assert_eq!(
        w.pods[0]["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
        json!("5")
    );
    // Moving the start condemns the pods below it.
    w.set["spec"]["ordinals"] = json!({"start": 6});
    w.settle();
    assert_eq!(w.pod_names(), vec!["web-6", "web-7"]);
}

#[test]
fn rolling_update_replaces_from_the_highest_ordinal() {
    let mut w = World::new(sts(3));
    w.settle();
    let old_rev = w.set["status"]["currentRevision"].clone();
    w.set_image("web:2");
    let plan = w.reconcile();
    let new_rev = plan.create_revision.as_ref().unwrap()["metadata"]["name"].clone();
    assert_eq!(plan.create_revision.as_ref().unwrap()["revision"], json!(2));
    assert_eq!(plan.delete, vec!["web-2"]);
    let status = plan.status.clone().unwrap();
    assert_eq!(status["currentRevision"], old_rev);
    assert_eq!(status["updateRevision"], new_rev);
    assert_eq!(status["currentReplicas"], json!(2));
    w.apply(&plan);
    // web-2 comes back at the new revision.
    let plan = w.reconcile();
    assert_eq!(plan.create.len(), 1);
    assert_eq!(
        plan.create[0]["spec"]["containers"][0]["image"],
        json!("web:2")
    );
    assert_eq!(
        plan.create[0]["metadata"]["labels"]["controller-revision-hash"],
        new_rev
    );
    w.apply(&plan);
    w.settle();
    assert_eq!(
        w.images(),
        vec!["web-0=web:2", "web-1=web:2", "web-2=web:2"]
    );
    assert_eq!(w.set["status"]["currentRevision"], new_rev);
    assert_eq!(w.set["status"]["currentReplicas"], json!(3));
    assert_eq!(w.revisions.len(), 2);
}

#[test]
fn partition_keeps_lower_ordinals_at_the_current_revision() {
    let mut set = sts(3);
    set["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(2);
    let mut w = World::new(set);
    w.settle();
    let old_rev = w.set["status"]["currentRevision"].clone();
    w.set_image("web:2");
    w.settle();
    assert_eq!(
        w.images(),
        vec!["web-0=web:1", "web-1=web:1", "web-2=web:2"]
    );
    assert_eq!(w.set["status"]["currentRevision"], old_rev);
    assert_eq!(w.set["status"]["currentReplicas"], json!(2));
    assert_eq!(w.set["status"]["updatedReplicas"], json!(1));
    // A deleted pod below the partition comes back at the current revision.
    w.pods.retain(|p| p["metadata"]["name"] != "web-0");
    w.settle();
    assert_eq!(
        w.images(),
        vec!["web-0=web:1", "web-1=web:1", "web-2=web:2"]
    );
    // Lowering the partition finishes the rollout.
    w.set["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(0);
    w.settle();
    assert_eq!(
        w.images(),
        vec!["web-0=web:2", "web-1=web:2", "web-2=web:2"]
    );
    assert_ne!(w.set["status"]["currentRevision"], old_rev);
}

#[test]
fn on_delete_only_replaces_deleted_pods() {
    let mut set = sts(2);
    set["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    let mut w = World::new(set);
    w.settle();
    w.set_image("web:2");
    w.settle();
    assert_eq!(w.images(), vec!["web-0=web:1", "web-1=web:1"]);
    assert_eq!(w.set["status"]["updatedReplicas"], Value::Null);
    w.pods.retain(|p| p["metadata"]["name"] != "web-1");
    w.settle();
    assert_eq!(w.images(), vec!["web-0=web:1", "web-1=web:2"]);
    assert_eq!(w.set["status"]["updatedReplicas"], json!(1));
    assert_eq!(w.set["status"]["currentReplicas"], json!(1));
}

#[test]
fn failed_pods_are_recreated() {
    let mut w = World::new(sts(2));
    w.settle();
    w.pods[1]["status"]["phase"] = json!("Failed");
    let plan = w.reconcile();
    assert_eq!(plan.delete, vec!["web-1"]);
    assert_eq!(plan.create.len(), 1);
    assert_eq!(
        plan.events,
        vec![
            Event::warning(
                "RecreatingFailedPod",
                "StatefulSet ns/web is recreating failed Pod web-1"
            ),
            normal(
                "SuccessfulDelete",
                "delete Pod web-1 in StatefulSet web successful"
            ),
            normal(
                "SuccessfulCreate",
                "create Pod web-1 in StatefulSet web successful"
            ),
        ]
    );
    w.apply(&plan);
    w.settle();
    assert_eq!(w.pods.len(), 2);
}

#[test]
fn retention_policy_sets_claim_owners() {
    let mut set = sts(2);
    set["spec"]["persistentVolumeClaimRetentionPolicy"] =
        json!({"whenDeleted": "Delete", "whenScaled": "Delete"});
    let mut w = World::new(set);
    w.settle();
    let set_ref = json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
        "uid": "sts-uid", "controller": true, "blockOwnerDeletion": true}]);
    for c in &w.claims {
        assert_eq!(c["metadata"]["ownerReferences"], set_ref);
    }
    // Scaling down hands web-1's claim to the pod, so it goes with it.
    w.set["spec"]["replicas"] = json!(1);
    let plan = w.reconcile();
    assert_eq!(plan.delete, vec!["web-1"]);
    let uid = w
        .pods
        .iter()
        .find(|p| p["metadata"]["name"] == "web-1")
        .unwrap()["metadata"]["uid"]
        .clone();
    assert_eq!(
        plan.update_claims,
        vec![{
            let mut c = w.claims[1].clone();
            c["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Pod",
                "name": "web-1", "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
            c
        }]
    );
    w.apply(&plan);
    w.settle();
    // Scaling back up with the claim still owned by the old pod waits (the garbage collector
    // removes it).
    w.set["spec"]["replicas"] = json!(2);
    let plan = w.reconcile();
    assert!(plan.create.is_empty());
    w.claims.retain(|c| c["metadata"]["name"] != "data-web-1");
    w.settle();
    assert_eq!(w.pod_names(), vec!["web-0", "web-1"]);
    assert_eq!(w.claims[1]["metadata"]["ownerReferences"], set_ref);
}

#[test]
fn claims_being_deleted_block_creation() {
    let mut w = World::new(sts(1));
    w.claims
        .push(json!({"metadata": {"name": "data-web-0", "namespace": "ns",
        "deletionTimestamp": at(3)}}));
    let plan = w.reconcile();
    assert!(plan.create.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::ZERO));
    assert_eq!(plan.events[0].reason, "FailedCreate");
}

#[test]
fn min_ready_seconds_gates_ordered_progress() {
    let mut set = sts(2);
    set["spec"]["minReadySeconds"] = json!(7200);
    let mut w = World::new(set);
    let plan = w.reconcile();
    w.apply(&plan);
    // web-0 has been ready for an hour of the two required.
    let plan = w.reconcile();
    assert!(plan.create.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(7200)));
    w.apply(&plan);
    assert!(w.reconcile().is_empty());
    assert_eq!(w.set["status"]["readyReplicas"], json!(1));
    assert_eq!(w.set["status"]["availableReplicas"], json!(0));
}

#[test]
fn rollback_renumbers_the_old_revision_and_history_is_truncated() {
    let mut set = sts(1);
    set["spec"]["revisionHistoryLimit"] = json!(1);
    let mut w = World::new(set);
    w.settle();
    let first = w.revisions[0]["metadata"]["name"].clone();
    w.set_image("web:2");
    w.settle();
    w.set_image("web:3");
    w.settle();
    // Three revisions, two of them not live: the oldest goes.
    assert_eq!(w.revisions.len(), 2);
    assert!(!w.revisions.iter().any(|r| r["metadata"]["name"] == first));
    let second = w
        .revisions
        .iter()
        .find(|r| r["revision"] == json!(2))
        .unwrap()["metadata"]["name"]
        .clone();
    w.set_image("web:2");
    let plan = w.reconcile();
    assert!(plan.create_revision.is_none());
    assert_eq!(plan.update_revisions.len(), 1);
    assert_eq!(plan.update_revisions[0]["metadata"]["name"], second);
    assert_eq!(plan.update_revisions[0]["revision"], json!(4));
    w.apply(&plan);
    w.settle();
    assert_eq!(w.images(), vec!["web-0=web:2"]);
    assert_eq!(w.set["status"]["currentRevision"], second);
}

#[test]
fn orphans_are_adopted_and_identity_is_repaired() {
    let mut w = World::new(sts(1));
    w.settle();
    let mut pod = w.pods[0].clone();
    pod["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    pod["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("statefulset.kubernetes.io/pod-name");
    w.pods[0] = pod;
    let plan = w.reconcile();
    assert_eq!(plan.adopt.len(), 1);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(
        plan.update[0]["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        json!("web-0")
    );
    assert_eq!(
        plan.events,
        vec![normal(
            "SuccessfulUpdate",
            "update Pod web-0 in StatefulSet web successful"
        )]
    );
    w.apply(&plan);
    // The adopted copy and the repaired copy are written in turn; the next sync settles.
    w.settle();
    assert_eq!(
        w.pods[0]["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        json!("web-0")
    );
}

#[test]
fn revision_name_collisions_probe_the_next_name() {
    let mut w = World::new(sts(1));
    let plan = w.reconcile();
    let mut squatter = plan.create_revision.clone().unwrap();
    squatter["data"] = json!({"spec": {"template": {"$patch": "replace"}}});
    squatter["metadata"]["ownerReferences"] = json!([{"uid": "someone", "controller": true}]);
    squatter["metadata"]["labels"] = json!({"other": "app"});
    w.revisions.push(squatter.clone());
    let plan = w.reconcile();
    let created = plan.create_revision.clone().unwrap();
    assert_ne!(created["metadata"]["name"], squatter["metadata"]["name"]);
    assert_eq!(plan.status.as_ref().unwrap()["collisionCount"], json!(1));
    w.apply(&plan);
    w.settle();
    assert_eq!(w.set["status"]["collisionCount"], json!(1));
    assert_eq!(
        w.set["status"]["updateRevision"],
        created["metadata"]["name"]
    );
}

#[test]
fn deleting_sets_only_report_status() {
    let mut w = World::new(sts(2));
    w.settle();
    w.set["metadata"]["deletionTimestamp"] = json!(at(1));
    w.set["spec"]["replicas"] = json!(0);
    let plan = w.reconcile();
    assert!(plan.delete.is_empty() && plan.create.is_empty());
    assert!(plan.status.is_none());
}

#[test]
fn pods_of_other_sets_and_unrelated_names_are_left_alone() {
    let mut w = World::new(sts(1));
    // Same labels but another set's name, and a name without an ordinal: not members.
    for name in ["webby-0", "web-x"] {
        w.pods.push(
            json!({"metadata": {"name": name, "namespace": "ns", "uid": name,
            "labels": {"app": "web"}}, "spec": {}, "status": {"phase": "Running"}}),
        );
    }
    let plan = w.reconcile();
    assert!(plan.adopt.is_empty());
    w.apply(&plan);
    w.settle();
    assert_eq!(w.pod_names(), vec!["web-0", "web-x", "webby-0"]);
}

#[test]
fn max_unavailable_replaces_several_pods_at_once() {
    let mut set = sts(4);
    set["spec"]["podManagementPolicy"] = json!("Parallel");
    set["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = json!("50%");
    let mut w = World::new(set);
    w.settle();
    w.set_image("web:2");
    let plan = w.reconcile();
    assert_eq!(plan.delete, vec!["web-3", "web-2"]);
    assert_eq!(plan.status.as_ref().unwrap()["currentReplicas"], json!(2));
    w.apply(&plan);
    // The replacements are not ready yet: two unavailable, nothing more goes.
    w.ready = false;
    let plan = w.reconcile();
    assert_eq!(plan.create.len(), 2);
    assert!(plan.delete.is_empty());
    w.apply(&plan);
    let plan = w.reconcile();
    assert!(plan.delete.is_empty());
    w.apply(&plan);
    w.ready = true;
    for p in &mut w.pods {
        p["status"] = json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": at(60)}]});
    }
    w.settle();
    assert_eq!(
        w.images(),
        vec!["web-0=web:2", "web-1=web:2", "web-2=web:2", "web-3=web:2"]
    );
}
