//! The table printers against upstream's output: for each kind, realistic objects and the exact
//! cells kube-apiserver 1.33 serves for them; the columns of each kind; the duration formats.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use objects::GroupKind;
use objects::printers::{
    cells, columns, default_cells, default_columns, human_duration, row_conditions,
    short_human_duration,
};
use serde_json::{Value, json};

/// 2024-05-01T12:00:00Z, the time every case is printed at.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

const S10: &str = "2024-05-01T11:59:50Z";
const S90: &str = "2024-05-01T11:58:30Z";
const M5: &str = "2024-05-01T11:55:00Z";
const H3: &str = "2024-05-01T09:00:00Z";
const D2: &str = "2024-04-29T12:00:00Z";

fn meta(name: &str, created: &str) -> Value {
    json!({ "name": name, "namespace": "default", "creationTimestamp": created })
}

/// Each case: the kind, a title, the object, the cells expected.
fn cases() -> Vec<(GroupKind<'static>, &'static str, Value, Value)> {
    let pod = GroupKind::core("Pod");
    let apps = |k| GroupKind::new("apps", k);
    let batch = |k| GroupKind::new("batch", k);
    let net = |k| GroupKind::new("networking.k8s.io", k);
    let rbac = |k| GroupKind::new("rbac.authorization.k8s.io", k);
    vec![
        // Pods.
        (
            pod,
            "running, restarted 5m ago",
            json!({
                "metadata": meta("web-1", D2),
                "spec": { "nodeName": "node-1", "containers": [{ "name": "web" }, { "name": "log" }] },
                "status": {
                    "phase": "Running",
                    "podIP": "10.0.0.5",
                    "podIPs": [{ "ip": "10.0.0.5" }, { "ip": "fd00::5" }],
                    "conditions": [{ "type": "Ready", "status": "True" }],
                    "containerStatuses": [
                        { "name": "web", "ready": true, "restartCount": 3, "state": { "running": { "startedAt": M5 } },
                          "lastState": { "terminated": { "exitCode": 1, "reason": "Error", "finishedAt": M5 } } },
                        { "name": "log", "ready": true, "restartCount": 0, "state": { "running": {} } },
                    ],
                },
            }),
            json!([
                "web-1",
                "2/2",
                "Running",
                "3 (5m ago)",
                "2d",
                "10.0.0.5",
                "node-1",
                "<none>",
                "<none>"
            ]),
        ),
        (
            pod,
            "completed",
            json!({
                "metadata": meta("job-x", H3),
                "spec": { "nodeName": "node-1", "containers": [{ "name": "main" }] },
                "status": {
                    "phase": "Succeeded",
                    "containerStatuses": [{ "name": "main", "ready": false, "restartCount": 0,
                        "state": { "terminated": { "exitCode": 0, "reason": "Completed" } } }],
                },
            }),
            json!([
                "job-x",
                "0/1",
                "Completed",
                "0",
                "3h",
                "<none>",
                "node-1",
                "<none>",
                "<none>"
            ]),
        ),
        (
            pod,
            "container creating",
            json!({
                "metadata": meta("web-2", S10),
                "spec": { "containers": [{ "name": "web" }] },
                "status": { "phase": "Pending", "containerStatuses": [
                    { "name": "web", "state": { "waiting": { "reason": "ContainerCreating" } } }] },
            }),
            json!([
                "web-2",
                "0/1",
                "ContainerCreating",
                "0",
                "10s",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        ),
        (
            pod,
            "crash loop",
            json!({
                "metadata": meta("web-3", D2),
                "spec": { "nodeName": "node-2", "containers": [{ "name": "web" }] },
                "status": { "phase": "Running", "podIPs": [{ "ip": "10.0.0.7" }], "containerStatuses": [{
                    "name": "web", "ready": false, "restartCount": 5,
                    "state": { "waiting": { "reason": "CrashLoopBackOff" } },
                    "lastState": { "terminated": { "exitCode": 2, "finishedAt": S90 } } }] },
            }),
            json!([
                "web-3",
                "0/1",
                "CrashLoopBackOff",
                "5 (90s ago)",
                "2d",
                "10.0.0.7",
                "node-2",
                "<none>",
                "<none>"
            ]),
        ),
        (
            pod,
            "terminating",
            json!({
                "metadata": { "name": "web-4", "creationTimestamp": D2, "deletionTimestamp": S10 },
                "spec": { "containers": [{ "name": "web" }] },
                "status": { "phase": "Running", "containerStatuses": [
                    { "name": "web", "ready": true, "state": { "running": {} } }] },
            }),
            json!([
                "web-4",
                "1/1",
                "Terminating",
                "0",
                "2d",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        ),
        (
            pod,
            "deleted on a lost node",
            json!({
                "metadata": { "name": "web-5", "creationTimestamp": D2, "deletionTimestamp": S10 },
                "spec": { "containers": [{ "name": "web" }] },
                "status": { "phase": "Running", "reason": "NodeLost" },
            }),
            json!([
                "web-5", "0/1", "Unknown", "0", "2d", "<none>", "<none>", "<none>", "<none>"
            ]),
        ),
        (
            pod,
            "first init container running",
            json!({
                "metadata": meta("app", S90),
                "spec": { "initContainers": [{ "name": "migrate" }], "containers": [{ "name": "app" }] },
                "status": {
                    "phase": "Pending",
                    "conditions": [{ "type": "Initialized", "status": "False" }],
                    "initContainerStatuses": [{ "name": "migrate", "restartCount": 1, "state": { "running": {} } }],
                    "containerStatuses": [{ "name": "app", "restartCount": 0,
                        "state": { "waiting": { "reason": "PodInitializing" } } }],
                },
            }),
            json!([
                "app", "0/1", "Init:0/1", "1", "90s", "<none>", "<none>", "<none>", "<none>"
            ]),
        ),
        (
            pod,
            "second init container crash looping",
            json!({
                "metadata": meta("app", S90),
                "spec": { "initContainers": [{ "name": "a" }, { "name": "b" }], "containers": [{ "name": "app" }] },
                "status": { "phase": "Pending", "initContainerStatuses": [
                    { "name": "a", "state": { "terminated": { "exitCode": 0, "reason": "Completed" } } },
                    { "name": "b", "restartCount": 2, "state": { "waiting": { "reason": "CrashLoopBackOff" } },
                      "lastState": { "terminated": { "exitCode": 1, "finishedAt": S10 } } },
                ] },
            }),
            json!([
                "app",
                "0/1",
                "Init:CrashLoopBackOff",
                "2 (10s ago)",
                "90s",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        ),
        (
            pod,
            "init container failed",
            json!({
                "metadata": meta("app", S90),
                "spec": { "initContainers": [{ "name": "a" }], "containers": [{ "name": "app" }] },
                "status": { "phase": "Pending", "initContainerStatuses": [
                    { "name": "a", "state": { "terminated": { "exitCode": 1, "reason": "Error" } } }] },
            }),
            json!([
                "app",
                "0/1",
                "Init:Error",
                "0",
                "90s",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        ),
        (
            pod,
            "init container killed by a signal",
            json!({
                "metadata": meta("app", S90),
                "spec": { "initContainers": [{ "name": "a" }], "containers": [{ "name": "app" }] },
                "status": { "phase": "Pending", "initContainerStatuses": [
                    { "name": "a", "state": { "terminated": { "exitCode": 137, "signal": 9 } } }] },
            }),
            json!([
                "app",
                "0/1",
                "Init:Signal:9",
                "0",
                "90s",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        ),
        (
            pod,
            "sidecar started and ready",
            json!({
                "metadata": meta("mesh", D2),
                "spec": {
                    "initContainers": [{ "name": "proxy", "restartPolicy": "Always" }],
                    "containers": [{ "name": "app" }],
                },
                "status": {
                    "phase": "Running",
                    "conditions": [{ "type": "Initialized", "status": "True" }, { "type": "Ready", "status": "True" }],
                    "initContainerStatuses": [{ "name": "proxy", "started": true, "ready": true, "restartCount": 1,
                        "state": { "running": {} } }],
                    "containerStatuses": [{ "name": "app", "ready": true, "state": { "running": {} } }],
                },
            }),
            json!([
                "mesh", "2/2", "Running", "1", "2d", "<none>", "<none>", "<none>", "<none>"
            ]),
        ),
        (
            pod,
            "one container completed, another still running, pod not ready",
            json!({
                "metadata": meta("pair", H3),
                "spec": { "containers": [{ "name": "a" }, { "name": "b" }] },
                "status": { "phase": "Running", "containerStatuses": [
                    { "name": "a", "state": { "terminated": { "exitCode": 0, "reason": "Completed" } } },
                    { "name": "b", "ready": true, "state": { "running": {} } },
                ] },
            }),
            json!([
                "pair", "1/2", "NotReady", "0", "3h", "<none>", "<none>", "<none>", "<none>"
            ]),
        ),
        (
            pod,
            "terminated without a reason",
            json!({
                "metadata": meta("oom", H3),
                "spec": { "containers": [{ "name": "a" }] },
                "status": { "phase": "Running", "containerStatuses": [
                    { "name": "a", "state": { "terminated": { "exitCode": 137 } } }] },
            }),
            json!([
                "oom",
                "0/1",
                "ExitCode:137",
                "0",
                "3h",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        ),
        (
            pod,
            "scheduling gated",
            json!({
                "metadata": meta("gated", M5),
                "spec": { "containers": [{ "name": "a" }], "schedulingGates": [{ "name": "x" }] },
                "status": { "phase": "Pending", "conditions": [
                    { "type": "PodScheduled", "status": "False", "reason": "SchedulingGated" }] },
            }),
            json!([
                "gated",
                "0/1",
                "SchedulingGated",
                "0",
                "5m",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        ),
        (
            pod,
            "readiness gates and a nominated node",
            json!({
                "metadata": meta("gates", M5),
                "spec": { "containers": [{ "name": "a" }],
                          "readinessGates": [{ "conditionType": "x/a" }, { "conditionType": "x/b" }] },
                "status": { "phase": "Pending", "nominatedNodeName": "node-3", "conditions": [
                    { "type": "x/a", "status": "True" }, { "type": "x/b", "status": "False" }] },
            }),
            json!([
                "gates", "0/1", "Pending", "0", "5m", "<none>", "<none>", "node-3", "1/2"
            ]),
        ),
        (
            pod,
            "empty object",
            json!({}),
            json!([
                "",
                "0/0",
                "",
                "0",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]),
        ),
        // Namespaces and nodes.
        (
            GroupKind::core("Namespace"),
            "active",
            json!({ "metadata": { "name": "default", "creationTimestamp": D2 }, "status": { "phase": "Active" } }),
            json!(["default", "Active", "2d"]),
        ),
        (
            GroupKind::core("Node"),
            "ready, cordoned, with roles",
            json!({
                "metadata": { "name": "cp-1", "creationTimestamp": D2, "labels": {
                    "node-role.kubernetes.io/control-plane": "",
                    "node-role.kubernetes.io/": "",
                    "kubernetes.io/role": "master",
                    "kubernetes.io/hostname": "cp-1",
                } },
                "spec": { "unschedulable": true },
                "status": {
                    "conditions": [{ "type": "MemoryPressure", "status": "False" }, { "type": "Ready", "status": "True" }],
                    "addresses": [{ "type": "Hostname", "address": "cp-1" }, { "type": "InternalIP", "address": "10.0.0.1" }],
                    "nodeInfo": { "kubeletVersion": "v1.33.1", "osImage": "Ubuntu 24.04 LTS",
                                  "kernelVersion": "6.8.0-45-generic", "containerRuntimeVersion": "containerd://2.0.0" },
                },
            }),
            json!([
                "cp-1",
                "Ready,SchedulingDisabled",
                "control-plane,master",
                "2d",
                "v1.33.1",
                "10.0.0.1",
                "<none>",
                "Ubuntu 24.04 LTS",
                "6.8.0-45-generic",
                "containerd://2.0.0"
            ]),
        ),
        (
            GroupKind::core("Node"),
            "not ready",
            json!({
                "metadata": { "name": "w-1", "creationTimestamp": H3 },
                "status": { "conditions": [{ "type": "Ready", "status": "Unknown" }],
                            "addresses": [{ "type": "ExternalIP", "address": "203.0.113.5" }] },
            }),
            json!([
                "w-1",
                "NotReady",
                "<none>",
                "3h",
                "",
                "<none>",
                "203.0.113.5",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]),
        ),
        (
            GroupKind::core("Node"),
            "no conditions yet",
            json!({ "metadata": { "name": "w-2", "creationTimestamp": S10 } }),
            json!([
                "w-2",
                "Unknown",
                "<none>",
                "10s",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]),
        ),
        // Services and endpoints.
        (
            GroupKind::core("Service"),
            "cluster IP",
            json!({
                "metadata": meta("kube-dns", D2),
                "spec": { "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                          "ports": [{ "name": "dns", "port": 53, "protocol": "UDP" }, { "name": "dns-tcp", "port": 53, "protocol": "TCP" }],
                          "selector": { "k8s-app": "kube-dns" } },
            }),
            json!([
                "kube-dns",
                "ClusterIP",
                "10.96.0.10",
                "<none>",
                "53/UDP,53/TCP",
                "2d",
                "k8s-app=kube-dns"
            ]),
        ),
        (
            GroupKind::core("Service"),
            "node port",
            json!({
                "metadata": meta("web", H3),
                "spec": { "type": "NodePort", "clusterIPs": ["10.96.1.2"],
                          "ports": [{ "port": 80, "nodePort": 30080, "protocol": "TCP", "targetPort": 8080 }],
                          "selector": { "app": "web", "tier": "front" } },
            }),
            json!([
                "web",
                "NodePort",
                "10.96.1.2",
                "<none>",
                "80:30080/TCP",
                "3h",
                "app=web,tier=front"
            ]),
        ),
        (
            GroupKind::core("Service"),
            "load balancer pending",
            json!({
                "metadata": meta("lb", S10),
                "spec": { "type": "LoadBalancer", "clusterIPs": ["10.96.1.3"],
                          "ports": [{ "port": 443, "nodePort": 31443, "protocol": "TCP" }] },
            }),
            json!([
                "lb",
                "LoadBalancer",
                "10.96.1.3",
                "<pending>",
                "443:31443/TCP",
                "10s",
                "<none>"
            ]),
        ),
        (
            GroupKind::core("Service"),
            "load balancer with addresses and external IPs",
            json!({
                "metadata": meta("lb2", D2),
                "spec": { "type": "LoadBalancer", "clusterIPs": ["10.96.1.4", "fd00::4"], "externalIPs": ["198.51.100.1"],
                          "ports": [{ "port": 80, "nodePort": 30001, "protocol": "TCP" }] },
                "status": { "loadBalancer": { "ingress": [
                    { "hostname": "lb.example.com" }, { "ip": "203.0.113.10" }, { "ip": "203.0.113.10" }] } },
            }),
            json!([
                "lb2",
                "LoadBalancer",
                "10.96.1.4",
                "203.0.113.10,lb.example.com,198.51.100.1",
                "80:30001/TCP",
                "2d",
                "<none>"
            ]),
        ),
        (
            GroupKind::core("Service"),
            "external name",
            json!({ "metadata": meta("db", D2), "spec": { "type": "ExternalName", "externalName": "db.example.com" } }),
            json!([
                "db",
                "ExternalName",
                "<none>",
                "db.example.com",
                "<none>",
                "2d",
                "<none>"
            ]),
        ),
        (
            GroupKind::core("Service"),
            "headless, written with clusterIP only",
            json!({ "metadata": meta("pg", D2), "spec": { "type": "ClusterIP", "clusterIP": "None",
                    "ports": [{ "port": 5432, "protocol": "TCP" }], "selector": { "app": "pg" } } }),
            json!([
                "pg",
                "ClusterIP",
                "None",
                "<none>",
                "5432/TCP",
                "2d",
                "app=pg"
            ]),
        ),
        (
            GroupKind::core("Endpoints"),
            "more than three",
            json!({
                "metadata": meta("web", D2),
                "subsets": [{ "addresses": [{ "ip": "10.0.0.1" }, { "ip": "10.0.0.2" }],
                              "ports": [{ "port": 8080 }, { "port": 8443 }] }],
            }),
            json!([
                "web",
                "10.0.0.1:8080,10.0.0.2:8080,10.0.0.1:8443 + 1 more...",
                "2d"
            ]),
        ),
        (
            GroupKind::core("Endpoints"),
            "IPv6, and a subset without ports",
            json!({
                "metadata": meta("v6", D2),
                "subsets": [{ "addresses": [{ "ip": "fd00::1" }], "ports": [{ "port": 80 }] },
                            { "addresses": [{ "ip": "fd00::2" }] }],
            }),
            json!(["v6", "[fd00::1]:80,fd00::2", "2d"]),
        ),
        (
            GroupKind::core("Endpoints"),
            "none",
            json!({ "metadata": meta("empty", D2) }),
            json!(["empty", "<none>", "2d"]),
        ),
        // Configuration.
        (
            GroupKind::core("ConfigMap"),
            "data and binary data",
            json!({ "metadata": meta("cfg", D2), "data": { "a": "1", "b": "2" }, "binaryData": { "c": "AA==" } }),
            json!(["cfg", 3, "2d"]),
        ),
        (
            GroupKind::core("Secret"),
            "tls",
            json!({ "metadata": meta("tls", H3), "type": "kubernetes.io/tls", "data": { "tls.crt": "", "tls.key": "" } }),
            json!(["tls", "kubernetes.io/tls", 2, "3h"]),
        ),
        (
            GroupKind::core("ServiceAccount"),
            "default",
            json!({ "metadata": meta("default", D2) }),
            json!(["default", 0, "2d"]),
        ),
        (
            GroupKind::core("ServiceAccount"),
            "with a token secret",
            json!({ "metadata": meta("builder", D2), "secrets": [{ "name": "builder-token" }] }),
            json!(["builder", 1, "2d"]),
        ),
        // Events.
        (
            GroupKind::core("Event"),
            "kubelet event seen four times",
            json!({
                "metadata": meta("web-1.17c3a", H3),
                "involvedObject": { "kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}" },
                "reason": "Pulled", "type": "Normal", "count": 4,
                "message": "Successfully pulled image \"nginx\"\n",
                "source": { "component": "kubelet", "host": "node-1" },
                "firstTimestamp": H3, "lastTimestamp": M5,
            }),
            json!([
                "5m",
                "Normal",
                "Pulled",
                "pod/web-1",
                "spec.containers{web}",
                "kubelet, node-1",
                "Successfully pulled image \"nginx\"",
                "3h",
                4,
                "web-1.17c3a"
            ]),
        ),
        (
            GroupKind::core("Event"),
            "written through the new API (9.88s ago: seconds are truncated)",
            json!({
                "metadata": meta("web-1.17c3b", S10),
                "involvedObject": { "kind": "Pod", "name": "web-1" },
                "reason": "Scheduled", "type": "Normal", "message": "Successfully assigned default/web-1 to node-1",
                "source": {}, "eventTime": "2024-05-01T11:59:50.123456Z",
                "reportingComponent": "default-scheduler", "reportingController": "default-scheduler",
                "reportingInstance": "default-scheduler-cp-1",
            }),
            json!([
                "9s",
                "Normal",
                "Scheduled",
                "pod/web-1",
                "",
                "default-scheduler, default-scheduler-cp-1",
                "Successfully assigned default/web-1 to node-1",
                "9s",
                1,
                "web-1.17c3b"
            ]),
        ),
        (
            GroupKind::core("Event"),
            "a series",
            json!({
                "metadata": meta("ns.1", D2),
                "involvedObject": { "kind": "Namespace" },
                "reason": "Backoff", "type": "Warning", "message": "x",
                "eventTime": "2024-05-01T09:00:00.000000Z", "reportingController": "c",
                "series": { "count": 7, "lastObservedTime": "2024-05-01T11:58:30.000000Z" },
            }),
            json!([
                "90s",
                "Warning",
                "Backoff",
                "namespace",
                "",
                "c",
                "x",
                "3h",
                7,
                "ns.1"
            ]),
        ),
        (
            GroupKind::new("events.k8s.io", "Event"),
            "events.k8s.io/v1",
            json!({
                "metadata": meta("node-1.abc", D2),
                "regarding": { "kind": "Node", "name": "node-1" },
                "note": "Node node-1 has been rebooted", "reason": "Rebooted", "type": "Warning",
                "eventTime": "2024-05-01T11:55:00.000000Z", "reportingController": "kubelet", "reportingInstance": "node-1",
                "action": "Reboot",
            }),
            json!([
                "5m",
                "Warning",
                "Rebooted",
                "node/node-1",
                "",
                "kubelet, node-1",
                "Node node-1 has been rebooted",
                "5m",
                1,
                "node-1.abc"
            ]),
        ),
        // Storage.
        (
            GroupKind::core("PersistentVolume"),
            "bound",
            json!({
                "metadata": meta("pv-1", D2),
                "spec": { "capacity": { "storage": "10Gi" }, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                          "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "standard", "volumeMode": "Filesystem",
                          "claimRef": { "kind": "PersistentVolumeClaim", "namespace": "default", "name": "data" } },
                "status": { "phase": "Bound" },
            }),
            json!([
                "pv-1",
                "10Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "default/data",
                "standard",
                "<unset>",
                "",
                "2d",
                "Filesystem"
            ]),
        ),
        (
            GroupKind::core("PersistentVolume"),
            "being deleted, beta class annotation, capacity in canonical form",
            json!({
                "metadata": { "name": "pv-2", "creationTimestamp": H3, "deletionTimestamp": S10,
                              "annotations": { "volume.beta.kubernetes.io/storage-class": "old" } },
                "spec": { "capacity": { "storage": "1024Mi" }, "accessModes": ["ReadWriteOncePod"],
                          "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                          "volumeAttributesClassName": "gold" },
                "status": { "phase": "Failed", "reason": "ProvisioningFailed" },
            }),
            json!([
                "pv-2",
                "1Gi",
                "RWOP",
                "Delete",
                "Terminating",
                "",
                "old",
                "gold",
                "ProvisioningFailed",
                "3h",
                "<unset>"
            ]),
        ),
        (
            GroupKind::core("PersistentVolumeClaim"),
            "bound",
            json!({
                "metadata": meta("data", H3),
                "spec": { "volumeName": "pv-1", "storageClassName": "standard", "volumeMode": "Filesystem",
                          "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "5Gi" } } },
                "status": { "phase": "Bound", "capacity": { "storage": "10Gi" }, "accessModes": ["ReadWriteOnce"] },
            }),
            json!([
                "data",
                "Bound",
                "pv-1",
                "10Gi",
                "RWO",
                "standard",
                "<unset>",
                "3h",
                "Filesystem"
            ]),
        ),
        (
            GroupKind::core("PersistentVolumeClaim"),
            "pending",
            json!({
                "metadata": meta("data2", M5),
                "spec": { "storageClassName": "standard", "volumeAttributesClassName": "gold",
                          "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "5Gi" } } },
                "status": { "phase": "Pending" },
            }),
            json!([
                "data2", "Pending", "", "", "", "standard", "gold", "5m", "<unset>"
            ]),
        ),
        (
            GroupKind::core("ResourceQuota"),
            "requests and limits",
            json!({
                "metadata": meta("compute", D2),
                "spec": { "hard": { "pods": "10" } },
                "status": {
                    "hard": { "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2",
                              "limits.memory": "2048Mi", "pods": "10" },
                    "used": { "requests.cpu": "500m", "requests.memory": "512Mi", "limits.cpu": "1000m", "pods": "3" },
                },
            }),
            json!([
                "compute",
                "pods: 3/10, requests.cpu: 500m/1, requests.memory: 512Mi/1Gi",
                "limits.cpu: 1/2, limits.memory: 0/2Gi",
                "2d"
            ]),
        ),
        (
            GroupKind::core("ReplicationController"),
            "three replicas",
            json!({
                "metadata": meta("web", D2),
                "spec": { "replicas": 3, "selector": { "app": "web" },
                          "template": { "spec": { "containers": [{ "name": "web", "image": "nginx:1.27" }] } } },
                "status": { "replicas": 3, "readyReplicas": 2 },
            }),
            json!(["web", 3, 3, 2, "2d", "web", "nginx:1.27", "app=web"]),
        ),
        // Workloads.
        (
            apps("Deployment"),
            "rolling",
            json!({
                "metadata": meta("web", D2),
                "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "web" } }, "template": { "spec": {
                    "containers": [{ "name": "web", "image": "nginx:1.27" }, { "name": "log", "image": "busybox" }] } } },
                "status": { "replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2 },
            }),
            json!([
                "web",
                "2/3",
                3,
                2,
                "2d",
                "web,log",
                "nginx:1.27,busybox",
                "app=web"
            ]),
        ),
        (
            apps("Deployment"),
            "set-based selector, no status yet",
            json!({
                "metadata": meta("api", S10),
                "spec": { "replicas": 2, "selector": {
                    "matchLabels": { "app": "api" },
                    "matchExpressions": [
                        { "key": "tier", "operator": "In", "values": ["front", "back"] },
                        { "key": "env", "operator": "Exists" },
                        { "key": "canary", "operator": "DoesNotExist" },
                        { "key": "zone", "operator": "NotIn", "values": ["b"] },
                    ] }, "template": { "spec": { "containers": [{ "name": "api", "image": "api:1" }] } } },
            }),
            json!([
                "api",
                "0/2",
                0,
                0,
                "10s",
                "api",
                "api:1",
                "app=api,!canary,env,tier in (back,front),zone notin (b)"
            ]),
        ),
        (
            apps("Deployment"),
            "selector with an unknown operator",
            json!({
                "metadata": meta("bad", S10),
                "spec": { "replicas": 1, "selector": { "matchExpressions": [{ "key": "a", "operator": "Near" }] } },
            }),
            json!(["bad", "0/1", 0, 0, "10s", "", "", "<invalid>"]),
        ),
        (
            apps("ReplicaSet"),
            "of a deployment",
            json!({
                "metadata": meta("web-5d4f", D2),
                "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "web", "pod-template-hash": "5d4f" } },
                          "template": { "spec": { "containers": [{ "name": "web", "image": "nginx:1.27" }] } } },
                "status": { "replicas": 3, "readyReplicas": 3, "availableReplicas": 3 },
            }),
            json!([
                "web-5d4f",
                3,
                3,
                3,
                "2d",
                "web",
                "nginx:1.27",
                "app=web,pod-template-hash=5d4f"
            ]),
        ),
        (
            apps("ReplicaSet"),
            "without a selector",
            json!({ "metadata": meta("bare", D2), "spec": { "replicas": 0 } }),
            json!(["bare", 0, 0, 0, "2d", "", "", "<none>"]),
        ),
        (
            apps("StatefulSet"),
            "one of three ready",
            json!({
                "metadata": meta("db", D2),
                "spec": { "replicas": 3, "serviceName": "db",
                          "template": { "spec": { "containers": [{ "name": "postgres", "image": "postgres:16" }] } } },
                "status": { "replicas": 2, "readyReplicas": 1 },
            }),
            json!(["db", "1/3", "2d", "postgres", "postgres:16"]),
        ),
        (
            apps("DaemonSet"),
            "on linux nodes",
            json!({
                "metadata": meta("fluentd", D2),
                "spec": { "selector": { "matchLabels": { "app": "fluentd" } }, "template": { "spec": {
                    "nodeSelector": { "kubernetes.io/os": "linux" },
                    "containers": [{ "name": "fluentd", "image": "fluentd:v1" }] } } },
                "status": { "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                            "updatedNumberScheduled": 3, "numberAvailable": 2 },
            }),
            json!([
                "fluentd",
                3,
                3,
                2,
                3,
                2,
                "kubernetes.io/os=linux",
                "2d",
                "fluentd",
                "fluentd:v1",
                "app=fluentd"
            ]),
        ),
        (
            apps("ControllerRevision"),
            "of a stateful set",
            json!({
                "metadata": { "name": "db-7f9c", "creationTimestamp": D2, "ownerReferences": [
                    { "apiVersion": "v1", "kind": "Pod", "name": "not-controller" },
                    { "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true }] },
                "revision": 2,
            }),
            json!(["db-7f9c", "statefulset.apps/db", 2, "2d"]),
        ),
        (
            apps("ControllerRevision"),
            "without an owner",
            json!({ "metadata": meta("orphan", D2), "revision": 1 }),
            json!(["orphan", "<none>", 1, "2d"]),
        ),
        (
            batch("Job"),
            "complete",
            json!({
                "metadata": meta("pi", H3),
                "spec": { "completions": 1, "parallelism": 1,
                          "selector": { "matchLabels": { "batch.kubernetes.io/controller-uid": "abc" } },
                          "template": { "spec": { "containers": [{ "name": "pi", "image": "perl:5.34" }] } } },
                "status": { "succeeded": 1, "startTime": H3, "completionTime": "2024-05-01T09:02:30Z",
                            "conditions": [{ "type": "SuccessCriteriaMet", "status": "True" },
                                           { "type": "Complete", "status": "True" }] },
            }),
            json!([
                "pi",
                "Complete",
                "1/1",
                "2m30s",
                "3h",
                "pi",
                "perl:5.34",
                "batch.kubernetes.io/controller-uid=abc"
            ]),
        ),
        (
            batch("Job"),
            "running in parallel",
            json!({
                "metadata": meta("work", M5),
                "spec": { "parallelism": 3, "template": { "spec": { "containers": [{ "name": "w", "image": "w:1" }] } } },
                "status": { "active": 3, "startTime": M5 },
            }),
            json!([
                "work", "Running", "0/1 of 3", "5m", "5m", "w", "w:1", "<none>"
            ]),
        ),
        (
            batch("Job"),
            "failed",
            json!({
                "metadata": meta("bad", D2),
                "spec": { "completions": 3, "parallelism": 1 },
                "status": { "succeeded": 1, "failed": 7, "startTime": D2, "completionTime": "2024-04-29T15:12:00Z",
                            "conditions": [{ "type": "FailureTarget", "status": "True" },
                                           { "type": "Failed", "status": "True" }] },
            }),
            json!(["bad", "Failed", "1/3", "3h12m", "2d", "", "", "<none>"]),
        ),
        (
            batch("Job"),
            "failing",
            json!({
                "metadata": meta("failing", M5),
                "spec": { "completions": 1 },
                "status": { "startTime": M5, "conditions": [{ "type": "FailureTarget", "status": "True" }] },
            }),
            json!([
                "failing",
                "FailureTarget",
                "0/1",
                "5m",
                "5m",
                "",
                "",
                "<none>"
            ]),
        ),
        (
            batch("Job"),
            "suspended before starting",
            json!({
                "metadata": meta("later", M5),
                "spec": { "completions": 2, "suspend": true },
                "status": { "conditions": [{ "type": "Suspended", "status": "True" }] },
            }),
            json!(["later", "Suspended", "0/2", "", "5m", "", "", "<none>"]),
        ),
        (
            batch("Job"),
            "being deleted",
            json!({
                "metadata": { "name": "gone", "creationTimestamp": M5, "deletionTimestamp": S10 },
                "spec": { "completions": 1 },
                "status": { "conditions": [{ "type": "Complete", "status": "False" }] },
            }),
            json!(["gone", "Terminating", "0/1", "", "5m", "", "", "<none>"]),
        ),
        (
            batch("CronJob"),
            "scheduled",
            json!({
                "metadata": meta("hello", D2),
                "spec": { "schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": false, "jobTemplate": { "spec": {
                    "template": { "spec": { "containers": [{ "name": "hello", "image": "busybox:1.36" }] } } } } },
                "status": { "active": [{ "name": "hello-1" }, { "name": "hello-2" }], "lastScheduleTime": M5 },
            }),
            json!([
                "hello",
                "*/5 * * * *",
                "Etc/UTC",
                "False",
                2,
                "5m",
                "2d",
                "hello",
                "busybox:1.36",
                "<none>"
            ]),
        ),
        (
            batch("CronJob"),
            "never scheduled",
            json!({ "metadata": meta("nightly", S90), "spec": { "schedule": "@daily" } }),
            json!([
                "nightly", "@daily", "<none>", "<unset>", 0, "<none>", "90s", "", "", "<none>"
            ]),
        ),
        // Other groups.
        (
            GroupKind::new("coordination.k8s.io", "Lease"),
            "held",
            json!({ "metadata": meta("node-1", D2), "spec": { "holderIdentity": "node-1", "leaseDurationSeconds": 40 } }),
            json!(["node-1", "node-1", "2d"]),
        ),
        (
            GroupKind::new("coordination.k8s.io", "Lease"),
            "free",
            json!({ "metadata": meta("leader", D2), "spec": {} }),
            json!(["leader", "", "2d"]),
        ),
        (
            GroupKind::new("discovery.k8s.io", "EndpointSlice"),
            "four addresses",
            json!({
                "metadata": meta("web-abc", D2),
                "addressType": "IPv4",
                "ports": [{ "name": "http", "port": 80, "protocol": "TCP" }, { "name": "https", "port": 443 }],
                "endpoints": [{ "addresses": ["10.0.0.1"] }, { "addresses": ["10.0.0.2"] },
                              { "addresses": ["10.0.0.3", "10.0.0.4"] }],
            }),
            json!([
                "web-abc",
                "IPv4",
                "80,443",
                "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
                "2d"
            ]),
        ),
        (
            GroupKind::new("discovery.k8s.io", "EndpointSlice"),
            "ports without numbers, no endpoints",
            json!({
                "metadata": meta("x", D2), "addressType": "IPv6",
                "ports": [{ "name": "named" }, {}, { "port": 1 }, { "port": 2 }],
            }),
            json!(["x", "IPv6", "named,*,1 + 1 more...", "<unset>", "2d"]),
        ),
        (
            net("Ingress"),
            "many hosts, TLS",
            json!({
                "metadata": meta("web", D2),
                "spec": { "ingressClassName": "nginx", "tls": [{ "hosts": ["a.example.com"] }], "rules": [
                    { "host": "a.example.com" }, { "host": "b.example.com" }, {}, { "host": "d.example.com" },
                    { "host": "e.example.com" }] },
                "status": { "loadBalancer": { "ingress": [{ "ip": "10.0.0.9" }, { "hostname": "a.lb.example.com" }] } },
            }),
            json!([
                "web",
                "nginx",
                "a.example.com,b.example.com,d.example.com + 2 more...",
                "10.0.0.9,a.lb.example.com",
                "80, 443",
                "2d"
            ]),
        ),
        (
            net("Ingress"),
            "default backend only",
            json!({ "metadata": meta("catch-all", H3), "spec": { "defaultBackend": { "service": { "name": "web" } } } }),
            json!(["catch-all", "<none>", "*", "", "80", "3h"]),
        ),
        (
            net("IngressClass"),
            "with parameters",
            json!({
                "metadata": { "name": "nginx", "creationTimestamp": D2,
                              "annotations": { "ingressclass.kubernetes.io/is-default-class": "true" } },
                "spec": { "controller": "k8s.io/ingress-nginx", "parameters": {
                    "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb" } },
            }),
            json!([
                "nginx",
                "k8s.io/ingress-nginx",
                "IngressParameters.k8s.example.com/external-lb",
                "2d"
            ]),
        ),
        (
            net("IngressClass"),
            "without parameters",
            json!({ "metadata": meta("traefik", D2), "spec": { "controller": "traefik.io/ingress-controller" } }),
            json!(["traefik", "traefik.io/ingress-controller", "<none>", "2d"]),
        ),
        (
            net("NetworkPolicy"),
            "selecting pods",
            json!({ "metadata": meta("db", D2), "spec": { "podSelector": { "matchLabels": { "role": "db" } } } }),
            json!(["db", "role=db", "2d"]),
        ),
        (
            net("NetworkPolicy"),
            "selecting all pods",
            json!({ "metadata": meta("deny-all", D2), "spec": { "podSelector": {}, "policyTypes": ["Ingress"] } }),
            json!(["deny-all", "<none>", "2d"]),
        ),
        (
            GroupKind::new("policy", "PodDisruptionBudget"),
            "min available",
            json!({ "metadata": meta("web", D2), "spec": { "minAvailable": 2 }, "status": { "disruptionsAllowed": 1 } }),
            json!(["web", "2", "N/A", 1, "2d"]),
        ),
        (
            GroupKind::new("policy", "PodDisruptionBudget"),
            "max unavailable as a percentage",
            json!({ "metadata": meta("db", D2), "spec": { "maxUnavailable": "25%" } }),
            json!(["db", "N/A", "25%", 0, "2d"]),
        ),
        (
            GroupKind::new("scheduling.k8s.io", "PriorityClass"),
            "system",
            json!({ "metadata": { "name": "system-node-critical", "creationTimestamp": D2 },
                    "value": 2_000_001_000, "preemptionPolicy": "PreemptLowerPriority" }),
            json!([
                "system-node-critical",
                2_000_001_000,
                false,
                "2d",
                "PreemptLowerPriority"
            ]),
        ),
        (
            GroupKind::new("storage.k8s.io", "StorageClass"),
            "the default",
            json!({
                "metadata": { "name": "local-path", "creationTimestamp": D2,
                              "annotations": { "storageclass.kubernetes.io/is-default-class": "true" } },
                "provisioner": "rancher.io/local-path", "reclaimPolicy": "Retain",
                "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true,
            }),
            json!([
                "local-path (default)",
                "rancher.io/local-path",
                "Retain",
                "WaitForFirstConsumer",
                true,
                "2d"
            ]),
        ),
        (
            GroupKind::new("storage.k8s.io", "StorageClass"),
            "unset policies",
            json!({ "metadata": meta("ebs", D2), "provisioner": "ebs.csi.aws.com" }),
            json!(["ebs", "ebs.csi.aws.com", "Delete", "Immediate", false, "2d"]),
        ),
        (
            GroupKind::new("autoscaling", "HorizontalPodAutoscaler"),
            "cpu utilization",
            json!({
                "metadata": meta("web", D2),
                "spec": { "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
                          "minReplicas": 1, "maxReplicas": 10, "metrics": [{ "type": "Resource",
                          "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 80 } } }] },
                "status": { "currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": [{ "type": "Resource",
                            "resource": { "name": "cpu", "current": { "averageUtilization": 45, "averageValue": "120m" } } }] },
            }),
            json!(["web", "Deployment/web", "cpu: 45%/80%", "1", 10, 3, "2d"]),
        ),
        (
            GroupKind::new("autoscaling", "HorizontalPodAutoscaler"),
            "three metrics, no status for the first",
            json!({
                "metadata": meta("api", H3),
                "spec": { "scaleTargetRef": { "kind": "StatefulSet", "name": "api" }, "maxReplicas": 5, "metrics": [
                    { "type": "Resource", "resource": { "name": "memory", "target": { "type": "AverageValue", "averageValue": "512Mi" } } },
                    { "type": "Pods", "pods": { "metric": { "name": "rps" }, "target": { "type": "AverageValue", "averageValue": "1000" } } },
                    { "type": "External", "external": { "metric": { "name": "queue" }, "target": { "type": "Value", "value": "100" } } },
                ] },
                "status": { "currentMetrics": [{}, { "type": "Pods", "pods": { "current": { "averageValue": "500" } } }] },
            }),
            json!([
                "api",
                "StatefulSet/api",
                "memory: <unknown>/512Mi, 500/1k + 1 more...",
                "<unset>",
                5,
                0,
                "3h"
            ]),
        ),
        (
            GroupKind::new("autoscaling", "HorizontalPodAutoscaler"),
            "no metrics",
            json!({ "metadata": meta("bare", H3), "spec": { "scaleTargetRef": { "kind": "Deployment", "name": "bare" },
                    "minReplicas": 2, "maxReplicas": 4 } }),
            json!(["bare", "Deployment/bare", "<none>", "2", 4, 0, "3h"]),
        ),
        (
            rbac("RoleBinding"),
            "users, groups and service accounts",
            json!({
                "metadata": meta("view", D2),
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
                "subjects": [
                    { "kind": "User", "name": "alice" }, { "kind": "Group", "name": "devs" },
                    { "kind": "ServiceAccount", "name": "ci", "namespace": "build" }, { "kind": "User", "name": "bob" }],
            }),
            json!([
                "view",
                "ClusterRole/view",
                "2d",
                "alice, bob",
                "devs",
                "build/ci"
            ]),
        ),
        (
            rbac("ClusterRoleBinding"),
            "no subjects",
            json!({ "metadata": { "name": "cluster-admin", "creationTimestamp": D2 },
                    "roleRef": { "kind": "ClusterRole", "name": "cluster-admin" } }),
            json!([
                "cluster-admin",
                "ClusterRole/cluster-admin",
                "2d",
                "",
                "",
                ""
            ]),
        ),
        // Kinds upstream has no printer for: the default table.
        (
            GroupKind::core("LimitRange"),
            "default table",
            json!({ "metadata": meta("limits", D2), "spec": { "limits": [] } }),
            json!(["limits", "2024-04-29T12:00:00Z"]),
        ),
        (
            rbac("Role"),
            "default table",
            json!({ "metadata": meta("reader", H3), "rules": [] }),
            json!(["reader", "2024-05-01T09:00:00Z"]),
        ),
        (
            rbac("ClusterRole"),
            "default table without a creation time",
            json!({ "metadata": { "name": "admin" } }),
            json!(["admin", "0001-01-01T00:00:00Z"]),
        ),
        // Berth's management kinds (no upstream printer: Berth's own columns).
        (
            GroupKind::new("berth.dev", "Cluster"),
            "provisioning, version asked for",
            json!({ "metadata": meta("prod", M5),
                "spec": { "cloud": "aws", "region": "eu-west-1", "kubernetesVersion": "1.33" } }),
            json!(["prod", "aws", "eu-west-1", "1.33", "<none>", "<none>", "5m"]),
        ),
        (
            GroupKind::new("berth.dev", "Cluster"),
            "ready",
            json!({ "metadata": meta("dev", D2),
                "spec": { "cloud": "local", "region": "local" },
                "status": { "phase": "Ready", "endpoint": "https://127.0.0.1:6443/clusters/default:dev",
                    "kubernetesVersion": "v1.33.0" } }),
            json!([
                "dev",
                "local",
                "local",
                "v1.33.0",
                "Ready",
                "https://127.0.0.1:6443/clusters/default:dev",
                "2d"
            ]),
        ),
        (
            GroupKind::new("berth.dev", "NodePool"),
            "two of three ready",
            json!({ "metadata": meta("workers", H3),
                "spec": { "clusterName": "prod", "instanceType": "m7i.large", "minSize": 1,
                    "desiredSize": 3, "maxSize": 5 },
                "status": { "replicas": 3, "readyReplicas": 2 } }),
            json!(["workers", "prod", "m7i.large", 3, 2, "3h"]),
        ),
        (
            GroupKind::new("berth.dev", "NodePool"),
            "desired size not defaulted yet",
            json!({ "metadata": meta("gpu", S10),
                "spec": { "clusterName": "prod", "instanceType": "g5.xlarge", "minSize": 2 } }),
            json!(["gpu", "prod", "g5.xlarge", 2, 0, "10s"]),
        ),
    ]
}

#[test]
fn cells_match_upstream() {
    let mut failures = Vec::new();
    for (kind, title, obj, want) in cases() {
        let got = Value::Array(cells(kind, &obj, now()));
        if got != want {
            failures.push(format!(
                "{}/{} {title}:\n  got  {got}\n  want {want}",
                kind.group, kind.kind
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_printed_kind_has_a_case() {
    let cases = cases();
    for kind in PRINTED {
        assert!(
            cases.iter().any(|(k, ..)| *k == kind),
            "no case for {kind:?}"
        );
    }
}

/// Every kind with a printer.
const PRINTED: [GroupKind<'static>; 34] = [
    GroupKind::core("Pod"),
    GroupKind::core("Namespace"),
    GroupKind::core("Node"),
    GroupKind::core("Service"),
    GroupKind::core("Endpoints"),
    GroupKind::core("ConfigMap"),
    GroupKind::core("Secret"),
    GroupKind::core("ServiceAccount"),
    GroupKind::core("Event"),
    GroupKind::core("PersistentVolume"),
    GroupKind::core("PersistentVolumeClaim"),
    GroupKind::core("ResourceQuota"),
    GroupKind::core("ReplicationController"),
    GroupKind::new("apps", "Deployment"),
    GroupKind::new("apps", "ReplicaSet"),
    GroupKind::new("apps", "StatefulSet"),
    GroupKind::new("apps", "DaemonSet"),
    GroupKind::new("apps", "ControllerRevision"),
    GroupKind::new("batch", "Job"),
    GroupKind::new("batch", "CronJob"),
    GroupKind::new("coordination.k8s.io", "Lease"),
    GroupKind::new("discovery.k8s.io", "EndpointSlice"),
    GroupKind::new("events.k8s.io", "Event"),
    GroupKind::new("networking.k8s.io", "Ingress"),
    GroupKind::new("networking.k8s.io", "IngressClass"),
    GroupKind::new("networking.k8s.io", "NetworkPolicy"),
    GroupKind::new("policy", "PodDisruptionBudget"),
    GroupKind::new("scheduling.k8s.io", "PriorityClass"),
    GroupKind::new("storage.k8s.io", "StorageClass"),
    GroupKind::new("autoscaling", "HorizontalPodAutoscaler"),
    GroupKind::new("rbac.authorization.k8s.io", "RoleBinding"),
    GroupKind::new("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    GroupKind::new("berth.dev", "Cluster"),
    GroupKind::new("berth.dev", "NodePool"),
];

/// Columns as `Name:type[:wide]`.
fn headers(kind: GroupKind<'_>) -> Vec<String> {
    columns(kind)
        .unwrap_or_else(default_columns)
        .iter()
        .map(|c| {
            let wide = if c.priority == 1 { ":wide" } else { "" };
            format!("{}:{}{wide}", c.name, c.type_)
        })
        .collect()
}

#[test]
fn columns_match_upstream() {
    let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let cases: Vec<(GroupKind<'_>, Vec<String>)> = vec![
        (
            GroupKind::core("Pod"),
            s(&[
                "Name:string",
                "Ready:string",
                "Status:string",
                "Restarts:string",
                "Age:string",
                "IP:string:wide",
                "Node:string:wide",
                "Nominated Node:string:wide",
                "Readiness Gates:string:wide",
            ]),
        ),
        (
            GroupKind::core("Node"),
            s(&[
                "Name:string",
                "Status:string",
                "Roles:string",
                "Age:string",
                "Version:string",
                "Internal-IP:string:wide",
                "External-IP:string:wide",
                "OS-Image:string:wide",
                "Kernel-Version:string:wide",
                "Container-Runtime:string:wide",
            ]),
        ),
        (
            GroupKind::core("Service"),
            s(&[
                "Name:string",
                "Type:string",
                "Cluster-IP:string",
                "External-IP:string",
                "Port(s):string",
                "Age:string",
                "Selector:string:wide",
            ]),
        ),
        (
            GroupKind::core("Event"),
            s(&[
                "Last Seen:string",
                "Type:string",
                "Reason:string",
                "Object:string",
                "Subobject:string:wide",
                "Source:string:wide",
                "Message:string",
                "First Seen:string:wide",
                "Count:string:wide",
                "Name:string:wide",
            ]),
        ),
        (
            GroupKind::core("PersistentVolume"),
            s(&[
                "Name:string",
                "Capacity:string",
                "Access Modes:string",
                "Reclaim Policy:string",
                "Status:string",
                "Claim:string",
                "StorageClass:string",
                "VolumeAttributesClass:string",
                "Reason:string",
                "Age:string",
                "VolumeMode:string:wide",
            ]),
        ),
        (
            GroupKind::core("ResourceQuota"),
            s(&[
                "Name:string",
                "Request:string",
                "Limit:string",
                "Age:string",
            ]),
        ),
        (
            GroupKind::new("apps", "Deployment"),
            s(&[
                "Name:string",
                "Ready:string",
                "Up-to-date:string",
                "Available:string",
                "Age:string",
                "Containers:string:wide",
                "Images:string:wide",
                "Selector:string:wide",
            ]),
        ),
        (
            GroupKind::new("apps", "DaemonSet"),
            s(&[
                "Name:string",
                "Desired:integer",
                "Current:integer",
                "Ready:integer",
                "Up-to-date:integer",
                "Available:integer",
                "Node Selector:string",
                "Age:string",
                "Containers:string:wide",
                "Images:string:wide",
                "Selector:string:wide",
            ]),
        ),
        (
            GroupKind::new("batch", "Job"),
            s(&[
                "Name:string",
                "Status:string",
                "Completions:string",
                "Duration:string",
                "Age:string",
                "Containers:string:wide",
                "Images:string:wide",
                "Selector:string:wide",
            ]),
        ),
        (
            GroupKind::new("batch", "CronJob"),
            s(&[
                "Name:string",
                "Schedule:string",
                "Timezone:string",
                "Suspend:boolean",
                "Active:integer",
                "Last Schedule:string",
                "Age:string",
                "Containers:string:wide",
                "Images:string:wide",
                "Selector:string:wide",
            ]),
        ),
        (
            GroupKind::new("scheduling.k8s.io", "PriorityClass"),
            s(&[
                "Name:string",
                "Value:integer",
                "Global-Default:boolean",
                "Age:string",
                "PreemptionPolicy:string",
            ]),
        ),
        (
            GroupKind::new("autoscaling", "HorizontalPodAutoscaler"),
            s(&[
                "Name:string",
                "Reference:string",
                "Targets:string",
                "MinPods:string",
                "MaxPods:string",
                "Replicas:string",
                "Age:string",
            ]),
        ),
        (
            GroupKind::new("rbac.authorization.k8s.io", "RoleBinding"),
            s(&[
                "Name:string",
                "Role:string",
                "Age:string",
                "Users:string:wide",
                "Groups:string:wide",
                "ServiceAccounts:string:wide",
            ]),
        ),
        (
            GroupKind::core("LimitRange"),
            s(&["Name:string", "Created At:date"]),
        ),
    ];
    for (kind, want) in cases {
        assert_eq!(headers(kind), want, "{kind:?}");
    }
    assert_eq!(
        columns(GroupKind::new("rbac.authorization.k8s.io", "Role")),
        None
    );
    assert_eq!(columns(GroupKind::new("example.com", "Widget")), None);
}

#[test]
fn column_metadata_is_upstreams() {
    let pod = columns(GroupKind::core("Pod")).unwrap();
    assert_eq!(pod[0].format, "name");
    assert!(
        pod[0]
            .description
            .starts_with("Name must be unique within a namespace.")
    );
    assert!(
        pod[4]
            .description
            .starts_with("CreationTimestamp is a timestamp")
    );
    assert_eq!(
        pod[5].description,
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."
    );
    assert_eq!(
        pod[5].definition(),
        json!({ "name": "IP", "type": "string", "format": "", "priority": 1,
                "description": "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated." })
    );
    let event = columns(GroupKind::core("Event")).unwrap();
    assert_eq!(
        (event[9].name, event[9].format, event[9].priority),
        ("Name", "name", 1)
    );
    let defaults = default_columns();
    assert_eq!(
        (defaults[1].name, defaults[1].type_, defaults[1].format),
        ("Created At", "date", "")
    );
}

#[test]
fn one_cell_per_column_whatever_the_object() {
    let malformed = [
        json!(null),
        json!([]),
        json!("pod"),
        json!(7),
        json!({}),
        json!({ "metadata": 5, "spec": "x", "status": [1] }),
        json!({
            "metadata": { "name": 3, "creationTimestamp": "yesterday", "deletionTimestamp": 1,
                          "labels": [], "annotations": "x", "ownerReferences": [{ "controller": "yes" }, 4] },
            "spec": { "containers": [7, { "name": [] }], "initContainers": "x", "replicas": "3",
                      "selector": { "matchLabels": [], "matchExpressions": [{ "values": 1 }, 2] },
                      "ports": [{ "port": "80", "nodePort": -1 }], "capacity": { "storage": "lots" },
                      "metrics": [{ "type": "Resource" }, { "type": "Pods" }, { "type": "External" }, 1],
                      "rules": [1, { "host": 2 }], "claimRef": 1, "template": [], "jobTemplate": 1 },
            "status": { "conditions": [1, { "type": "Ready" }], "containerStatuses": [1, { "state": 5 }],
                        "initContainerStatuses": [{ "state": { "terminated": {} } }], "podIPs": [1],
                        "hard": { "cpu": 1, "memory": [] }, "loadBalancer": { "ingress": [1, {}] },
                        "startTime": "2024-13-01T00:00:00Z", "currentMetrics": 1 },
            "subsets": [1, { "addresses": [1], "ports": [1] }],
            "endpoints": [1, { "addresses": [1, "x"] }],
            "series": { "count": "x" }, "involvedObject": 1, "regarding": [], "roleRef": 2, "subjects": [1],
        }),
    ];
    let mut kinds: Vec<GroupKind<'_>> = PRINTED.to_vec();
    kinds.push(GroupKind::core("LimitRange"));
    for kind in kinds {
        let width = columns(kind).unwrap_or_else(default_columns).len();
        for obj in &malformed {
            let row = cells(kind, obj, now());
            assert_eq!(row.len(), width, "{kind:?} {obj}");
        }
        for (k, _, obj, _) in cases() {
            // Any kind's object printed as any other kind: still one cell per column.
            assert_eq!(
                cells(kind, &obj, now()).len(),
                width,
                "{kind:?} given a {k:?}"
            );
        }
    }
}

#[test]
fn ages_before_creation_are_invalid() {
    let pod =
        json!({ "metadata": { "name": "future", "creationTimestamp": "2024-05-01T12:00:05Z" } });
    assert_eq!(
        cells(GroupKind::core("Namespace"), &pod, now())[2],
        json!("<invalid>")
    );
    let skewed =
        json!({ "metadata": { "name": "skew", "creationTimestamp": "2024-05-01T12:00:01Z" } });
    assert_eq!(
        cells(GroupKind::core("Namespace"), &skewed, now())[2],
        json!("0s")
    );
    assert_eq!(
        default_cells(&skewed),
        vec![json!("skew"), json!("2024-05-01T12:00:01Z")]
    );
}

#[test]
fn finished_pods_carry_a_completed_condition() {
    let pod = GroupKind::core("Pod");
    assert_eq!(
        row_conditions(pod, &json!({ "status": { "phase": "Succeeded" } })),
        Some(
            json!([{ "type": "Completed", "status": "True", "reason": "Succeeded",
                      "message": "The pod has completed successfully." }])
        )
    );
    assert_eq!(
        row_conditions(pod, &json!({ "status": { "phase": "Failed" } })),
        Some(
            json!([{ "type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed." }])
        )
    );
    assert_eq!(
        row_conditions(pod, &json!({ "status": { "phase": "Running" } })),
        None
    );
    assert_eq!(
        row_conditions(
            GroupKind::new("batch", "Job"),
            &json!({ "status": { "phase": "Failed" } })
        ),
        None
    );
}

const SEC: i64 = 1_000_000_000;

#[test]
fn human_durations() {
    let minute = 60 * SEC;
    let hour = 60 * minute;
    let day = 24 * hour;
    for (d, want) in [
        (0, "0s"),
        (SEC - 1, "0s"),
        (59 * SEC, "59s"),
        (minute, "60s"),
        (119 * SEC, "119s"),
        (2 * minute, "2m"),
        (150 * SEC, "2m30s"),
        (9 * minute + 59 * SEC, "9m59s"),
        (10 * minute, "10m"),
        (10 * minute + 30 * SEC, "10m"),
        (179 * minute, "179m"),
        (3 * hour, "3h"),
        (3 * hour + 12 * minute, "3h12m"),
        (7 * hour + 59 * minute, "7h59m"),
        (8 * hour, "8h"),
        (47 * hour + 59 * minute, "47h"),
        (2 * day, "2d"),
        (2 * day + 2 * hour, "2d2h"),
        (7 * day + 23 * hour, "7d23h"),
        (8 * day, "8d"),
        (729 * day, "729d"),
        (730 * day, "2y"),
        (800 * day, "2y70d"),
        (8 * 365 * day, "8y"),
        (100 * 365 * day, "100y"),
        (-SEC, "0s"),
        (-(2 * SEC) + 1, "0s"),
        (-2 * SEC, "<invalid>"),
        (-day, "<invalid>"),
        (i64::MIN, "<invalid>"),
        (i64::MAX, "292y"),
    ] {
        assert_eq!(human_duration(d), want, "{d}ns");
    }
}

#[test]
fn short_human_durations() {
    let minute = 60 * SEC;
    let hour = 60 * minute;
    let day = 24 * hour;
    for (d, want) in [
        (0, "0s"),
        (59 * SEC, "59s"),
        (minute, "1m"),
        (150 * SEC, "2m"),
        (59 * minute, "59m"),
        (hour, "1h"),
        (23 * hour, "23h"),
        (day, "1d"),
        (364 * day, "364d"),
        (365 * day, "1y"),
        (-SEC, "0s"),
        (-2 * SEC, "<invalid>"),
    ] {
        assert_eq!(short_human_duration(d), want, "{d}ns");
    }
}
