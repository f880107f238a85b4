//! The API served in-process: a tower service that hands requests straight to the router.
//!
//! Control loops hosted in the server are API clients like any other — their writes go through
//! routing, validation, admission and resourceVersion checks — but they need no socket, TLS
//! handshake or HTTP framing. [`LocalService`] is what a `kube::Client` sits on for that: it
//! addresses one logical cluster by prefixing `/clusters/<id>` to each request path, and carries
//! an identity ([`crate::auth::Authenticated`]) in place of credentials: by default the
//! controller manager's, a member of `system:masters`.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::Router;
use axum::http::{Request, Uri};
use axum::response::Response;
use tower::Service;

use crate::auth::{Authenticated, UserInfo};
use crate::request::ROOT_CLUSTER;

/// A tower service serving one logical cluster's API from the router, in-process.
#[derive(Clone, Debug)]
pub struct LocalService {
    router: Router,
    prefix: String,
    user: Authenticated,
}

impl LocalService {
    /// Serves `cluster` (the root cluster is [`ROOT_CLUSTER`]) from `router`, to the controller
    /// manager.
    pub fn new(router: Router, cluster: &str) -> Self {
        Self::as_user(router, cluster, UserInfo::controller_manager())
    }

    /// Serves `cluster` from `router` to `user`, whose requests are authorized as theirs.
    pub fn as_user(router: Router, cluster: &str, user: UserInfo) -> Self {
        let prefix = if cluster == ROOT_CLUSTER {
            String::new()
        } else {
            format!("/clusters/{cluster}")
        };
        LocalService {
            router,
            prefix,
            user: Authenticated(std::sync::Arc::new(user)),
        }
    }
}

/// The User-Agent of in-process requests that send none.
const IN_PROCESS_USER_AGENT: &str = "kube-controller-manager/v1.33.0 (linux/amd64) berth";

impl<B> Service<Request<B>> for LocalService
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as Service<Request<B>>>::Future;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(self.user.clone());
        // The in-process clients are the control loops: their writes are recorded in
        // managedFields under the component upstream runs them in.
        if !parts.headers.contains_key(axum::http::header::USER_AGENT) {
            parts.headers.insert(
                axum::http::header::USER_AGENT,
                axum::http::HeaderValue::from_static(IN_PROCESS_USER_AGENT),
            );
        }
        if !self.prefix.is_empty() {
            let path_and_query = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            if let Ok(uri) = format!("{}{path_and_query}", self.prefix).parse::<Uri>() {
                parts.uri = uri;
            }
        }
        self.router.call(Request::from_parts(parts, body))
    }
}
