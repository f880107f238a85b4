//! A kubelet's CertificateSigningRequest is approved and signed by the loops, and the
//! certificate it gets authenticates that node in its own cluster and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use http_body_util::BodyExt;
use manager::SignError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The server's signer, over the API's per-cluster credentials.
struct CaSigner(Arc<apiserver::Api>);

#[async_trait::async_trait]
impl manager::Signer for CaSigner {
    async fn sign(
        &self,
        cluster: &str,
        csr_pem: &str,
        validity: Duration,
    ) -> Result<String, SignError> {
        let creds = self
            .0
            .credentials(cluster)
            .await
            .map_err(|e| SignError::Unavailable(e.message))?
            .ok_or_else(|| SignError::Unavailable("no such cluster".into()))?;
        let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
            .map_err(|e| SignError::Refused(e.to_string()))?;
        creds
            .sign_client_request(&der, validity)
            .map_err(|e| SignError::Refused(e.to_string()))
    }
}

const CSRS: &str = "/clusters/tenant-a/apis/certificates.k8s.io/v1/certificatesigningrequests";

#[derive(Clone, Copy)]
enum Who<'a> {
    Admin,
    Token(&'a str),
    Cert(&'a str),
}

async fn call(
    router: &axum::Router,
    who: Who<'_>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Who::Token(t) = who {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    match who {
        Who::Admin => {
            req.extensions_mut()
                .insert(apiserver::auth::Authenticated(Arc::new(
                    apiserver::auth::UserInfo::controller_manager(),
                )));
        }
        Who::Cert(pem) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap();
            req.extensions_mut()
                .insert(apiserver::auth::PeerCertificates(Arc::new(chain)));
        }
        Who::Token(_) => {}
    }
    let resp = router.clone().oneshot(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn node_csr(name: &str, node: &str) -> Value {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("system:node:{node}"));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "key encipherment", "client auth"],
            "expirationSeconds": 3600}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_nodes_request_is_approved_and_signed_for_its_cluster_only() {
    let store: Arc<dyn store::Store> = Arc::new(store::MemoryStore::default());
    let api = apiserver::Api::new(store);
    for id in [apiserver::request::ROOT_CLUSTER, "tenant-a", "tenant-b"] {
        api.ensure_cluster(id).await.unwrap();
    }
    let router = apiserver::router(Arc::clone(&api));
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let config = manager::Config {
        signer: Some(Arc::new(CaSigner(Arc::clone(&api)))),
        ..manager::Config::default()
    };
    let manager = manager::Manager::start(config, stop_rx);
    for id in ["tenant-a", "tenant-b"] {
        manager.add_cluster(
            id,
            kube::Client::new(
                apiserver::local::LocalService::new(router.clone(), id),
                "default",
            ),
        );
    }

    // kubeadm's join token, and a kubelet asking with it.
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
        "stringData": {"token-id": "abcdef", "token-secret": "0123456789abcdef",
            "usage-bootstrap-authentication": "true",
            "auth-extra-groups": "system:bootstrappers:berth:default-node-token"}});
    let (code, body) = call(
        &router,
        Who::Admin,
        "POST",
        "/clusters/tenant-a/api/v1/namespaces/kube-system/secrets",
        Some(secret),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let token = Who::Token("abcdef.0123456789abcdef");
    let (code, body) = call(
        &router,
        token,
        "POST",
        CSRS,
        Some(node_csr("node-csr-n1", "n1")),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let creds_a = api.credentials("tenant-a").await.unwrap().unwrap();
    let (n2, _) = creds_a
        .issue_client_certificate(
            "system:node:n2",
            &["system:nodes"],
            Duration::from_secs(600),
        )
        .unwrap();
    let (code, body) = call(
        &router,
        Who::Cert(&n2),
        "POST",
        CSRS,
        Some(node_csr("n2-for-n3", "n3")),
    )
    .await;
    assert_eq!(code, 201, "{body}");

    let mut csr = Value::Null;
    for _ in 0..200 {
        csr = call(
            &router,
            Who::Admin,
            "GET",
            &format!("{CSRS}/node-csr-n1"),
            None,
        )
        .await
        .1;
        if csr.pointer("/status/certificate").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let condition = &csr["status"]["conditions"][0];
    assert_eq!(condition["type"], "Approved", "{csr}");
    assert_eq!(condition["reason"], "AutoApproved");
    assert_eq!(
        condition["message"],
        "Auto approving kubelet client certificate after SubjectAccessReview."
    );
    let pem = base64::engine::general_purpose::STANDARD
        .decode(csr["status"]["certificate"].as_str().expect("signed"))
        .unwrap();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .unwrap();
    let user = creds_a
        .verify_client(&chain)
        .expect("tenant A's CA issued it");
    assert_eq!(user.name, "system:node:n1");
    assert!(user.groups.iter().any(|g| g == "system:nodes"));
    let creds_b = api.credentials("tenant-b").await.unwrap().unwrap();
    assert!(
        creds_b.verify_client(&chain).is_err(),
        "tenant B does not accept it"
    );

    // Node n2 asking for n3's certificate is not a renewal of its own, and nodes may not ask
    // for other nodes': it stays pending.
    let other = call(
        &router,
        Who::Admin,
        "GET",
        &format!("{CSRS}/n2-for-n3"),
        None,
    )
    .await
    .1;
    assert!(other.pointer("/status/conditions").is_none(), "{other}");
    assert!(other.pointer("/status/certificate").is_none(), "{other}");
}
