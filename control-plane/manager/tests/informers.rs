//! What the in-process informers keep of each object: never `managedFields` (upstream's
//! controller manager trims them from every informer), and for a projected informer only what
//! its projection returns, whether it watches full objects or metadata only.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams, PostParams};
use runtime::informer::Informer;
use runtime::resource::{self, CONFIG_MAPS};
use serde_json::{Value, json};

fn only_name_and_uid(obj: Value) -> Value {
    json!({"metadata": {
        "name": obj.pointer("/metadata/name"),
        "namespace": obj.pointer("/metadata/namespace"),
        "uid": obj.pointer("/metadata/uid"),
    }})
}

async fn cached(informer: &Informer, name: &str) -> Arc<Value> {
    let cache = informer.cache();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(obj) = cache.get("default", name) {
                return obj;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} not cached; cache: {:?}", cache.list()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informers_drop_managed_fields_and_keep_only_their_projection() {
    let store: Arc<dyn store::Store> = Arc::new(store::MemoryStore::default());
    let api = apiserver::Api::new(store);
    api.ensure_cluster("t").await.unwrap();
    let client = kube::Client::new(
        apiserver::local::LocalService::new(apiserver::router(api), "t"),
        "default",
    );
    let cms = CONFIG_MAPS.api(&client, Some("default"));
    let cm = |name: &str| {
        resource::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"a": "b"}},
            "data": {"k": "v"},
        }))
        .unwrap()
    };
    cms.create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();

    let (_stop, stop) = tokio::sync::watch::channel(false);
    let full = Informer::new(CONFIG_MAPS, Vec::new());
    let meta = Informer::metadata(CONFIG_MAPS).projected(only_name_and_uid);
    let projected = Informer::new(CONFIG_MAPS, Vec::new()).projected(only_name_and_uid);
    for i in [&full, &meta, &projected] {
        i.spawn(client.clone(), stop.clone());
    }
    // One object from the initial list, one from the watch (created, then patched).
    cms.create(&PostParams::default(), &cm("after"))
        .await
        .unwrap();
    cms.patch(
        "after",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    let live = cms.get("after").await.unwrap();
    assert!(
        live.metadata.managed_fields.is_some(),
        "the server tracks fields"
    );

    for name in ["before", "after"] {
        let obj = cached(&full, name).await;
        assert!(obj.pointer("/metadata/managedFields").is_none(), "{obj}");
        assert_eq!(obj.pointer("/metadata/labels/a"), Some(&json!("b")));
        for informer in [&meta, &projected] {
            let obj = cached(informer, name).await;
            let keys: Vec<&String> = obj["metadata"].as_object().unwrap().keys().collect();
            assert_eq!(keys, ["name", "namespace", "uid"], "{obj}");
            assert_eq!(obj.as_object().unwrap().len(), 1, "{obj}");
        }
    }
    // The watch's update reached the full cache.
    tokio::time::timeout(Duration::from_secs(10), async {
        while full.cache().get("default", "after").unwrap()["data"]["k"] != "w" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{}", full.cache().get("default", "after").unwrap()));
}
