//! Authentication: who is asking, of which logical cluster.
//!
//! Every logical cluster has its own credentials ([`credentials::ClusterCredentials`]): a client
//! CA and a service-account signing key. A request is authenticated with the credentials of the
//! cluster it addresses and no other, so a certificate or token of cluster A is not a user of
//! cluster B. In upstream's order:
//! - **x509 client certificates.** The TLS layer accepts any certificate whose key the client
//!   proves it holds and hands the chain to the request ([`PeerCertificates`]); here the chain is
//!   verified against the addressed cluster's CA. The CN is the user, each O a group.
//! - **Bearer tokens.** Service-account JWTs signed by the cluster (see [`tokens`]), valid only
//!   while the service account and the object the token is bound to exist with the uids the token
//!   names; bootstrap tokens (Secrets `bootstrap-token-<id>` in `kube-system`).
//! - **OpenID Connect ID tokens** of the configured issuer ([`oidc`]), for customers' SSO.
//! - **Nothing:** `system:anonymous` in `system:unauthenticated`, which authorization lets through
//!   to the health and version paths only.
//!
//! Requests the server makes to itself (the control loops, through [`crate::local`]) carry an
//! [`Authenticated`] identity instead; it cannot come from the network, because request
//! extensions are not read off the wire.

pub mod credentials;
pub mod kubeconfig;
pub mod oidc;
pub(crate) mod reviews;
pub mod tokens;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::Extensions;
use axum::http::HeaderMap;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use serde_json::Value;

use crate::Api;
use crate::error::ApiError;
use crate::storage;
use credentials::ClusterCredentials;

/// Every authenticated user is in this group.
pub const AUTHENTICATED: &str = "system:authenticated";
/// Anonymous requests are in this group.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The anonymous user.
pub const ANONYMOUS: &str = "system:anonymous";
/// Members may do anything (upstream binds `cluster-admin` to it).
pub const SYSTEM_MASTERS: &str = "system:masters";
/// The identity of the control loops the server runs for every cluster.
pub const CONTROLLER_MANAGER: &str = "system:berth:controller-manager";

/// Who a request comes from (upstream's `user.Info`, as `authentication.k8s.io/v1` `UserInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UserInfo {
    /// User name.
    #[serde(rename = "username")]
    pub name: String,
    /// A unique id, when the authenticator knows one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes (service-account tokens record the pod and token id here).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// An authenticated user: `groups` plus `system:authenticated`.
    pub fn authenticated(name: String, uid: String, mut groups: Vec<String>) -> Self {
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_owned());
        }
        UserInfo {
            name,
            uid,
            groups,
            extra: BTreeMap::new(),
        }
    }

    /// The anonymous user.
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS.to_owned(),
            groups: vec![UNAUTHENTICATED.to_owned()],
            ..Default::default()
        }
    }

    /// The identity of the server's own control loops (a member of `system:masters`).
    pub fn controller_manager() -> Self {
        Self::authenticated(
            CONTROLLER_MANAGER.to_owned(),
            String::new(),
            vec![SYSTEM_MASTERS.to_owned()],
        )
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Whether this is the anonymous user.
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS
    }
}

/// A request extension carrying an identity established in-process.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<UserInfo>);

/// A request extension carrying the client certificate chain the TLS handshake received
/// (verified for key possession only; the chain is verified per cluster here).
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

fn unauthorized() -> ApiError {
    ApiError::unauthorized()
}

/// Establishes who sent a request to the cluster of `creds`.
pub(crate) async fn authenticate(
    api: &Api,
    creds: &ClusterCredentials,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<UserInfo, ApiError> {
    if let Some(Authenticated(user)) = extensions.get::<Authenticated>() {
        return Ok(UserInfo::clone(user));
    }
    let mut failure = None;
    if let Some(PeerCertificates(chain)) = extensions.get::<PeerCertificates>() {
        match creds.verify_client(chain) {
            Ok(user) => return Ok(user),
            Err(e) => failure = Some(e.to_string()),
        }
    }
    if let Some(token) = bearer(headers)? {
        return match authenticate_token(api, creds, token, &[tokens::API_AUDIENCE.to_owned()])
            .await?
        {
            Ok(user) => Ok(user),
            Err(reason) => {
                tracing::debug!(cluster = creds.cluster(), %reason, "bearer token refused");
                Err(unauthorized())
            }
        };
    }
    match failure {
        Some(reason) => {
            tracing::debug!(cluster = creds.cluster(), %reason, "client certificate refused");
            Err(unauthorized())
        }
        None => Ok(UserInfo::anonymous()),
    }
}

/// The bearer token of the `Authorization` header, if any.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| unauthorized())?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(unauthorized());
    };
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthorized());
    }
    Ok(Some(token.trim()))
}

/// Authenticates a bearer token for the cluster of `creds`: `Ok(Err(reason))` when the token is
/// not valid there (TokenReview reports the reason; requests get a bare 401), `Err` when the
/// store could not be asked.
pub(crate) async fn authenticate_token(
    api: &Api,
    creds: &ClusterCredentials,
    token: &str,
    audiences: &[String],
) -> Result<Result<UserInfo, String>, ApiError> {
    if let Some(oidc) = &api.oidc
        && oidc.claims_issuer(token)
    {
        return Ok(oidc.verify(token));
    }
    if let Some((id, secret)) = tokens::parse_bootstrap(token) {
        return bootstrap_user(api, creds.cluster(), id, secret).await;
    }
    if !tokens::is_jwt(token) {
        return Ok(Err(
            "token is neither a service-account token nor a bootstrap token".into(),
        ));
    }
    let api_audience = audiences.len() == 1 && audiences[0] == tokens::API_AUDIENCE;
    if api_audience && let Some(user) = creds.cached_token(token) {
        return Ok(Ok(user));
    }
    let claims = match tokens::verify(creds, token, audiences) {
        Ok(c) => c,
        Err(reason) => return Ok(Err(reason)),
    };
    let k = &claims.kubernetes;
    let cluster = creds.cluster();
    let sa = get(
        api,
        cluster,
        "serviceaccounts",
        Some(&k.namespace),
        &k.serviceaccount.name,
    )
    .await?;
    if uid_of(sa.as_ref()) != Some(k.serviceaccount.uid.as_str()) {
        return Ok(Err(format!(
            "service account {}/{} has been deleted or replaced",
            k.namespace, k.serviceaccount.name
        )));
    }
    let mut extra = BTreeMap::new();
    if let Some(pod) = &k.pod {
        let live = get(api, cluster, "pods", Some(&k.namespace), &pod.name).await?;
        if uid_of(live.as_ref()) != Some(pod.uid.as_str()) {
            return Ok(Err(format!(
                "pod {}/{} the token is bound to no longer exists",
                k.namespace, pod.name
            )));
        }
        extra.insert(
            "authentication.kubernetes.io/pod-name".to_owned(),
            vec![pod.name.clone()],
        );
        extra.insert(
            "authentication.kubernetes.io/pod-uid".to_owned(),
            vec![pod.uid.clone()],
        );
    }
    if let Some(secret) = &k.secret {
        let live = get(api, cluster, "secrets", Some(&k.namespace), &secret.name).await?;
        if uid_of(live.as_ref()) != Some(secret.uid.as_str()) {
            return Ok(Err(format!(
                "secret {}/{} the token is bound to no longer exists",
                k.namespace, secret.name
            )));
        }
    }
    if let Some(node) = &k.node {
        if k.pod.is_none() {
            let live = get(api, cluster, "nodes", None, &node.name).await?;
            if uid_of(live.as_ref()) != Some(node.uid.as_str()) {
                return Ok(Err(format!(
                    "node {} the token is bound to no longer exists",
                    node.name
                )));
            }
        }
        extra.insert(
            "authentication.kubernetes.io/node-name".to_owned(),
            vec![node.name.clone()],
        );
    }
    if !claims.jti.is_empty() {
        extra.insert(
            "authentication.kubernetes.io/credential-id".to_owned(),
            vec![format!("JTI={}", claims.jti)],
        );
    }
    let mut user = UserInfo::authenticated(
        claims.sub.clone(),
        k.serviceaccount.uid.clone(),
        vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{}", k.namespace),
        ],
    );
    user.extra = extra;
    if api_audience {
        let expires =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(claims.exp.max(0) as u64);
        creds.remember_token(token, &user, expires);
    }
    Ok(Ok(user))
}

async fn get(
    api: &Api,
    cluster: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    let group = "";
    let def = api
        .root_served
        .registry
        .get(group, "v1", plural)
        .ok_or_else(|| ApiError::internal_message(format!("{plural} is not served")))?;
    api.objects
        .get(&storage::object_key(cluster, def, namespace, name))
        .await
}

fn uid_of(obj: Option<&Value>) -> Option<&str> {
    obj?.pointer("/metadata/uid")?.as_str()
}

/// The user of a bootstrap token: `system:bootstrap:<id>` when Secret `bootstrap-token-<id>` in
/// `kube-system` is of type `bootstrap.kubernetes.io/token`, allows authentication, has not
/// expired and holds the same secret.
async fn bootstrap_user(
    api: &Api,
    cluster: &str,
    id: &str,
    secret: &str,
) -> Result<Result<UserInfo, String>, ApiError> {
    let refused = || Ok(Err("bootstrap token is not valid".to_owned()));
    let Some(obj) = get(
        api,
        cluster,
        "secrets",
        Some("kube-system"),
        &format!("bootstrap-token-{id}"),
    )
    .await?
    else {
        return refused();
    };
    if obj.get("type").and_then(Value::as_str) != Some("bootstrap.kubernetes.io/token")
        || obj.pointer("/metadata/deletionTimestamp").is_some()
    {
        return refused();
    }
    let field = |k: &str| -> Option<String> {
        if let Some(s) = obj
            .pointer(&format!("/stringData/{k}"))
            .and_then(Value::as_str)
        {
            return Some(s.to_owned());
        }
        let b64 = obj.pointer(&format!("/data/{k}"))?.as_str()?;
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        String::from_utf8(bytes).ok()
    };
    if field("token-id").as_deref() != Some(id)
        || !tokens::constant_time_eq(
            field("token-secret").unwrap_or_default().as_bytes(),
            secret.as_bytes(),
        )
        || field("usage-bootstrap-authentication").as_deref() != Some("true")
    {
        return refused();
    }
    if let Some(expiration) = field("expiration") {
        match expiration.parse::<jiff::Timestamp>() {
            Ok(t) if t > jiff::Timestamp::now() => {}
            _ => return Ok(Err("bootstrap token has expired".into())),
        }
    }
    let mut groups = vec!["system:bootstrappers".to_owned()];
    for g in field("auth-extra-groups")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        // Upstream accepts only groups under `system:bootstrappers:`.
        if g.starts_with("system:bootstrappers:") {
            groups.push(g.to_owned());
        }
    }
    Ok(Ok(UserInfo::authenticated(
        format!("system:bootstrap:{id}"),
        String::new(),
        groups,
    )))
}
