//! The router with two tenant clusters (`a`, `b`) and the root, and requests made as anyone:
//! an in-process administrator, a client certificate (as the TLS layer hands it over), a bearer
//! token, or nobody.

#![allow(dead_code)]

use std::sync::Arc;

use apiserver::auth::{Authenticated, PeerCertificates, UserInfo};
use apiserver::{Api, request, router};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde_json::Value;
use tower::ServiceExt;

/// Who sends a request.
#[derive(Clone)]
pub(crate) enum Who {
    /// An in-process member of system:masters.
    Admin,
    /// A client certificate chain (PEM).
    Cert(String),
    /// A bearer token.
    Token(String),
    /// No credentials.
    Anonymous,
}

/// An API server and its router.
pub(crate) struct Env {
    pub(crate) api: Arc<Api>,
    pub(crate) app: Router,
}

/// A fresh in-memory API server with the root cluster and tenant clusters `a` and `b`.
pub(crate) async fn env() -> Env {
    // No ServiceAccount loop runs here to make the `default` accounts pods need.
    let plugins = apiserver::admit::Plugins::without(&["ServiceAccount".into()]).unwrap();
    env_with(Api::new(Arc::new(store::MemoryStore::default())).with_admission_plugins(plugins))
        .await
}

/// `api` with the root cluster and tenant clusters `a` and `b`.
pub(crate) async fn env_with(api: Arc<Api>) -> Env {
    for id in [request::ROOT_CLUSTER, "a", "b"] {
        api.ensure_cluster(id).await.unwrap();
    }
    Env {
        app: router(Arc::clone(&api)),
        api,
    }
}

impl Env {
    /// Sends a request as `who`; the status code and the body (JSON, or the text as a string).
    pub(crate) async fn call(
        &self,
        who: &Who,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let content_type = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type);
        if let Who::Token(t) = who {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        match who {
            Who::Admin => {
                req.extensions_mut()
                    .insert(Authenticated(Arc::new(UserInfo::controller_manager())));
            }
            Who::Cert(pem) => {
                let chain: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(pem.as_bytes())
                        .collect::<Result<_, _>>()
                        .unwrap();
                req.extensions_mut()
                    .insert(PeerCertificates(Arc::new(chain)));
            }
            Who::Token(_) | Who::Anonymous => {}
        }
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (code, value)
    }

    /// Sends a request as `who` and expects a 2xx; returns the body.
    pub(crate) async fn ok(
        &self,
        who: &Who,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (code, v) = self.call(who, method, path, body).await;
        assert!((200..300).contains(&code), "{method} {path}: {code} {v}");
        v
    }

    /// A certificate of cluster `id` for `user` in `groups`.
    pub(crate) async fn cert(&self, id: &str, user: &str, groups: &[&str]) -> Who {
        let creds = self.api.credentials(id).await.unwrap().unwrap();
        let (cert, _key) = creds
            .issue_client_certificate(user, groups, std::time::Duration::from_secs(3600))
            .unwrap();
        Who::Cert(cert)
    }
}
