//! The workload controllers end to end: a real `berth server`, `berth simulate-nodes` playing
//! the kubelets, and stock kubectl driving Jobs, an Indexed Job, a CronJob, a DaemonSet and a
//! StatefulSet as a user would.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use support::{Replica, free_port};

/// kubectl 1.33 where the machine image ships it next to the default kubectl, else the default.
fn kubectl_bin() -> PathBuf {
    let default = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("kubectl"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| PathBuf::from("/usr/bin/kubectl"));
    let dir = std::fs::canonicalize(&default)
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned));
    dir.map(|d| d.join("kubectl.1.33"))
        .filter(|p| p.exists())
        .unwrap_or(default)
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Kubectl {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(&self.bin)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.home.path())
            .env("HOME", self.home.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn ok_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    fn apply(&self, manifest: &str) -> String {
        self.ok_in(&["apply", "-f", "-"], Some(manifest))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&args)).expect("kubectl printed JSON")
    }

    /// The pods labelled `selector`.
    fn pods(&self, selector: &str) -> Vec<Value> {
        self.json(&["get", "pods", "-l", selector])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// `berth simulate-nodes` as a child process, killed by PID when dropped.
struct Simulator {
    child: Child,
}

impl Simulator {
    fn start(kubeconfig: &Path, count: u32, log: &Path) -> Simulator {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["simulate-nodes", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--count", &count.to_string(), "--job-seconds", "1"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berth simulate-nodes");
        Simulator { child }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Polls `check` every 250 ms until it returns `Some`, failing with `what` after `timeout`.
fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn names(pods: &[Value]) -> Vec<String> {
    let mut n: Vec<String> = pods
        .iter()
        .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    n.sort();
    n
}

/// Asserts that the StatefulSet's pods are `web-0 .. web-(k-1)` for some k: ordinals are
/// created and removed in order, so no snapshot ever shows a gap.
fn assert_prefix(pods: &[String]) {
    let want: Vec<String> = (0..pods.len()).map(|i| format!("web-{i}")).collect();
    let mut got = pods.to_vec();
    got.sort_by_key(|n| {
        n.trim_start_matches("web-")
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    assert_eq!(got, want, "StatefulSet pods out of order");
}

const CRONJOB: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox, command: ["true"]}]
"#;

const JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: x, namespace: default}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["true"]}]
"#;

const INDEXED_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: indexed, namespace: default}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["true"]}]
"#;

const TTL_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: brief, namespace: default}
spec:
  ttlSecondsAfterFinished: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["true"]}]
"#;

const DAEMONSET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: x, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: busybox}]
"#;

const STATEFULSET: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: nginx:1.25}]
"#;

#[test]
fn workload_controllers_run_jobs_cronjobs_daemonsets_and_statefulsets() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let data = dir.path().join("server");
    let replica = Replica::start(1, &addr, &data, &[]);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(replica.wait_ready(Duration::from_secs(30)));
    let kubeconfig = data.join("admin.kubeconfig");
    eventually(Duration::from_secs(10), "the admin kubeconfig", || {
        kubeconfig.exists().then_some(())
    });
    let k = Kubectl {
        bin: kubectl_bin(),
        kubeconfig: kubeconfig.clone(),
        home: tempfile::tempdir().unwrap(),
    };
    eprintln!("kubectl: {}", k.bin.display());
    let sim_log = dir.path().join("simulate.log");
    let mut sim = Simulator::start(&kubeconfig, 3, &sim_log);
    eventually(Duration::from_secs(30), "3 simulated nodes", || {
        let nodes = k.json(&["get", "nodes"]);
        (nodes["items"].as_array().map(Vec::len) == Some(3)).then_some(())
    });

    // The CronJob is the slow one (up to a minute to its first schedule time): it goes first
    // and is checked last.
    let cron_applied = Instant::now();
    k.apply(CRONJOB);

    // A Job of three completions, two at a time.
    k.apply(JOB);
    k.ok(&["wait", "--for=condition=complete", "job/x", "--timeout=60s"]);
    let succeeded = k.ok(&["get", "job", "x", "-o", "jsonpath={.status.succeeded}"]);
    assert_eq!(succeeded.trim(), "3");
    let job = k.json(&["get", "job", "x"]);
    assert_eq!(job.pointer("/status/active"), None, "{job}");
    // Every counted pod lost its tracking finalizer.
    for pod in k.pods("batch.kubernetes.io/job-name=x") {
        let finalizers = pod.pointer("/metadata/finalizers").cloned();
        assert!(
            !finalizers
                .and_then(|f| f.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .any(|f| f == "batch.kubernetes.io/job-tracking"),
            "{pod}"
        );
    }

    // An Indexed Job completes every index.
    k.apply(INDEXED_JOB);
    k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/indexed",
        "--timeout=60s",
    ]);
    let indexes = k.ok(&[
        "get",
        "job",
        "indexed",
        "-o",
        "jsonpath={.status.completedIndexes}",
    ]);
    assert_eq!(indexes.trim(), "0-2");

    // A Job with a TTL of zero is deleted once it finished, and its pods with it.
    k.apply(TTL_JOB);
    k.ok(&["wait", "--for=delete", "job/brief", "--timeout=60s"]);
    eventually(Duration::from_secs(30), "the TTL Job's pods gone", || {
        k.pods("batch.kubernetes.io/job-name=brief")
            .is_empty()
            .then_some(())
    });

    // A DaemonSet runs one pod per node and follows a fourth node.
    k.apply(DAEMONSET);
    k.ok(&["rollout", "status", "ds/x", "--timeout=60s"]);
    let per_node = |want: usize| {
        let pods = k.pods("app=agent");
        let mut nodes: Vec<&str> = pods
            .iter()
            .filter_map(|p| p.pointer("/spec/nodeName").and_then(Value::as_str))
            .collect();
        nodes.sort();
        nodes.dedup();
        (pods.len() == want && nodes.len() == want).then_some(())
    };
    eventually(Duration::from_secs(30), "3 daemon pods on 3 nodes", || {
        per_node(3)
    });
    drop(sim);
    sim = Simulator::start(&kubeconfig, 4, &sim_log);
    eventually(Duration::from_secs(60), "4 daemon pods on 4 nodes", || {
        per_node(4)
    });
    k.ok(&["rollout", "status", "ds/x", "--timeout=60s"]);
    let ds = k.json(&["get", "ds", "x"]);
    assert_eq!(
        ds.pointer("/status/desiredNumberScheduled"),
        Some(&4.into())
    );

    // A StatefulSet comes up in order and scales down from the highest ordinal.
    k.apply(STATEFULSET);
    eventually(Duration::from_secs(60), "web-0 .. web-2", || {
        let pods = names(&k.pods("app=web"));
        assert_prefix(&pods);
        (pods.len() == 3).then_some(())
    });
    k.ok(&["rollout", "status", "sts/web", "--timeout=60s"]);
    k.ok(&["scale", "sts/web", "--replicas=1"]);
    eventually(Duration::from_secs(60), "only web-0 left", || {
        let pods = names(&k.pods("app=web"));
        assert_prefix(&pods);
        (pods == ["web-0"]).then_some(())
    });

    // The CronJob fired: a Job it controls exists.
    let remaining = Duration::from_secs(75).saturating_sub(cron_applied.elapsed());
    let fired = eventually(remaining, "a Job created by the CronJob", || {
        k.json(&["get", "jobs"])["items"]
            .as_array()?
            .iter()
            .find(|j| {
                j.pointer("/metadata/ownerReferences/0/kind")
                    .and_then(Value::as_str)
                    == Some("CronJob")
            })
            .cloned()
    });
    let name = fired["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("tick-"), "{name}");
    let active = k.ok(&[
        "get",
        "cronjob",
        "tick",
        "-o",
        "jsonpath={.status.lastScheduleTime}",
    ]);
    assert!(!active.trim().is_empty(), "lastScheduleTime unset");
    drop(sim);
}
