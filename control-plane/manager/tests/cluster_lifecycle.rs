//! The Cluster lifecycle loop against an in-memory API server: a Cluster in the root cluster
//! gets its finalizer, its logical cluster, its kubeconfig Secret and a Ready status; a failed
//! attempt is reported and retried; deleting the Cluster deletes the logical cluster and the
//! Secret before the Cluster goes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kube::api::{DeleteParams, ListParams, PostParams};
use manager::CLUSTERS;
use runtime::resource::{self, EVENTS, SECRETS};
use serde_json::{Value, json};

const ROOT: &str = apiserver::request::ROOT_CLUSTER;

fn client(router: &axum::Router, cluster: &str) -> kube::Client {
    kube::Client::new(
        apiserver::local::LocalService::new(router.clone(), cluster),
        "default",
    )
}

/// Makes logical clusters through the API server, failing the first `fail` attempts.
struct Fake {
    api: Arc<apiserver::Api>,
    fail: AtomicUsize,
}

#[async_trait::async_trait]
impl manager::Provisioner for Fake {
    async fn provision(&self, id: &str, _spec: &berth_api::ClusterSpec) -> anyhow::Result<String> {
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            anyhow::bail!("the cloud said no");
        }
        self.api.ensure_cluster(id).await?;
        Ok(format!("apiVersion: v1\nkind: Config\n# {id}\n"))
    }
    async fn teardown(&self, id: &str) -> anyhow::Result<()> {
        Ok(self.api.delete_cluster(id).await?)
    }
    async fn exists(&self, id: &str) -> anyhow::Result<bool> {
        Ok(self.api.clusters().await?.iter().any(|c| c == id))
    }
    fn endpoint(&self, id: &str) -> String {
        format!("https://127.0.0.1:6443/clusters/{id}")
    }
    fn server_ca_pem(&self) -> String {
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()
    }
}

async fn get(client: &kube::Client, r: &runtime::resource::Resource, name: &str) -> Option<Value> {
    r.api(client, Some("default"))
        .get_opt(name)
        .await
        .unwrap()
        .map(resource::to_value)
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen");
}

async fn reasons(root: &kube::Client) -> Vec<String> {
    EVENTS
        .api(root, Some("default"))
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| {
            resource::to_value(e)["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_is_provisioned_reported_and_torn_down() {
    let store: Arc<dyn store::Store> = Arc::new(store::MemoryStore::default());
    let api = apiserver::Api::new(Arc::clone(&store));
    api.ensure_cluster(ROOT).await.unwrap();
    let router = apiserver::router(Arc::clone(&api));
    let fake = Arc::new(Fake {
        api: Arc::clone(&api),
        fail: AtomicUsize::new(1),
    });
    let config = manager::Config {
        provisioner: Some(fake),
        ..manager::Config::default()
    };
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let manager = manager::Manager::start(config, stop_rx);
    let root = client(&router, ROOT);
    manager.add_cluster(ROOT, root.clone());

    let cluster = resource::from_value(json!({
        "apiVersion": "berth.dev/v1", "kind": "Cluster",
        "metadata": {"name": "prod", "namespace": "default"},
        "spec": {"cloud": "local"},
    }))
    .unwrap();
    CLUSTERS
        .api(&root, Some("default"))
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap();

    eventually("Ready", || async {
        get(&root, &CLUSTERS, "prod")
            .await
            .is_some_and(|c| c["status"]["phase"] == "Ready")
    })
    .await;
    let c = get(&root, &CLUSTERS, "prod").await.unwrap();
    assert_eq!(
        c["metadata"]["finalizers"],
        json!(["berth.dev/cluster-teardown"])
    );
    let status = &c["status"];
    assert_eq!(status["clusterID"], "default:prod");
    assert_eq!(
        status["endpoint"],
        "https://127.0.0.1:6443/clusters/default:prod"
    );
    assert_eq!(status["kubernetesVersion"], "v1.33.0");
    assert_eq!(status["conditions"][0]["type"], "Ready");
    assert_eq!(status["conditions"][0]["status"], "True");
    assert_eq!(status["conditions"][0]["reason"], "Provisioned");
    assert!(
        api.clusters()
            .await
            .unwrap()
            .contains(&"default:prod".to_owned())
    );
    let secret = get(&root, &SECRETS, "prod-kubeconfig").await.unwrap();
    assert_eq!(secret["type"], "cluster.x-k8s.io/secret");
    assert_eq!(
        secret["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
        "prod"
    );
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["uid"],
        c["metadata"]["uid"]
    );
    assert!(
        secret["data"]["value"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    eventually("events", || async {
        let r = reasons(&root).await;
        r.iter().any(|r| r == "ProvisioningFailed") && r.iter().any(|r| r == "Provisioned")
    })
    .await;

    // A deleted Secret comes back.
    SECRETS
        .api(&root, Some("default"))
        .delete("prod-kubeconfig", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Secret back", || async {
        get(&root, &SECRETS, "prod-kubeconfig").await.is_some()
    })
    .await;

    CLUSTERS
        .api(&root, Some("default"))
        .delete("prod", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Cluster gone", || async {
        get(&root, &CLUSTERS, "prod").await.is_none()
    })
    .await;
    assert!(get(&root, &SECRETS, "prod-kubeconfig").await.is_none());
    assert!(
        !api.clusters()
            .await
            .unwrap()
            .contains(&"default:prod".to_owned())
    );
    // Its keys are gone from the store: objects, registration and credentials.
    for prefix in ["/registry/default:prod/", "/berth/clusters/default:prod"] {
        let left = store
            .range(store::RangeRequest::prefix(prefix.as_bytes().to_vec()))
            .await
            .unwrap();
        assert!(
            left.kvs.is_empty(),
            "{prefix} still has {} keys",
            left.kvs.len()
        );
    }
    eventually("TornDown", || async {
        reasons(&root).await.iter().any(|r| r == "TornDown")
    })
    .await;
}
