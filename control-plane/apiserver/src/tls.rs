//! HTTPS for the API server: Berth's own certificate authority, and serving with rustls.
//!
//! A data directory's `pki/` holds the serving CA (created once, kept; kubeconfigs carry it so
//! clients verify the server) and the serving certificate (issued at every start for the
//! configured names, so a new `--tls-san` takes effect). Connections negotiate HTTP/2 or
//! HTTP/1.1 by ALPN.
//!
//! Client certificates are requested but not verified here: each logical cluster has its own
//! client CA, and which cluster a request addresses is only known from its path. The handshake
//! checks that the client holds the key of the certificate it presents; the chain is handed to
//! every request on the connection ([`crate::auth::PeerCertificates`]) and verified against the
//! addressed cluster's CA by [`crate::auth`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Why the PKI could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing `pki/` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key or certificate could not be generated or parsed.
    #[error("{what}: {message}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// The library's message.
        message: String,
    },
}

fn crypto(what: &'static str) -> impl Fn(rcgen::Error) -> PkiError {
    move |e| PkiError::Crypto {
        what,
        message: e.to_string(),
    }
}

/// The certificates of one API server.
pub struct Pki {
    /// The CA certificate (PEM), which clients trust.
    pub ca_pem: String,
    /// The serving certificate chain (PEM).
    pub server_cert_pem: String,
    /// The serving key (PEM).
    pub server_key_pem: String,
}

fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "berth-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
}

impl Pki {
    /// Loads the CA from `dir` (creating it the first time) and issues the serving certificate
    /// for `sans`.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Pki, PkiError> {
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let (ca_cert_path, ca_key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
        let (ca_pem, ca_key) = match (read(&ca_cert_path)?, read(&ca_key_path)?) {
            (Some(cert), Some(key)) => (
                cert,
                KeyPair::from_pem(&key).map_err(crypto("reading pki/ca.key"))?,
            ),
            _ => {
                let key = KeyPair::generate().map_err(crypto("generating the CA key"))?;
                let cert = ca_params()
                    .self_signed(&key)
                    .map_err(crypto("signing the CA certificate"))?;
                write_private(&ca_key_path, &key.serialize_pem())?;
                std::fs::write(&ca_cert_path, cert.pem()).map_err(|source| PkiError::Io {
                    path: ca_cert_path.clone(),
                    source,
                })?;
                (cert.pem(), key)
            }
        };
        // The CA's name and key are all that signing needs; its parameters are fixed, so the
        // issuer is rebuilt from them rather than parsed back from the certificate.
        let issuer = Issuer::new(ca_params(), &ca_key);

        let mut server = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "berth-apiserver");
        server.distinguished_name = dn;
        for san in sans {
            server.subject_alt_names.push(match san.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => {
                    SanType::DnsName(san.clone().try_into().map_err(crypto("a --tls-san name"))?)
                }
            });
        }
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let server_key = KeyPair::generate().map_err(crypto("generating the serving key"))?;
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .map_err(crypto("signing the serving certificate"))?;

        Ok(Pki {
            ca_pem,
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
        })
    }

    /// The rustls configuration serving with this PKI (HTTP/2 and HTTP/1.1 by ALPN).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let bad = |what: &'static str| {
            move |e: rustls::pki_types::pem::Error| PkiError::Crypto {
                what,
                message: e.to_string(),
            }
        };
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.server_cert_pem.as_bytes())
                .chain(CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()))
                .collect::<Result<_, _>>()
                .map_err(bad("parsing the serving certificate"))?;
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes())
            .map_err(bad("parsing the serving key"))?;
        let rustls_err = |what: &'static str| {
            move |e: rustls::Error| PkiError::Crypto {
                what,
                message: e.to_string(),
            }
        };
        let verifier = Arc::new(KeyPossession {
            algorithms: provider.signature_verification_algorithms,
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(rustls_err("choosing TLS versions"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(rustls_err("loading the serving certificate"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Accepts any client certificate whose key the client proves it holds, and leaves the chain to
/// be verified per logical cluster. Hints no CAs, so clients offer their certificate whatever
/// issued it (Go's TLS stack and rustls both do when the hint list is empty).
#[derive(Debug)]
struct KeyPossession {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::server::danger::ClientCertVerifier for KeyPossession {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        // The chain is verified against the addressed cluster's CA, per request.
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// How long a client may take to send a request's headers (upstream's slow-client defence:
/// kube-apiserver sets Go's `http.Server.ReadHeaderTimeout` to 32 seconds). A connection that
/// overruns it is closed without an answer, as Go closes it.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The connection-level deadlines of [`serve_with`]. Request bodies have their own,
/// [`crate::handlers::BODY_READ_TIMEOUT`].
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// See [`HANDSHAKE_TIMEOUT`].
    pub handshake: std::time::Duration,
    /// See [`HEADER_READ_TIMEOUT`] (HTTP/1.1; HTTP/2 has keep-alive pings instead).
    pub header_read: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: HANDSHAKE_TIMEOUT,
            header_read: HEADER_READ_TIMEOUT,
        }
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` completes. Each connection is
/// handshaken and served on its own task; a failed handshake only ends that connection.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    serve_with(listener, config, router, shutdown, Timeouts::default()).await;
}

/// [`serve`] with the given connection deadlines.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
    timeouts: Timeouts,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(timeouts.handshake, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let chain = tls.get_ref().1.peer_certificates().map(|certs| {
                crate::auth::PeerCertificates(Arc::new(
                    certs.iter().map(|c| c.clone().into_owned()).collect(),
                ))
            });
            let service = tower::ServiceExt::map_request(
                router,
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    if let Some(chain) = &chain {
                        req.extensions_mut().insert(chain.clone());
                    }
                    req
                },
            );
            let service = hyper_util::service::TowerToHyperService::new(service);
            let io = hyper_util::rt::TokioIo::new(tls);
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeouts.header_read);
            builder
                .http2()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
                .keep_alive_timeout(std::time::Duration::from_secs(20));
            if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_serves() {
        let dir = tempfile::tempdir().unwrap();
        let sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let first = Pki::load_or_create(dir.path(), &sans).unwrap();
        let again = Pki::load_or_create(dir.path(), &sans).unwrap();
        assert_eq!(first.ca_pem, again.ca_pem, "the CA is kept across starts");
        first.server_config().unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("ca.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
