//! Table-driven cases for each filter plugin, with upstream's reason texts.

mod common;

use common::*;
use scheduler::{Code, Plugin, filter};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    node: Value,
    existing: Vec<Value>,
    pod: Value,
    want: Option<(Plugin, Code, &'static [&'static str])>,
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let mut s = snapshot(std::slice::from_ref(&c.node));
        let name = c.node["metadata"]["name"].as_str().unwrap().to_owned();
        for e in &c.existing {
            bind(&mut s, e, &name);
        }
        let got = filter(&info(&c.pod), s.node(&name).unwrap(), &s);
        match (got, c.want) {
            (Ok(()), None) => {}
            (Err(r), Some((plugin, code, reasons))) => {
                assert_eq!(r.plugin, Some(plugin), "{}", c.name);
                assert_eq!(r.code, code, "{}", c.name);
                assert_eq!(r.reasons, reasons, "{}", c.name);
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", c.name),
        }
    }
}

fn n1() -> Value {
    node("n1", "2", "4Gi", 110)
}

#[test]
fn node_unschedulable_and_node_name() {
    let cordoned = with(n1(), "/spec/unschedulable", json!(true));
    run(vec![
        Case {
            name: "cordoned",
            node: cordoned.clone(),
            existing: vec![],
            pod: pod("p", None, None),
            want: Some((
                Plugin::NodeUnschedulable,
                Code::UnschedulableAndUnresolvable,
                &["node(s) were unschedulable"],
            )),
        },
        Case {
            name: "cordoned but tolerated",
            node: cordoned,
            existing: vec![],
            pod: with(
                pod("p", None, None),
                "/spec/tolerations",
                json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]),
            ),
            want: None,
        },
        Case {
            name: "other node name",
            node: n1(),
            existing: vec![],
            pod: with(pod("p", None, None), "/spec/nodeName", json!("n2")),
            want: Some((
                Plugin::NodeName,
                Code::UnschedulableAndUnresolvable,
                &["node(s) didn't match the requested node name"],
            )),
        },
        Case {
            name: "own node name",
            node: n1(),
            existing: vec![],
            pod: with(pod("p", None, None), "/spec/nodeName", json!("n1")),
            want: None,
        },
    ]);
}

#[test]
fn taint_toleration() {
    let tainted = with(
        n1(),
        "/spec/taints",
        json!([
            {"key": "soft", "effect": "PreferNoSchedule"},
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "dedicated", "value": "gpu", "effect": "NoExecute"}
        ]),
    );
    let tol = |t: Value| with(pod("p", None, None), "/spec/tolerations", t);
    run(vec![
        Case {
            name: "first untolerated taint is reported, PreferNoSchedule ignored",
            node: tainted.clone(),
            existing: vec![],
            pod: pod("p", None, None),
            want: Some((
                Plugin::TaintToleration,
                Code::UnschedulableAndUnresolvable,
                &["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"],
            )),
        },
        Case {
            name: "value shown",
            node: tainted.clone(),
            existing: vec![],
            pod: tol(
                json!([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]),
            ),
            want: Some((
                Plugin::TaintToleration,
                Code::UnschedulableAndUnresolvable,
                &["node(s) had untolerated taint {dedicated: gpu}"],
            )),
        },
        Case {
            name: "wrong value does not tolerate",
            node: tainted.clone(),
            existing: vec![],
            pod: tol(json!([
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
                {"key": "dedicated", "value": "cpu", "effect": "NoExecute"}
            ])),
            want: Some((
                Plugin::TaintToleration,
                Code::UnschedulableAndUnresolvable,
                &["node(s) had untolerated taint {dedicated: gpu}"],
            )),
        },
        Case {
            name: "everything tolerated by empty-key Exists",
            node: tainted,
            existing: vec![],
            pod: tol(json!([{"operator": "Exists"}])),
            want: None,
        },
    ]);
}

#[test]
fn node_affinity() {
    let labelled = label(label(n1(), "zone", "a"), "gen", "5");
    let aff = |terms: Value| {
        with(
            pod("p", None, None),
            "/spec/affinity",
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}),
        )
    };
    let fail = Some((
        Plugin::NodeAffinity,
        Code::UnschedulableAndUnresolvable,
        &["node(s) didn't match Pod's node affinity/selector"][..],
    ));
    let cases = [
        (
            json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]),
            true,
        ),
        (
            json!([{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}]),
            false,
        ),
        (
            json!([{"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}]),
            true,
        ),
        (
            json!([{"matchExpressions": [{"key": "gen", "operator": "Lt", "values": ["5"]}]}]),
            false,
        ),
        (
            json!([{"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["x"]}]}]),
            false,
        ),
        (
            json!([{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]),
            true,
        ),
        (
            json!([{"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]),
            true,
        ),
        (
            json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]),
            true,
        ),
        (
            json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}]),
            false,
        ),
        (json!([{}]), false),
        (json!([]), false),
    ];
    let mut table: Vec<Case> = cases
        .into_iter()
        .map(|(terms, ok)| Case {
            name: "terms",
            node: labelled.clone(),
            existing: vec![],
            pod: aff(terms),
            want: if ok { None } else { fail },
        })
        .collect();
    table.push(Case {
        name: "nodeSelector mismatch",
        node: labelled.clone(),
        existing: vec![],
        pod: with(
            pod("p", None, None),
            "/spec/nodeSelector",
            json!({"zone": "b"}),
        ),
        want: fail,
    });
    table.push(Case {
        name: "nodeSelector match",
        node: labelled,
        existing: vec![],
        pod: with(
            pod("p", None, None),
            "/spec/nodeSelector",
            json!({"zone": "a"}),
        ),
        want: None,
    });
    run(table);
}

#[test]
fn node_ports() {
    let port = |p: Value| with(pod("p", None, None), "/spec/containers/0/ports", p);
    let fail = Some((
        Plugin::NodePorts,
        Code::Unschedulable,
        &["node(s) didn't have free ports for the requested pod ports"][..],
    ));
    let existing = port(json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]));
    let cases = [
        (json!([{"containerPort": 80, "hostPort": 8080}]), fail),
        (
            json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]),
            fail,
        ),
        (
            json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.2"}]),
            None,
        ),
        (
            json!([{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]),
            None,
        ),
        (json!([{"containerPort": 80, "hostPort": 8081}]), None),
        (json!([{"containerPort": 8080}]), None),
    ];
    run(cases
        .into_iter()
        .map(|(p, want)| Case {
            name: "ports",
            node: n1(),
            existing: vec![existing.clone()],
            pod: port(p),
            want,
        })
        .collect());
}

#[test]
fn node_resources_fit() {
    let full =
        |reason: &'static [&'static str], code| Some((Plugin::NodeResourcesFit, code, reason));
    let gpu_node = with(n1(), "/status/allocatable/nvidia.com~1gpu", json!("1"));
    let init = with(
        pod("p", Some("100m"), None),
        "/spec/initContainers",
        json!([{"name": "i", "image": "x", "resources": {"requests": {"cpu": "1500m"}}}]),
    );
    let sidecar = with(
        pod("p", Some("1"), None),
        "/spec/initContainers",
        json!([{"name": "s", "image": "x", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1100m"}}}]),
    );
    run(vec![
        Case {
            name: "fits",
            node: n1(),
            existing: vec![pod("e", Some("1"), Some("1Gi"))],
            pod: pod("p", Some("1"), Some("3Gi")),
            want: None,
        },
        Case {
            name: "cpu and memory short",
            node: n1(),
            existing: vec![pod("e", Some("1500m"), Some("2Gi"))],
            pod: pod("p", Some("600m"), Some("2049Mi")),
            want: full(
                &["Insufficient cpu", "Insufficient memory"],
                Code::Unschedulable,
            ),
        },
        Case {
            name: "more than allocatable is unresolvable",
            node: n1(),
            existing: vec![],
            pod: pod("p", Some("3"), None),
            want: full(&["Insufficient cpu"], Code::UnschedulableAndUnresolvable),
        },
        Case {
            name: "too many pods, even without requests",
            node: node("n1", "2", "4Gi", 1),
            existing: vec![pod("e", None, None)],
            pod: pod("p", None, None),
            want: full(&["Too many pods"], Code::Unschedulable),
        },
        Case {
            name: "extended resource",
            node: gpu_node.clone(),
            existing: vec![with(
                pod("e", None, None),
                "/spec/containers/0/resources/requests/nvidia.com~1gpu",
                json!("1"),
            )],
            pod: with(
                pod("p", None, None),
                "/spec/containers/0/resources/requests/nvidia.com~1gpu",
                json!("1"),
            ),
            want: full(&["Insufficient nvidia.com/gpu"], Code::Unschedulable),
        },
        Case {
            name: "extended resource the node lacks",
            node: n1(),
            existing: vec![],
            pod: with(
                pod("p", None, None),
                "/spec/containers/0/resources/requests/example.com~1foo",
                json!("1"),
            ),
            want: full(
                &["Insufficient example.com/foo"],
                Code::UnschedulableAndUnresolvable,
            ),
        },
        Case {
            name: "init container max rule",
            node: n1(),
            existing: vec![pod("e", Some("1"), None)],
            pod: init,
            want: full(&["Insufficient cpu"], Code::Unschedulable),
        },
        Case {
            name: "sidecar adds to containers",
            node: n1(),
            existing: vec![],
            pod: sidecar,
            want: full(&["Insufficient cpu"], Code::UnschedulableAndUnresolvable),
        },
        Case {
            name: "overhead counts",
            node: n1(),
            existing: vec![pod("e", Some("1"), None)],
            pod: with(
                pod("p", Some("1"), None),
                "/spec/overhead",
                json!({"cpu": "10m"}),
            ),
            want: full(&["Insufficient cpu"], Code::Unschedulable),
        },
    ]);
}

fn anti(key: &str, app: &str) -> Value {
    json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}
    ]}})
}

#[test]
fn inter_pod_affinity() {
    let zoned = label(n1(), "zone", "a");
    let web = label(pod("web", None, None), "app", "web");
    let db_with_affinity = |app: &str| {
        with(
            label(pod("p", None, None), "app", "db"),
            "/spec/affinity",
            json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "zone"}
            ]}}),
        )
    };
    run(vec![
        Case {
            name: "affinity satisfied",
            node: zoned.clone(),
            existing: vec![web.clone()],
            pod: db_with_affinity("web"),
            want: None,
        },
        Case {
            name: "affinity unsatisfied",
            node: zoned.clone(),
            existing: vec![web.clone()],
            pod: db_with_affinity("cache"),
            want: Some((
                Plugin::InterPodAffinity,
                Code::UnschedulableAndUnresolvable,
                &["node(s) didn't match pod affinity rules"],
            )),
        },
        Case {
            name: "first pod of a self-affine group",
            node: zoned.clone(),
            existing: vec![],
            pod: db_with_affinity("db"),
            want: None,
        },
        Case {
            name: "missing topology key",
            node: n1(),
            existing: vec![web.clone()],
            pod: db_with_affinity("web"),
            want: Some((
                Plugin::InterPodAffinity,
                Code::UnschedulableAndUnresolvable,
                &["node(s) didn't match pod affinity rules"],
            )),
        },
        Case {
            name: "own anti-affinity",
            node: zoned.clone(),
            existing: vec![web.clone()],
            pod: with(pod("p", None, None), "/spec/affinity", anti("zone", "web")),
            want: Some((
                Plugin::InterPodAffinity,
                Code::Unschedulable,
                &["node(s) didn't match pod anti-affinity rules"],
            )),
        },
        Case {
            name: "anti-affinity in another namespace does not match",
            node: zoned.clone(),
            existing: vec![with(web.clone(), "/metadata/namespace", json!("other"))],
            pod: with(pod("p", None, None), "/spec/affinity", anti("zone", "web")),
            want: None,
        },
        Case {
            name: "existing pod's anti-affinity (symmetry)",
            node: zoned.clone(),
            existing: vec![with(
                pod("e", None, None),
                "/spec/affinity",
                anti("kubernetes.io/hostname", "web"),
            )],
            pod: web.clone(),
            want: Some((
                Plugin::InterPodAffinity,
                Code::Unschedulable,
                &["node(s) didn't satisfy existing pods anti-affinity rules"],
            )),
        },
    ]);
}

#[test]
fn pod_topology_spread() {
    // Two zones: n1 in a with 2 matching pods; the pod goes to n1 or n2 (zone b, empty).
    let spread = |max_skew: i64, min_domains: Option<i64>| {
        let mut c = json!({"maxSkew": max_skew, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}}});
        if let Some(m) = min_domains {
            c["minDomains"] = json!(m);
        }
        with(
            label(pod("p", None, None), "app", "web"),
            "/spec/topologySpreadConstraints",
            json!([c]),
        )
    };
    let web = |n: &str| label(pod(n, None, None), "app", "web");
    let mut s = snapshot(&[
        label(n1(), "zone", "a"),
        label(node("n2", "2", "4Gi", 110), "zone", "b"),
        node("n3", "2", "4Gi", 110),
    ]);
    bind(&mut s, &web("w1"), "n1");
    bind(&mut s, &web("w2"), "n1");
    let check = |pod: &Value, node: &str| {
        filter(&info(pod), s.node(node).unwrap(), &s).map_err(|r| (r.code, r.reasons))
    };
    assert_eq!(
        check(&spread(1, None), "n1"),
        Err((
            Code::Unschedulable,
            vec!["node(s) didn't match pod topology spread constraints".to_owned()]
        ))
    );
    assert_eq!(check(&spread(1, None), "n2"), Ok(()));
    assert_eq!(check(&spread(3, None), "n1"), Ok(()));
    // With three domains required and two present, the global minimum counts as zero.
    assert_eq!(
        check(&spread(2, Some(3)), "n1"),
        Err((
            Code::Unschedulable,
            vec!["node(s) didn't match pod topology spread constraints".to_owned()]
        ))
    );
    assert_eq!(
        check(&spread(1, None), "n3"),
        Err((
            Code::UnschedulableAndUnresolvable,
            vec![
                "node(s) didn't match pod topology spread constraints (missing required label)"
                    .to_owned()
            ]
        ))
    );
    // Node affinity policy Honor (default): a zone excluded by nodeSelector is not a domain.
    let pinned = with(spread(1, None), "/spec/nodeSelector", json!({"zone": "a"}));
    assert_eq!(check(&pinned, "n1"), Ok(()));
}
