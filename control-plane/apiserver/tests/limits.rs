//! Per-cluster limits and the audit log, through the router: a tenant over its request rate,
//! watch or storage limits is refused the way upstream refuses (429 with `Retry-After`, 403 for
//! storage) while other tenants are served; every request leaves one audit line.

use std::sync::Arc;
use std::time::Duration;

use apiserver::auth::PeerCertificates;
use apiserver::{Api, ClusterLimits, request, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn api(defaults: fairness::Limits) -> Arc<Api> {
    api_with_queue(defaults, fairness::Config::default().queue_length).await
}

/// An API whose tenants may have `queue` requests waiting (for a seat, or for a token of
/// their rate).
async fn api_with_queue(defaults: fairness::Limits, queue: usize) -> Arc<Api> {
    api_with(fairness::Config {
        defaults,
        queue_length: queue,
        ..Default::default()
    })
    .await
}

/// An API with fairness `config` and the root cluster and tenants `a` and `b`.
async fn api_with(config: fairness::Config) -> Arc<Api> {
    let api = Api::with_options(
        Arc::new(store::MemoryStore::default()),
        Default::default(),
        config,
    );
    for id in [request::ROOT_CLUSTER, "a", "b"] {
        api.ensure_cluster(id).await.unwrap();
    }
    api
}

/// The admin certificate chain of cluster `id`.
async fn admin(api: &Api, id: &str) -> PeerCertificates {
    let creds = api.credentials(id).await.unwrap().unwrap();
    let (pem, _) = creds
        .issue_client_certificate("admin", &["system:masters"], Duration::from_secs(600))
        .unwrap();
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    PeerCertificates(Arc::new(chain))
}

async fn send(
    app: &Router,
    who: &PeerCertificates,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Response<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    req.extensions_mut().insert(who.clone());
    app.clone().oneshot(req).await.unwrap()
}

async fn json_of(resp: Response<Body>) -> Value {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

#[tokio::test(start_paused = true)]
async fn a_tenant_over_its_rate_waits_its_turn_then_gets_429_while_others_are_served() {
    let api = api_with_queue(
        fairness::Limits {
            requests_per_second: 2,
            burst: 2,
            ..Default::default()
        },
        2,
    )
    .await;
    let app = router(Arc::clone(&api));
    let (a, b) = (admin(&api, "a").await, admin(&api, "b").await);
    let path = |id: &str| format!("/clusters/{id}/api/v1/namespaces/default/configmaps");
    for _ in 0..2 {
        assert_eq!(send(&app, &a, "GET", &path("a"), None).await.status(), 200);
    }
    // Over the rate: two requests wait for their tokens (0.5 s apart), as upstream's fair
    // queuing holds requests; the third finds the queue full and is refused.
    let start = tokio::time::Instant::now();
    let a_path = path("a");
    let (first, second, refused) = tokio::join!(
        async {
            let r = send(&app, &a, "GET", &a_path, None).await;
            (r.status(), start.elapsed())
        },
        async {
            let r = send(&app, &a, "GET", &a_path, None).await;
            (r.status(), start.elapsed())
        },
        send(&app, &a, "GET", &a_path, None),
    );
    assert_eq!(first, (StatusCode::OK, Duration::from_millis(500)));
    assert_eq!(second, (StatusCode::OK, Duration::from_millis(1000)));
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "2");
    let status = json_of(refused).await;
    assert_eq!(status["reason"], "TooManyRequests");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("cluster a is limited to 2 requests per second"),
        "{status}"
    );
    // b has its own budget.
    assert_eq!(send(&app, &b, "GET", &path("b"), None).await.status(), 200);
    // a's budget refills.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(send(&app, &a, "GET", &path("a"), None).await.status(), 200);
    // The Cluster's own limits override the defaults.
    api.set_cluster_limits(
        "a",
        Some(ClusterLimits {
            requests_per_second: Some(0),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    for _ in 0..20 {
        assert_eq!(send(&app, &a, "GET", &path("a"), None).await.status(), 200);
    }
}

#[tokio::test]
async fn storage_and_watch_limits_are_per_cluster() {
    let api = api(fairness::Limits {
        requests_per_second: 0,
        max_watches: 1,
        ..Default::default()
    })
    .await;
    let app = router(Arc::clone(&api));
    let (a, b) = (admin(&api, "a").await, admin(&api, "b").await);
    // Let the initial count of a's seed objects land, then allow three more objects.
    send(&app, &a, "GET", "/clusters/a/api/v1/namespaces", None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seeded = api.usage("a").objects;
    assert!(
        seeded > 10,
        "namespaces and bootstrap RBAC are counted: {seeded}"
    );
    api.set_cluster_limits(
        "a",
        Some(ClusterLimits {
            max_objects: Some(seeded + 3),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let cms = "/clusters/a/api/v1/namespaces/default/configmaps";
    for i in 0..3 {
        let resp = send(&app, &a, "POST", cms, Some(configmap(&format!("c{i}")))).await;
        assert_eq!(resp.status(), 201);
    }
    let refused = send(&app, &a, "POST", cms, Some(configmap("c3"))).await;
    assert_eq!(refused.status(), 403);
    let status = json_of(refused).await;
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("exceeded quota"),
        "{status}"
    );
    // Deleting makes room again; b is not affected at all.
    let resp = send(&app, &a, "DELETE", &format!("{cms}/c0"), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        send(&app, &a, "POST", cms, Some(configmap("c3")))
            .await
            .status(),
        201
    );
    let resp = send(
        &app,
        &b,
        "POST",
        "/clusters/b/api/v1/namespaces/default/configmaps",
        Some(configmap("x")),
    )
    .await;
    assert_eq!(resp.status(), 201);

    // One watch at a time for a; b watches freely; a closed watch frees its slot.
    let watch =
        |id: &str| format!("/clusters/{id}/api/v1/namespaces/default/configmaps?watch=true");
    let first = send(&app, &a, "GET", &watch("a"), None).await;
    assert_eq!(first.status(), 200);
    let second = send(&app, &a, "GET", &watch("a"), None).await;
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    let other = send(&app, &b, "GET", &watch("b"), None).await;
    assert_eq!(other.status(), 200);
    drop(first);
    assert_eq!(send(&app, &a, "GET", &watch("a"), None).await.status(), 200);
}

#[tokio::test]
async fn every_request_leaves_one_audit_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let auditor =
        audit::Auditor::spawn(audit::Sink::File(path.clone()), audit::Policy::default()).unwrap();
    let api = api(Default::default()).await.with_auditor(auditor.clone());
    let app = router(Arc::clone(&api));
    let a = admin(&api, "a").await;
    let cms = "/clusters/a/api/v1/namespaces/default/configmaps";
    assert_eq!(
        send(&app, &a, "POST", cms, Some(configmap("audited")))
            .await
            .status(),
        201
    );
    assert_eq!(
        send(&app, &a, "GET", &format!("{cms}/missing"), None)
            .await
            .status(),
        404
    );
    let stranger = PeerCertificates(Arc::new(vec![]));
    assert_eq!(
        send(&app, &stranger, "GET", "/clusters/b/api", None)
            .await
            .status(),
        401
    );
    auditor.flush().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    let create = &lines[0];
    assert_eq!(create["kind"], "Event");
    assert_eq!(create["cluster"], "a");
    assert_eq!(create["user"]["username"], "admin");
    assert!(
        create["user"]["groups"]
            .to_string()
            .contains("system:masters")
    );
    assert_eq!(create["verb"], "create");
    assert_eq!(create["objectRef"]["resource"], "configmaps");
    assert_eq!(create["objectRef"]["namespace"], "default");
    assert_eq!(create["responseStatus"]["code"], 201);
    assert!(create["latency"].as_str().unwrap().ends_with("ms"));
    assert_eq!(lines[1]["objectRef"]["name"], "missing");
    assert_eq!(lines[1]["responseStatus"]["code"], 404);
    assert_eq!(lines[2]["cluster"], "b");
    assert_eq!(lines[2]["responseStatus"]["code"], 401);
}

/// Reads the next chunk of a streaming body (a watch), however long it takes.
async fn next_chunk(body: &mut Body) -> Option<bytes::Bytes> {
    loop {
        let frame = body.frame().await?.unwrap();
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

#[tokio::test]
async fn lists_and_watch_starts_take_turns_per_tenant_until_their_objects_are_sent() {
    let api = api_with(fairness::Config {
        heavy_reads: 1,
        queue_wait: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let app = router(Arc::clone(&api));
    let (a, b) = (admin(&api, "a").await, admin(&api, "b").await);
    let url = "/clusters/a/api/v1/namespaces/default/configmaps";
    for i in 0..3 {
        let r = send(&app, &a, "POST", url, Some(configmap(&format!("c{i}")))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // A watch with initial events holds A's one turn until its client has taken them.
    let watch = send(&app, &a, "GET", &format!("{url}?watch=true"), None).await;
    assert_eq!(watch.status(), StatusCode::OK);
    let mut body = watch.into_body();
    let list = {
        let (app, a) = (app.clone(), a.clone());
        tokio::spawn(async move { send(&app, &a, "GET", url, None).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !list.is_finished(),
        "A's list ran while A's watch held the turn"
    );
    // Another tenant's list does not wait for A's turn.
    let other = send(&app, &b, "GET", "/clusters/b/api/v1/configmaps", None).await;
    assert_eq!(other.status(), StatusCode::OK);
    // Once the watch's client has read the three objects and asks for more, the turn is over.
    let mut added = 0;
    while added < 3 {
        let chunk = next_chunk(&mut body).await.expect("the initial events");
        added += String::from_utf8_lossy(&chunk).matches("\"ADDED\"").count();
    }
    let reader = tokio::spawn(async move { next_chunk(&mut body).await });
    let list = tokio::time::timeout(Duration::from_secs(1), list)
        .await
        .expect("the list runs once the watch's initial events are sent")
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(json_of(list).await["items"].as_array().unwrap().len(), 3);
    // A turn not freed in time: 429 with Retry-After, as for a seat.
    let opened = std::time::Instant::now();
    let holder = send(&app, &a, "GET", &format!("{url}?watch=true"), None).await;
    let refused = send(&app, &a, "GET", url, None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    // A client that never reads its initial events gives its turn up after 5 s all the same:
    // a list sent at 4 s (it may wait 2 s) runs.
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(opened.elapsed())).await;
    let list = send(&app, &a, "GET", url, None).await;
    assert_eq!(list.status(), StatusCode::OK);
    assert!(opened.elapsed() >= Duration::from_secs(5));
    drop((holder, reader));
}
