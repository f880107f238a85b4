//! Dynamic admission: the ValidatingAdmissionPolicies and admission webhooks a cluster
//! configures, compiled once per configuration change (the `webhooks` crate) and run on every
//! write after the built-in plugins: mutating webhooks after built-in mutation, policies and
//! validating webhooks after built-in validation and before ResourceQuota, as upstream orders
//! them.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use crate::cluster_cache::ClusterCache;
use crate::error::{ApiError, ApiResult};
use crate::handlers::Ctx;
use crate::storage;

/// The group whose objects configure dynamic admission.
const GROUP: &str = "admissionregistration.k8s.io";

/// Every cluster's compiled configuration (`None`: it configures nothing, the common case).
pub(crate) struct Dynamic {
    cache: ClusterCache<Option<Arc<webhooks::Compiled>>>,
    /// The last compilation of each cluster, reused (compiled CEL, connections) by the next.
    last: Mutex<HashMap<String, Arc<webhooks::Compiled>>>,
}

impl Default for Dynamic {
    fn default() -> Self {
        Dynamic {
            cache: ClusterCache::new("/admissionregistration.k8s.io/"),
            last: Mutex::default(),
        }
    }
}

impl Dynamic {
    /// Forgets `cluster`'s configuration (one of its objects changed).
    pub(crate) fn invalidate(&self, cluster: &str) {
        self.cache.invalidate(cluster);
    }

    async fn compiled(&self, ctx: &Ctx<'_>) -> ApiResult<Option<Arc<webhooks::Compiled>>> {
        self.cache
            .get(ctx.objects.store(), ctx.cluster, || async {
                let prefix = format!("/registry/{}/{GROUP}/", ctx.cluster);
                let kvs = ctx
                    .objects
                    .store()
                    .range(store::RangeRequest {
                        consistency: store::Consistency::Serializable,
                        ..store::RangeRequest::prefix(bytes::Bytes::from(prefix))
                    })
                    .await?
                    .kvs;
                if kvs.is_empty() {
                    self.last.lock().remove(ctx.cluster);
                    return Ok(None);
                }
                let objects: Vec<Value> = kvs
                    .iter()
                    .filter_map(|kv| storage::decode(kv).ok())
                    .collect();
                let previous = self.last.lock().get(ctx.cluster).cloned();
                let compiled = Arc::new(match previous {
                    Some(p) => p.update(&objects),
                    None => webhooks::Compiled::new(&objects),
                });
                self.last
                    .lock()
                    .insert(ctx.cluster.to_owned(), Arc::clone(&compiled));
                Ok(Some(compiled))
            })
            .await
    }
}

/// Service references resolve to nothing yet: the API server does not reach cluster networks.
fn no_services(_namespace: &str, _name: &str, _port: u16, _path: &str) -> Option<String> {
    None
}

fn denied(d: webhooks::Denial) -> ApiError {
    let mut e = ApiError::forbidden(d.message.clone());
    e.code = d.code;
    e.reason = match d.reason.as_str() {
        "Invalid" => "Invalid",
        "BadRequest" => "BadRequest",
        "InternalError" => "InternalError",
        "NotFound" => "NotFound",
        "Unauthorized" => "Unauthorized",
        "RequestEntityTooLarge" => "RequestEntityTooLarge",
        "" => "",
        _ => "Forbidden",
    };
    e.details = d.details;
    e
}

async fn attributes(
    ctx: &Ctx<'_>,
    op: webhooks::Operation,
    obj: Option<&Value>,
    old: Option<&Value>,
) -> ApiResult<webhooks::Attributes> {
    let def = ctx.def;
    let mut a = webhooks::Attributes::new(
        op,
        webhooks::Gvk::new(&def.group, &def.version, &def.kind),
        webhooks::Gvr::new(&def.group, &def.version, &def.plural),
    );
    a.subresource = ctx.req.subresource.clone().unwrap_or_default();
    a.namespace = ctx.namespace_name().unwrap_or_default().to_owned();
    a.name = obj
        .or(old)
        .and_then(|o| o.pointer("/metadata/name"))
        .and_then(Value::as_str)
        .or(ctx.req.name.as_deref())
        .unwrap_or_default()
        .to_owned();
    a.object = obj.cloned();
    a.old_object = old.cloned();
    a.dry_run = ctx.params.dry_run;
    if let Some(u) = ctx.user {
        a.user = webhooks::UserInfo {
            username: u.name.clone(),
            uid: u.uid.clone(),
            groups: u.groups.clone(),
            extra: Default::default(),
        };
    }
    let options_kind = match op {
        webhooks::Operation::Create => "CreateOptions",
        webhooks::Operation::Update => "UpdateOptions",
        webhooks::Operation::Delete => "DeleteOptions",
        webhooks::Operation::Connect => "",
    };
    if !options_kind.is_empty() {
        let mut options = serde_json::json!({"kind": options_kind, "apiVersion": "meta.k8s.io/v1"});
        if let Some(m) = &ctx.params.field_manager
            && op != webhooks::Operation::Delete
        {
            options["fieldManager"] = serde_json::json!(m);
        }
        a.options = Some(options);
    }
    if let Some(ns) = ctx.namespace_name() {
        let ns_def = crate::registry::builtin_def("", "namespaces").expect("built in");
        let key = storage::object_key(ctx.cluster, ns_def, None, ns);
        a.namespace_object = ctx
            .objects
            .get_with(&key, store::Consistency::Serializable)
            .await?;
    }
    Ok(a)
}

/// Runs the mutating webhooks; `obj` becomes what they made of it. Returns their warnings.
pub(crate) async fn mutate(
    ctx: &Ctx<'_>,
    op: webhooks::Operation,
    obj: &mut Value,
    old: Option<&Value>,
) -> ApiResult<Vec<String>> {
    if !ctx.plugins.enabled("MutatingAdmissionWebhook") {
        return Ok(Vec::new());
    }
    let Some(compiled) = ctx.dynamic.compiled(ctx).await? else {
        return Ok(Vec::new());
    };
    let attrs = attributes(ctx, op, Some(obj), old).await?;
    let outcome = compiled
        .mutate(&attrs, &no_services)
        .await
        .map_err(denied)?;
    if outcome.changed
        && let Some(new) = outcome.object
    {
        *obj = new;
        // Upstream defaults again after a webhook's patch.
        crate::rules::default(objects::GroupKind::new(&ctx.def.group, &ctx.def.kind), obj);
    }
    Ok(outcome.warnings)
}

/// Runs the policies and validating webhooks. Returns their warnings; a refusal is the error.
pub(crate) async fn validate(
    ctx: &Ctx<'_>,
    op: webhooks::Operation,
    obj: Option<&Value>,
    old: Option<&Value>,
) -> ApiResult<Vec<String>> {
    if !ctx.plugins.enabled("ValidatingAdmissionWebhook")
        && !ctx.plugins.enabled("ValidatingAdmissionPolicy")
    {
        return Ok(Vec::new());
    }
    let Some(compiled) = ctx.dynamic.compiled(ctx).await? else {
        return Ok(Vec::new());
    };
    let attrs = attributes(ctx, op, obj, old).await?;
    let validated = compiled
        .validate(&attrs, &no_services)
        .await
        .map_err(denied)?;
    Ok(validated.warnings)
}
