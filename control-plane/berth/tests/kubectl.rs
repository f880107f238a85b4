//! Stock kubectl against a real `berth server`: the oldest, the default and the newest kubectl
//! on the machine image (1.27, 1.32, 1.33) run the same scenario, and each step's output is
//! checked as a user would read it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::kubectl::{Kubectl, kubectls};
use support::{Replica, free_port};

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels: {app: web, tier: front}
data:
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
"#;

fn scenario(k: &Kubectl) {
    // Discovery and OpenAPI.
    let resources = k.ok(&["api-resources"]);
    assert!(
        resources.lines().any(|l| l.starts_with("deployments")
            && l.contains("apps/v1")
            && l.contains("Deployment")),
        "{resources}"
    );
    assert!(
        resources
            .lines()
            .any(|l| l.starts_with("pods") && l.contains(" po ")),
        "{resources}"
    );
    let versions = k.ok(&["api-versions"]);
    assert!(
        versions.lines().any(|l| l == "apps/v1") && versions.lines().any(|l| l == "v1"),
        "{versions}"
    );
    // kubectl 1.27 explains from OpenAPI v2 in protobuf; later versions read OpenAPI v3.
    let explain = k.ok(&["explain", "pod.spec"]);
    assert!(explain.contains("containers"), "{explain}");

    // Create several documents from one file, then read them back in every output format.
    let created = k.ok_in(&["create", "-f", "-"], Some(MANIFESTS));
    for line in [
        "namespace/shop created",
        "configmap/settings created",
        "deployment.apps/web created",
        "service/web created",
    ] {
        assert!(created.contains(line), "{created}");
    }
    let wide = k.ok(&["get", "deploy", "-n", "shop", "-o", "wide"]);
    assert!(
        wide.contains("CONTAINERS") && wide.contains("nginx:1.25") && wide.contains("app=web"),
        "{wide}"
    );
    let yaml = k.ok(&["get", "cm", "settings", "-n", "shop", "-o", "yaml"]);
    assert!(
        yaml.contains("color: blue") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "cm", "settings", "-n", "shop", "-o", "json"]))
            .unwrap();
    assert_eq!(json["data"]["color"], "blue");
    assert!(
        json["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "2"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm,deploy",
            "-n",
            "shop",
            "-l",
            "app=web",
            "-o",
            "name"
        ])
        .trim(),
        "configmap/settings\ndeployment.apps/web"
    );
    let by_field = k.ok(&[
        "get",
        "cm",
        "-A",
        "--field-selector",
        "metadata.name=settings",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "configmap/settings");
    let all_ns = k.ok(&["get", "ns"]);
    for ns in ["default", "kube-system", "shop"] {
        assert!(all_ns.contains(ns), "{all_ns}");
    }
    for i in 0..5 {
        k.ok(&[
            "create",
            "configmap",
            &format!("page-{i}"),
            "-n",
            "shop",
            "--from-literal=k=v",
            "--dry-run=client",
            "-o",
            "yaml",
        ]);
        k.ok_in(
            &["create", "-f", "-"],
            Some(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: page-{i}\n  namespace: shop\n"
            )),
        );
    }
    let chunked = k.ok(&["get", "cm", "-n", "shop", "--chunk-size=2", "-o", "name"]);
    assert_eq!(
        chunked
            .lines()
            .filter(|l| l.starts_with("configmap/page-"))
            .count(),
        5,
        "{chunked}"
    );

    // Services get a ClusterIP from the service range; NodePorts are never given twice and
    // are released on delete.
    let ip = k.ok(&[
        "get",
        "svc",
        "web",
        "-n",
        "shop",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert!(
        ip.starts_with("10.") && ip.parse::<std::net::Ipv4Addr>().is_ok(),
        "{ip}"
    );
    let node_port = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 30080\n"
        )
    };
    k.ok_in(&["create", "-f", "-"], Some(&node_port("np-a")));
    let taken = k.fails(&["create", "-f", "-"], Some(&node_port("np-b")));
    assert!(
        taken.contains(
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        ),
        "{taken}"
    );
    k.ok(&["delete", "svc", "np-a", "-n", "shop"]);
    k.ok_in(&["create", "-f", "-"], Some(&node_port("np-b")));
    let ports = k.ok(&["get", "svc", "np-b", "-n", "shop"]);
    assert!(ports.contains("80:30080/TCP"), "{ports}");

    // A watch sees a write made by another process.
    let watch = Command::new(&k.bin)
        .args([
            "get",
            "cm",
            "-n",
            "shop",
            "-w",
            "--request-timeout=8s",
            "-o",
            "name",
        ])
        .env("KUBECONFIG", &k.kubeconfig)
        .env("HOME", k.cache.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    k.ok_in(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\n  namespace: shop\n"),
    );
    let out = watch.wait_with_output().unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains("configmap/watched"), "watch saw: {seen}");

    // Describe, label, annotate, scale, patch (all three types), edit, replace, apply, diff.
    let described = k.ok(&["describe", "deploy", "web", "-n", "shop"]);
    assert!(
        described.contains("Name:") && described.contains("nginx:1.25"),
        "{described}"
    );
    k.ok(&["label", "cm", "settings", "-n", "shop", "env=prod"]);
    k.ok(&["annotate", "cm", "settings", "-n", "shop", "owner=team-a"]);
    assert_eq!(
        k.ok(&["get", "cm", "-n", "shop", "-l", "env=prod", "-o", "name"])
            .trim(),
        "configmap/settings"
    );
    k.ok(&["scale", "deploy", "web", "-n", "shop", "--replicas=4"]);
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "4"
    );
    k.ok(&[
        "patch",
        "cm",
        "settings",
        "-n",
        "shop",
        "-p",
        r#"{"data":{"size":"xl"}}"#,
    ]);
    k.ok(&[
        "patch",
        "cm",
        "settings",
        "-n",
        "shop",
        "--type=merge",
        "-p",
        r#"{"data":{"color":null}}"#,
    ]);
    k.ok(&[
        "patch",
        "cm",
        "settings",
        "-n",
        "shop",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/shape","value":"round"}]"#,
    ]);
    let data = k.ok(&[
        "get",
        "cm",
        "settings",
        "-n",
        "shop",
        "-o",
        "jsonpath={.data}",
    ]);
    assert!(
        data.contains("\"size\":\"xl\"")
            && data.contains("\"shape\":\"round\"")
            && !data.contains("color"),
        "{data}"
    );
    let editor = k.cache.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/size: xl/size: xs/' \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new(&k.bin)
        .args(["edit", "cm", "settings", "-n", "shop"])
        .env("KUBECONFIG", &k.kubeconfig)
        .env("HOME", k.cache.path())
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "edit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.size}"
        ]),
        "xs"
    );
    let current = k.ok(&["get", "cm", "settings", "-n", "shop", "-o", "yaml"]);
    k.ok_in(
        &["replace", "-f", "-"],
        Some(&current.replace("size: xs", "size: m")),
    );
    // Replacing with the now stale resourceVersion conflicts.
    let stale = k.fails(&["replace", "-f", "-"], Some(&current));
    assert!(
        stale.contains("Conflict") || stale.contains("the object has been modified"),
        "{stale}"
    );
    let applied = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: declared\n  namespace: shop\ndata:\n  a: \"1\"\n";
    assert!(
        k.ok_in(&["apply", "-f", "-"], Some(applied))
            .contains("configmap/declared created")
    );
    // kubectl 1.27 computes apply and diff patches from OpenAPI v2 in protobuf, later versions
    // from OpenAPI v3.
    let changed = applied.replace("a: \"1\"", "a: \"2\"");
    let diff = k.run(&["diff", "-f", "-"], Some(&changed));
    let diff_out = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "diff exits 1 when there are differences: {}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(
        diff_out.contains("-  a: \"1\"") && diff_out.contains("+  a: \"2\""),
        "{diff_out}"
    );
    assert!(
        k.ok_in(&["apply", "-f", "-"], Some(&changed))
            .contains("configmap/declared configured")
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "declared",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.a}"
        ]),
        "2"
    );

    // Errors read as upstream's.
    let invalid = k.fails(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n  namespace: shop\n"),
    );
    assert!(
        invalid.contains("is invalid")
            && invalid.contains("metadata.name: Invalid value: \"Bad_Name\""),
        "{invalid}"
    );
    let missing = k.fails(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: nowhere\n"),
    );
    assert!(
        missing.contains("namespaces \"nowhere\" not found"),
        "{missing}"
    );
    let exists = k.fails(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\n"),
    );
    assert!(
        exists.contains("AlreadyExists") || exists.contains("already exists"),
        "{exists}"
    );
    let unknown = k.fails(&["get", "frobnicators"], None);
    assert!(
        unknown.contains("the server doesn't have a resource type \"frobnicators\""),
        "{unknown}"
    );

    // Deletion: waiting, cascades, wait --for=delete.
    assert!(
        k.ok(&["delete", "cm", "page-0", "-n", "shop", "--wait"])
            .contains("configmap \"page-0\" deleted")
    );
    k.ok(&[
        "delete",
        "cm",
        "page-1",
        "-n",
        "shop",
        "--cascade=background",
    ]);
    k.ok(&[
        "delete",
        "cm",
        "-n",
        "shop",
        "-l",
        "app=web",
        "--wait=false",
    ]);
    // Deleting by label removed exactly the labelled ConfigMap.
    let gone = k.fails(&["get", "cm", "settings", "-n", "shop"], None);
    assert!(gone.contains("configmaps \"settings\" not found"), "{gone}");
    k.ok(&["get", "cm", "page-2", "-n", "shop"]);
    let mut waiter = Command::new(&k.bin)
        .args([
            "wait",
            "--for=delete",
            "cm/page-3",
            "-n",
            "shop",
            "--timeout=20s",
        ])
        .env("KUBECONFIG", &k.kubeconfig)
        .env("HOME", k.cache.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    k.ok(&["delete", "cm", "page-3", "-n", "shop"]);
    let waited = waiter.wait().unwrap();
    assert!(
        waited.success(),
        "kubectl wait --for=delete did not see the deletion"
    );
    // Orphan deletion: the garbage collector releases the ReplicaSet, then lets the
    // Deployment go.
    let rs = k.ok(&[
        "get",
        "rs",
        "-n",
        "shop",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert!(!rs.trim().is_empty(), "the Deployment has a ReplicaSet");
    k.ok(&[
        "delete",
        "deploy",
        "web",
        "-n",
        "shop",
        "--cascade=orphan",
        "--timeout=30s",
    ]);
    let owners = k.ok(&[
        "get",
        "rs",
        rs.trim(),
        "-n",
        "shop",
        "-o",
        "jsonpath={.metadata.ownerReferences}",
    ]);
    assert!(
        owners.trim().is_empty(),
        "orphaned ReplicaSet still owned: {owners}"
    );
}

/// A `berth server` in `dir` and `bin` pointed at it.
fn start(dir: &Path, i: usize, bin: PathBuf) -> (Replica, Kubectl) {
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let data = dir.join(format!("server-{i}"));
    let replica = Replica::start(1, &addr, &data, &[]);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(replica.wait_ready(Duration::from_secs(30)));
    let kubeconfig = data.join("admin.kubeconfig");
    for _ in 0..100 {
        if kubeconfig.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let k = Kubectl {
        bin,
        kubeconfig,
        cache: tempfile::tempdir().unwrap(),
    };
    (replica, k)
}

#[test]
fn stock_kubectl_versions_work_against_berth() {
    let dir = tempfile::tempdir().unwrap();
    for (i, bin) in kubectls().into_iter().enumerate() {
        let (_replica, k) = start(dir.path(), i, bin);
        eprintln!("scenario with {}", k.bin.display());
        scenario(&k);
    }
}

/// kubectl's typed commands (`create <kind>`, `run`) send their objects as Kubernetes
/// protobuf; each object reads back as the command built it.
fn typed_scenario(k: &Kubectl) {
    let get = |args: &[&str]| -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        serde_json::from_str(&k.ok(&args)).unwrap()
    };
    k.ok(&["create", "namespace", "typed"]);
    let ns = get(&["get", "namespace", "typed"]);
    assert_eq!(ns["metadata"]["name"], "typed");
    assert_eq!(ns["status"]["phase"], "Active");
    assert!(ns["metadata"]["creationTimestamp"].is_string(), "{ns}");

    let n = ["-n", "typed"];
    // The namespace goes first: anything after `--` is the container's command.
    let with_ns = |args: &[&'static str]| -> Vec<&'static str> {
        let mut v = args.to_vec();
        v.splice(1..1, n);
        v
    };
    k.ok(&with_ns(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
        "--port=80",
    ]));
    let d = get(&with_ns(&["get", "deployment", "web"]));
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx");
    assert_eq!(c["ports"][0]["containerPort"], 80);
    // Fields kubectl sent empty are left to defaulting, not stored as "".
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    k.ok(&with_ns(&[
        "create",
        "deployment",
        "idle",
        "--image=nginx",
        "--replicas=0",
    ]));
    let idle = get(&with_ns(&["get", "deployment", "idle"]));
    assert_eq!(idle["spec"]["replicas"], 0, "an explicit zero is kept");

    k.ok(&with_ns(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=a=b",
        "--from-literal=empty=",
    ]));
    let cm = get(&with_ns(&["get", "configmap", "settings"]));
    assert_eq!(cm["data"], serde_json::json!({"a": "b", "empty": ""}));

    k.ok(&with_ns(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=s3cret",
    ]));
    let secret = get(&with_ns(&["get", "secret", "creds"]));
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"]["password"], "czNjcmV0", "base64 of s3cret");

    k.ok(&with_ns(&[
        "create",
        "service",
        "clusterip",
        "web",
        "--tcp=80:8080",
    ]));
    let svc = get(&with_ns(&["get", "service", "web"]));
    let port = &svc["spec"]["ports"][0];
    assert_eq!(port["port"], 80);
    assert_eq!(port["targetPort"], 8080);
    assert_eq!(port["protocol"], "TCP");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty()),
        "{svc}"
    );

    k.ok(&with_ns(&[
        "create",
        "job",
        "once",
        "--image=busybox",
        "--",
        "echo",
        "hi",
    ]));
    let job = get(&with_ns(&["get", "job", "once"]));
    let pod_spec = &job["spec"]["template"]["spec"];
    assert_eq!(pod_spec["restartPolicy"], "Never");
    assert_eq!(
        pod_spec["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );

    k.ok(&with_ns(&[
        "run",
        "web-pod",
        "--image=nginx",
        "--labels=app=web,tier=front",
        "--port=80",
    ]));
    let pod = get(&with_ns(&["get", "pod", "web-pod"]));
    assert_eq!(
        pod["metadata"]["labels"],
        serde_json::json!({"app": "web", "tier": "front"})
    );
    assert_eq!(pod["spec"]["containers"][0]["image"], "nginx");
    assert_eq!(
        pod["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );

    k.ok(&[
        "create",
        "priorityclass",
        "high",
        "--value=1000",
        "--description=important",
    ]);
    let pc = get(&["get", "priorityclass", "high"]);
    assert_eq!(pc["value"], 1000);
    assert_eq!(pc["description"], "important");
    assert_eq!(pc["globalDefault"], serde_json::Value::Null);
}

#[test]
fn typed_commands_send_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    for (i, bin) in kubectls().into_iter().enumerate() {
        let (_replica, k) = start(dir.path(), i, bin);
        eprintln!("typed commands with {}", k.bin.display());
        typed_scenario(&k);
    }
}
