//! Client certificates through the certificates API of a real `berth server`, with stock kubectl:
//! a user's request waits for an administrator's `kubectl certificate approve`, the server's
//! signer issues the certificate, and kubectl signed in with it is that user.

mod support;

use std::time::Duration;

use support::kubectl::{Kubectl, which};
use support::{Replica, free_port};

fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_approved_request_becomes_a_working_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let data = dir.path().join("server");
    let replica = Replica::start(1, &addr, &data, &[]);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(replica.wait_ready(Duration::from_secs(30)));
    let kubeconfig = data.join("admin.kubeconfig");
    eventually(Duration::from_secs(10), "admin.kubeconfig", || {
        kubeconfig.exists().then_some(())
    });
    let admin = Kubectl {
        bin: which("kubectl").expect("kubectl is installed"),
        kubeconfig: kubeconfig.clone(),
        cache: tempfile::tempdir().unwrap(),
    };

    // Jane's key stays with her; the request carries only the public half.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "jane");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "devs");
    let request = params.serialize_request(&key).unwrap().pem().unwrap();
    let csr = serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "jane"},
        "spec": {
            "request": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &request),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "expirationSeconds": 3600,
        },
    });
    admin.ok_in(&["create", "-f", "-"], Some(&csr.to_string()));
    let listed = admin.ok(&["get", "csr"]);
    let row = listed
        .lines()
        .find(|l| l.starts_with("jane "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        row.contains("kubernetes.io/kube-apiserver-client") && row.contains("Pending"),
        "{listed}"
    );
    assert!(
        listed.lines().next().unwrap().contains("REQUESTEDDURATION"),
        "{listed}"
    );

    admin.ok(&["certificate", "approve", "jane"]);
    let certificate = eventually(Duration::from_secs(20), "the certificate", || {
        let out = admin.ok(&["get", "csr", "jane", "-o", "jsonpath={.status.certificate}"]);
        (!out.trim().is_empty()).then(|| out.trim().to_owned())
    });
    let row = admin.ok(&["get", "csr", "jane", "--no-headers"]);
    assert!(row.contains("Approved,Issued"), "{row}");
    let pem = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, certificate)
        .expect("status.certificate is base64");

    // Jane's kubeconfig: the admin's server and CA, her certificate and key.
    let jane_dir = tempfile::tempdir().unwrap();
    let jane_config = jane_dir.path().join("config");
    std::fs::copy(&kubeconfig, &jane_config).unwrap();
    let (cert_file, key_file) = (
        jane_dir.path().join("jane.crt"),
        jane_dir.path().join("jane.key"),
    );
    std::fs::write(&cert_file, &pem).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let jane = Kubectl {
        bin: admin.bin.clone(),
        kubeconfig: jane_config,
        cache: tempfile::tempdir().unwrap(),
    };
    jane.ok(&[
        "config",
        "set-credentials",
        "jane",
        &format!("--client-certificate={}", cert_file.display()),
        &format!("--client-key={}", key_file.display()),
        "--embed-certs",
    ]);
    jane.ok(&["config", "set-context", "--current", "--user=jane"]);
    let who = jane.ok(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(who.trim(), "jane");
    let groups = jane.ok(&["auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}"]);
    assert!(groups.contains("devs"), "{groups}");
    // She is nobody special: RBAC still decides what she may do.
    let out = jane.run(&["get", "secrets", "-n", "kube-system"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
