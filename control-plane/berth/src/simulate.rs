//! `berth simulate-nodes`: a test tool that plays N kubelets (in the spirit of kwok).
//!
//! It registers Nodes with the capacity given, keeps their Leases in `kube-node-lease` fresh,
//! and acts for every pod bound to them as a kubelet would, minus the containers: a new pod is
//! reported Running and Ready at once (Job pods finish as Succeeded after `--job-seconds`), and
//! a pod being deleted is deleted for good (the kubelet's final delete). Everything goes
//! through the API with the kubeconfig's credentials. Nothing runs: these nodes exist so the
//! scheduler and controllers can be exercised and benchmarked at scale.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use kube::api::{DeleteParams, PostParams};
use runtime::informer::Informer;
use runtime::resource::{self, LEASES, NODES, PODS};
use runtime::{Action, Key, queue::Queue};
use serde_json::{Value, json};

#[derive(Args, Clone)]
pub(crate) struct SimulateArgs {
    /// The kubeconfig of the cluster to join.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// How many nodes to simulate.
    #[arg(long, default_value_t = 3)]
    count: u32,
    /// Node names are this prefix and a number.
    #[arg(long, default_value = "sim-node-")]
    prefix: String,
    /// CPU capacity per node.
    #[arg(long, default_value = "32")]
    cpu: String,
    /// Memory capacity per node.
    #[arg(long, default_value = "256Gi")]
    memory: String,
    /// Pod capacity per node.
    #[arg(long, default_value_t = 110)]
    pods: u32,
    /// Zones to spread the nodes over (label `topology.kubernetes.io/zone`).
    #[arg(long, value_delimiter = ',', default_value = "zone-a,zone-b,zone-c")]
    zones: Vec<String>,
    /// How long a Job's pod runs before it succeeds.
    #[arg(long, default_value_t = 1.0)]
    job_seconds: f64,
    /// How often each node renews its Lease.
    #[arg(long, default_value_t = 10)]
    lease_renew_seconds: u64,
}

/// What the simulated kubelet does with a pod bound to one of its nodes.
#[derive(Debug, PartialEq)]
enum PodAction {
    /// Nothing to do.
    None,
    /// Write this status.
    Status(Value),
    /// Write this status after the delay (a Job pod finishing).
    StatusAfter(Value, Duration),
    /// Remove the pod for good.
    Delete,
}

/// The pure part: the next step for `pod` on the node with `node_ip`, giving it `pod_ip`.
fn next_action(
    pod: &Value,
    node_ip: &str,
    pod_ip: &str,
    now: &str,
    job_run: Duration,
) -> PodAction {
    if resource::is_deleting(pod) {
        return PodAction::Delete;
    }
    let phase = resource::str_at(pod, "/status/phase");
    let job = resource::owner_references(pod)
        .any(|r| r.get("kind").and_then(Value::as_str) == Some("Job"));
    let containers: Vec<&Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let container_status = |c: &Value, state: Value, ready: bool| {
        json!({
            "name": c["name"],
            "image": c["image"],
            "imageID": format!("simulated://{}", resource::str_at(c, "/image")),
            "containerID": format!("simulated://{}-{}", resource::uid(pod), resource::str_at(c, "/name")),
            "ready": ready,
            "started": ready,
            "restartCount": 0,
            "state": state,
        })
    };
    let condition = |t: &str, ok: bool, reason: Option<&str>| {
        let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        c
    };
    let mut status = pod.get("status").cloned().unwrap_or(json!({}));
    match phase {
        "" | "Pending" => {
            status["phase"] = json!("Running");
            status["hostIP"] = json!(node_ip);
            status["hostIPs"] = json!([{"ip": node_ip}]);
            status["podIP"] = json!(pod_ip);
            status["podIPs"] = json!([{"ip": pod_ip}]);
            status["startTime"] = json!(now);
            status["conditions"] = json!([
                condition("PodReadyToStartContainers", true, None),
                condition("Initialized", true, None),
                condition("Ready", true, None),
                condition("ContainersReady", true, None),
                condition("PodScheduled", true, None),
            ]);
            status["containerStatuses"] = containers
                .iter()
                .map(|c| container_status(c, json!({"running": {"startedAt": now}}), true))
                .collect();
            PodAction::Status(status)
        }
        "Running" if job => {
            let started = resource::str_at(pod, "/status/startTime").to_string();
            status["phase"] = json!("Succeeded");
            status["conditions"] = json!([
                condition("PodReadyToStartContainers", false, None),
                condition("Initialized", true, Some("PodCompleted")),
                condition("Ready", false, Some("PodCompleted")),
                condition("ContainersReady", false, Some("PodCompleted")),
                condition("PodScheduled", true, None),
            ]);
            status["containerStatuses"] = containers
                .iter()
                .map(|c| {
                    container_status(
                        c,
                        json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now}}),
                        false,
                    )
                })
                .collect();
            PodAction::StatusAfter(status, job_run)
        }
        _ => PodAction::None,
    }
}

/// How long `pod` has been running at `now`, from its RFC 3339 `status.startTime` (zero when
/// unset or unreadable).
fn running_for(pod: &Value, now: jiff::Timestamp) -> Duration {
    resource::str_at(pod, "/status/startTime")
        .parse::<jiff::Timestamp>()
        .map(|started| now.duration_since(started).unsigned_abs())
        .unwrap_or_default()
}

/// A simulated node's address: 10.64.0.0/10 split into one /24 per node, host .1.
fn node_ip(index: u32) -> String {
    format!("10.{}.{}.1", 64 + index / 256, index % 256)
}

struct Sim {
    client: kube::Client,
    args: SimulateArgs,
    /// Node name → (index, pods given an address so far).
    nodes: HashMap<String, (u32, AtomicU32)>,
    pods: Arc<runtime::cache::Cache>,
    queue: Arc<Queue>,
    /// Node name → its `spec.podCIDR`, once node IPAM has given it one.
    pod_cidrs: parking_lot::RwLock<HashMap<String, String>>,
}

/// The `n`th pod address in a node's pod CIDR (a /24, as Berth's node IPAM gives): hosts from
/// .2 on, wrapping after 250. `None` for anything else.
fn pod_ip_in(cidr: &str, n: u32) -> Option<String> {
    let (net, mask) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = net.parse().ok()?;
    if mask != "24" {
        return None;
    }
    let [a, b, c, _] = ip.octets();
    Some(format!("{a}.{b}.{c}.{}", 2 + n % 250))
}

pub(crate) async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("cannot read kubeconfig {}", args.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("the kubeconfig cannot be used")?;
    let client = kube::Client::try_from(config)?;
    let names: Vec<String> = (0..args.count)
        .map(|i| format!("{}{i}", args.prefix))
        .collect();
    let registered = futures::stream::iter(names.iter().enumerate())
        .map(|(i, name)| register(&client, &args, i as u32, name))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for r in registered {
        r?;
    }
    tracing::info!(count = args.count, prefix = %args.prefix, "simulated nodes registered");
    println!(
        "{} simulated nodes registered ({}0 .. {}{})",
        args.count,
        args.prefix,
        args.prefix,
        args.count.saturating_sub(1)
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let informer = Informer::new(PODS, vec![]).with_field_selector("spec.nodeName!=");
    let sim = Arc::new(Sim {
        client: client.clone(),
        nodes: names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), (i as u32, AtomicU32::new(0))))
            .collect(),
        pods: informer.cache(),
        queue: Queue::new(),
        pod_cidrs: Default::default(),
        args: args.clone(),
    });
    let cluster: Arc<str> = Arc::from("simulated");
    {
        let sim2 = Arc::clone(&sim);
        informer.on_change(move |change| {
            let pod = change.object();
            if sim2
                .nodes
                .contains_key(resource::str_at(pod, "/spec/nodeName"))
            {
                sim2.queue.add(Key::new(
                    &cluster,
                    resource::namespace(pod),
                    resource::name(pod),
                ));
            }
        });
    }
    informer.spawn(client.clone(), stop_rx.clone());
    tokio::spawn(renew_leases(Arc::clone(&sim), stop_rx.clone()));
    let driver = tokio::spawn(runtime::controller::run(
        "simulated-kubelet",
        Arc::clone(&sim.queue),
        16,
        {
            let sim = Arc::clone(&sim);
            move |key| sync_pod(Arc::clone(&sim), key)
        },
        stop_rx,
    ));
    wait_for_signal().await;
    stop_tx.send_replace(true);
    let _ = driver.await;
    Ok(())
}

async fn register(
    client: &kube::Client,
    args: &SimulateArgs,
    index: u32,
    name: &str,
) -> anyhow::Result<()> {
    let zone = &args.zones[index as usize % args.zones.len().max(1)];
    let resources = json!({
        "cpu": args.cpu,
        "memory": args.memory,
        "pods": args.pods.to_string(),
        "ephemeral-storage": "100Gi",
    });
    let now = resource::time_now();
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "simulated",
                "topology.kubernetes.io/zone": zone,
                "berth.dev/simulated": "true",
            },
        },
        "spec": {"providerID": format!("simulated://{name}")},
    });
    let api = NODES.api(client, None);
    let stored = match api.get_opt(name).await? {
        Some(n) => n,
        None => api
            .create(&PostParams::default(), &resource::from_value(node)?)
            .await
            .with_context(|| format!("cannot register node {name}"))?,
    };
    let mut stored = resource::to_value(stored);
    let ip = node_ip(index);
    let condition = |t: &str, ok: bool, reason: &str, message: &str| json!({"type": t, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message, "lastHeartbeatTime": now, "lastTransitionTime": now});
    stored["status"] = json!({
        "capacity": resources,
        "allocatable": resources,
        "phase": "Running",
        "conditions": [
            condition("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", true, "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": format!("simulated-{index}"),
            "systemUUID": format!("simulated-{index}"),
            "bootID": format!("simulated-{index}"),
            "kernelVersion": "simulated",
            "osImage": "Berth simulated node",
            "containerRuntimeVersion": "simulated://1.0",
            "kubeletVersion": "v1.33.0-berth-simulated",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    });
    // Controllers (node IPAM) may write the node between its creation and this status write;
    // a conflict retries on the latest copy, as a kubelet would.
    let status = stored["status"].take();
    for _ in 0..5 {
        let mut latest = match api.get_opt(name).await? {
            Some(n) => resource::to_value(n),
            None => stored.clone(),
        };
        latest["status"] = status.clone();
        match api
            .replace_status(name, &PostParams::default(), &resource::from_value(latest)?)
            .await
        {
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            r => {
                r.with_context(|| format!("cannot report the status of node {name}"))?;
                return Ok(());
            }
        }
    }
    anyhow::bail!("cannot report the status of node {name}: it keeps changing")
}

async fn renew_leases(sim: Arc<Sim>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let api = LEASES.api(&sim.client, Some("kube-node-lease"));
    let names: Vec<String> = sim.nodes.keys().cloned().collect();
    loop {
        let now = resource::micro_time_now();
        futures::stream::iter(names.iter().cloned())
            .map(|name| renew_lease(api.clone(), name, now.clone()))
            .buffer_unordered(32)
            .collect::<Vec<()>>()
            .await;
        // As the kubelet's status sync: a node the controller marked otherwise is Ready again.
        futures::stream::iter(names.iter().cloned())
            .map(|name| report_ready(Arc::clone(&sim), name))
            .buffer_unordered(32)
            .collect::<Vec<()>>()
            .await;
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(sim.args.lease_renew_seconds)) => {}
        }
    }
}

/// Re-posts node `name`'s status when its Ready condition is not True.
async fn report_ready(sim: Arc<Sim>, name: String) {
    let api = NODES.api(&sim.client, None);
    let name = name.as_str();
    let ready = match api.get_opt(name).await {
        Ok(Some(node)) => {
            let node = resource::to_value(node);
            node.pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(node = %name, error = %e, "cannot read the node");
            return;
        }
    };
    if !ready {
        let index = sim.nodes.get(name).map(|(i, _)| *i).unwrap_or(0);
        match register(&sim.client, &sim.args, index, name).await {
            Ok(()) => tracing::info!(node = %name, "node reported Ready again"),
            Err(e) => tracing::warn!(node = %name, error = %e, "cannot report the node Ready"),
        }
    }
}

/// Renews (or creates) node `name`'s Lease, as the kubelet's heartbeat.
async fn renew_lease(api: kube::Api<kube::core::DynamicObject>, name: String, now: String) {
    let result = async {
        match api.get_opt(&name).await? {
            Some(current) => {
                let mut current = resource::to_value(current);
                current["spec"]["renewTime"] = json!(now);
                current["spec"]["holderIdentity"] = json!(name);
                let current = resource::from_value(current).map_err(kube::Error::SerdeError)?;
                api.replace(&name, &PostParams::default(), &current).await?;
            }
            None => {
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now},
                });
                let lease = resource::from_value(lease).map_err(kube::Error::SerdeError)?;
                api.create(&PostParams::default(), &lease).await?;
            }
        }
        Ok::<(), kube::Error>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(node = %name, error = %e, "cannot renew the node lease");
    }
}

/// Node `name`'s pod CIDR, read once from the API and remembered.
async fn node_pod_cidr(sim: &Sim, name: &str) -> Option<String> {
    if let Some(c) = sim.pod_cidrs.read().get(name) {
        return Some(c.clone());
    }
    let node = NODES.api(&sim.client, None).get_opt(name).await.ok()??;
    let cidr = node.data.pointer("/spec/podCIDR")?.as_str()?.to_string();
    sim.pod_cidrs.write().insert(name.to_string(), cidr.clone());
    Some(cidr)
}

async fn sync_pod(sim: Arc<Sim>, key: Key) -> Result<Action, kube::Error> {
    let Some(pod) = sim.pods.get(&key.namespace, &key.name) else {
        return Ok(Action::await_change());
    };
    let node = resource::str_at(&pod, "/spec/nodeName");
    let Some((index, counter)) = sim.nodes.get(node) else {
        return Ok(Action::await_change());
    };
    let pod_ip = match resource::str_at(&pod, "/status/podIP") {
        "" => {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let cidr = node_pod_cidr(&sim, node).await;
            cidr.and_then(|c| pod_ip_in(&c, n)).unwrap_or_else(|| {
                format!("10.{}.{}.{}", 64 + index / 256, index % 256, 2 + n % 250)
            })
        }
        ip => ip.to_string(),
    };
    let api = PODS.api(&sim.client, Some(&key.namespace));
    let job_run = Duration::from_secs_f64(sim.args.job_seconds);
    let write = |status: Value| {
        let mut updated = (*pod).clone();
        updated["status"] = status;
        updated
    };
    match next_action(
        &pod,
        &node_ip(*index),
        &pod_ip,
        &resource::time_now(),
        job_run,
    ) {
        PodAction::None => Ok(Action::await_change()),
        PodAction::Delete => {
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(kube::api::Preconditions {
                    uid: Some(resource::uid(&pod).to_string()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(&key.name, &dp).await {
                Ok(_) => Ok(Action::await_change()),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {
                    Ok(Action::await_change())
                }
                Err(e) => Err(e),
            }
        }
        PodAction::Status(status) => {
            let updated = resource::from_value(write(status)).map_err(kube::Error::SerdeError)?;
            match api
                .replace_status(&key.name, &PostParams::default(), &updated)
                .await
            {
                Ok(_) => Ok(Action::await_change()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::await_change()),
                Err(e) => Err(e),
            }
        }
        PodAction::StatusAfter(status, delay) => {
            let elapsed = running_for(&pod, jiff::Timestamp::now());
            if elapsed < delay {
                return Ok(Action::requeue(delay - elapsed));
            }
            let updated = resource::from_value(write(status)).map_err(kube::Error::SerdeError)?;
            match api
                .replace_status(&key.name, &PostParams::default(), &updated)
                .await
            {
                Ok(_) => Ok(Action::await_change()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::await_change()),
                Err(e) => Err(e),
            }
        }
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn pod(owner: Option<&str>, phase: &str) -> Value {
        let mut p = json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": phase, "qosClass": "BestEffort"},
        });
        if let Some(kind) = owner {
            p["metadata"]["ownerReferences"] =
                json!([{"kind": kind, "name": "o", "uid": "o1", "controller": true}]);
        }
        p
    }

    #[test]
    fn a_new_pod_runs_and_is_ready_keeping_what_the_server_set() {
        let PodAction::Status(s) = next_action(
            &pod(None, "Pending"),
            "10.64.0.1",
            "10.64.0.2",
            NOW,
            Duration::ZERO,
        ) else {
            panic!("a pending pod must start");
        };
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.64.0.2");
        assert_eq!(s["qosClass"], "BestEffort");
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        let ready = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
    }

    #[test]
    fn job_pods_succeed_after_their_run_time_and_others_keep_running() {
        let mut running = pod(Some("Job"), "Running");
        running["status"]["startTime"] = json!(NOW);
        match next_action(&running, "ip", "ip2", NOW, Duration::from_secs(2)) {
            PodAction::StatusAfter(s, d) => {
                assert_eq!(s["phase"], "Succeeded");
                assert_eq!(
                    s["containerStatuses"][0]["state"]["terminated"]["exitCode"],
                    0
                );
                assert_eq!(d, Duration::from_secs(2));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            next_action(
                &pod(Some("ReplicaSet"), "Running"),
                "ip",
                "ip2",
                NOW,
                Duration::ZERO
            ),
            PodAction::None
        );
        assert_eq!(
            next_action(
                &pod(Some("Job"), "Succeeded"),
                "ip",
                "ip2",
                NOW,
                Duration::ZERO
            ),
            PodAction::None
        );
    }

    #[test]
    fn a_pods_run_time_counts_from_its_start_time() {
        let pod = json!({"status": {"startTime": "2025-01-01T00:00:00Z"}});
        let now: jiff::Timestamp = "2025-01-01T00:00:03Z".parse().unwrap();
        assert_eq!(running_for(&pod, now), Duration::from_secs(3));
        assert_eq!(running_for(&json!({}), now), Duration::ZERO);
    }

    #[test]
    fn pod_addresses_come_from_the_nodes_pod_cidr() {
        assert_eq!(pod_ip_in("10.244.3.0/24", 0).as_deref(), Some("10.244.3.2"));
        assert_eq!(
            pod_ip_in("10.244.3.0/24", 250).as_deref(),
            Some("10.244.3.2")
        );
        assert_eq!(pod_ip_in("10.244.0.0/16", 0), None);
        assert_eq!(pod_ip_in("fd00::/64", 0), None);
    }

    #[test]
    fn a_pod_being_deleted_is_removed_for_good() {
        let mut p = pod(None, "Running");
        p["metadata"]["deletionTimestamp"] = json!(NOW);
        assert_eq!(
            next_action(&p, "ip", "ip2", NOW, Duration::ZERO),
            PodAction::Delete
        );
    }
}
