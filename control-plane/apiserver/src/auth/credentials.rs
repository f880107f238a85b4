//! The credentials of one logical cluster: its client CA and its service-account signing key.
//!
//! Each logical cluster gets its own, created with the cluster and stored in its marker key
//! (`/berth/clusters/<id>`), so every replica authenticates the same way and deleting the
//! cluster deletes them. The client CA signs the certificates of the cluster's users (the admin
//! kubeconfig, kubelets through CertificateSigningRequests); the signing key (ECDSA P-256, ES256)
//! signs its service-account tokens. Nothing issued by one cluster's credentials is accepted by
//! another's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, UnixTime, pem::PemObject};
use rustls::server::danger::ClientCertVerifier;
use serde::{Deserialize, Serialize};

use super::UserInfo;

/// Why credentials could not be made or used.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct CredentialsError {
    what: &'static str,
    message: String,
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> CredentialsError {
    move |e| CredentialsError {
        what,
        message: e.to_string(),
    }
}

/// A cluster's registration as stored in its marker key: its credentials (PEM throughout) and
/// the limits it runs under.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredCredentials {
    pub(crate) ca_cert: String,
    pub(crate) ca_key: String,
    pub(crate) service_account_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) limits: Option<crate::ClusterLimits>,
}

/// How long certificates issued to users live by default (a year, as kubeadm's admin.conf).
pub const CLIENT_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

fn ca_params(cluster: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("berth-client-ca {cluster}"));
    dn.push(DnType::OrganizationName, "berth");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
}

/// One cluster's credentials, parsed and ready for use.
pub struct ClusterCredentials {
    cluster: String,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    verifier: Arc<dyn ClientCertVerifier>,
    pub(crate) token_signer: jsonwebtoken::EncodingKey,
    pub(crate) token_verifier: jsonwebtoken::DecodingKey,
    token_public_pem: String,
    /// Client certificates verified already (by DER), with the user and when the certificate
    /// expires: a client's chain is verified once, not at every request of its connection.
    verified_certs: Cache<Vec<u8>>,
    /// Service-account tokens authenticated in the last [`TOKEN_CACHE_TTL`], as upstream's
    /// token cache (so revocation takes effect within that time).
    verified_tokens: Cache<String>,
}

/// How long a successful token authentication is reused (upstream's default).
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// Entries kept per cache before it is emptied.
const CACHE_LIMIT: usize = 10_000;

type Cache<K> = parking_lot::Mutex<HashMap<K, (UserInfo, SystemTime)>>;

fn cached(cache: &Cache<Vec<u8>>, key: &[u8]) -> Option<UserInfo> {
    let cache = cache.lock();
    let (user, until) = cache.get(key)?;
    (SystemTime::now() < *until).then(|| user.clone())
}

impl std::fmt::Debug for ClusterCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCredentials")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl ClusterCredentials {
    /// New credentials for `cluster`: a fresh CA and signing key.
    pub(crate) fn generate(cluster: &str) -> Result<StoredCredentials, CredentialsError> {
        let ca_key = KeyPair::generate().map_err(err("generating the client CA key"))?;
        let ca_cert = ca_params(cluster)
            .self_signed(&ca_key)
            .map_err(err("signing the client CA"))?;
        let sa_key =
            KeyPair::generate().map_err(err("generating the service-account signing key"))?;
        Ok(StoredCredentials {
            ca_cert: ca_cert.pem(),
            ca_key: ca_key.serialize_pem(),
            service_account_key: sa_key.serialize_pem(),
            limits: None,
        })
    }

    /// Parses stored credentials of `cluster`.
    pub(crate) fn load(
        cluster: &str,
        stored: &StoredCredentials,
    ) -> Result<ClusterCredentials, CredentialsError> {
        let ca_key = KeyPair::from_pem(&stored.ca_key).map_err(err("reading the client CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(&stored.ca_cert, ca_key)
            .map_err(err("reading the client CA certificate"))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(stored.ca_cert.as_bytes()) {
            roots
                .add(ca.map_err(err("parsing the client CA"))?)
                .map_err(err("trusting the client CA"))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(err("building the client certificate verifier"))?;
        let sa_key = KeyPair::from_pem(&stored.service_account_key)
            .map_err(err("reading the service-account signing key"))?;
        let token_public_pem = sa_key.public_key_pem();
        let token_signer =
            jsonwebtoken::EncodingKey::from_ec_pem(sa_key.serialize_pem().as_bytes())
                .map_err(err("loading the service-account signing key"))?;
        let token_verifier = jsonwebtoken::DecodingKey::from_ec_pem(token_public_pem.as_bytes())
            .map_err(err("loading the service-account verifying key"))?;
        Ok(ClusterCredentials {
            cluster: cluster.to_owned(),
            ca_pem: stored.ca_cert.clone(),
            issuer,
            verifier,
            token_signer,
            token_verifier,
            token_public_pem,
            verified_certs: Default::default(),
            verified_tokens: Default::default(),
        })
    }

    /// The logical cluster these credentials belong to.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The client CA (PEM): what the cluster's client certificates are verified against.
    pub fn client_ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The public key service-account tokens are verified with (PEM).
    pub fn service_account_public_key_pem(&self) -> &str {
        &self.token_public_pem
    }

    /// A client certificate and key (PEM) for `user` in `groups`, valid for `validity`.
    pub fn issue_client_certificate(
        &self,
        user: &str,
        groups: &[&str],
        validity: Duration,
    ) -> Result<(String, String), CredentialsError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        for g in groups {
            dn.push(DnType::OrganizationName, *g);
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let now = time_now();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::seconds(validity.as_secs() as i64);
        let key = KeyPair::generate().map_err(err("generating a client key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(err("signing a client certificate"))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Signs a PKCS#10 request (DER) as a client certificate valid for `validity`; the subject is
    /// taken from the request.
    pub fn sign_client_request(
        &self,
        csr_der: &[u8],
        validity: Duration,
    ) -> Result<String, CredentialsError> {
        let der = rustls::pki_types::CertificateSigningRequestDer::from(csr_der);
        let mut csr = rcgen::CertificateSigningRequestParams::from_der(&der)
            .map_err(err("parsing the certificate signing request"))?;
        let now = time_now();
        csr.params.not_before = now - time::Duration::minutes(5);
        csr.params.not_after = now + time::Duration::seconds(validity.as_secs() as i64);
        csr.params.is_ca = IsCa::ExplicitNoCa;
        csr.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        csr.params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(err("signing the certificate signing request"))?;
        Ok(cert.pem())
    }

    /// The user a verified client certificate chain names: CN the user, each O a group.
    /// `Err` when the chain was not issued by this cluster's CA (or has expired).
    pub fn verify_client(
        &self,
        chain: &[CertificateDer<'static>],
    ) -> Result<UserInfo, CredentialsError> {
        let (end, intermediates) = chain.split_first().ok_or(CredentialsError {
            what: "verifying the client certificate",
            message: "no certificate".into(),
        })?;
        if intermediates.is_empty()
            && let Some(user) = cached(&self.verified_certs, end.as_ref())
        {
            return Ok(user);
        }
        self.verifier
            .verify_client_cert(end, intermediates, UnixTime::now())
            .map_err(err("verifying the client certificate"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(end)
            .map_err(err("parsing the client certificate"))?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            return Err(CredentialsError {
                what: "verifying the client certificate",
                message: "the certificate has no common name".into(),
            });
        }
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(str::to_owned)
            .collect();
        let user = UserInfo::authenticated(name, String::new(), groups);
        if intermediates.is_empty() {
            let not_after = UNIX_EPOCH
                + Duration::from_secs(cert.validity().not_after.timestamp().max(0) as u64);
            let mut cache = self.verified_certs.lock();
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(end.to_vec(), (user.clone(), not_after));
        }
        Ok(user)
    }

    /// The user a token was authenticated as in the last [`TOKEN_CACHE_TTL`], if any.
    pub(crate) fn cached_token(&self, token: &str) -> Option<UserInfo> {
        let cache = self.verified_tokens.lock();
        let (user, until) = cache.get(token)?;
        (SystemTime::now() < *until).then(|| user.clone())
    }

    /// Forgets every cached token (an object tokens are bound to was deleted).
    pub(crate) fn forget_tokens(&self) {
        self.verified_tokens.lock().clear();
    }

    /// Remembers that `token` authenticates as `user`, until `expires` at the latest.
    pub(crate) fn remember_token(&self, token: &str, user: &UserInfo, expires: SystemTime) {
        let until = expires.min(SystemTime::now() + TOKEN_CACHE_TTL);
        let mut cache = self.verified_tokens.lock();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(token.to_owned(), (user.clone(), until));
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
