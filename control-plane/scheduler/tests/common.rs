//! Builders for test nodes and pods.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use scheduler::{PodInfo, Snapshot};
use serde_json::{Value, json};

pub fn node(name: &str, cpu: &str, memory: &str, pods: i64) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods.to_string()}}
    })
}

pub fn with(mut v: Value, pointer: &str, value: Value) -> Value {
    let parts: Vec<String> = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|p| p.replace("~1", "/"))
        .collect();
    let (last, parents) = parts.split_last().unwrap();
    let mut cur = &mut v;
    for p in parents {
        cur = if cur.is_array() {
            &mut cur[p.parse::<usize>().unwrap()]
        } else {
            if cur.get(p.as_str()).is_none() {
                cur[p.as_str()] = json!({});
            }
            &mut cur[p.as_str()]
        };
    }
    if cur.is_array() {
        cur[last.parse::<usize>().unwrap()] = value;
    } else {
        cur[last.as_str()] = value;
    }
    v
}

pub fn label(v: Value, key: &str, value: &str) -> Value {
    with(
        v,
        &format!("/metadata/labels/{}", key.replace('/', "~1")),
        json!(value),
    )
}

pub fn pod(name: &str, cpu: Option<&str>, memory: Option<&str>) -> Value {
    let mut requests = serde_json::Map::new();
    if let Some(c) = cpu {
        requests.insert("cpu".into(), json!(c));
    }
    if let Some(m) = memory {
        requests.insert("memory".into(), json!(m));
    }
    json!({
        "metadata": {"name": name, "namespace": "default", "labels": {}},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": requests}}]}
    })
}

pub fn info(v: &Value) -> PodInfo {
    PodInfo::from_api(v).unwrap()
}

pub fn snapshot(nodes: &[Value]) -> Snapshot {
    let mut s = Snapshot::new();
    for n in nodes {
        s.upsert_node_object(n).unwrap();
    }
    s
}

pub fn bind(s: &mut Snapshot, pod: &Value, node: &str) {
    s.assume(Arc::new(info(pod)), node).unwrap();
}
