//! CertificateSigningRequests (`certificates.k8s.io/v1`), as upstream's registry strategy and
//! validation treat them (`pkg/registry/certificates/certificates`,
//! `pkg/apis/certificates/validation`).
//!
//! Who asked is recorded by the server on create, never taken from the client. After create the
//! spec never changes, and each way in changes only its part of the status: the main resource
//! nothing, `status` everything but the `Approved`/`Denied` conditions, `approval` only those.
//! Signing is not done here: signers are controllers that write `status.certificate`.

use base64::Engine;
use objects::field::{FieldError, Path};
use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::registry::{ResourceDef, Subresource};

/// The API group.
pub(crate) const GROUP: &str = "certificates.k8s.io";

/// The key usages a request may ask for (upstream's `allValidUsages`), sorted as upstream lists
/// them in errors.
const VALID_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// Condition types only the approval subresource may add or change.
const APPROVAL_TYPES: &[&str] = &["Approved", "Denied"];
/// Condition types whose status may only be `True`, and that no update may remove.
const TERMINAL_TYPES: &[&str] = &["Approved", "Denied", "Failed"];

/// Whether `def` is CertificateSigningRequests.
pub(crate) fn is_csr(def: &ResourceDef) -> bool {
    def.group == GROUP && def.kind == "CertificateSigningRequest"
}

/// Records the requesting user in the spec (whatever the client sent there) and starts with an
/// empty status: nobody creates a pre-approved request.
pub(crate) fn prepare_create(obj: &mut Value, user: Option<&UserInfo>) {
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    let spec = obj["spec"].as_object_mut().expect("just made an object");
    for f in ["username", "uid", "groups", "extra"] {
        spec.remove(f);
    }
    if let Some(user) = user {
        spec.insert("username".into(), json!(user.name));
        if !user.uid.is_empty() {
            spec.insert("uid".into(), json!(user.uid));
        }
        if !user.groups.is_empty() {
            spec.insert("groups".into(), json!(user.groups));
        }
        if !user.extra.is_empty() {
            spec.insert("extra".into(), json!(user.extra));
        }
    }
    if let Some(map) = obj.as_object_mut() {
        map.remove("status");
    }
}

fn conditions(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn condition_type(c: &Value) -> &str {
    c.get("type").and_then(Value::as_str).unwrap_or_default()
}

fn is_approval(c: &Value) -> bool {
    APPROVAL_TYPES.contains(&condition_type(c))
}

fn set_conditions(obj: &mut Value, conditions: Vec<Value>) {
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    let status = obj["status"].as_object_mut().expect("just made an object");
    if conditions.is_empty() {
        status.remove("conditions");
    } else {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    if status.is_empty() {
        obj.as_object_mut().expect("object").remove("status");
    }
}

/// Applies the strategy of `sub` to an update: `new` (already merged by the generic rules for
/// its subresource) keeps `current`'s spec, and only the part of the status `sub` owns changes.
/// Conditions get their timestamps when the writer left them out.
pub(crate) fn prepare_update(
    sub: Option<Subresource>,
    current: &Value,
    new: &mut Value,
    now: &str,
) {
    match current.get("spec") {
        Some(spec) => new["spec"] = spec.clone(),
        None => {
            if let Some(map) = new.as_object_mut() {
                map.remove("spec");
            }
        }
    }
    let old = conditions(current);
    let conditions = match sub {
        Some(Subresource::Status) => {
            let mut kept: Vec<Value> = old.iter().filter(|c| is_approval(c)).cloned().collect();
            kept.extend(conditions(new).into_iter().filter(|c| !is_approval(c)));
            kept
        }
        Some(Subresource::Approval) => {
            let mut kept: Vec<Value> = conditions(new).into_iter().filter(is_approval).collect();
            kept.extend(old.iter().filter(|c| !is_approval(c)).cloned());
            // Everything else in the status stays as it was.
            match current.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            kept
        }
        _ => old.clone(),
    };
    let stamped = conditions
        .into_iter()
        .map(|mut c| {
            if let Some(map) = c.as_object_mut() {
                let same = old.iter().find(|o| {
                    condition_type(o) == map.get("type").and_then(Value::as_str).unwrap_or("")
                        && o.get("status") == map.get("status")
                });
                if !map.get("lastUpdateTime").is_some_and(|v| v.is_string()) {
                    map.insert("lastUpdateTime".into(), json!(now));
                }
                if !map.get("lastTransitionTime").is_some_and(|v| v.is_string()) {
                    let t = same
                        .and_then(|o| o.get("lastTransitionTime"))
                        .filter(|v| v.is_string())
                        .cloned()
                        .unwrap_or_else(|| json!(now));
                    map.insert("lastTransitionTime".into(), t);
                }
            }
            c
        })
        .collect();
    set_conditions(new, stamped);
}

/// The bytes of a `[]byte` field, which JSON carries as base64.
fn bytes_at(obj: &Value, pointer: &str) -> Option<Vec<u8>> {
    let text = obj.pointer(pointer).and_then(Value::as_str)?;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Parses the PEM `CERTIFICATE REQUEST` and checks its signature (upstream's `validateCSR`).
pub(crate) fn check_request(pem: &[u8]) -> Result<(), String> {
    const WRONG_TYPE: &str = "PEM block type must be CERTIFICATE REQUEST";
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| WRONG_TYPE.to_owned())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(WRONG_TYPE.into());
    }
    let der = rustls::pki_types::CertificateSigningRequestDer::from(block.contents.as_slice());
    rcgen::CertificateSigningRequestParams::from_der(&der)
        .map(|_| ())
        .map_err(|e| format!("x509: {e}"))
}

/// Upstream's `CertificateSubjectRestriction` admission: requests to the API server client
/// signer may not name `system:masters` among their organizations (no client certificate made
/// through the API may bypass authorization). The message, for a 403, when refused.
pub(crate) fn subject_restriction(obj: &Value) -> Option<String> {
    const SIGNER: &str = "kubernetes.io/kube-apiserver-client";
    if str_at(obj, "/spec/signerName") != SIGNER {
        return None;
    }
    let pem = bytes_at(obj, "/spec/request")?;
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let (_, req) =
        <x509_parser::certification_request::X509CertificationRequest<'_> as x509_parser::prelude::FromDer<'_, _>>::from_der(&block.contents).ok()?;
    let masters = req
        .certification_request_info
        .subject
        .iter_organization()
        .any(|o| o.as_str() == Ok("system:masters"));
    masters.then(|| format!("use of {SIGNER} signer with system:masters group is not allowed"))
}

/// Checks that `pem` holds only CERTIFICATE blocks, at least one, each a certificate
/// (upstream's `validateCertificate`).
fn check_certificate(pem: &[u8]) -> Result<(), String> {
    let mut blocks = 0;
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| e.to_string())?;
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {:?}",
                block.label
            ));
        }
        x509_parser::parse_x509_certificate(&block.contents).map_err(|e| format!("x509: {e}"))?;
        blocks += 1;
    }
    if blocks == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}

/// Upstream's `ValidateSignerName`: `<domain>/<path>`.
fn signer_name_errors(path: &Path, name: &str) -> Vec<FieldError> {
    use objects::validation::names::dns1123_subdomain;
    if name.is_empty() {
        return vec![FieldError::required(path.clone(), "")];
    }
    let segments: Vec<&str> = name.split('/').collect();
    let [domain, rest] = segments.as_slice() else {
        return vec![FieldError::invalid(
            path.clone(),
            name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        )];
    };
    let mut errors = Vec::new();
    if domain.len() > 253 {
        errors.push(FieldError::too_long(path.clone(), 253));
    }
    for e in dns1123_subdomain(domain) {
        errors.push(FieldError::invalid(path.clone(), *domain, e));
    }
    if domain.split('.').count() < 2 {
        errors.push(FieldError::invalid(
            path.clone(),
            *domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    for label in rest.split('.') {
        let problems = dns1123_subdomain(label);
        if !problems.is_empty() {
            for e in problems {
                errors.push(FieldError::invalid(
                    path.clone(),
                    *rest,
                    format!("validating label {label:?}: {e}"),
                ));
            }
            break;
        }
    }
    let max = 253 + (253 + 63 + 1) + 1;
    if name.len() > max {
        errors.push(FieldError::too_long(path.clone(), max));
    }
    errors
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Validation of a request to be stored: on create (`old` is `None`) and on every update, where
/// `sub` is the way in.
pub(crate) fn validate(
    obj: &Value,
    old: Option<&Value>,
    sub: Option<Subresource>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let spec = Path::new("spec");
    // Rules added after data could exist are relaxed for what was stored before them, as
    // upstream's validation options do; Berth has no such data, so they always apply.
    match bytes_at(obj, "/spec/request") {
        Some(pem) => {
            if let Err(e) = check_request(&pem) {
                errors.push(FieldError::invalid(
                    spec.child("request"),
                    str_at(obj, "/spec/request"),
                    e,
                ));
            }
        }
        None => errors.push(FieldError::invalid(
            spec.child("request"),
            str_at(obj, "/spec/request"),
            "PEM block type must be CERTIFICATE REQUEST",
        )),
    }
    let usages: Vec<&str> = obj
        .pointer("/spec/usages")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|u| u.as_str().unwrap_or_default()).collect())
        .unwrap_or_default();
    if usages.is_empty() {
        errors.push(FieldError::required(spec.child("usages"), ""));
    }
    for (i, usage) in usages.iter().enumerate() {
        if !VALID_USAGES.contains(usage) {
            errors.push(FieldError::not_supported(
                spec.child("usages").index(i),
                *usage,
                VALID_USAGES,
            ));
        }
        if usages[..i].contains(usage) {
            errors.push(FieldError::duplicate(spec.child("usages").index(i), *usage));
        }
    }
    let signer = str_at(obj, "/spec/signerName");
    if signer == "kubernetes.io/legacy-unknown" {
        errors.push(FieldError::invalid(
            spec.child("signerName"),
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errors.extend(signer_name_errors(&spec.child("signerName"), signer));
    }
    if let Some(secs) = obj
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        && secs < 600
    {
        errors.push(FieldError::invalid(
            spec.child("expirationSeconds"),
            secs,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    errors.extend(condition_errors(obj));
    let certificate = bytes_at(obj, "/status/certificate").unwrap_or_default();
    let old_certificate = old
        .and_then(|o| bytes_at(o, "/status/certificate"))
        .unwrap_or_default();
    if !certificate.is_empty()
        && (old.is_none() || certificate != old_certificate)
        && let Err(e) = check_certificate(&certificate)
    {
        errors.push(FieldError::invalid(
            Path::new("status").child("certificate"),
            "<certificate data>",
            e,
        ));
    }
    let Some(old) = old else {
        return errors;
    };
    let conditions_path = Path::new("status").child("conditions");
    let (new_conditions, old_conditions) = (conditions(obj), conditions(old));
    let of_type = |list: &[Value], t: &str| -> Vec<Value> {
        list.iter()
            .filter(|c| condition_type(c) == t)
            .cloned()
            .collect()
    };
    for t in TERMINAL_TYPES {
        if of_type(&new_conditions, t).len() < of_type(&old_conditions, t).len() {
            errors.push(FieldError::forbidden(
                conditions_path.clone(),
                format!("updates may not remove a condition of type {t:?}"),
            ));
        }
    }
    if sub != Some(Subresource::Approval) {
        for t in APPROVAL_TYPES {
            let (n, o) = (of_type(&new_conditions, t), of_type(&old_conditions, t));
            if n.len() > o.len() {
                errors.push(FieldError::forbidden(
                    conditions_path.clone(),
                    format!("updates may not add a condition of type {t:?}"),
                ));
            } else if n.len() == o.len() && n != o {
                errors.push(FieldError::forbidden(
                    conditions_path.clone(),
                    format!("updates may not modify a condition of type {t:?}"),
                ));
            }
        }
    }
    if certificate != old_certificate {
        let path = Path::new("status").child("certificate");
        if sub != Some(Subresource::Status) {
            errors.push(FieldError::forbidden(
                path,
                "updates may not set certificate content",
            ));
        } else if !old_certificate.is_empty() {
            errors.push(FieldError::forbidden(
                path,
                "updates may not modify existing certificate content",
            ));
        }
    }
    errors
}

fn condition_errors(obj: &Value) -> Vec<FieldError> {
    let path = Path::new("status").child("conditions");
    let mut errors = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let (mut approved, mut denied) = (false, false);
    let list = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, c) in list.iter().enumerate() {
        let t = condition_type(c);
        if t.is_empty() {
            errors.push(FieldError::required(path.index(i).child("type"), ""));
        }
        let status = c.get("status").and_then(Value::as_str).unwrap_or_default();
        let allowed: &[&str] = if TERMINAL_TYPES.contains(&t) {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if status.is_empty() {
            errors.push(FieldError::required(path.index(i).child("status"), ""));
        } else if !allowed.contains(&status) {
            errors.push(FieldError::not_supported(
                path.index(i).child("status"),
                status,
                allowed,
            ));
        }
        match t {
            "Approved" => {
                approved = true;
                if denied {
                    errors.push(exclusive(&path, i, t));
                }
            }
            "Denied" => {
                denied = true;
                if approved {
                    errors.push(exclusive(&path, i, t));
                }
            }
            _ => {}
        }
        if seen.contains(&t) {
            errors.push(FieldError::duplicate(path.index(i).child("type"), t));
        }
        seen.push(t);
    }
    errors
}

fn exclusive(path: &Path, i: usize, t: &str) -> FieldError {
    FieldError::invalid(
        path.index(i).child("type"),
        t,
        "Approved and Denied conditions are mutually exclusive",
    )
}
