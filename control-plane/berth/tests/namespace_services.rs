//! The namespace, service and node controllers, checked with stock kubectl against a real server
//! with simulated nodes: a new namespace gets its `default` ServiceAccount and
//! `kube-root-ca.crt` (both put back when deleted), a Service gets Endpoints with its pods'
//! IPs, a PodDisruptionBudget reports the disruptions it allows, and nodes get pod CIDRs.

mod support;

use std::time::Duration;

use support::kubectl::{Kubectl, SimulatedNodes};
use support::{Replica, free_port};

const WAIT: Duration = Duration::from_secs(60);

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: team}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: "nginx:1.25"
        ports: [{name: http, containerPort: 8080}]
"#;

const PDB: &str = r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: team}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
"#;

#[test]
fn namespaces_services_budgets_and_nodes_are_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let data = dir.path().join("server");
    let replica = Replica::start(1, &addr, &data, &[]);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(replica.wait_ready(Duration::from_secs(30)));
    let kubeconfig = data.join("admin.kubeconfig");
    let k = Kubectl::default_for(&kubeconfig);
    let _nodes = SimulatedNodes::start(
        &kubeconfig,
        &[
            "--count",
            "2",
            "--prefix",
            "n-",
            "--lease-renew-seconds",
            "1",
        ],
    );

    // Namespaces: the default ServiceAccount and the root CA bundle, put back when deleted.
    k.ok(&["create", "namespace", "team"]);
    k.eventually(
        &[
            "get",
            "serviceaccount",
            "default",
            "-n",
            "team",
            "-o",
            "name",
        ],
        WAIT,
        |o| o.trim() == "serviceaccount/default",
    );
    let ca = k.eventually(
        &[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ],
        WAIT,
        |o| o.contains("BEGIN CERTIFICATE"),
    );
    let kubeconfig_text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        kubeconfig_text.contains("certificate-authority-data"),
        "{kubeconfig_text}"
    );
    k.ok(&["delete", "serviceaccount", "default", "-n", "team"]);
    k.eventually(
        &["get", "serviceaccount", "-n", "team", "-o", "name"],
        WAIT,
        |o| o.contains("serviceaccount/default"),
    );
    k.ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"junk"}}"#,
    ]);
    k.eventually(
        &[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ],
        WAIT,
        |o| o == ca,
    );
    k.ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "team"]);
    k.eventually(
        &[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ],
        WAIT,
        |o| o == ca,
    );

    // Nodes: each gets its own pod CIDR from the cluster range.
    let cidrs = k.eventually(
        &[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.spec.podCIDR}{\"\\n\"}{end}",
        ],
        WAIT,
        |o| {
            let l: Vec<&str> = o.lines().filter(|l| !l.is_empty()).collect();
            l.len() == 2
                && l.iter()
                    .all(|c| c.starts_with("10.244.") && c.ends_with("/24"))
        },
    );
    let mut distinct: Vec<&str> = cidrs.lines().collect();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "{cidrs}");

    // Services: Endpoints with the ready pods' IPs and the named port resolved.
    k.ok_in(&["apply", "-f", "-"], Some(SERVICE));
    k.ok_in(&["apply", "-f", "-"], Some(DEPLOYMENT));
    k.ok(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "team",
        "--timeout=60s",
    ]);
    let ips = k.ok(&[
        "get",
        "pods",
        "-n",
        "team",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.status.podIP}{\"\\n\"}{end}",
    ]);
    let mut ips: Vec<&str> = ips.lines().filter(|l| !l.is_empty()).collect();
    ips.sort();
    assert_eq!(ips.len(), 3);
    k.eventually(
        &[
            "get",
            "endpoints",
            "web",
            "-n",
            "team",
            "-o",
            "jsonpath={range .subsets[*].addresses[*]}{.ip}{\"\\n\"}{end}",
        ],
        WAIT,
        |o| {
            let mut got: Vec<&str> = o.lines().filter(|l| !l.is_empty()).collect();
            got.sort();
            got == ips
        },
    );
    let port = k.ok(&[
        "get",
        "endpoints",
        "web",
        "-n",
        "team",
        "-o",
        "jsonpath={.subsets[0].ports[0].port}",
    ]);
    assert_eq!(port, "8080");
    let table = k.ok(&["get", "endpoints", "web", "-n", "team"]);
    assert!(table.contains(":8080"), "{table}");

    // A PodDisruptionBudget reports what it allows.
    k.ok_in(&["apply", "-f", "-"], Some(PDB));
    k.eventually(
        &[
            "get",
            "pdb",
            "web",
            "-n",
            "team",
            "-o",
            "jsonpath={.status.disruptionsAllowed}/{.status.currentHealthy}/{.status.expectedPods}",
        ],
        WAIT,
        |o| o == "1/3/3",
    );
    let table = k.ok(&["get", "pdb", "web", "-n", "team"]);
    assert!(table.contains("ALLOWED DISRUPTIONS"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("web"))
        .unwrap_or_default()
        .to_owned();
    assert_eq!(row.split_whitespace().nth(3), Some("1"), "{table}");
    k.ok(&["scale", "deploy/web", "-n", "team", "--replicas=2"]);
    k.eventually(
        &[
            "get",
            "pdb",
            "web",
            "-n",
            "team",
            "-o",
            "jsonpath={.status.disruptionsAllowed}",
        ],
        WAIT,
        |o| o == "0",
    );

    // Deleting the Service takes its Endpoints with it.
    k.ok(&["delete", "service", "web", "-n", "team"]);
    k.eventually(
        &["get", "endpoints", "-n", "team", "-o", "name"],
        WAIT,
        |o| !o.contains("endpoints/web"),
    );
}
