//! Policy parameters: a policy's `paramKind` and a binding's `paramRef`, resolved as upstream's
//! `generic.CollectParams` (k8s.io/apiserver/pkg/admission/plugin/policy/generic/
//! policy_dispatcher.go). The objects come from the caller's [`ParamSource`], so this crate
//! stays free of storage; what to ask for and what the answer means is decided here.

use futures::future::BoxFuture;
use objects::selectors::LabelSelector;
use serde_json::Value;

use crate::attributes::{Attributes, Gvk};

/// How the server serves a param kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamScope {
    /// Objects live in namespaces.
    Namespaced,
    /// Objects are cluster-scoped.
    Cluster,
}

/// The objects policies may take their parameters from: those of the request's logical cluster.
/// Called only for policies with a `paramKind` (policies without one cost nothing).
pub trait ParamSource: Sync {
    /// The scope of `kind` (from `paramKind`), or `Ok(None)` when the server does not serve it.
    fn scope<'a>(&'a self, kind: &'a Gvk) -> BoxFuture<'a, Result<Option<ParamScope>, String>>;

    /// The objects of `kind` in `namespace` (`None` for cluster-scoped kinds): only the one
    /// named `name` when given (none if it does not exist), else all of them.
    fn objects<'a>(
        &'a self,
        kind: &'a Gvk,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Value>, String>>;
}

/// A source that serves no param kinds: every `paramKind` is a configuration error.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoParams;

impl ParamSource for NoParams {
    fn scope<'a>(&'a self, _: &'a Gvk) -> BoxFuture<'a, Result<Option<ParamScope>, String>> {
        Box::pin(async { Ok(None) })
    }

    fn objects<'a>(
        &'a self,
        _: &'a Gvk,
        _: Option<&'a str>,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Value>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// A policy's `paramKind`: the kind, or why its `apiVersion` does not parse.
pub(crate) type ParamKind = Result<Gvk, String>;

pub(crate) fn parse_param_kind(v: &Value) -> ParamKind {
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    // Upstream `schema.ParseGroupVersion`.
    let (group, version) = match api_version.split('/').collect::<Vec<_>>()[..] {
        [""] => ("", ""),
        [v] => ("", v),
        [g, v] => (g, v),
        _ => {
            return Err(format!(
                "failed to parse paramKind apiVersion: unexpected GroupVersion string: {api_version}"
            ));
        }
    };
    Ok(Gvk::new(group, version, kind))
}

/// Upstream `GroupVersionKind.String()`: `group/version, Kind=kind`.
pub(crate) fn gvk_string(k: &Gvk) -> String {
    format!("{}/{}, Kind={}", k.group, k.version, k.kind)
}

/// A binding's `paramRef`.
#[derive(Debug)]
pub(crate) struct ParamRef {
    name: String,
    namespace: String,
    selector: Option<Result<LabelSelector, String>>,
    deny_not_found: bool,
}

impl ParamRef {
    pub(crate) fn parse(v: &Value) -> ParamRef {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        ParamRef {
            name: s("name"),
            namespace: s("namespace"),
            selector: v
                .get("selector")
                .filter(|s| !s.is_null())
                .map(|s| LabelSelector::from_api(s).map_err(|e| e.0)),
            deny_not_found: s("parameterNotFoundAction") == "Deny",
        }
    }
}

/// The params to evaluate a binding with, one evaluation each (upstream `CollectParams`):
/// `[null]` without `paramKind` or `paramRef`, possibly none (`parameterNotFoundAction:
/// Allow`). An error is a configuration error of the binding.
pub(crate) async fn collect(
    kind: Option<(&Gvk, ParamScope)>,
    param_ref: Option<&ParamRef>,
    a: &Attributes,
    source: &dyn ParamSource,
) -> Result<Vec<Value>, String> {
    let (Some((kind, scope)), Some(r)) = (kind, param_ref) else {
        return Ok(vec![Value::Null]);
    };
    let namespace = match scope {
        ParamScope::Cluster if !r.namespace.is_empty() => {
            return Err(
                "paramRef.namespace must not be provided for a cluster-scoped `paramKind`".into(),
            );
        }
        ParamScope::Cluster => None,
        ParamScope::Namespaced if !r.namespace.is_empty() => Some(r.namespace.as_str()),
        ParamScope::Namespaced if !a.namespace.is_empty() => Some(a.namespace.as_str()),
        ParamScope::Namespaced => {
            return Err(
                "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
                    .into(),
            );
        }
    };
    let params = if !r.name.is_empty() {
        if r.selector.is_some() {
            return Err("paramRef.name and paramRef.selector are mutually exclusive".into());
        }
        source.objects(kind, namespace, Some(&r.name)).await?
    } else if let Some(selector) = &r.selector {
        let selector = selector.as_ref().map_err(Clone::clone)?;
        let mut all = source.objects(kind, namespace, None).await?;
        all.retain(|o| selector.matches_object(o));
        all
    } else {
        return Err("one of name or selector must be provided".into());
    };
    if params.is_empty() && r.deny_not_found {
        return Err(
            "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
        );
    }
    Ok(params)
}
