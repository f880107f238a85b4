//! With three replicas, the scheduler and controllers run once: the replicas elect one holder
//! of the `kube-system/berth-controller-manager` Lease, a ReplicaSet gets exactly its replicas
//! (not one set per replica), and when the leader dies another replica takes over and the
//! loops carry on.

mod support;

use std::time::Duration;

use support::kubectl::Kubectl;
use support::start_cluster;

const LEASE: &[&str] = &[
    "get",
    "lease",
    "-n",
    "kube-system",
    "berth-controller-manager",
    "-o",
    "jsonpath={.spec.holderIdentity}",
];

const REPLICA_SET: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: once, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: once}}
  template:
    metadata: {labels: {app: once}}
    spec:
      containers: [{name: c, image: nginx}]
"#;

fn pod_names(k: &Kubectl) -> Vec<String> {
    k.ok(&["get", "pods", "-l", "app=once", "-o", "name"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn one_replica_runs_the_loops_and_another_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = start_cluster(3, dir.path(), &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for r in &replicas {
        rt.block_on(r.wait_ready(Duration::from_secs(30)));
    }
    // Any replica's kubeconfig reaches the same data; use the first one's.
    let kubeconfigs: Vec<_> = replicas
        .iter()
        .map(|r| r.data_dir.join("admin.kubeconfig"))
        .collect();
    let kubectl = |i: usize| Kubectl::default_for(&kubeconfigs[i]);
    let k = kubectl(0);
    let holder = k.eventually(LEASE, Duration::from_secs(30), |h| h.starts_with("berth-"));
    let leader_id: usize = holder["berth-".len()..]
        .split('_')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    k.ok_in(&["apply", "-f", "-"], Some(REPLICA_SET));
    k.eventually(
        &["get", "rs", "once", "-o", "jsonpath={.status.replicas}"],
        Duration::from_secs(30),
        |r| r == "3",
    );
    // Three replicas of the control plane, still three pods: nobody else acts.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(pod_names(&k).len(), 3, "{:?}", pod_names(&k));

    // The leader dies; another replica takes the Lease once it expires and the loops resume.
    replicas[leader_id - 1].kill();
    let survivor = kubectl(if leader_id == 1 { 1 } else { 0 });
    let new_holder = survivor.eventually(LEASE, Duration::from_secs(60), |h| {
        h.starts_with("berth-") && !h.starts_with(&format!("berth-{leader_id}_"))
    });
    assert_ne!(new_holder, holder);
    let victim = pod_names(&survivor)[0].clone();
    survivor.ok(&["delete", &victim, "--wait=false"]);
    survivor.eventually(
        &["get", "pods", "-l", "app=once", "-o", "name"],
        Duration::from_secs(30),
        |o| {
            let names: Vec<&str> = o.lines().collect();
            names.len() == 3 && !names.contains(&victim.as_str())
        },
    );
}
