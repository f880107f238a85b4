//! Job core scenarios on paused time: a small world applies each plan the way the API server and
//! kubelet would, and every settled state must reconcile to an empty plan.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use controllers::event::{Event, EventType};
use controllers::job::{
    self, Backoff, COMPLETION_INDEX, Intervals, Plan, TRACKING_FINALIZER, TtlDecision,
};
use serde_json::{Value, json};

/// 2027-01-15T00:00:00Z.
const T0: u64 = 1_799_971_200;

fn time(secs: u64) -> String {
    let s = secs - T0;
    format!(
        "2027-01-15T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn job(spec: Value) -> Value {
    let mut j = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "ns", "uid": "job-uid", "generation": 1},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "pi"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl"}]}
            }
        }
    });
    if let (Some(s), Value::Object(extra)) = (j["spec"].as_object_mut(), spec) {
        s.extend(extra);
    }
    j
}

/// The API server, the kubelet and the loop around the core.
struct World {
    job: Value,
    pods: Vec<Value>,
    backoff: Backoff,
    now: u64,
    created: u32,
    events: Vec<Event>,
}

impl World {
    fn new(job: Value) -> World {
        World {
            job,
            pods: Vec::new(),
            backoff: Backoff::default(),
            now: T0,
            created: 0,
            events: Vec::new(),
        }
    }

    fn plan(&self) -> Plan {
        job::reconcile(
            &self.job,
            &self.pods,
            &self.backoff,
            UNIX_EPOCH + Duration::from_secs(self.now),
        )
        .unwrap()
    }

    fn pod_mut(&mut self, name: &str) -> &mut Value {
        self.pods
            .iter_mut()
            .find(|p| p["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no pod {name}"))
    }

    fn apply(&mut self, plan: &Plan) {
        for p in plan.adopt.iter().chain(&plan.release) {
            let name = p["metadata"]["name"].as_str().unwrap().to_owned();
            *self.pod_mut(&name) = p.clone();
        }
        for d in &plan.delete {
            let now = time(self.now);
            let pod = self.pod_mut(&d.name);
            if d.remove_finalizer_first {
                strip_finalizer(pod);
            }
            pod["metadata"]["deletionTimestamp"] = json!(now);
        }
        for p in &plan.create {
            self.created += 1;
            let mut p = p.clone();
            let name = format!(
                "{}{}",
                p["metadata"]["generateName"].as_str().unwrap(),
                self.created
            );
            p["metadata"]["name"] = json!(name);
            p["metadata"]["uid"] = json!(format!("uid-{name}"));
            p["metadata"]["creationTimestamp"] = json!(time(self.now));
            p["status"] = json!({"phase": "Pending"});
            self.pods.push(p);
        }
        if let Some(s) = &plan.status_with_uncounted {
            self.job["status"] = s.clone();
        }
        for name in &plan.remove_finalizers {
            strip_finalizer(self.pod_mut(name));
        }
        self.gc();
        if let Some(s) = &plan.status {
            self.job["status"] = s.clone();
        }
        self.backoff = plan.backoff;
        self.events.extend(plan.events.iter().cloned());
    }

    /// Reconciles, applies, and checks that the settled state plans nothing.
    fn step(&mut self) -> Plan {
        let plan = self.plan();
        self.apply(&plan);
        let again = self.plan();
        assert!(again.is_empty(), "second reconcile wrote: {again:#?}");
        plan
    }

    /// Pods that are deleted, terminal and free of finalizers disappear.
    fn gc(&mut self) {
        self.pods.retain(|p| {
            let deleting = p["metadata"].get("deletionTimestamp").is_some();
            let finalizers = p["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            let terminal = matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
            !(deleting && !finalizers && terminal)
        });
    }

    /// The kubelet finishes every deleted pod.
    fn kubelet_kills_deleted(&mut self) {
        for p in &mut self.pods {
            if p["metadata"].get("deletionTimestamp").is_some() {
                p["status"]["phase"] = json!("Failed");
            }
        }
        self.gc();
    }

    fn run(&mut self, name: &str, ready: bool) {
        let now = time(self.now);
        let p = self.pod_mut(name);
        p["spec"]["nodeName"] = json!("node-1");
        p["status"] = json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": now}
        ]});
    }

    fn finish(&mut self, name: &str, phase: &str) {
        let now = time(self.now);
        let p = self.pod_mut(name);
        p["status"] = json!({"phase": phase, "containerStatuses": [
            {"name": "c", "state": {"terminated": {"finishedAt": now, "exitCode": if phase == "Succeeded" { 0 } else { 1 }}}}
        ]});
    }

    fn names(&self) -> Vec<String> {
        self.pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn status(&self) -> &Value {
        &self.job["status"]
    }

    fn condition(&self, type_: &str) -> Option<&Value> {
        self.status()["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == type_)
    }
}

fn strip_finalizer(pod: &mut Value) {
    if let Some(f) = pod["metadata"]["finalizers"].as_array_mut() {
        f.retain(|x| x != TRACKING_FINALIZER);
    }
}

#[test]
fn creates_a_pod_with_upstreams_labels_owner_and_finalizer() {
    let mut w = World::new(job(json!({})));
    let plan = w.step();
    assert_eq!(plan.create.len(), 1);
    let pod = &plan.create[0];
    assert_eq!(
        pod["metadata"],
        json!({
            "generateName": "pi-",
            "namespace": "ns",
            "labels": {
                "app": "pi",
                "batch.kubernetes.io/controller-uid": "job-uid",
                "batch.kubernetes.io/job-name": "pi",
                "controller-uid": "job-uid",
                "job-name": "pi",
            },
            "finalizers": [TRACKING_FINALIZER],
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "pi",
                "uid": "job-uid", "controller": true, "blockOwnerDeletion": true}],
        })
    );
    assert_eq!(
        w.status(),
        &json!({"startTime": time(T0), "active": 1, "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {}})
    );
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn a_succeeded_pod_is_counted_through_uncounted_then_completes() {
    let mut w = World::new(job(json!({})));
    w.step();
    w.now += 5;
    w.run("pi-1", true);
    let plan = w.step();
    assert_eq!(plan.status.as_ref().unwrap()["ready"], 1);
    w.now += 30;
    w.finish("pi-1", "Succeeded");
    let plan = w.step();
    let interim = plan.status_with_uncounted.as_ref().unwrap();
    assert_eq!(
        interim["uncountedTerminatedPods"],
        json!({"succeeded": ["uid-pi-1"]})
    );
    assert_eq!(interim["conditions"][0]["type"], "SuccessCriteriaMet");
    assert_eq!(plan.remove_finalizers, vec!["pi-1"]);
    let done = time(T0 + 35);
    assert_eq!(
        w.status(),
        &json!({
            "startTime": time(T0),
            "completionTime": done,
            "succeeded": 1,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods",
                 "lastProbeTime": done, "lastTransitionTime": done},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods",
                 "lastProbeTime": done, "lastTransitionTime": done},
            ]
        })
    );
    assert_eq!(
        plan.events,
        vec![Event::normal("Completed", "Job completed")]
    );
    assert!(job::is_finished(&w.job));
    // A finished Job is never synced again.
    w.pods.clear();
    assert!(w.plan().is_empty());
}

#[test]
fn parallelism_and_completions() {
    let mut w = World::new(job(json!({"parallelism": 2, "completions": 4})));
    assert_eq!(w.step().create.len(), 2);
    w.finish("pi-1", "Succeeded");
    let plan = w.step();
    assert_eq!(
        plan.create.len(),
        1,
        "one more pod for the 3 remaining completions"
    );
    assert_eq!(w.status()["succeeded"], 1);
    assert_eq!(w.status()["active"], 2);
    for n in ["pi-2", "pi-3"] {
        w.finish(n, "Succeeded");
    }
    let plan = w.step();
    assert_eq!(
        plan.create.len(),
        1,
        "parallelism 2 but only one completion left"
    );
    assert_eq!(w.status()["succeeded"], 3);
    w.finish("pi-4", "Succeeded");
    w.step();
    assert_eq!(w.status()["succeeded"], 4);
    assert!(w.condition("Complete").is_some());
}

#[test]
fn without_completions_the_first_success_stops_new_pods() {
    let mut w = World::new(job(json!({"parallelism": 3})));
    assert_eq!(
        job::with_defaults(&w.job)["spec"].get("completions"),
        None,
        "parallelism alone leaves completions unset"
    );
    assert_eq!(w.step().create.len(), 3);
    w.finish("pi-1", "Succeeded");
    let plan = w.step();
    assert!(plan.create.is_empty());
    assert!(w.condition("Complete").is_none(), "two pods still run");
    w.finish("pi-2", "Succeeded");
    w.finish("pi-3", "Failed");
    w.step();
    assert!(w.condition("Complete").is_some());
    assert_eq!(w.status()["succeeded"], 2);
    assert_eq!(w.status()["failed"], 1);
}

#[test]
fn failed_pods_are_replaced_after_the_doubling_backoff() {
    let mut w = World::new(job(json!({"backoffLimit": 6})));
    w.step();
    w.now += 3;
    w.finish("pi-1", "Failed");
    let plan = w.step();
    assert!(plan.create.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(10)));
    assert_eq!(w.status()["failed"], 1);
    assert_eq!(w.backoff.failures_after_last_success, 1);
    w.now += 4;
    assert_eq!(w.plan().requeue_after, Some(Duration::from_secs(6)));
    w.now += 6;
    assert_eq!(w.step().create.len(), 1);
    w.now += 1;
    w.finish("pi-2", "Failed");
    assert_eq!(w.step().requeue_after, Some(Duration::from_secs(20)));
    w.now += 20;
    assert_eq!(w.step().create.len(), 1);
    // A success resets the record.
    w.finish("pi-3", "Succeeded");
    w.step();
    assert_eq!(w.backoff, Backoff::default());
}

#[test]
fn backoff_is_capped_at_six_minutes() {
    let b = |n| Backoff {
        failures_after_last_success: n,
        last_failure_time: Some(100),
    };
    assert_eq!(b(0).remaining(100), Duration::ZERO);
    assert_eq!(b(1).remaining(100), Duration::from_secs(10));
    assert_eq!(b(3).remaining(105), Duration::from_secs(35));
    assert_eq!(b(6).remaining(100), Duration::from_secs(320));
    assert_eq!(b(7).remaining(100), Duration::from_secs(360));
    assert_eq!(b(30).remaining(100), Duration::from_secs(360));
    assert_eq!(b(30).remaining(1000), Duration::ZERO);
}

#[test]
fn backoff_limit_exceeded_fails_the_job() {
    let mut w = World::new(job(
        json!({"backoffLimit": 1, "parallelism": 2, "completions": 2}),
    ));
    w.step();
    w.finish("pi-1", "Failed");
    w.finish("pi-2", "Failed");
    let plan = w.step();
    assert!(plan.create.is_empty());
    let now = time(T0);
    assert_eq!(
        w.status()["conditions"],
        json!([
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit",
             "lastProbeTime": now, "lastTransitionTime": now},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit",
             "lastProbeTime": now, "lastTransitionTime": now},
        ])
    );
    assert_eq!(w.status()["failed"], 2);
    assert_eq!(w.status().get("completionTime"), None);
    assert_eq!(
        plan.events,
        vec![Event::warning(
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit"
        )]
    );
    assert_eq!(plan.events[0].type_, EventType::Warning);
}

#[test]
fn backoff_limit_counts_restarts_with_restart_policy_on_failure() {
    let mut j = job(json!({"backoffLimit": 2}));
    j["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
    let mut w = World::new(j);
    w.step();
    w.run("pi-1", false);
    w.pod_mut("pi-1")["status"]["containerStatuses"] = json!([{"name": "c", "restartCount": 1}]);
    assert!(w.step().delete.is_empty());
    w.pod_mut("pi-1")["status"]["containerStatuses"] = json!([{"name": "c", "restartCount": 2}]);
    let plan = w.step();
    assert_eq!(plan.delete.len(), 1);
    assert!(!plan.delete[0].remove_finalizer_first);
    assert_eq!(
        w.condition("FailureTarget").unwrap()["reason"],
        "BackoffLimitExceeded"
    );
    assert!(
        w.condition("Failed").is_none(),
        "the pod is still terminating"
    );
    w.kubelet_kills_deleted();
    w.step();
    assert_eq!(
        w.condition("Failed").unwrap()["reason"],
        "BackoffLimitExceeded"
    );
}

#[test]
fn active_deadline_deletes_pods_then_fails_once_they_are_gone() {
    let mut w = World::new(job(
        json!({"activeDeadlineSeconds": 60, "parallelism": 2, "completions": 2}),
    ));
    assert_eq!(w.step().requeue_after, Some(Duration::from_secs(60)));
    w.now += 20;
    w.run("pi-1", true);
    w.run("pi-2", false);
    assert_eq!(w.step().requeue_after, Some(Duration::from_secs(40)));
    w.now += 40;
    let plan = w.step();
    let names: Vec<&str> = plan.delete.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["pi-1", "pi-2"]);
    assert_eq!(plan.remove_finalizers, ["pi-1", "pi-2"]);
    assert_eq!(
        plan.status_with_uncounted.as_ref().unwrap()["uncountedTerminatedPods"],
        json!({"failed": ["uid-pi-1", "uid-pi-2"]})
    );
    assert_eq!(w.status()["failed"], 2);
    assert_eq!(w.status()["terminating"], 2);
    assert_eq!(w.status().get("active"), None);
    assert_eq!(
        w.condition("FailureTarget").unwrap()["reason"],
        "DeadlineExceeded"
    );
    assert!(w.condition("Failed").is_none());
    w.now += 30;
    w.kubelet_kills_deleted();
    assert!(w.pods.is_empty());
    let plan = w.step();
    let failed = w.condition("Failed").unwrap();
    assert_eq!(failed["reason"], "DeadlineExceeded");
    assert_eq!(
        failed["message"],
        "Job was active longer than specified deadline"
    );
    assert_eq!(failed["lastTransitionTime"], time(T0 + 90));
    assert_eq!(w.status()["terminating"], 0);
    assert_eq!(
        plan.events,
        vec![Event::warning(
            "DeadlineExceeded",
            "Job was active longer than specified deadline"
        )]
    );
}

#[test]
fn suspend_deletes_pods_uncounted_and_resume_restarts_the_clock() {
    let mut w = World::new(job(
        json!({"parallelism": 2, "completions": 2, "activeDeadlineSeconds": 600}),
    ));
    w.step();
    w.now += 100;
    w.job["spec"]["suspend"] = json!(true);
    let plan = w.step();
    assert!(plan.delete.iter().all(|d| d.remove_finalizer_first));
    assert_eq!(plan.delete.len(), 2);
    assert!(
        plan.events
            .contains(&Event::normal("Suspended", "Job suspended"))
    );
    let cond = w.condition("Suspended").unwrap();
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "JobSuspended");
    assert_eq!(w.status().get("failed"), None, "suspension is not failure");
    assert_eq!(w.status()["terminating"], 2);
    w.kubelet_kills_deleted();
    assert!(w.pods.is_empty());
    w.step();
    assert_eq!(w.status()["terminating"], 0);
    w.now += 200;
    w.job["spec"]["suspend"] = json!(false);
    let plan = w.step();
    assert_eq!(plan.create.len(), 2);
    assert!(
        plan.events
            .contains(&Event::normal("Resumed", "Job resumed"))
    );
    assert_eq!(w.condition("Suspended").unwrap()["status"], "False");
    assert_eq!(w.status()["startTime"], time(T0 + 300));
    // As upstream, the deadline requeue of the resuming sync still counts from the old start;
    // the sync it triggers counts from the new one.
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(300)));
    w.now += 300;
    assert_eq!(w.step().requeue_after, Some(Duration::from_secs(300)));
}

#[test]
fn created_suspended_has_no_start_time() {
    let mut w = World::new(job(json!({"suspend": true})));
    let plan = w.step();
    assert!(plan.create.is_empty());
    assert_eq!(w.status().get("startTime"), None);
    assert_eq!(w.condition("Suspended").unwrap()["status"], "True");
}

#[test]
fn scale_down_removes_the_least_advanced_pods_uncounted() {
    let mut w = World::new(job(json!({"parallelism": 3, "completions": 10})));
    w.step();
    w.run("pi-1", true);
    w.run("pi-3", false);
    w.step();
    w.job["spec"]["parallelism"] = json!(1);
    let plan = w.step();
    let names: Vec<&str> = plan.delete.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["pi-2", "pi-3"], "pending, then not ready, go first");
    assert!(plan.delete.iter().all(|d| d.remove_finalizer_first));
    assert!(plan.create.is_empty());
    assert_eq!(w.status()["active"], 1);
}

#[test]
fn indexed_job_tracks_completed_indexes() {
    let mut w = World::new(job(
        json!({"completionMode": "Indexed", "completions": 3, "parallelism": 2}),
    ));
    let plan = w.step();
    assert_eq!(plan.create.len(), 2);
    let pod = &plan.create[1];
    assert_eq!(pod["metadata"]["generateName"], "pi-1-");
    assert_eq!(pod["metadata"]["annotations"][COMPLETION_INDEX], "1");
    assert_eq!(pod["metadata"]["labels"][COMPLETION_INDEX], "1");
    assert_eq!(pod["spec"]["hostname"], "pi-1");
    assert_eq!(
        pod["spec"]["containers"][0]["env"],
        json!([{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}])
    );
    assert_eq!(w.names(), ["pi-0-1", "pi-1-2"]);
    w.finish("pi-0-1", "Succeeded");
    let plan = w.step();
    assert_eq!(
        plan.create[0]["metadata"]["annotations"][COMPLETION_INDEX],
        "2"
    );
    assert_eq!(w.status()["completedIndexes"], "0");
    assert_eq!(w.status()["succeeded"], 1);
    let interim = plan.status_with_uncounted.as_ref().unwrap();
    assert_eq!(
        interim["uncountedTerminatedPods"],
        json!({}),
        "indexes need no UIDs: the completion index is written before the finalizer goes"
    );
    assert_eq!(interim["completedIndexes"], "0");
    w.finish("pi-2-3", "Succeeded");
    w.step();
    assert_eq!(w.status()["completedIndexes"], "0,2");
    w.finish("pi-1-2", "Succeeded");
    w.step();
    assert_eq!(w.status()["completedIndexes"], "0-2");
    assert_eq!(w.status()["succeeded"], 3);
    assert!(w.condition("Complete").is_some());
}

#[test]
fn indexed_job_replaces_a_failed_index_and_drops_duplicates() {
    let mut w = World::new(job(
        json!({"completionMode": "Indexed", "completions": 2, "parallelism": 2}),
    ));
    w.step();
    // Someone else created a second pod for index 0.
    let mut dup = w.pods[0].clone();
    dup["metadata"]["name"] = json!("pi-0-dup");
    dup["metadata"]["uid"] = json!("uid-dup");
    dup["metadata"]["creationTimestamp"] = json!(time(T0 + 1));
    w.pods.push(dup);
    w.run("pi-0-1", true);
    let plan = w.step();
    let names: Vec<&str> = plan.delete.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["pi-0-dup"]);
    w.kubelet_kills_deleted();
    w.step();
    w.now += 1;
    w.finish("pi-1-2", "Failed");
    w.step();
    w.now += 10;
    let plan = w.step();
    assert_eq!(plan.create.len(), 1);
    assert_eq!(
        plan.create[0]["metadata"]["annotations"][COMPLETION_INDEX],
        "1"
    );
    assert_eq!(w.status()["failed"], 1);
}

#[test]
fn backoff_limit_per_index_fails_indexes() {
    let mut w = World::new(job(json!({
        "completionMode": "Indexed", "completions": 3, "parallelism": 3, "backoffLimitPerIndex": 0
    })));
    assert_eq!(job::with_defaults(&w.job)["spec"]["backoffLimit"], i32::MAX);
    w.step();
    w.finish("pi-1-2", "Failed");
    w.finish("pi-0-1", "Succeeded");
    let plan = w.step();
    assert!(plan.create.is_empty(), "index 1 failed for good");
    assert_eq!(w.status()["failedIndexes"], "1");
    assert_eq!(w.status()["completedIndexes"], "0");
    w.finish("pi-2-3", "Succeeded");
    w.step();
    assert_eq!(w.condition("Failed").unwrap()["reason"], "FailedIndexes");
    assert_eq!(w.status()["completedIndexes"], "0,2");
}

#[test]
fn adopts_orphans_and_ignores_pods_of_others() {
    let mut w = World::new(job(json!({"parallelism": 2, "completions": 2})));
    let labels = job::with_defaults(&w.job)["spec"]["template"]["metadata"]["labels"].clone();
    w.pods.push(
        json!({"metadata": {"name": "orphan", "namespace": "ns", "uid": "uid-orphan",
        "labels": labels}, "status": {"phase": "Running"}}),
    );
    w.pods.push(json!({"metadata": {"name": "theirs", "namespace": "ns", "uid": "uid-theirs",
        "labels": labels, "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
        "name": "other", "uid": "other-uid", "controller": true}]}, "status": {"phase": "Running"}}));
    let plan = w.step();
    assert_eq!(plan.adopt.len(), 1);
    assert_eq!(
        plan.adopt[0]["metadata"]["finalizers"],
        json!([TRACKING_FINALIZER])
    );
    assert_eq!(
        plan.adopt[0]["metadata"]["ownerReferences"][0]["kind"],
        "Job"
    );
    assert_eq!(plan.create.len(), 1);
    assert_eq!(w.status()["active"], 2);
}

#[test]
fn defaults_match_the_api_server() {
    let d = job::with_defaults(&job(json!({})));
    let spec = &d["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "job-uid"}})
    );
    // Defaulting twice changes nothing.
    assert_eq!(job::with_defaults(&d), d);
}

#[test]
fn pod_replacement_policy_failed_waits_for_terminating_pods() {
    let mut w = World::new(job(json!({"podReplacementPolicy": "Failed"})));
    w.step();
    w.pod_mut("pi-1")["metadata"]["deletionTimestamp"] = json!(time(T0));
    let plan = w.step();
    assert!(
        plan.create.is_empty(),
        "the terminating pod is not replaced yet"
    );
    assert_eq!(w.status()["terminating"], 1);
    w.kubelet_kills_deleted();
    w.step();
    assert_eq!(w.status()["failed"], 1);
}

#[test]
fn managed_by_another_controller_is_left_alone() {
    let w = World::new(job(json!({"managedBy": "example.com/other"})));
    assert!(w.plan().is_empty());
}

#[test]
fn intervals_use_upstreams_compressed_form() {
    let i = Intervals::parse("0,2-4,7,9-12", 11);
    assert_eq!(i.to_string(), "0,2-4,7,9-10");
    assert_eq!(i.total(), 7);
    assert!(i.has(3) && !i.has(5));
    assert_eq!(i.with([1, 5, 8]).to_string(), "0-5,7-10");
    assert_eq!(Intervals::parse("", 3).to_string(), "");
    assert_eq!(Intervals::parse("3-4,5", 3).total(), 0);
}

#[test]
fn ttl_after_finished() {
    let at = |s| UNIX_EPOCH + Duration::from_secs(s);
    let mut j = job(json!({"ttlSecondsAfterFinished": 100}));
    assert_eq!(job::ttl_after_finished(&j, at(T0)), TtlDecision::Keep);
    j["status"] = json!({"conditions": [{"type": "Complete", "status": "True",
        "lastTransitionTime": time(T0 + 10)}]});
    assert_eq!(
        job::ttl_after_finished(&j, at(T0 + 50)),
        TtlDecision::RequeueAfter(Duration::from_secs(60))
    );
    assert_eq!(
        job::ttl_after_finished(&j, at(T0 + 110)),
        TtlDecision::Delete
    );
    j["metadata"]["deletionTimestamp"] = json!(time(T0 + 110));
    assert_eq!(job::ttl_after_finished(&j, at(T0 + 120)), TtlDecision::Keep);
    let no_ttl = job(json!({}));
    assert_eq!(
        job::ttl_after_finished(&no_ttl, SystemTime::UNIX_EPOCH),
        TtlDecision::Keep
    );
}

#[test]
fn backoff_limit_per_index_retries_an_index_with_its_failure_count() {
    let mut w = World::new(job(json!({
        "completionMode": "Indexed", "completions": 2, "parallelism": 2, "backoffLimitPerIndex": 1
    })));
    let plan = w.step();
    assert_eq!(
        plan.create[1]["metadata"]["annotations"][job::INDEX_FAILURE_COUNT],
        "0"
    );
    w.now += 5;
    w.finish("pi-1-2", "Failed");
    let plan = w.step();
    assert!(plan.create.is_empty());
    assert!(
        plan.remove_finalizers.is_empty(),
        "kept until the replacement exists"
    );
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(10)));
    w.now += 10;
    let plan = w.plan();
    assert_eq!(plan.create.len(), 1);
    let replacement = &plan.create[0]["metadata"]["annotations"];
    assert_eq!(replacement[COMPLETION_INDEX], "1");
    assert_eq!(replacement[job::INDEX_FAILURE_COUNT], "1");
    w.apply(&plan);
    // With the replacement observed, the failed pod is counted and let go.
    let plan = w.step();
    assert_eq!(plan.remove_finalizers, ["pi-1-2"]);
    assert_eq!(w.status()["failed"], 1);
    assert_eq!(w.status()["failedIndexes"], "");
    // The second failure of index 1 exhausts its limit.
    w.finish("pi-1-3", "Failed");
    w.step();
    assert_eq!(w.status()["failedIndexes"], "1");
    assert!(w.condition("FailureTarget").is_none(), "index 0 still runs");
    w.finish("pi-0-1", "Succeeded");
    w.step();
    assert_eq!(w.condition("Failed").unwrap()["reason"], "FailedIndexes");
    assert_eq!(
        w.condition("Failed").unwrap()["message"],
        "Job has failed indexes"
    );
    assert_eq!(w.status()["failed"], 2);
    assert_eq!(w.status()["completedIndexes"], "0");
}

#[test]
fn success_policy_completes_early_and_stops_the_rest() {
    let mut w = World::new(job(json!({
        "completionMode": "Indexed", "completions": 3, "parallelism": 3,
        "successPolicy": {"rules": [{"succeededIndexes": "0-1", "succeededCount": 1}]}
    })));
    w.step();
    w.run("pi-1-2", true);
    w.finish("pi-0-1", "Succeeded");
    let plan = w.step();
    let names: Vec<&str> = plan.delete.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["pi-1-2", "pi-2-3"]);
    let met = w.condition("SuccessCriteriaMet").unwrap();
    assert_eq!(met["reason"], "SuccessPolicy");
    assert_eq!(met["message"], "Matched rules at index 0");
    assert!(
        w.condition("Complete").is_none(),
        "pods are still terminating"
    );
    w.kubelet_kills_deleted();
    w.step();
    assert_eq!(w.condition("Complete").unwrap()["reason"], "SuccessPolicy");
    assert_eq!(
        w.status().get("failed"),
        None,
        "stopped pods are not failures"
    );
    assert_eq!(w.status()["succeeded"], 1);
}

#[test]
fn orphans_lose_the_tracking_finalizer_unless_a_live_job_owns_them() {
    let owned_by = |uid: &str| {
        json!({"metadata": {"name": "p", "finalizers": [TRACKING_FINALIZER],
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "pi",
                "uid": uid, "controller": true}]}})
    };
    let running = job(json!({}));
    let mut finished = job(json!({}));
    finished["status"] = json!({"conditions": [{"type": "Failed", "status": "True"}]});
    let pod = owned_by("job-uid");
    assert!(!job::orphan_needs_finalizer_removal(&pod, Some(&running)));
    assert!(job::orphan_needs_finalizer_removal(&pod, Some(&finished)));
    assert!(
        job::orphan_needs_finalizer_removal(&pod, None),
        "the Job is gone"
    );
    let orphan = json!({"metadata": {"name": "p", "finalizers": [TRACKING_FINALIZER]}});
    assert!(job::orphan_needs_finalizer_removal(&orphan, None));
    let mut foreign = owned_by("x");
    foreign["metadata"]["ownerReferences"][0]["kind"] = json!("ReplicaSet");
    assert!(!job::orphan_needs_finalizer_removal(&foreign, None));
    let clean = json!({"metadata": {"name": "p"}});
    assert!(!job::orphan_needs_finalizer_removal(&clean, None));
}

#[test]
fn indexed_with_replacement_policy_failed_waits_for_the_terminating_index() {
    let mut w = World::new(job(json!({
        "completionMode": "Indexed", "completions": 2, "parallelism": 2,
        "podReplacementPolicy": "Failed"
    })));
    w.step();
    w.pod_mut("pi-0-1")["metadata"]["deletionTimestamp"] = json!(time(T0));
    let plan = w.step();
    assert!(plan.create.is_empty(), "index 0 is still terminating");
    w.kubelet_kills_deleted();
    w.now += 10;
    let plan = w.step();
    assert_eq!(plan.create.len(), 1);
    assert_eq!(
        plan.create[0]["metadata"]["annotations"][COMPLETION_INDEX],
        "0"
    );
}
