//! Admission webhooks: one compiled `MutatingWebhook` or `ValidatingWebhook`, whether it applies
//! to a request (upstream `generic.Webhook.ShouldCallHook`) and one call to it (the dispatchers'
//! `callHook`).

use std::time::Duration;

use base64::Engine;
use cel_rules::Outcome;
use serde_json::Value;

use crate::ServiceResolver;
use crate::attributes::Attributes;
use crate::client::{ClientKey, Clients, Target};
use crate::matching::{Rule, Selector};
use crate::policy::Expr;
use crate::status::Denial;

/// The variables a webhook's match conditions may read (`authorizer` is not supported).
const MATCH_VARS: &[&str] = &["object", "oldObject", "request"];

/// Where a webhook lives.
#[derive(Debug, Clone)]
enum Endpoint {
    Url(String),
    Service {
        namespace: String,
        name: String,
        port: u16,
        path: String,
    },
    Missing,
}

/// One compiled webhook of a configuration.
#[derive(Debug)]
pub(crate) struct Webhook {
    pub(crate) name: String,
    pub(crate) configuration: String,
    endpoint: Endpoint,
    ca_bundle: Vec<u8>,
    rules: Vec<Rule>,
    fail_closed: bool,
    namespace_selector: Selector,
    object_selector: Selector,
    side_effects: Option<String>,
    timeout: Duration,
    review_versions: Vec<String>,
    pub(crate) reinvoke_if_needed: bool,
    conditions: Vec<Expr>,
}

/// Why a call failed (upstream `ErrCallingWebhook`, `ErrWebhookRejection` and other errors).
pub(crate) enum CallError {
    /// The webhook could not be called or answered nonsense; subject to `failurePolicy`.
    Calling(String),
    /// The webhook said no.
    Rejected(Denial),
    /// Refused whatever the failure policy (dry run unsupported, patch that does not apply).
    Other(Denial),
}

impl CallError {
    /// The denial under `failurePolicy: Fail`, `None` when the error is ignored.
    pub(crate) fn into_denial(self, hook: &Webhook) -> Option<Denial> {
        match self {
            CallError::Calling(reason) => hook.fail_closed.then(|| {
                Denial::internal(&format!("failed calling webhook {:?}: {reason}", hook.name))
            }),
            CallError::Rejected(d) | CallError::Other(d) => Some(d),
        }
    }
}

impl Webhook {
    /// Compiles webhook `w` of configuration `configuration`.
    pub(crate) fn compile(configuration: &str, w: &Value) -> Webhook {
        let s = |p: &str| w.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let cc = w.get("clientConfig").unwrap_or(&Value::Null);
        let endpoint = if let Some(url) = cc.get("url").and_then(Value::as_str) {
            Endpoint::Url(url.to_owned())
        } else if let Some(svc) = cc.get("service").filter(|v| v.is_object()) {
            let g = |k: &str| {
                svc.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Endpoint::Service {
                namespace: g("namespace"),
                name: g("name"),
                port: svc
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(443),
                path: g("path"),
            }
        } else {
            Endpoint::Missing
        };
        // caBundle is []byte: base64 in JSON; tolerate PEM given as is.
        let ca_bundle = match cc.get("caBundle").and_then(Value::as_str) {
            Some(b) if b.contains("-----BEGIN") => b.as_bytes().to_vec(),
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let timeout = w
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(10)
            .clamp(1, 30);
        let review_versions = w
            .get("admissionReviewVersions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_else(|| vec!["v1".to_owned()]);
        Webhook {
            name: s("/name").unwrap_or_default(),
            configuration: configuration.to_owned(),
            endpoint,
            ca_bundle,
            rules: Rule::parse_list(w.get("rules")),
            fail_closed: s("/failurePolicy").as_deref() != Some("Ignore"),
            namespace_selector: Selector::parse(w.get("namespaceSelector")),
            object_selector: Selector::parse(w.get("objectSelector")),
            side_effects: s("/sideEffects"),
            timeout: Duration::from_secs(timeout),
            review_versions,
            reinvoke_if_needed: s("/reinvocationPolicy").as_deref() == Some("IfNeeded"),
            conditions: w
                .get("matchConditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|m| {
                    let src = m
                        .get("expression")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    Expr::compile(src, MATCH_VARS, &[])
                })
                .collect(),
        }
    }

    /// Upstream `ShouldCallHook`: selectors, rules, then match conditions. `Err` refuses the
    /// request (a selector that cannot be evaluated, a match condition that fails to evaluate
    /// under `failurePolicy: Fail`).
    pub(crate) fn should_call(&self, a: &Attributes) -> Result<bool, Denial> {
        let ns = self.namespace_selector.matches_namespace(a);
        if let Ok(false) = ns {
            return Ok(false);
        }
        let obj = self.object_selector.matches_object(a);
        if let Ok(false) = obj {
            return Ok(false);
        }
        // matchPolicy Equivalent needs the API server's table of equivalent resources; without
        // it, Equivalent behaves as Exact.
        if !self.rules.iter().any(|r| r.matches(a)) {
            return Ok(false);
        }
        ns?;
        obj?;
        if self.conditions.is_empty() {
            return Ok(true);
        }
        let object = a.object.clone().unwrap_or(Value::Null);
        let old = a.old_object.clone().unwrap_or(Value::Null);
        let request = a.cel_request();
        let activation: [(&str, &Value); 3] = [
            ("object", &object),
            ("oldObject", &old),
            ("request", &request),
        ];
        let mut errors = Vec::new();
        for c in &self.conditions {
            match c.eval(&activation) {
                Ok(Outcome::Bool(false)) => return Ok(false),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            return Ok(true);
        }
        if !self.fail_closed {
            return Ok(false);
        }
        let message = if errors.len() == 1 {
            errors.remove(0)
        } else {
            format!("[{}]", errors.join(", "))
        };
        Err(Denial::forbidden(
            &a.resource.group,
            &a.resource.resource,
            &a.name,
            &message,
        ))
    }

    /// Calls the webhook. For a mutating webhook, returns the patched object and the patch when
    /// it sent one; warnings and audit annotations (keyed `<webhook>/<key>`) are appended to `out`.
    pub(crate) async fn call(
        &self,
        a: &Attributes,
        mutating: bool,
        clients: &Clients,
        resolver: ServiceResolver<'_>,
        warnings: &mut Vec<String>,
        annotations: &mut Vec<(String, String)>,
    ) -> Result<Option<(Value, Value)>, CallError> {
        if a.dry_run {
            match self.side_effects.as_deref() {
                None => return Err(CallError::Calling("Webhook SideEffects is nil".into())),
                Some("None" | "NoneOnDryRun") => {}
                Some(_) => {
                    return Err(CallError::Other(Denial::bad_request(format!(
                        "admission webhook {:?} does not support dry run",
                        self.name
                    ))));
                }
            }
        }
        let version = self
            .review_versions
            .iter()
            .find(|v| *v == "v1" || *v == "v1beta1")
            .ok_or_else(|| {
                CallError::Calling(
                    "could not create admission objects: webhook does not accept known AdmissionReview versions (v1, v1beta1)".into(),
                )
            })?;
        let uid = uuid::Uuid::new_v4().to_string();
        let mut review = a.admission_review(&uid);
        review["apiVersion"] = format!("admission.k8s.io/{version}").into();
        let target = self.target(resolver)?;
        let body = serde_json::to_vec(&review).unwrap_or_default();
        let resp = clients
            .post(&target, &self.ca_bundle, body, self.timeout)
            .await
            .map_err(|e| CallError::Calling(format!("failed to call webhook: {e}")))?;
        let invalid =
            |e: String| CallError::Calling(format!("received invalid webhook response: {e}"));
        let resp: Value = serde_json::from_slice(&resp)
            .map_err(|e| invalid(format!("couldn't get version/kind; json parse error: {e}")))?;
        let r = resp
            .get("response")
            .filter(|r| r.is_object())
            .ok_or_else(|| invalid("webhook response was absent".into()))?;
        let patch = r.get("patch").and_then(Value::as_str).unwrap_or_default();
        let patch_type = r.get("patchType").filter(|p| !p.is_null());
        if version == "v1" {
            let got = r.get("uid").and_then(Value::as_str).unwrap_or_default();
            if got != uid {
                return Err(invalid(format!(
                    "expected response.uid={uid:?}, got {got:?}"
                )));
            }
            let api_version = resp
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let kind = resp.get("kind").and_then(Value::as_str).unwrap_or_default();
            if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
                let (g, v) = api_version.rsplit_once('/').unwrap_or(("", api_version));
                let got = if g.is_empty() {
                    format!("/{v}, Kind={kind}")
                } else {
                    format!("{g}/{v}, Kind={kind}")
                };
                return Err(invalid(format!(
                    "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {got}"
                )));
            }
            if mutating {
                if !patch.is_empty() && patch_type.is_none() {
                    return Err(invalid(
                        "webhook returned response.patch but not response.patchType".into(),
                    ));
                }
                if patch.is_empty() && patch_type.is_some() {
                    return Err(invalid(
                        "webhook returned response.patchType but not response.patch".into(),
                    ));
                }
            } else {
                if !patch.is_empty() {
                    return Err(invalid(
                        "validating webhook may not return response.patch".into(),
                    ));
                }
                if patch_type.is_some() {
                    return Err(invalid(
                        "validating webhook may not return response.patchType".into(),
                    ));
                }
            }
        }
        if let Some(m) = r.get("auditAnnotations").and_then(Value::as_object) {
            for (k, v) in m {
                annotations.push((
                    format!("{}/{k}", self.name),
                    v.as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        if let Some(ws) = r.get("warnings").and_then(Value::as_array) {
            warnings.extend(ws.iter().filter_map(|w| w.as_str().map(str::to_owned)));
        }
        if r.get("allowed").and_then(Value::as_bool) != Some(true) {
            return Err(CallError::Rejected(Denial::webhook_rejection(
                &self.name,
                r.get("status").filter(|s| s.is_object()),
            )));
        }
        if !mutating || patch.is_empty() {
            return Ok(None);
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .map_err(|e| {
                CallError::Calling(format!(
                    "received undecodable patch in webhook response: {e}"
                ))
            })?;
        let ops: Value = serde_json::from_slice(&raw).map_err(|e| {
            CallError::Calling(format!(
                "received undecodable patch in webhook response: {e}"
            ))
        })?;
        if ops.is_null() || ops.as_array().is_some_and(Vec::is_empty) {
            return Ok(None);
        }
        if !ops.is_array() {
            let e = objects::patch::json_patch(&Value::Null, &ops)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return Err(CallError::Calling(format!(
                "received undecodable patch in webhook response: {e}"
            )));
        }
        let Some(object) = &a.object else {
            return Err(CallError::Other(Denial::internal(&format!(
                "admission webhook {:?} attempted to modify the object, which is not supported for this operation",
                self.name
            ))));
        };
        let pt = patch_type.and_then(Value::as_str).unwrap_or("JSONPatch");
        if pt != "JSONPatch" {
            return Err(CallError::Calling(format!("unsupported patch type {pt:?}")));
        }
        // The object model's RFC 6902 implementation speaks upstream's json-patch error texts.
        let patched = objects::patch::json_patch(object, &ops)
            .map_err(|e| CallError::Other(Denial::internal(&e.to_string())))?;
        Ok(Some((patched, ops)))
    }

    /// The key of the pooled client this webhook is called with.
    pub(crate) fn client_key(&self) -> ClientKey {
        let server_name = match &self.endpoint {
            Endpoint::Service {
                namespace, name, ..
            } => Some(format!("{name}.{namespace}.svc")),
            _ => None,
        };
        (self.ca_bundle.clone(), server_name)
    }

    /// The Service this webhook is reached through, if any: (namespace, name, port).
    pub(crate) fn service(&self) -> Option<(String, String, u16)> {
        match &self.endpoint {
            Endpoint::Service {
                namespace,
                name,
                port,
                ..
            } => Some((namespace.clone(), name.clone(), *port)),
            _ => None,
        }
    }

    fn target(&self, resolver: ServiceResolver<'_>) -> Result<Target, CallError> {
        match &self.endpoint {
            Endpoint::Url(u) => Ok(Target {
                dial: u.clone(),
                display: u.clone(),
                server_name: None,
            }),
            Endpoint::Service {
                namespace,
                name,
                port,
                path,
            } => {
                let host = format!("{name}.{namespace}.svc");
                let display = format!("https://{host}:{port}{path}");
                match resolver(namespace, name, *port, path) {
                    Some(dial) => Ok(Target {
                        dial,
                        display,
                        server_name: Some(host),
                    }),
                    None => Err(CallError::Calling(format!(
                        "failed to call webhook: Post \"{display}?timeout={}s\": no endpoints available for service {name:?}",
                        self.timeout.as_secs()
                    ))),
                }
            }
            Endpoint::Missing => Err(CallError::Calling(
                "could not get REST client: neither url nor service reference set".into(),
            )),
        }
    }
}
