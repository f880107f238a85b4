//! The HTTPS client that calls webhooks: rustls with the webhook's `caBundle` as its only roots,
//! one pooled client per CA bundle and server name, and Go's error texts for what fails.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use rustls::pki_types::{CertificateDer, ServerName};

type Https = Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>;
/// A CA bundle (PEM) and the TLS server name override.
pub(crate) type ClientKey = (Vec<u8>, Option<String>);

/// Where to send a request: the URL dialled, the URL shown in errors and the TLS server name
/// (they differ for a `service` reference, which is dialled at the address the resolver gives
/// but verified as `<name>.<namespace>.svc`).
pub(crate) struct Target {
    pub(crate) dial: String,
    pub(crate) display: String,
    pub(crate) server_name: Option<String>,
}

/// Clients by (CA bundle, server name override).
#[derive(Default)]
pub(crate) struct Clients {
    cache: Mutex<HashMap<ClientKey, Https>>,
    /// Refuse names that resolve only to this machine or link-local addresses.
    public_only: bool,
}

impl Clients {
    /// Clients that never dial loopback, link-local or unspecified addresses a name resolves
    /// to (for a multi-tenant server calling webhooks its tenants configure).
    pub(crate) fn public_only() -> Self {
        Clients {
            cache: Mutex::default(),
            public_only: true,
        }
    }
}

/// Whether `ip` is this machine, link-local (cloud metadata services live there) or nothing.
pub fn is_internal(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast()
        }
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal(std::net::IpAddr::V4(v4)))
        }
    }
}

/// The system resolver, keeping only the addresses a webhook may be called at.
#[derive(Clone)]
pub(crate) struct Resolver {
    inner: GaiResolver,
    public_only: bool,
}

type Resolving = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<std::vec::IntoIter<std::net::SocketAddr>, std::io::Error>,
            > + Send,
    >,
>;

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<std::net::SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolving = tower::Service::call(&mut self.inner, name.clone());
        let public_only = self.public_only;
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = resolving.await?.collect();
            if !public_only {
                return Ok(addrs.into_iter());
            }
            let allowed: Vec<std::net::SocketAddr> =
                addrs.into_iter().filter(|a| !is_internal(a.ip())).collect();
            if allowed.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "{} resolves only to loopback, link-local or unspecified addresses, which webhooks of tenant clusters may not call",
                        name.as_str()
                    ),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("cached", &self.cache.lock().len())
            .finish()
    }
}

impl Clients {
    /// Drops the clients (and their pooled connections) no webhook uses any more.
    pub(crate) fn retain(&self, used: &std::collections::HashSet<ClientKey>) {
        self.cache.lock().retain(|k, _| used.contains(k));
    }

    fn client(&self, ca: &[u8], server_name: Option<&str>) -> Result<Https, String> {
        let key = (ca.to_vec(), server_name.map(str::to_owned));
        if let Some(c) = self.cache.lock().get(&key) {
            return Ok(c.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        let mut reader = ca;
        for cert in rustls_pemfile::certs(&mut reader) {
            let cert: CertificateDer<'static> =
                cert.map_err(|e| format!("unable to load root certificates: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("unable to load root certificates: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only();
        let builder = match server_name {
            Some(n) => {
                let name = ServerName::try_from(n.to_owned()).map_err(|e| e.to_string())?;
                builder.with_server_name_resolver(FixedServerNameResolver::new(name))
            }
            None => builder,
        };
        let mut http = HttpConnector::new_with_resolver(Resolver {
            inner: GaiResolver::new(),
            public_only: self.public_only,
        });
        http.enforce_http(false);
        let connector = builder.enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        self.cache.lock().insert(key, client.clone());
        Ok(client)
    }

    /// POSTs `body` to the target with `?timeout=<n>s` and waits at most `timeout`. The error
    /// is what Go's REST client would say, e.g. `Post "https://...": context deadline exceeded`.
    pub(crate) async fn post(
        &self,
        target: &Target,
        ca: &[u8],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, String> {
        let query = format!("timeout={}s", timeout.as_secs());
        let with_query = |u: &str| {
            if u.contains('?') {
                format!("{u}&{query}")
            } else {
                format!("{u}?{query}")
            }
        };
        let display = with_query(&target.display);
        let dial = with_query(&target.dial);
        let client = self.client(ca, target.server_name.as_deref())?;
        let uri: hyper::Uri = dial.parse().map_err(|e| format!("Post {display:?}: {e}"))?;
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let req = Request::post(uri)
            .header("content-type", "application/json")
            .header("accept", "application/json, */*")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let call = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| format!("Post {display:?}: {}", go_error(&e, &host, port)))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("Post {display:?}: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        };
        let (status, bytes) = match tokio::time::timeout(timeout, call).await {
            Ok(r) => r?,
            Err(_) => return Err(format!("Post {display:?}: context deadline exceeded")),
        };
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(server_error(status, &bytes))
    }
}

/// Go's REST client on a non-2xx answer: the `Status` it carries, or a generic text.
fn server_error(status: StatusCode, body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && v.get("kind").and_then(|k| k.as_str()) == Some("Status")
        && let Some(m) = v.get("message").and_then(|m| m.as_str())
    {
        return m.to_owned();
    }
    let text = String::from_utf8_lossy(body);
    match status.as_u16() {
        500 if !text.is_empty() => {
            format!("an error on the server ({text:?}) has prevented the request from succeeding")
        }
        code => {
            format!(
                "the server responded with the status code {code} but did not return more information"
            )
        }
    }
}

/// The error as Go's net/http and crypto/tls phrase the common cases.
fn go_error(e: &(dyn StdError + 'static), host: &str, port: u16) -> String {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(outer) = cur {
        let err = outer;
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return format!("dial tcp {host}:{port}: connect: connection refused");
                }
                std::io::ErrorKind::ConnectionReset => {
                    return format!("read tcp {host}:{port}: read: connection reset by peer");
                }
                _ => {}
            }
            // Connectors wrap the TLS error in one or more I/O errors.
            let mut inner = io.get_ref();
            while let Some(i) = inner {
                if let Some(tls) = i.downcast_ref::<rustls::Error>() {
                    return tls_error(tls, host);
                }
                inner = i.downcast_ref::<std::io::Error>().and_then(|e| e.get_ref());
            }
        }
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return tls_error(tls, host);
        }
        last = err.to_string();
        cur = outer.source();
    }
    last
}

fn tls_error(e: &rustls::Error, host: &str) -> String {
    use rustls::CertificateError;
    match e {
        // Go reports a chain it cannot verify against the roots, whatever the cause, as this.
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => "tls: failed to verify certificate: x509: certificate signed by unknown authority"
            .to_owned(),
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName)
        | rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            format!("tls: failed to verify certificate: x509: certificate is not valid for {host}")
        }
        rustls::Error::InvalidCertificate(CertificateError::Expired)
        | rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
            "tls: failed to verify certificate: x509: certificate has expired or is not yet valid"
                .to_owned()
        }
        other => format!("tls: {other}"),
    }
}
