//! OpenID Connect ID tokens, for customers' single sign-on (upstream's `--oidc-*` flags).
//!
//! A bearer JWT whose `iss` is the configured issuer is verified with the issuer's signing keys
//! (a JWKS, loaded from a file or URL by the server and refreshed), for the configured client id
//! as audience. The user is the username claim (prefixed, as upstream: by `<issuer>#` unless the
//! claim is `email`), the groups the groups claim (prefixed). `email` as username requires
//! `email_verified` to be true. Symmetric algorithms are refused: a JWKS holds public keys.

use std::collections::BTreeMap;

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use parking_lot::RwLock;
use serde_json::Value;

use super::UserInfo;

/// How ID tokens are checked and mapped to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The issuer URL; tokens must carry it as `iss`.
    pub issuer_url: String,
    /// The client id; tokens must carry it in `aud`.
    pub client_id: String,
    /// The claim naming the user (upstream's default: `sub`).
    pub username_claim: String,
    /// Put before user names; `None` applies upstream's default (`<issuer>#` unless the claim
    /// is `email`); `Some("-")` means none.
    pub username_prefix: Option<String>,
    /// The claim holding the groups (a string or a list), if any.
    pub groups_claim: Option<String>,
    /// Put before every group name.
    pub groups_prefix: String,
}

impl OidcConfig {
    /// A configuration with upstream's defaults for `issuer_url` and `client_id`.
    pub fn new(issuer_url: impl Into<String>, client_id: impl Into<String>) -> Self {
        OidcConfig {
            issuer_url: issuer_url.into(),
            client_id: client_id.into(),
            username_claim: "sub".into(),
            username_prefix: None,
            groups_claim: None,
            groups_prefix: String::new(),
        }
    }

    fn prefix(&self) -> String {
        match self.username_prefix.as_deref() {
            Some("-") => String::new(),
            Some(p) => p.to_owned(),
            None if self.username_claim == "email" => String::new(),
            None => format!("{}#", self.issuer_url),
        }
    }
}

/// The OIDC authenticator: its configuration and the issuer's current keys.
#[derive(Debug)]
pub struct Oidc {
    config: OidcConfig,
    keys: RwLock<JwkSet>,
}

impl Oidc {
    /// An authenticator trusting `keys` (the issuer's JWKS).
    pub fn new(config: OidcConfig, keys: JwkSet) -> Self {
        Oidc {
            config,
            keys: RwLock::new(keys),
        }
    }

    /// Replaces the issuer's keys (after a refresh of the JWKS).
    pub fn set_keys(&self, keys: JwkSet) {
        *self.keys.write() = keys;
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Whether `token` claims to come from this issuer (read without verifying anything).
    pub fn claims_issuer(&self, token: &str) -> bool {
        let Some(payload) = token.split('.').nth(1) else {
            return false;
        };
        let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
            return false;
        };
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("iss").and_then(Value::as_str).map(str::to_owned))
            .is_some_and(|iss| iss == self.config.issuer_url)
    }

    /// The user an ID token names, or why it is not valid.
    pub fn verify(&self, token: &str) -> Result<UserInfo, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("invalid ID token: {e}"))?;
        if matches!(
            header.alg,
            jsonwebtoken::Algorithm::HS256
                | jsonwebtoken::Algorithm::HS384
                | jsonwebtoken::Algorithm::HS512
        ) {
            return Err("ID tokens signed with a shared secret are not accepted".into());
        }
        let keys = self.keys.read().clone();
        let candidates: Vec<_> = match &header.kid {
            Some(kid) => keys.find(kid).into_iter().collect(),
            None => keys.keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err("no key of the issuer matches the token".into());
        }
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer_url]);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let mut last = String::from("no key verified the token");
        for jwk in candidates {
            let key = match jsonwebtoken::DecodingKey::from_jwk(jwk) {
                Ok(k) => k,
                Err(e) => {
                    last = format!("unusable key: {e}");
                    continue;
                }
            };
            match jsonwebtoken::decode::<BTreeMap<String, Value>>(token, &key, &validation) {
                Ok(data) => return self.user(&data.claims),
                Err(e) => last = format!("invalid ID token: {e}"),
            }
        }
        Err(last)
    }

    fn user(&self, claims: &BTreeMap<String, Value>) -> Result<UserInfo, String> {
        let c = &self.config;
        let name = claims
            .get(&c.username_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("the ID token has no {:?} claim", c.username_claim))?;
        if c.username_claim == "email"
            && claims.get("email_verified").and_then(Value::as_bool) != Some(true)
        {
            return Err("the ID token's email is not verified".into());
        }
        let groups = match c.groups_claim.as_ref().and_then(|g| claims.get(g)) {
            Some(Value::String(g)) => vec![g.clone()],
            Some(Value::Array(gs)) => gs
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let groups = groups
            .into_iter()
            .map(|g| format!("{}{g}", c.groups_prefix))
            .collect();
        let uid = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(UserInfo::authenticated(
            format!("{}{name}", c.prefix()),
            uid,
            groups,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An issuer's key pair: the signing key and its JWKS.
    fn issuer_key(kid: &str) -> (jsonwebtoken::EncodingKey, JwkSet) {
        let key = rcgen::KeyPair::generate().unwrap();
        let raw = key.public_key_raw(); // 0x04 || X || Y
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwks: JwkSet = serde_json::from_value(json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
        }]}))
        .unwrap();
        let signer =
            jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        (signer, jwks)
    }

    fn token(signer: &jsonwebtoken::EncodingKey, kid: &str, claims: Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, signer).unwrap()
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn id_tokens_map_to_users_and_groups_like_upstream() {
        let (signer, jwks) = issuer_key("k1");
        let mut config = OidcConfig::new("https://sso.example.com", "berth");
        config.groups_claim = Some("groups".into());
        config.groups_prefix = "sso:".into();
        let oidc = Oidc::new(config, jwks);
        let claims = json!({"iss": "https://sso.example.com", "aud": "berth", "sub": "u-42",
            "exp": now() + 600, "groups": ["dev", "ops"]});
        let t = token(&signer, "k1", claims.clone());
        assert!(oidc.claims_issuer(&t));
        let user = oidc.verify(&t).unwrap();
        assert_eq!(user.name, "https://sso.example.com#u-42");
        assert_eq!(user.groups, ["sso:dev", "sso:ops", "system:authenticated"]);

        let mut bad = claims.clone();
        bad["aud"] = json!("someone-else");
        assert!(oidc.verify(&token(&signer, "k1", bad)).is_err());
        let mut bad = claims.clone();
        bad["exp"] = json!(now() - 3600);
        assert!(oidc.verify(&token(&signer, "k1", bad)).is_err());
        let mut bad = claims.clone();
        bad["iss"] = json!("https://evil.example.com");
        assert!(!oidc.claims_issuer(&token(&signer, "k1", bad.clone())));
        assert!(oidc.verify(&token(&signer, "k1", bad)).is_err());
        // Another key with the same kid: the signature does not verify.
        let (other, _) = issuer_key("k1");
        assert!(oidc.verify(&token(&other, "k1", claims.clone())).is_err());
        // After a key rotation, only the new key counts.
        let (rotated, jwks) = issuer_key("k2");
        oidc.set_keys(jwks);
        assert!(oidc.verify(&t).is_err());
        assert!(oidc.verify(&token(&rotated, "k2", claims)).is_ok());
    }

    #[test]
    fn email_usernames_must_be_verified() {
        let (signer, jwks) = issuer_key("k");
        let mut config = OidcConfig::new("https://sso", "berth");
        config.username_claim = "email".into();
        let oidc = Oidc::new(config, jwks);
        let claims = |verified: bool| {
            json!({"iss": "https://sso", "aud": ["berth"], "sub": "1", "exp": now() + 60,
                "email": "ann@example.com", "email_verified": verified})
        };
        assert_eq!(
            oidc.verify(&token(&signer, "k", claims(true)))
                .unwrap()
                .name,
            "ann@example.com"
        );
        assert!(oidc.verify(&token(&signer, "k", claims(false))).is_err());
    }
}
