//! The loops serve every logical cluster from one manager, each through its own client, and
//! never act across clusters: a ReplicaSet in tenant A gets its pods in tenant A only, and the
//! same name in another cluster is a different object.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{ListParams, PostParams};
use runtime::resource::{self, PODS, REPLICA_SETS};
use serde_json::json;

fn client(router: &axum::Router, cluster: &str) -> kube::Client {
    kube::Client::new(
        apiserver::local::LocalService::new(router.clone(), cluster),
        "default",
    )
}

async fn pods(client: &kube::Client, ns: &str) -> Vec<String> {
    PODS.api(client, Some(ns))
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name.unwrap_or_default())
        .collect()
}

fn replica_set(n: i64) -> kube::core::DynamicObject {
    resource::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": n, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cluster_gets_its_own_loops_and_nothing_leaks_across() {
    let store: Arc<dyn store::Store> = Arc::new(store::MemoryStore::default());
    let api = apiserver::Api::new(store);
    for id in [apiserver::request::ROOT_CLUSTER, "tenant-a", "tenant-b"] {
        api.ensure_cluster(id).await.unwrap();
    }
    let router = apiserver::router(Arc::clone(&api));
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let manager = manager::Manager::start(manager::Config::default(), stop_rx);
    let (a, b) = (client(&router, "tenant-a"), client(&router, "tenant-b"));
    manager.add_cluster("tenant-a", a.clone());
    manager.add_cluster("tenant-b", b.clone());
    let root = client(&router, apiserver::request::ROOT_CLUSTER);

    let pp = PostParams::default();
    REPLICA_SETS
        .api(&a, Some("default"))
        .create(&pp, &replica_set(2))
        .await
        .unwrap();
    REPLICA_SETS
        .api(&b, Some("default"))
        .create(&pp, &replica_set(3))
        .await
        .unwrap();
    for _ in 0..200 {
        if pods(&a, "default").await.len() == 2 && pods(&b, "default").await.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        pods(&a, "default").await.len(),
        2,
        "tenant A's ReplicaSet runs"
    );
    assert_eq!(
        pods(&b, "default").await.len(),
        3,
        "tenant B's ReplicaSet runs"
    );
    assert!(
        pods(&root, "default").await.is_empty(),
        "nothing lands in the root cluster"
    );

    // A cluster that is removed stops being reconciled; the others carry on.
    manager.remove_cluster("tenant-b");
    PODS.api(&b, Some("default"))
        .delete_collection(&Default::default(), &ListParams::default())
        .await
        .unwrap();
    PODS.api(&a, Some("default"))
        .delete_collection(&Default::default(), &ListParams::default())
        .await
        .unwrap();
    for _ in 0..200 {
        if pods(&a, "default").await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pods(&a, "default").await.len(), 2, "tenant A heals");
    assert!(
        pods(&b, "default").await.is_empty(),
        "no loop recreates pods in a removed cluster"
    );
}
