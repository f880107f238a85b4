//! Dynamic admission: the ValidatingAdmissionPolicies and admission webhooks a cluster
//! configures, compiled once per configuration change (the `webhooks` crate) and run on every
//! write after the built-in plugins: mutating webhooks after built-in mutation, policies and
//! validating webhooks after built-in validation and before ResourceQuota, as upstream orders
//! them.
//!
//! Architecture Invariant: a tenant cluster's webhooks never call this machine or link-local
//! addresses: their URLs are refused at write time when they name one, and names that resolve
//! only to such addresses are not dialled.

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
                // Tenants' webhooks never reach this machine, whatever their names resolve to.
                let compiled = Arc::new(match previous {
                    Some(p) => p.update(&objects),
                    None if ctx.cluster == crate::request::ROOT_CLUSTER => {
                        webhooks::Compiled::new(&objects)
                    }
                    None => webhooks::Compiled::new_public_only(&objects),
                });
                self.last
                    .lock()
                    .insert(ctx.cluster.to_owned(), Arc::clone(&compiled));
                Ok(Some(compiled))
            })
            .await
    }
}

/// Where the webhooks' Services are reached: for each (namespace, name, port) a webhook names,
/// the base URL of one of its endpoints. Upstream's endpoint routing (k8s.io/apiserver
/// pkg/util/proxy `ResolveEndpoint`): the Service's port by number, the Endpoints' port of the
/// same name, a random ready address; an ExternalName Service is its external name. The
/// control plane does not route ClusterIPs, so endpoints are what it can reach. A tenant
/// cluster's endpoints on loopback, link-local or unspecified addresses are not used, as its
/// webhook URLs may not name them.
struct ServiceEndpoints(HashMap<(String, String, u16), String>);

impl ServiceEndpoints {
    async fn resolve(ctx: &Ctx<'_>, compiled: &webhooks::Compiled) -> ApiResult<ServiceEndpoints> {
        let mut found = HashMap::new();
        for (namespace, name, port) in compiled.service_references() {
            let key = |plural: &str| {
                let def = crate::registry::builtin_def("", plural).expect("built in");
                storage::object_key(ctx.cluster, def, Some(&namespace), &name)
            };
            let read = store::Consistency::Serializable;
            let Some(service) = ctx.objects.get_with(&key("services"), read).await? else {
                continue;
            };
            let endpoints = ctx.objects.get_with(&key("endpoints"), read).await?;
            let tenant = ctx.cluster != crate::request::ROOT_CLUSTER;
            if let Some(base) = endpoint_of(&service, endpoints.as_ref(), port, tenant) {
                found.insert((namespace, name, port), base);
            }
        }
        Ok(ServiceEndpoints(found))
    }

    fn url(&self, namespace: &str, name: &str, port: u16, path: &str) -> Option<String> {
        let key = (namespace.to_owned(), name.to_owned(), port);
        self.0.get(&key).map(|base| format!("{base}{path}"))
    }
}

/// The base URL (`https://host:port`) at which `service`'s `port` is served, if any.
fn endpoint_of(
    service: &Value,
    endpoints: Option<&Value>,
    port: u16,
    tenant: bool,
) -> Option<String> {
    let str_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
    if str_at(service, "/spec/type").as_deref() == Some("ExternalName") {
        let host = str_at(service, "/spec/externalName")?;
        return Some(format!("https://{host}:{port}"));
    }
    let ports = service.pointer("/spec/ports").and_then(Value::as_array)?;
    let svc_port = ports
        .iter()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(u64::from(port)))?;
    let port_name = str_at(svc_port, "/name").unwrap_or_default();
    let usable = |ip: &str| {
        ip.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| !(tenant && webhooks::is_internal(ip)))
    };
    let mut candidates: Vec<String> = Vec::new();
    for subset in endpoints?
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(target) = subset
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| str_at(p, "/name").unwrap_or_default() == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_u64))
        else {
            continue;
        };
        for address in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(ip) = str_at(address, "/ip").filter(|ip| usable(ip)) else {
                continue;
            };
            let host = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip
            };
            candidates.push(format!("https://{host}:{target}"));
        }
    }
    if candidates.is_empty() {
        return None;
    }
    let pick = rand::random_range(0..candidates.len());
    Some(candidates.swap_remove(pick))
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
    let services = ServiceEndpoints::resolve(ctx, &compiled).await?;
    let resolve = |ns: &str, name: &str, port: u16, path: &str| services.url(ns, name, port, path);
    let outcome = compiled.mutate(&attrs, &resolve).await.map_err(denied)?;
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
    let params = ClusterParams {
        objects: ctx.objects,
        cluster: ctx.cluster,
        served: ctx.served,
    };
    let services = ServiceEndpoints::resolve(ctx, &compiled).await?;
    let resolve = |ns: &str, name: &str, port: u16, path: &str| services.url(ns, name, port, path);
    let validated = compiled
        .validate_with_params(&attrs, &resolve, &params)
        .await
        .map_err(denied)?;
    Ok(validated.warnings)
}

/// The request's logical cluster as the source of policy parameters (upstream reads them
/// through informers, generic/policy_source.go), read serializable as namespace objects are.
/// A param kind is any resource the cluster serves, built-in or custom; custom objects read as
/// a GET of the param's version would show them. Only asked for policies with a `paramKind`.
struct ClusterParams<'a> {
    objects: &'a crate::storage::Objects,
    cluster: &'a str,
    served: &'a crate::registry::Registry,
}

impl ClusterParams<'_> {
    /// The served resource of `kind`, if any.
    fn resource(&self, kind: &webhooks::Gvk) -> Option<&crate::registry::ResourceDef> {
        self.served
            .resources(&kind.group, &kind.version)
            .find(|d| d.kind == kind.kind && d.verbs.contains(&"get"))
    }

    async fn read(
        &self,
        kind: &webhooks::Gvk,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> ApiResult<Vec<Value>> {
        let Some(def) = self.resource(kind) else {
            return Ok(Vec::new());
        };
        let consistency = store::Consistency::Serializable;
        let mut found = match name {
            Some(name) => {
                let key = storage::object_key(self.cluster, def, namespace, name);
                self.objects
                    .get_with(&key, consistency)
                    .await?
                    .into_iter()
                    .collect()
            }
            None => {
                let prefix = storage::list_prefix(self.cluster, def, namespace);
                let all = |_: &Value| true;
                let page = self.objects.list(&prefix, None, consistency, None, 0, &all);
                page.await?.items
            }
        };
        for obj in &mut found {
            crate::crd::as_read(def, obj);
        }
        Ok(found)
    }
}

impl webhooks::ParamSource for ClusterParams<'_> {
    fn scope<'a>(
        &'a self,
        kind: &'a webhooks::Gvk,
    ) -> webhooks::BoxFuture<'a, Result<Option<webhooks::ParamScope>, String>> {
        Box::pin(async move {
            Ok(self.resource(kind).map(|d| match d.namespaced {
                true => webhooks::ParamScope::Namespaced,
                false => webhooks::ParamScope::Cluster,
            }))
        })
    }

    fn objects<'a>(
        &'a self,
        kind: &'a webhooks::Gvk,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    ) -> webhooks::BoxFuture<'a, Result<Vec<Value>, String>> {
        Box::pin(async move {
            self.read(kind, namespace, name)
                .await
                .map_err(|e| e.message)
        })
    }
}

/// Upstream's checks of a webhook's `clientConfig.url` (`ValidateWebhookURL`), plus Berth's
/// rule for tenant clusters: a tenant's webhook may not point at the server's own machine or
/// link-local addresses (loopback, `169.254.0.0/16` cloud metadata, unspecified), which it
/// could otherwise use to make the shared API server call services it should not reach. The
/// root cluster is the operator's and may.
pub(crate) fn validate_configuration(
    cluster: &str,
    obj: &Value,
) -> Vec<objects::field::FieldError> {
    use objects::field::{FieldError, Path};
    let mut errors = Vec::new();
    let hooks = obj
        .get("webhooks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, hook) in hooks.iter().enumerate() {
        let p = Path::new("webhooks").index(i).child("clientConfig");
        let url = hook.pointer("/clientConfig/url").and_then(Value::as_str);
        let service = hook.pointer("/clientConfig/service");
        match (url, service) {
            (Some(_), Some(_)) | (None, None) => errors.push(FieldError::required(
                p.clone(),
                "exactly one of url or service is required",
            )),
            _ => {}
        }
        let Some(url) = url else { continue };
        let fp = p.child("url");
        let Some(rest) = url.strip_prefix("https://") else {
            errors.push(FieldError::invalid(
                fp,
                url,
                "'https' is the only allowed URL scheme",
            ));
            continue;
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if authority.contains('@') {
            errors.push(FieldError::invalid(
                fp.clone(),
                url,
                "user information is not permitted in the URL",
            ));
        }
        if url.contains('#') {
            errors.push(FieldError::invalid(
                fp.clone(),
                url,
                "fragments are not permitted in the URL",
            ));
        }
        if url.contains('?') {
            errors.push(FieldError::invalid(
                fp.clone(),
                url,
                "query parameters are not permitted in the URL",
            ));
        }
        let host = authority.rsplit('@').next().unwrap_or_default();
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.split(':').next().unwrap_or_default(),
        };
        if host.is_empty() {
            errors.push(FieldError::invalid(fp, url, "host must be specified"));
            continue;
        }
        if cluster != crate::request::ROOT_CLUSTER && is_internal_host(host) {
            errors.push(FieldError::invalid(
                fp,
                url,
                "webhooks of tenant clusters may not call loopback, link-local or unspecified addresses",
            ));
        }
    }
    errors
}

fn is_internal_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(webhooks::is_internal)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(ports: Value) -> Value {
        json!({"spec": {"ports": ports}})
    }

    #[test]
    fn a_service_port_resolves_to_an_endpoint_of_the_same_port_name() {
        let svc = service(json!([{"name": "http", "port": 80}, {"name": "https", "port": 443}]));
        let eps = json!({"subsets": [
            {"addresses": [{"ip": "10.0.0.9"}], "ports": [{"name": "http", "port": 8080}]},
            {"addresses": [{"ip": "fd00::7"}], "ports": [{"name": "https", "port": 8443}]},
        ]});
        assert_eq!(
            endpoint_of(&svc, Some(&eps), 443, true).as_deref(),
            Some("https://[fd00::7]:8443")
        );
        assert_eq!(
            endpoint_of(&svc, Some(&eps), 80, true).as_deref(),
            Some("https://10.0.0.9:8080")
        );
        // No such service port, no endpoints object, or no ready address: nothing.
        assert_eq!(endpoint_of(&svc, Some(&eps), 8443, true), None);
        assert_eq!(endpoint_of(&svc, None, 443, true), None);
        let unready = json!({"subsets": [{"notReadyAddresses": [{"ip": "10.0.0.9"}],
                                          "ports": [{"name": "http", "port": 8080}]}]});
        assert_eq!(endpoint_of(&svc, Some(&unready), 80, true), None);
    }

    #[test]
    fn an_unnamed_port_and_external_names_resolve() {
        let svc = service(json!([{"port": 443}]));
        let eps =
            json!({"subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 9443}]}]});
        assert_eq!(
            endpoint_of(&svc, Some(&eps), 443, false).as_deref(),
            Some("https://10.1.2.3:9443")
        );
        let external =
            json!({"spec": {"type": "ExternalName", "externalName": "hooks.example.com"}});
        assert_eq!(
            endpoint_of(&external, None, 443, true).as_deref(),
            Some("https://hooks.example.com:443")
        );
    }

    #[test]
    fn tenant_clusters_do_not_reach_internal_endpoints() {
        let svc = service(json!([{"port": 443}]));
        for ip in ["127.0.0.1", "169.254.169.254", "::1", "0.0.0.0"] {
            let eps = json!({"subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 9443}]}]});
            assert_eq!(endpoint_of(&svc, Some(&eps), 443, true), None, "{ip}");
            // The root cluster is the operator's, and may.
            assert!(endpoint_of(&svc, Some(&eps), 443, false).is_some(), "{ip}");
        }
    }

    fn config(url: &str) -> Value {
        json!({"webhooks": [{"name": "a.example.com", "clientConfig": {"url": url}}]})
    }

    fn texts(cluster: &str, url: &str) -> Vec<String> {
        validate_configuration(cluster, &config(url))
            .iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect()
    }

    #[test]
    fn webhook_urls_are_checked_as_upstream_and_tenants_cannot_reach_the_server() {
        assert!(texts("t", "https://hooks.example.com:8443/validate").is_empty());
        assert_eq!(
            texts("t", "http://hooks.example.com/x"),
            [
                "webhooks[0].clientConfig.url: Invalid value: \"http://hooks.example.com/x\": 'https' is the only allowed URL scheme"
            ]
        );
        assert_eq!(
            texts("t", "https://hooks.example.com/x?a=b"),
            [
                "webhooks[0].clientConfig.url: Invalid value: \"https://hooks.example.com/x?a=b\": query parameters are not permitted in the URL"
            ]
        );
        for internal in [
            "https://127.0.0.1:2380/",
            "https://localhost/x",
            "https://169.254.169.254/latest",
            "https://[::1]:6443/",
            "https://0.0.0.0/",
        ] {
            let t = texts("t", internal);
            assert!(
                t.len() == 1
                    && t[0].ends_with("may not call loopback, link-local or unspecified addresses"),
                "{internal}: {t:?}"
            );
            // The operator's root cluster may.
            assert!(texts(crate::request::ROOT_CLUSTER, internal).is_empty());
        }
        let both = json!({"webhooks": [{"clientConfig": {}}]});
        assert_eq!(
            validate_configuration("t", &both)[0].body(),
            "Required value: exactly one of url or service is required"
        );
    }
}
