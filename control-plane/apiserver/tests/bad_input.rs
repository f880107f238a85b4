//! Hostile and broken requests: every one is answered with a `Status` of upstream's code and a
//! message saying what is wrong, and the server keeps serving.
//!
//! Decoding runs on a thread with a tokio worker's 2 MiB stack, so unbounded recursion would
//! crash the test instead of passing on a larger main-thread stack.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apiserver::{Api, request, router};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use futures::StreamExt as _;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const PODS: &str = "/api/v1/namespaces/default/pods";

async fn app() -> Router {
    // No ServiceAccount loop runs here to make the `default` accounts pods need.
    let api = Api::new(Arc::new(store::MemoryStore::default())).with_admission_plugins(
        apiserver::admit::Plugins::without(&["ServiceAccount".into()]).unwrap(),
    );
    api.ensure_cluster(request::ROOT_CLUSTER).await.unwrap();
    let admin = apiserver::auth::UserInfo::controller_manager();
    router(api).layer(axum::Extension(apiserver::auth::Authenticated(Arc::new(
        admin,
    ))))
}

async fn send(app: &Router, method: &str, path: &str, content_type: &str, body: Body) -> Status {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body)
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let code = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Status {
        code,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        retry_after,
    }
}

#[derive(Debug)]
struct Status {
    code: StatusCode,
    body: Value,
    retry_after: Option<String>,
}

impl Status {
    /// Asserts a `Status` of `code` and `reason` whose message contains `message`.
    #[track_caller]
    fn is(&self, code: u16, reason: &str, message: &str) {
        assert_eq!(self.code.as_u16(), code, "{self:?}");
        assert_eq!(self.body["kind"], "Status", "{self:?}");
        assert_eq!(self.body["code"], code, "{self:?}");
        assert_eq!(self.body["reason"], reason, "{self:?}");
        let got = self.body["message"].as_str().unwrap_or_default();
        assert!(got.contains(message), "{got:?} lacks {message:?}");
    }
}

/// Runs `f` in a current-thread runtime on a thread with a 2 MiB stack.
fn on_worker_stack<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f())
        })
        .unwrap()
        .join()
        .unwrap();
}

fn configmap(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}})
        .to_string()
}

fn pod(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "i"}]}})
    .to_string()
}

/// The server still creates objects after whatever came before.
async fn still_serves(app: &Router, name: &str) {
    let s = send(
        app,
        "POST",
        CONFIGMAPS,
        "application/json",
        Body::from(configmap(name)),
    )
    .await;
    assert_eq!(s.code, StatusCode::CREATED, "{s:?}");
}

#[test]
fn deeply_nested_bodies_are_bad_requests() {
    on_worker_stack(|| async {
        let app = app().await;
        let deep = |open: &str| Body::from(open.repeat(100_000));
        send(&app, "POST", CONFIGMAPS, "application/json", deep("["))
            .await
            .is(
                400,
                "BadRequest",
                "error decoding JSON: recursion limit exceeded at line 1 column 128",
            );
        send(
            &app,
            "POST",
            CONFIGMAPS,
            "application/json",
            deep("{\"a\":"),
        )
        .await
        .is(400, "BadRequest", "recursion limit exceeded");
        for open in ["[", "{\"a\":", "- ", "a:\n "] {
            send(&app, "POST", CONFIGMAPS, "application/yaml", deep(open))
                .await
                .is(400, "BadRequest", "error decoding YAML: ");
        }
        // Deep but within the limits, and valid: decoded, then refused for its content.
        let body = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        send(
            &app,
            "POST",
            CONFIGMAPS,
            "application/json",
            Body::from(body),
        )
        .await
        .is(400, "BadRequest", "");
        still_serves(&app, "after-deep").await;
    });
}

#[test]
fn deeply_nested_patches_are_bad_requests() {
    on_worker_stack(|| async {
        let app = app().await;
        still_serves(&app, "c").await;
        let s = send(&app, "POST", PODS, "application/json", Body::from(pod("p"))).await;
        assert_eq!(s.code, StatusCode::CREATED, "{s:?}");
        for (path, content_type, open) in [
            (CONFIGMAPS, "application/json-patch+json", "["),
            (CONFIGMAPS, "application/merge-patch+json", "{\"a\":"),
            (PODS, "application/strategic-merge-patch+json", "{\"spec\":"),
        ] {
            let target = format!("{path}/{}", if path == PODS { "p" } else { "c" });
            send(
                &app,
                "PATCH",
                &target,
                content_type,
                Body::from(open.repeat(100_000)),
            )
            .await
            .is(
                400,
                "BadRequest",
                "recursion limit exceeded at line 1 column",
            );
        }
        // Deep and valid merge patches apply (they are bounded by serde_json's limit).
        let deep = format!("{}1{}", "{\"a\":".repeat(120), "}".repeat(120));
        let patch = format!(
            "{{\"data\":null,\"metadata\":{{\"annotations\":{{\"x\":{}}}}}}}",
            json!(deep)
        );
        let s = send(
            &app,
            "PATCH",
            &format!("{CONFIGMAPS}/c"),
            "application/merge-patch+json",
            Body::from(patch),
        )
        .await;
        assert_eq!(s.code, StatusCode::OK, "{s:?}");
        still_serves(&app, "after-patches").await;
    });
}

#[tokio::test]
async fn patches_that_explode_are_too_large() {
    let app = app().await;
    still_serves(&app, "c").await;
    // Each copy doubles /data/x: 40 of them would need terabytes.
    let mut ops = vec![
        json!({"op": "add", "path": "/data/x", "value": "0123456789abcdef".repeat(64)}),
        json!({"op": "add", "path": "/metadata/annotations", "value": {}}),
    ];
    for i in 0..40 {
        ops.push(json!({"op": "copy", "from": "/metadata/annotations", "path": format!("/metadata/annotations/a{i}")}));
        ops.push(json!({"op": "copy", "from": "/data", "path": "/metadata/annotations/d"}));
        ops.push(json!({"op": "copy", "from": "/metadata/annotations", "path": "/data/y"}));
        ops.push(json!({"op": "remove", "path": "/data/y"}));
    }
    send(
        &app,
        "PATCH",
        &format!("{CONFIGMAPS}/c"),
        "application/json-patch+json",
        Body::from(Value::Array(ops).to_string()),
    )
    .await
    .is(
        413,
        "RequestEntityTooLarge",
        "Unable to complete the copy, the accumulated size increase of copy is",
    );
    // Too many operations, as upstream.
    let ops = vec![json!({"op": "test", "path": "/data/a", "value": "b"}); 10_001];
    send(
        &app,
        "PATCH",
        &format!("{CONFIGMAPS}/c"),
        "application/json-patch+json",
        Body::from(Value::Array(ops).to_string()),
    )
    .await
    .is(
        413,
        "RequestEntityTooLarge",
        "The allowed maximum operations in a JSON patch is 10000, got 10001",
    );
    still_serves(&app, "after-explosion").await;
}

#[tokio::test]
async fn yaml_alias_bombs_are_bad_requests() {
    let app = app().await;
    // "Billion laughs": nine levels of ten aliases each.
    let mut bomb = String::from("a0: &a0 [\"lol\"]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let started = std::time::Instant::now();
    send(
        &app,
        "POST",
        CONFIGMAPS,
        "application/yaml",
        Body::from(bomb),
    )
    .await
    .is(400, "BadRequest", "error decoding YAML: ");
    assert!(started.elapsed() < Duration::from_secs(10));
    still_serves(&app, "after-bomb").await;
}

#[tokio::test]
async fn invalid_utf8_is_a_bad_request() {
    let app = app().await;
    let body = configmap("u").replace("\"b\"", "\"b\u{1}\"").into_bytes();
    let mut body = body;
    let at = body.iter().position(|&b| b == 1).unwrap();
    body[at] = 0xff;
    send(
        &app,
        "POST",
        CONFIGMAPS,
        "application/json",
        Body::from(body.clone()),
    )
    .await
    .is(
        400,
        "BadRequest",
        "error decoding JSON: invalid unicode code point at line 1 column",
    );
    send(
        &app,
        "POST",
        CONFIGMAPS,
        "application/yaml",
        Body::from(body),
    )
    .await
    .is(400, "BadRequest", "error decoding YAML: ");
    // Escapes that are not characters.
    let body = configmap("u").replace("\"b\"", "\"\\ud800\"");
    send(
        &app,
        "POST",
        CONFIGMAPS,
        "application/json",
        Body::from(body),
    )
    .await
    .is(400, "BadRequest", "error decoding JSON: ");
    // In the path: percent-escapes match nothing, so no UTF-8 is ever decoded from it.
    send(
        &app,
        "GET",
        "/api/v1/namespaces/%ff%fe/configmaps",
        "application/json",
        Body::empty(),
    )
    .await
    .is(404, "NotFound", "");
    // In the query: decoded lossily, then refused as a selector.
    let s = send(
        &app,
        "GET",
        &format!("{CONFIGMAPS}?labelSelector=%ff%fe%3D%c0"),
        "application/json",
        Body::empty(),
    )
    .await;
    s.is(400, "BadRequest", "");
    still_serves(&app, "after-utf8").await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_too_large() {
    let app = app().await;
    let limit = apiserver::MAX_BODY_BYTES;
    // Declared length: refused before reading.
    let big = vec![b' '; limit + 1];
    send(
        &app,
        "POST",
        CONFIGMAPS,
        "application/json",
        Body::from(big),
    )
    .await
    .is(
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 3145728",
    );
    // Exactly at the limit: read (and then refused as an empty document).
    let at = vec![b' '; limit];
    send(&app, "POST", CONFIGMAPS, "application/json", Body::from(at))
        .await
        .is(400, "BadRequest", "EOF while parsing");
    // Chunked without end: refused once past the limit, having pulled no more than that.
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let chunks = futures::stream::repeat_with(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 64 * 1024]))
    });
    send(
        &app,
        "POST",
        CONFIGMAPS,
        "application/json",
        Body::from_stream(chunks),
    )
    .await
    .is(413, "RequestEntityTooLarge", "limit is 3145728");
    assert_eq!(pulled.load(Ordering::SeqCst), limit / (64 * 1024) + 1);
    still_serves(&app, "after-large").await;
}

#[tokio::test(start_paused = true)]
async fn bodies_that_do_not_arrive_time_out() {
    let app = app().await;
    // A few bytes, then nothing: the client stalls.
    let stalled =
        futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"{\"a\"")) })
            .chain(futures::stream::pending());
    let started = tokio::time::Instant::now();
    let s = send(
        &app,
        "POST",
        CONFIGMAPS,
        "application/json",
        Body::from_stream(stalled.boxed()),
    )
    .await;
    s.is(
        504,
        "Timeout",
        "request did not complete within the allotted timeout: the request body did not arrive within 60s",
    );
    assert_eq!(s.retry_after.as_deref(), Some("1"));
    assert_eq!(started.elapsed(), apiserver::handlers::BODY_READ_TIMEOUT);
    // A client that breaks off mid-body.
    let broken = futures::stream::iter([
        Ok(Bytes::from_static(b"{")),
        Err(std::io::Error::other("connection reset")),
    ]);
    send(
        &app,
        "POST",
        CONFIGMAPS,
        "application/json",
        Body::from_stream(broken),
    )
    .await
    .is(400, "BadRequest", "error reading the request body");
    still_serves(&app, "after-timeout").await;
}
