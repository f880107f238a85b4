//! Stock client libraries against a real `berth server`: the official Python client and kube-rs,
//! listing with pagination, watching from a resourceVersion, and handling 410 Gone.

mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use support::{Replica, free_port};

async fn server(dir: &std::path::Path) -> (Replica, std::path::PathBuf) {
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let replica = Replica::start(
        1,
        &addr,
        &dir.join("data"),
        &["--compaction-interval-secs".into(), "1".into()],
    );
    replica.wait_ready(Duration::from_secs(30)).await;
    let kubeconfig = dir.join("data/admin.kubeconfig");
    while !kubeconfig.exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (replica, kubeconfig)
}

/// The Python interpreter with the `kubernetes` package, installed by `.ci/test`.
fn python() -> std::path::PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    let p = std::path::Path::new(&home).join(".cache/berth/py-kubernetes/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run .ci/test, which installs the Python kubernetes client",
        p.display()
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client() {
    let dir = tempfile::tempdir().unwrap();
    let (_replica, kubeconfig) = server(dir.path()).await;
    // The runner's manifest dir first: a binary from a shared target dir may have been built
    // in another clone.
    let script = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        )
        .join("tests/clients/python_client.py");
    let out = tokio::process::Command::new(python())
        .arg(&script)
        .arg(&kubeconfig)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("python client: ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_client() {
    let dir = tempfile::tempdir().unwrap();
    let (_replica, kubeconfig) = server(dir.path()).await;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..12 {
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": format!("rs-{i:02}")}}))
                .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    // Pagination.
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(5);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await.unwrap();
        names.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    // The namespace also holds `kube-root-ca.crt`, which the root CA publisher adds.
    names.retain(|n| n.starts_with("rs-"));
    assert_eq!(names.len(), 12);
    // Watch resumed from the list's resourceVersion sees later changes only.
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "rs-late"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(c)) => assert_eq!(c.metadata.name.as_deref(), Some("rs-late")),
        other => panic!("unexpected {other:?}"),
    }
    // After compaction the old resourceVersion is gone: an ERROR event with 410.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": "rs-2"}})).unwrap(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut old = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match old.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // kube-runtime's watcher relists on 410 and carries on.
    let mut w =
        kube::runtime::watcher(cms.clone(), kube::runtime::watcher::Config::default()).boxed();
    let mut initial = 0;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap()
    {
        match ev.unwrap() {
            kube::runtime::watcher::Event::InitApply(cm)
                if cm
                    .metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("rs-")) =>
            {
                initial += 1
            }
            kube::runtime::watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, 14);
}
