//! CertificateSigningRequests through the router: who asked is the server's to record, the spec
//! cannot change, approvals need `approve` on the signer, and each subresource writes only its
//! part of the status.

mod support;

use base64::Engine;
use serde_json::{Value, json};
use support::{Env, Who, env};

const CSRS: &str = "/clusters/a/apis/certificates.k8s.io/v1/certificatesigningrequests";
const KUBELET_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

impl Env {
    /// A bootstrap token of cluster `a`, as `kubeadm token create` makes one.
    async fn bootstrap_token(&self) -> Who {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
            "stringData": {"token-id": "abcdef", "token-secret": "0123456789abcdef",
                "usage-bootstrap-authentication": "true",
                "auth-extra-groups": "system:bootstrappers:berth:default-node-token"}});
        self.ok(
            &Who::Admin,
            "POST",
            "/clusters/a/api/v1/namespaces/kube-system/secrets",
            Some(secret),
        )
        .await;
        Who::Token("abcdef.0123456789abcdef".into())
    }
}

fn request_pem(cn: &str, orgs: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    for o in orgs {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, *o);
    }
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn csr(name: &str, pem: &str, signer: &str) -> Value {
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
    "metadata": {"name": name},
    "spec": {
        "request": base64::engine::general_purpose::STANDARD.encode(pem),
        "signerName": signer,
        "usages": ["digital signature", "client auth"],
        // The server decides who asked, whatever the client claims.
        "username": "system:admin", "groups": ["system:masters"],
    }})
}

fn node_csr(name: &str, node: &str) -> Value {
    csr(
        name,
        &request_pem(&format!("system:node:{node}"), &["system:nodes"]),
        KUBELET_SIGNER,
    )
}

fn approved(obj: &Value) -> Value {
    let mut obj = obj.clone();
    obj["status"] = json!({"conditions": [{"type": "Approved", "status": "True",
        "reason": "KubectlApprove", "message": "This CSR was approved by kubectl certificate approve."}]});
    obj
}

#[tokio::test]
async fn requests_record_their_author_whatever_the_body_says() {
    let env = env().await;
    let bootstrap = env.bootstrap_token().await;
    let created = env
        .ok(&bootstrap, "POST", CSRS, Some(node_csr("node-csr-1", "n1")))
        .await;
    assert_eq!(created["spec"]["username"], "system:bootstrap:abcdef");
    let groups = created["spec"]["groups"].to_string();
    assert!(
        groups.contains("system:bootstrappers") && !groups.contains("system:masters"),
        "{groups}"
    );
    assert!(
        created
            .get("status")
            .is_none_or(|s| s.get("conditions").is_none())
    );

    // A node renewing its own certificate.
    let node = env.cert("a", "system:node:n1", &["system:nodes"]).await;
    let renewed = env
        .ok(&node, "POST", CSRS, Some(node_csr("node-csr-2", "n1")))
        .await;
    assert_eq!(renewed["spec"]["username"], "system:node:n1");
    assert!(
        renewed["spec"]["groups"]
            .to_string()
            .contains("system:nodes")
    );

    // A client's request cannot come pre-approved.
    let admin_made = env
        .ok(
            &Who::Admin,
            "POST",
            CSRS,
            Some(approved(&node_csr("pre", "n1"))),
        )
        .await;
    assert!(admin_made.pointer("/status/conditions").is_none());

    // The list and `kubectl get csr` see them; tenant b does not.
    let list = env.ok(&Who::Admin, "GET", CSRS, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let selected = env
        .ok(
            &Who::Admin,
            "GET",
            &format!("{CSRS}?fieldSelector=spec.signerName%3Dexample.com%2Fnone"),
            None,
        )
        .await;
    assert!(selected["items"].as_array().unwrap().is_empty());
    let selected = env
        .ok(
            &Who::Admin,
            "GET",
            &format!(
                "{CSRS}?fieldSelector=spec.signerName%3D{}",
                KUBELET_SIGNER.replace('/', "%2F")
            ),
            None,
        )
        .await;
    assert_eq!(selected["items"].as_array().unwrap().len(), 3);
    let other = env
        .ok(
            &Who::Admin,
            "GET",
            "/clusters/b/apis/certificates.k8s.io/v1/certificatesigningrequests",
            None,
        )
        .await;
    assert!(other["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn invalid_requests_are_refused_with_upstreams_words() {
    let env = env().await;
    let mut garbage = node_csr("bad", "n1");
    garbage["spec"]["request"] =
        json!(base64::engine::general_purpose::STANDARD.encode("not a certificate request"));
    let (code, body) = env.call(&Who::Admin, "POST", CSRS, Some(garbage)).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("spec.request: Invalid value"),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PEM block type must be CERTIFICATE REQUEST")
    );

    let cases = [
        (
            "/spec/signerName",
            json!(""),
            "spec.signerName: Required value",
        ),
        (
            "/spec/signerName",
            json!("nodomain"),
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ),
        (
            "/spec/usages",
            json!(["client auth", "flying"]),
            "spec.usages[1]: Unsupported value: \"flying\"",
        ),
        (
            "/spec/usages",
            json!(["client auth", "client auth"]),
            "spec.usages[1]: Duplicate value: \"client auth\"",
        ),
        (
            "/spec/expirationSeconds",
            json!(60),
            "may not specify a duration less than 600 seconds (10 minutes)",
        ),
    ];
    for (pointer, value, message) in cases {
        let mut obj = node_csr("bad", "n1");
        let field = pointer.trim_start_matches("/spec/");
        obj["spec"][field] = value;
        let (code, body) = env.call(&Who::Admin, "POST", CSRS, Some(obj)).await;
        assert_eq!(code, 422, "{pointer}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{pointer}: {body}"
        );
    }
}

#[tokio::test]
async fn no_client_certificate_for_system_masters() {
    let env = env().await;
    let masters = csr(
        "kadmin",
        &request_pem("kadmin", &["system:masters"]),
        "kubernetes.io/kube-apiserver-client",
    );
    let (code, body) = env.call(&Who::Admin, "POST", CSRS, Some(masters)).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "certificatesigningrequests.certificates.k8s.io \"kadmin\" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"
    );
    // Other groups, and other signers, are fine.
    let devs = csr(
        "jane",
        &request_pem("jane", &["devs"]),
        "kubernetes.io/kube-apiserver-client",
    );
    env.ok(&Who::Admin, "POST", CSRS, Some(devs)).await;
    let elsewhere = csr(
        "other",
        &request_pem("kadmin", &["system:masters"]),
        "example.com/signer",
    );
    env.ok(&Who::Admin, "POST", CSRS, Some(elsewhere)).await;
}

#[tokio::test]
async fn approval_needs_approve_on_the_signer() {
    let env = env().await;
    let bootstrap = env.bootstrap_token().await;
    let created = env
        .ok(&bootstrap, "POST", CSRS, Some(node_csr("node-csr-1", "n1")))
        .await;
    let approval = format!("{CSRS}/node-csr-1/approval");

    // A user allowed to update the approval subresource but not to approve for the signer.
    let binding = |name: &str, role: &str, user: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
    };
    env.ok(
        &Who::Admin,
        "POST",
        "/clusters/a/apis/rbac.authorization.k8s.io/v1/clusterroles",
        Some(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "csr-approver"},
            "rules": [{"apiGroups": ["certificates.k8s.io"],
                "resources": ["certificatesigningrequests", "certificatesigningrequests/approval",
                    "certificatesigningrequests/status"],
                "verbs": ["get", "list", "update", "patch"]}]}),
        ),
    )
    .await;
    env.ok(
        &Who::Admin,
        "POST",
        "/clusters/a/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        Some(binding("jane-approves", "csr-approver", "jane")),
    )
    .await;
    let jane = env.cert("a", "jane", &[]).await;
    let (code, body) = env
        .call(&jane, "PUT", &approval, Some(approved(&created)))
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        format!(
            "certificatesigningrequests.certificates.k8s.io \"node-csr-1\" is forbidden: user not permitted to approve requests with signerName \"{KUBELET_SIGNER}\""
        )
    );

    assert_eq!(body["details"]["kind"], "certificatesigningrequests");

    // With upstream's approver role for the kubelet client signer, the same write passes.
    env.ok(
        &Who::Admin,
        "POST",
        "/clusters/a/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        Some(binding(
            "jane-approves-kubelets",
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            "jane",
        )),
    )
    .await;
    let done = env
        .ok(&jane, "PUT", &approval, Some(approved(&created)))
        .await;
    let conditions = &done["status"]["conditions"];
    assert_eq!(conditions[0]["type"], "Approved");
    assert_eq!(conditions[0]["reason"], "KubectlApprove");
    assert!(conditions[0]["lastUpdateTime"].is_string());
    assert_eq!(
        done["spec"], created["spec"],
        "approval leaves the spec alone"
    );

    // Approving is not signing: setting the certificate needs `sign` on the signer.
    let creds = env.api.credentials("a").await.unwrap().unwrap();
    let (cert, _) = creds
        .issue_client_certificate(
            "system:node:n1",
            &["system:nodes"],
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    let mut signed = done.clone();
    signed["status"]["certificate"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&cert));
    let status = format!("{CSRS}/node-csr-1/status");
    let (code, body) = env.call(&jane, "PUT", &status, Some(signed.clone())).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        format!(
            "certificatesigningrequests.certificates.k8s.io \"node-csr-1\" is forbidden: user not permitted to sign requests with signerName \"{KUBELET_SIGNER}\""
        )
    );
    // Other status writes need no `sign`.
    let mut failed = done.clone();
    failed["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "Failed", "status": "True", "reason": "R", "message": "m"}));
    let after = env.ok(&jane, "PUT", &status, Some(failed)).await;
    assert_eq!(after["status"]["conditions"][1]["type"], "Failed");
}

#[tokio::test]
async fn each_way_in_writes_only_its_part() {
    let env = env().await;
    let created = env
        .ok(&Who::Admin, "POST", CSRS, Some(node_csr("c", "n1")))
        .await;
    let path = format!("{CSRS}/c");

    // The main resource: labels change; spec and status do not.
    let mut edited = approved(&created);
    edited["metadata"]["labels"] = json!({"team": "x"});
    edited["spec"]["signerName"] = json!("example.com/other");
    let after = env.ok(&Who::Admin, "PUT", &path, Some(edited)).await;
    assert_eq!(after["metadata"]["labels"]["team"], "x");
    assert_eq!(after["spec"], created["spec"]);
    assert!(after.pointer("/status/conditions").is_none());

    // Status cannot approve.
    let after = env
        .ok(
            &Who::Admin,
            "PUT",
            &format!("{path}/status"),
            Some(approved(&after)),
        )
        .await;
    assert!(after.pointer("/status/conditions").is_none(), "{after}");

    // Approval by an administrator; then status may add a certificate, approval may not.
    let after = env
        .ok(
            &Who::Admin,
            "PATCH",
            &format!("{path}/approval"),
            Some(json!({"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "R"}]}})),
        )
        .await;
    assert_eq!(after["status"]["conditions"][0]["type"], "Approved");
    let creds = env.api.credentials("a").await.unwrap().unwrap();
    let (cert, _) = creds
        .issue_client_certificate(
            "system:node:n1",
            &["system:nodes"],
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&cert);
    let mut with_cert = after.clone();
    with_cert["status"]["certificate"] = json!(encoded);
    let ignored = env
        .ok(
            &Who::Admin,
            "PUT",
            &format!("{path}/approval"),
            Some(with_cert.clone()),
        )
        .await;
    assert!(ignored.pointer("/status/certificate").is_none());
    let issued = env
        .ok(
            &Who::Admin,
            "PUT",
            &format!("{path}/status"),
            Some(with_cert),
        )
        .await;
    assert_eq!(issued["status"]["certificate"], json!(encoded));
    assert_eq!(issued["status"]["conditions"][0]["type"], "Approved");

    // Garbage certificates and approvals taken back are refused.
    let mut garbage = issued.clone();
    garbage["status"]["certificate"] = json!(base64::engine::general_purpose::STANDARD.encode("x"));
    let (code, body) = env
        .call(&Who::Admin, "PUT", &format!("{path}/status"), Some(garbage))
        .await;
    assert_eq!(code, 422, "{body}");
    let mut unapproved = issued.clone();
    unapproved["status"]["conditions"] = json!([]);
    let (code, body) = env
        .call(
            &Who::Admin,
            "PUT",
            &format!("{path}/approval"),
            Some(unapproved),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("updates may not remove a condition of type \"Approved\""),
        "{body}"
    );
}

#[tokio::test]
async fn discovery_lists_the_resource_and_its_subresources() {
    let env = env().await;
    let list = env
        .ok(
            &Who::Admin,
            "GET",
            "/clusters/a/apis/certificates.k8s.io/v1",
            None,
        )
        .await;
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "certificatesigningrequests",
            "certificatesigningrequests/approval",
            "certificatesigningrequests/status"
        ]
    );
    assert_eq!(list["resources"][0]["shortNames"], json!(["csr"]));
}
