//! Berth's API server: the HTTP front of the control plane.
//!
//! It serves the Kubernetes API of every logical cluster: the root cluster at `/` and tenant
//! clusters under `/clusters/<id>/`, with discovery, health and version endpoints and the
//! built-in resources (create, get, list, watch, update, patch, delete), in the forms stock
//! clients expect.
//!
//! What it is not: it holds no state of its own and runs no control loops; everything it knows
//! comes from the [`store::Store`] it is given.

pub mod admit;
pub mod alloc;
pub mod auth;
pub mod authz;
mod cluster_cache;
mod crd;
mod csr;
mod custom;
pub mod discovery;
mod dynamic;
pub mod error;
mod feed;
#[doc(hidden)]
pub mod fuzzing;
pub mod handlers;
mod kinds;
pub mod local;
mod metrics;
mod openapi;
pub mod protobuf;
pub mod query;
pub mod registry;
pub mod request;
mod rules;
pub mod storage;
mod tables;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::Store;

/// The Kubernetes version Berth reports and aims to behave as.
pub const KUBERNETES_VERSION: (u32, u32, u32) = (1, 33, 0);

/// How long `/readyz` waits for the store before calling it unready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `/version`'s body, as `k8s.io/apimachinery/pkg/version.Info`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    major: String,
    minor: String,
    git_version: String,
    git_commit: String,
    git_tree_state: String,
    build_date: String,
    go_version: String,
    compiler: String,
    platform: String,
}

impl VersionInfo {
    /// The `gitVersion` this build reports.
    pub fn current_git_version() -> String {
        Self::current().git_version
    }

    /// This build's version.
    pub fn current() -> Self {
        let (major, minor, patch) = KUBERNETES_VERSION;
        VersionInfo {
            major: major.to_string(),
            minor: minor.to_string(),
            git_version: format!(
                "v{major}.{minor}.{patch}+berth.{}",
                env!("CARGO_PKG_VERSION")
            ),
            git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into(),
            git_tree_state: "clean".into(),
            build_date: option_env!("BERTH_BUILD_DATE")
                .unwrap_or("1970-01-01T00:00:00Z")
                .into(),
            go_version: "none (Rust)".into(),
            compiler: "rustc".into(),
            platform: format!("{}/{}", std::env::consts::OS, go_arch()),
        }
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Largest request body accepted (upstream's default limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Largest object stored, in bytes (the store's value limit).
pub const MAX_OBJECT_BYTES: usize = store::DEFAULT_MAX_VALUE_BYTES;

/// How long Events live after their last write (upstream's `--event-ttl` default).
pub const DEFAULT_EVENT_TTL: Duration = Duration::from_secs(3600);

/// The namespaces every cluster starts with.
pub const DEFAULT_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Limits a cluster runs under, overriding the server-wide defaults field by field (the
/// `Cluster` spec's `limits`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterLimits {
    /// Stored objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_objects: Option<u64>,
    /// Stored bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stored_bytes: Option<u64>,
    /// Open watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_watches: Option<u32>,
    /// Sustained requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// Requests allowed in a burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

impl ClusterLimits {
    /// These limits over `defaults`.
    pub fn over(&self, defaults: &fairness::Limits) -> fairness::Limits {
        fairness::Limits {
            requests_per_second: self
                .requests_per_second
                .unwrap_or(defaults.requests_per_second),
            burst: self.burst.unwrap_or(defaults.burst),
            max_watches: self.max_watches.unwrap_or(defaults.max_watches),
            max_objects: self.max_objects.unwrap_or(defaults.max_objects),
            max_stored_bytes: self.max_stored_bytes.unwrap_or(defaults.max_stored_bytes),
        }
    }
}

/// The API server's state, shared by every request.
pub struct Api {
    store: Arc<dyn Store>,
    objects: storage::Objects,
    /// What the root cluster serves before CRDs: every built-in resource.
    root_served: Arc<crd::Served>,
    /// What tenant clusters serve before CRDs: the built-in resources that are not root-only.
    tenant_served: Arc<crd::Served>,
    /// What each cluster serves with its CRDs.
    custom: crd::Cache,
    /// Each cluster's admission policies and webhooks.
    dynamic: dynamic::Dynamic,
    /// Which admission plugins run.
    plugins: admit::Plugins,
    /// Which namespaces hold ResourceQuotas.
    quotas: admit::QuotaNamespaces,
    ranges: alloc::ServiceRanges,
    event_ttl: Duration,
    feeds: feed::Feeds,
    /// Every cluster's RBAC policy.
    authorizer: authz::Authorizer,
    /// Per-cluster request rate, concurrency, watch and storage limits.
    fairness: fairness::Fairness,
    /// The audit log, when enabled.
    auditor: Option<audit::Auditor>,
    /// The OpenID Connect authenticator, when an issuer is configured.
    oidc: Option<Arc<auth::oidc::Oidc>>,
    /// Parsed credentials per cluster, with the marker revision they were read at.
    credentials: parking_lot::Mutex<
        std::collections::HashMap<
            String,
            (store::Revision, Arc<auth::credentials::ClusterCredentials>),
        >,
    >,
}

impl Api {
    /// The API server over `store`, with the default service ranges.
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Self::with_ranges(store, alloc::ServiceRanges::default())
    }

    /// The API server over `store`, giving Services addresses and node ports from `ranges`.
    pub fn with_ranges(store: Arc<dyn Store>, ranges: alloc::ServiceRanges) -> Arc<Self> {
        Self::with_options(store, ranges, fairness::Config::default())
    }

    /// The API server over `store`, with service ranges and fairness settings.
    pub fn with_options(
        store: Arc<dyn Store>,
        ranges: alloc::ServiceRanges,
        fairness: fairness::Config,
    ) -> Arc<Self> {
        let fairness = fairness::Fairness::new(fairness);
        Arc::new(Api {
            auditor: None,
            oidc: None,
            ranges,
            event_ttl: DEFAULT_EVENT_TTL,
            feeds: feed::Feeds::default(),
            credentials: Default::default(),
            authorizer: Default::default(),
            objects: storage::Objects::with_usage(Arc::clone(&store), fairness.clone()),
            fairness,
            store,
            root_served: Arc::new(crd::Served::new(registry::Registry::builtin())),
            tenant_served: Arc::new(crd::Served::new(registry::Registry::tenant())),
            custom: crd::Cache::default(),
            dynamic: dynamic::Dynamic::default(),
            plugins: admit::Plugins::default(),
            quotas: admit::QuotaNamespaces::default(),
        })
    }

    /// Makes logical cluster `id` exist: registers it with fresh credentials (kept if it
    /// already has them) and creates its default namespaces. Idempotent; the root cluster is
    /// made the same way.
    pub async fn ensure_cluster(&self, id: &str) -> Result<(), store::StoreError> {
        let key = cluster_marker(id);
        let existing = self.store.get(&key).await?;
        let usable = existing.as_ref().is_some_and(|kv| {
            serde_json::from_slice::<auth::credentials::StoredCredentials>(&kv.value).is_ok()
        });
        if !usable {
            let stored = auth::credentials::ClusterCredentials::generate(id)
                .map_err(|e| store::StoreError::Internal(e.to_string()))?;
            let value = serde_json::to_vec(&stored).expect("credentials serialize");
            // Only the first writer's credentials count; a concurrent replica's are discarded.
            let guard = match &existing {
                None => store::Compare::absent(key.clone()),
                Some(kv) => store::Compare::mod_revision(key.clone(), kv.mod_revision),
            };
            let txn = store::Txn {
                compare: vec![guard],
                success: vec![store::Op::put(key, value)],
                failure: vec![],
            };
            self.store.txn(txn).await?;
        }
        let seed = self.seed_objects(id);
        // One transaction for a new cluster; object by object (keeping what exists) otherwise.
        let txn = store::Txn {
            compare: seed
                .iter()
                .map(|(k, _)| store::Compare::absent(k.clone()))
                .collect(),
            success: seed
                .iter()
                .map(|(k, v)| store::Op::put(k.clone(), storage::encode(v)))
                .collect(),
            failure: vec![],
        };
        if !self.store.txn(txn).await?.succeeded {
            for (key, obj) in &seed {
                self.objects
                    .create(key, obj)
                    .await
                    .map_err(|e| store::StoreError::Internal(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// What every cluster starts with: the default namespaces and upstream's bootstrap RBAC
    /// policy (ClusterRoles with aggregation already applied, so `admin`, `edit` and `view`
    /// work from the start).
    fn seed_objects(&self, id: &str) -> Vec<(bytes::Bytes, serde_json::Value)> {
        use serde_json::json;
        let now = handlers::now_rfc3339();
        let stamp = |mut obj: serde_json::Value| {
            obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
            obj["metadata"]["creationTimestamp"] = json!(now);
            obj
        };
        let def = |group: &str, plural: &str| {
            self.root_served
                .registry
                .get(group, "v1", plural)
                .expect("built in")
                .clone()
        };
        let mut seed = Vec::new();
        let ns_def = def("", "namespaces");
        for ns in DEFAULT_NAMESPACES {
            let obj = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            seed.push((storage::object_key(id, &ns_def, None, ns), stamp(obj)));
        }
        let policy = rbac::bootstrap_policy();
        let mut cluster_roles = policy.cluster_roles;
        for (name, rules) in rbac::aggregate(&cluster_roles) {
            if let Some(role) = cluster_roles
                .iter_mut()
                .find(|r| r.metadata.name.as_deref() == Some(name.as_str()))
            {
                role.rules = Some(rules);
            }
        }
        let rbac_group = "rbac.authorization.k8s.io";
        let mut add = |plural: &str, obj: serde_json::Value| {
            let def = def(rbac_group, plural);
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let ns = obj["metadata"]["namespace"].as_str().map(str::to_owned);
            seed.push((
                storage::object_key(id, &def, ns.as_deref(), &name),
                stamp(obj),
            ));
        };
        let value =
            |v: Result<serde_json::Value, serde_json::Error>| v.expect("RBAC objects serialize");
        for r in &cluster_roles {
            add("clusterroles", value(serde_json::to_value(r)));
        }
        for b in &policy.cluster_role_bindings {
            add("clusterrolebindings", value(serde_json::to_value(b)));
        }
        for r in &policy.roles {
            add("roles", value(serde_json::to_value(r)));
        }
        for b in &policy.role_bindings {
            add("rolebindings", value(serde_json::to_value(b)));
        }
        seed
    }

    /// Deletes logical cluster `id`: its registration, its credentials and every object it
    /// holds, in one store transaction. Requests to it fail from then on; certificates and
    /// tokens it issued are worthless, even if a cluster of the same id is made again.
    pub async fn delete_cluster(&self, id: &str) -> Result<(), store::StoreError> {
        if id == request::ROOT_CLUSTER {
            return Err(store::StoreError::Internal(
                "the root cluster cannot be deleted".into(),
            ));
        }
        let txn = store::Txn::ops(vec![
            store::Op::delete(cluster_marker(id)),
            store::Op::DeletePrefix {
                prefix: storage::cluster_prefix(id),
            },
        ]);
        self.store.txn(txn).await?;
        self.credentials.lock().remove(id);
        self.fairness.forget(id);
        self.authorizer.invalidate(id);
        Ok(())
    }

    /// Every logical cluster: the root cluster and the tenant clusters that exist.
    pub async fn clusters(&self) -> Result<Vec<String>, store::StoreError> {
        let prefix = cluster_marker("");
        let req = store::RangeRequest::prefix(prefix.clone());
        let mut ids = vec![request::ROOT_CLUSTER.to_string()];
        for kv in self.store.range(req).await?.kvs {
            if let Some(id) = kv.key.strip_prefix(prefix.as_ref()) {
                let id = String::from_utf8_lossy(id);
                if id != request::ROOT_CLUSTER {
                    ids.push(id.into_owned());
                }
            }
        }
        Ok(ids)
    }

    /// Accepts ID tokens of an OpenID Connect issuer.
    pub fn with_oidc(self: Arc<Self>, oidc: Arc<auth::oidc::Oidc>) -> Arc<Self> {
        let mut api =
            Arc::try_unwrap(self).unwrap_or_else(|_| panic!("set OIDC before sharing the API"));
        api.oidc = Some(oidc);
        Arc::new(api)
    }

    /// Runs the admission plugins `plugins` allows.
    pub fn with_admission_plugins(self: Arc<Self>, plugins: admit::Plugins) -> Arc<Self> {
        let mut api = Arc::try_unwrap(self)
            .unwrap_or_else(|_| panic!("set admission plugins before sharing the API"));
        api.plugins = plugins;
        Arc::new(api)
    }

    /// Writes an audit log with `auditor`.
    pub fn with_auditor(self: Arc<Self>, auditor: audit::Auditor) -> Arc<Self> {
        let mut api = Arc::try_unwrap(self)
            .unwrap_or_else(|_| panic!("set the auditor before sharing the API"));
        api.auditor = Some(auditor);
        Arc::new(api)
    }

    /// Sets the limits cluster `id` runs under (stored with the cluster, so every replica
    /// applies them). `None` returns it to the server-wide defaults.
    pub async fn set_cluster_limits(
        &self,
        id: &str,
        limits: Option<ClusterLimits>,
    ) -> Result<(), error::ApiError> {
        let key = cluster_marker(id);
        for _ in 0..8 {
            let Some(kv) = self.store.get(&key).await? else {
                return Err(error::ApiError::no_route());
            };
            let mut record: auth::credentials::StoredCredentials =
                serde_json::from_slice(&kv.value).map_err(error::ApiError::internal)?;
            if record.limits == limits {
                return Ok(());
            }
            record.limits = limits.clone();
            let txn = store::Txn {
                compare: vec![store::Compare::mod_revision(key.clone(), kv.mod_revision)],
                success: vec![store::Op::put(
                    key.clone(),
                    serde_json::to_vec(&record).expect("records serialize"),
                )],
                failure: vec![],
            };
            if self.store.txn(txn).await?.succeeded {
                return Ok(());
            }
        }
        Err(error::ApiError::internal_message(format!(
            "cluster {id} kept changing while its limits were set"
        )))
    }

    /// What cluster `id` uses of its limits (as this replica counts).
    pub fn usage(&self, id: &str) -> fairness::Usage {
        self.fairness.usage(id)
    }

    /// Sets how long Events live after their last write.
    pub fn with_event_ttl(self: Arc<Self>, ttl: Duration) -> Arc<Self> {
        let mut api = Arc::try_unwrap(self)
            .unwrap_or_else(|_| panic!("set the event TTL before sharing the API"));
        api.event_ttl = ttl;
        Arc::new(api)
    }

    /// The built-in resources logical cluster `cluster` serves.
    fn registry_for(&self, cluster: &str) -> &registry::Registry {
        &self.base_served(cluster).registry
    }

    fn base_served(&self, cluster: &str) -> &Arc<crd::Served> {
        if cluster == request::ROOT_CLUSTER {
            &self.root_served
        } else {
            &self.tenant_served
        }
    }

    /// Everything logical cluster `cluster` serves: the built-in resources and those of its
    /// established CustomResourceDefinitions.
    async fn served(&self, cluster: &str) -> Result<Arc<crd::Served>, error::ApiError> {
        self.custom
            .served(&self.objects, cluster, self.base_served(cluster))
            .await
    }

    /// Counts what cluster `id` stores, in the background, so its limits apply to what is there
    /// and not only to what this replica wrote since it started.
    fn recount(&self, id: &str) {
        let (store, fairness, id) = (
            Arc::clone(&self.store),
            self.fairness.clone(),
            id.to_owned(),
        );
        tokio::spawn(async move {
            let req = store::RangeRequest {
                consistency: store::Consistency::Serializable,
                ..store::RangeRequest::prefix(storage::cluster_prefix(&id))
            };
            match store.range(req).await {
                Ok(resp) => {
                    let bytes = resp.kvs.iter().map(|kv| kv.value.len() as u64).sum();
                    fairness.reset_usage(&id, resp.kvs.len() as u64, bytes);
                }
                Err(e) => {
                    tracing::warn!(cluster = %id, error = %e, "cannot count the cluster's objects")
                }
            }
        });
    }

    /// The credentials of logical cluster `id`, `None` when it does not exist. Read from this
    /// replica's store (serializable) on every call, parsed only when they changed.
    pub async fn credentials(
        &self,
        id: &str,
    ) -> Result<Option<Arc<auth::credentials::ClusterCredentials>>, error::ApiError> {
        let req = store::RangeRequest {
            consistency: store::Consistency::Serializable,
            ..store::RangeRequest::key(cluster_marker(id))
        };
        let Some(kv) = self.store.range(req).await?.kvs.into_iter().next() else {
            self.credentials.lock().remove(id);
            return Ok(None);
        };
        if let Some((rev, creds)) = self.credentials.lock().get(id)
            && *rev == kv.mod_revision
        {
            return Ok(Some(Arc::clone(creds)));
        }
        let stored: auth::credentials::StoredCredentials = serde_json::from_slice(&kv.value)
            .map_err(|e| {
                error::ApiError::internal_message(format!(
                    "cluster {id} has no usable credentials ({e}); restart the server to renew them"
                ))
            })?;
        let creds = Arc::new(
            auth::credentials::ClusterCredentials::load(id, &stored)
                .map_err(error::ApiError::internal)?,
        );
        // The tenant limits are for tenants: the root cluster is the operator's.
        let limits = if id == request::ROOT_CLUSTER {
            fairness::Limits {
                requests_per_second: 0,
                burst: u32::MAX,
                max_watches: u32::MAX,
                max_objects: u64::MAX,
                max_stored_bytes: u64::MAX,
            }
        } else {
            stored
                .limits
                .unwrap_or_default()
                .over(&self.fairness.config().defaults)
        };
        self.fairness.set_limits(id, limits);
        let first = self
            .credentials
            .lock()
            .insert(id.to_owned(), (kv.mod_revision, Arc::clone(&creds)))
            .is_none();
        if first {
            self.recount(id);
        }
        Ok(Some(creds))
    }
}

fn cluster_marker(id: &str) -> bytes::Bytes {
    format!("/berth/clusters/{id}").into()
}

/// The API server's router.
pub fn router(api: Arc<Api>) -> Router {
    Router::new().fallback(dispatch).with_state(api)
}

/// Serves every request: routes it to a logical cluster, then to discovery, health or a resource.
async fn dispatch(State(api): State<Arc<Api>>, request: axum::extract::Request) -> Response {
    let received = std::time::SystemTime::now();
    let started = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let audit = api.auditor.as_ref().map(|_| {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        (
            parts.uri.to_string(),
            header("user-agent"),
            header("audit-id"),
        )
    });
    let mut facts = Facts::default();
    let response = match serve(&api, parts, body, &mut facts).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let (Some(auditor), Some((uri, user_agent, audit_id))) = (&api.auditor, audit) {
        auditor.log(facts.audit_record(
            uri,
            user_agent,
            audit_id,
            response.status().as_u16(),
            received,
            started.elapsed(),
        ));
    }
    response
}

/// What serving a request established, for the audit log.
#[derive(Default)]
struct Facts {
    cluster: String,
    user: Option<auth::UserInfo>,
    verb: String,
    req: Option<request::ResourceRequest>,
}

impl Facts {
    fn audit_record(
        self,
        uri: String,
        user_agent: String,
        audit_id: String,
        code: u16,
        received: std::time::SystemTime,
        latency: Duration,
    ) -> audit::Record {
        let user = self.user.unwrap_or_default();
        let req = self.req;
        let field = |f: fn(&request::ResourceRequest) -> Option<String>| {
            req.as_ref().and_then(f).unwrap_or_default()
        };
        audit::Record {
            cluster: self.cluster,
            audit_id: (!audit_id.is_empty()).then_some(audit_id),
            user: user.name,
            uid: user.uid,
            groups: user.groups,
            verb: req
                .as_ref()
                .map(|r| r.verb.name().to_owned())
                .unwrap_or(self.verb),
            api_group: field(|r| Some(r.group.clone())),
            api_version: field(|r| Some(r.version.clone())),
            resource: field(|r| Some(r.resource.clone())),
            subresource: field(|r| r.subresource.clone()),
            namespace: field(|r| r.namespace.clone()),
            name: field(|r| r.name.clone()),
            request_uri: uri,
            user_agent,
            code,
            received,
            latency,
            ..Default::default()
        }
    }
}

/// The longest a refusal is held back.
const REFUSAL_DELAY_CAP: Duration = Duration::from_secs(1);

/// Refuses a request over its cluster's rate or queue limits, after holding the answer for the
/// time the client is told to wait (at most a second). Upstream's priority and fairness queues
/// such requests instead of answering at once; holding the refusal does the same for a client
/// that ignores `Retry-After`: each of its connections gets one answer per wait instead of
/// thousands a second, so a flooding tenant costs a sleeping task, not the other tenants' CPU.
async fn refuse(r: fairness::Rejected) -> error::ApiError {
    if matches!(
        r.reason,
        fairness::Reason::RateLimited
            | fairness::Reason::QueueFull
            | fairness::Reason::TooManyWatches
    ) {
        tokio::time::sleep(r.retry_after.min(REFUSAL_DELAY_CAP)).await;
    }
    rejected(r)
}

/// A refusal by the fairness limits, as clients see it: 429 with `Retry-After` for rate, queue
/// and watch limits (upstream's priority-and-fairness answer), 403 for storage limits.
fn rejected(r: fairness::Rejected) -> error::ApiError {
    if r.reason.status_code() == 403 {
        return storage::limit_error(r);
    }
    let mut e = error::ApiError::too_many_requests(r.message.clone());
    e.retry_after = Some(r.retry_after.as_secs().max(1));
    e
}

fn ok_json(v: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn serve(
    api: &Arc<Api>,
    parts: axum::http::request::Parts,
    body: axum::body::Body,
    facts: &mut Facts,
) -> Result<Response, error::ApiError> {
    let axum::http::request::Parts {
        method,
        uri,
        headers,
        extensions,
        ..
    } = parts;
    facts.verb = method.as_str().to_ascii_lowercase();
    let routed = request::route(uri.path()).ok_or_else(error::ApiError::no_route)?;
    facts.cluster = routed.cluster.clone();
    // An unknown cluster and a known one the caller cannot prove membership of look the same
    // to a stranger: 401 before anything about the cluster is revealed.
    let creds = api.credentials(&routed.cluster).await?;
    let user = match &creds {
        Some(creds) => auth::authenticate(api, creds, &headers, &extensions).await?,
        None if extensions.get::<auth::Authenticated>().is_some() => {
            return Err(error::ApiError::no_route());
        }
        None => return Err(error::ApiError::unauthorized()),
    };
    let creds = creds.expect("checked above");
    // Only the audit log reads the facts: nothing is copied for it otherwise.
    let auditing = api.auditor.is_some();
    if auditing {
        facts.user = Some(user.clone());
    }
    // Priority and fairness: the server's own loops, the root cluster's administrators and the
    // health paths are exempt; every tenant request takes a seat of its cluster's fair share.
    let exempt = extensions.get::<auth::Authenticated>().is_some()
        || (routed.cluster == request::ROOT_CLUSTER && user.in_group(auth::SYSTEM_MASTERS))
        || authz::is_public_path(routed.path);
    let class = if exempt {
        fairness::Class::Exempt
    } else if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        fairness::Class::ReadOnly
    } else {
        fairness::Class::Mutating
    };
    let _seat = match api.fairness.admit(&routed.cluster, class).await {
        Ok(seat) => seat,
        Err(r) => return Err(refuse(r).await),
    };
    if request::parse(&method, routed.path, false).is_none() {
        authz::authorize_path(api, &routed.cluster, &user, &method, routed.path).await?;
    }
    let get = method == axum::http::Method::GET || method == axum::http::Method::HEAD;
    let served = api.served(&routed.cluster).await?;
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    match (get, routed.path.trim_end_matches('/')) {
        (true, "/healthz" | "/livez") => return Ok(live().await.into_response()),
        (true, "/readyz") => return Ok(ready(State(Arc::clone(&api.store))).await),
        (true, "/version") => return Ok(Json(VersionInfo::current()).into_response()),
        (true, "/metrics") if routed.prefix.is_empty() => {
            return Ok((
                StatusCode::OK,
                [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                metrics::METRICS.render(),
            )
                .into_response());
        }
        (true, "/openapi/v3") => return Ok(ok_json(&served.openapi().v3_index)),
        (true, "/openapi/v2") => {
            return match openapi::v2_media_type(accept) {
                Some(openapi::V2Form::Json) => Ok((
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    served.openapi().v2.clone(),
                )
                    .into_response()),
                Some(openapi::V2Form::Proto) => Ok((
                    StatusCode::OK,
                    [("content-type", openapi::V2_PROTO_CONTENT_TYPE)],
                    served.openapi().v2_proto.clone(),
                )
                    .into_response()),
                None => Err(error::ApiError::not_acceptable(
                    "only application/json and application/com.github.proto-openapi.spec.v2@v1.0+protobuf are served for /openapi/v2",
                )),
            };
        }
        (true, path) if path.starts_with("/openapi/v3/") => {
            let gv = &path["/openapi/v3/".len()..];
            let (hash, doc) = served
                .openapi()
                .v3
                .get(gv)
                .ok_or_else(error::ApiError::no_route)?;
            let cache = if uri.query().is_some_and(|q| q.contains(hash.as_str())) {
                "public, immutable"
            } else {
                "no-cache, private"
            };
            return Ok((
                StatusCode::OK,
                [
                    ("content-type", "application/json"),
                    ("cache-control", cache),
                    ("etag", &format!("\"{hash}\"")),
                ],
                doc.clone(),
            )
                .into_response());
        }
        (true, "/api") => {
            if let Some(v) = discovery::wants_aggregated(accept) {
                let doc = discovery::aggregated(&served.registry, true, v);
                return Ok((
                    StatusCode::OK,
                    [("content-type", discovery::aggregated_media_type(v))],
                    doc.to_string(),
                )
                    .into_response());
            }
            return Ok(ok_json(&discovery::api_versions(host)));
        }
        (true, "/apis") => {
            if let Some(v) = discovery::wants_aggregated(accept) {
                let doc = discovery::aggregated(&served.registry, false, v);
                return Ok((
                    StatusCode::OK,
                    [("content-type", discovery::aggregated_media_type(v))],
                    doc.to_string(),
                )
                    .into_response());
            }
            return Ok(ok_json(&discovery::api_group_list(&served.registry)));
        }
        (true, path) => {
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let doc = match parts.as_slice() {
                ["api", version] => discovery::api_resource_list(&served.registry, "", version),
                ["apis", group] => discovery::api_group_doc(&served.registry, group),
                ["apis", group, version] => {
                    discovery::api_resource_list(&served.registry, group, version)
                }
                _ => None,
            };
            if let Some(doc) = doc {
                return Ok(ok_json(&doc));
            }
        }
        _ => {}
    }
    let params = query::Params::parse(uri.query())?;
    let req =
        request::parse(&method, routed.path, params.watch).ok_or_else(error::ApiError::no_route)?;
    if auditing {
        facts.req = Some(req.clone());
    }
    authz::authorize_request(api, &routed.cluster, &user, &req, &params.field_selector).await?;
    let watch_permit = match req.verb {
        request::Verb::Watch if !exempt => match api.fairness.watch(&routed.cluster) {
            Ok(permit) => Some(permit),
            Err(r) => return Err(refuse(r).await),
        },
        _ => None,
    };
    if auth::reviews::handles(&req) {
        let body = handlers::read_body(body).await?;
        return auth::reviews::serve(api, &creds, &user, &req, &headers, &body).await;
    }
    let def = served
        .registry
        .get(&req.group, &req.version, &req.resource)
        .ok_or_else(error::ApiError::no_route)?;
    let body = handlers::read_body(body).await?;
    let escalation = authz::Escalation::for_request(api, &routed.cluster, &user, &req).await?;
    let signers = authz::SignerAccess::for_request(api, &routed.cluster, &user, &req);
    let ctx = handlers::Ctx {
        objects: &api.objects,
        cluster: &routed.cluster,
        def,
        req: &req,
        params: &params,
        headers: &headers,
        ranges: &api.ranges,
        event_ttl: api.event_ttl,
        feeds: &api.feeds,
        escalation: escalation.as_ref(),
        user: Some(&user),
        signers: signers.as_ref(),
        dynamic: &api.dynamic,
        plugins: &api.plugins,
        quotas: &api.quotas,
        served: &served.registry,
        heavy_reads: (!exempt).then_some(&api.fairness),
    };
    let verb = match req.verb {
        request::Verb::Get => "GET",
        request::Verb::List => "LIST",
        request::Verb::Watch => "WATCH",
        request::Verb::Create => "POST",
        request::Verb::Update => "PUT",
        request::Verb::Patch => "PATCH",
        request::Verb::Delete => "DELETE",
        request::Verb::DeleteCollection => "DELETECOLLECTION",
    };
    let scope = match (&req.name, &req.namespace) {
        (Some(_), _) => "resource",
        (None, Some(_)) => "namespace",
        (None, None) => "cluster",
    };
    let _in_flight = metrics::METRICS.in_flight(!matches!(
        req.verb,
        request::Verb::Get | request::Verb::List | request::Verb::Watch
    ));
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "request",
        cluster = %routed.cluster,
        verb,
        group = %req.group,
        resource = %req.resource,
        namespace = req.namespace.as_deref().unwrap_or(""),
        name = req.name.as_deref().unwrap_or(""),
    );
    let result = tracing::Instrument::instrument(handlers::serve(ctx, body), span).await;
    if req.group == "rbac.authorization.k8s.io"
        && !matches!(
            req.verb,
            request::Verb::Get | request::Verb::List | request::Verb::Watch
        )
    {
        // In force for this replica's next request, without waiting for the watch.
        api.authorizer.invalidate(&routed.cluster);
    }
    if req.group == crd::GROUP
        && !matches!(
            req.verb,
            request::Verb::Get | request::Verb::List | request::Verb::Watch
        )
    {
        // Served (or no longer served) on this replica at once, without waiting for the watch.
        api.custom.invalidate(&routed.cluster);
    }
    if req.group.is_empty()
        && req.resource == "resourcequotas"
        && !matches!(
            req.verb,
            request::Verb::Get | request::Verb::List | request::Verb::Watch
        )
    {
        api.quotas.invalidate(&routed.cluster);
    }
    if req.group == "admissionregistration.k8s.io"
        && !matches!(
            req.verb,
            request::Verb::Get | request::Verb::List | request::Verb::Watch
        )
    {
        api.dynamic.invalidate(&routed.cluster);
    }
    if req.group.is_empty()
        && matches!(
            req.verb,
            request::Verb::Delete | request::Verb::DeleteCollection
        )
        && matches!(
            req.resource.as_str(),
            "serviceaccounts" | "pods" | "secrets" | "nodes" | "namespaces"
        )
    {
        // Tokens bound to what was deleted stop working at once on this replica (elsewhere
        // within the token cache's 10 seconds, as upstream).
        creds.forget_tokens();
    }
    let code = match &result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.code,
    };
    let labels = metrics::RequestLabels {
        verb,
        group: &req.group,
        version: &req.version,
        resource: &req.resource,
        subresource: req.subresource.as_deref().unwrap_or(""),
        scope,
        cluster: if routed.prefix.is_empty() {
            "root"
        } else {
            &routed.cluster
        },
    };
    metrics::METRICS.observe(&labels, code, started.elapsed().as_secs_f64());
    tracing::debug!(verb, resource = %req.resource, cluster = %routed.cluster, code, "request");
    match (result, watch_permit) {
        // The watch counts against its cluster's limit for as long as its stream is open.
        (Ok(response), Some(permit)) => Ok(response.map(|body| {
            let stream = futures::StreamExt::map(body.into_data_stream(), move |chunk| {
                let _held = &permit;
                chunk
            });
            axum::body::Body::from_stream(stream)
        })),
        (result, _) => result,
    }
}

async fn live() -> &'static str {
    "ok"
}

/// Ready when the store answers a status request in time (for the raft store: a leader is known).
async fn ready(State(store): State<Arc<dyn Store>>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, store.status()).await {
        Ok(Ok(status)) if status.leader_id.is_some() => "ok".into_response(),
        Ok(Ok(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]etcd failed: no store leader elected\nreadyz check failed\n",
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("[-]etcd failed: {e}\nreadyz check failed\n"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]etcd failed: store did not answer in time\nreadyz check failed\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// The router, with every request made by a member of `system:masters`.
    fn admin_router(api: Arc<Api>) -> Router {
        router(api).layer(axum::Extension(auth::Authenticated(Arc::new(
            auth::UserInfo::controller_manager(),
        ))))
    }

    async fn get(app: Router, path: &str) -> (StatusCode, String) {
        let resp = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn openapi_v2_is_served_in_protobuf_to_client_go() {
        let api = Api::new(Arc::new(store::MemoryStore::default()));
        api.ensure_cluster(request::ROOT_CLUSTER).await.unwrap();
        let app = admin_router(api);
        // What client-go's `OpenAPISchema` sends (kubectl 1.27 and older).
        let req = Request::get("/openapi/v2")
            .header(
                "accept",
                "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
            )
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"],
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        );
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.first(), Some(&0x0a), "field 1 (swagger) comes first");
        let (status, json) = get(app.clone(), "/openapi/v2").await;
        assert_eq!(status, StatusCode::OK);
        assert!(json.starts_with('{'));
        let req = Request::get("/openapi/v2")
            .header("accept", "application/xml")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            app.oneshot(req).await.unwrap().status(),
            StatusCode::NOT_ACCEPTABLE
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_expire_after_their_ttl() {
        let api = Api::new(Arc::new(store::MemoryStore::default()))
            .with_event_ttl(Duration::from_millis(300));
        api.ensure_cluster(request::ROOT_CLUSTER).await.unwrap();
        let app = admin_router(api);
        let event = serde_json::json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Test", "message": "hello", "type": "Normal", "source": {"component": "test"}
        });
        let req = Request::post("/api/v1/namespaces/default/events")
            .header("content-type", "application/json")
            .body(Body::from(event.to_string()))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(
            get(app.clone(), "/api/v1/namespaces/default/events/e1")
                .await
                .0,
            StatusCode::OK
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            get(app, "/api/v1/namespaces/default/events/e1").await.0,
            StatusCode::NOT_FOUND
        );
    }

    async fn send(
        app: &Router,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    async fn send_raw(
        app: &Router,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn protobuf_bodies_are_read_and_answered_in_json() {
        let api = Api::new(Arc::new(store::MemoryStore::default()));
        api.ensure_cluster(request::ROOT_CLUSTER).await.unwrap();
        let app = admin_router(api);
        // What kubectl 1.33 sends for `kubectl create deployment web --image=nginx
        // --replicas=2 --port=80`.
        let body = include_bytes!("protobuf/testdata/deployment.pb").to_vec();
        let kubectl = [
            ("content-type", protobuf::MEDIA_TYPE),
            (
                "accept",
                "application/vnd.kubernetes.protobuf,application/json",
            ),
        ];
        let path = "/apis/apps/v1/namespaces/default/deployments";
        let (status, created) = send_raw(&app, "POST", path, &kubectl, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["spec"]["replicas"], 2);
        assert_eq!(created["metadata"]["namespace"], "default");
        assert_eq!(
            created["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
            80
        );

        let (status, err) = send_raw(&app, "POST", path, &kubectl, b"k8s\0\x0a\xff".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err["kind"], "Status");
        assert_eq!(err["reason"], "BadRequest");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .starts_with("error decoding protobuf: proto:"),
            "{err}"
        );

        let only_protobuf = [
            ("content-type", protobuf::MEDIA_TYPE),
            ("accept", protobuf::MEDIA_TYPE),
        ];
        let (status, err) = send_raw(&app, "POST", path, &only_protobuf, body).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(err["reason"], "NotAcceptable");

        let (status, err) = send_raw(
            &app,
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/web",
            &[("content-type", protobuf::MEDIA_TYPE)],
            b"k8s\0".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("application/strategic-merge-patch+json"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn eviction_respects_disruption_budgets() {
        let api = Api::new(Arc::new(store::MemoryStore::default()))
            // No ServiceAccount loop runs here to make the `default` accounts pods need.
            .with_admission_plugins(
                crate::admit::Plugins::without(&["ServiceAccount".into()]).unwrap(),
            );
        api.ensure_cluster(request::ROOT_CLUSTER).await.unwrap();
        let app = admin_router(api);
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}});
        assert_eq!(
            send(&app, "POST", "/api/v1/namespaces/default/pods", pod)
                .await
                .0,
            StatusCode::CREATED
        );
        let (_, mut current) = send(
            &app,
            "GET",
            "/api/v1/namespaces/default/pods/web-1",
            serde_json::Value::Null,
        )
        .await;
        current["status"]["phase"] = serde_json::json!("Running");
        assert_eq!(
            send(
                &app,
                "PUT",
                "/api/v1/namespaces/default/pods/web-1/status",
                current
            )
            .await
            .0,
            StatusCode::OK
        );
        let pdb = serde_json::json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
        assert_eq!(
            send(
                &app,
                "POST",
                "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
                pdb
            )
            .await
            .0,
            StatusCode::CREATED
        );
        let eviction = serde_json::json!({"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": "web-1", "namespace": "default"}, "deleteOptions": {"gracePeriodSeconds": 0}});
        let (code, status) = send(
            &app,
            "POST",
            "/api/v1/namespaces/default/pods/web-1/eviction",
            eviction.clone(),
        )
        .await;
        assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{status}");
        assert_eq!(status["reason"], "TooManyRequests");
        assert_eq!(status["details"]["causes"][0]["reason"], "DisruptionBudget");
        // The budget controller allows one disruption: the eviction spends it and deletes the pod.
        let (_, mut budget) = send(
            &app,
            "GET",
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web",
            serde_json::Value::Null,
        )
        .await;
        budget["status"] = serde_json::json!({"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1});
        let (code, _) = send(
            &app,
            "PUT",
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web/status",
            budget,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        let (code, status) = send(
            &app,
            "POST",
            "/api/v1/namespaces/default/pods/web-1/eviction",
            eviction,
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{status}");
        assert_eq!(
            send(
                &app,
                "GET",
                "/api/v1/namespaces/default/pods/web-1",
                serde_json::Value::Null
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        let (_, budget) = send(
            &app,
            "GET",
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web",
            serde_json::Value::Null,
        )
        .await;
        assert_eq!(budget["status"]["disruptionsAllowed"], 0);
        assert!(budget["status"]["disruptedPods"]["web-1"].is_string());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_terminating_namespace_refuses_new_objects() {
        let api = Api::new(Arc::new(store::MemoryStore::default()));
        api.ensure_cluster(request::ROOT_CLUSTER).await.unwrap();
        let app = admin_router(api);
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "old"}});
        assert_eq!(
            send(&app, "POST", "/api/v1/namespaces", ns).await.0,
            StatusCode::CREATED
        );
        // The namespace keeps its `kubernetes` finalizer, so deleting it only marks it.
        let (code, marked) = send(
            &app,
            "DELETE",
            "/api/v1/namespaces/old",
            serde_json::Value::Null,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(marked["status"]["phase"], "Terminating");
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}});
        let (code, status) = send(&app, "POST", "/api/v1/namespaces/old/configmaps", cm).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert_eq!(
            status["message"],
            "configmaps \"late\" is forbidden: unable to create new content in namespace old because it is being terminated"
        );
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "NamespaceTerminating"
        );
        let missing =
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        let (code, status) = send(
            &app,
            "POST",
            "/api/v1/namespaces/nowhere/configmaps",
            missing,
        )
        .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(status["message"], "namespaces \"nowhere\" not found");
    }

    #[tokio::test]
    async fn health_and_version() {
        let api = Api::new(Arc::new(store::MemoryStore::default()));
        api.ensure_cluster(request::ROOT_CLUSTER).await.unwrap();
        let app = admin_router(api);
        assert_eq!(
            get(app.clone(), "/healthz").await,
            (StatusCode::OK, "ok".into())
        );
        assert_eq!(
            get(app.clone(), "/readyz").await,
            (StatusCode::OK, "ok".into())
        );
        let (code, body) = get(app, "/version").await;
        assert_eq!(code, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "33");
        assert!(v["gitVersion"].as_str().unwrap().starts_with("v1.33.0"));
    }
}
