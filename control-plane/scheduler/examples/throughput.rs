//! Schedules 10,000 simple pods onto 1,000 nodes, assuming each, and prints pods per second.
//!
//! `cargo run --release -p scheduler --example throughput`

use std::sync::Arc;
use std::time::Instant;

use scheduler::{PodInfo, Scheduler, Snapshot};
use serde_json::json;

fn main() {
    let nodes = 1_000;
    let pods = 10_000;
    let mut snapshot = Snapshot::new();
    for i in 0..nodes {
        snapshot
            .upsert_node_object(&json!({
                "metadata": {"name": format!("node-{i}"), "labels": {
                    "kubernetes.io/hostname": format!("node-{i}"),
                    "topology.kubernetes.io/zone": format!("zone-{}", i % 3)
                }},
                "spec": {},
                "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}}
            }))
            .expect("node");
    }
    let specs: Vec<PodInfo> = (0..pods)
        .map(|i| {
            PodInfo::from_api(&json!({
                "metadata": {"name": format!("pod-{i}"), "namespace": "default", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "x",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
            }))
            .expect("pod")
        })
        .collect();

    let mut scheduler = Scheduler::default();
    let start = Instant::now();
    for pod in specs {
        let node = scheduler.schedule(&pod, &snapshot).expect("fits");
        snapshot.assume(Arc::new(pod), &node).expect("assume");
    }
    let elapsed = start.elapsed();
    let max = snapshot
        .nodes()
        .iter()
        .map(|n| n.pods.len())
        .max()
        .unwrap_or(0);
    let min = snapshot
        .nodes()
        .iter()
        .map(|n| n.pods.len())
        .min()
        .unwrap_or(0);
    println!(
        "{pods} pods on {nodes} nodes in {:.3}s: {:.0} pods/s (pods per node {min}..={max})",
        elapsed.as_secs_f64(),
        pods as f64 / elapsed.as_secs_f64()
    );
}
