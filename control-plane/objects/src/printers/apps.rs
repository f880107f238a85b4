//! Printers of workloads: apps (Deployment, ReplicaSet, StatefulSet, DaemonSet,
//! ControllerRevision) and batch (Job, CronJob).

use serde_json::Value;

use super::descriptions::*;
use super::duration::{self, Nanos};
use super::selector::{format_label_selector, format_labels, selector_string};
use super::{
    Column, D_CONTAINERS, D_IMAGES, age, age_column, at, column, containers, human_duration,
    int_at, is_deleting, len_at, list_at, name, name_column, since, str_at, time_at, wide,
};

pub(super) fn deployment_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Ready", "string", "Number of the pod with ready state"),
        column("Up-to-date", "string", D_DEP_UPDATED),
        column("Available", "string", D_DEP_AVAILABLE),
        age_column(),
        wide("Containers", "string", D_CONTAINERS),
        wide("Images", "string", D_IMAGES),
        wide("Selector", "string", D_DEP_SELECTOR),
    ]
}

/// `printDeployment`: `ready/desired`; the selector as the selector's text, empty when there is
/// none and `<invalid>` when it cannot be converted (not `FormatLabelSelector`'s `<none>`).
pub(super) fn deployment(o: &Value, now: Nanos) -> Vec<Value> {
    let (names, images) = containers(at(o, &["spec", "template", "spec"]));
    let selector =
        selector_string(at(o, &["spec", "selector"])).unwrap_or_else(|()| "<invalid>".to_owned());
    vec![
        name(o).into(),
        format!(
            "{}/{}",
            int_at(o, &["status", "readyReplicas"]),
            int_at(o, &["spec", "replicas"])
        )
        .into(),
        int_at(o, &["status", "updatedReplicas"]).into(),
        int_at(o, &["status", "availableReplicas"]).into(),
        age(o, now),
        names,
        images,
        selector.into(),
    ]
}

pub(super) fn replica_set_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Desired", "integer", D_RS_SPEC_REPLICAS),
        column("Current", "integer", D_RS_STATUS_REPLICAS),
        column("Ready", "integer", D_RS_READY),
        age_column(),
        wide("Containers", "string", D_CONTAINERS),
        wide("Images", "string", D_IMAGES),
        wide("Selector", "string", D_RS_SELECTOR),
    ]
}

pub(super) fn replica_set(o: &Value, now: Nanos) -> Vec<Value> {
    let (names, images) = containers(at(o, &["spec", "template", "spec"]));
    vec![
        name(o).into(),
        int_at(o, &["spec", "replicas"]).into(),
        int_at(o, &["status", "replicas"]).into(),
        int_at(o, &["status", "readyReplicas"]).into(),
        age(o, now),
        names,
        images,
        format_label_selector(at(o, &["spec", "selector"])).into(),
    ]
}

pub(super) fn stateful_set_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Ready", "string", "Number of the pod with ready state"),
        age_column(),
        wide("Containers", "string", D_CONTAINERS),
        wide("Images", "string", D_IMAGES),
    ]
}

pub(super) fn stateful_set(o: &Value, now: Nanos) -> Vec<Value> {
    let (names, images) = containers(at(o, &["spec", "template", "spec"]));
    vec![
        name(o).into(),
        format!(
            "{}/{}",
            int_at(o, &["status", "readyReplicas"]),
            int_at(o, &["spec", "replicas"])
        )
        .into(),
        age(o, now),
        names,
        images,
    ]
}

pub(super) fn daemon_set_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Desired", "integer", D_DS_DESIRED),
        column("Current", "integer", D_DS_CURRENT),
        column("Ready", "integer", D_DS_READY),
        column("Up-to-date", "integer", D_DS_UPDATED),
        column("Available", "integer", D_DS_AVAILABLE),
        column("Node Selector", "string", D_POD_NODE_SELECTOR),
        age_column(),
        wide("Containers", "string", D_CONTAINERS),
        wide("Images", "string", D_IMAGES),
        wide("Selector", "string", D_DS_SELECTOR),
    ]
}

pub(super) fn daemon_set(o: &Value, now: Nanos) -> Vec<Value> {
    let (names, images) = containers(at(o, &["spec", "template", "spec"]));
    vec![
        name(o).into(),
        int_at(o, &["status", "desiredNumberScheduled"]).into(),
        int_at(o, &["status", "currentNumberScheduled"]).into(),
        int_at(o, &["status", "numberReady"]).into(),
        int_at(o, &["status", "updatedNumberScheduled"]).into(),
        int_at(o, &["status", "numberAvailable"]).into(),
        format_labels(at(o, &["spec", "template", "spec", "nodeSelector"])).into(),
        age(o, now),
        names,
        images,
        format_label_selector(at(o, &["spec", "selector"])).into(),
    ]
}

pub(super) fn revision_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Controller", "string", "Controller of the object"),
        column("Revision", "string", D_CR_REVISION),
        age_column(),
    ]
}

/// `printControllerRevision`: the controlling owner as `kind.group/name` in lower case
/// (`statefulset.apps/web`), `<none>` without one.
pub(super) fn revision(o: &Value, now: Nanos) -> Vec<Value> {
    let controller = list_at(o, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| at(r, &["controller"]).and_then(Value::as_bool) == Some(true));
    let controller = match controller {
        None => "<none>".to_owned(),
        Some(r) => {
            // Upstream fails the whole table when the owner's apiVersion has more than one
            // slash; it is then printed here as if it named no group.
            let api_version = str_at(r, &["apiVersion"]);
            let group = match api_version.split_once('/') {
                Some((group, version)) if !version.contains('/') => group,
                _ => "",
            };
            let kind = str_at(r, &["kind"]);
            let owner = str_at(r, &["name"]);
            if group.is_empty() && kind.is_empty() {
                owner.to_owned()
            } else if group.is_empty() {
                format!("{}/{owner}", kind.to_lowercase())
            } else {
                format!("{}.{}/{owner}", kind.to_lowercase(), group.to_lowercase())
            }
        }
    };
    vec![
        name(o).into(),
        controller.into(),
        int_at(o, &["revision"]).into(),
        age(o, now),
    ]
}

pub(super) fn job_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Status", "string", "Status of the job."),
        column("Completions", "string", D_JOB_SUCCEEDED),
        column("Duration", "string", "Time required to complete the job."),
        age_column(),
        wide("Containers", "string", D_CONTAINERS),
        wide("Images", "string", D_IMAGES),
        wide("Selector", "string", D_JOB_SELECTOR),
    ]
}

/// `printJob`: the status from the conditions (`Complete`, `Failed`, `Terminating`, `Suspended`,
/// `FailureTarget`, else `Running`), `succeeded/completions`, and how long it ran or has run.
pub(super) fn job(o: &Value, now: Nanos) -> Vec<Value> {
    let succeeded = int_at(o, &["status", "succeeded"]);
    let completions = if at(o, &["spec", "completions"]).is_some() {
        format!("{succeeded}/{}", int_at(o, &["spec", "completions"]))
    } else {
        match int_at(o, &["spec", "parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        }
    };
    // A start or completion time that cannot be read counts as missing.
    let took = match (
        time_at(o, &["status", "startTime"]),
        time_at(o, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(duration::sub(now, start)),
        (Some(start), Some(end)) => human_duration(duration::sub(end, start)),
    };
    let condition = |kind: &str| {
        list_at(o, &["status", "conditions"])
            .iter()
            .find(|c| str_at(c, &["type"]) == kind)
            .is_some_and(|c| str_at(c, &["status"]) == "True")
    };
    let status = if condition("Complete") {
        "Complete"
    } else if condition("Failed") {
        "Failed"
    } else if is_deleting(o) {
        "Terminating"
    } else if condition("Suspended") {
        "Suspended"
    } else if condition("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(at(o, &["spec", "template", "spec"]));
    vec![
        name(o).into(),
        status.into(),
        completions.into(),
        took.into(),
        age(o, now),
        names,
        images,
        format_label_selector(at(o, &["spec", "selector"])).into(),
    ]
}

pub(super) fn cron_job_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Schedule", "string", D_CJ_SCHEDULE),
        column("Timezone", "string", D_CJ_TIMEZONE),
        column("Suspend", "boolean", D_CJ_SUSPEND),
        column("Active", "integer", D_CJ_ACTIVE),
        column("Last Schedule", "string", D_CJ_LAST_SCHEDULE),
        age_column(),
        wide("Containers", "string", D_CONTAINERS),
        wide("Images", "string", D_IMAGES),
        wide("Selector", "string", D_JOB_SELECTOR),
    ]
}

/// `printCronJob`: suspend as `True`/`False`/`<unset>` (a string cell under a boolean column,
/// as upstream), the number of active jobs, and when it last scheduled one.
pub(super) fn cron_job(o: &Value, now: Nanos) -> Vec<Value> {
    let last = if at(o, &["status", "lastScheduleTime"]).is_some() {
        since(time_at(o, &["status", "lastScheduleTime"]), now)
    } else {
        "<none>".to_owned()
    };
    let time_zone = match at(o, &["spec", "timeZone"]) {
        Some(tz) => tz.as_str().unwrap_or("").to_owned(),
        None => "<none>".to_owned(),
    };
    let suspend = match at(o, &["spec", "suspend"]).and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let job = at(o, &["spec", "jobTemplate", "spec"]);
    let (names, images) = containers(job.and_then(|j| at(j, &["template", "spec"])));
    vec![
        name(o).into(),
        str_at(o, &["spec", "schedule"]).into(),
        time_zone.into(),
        suspend.into(),
        len_at(o, &["status", "active"]).into(),
        last.into(),
        age(o, now),
        names,
        images,
        format_label_selector(job.and_then(|j| at(j, &["selector"]))).into(),
    ]
}
