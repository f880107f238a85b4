//! Custom resources: what a CustomResourceDefinition makes the API server serve.
//!
//! A CRD is an ordinary stored object (`apiextensions.k8s.io/v1`, cluster-scoped) of the logical
//! cluster it was created in. This module turns the CRDs of a cluster into [`ResourceDef`]s (one
//! per served version, carrying a [`Custom`] with what requests of that version need: schema,
//! printer columns, scale paths), keeps each cluster's set of served resources cached
//! ([`Cache`]), and holds the rules the API server applies to CRD objects themselves (upstream's
//! `apiextensions/validation`, defaulting and strategy).
//!
//! What this module is not: the loop that decides whether a CRD's names are accepted, marks it
//! `Established` and deletes its objects when it goes: that is the CRD controller in the
//! `manager` crate, a client of the API like every controller. The API server serves a CRD's
//! resources once that loop has marked it `Established`, as upstream does.

use std::collections::HashMap;
use std::sync::Arc;

use objects::field::{FieldError, Path};
use objects::validation::names;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry::{Registry, ResourceDef, STANDARD_VERBS, Subresource};

/// The group of CustomResourceDefinitions.
pub(crate) const GROUP: &str = "apiextensions.k8s.io";
/// Their resource name.
pub(crate) const PLURAL: &str = "customresourcedefinitions";
/// The finalizer the API server puts on a CRD being deleted; the CRD controller removes it once
/// every object of the CRD is gone.
pub(crate) const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// What a CustomResourceDefinition says about one served version of its resource.
pub struct Custom {
    /// The CustomResourceDefinition's name (`<plural>.<group>`).
    pub crd: String,
    /// The version objects are stored in.
    pub storage_version: String,
    /// The version's `openAPIV3Schema`, as written in the CRD.
    pub schema: Option<Value>,
    /// The compiled schema: structural validation, pruning, defaulting and CEL rules.
    pub(crate) validator: Option<crate::custom::Validator>,
    /// `additionalPrinterColumns` (upstream's default `Age` column when there are none).
    pub columns: Vec<Column>,
    /// The `scale` subresource's paths, when it is enabled.
    pub scale: Option<ScalePaths>,
    /// Whether the CRD is being deleted: its objects can still be read and deleted, not created.
    pub terminating: bool,
    /// The warning every request of a deprecated version gets.
    pub deprecation_warning: Option<String>,
}

impl std::fmt::Debug for Custom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custom")
            .field("crd", &self.crd)
            .field("storage_version", &self.storage_version)
            .finish_non_exhaustive()
    }
}

/// An additional printer column of a custom resource's table.
#[derive(Debug, Clone)]
pub struct Column {
    /// The header.
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: String,
    /// The OpenAPI format, e.g. `name`.
    pub format: String,
    /// What the column shows.
    pub description: String,
    /// 0 shown always, higher only with `-o wide`.
    pub priority: i64,
    /// The compiled JSONPath of the cell.
    pub path: JsonPath,
}

/// Where the `scale` subresource finds and puts the replica count.
#[derive(Debug, Clone)]
pub struct ScalePaths {
    /// `.spec.replicas` or wherever the CRD says.
    pub spec_replicas: String,
    /// `.status.replicas` or wherever the CRD says.
    pub status_replicas: String,
    /// The label selector as a string, for HorizontalPodAutoscalers.
    pub label_selector: Option<String>,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether condition `type_` of a CRD is `True`.
pub(crate) fn condition_true(crd: &Value, type_: &str) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(type_)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// The resources a stored CRD makes the API server serve: one per served version, once the CRD
/// is `Established`, under its accepted names.
pub(crate) fn defs_of(crd: &Value) -> Vec<ResourceDef> {
    if !condition_true(crd, "Established") {
        return Vec::new();
    }
    let names = match crd.pointer("/status/acceptedNames") {
        Some(n) if n.get("plural").and_then(Value::as_str).is_some() => n,
        _ => match crd.pointer("/spec/names") {
            Some(n) => n,
            None => return Vec::new(),
        },
    };
    let group = str_at(crd, "/spec/group").to_owned();
    let plural = str_at(names, "/plural").to_owned();
    let kind = str_at(names, "/kind").to_owned();
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let list_kind = match str_at(names, "/listKind") {
        "" => format!("{kind}List"),
        l => l.to_owned(),
    };
    let singular = match str_at(names, "/singular") {
        "" => kind.to_ascii_lowercase(),
        s => s.to_owned(),
    };
    let terminating = crd.pointer("/metadata/deletionTimestamp").is_some();
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| str_at(v, "/name").to_owned())
        .unwrap_or_default();
    let crd_name = str_at(crd, "/metadata/name").to_owned();
    let mut defs = Vec::new();
    for v in &versions {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let version = str_at(v, "/name").to_owned();
        let mut subresources = Vec::new();
        if v.pointer("/subresources/status").is_some() {
            subresources.push(Subresource::Status);
        }
        let scale = v.pointer("/subresources/scale").map(|s| ScalePaths {
            spec_replicas: str_at(s, "/specReplicasPath").to_owned(),
            status_replicas: str_at(s, "/statusReplicasPath").to_owned(),
            label_selector: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
        if scale.is_some() {
            subresources.push(Subresource::Scale);
        }
        let schema = v.pointer("/schema/openAPIV3Schema").cloned();
        let validator = match &schema {
            Some(s) => match crate::custom::Validator::new(s) {
                Ok(validator) => Some(validator),
                Err(e) => {
                    // Validation refuses such CRDs; one stored before a stricter server is
                    // served without the parts that do not compile.
                    tracing::warn!(crd = %crd_name, version, error = %e, "schema does not compile");
                    None
                }
            },
            None => None,
        };
        let deprecation_warning = (v.get("deprecated").and_then(Value::as_bool) == Some(true))
            .then(
                || match v.get("deprecationWarning").and_then(Value::as_str) {
                    Some(w) => w.to_owned(),
                    None => format!("{group}/{version} {kind} is deprecated"),
                },
            );
        let custom = Custom {
            crd: crd_name.clone(),
            storage_version: storage_version.clone(),
            schema,
            validator,
            columns: columns_of(v),
            scale,
            terminating,
            deprecation_warning,
        };
        defs.push(ResourceDef {
            group: group.clone().into(),
            version: version.into(),
            kind: kind.clone().into(),
            list_kind: list_kind.clone().into(),
            plural: plural.clone().into(),
            singular: singular.clone(),
            namespaced: str_at(crd, "/spec/scope") == "Namespaced",
            short_names: strings_at(names, "/shortNames")
                .into_iter()
                .map(Into::into)
                .collect(),
            categories: strings_at(names, "/categories")
                .into_iter()
                .map(Into::into)
                .collect(),
            subresources: subresources.into(),
            root_only: false,
            verbs: STANDARD_VERBS,
            custom: Some(Arc::new(custom)),
        });
    }
    defs
}

/// The printer columns of a CRD version, with upstream's default `Age` column when it has none.
fn columns_of(version: &Value) -> Vec<Column> {
    let declared = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let declared = if declared.is_empty() {
        vec![json!({
            "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
            "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        })]
    } else {
        declared
    };
    declared
        .iter()
        .filter_map(|c| {
            let json_path = str_at(c, "/jsonPath");
            let path = JsonPath::parse(json_path).ok()?;
            Some(Column {
                name: str_at(c, "/name").to_owned(),
                type_: str_at(c, "/type").to_owned(),
                format: str_at(c, "/format").to_owned(),
                description: match str_at(c, "/description") {
                    "" => format!(
                        "Custom resource definition column (in JSONPath format): {json_path}"
                    ),
                    d => d.to_owned(),
                },
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                path,
            })
        })
        .collect()
}

/// The table of custom objects: `Name` and the CRD's columns, cells typed as upstream's
/// custom-resource table convertor types them.
pub(crate) fn table(
    custom: &Custom,
    objs: &[Value],
    now: std::time::SystemTime,
) -> (Vec<Value>, Vec<Vec<Value>>) {
    let mut definitions = vec![json!({
        "name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "priority": 0,
    })];
    for c in &custom.columns {
        definitions.push(json!({
            "name": c.name, "type": c.type_, "format": c.format,
            "description": c.description, "priority": c.priority,
        }));
    }
    let now_secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let rows = objs
        .iter()
        .map(|obj| {
            let mut cells = vec![json!(str_at(obj, "/metadata/name"))];
            for c in &custom.columns {
                let found = c.path.find(obj);
                cells.push(match found.first() {
                    None => Value::Null,
                    Some(v) => cell(&c.type_, v, now_secs),
                });
            }
            cells
        })
        .collect();
    (definitions, rows)
}

fn cell(type_: &str, v: &Value, now_secs: i64) -> Value {
    match type_ {
        "integer" => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Value::from)
            .unwrap_or(Value::Null),
        "number" => v.as_f64().map(Value::from).unwrap_or(Value::Null),
        "boolean" => v.as_bool().map(Value::from).unwrap_or(Value::Null),
        // Strings print as kubectl's JSONPath prints the value: text as is, anything else as JSON.
        "string" => match v {
            Value::String(s) => json!(s),
            Value::Null => Value::Null,
            other => json!(other.to_string()),
        },
        "date" => match v.as_str() {
            Some(s) => match s.parse::<jiff::Timestamp>() {
                Ok(t) => json!(objects::printers::human_duration(
                    (now_secs - t.as_second()).max(0) * 1_000_000_000
                )),
                Err(_) => json!("<invalid>"),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// A JSONPath as CRDs use them in printer columns and scale paths (kubectl's dialect, without
/// the braces): fields (`.a.b`, `['a.b']`), indexes (`[0]`), wildcards (`[*]`) and filters
/// (`[?(@.type=="Ready")]`, with `==` and `!=` against a string or number).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter {
        path: Vec<String>,
        equal: bool,
        value: Value,
    },
}

impl JsonPath {
    /// Parses `path` (`.status.conditions[?(@.type=="Ready")].status`).
    pub fn parse(path: &str) -> Result<JsonPath, String> {
        let path = path.trim();
        let path = path
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .unwrap_or(path);
        let path = path.strip_prefix('$').unwrap_or(path);
        let b = path.as_bytes();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < b.len() && b[end] != b'.' && b[end] != b'[' {
                        end += 1;
                    }
                    if end == start {
                        return Err(format!("empty field name at {i} in {path:?}"));
                    }
                    steps.push(Step::Field(path[start..end].to_owned()));
                    i = end;
                }
                b'[' => {
                    let close = find_close(path, i)?;
                    let inner = path[i + 1..close].trim();
                    steps.push(parse_bracket(inner)?);
                    i = close + 1;
                }
                _ => return Err(format!("unexpected {:?} in {path:?}", b[i] as char)),
            }
        }
        Ok(JsonPath(steps))
    }

    /// The values `path` selects in `obj` (none when a field is missing).
    pub fn find<'a>(&self, obj: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![obj];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Field(f) => next.extend(v.get(f.as_str())),
                    Step::Index(n) => next.extend(v.as_array().and_then(|a| a.get(*n))),
                    Step::All => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(m) => next.extend(m.values()),
                        _ => {}
                    },
                    Step::Filter { path, equal, value } => {
                        if let Some(a) = v.as_array() {
                            next.extend(a.iter().filter(|item| {
                                let mut at = Some(*item);
                                for f in path {
                                    at = at.and_then(|x| x.get(f.as_str()));
                                }
                                let same = at.is_some_and(|x| loosely_equal(x, value));
                                same == *equal && at.is_some()
                            }));
                        }
                    }
                }
            }
            current = next;
        }
        current
    }

    /// The path as JSON pointer steps, when it only names fields (scale paths).
    pub fn fields(&self) -> Option<Vec<&str>> {
        self.0
            .iter()
            .map(|s| match s {
                Step::Field(f) => Some(f.as_str()),
                _ => None,
            })
            .collect()
    }
}

fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn find_close(path: &str, open: usize) -> Result<usize, String> {
    let mut quote: Option<char> = None;
    let mut depth = 0;
    for (i, c) in path[open..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Ok(open + i);
                }
            }
            _ => {}
        }
    }
    Err(format!("unclosed [ in {path:?}"))
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

fn parse_bracket(inner: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::All);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name.to_owned()));
    }
    if let Ok(n) = inner.parse::<usize>() {
        return Ok(Step::Index(n));
    }
    let filter = inner
        .strip_prefix("?(")
        .and_then(|f| f.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported JSONPath selector [{inner}]"))?;
    let (lhs, rhs, equal) = if let Some((l, r)) = filter.split_once("==") {
        (l, r, true)
    } else if let Some((l, r)) = filter.split_once("!=") {
        (l, r, false)
    } else {
        return Err(format!("unsupported JSONPath filter [{inner}]"));
    };
    let lhs = lhs
        .trim()
        .strip_prefix('@')
        .ok_or_else(|| format!("a filter must start with @: [{inner}]"))?;
    let path: Vec<String> = lhs
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let value = match unquote(rhs) {
        Some(s) => json!(s),
        None => serde_json::from_str(rhs.trim())
            .map_err(|_| format!("unsupported value in JSONPath filter [{inner}]"))?,
    };
    Ok(Step::Filter { path, equal, value })
}

/// Sets `apiVersion` to the version the request addressed (objects are stored in their CRD's
/// storage version; with the `None` conversion strategy only `apiVersion` differs). Enough for
/// what a write answers with: it was defaulted on its way in.
pub(crate) fn at_version(def: &ResourceDef, obj: &mut Value) {
    if def.is_custom()
        && let Some(m) = obj.as_object_mut()
    {
        m.insert("apiVersion".into(), json!(def.api_version()));
    }
}

/// Makes a stored custom object what a read at the request's version shows: [`at_version`],
/// and the version's defaults applied, as upstream applies them when it decodes an object
/// from storage (objects stored before a default was added show it).
pub(crate) fn as_read(def: &ResourceDef, obj: &mut Value) {
    let Some(custom) = &def.custom else { return };
    at_version(def, obj);
    if let Some(v) = &custom.validator {
        v.default_on_read(obj);
    }
}

/// Whether reads of `def` change stored objects beyond `apiVersion` (so watch lines cannot be
/// shared with readers of the stored form).
pub(crate) fn reads_rewrite(def: &ResourceDef) -> bool {
    def.custom.as_ref().is_some_and(|c| {
        c.storage_version != *def.version
            || c.validator.as_ref().is_some_and(|v| v.defaults_on_read())
    })
}

/// Sets `apiVersion` to the CRD's storage version before a write.
pub(crate) fn to_storage(def: &ResourceDef, obj: &mut Value) {
    if let Some(custom) = &def.custom
        && let Some(m) = obj.as_object_mut()
    {
        m.insert(
            "apiVersion".into(),
            json!(format!("{}/{}", def.group, custom.storage_version)),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The CRD object itself: defaulting, validation and the strategy's status bookkeeping.

/// What the API server does to a CRD it is asked to delete: it is marked `Terminating` until
/// the CRD controller has deleted its objects.
pub(crate) fn mark_terminating(crd: &mut Value) {
    if !crd.get("status").is_some_and(Value::is_object) {
        crd["status"] = json!({});
    }
    let mut conditions: Vec<Value> = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some("Terminating"));
    conditions.push(json!({
        "type": "Terminating",
        "status": "True",
        "lastTransitionTime": crate::handlers::now_rfc3339(),
        "reason": "InstanceDeletionPending",
        "message": "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
    }));
    crd["status"]["conditions"] = json!(conditions);
}

/// Upstream's defaults for a CRD (`SetDefaults_CustomResourceDefinition*`): conversion `None`,
/// the singular name and the list kind. Nothing inside `spec.versions` (an atomic list for
/// server-side apply) is defaulted, so applying the same manifest again changes nothing.
pub(crate) fn default_crd(crd: &mut Value) {
    let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("conversion").is_none() {
        spec.insert("conversion".into(), json!({"strategy": "None"}));
    }
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !kind.is_empty() {
            if names.get("singular").and_then(Value::as_str).is_none() {
                names.insert("singular".into(), json!(kind.to_ascii_lowercase()));
            }
            if names.get("listKind").and_then(Value::as_str).is_none() {
                names.insert("listKind".into(), json!(format!("{kind}List")));
            }
        }
    }
}

/// What the CRD strategy does on create: status starts with the storage version recorded and
/// nothing else (the CRD controller fills in the rest).
pub(crate) fn prepare_create(crd: &mut Value) {
    let storage: Vec<String> = storage_version(crd).into_iter().collect();
    crd["status"] = json!({
        "storedVersions": storage,
        "conditions": [],
        "acceptedNames": {"plural": "", "kind": ""},
    });
}

/// What the CRD strategy does on update: a new storage version is added to
/// `status.storedVersions`.
pub(crate) fn prepare_update(crd: &mut Value) {
    let Some(storage) = storage_version(crd) else {
        return;
    };
    let mut stored = strings_at(crd, "/status/storedVersions");
    if !stored.contains(&storage) {
        stored.push(storage);
        if !crd.get("status").is_some_and(Value::is_object) {
            crd["status"] = json!({});
        }
        crd["status"]["storedVersions"] = json!(stored);
    }
}

fn storage_version(crd: &Value) -> Option<String> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)?
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
        .map(str::to_owned)
}

const PRINTER_COLUMN_TYPES: &[&str] = &["boolean", "date", "integer", "number", "string"];
const PRINTER_COLUMN_FORMATS: &[&str] = &[
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "name",
    "password",
];

/// Upstream's validation of a CRD (`ValidateCustomResourceDefinition`, and `…Update` when
/// `old` is given), with its messages.
pub(crate) fn validate_crd(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut e = Vec::new();
    let spec = Path::new("spec");
    let group = str_at(crd, "/spec/group");
    let plural = str_at(crd, "/spec/names/plural");
    let name = str_at(crd, "/metadata/name");
    if !name.is_empty() && name != format!("{plural}.{group}") {
        e.push(FieldError::invalid(
            Path::new("metadata").child("name"),
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        e.push(FieldError::required(spec.child("group"), ""));
    } else {
        let errs = names::dns1123_subdomain(group);
        if !errs.is_empty() {
            e.push(FieldError::invalid(
                spec.child("group"),
                group,
                errs.join(","),
            ));
        } else if !group.contains('.') {
            e.push(FieldError::invalid(
                spec.child("group"),
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    match str_at(crd, "/spec/scope") {
        "" => e.push(FieldError::required(spec.child("scope"), "")),
        "Cluster" | "Namespaced" => {}
        other => e.push(FieldError::not_supported(
            spec.child("scope"),
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    validate_names(crd, &spec.child("names"), true, &mut e);
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let vp = spec.child("versions");
    if versions.is_empty() {
        e.push(FieldError::required(
            vp.clone(),
            "must have exactly one version marked as storage version",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut storage = 0;
    let mut served = 0;
    for (i, v) in versions.iter().enumerate() {
        let p = vp.index(i);
        let vname = str_at(v, "/name");
        let errs = names::dns1035_label(vname);
        if !errs.is_empty() {
            e.push(FieldError::invalid(p.child("name"), vname, errs.join(",")));
        }
        if !seen.insert(vname.to_owned()) {
            e.push(FieldError::invalid(
                vp.clone(),
                json!(versions),
                "must contain unique version names",
            ));
        }
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        if v.get("served").and_then(Value::as_bool) == Some(true) {
            served += 1;
        }
        if v.get("deprecationWarning").is_some()
            && v.get("deprecated").and_then(Value::as_bool) != Some(true)
        {
            e.push(FieldError::invalid(
                p.child("deprecationWarning"),
                v["deprecationWarning"].clone(),
                "can only be set for deprecated versions",
            ));
        }
        let schema_path = p.child("schema").child("openAPIV3Schema");
        match v.pointer("/schema/openAPIV3Schema") {
            None => e.push(FieldError::required(schema_path, "")),
            Some(schema) => {
                if let Err(errs) = crate::custom::Validator::check(schema, &schema_path) {
                    e.extend(errs);
                }
                if v.pointer("/subresources/status").is_some()
                    && schema.get("type").and_then(Value::as_str) != Some("object")
                {
                    e.push(FieldError::invalid(
                        schema_path.child("type"),
                        schema.get("type").cloned().unwrap_or(Value::Null),
                        "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
                    ));
                }
            }
        }
        if let Some(scale) = v.pointer("/subresources/scale") {
            let sp = p.child("subresources").child("scale");
            for (field, required) in [
                ("specReplicasPath", true),
                ("statusReplicasPath", true),
                ("labelSelectorPath", false),
            ] {
                match scale.get(field).and_then(Value::as_str) {
                    None if required => e.push(FieldError::required(sp.child(field), "")),
                    None => {}
                    Some(path) => {
                        let ok = JsonPath::parse(path)
                            .ok()
                            .and_then(|p| p.fields().map(|f| f.len()));
                        let prefix_ok = match field {
                            "specReplicasPath" => path.starts_with(".spec."),
                            _ => path.starts_with(".spec.") || path.starts_with(".status."),
                        };
                        if ok.is_none() || !prefix_ok {
                            let detail = match field {
                                "specReplicasPath" => "should be a json path under .spec",
                                _ => "should be a json path under either .spec or .status",
                            };
                            e.push(FieldError::invalid(sp.child(field), path, detail));
                        }
                    }
                }
            }
        }
        let cols = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (j, c) in cols.iter().enumerate() {
            let cp = p.child("additionalPrinterColumns").index(j);
            if str_at(c, "/name").is_empty() {
                e.push(FieldError::required(cp.child("name"), ""));
            }
            let types = PRINTER_COLUMN_TYPES.join(",");
            match str_at(c, "/type") {
                "" => e.push(FieldError::required(
                    cp.child("type"),
                    format!("must be one of {types}"),
                )),
                t if !PRINTER_COLUMN_TYPES.contains(&t) => e.push(FieldError::invalid(
                    cp.child("type"),
                    t,
                    format!("must be one of {types}"),
                )),
                _ => {}
            }
            let format = str_at(c, "/format");
            if !format.is_empty() && !PRINTER_COLUMN_FORMATS.contains(&format) {
                e.push(FieldError::invalid(
                    cp.child("format"),
                    format,
                    format!("must be one of {}", PRINTER_COLUMN_FORMATS.join(",")),
                ));
            }
            match str_at(c, "/jsonPath") {
                "" => e.push(FieldError::required(cp.child("JSONPath"), "")),
                path => {
                    if let Err(why) = JsonPath::parse(path) {
                        e.push(FieldError::invalid(cp.child("JSONPath"), path, why));
                    }
                }
            }
        }
    }
    if !versions.is_empty() && storage != 1 {
        e.push(FieldError::invalid(
            vp.clone(),
            json!(versions),
            "must have exactly one version marked as storage version",
        ));
    }
    if !versions.is_empty() && served == 0 {
        e.push(FieldError::invalid(
            vp.clone(),
            json!(versions),
            "must have at least one version marked as served",
        ));
    }
    match crd
        .pointer("/spec/conversion/strategy")
        .and_then(Value::as_str)
    {
        None | Some("None") => {
            if crd.pointer("/spec/conversion/webhook").is_some() {
                e.push(FieldError::forbidden(
                    spec.child("conversion").child("webhookClientConfig"),
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        Some("Webhook") => e.push(FieldError::invalid(
            spec.child("conversion").child("strategy"),
            "Webhook",
            "conversion webhooks are not supported by this server; use the None strategy",
        )),
        Some(other) => e.push(FieldError::not_supported(
            spec.child("conversion").child("strategy"),
            other,
            &["None", "Webhook"],
        )),
    }
    if crd
        .pointer("/spec/preserveUnknownFields")
        .and_then(Value::as_bool)
        == Some(true)
    {
        e.push(FieldError::invalid(
            spec.child("preserveUnknownFields"),
            true,
            "must be false in order to use defaults in the schema",
        ));
    }
    // Stored versions must stay served until migrated away.
    let stored = strings_at(crd, "/status/storedVersions");
    let sp = Path::new("status").child("storedVersions");
    let names_in_spec: Vec<&str> = versions.iter().map(|v| str_at(v, "/name")).collect();
    for (i, s) in stored.iter().enumerate() {
        if !names_in_spec.contains(&s.as_str()) {
            e.push(FieldError::invalid(
                sp.index(i),
                s.as_str(),
                format!("missing from spec.versions; {s} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {s} and removes {s} from status.storedVersions"),
            ));
        }
    }
    if let Some(old) = old {
        let (new_scope, old_scope) = (str_at(crd, "/spec/scope"), str_at(old, "/spec/scope"));
        if !old_scope.is_empty() && new_scope != old_scope {
            e.push(FieldError::invalid(
                spec.child("scope"),
                new_scope,
                objects::validation::FIELD_IMMUTABLE,
            ));
        }
        let (new_group, old_group) = (str_at(crd, "/spec/group"), str_at(old, "/spec/group"));
        if new_group != old_group {
            e.push(FieldError::invalid(
                spec.child("group"),
                new_group,
                objects::validation::FIELD_IMMUTABLE,
            ));
        }
    }
    e
}

fn validate_names(crd: &Value, p: &Path, required: bool, e: &mut Vec<FieldError>) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    for f in ["plural", "singular", "kind", "listKind"] {
        if required && str_at(&names, &format!("/{f}")).is_empty() {
            e.push(FieldError::required(p.child(f), ""));
        }
    }
    for f in ["plural", "singular"] {
        let v = str_at(&names, &format!("/{f}"));
        let errs = names::dns1035_label(v);
        if !v.is_empty() && !errs.is_empty() {
            e.push(FieldError::invalid(p.child(f), v, errs.join(",")));
        }
    }
    for f in ["kind", "listKind"] {
        let v = str_at(&names, &format!("/{f}"));
        let errs = names::dns1035_label(&v.to_ascii_lowercase());
        if !v.is_empty() && !errs.is_empty() {
            e.push(FieldError::invalid(
                p.child(f),
                v,
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    errs.join(",")
                ),
            ));
        }
    }
    for (f, list) in [
        ("shortNames", strings_at(&names, "/shortNames")),
        ("categories", strings_at(&names, "/categories")),
    ] {
        for (i, s) in list.iter().enumerate() {
            let errs = names::dns1035_label(s);
            if !errs.is_empty() {
                e.push(FieldError::invalid(
                    p.child(f).index(i),
                    s.as_str(),
                    errs.join(","),
                ));
            }
        }
    }
    let (kind, list_kind) = (str_at(&names, "/kind"), str_at(&names, "/listKind"));
    if !kind.is_empty() && kind == list_kind {
        e.push(FieldError::invalid(
            p.child("listKind"),
            list_kind,
            "kind and listKind may not be the same",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// What each cluster serves.

/// What one logical cluster serves: the built-in resources and its custom resources.
pub(crate) struct Served {
    /// Every served resource.
    pub(crate) registry: Registry,
    openapi: std::sync::OnceLock<crate::openapi::OpenApi>,
}

impl Served {
    /// Serves `registry`.
    pub(crate) fn new(registry: Registry) -> Self {
        Served {
            registry,
            openapi: std::sync::OnceLock::new(),
        }
    }

    /// The OpenAPI documents of what is served, built on first use.
    pub(crate) fn openapi(&self) -> &crate::openapi::OpenApi {
        self.openapi
            .get_or_init(|| crate::openapi::build(&self.registry))
    }
}

/// Every cluster's served resources, cached until one of its CRDs changes.
pub(crate) struct Cache {
    inner: crate::cluster_cache::ClusterCache<Arc<Served>>,
    /// The resources of each CRD, by cluster and CRD name, with what they were built from:
    /// rebuilding a cluster's registry recompiles only the CRDs whose spec, accepted names or
    /// state changed, so schemas and CEL rules are compiled once per CRD generation.
    compiled: parking_lot::Mutex<HashMap<(String, String), Compiled>>,
}

/// One CRD's resources and the [`compile_key`] they were built from.
type Compiled = (String, Vec<ResourceDef>);

impl Default for Cache {
    fn default() -> Self {
        Cache {
            inner: crate::cluster_cache::ClusterCache::new(
                "/apiextensions.k8s.io/customresourcedefinitions/",
            ),
            compiled: Default::default(),
        }
    }
}

/// What a CRD's served resources depend on: its identity, spec generation, accepted names,
/// whether it is established and whether it is being deleted.
fn compile_key(crd: &Value) -> String {
    json!([
        crd.pointer("/metadata/uid"),
        crd.pointer("/metadata/generation"),
        crd.pointer("/status/acceptedNames"),
        condition_true(crd, "Established"),
        crd.pointer("/metadata/deletionTimestamp").is_some(),
    ])
    .to_string()
}

impl Cache {
    /// Forgets `cluster`'s entry (one of its CRDs changed).
    pub(crate) fn invalidate(&self, cluster: &str) {
        self.inner.invalidate(cluster);
    }

    /// What `cluster` serves: `base` plus the resources of its established CRDs.
    pub(crate) async fn served(
        &self,
        objects: &crate::storage::Objects,
        cluster: &str,
        base: &Arc<Served>,
    ) -> Result<Arc<Served>, ApiError> {
        self.inner
            .get(objects.store(), cluster, || {
                self.load(objects, cluster, base)
            })
            .await
    }

    async fn load(
        &self,
        objects: &crate::storage::Objects,
        cluster: &str,
        base: &Arc<Served>,
    ) -> Result<Arc<Served>, ApiError> {
        let prefix = format!("/registry/{cluster}/{GROUP}/{PLURAL}/");
        let kvs = objects
            .store()
            .range(store::RangeRequest {
                consistency: store::Consistency::Serializable,
                ..store::RangeRequest::prefix(bytes::Bytes::from(prefix))
            })
            .await?
            .kvs;
        let mut compiled = self.compiled.lock();
        compiled.retain(|(c, _), _| c != cluster || !kvs.is_empty());
        if kvs.is_empty() {
            return Ok(Arc::clone(base));
        }
        let mut registry = base.registry.clone();
        let mut seen = std::collections::HashSet::new();
        for kv in kvs {
            let Ok(crd) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            let name = str_at(&crd, "/metadata/name").to_owned();
            let key = compile_key(&crd);
            let entry = compiled
                .entry((cluster.to_owned(), name.clone()))
                .or_insert_with(|| (String::new(), Vec::new()));
            if entry.0 != key {
                *entry = (key, defs_of(&crd));
            }
            seen.insert(name);
            for def in &entry.1 {
                // Built-in resources win over custom ones of the same name.
                if registry
                    .get(&def.group, &def.version, &def.plural)
                    .is_none()
                {
                    registry.add(def.clone());
                }
            }
        }
        // CRDs that are gone are forgotten.
        compiled.retain(|(c, n), _| c != cluster || seen.contains(n));
        Ok(Arc::new(Served::new(registry)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_select_as_kubectl_does() {
        let obj = json!({"status": {"conditions": [
            {"type": "Accepted", "status": "True"},
            {"type": "Programmed", "status": "False"},
        ], "addresses": [{"value": "10.0.0.1"}]}, "spec": {"a.b": 3}});
        let p = JsonPath::parse(r#".status.conditions[?(@.type=="Programmed")].status"#).unwrap();
        assert_eq!(p.find(&obj), vec![&json!("False")]);
        let p = JsonPath::parse(".status.addresses[*].value").unwrap();
        assert_eq!(p.find(&obj), vec![&json!("10.0.0.1")]);
        let p = JsonPath::parse(".status.addresses[0].value").unwrap();
        assert_eq!(p.find(&obj), vec![&json!("10.0.0.1")]);
        let p = JsonPath::parse(".spec['a.b']").unwrap();
        assert_eq!(p.find(&obj), vec![&json!(3)]);
        assert!(
            JsonPath::parse(".spec.missing")
                .unwrap()
                .find(&obj)
                .is_empty()
        );
        assert_eq!(
            JsonPath::parse(".spec.replicas").unwrap().fields(),
            Some(vec!["spec", "replicas"])
        );
        assert!(JsonPath::parse(".a[?(@.x ~ 1)]").is_err());
    }

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}},
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                     "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]},
                    {"name": "v1beta1", "served": false, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                ],
            },
        })
    }

    #[test]
    fn a_valid_crd_passes_and_gets_upstream_defaults() {
        let mut c = crd();
        default_crd(&mut c);
        assert_eq!(c.pointer("/spec/names/singular"), Some(&json!("widget")));
        assert_eq!(
            c.pointer("/spec/names/listKind"),
            Some(&json!("WidgetList"))
        );
        assert_eq!(c.pointer("/spec/conversion/strategy"), Some(&json!("None")));
        assert_eq!(validate_crd(&c, None), vec![]);
    }

    #[test]
    fn invalid_crds_get_upstream_messages() {
        let mut c = crd();
        default_crd(&mut c);
        c["metadata"]["name"] = json!("gadgets.example.com");
        c["spec"]["group"] = json!("example");
        c["spec"]["scope"] = json!("Global");
        c["spec"]["versions"][0]["storage"] = json!(false);
        c["spec"]["names"]["listKind"] = json!("Widget");
        let texts: Vec<String> = validate_crd(&c, None)
            .iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect();
        for want in [
            "metadata.name: Invalid value: \"gadgets.example.com\": must be spec.names.plural+\".\"+spec.group",
            "spec.group: Invalid value: \"example\": should be a domain with at least one dot",
            "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"",
            "spec.names.listKind: Invalid value: \"Widget\": kind and listKind may not be the same",
        ] {
            assert!(texts.iter().any(|t| t == want), "{want}\nnot in {texts:#?}");
        }
        assert!(
            texts
                .iter()
                .any(|t| t.ends_with("must have exactly one version marked as storage version")),
            "{texts:#?}"
        );
    }

    #[test]
    fn only_established_crds_are_served_and_only_served_versions() {
        let mut c = crd();
        default_crd(&mut c);
        assert!(defs_of(&c).is_empty(), "not established yet");
        c["status"] = json!({"conditions": [{"type": "Established", "status": "True"}],
            "acceptedNames": c["spec"]["names"].clone()});
        let defs = defs_of(&c);
        assert_eq!(defs.len(), 1);
        let d = &defs[0];
        assert_eq!(
            (&*d.group, &*d.version, &*d.plural),
            ("example.com", "v1", "widgets")
        );
        assert_eq!(
            (&*d.kind, &*d.list_kind, d.namespaced),
            ("Widget", "WidgetList", true)
        );
        assert!(d.has_status() && d.subresource("scale").is_some());
        let (cols, rows) = table(
            d.custom.as_ref().unwrap(),
            &[json!({"metadata": {"name": "w"}, "spec": {"size": 3}})],
            std::time::SystemTime::now(),
        );
        assert_eq!(cols.len(), 2);
        assert_eq!(rows, vec![vec![json!("w"), json!(3)]]);
    }
}
