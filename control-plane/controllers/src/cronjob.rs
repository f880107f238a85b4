//! The CronJob controller's reconcile core (`pkg/controller/cronjob`, the v2 controller): track
//! the Jobs a CronJob owns, clean up finished ones beyond the history limits, and create the Job
//! for the most recent unmet schedule time, honouring `suspend`, `startingDeadlineSeconds`,
//! `concurrencyPolicy` and `timeZone`.
//!
//! Schedules use the five-field cron syntax of `robfig/cron`'s standard parser (names for months
//! and weekdays, `*`, `?`, ranges, lists and steps) plus its `@yearly`, `@annually`, `@monthly`,
//! `@weekly`, `@daily`, `@midnight`, `@hourly` and `@every <duration>` descriptors; they are
//! evaluated by `croner` in the CronJob's `spec.timeZone` (UTC when unset) from `chrono-tz`'s
//! compiled-in IANA database, so evaluation reads no files.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde_json::{Map, Value, json};

use crate::event::Event;
use crate::meta;

/// The annotation recording the schedule time a Job was created for, in RFC 3339 in the
/// CronJob's time zone.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream's `nextScheduleDelta`: the requeue lands this long after the schedule time, so the
/// sync sees that time as passed.
pub const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// More missed start times than this earn a `TooManyMissedTimes` warning.
pub const MANY_MISSED: i64 = 100;

/// Why a schedule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The schedule carries a `CRON_TZ=` or `TZ=` prefix; `spec.timeZone` is the supported way.
    #[error(
        "CRON_TZ or TZ used in schedule {0:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details"
    )]
    TimeZoneInSchedule(String),
    /// `spec.timeZone` names no IANA time zone.
    #[error("unknown time zone {0}")]
    UnknownTimeZone(String),
    /// The schedule is not standard cron syntax.
    #[error("{0}")]
    Unparseable(String),
}

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    tz: Tz,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron(Box<Cron>),
    /// `@every <duration>`, in whole seconds (at least one).
    Every(i64),
}

impl Schedule {
    /// Parses `schedule` (standard five-field cron or a descriptor) for `time_zone` (an IANA
    /// name; UTC when `None`).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        if schedule.contains("TZ") {
            return Err(ScheduleError::TimeZoneInSchedule(schedule.to_owned()));
        }
        let tz = match time_zone {
            None | Some("") => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| ScheduleError::UnknownTimeZone(name.to_owned()))?,
        };
        let spec = schedule.trim();
        let kind = if let Some(rest) = spec.strip_prefix("@every ") {
            let d = parse_go_duration(rest.trim()).ok_or_else(|| {
                ScheduleError::Unparseable(format!("failed to parse duration {spec}: {rest}"))
            })?;
            Kind::Every(d.max(1))
        } else {
            let fields = match spec {
                "@yearly" | "@annually" => "0 0 1 1 *",
                "@monthly" => "0 0 1 * *",
                "@weekly" => "0 0 * * 0",
                "@daily" | "@midnight" => "0 0 * * *",
                "@hourly" => "0 * * * *",
                s if s.starts_with('@') => {
                    return Err(ScheduleError::Unparseable(format!(
                        "unrecognized descriptor: {s}"
                    )));
                }
                s => {
                    check_standard_fields(s)?;
                    s
                }
            };
            // robfig/cron matches day of month AND day of week when either field starts one
            // of its parts with `*` or `?` (`*/2` included), and either of them otherwise;
            // croner only treats a bare `*` so, so say which.
            let parts: Vec<&str> = fields.split_whitespace().collect();
            let starred = |f: &str| {
                f.split(',')
                    .any(|p| matches!(p.split('/').next(), Some("*" | "?")))
            };
            let dom_and_dow = parts.len() == 5 && (starred(parts[2]) || starred(parts[4]));
            let cron = CronParser::builder()
                .seconds(Seconds::Disallowed)
                .year(Year::Disallowed)
                .dom_and_dow(dom_and_dow)
                .build()
                .parse(fields)
                .map_err(|e| ScheduleError::Unparseable(e.to_string()))?;
            Kind::Cron(Box::new(cron))
        };
        Ok(Schedule { kind, tz })
    }

    /// The first schedule time strictly after `t` (Unix seconds), if any within croner's range.
    pub fn next_after(&self, t: i64) -> Option<i64> {
        match &self.kind {
            Kind::Every(d) => Some(t + d),
            Kind::Cron(cron) => {
                let start = self.tz.timestamp_opt(t, 0).single()?;
                cron.find_next_occurrence(&start, false)
                    .ok()
                    .map(|n| n.timestamp())
            }
        }
    }

    /// `t` rendered in RFC 3339 in the schedule's time zone (`Z` for UTC), as Go's
    /// `time.RFC3339` layout renders it.
    pub fn format_in_zone(&self, t: i64) -> String {
        match self.tz.timestamp_opt(t, 0).single() {
            Some(dt) if self.tz == Tz::UTC => dt
                .with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Secs, true),
            None => meta::format_time(t),
        }
    }
}

/// Rejects what `robfig/cron`'s standard parser rejects but croner accepts: a field count other
/// than five and croner's extensions (`L`, `W`, `#`, `+`).
fn check_standard_fields(s: &str) -> Result<(), ScheduleError> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(ScheduleError::Unparseable(format!(
            "expected exactly 5 fields, found {}: {s}",
            fields.len()
        )));
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    for (i, field) in fields.iter().enumerate() {
        let names: &[&str] = match i {
            3 => &MONTHS,
            4 => &DAYS,
            _ => &[],
        };
        if let Some(c) = field
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '*' | '?' | ',' | '-' | '/')))
        {
            return Err(ScheduleError::Unparseable(format!(
                "failed to parse int from {field}: unexpected {c:?}"
            )));
        }
        for word in field
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty())
        {
            if !names.contains(&word.to_ascii_lowercase().as_str()) {
                return Err(ScheduleError::Unparseable(format!(
                    "failed to parse int from {word}: strconv.Atoi: parsing {word:?}: invalid syntax"
                )));
            }
        }
    }
    Ok(())
}

/// Go's `time.ParseDuration` for `@every`, truncated to whole seconds as `robfig/cron` does.
fn parse_go_duration(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        nanos += value * scale;
    }
    Some((nanos / 1e9) as i64)
}

/// The writes one CronJob sync asks for. Apply them in field order: deletions before the
/// creation (`concurrencyPolicy: Replace`), then the status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Names of Jobs to delete, oldest first, with `propagationPolicy: Background` (history
    /// limits, then `concurrencyPolicy: Replace`).
    pub delete: Vec<String>,
    /// The Job to create; its name is deterministic, so `AlreadyExists` means an earlier sync
    /// created it.
    pub create: Option<Value>,
    /// The new `status`, when it differs from the stored one. When `create` is set its last
    /// `active` entry refers to that Job without `uid`/`resourceVersion`: write
    /// [`Plan::status_with_created`] instead.
    pub status: Option<Value>,
    /// Events to record on the CronJob.
    pub events: Vec<Event>,
    /// Sync again after this long: just past the next schedule time.
    pub requeue_after: Option<Duration>,
}

impl Plan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.create.is_none() && self.status.is_none()
    }

    /// The planned status with the reference to the Job the API server just created (its `uid`
    /// and `resourceVersion`) filled in.
    pub fn status_with_created(&self, created: &Value) -> Option<Value> {
        let mut status = self.status.clone()?;
        if let Some(Value::Array(active)) = status.get_mut("active") {
            for r in active.iter_mut() {
                if r.get("name").and_then(Value::as_str) == Some(meta::name(created))
                    && r.get("uid").is_none()
                {
                    *r = job_reference(created);
                }
            }
        }
        Some(status)
    }
}

/// The `core/v1` ObjectReference upstream stores in `status.active`.
pub fn job_reference(job: &Value) -> Value {
    let mut r = Map::new();
    r.insert("kind".into(), json!("Job"));
    r.insert("namespace".into(), json!(meta::namespace(job)));
    r.insert("name".into(), json!(meta::name(job)));
    if !meta::uid(job).is_empty() {
        r.insert("uid".into(), json!(meta::uid(job)));
    }
    r.insert("apiVersion".into(), json!("batch/v1"));
    let rv = meta::str_at(job, "/metadata/resourceVersion");
    if !rv.is_empty() {
        r.insert("resourceVersion".into(), json!(rv));
    }
    Value::Object(r)
}

/// The CronJob with the API server's defaults filled in where absent: `concurrencyPolicy`
/// `Allow`, `suspend` false, `successfulJobsHistoryLimit` 3, `failedJobsHistoryLimit` 1.
pub fn with_defaults(cronjob: &Value) -> Value {
    let mut out = cronjob.clone();
    let spec = meta::object_at(&mut out, "spec");
    spec.entry("concurrencyPolicy").or_insert(json!("Allow"));
    spec.entry("suspend").or_insert(json!(false));
    spec.entry("successfulJobsHistoryLimit").or_insert(json!(3));
    spec.entry("failedJobsHistoryLimit").or_insert(json!(1));
    out
}

/// Upstream's `getJobName`: `<cronjob>-<scheduled time in minutes since the epoch>`.
pub fn job_name(cronjob: &Value, scheduled: i64) -> String {
    format!("{}-{}", meta::name(cronjob), scheduled.div_euclid(60))
}

/// Reconciles one CronJob against the Jobs of its namespace (`jobs` may include Jobs owned by
/// others; they are ignored).
pub fn reconcile(cronjob: &Value, jobs: &[Value], now: SystemTime) -> Plan {
    let now = meta::unix_seconds(now);
    let cj = &with_defaults(cronjob);
    let mut plan = Plan::default();
    let owned: Vec<&Value> = jobs
        .iter()
        .filter(|j| meta::namespace(j) == meta::namespace(cj))
        .filter(|j| {
            meta::controller_ref(j)
                .and_then(|r| r.get("uid"))
                .and_then(Value::as_str)
                == Some(meta::uid(cj))
        })
        .collect();
    let old_status = cj
        .get("status")
        .filter(|s| !s.is_null())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut status = Status::read(&old_status);

    cleanup_finished_jobs(cj, &owned, &mut status, &mut plan);
    plan.requeue_after = sync(cj, &owned, &mut status, &mut plan, now);

    let new = status.write(&old_status);
    if new != old_status {
        plan.status = Some(new);
    }
    plan
}

/// The parts of a CronJob status this core owns.
struct Status {
    active: Vec<Value>,
    last_schedule_time: Option<i64>,
    last_successful_time: Option<i64>,
}

impl Status {
    fn read(status: &Value) -> Status {
        let time = |k: &str| {
            status
                .get(k)
                .and_then(Value::as_str)
                .and_then(meta::parse_time)
        };
        Status {
            active: status
                .get("active")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            last_schedule_time: time("lastScheduleTime"),
            last_successful_time: time("lastSuccessfulTime"),
        }
    }

    fn write(&self, old: &Value) -> Value {
        let mut out = match old {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        if self.active.is_empty() {
            out.remove("active");
        } else {
            out.insert("active".into(), Value::Array(self.active.clone()));
        }
        for (k, v) in [
            ("lastScheduleTime", self.last_schedule_time),
            ("lastSuccessfulTime", self.last_successful_time),
        ] {
            match v {
                Some(t) => out.insert(k.into(), json!(meta::format_time(t))),
                None => out.remove(k),
            };
        }
        Value::Object(out)
    }

    fn has_active_uid(&self, uid: &str) -> bool {
        self.active
            .iter()
            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
    }

    fn has_active_name(&self, name: &str) -> bool {
        self.active
            .iter()
            .any(|r| r.get("name").and_then(Value::as_str) == Some(name))
    }

    fn remove_active(&mut self, uid: &str) {
        self.active
            .retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
    }
}

/// `Complete` or `Failed`, when the Job finished.
fn finished_type(job: &Value) -> Option<&str> {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
        .filter_map(|c| c.get("type").and_then(Value::as_str))
        .find(|t| matches!(*t, "Complete" | "Failed"))
}

fn delete_job(job: &Value, status: &mut Status, plan: &mut Plan) {
    if plan.delete.iter().any(|n| n == meta::name(job)) {
        return;
    }
    plan.delete.push(meta::name(job).to_owned());
    status.remove_active(meta::uid(job));
    plan.events.push(Event::normal(
        "SuccessfulDelete",
        format!("Deleted job {}", meta::name(job)),
    ));
}

/// Upstream's `cleanupFinishedJobs`: beyond each history limit, delete the finished Jobs that
/// started first (Jobs without a start time last, names breaking ties).
fn cleanup_finished_jobs(cj: &Value, owned: &[&Value], status: &mut Status, plan: &mut Plan) {
    for (kind, limit) in [
        ("Complete", "/spec/successfulJobsHistoryLimit"),
        ("Failed", "/spec/failedJobsHistoryLimit"),
    ] {
        let Some(limit) = cj.pointer(limit).and_then(Value::as_i64) else {
            continue;
        };
        let mut finished: Vec<&Value> = owned
            .iter()
            .copied()
            .filter(|j| finished_type(j) == Some(kind))
            .collect();
        let excess = finished.len() as i64 - limit;
        if excess <= 0 {
            continue;
        }
        finished.sort_by(|a, b| {
            let start = |j: &Value| meta::parse_time(meta::str_at(j, "/status/startTime"));
            match (start(a), start(b)) {
                (Some(x), Some(y)) if x != y => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                _ => meta::name(a).cmp(meta::name(b)),
            }
        });
        for job in finished.into_iter().take(excess as usize) {
            delete_job(job, status, plan);
        }
    }
}

/// Upstream's `syncCronJob`; returns when to sync again.
fn sync(
    cj: &Value,
    owned: &[&Value],
    status: &mut Status,
    plan: &mut Plan,
    now: i64,
) -> Option<Duration> {
    for job in owned {
        let uid = meta::uid(job);
        let found = status.has_active_uid(uid);
        let finished = finished_type(job);
        if !found && finished.is_none() {
            plan.events.push(Event::warning(
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    meta::name(job)
                ),
            ));
        } else if let Some(condition) = finished {
            if found {
                status.remove_active(uid);
                plan.events.push(Event::normal(
                    "SawCompletedJob",
                    format!(
                        "Saw completed job: {}, condition: {condition}",
                        meta::name(job)
                    ),
                ));
            }
            if condition == "Complete"
                && let Some(done) = meta::parse_time(meta::str_at(job, "/status/completionTime"))
                && status.last_successful_time.is_none_or(|t| done > t)
            {
                status.last_successful_time = Some(done);
            }
        }
    }
    // References to Jobs that no longer exist go.
    let missing: Vec<Value> = status
        .active
        .iter()
        .filter(|r| {
            let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
            !owned.iter().any(|j| meta::uid(j) == uid)
        })
        .cloned()
        .collect();
    for r in missing {
        let name = r.get("name").and_then(Value::as_str).unwrap_or("");
        plan.events.push(Event::normal(
            "MissingJob",
            format!("Active job went missing: {name}"),
        ));
        let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
        status.remove_active(uid);
    }

    if meta::is_deleting(cj) {
        return None;
    }
    let schedule_text = meta::str_at(cj, "/spec/schedule");
    let time_zone = cj.pointer("/spec/timeZone").and_then(Value::as_str);
    if let Some(tz) = time_zone.filter(|tz| !tz.is_empty())
        && tz.parse::<Tz>().is_err()
    {
        let e = ScheduleError::UnknownTimeZone(tz.to_owned());
        plan.events.push(Event::warning(
            "UnknownTimeZone",
            format!("invalid timeZone: {tz:?}: {e}"),
        ));
        return None;
    }
    if cj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let schedule = match Schedule::parse(schedule_text, time_zone) {
        Ok(s) => s,
        Err(e @ ScheduleError::TimeZoneInSchedule(_)) => {
            plan.events
                .push(Event::warning("UnsupportedSchedule", e.to_string()));
            return None;
        }
        Err(e) => {
            plan.events.push(Event::warning(
                "UnparseableSchedule",
                format!("unparseable schedule: {schedule_text:?} : {e}"),
            ));
            return None;
        }
    };
    let deadline = cj
        .pointer("/spec/startingDeadlineSeconds")
        .and_then(Value::as_i64);
    let creation = meta::parse_time(meta::str_at(cj, "/metadata/creationTimestamp")).unwrap_or(now);
    let earliest_of = |status: &Status| status.last_schedule_time.unwrap_or(creation);

    let scheduled = match most_recent_schedule_time(earliest_of(status), now, &schedule, deadline) {
        Err(e) => {
            plan.events.push(Event::warning(
                "InvalidSchedule",
                format!("invalid schedule: {schedule_text} : {e}"),
            ));
            return None;
        }
        Ok((_, None, _)) => None,
        Ok((_, Some(t), missed)) => {
            if missed > MANY_MISSED {
                plan.events.push(Event::warning(
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                ));
            }
            Some(t)
        }
    };
    let requeue = |status: &Status| next_schedule_duration(earliest_of(status), now, &schedule);
    let Some(scheduled) = scheduled else {
        return requeue(status);
    };
    if deadline.is_some_and(|d| scheduled + d < now) {
        plan.events.push(Event::warning(
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {}",
                rfc1123z(scheduled)
            ),
        ));
        return requeue(status);
    }
    let name = job_name(cj, scheduled);
    if status.has_active_name(&name) || status.last_schedule_time == Some(scheduled) {
        return requeue(status);
    }
    let policy = meta::str_at(cj, "/spec/concurrencyPolicy");
    if policy == "Forbid" && !status.active.is_empty() {
        plan.events.push(Event::normal(
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid",
        ));
        return requeue(status);
    }
    if policy == "Replace" {
        let active: Vec<Value> = status.active.clone();
        for r in active {
            let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
            if let Some(job) = owned.iter().find(|j| meta::uid(j) == uid) {
                delete_job(job, status, plan);
            }
        }
    }
    let job = job_from_template(cj, scheduled, &schedule);
    if let Some(existing) = owned.iter().find(|j| meta::name(j) == name) {
        // An earlier sync created it but did not record it.
        if !status.has_active_uid(meta::uid(existing)) {
            status.active.push(job_reference(existing));
        }
    } else {
        plan.events.push(Event::normal(
            "SuccessfulCreate",
            format!("Created job {name}"),
        ));
        status.active.push(job_reference(&job));
        plan.create = Some(job);
    }
    status.last_schedule_time = Some(scheduled);
    requeue(status)
}

/// Upstream's `getJobFromTemplate2`.
fn job_from_template(cj: &Value, scheduled: i64, schedule: &Schedule) -> Value {
    let template = cj
        .pointer("/spec/jobTemplate")
        .cloned()
        .unwrap_or(json!({}));
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(job_name(cj, scheduled)));
    metadata.insert("namespace".into(), json!(meta::namespace(cj)));
    if let Some(labels) = template.pointer("/metadata/labels") {
        metadata.insert("labels".into(), labels.clone());
    }
    let mut annotations = template
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        json!(schedule.format_in_zone(scheduled)),
    );
    metadata.insert("annotations".into(), Value::Object(annotations));
    metadata.insert(
        "ownerReferences".into(),
        json!([{
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": meta::name(cj),
            "uid": meta::uid(cj),
            "controller": true,
            "blockOwnerDeletion": true,
        }]),
    );
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    })
}

/// Upstream's `mostRecentScheduleTime`: the latest schedule time at or before `now` since
/// `earliest` (moved up to `now - startingDeadlineSeconds` when given), and roughly how many
/// were missed.
fn most_recent_schedule_time(
    earliest: i64,
    now: i64,
    schedule: &Schedule,
    deadline: Option<i64>,
) -> Result<(i64, Option<i64>, i64), String> {
    let mut earliest = earliest;
    if let Some(d) = deadline {
        earliest = earliest.max(now - d);
    }
    let too_close = || "time difference between two schedules is less than 1 second".to_owned();
    let t1 = schedule.next_after(earliest).ok_or_else(too_close)?;
    if now < t1 {
        return Ok((earliest, None, 0));
    }
    let t2 = schedule.next_after(t1).ok_or_else(too_close)?;
    if now < t2 {
        return Ok((earliest, Some(t1), 1));
    }
    let interval = t2 - t1;
    if interval < 1 {
        return Err(too_close());
    }
    let missed = (now - t1) / interval + 1;
    // Start a step early so uneven schedules (months, lists) still land on the latest time.
    let mut t = schedule.next_after(t1 + (missed - 2) * interval);
    let mut most_recent = None;
    while let Some(x) = t.filter(|x| *x <= now) {
        most_recent = Some(x);
        t = schedule.next_after(x);
    }
    Ok((earliest, most_recent, missed))
}

/// Upstream's `nextScheduleTimeDuration`: from the latest passed schedule time (or `earliest`
/// when none passed) to the next one, plus [`NEXT_SCHEDULE_DELTA`].
fn next_schedule_duration(earliest: i64, now: i64, schedule: &Schedule) -> Option<Duration> {
    let from = match most_recent_schedule_time(earliest, now, schedule, None) {
        Err(_) => now,
        Ok((_, Some(t), _)) => t,
        Ok((e, None, 0)) => e,
        Ok((_, None, _)) => now,
    };
    let next = schedule.next_after(from)?;
    Some(meta::seconds(next - now) + NEXT_SCHEDULE_DELTA)
}

/// Go's `time.RFC1123Z` in UTC: `Mon, 02 Jan 2006 15:04:05 +0000`.
fn rfc1123z(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .map(|d| d.format("%a, %d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_default()
}
