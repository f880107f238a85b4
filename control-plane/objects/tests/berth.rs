//! Validation, defaulting and table columns of Berth's management kinds (`berth.dev/v1`).

use objects::GroupKind;
use objects::defaults::apply_defaults;
use objects::printers::columns;
use objects::validation::{FIELD_IMMUTABLE, name_is_valid, validate_create, validate_update};
use serde_json::{Value, json};

const CLUSTER: GroupKind<'static> = GroupKind::new("berth.dev", "Cluster");
const NODE_POOL: GroupKind<'static> = GroupKind::new("berth.dev", "NodePool");

fn messages(errs: &[objects::field::FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn create(kind: GroupKind<'_>, mut obj: Value) -> Vec<String> {
    apply_defaults(kind, &mut obj);
    messages(&validate_create(kind, &obj))
}

fn update(kind: GroupKind<'_>, mut old: Value, mut new: Value) -> Vec<String> {
    apply_defaults(kind, &mut old);
    apply_defaults(kind, &mut new);
    messages(&validate_update(kind, &new, &old))
}

fn with(base: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    edit(&mut v);
    v
}

fn cluster() -> Value {
    json!({"apiVersion": "berth.dev/v1", "kind": "Cluster",
        "metadata": {"name": "prod", "namespace": "acme", "resourceVersion": "1"},
        "spec": {"cloud": "aws", "region": "eu-west-1", "kubernetesVersion": "1.33",
            "apiAccess": {"allowedCIDRs": ["203.0.113.0/24", "2001:db8::/32"]},
            "limits": {"maxObjects": 10000, "requestsPerSecond": 50, "burst": 100}}})
}

fn pool() -> Value {
    json!({"apiVersion": "berth.dev/v1", "kind": "NodePool",
        "metadata": {"name": "workers", "namespace": "acme", "resourceVersion": "1"},
        "spec": {"clusterName": "prod", "instanceType": "m7i.large", "zones": ["eu-west-1a"],
            "minSize": 1, "desiredSize": 2, "maxSize": 4, "labels": {"pool": "workers"},
            "taints": [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]}})
}

#[test]
fn defaults_fill_ranges_region_and_sizes() {
    let mut c = json!({"metadata": {"name": "dev"}, "spec": {"cloud": "local"}});
    apply_defaults(CLUSTER, &mut c);
    assert_eq!(
        c["spec"],
        json!({"cloud": "local", "region": "local", "serviceCIDR": "10.96.0.0/12",
            "podCIDR": "10.244.0.0/16", "apiAccess": {"anonymousHealth": true}})
    );
    let again = with(&c, |c| apply_defaults(CLUSTER, c));
    assert_eq!(again, c, "defaulting is idempotent");
    // A cloud cluster's region is not guessed.
    let mut aws = json!({"spec": {"cloud": "aws"}});
    apply_defaults(CLUSTER, &mut aws);
    assert!(aws["spec"].get("region").is_none());

    let mut p = json!({"spec": {"clusterName": "dev", "instanceType": "t3.small", "minSize": 2}});
    apply_defaults(NODE_POOL, &mut p);
    assert_eq!(
        (&p["spec"]["desiredSize"], &p["spec"]["maxSize"]),
        (&json!(2), &json!(2))
    );
    let mut p = json!({"spec": {"desiredSize": 3}});
    apply_defaults(NODE_POOL, &mut p);
    assert_eq!(
        (
            &p["spec"]["minSize"],
            &p["spec"]["desiredSize"],
            &p["spec"]["maxSize"]
        ),
        (&json!(0), &json!(3), &json!(3))
    );
}

#[test]
fn cluster_rules() {
    assert_eq!(create(CLUSTER, cluster()), Vec::<String>::new());
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            with(&cluster(), |c| c["spec"] = json!({})),
            vec!["spec.cloud: Required value"],
        ),
        (
            with(&cluster(), |c| c["spec"]["cloud"] = json!("azure")),
            vec![
                "spec.cloud: Unsupported value: \"azure\": supported values: \"aws\", \"gcp\", \"local\"",
            ],
        ),
        (
            with(&cluster(), |c| {
                c["spec"].as_object_mut().unwrap().remove("region");
            }),
            vec!["spec.region: Required value: a region is required for cloud \"aws\""],
        ),
        (
            with(&cluster(), |c| {
                c["spec"]["serviceCIDR"] = json!("10.96.0.0/33");
                c["spec"]["podCIDR"] = json!("pods");
                c["spec"]["apiAccess"]["allowedCIDRs"][1] = json!("2001:db8::1");
            }),
            vec![
                "spec.serviceCIDR: Invalid value: \"10.96.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                "spec.podCIDR: Invalid value: \"pods\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                "spec.apiAccess.allowedCIDRs[1]: Invalid value: \"2001:db8::1\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ],
        ),
        (
            with(&cluster(), |c| {
                c["spec"]["limits"]["burst"] = json!(-1);
                c["spec"]["kubernetesVersion"] = json!("latest");
            }),
            vec![
                "spec.kubernetesVersion: Invalid value: \"latest\": must be a Kubernetes version such as 1.33 or 1.33.1",
                "spec.limits.burst: Invalid value: -1: must be greater than or equal to 0",
            ],
        ),
        (
            with(&cluster(), |c| c["status"] = json!({"phase": "Running"})),
            vec![
                "status.phase: Unsupported value: \"Running\": supported values: \"Provisioning\", \"Ready\", \"Deleting\", \"Failed\"",
            ],
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(create(CLUSTER, obj.clone()), want, "{obj}");
    }
}

#[test]
fn cluster_names_are_short_dns1035_labels() {
    assert!(name_is_valid(CLUSTER, "prod-eu").is_empty());
    assert_eq!(
        name_is_valid(CLUSTER, &"a".repeat(41)),
        vec!["must be no more than 40 characters"]
    );
    assert!(name_is_valid(CLUSTER, &"a".repeat(40)).is_empty());
    assert_eq!(name_is_valid(CLUSTER, "1prod").len(), 1);
    let errs = create(
        CLUSTER,
        with(&cluster(), |c| c["metadata"]["name"] = json!("prod.eu")),
    );
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("metadata.name: Invalid value: \"prod.eu\": a DNS-1035 label"),
        "{errs:?}"
    );
}

#[test]
fn cluster_placement_and_ranges_are_immutable() {
    let edited = with(&cluster(), |c| {
        c["spec"]["kubernetesVersion"] = json!("1.34");
        c["spec"]["limits"]["maxObjects"] = json!(20000);
    });
    assert_eq!(update(CLUSTER, cluster(), edited), Vec::<String>::new());
    let moved = with(&cluster(), |c| {
        c["spec"]["region"] = json!("us-east-1");
        c["spec"]["serviceCIDR"] = json!("10.0.0.0/16");
    });
    assert_eq!(
        update(CLUSTER, cluster(), moved),
        vec![
            format!("spec.region: Invalid value: \"us-east-1\": {FIELD_IMMUTABLE}"),
            format!("spec.serviceCIDR: Invalid value: \"10.0.0.0/16\": {FIELD_IMMUTABLE}"),
        ]
    );
    // A defaulted range counts as set: clearing it changes nothing.
    let cleared = with(&cluster(), |c| {
        c["spec"].as_object_mut().unwrap().remove("podCIDR");
    });
    assert_eq!(update(CLUSTER, cluster(), cleared), Vec::<String>::new());
}

#[test]
fn node_pool_rules() {
    assert_eq!(create(NODE_POOL, pool()), Vec::<String>::new());
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            with(&pool(), |p| p["spec"] = json!({})),
            vec![
                "spec.clusterName: Required value",
                "spec.instanceType: Required value",
            ],
        ),
        (
            with(&pool(), |p| {
                p["spec"]["minSize"] = json!(3);
                p["spec"]["desiredSize"] = json!(2);
            }),
            vec![
                "spec.desiredSize: Invalid value: 2: must be greater than or equal to spec.minSize",
            ],
        ),
        (
            with(&pool(), |p| p["spec"]["maxSize"] = json!(1)),
            vec![
                "spec.maxSize: Invalid value: 1: must be greater than or equal to spec.desiredSize",
            ],
        ),
        (
            with(&pool(), |p| p["spec"]["minSize"] = json!(-1)),
            vec!["spec.minSize: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            with(&pool(), |p| {
                p["spec"]["zones"] = json!(["a", "a"]);
                p["spec"]["taints"][0]["effect"] = json!("Never");
            }),
            vec![
                "spec.zones[1]: Duplicate value: \"a\"",
                "spec.taints[0].effect: Unsupported value: \"Never\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            ],
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(create(NODE_POOL, obj.clone()), want, "{obj}");
    }
    let scaled = with(&pool(), |p| p["spec"]["desiredSize"] = json!(4));
    assert_eq!(update(NODE_POOL, pool(), scaled), Vec::<String>::new());
    let moved = with(&pool(), |p| p["spec"]["clusterName"] = json!("staging"));
    assert_eq!(
        update(NODE_POOL, pool(), moved),
        vec![format!(
            "spec.clusterName: Invalid value: \"staging\": {FIELD_IMMUTABLE}"
        )]
    );
}

#[test]
fn tables_have_berth_columns() {
    let names = |k| -> Vec<&str> { columns(k).unwrap().iter().map(|c| c.name).collect() };
    assert_eq!(
        names(CLUSTER),
        [
            "Name", "Cloud", "Region", "Version", "Phase", "Endpoint", "Age"
        ]
    );
    assert_eq!(
        names(NODE_POOL),
        [
            "Name",
            "Cluster",
            "Instance-Type",
            "Desired",
            "Ready",
            "Age"
        ]
    );
}
