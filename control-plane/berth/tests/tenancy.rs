//! Tenant clusters end to end: `berth cluster create` makes a Cluster in the root cluster, the
//! Cluster lifecycle loop provisions its logical cluster and kubeconfig Secret, stock kubectl
//! uses that kubeconfig, one tenant's credentials open nothing of another's, and
//! `berth cluster delete` removes all of it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::kubectl::{Kubectl, which};
use support::{Replica, free_port};

/// Runs `berth ARGS` against the root cluster's admin kubeconfig.
fn berth(root_kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("KUBECONFIG", root_kubeconfig)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run berth")
}

fn berth_ok(root_kubeconfig: &Path, args: &[&str]) -> String {
    let out = berth(root_kubeconfig, args);
    assert!(
        out.status.success(),
        "berth {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn berth_fails(root_kubeconfig: &Path, args: &[&str]) -> String {
    let out = berth(root_kubeconfig, args);
    assert!(!out.status.success(), "berth {args:?} should have failed");
    String::from_utf8(out.stderr).unwrap()
}

/// kubectl 1.33 (`auth whoami` is GA there) with `kubeconfig`.
fn kubectl(kubeconfig: &Path) -> Kubectl {
    let default = which("kubectl").expect("kubectl is not installed (see TOOLING.md)");
    let dir = std::fs::canonicalize(default)
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let bin: PathBuf = dir.join("kubectl.1.33");
    assert!(bin.exists(), "{} is missing", bin.display());
    Kubectl {
        bin,
        kubeconfig: kubeconfig.to_owned(),
        cache: tempfile::tempdir().unwrap(),
    }
}

#[test]
fn tenant_clusters_are_provisioned_isolated_and_torn_down() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let data = dir.path().join("server");
    let replica = Replica::start(1, &addr, &data, &[]);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(replica.wait_ready(Duration::from_secs(30)));
    let admin = data.join("admin.kubeconfig");
    let root = Kubectl::default_for(&admin);

    // Create two clusters and wait for both.
    for name in ["a", "b"] {
        let out = berth_ok(&admin, &["cluster", "create", name, "--wait"]);
        assert!(
            out.contains(&format!("cluster default/{name} created")),
            "{out}"
        );
    }
    let listed = berth_ok(&admin, &["cluster", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("Ready")),
        "{listed}"
    );

    // Their kubeconfigs.
    let a_kubeconfig = dir.path().join("a.kubeconfig");
    let a_text = berth_ok(&admin, &["kubeconfig", "a"]);
    assert!(a_text.contains("/clusters/default:a"), "{a_text}");
    std::fs::write(&a_kubeconfig, &a_text).unwrap();
    let b_kubeconfig = dir.path().join("b.kubeconfig");
    std::fs::write(&b_kubeconfig, berth_ok(&admin, &["kubeconfig", "b"])).unwrap();
    let a = kubectl(&a_kubeconfig);
    let b = kubectl(&b_kubeconfig);

    // A fresh cluster of its own, administered by the kubeconfig's user.
    let namespaces = a.ok(&["get", "ns", "-o", "name"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            namespaces.lines().any(|l| l == format!("namespace/{ns}")),
            "{namespaces}"
        );
    }
    let whoami = a.ok(&["auth", "whoami"]);
    assert!(whoami.contains("system:masters"), "{whoami}");
    a.ok(&["create", "configmap", "only-in-a", "--from-literal=k=v"]);
    assert!(
        a.ok(&["get", "configmap", "only-in-a", "-o", "name"])
            .contains("only-in-a")
    );

    // a's credentials open nothing of b's, and a's objects are not in b.
    let a_at_b = dir.path().join("a-at-b.kubeconfig");
    std::fs::write(
        &a_at_b,
        a_text.replace("/clusters/default:a", "/clusters/default:b"),
    )
    .unwrap();
    let err = kubectl(&a_at_b).fails(&["get", "ns"], None);
    assert!(err.contains("You must be logged in to the server"), "{err}");
    let err = b.fails(&["get", "configmap", "only-in-a"], None);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // A service account with `view` in one namespace, through a token from `kubectl create
    // token`: what RBAC grants, nothing more, and nothing at all in b.
    a.ok(&["create", "namespace", "dev"]);
    a.ok(&["create", "serviceaccount", "ci", "-n", "dev"]);
    a.ok(&[
        "create",
        "rolebinding",
        "ci-view",
        "--clusterrole=view",
        "--serviceaccount=dev:ci",
        "-n",
        "dev",
    ]);
    let token = a.ok(&["create", "token", "ci", "-n", "dev"]);
    let token_config = |cluster: &str| {
        let server = a_text
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .unwrap()
            .replace(
                "/clusters/default:a",
                &format!("/clusters/default:{cluster}"),
            );
        let ca = a_text
            .lines()
            .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
            .unwrap();
        let path = dir.path().join(format!("ci-{cluster}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: ci\n  user:\n    token: {}\ncontexts:\n- name: ci\n  context:\n    cluster: c\n    user: ci\ncurrent-context: ci\n",
                token.trim()
            ),
        )
        .unwrap();
        kubectl(&path)
    };
    let ci = token_config("a");
    assert!(
        ci.ok(&["auth", "whoami"])
            .contains("system:serviceaccount:dev:ci"),
        "the token names its service account"
    );
    ci.ok(&["get", "pods", "-n", "dev"]);
    for args in [
        &["get", "pods", "-n", "default"][..],
        &["get", "secrets", "-n", "dev"],
        &["create", "configmap", "x", "-n", "dev"],
    ] {
        let err = ci.fails(args, None);
        assert!(
            err.contains("Forbidden") || err.contains("forbidden"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        ci.ok(&["auth", "can-i", "list", "pods", "-n", "dev"])
            .trim(),
        "yes"
    );
    let no = ci.run(&["auth", "can-i", "delete", "pods", "-n", "dev"], None);
    assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "no");
    let err = token_config("b").fails(&["get", "pods", "-n", "dev"], None);
    assert!(
        err.contains("You must be logged in to the server"),
        "replayed token: {err}"
    );

    // The Cluster's limits apply to its logical cluster.
    root.ok(&[
        "patch",
        "cluster",
        "b",
        "--type=merge",
        "-p",
        r#"{"spec":{"limits":{"maxObjects":1}}}"#,
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = b.run(
            &["create", "configmap", "over-limit", "--from-literal=k=v"],
            None,
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() && err.contains("exceeded quota") {
            break;
        }
        if out.status.success() {
            b.ok(&["delete", "configmap", "over-limit"]);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the limit never applied: {err}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    root.ok(&[
        "patch",
        "cluster",
        "b",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/limits"}]"#,
    ]);

    // The root cluster shows both Ready, with their endpoints.
    let clusters = root.ok(&["get", "clusters"]);
    for name in ["a", "b"] {
        let line = clusters
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{clusters}"));
        assert!(line.contains("Ready"), "{clusters}");
        assert!(
            line.contains(&format!("/clusters/default:{name}")),
            "{clusters}"
        );
    }
    assert!(clusters.contains("ENDPOINT"), "{clusters}");
    let secret_type = root.ok(&[
        "get",
        "secret",
        "a-kubeconfig",
        "-o",
        "jsonpath={.type} {.metadata.labels.cluster\\.x-k8s\\.io/cluster-name}",
    ]);
    assert_eq!(secret_type, "cluster.x-k8s.io/secret a");

    // Errors people will see.
    let err = berth_fails(&admin, &["kubeconfig", "missing"]);
    assert!(err.contains("cluster default/missing not found"), "{err}");
    let err = berth_fails(&admin, &["cluster", "delete", "missing"]);
    assert!(err.contains("cluster default/missing not found"), "{err}");

    // Deleting a removes the Cluster, its Secret and its logical cluster; b is untouched.
    let out = berth_ok(&admin, &["cluster", "delete", "a", "--wait"]);
    assert!(out.contains("cluster default/a deleted"), "{out}");
    let err = root.fails(&["get", "clusters", "a"], None);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    let err = root.fails(&["get", "secret", "a-kubeconfig"], None);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    let err = a.fails(&["get", "ns"], None);
    assert!(err.contains("You must be logged in to the server"), "{err}");
    let namespaces = b.ok(&["get", "ns", "-o", "name"]);
    assert!(namespaces.contains("namespace/default"), "{namespaces}");
    let listed = berth_ok(&admin, &["cluster", "list", "-A"]);
    assert!(!listed.lines().any(|l| l.contains(" a ")), "{listed}");
    drop(replica);
}
