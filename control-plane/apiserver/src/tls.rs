//! HTTPS for the API server: Berth's own certificate authority, and serving with rustls.
//!
//! A data directory's `pki/` holds the cluster CA (created once, kept), the serving certificate
//! (issued at every start for the configured names, so a new `--tls-san` takes effect) and the
//! admin client certificate (`O=system:masters`) that the admin kubeconfig carries. Connections
//! negotiate HTTP/2 or HTTP/1.1 by ALPN. Client certificates are requested and verified against
//! the CA when presented; requests without one are still served (authentication is the next
//! layer's decision).

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
    /// The admin client certificate (PEM).
    pub admin_cert_pem: String,
    /// The admin client key (PEM).
    pub admin_key_pem: String,
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
    /// for `sans` and the admin client certificate.
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

        let mut admin = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "berth-admin");
        dn.push(DnType::OrganizationName, "system:masters");
        admin.distinguished_name = dn;
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        admin.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let (admin_cert_path, admin_key_path) = (dir.join("admin.crt"), dir.join("admin.key"));
        let (admin_cert_pem, admin_key_pem) =
            match (read(&admin_cert_path)?, read(&admin_key_path)?) {
                (Some(c), Some(k)) => (c, k),
                _ => {
                    let key = KeyPair::generate().map_err(crypto("generating the admin key"))?;
                    let cert = admin
                        .signed_by(&key, &issuer)
                        .map_err(crypto("signing the admin certificate"))?;
                    write_private(&admin_key_path, &key.serialize_pem())?;
                    std::fs::write(&admin_cert_path, cert.pem()).map_err(|source| {
                        PkiError::Io {
                            path: admin_cert_path.clone(),
                            source,
                        }
                    })?;
                    (cert.pem(), key.serialize_pem())
                }
            };
        Ok(Pki {
            ca_pem,
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            admin_cert_pem,
            admin_key_pem,
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
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots
                .add(ca.map_err(bad("parsing the CA"))?)
                .map_err(|e| PkiError::Crypto {
                    what: "trusting the CA",
                    message: e.to_string(),
                })?;
        }
        let rustls_err = |what: &'static str| {
            move |e: rustls::Error| PkiError::Crypto {
                what,
                message: e.to_string(),
            }
        };
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| PkiError::Crypto {
            what: "building the client verifier",
            message: e.to_string(),
        })?;
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

/// Serves `router` over TLS on `listener` until `shutdown` completes. Each connection is
/// handshaken and served on its own task; a failed handshake only ends that connection.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
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
            let tls = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(tcp),
            )
            .await
            {
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
            let service = hyper_util::service::TowerToHyperService::new(router);
            let io = hyper_util::rt::TokioIo::new(tls);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
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
        assert_eq!(first.admin_cert_pem, again.admin_cert_pem);
        first.server_config().unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("ca.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
