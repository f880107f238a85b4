//! A test fake of the Compute Engine REST endpoints that [`crate::GcpCloud`] calls, served by axum
//! on a random 127.0.0.1 port. No emulator of Compute Engine exists; this one follows the
//! documented request and response shapes of the v1 REST API and nothing more.
//!
//! What it models: resources with `kind`, `id` (a decimal string), `name`, `selfLink` (always under
//! `https://www.googleapis.com/compute/v1/`), `creationTimestamp`, `labels` and `status`;
//! mutating calls answer with an operation that moves `PENDING` → `RUNNING` → `DONE` one step per
//! `operations.get` or `operations.wait`, and deletions and instance start-up take effect only when
//! their operation is `DONE`, so a provider that does not wait sees the old state; errors in
//! Google's JSON format (`{"error": {"code", "message", "errors": [{"reason", ...}]}}`) for
//! `404 notFound`, `409 alreadyExists`, `400 invalid` and `400 resourceInUseByAnotherResource`
//! (deleting an address, health check or target pool that another resource uses); lists with
//! `maxResults`, `pageToken` and `nextPageToken`, at most [`PAGE_SIZE`] items a page so that
//! paging is exercised, and `filter` in the form `(labels.KEY = "VALUE") ...` (anything else is
//! rejected with `400 invalid`, so a provider cannot rely on a filter the fake ignores).
//!
//! What it does not model: IAM, quotas, real networking or health checking, operations that
//! progress without being polled, `requestId` deduplication, and every field it does not name.
//! [`FakeCompute::fail_from`] simulates a cloud that becomes unreachable (every request answers
//! `503`) from a given request on, which is how tests stand in for a crash between two calls.

// A fake server's errors are its HTTP responses, returned once per request: boxing them would
// only add noise.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::urls::BASE;

/// The fake's project.
pub const PROJECT: &str = "berth-fake";
/// The fake's region.
pub const REGION: &str = "us-central1";
/// The zones of [`REGION`].
pub const ZONES: [&str; 3] = ["us-central1-a", "us-central1-b", "us-central1-c"];
/// A zone of another region, which a provider of [`REGION`] must not report.
pub const OTHER_REGION_ZONE: &str = "europe-west1-b";
/// Machine types that exist in every zone.
pub const MACHINE_TYPES: [&str; 2] = ["e2-small", "e2-medium"];
/// The image that exists.
pub const IMAGE: &str = "projects/debian-cloud/global/images/family/debian-12";
/// The network that exists.
pub const NETWORK: &str = "global/networks/default";
/// The most items a list page holds.
pub const PAGE_SIZE: usize = 2;

/// What happens to a resource when its operation is done.
#[derive(Debug, Clone)]
enum Effect {
    Delete {
        collection: String,
        name: String,
    },
    SetStatus {
        collection: String,
        name: String,
        status: &'static str,
    },
}

#[derive(Debug)]
struct Operation {
    value: Value,
    on_done: Option<Effect>,
}

#[derive(Debug, Default)]
struct Fault {
    /// A request matching this (method, path fragment) starts the outage.
    trigger: Option<(String, String)>,
    down: bool,
}

#[derive(Debug, Default)]
struct FakeState {
    counter: u64,
    /// Resources by collection path (`zones/us-central1-a/instances`, `global/httpHealthChecks`)
    /// and name.
    collections: BTreeMap<String, BTreeMap<String, Value>>,
    /// Operations by scope path and name (`regions/us-central1/operations/operation-7`).
    operations: BTreeMap<String, Operation>,
    fault: Fault,
    operation_polls: u64,
}

type Shared = Arc<Mutex<FakeState>>;

/// A running fake; [`FakeCompute::stop`] shuts it down.
pub struct FakeCompute {
    addr: SocketAddr,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeCompute {
    /// Starts the fake on a random 127.0.0.1 port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state: Shared = Arc::default();
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "fake Compute server failed");
            }
        });
        Ok(FakeCompute {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The endpoint to give the Compute clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and closes its port.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// From the first request with `method` whose path contains `path_fragment` on (that request
    /// included), every request fails with `503 backendError` until [`FakeCompute::heal`].
    pub fn fail_from(&self, method: &str, path_fragment: &str) {
        let mut s = self.state.lock();
        s.fault.trigger = Some((method.to_owned(), path_fragment.to_owned()));
    }

    /// Ends an outage started by [`FakeCompute::fail_from`].
    pub fn heal(&self) {
        self.state.lock().fault = Fault::default();
    }

    /// The resources of every collection whose path ends with `kind` (`instances`, `addresses`,
    /// `targetPools`, `forwardingRules`, `httpHealthChecks`), sorted by collection and name.
    pub fn resources(&self, kind: &str) -> Vec<Value> {
        let s = self.state.lock();
        s.collections
            .iter()
            .filter(|(path, _)| path.rsplit('/').next() == Some(kind))
            .flat_map(|(_, items)| items.values().cloned())
            .collect()
    }

    /// How many `operations.get` and `operations.wait` calls were answered.
    pub fn operation_polls(&self) -> u64 {
        self.state.lock().operation_polls
    }

    /// The value of an instance's metadata item.
    pub fn metadata(&self, zone: &str, instance: &str, key: &str) -> Option<String> {
        let s = self.state.lock();
        let i = s
            .collections
            .get(&format!("zones/{zone}/instances"))?
            .get(instance)?;
        i["metadata"]["items"]
            .as_array()?
            .iter()
            .find(|item| item["key"] == key)
            .and_then(|item| item["value"].as_str().map(String::from))
    }
}

/// A Compute error in Google's JSON format.
fn error(status: u16, reason: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = json!({
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    });
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

fn not_found(path: &str) -> Response {
    error(
        404,
        "notFound",
        format!("The resource 'projects/{PROJECT}/{path}' was not found"),
    )
}

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

/// A resource path relative to the project, from a full URL, a `projects/...` path or a relative
/// one.
fn relative(url: &str) -> String {
    let url = url.strip_prefix(BASE).unwrap_or(url);
    let prefix = format!("projects/{PROJECT}/");
    url.strip_prefix(&prefix).unwrap_or(url).to_owned()
}

fn full(path: &str) -> String {
    format!("{BASE}projects/{PROJECT}/{path}")
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && !name.ends_with('-')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Parses the label filters the fake supports: `(labels.KEY = "VALUE")`, repeated, optionally
/// joined by `AND`.
fn parse_filter(filter: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = filter.trim();
    while !rest.is_empty() {
        rest = rest.strip_prefix("AND").map_or(rest, str::trim_start);
        let inner_end = rest.find(')')?;
        let expr = rest.strip_prefix('(')?.get(..inner_end - 1)?;
        let (key, value) = expr.split_once('=')?;
        let key = key.trim().strip_prefix("labels.")?;
        let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
        if key.is_empty() || key.contains(' ') {
            return None;
        }
        out.push((key.to_owned(), value.to_owned()));
        rest = rest[inner_end + 1..].trim_start();
    }
    Some(out)
}

fn matches(item: &Value, filter: &[(String, String)]) -> bool {
    filter
        .iter()
        .all(|(k, v)| item["labels"][k.as_str()].as_str() == Some(v.as_str()))
}

/// One page of `items` (already filtered and sorted) after `pageToken`.
fn page(
    items: Vec<Value>,
    query: &HashMap<String, String>,
) -> Result<(Vec<Value>, Option<String>), Response> {
    let start = match query.get("pageToken").map(String::as_str) {
        None | Some("") => 0,
        Some(t) => t
            .strip_prefix("fake-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| {
                error(
                    400,
                    "invalid",
                    format!("Invalid value for field 'pageToken': '{t}'."),
                )
            })?,
    };
    let size = query
        .get("maxResults")
        .and_then(|m| m.parse::<usize>().ok())
        .filter(|m| *m > 0)
        .unwrap_or(500)
        .min(PAGE_SIZE);
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| format!("fake-page-{end}"));
    Ok((items[start..end].to_vec(), next))
}

fn list_response(kind: &str, path: &str, items: Vec<Value>, next: Option<String>) -> Response {
    let mut body = json!({
        "kind": kind,
        "id": format!("projects/{PROJECT}/{path}"),
        "selfLink": full(path),
    });
    // Compute leaves `items` out of an empty page.
    if !items.is_empty() {
        body["items"] = Value::Array(items);
    }
    if let Some(t) = next {
        body["nextPageToken"] = Value::String(t);
    }
    ok(body)
}

fn filter_of(query: &HashMap<String, String>) -> Result<Vec<(String, String)>, Response> {
    match query.get("filter").map(String::as_str) {
        None | Some("") => Ok(Vec::new()),
        Some(f) => parse_filter(f).ok_or_else(|| {
            error(
                400,
                "invalid",
                format!("Invalid value for field 'filter': '{f}'. Invalid list filter expression."),
            )
        }),
    }
}

fn known_zone(zone: &str) -> bool {
    ZONES.contains(&zone) || zone == OTHER_REGION_ZONE
}

fn known_region(region: &str) -> bool {
    region == REGION || Some(region) == OTHER_REGION_ZONE.rsplit_once('-').map(|(r, _)| r)
}

impl FakeState {
    fn tick(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn timestamp(&mut self) -> String {
        let t = self.tick();
        format!(
            "2026-01-01T{:02}:{:02}:{:02}.{:03}-08:00",
            (t / 3_600_000) % 24,
            (t / 60_000) % 60,
            (t / 1000) % 60,
            t % 1000
        )
    }

    fn get(&self, collection: &str, name: &str) -> Option<&Value> {
        self.collections.get(collection)?.get(name)
    }

    /// Stores a new resource with the fields every resource has; `409` if the name is taken.
    fn create(
        &mut self,
        collection: &str,
        kind: &str,
        mut body: Value,
    ) -> Result<(String, Value), Response> {
        let name = body["name"].as_str().unwrap_or_default().to_owned();
        if !valid_name(&name) {
            return Err(error(
                400,
                "invalid",
                format!(
                    "Invalid value for field 'resource.name': '{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'"
                ),
            ));
        }
        let path = format!("{collection}/{name}");
        if self.get(collection, &name).is_some() {
            return Err(error(
                409,
                "alreadyExists",
                format!("The resource 'projects/{PROJECT}/{path}' already exists"),
            ));
        }
        let id = self.tick() * 7_919 + 1_000_000_000_000;
        body["kind"] = json!(kind);
        body["id"] = json!(id.to_string());
        body["creationTimestamp"] = json!(self.timestamp());
        body["selfLink"] = json!(full(&path));
        if body.get("labels").is_none() {
            body["labels"] = json!({});
        }
        self.collections
            .entry(collection.to_owned())
            .or_default()
            .insert(name.clone(), body.clone());
        Ok((path, body))
    }

    /// A new operation in `scope` (`zones/z`, `regions/r` or `global`) on `target`.
    fn operation(
        &mut self,
        scope: &str,
        op_type: &str,
        target: &Value,
        on_done: Option<Effect>,
    ) -> Value {
        let n = self.tick();
        let name = format!("operation-{n}-fake");
        let path = format!("{scope}/operations/{name}");
        let mut op = json!({
            "kind": "compute#operation",
            "id": (n * 104_729).to_string(),
            "name": name,
            "operationType": op_type,
            "targetLink": target["selfLink"],
            "targetId": target["id"],
            "status": "PENDING",
            "user": "fake@berth.test",
            "progress": 0,
            "insertTime": self.timestamp(),
            "selfLink": full(&path),
        });
        if let Some(zone) = scope.strip_prefix("zones/") {
            op["zone"] = json!(full(&format!("zones/{zone}")));
        } else if let Some(region) = scope.strip_prefix("regions/") {
            op["region"] = json!(full(&format!("regions/{region}")));
        }
        self.operations.insert(
            path,
            Operation {
                value: op.clone(),
                on_done,
            },
        );
        op
    }

    /// Advances an operation one step and returns it.
    fn poll(&mut self, path: &str) -> Option<Value> {
        self.operation_polls += 1;
        let op = self.operations.get_mut(path)?;
        let next = match op.value["status"].as_str() {
            Some("PENDING") => "RUNNING",
            _ => "DONE",
        };
        let finished = next == "DONE" && op.value["status"] != "DONE";
        op.value["status"] = json!(next);
        op.value["progress"] = json!(if next == "DONE" { 100 } else { 50 });
        let value = op.value.clone();
        let effect = if finished { op.on_done.take() } else { None };
        match effect {
            Some(Effect::Delete { collection, name }) => {
                if let Some(items) = self.collections.get_mut(&collection) {
                    items.remove(&name);
                }
            }
            Some(Effect::SetStatus {
                collection,
                name,
                status,
            }) => {
                if let Some(r) = self
                    .collections
                    .get_mut(&collection)
                    .and_then(|c| c.get_mut(&name))
                {
                    r["status"] = json!(status);
                }
            }
            None => {}
        }
        Some(value)
    }

    fn list(&self, collection: &str, filter: &[(String, String)]) -> Vec<Value> {
        self.collections
            .get(collection)
            .map(|items| {
                items
                    .values()
                    .filter(|v| matches(v, filter))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A resource of `collection` that refers to `url` in `field`, if any.
    fn user_of(&self, collection: &str, field: &str, url: &str) -> Option<String> {
        self.collections.get(collection)?.values().find_map(|v| {
            let refers = match &v[field] {
                Value::String(s) => s == url,
                Value::Array(a) => a.iter().any(|x| x == url),
                _ => false,
            };
            refers.then(|| v["selfLink"].as_str().unwrap_or_default().to_owned())
        })
    }

    fn next_ip(&mut self, prefix: &str) -> String {
        let n = self.tick();
        format!("{prefix}.{}", n % 250 + 2)
    }
}

fn zone_value(zone: &str, id: u64) -> Value {
    let region = zone.rsplit_once('-').map_or(zone, |(r, _)| r);
    json!({
        "kind": "compute#zone",
        "id": (2000 + id).to_string(),
        "name": zone,
        "description": zone,
        "region": full(&format!("regions/{region}")),
        "status": "UP",
        "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
        "selfLink": full(&format!("zones/{zone}")),
    })
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return error(400, "parseError", format!("Parse Error: {e}")),
        }
    };
    let mut s = state.lock();
    if let Some((m, fragment)) = &s.fault.trigger
        && m.as_str() == method.as_str()
        && uri.path().contains(fragment.as_str())
    {
        s.fault.down = true;
    }
    if s.fault.down {
        return error(503, "backendError", "Backend Error");
    }
    let Some(rest) = uri.path().strip_prefix("/compute/v1/projects/") else {
        return error(404, "notFound", format!("Not Found: {}", uri.path()));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments[0] != PROJECT {
        return error(
            404,
            "notFound",
            format!("The resource 'projects/{}' was not found", segments[0]),
        );
    }
    route(&mut s, &method, &segments[1..], &query, body)
}

fn route(
    s: &mut FakeState,
    method: &Method,
    seg: &[&str],
    query: &HashMap<String, String>,
    body: Value,
) -> Response {
    let filter = match filter_of(query) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match (method.as_str(), seg) {
        ("GET", ["regions", region]) => {
            if known_region(region) {
                ok(json!({
                    "kind": "compute#region",
                    "name": region,
                    "status": "UP",
                    "selfLink": full(&format!("regions/{region}")),
                    "zones": ZONES.iter().chain([&OTHER_REGION_ZONE])
                        .filter(|z| z.starts_with(region))
                        .map(|z| full(&format!("zones/{z}")))
                        .collect::<Vec<_>>(),
                }))
            } else {
                not_found(&format!("regions/{region}"))
            }
        }
        ("GET", ["zones"]) => {
            let zones: Vec<Value> = ZONES
                .iter()
                .chain([&OTHER_REGION_ZONE])
                .enumerate()
                .map(|(i, z)| zone_value(z, i as u64))
                .collect();
            match page(zones, query) {
                Ok((items, next)) => list_response("compute#zoneList", "zones", items, next),
                Err(r) => r,
            }
        }
        ("GET", ["aggregated", "instances"]) => aggregated_instances(s, query, &filter),
        (_, ["zones", zone, "operations", name, rest @ ..]) => {
            operation(s, method, &format!("zones/{zone}"), name, rest)
        }
        (_, ["regions", region, "operations", name, rest @ ..]) => {
            operation(s, method, &format!("regions/{region}"), name, rest)
        }
        (_, ["global", "operations", name, rest @ ..]) => {
            operation(s, method, "global", name, rest)
        }
        (_, ["zones", zone, "instances", rest @ ..]) => {
            if !known_zone(zone) {
                return not_found(&format!("zones/{zone}"));
            }
            instances(s, method, zone, rest, query, &filter, body)
        }
        (_, ["regions", region, collection, rest @ ..])
            if matches!(*collection, "addresses" | "targetPools" | "forwardingRules") =>
        {
            if !known_region(region) {
                return not_found(&format!("regions/{region}"));
            }
            regional(s, method, region, collection, rest, query, &filter, body)
        }
        (_, ["global", "httpHealthChecks", rest @ ..]) => {
            health_checks(s, method, rest, query, &filter, body)
        }
        _ => error(
            404,
            "notFound",
            format!("The fake has no {method} {}", seg.join("/")),
        ),
    }
}

fn operation(
    s: &mut FakeState,
    method: &Method,
    scope: &str,
    name: &str,
    rest: &[&str],
) -> Response {
    let path = format!("{scope}/operations/{name}");
    match (method.as_str(), rest) {
        ("GET", []) | ("POST", ["wait"]) => match s.poll(&path) {
            Some(op) => ok(op),
            None => not_found(&path),
        },
        _ => error(404, "notFound", format!("The fake has no {method} {path}")),
    }
}

fn aggregated_instances(
    s: &mut FakeState,
    query: &HashMap<String, String>,
    filter: &[(String, String)],
) -> Response {
    let zones: Vec<&str> = ZONES.iter().copied().chain([OTHER_REGION_ZONE]).collect();
    let all: Vec<Value> = zones
        .iter()
        .flat_map(|z| s.list(&format!("zones/{z}/instances"), filter))
        .collect();
    let (items, next) = match page(all, query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut by_scope = serde_json::Map::new();
    for z in &zones {
        let scope = format!("zones/{z}");
        let here: Vec<Value> = items
            .iter()
            .filter(|i| i["zone"].as_str().is_some_and(|u| u.ends_with(&scope)))
            .cloned()
            .collect();
        let entry = if here.is_empty() {
            json!({"warning": {
                "code": "NO_RESULTS_ON_PAGE",
                "message": format!("There are no results for scope '{scope}' on this page."),
                "data": [{"key": "scope", "value": scope}],
            }})
        } else {
            json!({"instances": here})
        };
        by_scope.insert(scope, entry);
    }
    let mut body = json!({
        "kind": "compute#instanceAggregatedList",
        "id": format!("projects/{PROJECT}/aggregated/instances"),
        "items": by_scope,
        "selfLink": full("aggregated/instances"),
    });
    if let Some(t) = next {
        body["nextPageToken"] = json!(t);
    }
    ok(body)
}

fn get_or_404(s: &FakeState, collection: &str, name: &str) -> Response {
    match s.get(collection, name) {
        Some(v) => ok(v.clone()),
        None => not_found(&format!("{collection}/{name}")),
    }
}

fn list_page(
    s: &FakeState,
    kind: &str,
    collection: &str,
    query: &HashMap<String, String>,
    filter: &[(String, String)],
) -> Response {
    match page(s.list(collection, filter), query) {
        Ok((items, next)) => list_response(kind, collection, items, next),
        Err(r) => r,
    }
}

/// Starts the deletion of a resource: done when its operation is.
fn delete(s: &mut FakeState, scope: &str, collection: &str, name: &str) -> Response {
    let Some(target) = s.get(collection, name).cloned() else {
        return not_found(&format!("{collection}/{name}"));
    };
    let op = s.operation(
        scope,
        "delete",
        &target,
        Some(Effect::Delete {
            collection: collection.to_owned(),
            name: name.to_owned(),
        }),
    );
    ok(op)
}

fn in_use(what: &str, url: &str, user: &str) -> Response {
    error(
        400,
        "resourceInUseByAnotherResource",
        format!(
            "The {what} resource '{}' is already being used by '{}'",
            relative(url),
            relative(user)
        ),
    )
}

fn instances(
    s: &mut FakeState,
    method: &Method,
    zone: &str,
    rest: &[&str],
    query: &HashMap<String, String>,
    filter: &[(String, String)],
    body: Value,
) -> Response {
    let collection = format!("zones/{zone}/instances");
    let scope = format!("zones/{zone}");
    match (method.as_str(), rest) {
        ("GET", []) => list_page(s, "compute#instanceList", &collection, query, filter),
        ("GET", [name]) => get_or_404(s, &collection, name),
        ("DELETE", [name]) => {
            if let Some(i) = s
                .collections
                .get_mut(&collection)
                .and_then(|c| c.get_mut(*name))
            {
                i["status"] = json!("STOPPING");
            }
            delete(s, &scope, &collection, name)
        }
        ("POST", []) => insert_instance(s, zone, body),
        _ => error(
            404,
            "notFound",
            format!("The fake has no {method} {collection}"),
        ),
    }
}

fn insert_instance(s: &mut FakeState, zone: &str, mut body: Value) -> Response {
    let machine_type = relative(body["machineType"].as_str().unwrap_or_default());
    let type_name = machine_type.rsplit('/').next().unwrap_or_default();
    if machine_type != format!("zones/{zone}/machineTypes/{type_name}")
        || !MACHINE_TYPES.contains(&type_name)
    {
        return error(
            400,
            "invalid",
            format!(
                "Invalid value for field 'resource.machineType': '{machine_type}'. Machine type with name '{type_name}' does not exist in zone '{zone}'."
            ),
        );
    }
    let image = relative(
        body["disks"][0]["initializeParams"]["sourceImage"]
            .as_str()
            .unwrap_or_default(),
    );
    if image != IMAGE {
        let shown = if image.starts_with("projects/") {
            image
        } else {
            format!("projects/{PROJECT}/{image}")
        };
        return error(
            404,
            "notFound",
            format!("The resource '{shown}' was not found"),
        );
    }
    let nic = &body["networkInterfaces"][0];
    let subnet_ok = nic["subnetwork"]
        .as_str()
        .is_none_or(|sn| relative(sn) == format!("regions/{REGION}/subnetworks/default"));
    let network_ok = nic["network"]
        .as_str()
        .is_none_or(|n| relative(n) == NETWORK);
    if !subnet_ok || !network_ok {
        let what = nic["subnetwork"]
            .as_str()
            .or(nic["network"].as_str())
            .unwrap_or("");
        return error(
            404,
            "notFound",
            format!(
                "The resource 'projects/{PROJECT}/{}' was not found",
                relative(what)
            ),
        );
    }
    let internal = s.next_ip("10.128.0");
    let mut nic = nic.clone();
    nic["name"] = json!("nic0");
    nic["networkIP"] = json!(internal);
    if nic["network"].is_null() {
        nic["network"] = json!(full(NETWORK));
    }
    if let Some(configs) = nic["accessConfigs"].as_array().cloned() {
        let mut out = Vec::new();
        for mut c in configs {
            c["natIP"] = json!(s.next_ip("203.0.113"));
            c["kind"] = json!("compute#accessConfig");
            out.push(c);
        }
        nic["accessConfigs"] = json!(out);
    }
    body["networkInterfaces"] = json!([nic]);
    body["machineType"] = json!(full(&machine_type));
    body["zone"] = json!(full(&format!("zones/{zone}")));
    body["status"] = json!("PROVISIONING");
    let collection = format!("zones/{zone}/instances");
    let (_, created) = match s.create(&collection, "compute#instance", body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let name = created["name"].as_str().unwrap_or_default().to_owned();
    ok(s.operation(
        &format!("zones/{zone}"),
        "insert",
        &created,
        Some(Effect::SetStatus {
            collection,
            name,
            status: "RUNNING",
        }),
    ))
}

#[allow(clippy::too_many_arguments)]
fn regional(
    s: &mut FakeState,
    method: &Method,
    region: &str,
    kind: &str,
    rest: &[&str],
    query: &HashMap<String, String>,
    filter: &[(String, String)],
    mut body: Value,
) -> Response {
    let collection = format!("regions/{region}/{kind}");
    let scope = format!("regions/{region}");
    let list_kind = match kind {
        "addresses" => "compute#addressList",
        "targetPools" => "compute#targetPoolList",
        _ => "compute#forwardingRuleList",
    };
    match (method.as_str(), rest) {
        ("GET", []) => list_page(s, list_kind, &collection, query, filter),
        ("GET", [name]) => get_or_404(s, &collection, name),
        ("DELETE", [name]) => {
            let url = full(&format!("{collection}/{name}"));
            let user = match kind {
                "addresses" => {
                    let ip = s
                        .get(&collection, name)
                        .and_then(|a| a["address"].as_str())
                        .unwrap_or_default()
                        .to_owned();
                    s.user_of(&format!("{scope}/forwardingRules"), "IPAddress", &ip)
                }
                "targetPools" => s.user_of(&format!("{scope}/forwardingRules"), "target", &url),
                _ => None,
            };
            if let Some(user) = user {
                return in_use(kind.trim_end_matches('s'), &url, &user);
            }
            delete(s, &scope, &collection, name)
        }
        ("POST", []) => {
            let resource_kind = match kind {
                "addresses" => {
                    body["address"] = json!(s.next_ip("198.51.100"));
                    body["status"] = json!("RESERVED");
                    body["networkTier"] = json!("PREMIUM");
                    if body["addressType"].is_null() {
                        body["addressType"] = json!("EXTERNAL");
                    }
                    "compute#address"
                }
                "targetPools" => {
                    if let Err(r) =
                        normalise_refs(s, &mut body, "healthChecks", "global/httpHealthChecks")
                    {
                        return r;
                    }
                    if let Err(r) = normalise_instances(s, &mut body["instances"], true) {
                        return r;
                    }
                    if body["sessionAffinity"].is_null() {
                        body["sessionAffinity"] = json!("NONE");
                    }
                    "compute#targetPool"
                }
                _ => {
                    if let Err(r) = check_rule(s, region, &mut body) {
                        return r;
                    }
                    "compute#forwardingRule"
                }
            };
            body["region"] = json!(full(&scope));
            match s.create(&collection, resource_kind, body) {
                Ok((_, created)) => ok(s.operation(&scope, "insert", &created, None)),
                Err(r) => r,
            }
        }
        ("POST", [name, action @ ("addInstance" | "removeInstance")]) if kind == "targetPools" => {
            let Some(pool) = s.get(&collection, name).cloned() else {
                return not_found(&format!("{collection}/{name}"));
            };
            let mut refs: Value = body["instances"]
                .as_array()
                .map(|a| a.iter().map(|r| r["instance"].clone()).collect())
                .unwrap_or_default();
            // Adding needs existing instances; removing takes any instance URL, since a pool
            // may still list an instance that was deleted.
            if let Err(r) = normalise_instances(s, &mut refs, *action == "addInstance") {
                return r;
            }
            let mut members: Vec<Value> = pool["instances"].as_array().cloned().unwrap_or_default();
            for r in refs.as_array().into_iter().flatten() {
                if *action == "addInstance" {
                    if !members.contains(r) {
                        members.push(r.clone());
                    }
                } else {
                    members.retain(|m| m != r);
                }
            }
            let op_type = *action;
            if let Some(p) = s
                .collections
                .get_mut(&collection)
                .and_then(|c| c.get_mut(*name))
            {
                p["instances"] = json!(members);
            }
            ok(s.operation(&scope, op_type, &pool, None))
        }
        _ => error(
            404,
            "notFound",
            format!("The fake has no {method} {collection}"),
        ),
    }
}

/// Replaces references in `body[field]` by full URLs of existing resources of `collection`.
fn normalise_refs(
    s: &FakeState,
    body: &mut Value,
    field: &str,
    collection: &str,
) -> Result<(), Response> {
    let mut out = Vec::new();
    for r in body[field].as_array().cloned().unwrap_or_default() {
        let rel = relative(r.as_str().unwrap_or_default());
        let name = rel.rsplit('/').next().unwrap_or_default();
        if rel != format!("{collection}/{name}") || s.get(collection, name).is_none() {
            return Err(not_found(&rel));
        }
        out.push(json!(full(&rel)));
    }
    body[field] = json!(out);
    Ok(())
}

/// Replaces instance references by full URLs of (if `must_exist`) existing instances.
fn normalise_instances(s: &FakeState, refs: &mut Value, must_exist: bool) -> Result<(), Response> {
    let mut out = Vec::new();
    for r in refs.as_array().cloned().unwrap_or_default() {
        let rel = relative(r.as_str().unwrap_or_default());
        let parts: Vec<&str> = rel.split('/').collect();
        let exists = matches!(parts[..], ["zones", zone, "instances", name]
            if !must_exist || s.get(&format!("zones/{zone}/instances"), name).is_some());
        if !exists {
            return Err(not_found(&rel));
        }
        out.push(json!(full(&rel)));
    }
    *refs = json!(out);
    Ok(())
}

fn check_rule(s: &FakeState, region: &str, body: &mut Value) -> Result<(), Response> {
    let target = relative(body["target"].as_str().unwrap_or_default());
    let pool = target.rsplit('/').next().unwrap_or_default();
    if target != format!("regions/{region}/targetPools/{pool}")
        || s.get(&format!("regions/{region}/targetPools"), pool)
            .is_none()
    {
        return Err(not_found(&target));
    }
    body["target"] = json!(full(&target));
    if let Some(ip) = body["IPAddress"].as_str().map(String::from) {
        let reserved = s
            .list(&format!("regions/{region}/addresses"), &[])
            .iter()
            .any(|a| a["address"] == ip.as_str() || a["selfLink"] == full(&relative(&ip)));
        if !reserved {
            return Err(error(
                400,
                "invalid",
                format!(
                    "Invalid value for field 'resource.IPAddress': '{ip}'. Specified IP address is not reserved in region {region}."
                ),
            ));
        }
    }
    let range = body["portRange"].as_str().unwrap_or_default();
    if crate::urls::parse_port_range(range).is_none() && !range.contains('-') {
        return Err(error(
            400,
            "invalid",
            format!("Invalid value for field 'resource.portRange': '{range}'."),
        ));
    }
    if body["IPProtocol"].is_null() {
        body["IPProtocol"] = json!("TCP");
    }
    if body["loadBalancingScheme"].is_null() {
        body["loadBalancingScheme"] = json!("EXTERNAL");
    }
    body["networkTier"] = json!("PREMIUM");
    Ok(())
}

fn health_checks(
    s: &mut FakeState,
    method: &Method,
    rest: &[&str],
    query: &HashMap<String, String>,
    filter: &[(String, String)],
    body: Value,
) -> Response {
    let collection = "global/httpHealthChecks";
    let defaults = |mut b: Value| -> Result<Value, Response> {
        for (field, default) in [
            ("port", json!(80)),
            ("requestPath", json!("/")),
            ("checkIntervalSec", json!(5)),
            ("timeoutSec", json!(5)),
            ("healthyThreshold", json!(2)),
            ("unhealthyThreshold", json!(2)),
        ] {
            if b[field].is_null() {
                b[field] = default;
            }
        }
        if b["timeoutSec"].as_i64() > b["checkIntervalSec"].as_i64() {
            return Err(error(
                400,
                "invalid",
                "Invalid value for field 'resource.timeoutSec': timeout must not exceed checkIntervalSec.",
            ));
        }
        Ok(b)
    };
    match (method.as_str(), rest) {
        ("GET", []) => list_page(s, "compute#httpHealthCheckList", collection, query, filter),
        ("GET", [name]) => get_or_404(s, collection, name),
        ("POST", []) => {
            let body = match defaults(body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            match s.create(collection, "compute#httpHealthCheck", body) {
                Ok((_, created)) => ok(s.operation("global", "insert", &created, None)),
                Err(r) => r,
            }
        }
        ("PUT", [name]) => {
            let Some(old) = s.get(collection, name).cloned() else {
                return not_found(&format!("{collection}/{name}"));
            };
            let mut new = match defaults(body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            for keep in [
                "kind",
                "id",
                "creationTimestamp",
                "selfLink",
                "name",
                "labels",
            ] {
                new[keep] = old[keep].clone();
            }
            if let Some(c) = s.collections.get_mut(collection) {
                c.insert((*name).to_owned(), new.clone());
            }
            ok(s.operation("global", "update", &new, None))
        }
        ("DELETE", [name]) => {
            let url = full(&format!("{collection}/{name}"));
            if let Some(user) = s.user_of(
                &format!("regions/{REGION}/targetPools"),
                "healthChecks",
                &url,
            ) {
                return in_use("httpHealthCheck", &url, &user);
            }
            delete(s, "global", collection, name)
        }
        _ => error(
            404,
            "notFound",
            format!("The fake has no {method} {collection}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let cases = [
            ("", Some(vec![])),
            (
                r#"(labels.a = "x") (labels.b-c = "y")"#,
                Some(vec![("a".into(), "x".into()), ("b-c".into(), "y".into())]),
            ),
            (
                r#"(labels.a = "x") AND (labels.b = "")"#,
                Some(vec![("a".into(), "x".into()), ("b".into(), String::new())]),
            ),
            ("name = web", None),
            (r#"(name = "web")"#, None),
            (r#"(labels.a = x)"#, None),
            (r#"(labels.a = "x""#, None),
        ];
        for (filter, want) in cases {
            assert_eq!(parse_filter(filter), want, "{filter:?}");
        }
    }

    #[test]
    fn pages() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let (p, next) = page(items.clone(), &q(&[])).unwrap();
        assert_eq!((p.len(), next.as_deref()), (2, Some("fake-page-2")));
        let (p, next) = page(items.clone(), &q(&[("pageToken", "fake-page-4")])).unwrap();
        assert_eq!((p, next), (vec![json!(4)], None));
        let (p, _) = page(items.clone(), &q(&[("maxResults", "1")])).unwrap();
        assert_eq!(p.len(), 1);
        assert!(page(items, &q(&[("pageToken", "bogus")])).is_err());
    }

    #[test]
    fn operations_finish_on_the_second_poll_and_then_apply_deletes() {
        let mut s = FakeState::default();
        let (_, created) = s
            .create(
                "global/httpHealthChecks",
                "compute#httpHealthCheck",
                json!({"name": "hc"}),
            )
            .unwrap();
        let op = s.operation(
            "global",
            "delete",
            &created,
            Some(Effect::Delete {
                collection: "global/httpHealthChecks".into(),
                name: "hc".into(),
            }),
        );
        assert_eq!(op["status"], "PENDING");
        let path = format!("global/operations/{}", op["name"].as_str().unwrap());
        assert_eq!(s.poll(&path).unwrap()["status"], "RUNNING");
        assert!(
            s.get("global/httpHealthChecks", "hc").is_some(),
            "deleted too early"
        );
        assert_eq!(s.poll(&path).unwrap()["status"], "DONE");
        assert!(s.get("global/httpHealthChecks", "hc").is_none());
        assert!(
            s.create("global/httpHealthChecks", "k", json!({"name": "Bad_Name"}))
                .is_err()
        );
    }
}
