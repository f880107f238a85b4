//! The resource handlers: the verbs of the Kubernetes API over [`Objects`].
//!
//! Each verb follows kube-apiserver's generic registry: decode, check the request against the
//! URL, default, validate, then one conditional store transaction. Reads and writes of one
//! request stay inside the cluster the request was routed to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use objects::GroupKind;
use objects::selectors::{FieldSelector, LabelSelector};
use serde_json::{Map, Value, json};
use store::{Consistency, EventKind, WatchResponse};

use crate::error::{ApiError, ApiResult};
use crate::query::{Continue, Params};
use crate::registry::{ResourceDef, Subresource};
use crate::request::{ResourceRequest, Verb};
use crate::storage::{self, Objects, WriteConflict};
use crate::tables;

/// Attempts of a read-modify-write (patch) before giving up on a hot object.
const PATCH_RETRIES: usize = 8;
/// Default and longest watch duration when the client sets none.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);
/// How often an idle watch with bookmarks allowed gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(10);

/// What one resource request needs to be served.
pub struct Ctx<'a> {
    pub objects: &'a Objects,
    pub cluster: &'a str,
    pub def: &'a ResourceDef,
    pub req: &'a ResourceRequest,
    pub params: &'a Params,
    pub headers: &'a HeaderMap,
    pub ranges: &'a crate::alloc::ServiceRanges,
    pub event_ttl: Duration,
    pub(crate) feeds: &'a crate::feed::Feeds,
    /// The escalation checks, for writes of RBAC objects by users outside `system:masters`.
    pub(crate) escalation: Option<&'a crate::authz::Escalation>,
    /// The user the request comes from (CertificateSigningRequests record it on create).
    pub(crate) user: Option<&'a crate::auth::UserInfo>,
    /// The `approve` and `sign` checks on signers, for writes of CertificateSigningRequests'
    /// `approval` and `status`.
    pub(crate) signers: Option<&'a crate::authz::SignerAccess>,
    /// The cluster's admission policies and webhooks.
    pub(crate) dynamic: &'a crate::dynamic::Dynamic,
    /// Which admission plugins run.
    pub(crate) plugins: &'a crate::admit::Plugins,
    /// Which namespaces hold ResourceQuotas.
    pub(crate) quotas: &'a crate::admit::QuotaNamespaces,
    /// Every resource the cluster serves, built-in and custom (admission policies' params may
    /// be of any of them).
    pub(crate) served: &'a crate::registry::Registry,
    /// Where lists and watches' initial events take their turn among the cluster's heavy reads
    /// (`None` for the server's own loops, which are exempt from fairness).
    pub(crate) heavy_reads: Option<&'a fairness::Fairness>,
}

impl Ctx<'_> {
    fn gk(&self) -> GroupKind<'_> {
        GroupKind::new(&self.def.group, &self.def.kind)
    }

    fn namespace(&self) -> Option<&str> {
        self.req.namespace.as_deref()
    }

    /// The namespace the request addresses, if any.
    pub(crate) fn namespace_name(&self) -> Option<&str> {
        self.namespace()
    }

    fn key(&self, name: &str) -> Bytes {
        storage::object_key(self.cluster, self.def, self.namespace(), name)
    }

    /// Waits for the cluster's turn to send many objects (see [`fairness::Fairness::heavy_read`]).
    async fn heavy_read(&self) -> ApiResult<Option<fairness::HeavyRead>> {
        let Some(fairness) = self.heavy_reads else {
            return Ok(None);
        };
        match fairness.heavy_read(self.cluster).await {
            Ok(turn) => Ok(Some(turn)),
            Err(r) => Err(crate::refuse(r).await),
        }
    }

    fn namespace_def(&self) -> &'static ResourceDef {
        static NAMESPACES: std::sync::LazyLock<ResourceDef> = std::sync::LazyLock::new(|| {
            crate::registry::builtin()
                .into_iter()
                .find(|d| d.kind == "Namespace")
                .expect("namespaces are built in")
        });
        &NAMESPACES
    }
}

/// Serves one resource request.
pub async fn serve(ctx: Ctx<'_>, body: Bytes) -> ApiResult<Response> {
    if ctx.def.namespaced
        && ctx.namespace().is_none()
        && !matches!(ctx.req.verb, Verb::List | Verb::Watch)
    {
        // Namespaced objects are reached only through their namespace.
        return Err(ApiError::no_route());
    }
    if !ctx.def.namespaced && ctx.namespace().is_some() {
        return Err(ApiError::no_route());
    }
    let accept = ctx
        .headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !tables::accepts_json(accept) {
        // Upstream's negotiation error, listing what this server writes.
        return Err(ApiError::not_acceptable(
            "only the following media types are accepted: application/json, application/json;stream=watch",
        ));
    }
    let sub = match &ctx.req.subresource {
        Some(name) => Some(ctx.def.subresource(name).ok_or_else(ApiError::no_route)?),
        None => None,
    };
    match (ctx.req.verb, sub) {
        (Verb::Get, None | Some(Subresource::Status | Subresource::Approval)) => get(&ctx).await,
        (Verb::Get, Some(Subresource::Scale)) => get_scale(&ctx).await,
        (Verb::List, None) => list(&ctx).await,
        (Verb::Watch, None) => watch(&ctx).await,
        (Verb::Create, None) => create(&ctx, &body).await,
        (Verb::Create, Some(Subresource::Binding)) => bind(&ctx, &body).await,
        (Verb::Create, Some(Subresource::Eviction)) => evict(&ctx, &body).await,
        (
            Verb::Update,
            None | Some(Subresource::Status | Subresource::Finalize | Subresource::Approval),
        ) => update(&ctx, sub, &body).await,
        (Verb::Update, Some(Subresource::Scale)) => update_scale(&ctx, &body, false).await,
        (Verb::Patch, None | Some(Subresource::Status | Subresource::Approval)) => {
            patch(&ctx, sub, &body).await
        }
        (Verb::Patch, Some(Subresource::Scale)) => update_scale(&ctx, &body, true).await,
        (Verb::Delete, None) => delete(&ctx, &body).await,
        (Verb::DeleteCollection, None) => delete_collection(&ctx, &body).await,
        (verb, _) => Err(ApiError::method_not_allowed(format!(
            "{} is not supported on {}{}",
            verb.name(),
            ctx.def.qualified_plural(),
            ctx.req
                .subresource
                .as_deref()
                .map(|s| format!("/{s}"))
                .unwrap_or_default()
        ))),
    }
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    let mut body = Vec::with_capacity(1024);
    serde_json::to_writer(&mut body, value).expect("JSON values always encode");
    (code, [("content-type", "application/json")], body).into_response()
}

/// How long a client may take to send a request body once its headers are in. Upstream bounds
/// every non-long-running request by `--request-timeout` (default one minute) and answers a
/// request that overruns it with 504 `Timeout`; a body that has not arrived by then gets the same.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How deeply a YAML body may nest: serde-saphyr's default, kept explicit because its
/// deserializer needs far more stack per level than serde_json's: at 100 levels a debug build
/// overflows a 2 MiB stack (what tokio's worker threads have), so serde_json's 128 is not safe.
const MAX_YAML_DEPTH: usize = 64;
/// How many parser events YAML aliases may replay in one body. Aliases are the whole of a
/// "billion laughs" bomb (a few bytes of anchors expanding exponentially); Kubernetes manifests
/// hardly use them, so the cap is a tenth of serde-saphyr's default.
const MAX_YAML_ALIAS_EVENTS: usize = 100_000;

/// Reads a request body of at most [`crate::MAX_BODY_BYTES`] within [`BODY_READ_TIMEOUT`].
pub async fn read_body(body: Body) -> ApiResult<Bytes> {
    read_body_within(body, crate::MAX_BODY_BYTES, BODY_READ_TIMEOUT).await
}

/// Reads a request body of at most `limit` bytes within `timeout`: 413 `RequestEntityTooLarge`
/// as soon as a declared `Content-Length` or the bytes received pass the limit (nothing past it
/// is buffered), 504 `Timeout` when the body has not arrived in time, 400 when the client breaks
/// off.
pub async fn read_body_within(body: Body, limit: usize, timeout: Duration) -> ApiResult<Bytes> {
    use http_body::Body as _;
    if body.size_hint().lower() > limit as u64 {
        return Err(ApiError::too_large(limit));
    }
    let read = async {
        let mut body = body;
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| {
                ApiError::bad_request(format!("error reading the request body: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(ApiError::too_large(limit));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::timeout(format!(
            "request did not complete within the allotted timeout: the request body did not arrive within {}s",
            timeout.as_secs()
        ))),
    }
}

/// The serde-saphyr options request bodies are read with: its default budget (events, nodes,
/// anchors, alias-to-anchor ratio) with depth and alias replay set as above.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_depth: MAX_YAML_DEPTH },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_YAML_ALIAS_EVENTS,
        },
    }
}

/// Parses a JSON, YAML or Kubernetes protobuf request body into an object.
///
/// Every failure is a 400 `BadRequest` saying what is wrong and where (line and column, or the
/// protobuf field): malformed input, invalid UTF-8, nesting deeper than JSON's 128 levels
/// (serde_json's recursion limit), YAML's 64 or protobuf's 100, YAML alias bombs, protobuf
/// lengths past the end of the body.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or("").trim();
    let value: Value = match media {
        "application/json"
        | ""
        | "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json"
        | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))?,
        "application/yaml" | "application/apply-patch+yaml" => {
            serde_saphyr::from_slice_with_options(body, yaml_options()).map_err(|e| {
                // The first line says what and where; the rest is a snippet of the body.
                let e = e.to_string();
                let first = e.lines().next().unwrap_or_default();
                let first = first.strip_prefix("error: ").unwrap_or(first);
                ApiError::bad_request(format!("error decoding YAML: {first}"))
            })?
        }
        crate::protobuf::MEDIA_TYPE => crate::protobuf::decode(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf: {e}")))?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    Ok(value)
}

fn meta(obj: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    obj.get("metadata")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("just made an object")
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn revision_of(obj: &Value) -> u64 {
    meta_str(obj, "resourceVersion")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Now as RFC 3339 with seconds, as `metav1.Time` renders.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::now())
        .to_string()
}

fn rfc3339_in(secs: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

/// Kinds whose strategy bumps `metadata.generation` when the spec changes.
fn tracks_generation(def: &ResourceDef) -> bool {
    def.is_custom()
        || is_crd(def)
        || matches!(
            &*def.group,
            "apps" | "batch" | "networking.k8s.io" | "policy" | "autoscaling" | berth_api::GROUP
        )
        || def.kind == "ReplicationController"
}

/// The manager a write is recorded under: `fieldManager`, else derived from the User-Agent as
/// upstream does (`kubectl-client-side-apply`, `kubectl-edit`, …).
fn field_manager(ctx: &Ctx<'_>) -> String {
    match &ctx.params.field_manager {
        Some(m) => m.clone(),
        None => fieldmanager::default_manager(
            ctx.headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        ),
    }
}

/// Runs `f` with the list and map types of `def`'s objects (the CRD's schema markers for
/// custom resources, the patch strategies of built-in kinds).
fn with_types<R>(def: &ResourceDef, f: impl FnOnce(&dyn fieldmanager::TypeInfo) -> R) -> R {
    match def.custom.as_ref().map(|c| c.validator.as_ref()) {
        Some(Some(v)) => f(v.types()),
        Some(None) => f(&fieldmanager::DeducedTypes),
        None => f(&fieldmanager::BuiltinTypes::new(GroupKind::new(
            &def.group, &def.kind,
        ))),
    }
}

/// Records in `metadata.managedFields` which fields a create (`old` is `None`), update or
/// non-apply patch set, as upstream's field manager does for every write.
fn track(ctx: &Ctx<'_>, old: Option<&Value>, new: Value, sub: Option<Subresource>) -> Value {
    let manager = field_manager(ctx);
    with_types(ctx.def, |types| {
        fieldmanager::update(
            old,
            new,
            &manager,
            &ctx.def.api_version(),
            sub.map(Subresource::name),
            &now_rfc3339(),
            types,
        )
    })
}

/// A server-side apply refusal as upstream answers it.
fn apply_error(e: fieldmanager::ApplyError) -> ApiError {
    match e {
        fieldmanager::ApplyError::Conflicts(c) => {
            let causes = serde_json::to_value(c.causes()).unwrap_or(Value::Null);
            let mut err = ApiError::new(409, "Conflict", c.to_string());
            err.details = Some(json!({ "causes": causes }));
            err
        }
        fieldmanager::ApplyError::BadRequest(m) => ApiError::bad_request(m),
        other => ApiError::internal_message(other.to_string()),
    }
}

/// Whether `def` is one of the admission webhook configuration resources.
fn is_webhook_configuration(def: &ResourceDef) -> bool {
    def.group == "admissionregistration.k8s.io"
        && matches!(
            &*def.plural,
            "mutatingwebhookconfigurations" | "validatingwebhookconfigurations"
        )
}

/// Whether `def` is the CustomResourceDefinition resource.
fn is_crd(def: &ResourceDef) -> bool {
    def.group == crate::crd::GROUP && def.plural == crate::crd::PLURAL
}

/// Whether a write changes what `metadata.generation` counts: the spec for built-in kinds;
/// for custom resources everything but metadata (and status, when it is a subresource).
fn generation_changed(def: &ResourceDef, new: &Value, old: &Value) -> bool {
    if !def.is_custom() {
        return new.get("spec") != old.get("spec");
    }
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            if def.has_status() {
                m.remove("status");
            }
        }
        v
    };
    strip(new) != strip(old)
}

/// Prunes and defaults a custom object as its schema says, and reports the fields it dropped
/// as `fieldValidation` asks (`Warn`: warnings, `Strict`: an error, `Ignore`: nothing).
fn custom_decode(ctx: &Ctx<'_>, obj: &mut Value) -> ApiResult<Vec<String>> {
    let Some(custom) = &ctx.def.custom else {
        return Ok(Vec::new());
    };
    let mut warnings: Vec<String> = custom.deprecation_warning.iter().cloned().collect();
    let Some(validator) = &custom.validator else {
        return Ok(warnings);
    };
    let pruned = validator.prune_and_default(obj);
    let texts: Vec<String> = pruned
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match ctx.params.field_validation.as_deref() {
        _ if texts.is_empty() => {}
        Some("Strict") => {
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                texts.join(", ")
            )));
        }
        Some("Ignore") => {}
        None | Some("Warn") => warnings.extend(texts),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Warn\", \"Strict\""
            )));
        }
    }
    Ok(warnings)
}

/// Checks `apiVersion` and `kind` of a body against the endpoint and fills them when missing.
fn check_type(def: &ResourceDef, obj: &mut Value, expected: (&str, &str, &str)) -> ApiResult<()> {
    let (group, version, kind) = expected;
    let api_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    };
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
        Some(_) => {}
        None => {
            map.insert("apiVersion".into(), json!(api_version));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if k != kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({kind}) for {}",
                def.qualified_plural()
            )));
        }
        Some(_) => {}
        None => {
            map.insert("kind".into(), json!(kind));
        }
    }
    Ok(())
}

fn check_namespace(ctx: &Ctx<'_>, obj: &mut Value) -> ApiResult<()> {
    let url_ns = ctx.namespace();
    let meta = meta_mut(obj);
    if ctx.def.namespaced {
        match (
            meta.get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty()),
            url_ns,
        ) {
            (Some(body), Some(url)) if body != url => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (_, Some(url)) => {
                meta.insert("namespace".into(), json!(url));
            }
            _ => {
                return Err(ApiError::bad_request(
                    "a namespace must be given for namespaced objects",
                ));
            }
        }
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

/// Checks a decoded body against its kind's type as `fieldValidation` asks: `Strict` refuses
/// unknown fields, `Warn` (the default) reports them as warnings, `Ignore` says nothing. A body
/// whose values do not fit the type is refused whatever the setting.
fn field_validation(ctx: &Ctx<'_>, obj: &Value) -> ApiResult<Vec<String>> {
    use crate::kinds::{DecodeProblem, strict_decode};
    match strict_decode(&ctx.def.group, &ctx.def.kind, obj) {
        Ok(()) => Ok(Vec::new()),
        Err(DecodeProblem::Malformed(e)) => Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            ctx.def.kind, ctx.def.version, ctx.def.kind
        ))),
        Err(DecodeProblem::Unknown(fields)) => {
            let texts: Vec<String> = fields
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            match ctx.params.field_validation.as_deref() {
                Some("Strict") => Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    texts.join(", ")
                ))),
                Some("Ignore") => Ok(Vec::new()),
                None | Some("Warn") => Ok(texts),
                Some(other) => Err(ApiError::bad_request(format!(
                    "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Warn\", \"Strict\""
                ))),
            }
        }
    }
}

/// Adds `Warning` headers (RFC 7234 code 299) for each warning.
fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = axum::http::HeaderValue::from_str(&text) {
            response.headers_mut().append("warning", v);
        }
    }
    response
}

/// Validation errors found in `obj` for create (or update, given the old object).
fn validation_errors(
    def: &ResourceDef,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<objects::field::FieldError> {
    if let Some(custom) = &def.custom {
        let mut errors = objects::validation::validate_custom_meta(obj, old, def.namespaced);
        if let Some(validator) = &custom.validator {
            errors.extend(validator.validate(obj, old));
        }
        return errors;
    }
    let mut errors = crate::rules::validate(GroupKind::new(&def.group, &def.kind), obj, old);
    if is_crd(def) {
        errors.extend(crate::crd::validate_crd(obj, old));
    }
    errors
}

/// Refuses creation in a namespace that is missing or being deleted.
async fn check_namespace_accepts(ctx: &Ctx<'_>, name: &str, dry_run: bool) -> ApiResult<()> {
    let Some(ns) = ctx.namespace() else {
        return Ok(());
    };
    let ns_def = ctx.namespace_def();
    let key = storage::object_key(ctx.cluster, ns_def, None, ns);
    /// The one field this check reads: parsing only it keeps creates from decoding their
    /// namespace every time.
    #[derive(serde::Deserialize)]
    struct Namespace {
        #[serde(default)]
        metadata: Meta,
    }
    #[derive(serde::Deserialize, Default)]
    struct Meta {
        #[serde(rename = "deletionTimestamp")]
        deletion_timestamp: Option<serde::de::IgnoredAny>,
    }
    let stored = ctx
        .objects
        .get_stored(&key, Consistency::Serializable)
        .await?;
    let terminating = |kv: &store::KeyValue| {
        serde_json::from_slice::<Namespace>(&kv.value)
            .map_err(|e| ApiError::internal(format!("undecodable namespace {ns}: {e}")))
            .map(|n| n.metadata.deletion_timestamp.is_some())
    };
    match stored {
        None => Err(ApiError::not_found(ns_def, ns)),
        Some(kv) if terminating(&kv)? && !dry_run => {
            let mut e = ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                ctx.def.qualified_plural(),
            ));
            e.details = Some(json!({
                "name": name,
                "kind": ctx.def.plural,
                "causes": [{
                    "reason": "NamespaceTerminating",
                    "message": format!("namespace {ns} is being terminated"),
                    "field": "metadata.namespace",
                }],
            }));
            Err(e)
        }
        Some(_) => Ok(()),
    }
}

pub(crate) fn random_suffix() -> String {
    // Upstream's alphabet: no vowels, no confusable characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Fills server-set metadata and resets what clients may not set on create.
fn prepare_create(def: &ResourceDef, obj: &mut Value) {
    let meta = meta_mut(obj);
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    for f in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(f);
    }
    if tracks_generation(def) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if def.has_status()
        && def.kind != "Node"
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    match (&*def.group, &*def.kind) {
        ("", "Pod") => {
            let qos = crate::rules::pod_qos_class(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "Namespace") => {
            obj["status"] = json!({"phase": "Active"});
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
        }
        _ => {}
    }
}

async fn create(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Response> {
    let obj = decode_body(ctx.headers, body)?;
    create_object(ctx, obj, true).await
}

/// Creates `obj`; `track` records the create in managedFields (a server-side apply that
/// creates has recorded itself).
async fn create_object(ctx: &Ctx<'_>, mut obj: Value, track_fields: bool) -> ApiResult<Response> {
    check_type(
        ctx.def,
        &mut obj,
        (&ctx.def.group, &ctx.def.version, &ctx.def.kind),
    )?;
    check_namespace(ctx, &mut obj)?;
    if let Some(custom) = &ctx.def.custom
        && custom.terminating
    {
        return Err(ApiError::method_not_allowed(
            "create not allowed while custom resource definition is terminating",
        ));
    }
    let mut warnings = field_validation(ctx, &obj)?;
    warnings.extend(custom_decode(ctx, &mut obj)?);
    if meta_str(&obj, "name").is_none() {
        match meta_str(&obj, "generateName").map(str::to_owned) {
            Some(prefix) => {
                let name = format!("{prefix}{}", random_suffix());
                meta_mut(&mut obj).insert("name".into(), json!(name));
            }
            None => {
                let err = objects::field::FieldError::required(
                    objects::field::Path::new("metadata").child("name"),
                    "name or generateName is required",
                );
                return Err(ApiError::invalid(ctx.def, "", &[err]));
            }
        }
    }
    let name = meta_str(&obj, "name").unwrap_or_default().to_owned();
    prepare_create(ctx.def, &mut obj);
    if crate::csr::is_csr(ctx.def) {
        crate::csr::prepare_create(&mut obj, ctx.user);
    }
    crate::rules::default(ctx.gk(), &mut obj);
    if is_crd(ctx.def) {
        crate::crd::default_crd(&mut obj);
        crate::crd::prepare_create(&mut obj);
    }
    if ctx.def.group == "batch" && ctx.def.kind == "Job" {
        let uid = meta_str(&obj, "uid").unwrap_or_default().to_owned();
        objects::defaults::generate_job_selector(&mut obj, &uid);
    }
    warnings.extend(crate::admit::mutate(ctx, admission::Operation::Create, &mut obj, None).await?);
    warnings
        .extend(crate::dynamic::mutate(ctx, webhooks::Operation::Create, &mut obj, None).await?);
    // What admission added is defaulted too (upstream defaults it when the object is next
    // decoded; defaulting it now stores what every later read would show).
    crate::rules::default(ctx.gk(), &mut obj);
    if track_fields {
        obj = track(ctx, None, obj, None);
    }
    let mut errors = validation_errors(ctx.def, &obj, None);
    if is_webhook_configuration(ctx.def) {
        errors.extend(crate::dynamic::validate_configuration(ctx.cluster, &obj));
    }
    if crate::csr::is_csr(ctx.def) {
        errors.extend(crate::csr::validate(&obj, None, None));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(ctx.def, &name, &errors));
    }
    if crate::csr::is_csr(ctx.def)
        && let Some(why) = crate::csr::subject_restriction(&obj)
    {
        let mut e = ApiError::forbidden(format!(
            "{} {name:?} is forbidden: {why}",
            ctx.def.qualified_plural()
        ));
        e.details = Some(json!({"name": name, "group": ctx.def.group, "kind": ctx.def.plural}));
        return Err(e);
    }
    if let Some(escalation) = ctx.escalation {
        escalation.check(
            &ctx.def.plural,
            ctx.namespace().unwrap_or_default(),
            &obj,
            None,
        )?;
    }
    check_namespace_accepts(ctx, &name, ctx.params.dry_run).await?;
    warnings.extend(crate::admit::validate(ctx, admission::Operation::Create, &obj, None).await?);
    warnings.extend(
        crate::dynamic::validate(ctx, webhooks::Operation::Create, Some(&obj), None).await?,
    );
    crate::admit::quota(ctx, admission::Operation::Create, &obj, None).await?;
    let key = ctx.key(&name);
    if ctx.params.dry_run {
        if ctx.objects.get(&key).await?.is_some() {
            return Err(ApiError::already_exists(ctx.def, &name));
        }
        return Ok(with_warnings(
            json_response(StatusCode::CREATED, &obj),
            &warnings,
        ));
    }
    // Services claim their ClusterIP and NodePorts in the create itself; a value another
    // Service took meanwhile makes the create fail, and a fresh plan is tried.
    // Only a Service may need another attempt; other kinds hand their object over.
    let mut obj = Some(obj);
    for attempt in 0.. {
        let mut candidate = if is_service(ctx.def) {
            obj.clone()
        } else {
            obj.take()
        }
        .expect("kinds other than Service make one attempt");
        let alloc = if is_service(ctx.def) {
            crate::alloc::plan(
                ctx.objects,
                ctx.cluster,
                ctx.ranges,
                ctx.def,
                &mut candidate,
                None,
            )
            .await?
        } else {
            Default::default()
        };
        crate::crd::to_storage(ctx.def, &mut candidate);
        let planned = (!alloc.claim.is_empty()).then(|| candidate.clone());
        if let Some(created) = ctx
            .objects
            .create_with(&key, candidate, &alloc.claim, event_ttl(ctx))
            .await?
        {
            // A built-in object answers with the bytes just stored; custom objects are
            // converted to the request's version first.
            let response = if crate::tables::serves_stored(ctx) {
                crate::tables::respond_stored_object(
                    StatusCode::CREATED,
                    &created.stored,
                    created.revision,
                )
            } else {
                let mut obj = created.object;
                crate::crd::at_version(ctx.def, &mut obj);
                json_response(StatusCode::CREATED, &obj)
            };
            return Ok(with_warnings(response, &warnings));
        }
        let (Some(planned), Some(requested)) = (planned, &obj) else {
            return Err(ApiError::already_exists(ctx.def, &name));
        };
        if ctx.objects.get(&key).await?.is_some() {
            return Err(ApiError::already_exists(ctx.def, &name));
        }
        if let Some(e) =
            crate::alloc::explain_taken(ctx.objects, ctx.cluster, ctx.def, requested, &alloc)
                .await?
        {
            return Err(e);
        }
        if attempt >= 4 {
            return Err(crate::alloc::exhausted(ctx.def, &planned));
        }
    }
    unreachable!("the loop returns")
}

/// Events expire (upstream's `--event-ttl`); every write of one restarts its clock.
fn event_ttl(ctx: &Ctx<'_>) -> Option<Duration> {
    (ctx.def.kind == "Event" && matches!(&*ctx.def.group, "" | "events.k8s.io"))
        .then_some(ctx.event_ttl)
}

fn is_service(def: &ResourceDef) -> bool {
    def.group.is_empty() && def.kind == "Service"
}

async fn get_current(ctx: &Ctx<'_>) -> ApiResult<(Bytes, Value)> {
    let name = ctx.req.name.as_deref().ok_or_else(ApiError::no_route)?;
    let key = ctx.key(name);
    let obj = ctx
        .objects
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(ctx.def, name))?;
    Ok((key, obj))
}

async fn get(ctx: &Ctx<'_>) -> ApiResult<Response> {
    if tables::serves_stored(ctx) {
        // The object as stored is the answer: no need to decode and encode it again.
        let name = ctx.req.name.as_deref().ok_or_else(ApiError::no_route)?;
        let kv = ctx
            .objects
            .get_stored(&ctx.key(name), Consistency::Linearizable)
            .await?
            .ok_or_else(|| ApiError::not_found(ctx.def, name))?;
        return Ok(tables::respond_stored_object(
            StatusCode::OK,
            &kv.value,
            kv.mod_revision,
        ));
    }
    let (_, obj) = get_current(ctx).await?;
    Ok(tables::respond_one(ctx, obj))
}

fn selectors(ctx: &Ctx<'_>) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(&ctx.params.label_selector)
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(&ctx.params.field_selector, ctx.gk())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

/// The revision and consistency a list reads at, from `resourceVersion`/`resourceVersionMatch`.
fn list_read_point(params: &Params) -> ApiResult<(Option<u64>, Consistency)> {
    let rv = params.revision()?;
    match (params.resource_version_match.as_deref(), rv) {
        (Some("Exact"), Some(r)) if r > 0 => Ok((Some(r), Consistency::Serializable)),
        (Some("Exact"), _) => Err(ApiError::bad_request(
            "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"\" or \"0\"",
        )),
        (Some("NotOlderThan") | None, Some(0)) => Ok((None, Consistency::Serializable)),
        (Some("NotOlderThan") | None, Some(_)) => Ok((None, Consistency::Linearizable)),
        (Some("NotOlderThan"), None) => Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        )),
        (None, None) => Ok((None, Consistency::Linearizable)),
        (Some(other), _) => Err(ApiError::bad_request(format!(
            "Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
        ))),
    }
}

async fn list(ctx: &Ctx<'_>) -> ApiResult<Response> {
    let (labels, fields) = selectors(ctx)?;
    // Held until the list is encoded.
    let _turn = ctx.heavy_read().await?;
    let prefix = storage::list_prefix(ctx.cluster, ctx.def, ctx.namespace());
    let (mut revision, consistency) = list_read_point(ctx.params)?;
    let mut start_after = None;
    if let Some(token) = &ctx.params.continue_token {
        let c = Continue::decode(token)?;
        revision = Some(c.revision);
        let mut key = prefix.to_vec();
        key.extend_from_slice(c.start_after.as_bytes());
        start_after = Some(Bytes::from(key));
    }
    let expired = |e: ApiError| {
        if e.code == 410 && ctx.params.continue_token.is_some() {
            ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            )
        } else {
            e
        }
    };
    let list_meta = |revision: u64, continue_after: &Option<Bytes>, remaining: Option<u64>| {
        let mut list_meta = json!({"resourceVersion": revision.to_string()});
        if let Some(last) = continue_after {
            let start = String::from_utf8_lossy(&last[prefix.len()..]).into_owned();
            list_meta["continue"] = json!(
                Continue {
                    revision,
                    start_after: start
                }
                .encode()
            );
            if labels.is_empty()
                && fields.is_empty()
                && let Some(n) = remaining
            {
                list_meta["remainingItemCount"] = json!(n);
            }
        }
        list_meta
    };
    if tables::serves_stored(ctx) && labels.is_empty() && fields.is_empty() {
        // Nothing to select or convert: the stored objects are spliced into the answer
        // without being decoded (the common list of a client or an informer).
        let page = ctx
            .objects
            .list_stored(
                &prefix,
                revision,
                consistency,
                start_after,
                ctx.params.limit,
            )
            .await
            .map_err(expired)?;
        let meta = list_meta(page.revision, &page.continue_after, page.remaining);
        return Ok(tables::respond_stored_list(ctx, &page.items, &meta));
    }
    let filter = |obj: &Value| labels.matches_object(obj) && fields.matches(obj);
    let page = ctx
        .objects
        .list(
            &prefix,
            revision,
            consistency,
            start_after,
            ctx.params.limit,
            &filter,
        )
        .await
        .map_err(expired)?;
    let meta = list_meta(page.revision, &page.continue_after, page.remaining);
    Ok(tables::respond_list(ctx, page.items, meta))
}

/// Merges an update body onto the current object as the verb and subresource require.
fn prepare_update(
    ctx: &Ctx<'_>,
    sub: Option<Subresource>,
    current: &Value,
    new: Value,
) -> ApiResult<Value> {
    if !crate::csr::is_csr(ctx.def) {
        return merge_update(ctx, sub, current, new);
    }
    // The approval subresource starts from the object as sent, as the status one does.
    let generic = if sub == Some(Subresource::Approval) {
        Some(Subresource::Status)
    } else {
        sub
    };
    let mut merged = merge_update(ctx, generic, current, new.clone())?;
    if sub == Some(Subresource::Approval) {
        merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
    }
    crate::csr::prepare_update(sub, current, &mut merged, &now_rfc3339());
    let errors = crate::csr::validate(&merged, Some(current), sub);
    if !errors.is_empty() {
        let name = ctx.req.name.as_deref().unwrap_or_default();
        return Err(ApiError::invalid(ctx.def, name, &errors));
    }
    Ok(merged)
}

/// The generic part of [`prepare_update`].
fn merge_update(
    ctx: &Ctx<'_>,
    sub: Option<Subresource>,
    current: &Value,
    mut new: Value,
) -> ApiResult<Value> {
    let name = ctx.req.name.as_deref().unwrap_or_default();
    match meta_str(&new, "name") {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        Some(_) => {}
        None => {
            meta_mut(&mut new).insert("name".into(), json!(name));
        }
    }
    if sub == Some(Subresource::Finalize) {
        // A finalize write changes `spec.finalizers` and nothing else.
        let mut merged = current.clone();
        merged["spec"]["finalizers"] = new
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or(json!([]));
        if let Some(rv) = meta(&new).get("resourceVersion").cloned() {
            meta_mut(&mut merged).insert("resourceVersion".into(), rv);
        }
        return Ok(merged);
    }
    if sub == Some(Subresource::Status) {
        // A status write changes the status and nothing else.
        let mut merged = current.clone();
        merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        if merged["status"].is_null() {
            merged.as_object_mut().expect("object").remove("status");
        }
        if let Some(rv) = meta(&new).get("resourceVersion").cloned() {
            meta_mut(&mut merged).insert("resourceVersion".into(), rv);
        }
        return Ok(merged);
    }
    if ctx.def.has_status() {
        match current.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    }
    let old_meta = meta(current).clone();
    let new_meta = meta_mut(&mut new);
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(f) {
            Some(v) => new_meta.insert(f.into(), v.clone()),
            None => new_meta.remove(f),
        };
    }
    if ctx.def.namespaced {
        new_meta.insert(
            "namespace".into(),
            old_meta.get("namespace").cloned().unwrap_or(Value::Null),
        );
    }
    crate::rules::default(ctx.gk(), &mut new);
    if is_crd(ctx.def) {
        crate::crd::default_crd(&mut new);
        crate::crd::prepare_update(&mut new);
    }
    if tracks_generation(ctx.def) && generation_changed(ctx.def, &new, current) {
        let generation = current
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        meta_mut(&mut new).insert("generation".into(), json!(generation));
    }
    Ok(new)
}

/// Writes `new` over `current` if the client's precondition holds. Returns `None` on a
/// revision conflict that the caller may retry.
async fn write_update(
    ctx: &Ctx<'_>,
    key: &Bytes,
    current: &Value,
    mut new: Value,
    warnings: &mut Vec<String>,
) -> ApiResult<Result<Value, WriteConflict>> {
    let name = ctx.req.name.as_deref().unwrap_or_default();
    let current_rev = revision_of(current);
    if let Some(rv) = meta_str(&new, "resourceVersion") {
        let wanted: u64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?;
        if wanted != current_rev {
            return Err(ApiError::conflict(ctx.def, name));
        }
    }
    // Validation of an update compares resourceVersions, so an unconditional update is checked
    // as the write it becomes: against the current version.
    if meta_str(&new, "resourceVersion").is_none() {
        meta_mut(&mut new).insert("resourceVersion".into(), json!(current_rev.to_string()));
    }
    let alloc = if is_service(ctx.def) {
        crate::alloc::plan(
            ctx.objects,
            ctx.cluster,
            ctx.ranges,
            ctx.def,
            &mut new,
            Some(current),
        )
        .await?
    } else {
        Default::default()
    };
    let mut errors = validation_errors(ctx.def, &new, Some(current));
    if is_webhook_configuration(ctx.def) {
        errors.extend(crate::dynamic::validate_configuration(ctx.cluster, &new));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(ctx.def, name, &errors));
    }
    if &new != current {
        warnings.extend(
            crate::admit::validate(ctx, admission::Operation::Update, &new, Some(current)).await?,
        );
        warnings.extend(
            crate::dynamic::validate(ctx, webhooks::Operation::Update, Some(&new), Some(current))
                .await?,
        );
        crate::admit::quota(ctx, admission::Operation::Update, &new, Some(current)).await?;
    }
    if let Some(escalation) = ctx.escalation {
        let namespace = ctx.namespace().unwrap_or_default();
        escalation.check(&ctx.def.plural, namespace, &new, Some(current))?;
    }
    // Removing the last finalizer of an object being deleted deletes it.
    let deleting = meta(&new).contains_key("deletionTimestamp");
    let finalizers_left = meta(&new)
        .get("finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
        || has_spec_finalizers(ctx.def, &new);
    if deleting && !finalizers_left && !is_graceful_pod(ctx.def, &new) {
        if ctx.params.dry_run {
            return Ok(Ok(new));
        }
        let held = if is_service(ctx.def) {
            crate::alloc::held_keys(ctx.cluster, current)
        } else {
            Vec::new()
        };
        return ctx.objects.delete_with(key, current_rev, &held).await;
    }
    // An update that changes nothing writes nothing and keeps the resourceVersion.
    meta_mut(&mut new).insert("resourceVersion".into(), json!(current_rev.to_string()));
    crate::crd::to_storage(ctx.def, &mut new);
    if &new == current || ctx.params.dry_run {
        crate::crd::at_version(ctx.def, &mut new);
        return Ok(Ok(new));
    }
    match ctx
        .objects
        .update_with(key, current_rev, &new, &alloc, event_ttl(ctx))
        .await?
    {
        // The object did not change, so a claimed ClusterIP or NodePort was taken.
        Err(WriteConflict::Changed(now))
            if revision_of(&now) == current_rev && !alloc.claim.is_empty() =>
        {
            match crate::alloc::explain_taken(ctx.objects, ctx.cluster, ctx.def, &new, &alloc)
                .await?
            {
                Some(e) => Err(e),
                // A value chosen here was taken meanwhile: the caller's retry plans again.
                None => Ok(Err(WriteConflict::Changed(now))),
            }
        }
        Ok(mut written) => {
            crate::crd::at_version(ctx.def, &mut written);
            Ok(Ok(written))
        }
        other => Ok(other),
    }
}

/// Namespaces carry their own finalizers in `spec.finalizers` (`kubernetes`, removed by the
/// namespace controller through `namespaces/<name>/finalize` once the content is gone).
fn has_spec_finalizers(def: &ResourceDef, obj: &Value) -> bool {
    def.kind == "Namespace"
        && def.group.is_empty()
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
}

fn is_graceful_pod(def: &ResourceDef, obj: &Value) -> bool {
    def.kind == "Pod"
        && def.group.is_empty()
        && meta(obj)
            .get("deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
}

async fn update(ctx: &Ctx<'_>, sub: Option<Subresource>, body: &[u8]) -> ApiResult<Response> {
    let mut new = decode_body(ctx.headers, body)?;
    check_type(
        ctx.def,
        &mut new,
        (&ctx.def.group, &ctx.def.version, &ctx.def.kind),
    )?;
    check_namespace(ctx, &mut new)?;
    let mut warnings = field_validation(ctx, &new)?;
    warnings.extend(custom_decode(ctx, &mut new)?);
    let name = ctx.req.name.as_deref().unwrap_or_default();
    let key = ctx.key(name);
    let current = match ctx.objects.get(&key).await? {
        Some(c) => c,
        None => return Err(ApiError::not_found(ctx.def, name)),
    };
    let mut new = prepare_update(ctx, sub, &current, new)?;
    warnings.extend(
        crate::admit::mutate(ctx, admission::Operation::Update, &mut new, Some(&current)).await?,
    );
    warnings.extend(
        crate::dynamic::mutate(ctx, webhooks::Operation::Update, &mut new, Some(&current)).await?,
    );
    let new = track(ctx, Some(&current), new, sub);
    check_signers(ctx, sub, &current, &new).await?;
    match write_update(ctx, &key, &current, new, &mut warnings).await? {
        Ok(obj) => Ok(with_warnings(
            json_response(StatusCode::OK, &obj),
            &warnings,
        )),
        Err(WriteConflict::Missing) => Err(ApiError::not_found(ctx.def, name)),
        Err(WriteConflict::Changed(_)) => Err(ApiError::conflict(ctx.def, name)),
    }
}

/// A write of a request's approval needs the `approve` verb on its signer too, and one that sets
/// its certificate the `sign` verb (upstream's `CertificateApproval` and `CertificateSigning`
/// admission).
async fn check_signers(
    ctx: &Ctx<'_>,
    sub: Option<Subresource>,
    current: &Value,
    new: &Value,
) -> ApiResult<()> {
    if !crate::csr::is_csr(ctx.def) {
        return Ok(());
    }
    let verb = match sub {
        Some(Subresource::Approval) => "approve",
        Some(Subresource::Status)
            if new.pointer("/status/certificate") != current.pointer("/status/certificate") =>
        {
            "sign"
        }
        _ => return Ok(()),
    };
    let Some(signers) = ctx.signers else {
        // Only requests routed through `serve` write these, and it always sets the checks.
        return Err(ApiError::internal_message(
            "a CertificateSigningRequest write without its signer checks",
        ));
    };
    let signer = current
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    signers
        .check(verb, ctx.req.name.as_deref().unwrap_or_default(), signer)
        .await
}

/// Applies a patch document of the request's patch type to `current`.
fn apply_patch(ctx: &Ctx<'_>, current: &Value, patch: &[u8]) -> ApiResult<Value> {
    let content_type = ctx
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or("").trim();
    let name = ctx.req.name.as_deref().unwrap_or_default();
    match media {
        "application/json-patch+json" => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
            objects::patch::json_patch(current, &p).map_err(|e| patch_error(ctx, name, e))
        }
        "application/merge-patch+json" => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding merge patch: {e}")))?;
            objects::patch::validate_merge_patch(&p).map_err(|e| patch_error(ctx, name, e))?;
            Ok(objects::patch::json_merge(current, &p))
        }
        "application/strategic-merge-patch+json" => {
            if !objects::patch::meta::supports_strategic(ctx.gk()) {
                return Err(ApiError::unsupported_media_type(media));
            }
            let p: Value = serde_json::from_slice(patch).map_err(|e| {
                ApiError::bad_request(format!("error decoding strategic merge patch: {e}"))
            })?;
            crate::rules::strategic_merge(ctx.gk(), current, &p)
                .map_err(|e| patch_error(ctx, name, e))
        }
        "application/apply-patch+cbor" => Err(ApiError::unsupported_media_type(media)),
        other => Err(ApiError::unsupported_patch_type(
            other,
            objects::patch::meta::supports_strategic(ctx.gk()),
        )),
    }
}

/// A patch failure as upstream answers it.
fn patch_error(ctx: &Ctx<'_>, name: &str, e: objects::patch::PatchError) -> ApiError {
    match e.status_code() {
        // Upstream's NewRequestEntityTooLargeError with the patch engine's reason.
        413 => {
            let mut err = ApiError::too_large(crate::MAX_BODY_BYTES);
            err.message = format!("Request entity too large: {e}");
            err
        }
        422 => {
            let mut err = ApiError::invalid(ctx.def, name, &[]);
            err.message = e.to_string();
            err.details = None;
            err
        }
        500 => ApiError::internal(e),
        _ => ApiError::bad_request(e.to_string()),
    }
}

/// Whether a patch document sets `metadata.resourceVersion` (a precondition the patch must
/// not be retried past).
fn patch_names_revision(body: &[u8], config: Option<&Value>) -> bool {
    let doc = match config {
        Some(c) => c.clone(),
        None => serde_json::from_slice(body).unwrap_or(Value::Null),
    };
    match &doc {
        Value::Array(ops) => ops
            .iter()
            .any(|op| op.get("path").and_then(Value::as_str) == Some("/metadata/resourceVersion")),
        _ => doc
            .pointer("/metadata/resourceVersion")
            .is_some_and(|v| !v.is_null()),
    }
}

/// An apply that, once defaulted, changes nothing keeps the object as it was, managedFields
/// (their times) included, so it writes nothing: upstream's field manager compares after
/// defaulting too.
fn keep_managed_fields_if_unchanged(current: &Value, mut new: Value) -> Value {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        v
    };
    if strip(current) == strip(&new) {
        match current.pointer("/metadata/managedFields") {
            Some(fields) => meta_mut(&mut new).insert("managedFields".into(), fields.clone()),
            None => meta_mut(&mut new).remove("managedFields"),
        };
    }
    new
}

/// Whether the request is a server-side apply.
fn is_apply(ctx: &Ctx<'_>) -> bool {
    let content_type = ctx
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or("").trim();
    media == "application/apply-patch+yaml"
}

async fn patch(ctx: &Ctx<'_>, sub: Option<Subresource>, body: &[u8]) -> ApiResult<Response> {
    let name = ctx.req.name.as_deref().unwrap_or_default();
    let key = ctx.key(name);
    let apply = is_apply(ctx);
    let config = if apply {
        if ctx.params.field_manager.is_none() {
            let err = objects::field::FieldError::required(
                objects::field::Path::new("fieldManager"),
                "is required for apply patch",
            );
            let mut e = ApiError::invalid(ctx.def, "", &[err]);
            e.message = "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into();
            e.details = Some(
                json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                    {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}
                ]}),
            );
            return Err(e);
        }
        Some(decode_body(ctx.headers, body)?)
    } else {
        None
    };
    for _ in 0..PATCH_RETRIES {
        let current = match (ctx.objects.get(&key).await?, &config) {
            (Some(current), _) => current,
            // An apply of an object that does not exist creates it.
            (None, Some(config)) if sub.is_none() => {
                let applied = with_types(ctx.def, |types| {
                    fieldmanager::apply(
                        None,
                        config,
                        &field_manager(ctx),
                        &ctx.def.api_version(),
                        None,
                        ctx.params.force,
                        &now_rfc3339(),
                        types,
                    )
                })
                .map_err(apply_error)?;
                return create_object(ctx, applied, false).await;
            }
            (None, _) => return Err(ApiError::not_found(ctx.def, name)),
        };
        let mut patched = match &config {
            Some(config) => with_types(ctx.def, |types| {
                fieldmanager::apply(
                    Some(&current),
                    config,
                    &field_manager(ctx),
                    &ctx.def.api_version(),
                    sub.map(Subresource::name),
                    ctx.params.force,
                    &now_rfc3339(),
                    types,
                )
            })
            .map_err(apply_error)?,
            None => apply_patch(ctx, &current, body)?,
        };
        check_type(
            ctx.def,
            &mut patched,
            (&ctx.def.group, &ctx.def.version, &ctx.def.kind),
        )?;
        let mut warnings = field_validation(ctx, &patched)?;
        warnings.extend(custom_decode(ctx, &mut patched)?);
        // A patch that names no resourceVersion applies to whatever is current, and is
        // retried when the object changes under it.
        let pinned = patch_names_revision(body, config.as_ref())
            .then(|| meta_str(&patched, "resourceVersion").map(str::to_owned))
            .flatten();
        if pinned.is_none() {
            meta_mut(&mut patched).insert(
                "resourceVersion".into(),
                json!(revision_of(&current).to_string()),
            );
        }
        let mut new = prepare_update(ctx, sub, &current, patched)?;
        warnings.extend(
            crate::admit::mutate(ctx, admission::Operation::Update, &mut new, Some(&current))
                .await?,
        );
        warnings.extend(
            crate::dynamic::mutate(ctx, webhooks::Operation::Update, &mut new, Some(&current))
                .await?,
        );
        let new = if apply {
            keep_managed_fields_if_unchanged(&current, new)
        } else {
            track(ctx, Some(&current), new, sub)
        };
        check_signers(ctx, sub, &current, &new).await?;
        match write_update(ctx, &key, &current, new, &mut warnings).await? {
            Ok(obj) => {
                return Ok(with_warnings(
                    json_response(StatusCode::OK, &obj),
                    &warnings,
                ));
            }
            Err(WriteConflict::Missing) => return Err(ApiError::not_found(ctx.def, name)),
            Err(WriteConflict::Changed(_)) if pinned.is_some() => {
                return Err(ApiError::conflict(ctx.def, name));
            }
            Err(WriteConflict::Changed(_)) => continue,
        }
    }
    Err(ApiError::conflict(ctx.def, name))
}

/// Delete options from the body (a `DeleteOptions`) and the query.
struct DeleteOptions {
    grace: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
}

fn delete_options(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<DeleteOptions> {
    let doc = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        decode_body(ctx.headers, body)?
    };
    let orphan = doc
        .get("orphanDependents")
        .and_then(Value::as_bool)
        .or(ctx.params.orphan_dependents);
    let propagation = doc
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| ctx.params.propagation_policy.clone())
        .or_else(|| {
            orphan.map(|o| {
                if o {
                    "Orphan".to_owned()
                } else {
                    "Background".to_owned()
                }
            })
        });
    if let Some(p) = &propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    Ok(DeleteOptions {
        grace: doc
            .get("gracePeriodSeconds")
            .and_then(Value::as_i64)
            .or(ctx.params.grace_period_seconds),
        propagation,
        uid: doc
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: doc
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Deletes one object as `opts` say: immediately, or by marking it (finalizers, graceful pods).
async fn delete_one(
    ctx: &Ctx<'_>,
    key: &Bytes,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<(StatusCode, Value)> {
    for _ in 0..PATCH_RETRIES {
        let current = ctx
            .objects
            .get(key)
            .await?
            .ok_or_else(|| ApiError::not_found(ctx.def, name))?;
        let m = meta(&current);
        if let Some(uid) = &opts.uid {
            let actual = m.get("uid").and_then(Value::as_str).unwrap_or_default();
            if uid != actual {
                return Err(ApiError::conflict_message(
                    ctx.def,
                    name,
                    format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            let actual = m
                .get("resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if rv != actual {
                return Err(ApiError::conflict_message(
                    ctx.def,
                    name,
                    format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                    ),
                ));
            }
        }
        if !m.contains_key("deletionTimestamp") {
            crate::dynamic::validate(ctx, webhooks::Operation::Delete, None, Some(&current))
                .await?;
        }
        let mut marked = current.clone();
        let mut finalizers: Vec<Value> = m
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match opts.propagation.as_deref() {
            Some("Orphan") => add_finalizer(&mut finalizers, "orphan"),
            Some("Foreground") => add_finalizer(&mut finalizers, "foregroundDeletion"),
            _ => {}
        }
        if is_crd(ctx.def) && !m.contains_key("deletionTimestamp") {
            // The CRD controller deletes every object of the CRD, then this finalizer.
            add_finalizer(&mut finalizers, crate::crd::CLEANUP_FINALIZER);
            crate::crd::mark_terminating(&mut marked);
        }
        let grace = graceful_period(ctx.def, &current, opts.grace);
        let already = m.contains_key("deletionTimestamp");
        if !finalizers.is_empty() || grace > 0 || has_spec_finalizers(ctx.def, &current) {
            let mm = meta_mut(&mut marked);
            if !finalizers.is_empty() {
                mm.insert("finalizers".into(), Value::Array(finalizers));
            }
            if !already {
                mm.insert("deletionTimestamp".into(), json!(rfc3339_in(grace.max(0))));
                mm.insert("deletionGracePeriodSeconds".into(), json!(grace.max(0)));
            } else if grace > 0 {
                // A second delete may only shorten the grace period.
                let old = mm
                    .get("deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX);
                if grace < old {
                    mm.insert("deletionTimestamp".into(), json!(rfc3339_in(grace)));
                    mm.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
            }
            if ctx.def.kind == "Namespace" {
                marked["status"] = json!({"phase": "Terminating"});
            }
            if marked == current || ctx.params.dry_run {
                return Ok((StatusCode::OK, marked));
            }
            match ctx
                .objects
                .update(key, revision_of(&current), &marked)
                .await?
            {
                Ok(obj) => return Ok((StatusCode::OK, obj)),
                Err(WriteConflict::Missing) => return Err(ApiError::not_found(ctx.def, name)),
                Err(WriteConflict::Changed(_)) => continue,
            }
        }
        if ctx.params.dry_run {
            return Ok((StatusCode::OK, current));
        }
        let held = if is_service(ctx.def) {
            crate::alloc::held_keys(ctx.cluster, &current)
        } else {
            Vec::new()
        };
        match ctx
            .objects
            .delete_with(key, revision_of(&current), &held)
            .await?
        {
            Ok(obj) => return Ok((StatusCode::OK, obj)),
            Err(WriteConflict::Missing) => return Err(ApiError::not_found(ctx.def, name)),
            Err(WriteConflict::Changed(_)) => continue,
        }
    }
    Err(ApiError::conflict(ctx.def, name))
}

fn add_finalizer(finalizers: &mut Vec<Value>, name: &str) {
    if !finalizers.iter().any(|f| f == name) {
        finalizers.push(json!(name));
    }
}

/// The grace period a delete gets: pods bound to a node stop gracefully, everything else at once.
fn graceful_period(def: &ResourceDef, obj: &Value, requested: Option<i64>) -> i64 {
    if !(def.kind == "Pod" && def.group.is_empty()) {
        return 0;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let terminal = matches!(
        obj.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !bound || terminal {
        return 0;
    }
    requested
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

async fn delete(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Response> {
    let name = ctx.req.name.as_deref().unwrap_or_default();
    let opts = delete_options(ctx, body)?;
    let key = ctx.key(name);
    let (code, obj) = delete_one(ctx, &key, name, &opts).await?;
    Ok(json_response(code, &obj))
}

async fn delete_collection(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Response> {
    let (labels, fields) = selectors(ctx)?;
    let opts = delete_options(ctx, body)?;
    let prefix = storage::list_prefix(ctx.cluster, ctx.def, ctx.namespace());
    let filter = |obj: &Value| labels.matches_object(obj) && fields.matches(obj);
    let page = ctx
        .objects
        .list(&prefix, None, Consistency::Linearizable, None, 0, &filter)
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for obj in page.items {
        let name = meta_str(&obj, "name").unwrap_or_default().to_owned();
        let ns = meta_str(&obj, "namespace").map(str::to_owned);
        let key = storage::object_key(ctx.cluster, ctx.def, ns.as_deref(), &name);
        match delete_one(ctx, &key, &name, &opts).await {
            Ok((_, deleted)) => items.push(deleted),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(tables::respond_list(
        ctx,
        items,
        json!({"resourceVersion": page.revision.to_string()}),
    ))
}

async fn bind(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Response> {
    let binding = decode_body(ctx.headers, body)?;
    let name = ctx.req.name.as_deref().unwrap_or_default();
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if node.is_empty() {
        let err = objects::field::FieldError::required(
            objects::field::Path::new("target").child("name"),
            "",
        );
        return Err(ApiError::invalid(ctx.def, name, &[err]));
    }
    let key = ctx.key(name);
    for _ in 0..PATCH_RETRIES {
        let (_, current) = get_current(ctx).await?;
        if meta(&current).contains_key("deletionTimestamp") {
            return Err(ApiError::conflict_message(
                ctx.def,
                name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        if let Some(existing) = current
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict_message(
                ctx.def,
                name,
                format!("pod {name} is already assigned to node {existing:?}"),
            ));
        }
        let mut bound = current.clone();
        bound["spec"]["nodeName"] = json!(node);
        let conditions = bound["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut conditions: Vec<Value> = conditions
            .into_iter()
            .filter(|c| c["type"] != "PodScheduled")
            .collect();
        conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_rfc3339()}));
        bound["status"]["conditions"] = Value::Array(conditions);
        match ctx
            .objects
            .update(&key, revision_of(&current), &bound)
            .await?
        {
            Ok(_) => {
                return Ok(json_response(
                    StatusCode::CREATED,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ));
            }
            Err(WriteConflict::Missing) => return Err(ApiError::not_found(ctx.def, name)),
            Err(WriteConflict::Changed(_)) => continue,
        }
    }
    Err(ApiError::conflict(ctx.def, name))
}

fn pdb_def() -> &'static ResourceDef {
    static PDBS: std::sync::LazyLock<ResourceDef> = std::sync::LazyLock::new(|| {
        crate::registry::builtin()
            .into_iter()
            .find(|d| d.kind == "PodDisruptionBudget")
            .expect("poddisruptionbudgets are built in")
    });
    &PDBS
}

/// Evicts a pod unless a PodDisruptionBudget forbids it, as upstream's eviction subresource does:
/// pods that are not running are simply deleted; otherwise the one matching budget must allow a
/// disruption, which the eviction records in the budget's status before deleting the pod.
async fn evict(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Response> {
    let eviction = decode_body(ctx.headers, body)?;
    let name = ctx.req.name.as_deref().unwrap_or_default();
    let opts = DeleteOptions {
        grace: eviction
            .pointer("/deleteOptions/gracePeriodSeconds")
            .and_then(Value::as_i64),
        propagation: None,
        uid: eviction
            .pointer("/deleteOptions/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: None,
    };
    let key = ctx.key(name);
    for _ in 0..PATCH_RETRIES {
        let (_, pod) = get_current(ctx).await?;
        let phase = pod
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("Pending");
        let exempt = matches!(phase, "Succeeded" | "Failed" | "Pending")
            || meta(&pod).contains_key("deletionTimestamp");
        if !exempt {
            let pdbs = pdb_def();
            let prefix = storage::list_prefix(ctx.cluster, pdbs, ctx.namespace());
            let labels = objects::selectors::labels_of(&pod);
            let matching = |pdb: &Value| {
                pdb.pointer("/spec/selector")
                    .filter(|s| !s.is_null())
                    .and_then(|s| LabelSelector::from_api(s).ok())
                    .is_some_and(|s| s.matches(&labels))
            };
            let page = ctx
                .objects
                .list(&prefix, None, Consistency::Linearizable, None, 0, &matching)
                .await?;
            match page.items.as_slice() {
                [] => {}
                [pdb] => {
                    let pdb_name = meta_str(pdb, "name").unwrap_or_default().to_owned();
                    let generation = pdb
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    let observed = pdb
                        .pointer("/status/observedGeneration")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if observed < generation {
                        return Err(ApiError::disruption_budget(format!(
                            "The disruption budget {pdb_name} is still being processed by the server."
                        )));
                    }
                    let allowed = pdb
                        .pointer("/status/disruptionsAllowed")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if allowed <= 0 {
                        let desired = pdb
                            .pointer("/status/desiredHealthy")
                            .and_then(Value::as_i64)
                            .unwrap_or(0);
                        let current = pdb
                            .pointer("/status/currentHealthy")
                            .and_then(Value::as_i64)
                            .unwrap_or(0);
                        return Err(ApiError::disruption_budget(format!(
                            "The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"
                        )));
                    }
                    if !ctx.params.dry_run {
                        let mut updated = pdb.clone();
                        updated["status"]["disruptionsAllowed"] = json!(allowed - 1);
                        updated["status"]["disruptedPods"][name] = json!(now_rfc3339());
                        let pdb_key =
                            storage::object_key(ctx.cluster, pdbs, ctx.namespace(), &pdb_name);
                        match ctx
                            .objects
                            .update(&pdb_key, revision_of(pdb), &updated)
                            .await?
                        {
                            Ok(_) => {}
                            // The budget changed meanwhile: decide again with its new state.
                            Err(_) => continue,
                        }
                    }
                }
                _ => {
                    return Err(ApiError::internal_message(
                        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                    ));
                }
            }
        }
        delete_one(ctx, &key, name, &opts).await?;
        return Ok(json_response(
            StatusCode::CREATED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ));
    }
    Err(ApiError::conflict(ctx.def, name))
}

/// Where the scale subresource reads and writes replicas: `.spec.replicas` and
/// `.status.replicas` for built-in kinds, the CRD's paths for custom resources.
fn scale_paths(def: &ResourceDef) -> (Vec<String>, Vec<String>, Option<Vec<String>>) {
    let fields = |path: &str| -> Vec<String> {
        path.trim_start_matches('.')
            .split('.')
            .map(str::to_owned)
            .collect()
    };
    match def.custom.as_ref().and_then(|c| c.scale.as_ref()) {
        Some(paths) => (
            fields(&paths.spec_replicas),
            fields(&paths.status_replicas),
            paths.label_selector.as_deref().map(fields),
        ),
        None => (fields("spec.replicas"), fields("status.replicas"), None),
    }
}

fn value_at<'a>(obj: &'a Value, fields: &[String]) -> Option<&'a Value> {
    fields.iter().try_fold(obj, |v, f| v.get(f.as_str()))
}

fn set_at(obj: &mut Value, fields: &[String], value: Value) {
    let mut at = obj;
    for f in fields {
        if !at.is_object() {
            *at = json!({});
        }
        at = at
            .as_object_mut()
            .expect("made an object")
            .entry(f.clone())
            .or_insert(Value::Null);
    }
    *at = value;
}

fn scale_of(ctx: &Ctx<'_>, obj: &Value) -> Value {
    let (spec_path, status_path, selector_path) = scale_paths(ctx.def);
    if ctx.def.is_custom() {
        let selector = selector_path
            .and_then(|p| value_at(obj, &p).and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        return json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta(obj).get("name"),
                "namespace": meta(obj).get("namespace"),
                "uid": meta(obj).get("uid"),
                "resourceVersion": meta(obj).get("resourceVersion"),
                "creationTimestamp": meta(obj).get("creationTimestamp"),
            },
            "spec": {"replicas": value_at(obj, &spec_path).cloned().unwrap_or(json!(0))},
            "status": {
                "replicas": value_at(obj, &status_path).cloned().unwrap_or(json!(0)),
                "selector": selector,
            },
        });
    }
    let selector = obj
        .pointer("/spec/selector")
        .map(|s| {
            if ctx.def.kind == "ReplicationController" {
                s.as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            } else {
                selector_string(s)
            }
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta(obj).get("name"),
            "namespace": meta(obj).get("namespace"),
            "uid": meta(obj).get("uid"),
            "resourceVersion": meta(obj).get("resourceVersion"),
            "creationTimestamp": meta(obj).get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// A `metav1.LabelSelector` as selector text.
fn selector_string(s: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = s.get("matchLabels").and_then(Value::as_object) {
        let sorted: BTreeMap<_, _> = m.iter().collect();
        for (k, v) in sorted {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = s.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            parts.push(match e["operator"].as_str().unwrap_or_default() {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_owned(),
                _ => format!("!{key}"),
            });
        }
    }
    parts.join(",")
}

async fn get_scale(ctx: &Ctx<'_>) -> ApiResult<Response> {
    let (_, obj) = get_current(ctx).await?;
    Ok(json_response(StatusCode::OK, &scale_of(ctx, &obj)))
}

async fn update_scale(ctx: &Ctx<'_>, body: &[u8], is_patch: bool) -> ApiResult<Response> {
    let name = ctx.req.name.as_deref().unwrap_or_default();
    for _ in 0..PATCH_RETRIES {
        let (key, current) = get_current(ctx).await?;
        let scale = if is_patch {
            let content_type = ctx
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let current_scale = scale_of(ctx, &current);
            if content_type.starts_with("application/json-patch+json") {
                // The same engine and limits (operations, copied bytes) as any JSON patch.
                let ops: Value = serde_json::from_slice(body).map_err(|e| {
                    ApiError::bad_request(format!("error decoding JSON patch: {e}"))
                })?;
                objects::patch::json_patch(&current_scale, &ops)
                    .map_err(|e| patch_error(ctx, name, e))?
            } else {
                let p: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                let mut doc = current_scale;
                json_patch::merge(&mut doc, &p);
                doc
            }
        } else {
            decode_body(ctx.headers, body)?
        };
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            let err = objects::field::FieldError::invalid(
                objects::field::Path::new("spec").child("replicas"),
                replicas,
                "must be greater than or equal to 0",
            );
            let mut e = ApiError::invalid(ctx.def, name, &[err]);
            e.message = format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
            );
            return Err(e);
        }
        if let Some(rv) = scale
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            && rv != revision_of(&current).to_string()
            && !is_patch
        {
            return Err(ApiError::conflict(ctx.def, name));
        }
        let mut new = current.clone();
        set_at(&mut new, &scale_paths(ctx.def).0, json!(replicas));
        // The scale subresource's writer owns the replica count from then on.
        let mut new = track(ctx, Some(&current), new, Some(Subresource::Scale));
        if new == current {
            return Ok(json_response(StatusCode::OK, &scale_of(ctx, &current)));
        }
        if tracks_generation(ctx.def) {
            let generation = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta_mut(&mut new).insert("generation".into(), json!(generation));
        }
        if ctx.params.dry_run {
            return Ok(json_response(StatusCode::OK, &scale_of(ctx, &new)));
        }
        match ctx
            .objects
            .update(&key, revision_of(&current), &new)
            .await?
        {
            Ok(obj) => return Ok(json_response(StatusCode::OK, &scale_of(ctx, &obj))),
            Err(WriteConflict::Missing) => return Err(ApiError::not_found(ctx.def, name)),
            Err(WriteConflict::Changed(_)) => continue,
        }
    }
    Err(ApiError::conflict(ctx.def, name))
}

/// How much a watch gathers into one write when changes come faster than it sends them.
const WATCH_CHUNK_BYTES: usize = 256 * 1024;

/// One event of a watch response.
fn watch_event(kind: &str, object: Value) -> Bytes {
    crate::feed::encode_line(kind, &object)
}

fn bookmark(def: &ResourceDef, revision: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": revision.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    watch_event(
        "BOOKMARK",
        json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta}),
    )
}

/// The longest a watch holds its cluster's heavy-read turn while its client reads the initial
/// events.
const HEAVY_READ_TURN: Duration = Duration::from_secs(5);

async fn watch(ctx: &Ctx<'_>) -> ApiResult<Response> {
    let (labels, fields) = selectors(ctx)?;
    let prefix = storage::list_prefix(ctx.cluster, ctx.def, ctx.namespace());
    let rv = ctx.params.revision()?;
    let send_initial = ctx
        .params
        .send_initial_events
        .unwrap_or(matches!(rv, None | Some(0)));
    if ctx.params.send_initial_events == Some(true)
        && ctx.params.resource_version_match.as_deref() != Some("NotOlderThan")
    {
        return Err(ApiError::bad_request(
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    // Selections a change's key decides, without decoding its object: everything, or a field
    // selector on names and namespaces only (an object's key holds both, and never changes).
    let by_key = labels.is_empty().then(|| fields.clone());
    let resource_prefix = storage::list_prefix(ctx.cluster, ctx.def, None);
    let key_selects = {
        let (skip, namespaced) = (resource_prefix.len(), ctx.def.namespaced);
        move |key: &[u8]| -> Option<bool> {
            let fields = by_key.as_ref()?;
            let rest = std::str::from_utf8(key.get(skip..)?).ok()?;
            let (ns, name) = if namespaced {
                rest.split_once('/')?
            } else {
                ("", rest)
            };
            fields.matches_identity(ns, name)
        }
    };
    let selects_all = labels.is_empty() && fields.is_empty();
    let matches = move |obj: &Value| labels.matches_object(obj) && fields.matches(obj);
    let mut initial: Vec<Bytes> = Vec::new();
    // The initial events are a list: they take a turn, held until they have been written.
    let turn = if send_initial {
        ctx.heavy_read().await?
    } else {
        None
    };
    let start = if send_initial {
        let consistency = if rv == Some(0) {
            Consistency::Serializable
        } else {
            Consistency::Linearizable
        };
        let revision =
            if tables::serves_stored(ctx) && selects_all {
                // Every object as stored: its line is spliced from the stored bytes, as a list's
                // items are, not decoded and encoded again.
                let page = ctx
                    .objects
                    .list_stored(&prefix, None, consistency, None, 0)
                    .await?;
                initial.extend(page.items.iter().filter_map(|kv| {
                    crate::feed::stored_line("ADDED", &kv.value, kv.mod_revision)
                }));
                page.revision
            } else {
                let page = ctx
                    .objects
                    .list(&prefix, None, consistency, None, 0, &matches)
                    .await?;
                for obj in page.items {
                    initial.push(tables::watch_object(ctx, "ADDED", obj));
                }
                page.revision
            };
        if ctx.params.send_initial_events == Some(true) && ctx.params.allow_bookmarks {
            initial.push(bookmark(ctx.def, revision, true));
        }
        revision + 1
    } else {
        rv.unwrap_or(0) + 1
    };
    let timeout = ctx
        .params
        .timeout
        .unwrap_or(DEFAULT_WATCH_TIMEOUT)
        .min(DEFAULT_WATCH_TIMEOUT);
    let def = ctx.def.clone();
    let table = tables::Format::of(ctx);
    let bookmarks = ctx.params.allow_bookmarks;
    let namespace = ctx.namespace().map(str::to_owned);
    let namespace_prefix = ctx
        .namespace()
        .map(|ns| storage::list_prefix(ctx.cluster, ctx.def, Some(ns)));
    // One change as the watch line this client sees, if it sees it: selectors apply to the old
    // and the new object, so leaving the selection reads as DELETED and entering as ADDED.
    // Custom objects read at another version than they are stored in are rewritten per watch.
    let plain = table.is_plain() && !crate::crd::reads_rewrite(ctx.def);
    let classify = Arc::new(
        move |kind: EventKind, obj: &Value, prev: Option<&Value>| -> Option<&'static str> {
            if let Some(ns) = &namespace
                && meta_str(obj, "namespace") != Some(ns.as_str())
            {
                return None;
            }
            let now = matches(obj);
            let before = prev.is_some_and(&matches);
            Some(match kind {
                EventKind::Delete if before => "DELETED",
                EventKind::Delete => return None,
                EventKind::Put if prev.is_none() && now => "ADDED",
                EventKind::Put if now && before => "MODIFIED",
                EventKind::Put if now => "ADDED",
                EventKind::Put if before => "DELETED",
                EventKind::Put => return None,
            })
        },
    );
    let format_def = def.clone();
    let classify_any = Arc::clone(&classify);
    // A change decoded from the store: encoded for this watch alone.
    let line = Arc::new(
        move |kind: EventKind, obj: &Value, prev: Option<&Value>| -> Option<Bytes> {
            let kind = classify_any(kind, obj, prev)?;
            Some(table.watch_object(&format_def, kind, obj.clone()))
        },
    );
    // A change of the shared feed: plain JSON lines are encoded once for every watch, and a
    // watch whose selection the key decides (everything, or names and namespaces) classifies
    // changes without decoding them.
    let line_of_change = {
        let line = Arc::clone(&line);
        Arc::new(move |c: &crate::feed::Change| -> Option<Bytes> {
            if let Some(prefix) = &namespace_prefix
                && !c.key().starts_with(prefix)
            {
                return None;
            }
            let kind = match key_selects(c.key()) {
                Some(false) => return None,
                Some(true) => match (c.kind, c.has_previous()) {
                    (EventKind::Delete, true) => "DELETED",
                    (EventKind::Delete, false) => return None,
                    (EventKind::Put, false) => "ADDED",
                    (EventKind::Put, true) => "MODIFIED",
                },
                None => {
                    let (obj, prev) = c.objects()?;
                    classify(c.kind, obj, prev)?
                }
            };
            match table {
                _ if plain => c.line(kind),
                tables::Format::Metadata { v1beta1 } => c.metadata_line(kind, v1beta1),
                _ => {
                    let (obj, prev) = c.objects()?;
                    line(c.kind, obj, prev)
                }
            }
        })
    };
    // Shared by the stream's steps (cloning the definition for each would cost more than the
    // step itself).
    let def = Arc::new(ctx.def.clone());
    // Watches of a resource share one feed; one from before the feed's window watches the
    // store itself.
    let live: futures::stream::BoxStream<'static, Bytes> = match ctx
        .feeds
        .subscribe(ctx.objects, &resource_prefix, start)
        .await?
    {
        Some(crate::feed::Subscription {
            _feed: feed,
            replay,
            live,
        }) => {
            let replay_line = Arc::clone(&line_of_change);
            let replayed: Vec<Bytes> = replay
                .iter()
                .flat_map(|batch| batch.iter())
                .filter(|c| c.revision >= start)
                .filter_map(|c| replay_line(c))
                .collect();
            let rest = futures::stream::unfold((live, feed, false), move |(mut rx, feed, done)| {
                let line = Arc::clone(&line_of_change);
                let def = Arc::clone(&def);
                async move {
                    if done {
                        return None;
                    }
                    // Every line that is ready goes out in one chunk: a burst of changes costs
                    // each watch one write (one TLS record, one syscall), not one per change.
                    let mut parts: Vec<Bytes> = Vec::new();
                    let mut size = 0;
                    let mut ended = false;
                    loop {
                        let item = if parts.is_empty() {
                            rx.recv().await
                        } else if size >= WATCH_CHUNK_BYTES {
                            break;
                        } else {
                            match rx.try_recv() {
                                Some(item) => item,
                                None => break,
                            }
                        };
                        let before = parts.len();
                        match item {
                            Ok(crate::feed::Item::Changes(batch)) => parts.extend(
                                batch
                                    .iter()
                                    .filter(|c| c.revision >= start)
                                    .filter_map(|c| line(c)),
                            ),
                            Ok(crate::feed::Item::Progress(rev))
                                if bookmarks && rev + 1 >= start =>
                            {
                                parts.push(bookmark(&def, rev, false));
                            }
                            Ok(crate::feed::Item::Progress(_)) => {}
                            Ok(crate::feed::Item::Failed(e)) => {
                                parts.push(watch_event("ERROR", e.status()));
                                ended = true;
                            }
                            // Too slow to keep up, or the feed stopped: the client resumes from
                            // the last resourceVersion it saw.
                            Err(_) => ended = true,
                        }
                        size += parts[before..].iter().map(Bytes::len).sum::<usize>();
                        if ended {
                            break;
                        }
                    }
                    let chunk = match parts.len() {
                        0 => return None,
                        // A lone line is shared with the other watches, not copied.
                        1 => parts.pop().expect("one part"),
                        _ => Bytes::from(parts.concat()),
                    };
                    Some((chunk, (rx, feed, ended)))
                }
            });
            futures::stream::iter(replayed).chain(rest).boxed()
        }
        None => {
            let progress = ctx.params.allow_bookmarks.then_some(BOOKMARK_INTERVAL);
            let events = match ctx.objects.watch(&resource_prefix, start, progress).await {
                Ok(s) => s,
                Err(e) if e.code == 410 => {
                    // Upstream answers a too-old watch with 200 and an ERROR event carrying 410.
                    let compacted = e
                        .message
                        .split('(')
                        .nth(1)
                        .unwrap_or("")
                        .trim_end_matches(')')
                        .to_owned();
                    let status = ApiError::expired(format!(
                        "too old resource version: {} ({compacted})",
                        start - 1
                    ))
                    .status();
                    let body = Body::from(watch_event("ERROR", status));
                    return Ok(([("content-type", "application/json")], body).into_response());
                }
                Err(e) => return Err(e),
            };
            events
                .flat_map(move |item| {
                    let lines: Vec<Bytes> = match item {
                        Ok(WatchResponse::Events(events)) => events
                            .iter()
                            .filter_map(|e| storage::event_objects(e).ok())
                            .filter_map(|(kind, obj, prev)| line(kind, &obj, prev.as_ref()))
                            .collect(),
                        Ok(WatchResponse::Progress(rev)) if bookmarks => {
                            vec![bookmark(&def, rev, false)]
                        }
                        Ok(WatchResponse::Progress(_)) => vec![],
                        Err(e) => {
                            let err: ApiError = e.into();
                            vec![watch_event("ERROR", err.status())]
                        }
                    };
                    futures::stream::iter(lines)
                })
                .boxed()
        }
    };
    // The turn ends when the writer asks for more than the initial events (it has taken them),
    // when the client goes away, or after `HEAVY_READ_TURN` at the most, so that a client
    // reading slowly holds up its own cluster's lists only so long.
    let mut sent = turn.map(|turn| {
        let (sent, done) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _turn = turn;
            let _ = tokio::time::timeout(HEAVY_READ_TURN, done).await;
        });
        sent
    });
    let initial = futures::stream::iter(initial).chain(futures::stream::poll_fn(move |_| {
        sent.take();
        std::task::Poll::Ready(None)
    }));
    let stream = initial
        .chain(live)
        .take_until(tokio::time::sleep(timeout))
        .map(Ok::<_, std::convert::Infallible>);
    Ok((
        [
            ("content-type", "application/json"),
            ("cache-control", "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
