//! Deployment core scenarios, driven through a small simulated cluster: the Deployment's plan is
//! applied as the API server would, and the ReplicaSet controller is stood in for by making each
//! ReplicaSet report its pods (available or not) before the next sync.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use controllers::deployment::{
    self, DESIRED_REPLICAS, MAX_REPLICAS, POD_TEMPLATE_HASH, Plan, REVISION, REVISION_HISTORY,
    compute_hash, equal_ignore_hash, resolve_fenceposts,
};
use serde_json::{Value, json};

/// 2027-01-15T00:00:00Z.
const T0: u64 = 1_799_971_200;

struct World {
    d: Value,
    rss: Vec<Value>,
    pods: Vec<Value>,
    now: u64,
    created: u64,
}

fn deploy(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            },
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        }
    })
}

impl World {
    fn new(d: Value) -> World {
        World {
            d,
            rss: vec![],
            pods: vec![],
            now: T0,
            created: 0,
        }
    }

    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.now)
    }

    fn plan(&self) -> Plan {
        deployment::reconcile(&self.d, &self.rss, &self.pods, self.now()).unwrap()
    }

    fn apply(&mut self, plan: &Plan) {
        for rs in plan.adopt.iter().chain(&plan.release).chain(&plan.update) {
            let i = self
                .rss
                .iter()
                .position(|r| r["metadata"]["name"] == rs["metadata"]["name"]);
            let i = i.expect("updates name a stored ReplicaSet");
            let mut rs = rs.clone();
            if rs["spec"] != self.rss[i]["spec"] {
                rs["metadata"]["generation"] =
                    json!(rs["metadata"]["generation"].as_i64().unwrap() + 1);
            }
            self.rss[i] = rs;
        }
        if let Some(rs) = &plan.create {
            assert!(
                self.rss
                    .iter()
                    .all(|r| r["metadata"]["name"] != rs["metadata"]["name"])
            );
            let mut rs = rs.clone();
            self.created += 1;
            let name = rs["metadata"]["name"].as_str().unwrap().to_owned();
            rs["metadata"]["uid"] = json!(format!("uid-{name}"));
            rs["metadata"]["generation"] = json!(1);
            rs["metadata"]["creationTimestamp"] =
                json!(format!("2027-01-14T00:00:{:02}Z", self.created));
            self.rss.push(rs);
        }
        self.rss.retain(|r| {
            !plan
                .delete
                .iter()
                .any(|n| r["metadata"]["name"] == json!(n))
        });
        if let Some(d) = &plan.deployment {
            assert_eq!(d["spec"], self.d["spec"], "status writes keep the spec");
            self.d = d.clone();
        }
    }

    /// The ReplicaSet controller catches up: every ReplicaSet runs its pods, the new ones
    /// (those whose template is the Deployment's) available only if `new_available`.
    fn settle_pods(&mut self, new_available: bool) {
        let template = self.d["spec"]["template"].clone();
        for rs in &mut self.rss {
            let n = rs["spec"]["replicas"].as_i64().unwrap();
            let is_new = equal_ignore_hash(&rs["spec"]["template"], &template);
            let avail = if is_new && !new_available { 0 } else { n };
            rs["status"] = json!({"replicas": n, "readyReplicas": avail,
                "availableReplicas": avail, "observedGeneration": rs["metadata"]["generation"]});
        }
    }

    /// Runs one sync and the ReplicaSet controller after it.
    fn step(&mut self, new_available: bool) -> Plan {
        let plan = self.plan();
        self.apply(&plan);
        self.settle_pods(new_available);
        plan
    }

    /// Syncs until a plan is empty; panics if that takes more than `max` non-empty plans.
    fn converge(&mut self, max: usize) {
        for _ in 0..=max {
            if self.step(true).is_empty() {
                assert!(self.plan().is_empty(), "second reconcile writes nothing");
                return;
            }
        }
        panic!("no fixpoint: {:#?}", self.rss);
    }

    fn sizes(&self) -> Vec<i64> {
        self.rss
            .iter()
            .map(|r| r["spec"]["replicas"].as_i64().unwrap())
            .collect()
    }

    fn change_template(&mut self, image: &str) {
        self.d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        self.bump_generation();
    }

    fn bump_generation(&mut self) {
        let g = self.d["metadata"]["generation"].as_i64().unwrap();
        self.d["metadata"]["generation"] = json!(g + 1);
    }

    fn condition(&self, t: &str) -> (String, String) {
        let c = self.d["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap_or_else(|| panic!("no {t} condition in {}", self.d["status"]));
        (
            c["status"].as_str().unwrap().into(),
            c["reason"].as_str().unwrap().into(),
        )
    }
}

fn settled(replicas: i64) -> World {
    let mut w = World::new(deploy(replicas, "v1"));
    w.converge(4);
    w
}

#[test]
fn first_sync_creates_the_replicaset() {
    let w = World::new(deploy(3, "v1"));
    let plan = w.plan();
    let rs = plan.create.expect("a new ReplicaSet");
    let hash = compute_hash(&w.d["spec"]["template"], None);
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rs["metadata"]["labels"],
        json!({"app": "web", POD_TEMPLATE_HASH: hash})
    );
    assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(rs["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"][POD_TEMPLATE_HASH],
        hash
    );
    assert_eq!(
        rs["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH],
        hash
    );
    assert_eq!(rs["spec"]["replicas"], 3);
    assert_eq!(rs["metadata"]["annotations"][REVISION], "1");
    assert_eq!(rs["metadata"]["annotations"][DESIRED_REPLICAS], "3");
    assert_eq!(rs["metadata"]["annotations"][MAX_REPLICAS], "4");
    let d = plan.deployment.expect("status and revision");
    assert_eq!(d["metadata"]["annotations"][REVISION], "1");
    let conds = d["status"]["conditions"].as_array().unwrap();
    assert_eq!(conds[0]["reason"], "NewReplicaSetCreated");
    assert_eq!(
        conds[0]["message"],
        format!("Created new replica set \"web-{hash}\"")
    );
    assert_eq!(conds[1]["reason"], "MinimumReplicasUnavailable");
    assert_eq!(d["status"]["unavailableReplicas"], 3);
}

#[test]
fn settles_with_complete_status() {
    let w = settled(3);
    assert_eq!(w.sizes(), vec![3]);
    let s = &w.d["status"];
    assert_eq!(
        (
            s["replicas"].clone(),
            s["updatedReplicas"].clone(),
            s["readyReplicas"].clone(),
            s["availableReplicas"].clone(),
            s["observedGeneration"].clone()
        ),
        (json!(3), json!(3), json!(3), json!(3), json!(1))
    );
    assert!(s.get("unavailableReplicas").is_none());
    assert_eq!(
        w.condition("Available"),
        ("True".into(), "MinimumReplicasAvailable".into())
    );
    assert_eq!(
        w.condition("Progressing"),
        ("True".into(), "NewReplicaSetAvailable".into())
    );
}

#[test]
fn fenceposts_round_surge_up_and_unavailability_down() {
    let cases = [
        (json!("25%"), json!("25%"), 4, (1, 1)),
        (json!("25%"), json!("25%"), 10, (3, 2)),
        (json!("25%"), json!("25%"), 1, (1, 0)),
        (json!(0), json!("10%"), 5, (0, 1)),
        (json!(2), json!(0), 5, (2, 0)),
        (json!("50%"), json!("50%"), 3, (2, 1)),
    ];
    for (surge, unavail, n, want) in cases {
        let mut d = deploy(n, "v1");
        d["spec"]["strategy"]["rollingUpdate"] =
            json!({"maxSurge": surge, "maxUnavailable": unavail});
        assert_eq!(resolve_fenceposts(&d, n), want, "{surge} {unavail} of {n}");
    }
}

/// Rolls from v1 to v2 with all new pods becoming available after each sync, returning the
/// `[old, new]` sizes after every sync that resized something.
fn rolling_steps(replicas: i64) -> Vec<Vec<i64>> {
    let mut w = settled(replicas);
    w.change_template("v2");
    let mut steps = vec![];
    for _ in 0..20 {
        let before = w.sizes();
        let plan = w.step(true);
        if w.sizes() != before || plan.create.is_some() {
            steps.push(w.sizes());
        }
        if plan.is_empty() {
            assert!(w.plan().is_empty(), "second reconcile writes nothing");
            assert_eq!(w.condition("Progressing").1, "NewReplicaSetAvailable");
            assert_eq!(w.d["metadata"]["annotations"][REVISION], "2");
            return steps;
        }
    }
    panic!("rollout did not finish");
}

#[test]
fn rolling_update_four_replicas_step_by_step() {
    assert_eq!(
        rolling_steps(4),
        vec![vec![3, 1], vec![3, 2], vec![1, 2], vec![1, 4], vec![0, 4]]
    );
}

#[test]
fn rolling_update_ten_replicas_step_by_step() {
    assert_eq!(
        rolling_steps(10),
        vec![vec![8, 3], vec![8, 5], vec![3, 5], vec![3, 10], vec![0, 10]]
    );
}

#[test]
fn rollout_waits_for_new_pods_and_times_out() {
    let mut w = settled(4);
    w.change_template("broken");
    for _ in 0..5 {
        w.step(false);
    }
    assert_eq!(w.sizes(), vec![3, 2], "maxUnavailable holds the old pods");
    assert_eq!(
        w.condition("Progressing"),
        ("True".into(), "ReplicaSetUpdated".into())
    );
    assert_eq!(
        w.condition("Available"),
        ("True".into(), "MinimumReplicasAvailable".into())
    );
    let plan = w.plan();
    assert!(plan.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(601)));
    w.now += 601;
    let plan = w.step(false);
    let d = plan.deployment.expect("the deadline passed");
    let conds = d["status"]["conditions"].as_array().unwrap();
    let p = conds.iter().find(|c| c["type"] == "Progressing").unwrap();
    assert_eq!(p["status"], "False");
    assert_eq!(p["reason"], "ProgressDeadlineExceeded");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .ends_with("has timed out progressing.")
    );
    let again = w.plan();
    assert!(again.is_empty() && again.requeue_after.is_none());
}

#[test]
fn recreate_scales_old_to_zero_before_creating() {
    let mut d = deploy(3, "v1");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    let mut w = World::new(d);
    w.converge(4);
    w.change_template("v2");
    let plan = w.plan();
    assert!(plan.create.is_none());
    assert_eq!(plan.update[0]["spec"]["replicas"], 0);
    w.apply(&plan);
    // The old pod is still terminating: nothing new yet.
    let old_uid = w.rss[0]["metadata"]["uid"].clone();
    w.pods.push(json!({"metadata": {"name": "old-pod", "namespace": "ns", "labels": {"app": "web"},
        "ownerReferences": [{"uid": old_uid, "controller": true, "kind": "ReplicaSet", "name": "x"}]},
        "status": {"phase": "Running"}}));
    w.settle_pods(true);
    let plan = w.step(true);
    assert!(plan.create.is_none(), "old pods still run");
    w.pods.clear();
    let plan = w.step(true);
    assert_eq!(plan.create.as_ref().unwrap()["spec"]["replicas"], 3);
    w.converge(4);
    assert_eq!(w.sizes(), vec![0, 3]);
}

#[test]
fn pause_holds_the_rollout_and_resume_continues() {
    let mut w = settled(4);
    w.d["spec"]["paused"] = json!(true);
    w.change_template("v2");
    let plan = w.step(true);
    assert!(plan.create.is_none());
    assert_eq!(
        w.condition("Progressing"),
        ("Unknown".into(), "DeploymentPaused".into())
    );
    assert!(w.plan().is_empty(), "second reconcile writes nothing");
    // Scaling while paused resizes the only active ReplicaSet.
    w.d["spec"]["replicas"] = json!(6);
    w.bump_generation();
    w.converge(3);
    assert_eq!(w.sizes(), vec![6]);
    assert_eq!(w.rss[0]["metadata"]["annotations"][DESIRED_REPLICAS], "6");
    w.d["spec"]["paused"] = json!(false);
    let plan = w.step(true);
    assert!(plan.create.is_some());
    assert_eq!(w.condition("Progressing").1, "NewReplicaSetCreated");
    w.converge(10);
    assert_eq!(w.sizes(), vec![0, 6]);
}

#[test]
fn rollback_reuses_the_old_replicaset_with_a_new_revision() {
    let mut w = settled(4);
    w.change_template("v2");
    w.converge(10);
    assert_eq!(w.rss.len(), 2);
    // `kubectl rollout undo` patches the template back to revision 1's.
    w.change_template("v1");
    let plan = w.plan();
    assert!(
        plan.create.is_none(),
        "the revision 1 ReplicaSet is re-used"
    );
    let first = &plan.update[0];
    assert_eq!(first["metadata"]["name"], w.rss[0]["metadata"]["name"]);
    assert_eq!(first["metadata"]["annotations"][REVISION], "3");
    assert_eq!(first["metadata"]["annotations"][REVISION_HISTORY], "1");
    w.apply(&plan);
    w.settle_pods(true);
    w.converge(10);
    assert_eq!(w.sizes(), vec![4, 0]);
    assert_eq!(w.d["metadata"]["annotations"][REVISION], "3");
}

#[test]
fn revision_history_limit_deletes_oldest_empty_replicasets() {
    let mut d = deploy(2, "v1");
    d["spec"]["revisionHistoryLimit"] = json!(1);
    let mut w = World::new(d);
    w.converge(4);
    for image in ["v2", "v3", "v4"] {
        w.change_template(image);
        w.converge(10);
    }
    let revisions: Vec<&str> = w
        .rss
        .iter()
        .map(|r| r["metadata"]["annotations"][REVISION].as_str().unwrap())
        .collect();
    assert_eq!(revisions, vec!["3", "4"]);
}

#[test]
fn scaling_mid_rollout_is_proportional() {
    let mut w = settled(10);
    w.change_template("v2");
    w.step(true);
    w.step(true);
    assert_eq!(w.sizes(), vec![8, 5]);
    w.d["spec"]["replicas"] = json!(20);
    w.bump_generation();
    let plan = w.step(true);
    assert!(plan.create.is_none());
    assert_eq!(w.sizes(), vec![15, 10]);
    w.converge(12);
    assert_eq!(w.sizes(), vec![0, 20]);
}

#[test]
fn hash_is_stable_and_tracks_every_template_field() {
    let t = deploy(1, "v1")["spec"]["template"].clone();
    let h = compute_hash(&t, None);
    assert_eq!(h, compute_hash(&t.clone(), None));
    assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    // Key order does not matter.
    let reordered: Value = serde_json::from_str(
        r#"{"spec":{"containers":[{"image":"v1","name":"c"}]},"metadata":{"labels":{"app":"web"}}}"#,
    )
    .unwrap();
    assert_eq!(compute_hash(&reordered, None), h);
    let mut labelled = t.clone();
    labelled["metadata"]["labels"]["extra"] = json!("x");
    let mut annotated = t.clone();
    annotated["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/restartedAt": "now"});
    for other in [&labelled, &annotated] {
        assert_ne!(compute_hash(other, None), h);
        assert!(!equal_ignore_hash(other, &t));
    }
    assert_ne!(compute_hash(&t, Some(1)), h);
    assert_ne!(compute_hash(&t, Some(1)), compute_hash(&t, Some(2)));
    let mut hashed = t.clone();
    hashed["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(h);
    assert!(equal_ignore_hash(&hashed, &t));
}

#[test]
fn annotation_only_template_change_rolls_out() {
    let mut w = settled(2);
    w.d["spec"]["template"]["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/restartedAt": "2027-01-15T00:00:00Z"});
    w.bump_generation();
    assert!(w.plan().create.is_some());
    w.converge(10);
    assert_eq!(w.sizes(), vec![0, 2]);
}

#[test]
fn name_collision_bumps_collision_count() {
    let d = deploy(2, "v1");
    let hash = compute_hash(&d["spec"]["template"], None);
    let squatter = json!({"metadata": {"name": format!("web-{hash}"), "namespace": "ns",
        "uid": "other", "labels": {"app": "other"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "other"}},
                 "template": {"metadata": {"labels": {"app": "other"}}}}});
    let mut w = World::new(d);
    w.rss.push(squatter);
    let plan = w.step(true);
    assert!(plan.create.is_none());
    assert_eq!(plan.deployment.unwrap()["status"]["collisionCount"], 1);
    let plan = w.step(true);
    let created = plan.create.expect("a new name");
    assert_eq!(
        created["metadata"]["name"],
        format!("web-{}", compute_hash(&w.d["spec"]["template"], Some(1)))
    );
    w.converge(4);
    assert_eq!(w.d["status"]["collisionCount"], 1);
}

#[test]
fn adopts_orphans_and_releases_mismatches() {
    let mut w = settled(2);
    let mut orphan = w.rss[0].clone();
    orphan["metadata"]["name"] = json!("orphan");
    orphan["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    orphan["spec"]["replicas"] = json!(0);
    orphan["spec"]["template"]["spec"]["containers"][0]["image"] = json!("v0");
    let mut stray = w.rss[0].clone();
    stray["metadata"]["name"] = json!("stray");
    stray["metadata"]["labels"] = json!({"app": "other"});
    stray["spec"]["replicas"] = json!(0);
    w.rss.push(orphan);
    w.rss.push(stray);
    let plan = w.plan();
    assert_eq!(plan.adopt.len(), 1);
    assert_eq!(
        plan.adopt[0]["metadata"]["ownerReferences"][0]["uid"],
        "d-uid"
    );
    assert_eq!(plan.release.len(), 1);
    assert_eq!(plan.release[0]["metadata"]["ownerReferences"], json!([]));
    w.converge(3);
    assert_eq!(
        w.sizes(),
        vec![2, 0, 0],
        "the adopted old revision stays at zero"
    );
    assert_eq!(w.rss[2]["metadata"]["ownerReferences"], json!([]));
}
