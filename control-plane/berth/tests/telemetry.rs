//! Traces reach an OTLP collector when one is configured: a request to the API and the store
//! write under it arrive as spans.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use support::{Replica, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_traced_down_to_the_store_write() {
    // A stand-in OTLP/HTTP collector that keeps every body it receives.
    let received: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().unwrap().extend_from_slice(&body);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let replica = Replica::start(
        1,
        &addr,
        &dir.path().join("data"),
        &["--otlp-endpoint".into(), format!("http://{collector}")],
    );
    replica.wait_ready(Duration::from_secs(30)).await;
    let kubeconfig = dir.path().join("data/admin.kubeconfig");
    while !kubeconfig.exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: traced\n  namespace: default\n",
    )
    .unwrap();
    let out = tokio::process::Command::new("kubectl")
        .args(["create", "-f"])
        .arg(&manifest)
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", dir.path())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "kubectl create failed");
    // The batch exporter sends within seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = received.lock().unwrap().clone();
        let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        if has(b"request") && has(b"store.txn") && has(b"configmaps") && has(b"berth") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no request and store spans reached the collector ({} bytes)",
            body.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
