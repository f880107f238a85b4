//! A watch sends the changes that pile up while it writes as one chunk, in order, without
//! losing or repeating any.

mod support;

use std::sync::Arc;
use std::time::Duration;

use apiserver::auth::{Authenticated, UserInfo};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::{Who, env};
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_changes_reaches_a_watch_in_few_chunks_and_in_order() {
    let env = env().await;
    let path = "/clusters/a/api/v1/namespaces/default/configmaps";
    let list = env.ok(&Who::Admin, "GET", path, None).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut req = Request::builder()
        .uri(format!("{path}?watch=true&resourceVersion={rv}"))
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(Authenticated(Arc::new(UserInfo::controller_manager())));
    let resp = env.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();

    const N: usize = 40;
    for i in 0..N {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("c{i:02}")}, "data": {"i": i.to_string()}});
        env.ok(&Who::Admin, "POST", path, Some(cm)).await;
    }
    // Let the feed take in every change before the watch is read again.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut names = Vec::new();
    let mut chunks = 0;
    let mut pending = Vec::new();
    while names.len() < N {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("the watch sends every change")
            .unwrap()
            .unwrap();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        chunks += 1;
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(event["type"], "ADDED", "{event}");
            names.push(
                event["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    let expected: Vec<String> = (0..N).map(|i| format!("c{i:02}")).collect();
    assert_eq!(names, expected);
    assert!(pending.is_empty(), "every chunk ends with a whole line");
    assert!(chunks < N / 2, "{N} changes came in {chunks} chunks");
}
