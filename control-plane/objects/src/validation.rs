//! Validation of built-in kinds with upstream's rules and messages (Kubernetes v1.33).
//!
//! What this is: pure functions over objects as `serde_json::Value`, returning
//! [`FieldError`]s whose text is what kube-apiserver would have said
//! (`spec.containers[0].name: Required value`), so kubectl prints the same thing. It mirrors
//! upstream's `pkg/apis/*/validation` and `apimachinery/pkg/api/validation`.
//!
//! What this is not: decoding, admission, or anything that needs the store (quota, name
//! generation, service IP allocation). Callers run, in upstream's order:
//! [`crate::defaults::apply_defaults`], name generation (so `metadata.name` is set), then
//! [`validate_create`] or [`validate_update`] (for updates, with `metadata.resourceVersion`
//! already filled in for unconditional updates, as upstream's store does).
//!
//! JSON that would not decode into upstream's Go types (a number where a string belongs, a
//! list where an object belongs) is reported as `Invalid` at the field (`must be of type
//! string`) instead of a decoder error; nothing here panics on any input.
//!
//! Kinds not listed in [`validate_create`]'s documentation get metadata validation only.

use serde_json::Value;

use crate::GroupKind;
use crate::field::{FieldError, Path};

pub mod berth;
mod core;
mod json;
mod meta;
pub mod names;
mod other;
pub(crate) mod pod;
mod quantity;
mod workloads;

pub use meta::{FIELD_IMMUTABLE, TOTAL_ANNOTATION_SIZE_LIMIT};

/// How a kind is scoped and which rule its names follow.
struct KindInfo {
    namespaced: bool,
    name_fn: meta::NameFn,
}

fn kind_info(kind: GroupKind<'_>) -> KindInfo {
    let cluster = |name_fn| KindInfo {
        namespaced: false,
        name_fn,
    };
    let ns = |name_fn| KindInfo {
        namespaced: true,
        name_fn,
    };
    match (kind.group, kind.kind) {
        ("", "Namespace") => cluster(names::name_is_dns_label as meta::NameFn),
        ("", "Node" | "PersistentVolume") => cluster(names::name_is_dns_subdomain),
        ("", "Service") => ns(names::name_is_dns1035_label),
        ("rbac.authorization.k8s.io", "ClusterRole" | "ClusterRoleBinding") => {
            cluster(names::name_is_path_segment)
        }
        ("rbac.authorization.k8s.io", "Role" | "RoleBinding") => ns(names::name_is_path_segment),
        (
            "scheduling.k8s.io"
            | "storage.k8s.io"
            | "apiextensions.k8s.io"
            | "admissionregistration.k8s.io"
            | "certificates.k8s.io"
            | "node.k8s.io"
            | "flowcontrol.apiserver.k8s.io"
            | "apiregistration.k8s.io",
            _,
        ) => cluster(names::name_is_dns_subdomain),
        ("networking.k8s.io", "IngressClass" | "IPAddress" | "ServiceCIDR") => {
            cluster(names::name_is_dns_subdomain)
        }
        (berth_api::GROUP, "Cluster") => ns(berth::cluster_name),
        (berth_api::GROUP, "NodePool") => ns(names::name_is_dns_label),
        _ => ns(names::name_is_dns_subdomain),
    }
}

/// Which name rule applies to `kind`, applied to `name`: upstream's error strings, empty when
/// the name is valid. DNS-1123 subdomain for most kinds, DNS-1123 label for `Namespace`,
/// DNS-1035 label for `Service`, path segment for RBAC kinds.
pub fn name_is_valid(kind: GroupKind<'_>, name: &str) -> Vec<String> {
    (kind_info(kind).name_fn)(name, false)
}

/// Whether objects of `kind` live in a namespace (as far as this module knows).
pub fn is_namespaced(kind: GroupKind<'_>) -> bool {
    kind_info(kind).namespaced
}

fn root<'a>(obj: &'a Value, e: &mut Vec<FieldError>) -> Option<&'a json::Obj> {
    match obj {
        Value::Object(m) => Some(m),
        other => {
            e.push(FieldError::invalid(
                Path::default(),
                other.clone(),
                "must be of type object",
            ));
            None
        }
    }
}

/// Validates a new object of `kind`, as upstream's create strategy does.
///
/// Kinds with spec rules: core `Pod`, `Service`, `ConfigMap`, `Secret`, `Namespace`, `Node`,
/// `Event`, `ServiceAccount`; `apps` `Deployment`, `ReplicaSet`, `StatefulSet`, `DaemonSet`;
/// `batch` `Job`, `CronJob`; `coordination.k8s.io` `Lease`; `scheduling.k8s.io`
/// `PriorityClass`; `storage.k8s.io` `StorageClass`; `policy` `PodDisruptionBudget`;
/// `networking.k8s.io` `Ingress`, `NetworkPolicy`; `berth.dev` `Cluster`, `NodePool` (Berth's
/// own rules, [`berth`]). Every other kind gets metadata validation.
pub fn validate_create(kind: GroupKind<'_>, obj: &Value) -> Vec<FieldError> {
    let mut e = Vec::new();
    let Some(r) = root(obj, &mut e) else {
        return e;
    };
    create_into(kind, r, &mut e);
    e
}

fn create_into(kind: GroupKind<'_>, r: &json::Obj, e: &mut Vec<FieldError>) {
    match (kind.group, kind.kind) {
        ("", "Pod") => pod::pod_create(r, e),
        ("", "Service") => core::service(r, e),
        ("", "ConfigMap") => core::config_map(r, e),
        ("", "Secret") => core::secret(r, e),
        ("", "Namespace") => core::namespace(r, e),
        ("", "Node") => core::node(r, e),
        ("", "Event") => core::event(r, e),
        ("", "ServiceAccount") => core::service_account(r, e),
        ("apps", "Deployment") => workloads::deployment(r, e),
        ("apps", "ReplicaSet") => workloads::replica_set(r, e),
        ("apps", "StatefulSet") => workloads::stateful_set(r, e),
        ("apps", "DaemonSet") => workloads::daemon_set(r, e),
        ("batch", "Job") => workloads::job(r, e),
        ("batch", "CronJob") => workloads::cron_job(r, None, e),
        ("coordination.k8s.io", "Lease") => other::lease(r, e),
        ("scheduling.k8s.io", "PriorityClass") => other::priority_class(r, e),
        ("storage.k8s.io", "StorageClass") => other::storage_class(r, e),
        ("policy", "PodDisruptionBudget") => other::pdb(r, e),
        ("networking.k8s.io", "Ingress") => other::ingress(r, e),
        ("networking.k8s.io", "NetworkPolicy") => other::network_policy(r, e),
        (berth_api::GROUP, "Cluster") => berth::cluster(r, e),
        (berth_api::GROUP, "NodePool") => berth::node_pool(r, e),
        _ => {
            let info = kind_info(kind);
            meta::object_meta(r, info.namespaced, info.name_fn, e);
        }
    }
}

/// Validates an update of an object of `kind` from `old` to `new`: the new object's own
/// validity and what may not change (immutable fields, upstream's messages).
pub fn validate_update(kind: GroupKind<'_>, new: &Value, old: &Value) -> Vec<FieldError> {
    let mut e = Vec::new();
    let Some(n) = root(new, &mut e) else {
        return e;
    };
    let empty = json::Obj::new();
    let o = match old {
        Value::Object(m) => m,
        _ => &empty,
    };
    if (kind.group, kind.kind) == ("", "Pod") {
        pod::pod_update(n, o, &mut e);
        return e;
    }
    meta::object_meta_update(n, o, &mut e);
    match (kind.group, kind.kind) {
        ("", "Service") => core::service_update(n, o, &mut e),
        ("", "ConfigMap") => core::immutable_data(n, o, &["data", "binaryData"], &mut e),
        ("", "Secret") => core::secret_update(n, o, &mut e),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => {
            workloads::selector_immutable(n, o, &mut e)
        }
        ("apps", "StatefulSet") => workloads::stateful_set_update(n, o, &mut e),
        ("batch", "Job") => workloads::job_update(n, o, &mut e),
        ("scheduling.k8s.io", "PriorityClass") => other::priority_class_update(n, o, &mut e),
        ("storage.k8s.io", "StorageClass") => other::storage_class_update(n, o, &mut e),
        (berth_api::GROUP, "Cluster") => berth::cluster_update(n, o, &mut e),
        (berth_api::GROUP, "NodePool") => berth::node_pool_update(n, o, &mut e),
        _ => {}
    }
    if (kind.group, kind.kind) == ("batch", "CronJob") {
        let old_schedule = o
            .get("spec")
            .and_then(|s| s.get("schedule"))
            .and_then(Value::as_str);
        workloads::cron_job(n, old_schedule, &mut e);
    } else {
        create_into(kind, n, &mut e);
    }
    e
}

/// Validates the metadata of a custom resource (an object whose kind a CustomResourceDefinition
/// defines): upstream's `ValidateObjectMeta` with DNS-1123 subdomain names, and on update
/// (`old` given) `ValidateObjectMetaUpdate`. What the CRD's schema says about the rest of the
/// object is checked by the API server with that schema.
pub fn validate_custom_meta(obj: &Value, old: Option<&Value>, namespaced: bool) -> Vec<FieldError> {
    let mut e = Vec::new();
    let Some(n) = root(obj, &mut e) else {
        return e;
    };
    if let Some(Value::Object(o)) = old {
        meta::object_meta_update(n, o, &mut e);
    }
    meta::object_meta(n, namespaced, names::name_is_dns_subdomain, &mut e);
    e
}
