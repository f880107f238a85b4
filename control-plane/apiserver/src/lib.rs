//! Berth's API server: the HTTP front of the control plane.
//!
//! Today it serves the health endpoints (`/healthz`, `/livez`, `/readyz`) and `/version`, in the
//! forms Kubernetes clients expect. The Kubernetes resource API is built on this router.
//!
//! What it is not: it holds no state of its own and runs no control loops; everything it knows
//! comes from the [`store::Store`] it is given.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use store::Store;

/// The Kubernetes version Berth reports and aims to behave as.
pub const KUBERNETES_VERSION: (u32, u32, u32) = (1, 33, 0);

/// How long `/readyz` waits for the store before calling it unready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `/version`'s body, as `k8s.io/apimachinery/pkg/version.Info`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    major: String,
    minor: String,
    git_version: String,
    git_commit: String,
    git_tree_state: String,
    build_date: String,
    go_version: String,
    compiler: String,
    platform: String,
}

impl VersionInfo {
    /// This build's version.
    pub fn current() -> Self {
        let (major, minor, patch) = KUBERNETES_VERSION;
        VersionInfo {
            major: major.to_string(),
            minor: minor.to_string(),
            git_version: format!(
                "v{major}.{minor}.{patch}+berth.{}",
                env!("CARGO_PKG_VERSION")
            ),
            git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into(),
            git_tree_state: "clean".into(),
            build_date: option_env!("BERTH_BUILD_DATE")
                .unwrap_or("1970-01-01T00:00:00Z")
                .into(),
            go_version: "none (Rust)".into(),
            compiler: "rustc".into(),
            platform: format!("{}/{}", std::env::consts::OS, go_arch()),
        }
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The API server's router over `store`.
pub fn router(store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/healthz", get(live))
        .route("/livez", get(live))
        .route("/readyz", get(ready))
        .route("/version", get(version))
        .with_state(store)
}

async fn live() -> &'static str {
    "ok"
}

/// Ready when the store answers a status request in time (for the raft store: a leader is known).
async fn ready(State(store): State<Arc<dyn Store>>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, store.status()).await {
        Ok(Ok(status)) if status.leader_id.is_some() => "ok".into_response(),
        Ok(Ok(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]etcd failed: no store leader elected\nreadyz check failed\n",
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("[-]etcd failed: {e}\nreadyz check failed\n"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]etcd failed: store did not answer in time\nreadyz check failed\n",
        )
            .into_response(),
    }
}

async fn version() -> Json<VersionInfo> {
    Json(VersionInfo::current())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(app: Router, path: &str) -> (StatusCode, String) {
        let resp = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn health_and_version() {
        let app = router(Arc::new(store::MemoryStore::default()));
        assert_eq!(
            get(app.clone(), "/healthz").await,
            (StatusCode::OK, "ok".into())
        );
        assert_eq!(
            get(app.clone(), "/readyz").await,
            (StatusCode::OK, "ok".into())
        );
        let (code, body) = get(app, "/version").await;
        assert_eq!(code, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "33");
        assert!(v["gitVersion"].as_str().unwrap().starts_with("v1.33.0"));
    }
}
