//! `berth-bench scheduler`: the hosted scheduler and controllers rolling out one large
//! Deployment onto simulated nodes, with the scheduler core alone measured in the same run.
//!
//! A real `berth server` runs with `berth simulate-nodes` (a separate process speaking HTTPS,
//! as real kubelets would) registering the nodes. The benchmark creates one Deployment and
//! watches its pods: when each pod is first seen, when it is seen bound to a node, and when it
//! is seen Ready. The peer is the pure scheduler core deciding the same pods on the same nodes
//! in this process, so the loop's cost (informers, API writes, bindings) is a ratio.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::api_bench::{https_client, start_server};
use crate::stats::{Samples, ms, rss_bytes};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Simulated nodes.
    #[arg(long, default_value_t = 1_000)]
    nodes: u32,
    /// Replicas of the Deployment.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Where the server keeps its data (a real disk). Default: a temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `berth` binary; default: next to this one.
    #[arg(long)]
    berth: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

/// A pod's milestones as the watch saw them.
#[derive(Default, Clone, Copy)]
struct Seen {
    created: Option<Instant>,
    bound: Option<Instant>,
    ready: Option<Instant>,
}

fn pod_template() -> Value {
    json!({
        "metadata": {"labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.local/bench:1",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
    })
}

/// The peer: the scheduler core alone, deciding and assuming the same pods on the same nodes
/// (with the spreading constraints the loop gives Deployment pods by default).
fn core_alone(nodes: u32, pods: usize) -> anyhow::Result<Samples> {
    use scheduler::{PodInfo, Scheduler, Snapshot};
    let mut snapshot = Snapshot::new();
    for i in 0..nodes {
        snapshot.upsert_node_object(&json!({
            "metadata": {"name": format!("bench-node-{i}"), "labels": {
                "kubernetes.io/hostname": format!("bench-node-{i}"),
                "topology.kubernetes.io/zone": format!("zone-{}", ["a", "b", "c"][i as usize % 3]),
            }},
            "spec": {},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}},
        }))?;
    }
    let spread = json!([
        {"maxSkew": 3, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "bench"}}},
        {"maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "bench"}}},
    ]);
    let infos: Vec<PodInfo> = (0..pods)
        .map(|i| {
            let mut p = pod_template();
            p["metadata"]["name"] = json!(format!("bench-{i}"));
            p["metadata"]["namespace"] = json!("default");
            p["spec"]["topologySpreadConstraints"] = spread.clone();
            PodInfo::from_api(&p)
        })
        .collect::<Result<_, _>>()?;
    let mut sched = Scheduler::new(0x5eed);
    let mut latencies = Vec::with_capacity(pods);
    let start = Instant::now();
    for pod in infos {
        let t = Instant::now();
        let node = sched.schedule(&pod, &snapshot)?;
        snapshot.assume(Arc::new(pod), &node)?;
        latencies.push(t.elapsed());
    }
    Ok(Samples::new(latencies, start.elapsed()))
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let say = |s: &str| eprintln!("[berth-bench scheduler] {s}");
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?.keep()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let berth = match &args.berth {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("berth"),
    };

    say(&format!(
        "peer: the scheduler core alone, {} pods on {} nodes",
        args.pods, args.nodes
    ));
    let core = core_alone(args.nodes, args.pods)?;

    let server = start_server(&berth, &dir, &[]).await?;
    let pid = server.child.id();
    let base = server.base.clone();
    let client = https_client(&server.tls, 16)?;
    let kubeconfig = dir.join("server/admin.kubeconfig");
    say(&format!("registering {} simulated nodes", args.nodes));
    let sim_log = std::fs::File::create(dir.join("simulate-nodes.log"))?;
    let mut sim = Command::new(&berth)
        .args(["simulate-nodes", "--kubeconfig"])
        .arg(&kubeconfig)
        .args([
            "--count",
            &args.nodes.to_string(),
            "--prefix",
            "bench-node-",
        ])
        .stdout(Stdio::null())
        .stderr(sim_log)
        .spawn()
        .context("cannot start berth simulate-nodes")?;
    let guard = scopeguard(move || {
        let _ = sim.kill();
        let _ = sim.wait();
    });
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    loop {
        let nodes: Value = client
            .get(format!("{base}/api/v1/nodes"))
            .send()
            .await?
            .json()
            .await?;
        let ready = nodes["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|n| {
                        n.pointer("/status/conditions")
                            .and_then(Value::as_array)
                            .is_some_and(|cs| {
                                cs.iter()
                                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
                            })
                    })
                    .count()
            })
            .unwrap_or(0);
        if ready >= args.nodes as usize {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {ready} of {} nodes became Ready",
            args.nodes
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Watch the pods from now on.
    let list: Value = client
        .get(format!("{base}/api/v1/namespaces/default/pods?limit=1"))
        .send()
        .await?
        .json()
        .await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let watch = client
        .get(format!(
            "{base}/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dbench&resourceVersion={rv}&allowWatchBookmarks=false"
        ))
        .send()
        .await?;
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(0usize);
    let target = args.pods;
    let watcher = tokio::spawn(async move {
        let mut seen: HashMap<String, Seen> = HashMap::new();
        let mut ready = 0usize;
        let mut buf: Vec<u8> = Vec::new();
        let mut body = watch.bytes_stream();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                let pod = &event["object"];
                let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
                let now = Instant::now();
                let s = seen.entry(name).or_default();
                s.created.get_or_insert(now);
                if pod["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty())
                {
                    s.bound.get_or_insert(now);
                }
                let is_ready = pod["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                if is_ready && s.ready.is_none() {
                    s.ready = Some(now);
                    ready += 1;
                    done_tx.send_replace(ready);
                    if ready >= target {
                        return seen;
                    }
                }
            }
        }
        seen
    });

    say(&format!("creating a Deployment of {} replicas", args.pods));
    let started = Instant::now();
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {
            "replicas": args.pods,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": pod_template(),
        },
    });
    let r = client
        .post(format!(
            "{base}/apis/apps/v1/namespaces/default/deployments"
        ))
        .json(&deployment)
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "creating the Deployment failed: {}",
        r.text().await?
    );
    let mut last_report = Instant::now();
    loop {
        let ready = *done_rx.borrow();
        if ready >= args.pods {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            say(&format!(
                "{ready}/{} pods Ready after {:.1}s",
                args.pods,
                started.elapsed().as_secs_f64()
            ));
            last_report = Instant::now();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {ready} of {} pods became Ready in time; see {}",
            args.pods,
            dir.join("server.log").display()
        );
        let _ = tokio::time::timeout(Duration::from_millis(500), done_rx.changed()).await;
    }
    let all_ready = started.elapsed();
    let seen = watcher.await?;
    // Until the Deployment itself says it is complete (status written by its controller).
    loop {
        let d: Value = client
            .get(format!(
                "{base}/apis/apps/v1/namespaces/default/deployments/bench"
            ))
            .send()
            .await?
            .json()
            .await?;
        if d["status"]["availableReplicas"].as_u64() == Some(args.pods as u64)
            && d["status"]["updatedReplicas"].as_u64() == Some(args.pods as u64)
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the Deployment never reported complete"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rollout = started.elapsed();
    let rss = rss_bytes(pid).unwrap_or(0);
    drop(guard);

    let bound: Vec<(Instant, Instant)> = seen
        .values()
        .filter_map(|s| Some((s.created?, s.bound?)))
        .collect();
    let first_created = bound.iter().map(|(c, _)| *c).min().context("no pod seen")?;
    let last_bound = bound
        .iter()
        .map(|(_, b)| *b)
        .max()
        .context("no pod bound")?;
    let latencies: Vec<Duration> = bound.iter().map(|(c, b)| b.duration_since(*c)).collect();
    let loop_samples = Samples::new(latencies, last_bound.duration_since(first_created));

    println!(
        "## berth-bench scheduler: {} pods (one Deployment) on {} simulated nodes\n",
        args.pods, args.nodes
    );
    println!("| measure | Berth (hosted loop, via the API) | scheduler core alone (peer) |");
    println!("|---|---:|---:|");
    println!(
        "| scheduling throughput | {:.0} pods/s | {:.0} pods/s |",
        loop_samples.throughput(),
        core.throughput()
    );
    println!(
        "| per-pod schedule latency p50 | {} ms | {} ms |",
        ms(loop_samples.quantile(0.5)),
        ms(core.quantile(0.5))
    );
    println!(
        "| per-pod schedule latency p99 | {} ms | {} ms |",
        ms(loop_samples.quantile(0.99)),
        ms(core.quantile(0.99))
    );
    println!(
        "\n- loop / core throughput: {:.3}",
        loop_samples.throughput() / core.throughput()
    );
    println!(
        "- Deployment created → all {} pods Ready (as watched): {:.1} s",
        args.pods,
        all_ready.as_secs_f64()
    );
    println!(
        "- Deployment created → Deployment reports complete: {:.1} s",
        rollout.as_secs_f64()
    );
    println!("- server RSS afterwards: {} MiB", rss / (1024 * 1024));
    println!("- targets: ≥ 1,000 pods/s scheduled; rollout of 10,000 pods under 60 s");
    Ok(())
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
