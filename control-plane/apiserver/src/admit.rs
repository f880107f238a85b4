//! Built-in admission: upstream's plugins (the `admission` crate's pure functions) run on every
//! write, in upstream's order, with the state each needs read from the store.
//!
//! Mutating, after defaulting and before validation: LimitRanger (defaults), ServiceAccount,
//! Priority (pods), DefaultTolerationSeconds. Validating, after validation and before the write:
//! LimitRanger (limits), PodSecurity, Priority (PriorityClasses), ResourceQuota (which charges
//! the namespace's quotas, writing their `status.used` with a precondition before the object is
//! written, as upstream does). NamespaceLifecycle is the handlers' own check. Reads are
//! serializable (this replica's store), as upstream's informer-fed plugins read a cache.

use std::sync::Arc;

use admission::{AdmissionRequest, Operation, Resource, UserInfo, Verdict};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::handlers::Ctx;
use crate::registry::ResourceDef;
use crate::storage;

/// The admission plugins, in upstream's names and order (`--enable-admission-plugins`).
pub const PLUGINS: &[&str] = &[
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "Priority",
    "DefaultTolerationSeconds",
    "PodSecurity",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
];

/// Which admission plugins run. All of them by default, as upstream enables these by default;
/// `--disable-admission-plugins` turns some off.
#[derive(Clone, Debug, Default)]
pub struct Plugins {
    disabled: std::collections::BTreeSet<&'static str>,
}

impl Plugins {
    /// Every plugin but `disabled`; an unknown name is an error naming the known ones.
    pub fn without(disabled: &[String]) -> Result<Plugins, String> {
        let mut set = std::collections::BTreeSet::new();
        for name in disabled {
            match PLUGINS.iter().find(|p| **p == name.as_str()) {
                Some(p) => {
                    set.insert(*p);
                }
                None => {
                    return Err(format!(
                        "unknown admission plugin {name:?}; known plugins: {}",
                        PLUGINS.join(", ")
                    ));
                }
            }
        }
        Ok(Plugins { disabled: set })
    }

    /// Whether `plugin` runs.
    pub fn enabled(&self, plugin: &str) -> bool {
        !self.disabled.contains(plugin)
    }
}

/// The namespaces of each cluster that hold ResourceQuotas, so writes elsewhere (most of them)
/// skip the quota plugin without reading the store.
pub(crate) struct QuotaNamespaces {
    cache: crate::cluster_cache::ClusterCache<Arc<std::collections::BTreeSet<String>>>,
}

impl Default for QuotaNamespaces {
    fn default() -> Self {
        QuotaNamespaces {
            cache: crate::cluster_cache::ClusterCache::new("/core/resourcequotas/"),
        }
    }
}

impl QuotaNamespaces {
    /// Forgets `cluster`'s namespaces (one of its quotas changed).
    pub(crate) fn invalidate(&self, cluster: &str) {
        self.cache.invalidate(cluster);
    }

    /// Whether `namespace` of the request's cluster holds a ResourceQuota.
    async fn has_quota(&self, ctx: &Ctx<'_>, namespace: &str) -> ApiResult<bool> {
        let namespaces = self
            .cache
            .get(ctx.objects.store(), ctx.cluster, || async {
                let def = crate::registry::builtin_def("", "resourcequotas")
                    .expect("resourcequotas are built in");
                let prefix = storage::list_prefix(ctx.cluster, def, None);
                let kvs = ctx
                    .objects
                    .store()
                    .range(store::RangeRequest {
                        consistency: store::Consistency::Serializable,
                        ..store::RangeRequest::prefix(prefix.clone())
                    })
                    .await?
                    .kvs;
                let set = kvs
                    .iter()
                    .filter_map(|kv| {
                        let rest = kv.key.strip_prefix(prefix.as_ref())?;
                        let ns = rest.split(|b| *b == b'/').next()?;
                        Some(String::from_utf8_lossy(ns).into_owned())
                    })
                    .collect();
                Ok(Arc::new(set))
            })
            .await?;
        Ok(namespaces.contains(namespace))
    }
}

/// How long a pod create waits for its ServiceAccount to appear (the ServiceAccount loop makes
/// `default` in a new namespace moments after the namespace) before it is refused.
const SERVICE_ACCOUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Workload kinds whose pod templates PodSecurity checks (warn and audit only).
const POD_TEMPLATE_RESOURCES: &[(&str, &str)] = &[
    ("", "replicationcontrollers"),
    ("", "podtemplates"),
    ("apps", "replicasets"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
];

fn request(ctx: &Ctx<'_>, op: Operation, obj: &Value, old: Option<&Value>) -> AdmissionRequest {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .or(ctx.req.name.as_deref())
        .unwrap_or_default()
        .to_owned();
    AdmissionRequest {
        operation: op,
        resource: Resource::new(&ctx.def.group, &ctx.def.version, &ctx.def.plural),
        subresource: ctx.req.subresource.clone().unwrap_or_default(),
        namespace: ctx.namespace_name().unwrap_or_default().to_owned(),
        name,
        object: Some(obj.clone()),
        old_object: old.cloned(),
        user: ctx
            .user
            .map(|u| UserInfo {
                username: u.name.clone(),
                groups: u.groups.clone(),
            })
            .unwrap_or_default(),
        dry_run: ctx.params.dry_run,
    }
}

fn is(def: &ResourceDef, group: &str, plural: &str) -> bool {
    def.group == group && def.plural == plural && !def.is_custom()
}

/// A refusal as the client sees it.
fn denied(d: admission::Denial) -> ApiError {
    let mut e = ApiError::forbidden(d.message.clone());
    e.code = d.code;
    e.reason = match d.reason.as_str() {
        "Invalid" => "Invalid",
        "NotFound" => "NotFound",
        "BadRequest" => "BadRequest",
        "InternalError" => "InternalError",
        _ => "Forbidden",
    };
    let mut details = json!({"name": d.name, "kind": d.kind});
    if !d.group.is_empty() {
        details["group"] = json!(d.group);
    }
    e.details = Some(details);
    e
}

/// Folds one plugin's verdict into the running object and warnings.
fn take(verdict: Verdict, obj: &mut Value, warnings: &mut Vec<String>) -> ApiResult<()> {
    warnings.extend(verdict.warnings);
    if let Some(d) = verdict.denial {
        return Err(denied(d));
    }
    if let Some(patched) = verdict.patched {
        *obj = patched;
    }
    Ok(())
}

/// Every stored object of the built-in resource `group/plural` in `namespace` (or the cluster).
async fn list(
    ctx: &Ctx<'_>,
    group: &str,
    plural: &str,
    namespace: Option<&str>,
) -> ApiResult<Vec<Value>> {
    let Some(def) = crate::registry::builtin_def(group, plural) else {
        return Ok(Vec::new());
    };
    let prefix = storage::list_prefix(ctx.cluster, def, namespace);
    let kvs = ctx
        .objects
        .store()
        .range(store::RangeRequest {
            consistency: store::Consistency::Serializable,
            ..store::RangeRequest::prefix(prefix)
        })
        .await?
        .kvs;
    Ok(kvs
        .iter()
        .filter_map(|kv| storage::decode(kv).ok())
        .collect())
}

async fn get(
    ctx: &Ctx<'_>,
    group: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> ApiResult<Option<Value>> {
    let Some(def) = crate::registry::builtin_def(group, plural) else {
        return Ok(None);
    };
    let key = storage::object_key(ctx.cluster, def, namespace, name);
    ctx.objects
        .get_with(&key, store::Consistency::Serializable)
        .await
}

/// The mutating plugins. Returns the warnings they raised; `obj` is changed in place.
pub(crate) async fn mutate(
    ctx: &Ctx<'_>,
    op: Operation,
    obj: &mut Value,
    old: Option<&Value>,
) -> ApiResult<Vec<String>> {
    let mut warnings = Vec::new();
    if ctx.def.is_custom() {
        return Ok(warnings);
    }
    let on = |p: &str| ctx.plugins.enabled(p);
    let pods = is(ctx.def, "", "pods");
    let pvcs = is(ctx.def, "", "persistentvolumeclaims");
    let namespace = ctx.namespace_name();
    if (pods || pvcs) && op == Operation::Create && on("LimitRanger") {
        let ranges = list(ctx, "", "limitranges", namespace).await?;
        if !ranges.is_empty() {
            let req = request(ctx, op, obj, old);
            let verdict = admission::limit_ranger::mutate(&req, &ranges);
            take(verdict, obj, &mut warnings)?;
        }
    }
    if pods && on("ServiceAccount") {
        let req = request(ctx, op, obj, old);
        let verdict = match admission::service_account::service_account_to_fetch(&req) {
            Some(name) => {
                let sa = service_account(ctx, namespace.unwrap_or_default(), &name).await?;
                let suffix = crate::handlers::random_suffix();
                admission::service_account::admit(&req, sa.as_ref(), &suffix)
            }
            None => admission::service_account::admit(&req, None, ""),
        };
        take(verdict, obj, &mut warnings)?;
    }
    if pods && op == Operation::Create {
        if on("Priority") {
            let classes = priority_classes(ctx).await?;
            let req = request(ctx, op, obj, old);
            take(
                admission::priority::admit(&req, &classes),
                obj,
                &mut warnings,
            )?;
        }
        if on("DefaultTolerationSeconds") {
            let req = request(ctx, op, obj, old);
            let verdict = admission::default_toleration_seconds::admit(&req, 300, 300);
            take(verdict, obj, &mut warnings)?;
        }
    }
    Ok(warnings)
}

/// The ServiceAccount `name` in `namespace`, waiting briefly for one a loop is about to make.
async fn service_account(ctx: &Ctx<'_>, namespace: &str, name: &str) -> ApiResult<Option<Value>> {
    let deadline = tokio::time::Instant::now() + SERVICE_ACCOUNT_WAIT;
    loop {
        if let Some(sa) = get(ctx, "", "serviceaccounts", Some(namespace), name).await? {
            return Ok(Some(sa));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The cluster's PriorityClasses, with the two system classes upstream always has.
async fn priority_classes(ctx: &Ctx<'_>) -> ApiResult<Vec<Value>> {
    let mut classes = list(ctx, "scheduling.k8s.io", "priorityclasses", None).await?;
    for system in admission::priority::system_priority_classes() {
        let name = system.pointer("/metadata/name").cloned();
        if !classes
            .iter()
            .any(|c| c.pointer("/metadata/name").cloned() == name)
        {
            classes.push(system);
        }
    }
    Ok(classes)
}

/// The validating plugins. Returns their warnings; a refusal is the error.
pub(crate) async fn validate(
    ctx: &Ctx<'_>,
    op: Operation,
    obj: &Value,
    old: Option<&Value>,
) -> ApiResult<Vec<String>> {
    let mut warnings = Vec::new();
    // Validating plugins may not change the object: what one would patch is dropped here.
    let mut scratch = Value::Null;
    if ctx.def.is_custom() {
        return Ok(warnings);
    }
    let namespace = ctx.namespace_name();
    let pods = is(ctx.def, "", "pods");
    let pvcs = is(ctx.def, "", "persistentvolumeclaims");
    let on = |p: &str| ctx.plugins.enabled(p);
    if (pods || pvcs) && op == Operation::Create && on("LimitRanger") {
        let ranges = list(ctx, "", "limitranges", namespace).await?;
        if !ranges.is_empty() {
            let req = request(ctx, op, obj, old);
            take(
                admission::limit_ranger::validate(&req, &ranges),
                &mut scratch,
                &mut warnings,
            )?;
        }
    }
    let templates = POD_TEMPLATE_RESOURCES
        .iter()
        .any(|(g, p)| is(ctx.def, g, p));
    if (pods || templates)
        && on("PodSecurity")
        && let Some(ns) = namespace
        && let Some(ns_obj) = get(ctx, "", "namespaces", None, ns).await?
    {
        let req = request(ctx, op, obj, old);
        take(
            admission::pod_security::admit(
                &req,
                &ns_obj,
                admission::pod_security::Policy::default(),
                &admission::pod_security::Exemptions::default(),
            ),
            &mut scratch,
            &mut warnings,
        )?;
    }
    if is(ctx.def, "", "namespaces") && ctx.req.subresource.is_none() && on("PodSecurity") {
        let labels_changed =
            old.is_none_or(|o| o.pointer("/metadata/labels") != obj.pointer("/metadata/labels"));
        if labels_changed {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let pods_in = if old.is_some() {
                let mut pods = list(ctx, "", "pods", Some(name)).await?;
                pods.truncate(admission::pod_security::NAMESPACE_MAX_PODS_TO_CHECK);
                pods
            } else {
                Vec::new()
            };
            let req = request(ctx, op, obj, old);
            take(
                admission::pod_security::admit_namespace(
                    &req,
                    &pods_in,
                    admission::pod_security::Policy::default(),
                    &admission::pod_security::Exemptions::default(),
                ),
                &mut scratch,
                &mut warnings,
            )?;
        }
    }
    if is(ctx.def, "scheduling.k8s.io", "priorityclasses") && on("Priority") {
        let classes = list(ctx, "scheduling.k8s.io", "priorityclasses", None).await?;
        let req = request(ctx, op, obj, old);
        take(
            admission::priority::admit(&req, &classes),
            &mut scratch,
            &mut warnings,
        )?;
    }
    Ok(warnings)
}

/// ResourceQuota, the last validating plugin (after the policies and webhooks): charges the
/// request to the namespace's quotas and records the new usage.
pub(crate) async fn quota(
    ctx: &Ctx<'_>,
    op: Operation,
    obj: &Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    let Some(namespace) = ctx.namespace_name() else {
        return Ok(());
    };
    if !ctx.def.namespaced
        || !ctx.plugins.enabled("ResourceQuota")
        || ctx.params.dry_run && op != Operation::Create
    {
        return Ok(());
    }
    let Some(quota_def) = crate::registry::builtin_def("", "resourcequotas") else {
        return Ok(());
    };
    if !ctx.quotas.has_quota(ctx, namespace).await? {
        return Ok(());
    }
    for _ in 0..8 {
        let quotas = list(ctx, "", "resourcequotas", Some(namespace)).await?;
        if quotas.is_empty() {
            return Ok(());
        }
        let req = request(ctx, op, obj, old);
        let (verdict, updates) = admission::resource_quota::admit(&req, &quotas);
        if let Some(d) = verdict.denial {
            return Err(denied(d));
        }
        if ctx.params.dry_run {
            return Ok(());
        }
        let mut conflicted = false;
        for update in updates {
            let Some(current) = quotas.iter().find(|q| {
                q.pointer("/metadata/name").and_then(Value::as_str) == Some(update.name.as_str())
            }) else {
                continue;
            };
            let mut new = current.clone();
            new["status"] = admission::resource_quota::status_with_used(current, &update.used);
            let key = storage::object_key(ctx.cluster, quota_def, Some(namespace), &update.name);
            let rev: u64 = update.resource_version.parse().unwrap_or_default();
            match ctx.objects.update(&key, rev, &new).await? {
                Ok(_) => {}
                Err(_) => {
                    conflicted = true;
                    break;
                }
            }
        }
        if !conflicted {
            return Ok(());
        }
    }
    Err(ApiError::conflict_message(
        quota_def,
        "",
        "Operation cannot be fulfilled on resourcequotas: the quota kept changing; please retry",
    ))
}
