//! The hosted scheduler and controllers, driven with stock kubectl against a real server whose
//! nodes are simulated (`berth simulate-nodes`): rollouts, scaling, rollbacks, each cascade
//! mode of delete, namespace deletion, a node that stops heartbeating, and a pod that fits
//! nowhere explaining why.

mod support;

use std::time::Duration;

use support::kubectl::{Kubectl, SimulatedNodes};
use support::{Replica, free_port};

const WAIT: Duration = Duration::from_secs(60);

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.25"}]
"#;

fn images(k: &Kubectl, selector: &str) -> Vec<String> {
    let out = k.ok(&[
        "get",
        "pods",
        "-l",
        selector,
        "-o",
        "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}",
    ]);
    out.lines().map(str::to_string).collect()
}

fn count(k: &Kubectl, args: &[&str]) -> usize {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "name"]);
    k.ok(&all).lines().filter(|l| !l.is_empty()).count()
}

#[test]
fn workloads_converge_with_stock_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let data = dir.path().join("server");
    let replica = Replica::start(
        1,
        &addr,
        &data,
        &["--node-monitor-grace-period-secs".into(), "8".into()],
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(replica.wait_ready(Duration::from_secs(30)));
    let kubeconfig = data.join("admin.kubeconfig");
    let k = Kubectl::default_for(&kubeconfig);
    let _steady = SimulatedNodes::start(
        &kubeconfig,
        &[
            "--count",
            "3",
            "--prefix",
            "a-",
            "--lease-renew-seconds",
            "1",
        ],
    );
    let mut doomed = SimulatedNodes::start(
        &kubeconfig,
        &[
            "--count",
            "1",
            "--prefix",
            "b-",
            "--lease-renew-seconds",
            "1",
        ],
    );
    k.eventually(&["get", "nodes", "-o", "name"], WAIT, |out| {
        out.lines().count() == 4
    });

    // Rollout, scale, new image, rollback.
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=3",
    ]);
    k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert_eq!(
        count(
            &k,
            &[
                "pods",
                "-l",
                "app=web",
                "--field-selector=status.phase=Running"
            ]
        ),
        3
    );
    k.ok(&["scale", "deploy/web", "--replicas=5"]);
    k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    k.eventually(
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
        WAIT,
        |o| o == "5",
    );
    k.ok(&["set", "image", "deploy/web", "nginx=nginx:1.26"]);
    k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    k.eventually(
        &["get", "pods", "-l", "app=web", "-o", "name"],
        WAIT,
        |_| {
            let imgs = images(&k, "app=web");
            imgs.len() == 5 && imgs.iter().all(|i| i == "nginx:1.26")
        },
    );
    let history = k.ok(&["rollout", "history", "deploy/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    k.ok(&["rollout", "undo", "deploy/web"]);
    k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    k.eventually(
        &["get", "pods", "-l", "app=web", "-o", "name"],
        WAIT,
        |_| {
            let imgs = images(&k, "app=web");
            imgs.len() == 5 && imgs.iter().all(|i| i == "nginx:1.25")
        },
    );
    let events = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=ScalingReplicaSet",
    ]);
    assert!(events.contains("Scaled up replica set web-"), "{events}");

    // Delete, in each cascade mode.
    k.ok(&["delete", "deploy/web", "--cascade=orphan"]);
    assert_eq!(
        count(&k, &["rs", "-l", "app=web"]),
        2,
        "orphaned ReplicaSets stay"
    );
    let owners = k.ok(&[
        "get",
        "rs",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.ownerReferences}",
    ]);
    assert!(owners.trim().is_empty(), "{owners}");
    k.ok(&[
        "delete",
        "rs",
        "-l",
        "app=web",
        "--cascade=foreground",
        "--timeout=60s",
    ]);
    // Foreground: the ReplicaSets were gone only after their pods.
    k.eventually(&["get", "pods", "-l", "app=web", "-o", "name"], WAIT, |o| {
        o.trim().is_empty()
    });
    k.ok_in(&["apply", "-f", "-"], Some(DEPLOYMENT));
    k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    k.ok(&["delete", "deploy/web"]);
    k.eventually(
        &["get", "rs,pods", "-l", "app=web", "-o", "name"],
        WAIT,
        |o| o.trim().is_empty(),
    );

    // Deleting a namespace deletes what is in it, then the namespace.
    k.ok(&["create", "namespace", "doomed"]);
    k.ok_in(
        &["apply", "-n", "doomed", "-f", "-"],
        Some(&DEPLOYMENT.replace("namespace: default", "namespace: doomed")),
    );
    k.ok(&[
        "rollout",
        "status",
        "-n",
        "doomed",
        "deploy/web",
        "--timeout=60s",
    ]);
    k.ok(&["delete", "namespace", "doomed", "--timeout=60s"]);
    let gone = k.fails(&["get", "namespace", "doomed"], None);
    assert!(gone.contains("NotFound"), "{gone}");

    // A pod that fits nowhere says why.
    k.ok_in(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  containers: [{name: c, image: busybox, resources: {requests: {cpu: "1000"}}}]
"#,
        ),
    );
    let described = k.eventually(&["describe", "pod", "huge"], WAIT, |o| {
        o.contains("FailedScheduling")
    });
    assert!(
        described.contains("0/4 nodes are available: 4 Insufficient cpu."),
        "{described}"
    );

    // A node that stops heartbeating goes NotReady and, once its pods' toleration runs out,
    // they are evicted; their replacements land on the healthy nodes.
    k.ok_in(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: pinned}
spec:
  replicas: 1
  selector: {matchLabels: {app: pinned}}
  template:
    metadata: {labels: {app: pinned}}
    spec:
      nodeSelector: {kubernetes.io/hostname: b-0}
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers: [{name: c, image: busybox}]
"#,
        ),
    );
    k.ok(&["rollout", "status", "deploy/pinned", "--timeout=60s"]);
    doomed.kill();
    k.ok(&[
        "wait",
        "node/b-0",
        "--for=condition=Ready=Unknown",
        "--timeout=60s",
    ]);
    let taints = k.ok(&["get", "node", "b-0", "-o", "jsonpath={.spec.taints[*].key}"]);
    assert!(
        taints.contains("node.kubernetes.io/unreachable"),
        "{taints}"
    );
    k.eventually(
        &[
            "get",
            "events",
            "--field-selector",
            "reason=TaintManagerEviction",
            "-o",
            "name",
        ],
        WAIT,
        |o| !o.trim().is_empty(),
    );
    // The replacement cannot go anywhere else (it is pinned to b-0) and says so.
    k.eventually(
        &[
            "get",
            "events",
            "--field-selector",
            "reason=FailedScheduling",
        ],
        WAIT,
        |o| o.contains("node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
    );
}
