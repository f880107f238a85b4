//! Printers of the core group (`v1`): Pod, Namespace, Node, Service, Endpoints, ConfigMap, Secret,
//! ServiceAccount, Event (and events.k8s.io Event, which upstream prints as the same type),
//! PersistentVolume, PersistentVolumeClaim, ResourceQuota, ReplicationController.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::descriptions::*;
use super::duration::Nanos;
use super::selector::format_labels;
use super::{
    Column, D_CONTAINERS, D_IMAGES, age, age_column, at, bool_at, column, containers, int_at,
    is_deleting, len_at, list_at, name, name_column, or_none, quantity_at, since, str_at, time_at,
    wide,
};

pub(super) fn pod_columns() -> Vec<Column> {
    vec![
        name_column(),
        column(
            "Ready",
            "string",
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        column(
            "Status",
            "string",
            "The aggregate status of the containers in this pod.",
        ),
        column(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        age_column(),
        wide("IP", "string", D_POD_IP),
        wide("Node", "string", D_POD_NODE),
        wide("Nominated Node", "string", D_POD_NOMINATED),
        wide("Readiness Gates", "string", D_POD_GATES),
    ]
}

/// `printPod`: readiness, the status kubectl shows (phase, reason, init progress, the reason of
/// a waiting or terminated container, `Terminating`), restarts with when the last one was.
pub(super) fn pod(o: &Value, now: Nanos) -> Vec<Value> {
    let status = at(o, &["status"]).unwrap_or(&Value::Null);
    let containers = list_at(o, &["spec", "containers"]);
    let init_containers = list_at(o, &["spec", "initContainers"]);
    let conditions = list_at(status, &["conditions"]);

    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let mut total = containers.len();
    let mut ready = 0;
    let mut last_restart: Option<Nanos> = None;
    let mut last_restartable_restart: Option<Nanos> = None;

    let phase = str_at(status, &["phase"]);
    let mut reason = match str_at(status, &["reason"]) {
        "" => phase.to_owned(),
        r => r.to_owned(),
    };
    if conditions.iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".to_owned();
    }

    // Sidecars (init containers that restart always) count as containers.
    let mut restartable: HashMap<&str, bool> = HashMap::new();
    for c in init_containers {
        let always = str_at(c, &["restartPolicy"]) == "Always";
        restartable.insert(str_at(c, &["name"]), always);
        if always {
            total += 1;
        }
    }

    let mut initializing = false;
    for (i, c) in list_at(status, &["initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int_at(c, &["restartCount"]);
        restarts += count;
        let finished = time_at(c, &["lastState", "terminated", "finishedAt"]);
        if at(c, &["lastState", "terminated"]).is_some() {
            later(&mut last_restart, finished);
        }
        let is_sidecar = restartable
            .get(str_at(c, &["name"]))
            .copied()
            .unwrap_or(false);
        if is_sidecar {
            restartable_restarts += count;
            if at(c, &["lastState", "terminated"]).is_some() {
                later(&mut last_restartable_restart, finished);
            }
        }
        let terminated = at(c, &["state", "terminated"]);
        let waiting_reason = str_at(c, &["state", "waiting", "reason"]);
        match terminated {
            Some(t) if int_at(t, &["exitCode"]) == 0 => continue,
            _ if is_sidecar && bool_at(c, &["started"]) => {
                if bool_at(c, &["ready"]) {
                    ready += 1;
                }
                continue;
            }
            Some(t) => {
                reason = match str_at(t, &["reason"]) {
                    "" if int_at(t, &["signal"]) != 0 => {
                        format!("Init:Signal:{}", int_at(t, &["signal"]))
                    }
                    "" => format!("Init:ExitCode:{}", int_at(t, &["exitCode"])),
                    r => format!("Init:{r}"),
                };
            }
            None if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" => {
                reason = format!("Init:{waiting_reason}");
            }
            None => reason = format!("Init:{i}/{}", init_containers.len()),
        }
        initializing = true;
        break;
    }

    if !initializing || pod_initialized(conditions) {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for c in list_at(status, &["containerStatuses"]).iter().rev() {
            restarts += int_at(c, &["restartCount"]);
            if at(c, &["lastState", "terminated"]).is_some() {
                later(
                    &mut last_restart,
                    time_at(c, &["lastState", "terminated", "finishedAt"]),
                );
            }
            let waiting = str_at(c, &["state", "waiting", "reason"]);
            let terminated = at(c, &["state", "terminated"]);
            if at(c, &["state", "waiting"]).is_some() && !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if let Some(t) = terminated {
                reason = match str_at(t, &["reason"]) {
                    "" if int_at(t, &["signal"]) != 0 => {
                        format!("Signal:{}", int_at(t, &["signal"]))
                    }
                    "" => format!("ExitCode:{}", int_at(t, &["exitCode"])),
                    r => r.to_owned(),
                };
            } else if bool_at(c, &["ready"]) && at(c, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container to report completed but that has one still running is
        // running (or not ready).
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_owned();
        }
    }

    if is_deleting(o) && str_at(status, &["reason"]) == "NodeLost" {
        reason = "Unknown".to_owned();
    } else if is_deleting(o) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_owned();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let ip = list_at(status, &["podIPs"])
        .first()
        .map_or("", |ip| str_at(ip, &["ip"]));
    let gates = list_at(o, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|gate| {
                let wanted = str_at(gate, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == wanted)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_conditions}/{}", gates.len())
    };

    vec![
        name(o).into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_text.into(),
        age(o, now),
        or_none(ip).into(),
        or_none(str_at(o, &["spec", "nodeName"])).into(),
        or_none(str_at(status, &["nominatedNodeName"])).into(),
        readiness_gates.into(),
    ]
}

/// Keeps the later of two times (Go's `last.Before(&t)`, with the zero time before all others).
fn later(last: &mut Option<Nanos>, t: Option<Nanos>) {
    if let Some(t) = t
        && last.is_none_or(|l| l < t)
    {
        *last = Some(t);
    }
}

/// `isPodInitializedConditionTrue`: the first `Initialized` condition is true.
fn pod_initialized(conditions: &[Value]) -> bool {
    conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == "Initialized")
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

pub(super) fn namespace_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Status", "string", "The status of the namespace"),
        age_column(),
    ]
}

pub(super) fn namespace(o: &Value, now: Nanos) -> Vec<Value> {
    vec![
        name(o).into(),
        str_at(o, &["status", "phase"]).into(),
        age(o, now),
    ]
}

pub(super) fn node_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Status", "string", "The status of the node"),
        column("Roles", "string", "The roles of the node"),
        age_column(),
        column("Version", "string", D_NODE_KUBELET),
        wide("Internal-IP", "string", D_NODE_ADDRESSES),
        wide("External-IP", "string", D_NODE_ADDRESSES),
        wide("OS-Image", "string", D_NODE_OS_IMAGE),
        wide("Kernel-Version", "string", D_NODE_KERNEL),
        wide("Container-Runtime", "string", D_NODE_RUNTIME),
    ]
}

/// `printNode`: `Ready`/`NotReady`/`Unknown` from the Ready condition (the last one listed wins),
/// `SchedulingDisabled` when cordoned; roles from `node-role.kubernetes.io/<role>` and
/// `kubernetes.io/role` labels.
pub(super) fn node(o: &Value, now: Nanos) -> Vec<Value> {
    let ready = list_at(o, &["status", "conditions"])
        .iter()
        .rfind(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(o, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }

    let mut roles = BTreeSet::new();
    if let Some(Value::Object(labels)) = at(o, &["metadata", "labels"]) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_owned());
                }
            } else if k == "kubernetes.io/role" {
                match v.as_str() {
                    Some(v) if !v.is_empty() => {
                        roles.insert(v.to_owned());
                    }
                    _ => {}
                }
            }
        }
    }
    let roles = roles.into_iter().collect::<Vec<_>>().join(",");

    let address = |kind: &str| {
        list_at(o, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == kind)
            .map_or("<none>", |a| str_at(a, &["address"]))
            .to_owned()
    };
    let info = |field: &str| match str_at(o, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_owned(),
        v => v.to_owned(),
    };
    vec![
        name(o).into(),
        status.join(",").into(),
        or_none(&roles).into(),
        age(o, now),
        str_at(o, &["status", "nodeInfo", "kubeletVersion"]).into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

pub(super) fn service_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Type", "string", D_SVC_TYPE),
        column("Cluster-IP", "string", D_SVC_CLUSTER_IP),
        column("External-IP", "string", D_SVC_EXTERNAL_IPS),
        column("Port(s)", "string", D_SVC_PORTS),
        age_column(),
        wide("Selector", "string", D_SVC_SELECTOR),
    ]
}

/// `printService`: the first cluster IP, external IPs by type (load balancer addresses, sorted
/// and unique, then `spec.externalIPs`; `<pending>` while there are none), ports as
/// `port[:nodePort]/protocol`.
pub(super) fn service(o: &Value, now: Nanos) -> Vec<Value> {
    // The API server defaults clusterIPs from clusterIP when decoding; do the same for objects
    // written with only the older field.
    let cluster_ip = list_at(o, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| at(o, &["spec", "clusterIP"]).and_then(Value::as_str))
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let external: Vec<&str> = list_at(o, &["spec", "externalIPs"])
        .iter()
        .map(|ip| ip.as_str().unwrap_or(""))
        .collect();
    let external_ip = match str_at(o, &["spec", "type"]) {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".to_owned(),
        "LoadBalancer" => {
            let lb: BTreeSet<&str> = list_at(o, &["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|i| match (str_at(i, &["ip"]), str_at(i, &["hostname"])) {
                    ("", "") => None,
                    ("", host) => Some(host),
                    (ip, _) => Some(ip),
                })
                .collect();
            let mut all: Vec<&str> = lb.into_iter().collect();
            if !external.is_empty() {
                all.extend(&external);
                all.join(",")
            } else if !all.is_empty() {
                all.join(",")
            } else {
                "<pending>".to_owned()
            }
        }
        "ExternalName" => str_at(o, &["spec", "externalName"]).to_owned(),
        _ => "<unknown>".to_owned(),
    };
    let ports: Vec<String> = list_at(o, &["spec", "ports"])
        .iter()
        .map(|p| {
            let (port, protocol) = (int_at(p, &["port"]), str_at(p, &["protocol"]));
            match int_at(p, &["nodePort"]) {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    vec![
        name(o).into(),
        str_at(o, &["spec", "type"]).into(),
        cluster_ip.into(),
        external_ip.into(),
        or_none(&ports.join(",")).into(),
        age(o, now),
        format_labels(at(o, &["spec", "selector"])).into(),
    ]
}

pub(super) fn endpoints_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Endpoints", "string", D_EP_SUBSETS),
        age_column(),
    ]
}

/// `formatEndpoints`: the first three `ip:port` pairs (bare IPs for subsets without ports), then
/// `+ N more...`; `<none>` without subsets.
pub(super) fn endpoints(o: &Value, now: Nanos) -> Vec<Value> {
    const MAX: usize = 3;
    let subsets = list_at(o, &["subsets"]);
    let text = if subsets.is_empty() {
        "<none>".to_owned()
    } else {
        let mut list: Vec<String> = Vec::new();
        let mut more = false;
        let mut count = 0;
        for ss in subsets {
            let addresses = list_at(ss, &["addresses"]);
            let ports = list_at(ss, &["ports"]);
            if ports.is_empty() {
                count += addresses.len();
                for a in addresses {
                    if list.len() == MAX {
                        more = true;
                        break;
                    }
                    list.push(str_at(a, &["ip"]).to_owned());
                }
                continue;
            }
            for p in ports {
                count += addresses.len();
                for a in addresses {
                    if list.len() == MAX {
                        more = true;
                        break;
                    }
                    list.push(join_host_port(str_at(a, &["ip"]), int_at(p, &["port"])));
                }
            }
        }
        let text = list.join(",");
        if more {
            format!("{text} + {} more...", count - MAX)
        } else {
            text
        }
    };
    vec![name(o).into(), text.into(), age(o, now)]
}

/// Go's `net.JoinHostPort`: IPv6 addresses in brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) fn config_map_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Data", "string", D_CM_DATA),
        age_column(),
    ]
}

pub(super) fn config_map(o: &Value, now: Nanos) -> Vec<Value> {
    let data = len_at(o, &["data"]) + len_at(o, &["binaryData"]);
    vec![name(o).into(), data.into(), age(o, now)]
}

pub(super) fn secret_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Type", "string", D_SECRET_TYPE),
        column("Data", "string", D_SECRET_DATA),
        age_column(),
    ]
}

pub(super) fn secret(o: &Value, now: Nanos) -> Vec<Value> {
    vec![
        name(o).into(),
        str_at(o, &["type"]).into(),
        len_at(o, &["data"]).into(),
        age(o, now),
    ]
}

pub(super) fn service_account_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Secrets", "string", D_SA_SECRETS),
        age_column(),
    ]
}

pub(super) fn service_account(o: &Value, now: Nanos) -> Vec<Value> {
    vec![name(o).into(), len_at(o, &["secrets"]).into(), age(o, now)]
}

pub(super) fn event_columns() -> Vec<Column> {
    vec![
        column("Last Seen", "string", D_EV_LAST),
        column("Type", "string", D_EV_TYPE),
        column("Reason", "string", D_EV_REASON),
        column("Object", "string", D_EV_OBJECT),
        wide("Subobject", "string", D_EV_SUBOBJECT),
        wide("Source", "string", D_EV_SOURCE),
        column("Message", "string", D_EV_MESSAGE),
        wide("First Seen", "string", D_EV_FIRST),
        wide("Count", "string", D_EV_COUNT),
        Column {
            priority: 1,
            ..name_column()
        },
    ]
}

/// The fields of an event the table shows, under their names in either API group.
struct EventFields<'a> {
    involved: &'a str,
    message: &'a str,
    source: &'a str,
    first: &'a str,
    last: &'a str,
    count: &'a str,
}

/// `printEvent` for a core (`v1`) Event.
pub(super) fn event(o: &Value, now: Nanos) -> Vec<Value> {
    event_cells(
        o,
        now,
        &EventFields {
            involved: "involvedObject",
            message: "message",
            source: "source",
            first: "firstTimestamp",
            last: "lastTimestamp",
            count: "count",
        },
    )
}

/// `printEvent` for an `events.k8s.io/v1` Event: upstream converts it to the core type first
/// (`regarding` is the involved object, `note` the message, the `deprecated*` fields the source,
/// timestamps and count).
pub(super) fn events_event(o: &Value, now: Nanos) -> Vec<Value> {
    event_cells(
        o,
        now,
        &EventFields {
            involved: "regarding",
            message: "note",
            source: "deprecatedSource",
            first: "deprecatedFirstTimestamp",
            last: "deprecatedLastTimestamp",
            count: "deprecatedCount",
        },
    )
}

/// When the event was first and last seen (series and event time filling in for the older
/// timestamps), what it concerns as `kind/name`, and where it came from.
fn event_cells(o: &Value, now: Nanos, f: &EventFields<'_>) -> Vec<Value> {
    let first = match time_at(o, &[f.first]) {
        Some(t) => since(Some(t), now),
        None => since(time_at(o, &["eventTime"]), now),
    };
    let mut last = match time_at(o, &[f.last]) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int_at(o, &[f.count]);
    if at(o, &["series"]).is_some() {
        last = since(time_at(o, &["series", "lastObservedTime"]), now);
        count = int_at(o, &["series", "count"]);
    } else if count == 0 {
        // Singleton events of the newer API have no count.
        count = 1;
    }
    let kind = str_at(o, &[f.involved, "kind"]).to_lowercase();
    let target = match str_at(o, &[f.involved, "name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let first_non_empty = |a: &'_ str, b: &'_ str| -> String {
        if a.is_empty() {
            b.to_owned()
        } else {
            a.to_owned()
        }
    };
    let component = first_non_empty(
        str_at(o, &[f.source, "component"]),
        str_at(o, &["reportingController"]),
    );
    let instance = first_non_empty(
        str_at(o, &[f.source, "host"]),
        str_at(o, &["reportingInstance"]),
    );
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last.into(),
        str_at(o, &["type"]).into(),
        str_at(o, &["reason"]).into(),
        target.into(),
        str_at(o, &[f.involved, "fieldPath"]).into(),
        source.into(),
        str_at(o, &[f.message]).trim().into(),
        first.into(),
        count.into(),
        name(o).into(),
    ]
}

pub(super) fn pv_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Capacity", "string", D_PV_CAPACITY),
        column("Access Modes", "string", D_PV_MODES),
        column("Reclaim Policy", "string", D_PV_RECLAIM),
        column("Status", "string", D_PV_PHASE),
        column("Claim", "string", D_PV_CLAIM),
        column("StorageClass", "string", "StorageClass of the pv"),
        column(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pv",
        ),
        column("Reason", "string", D_PV_REASON),
        age_column(),
        wide("VolumeMode", "string", D_PV_MODE),
    ]
}

pub(super) fn pv(o: &Value, now: Nanos) -> Vec<Value> {
    let claim = match at(o, &["spec", "claimRef"]) {
        Some(r) => format!("{}/{}", str_at(r, &["namespace"]), str_at(r, &["name"])),
        None => String::new(),
    };
    let phase = if is_deleting(o) {
        "Terminating"
    } else {
        str_at(o, &["status", "phase"])
    };
    let class = match at(o, &["metadata", "annotations", BETA_STORAGE_CLASS]) {
        Some(v) => v.as_str().unwrap_or(""),
        None => str_at(o, &["spec", "storageClassName"]),
    };
    vec![
        name(o).into(),
        quantity_at(o, &["spec", "capacity", "storage"]).into(),
        access_modes(list_at(o, &["spec", "accessModes"])).into(),
        str_at(o, &["spec", "persistentVolumeReclaimPolicy"]).into(),
        phase.into(),
        claim.into(),
        class.into(),
        unset(o, "volumeAttributesClassName").into(),
        str_at(o, &["status", "reason"]).into(),
        age(o, now),
        unset(o, "volumeMode").into(),
    ]
}

/// The storage class annotation older objects carry instead of `storageClassName`.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// A pointer field of the spec: `<unset>` when nil, else its text (even when empty).
fn unset(o: &Value, field: &str) -> String {
    match at(o, &["spec", field]) {
        Some(v) => v.as_str().unwrap_or("").to_owned(),
        None => "<unset>".to_owned(),
    }
}

/// `GetAccessModesAsString`: `RWO`, `ROX`, `RWX`, `RWOP`, in that order, each once.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

pub(super) fn pvc_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Status", "string", D_PVC_PHASE),
        column("Volume", "string", D_PVC_VOLUME),
        column("Capacity", "string", D_PVC_CAPACITY),
        column("Access Modes", "string", D_PVC_MODES),
        column("StorageClass", "string", "StorageClass of the pvc"),
        column(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pvc",
        ),
        age_column(),
        wide("VolumeMode", "string", D_PVC_MODE),
    ]
}

/// `printPersistentVolumeClaim`: capacity and access modes only once bound to a volume.
pub(super) fn pvc(o: &Value, now: Nanos) -> Vec<Value> {
    let phase = if is_deleting(o) {
        "Terminating"
    } else {
        str_at(o, &["status", "phase"])
    };
    let volume = str_at(o, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity_at(o, &["status", "capacity", "storage"]),
            access_modes(list_at(o, &["status", "accessModes"])),
        )
    };
    let class = match at(o, &["metadata", "annotations", BETA_STORAGE_CLASS]) {
        Some(v) => v.as_str().unwrap_or(""),
        None => str_at(o, &["spec", "storageClassName"]),
    };
    vec![
        name(o).into(),
        phase.into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        class.into(),
        unset(o, "volumeAttributesClassName").into(),
        age(o, now),
        unset(o, "volumeMode").into(),
    ]
}

pub(super) fn quota_columns() -> Vec<Column> {
    vec![
        name_column(),
        column(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        column(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        age_column(),
    ]
}

/// `printResourceQuota`: `resource: used/hard` for each hard limit, sorted by resource name,
/// `limits.*` in the Limit column and everything else in Request.
pub(super) fn quota(o: &Value, now: Nanos) -> Vec<Value> {
    let mut request = Vec::new();
    let mut limit = Vec::new();
    if let Some(Value::Object(hard)) = at(o, &["status", "hard"]) {
        let mut resources: Vec<&String> = hard.keys().collect();
        resources.sort();
        for resource in resources {
            let used = quantity_at(o, &["status", "used", resource]);
            let entry = format!(
                "{resource}: {used}/{}",
                quantity_at(o, &["status", "hard", resource])
            );
            let mut pieces = resource.split('.');
            if pieces.next() == Some("limits") && pieces.next().is_some() {
                limit.push(entry);
            } else {
                request.push(entry);
            }
        }
    }
    vec![
        name(o).into(),
        request.join(", ").into(),
        limit.join(", ").into(),
        age(o, now),
    ]
}

pub(super) fn rc_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Desired", "integer", D_RC_SPEC_REPLICAS),
        column("Current", "integer", D_RC_STATUS_REPLICAS),
        column("Ready", "integer", D_RC_READY),
        age_column(),
        wide("Containers", "string", D_CONTAINERS),
        wide("Images", "string", D_IMAGES),
        wide("Selector", "string", D_RC_SELECTOR),
    ]
}

pub(super) fn rc(o: &Value, now: Nanos) -> Vec<Value> {
    let (names, images) = containers(at(o, &["spec", "template", "spec"]));
    vec![
        name(o).into(),
        int_at(o, &["spec", "replicas"]).into(),
        int_at(o, &["status", "replicas"]).into(),
        int_at(o, &["status", "readyReplicas"]).into(),
        age(o, now),
        names,
        images,
        format_labels(at(o, &["spec", "selector"])).into(),
    ]
}
