//! Dynamic admission, as upstream's `admission/plugin/webhook` and
//! `admission/plugin/policy/validating`: ValidatingAdmissionPolicy with its bindings, and
//! mutating and validating admission webhooks called over HTTPS with `admission.k8s.io/v1`
//! `AdmissionReview`s. The API server builds a [`Compiled`] from the stored
//! `admissionregistration.k8s.io/v1` objects (plain JSON), rebuilds it when they change, and on
//! every write calls [`Compiled::mutate`] after its built-in mutating admission and
//! [`Compiled::validate`] after its built-in validating admission; a [`Denial`] is the `Status`
//! to answer with, in upstream's words.
//!
//! It is not a store client, an HTTP server or a validator of the configuration objects
//! themselves (that is the object model's job): it never reads namespaces or parameters on its
//! own (the caller puts the namespace object in [`Attributes`] and reads policy parameters for
//! it through a [`ParamSource`]), it knows no version conversion (webhooks and policies see the
//! object in the version the request used, so `matchPolicy: Equivalent` behaves as `Exact`),
//! and CEL's `authorizer` is refused as unsupported configuration, through the failure policy.

mod attributes;
mod client;
mod matching;
mod params;
mod policy;
mod status;
mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};

pub use attributes::{Attributes, Gvk, Gvr, Operation, UserInfo};
pub use futures::future::BoxFuture;
pub use params::{NoParams, ParamScope, ParamSource};
pub use status::Denial;

use client::Clients;
pub use client::is_internal;
use policy::{Binding, Policy};
use webhook::Webhook;

/// Maps a webhook's `service` reference (namespace, name, port, path) to the URL to dial, e.g.
/// `https://10.0.0.7:8443/validate`; `None` when the service has no endpoints. The TLS server
/// name stays `<name>.<namespace>.svc`, as upstream.
pub type ServiceResolver<'a> = &'a (dyn Fn(&str, &str, u16, &str) -> Option<String> + Sync);

/// What the mutating webhooks did to a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MutateOutcome {
    /// The object after every patch; `None` when the request had no object (DELETE, CONNECT).
    pub object: Option<Value>,
    /// Whether any webhook changed the object (the caller then runs its own defaulting again).
    pub changed: bool,
    /// Warnings for the client, in order.
    pub warnings: Vec<String>,
    /// Audit annotations: `<webhook>/<key>` from responses, and upstream's
    /// `mutation.webhook.admission.k8s.io/round_<r>_index_<i>` and
    /// `patch.webhook.admission.k8s.io/round_<r>_index_<i>` records.
    pub audit_annotations: BTreeMap<String, String>,
}

/// What the policies and validating webhooks said about an admitted request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Validated {
    /// Warnings for the client, in order (policies' `Warn` actions, then webhooks').
    pub warnings: Vec<String>,
    /// Audit annotations: `<policy>/<key>`, `<webhook>/<key>` and
    /// `validation.policy.admission.k8s.io/validation_failure`.
    pub audit_annotations: BTreeMap<String, String>,
}

/// Identity of a stored object for recompilation: kind, name, uid and resourceVersion.
type Key = (String, String, String, String);

fn key_of(o: &Value) -> Key {
    let s = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (
        s("/kind"),
        s("/metadata/name"),
        s("/metadata/uid"),
        s("/metadata/resourceVersion"),
    )
}

#[derive(Debug)]
enum Entry {
    Policy(Policy),
    Binding(Binding),
    Mutating(Vec<Webhook>),
    Validating(Vec<Webhook>),
}

/// The compiled dynamic admission configuration of one cluster: every
/// ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, MutatingWebhookConfiguration and
/// ValidatingWebhookConfiguration, with their CEL compiled once per resourceVersion, and the
/// pooled HTTPS clients. Cheap to rebuild with [`Compiled::update`].
#[derive(Debug, Default)]
pub struct Compiled {
    entries: BTreeMap<Key, Arc<Entry>>,
    clients: Arc<Clients>,
}

impl Compiled {
    /// Compiles `objects`: any mix of the four kinds (others are ignored), as stored.
    pub fn new(objects: &[Value]) -> Compiled {
        Compiled::default().update(objects)
    }

    /// Compiles `objects` for a cluster whose webhooks may not reach this machine: names that
    /// resolve only to loopback, link-local or unspecified addresses are not dialled (the
    /// request fails as the webhook's `failurePolicy` says). [`Compiled::update`] keeps this.
    pub fn new_public_only(objects: &[Value]) -> Compiled {
        Compiled {
            entries: BTreeMap::new(),
            clients: Arc::new(client::Clients::public_only()),
        }
        .update(objects)
    }

    /// The Services (namespace, name, port) that webhooks reach through `clientConfig.service`,
    /// each once: what a caller resolves before [`Compiled::mutate`] or
    /// [`Compiled::validate`], whose resolver cannot wait for reads.
    pub fn service_references(&self) -> Vec<(String, String, u16)> {
        let mut refs: Vec<(String, String, u16)> = self
            .entries
            .values()
            .flat_map(|e| match &**e {
                Entry::Mutating(hooks) | Entry::Validating(hooks) => hooks.as_slice(),
                _ => &[],
            })
            .filter_map(Webhook::service)
            .collect();
        refs.sort();
        refs.dedup();
        refs
    }

    /// Whether `objects` differ from those this was compiled from (by kind, name, uid and
    /// resourceVersion).
    pub fn is_stale(&self, objects: &[Value]) -> bool {
        let keys: BTreeSet<Key> = objects
            .iter()
            .map(key_of)
            .filter(|k| is_config_kind(&k.0))
            .collect();
        keys.len() != self.entries.len() || keys.iter().any(|k| !self.entries.contains_key(k))
    }

    /// A configuration for `objects` that reuses what is unchanged since `self` (compiled CEL,
    /// connections).
    pub fn update(&self, objects: &[Value]) -> Compiled {
        let mut entries = BTreeMap::new();
        for o in objects {
            let key = key_of(o);
            if !is_config_kind(&key.0) {
                continue;
            }
            if let Some(e) = self.entries.get(&key) {
                entries.insert(key, e.clone());
                continue;
            }
            let entry = match key.0.as_str() {
                "ValidatingAdmissionPolicy" => Entry::Policy(Policy::compile(o)),
                "ValidatingAdmissionPolicyBinding" => Entry::Binding(Binding::compile(o)),
                kind => {
                    let hooks = o
                        .get("webhooks")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|w| Webhook::compile(&key.1, w))
                        .collect();
                    if kind == "MutatingWebhookConfiguration" {
                        Entry::Mutating(hooks)
                    } else {
                        Entry::Validating(hooks)
                    }
                }
            };
            entries.insert(key, Arc::new(entry));
        }
        let used = entries
            .values()
            .filter_map(|e| match &**e {
                Entry::Mutating(h) | Entry::Validating(h) => Some(h.iter()),
                _ => None,
            })
            .flatten()
            .map(Webhook::client_key)
            .collect();
        self.clients.retain(&used);
        Compiled {
            entries,
            clients: self.clients.clone(),
        }
    }

    /// Runs the mutating webhooks over `attrs` in upstream's order (configurations by name,
    /// webhooks in their order), each seeing the previous one's result, then reinvokes once the
    /// `reinvocationPolicy: IfNeeded` webhooks that ran before a later webhook changed the
    /// object.
    pub async fn mutate(
        &self,
        attrs: &Attributes,
        resolver: ServiceResolver<'_>,
    ) -> Result<MutateOutcome, Denial> {
        let mut out = MutateOutcome {
            object: attrs.object.clone(),
            ..MutateOutcome::default()
        };
        if matching::is_exempt(attrs) {
            return Ok(out);
        }
        let hooks: Vec<&Webhook> = self
            .entries
            .values()
            .filter_map(|e| match &**e {
                Entry::Mutating(h) => Some(h.iter()),
                _ => None,
            })
            .flatten()
            .collect();
        let mut a = attrs.clone();
        let mut previously_invoked: Vec<usize> = Vec::new();
        let mut to_reinvoke: BTreeSet<usize> = BTreeSet::new();
        for round in 0..2 {
            if round == 1 && to_reinvoke.is_empty() {
                break;
            }
            for (i, hook) in hooks.iter().enumerate() {
                if round == 1 && !to_reinvoke.contains(&i) {
                    continue;
                }
                if !hook.should_call(&a)? {
                    continue;
                }
                let mut annotations = Vec::new();
                let result = hook
                    .call(
                        &a,
                        true,
                        &self.clients,
                        resolver,
                        &mut out.warnings,
                        &mut annotations,
                    )
                    .await;
                out.audit_annotations.extend(annotations);
                let mut changed = false;
                match result {
                    Ok(Some((patched, patch))) => {
                        changed = a.object.as_ref() != Some(&patched);
                        out.audit_annotations.insert(
                            format!("patch.webhook.admission.k8s.io/round_{round}_index_{i}"),
                            json!({
                                "configuration": hook.configuration,
                                "webhook": hook.name,
                                "patch": patch,
                                "patchType": "JSONPatch",
                            })
                            .to_string(),
                        );
                        a.object = Some(patched);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        if let Some(d) = e.into_denial(hook) {
                            return Err(d);
                        }
                        out.audit_annotations.insert(
                            format!(
                                "failed-open.mutation.webhook.admission.k8s.io/round_{round}_index_{i}"
                            ),
                            hook.name.clone(),
                        );
                    }
                }
                out.audit_annotations.insert(
                    format!("mutation.webhook.admission.k8s.io/round_{round}_index_{i}"),
                    json!({
                        "configuration": hook.configuration,
                        "webhook": hook.name,
                        "mutated": changed,
                    })
                    .to_string(),
                );
                if changed {
                    out.changed = true;
                    to_reinvoke.extend(previously_invoked.drain(..));
                }
                if hook.reinvoke_if_needed {
                    previously_invoked.push(i);
                }
            }
        }
        out.object = a.object;
        Ok(out)
    }

    /// [`Compiled::validate_with_params`] for a server that serves no param kinds: policies
    /// with a `paramKind` fail to configure.
    pub async fn validate(
        &self,
        attrs: &Attributes,
        resolver: ServiceResolver<'_>,
    ) -> Result<Validated, Denial> {
        self.validate_with_params(attrs, resolver, &NoParams).await
    }

    /// Runs the ValidatingAdmissionPolicies (policies by name, their bindings by name), then
    /// the validating webhooks, concurrently as upstream; the first denial in that order wins.
    /// Policies with a `paramKind` read their parameters from `params`.
    pub async fn validate_with_params(
        &self,
        attrs: &Attributes,
        resolver: ServiceResolver<'_>,
        params: &dyn ParamSource,
    ) -> Result<Validated, Denial> {
        let mut out = Validated::default();
        if matching::is_exempt(attrs) {
            return Ok(out);
        }
        let mut policies = Vec::new();
        let mut bindings = Vec::new();
        let mut hooks = Vec::new();
        for e in self.entries.values() {
            match &**e {
                Entry::Policy(p) => policies.push(p),
                Entry::Binding(b) => bindings.push(b),
                Entry::Validating(h) => hooks.extend(h.iter()),
                Entry::Mutating(_) => {}
            }
        }
        let result = policy::validate(&policies, &bindings, attrs, params).await?;
        out.warnings = result.warnings;
        out.audit_annotations = result.audit_annotations;

        let mut relevant = Vec::new();
        for hook in hooks {
            if hook.should_call(attrs)? {
                relevant.push(hook);
            }
        }
        let calls = relevant.iter().map(|hook| async {
            let mut warnings = Vec::new();
            let mut annotations = Vec::new();
            let r = hook
                .call(
                    attrs,
                    false,
                    &self.clients,
                    resolver,
                    &mut warnings,
                    &mut annotations,
                )
                .await;
            (
                r.err().and_then(|e| e.into_denial(hook)),
                warnings,
                annotations,
            )
        });
        let mut first = None;
        for (denial, warnings, annotations) in futures::future::join_all(calls).await {
            out.warnings.extend(warnings);
            out.audit_annotations.extend(annotations);
            if first.is_none() {
                first = denial;
            }
        }
        match first {
            Some(d) => Err(d),
            None => Ok(out),
        }
    }
}

fn is_config_kind(kind: &str) -> bool {
    matches!(
        kind,
        "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
    )
}
