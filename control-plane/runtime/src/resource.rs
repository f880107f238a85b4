//! The resources loops read and write, and small accessors on objects in their JSON form.

use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

/// A name in a [`Resource`]: borrowed for built-in resources, owned for custom ones.
pub type Name = std::borrow::Cow<'static, str>;

/// One API resource: where it is served and whether it is namespaced.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    /// The API group, empty for core.
    pub group: Name,
    /// The version served.
    pub version: Name,
    /// The kind.
    pub kind: Name,
    /// The plural resource name used in URLs.
    pub plural: Name,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

macro_rules! resources {
    ($($name:ident = $group:literal $version:literal $kind:literal $plural:literal $ns:literal;)*) => {
        $(
            #[doc = concat!("`", $plural, "` (", $kind, ").")]
            pub const $name: Resource = Resource {
                group: std::borrow::Cow::Borrowed($group),
                version: std::borrow::Cow::Borrowed($version),
                kind: std::borrow::Cow::Borrowed($kind),
                plural: std::borrow::Cow::Borrowed($plural),
                namespaced: $ns,
            };
        )*
    };
}

resources! {
    PODS = "" "v1" "Pod" "pods" true;
    NODES = "" "v1" "Node" "nodes" false;
    NAMESPACES = "" "v1" "Namespace" "namespaces" false;
    SERVICES = "" "v1" "Service" "services" true;
    ENDPOINTS = "" "v1" "Endpoints" "endpoints" true;
    EVENTS = "" "v1" "Event" "events" true;
    CONFIG_MAPS = "" "v1" "ConfigMap" "configmaps" true;
    SECRETS = "" "v1" "Secret" "secrets" true;
    SERVICE_ACCOUNTS = "" "v1" "ServiceAccount" "serviceaccounts" true;
    PERSISTENT_VOLUME_CLAIMS = "" "v1" "PersistentVolumeClaim" "persistentvolumeclaims" true;
    REPLICATION_CONTROLLERS = "" "v1" "ReplicationController" "replicationcontrollers" true;
    RESOURCE_QUOTAS = "" "v1" "ResourceQuota" "resourcequotas" true;
    LIMIT_RANGES = "" "v1" "LimitRange" "limitranges" true;
    PERSISTENT_VOLUMES = "" "v1" "PersistentVolume" "persistentvolumes" false;
    DEPLOYMENTS = "apps" "v1" "Deployment" "deployments" true;
    REPLICA_SETS = "apps" "v1" "ReplicaSet" "replicasets" true;
    STATEFUL_SETS = "apps" "v1" "StatefulSet" "statefulsets" true;
    DAEMON_SETS = "apps" "v1" "DaemonSet" "daemonsets" true;
    CONTROLLER_REVISIONS = "apps" "v1" "ControllerRevision" "controllerrevisions" true;
    JOBS = "batch" "v1" "Job" "jobs" true;
    CRON_JOBS = "batch" "v1" "CronJob" "cronjobs" true;
    LEASES = "coordination.k8s.io" "v1" "Lease" "leases" true;
    ENDPOINT_SLICES = "discovery.k8s.io" "v1" "EndpointSlice" "endpointslices" true;
    INGRESSES = "networking.k8s.io" "v1" "Ingress" "ingresses" true;
    NETWORK_POLICIES = "networking.k8s.io" "v1" "NetworkPolicy" "networkpolicies" true;
    POD_DISRUPTION_BUDGETS = "policy" "v1" "PodDisruptionBudget" "poddisruptionbudgets" true;
    HORIZONTAL_POD_AUTOSCALERS = "autoscaling" "v2" "HorizontalPodAutoscaler" "horizontalpodautoscalers" true;
    ROLES = "rbac.authorization.k8s.io" "v1" "Role" "roles" true;
    ROLE_BINDINGS = "rbac.authorization.k8s.io" "v1" "RoleBinding" "rolebindings" true;
    EVENTS_V1 = "events.k8s.io" "v1" "Event" "events" true;
    CUSTOM_RESOURCE_DEFINITIONS = "apiextensions.k8s.io" "v1" "CustomResourceDefinition" "customresourcedefinitions" false;
}

impl Resource {
    /// A resource known when the program is built.
    pub const fn new(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> Self {
        Resource {
            group: std::borrow::Cow::Borrowed(group),
            version: std::borrow::Cow::Borrowed(version),
            kind: std::borrow::Cow::Borrowed(kind),
            plural: std::borrow::Cow::Borrowed(plural),
            namespaced,
        }
    }

    /// `group/version`, or just `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource in kube's terms.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&self.group, &self.version, &self.kind),
            &self.plural,
        )
    }

    /// A kube API handle for this resource in `namespace` (all namespaces when `None`, and
    /// always for cluster-scoped resources).
    pub fn api(&self, client: &kube::Client, namespace: Option<&str>) -> kube::Api<DynamicObject> {
        let ar = self.api_resource();
        match namespace {
            Some(ns) if self.namespaced => kube::Api::namespaced_with(client.clone(), ns, &ar),
            _ => kube::Api::all_with(client.clone(), &ar),
        }
    }
}

/// `metadata.name`, or "".
pub fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

/// `metadata.namespace`, or "" for cluster-scoped objects.
pub fn namespace(obj: &Value) -> &str {
    str_at(obj, "/metadata/namespace")
}

/// `metadata.uid`, or "".
pub fn uid(obj: &Value) -> &str {
    str_at(obj, "/metadata/uid")
}

/// `metadata.resourceVersion`, or "".
pub fn resource_version(obj: &Value) -> &str {
    str_at(obj, "/metadata/resourceVersion")
}

/// The string at a JSON pointer, or "".
pub fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Whether the object is being deleted.
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The uid of the object's controller (the owner reference with `controller: true`).
pub fn controller_uid(obj: &Value) -> Option<&str> {
    owner_references(obj)
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
}

/// The object's owner references.
pub fn owner_references(obj: &Value) -> impl Iterator<Item = &Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Converts a kube object into its JSON form.
pub fn to_value(obj: DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

/// Converts an object in JSON form into a kube object (for the typed request helpers).
pub fn from_value(obj: Value) -> Result<DynamicObject, serde_json::Error> {
    serde_json::from_value(obj)
}

/// Now as a `MicroTime` (`2024-01-02T03:04:05.123456Z`), as Leases and events.k8s.io write it.
pub fn micro_time_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Now as a `Time` (`2024-01-02T03:04:05Z`, whole seconds), as conditions and core Events
/// write it.
pub fn time_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
