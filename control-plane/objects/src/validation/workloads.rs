//! `apps/v1` (`Deployment`, `ReplicaSet`, `StatefulSet`, `DaemonSet`) and `batch/v1` (`Job`,
//! `CronJob`): upstream's `pkg/apis/apps/validation` and `pkg/apis/batch/validation`.

use serde_json::Value;

use super::json::{IntOrStr, Obj, boolean, child, get, int, int_or_str, str_or_empty};
use super::meta::{self, immutable, nonnegative};
use super::names;
use super::pod;
use crate::field::{FieldError, Path};

fn spec_path() -> Path {
    Path::new("spec")
}

/// Upstream's `ValidatePositiveIntOrPercent`.
fn positive_int_or_percent(
    v: Option<IntOrStr<'_>>,
    raw: Option<&Value>,
    p: &Path,
    e: &mut Vec<FieldError>,
) {
    match v {
        Some(IntOrStr::Str(s)) => {
            let ok = s.len() > 1
                && s.ends_with('%')
                && s[..s.len() - 1].bytes().all(|c| c.is_ascii_digit());
            if !ok {
                e.push(FieldError::invalid(
                    p.clone(),
                    raw.cloned().unwrap_or(Value::Null),
                    names::regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        "[0-9]+%",
                        &["1%", "93%"],
                    ),
                ));
            }
        }
        Some(IntOrStr::Int(i)) => nonnegative(i, p, e),
        None => {}
    }
}

/// The value of an int-or-percent, and whether it was a percent.
fn int_or_percent_value(v: &Option<IntOrStr<'_>>) -> (i64, bool) {
    match v {
        Some(IntOrStr::Int(i)) => (*i, false),
        Some(IntOrStr::Str(s)) => (
            s.strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            true,
        ),
        None => (0, false),
    }
}

/// Upstream's `IsNotMoreThan100Percent`.
fn not_more_than_100_percent(
    v: &Option<IntOrStr<'_>>,
    raw: Option<&Value>,
    p: &Path,
    e: &mut Vec<FieldError>,
) {
    let (n, pct) = int_or_percent_value(v);
    if pct && n > 100 {
        e.push(FieldError::invalid(
            p.clone(),
            raw.cloned().unwrap_or(Value::Null),
            "must not be greater than 100%",
        ));
    }
}

/// Selector required, valid, non-empty; template labels matched; template a valid pod template
/// whose restart policy is `Always` and has no `activeDeadlineSeconds`.
fn selector_and_template(spec: Option<&Obj>, owner: &str, e: &mut Vec<FieldError>) {
    let sp = spec_path();
    let sel = child(spec, "selector", &sp, e);
    match sel {
        None => e.push(FieldError::required(sp.child("selector"), "")),
        Some(sel) => {
            meta::label_selector(Some(sel), &sp.child("selector"), e);
            if meta::selector_is_empty(sel) {
                e.push(FieldError::invalid(
                    sp.child("selector"),
                    Value::Object(sel.clone()),
                    format!("empty selector is invalid for {owner}"),
                ));
            }
        }
    }
    let tp = sp.child("template");
    let template = child(spec, "template", &sp, e);
    if let Some(sel) = sel {
        let labels = pod::template_labels(template);
        if !meta::selector_is_empty(sel) && !meta::selector_matches(sel, &labels) {
            let shown: serde_json::Map<String, Value> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect();
            e.push(FieldError::invalid(
                tp.child("metadata").child("labels"),
                Value::Object(shown),
                "`selector` does not match template `labels`",
            ));
        }
    }
    pod::pod_template(template, &tp, e);
    let ts = template
        .and_then(|t| t.get("spec"))
        .and_then(Value::as_object);
    let restart = ts
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if restart != "Always" {
        e.push(FieldError::not_supported(
            tp.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if ts.is_some_and(|s| s.get("activeDeadlineSeconds").is_some_and(|v| !v.is_null())) {
        let kind = match owner {
            "statefulset" => "StatefulSet",
            "daemonset" => "DaemonSet",
            _ => "ReplicaSet",
        };
        e.push(FieldError::forbidden(
            tp.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

fn nonneg_field(spec: Option<&Obj>, key: &str, e: &mut Vec<FieldError>) -> Option<i64> {
    let p = spec_path().child(key);
    let v = int(get(spec, key), &p, e);
    if let Some(v) = v {
        nonnegative(v, &p, e);
    }
    v
}

/// Upstream's `ValidateDeployment`.
pub(crate) fn deployment(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    nonneg_field(spec, "replicas", e);
    selector_and_template(spec, "deployment", e);
    let stp = sp.child("strategy");
    let strategy = child(spec, "strategy", &sp, e);
    let t = str_or_empty(get(strategy, "type"), &stp.child("type"), e);
    let ru = child(strategy, "rollingUpdate", &stp, e);
    let rup = stp.child("rollingUpdate");
    match t {
        "Recreate" => {
            if ru.is_some() {
                e.push(FieldError::forbidden(
                    rup,
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match ru {
            None => e.push(FieldError::required(
                rup,
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let (mu_raw, ms_raw) = (get(Some(ru), "maxUnavailable"), get(Some(ru), "maxSurge"));
                let mu = int_or_str(mu_raw, &rup.child("maxUnavailable"), e);
                let ms = int_or_str(ms_raw, &rup.child("maxSurge"), e);
                positive_int_or_percent(mu.clone(), mu_raw, &rup.child("maxUnavailable"), e);
                positive_int_or_percent(ms.clone(), ms_raw, &rup.child("maxSurge"), e);
                if int_or_percent_value(&mu).0 == 0 && int_or_percent_value(&ms).0 == 0 {
                    e.push(FieldError::invalid(
                        rup.child("maxUnavailable"),
                        mu_raw.cloned().unwrap_or(Value::from(0)),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_more_than_100_percent(&mu, mu_raw, &rup.child("maxUnavailable"), e);
            }
        },
        _ => e.push(FieldError::not_supported(
            stp,
            strategy.cloned().map(Value::Object).unwrap_or(Value::Null),
            &["Recreate", "RollingUpdate"],
        )),
    }
    let min_ready = nonneg_field(spec, "minReadySeconds", e).unwrap_or(0);
    nonneg_field(spec, "revisionHistoryLimit", e);
    if let Some(pds) = nonneg_field(spec, "progressDeadlineSeconds", e)
        && pds <= min_ready
    {
        e.push(FieldError::invalid(
            sp.child("progressDeadlineSeconds"),
            pds,
            "must be greater than minReadySeconds",
        ));
    }
}

/// Upstream's `ValidateReplicaSet`.
pub(crate) fn replica_set(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let spec = child(Some(root), "spec", &Path::default(), e);
    nonneg_field(spec, "replicas", e);
    nonneg_field(spec, "minReadySeconds", e);
    // Upstream's message names deployments here too.
    selector_and_template(spec, "deployment", e);
}

/// Upstream's `ValidateStatefulSet`.
pub(crate) fn stateful_set(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    let pmp = str_or_empty(
        get(spec, "podManagementPolicy"),
        &sp.child("podManagementPolicy"),
        e,
    );
    if pmp != "OrderedReady" && pmp != "Parallel" {
        e.push(FieldError::invalid(
            sp.child("podManagementPolicy"),
            pmp,
            "must be 'OrderedReady' or 'Parallel'",
        ));
    }
    let up = sp.child("updateStrategy");
    let us = child(spec, "updateStrategy", &sp, e);
    let t = str_or_empty(get(us, "type"), &up.child("type"), e);
    let ru = child(us, "rollingUpdate", &up, e);
    match t {
        "OnDelete" => {
            if let Some(ru) = ru {
                e.push(FieldError::invalid(
                    up.child("rollingUpdate"),
                    Value::Object(ru.clone()),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            let pp = up.child("rollingUpdate").child("partition");
            if let Some(part) = int(get(ru, "partition"), &pp, e) {
                nonnegative(part, &pp, e);
            }
        }
        _ => e.push(FieldError::invalid(
            up,
            us.cloned().map(Value::Object).unwrap_or(Value::Null),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    let rp = sp.child("persistentVolumeClaimRetentionPolicy");
    if let Some(r) = child(spec, "persistentVolumeClaimRetentionPolicy", &sp, e) {
        for f in ["whenDeleted", "whenScaled"] {
            let v = str_or_empty(get(Some(r), f), &rp.child(f), e);
            if v != "Retain" && v != "Delete" {
                e.push(FieldError::not_supported(
                    rp.child(f),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonneg_field(spec, "replicas", e);
    nonneg_field(spec, "minReadySeconds", e);
    nonneg_field(spec, "revisionHistoryLimit", e);
    selector_and_template(spec, "statefulset", e);
}

/// Upstream's `ValidateDaemonSet`.
pub(crate) fn daemon_set(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    selector_and_template(spec, "daemonset", e);
    nonneg_field(spec, "minReadySeconds", e);
    nonneg_field(spec, "templateGeneration", e);
    nonneg_field(spec, "revisionHistoryLimit", e);
    let up = sp.child("updateStrategy");
    let us = child(spec, "updateStrategy", &sp, e);
    let t = str_or_empty(get(us, "type"), &up.child("type"), e);
    match t {
        "OnDelete" => {}
        "RollingUpdate" => {
            let rup = up.child("rollingUpdate");
            let Some(ru) = child(us, "rollingUpdate", &up, e) else {
                e.push(FieldError::required(rup, ""));
                return;
            };
            let (mu_raw, ms_raw) = (get(Some(ru), "maxUnavailable"), get(Some(ru), "maxSurge"));
            let mu = int_or_str(mu_raw, &rup.child("maxUnavailable"), e);
            let ms = int_or_str(ms_raw, &rup.child("maxSurge"), e);
            positive_int_or_percent(mu.clone(), mu_raw, &rup.child("maxUnavailable"), e);
            positive_int_or_percent(ms.clone(), ms_raw, &rup.child("maxSurge"), e);
            not_more_than_100_percent(&mu, mu_raw, &rup.child("maxUnavailable"), e);
            not_more_than_100_percent(&ms, ms_raw, &rup.child("maxSurge"), e);
            let has_u = int_or_percent_value(&mu).0 != 0;
            let has_s = int_or_percent_value(&ms).0 != 0;
            if has_u && has_s {
                e.push(FieldError::invalid(
                    rup.child("maxSurge"),
                    ms_raw.cloned().unwrap_or(Value::Null),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !has_u && !has_s {
                e.push(FieldError::required(
                    rup.child("maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                ));
            }
        }
        _ => e.push(FieldError::not_supported(
            up,
            us.cloned().map(Value::Object).unwrap_or(Value::Null),
            &["RollingUpdate", "OnDelete"],
        )),
    }
}

/// `spec.selector` may not change (apps/v1 workloads, Jobs).
pub(crate) fn selector_immutable(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    let sel = |o: &Obj| o.get("spec").and_then(|s| s.get("selector")).cloned();
    immutable(
        sel(new).as_ref(),
        sel(old).as_ref(),
        &spec_path().child("selector"),
        e,
    );
}

/// Upstream's `ValidateStatefulSetUpdate`: only some spec fields may change.
pub(crate) fn stateful_set_update(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    let strip = |o: &Obj| {
        let mut s = o
            .get("spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for f in [
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
        ] {
            s.remove(f);
        }
        s.retain(|_, v| !v.is_null());
        s
    };
    if strip(new) != strip(old) {
        e.push(FieldError::forbidden(
            spec_path(),
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}

/// The Job spec rules shared by Jobs and CronJob job templates (upstream's `validateJobSpec`).
fn job_spec(spec: Option<&Obj>, p: &Path, e: &mut Vec<FieldError>) {
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        if let Some(v) = int(get(spec, f), &p.child(f), e) {
            nonnegative(v, &p.child(f), e);
        }
    }
    if let Some(cm) =
        super::json::string(get(spec, "completionMode"), &p.child("completionMode"), e)
    {
        if cm != "NonIndexed" && cm != "Indexed" {
            e.push(FieldError::not_supported(
                p.child("completionMode"),
                cm,
                &["NonIndexed", "Indexed"],
            ));
        }
        if cm == "Indexed" {
            if get(spec, "completions").is_none() {
                e.push(FieldError::required(
                    p.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            let par = get(spec, "parallelism")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if par > 100_000 {
                e.push(FieldError::invalid(
                    p.child("parallelism"),
                    par,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
        }
    }
    if let Some(rp) = super::json::string(
        get(spec, "podReplacementPolicy"),
        &p.child("podReplacementPolicy"),
        e,
    ) && rp != "TerminatingOrFailed"
        && rp != "Failed"
    {
        e.push(FieldError::not_supported(
            p.child("podReplacementPolicy"),
            rp,
            &["Failed", "TerminatingOrFailed"],
        ));
    }
    let tp = p.child("template");
    let template = child(spec, "template", p, e);
    pod::pod_template(template, &tp, e);
    let restart = template
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if restart != "OnFailure" && restart != "Never" {
        e.push(FieldError::not_supported(
            tp.child("spec").child("restartPolicy"),
            restart,
            &["OnFailure", "Never"],
        ));
    }
}

/// Upstream's `ValidateJob` (without the generated-selector checks, which need the uid the
/// registry assigns).
pub(crate) fn job(root: &Obj, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    let sel = child(spec, "selector", &sp, e);
    match sel {
        None => e.push(FieldError::required(sp.child("selector"), "")),
        Some(sel) => {
            meta::label_selector(Some(sel), &sp.child("selector"), e);
            let template = spec
                .and_then(|s| s.get("template"))
                .and_then(Value::as_object);
            let labels = pod::template_labels(template);
            if !meta::selector_matches(sel, &labels) {
                let shown: serde_json::Map<String, Value> = labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                    .collect();
                e.push(FieldError::invalid(
                    sp.child("template").child("metadata").child("labels"),
                    Value::Object(shown),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    job_spec(spec, &sp, e);
}

/// Upstream's `ValidateJobSpecUpdate`: selector, template (unless suspended), completion mode
/// and completions are fixed.
pub(crate) fn job_update(new: &Obj, old: &Obj, e: &mut Vec<FieldError>) {
    let sp = spec_path();
    let get_spec = |o: &Obj, k: &str| o.get("spec").and_then(|s| s.get(k)).cloned();
    selector_immutable(new, old, e);
    let suspended = |o: &Obj| get_spec(o, "suspend") == Some(Value::Bool(true));
    if !(suspended(new) && suspended(old)) {
        let (n, o) = (get_spec(new, "template"), get_spec(old, "template"));
        if n != o {
            e.push(FieldError::invalid(
                sp.child("template"),
                n.unwrap_or(Value::Null),
                meta::FIELD_IMMUTABLE,
            ));
        }
    }
    for f in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex"] {
        immutable(
            get_spec(new, f).as_ref(),
            get_spec(old, f).as_ref(),
            &sp.child(f),
            e,
        );
    }
    let indexed = get_spec(new, "completionMode") == Some(Value::from("Indexed"));
    let (nc, oc) = (get_spec(new, "completions"), get_spec(old, "completions"));
    if nc != oc {
        let elastic = indexed
            && get_spec(new, "completions") == get_spec(new, "parallelism")
            && get_spec(old, "completions") == get_spec(old, "parallelism");
        if !elastic {
            e.push(FieldError::invalid(
                sp.child("completions"),
                nc.unwrap_or(Value::Null),
                meta::FIELD_IMMUTABLE,
            ));
        }
    }
}

/// Upstream's `ValidateCronJobCreate` / `validateCronJobSpec`.
pub(crate) fn cron_job(root: &Obj, old_schedule: Option<&str>, e: &mut Vec<FieldError>) {
    meta::object_meta(root, true, names::name_is_dns_subdomain, e);
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.len() > 52 {
        e.push(FieldError::invalid(
            Path::new("metadata").child("name"),
            name,
            "must be no more than 52 characters",
        ));
    }
    let sp = spec_path();
    let spec = child(Some(root), "spec", &Path::default(), e);
    let schedule = str_or_empty(get(spec, "schedule"), &sp.child("schedule"), e);
    let time_zone = super::json::string(get(spec, "timeZone"), &sp.child("timeZone"), e);
    if schedule.is_empty() {
        e.push(FieldError::required(sp.child("schedule"), ""));
    } else {
        let allow_tz = old_schedule.is_some_and(|s| s.contains("TZ"));
        if let Err(msg) = cron::parse_standard(schedule) {
            e.push(FieldError::invalid(sp.child("schedule"), schedule, msg));
        }
        if allow_tz && schedule.contains("TZ") && time_zone.is_some() {
            e.push(FieldError::invalid(
                sp.child("schedule"),
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            e.push(FieldError::invalid(
                sp.child("schedule"),
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(tz) = time_zone {
        let ok = !tz.is_empty()
            && tz != "Local"
            && tz
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"/_-+".contains(&c));
        if !ok {
            e.push(FieldError::invalid(
                sp.child("timeZone"),
                tz,
                format!("unknown time zone {tz}"),
            ));
        }
    }
    for f in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        nonneg_field(spec, f, e);
    }
    let cp = str_or_empty(
        get(spec, "concurrencyPolicy"),
        &sp.child("concurrencyPolicy"),
        e,
    );
    pod::one_of(
        cp,
        &["Allow", "Forbid", "Replace"],
        &sp.child("concurrencyPolicy"),
        e,
    );
    let jp = sp.child("jobTemplate");
    let jt = child(spec, "jobTemplate", &sp, e);
    let jtm = child(jt, "metadata", &jp, e);
    meta::labels(get(jtm, "labels"), &jp.child("metadata").child("labels"), e);
    meta::annotations(
        get(jtm, "annotations"),
        &jp.child("metadata").child("annotations"),
        e,
    );
    let jsp = jp.child("spec");
    let js = child(jt, "spec", &jp, e);
    if let Some(sel) = get(js, "selector") {
        e.push(FieldError::invalid(
            jsp.child("selector"),
            sel.clone(),
            "`selector` will be auto-generated",
        ));
    }
    if boolean(get(js, "manualSelector"), &jsp.child("manualSelector"), e) == Some(true) {
        e.push(FieldError::not_supported(
            jsp.child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    job_spec(js, &jsp, e);
}

/// Five-field cron schedules as robfig/cron's `ParseStandard` reads them, with its messages.
mod cron {
    const DESCRIPTORS: &[&str] = &[
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ];
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

    /// `Ok` when robfig/cron would accept `spec`, else its error text.
    pub(super) fn parse_standard(spec: &str) -> Result<(), String> {
        let mut spec = spec.trim();
        if spec.is_empty() {
            return Err("empty spec string".to_owned());
        }
        if let Some(rest) = spec
            .strip_prefix("TZ=")
            .or_else(|| spec.strip_prefix("CRON_TZ="))
        {
            match rest.split_once(' ') {
                Some((_, s)) => spec = s.trim(),
                None => return Err("provided bad location".to_owned()),
            }
        }
        if spec.starts_with('@') {
            if DESCRIPTORS.contains(&spec) {
                return Ok(());
            }
            if let Some(d) = spec.strip_prefix("@every ") {
                return if go_duration_ok(d.trim()) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {spec}: time: invalid duration \"{}\"",
                        d.trim()
                    ))
                };
            }
            return Err(format!("unrecognized descriptor: {spec}"));
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            ));
        }
        let bounds: [(u32, u32, &[&str]); 5] = [
            (0, 59, &[]),
            (0, 23, &[]),
            (1, 31, &[]),
            (1, 12, MONTHS),
            (0, 6, DAYS),
        ];
        for (f, (min, max, names)) in fields.iter().zip(bounds) {
            for expr in f.split(',') {
                range(expr, min, max, names)?;
            }
        }
        Ok(())
    }

    fn go_duration_ok(d: &str) -> bool {
        let mut rest = d;
        if rest.is_empty() {
            return false;
        }
        while !rest.is_empty() {
            let n = rest
                .bytes()
                .take_while(|c| c.is_ascii_digit() || *c == b'.')
                .count();
            if n == 0 {
                return false;
            }
            rest = &rest[n..];
            let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
                .iter()
                .find(|u| rest.starts_with(**u));
            match unit {
                Some(u) => rest = &rest[u.len()..],
                None => return false,
            }
        }
        true
    }

    fn number(s: &str, names: &[&str]) -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            let base = if names.len() == 12 { 1 } else { 0 };
            return Ok(u32::try_from(i).unwrap_or(0) + base);
        }
        s.parse::<u32>().map_err(|_| {
            if s.starts_with('-') && s[1..].bytes().all(|c| c.is_ascii_digit()) && s.len() > 1 {
                format!("negative number ({s}) not allowed: {s}")
            } else {
                format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax")
            }
        })
    }

    fn range(expr: &str, min: u32, max: u32, names: &[&str]) -> Result<(), String> {
        let (range_part, step) = match expr.split('/').collect::<Vec<_>>().as_slice() {
            [r] => (*r, None),
            [r, s] => (*r, Some(*s)),
            _ => return Err(format!("too many slashes: {expr}")),
        };
        let lo_hi: Vec<&str> = range_part.split('-').collect();
        let (start, end) = match lo_hi.as_slice() {
            ["*"] | ["?"] => (min, max),
            [one] => {
                let n = number(one, names)?;
                (n, if step.is_some() { max } else { n })
            }
            [a, b] => (number(a, names)?, number(b, names)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        if let Some(s) = step {
            let n = number(s, &[])?;
            if n == 0 {
                return Err(format!("step of range should be a positive number: {expr}"));
            }
        }
        if start < min {
            return Err(format!(
                "beginning of range ({start}) below minimum ({min}): {expr}"
            ));
        }
        if end > max {
            return Err(format!(
                "end of range ({end}) above maximum ({max}): {expr}"
            ));
        }
        if start > end {
            return Err(format!(
                "beginning of range ({start}) beyond end of range ({end}): {expr}"
            ));
        }
        Ok(())
    }
}
