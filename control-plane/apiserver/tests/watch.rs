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
use support::{Env, Who, env};
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_changes_reaches_a_watch_in_few_chunks_and_in_order() {
    let env = env().await;
    let path = "/clusters/a/api/v1/namespaces/default/configmaps";
    let mut body = watch_from_now(&env, path, "", "application/json").await;

    const N: usize = 40;
    for i in 0..N {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("c{i:02}")}, "data": {"i": i.to_string()}});
        env.ok(&Who::Admin, "POST", path, Some(cm)).await;
    }
    // Let the feed take in every change before the watch is read again.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (lines, chunks, pending) = read_lines(&mut body, N).await;
    let mut names = Vec::new();
    for line in &lines {
        let event: Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["type"], "ADDED", "{event}");
        names.push(
            event["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let expected: Vec<String> = (0..N).map(|i| format!("c{i:02}")).collect();
    assert_eq!(names, expected);
    assert!(pending.is_empty(), "every chunk ends with a whole line");
    assert!(chunks < N / 2, "{N} changes came in {chunks} chunks");
}

/// Opens a watch of the collection at `path` from its current resourceVersion (with `query`
/// appended, e.g. `&fieldSelector=...`), asking for `accept`, as the controller manager;
/// returns its body.
async fn watch_from_now(env: &Env, path: &str, query: &str, accept: &str) -> Body {
    let list = env.ok(&Who::Admin, "GET", path, None).await;
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap();
    let uri = format!("{path}?watch=true&resourceVersion={rv}{query}");
    let mut req = Request::builder()
        .uri(uri)
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(Authenticated(Arc::new(UserInfo::controller_manager())));
    let resp = env.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body()
}

/// Reads at least `n` watch lines from `body`, whole frames at a time. Returns the lines, how
/// many data frames carried them, and what followed the last whole line.
async fn read_lines(body: &mut Body, n: usize) -> (Vec<String>, usize, Vec<u8>) {
    let mut out = Vec::new();
    let mut chunks = 0;
    let mut pending = Vec::new();
    while out.len() < n {
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
            let line: Vec<u8> = pending.drain(..end + 1).collect();
            out.push(String::from_utf8(line).unwrap().trim_end().to_owned());
        }
    }
    (out, chunks, pending)
}

/// Reads `n` watch lines from `body`.
async fn lines(body: &mut Body, n: usize) -> Vec<String> {
    read_lines(body, n).await.0
}

/// The lines a watch sends are spliced from the stored bytes; they must be what the API
/// answers for the same object, in upstream's line layout, for plain and metadata-only watches
/// of one namespace (another namespace's changes share the feed and must not show).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_lines_show_each_change_as_the_api_does() {
    let env = env().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}});
    env.ok(
        &Who::Admin,
        "POST",
        "/clusters/a/api/v1/namespaces",
        Some(ns),
    )
    .await;
    let path = "/clusters/a/api/v1/namespaces/default/configmaps";
    let mut plain = watch_from_now(&env, path, "", "application/json").await;
    let metadata = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    let mut meta = watch_from_now(&env, path, "", metadata).await;

    let cm = |data: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "w", "labels": {"a": "b"}}, "data": {"k": data}})
    };
    let elsewhere = "/clusters/a/api/v1/namespaces/other/configmaps";
    env.ok(&Who::Admin, "POST", elsewhere, Some(cm("x"))).await;
    let created = env.ok(&Who::Admin, "POST", path, Some(cm("1"))).await;
    let mut update = created.clone();
    update["data"]["k"] = json!("2");
    let updated = env
        .ok(&Who::Admin, "PUT", &format!("{path}/w"), Some(update))
        .await;
    env.ok(&Who::Admin, "DELETE", &format!("{path}/w"), None)
        .await;
    let after_delete = env.ok(&Who::Admin, "GET", path, None).await;
    let deleted_rv = after_delete["metadata"]["resourceVersion"].clone();

    let plain = lines(&mut plain, 3).await;
    let meta = lines(&mut meta, 3).await;
    let mut deleted = updated.clone();
    deleted["metadata"]["resourceVersion"] = deleted_rv;
    for (i, (kind, object)) in [
        ("ADDED", &created),
        ("MODIFIED", &updated),
        ("DELETED", &deleted),
    ]
    .into_iter()
    .enumerate()
    {
        let prefix = format!("{{\"type\":\"{kind}\",\"object\":");
        assert!(plain[i].starts_with(&prefix), "{}", plain[i]);
        assert!(meta[i].starts_with(&prefix), "{}", meta[i]);
        let line: Value = serde_json::from_str(&plain[i]).unwrap();
        assert_eq!(&line["object"], object, "{kind}");
        let line: Value = serde_json::from_str(&meta[i]).unwrap();
        assert_eq!(
            line["object"],
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                   "metadata": object["metadata"]}),
            "{kind}"
        );
    }
}

/// A watch for one name is decided from each change's key: it sees that object's changes and
/// nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_for_one_name_sees_only_that_object() {
    let env = env().await;
    let path = "/clusters/a/api/v1/namespaces/default/configmaps";
    let selector = "&fieldSelector=metadata.name%3Dkeep";
    let mut body = watch_from_now(&env, path, selector, "application/json").await;
    for name in ["skip", "keep", "skip2"] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        env.ok(&Who::Admin, "POST", path, Some(cm)).await;
    }
    env.ok(&Who::Admin, "DELETE", &format!("{path}/skip"), None)
        .await;
    env.ok(&Who::Admin, "DELETE", &format!("{path}/keep"), None)
        .await;
    let seen: Vec<(String, String)> = lines(&mut body, 2)
        .await
        .iter()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            let name = e["object"]["metadata"]["name"].as_str().unwrap().to_owned();
            (e["type"].as_str().unwrap().to_owned(), name)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED".into(), "keep".into()),
            ("DELETED".into(), "keep".into())
        ]
    );
}

/// A watch's initial events are spliced from the stored objects when it selects everything;
/// they must be byte for byte the lines of a watch that decodes them (one with a selector that
/// every object matches), and what the API answers for each object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_events_are_the_objects_as_the_api_answers_them() {
    let env = env().await;
    let path = "/clusters/a/api/v1/namespaces/default/configmaps";
    let mut objects = Vec::new();
    for i in 0..3 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("i{i}"), "labels": {"n": i.to_string()}},
                        "data": {"k": "v \"quoted\" é"}});
        objects.push(env.ok(&Who::Admin, "POST", path, Some(cm)).await);
    }
    let open = |query: &'static str| {
        let app = env.app.clone();
        async move {
            let mut req = Request::builder()
                .uri(format!("{path}?watch=true{query}"))
                .body(Body::empty())
                .unwrap();
            req.extensions_mut()
                .insert(Authenticated(Arc::new(UserInfo::controller_manager())));
            let resp = app.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.into_body()
        }
    };
    let spliced = lines(&mut open("").await, 3).await;
    let decoded = lines(&mut open("&labelSelector=n").await, 3).await;
    assert_eq!(spliced, decoded);
    for (line, object) in spliced.iter().zip(&objects) {
        assert!(
            line.starts_with("{\"type\":\"ADDED\",\"object\":"),
            "{line}"
        );
        let line: Value = serde_json::from_str(line).unwrap();
        assert_eq!(&line["object"], object);
    }
}
