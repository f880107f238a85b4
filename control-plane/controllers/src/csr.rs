//! The cores of kube-controller-manager's CSR approving controller (`csrapproving`,
//! `pkg/controller/certificates/approver`) for kubelet client certificates, and of its signing
//! controllers (`csrsigning`, `pkg/controller/certificates/signer`) for the
//! `kubernetes.io/kube-apiserver-client-kubelet` and `kubernetes.io/kube-apiserver-client`
//! signers.
//!
//! Approval: [`recognize`] says which permissions would let a request be approved, in upstream's
//! order (`selfnodeclient` for a node renewing its own certificate, then `nodeclient` for a
//! bootstrapping kubelet); the shell asks the API with [`access_review`] and, when one is
//! allowed, writes [`approve`] through the `approval` subresource. Signing: [`signing`] says
//! whether an approved request gets a certificate (and for how long) or fails validation; the
//! shell signs with the cluster's CA and writes [`issued`] or [`failed`] through `status`.
//! Cleanup: [`cleanup`] is upstream's `csrcleaner`, deleting requests once they are done with.
//!
//! Neither the CA nor the clock is here: both are the shell's inputs.

use std::time::{Duration, SystemTime};

use base64::Engine;
use serde_json::{Value, json};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::meta;

/// The signer of kubelets' client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The signer of other clients' certificates for the API server.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// The longest a signed certificate is valid (upstream's `--cluster-signing-duration` default).
pub const MAX_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// The shortest a signed certificate is valid, whatever the request asks.
const MIN_VALIDITY: Duration = Duration::from_secs(600);

/// The parts of a PKCS#10 request the signers look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The subject's common name.
    pub common_name: String,
    /// The subject's organizations, in order.
    pub organizations: Vec<String>,
    /// Requested DNS names.
    pub dns_names: Vec<String>,
    /// Requested e-mail addresses.
    pub emails: Vec<String>,
    /// Requested IP addresses (as bytes).
    pub ips: usize,
    /// Requested URIs.
    pub uris: Vec<String>,
}

/// The PEM text of `spec.request` (which JSON carries as base64).
pub fn request_pem(csr: &Value) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(meta::str_at(csr, "/spec/request"))
        .map_err(|e| format!("spec.request is not base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_owned())
}

/// The request in `spec.request`, parsed.
pub fn parse_request(csr: &Value) -> Result<Request, String> {
    let pem = request_pem(csr)?.into_bytes();
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_owned())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    }
    let (_, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| format!("x509: {e}"))?;
    let subject = &req.certification_request_info.subject;
    let text = |a: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        a.as_str().unwrap_or_default().to_owned()
    };
    let mut out = Request {
        common_name: subject
            .iter_common_name()
            .next()
            .map(text)
            .unwrap_or_default(),
        organizations: subject.iter_organization().map(text).collect(),
        ..Request::default()
    };
    for ext in req.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => out.dns_names.push((*d).to_owned()),
                    GeneralName::RFC822Name(e) => out.emails.push((*e).to_owned()),
                    GeneralName::IPAddress(_) => out.ips += 1,
                    GeneralName::URI(u) => out.uris.push((*u).to_owned()),
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

fn usages(csr: &Value) -> Vec<&str> {
    csr.pointer("/spec/usages")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn same_set(usages: &[&str], want: &[&str]) -> bool {
    usages.iter().all(|u| want.contains(u)) && want.iter().all(|w| usages.contains(w))
}

/// Upstream's `ValidateKubeletClientCSR`: a kubelet's client certificate names only
/// `system:node:<name>` in `system:nodes`, with no alternative names, for client auth.
pub fn validate_kubelet_client(req: &Request, usages: &[&str]) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if !req.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if !req.emails.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if req.ips > 0 {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    let with_rsa = ["client auth", "digital signature", "key encipherment"];
    if !same_set(usages, &with_rsa) && !same_set(usages, &with_rsa[..2]) {
        return Err(format!("usages did not match [{}]", with_rsa.join(" ")));
    }
    Ok(())
}

/// Upstream's `validAPIServerClientUsages`.
fn validate_client_usages(usages: &[&str]) -> Result<(), String> {
    for u in usages {
        if !matches!(*u, "digital signature" | "key encipherment" | "client auth") {
            return Err(format!("invalid usage for client certificate: {u}"));
        }
    }
    if !usages.contains(&"client auth") {
        return Err("missing required usage for client certificate: client auth".into());
    }
    Ok(())
}

fn has_true_condition(csr: &Value, kind: &str) -> bool {
    csr.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn has_condition(csr: &Value, kind: &str) -> bool {
    csr.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        })
}

fn has_certificate(csr: &Value) -> bool {
    !meta::str_at(csr, "/status/certificate").is_empty()
}

/// A permission that approves a request when its requester holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recognized {
    /// The subresource of `certificatesigningrequests` the requester must be allowed to
    /// `create`.
    pub subresource: &'static str,
    /// The approval condition's message.
    pub message: &'static str,
}

const SELF_NODE_CLIENT: Recognized = Recognized {
    subresource: "selfnodeclient",
    message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
};
const NODE_CLIENT: Recognized = Recognized {
    subresource: "nodeclient",
    message: "Auto approving kubelet client certificate after SubjectAccessReview.",
};

/// The permissions to try, in order, for a request the approver may approve; empty when it
/// has nothing to do (already approved, denied or issued; not a kubelet client certificate).
pub fn recognize(csr: &Value) -> Vec<Recognized> {
    if has_certificate(csr) || has_condition(csr, "Approved") || has_condition(csr, "Denied") {
        return Vec::new();
    }
    if meta::str_at(csr, "/spec/signerName") != KUBELET_CLIENT_SIGNER {
        return Vec::new();
    }
    let Ok(req) = parse_request(csr) else {
        return Vec::new();
    };
    if validate_kubelet_client(&req, &usages(csr)).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    if meta::str_at(csr, "/spec/username") == req.common_name {
        out.push(SELF_NODE_CLIENT);
    }
    out.push(NODE_CLIENT);
    out
}

/// The SubjectAccessReview asking whether the request's author may `create`
/// `certificatesigningrequests/<subresource>`.
pub fn access_review(csr: &Value, subresource: &str) -> Value {
    let spec = csr.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut review_spec = json!({
        "user": spec.get("username").cloned().unwrap_or_else(|| json!("")),
        "resourceAttributes": {
            "group": "certificates.k8s.io",
            "resource": "certificatesigningrequests",
            "verb": "create",
            "subresource": subresource,
        },
    });
    for f in ["uid", "groups", "extra"] {
        if let Some(v) = spec.get(f).filter(|v| !v.is_null()) {
            review_spec[f] = v.clone();
        }
    }
    json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": review_spec,
    })
}

fn with_condition(csr: &Value, condition: Value) -> Value {
    let mut out = csr.clone();
    if !out.get("status").is_some_and(Value::is_object) {
        out["status"] = json!({});
    }
    let status = out["status"].as_object_mut().expect("just made an object");
    let list = status.entry("conditions").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    list.as_array_mut().expect("an array").push(condition);
    out
}

/// The request with upstream's `Approved` condition (`AutoApproved`), to write through the
/// approval subresource.
pub fn approve(csr: &Value, message: &str, now: SystemTime) -> Value {
    let now = meta::format_time(meta::unix_seconds(now));
    with_condition(
        csr,
        json!({
            "type": "Approved", "status": "True", "reason": "AutoApproved", "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now,
        }),
    )
}

/// What the signers do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signing {
    /// Nothing: not approved, already failed or issued, or another signer's.
    Nothing,
    /// The request cannot be signed: record a `Failed` condition with this message.
    Fail(String),
    /// Sign it, valid for this long.
    Sign(Duration),
}

/// Whether and how the kubelet client and API server client signers sign `csr`.
pub fn signing(csr: &Value) -> Signing {
    if !has_true_condition(csr, "Approved")
        || has_true_condition(csr, "Failed")
        || has_certificate(csr)
    {
        return Signing::Nothing;
    }
    let usages = usages(csr);
    let valid = match meta::str_at(csr, "/spec/signerName") {
        KUBELET_CLIENT_SIGNER => {
            parse_request(csr).and_then(|req| validate_kubelet_client(&req, &usages))
        }
        CLIENT_SIGNER => parse_request(csr).and_then(|_| validate_client_usages(&usages)),
        _ => return Signing::Nothing,
    };
    match valid {
        Err(message) => Signing::Fail(message),
        Ok(()) => Signing::Sign(validity(
            csr.pointer("/spec/expirationSeconds")
                .and_then(Value::as_i64),
        )),
    }
}

/// Upstream's `duration`: what the request asks, between ten minutes and [`MAX_VALIDITY`].
fn validity(expiration_seconds: Option<i64>) -> Duration {
    match expiration_seconds {
        None => MAX_VALIDITY,
        Some(s) => Duration::from_secs(s.max(0) as u64).clamp(MIN_VALIDITY, MAX_VALIDITY),
    }
}

/// The request with its signed certificate (PEM), to write through the status subresource.
pub fn issued(csr: &Value, certificate_pem: &str) -> Value {
    let mut out = csr.clone();
    if !out.get("status").is_some_and(Value::is_object) {
        out["status"] = json!({});
    }
    out["status"]["certificate"] =
        json!(base64::engine::general_purpose::STANDARD.encode(certificate_pem));
    out
}

/// The request with upstream's `Failed` condition (`SignerValidationFailure`), to write
/// through the status subresource.
pub fn failed(csr: &Value, message: &str, now: SystemTime) -> Value {
    let now = meta::format_time(meta::unix_seconds(now));
    with_condition(
        csr,
        json!({
            "type": "Failed", "status": "True", "reason": "SignerValidationFailure",
            "message": message, "lastUpdateTime": now, "lastTransitionTime": now,
        }),
    )
}

/// How long an issued request (from its approval) and a denied or failed one (from its
/// condition) are kept (upstream's cleaner's `approvedExpiration`, `deniedExpiration`).
pub const DECIDED_KEPT: Duration = Duration::from_secs(3600);
/// How long a request nobody decided on is kept (`pendingExpiration`).
pub const PENDING_KEPT: Duration = Duration::from_secs(24 * 3600);

/// What the cleaner (`csrcleaner`, `pkg/controller/certificates/cleaner`) does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Delete it now.
    Delete,
    /// Look again after this long.
    After(Duration),
    /// Nothing will make it due (approved, not yet issued).
    Never,
}

fn condition_time(csr: &Value, kind: &str) -> Option<i64> {
    csr.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        .map(|c| {
            c.get("lastUpdateTime")
                .and_then(Value::as_str)
                .and_then(meta::parse_time)
                .unwrap_or(0)
        })
}

/// The `notAfter` of the first certificate in `status.certificate`, in Unix seconds.
fn certificate_not_after(csr: &Value) -> Option<i64> {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(meta::str_at(csr, "/status/certificate"))
        .ok()?;
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&block.contents).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Upstream's cleaner rules: a pending request goes a day after it was made, a denied or failed
/// one an hour after that condition, an issued one an hour after its approval or when its
/// certificate expires, whichever is first.
pub fn cleanup(csr: &Value, now: SystemTime) -> Cleanup {
    let now = meta::unix_seconds(now);
    let kept = |d: Duration| d.as_secs() as i64;
    let no_conditions = csr
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_none_or(|c| c.is_empty());
    let mut deadlines = Vec::new();
    if no_conditions {
        let created = meta::parse_time(meta::str_at(csr, "/metadata/creationTimestamp"));
        deadlines.push(created.unwrap_or(0) + kept(PENDING_KEPT));
    }
    for kind in ["Denied", "Failed"] {
        if let Some(t) = condition_time(csr, kind) {
            deadlines.push(t + kept(DECIDED_KEPT));
        }
    }
    if has_certificate(csr) {
        if let Some(t) = condition_time(csr, "Approved") {
            deadlines.push(t + kept(DECIDED_KEPT));
        }
        if let Some(t) = certificate_not_after(csr) {
            deadlines.push(t);
        }
    }
    match deadlines.into_iter().min() {
        None => Cleanup::Never,
        Some(d) if d <= now => Cleanup::Delete,
        Some(d) => Cleanup::After(Duration::from_secs((d - now) as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_TEXT: &str = "2026-01-01T00:00:00Z";
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
    }

    fn request_pem(cn: &str, orgs: &[&str], dns: &[&str]) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .unwrap();
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

    fn csr(signer: &str, username: &str, pem: &str, usages: &[&str]) -> Value {
        json!({
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": "node-csr-1", "resourceVersion": "5"},
            "spec": {
                "signerName": signer, "username": username, "groups": ["system:bootstrappers"],
                "request": base64::engine::general_purpose::STANDARD.encode(pem),
                "usages": usages,
            },
        })
    }

    const KUBELET_USAGES: &[&str] = &["digital signature", "client auth"];

    #[test]
    fn kubelet_client_requests_are_recognized_in_upstreams_order() {
        let node = request_pem("system:node:n1", &["system:nodes"], &[]);
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "bootstrapping kubelet",
                csr(
                    KUBELET_CLIENT_SIGNER,
                    "system:bootstrap:abcdef",
                    &node,
                    KUBELET_USAGES,
                ),
                vec!["nodeclient"],
            ),
            (
                "renewal by the node itself",
                csr(
                    KUBELET_CLIENT_SIGNER,
                    "system:node:n1",
                    &node,
                    KUBELET_USAGES,
                ),
                vec!["selfnodeclient", "nodeclient"],
            ),
            (
                "key encipherment allowed",
                csr(
                    KUBELET_CLIENT_SIGNER,
                    "system:bootstrap:abcdef",
                    &node,
                    &["key encipherment", "client auth", "digital signature"],
                ),
                vec!["nodeclient"],
            ),
            (
                "server auth is not a kubelet client usage",
                csr(
                    KUBELET_CLIENT_SIGNER,
                    "system:bootstrap:abcdef",
                    &node,
                    &["digital signature", "client auth", "server auth"],
                ),
                vec![],
            ),
            (
                "another signer",
                csr(
                    CLIENT_SIGNER,
                    "system:bootstrap:abcdef",
                    &node,
                    KUBELET_USAGES,
                ),
                vec![],
            ),
            (
                "not system:nodes",
                csr(
                    KUBELET_CLIENT_SIGNER,
                    "system:bootstrap:abcdef",
                    &request_pem("system:node:n1", &["system:masters"], &[]),
                    KUBELET_USAGES,
                ),
                vec![],
            ),
            (
                "not a node name",
                csr(
                    KUBELET_CLIENT_SIGNER,
                    "system:bootstrap:abcdef",
                    &request_pem("admin", &["system:nodes"], &[]),
                    KUBELET_USAGES,
                ),
                vec![],
            ),
            (
                "alternative names",
                csr(
                    KUBELET_CLIENT_SIGNER,
                    "system:bootstrap:abcdef",
                    &request_pem("system:node:n1", &["system:nodes"], &["n1.example.com"]),
                    KUBELET_USAGES,
                ),
                vec![],
            ),
        ];
        for (name, csr, want) in cases {
            let got: Vec<&str> = recognize(&csr).iter().map(|r| r.subresource).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn approval_is_decided_once() {
        let node = request_pem("system:node:n1", &["system:nodes"], &[]);
        let pending = csr(
            KUBELET_CLIENT_SIGNER,
            "system:bootstrap:abcdef",
            &node,
            KUBELET_USAGES,
        );
        let approved = approve(&pending, NODE_CLIENT.message, now());
        assert_eq!(
            approved["status"]["conditions"],
            json!([{"type": "Approved", "status": "True", "reason": "AutoApproved",
                "message": "Auto approving kubelet client certificate after SubjectAccessReview.",
                "lastUpdateTime": NOW_TEXT, "lastTransitionTime": NOW_TEXT}])
        );
        assert!(recognize(&approved).is_empty(), "approved: nothing more");
        let mut denied = pending.clone();
        denied["status"] = json!({"conditions": [{"type": "Denied", "status": "True"}]});
        assert!(recognize(&denied).is_empty(), "denied: left alone");
    }

    #[test]
    fn the_access_review_asks_as_the_requester() {
        let node = request_pem("system:node:n1", &["system:nodes"], &[]);
        let mut c = csr(
            KUBELET_CLIENT_SIGNER,
            "system:bootstrap:abcdef",
            &node,
            KUBELET_USAGES,
        );
        c["spec"]["extra"] = json!({"k": ["v"]});
        assert_eq!(
            access_review(&c, "nodeclient"),
            json!({
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {
                    "user": "system:bootstrap:abcdef", "groups": ["system:bootstrappers"],
                    "extra": {"k": ["v"]},
                    "resourceAttributes": {"group": "certificates.k8s.io",
                        "resource": "certificatesigningrequests", "verb": "create",
                        "subresource": "nodeclient"},
                },
            })
        );
    }

    #[test]
    fn signing_table() {
        let node = request_pem("system:node:n1", &["system:nodes"], &[]);
        let user = request_pem("jane", &["devs"], &[]);
        let year = MAX_VALIDITY;
        let approved = |c: Value| approve(&c, "ok", now());
        let with_expiry = |mut c: Value, s: i64| {
            c["spec"]["expirationSeconds"] = json!(s);
            c
        };
        let u = "system:bootstrap:abcdef";
        let cases: Vec<(&str, Value, Signing)> = vec![
            (
                "pending",
                csr(KUBELET_CLIENT_SIGNER, u, &node, KUBELET_USAGES),
                Signing::Nothing,
            ),
            (
                "approved kubelet client",
                approved(csr(KUBELET_CLIENT_SIGNER, u, &node, KUBELET_USAGES)),
                Signing::Sign(year),
            ),
            (
                "asks for an hour",
                approved(with_expiry(
                    csr(KUBELET_CLIENT_SIGNER, u, &node, KUBELET_USAGES),
                    3600,
                )),
                Signing::Sign(Duration::from_secs(3600)),
            ),
            (
                "asks for ten years: capped",
                approved(with_expiry(
                    csr(KUBELET_CLIENT_SIGNER, u, &node, KUBELET_USAGES),
                    10 * 365 * 24 * 3600,
                )),
                Signing::Sign(year),
            ),
            (
                "approved API server client",
                approved(csr(CLIENT_SIGNER, u, &user, &["client auth"])),
                Signing::Sign(year),
            ),
            (
                "client with server auth",
                approved(csr(
                    CLIENT_SIGNER,
                    u,
                    &user,
                    &["client auth", "server auth"],
                )),
                Signing::Fail("invalid usage for client certificate: server auth".into()),
            ),
            (
                "client without client auth",
                approved(csr(CLIENT_SIGNER, u, &user, &["digital signature"])),
                Signing::Fail("missing required usage for client certificate: client auth".into()),
            ),
            (
                "kubelet signer, not a node",
                approved(csr(KUBELET_CLIENT_SIGNER, u, &user, KUBELET_USAGES)),
                Signing::Fail("subject organization is not system:nodes".into()),
            ),
            (
                "another signer",
                approved(csr("example.com/mine", u, &user, &["client auth"])),
                Signing::Nothing,
            ),
        ];
        for (name, csr, want) in cases {
            assert_eq!(signing(&csr), want, "{name}");
        }
    }

    #[test]
    fn issued_and_failed_requests_are_signed_no_more() {
        let node = request_pem("system:node:n1", &["system:nodes"], &[]);
        let c = approve(
            &csr(KUBELET_CLIENT_SIGNER, "u", &node, KUBELET_USAGES),
            "ok",
            now(),
        );
        let done = issued(&c, "-----BEGIN CERTIFICATE-----\n...");
        assert_eq!(
            done["status"]["certificate"],
            json!(
                base64::engine::general_purpose::STANDARD
                    .encode("-----BEGIN CERTIFICATE-----\n...")
            )
        );
        assert_eq!(signing(&done), Signing::Nothing);
        let bad = failed(&c, "broken", now());
        assert_eq!(
            bad["status"]["conditions"][1],
            json!({"type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                "message": "broken", "lastUpdateTime": NOW_TEXT, "lastTransitionTime": NOW_TEXT})
        );
        assert_eq!(signing(&bad), Signing::Nothing);
    }

    #[test]
    fn garbage_is_not_recognized_and_fails_signing() {
        let mut c = csr(KUBELET_CLIENT_SIGNER, "u", "not a request", KUBELET_USAGES);
        assert!(recognize(&c).is_empty());
        c = approve(&c, "ok", now());
        assert_eq!(
            signing(&c),
            Signing::Fail("PEM block type must be CERTIFICATE REQUEST".into())
        );
    }

    #[test]
    fn the_cleaner_keeps_requests_as_long_as_upstream() {
        let node = request_pem("system:node:n1", &["system:nodes"], &[]);
        let mut pending = csr(KUBELET_CLIENT_SIGNER, "u", &node, KUBELET_USAGES);
        pending["metadata"]["creationTimestamp"] = json!("2025-12-31T12:00:00Z");
        assert_eq!(
            cleanup(&pending, now()),
            Cleanup::After(Duration::from_secs(12 * 3600)),
            "pending: a day after creation"
        );
        let mut old = pending.clone();
        old["metadata"]["creationTimestamp"] = json!("2025-12-30T00:00:00Z");
        assert_eq!(cleanup(&old, now()), Cleanup::Delete);

        let approved = approve(&pending, "ok", now());
        assert_eq!(
            cleanup(&approved, now()),
            Cleanup::Never,
            "approved, waiting for its signer"
        );
        let later = now() + Duration::from_secs(600);
        let denied = with_condition(
            &pending,
            json!({"type": "Denied", "status": "True", "lastUpdateTime": NOW_TEXT}),
        );
        assert_eq!(
            cleanup(&denied, later),
            Cleanup::After(Duration::from_secs(3000))
        );
        let failed_long_ago = failed(&approved, "broken", now());
        assert_eq!(
            cleanup(&failed_long_ago, now() + Duration::from_secs(3600)),
            Cleanup::Delete
        );

        // Issued: an hour after approval, or when the certificate expires if sooner.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.not_after = rcgen::date_time_ymd(2026, 1, 1);
        let short = params.self_signed(&key).unwrap().pem();
        params.not_after = rcgen::date_time_ymd(2027, 1, 1);
        let long = params.self_signed(&key).unwrap().pem();
        assert_eq!(
            cleanup(&issued(&approved, &long), later),
            Cleanup::After(Duration::from_secs(3000))
        );
        assert_eq!(cleanup(&issued(&approved, &short), later), Cleanup::Delete);
    }
}
