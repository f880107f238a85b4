//! Bearer tokens: service-account JWTs (issued by the TokenRequest API, verified on every
//! request) and bootstrap tokens.
//!
//! Service-account tokens are upstream's bound tokens: ES256 JWTs with the `kubernetes.io`
//! private claim naming the service account and the object the token is bound to. Berth adds a
//! `berth.dev/cluster` claim; a token is accepted only by the cluster that signed it, and only
//! while the service account (and the pod, secret or node it is bound to) still exists with the
//! uid the token names.

use serde::{Deserialize, Serialize};

use super::credentials::ClusterCredentials;

/// The issuer of every service-account token (upstream's in-cluster default).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The audience the API server accepts by default (upstream defaults it to the issuer).
pub const API_AUDIENCE: &str = ISSUER;
/// Shortest lifetime a TokenRequest may ask for (upstream's 10 minutes).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// Default lifetime of a requested token (an hour).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Longest lifetime granted (upstream's `--service-account-max-token-expiration` is unset by
/// default; Berth caps tokens at 48 hours, as kubelet-projected tokens are refreshed anyway).
pub const MAX_EXPIRATION_SECONDS: i64 = 48 * 3600;

/// A reference inside the `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Object name.
    pub name: String,
    /// Object uid.
    pub uid: String,
}

/// The `kubernetes.io` private claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    /// The service account's namespace.
    pub namespace: String,
    /// The service account.
    pub serviceaccount: ObjectRef,
    /// The pod the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    /// The secret the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    /// The node the token is bound to (or the pod's node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
}

/// A service-account token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id (recorded as the user's credential id).
    pub jti: String,
    /// What the token names.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
    /// The logical cluster that signed the token.
    #[serde(rename = "berth.dev/cluster")]
    pub cluster: String,
}

/// Signs `claims` with the cluster's service-account key.
pub fn sign(creds: &ClusterCredentials, claims: &Claims) -> Result<String, String> {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    jsonwebtoken::encode(&header, claims, &creds.token_signer).map_err(|e| e.to_string())
}

/// Whether `token` looks like a JWT (three base64url segments), as opposed to a bootstrap token.
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// Verifies a service-account token for the cluster of `creds`: signature, issuer, expiry and
/// not-before (with a minute of leeway), one of `audiences`, and the cluster claim. The
/// objects it names are checked by the caller.
pub fn verify(
    creds: &ClusterCredentials,
    token: &str,
    audiences: &[String],
) -> Result<Claims, String> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    let data =
        jsonwebtoken::decode::<Claims>(token, &creds.token_verifier, &validation).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token has expired".to_owned(),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    "token audiences do not match the API server's".to_owned()
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    "token signature is invalid".to_owned()
                }
                _ => format!("invalid token: {e}"),
            }
        })?;
    let claims = data.claims;
    if claims.cluster != creds.cluster() {
        return Err("token was issued for another cluster".into());
    }
    let expected_sub = format!(
        "system:serviceaccount:{}:{}",
        claims.kubernetes.namespace, claims.kubernetes.serviceaccount.name
    );
    if claims.sub != expected_sub {
        return Err("token subject does not match its service account".into());
    }
    Ok(claims)
}

/// A bootstrap token split into its id and secret: `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn parse_bootstrap(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::credentials::ClusterCredentials;

    fn creds(id: &str) -> ClusterCredentials {
        ClusterCredentials::load(id, &ClusterCredentials::generate(id).unwrap()).unwrap()
    }

    fn claims(cluster: &str, exp_in: i64) -> Claims {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Claims {
            iss: ISSUER.into(),
            sub: "system:serviceaccount:default:builder".into(),
            aud: vec![API_AUDIENCE.into()],
            exp: now + exp_in,
            iat: now,
            nbf: now,
            jti: "j1".into(),
            kubernetes: KubernetesClaims {
                namespace: "default".into(),
                serviceaccount: ObjectRef {
                    name: "builder".into(),
                    uid: "u1".into(),
                },
                pod: None,
                secret: None,
                node: None,
            },
            cluster: cluster.into(),
        }
    }

    #[test]
    fn tokens_verify_only_in_the_cluster_that_signed_them() {
        let (a, b) = (creds("a"), creds("b"));
        let aud = vec![API_AUDIENCE.to_owned()];
        let token = sign(&a, &claims("a", 600)).unwrap();
        assert_eq!(
            verify(&a, &token, &aud).unwrap().kubernetes.namespace,
            "default"
        );
        assert!(verify(&b, &token, &aud).unwrap_err().contains("signature"));
        // Signed by a but claiming b: still refused by b (wrong key) and by a (wrong cluster).
        let forged = sign(&a, &claims("b", 600)).unwrap();
        assert!(
            verify(&a, &forged, &aud)
                .unwrap_err()
                .contains("another cluster")
        );
    }

    #[test]
    fn expired_and_wrong_audience_tokens_are_refused() {
        let a = creds("a");
        let aud = vec![API_AUDIENCE.to_owned()];
        let expired = sign(&a, &claims("a", -3600)).unwrap();
        assert_eq!(verify(&a, &expired, &aud).unwrap_err(), "token has expired");
        let mut other = claims("a", 600);
        other.aud = vec!["vault".into()];
        let token = sign(&a, &other).unwrap();
        assert!(verify(&a, &token, &aud).unwrap_err().contains("audiences"));
        assert!(verify(&a, &token, &["vault".to_owned()]).is_ok());
        let mut tampered = token.clone();
        tampered.insert(tampered.len() - 3, 'x');
        assert!(verify(&a, &tampered, &["vault".to_owned()]).is_err());
    }

    #[test]
    fn bootstrap_tokens_have_upstreams_shape() {
        assert_eq!(
            parse_bootstrap("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        assert_eq!(parse_bootstrap("ABCDEF.0123456789abcdef"), None);
        assert_eq!(parse_bootstrap("abcdef.0123456789abcde"), None);
        assert_eq!(parse_bootstrap("abcdef0123456789abcdef"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
