//! CronJob core scenarios on paused time: a small world applies each plan as the API server
//! would, and every settled state must reconcile to an empty plan.

use std::time::{Duration, UNIX_EPOCH};

use controllers::cronjob::{self, Plan, SCHEDULED_TIMESTAMP, Schedule, ScheduleError};
use controllers::event::Event;
use serde_json::{Value, json};

/// 2027-01-15T00:00:00Z, a Friday.
const T0: i64 = 1_799_971_200;
const MIN: i64 = 60;

fn time(secs: i64) -> String {
    let s = secs - T0;
    assert!((0..86_400).contains(&s), "keep scenarios within the day");
    format!(
        "2027-01-15T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn cronjob(schedule: &str, spec: Value) -> Value {
    let mut cj = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "hello", "namespace": "ns", "uid": "cj-uid",
            "creationTimestamp": time(T0)},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"app": "hello"}, "annotations": {"team": "a"}},
                "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                    "containers": [{"name": "c", "image": "busybox"}]}}}
            }
        }
    });
    if let (Some(s), Value::Object(extra)) = (cj["spec"].as_object_mut(), spec) {
        s.extend(extra);
    }
    cj
}

struct World {
    cj: Value,
    jobs: Vec<Value>,
    now: i64,
    events: Vec<Event>,
}

impl World {
    fn new(cj: Value) -> World {
        World {
            cj,
            jobs: Vec::new(),
            now: T0,
            events: Vec::new(),
        }
    }

    fn plan(&self) -> Plan {
        cronjob::reconcile(
            &self.cj,
            &self.jobs,
            UNIX_EPOCH + Duration::from_secs(self.now as u64),
        )
    }

    fn apply(&mut self, plan: &Plan) {
        self.jobs
            .retain(|j| !plan.delete.iter().any(|n| j["metadata"]["name"] == *n));
        let mut status = plan.status.clone();
        if let Some(job) = &plan.create {
            let mut job = job.clone();
            let name = job["metadata"]["name"].as_str().unwrap().to_owned();
            job["metadata"]["uid"] = json!(format!("uid-{name}"));
            job["metadata"]["resourceVersion"] = json!("7");
            status = plan.status_with_created(&job);
            self.jobs.push(job);
        }
        if let Some(s) = status {
            self.cj["status"] = s;
        }
        self.events.extend(plan.events.iter().cloned());
    }

    fn step(&mut self) -> Plan {
        let plan = self.plan();
        self.apply(&plan);
        let again = self.plan();
        assert!(again.is_empty(), "second reconcile wrote: {again:#?}");
        plan
    }

    fn finish(&mut self, name: &str, condition: &str) {
        let now = time(self.now);
        let job = self
            .jobs
            .iter_mut()
            .find(|j| j["metadata"]["name"] == name)
            .unwrap();
        job["status"]["conditions"] =
            json!([{"type": condition, "status": "True", "lastTransitionTime": now}]);
        if condition == "Complete" {
            job["status"]["completionTime"] = json!(now);
        }
    }

    fn job_names(&self) -> Vec<String> {
        self.jobs
            .iter()
            .map(|j| j["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn name_at(t: i64) -> String {
    format!("hello-{}", t / 60)
}

fn ms(d: i64) -> Option<Duration> {
    Some(Duration::from_millis(d as u64))
}

#[test]
fn waits_for_the_first_schedule_time() {
    let mut w = World::new(cronjob("*/5 * * * *", json!({})));
    w.now = T0 + 2 * MIN + 30;
    let plan = w.step();
    assert!(plan.create.is_none() && plan.status.is_none() && plan.events.is_empty());
    assert_eq!(plan.requeue_after, ms(150_100));
}

#[test]
fn creates_the_job_for_the_schedule_time() {
    let mut w = World::new(cronjob("*/5 * * * *", json!({})));
    w.now = T0 + 5 * MIN + 2;
    let plan = w.step();
    let job = plan.create.as_ref().unwrap();
    let name = name_at(T0 + 5 * MIN);
    assert_eq!(name, "hello-29999525");
    assert_eq!(
        job,
        &json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {
                "name": name, "namespace": "ns",
                "labels": {"app": "hello"},
                "annotations": {"team": "a", SCHEDULED_TIMESTAMP: "2027-01-15T00:05:00Z"},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello",
                    "uid": "cj-uid", "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "c", "image": "busybox"}]}}}
        })
    );
    assert_eq!(
        w.cj["status"],
        json!({
            "active": [{"kind": "Job", "namespace": "ns", "name": name, "uid": format!("uid-{name}"),
                "apiVersion": "batch/v1", "resourceVersion": "7"}],
            "lastScheduleTime": time(T0 + 5 * MIN),
        })
    );
    assert_eq!(
        plan.events,
        vec![Event::normal(
            "SuccessfulCreate",
            format!("Created job {name}")
        )]
    );
    assert_eq!(plan.requeue_after, ms(298_100));
}

#[test]
fn a_finished_job_leaves_active_and_sets_last_successful_time() {
    let mut w = World::new(cronjob("*/5 * * * *", json!({})));
    w.now = T0 + 5 * MIN;
    w.step();
    w.now += 40;
    let name = name_at(T0 + 5 * MIN);
    w.finish(&name, "Complete");
    let plan = w.step();
    assert_eq!(
        plan.events,
        vec![Event::normal(
            "SawCompletedJob",
            format!("Saw completed job: {name}, condition: Complete")
        )]
    );
    assert_eq!(
        w.cj["status"],
        json!({"lastScheduleTime": time(T0 + 5 * MIN), "lastSuccessfulTime": time(T0 + 5 * MIN + 40)})
    );
    // A failed run does not move lastSuccessfulTime.
    w.now = T0 + 10 * MIN;
    w.step();
    w.finish(&name_at(T0 + 10 * MIN), "Failed");
    w.step();
    assert_eq!(
        w.cj["status"]["lastSuccessfulTime"],
        time(T0 + 5 * MIN + 40)
    );
    assert_eq!(w.jobs.len(), 2);
}

#[test]
fn forbid_skips_while_a_job_runs() {
    let mut w = World::new(cronjob(
        "*/5 * * * *",
        json!({"concurrencyPolicy": "Forbid"}),
    ));
    w.now = T0 + 5 * MIN;
    w.step();
    w.now = T0 + 10 * MIN;
    let plan = w.step();
    assert!(plan.create.is_none());
    assert_eq!(
        plan.events,
        vec![Event::normal(
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"
        )]
    );
    assert_eq!(plan.requeue_after, ms(300_100));
    // Once the first run finishes, the missed 00:10 run still starts (no deadline).
    w.now += 30;
    w.finish(&name_at(T0 + 5 * MIN), "Complete");
    let plan = w.step();
    assert_eq!(
        plan.create.as_ref().unwrap()["metadata"]["name"],
        name_at(T0 + 10 * MIN)
    );
}

#[test]
fn replace_deletes_the_running_job() {
    let mut w = World::new(cronjob(
        "*/5 * * * *",
        json!({"concurrencyPolicy": "Replace"}),
    ));
    w.now = T0 + 5 * MIN;
    w.step();
    w.now = T0 + 10 * MIN;
    let plan = w.step();
    let old = name_at(T0 + 5 * MIN);
    let new = name_at(T0 + 10 * MIN);
    assert_eq!(plan.delete, vec![old.clone()]);
    assert_eq!(
        plan.events,
        vec![
            Event::normal("SuccessfulDelete", format!("Deleted job {old}")),
            Event::normal("SuccessfulCreate", format!("Created job {new}")),
        ]
    );
    assert_eq!(w.job_names(), vec![new.clone()]);
    assert_eq!(w.cj["status"]["active"][0]["name"], new);
    assert_eq!(w.cj["status"]["active"].as_array().unwrap().len(), 1);
}

#[test]
fn allow_runs_concurrently() {
    let mut w = World::new(cronjob("*/5 * * * *", json!({})));
    for m in [5, 10, 15] {
        w.now = T0 + m * MIN;
        w.step();
    }
    assert_eq!(w.cj["status"]["active"].as_array().unwrap().len(), 3);
}

#[test]
fn history_limits_delete_the_oldest_finished_jobs() {
    let mut w = World::new(cronjob(
        "* * * * *",
        json!({"successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1}),
    ));
    for m in 1..=6 {
        let start = T0 + m * MIN;
        let (condition, done) = if m % 2 == 0 {
            ("Failed", Value::Null)
        } else {
            ("Complete", json!(time(start + 30)))
        };
        w.jobs.push(json!({
            "metadata": {"name": name_at(start), "namespace": "ns", "uid": format!("u{m}"),
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                    "name": "hello", "uid": "cj-uid", "controller": true}]},
            "status": {"startTime": time(start), "completionTime": done,
                "conditions": [{"type": condition, "status": "True"}]}
        }));
    }
    w.cj["status"] = json!({"lastScheduleTime": time(T0 + 6 * MIN)});
    w.now = T0 + 6 * MIN + 40;
    let plan = w.step();
    let n = |m: i64| name_at(T0 + m * MIN);
    assert_eq!(plan.delete, vec![n(1), n(2), n(4)]);
    assert_eq!(w.job_names(), vec![n(3), n(5), n(6)]);
    assert!(w.cj["status"].get("active").is_none());
}

#[test]
fn default_history_limits_keep_three_successes_and_one_failure() {
    let d = cronjob::with_defaults(&cronjob("@hourly", json!({})));
    assert_eq!(d["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(d["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(d["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(d["spec"]["suspend"], false);
}

#[test]
fn starting_deadline_skips_runs_that_are_too_late() {
    let mut w = World::new(cronjob(
        "*/5 * * * *",
        json!({"startingDeadlineSeconds": 60}),
    ));
    // The controller was down at 00:05 and 00:10; 00:10 is still within the deadline.
    w.now = T0 + 10 * MIN + 30;
    let plan = w.step();
    assert_eq!(
        plan.create.as_ref().unwrap()["metadata"]["name"],
        name_at(T0 + 10 * MIN)
    );
    // Down again over 00:15: by 00:16:30 that run is past its deadline and is skipped.
    w.now = T0 + 16 * MIN + 30;
    let plan = w.step();
    assert!(plan.create.is_none());
    assert_eq!(plan.requeue_after, ms(210_100));
}

#[test]
fn too_many_missed_start_times_warns_and_starts_the_latest() {
    let mut w = World::new(cronjob("* * * * *", json!({})));
    w.now = T0 + 3 * 3600 + 10;
    let plan = w.step();
    assert_eq!(
        plan.events[0],
        Event::warning(
            "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
        )
    );
    assert_eq!(
        plan.create.as_ref().unwrap()["metadata"]["name"],
        name_at(T0 + 3 * 3600)
    );
    assert_eq!(w.cj["status"]["lastScheduleTime"], time(T0 + 3 * 3600));
}

#[test]
fn suspended_creates_nothing() {
    let mut w = World::new(cronjob("*/5 * * * *", json!({"suspend": true})));
    w.now = T0 + 30 * MIN;
    let plan = w.step();
    assert!(plan.create.is_none() && plan.events.is_empty());
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn time_zone_moves_the_schedule_and_the_annotation() {
    let mut w = World::new(cronjob("0 9 * * *", json!({"timeZone": "Europe/Berlin"})));
    w.now = T0 + 7 * 3600;
    assert_eq!(w.step().requeue_after, ms(3_600_100));
    w.now = T0 + 8 * 3600;
    let plan = w.step();
    let job = plan.create.as_ref().unwrap();
    assert_eq!(job["metadata"]["name"], name_at(T0 + 8 * 3600));
    assert_eq!(
        job["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
        "2027-01-15T09:00:00+01:00"
    );
    assert_eq!(plan.requeue_after, ms(86_400_100));
}

#[test]
fn tz_in_the_schedule_is_refused() {
    let mut w = World::new(cronjob("CRON_TZ=Asia/Tokyo 0 9 * * *", json!({})));
    w.now = T0 + 20 * 3600;
    let plan = w.step();
    assert!(plan.create.is_none());
    assert_eq!(
        plan.events,
        vec![Event::warning(
            "UnsupportedSchedule",
            "CRON_TZ or TZ used in schedule \"CRON_TZ=Asia/Tokyo 0 9 * * *\" is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details"
        )]
    );
}

#[test]
fn unknown_time_zone_and_bad_schedules_are_reported() {
    let w = World::new(cronjob("0 9 * * *", json!({"timeZone": "Mars/Olympus"})));
    assert_eq!(
        w.plan().events,
        vec![Event::warning(
            "UnknownTimeZone",
            "invalid timeZone: \"Mars/Olympus\": unknown time zone Mars/Olympus"
        )]
    );
    for bad in [
        "61 * * * *",
        "0 0 L * *",
        "0 0 * * 5#2",
        "* * * *",
        "@fortnightly",
    ] {
        let w = World::new(cronjob(bad, json!({})));
        let plan = w.plan();
        assert!(plan.is_empty(), "{bad}");
        assert_eq!(plan.events.len(), 1, "{bad}");
        assert_eq!(plan.events[0].reason, "UnparseableSchedule", "{bad}");
        assert!(
            plan.events[0]
                .message
                .starts_with(&format!("unparseable schedule: {bad:?} : ")),
            "{}",
            plan.events[0].message
        );
    }
}

#[test]
fn missing_and_unexpected_jobs() {
    let mut w = World::new(cronjob("*/5 * * * *", json!({})));
    w.now = T0 + 5 * MIN;
    w.step();
    let name = name_at(T0 + 5 * MIN);
    w.jobs.clear();
    w.now += 10;
    let plan = w.step();
    assert_eq!(
        plan.events,
        vec![Event::normal(
            "MissingJob",
            format!("Active job went missing: {name}")
        )]
    );
    assert!(w.cj["status"].get("active").is_none());
    w.jobs.push(
        json!({"metadata": {"name": "stray", "namespace": "ns", "uid": "uid-stray",
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello",
            "uid": "cj-uid", "controller": true}]}}),
    );
    let plan = w.step();
    assert_eq!(
        plan.events,
        vec![Event::warning(
            "UnexpectedJob",
            "Saw a job that the controller did not create or forgot: stray"
        )]
    );
}

#[test]
fn a_job_created_but_not_recorded_is_recorded_not_recreated() {
    let mut w = World::new(cronjob("*/5 * * * *", json!({})));
    w.now = T0 + 5 * MIN;
    let plan = w.plan();
    let mut job = plan.create.clone().unwrap();
    job["metadata"]["uid"] = json!("uid-x");
    w.jobs.push(job);
    let plan = w.step();
    assert!(plan.create.is_none());
    assert_eq!(w.cj["status"]["active"][0]["uid"], "uid-x");
    assert_eq!(w.cj["status"]["lastScheduleTime"], time(T0 + 5 * MIN));
}

#[test]
fn jobs_of_other_owners_are_ignored() {
    let mut w = World::new(cronjob(
        "*/5 * * * *",
        json!({"concurrencyPolicy": "Forbid"}),
    ));
    w.jobs.push(json!({"metadata": {"name": "other", "namespace": "ns", "uid": "u",
        "ownerReferences": [{"kind": "CronJob", "name": "x", "uid": "x-uid", "controller": true}]}}));
    w.now = T0 + 5 * MIN;
    assert!(w.step().create.is_some());
}

#[test]
fn schedules_follow_robfig_standard_semantics() {
    let next = |s: &str, tz: Option<&str>, t: i64| {
        Schedule::parse(s, tz)
            .unwrap()
            .next_after(t)
            .map(|n| n - T0)
    };
    assert_eq!(next("@hourly", None, T0), Some(3600));
    assert_eq!(next("@daily", None, T0), Some(86_400));
    assert_eq!(next("@midnight", None, T0 + 1), Some(86_400));
    assert_eq!(next("@every 1h30m", None, T0), Some(5400));
    assert_eq!(
        next("30 4 * * MON-FRI", None, T0),
        Some(4 * 3600 + 30 * MIN)
    );
    // 2027-01-15 is a Friday: Saturday and Sunday are skipped.
    assert_eq!(
        next("30 4 * * mon-fri", None, T0 + 5 * 3600),
        Some(3 * 86_400 + 4 * 3600 + 30 * MIN)
    );
    // Day of month and day of week restricted together: either matches.
    assert_eq!(next("0 0 16 * 1", None, T0), Some(86_400));
    assert_eq!(next("0 0 * JAN,FEB *", None, T0), Some(86_400));
    // ... but a stepped star (`*/2`) makes both required, as in robfig/cron: the next Monday
    // on an odd day is the 25th.
    assert_eq!(next("0 0 */2 * 1", None, T0), Some(10 * 86_400));
    assert_eq!(next("0 0 ? * 1", None, T0), Some(3 * 86_400));
    assert_eq!(next("0 0 1,15 * *", None, T0 + 1), Some(17 * 86_400));
    assert_eq!(next("*/20 9-10 * * *", None, T0), Some(9 * 3600));
    assert_eq!(
        next("0 9 * * *", Some("America/New_York"), T0),
        Some(14 * 3600)
    );
    assert_eq!(
        Schedule::parse("0 9 * * *", Some("Local")).unwrap_err(),
        ScheduleError::UnknownTimeZone("Local".into())
    );
    assert!(matches!(
        Schedule::parse("TZ=UTC 0 9 * * *", None),
        Err(ScheduleError::TimeZoneInSchedule(_))
    ));
}

#[test]
fn impossible_dates_are_an_invalid_schedule() {
    let w = World::new(cronjob("0 0 30 2 *", json!({})));
    let plan = w.plan();
    assert!(plan.is_empty());
    assert_eq!(plan.events.len(), 1);
    assert_eq!(plan.events[0].reason, "InvalidSchedule");
    assert_eq!(
        plan.events[0].message,
        "invalid schedule: 0 0 30 2 * : time difference between two schedules is less than 1 second"
    );
}
