//! ResourceQuota usage and the HorizontalPodAutoscaler, seen with stock kubectl: a quota
//! reports what its namespace uses, and an autoscaler without a metrics source holds its
//! target within min/max and says why it cannot do more.

mod support;

use std::time::Duration;

use support::kubectl::{Kubectl, SimulatedNodes};
use support::{Replica, free_port};

const WAIT: Duration = Duration::from_secs(60);

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: quota, namespace: team}
spec:
  hard: {pods: "10", requests.cpu: "2", configmaps: "5"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: nginx, resources: {requests: {cpu: 100m}}}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: team}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 3
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
"#;

#[test]
fn quota_usage_and_an_autoscaler_without_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let data = dir.path().join("server");
    let replica = Replica::start(1, &addr, &data, &[]);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(replica.wait_ready(Duration::from_secs(30)));
    let kubeconfig = data.join("admin.kubeconfig");
    let k = Kubectl::default_for(&kubeconfig);
    let _nodes = SimulatedNodes::start(&kubeconfig, &["--count", "2"]);
    k.ok_in(&["apply", "-f", "-"], Some(MANIFESTS));

    // The autoscaler raises the Deployment to its minimum, and says why it does no more.
    k.eventually(
        &[
            "get",
            "deploy",
            "web",
            "-n",
            "team",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
        WAIT,
        |r| r == "3",
    );
    let hpa = k.eventually(&["describe", "hpa", "web", "-n", "team"], WAIT, |o| {
        o.contains("FailedGetResourceMetric")
    });
    assert!(hpa.contains("ScalingActive"), "{hpa}");
    let events = k.ok(&[
        "get",
        "events",
        "-n",
        "team",
        "--field-selector",
        "reason=SuccessfulRescale",
    ]);
    assert!(
        events.contains("New size: 3; reason: Current number of replicas below Spec.MinReplicas"),
        "{events}"
    );

    // The quota counts the three pods, their CPU requests and the namespace's ConfigMaps
    // (kube-root-ca.crt).
    k.ok(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "team",
        "--timeout=60s",
    ]);
    k.eventually(
        &[
            "get",
            "quota",
            "quota",
            "-n",
            "team",
            "-o",
            "jsonpath={.status.used.pods} {.status.used.requests\\.cpu}",
        ],
        WAIT,
        |o| o == "3 300m",
    );
    let table = k.ok(&["get", "quota", "-n", "team"]);
    assert!(table.contains("pods: 3/10"), "{table}");
}
