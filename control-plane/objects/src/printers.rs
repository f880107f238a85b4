//! Server-side table printing: the columns and cells `kubectl get` shows.
//!
//! When kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io`, kube-apiserver answers
//! with a `metav1.Table` whose columns and cells come from `pkg/printers/internalversion/printers.go`.
//! This module reproduces that file for the built-in kinds Berth serves, as of Kubernetes 1.33:
//! the same columns (name, type, format, description, priority), in the same order, and the same
//! cell text and cell types (string, integer, boolean) for every object, including partial ones.
//!
//! The API server generates tables with `Wide: true` (kubectl hides priority-1 columns unless
//! `-o wide`), so [`cells`] always returns one cell per column of [`columns`]. Kinds without a
//! printer upstream (LimitRange, Role, ClusterRole, custom resources, …) get the default table:
//! [`default_columns`] and [`default_cells`].
//!
//! Objects are taken as JSON (`serde_json::Value`), as stored: a missing field reads as Go's zero
//! value (`""`, `0`, nil), exactly as upstream's printer would see a decoded object that lacks it.
//! Nothing here panics on malformed input. The module does not default objects (the API server
//! defaults them on write, as upstream does on decode), and it does not build the `Table` object
//! itself (`kind`, `metadata`, `rows[].object` are the API server's); [`Column::definition`] and
//! [`row_conditions`] give the pieces of it that depend on the kind.
//!
//! Time is an argument: ages are computed against `now`, never a clock.

mod apps;
mod berth;
mod core_v1;
mod descriptions;
mod duration;
mod other;
mod quantity;
mod selector;

use std::time::SystemTime;

use serde_json::{Value, json};

pub use duration::{human_duration, short_human_duration};

use crate::GroupKind;
use descriptions::{D_CREATED, D_NAME};
use duration::Nanos;

/// A column of a table (`metav1.TableColumnDefinition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The header kubectl prints, upper-cased (`Name`, `Nominated Node`).
    pub name: &'static str,
    /// The OpenAPI type of the cells: `string`, `integer`, `boolean`, `date`. Upstream's cells do
    /// not always match it (the Event `Count` column is `string` with integer cells); both are
    /// reproduced as they are.
    pub type_: &'static str,
    /// The OpenAPI format: `name` for the column holding the object's name, else empty.
    pub format: &'static str,
    /// What the column shows: upstream's description, mostly the field's API documentation.
    pub description: &'static str,
    /// 0 for the columns kubectl always shows, 1 for those it shows with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The column as JSON, as it goes into `Table.columnDefinitions`.
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// The columns of `kind`'s table, or `None` when upstream has no printer for it: the caller then
/// uses [`default_columns`] and [`default_cells`].
pub fn columns(kind: GroupKind<'_>) -> Option<Vec<Column>> {
    printer(kind).map(|p| (p.columns)())
}

/// The table upstream serves for any object without a printer (`rest.NewDefaultTableConvertor`):
/// `Name`, and `Created At` of type `date`.
pub fn default_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column {
            name: "Created At",
            type_: "date",
            format: "",
            description: D_CREATED,
            priority: 0,
        },
    ]
}

/// The cells of the default table: the name, and the creation time in RFC 3339, UTC
/// (`0001-01-01T00:00:00Z` when it is missing, like Go's zero time).
pub fn default_cells(obj: &Value) -> Vec<Value> {
    let created = match at(obj, &["metadata", "creationTimestamp"])
        .and_then(Value::as_str)
        .and_then(duration::parse_rfc3339)
    {
        Some(t) => format_rfc3339(t),
        None => "0001-01-01T00:00:00Z".to_owned(),
    };
    vec![Value::from(name(obj)), Value::from(created)]
}

/// The cells of `obj`'s row in `kind`'s table, one per column of [`columns`] (wide columns
/// included), with upstream's text and types. Ages are computed against `now`. For kinds without
/// a printer these are the [`default_cells`].
pub fn cells(kind: GroupKind<'_>, obj: &Value, now: SystemTime) -> Vec<Value> {
    match printer(kind) {
        Some(p) => (p.cells)(obj, duration::from_system_time(now)),
        None => default_cells(obj),
    }
}

/// The row's `conditions` (`metav1.TableRowCondition`s), which upstream sets for pods that have
/// finished: `Completed` with reason `Succeeded` or `Failed`. `None` when the row has none.
pub fn row_conditions(kind: GroupKind<'_>, obj: &Value) -> Option<Value> {
    if kind != GroupKind::core("Pod") {
        return None;
    }
    let (reason, message) = match str_at(obj, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}

/// A kind's printer: its columns and how an object becomes cells.
struct Printer {
    group: &'static str,
    kind: &'static str,
    columns: fn() -> Vec<Column>,
    cells: fn(&Value, Nanos) -> Vec<Value>,
}

const PRINTERS: &[Printer] = &[
    printer_of("", "Pod", core_v1::pod_columns, core_v1::pod),
    printer_of(
        "",
        "Namespace",
        core_v1::namespace_columns,
        core_v1::namespace,
    ),
    printer_of("", "Node", core_v1::node_columns, core_v1::node),
    printer_of("", "Service", core_v1::service_columns, core_v1::service),
    printer_of(
        "",
        "Endpoints",
        core_v1::endpoints_columns,
        core_v1::endpoints,
    ),
    printer_of(
        "",
        "ConfigMap",
        core_v1::config_map_columns,
        core_v1::config_map,
    ),
    printer_of("", "Secret", core_v1::secret_columns, core_v1::secret),
    printer_of(
        "",
        "ServiceAccount",
        core_v1::service_account_columns,
        core_v1::service_account,
    ),
    printer_of("", "Event", core_v1::event_columns, core_v1::event),
    printer_of(
        "events.k8s.io",
        "Event",
        core_v1::event_columns,
        core_v1::events_event,
    ),
    printer_of("", "PersistentVolume", core_v1::pv_columns, core_v1::pv),
    printer_of(
        "",
        "PersistentVolumeClaim",
        core_v1::pvc_columns,
        core_v1::pvc,
    ),
    printer_of("", "ResourceQuota", core_v1::quota_columns, core_v1::quota),
    printer_of(
        "",
        "ReplicationController",
        core_v1::rc_columns,
        core_v1::rc,
    ),
    printer_of(
        "apps",
        "Deployment",
        apps::deployment_columns,
        apps::deployment,
    ),
    printer_of(
        "apps",
        "ReplicaSet",
        apps::replica_set_columns,
        apps::replica_set,
    ),
    printer_of(
        "apps",
        "StatefulSet",
        apps::stateful_set_columns,
        apps::stateful_set,
    ),
    printer_of(
        "apps",
        "DaemonSet",
        apps::daemon_set_columns,
        apps::daemon_set,
    ),
    printer_of(
        "apps",
        "ControllerRevision",
        apps::revision_columns,
        apps::revision,
    ),
    printer_of("batch", "Job", apps::job_columns, apps::job),
    printer_of("batch", "CronJob", apps::cron_job_columns, apps::cron_job),
    printer_of(
        "coordination.k8s.io",
        "Lease",
        other::lease_columns,
        other::lease,
    ),
    printer_of(
        "discovery.k8s.io",
        "EndpointSlice",
        other::slice_columns,
        other::slice,
    ),
    printer_of(
        "networking.k8s.io",
        "Ingress",
        other::ingress_columns,
        other::ingress,
    ),
    printer_of(
        "networking.k8s.io",
        "IngressClass",
        other::ingress_class_columns,
        other::ingress_class,
    ),
    printer_of(
        "networking.k8s.io",
        "NetworkPolicy",
        other::network_policy_columns,
        other::network_policy,
    ),
    printer_of(
        "policy",
        "PodDisruptionBudget",
        other::pdb_columns,
        other::pdb,
    ),
    printer_of(
        "certificates.k8s.io",
        "CertificateSigningRequest",
        other::csr_columns,
        other::csr,
    ),
    printer_of(
        "scheduling.k8s.io",
        "PriorityClass",
        other::priority_class_columns,
        other::priority_class,
    ),
    printer_of(
        "storage.k8s.io",
        "StorageClass",
        other::storage_class_columns,
        other::storage_class,
    ),
    printer_of(
        "autoscaling",
        "HorizontalPodAutoscaler",
        other::hpa_columns,
        other::hpa,
    ),
    printer_of(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        other::role_binding_columns,
        other::role_binding,
    ),
    printer_of(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        other::cluster_role_binding_columns,
        other::role_binding,
    ),
    printer_of(
        berth_api::GROUP,
        "Cluster",
        berth::cluster_columns,
        berth::cluster,
    ),
    printer_of(
        berth_api::GROUP,
        "NodePool",
        berth::node_pool_columns,
        berth::node_pool,
    ),
];

const fn printer_of(
    group: &'static str,
    kind: &'static str,
    columns: fn() -> Vec<Column>,
    cells: fn(&Value, Nanos) -> Vec<Value>,
) -> Printer {
    Printer {
        group,
        kind,
        columns,
        cells,
    }
}

fn printer(kind: GroupKind<'_>) -> Option<&'static Printer> {
    PRINTERS
        .iter()
        .find(|p| p.group == kind.group && p.kind == kind.kind)
}

// Column helpers.

/// The `Name` column every printer starts with (the core Event table has it last, as a wide one).
fn name_column() -> Column {
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: D_NAME,
        priority: 0,
    }
}

/// The `Age` column.
fn age_column() -> Column {
    column("Age", "string", D_CREATED)
}

/// A column kubectl always shows.
const fn column(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

/// A column kubectl shows with `-o wide`.
const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

const D_CONTAINERS: &str = "Names of each container in the template.";
const D_IMAGES: &str = "Images referenced by each container in the template.";

// Reading objects: a missing field (or a JSON null) is Go's zero value.

/// The value at `path`, unless it is missing or null.
fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut v = v;
    for key in path {
        v = v.get(key)?;
    }
    (!v.is_null()).then_some(v)
}

/// The string at `path`, `""` when missing or not a string.
fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `path`, 0 when missing or not a number.
fn int_at(v: &Value, path: &[&str]) -> i64 {
    match at(v, path) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        _ => 0,
    }
}

/// The boolean at `path`, false when missing.
fn bool_at(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// The list at `path`, empty when missing or not a list.
fn list_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    match at(v, path) {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// The number of entries of the map or list at `path` (Go's `len`).
fn len_at(v: &Value, path: &[&str]) -> i64 {
    match at(v, path) {
        Some(Value::Object(m)) => m.len() as i64,
        Some(Value::Array(a)) => a.len() as i64,
        _ => 0,
    }
}

fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"])
}

fn is_deleting(obj: &Value) -> bool {
    at(obj, &["metadata", "deletionTimestamp"]).is_some()
}

/// The timestamp at `path`, `None` when missing or unreadable (Go's zero time).
fn time_at(v: &Value, path: &[&str]) -> Option<Nanos> {
    at(v, path)
        .and_then(Value::as_str)
        .and_then(duration::parse_rfc3339)
}

/// `translateTimestampSince`: how long ago `t` was, `<unknown>` for the zero time.
fn since(t: Option<Nanos>, now: Nanos) -> String {
    match t {
        Some(t) => human_duration(duration::sub(now, t)),
        None => "<unknown>".to_owned(),
    }
}

/// The object's age.
fn age(obj: &Value, now: Nanos) -> Value {
    Value::from(since(time_at(obj, &["metadata", "creationTimestamp"]), now))
}

/// `layoutContainerCells`: container names and images, each joined by commas.
fn containers(pod_spec: Option<&Value>) -> (Value, Value) {
    let list = pod_spec.map_or(&[][..], |s| list_at(s, &["containers"]));
    let names: Vec<&str> = list.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = list.iter().map(|c| str_at(c, &["image"])).collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

/// `s`, or `<none>` when it is empty.
fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_owned()
    } else {
        s.to_owned()
    }
}

/// `resource.Quantity.String()` of the quantity at `path`: `0` when missing.
fn quantity_at(v: &Value, path: &[&str]) -> String {
    match at(v, path) {
        None => "0".to_owned(),
        Some(q) => quantity_text(q),
    }
}

/// A quantity's canonical text; as written when it is not one (which validation prevents).
fn quantity_text(q: &Value) -> String {
    let raw = match q {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    quantity::canonical(&raw).unwrap_or(raw)
}

/// `listWithMoreString`: up to `max` items, then `+ N more...`; `<unset>` when there are none.
fn list_with_more(list: &[String], count: usize, max: usize) -> String {
    let text = list.join(",");
    if count > max {
        format!("{text} + {} more...", count - max)
    } else if text.is_empty() {
        "<unset>".to_owned()
    } else {
        text
    }
}

/// A time as RFC 3339 in UTC with whole seconds (Go's `time.RFC3339` layout).
fn format_rfc3339(t: Nanos) -> String {
    let secs = t.div_euclid(1_000_000_000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2024-12-31T12:00:00Z",
            "1969-07-20T20:17:40Z",
        ] {
            assert_eq!(format_rfc3339(duration::parse_rfc3339(s).unwrap()), s);
        }
    }

    #[test]
    fn every_printer_is_distinct_and_starts_or_ends_with_the_name() {
        for (i, p) in PRINTERS.iter().enumerate() {
            assert!(
                !PRINTERS[..i]
                    .iter()
                    .any(|q| q.group == p.group && q.kind == p.kind),
                "{}/{} twice",
                p.group,
                p.kind
            );
            let cols = (p.columns)();
            assert!(cols.iter().any(|c| c.format == "name"), "{}", p.kind);
        }
    }

    #[test]
    fn csr_rows_say_who_asked_and_where_the_request_is() {
        let kind = GroupKind::new("certificates.k8s.io", "CertificateSigningRequest");
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(3600);
        let base = serde_json::json!({"metadata": {"name": "node-csr-1",
            "creationTimestamp": "1970-01-01T00:00:00Z"},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                "username": "system:bootstrap:abcdef"}});
        let cases = [
            (serde_json::json!({}), "<none>", "Pending"),
            (
                serde_json::json!({"spec": {"expirationSeconds": 86400},
                    "status": {"conditions": [{"type": "Approved"}], "certificate": "Y2VydA=="}}),
                "24h",
                "Approved,Issued",
            ),
            (
                serde_json::json!({"status": {"conditions": [{"type": "Approved"}, {"type": "Failed"}]}}),
                "<none>",
                "Approved,Failed",
            ),
            (
                serde_json::json!({"status": {"conditions": [{"type": "Denied"}]}}),
                "<none>",
                "Denied",
            ),
        ];
        for (extra, duration, condition) in cases {
            let obj = crate::patch::json_merge(&base, &extra);
            assert_eq!(
                cells(kind, &obj, now),
                vec![
                    Value::from("node-csr-1"),
                    Value::from("60m"),
                    Value::from("kubernetes.io/kube-apiserver-client-kubelet"),
                    Value::from("system:bootstrap:abcdef"),
                    Value::from(duration),
                    Value::from(condition),
                ]
            );
        }
    }
}
