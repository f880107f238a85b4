//! Printers of Berth's management kinds (`berth.dev/v1` `Cluster` and `NodePool`). Upstream has
//! none; these follow its conventions: the name first, the age last, `<none>` for what is not
//! known yet, descriptions from the types' field documentation.

use serde_json::Value;

use super::duration::Nanos;
use super::{Column, age, age_column, at, column, int_at, name, name_column, or_none, str_at};

const D_CLOUD: &str = "The cloud the cluster's nodes run in: `aws`, `gcp` or `local`.";
const D_REGION: &str = "The cloud region of the cluster's nodes.";
const D_VERSION: &str =
    "The Kubernetes version the cluster's API serves (asked for, until it is served).";
const D_PHASE: &str =
    "Where the cluster is in its life: `Provisioning`, `Ready`, `Deleting` or `Failed`.";
const D_ENDPOINT: &str = "The URL of the cluster's API endpoint.";
const D_POOL_CLUSTER: &str = "The name of the Cluster, in the same namespace, the nodes join.";
const D_INSTANCE_TYPE: &str = "The cloud's machine type.";
const D_DESIRED: &str = "The number of nodes wanted.";
const D_READY: &str = "The number of the pool's nodes that are Ready.";

pub(super) fn cluster_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Cloud", "string", D_CLOUD),
        column("Region", "string", D_REGION),
        column("Version", "string", D_VERSION),
        column("Phase", "string", D_PHASE),
        column("Endpoint", "string", D_ENDPOINT),
        age_column(),
    ]
}

pub(super) fn cluster(o: &Value, now: Nanos) -> Vec<Value> {
    let version = match str_at(o, &["status", "kubernetesVersion"]) {
        "" => str_at(o, &["spec", "kubernetesVersion"]),
        served => served,
    };
    vec![
        name(o).into(),
        str_at(o, &["spec", "cloud"]).into(),
        str_at(o, &["spec", "region"]).into(),
        or_none(version).into(),
        or_none(str_at(o, &["status", "phase"])).into(),
        or_none(str_at(o, &["status", "endpoint"])).into(),
        age(o, now),
    ]
}

pub(super) fn node_pool_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Cluster", "string", D_POOL_CLUSTER),
        column("Instance-Type", "string", D_INSTANCE_TYPE),
        column("Desired", "integer", D_DESIRED),
        column("Ready", "integer", D_READY),
        age_column(),
    ]
}

pub(super) fn node_pool(o: &Value, now: Nanos) -> Vec<Value> {
    // The desired size defaults to the minimum size, and that to 0.
    let desired = match at(o, &["spec", "desiredSize"]) {
        Some(_) => int_at(o, &["spec", "desiredSize"]),
        None => int_at(o, &["spec", "minSize"]),
    };
    vec![
        name(o).into(),
        str_at(o, &["spec", "clusterName"]).into(),
        str_at(o, &["spec", "instanceType"]).into(),
        desired.into(),
        int_at(o, &["status", "readyReplicas"]).into(),
        age(o, now),
    ]
}
