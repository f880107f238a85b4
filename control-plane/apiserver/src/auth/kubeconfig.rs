//! Kubeconfig files: what `kubectl` and client libraries need to reach one logical cluster.

use base64::Engine;

/// What a kubeconfig holds: where the cluster is, the CA that verifies the server, and a client
/// certificate (or a bearer token) for one user.
#[derive(Debug, Clone)]
pub struct Kubeconfig<'a> {
    /// The cluster's URL, e.g. `https://127.0.0.1:6443/clusters/acme:prod`.
    pub server: &'a str,
    /// The CA that signed the server's certificate (PEM).
    pub ca_pem: &'a str,
    /// How the user authenticates.
    pub credential: Credential<'a>,
    /// Name of the cluster entry (and, with the user, of the context).
    pub cluster_name: &'a str,
    /// Name of the user entry.
    pub user_name: &'a str,
}

/// A kubeconfig user's credential.
#[derive(Debug, Clone)]
pub enum Credential<'a> {
    /// A client certificate and its key (PEM).
    Certificate {
        /// The certificate.
        cert_pem: &'a str,
        /// Its private key.
        key_pem: &'a str,
    },
    /// A bearer token.
    Token(&'a str),
}

impl Kubeconfig<'_> {
    /// The kubeconfig as YAML, everything inline.
    pub fn render(&self) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let user = match &self.credential {
            Credential::Certificate { cert_pem, key_pem } => format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64(cert_pem),
                b64(key_pem)
            ),
            Credential::Token(token) => format!("    token: {token}\n"),
        };
        let (cluster, name) = (self.cluster_name, self.user_name);
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: {cluster}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {name}
  user:
{user}contexts:
- name: {name}@{cluster}
  context:
    cluster: {cluster}
    user: {name}
current-context: {name}@{cluster}
preferences: {{}}
",
            server = self.server,
            ca = b64(self.ca_pem),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_kubeconfig_kubectl_reads() {
        let yaml = Kubeconfig {
            server: "https://127.0.0.1:6443/clusters/acme:prod",
            ca_pem: "CA",
            credential: Credential::Token("abc"),
            cluster_name: "prod",
            user_name: "prod-admin",
        }
        .render();
        let doc: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(doc["current-context"], "prod-admin@prod");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443/clusters/acme:prod"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "Q0E="
        );
        assert_eq!(doc["users"][0]["user"]["token"], "abc");
    }
}
