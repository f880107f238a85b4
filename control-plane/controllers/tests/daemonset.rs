//! DaemonSet core scenarios: build the state, reconcile, assert the plan, apply it as the API
//! server and scheduler would, and check that the settled state reconciles to an empty plan.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use controllers::daemonset::{self, Plan};
use controllers::event::Event;
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

fn ds() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "ns", "uid": "ds-uid", "generation": 1},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "agent:1"}]}
            },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "revisionHistoryLimit": 10
        }
    })
}

fn node(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {}})
}

fn tainted(name: &str, key: &str, effect: &str) -> Value {
    let mut n = node(name);
    n["spec"]["taints"] = json!([{"key": key, "effect": effect}]);
    n
}

/// The world one DaemonSet sees.
struct World {
    ds: Value,
    nodes: Vec<Value>,
    pods: Vec<Value>,
    revisions: Vec<Value>,
    serial: usize,
    /// Whether created pods come up ready at once.
    ready: bool,
}

impl World {
    fn new(ds: Value, nodes: Vec<Value>) -> World {
        World {
            ds,
            nodes,
            pods: vec![],
            revisions: vec![],
            serial: 0,
            ready: true,
        }
    }

    fn reconcile(&self) -> Plan {
        daemonset::reconcile(&self.ds, &self.nodes, &self.pods, &self.revisions, now()).unwrap()
    }

    fn apply(&mut self, plan: &Plan) {
        for r in &plan.update_revisions {
            let i = self
                .revisions
                .iter()
                .position(|q| q["metadata"]["name"] == r["metadata"]["name"])
                .unwrap();
            self.revisions[i] = r.clone();
        }
        if let Some(r) = &plan.create_revision {
            let mut r = r.clone();
            r["metadata"]["creationTimestamp"] = json!(at(10_000 - self.serial as u64));
            self.serial += 1;
            self.revisions.push(r);
        }
        self.revisions.retain(|r| {
            !plan
                .delete_revisions
                .iter()
                .any(|d| r["metadata"]["name"] == json!(d))
        });
        for p in plan.adopt.iter().chain(&plan.release).chain(&plan.relabel) {
            let i = self
                .pods
                .iter()
                .position(|q| q["metadata"]["name"] == p["metadata"]["name"])
                .unwrap();
            self.pods[i] = p.clone();
        }
        for p in &plan.create {
            let mut p = p.clone();
            let name = format!("agent-{}", self.serial);
            self.serial += 1;
            p["metadata"]["name"] = json!(name);
            p["metadata"]["uid"] = json!(format!("uid-{name}"));
            p["metadata"]["creationTimestamp"] = json!(at(8000 - self.serial as u64));
            let node = p["spec"]["affinity"]["nodeAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
                ["matchFields"][0]["values"][0]
                .clone();
            p["spec"]["nodeName"] = node;
            p["status"] = if self.ready {
                json!({"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": at(3600)}]})
            } else {
                json!({"phase": "Pending"})
            };
            self.pods.push(p);
        }
        self.pods.retain(|p| {
            !plan
                .delete
                .iter()
                .any(|d| p["metadata"]["name"] == json!(d))
        });
        if let Some(s) = &plan.status {
            self.ds["status"] = s.clone();
        }
    }

    /// Applies plans until one is empty; returns how many non-empty plans there were.
    fn settle(&mut self) -> usize {
        for round in 0..20 {
            let plan = self.reconcile();
            if plan.is_empty() {
                return round;
            }
            self.apply(&plan);
        }
        panic!("did not settle: {}", self.ds);
    }

    fn pods_on(&self, node: &str) -> Vec<&Value> {
        self.pods
            .iter()
            .filter(|p| p["spec"]["nodeName"] == json!(node))
            .collect()
    }
}

fn names(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn creates_one_pinned_pod_per_eligible_node() {
    let mut d = ds();
    d["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
    let mut n1 = node("n1");
    n1["metadata"]["labels"]["disk"] = json!("ssd");
    let mut n2 = tainted("n2", "dedicated", "NoSchedule");
    n2["metadata"]["labels"]["disk"] = json!("ssd");
    let n3 = node("n3");
    let mut w = World::new(d, vec![n1, n2, n3]);
    let plan = w.reconcile();
    let rev = plan.create_revision.clone().unwrap();
    let hash = rev["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rev["metadata"]["name"], json!(format!("agent-{hash}")));
    assert_eq!(rev["revision"], json!(1));
    assert_eq!(
        rev["data"],
        json!({"spec": {"template": {
            "$patch": "replace",
            "metadata": {"labels": {"app": "agent"}},
            "spec": {"containers": [{"name": "c", "image": "agent:1"}], "nodeSelector": {"disk": "ssd"}}
        }}})
    );
    assert_eq!(plan.create.len(), 1);
    assert_eq!(
        plan.create[0],
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "generateName": "agent-", "namespace": "ns",
                "labels": {"app": "agent", "controller-revision-hash": hash, "pod-template-generation": "1"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                    "uid": "ds-uid", "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": {
                "containers": [{"name": "c", "image": "agent:1"}],
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
                    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}
                ],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}
            }
        })
    );
    assert_eq!(
        plan.status,
        Some(json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
            "desiredNumberScheduled": 1, "numberReady": 0, "observedGeneration": 1,
            "numberUnavailable": 1}))
    );
    w.apply(&plan);
    assert_eq!(w.settle(), 1);
    assert_eq!(
        w.ds["status"],
        json!({"currentNumberScheduled": 1, "numberMisscheduled": 0,
            "desiredNumberScheduled": 1, "numberReady": 1, "observedGeneration": 1,
            "updatedNumberScheduled": 1, "numberAvailable": 1})
    );
}

#[test]
fn daemon_tolerations_admit_unschedulable_and_pressure_nodes() {
    let nodes = vec![
        tainted("cordoned", "node.kubernetes.io/unschedulable", "NoSchedule"),
        tainted("full", "node.kubernetes.io/disk-pressure", "NoSchedule"),
        tainted(
            "netless",
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ),
        tainted("gpu", "gpu", "NoSchedule"),
    ];
    let mut w = World::new(ds(), nodes.clone());
    w.settle();
    let mut on: Vec<&str> = w
        .pods
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap())
        .collect();
    on.sort();
    assert_eq!(on, vec!["cordoned", "full"]);

    // Host-network pods also tolerate network-unavailable; a user toleration admits gpu.
    let mut d = ds();
    d["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
    d["spec"]["template"]["spec"]["tolerations"] =
        json!([{"key": "gpu", "operator": "Equal", "value": "", "effect": "NoSchedule"}]);
    let mut w = World::new(d, nodes);
    w.settle();
    assert_eq!(w.pods.len(), 4);
    assert_eq!(w.ds["status"]["desiredNumberScheduled"], json!(4));
}

#[test]
fn taints_added_later_keep_or_evict_pods() {
    let mut w = World::new(ds(), vec![node("n1"), node("n2")]);
    w.settle();
    // A NoSchedule taint keeps the running pod (counted as misscheduled), NoExecute evicts.
    w.nodes = vec![
        tainted("n1", "maintenance", "NoSchedule"),
        tainted("n2", "maintenance", "NoExecute"),
    ];
    let plan = w.reconcile();
    assert!(plan.create.is_empty());
    let evicted = w.pods_on("n2")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(plan.delete, vec![evicted.clone()]);
    assert_eq!(
        plan.events,
        vec![Event::normal(
            "SuccessfulDelete",
            format!("Deleted pod: {evicted}")
        )]
    );
    w.apply(&plan);
    w.settle();
    assert_eq!(w.pods.len(), 1);
    assert_eq!(w.ds["status"]["numberMisscheduled"], json!(2 - 1));
    assert_eq!(w.ds["status"]["desiredNumberScheduled"], json!(0));
}

#[test]
fn node_affinity_terms_select_nodes() {
    let mut d = ds();
    d["spec"]["template"]["spec"]["affinity"] = json!({"nodeAffinity": {
    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]}
    ]}}});
    let mut a = node("in-a");
    a["metadata"]["labels"]["zone"] = json!("a");
    let mut b = node("in-b");
    b["metadata"]["labels"]["zone"] = json!("b");
    let mut w = World::new(d, vec![a, b, node("special")]);
    let plan = w.reconcile();
    let pinned: Vec<&Value> = plan
        .create
        .iter()
        .map(|p| {
            &p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]
        })
        .collect();
    assert_eq!(pinned, vec![&json!("in-a"), &json!("special")]);
    // The user's terms are replaced by the pin, as upstream does.
    assert_eq!(
        plan.create[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    w.apply(&plan);
    assert_eq!(w.settle(), 1);
}

fn bump_image(w: &mut World, image: &str) {
    w.ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    let g = w.ds["metadata"]["generation"].as_i64().unwrap() + 1;
    w.ds["metadata"]["generation"] = json!(g);
}

fn images(w: &World) -> Vec<String> {
    let mut v: Vec<String> = w
        .pods
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p["spec"]["nodeName"].as_str().unwrap(),
                p["spec"]["containers"][0]["image"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn rolling_update_replaces_max_unavailable_pods_at_a_time() {
    let mut w = World::new(ds(), vec![node("n1"), node("n2"), node("n3")]);
    w.settle();
    let first_rev = w.revisions[0]["metadata"]["name"].clone();
    bump_image(&mut w, "agent:2");
    let plan = w.reconcile();
    let rev = plan.create_revision.clone().unwrap();
    assert_eq!(rev["revision"], json!(2));
    // manage has nothing to do, so the rollout deletes one old pod (nodes in name order).
    let old_n1 = w.pods_on("n1")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(plan.delete, vec![old_n1]);
    assert!(plan.create.is_empty());
    w.apply(&plan);
    // The next sync creates the replacement and nothing else.
    let plan = w.reconcile();
    assert_eq!(plan.create.len(), 1);
    assert!(plan.delete.is_empty());
    w.apply(&plan);
    w.settle();
    assert_eq!(images(&w), vec!["n1=agent:2", "n2=agent:2", "n3=agent:2"]);
    assert_eq!(w.revisions.len(), 2);
    assert!(
        w.revisions
            .iter()
            .any(|r| r["metadata"]["name"] == first_rev)
    );
    assert_eq!(w.ds["status"]["updatedNumberScheduled"], json!(3));
    assert_eq!(w.ds["status"]["observedGeneration"], json!(2));
}

#[test]
fn rolling_update_waits_for_unavailable_new_pods() {
    let mut d = ds();
    d["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = json!("50%");
    let mut w = World::new(d, vec![node("n1"), node("n2"), node("n3"), node("n4")]);
    w.settle();
    bump_image(&mut w, "agent:2");
    w.ready = false;
    let plan = w.reconcile();
    assert_eq!(plan.delete.len(), 2, "50% of 4 nodes");
    w.apply(&plan);
    let plan = w.reconcile();
    assert_eq!(plan.create.len(), 2);
    w.apply(&plan);
    // The two new pods are not available: nothing more may go.
    let plan = w.reconcile();
    assert!(plan.delete.is_empty() && plan.create.is_empty());
    w.apply(&plan);
    assert!(w.reconcile().is_empty());
    assert_eq!(w.ds["status"]["numberUnavailable"], json!(2));
}

#[test]
fn surge_creates_new_pod_before_deleting_old() {
    let mut d = ds();
    d["spec"]["updateStrategy"]["rollingUpdate"] = json!({"maxUnavailable": 0, "maxSurge": 1});
    let mut w = World::new(d, vec![node("n1"), node("n2")]);
    w.settle();
    bump_image(&mut w, "agent:2");
    w.ready = false;
    let plan = w.reconcile();
    assert!(plan.delete.is_empty());
    assert_eq!(plan.create.len(), 1);
    assert_eq!(
        plan.create[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0],
        json!("n1")
    );
    w.apply(&plan);
    // Two pods on n1; the new one is not ready, so both stay and no more surge happens.
    let plan = w.reconcile();
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    w.apply(&plan);
    // It becomes available: the old pod goes.
    for p in &mut w.pods {
        p["status"] = json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": at(60)}]});
    }
    w.ready = true;
    let plan = w.reconcile();
    assert_eq!(plan.delete.len(), 1);
    w.apply(&plan);
    w.settle();
    assert_eq!(images(&w), vec!["n1=agent:2", "n2=agent:2"]);
}

#[test]
fn on_delete_waits_for_users() {
    let mut d = ds();
    d["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    let mut w = World::new(d, vec![node("n1"), node("n2")]);
    w.settle();
    bump_image(&mut w, "agent:2");
    w.settle();
    assert_eq!(images(&w), vec!["n1=agent:1", "n2=agent:1"]);
    assert_eq!(w.ds["status"]["updatedNumberScheduled"], Value::Null);
    // A user deletes one: it comes back at the new template.
    w.pods.retain(|p| p["spec"]["nodeName"] != json!("n2"));
    w.settle();
    assert_eq!(images(&w), vec!["n1=agent:1", "n2=agent:2"]);
    assert_eq!(w.ds["status"]["updatedNumberScheduled"], json!(1));
}

#[test]
fn failed_and_duplicate_pods_are_deleted() {
    let mut w = World::new(ds(), vec![node("n1"), node("n2")]);
    w.settle();
    // A failed pod on n1, and a second (newer) pod on n2.
    w.pods[0]["status"]["phase"] = json!("Failed");
    let failed = names(&w.pods)[0].clone();
    let mut dup = w.pods[1].clone();
    dup["metadata"]["name"] = json!("agent-dup");
    dup["metadata"]["creationTimestamp"] = json!(at(10));
    w.pods.push(dup);
    let plan = w.reconcile();
    assert_eq!(plan.delete, vec![failed.clone(), "agent-dup".to_owned()]);
    assert_eq!(
        plan.events[0],
        Event::warning(
            "FailedDaemonPod",
            format!("Found failed daemon pod ns/{failed} on node n1, will try to kill it"),
        )
    );
    assert!(plan.create.is_empty(), "the replacement comes next sync");
    w.apply(&plan);
    let plan = w.reconcile();
    assert_eq!(plan.create.len(), 1);
    w.apply(&plan);
    w.settle();
    assert_eq!(w.pods.len(), 2);
}

#[test]
fn history_is_truncated_but_live_revisions_stay() {
    let mut d = ds();
    d["spec"]["revisionHistoryLimit"] = json!(1);
    d["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    let mut w = World::new(d, vec![node("n1")]);
    w.settle();
    let r1 = w.revisions[0]["metadata"]["name"].clone();
    bump_image(&mut w, "agent:2");
    w.settle();
    bump_image(&mut w, "agent:3");
    w.settle();
    // Two old revisions, one of them live (the pod still runs agent:1): the dead one goes.
    assert_eq!(w.revisions.len(), 2);
    assert!(w.revisions.iter().any(|r| r["metadata"]["name"] == r1));
    // Going back to agent:1 renumbers the old revision instead of making a new one.
    w.ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:1");
    let plan = w.reconcile();
    assert!(plan.create_revision.is_none());
    assert_eq!(plan.update_revisions.len(), 1);
    assert_eq!(plan.update_revisions[0]["metadata"]["name"], r1);
    assert_eq!(plan.update_revisions[0]["revision"], json!(4));
    w.apply(&plan);
    assert_eq!(w.settle(), 0);
}

#[test]
fn revision_name_collision_bumps_collision_count() {
    let mut w = World::new(ds(), vec![node("n1")]);
    let plan = w.reconcile();
    let mut squatter = plan.create_revision.clone().unwrap();
    squatter["data"] = json!({"spec": {"template": {"$patch": "replace"}}});
    squatter["metadata"]["ownerReferences"] = json!([{"uid": "other", "controller": true}]);
    w.revisions.push(squatter);
    let plan = w.reconcile();
    assert_eq!(plan.status, Some(json!({"collisionCount": 1})));
    assert_eq!(plan.requeue_after, Some(Duration::ZERO));
    assert!(plan.create.is_empty() && plan.create_revision.is_none());
    w.apply(&plan);
    let plan = w.reconcile();
    let name = plan.create_revision.as_ref().unwrap()["metadata"]["name"].clone();
    assert_ne!(name, w.revisions[0]["metadata"]["name"]);
    w.apply(&plan);
    w.settle();
    assert_eq!(w.ds["status"]["collisionCount"], json!(1));
    assert_eq!(w.pods.len(), 1);
}

#[test]
fn orphans_are_adopted_and_selecting_all_is_refused() {
    let mut w = World::new(ds(), vec![node("n1")]);
    w.pods.push(json!({
        "metadata": {"name": "stray", "namespace": "ns", "uid": "u", "labels": {"app": "agent"},
            "creationTimestamp": at(500)},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"}
    }));
    let plan = w.reconcile();
    assert_eq!(names(&plan.adopt), vec!["stray"]);
    assert!(plan.create.is_empty());
    w.apply(&plan);
    w.settle();
    assert_eq!(w.pods.len(), 1);
    assert_eq!(w.ds["status"]["currentNumberScheduled"], json!(1));

    let mut all = ds();
    all["spec"]["selector"] = json!({});
    let plan = daemonset::reconcile(&all, &[node("n1")], &[], &[], now()).unwrap();
    assert!(plan.is_empty());
    assert_eq!(plan.events[0].reason, "SelectingAll");
}

#[test]
fn min_ready_seconds_requeues_until_available() {
    let mut d = ds();
    d["spec"]["minReadySeconds"] = json!(7200);
    let mut w = World::new(d, vec![node("n1")]);
    w.settle();
    assert_eq!(w.ds["status"]["numberReady"], json!(1));
    assert_eq!(w.ds["status"]["numberAvailable"], Value::Null);
    assert_eq!(w.reconcile().requeue_after, Some(Duration::from_secs(7200)));
}

#[test]
fn node_eligibility_table() {
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = ds();
        f(&mut d);
        d
    };
    let labelled = |name: &str, labels: Value| {
        let mut n = node(name);
        n["metadata"]["labels"] = labels;
        n
    };
    // (case, DaemonSet, node, (shouldRun, shouldContinueRunning))
    let cases: Vec<(&str, Value, Value, (bool, bool))> = vec![
        ("plain node", ds(), node("n"), (true, true)),
        (
            "template nodeName elsewhere",
            with(&|d| d["spec"]["template"]["spec"]["nodeName"] = json!("other")),
            node("n"),
            (false, false),
        ),
        (
            "nodeSelector mismatch",
            with(&|d| d["spec"]["template"]["spec"]["nodeSelector"] = json!({"a": "b"})),
            node("n"),
            (false, false),
        ),
        (
            "NotIn and Gt expressions",
            with(&|d| {
                d["spec"]["template"]["spec"]["affinity"] = json!({"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [
                            {"key": "zone", "operator": "NotIn", "values": ["b"]},
                            {"key": "cores", "operator": "Gt", "values": ["4"]}]}]}}})
            }),
            labelled("n", json!({"zone": "a", "cores": "8"})),
            (true, true),
        ),
        (
            "empty term matches nothing",
            with(&|d| {
                d["spec"]["template"]["spec"]["affinity"] = json!({"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}}})
            }),
            node("n"),
            (false, false),
        ),
        (
            "untolerated NoSchedule keeps running pods",
            ds(),
            tainted("n", "k", "NoSchedule"),
            (false, true),
        ),
        (
            "untolerated NoExecute evicts",
            ds(),
            tainted("n", "k", "NoExecute"),
            (false, false),
        ),
        (
            "PreferNoSchedule is ignored",
            ds(),
            tainted("n", "k", "PreferNoSchedule"),
            (true, true),
        ),
        (
            "not-ready NoExecute is tolerated by default",
            ds(),
            tainted("n", "node.kubernetes.io/not-ready", "NoExecute"),
            (true, true),
        ),
        (
            "wildcard toleration",
            with(&|d| {
                d["spec"]["template"]["spec"]["tolerations"] = json!([{"operator": "Exists"}])
            }),
            tainted("n", "anything", "NoExecute"),
            (true, true),
        ),
        (
            "Equal toleration with another value",
            with(&|d| {
                d["spec"]["template"]["spec"]["tolerations"] =
                    json!([{"key": "k", "operator": "Equal", "value": "x", "effect": "NoSchedule"}])
            }),
            {
                let mut n = tainted("n", "k", "NoSchedule");
                n["spec"]["taints"][0]["value"] = json!("y");
                n
            },
            (false, true),
        ),
    ];
    for (case, d, n, want) in cases {
        assert_eq!(daemonset::should_run(&d, &n), want, "{case}");
    }
}

#[test]
fn unscheduled_pods_for_vanished_nodes_are_deleted() {
    let mut w = World::new(ds(), vec![node("n1"), node("n2")]);
    w.settle();
    // n2 goes away; its pod had not been scheduled yet.
    let i = w
        .pods
        .iter()
        .position(|p| p["spec"]["nodeName"] == json!("n2"))
        .unwrap();
    w.pods[i]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("nodeName");
    let gone = w.pods[i]["metadata"]["name"].as_str().unwrap().to_owned();
    w.nodes.pop();
    let plan = w.reconcile();
    assert_eq!(plan.delete, vec![gone]);
    w.apply(&plan);
    w.settle();
    assert_eq!(w.pods.len(), 1);
}

#[test]
fn revisions_get_hash_labels_and_duplicates_are_folded() {
    let mut w = World::new(ds(), vec![node("n1")]);
    w.settle();
    let cur = w.revisions[0].clone();
    let hash = cur["metadata"]["labels"]["controller-revision-hash"].clone();
    // An older, unlabelled copy of the same template (as an earlier controller left it).
    let mut dup = cur.clone();
    dup["metadata"]["name"] = json!("agent-legacy");
    dup["metadata"]["labels"] = json!({"app": "agent"});
    dup["revision"] = json!(0);
    w.revisions.push(dup);
    let plan = w.reconcile();
    assert_eq!(plan.update_revisions.len(), 1);
    assert_eq!(
        plan.update_revisions[0]["metadata"]["labels"]["controller-revision-hash"],
        json!("agent-legacy")
    );
    assert_eq!(plan.delete_revisions, vec!["agent-legacy".to_owned()]);
    assert!(
        plan.relabel.is_empty(),
        "the pod already carries the survivor's hash"
    );
    w.apply(&plan);
    assert_eq!(w.settle(), 0);
    assert_eq!(w.revisions.len(), 1);
    assert_eq!(
        w.pods[0]["metadata"]["labels"]["controller-revision-hash"],
        hash
    );
}

#[test]
fn deleting_daemonsets_write_nothing() {
    let mut d = ds();
    d["metadata"]["deletionTimestamp"] = json!(at(1));
    let plan = daemonset::reconcile(&d, &[node("n1")], &[], &[], now()).unwrap();
    assert!(plan.is_empty());
    assert!(plan.events.is_empty());
}
