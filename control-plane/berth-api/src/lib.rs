//! Berth's management API: the Rust types of group `berth.dev/v1`, served by the root cluster.
//!
//! A tenant organisation is a namespace of the root cluster; in it, a [`Cluster`] asks for a
//! logical Kubernetes cluster and each [`NodePool`] for a group of machines that join it. The
//! types serialize as the API serves them (camelCase, absent optional fields omitted), implement
//! k8s-openapi's [`Resource`](k8s_openapi::Resource), [`ListableResource`] and [`Metadata`] so
//! generic code (kube's `Api<K>`, the API server's kind table) treats them like built-in kinds,
//! and derive their OpenAPI schemas, whose field descriptions are the doc comments below
//! (`kubectl explain clusters.spec`).
//!
//! What this crate is not: validation and defaulting (the `objects` crate keeps those rules
//! next to the built-in kinds', over JSON) or anything that provisions clusters. It has no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use k8s_openapi::{ListableResource, Metadata, NamespaceResourceScope, Resource};
use schemars::JsonSchema;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

/// The API group of the management kinds.
pub const GROUP: &str = "berth.dev";
/// Their version.
pub const VERSION: &str = "v1";
/// `apiVersion` of their objects.
pub const API_VERSION: &str = "berth.dev/v1";

/// The clouds a [`ClusterSpec::cloud`] may name.
pub const CLOUDS: &[&str] = &["aws", "gcp", "local"];
/// The [`ClusterStatus::phase`]s.
pub const CLUSTER_PHASES: &[&str] = &["Provisioning", "Ready", "Deleting", "Failed"];
/// The default [`ClusterSpec::service_cidr`].
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// The default [`ClusterSpec::pod_cidr`].
pub const DEFAULT_POD_CIDR: &str = "10.244.0.0/16";
/// The region of a `local` cluster when none is given.
pub const LOCAL_REGION: &str = "local";
/// The longest name a [`Cluster`] may have, so that `<namespace>:<name>` ids stay short.
pub const MAX_CLUSTER_NAME_LENGTH: usize = 40;

/// A logical Kubernetes cluster of a tenant organisation (the namespace it lives in), served by
/// Berth's control plane.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.berth.v1.Cluster", transform = object_schema)]
pub struct Cluster {
    /// Standard object's metadata. The name is a DNS-1035 label of at most 40 characters.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the cluster should be.
    #[serde(default)]
    pub spec: ClusterSpec,
    /// What the cluster is, as the control plane last observed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ClusterStatus>,
}

/// The desired state of a Cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.berth.v1.ClusterSpec", transform = cluster_spec_schema)]
pub struct ClusterSpec {
    /// The cloud the cluster's nodes run in: `aws`, `gcp` or `local`. Immutable.
    #[serde(default)]
    #[schemars(extend("enum" = ["aws", "gcp", "local"]))]
    pub cloud: String,
    /// The cloud region of the cluster's nodes, e.g. `eu-west-1`. Required for `aws` and `gcp`;
    /// defaults to `local` for `local`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The Kubernetes version asked for, e.g. `1.33`. The served version is in
    /// `status.kubernetesVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// The range Service cluster IPs are given from (IPv4 or IPv6 CIDR). Defaults to
    /// `10.96.0.0/12`. Immutable.
    #[serde(
        default,
        rename = "serviceCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_cidr: Option<String>,
    /// The range node pod CIDRs are carved from (IPv4 or IPv6 CIDR). Defaults to
    /// `10.244.0.0/16`. Immutable.
    #[serde(default, rename = "podCIDR", skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    /// Who may reach the cluster's API endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_access: Option<ApiAccess>,
    /// Limits on the cluster's use of the control plane; the server-wide defaults apply to
    /// those not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ClusterLimits>,
}

/// Who may reach a cluster's API endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.berth.v1.ApiAccess", transform = nullable_free)]
pub struct ApiAccess {
    /// Client address ranges (IPv4 or IPv6 CIDRs) allowed to call the API. Empty allows any
    /// address.
    #[serde(
        default,
        rename = "allowedCIDRs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_cidrs: Vec<String>,
    /// Whether the health and version endpoints (`/healthz`, `/livez`, `/readyz`, `/version`)
    /// answer requests without credentials. Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_health: Option<bool>,
}

/// Limits on one cluster's use of the control plane. Each absent limit is the server-wide
/// default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.berth.v1.ClusterLimits", transform = nullable_free)]
pub struct ClusterLimits {
    /// The most objects the cluster may store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_objects: Option<i64>,
    /// The most bytes the cluster's objects may take in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stored_bytes: Option<i64>,
    /// The most watches open on the cluster at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_watches: Option<i64>,
    /// The sustained rate of API requests allowed, per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<i64>,
    /// The most requests allowed in a burst above `requestsPerSecond`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<i64>,
}

/// The observed state of a Cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.berth.v1.ClusterStatus", transform = nullable_free)]
pub struct ClusterStatus {
    /// Where the cluster is in its life: `Provisioning`, `Ready`, `Deleting` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Provisioning", "Ready", "Deleting", "Failed"]))]
    pub phase: Option<String>,
    /// The logical cluster's id, `<namespace>:<name>`: its API is served under
    /// `/clusters/<id>/`.
    #[serde(default, rename = "clusterID", skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The URL of the cluster's API endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The PEM certificate authority that signs the endpoint's certificate, base64-encoded as in
    /// a kubeconfig's `certificate-authority-data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    /// The Kubernetes version the cluster's API serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// The `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The cluster's conditions, `Ready` among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A group of machines of one instance type that join a Cluster as its nodes.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.berth.v1.NodePool", transform = object_schema)]
pub struct NodePool {
    /// Standard object's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the pool should be.
    #[serde(default)]
    pub spec: NodePoolSpec,
    /// What the pool is, as the control plane last observed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodePoolStatus>,
}

/// The desired state of a NodePool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.berth.v1.NodePoolSpec", transform = node_pool_spec_schema)]
pub struct NodePoolSpec {
    /// The name of the Cluster, in the same namespace, the nodes join. Immutable.
    #[serde(default)]
    pub cluster_name: String,
    /// The cloud's machine type, e.g. `m7i.large` or `e2-standard-4`.
    #[serde(default)]
    pub instance_type: String,
    /// The machine image the nodes boot; the cloud's default Berth node image when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The zones of the cluster's region the nodes are spread over; any zone when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// The fewest nodes the pool may have. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<i32>,
    /// The most nodes the pool may have, at least `desiredSize`. Defaults to `desiredSize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<i32>,
    /// The number of nodes wanted, between `minSize` and `maxSize`. Defaults to `minSize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_size: Option<i32>,
    /// Labels every node of the pool carries.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Taints every node of the pool carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
}

/// The observed state of a NodePool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.berth.v1.NodePoolStatus", transform = nullable_free)]
pub struct NodePoolStatus {
    /// The number of machines the pool has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// The number of the pool's nodes that are Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// The names of the pool's nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// The `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The pool's conditions, `Ready` among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

macro_rules! resource {
    ($ty:ident, $plural:literal, $list:literal, $spec:ident, $status:ident) => {
        impl Resource for $ty {
            const API_VERSION: &'static str = API_VERSION;
            const GROUP: &'static str = GROUP;
            const KIND: &'static str = stringify!($ty);
            const VERSION: &'static str = VERSION;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = NamespaceResourceScope;
        }

        impl ListableResource for $ty {
            const LIST_KIND: &'static str = $list;
        }

        impl Metadata for $ty {
            type Ty = ObjectMeta;

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        /// Written with `apiVersion` and `kind`, as every object on the wire is.
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let fields = 4 + usize::from(self.status.is_some());
                let mut st = s.serialize_struct(stringify!($ty), fields)?;
                st.serialize_field("apiVersion", <$ty as Resource>::API_VERSION)?;
                st.serialize_field("kind", <$ty as Resource>::KIND)?;
                st.serialize_field("metadata", &self.metadata)?;
                st.serialize_field("spec", &self.spec)?;
                if let Some(status) = &self.status {
                    st.serialize_field("status", status)?;
                }
                st.end()
            }
        }

        impl $ty {
            /// An object named `name` in `namespace`, with `spec` and no status.
            pub fn new(namespace: &str, name: &str, spec: $spec) -> Self {
                $ty {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        namespace: Some(namespace.to_owned()),
                        ..ObjectMeta::default()
                    },
                    spec,
                    status: None::<$status>,
                }
            }
        }
    };
}

resource!(
    Cluster,
    "clusters",
    "ClusterList",
    ClusterSpec,
    ClusterStatus
);
resource!(
    NodePool,
    "nodepools",
    "NodePoolList",
    NodePoolSpec,
    NodePoolStatus
);

/// The schema of a top-level kind: its own fields plus `apiVersion` and `kind`, which the
/// serializer writes and the type does not hold.
fn object_schema(schema: &mut schemars::Schema) {
    nullable_free(schema);
    required(schema, &["spec"]);
    if let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        props.insert(
            "apiVersion".into(),
            serde_json_value(
                "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
            ),
        );
        props.insert(
            "kind".into(),
            serde_json_value(
                "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            ),
        );
    }
}

fn serde_json_value(description: &str) -> serde_json::Value {
    serde_json::json!({"description": description, "type": "string"})
}

fn cluster_spec_schema(schema: &mut schemars::Schema) {
    nullable_free(schema);
    required(schema, &["cloud"]);
}

fn node_pool_spec_schema(schema: &mut schemars::Schema) {
    nullable_free(schema);
    required(schema, &["clusterName", "instanceType"]);
}

/// Lists `fields` as required: fields that decode to their zero value when absent (so that
/// validation, not decoding, reports them missing) still are required of clients.
fn required(schema: &mut schemars::Schema, fields: &[&str]) {
    schema.insert("required".into(), serde_json::json!(fields));
}

/// Schemas as Kubernetes writes them: an optional field is one that is not `required`, never a
/// `null`-able type (kubectl's OpenAPI readers take a list of types, or a `null` alternative, for
/// an arbitrary value).
fn nullable_free(schema: &mut schemars::Schema) {
    one_line_description(schema.as_object_mut());
    let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for prop in props.values_mut() {
        let Some(p) = prop.as_object_mut() else {
            continue;
        };
        p.remove("nullable");
        // Zero values of absent fields are decoding's business, not defaults clients should see.
        p.remove("default");
        one_line_description(Some(p));
        if let Some(types) = p.get("type").and_then(|t| t.as_array()) {
            let rest: Vec<_> = types.iter().filter(|t| *t != "null").cloned().collect();
            if let [only] = rest.as_slice() {
                p.insert("type".into(), only.clone());
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(alternatives) = p.get(key).and_then(|a| a.as_array()) {
                let rest: Vec<_> = alternatives
                    .iter()
                    .filter(|a| a.get("type").is_none_or(|t| t != "null"))
                    .cloned()
                    .collect();
                if let [only] = rest.as_slice() {
                    p.remove(key);
                    if let Some(only) = only.as_object() {
                        for (k, v) in only {
                            p.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
    }
}

/// Doc comments wrap lines; descriptions are one paragraph, as upstream's are.
fn one_line_description(o: Option<&mut serde_json::Map<String, serde_json::Value>>) {
    if let Some(serde_json::Value::String(d)) = o.and_then(|o| o.get_mut("description")) {
        *d = d.replace('\n', " ");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_round_trip_with_type_meta_and_wire_names() {
        let mut c = Cluster::new(
            "acme",
            "prod",
            ClusterSpec {
                cloud: "aws".into(),
                region: Some("eu-west-1".into()),
                service_cidr: Some(DEFAULT_SERVICE_CIDR.into()),
                api_access: Some(ApiAccess {
                    allowed_cidrs: vec!["10.0.0.0/8".into()],
                    anonymous_health: None,
                }),
                ..ClusterSpec::default()
            },
        );
        c.status = Some(ClusterStatus {
            cluster_id: Some("acme:prod".into()),
            ..ClusterStatus::default()
        });
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "berth.dev/v1", "kind": "Cluster",
                "metadata": {"name": "prod", "namespace": "acme"},
                "spec": {"cloud": "aws", "region": "eu-west-1", "serviceCIDR": "10.96.0.0/12",
                    "apiAccess": {"allowedCIDRs": ["10.0.0.0/8"]}},
                "status": {"clusterID": "acme:prod"}})
        );
        assert_eq!(serde_json::from_value::<Cluster>(v).unwrap(), c);
        let np: NodePool = serde_json::from_value(json!({"apiVersion": "berth.dev/v1",
            "kind": "NodePool", "metadata": {"name": "a"},
            "spec": {"clusterName": "prod", "instanceType": "m7i.large", "desiredSize": 2}}))
        .unwrap();
        assert_eq!(np.spec.desired_size, Some(2));
        assert_eq!(<NodePool as ListableResource>::LIST_KIND, "NodePoolList");
    }

    #[test]
    fn schemas_name_kinds_and_have_no_nullable_types() {
        let mut generator = schemars::generate::SchemaSettings::draft07().into_generator();
        generator.subschema_for::<Cluster>();
        generator.subschema_for::<NodePool>();
        let defs = generator.take_definitions(true);
        let cluster = &defs["dev.berth.v1.Cluster"];
        assert_eq!(cluster["properties"]["kind"]["type"], "string");
        assert_eq!(cluster["required"], json!(["spec"]));
        let spec = &defs["dev.berth.v1.ClusterSpec"];
        assert_eq!(spec["properties"]["region"]["type"], "string");
        assert_eq!(spec["properties"]["cloud"]["enum"], json!(CLOUDS));
        assert!(
            spec["properties"]["serviceCIDR"]["description"]
                .as_str()
                .unwrap()
                .contains("10.96.0.0/12")
        );
        let text = serde_json::to_string(&defs).unwrap();
        assert!(!text.contains("\"null\""), "{text}");
    }
}
