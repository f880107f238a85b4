//! The management kinds (`berth.dev/v1` Cluster and NodePool) through the router: served like
//! built-in resources in the root cluster, and unknown in tenant clusters.

use std::sync::Arc;

use apiserver::{Api, request, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const CLUSTERS: &str = "/apis/berth.dev/v1/namespaces/default/clusters";
const POOLS: &str = "/apis/berth.dev/v1/namespaces/default/nodepools";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

async fn app() -> Router {
    let api = Api::new(Arc::new(store::MemoryStore::default()));
    api.ensure_cluster(request::ROOT_CLUSTER).await.unwrap();
    api.ensure_cluster("t1").await.unwrap();
    // Every request as a member of system:masters.
    let admin = apiserver::auth::UserInfo::controller_manager();
    router(api).layer(axum::Extension(apiserver::auth::Authenticated(Arc::new(
        admin,
    ))))
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    accept: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    call(app, "GET", path, None, None).await
}

fn cluster(name: &str) -> Value {
    json!({"apiVersion": "berth.dev/v1", "kind": "Cluster", "metadata": {"name": name},
        "spec": {"cloud": "aws", "region": "eu-west-1", "kubernetesVersion": "1.33"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_created_defaulted_listed_and_given_status() {
    let app = app().await;
    let (code, created) = call(&app, "POST", CLUSTERS, None, Some(cluster("prod"))).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["spec"]["serviceCIDR"], "10.96.0.0/12");
    assert_eq!(created["spec"]["podCIDR"], "10.244.0.0/16");
    assert_eq!(created["spec"]["apiAccess"]["anonymousHealth"], true);
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["metadata"]["namespace"], "default");

    let (code, got) = get(&app, &format!("{CLUSTERS}/prod")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(got["kind"], "Cluster");
    assert_eq!(got["apiVersion"], "berth.dev/v1");

    // Status goes through the status subresource only.
    let mut with_status = got.clone();
    with_status["status"] = json!({"phase": "Ready", "clusterID": "default:prod",
        "endpoint": "https://127.0.0.1:6443/clusters/default:prod",
        "kubernetesVersion": "v1.33.0", "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Serving",
            "message": "the API answers", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    let (code, updated) = call(
        &app,
        "PUT",
        &format!("{CLUSTERS}/prod/status"),
        None,
        Some(with_status.clone()),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(updated["status"]["clusterID"], "default:prod");
    assert_eq!(updated["metadata"]["generation"], 1);
    let mut bad_phase = updated.clone();
    bad_phase["status"]["phase"] = json!("Running");
    let (code, status) = call(
        &app,
        "PUT",
        &format!("{CLUSTERS}/prod/status"),
        None,
        Some(bad_phase),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "status.phase");
    let mut spec_edit = updated.clone();
    spec_edit["spec"]["kubernetesVersion"] = json!("1.34");
    spec_edit["status"]["phase"] = json!("Failed");
    let (code, updated) = call(
        &app,
        "PUT",
        &format!("{CLUSTERS}/prod"),
        None,
        Some(spec_edit),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(updated["status"]["phase"], "Ready", "status kept on update");
    assert_eq!(updated["spec"]["kubernetesVersion"], "1.34");
    assert_eq!(updated["metadata"]["generation"], 2);

    // A watch from the start replays the object as it is now.
    let req = Request::get(format!(
        "{CLUSTERS}?watch=1&resourceVersion=0&timeoutSeconds=1"
    ))
    .body(Body::empty())
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let first: Value =
        serde_json::from_slice(bytes.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["spec"]["kubernetesVersion"], "1.34");

    let (code, list) = get(&app, "/apis/berth.dev/v1/clusters").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(list["kind"], "ClusterList");
    assert_eq!(list["items"][0]["metadata"]["name"], "prod");

    let (code, table) = call(&app, "GET", CLUSTERS, Some(TABLE), None).await;
    assert_eq!(code, StatusCode::OK, "{table}");
    assert_eq!(table["kind"], "Table");
    let headers: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        [
            "Name", "Cloud", "Region", "Version", "Phase", "Endpoint", "Age"
        ]
    );
    let cells = &table["rows"][0]["cells"];
    assert_eq!(
        cells.as_array().unwrap()[..6],
        json!([
            "prod",
            "aws",
            "eu-west-1",
            "v1.33.0",
            "Ready",
            "https://127.0.0.1:6443/clusters/default:prod"
        ])
        .as_array()
        .unwrap()[..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_immutable_changes_are_refused_with_422() {
    let app = app().await;
    let mut bad = cluster("x");
    bad["spec"]["cloud"] = json!("azure");
    let (code, status) = call(&app, "POST", CLUSTERS, None, Some(bad)).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["kind"], "Cluster");
    assert_eq!(status["details"]["group"], "berth.dev");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.cloud");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("Cluster \"x\" is invalid: spec.cloud: Unsupported value"),
        "{status}"
    );

    let long = cluster(&"a".repeat(41));
    let (code, status) = call(&app, "POST", CLUSTERS, None, Some(long)).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");

    let (code, _) = call(&app, "POST", CLUSTERS, None, Some(cluster("prod"))).await;
    assert_eq!(code, StatusCode::CREATED);
    let (_, mut current) = get(&app, &format!("{CLUSTERS}/prod")).await;
    current["spec"]["region"] = json!("us-east-1");
    let (code, status) = call(
        &app,
        "PUT",
        &format!("{CLUSTERS}/prod"),
        None,
        Some(current),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .ends_with("spec.region: Invalid value: \"us-east-1\": field is immutable"),
        "{status}"
    );

    let pool = json!({"apiVersion": "berth.dev/v1", "kind": "NodePool",
        "metadata": {"name": "workers"},
        "spec": {"clusterName": "prod", "instanceType": "m7i.large", "minSize": 1, "maxSize": 3}});
    let (code, created) = call(&app, "POST", POOLS, None, Some(pool)).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["spec"]["desiredSize"], 1);
    let mut moved = created.clone();
    moved["spec"]["clusterName"] = json!("staging");
    let (code, status) = call(&app, "PUT", &format!("{POOLS}/workers"), None, Some(moved)).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.clusterName");
    let mut too_big = created.clone();
    too_big["spec"]["desiredSize"] = json!(5);
    let (code, status) = call(
        &app,
        "PUT",
        &format!("{POOLS}/workers"),
        None,
        Some(too_big),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.maxSize");

    let (code, table) = call(&app, "GET", POOLS, Some(TABLE), None).await;
    assert_eq!(code, StatusCode::OK);
    let cells = table["rows"][0]["cells"].as_array().unwrap();
    assert_eq!(
        cells[..5],
        json!(["workers", "prod", "m7i.large", 1, 0])
            .as_array()
            .unwrap()[..]
    );

    // Unknown fields are found through the type, as for built-in kinds.
    let mut typo = cluster("typo");
    typo["spec"]["regoin"] = json!("x");
    let (code, status) = call(
        &app,
        "POST",
        &format!("{CLUSTERS}?fieldValidation=Strict"),
        None,
        Some(typo),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{status}");
    assert!(status["message"].as_str().unwrap().contains("spec.regoin"));
}

fn group_names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            g.pointer("/metadata/name")
                .or_else(|| g.get("name"))
                .and_then(Value::as_str)
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_openapi_show_berth_dev_in_the_root_cluster_only() {
    let app = app().await;
    // Root: legacy and aggregated discovery, OpenAPI v3 and v2.
    let (_, apis) = get(&app, "/apis").await;
    assert!(group_names(&apis, "groups").contains(&"berth.dev".to_owned()));
    let (code, resources) = get(&app, "/apis/berth.dev/v1").await;
    assert_eq!(code, StatusCode::OK);
    let clusters = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "clusters")
        .unwrap();
    assert_eq!(clusters["kind"], "Cluster");
    assert_eq!(clusters["namespaced"], true);
    assert_eq!(clusters["shortNames"], json!(["bc"]));
    assert_eq!(clusters["categories"], json!(["berth"]));
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "clusters",
            "clusters/status",
            "nodepools",
            "nodepools/status"
        ]
    );
    let (_, aggregated) = call(&app, "GET", "/apis", Some(AGGREGATED), None).await;
    assert!(group_names(&aggregated, "items").contains(&"berth.dev".to_owned()));

    let (_, index) = get(&app, "/openapi/v3").await;
    assert!(index["paths"]["apis/berth.dev/v1"].is_object(), "{index}");
    let (code, doc) = get(&app, "/openapi/v3/apis/berth.dev/v1").await;
    assert_eq!(code, StatusCode::OK);
    let schema = &doc["components"]["schemas"]["dev.berth.v1.Cluster"];
    assert_eq!(
        schema["x-kubernetes-group-version-kind"],
        json!([{"group": "berth.dev", "version": "v1", "kind": "Cluster"}])
    );
    assert!(
        doc["components"]["schemas"]["dev.berth.v1.NodePoolSpec"]["properties"]["desiredSize"]
            ["description"]
            .as_str()
            .unwrap()
            .contains("Defaults to `minSize`")
    );
    assert!(doc["paths"]["/apis/berth.dev/v1/namespaces/{namespace}/clusters/{name}"].is_object());
    let (_, v2) = get(&app, "/openapi/v2").await;
    assert!(v2["definitions"]["dev.berth.v1.NodePool"].is_object());

    // A tenant cluster: the group does not exist there.
    let (code, _) = get(&app, "/clusters/t1/apis/berth.dev/v1/clusters").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = call(
        &app,
        "POST",
        "/clusters/t1/apis/berth.dev/v1/namespaces/default/clusters",
        None,
        Some(cluster("prod")),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    for path in [
        "/clusters/t1/apis/berth.dev",
        "/clusters/t1/apis/berth.dev/v1",
        "/clusters/t1/openapi/v3/apis/berth.dev/v1",
    ] {
        assert_eq!(get(&app, path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (code, apis) = get(&app, "/clusters/t1/apis").await;
    assert_eq!(code, StatusCode::OK);
    let groups = group_names(&apis, "groups");
    assert!(groups.contains(&"apps".to_owned()));
    assert!(!groups.contains(&"berth.dev".to_owned()), "{groups:?}");
    let (_, aggregated) = call(&app, "GET", "/clusters/t1/apis", Some(AGGREGATED), None).await;
    assert!(!group_names(&aggregated, "items").contains(&"berth.dev".to_owned()));
    let (_, index) = get(&app, "/clusters/t1/openapi/v3").await;
    assert!(index["paths"]["apis/apps/v1"].is_object());
    assert!(index["paths"].get("apis/berth.dev/v1").is_none());
    let (_, v2) = get(&app, "/clusters/t1/openapi/v2").await;
    assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    assert!(v2["definitions"].get("dev.berth.v1.Cluster").is_none());
}
