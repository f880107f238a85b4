//! Server-side apply and `metadata.managedFields`, as pure functions over objects as JSON.
//!
//! [`apply`] is what the API server runs for `PATCH` with `application/apply-patch+yaml`
//! (`kubectl apply --server-side`): it merges an applied configuration into the live object by
//! the schema's list and map types, removes the fields the manager applied before and dropped
//! now (unless someone else owns them), and refuses to change fields other managers own unless
//! forced, with upstream's conflict messages. [`update`] is what every other write (create,
//! update, non-apply patch) runs to record who changed which fields. Both read and write
//! `metadata.managedFields` in upstream's FieldsV1 encoding, so `kubectl get
//! --show-managed-fields` shows what it shows against kube-apiserver. Mirrors
//! `sigs.k8s.io/structured-merge-diff` (fieldpath, typed, merge) and the field manager of
//! `k8s.io/apiserver`.
//!
//! What it is not: it holds no clock (callers pass the time), does no I/O, does not decode YAML,
//! does not default or validate objects (callers do both around it, as upstream's handlers do),
//! does not convert between API versions (every entry is taken to be in the version it names),
//! and does not upgrade `kubectl.kubernetes.io/last-applied-configuration` from client-side
//! apply.

pub mod fieldpath;
pub mod managed;
pub mod schema;
mod typed;

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
use serde_json::{Map, Value};

pub use fieldpath::{DecodeError, FieldSet, Path, PathElement};
pub use managed::{
    ManagedFields, ManagedFieldsEntry, ManagedFieldsError, Operation, default_manager,
    is_reset_request, validate_field_manager, validate_managed_fields,
};
pub use schema::{BuiltinTypes, CrdTypes, DeducedTypes, KeyField, ListType, Shape, TypeInfo, Zero};
pub use typed::TypeError;

use typed::{Comparison, Walker};

/// One field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// The manager as upstream prints it: `"kubectl"`, `"m" using apps/v1`.
    pub manager: String,
    /// The field.
    pub path: Path,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conflict with {}: {}", self.manager, self.path)
    }
}

/// The conflicts of one apply, grouped by manager (sorted as upstream sorts managers).
#[derive(Clone, Debug, PartialEq)]
pub struct Conflicts(pub Vec<Conflict>);

impl fmt::Display for Conflicts {
    /// `Apply failed with 1 conflict: conflict with "m" using apps/v1: .spec.replicas`, or for
    /// several: `Apply failed with 2 conflicts: conflicts with "m":\n- .a\n- .b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [one] = self.0.as_slice() {
            return write!(f, "Apply failed with 1 conflict: {one}");
        }
        let mut lines: Vec<String> = Vec::new();
        let mut last: Option<&str> = None;
        for c in &self.0 {
            if last != Some(c.manager.as_str()) {
                lines.push(format!("conflicts with {}:", c.manager));
                last = Some(&c.manager);
            }
            lines.push(format!("- {}", c.path));
        }
        write!(
            f,
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }
}

impl std::error::Error for Conflicts {}

impl Conflicts {
    /// The `details.causes` of the 409: reason `FieldManagerConflict`, message
    /// `conflict with "m" using v`, field `.spec.replicas`.
    pub fn causes(&self) -> Vec<StatusCause> {
        self.0
            .iter()
            .map(|c| StatusCause {
                reason: Some("FieldManagerConflict".into()),
                message: Some(format!("conflict with {}", c.manager)),
                field: Some(c.path.to_string()),
            })
            .collect()
    }

    /// The whole 409 `Status` (reason `Conflict`), as upstream's `NewApplyConflict`.
    pub fn to_status(&self) -> Status {
        Status {
            code: Some(409),
            message: Some(self.to_string()),
            reason: Some("Conflict".into()),
            status: Some("Failure".into()),
            details: Some(StatusDetails {
                causes: Some(self.causes()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Why an apply was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// Other managers own fields the apply changes (409).
    #[error(transparent)]
    Conflicts(#[from] Conflicts),
    /// The request is malformed (400), e.g. `metadata.managedFields must be nil`.
    #[error("{0}")]
    BadRequest(String),
    /// The applied configuration does not fit the schema, e.g. duplicate list-map keys (500,
    /// as upstream answers).
    #[error("failed to create typed patch object ({gvk}): {source}")]
    InvalidConfig {
        /// `apps/v1, Kind=Deployment`.
        gvk: String,
        /// What is wrong.
        #[source]
        source: TypeError,
    },
    /// The live object's managedFields cannot be decoded (500).
    #[error("failed to decode managed fields: {0}")]
    ManagedFields(#[from] ManagedFieldsError),
}

impl ApplyError {
    /// The HTTP status the API server answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::BadRequest(_) => 400,
            ApplyError::InvalidConfig { .. } | ApplyError::ManagedFields(_) => 500,
        }
    }
}

/// Fields the server maintains, never owned by anyone (upstream's `stripMetaManager`). Built
/// once: every write subtracts it.
fn strip_set() -> &'static FieldSet {
    static SET: std::sync::LazyLock<FieldSet> = std::sync::LazyLock::new(build_strip_set);
    &SET
}

fn build_strip_set() -> FieldSet {
    let mut s = FieldSet::new();
    for p in [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ] {
        s.insert(&Path::fields(p).0);
    }
    s
}

/// Fields a write through `subresource` does not own, because the registry resets them: the
/// main resource does not write `status`, the status subresource does not write `spec`.
pub fn reset_fields(subresource: Option<&str>) -> FieldSet {
    let mut s = FieldSet::new();
    match subresource {
        None | Some("") => s.insert(&Path::fields(&["status"]).0),
        Some("status") => s.insert(&Path::fields(&["spec"]).0),
        Some(_) => {}
    }
    s
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    remove_managed_fields(&mut obj);
    obj
}

fn remove_managed_fields(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

fn entry(
    manager: &str,
    operation: Operation,
    api_version: &str,
    subresource: Option<&str>,
) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: manager.to_owned(),
        operation,
        api_version: api_version.to_owned(),
        time: None,
        fields: FieldSet::new(),
        subresource: subresource.unwrap_or("").to_owned(),
    }
}

/// Upstream's `Updater.update` for the managers other than the writer: fields the change
/// removed leave every set; fields it changed that others own are conflicts, taken from them
/// when forced. Entries left empty are dropped.
fn settle_others(
    managed: &mut ManagedFields,
    writer: Option<&ManagedFieldsEntry>,
    cmp: &Comparison,
    force: bool,
) -> Result<(), Conflicts> {
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts: Vec<(String, String, FieldSet)> = Vec::new();
    for e in &managed.entries {
        if writer.is_some_and(|w| w.same_manager(e)) {
            continue;
        }
        let c = e.fields.intersection(&changed);
        if !c.is_empty() {
            conflicts.push((e.identity(), e.display(), c));
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| a.0.cmp(&b.0));
        let list = conflicts
            .into_iter()
            .flat_map(|(_, manager, set)| {
                set.paths().into_iter().map(move |path| Conflict {
                    manager: manager.clone(),
                    path,
                })
            })
            .collect();
        return Err(Conflicts(list));
    }
    for e in &mut managed.entries {
        if writer.is_some_and(|w| w.same_manager(e)) {
            continue;
        }
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }
    managed.entries.retain(|e| !e.fields.is_empty());
    Ok(())
}

/// The group-version-kind as upstream prints it in typed-conversion errors.
fn gvk(obj: &Value) -> String {
    let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
    let (group, version) = match s("apiVersion").split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", s("apiVersion")),
    };
    format!("{group}/{version}, Kind={}", s("kind"))
}

/// Records an Update by `manager` from `old` to `new` (both without managedFields) into
/// `managed`; returns whether the manager took any field.
#[allow(clippy::too_many_arguments)]
fn record_update(
    walker: &Walker<'_>,
    managed: &mut ManagedFields,
    old: &Value,
    new: &Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let cmp = walker
        .compare(&walker.with_zero_fields(old), &walker.with_zero_fields(new))
        .exclude(&reset_fields(subresource));
    // Upstream records the write as a temporary manager, so the writer's own earlier entry is
    // treated like any other: what this write changed or removed leaves it, then the two merge.
    let _ = settle_others(managed, None, &cmp, true);
    let taken = cmp.modified.union(&cmp.added).difference(strip_set());
    if taken.is_empty() {
        return;
    }
    let me = entry(manager, Operation::Update, api_version, subresource);
    match managed.find(&me) {
        Some(i) => {
            let e = &mut managed.entries[i];
            e.fields = e.fields.union(&taken);
            e.time = Some(now.to_owned());
        }
        None => managed.entries.push(ManagedFieldsEntry {
            fields: taken,
            time: Some(now.to_owned()),
            ..me
        }),
    }
}

/// Server-side apply of `config` by `manager` onto `live` (`None`: the object is created by
/// the apply). Returns the new object with its managedFields.
///
/// `api_version` is the version of the request (the applied configuration must be in it),
/// `subresource` is `None` for the main resource, `now` is the RFC 3339 time entries get.
/// The registry still resets what a write through this endpoint may not change (`status` on
/// the main resource) and defaults and validates the result, as upstream does after apply.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    force: bool,
    now: &str,
    types: &dyn TypeInfo,
) -> Result<Value, ApplyError> {
    let walker = Walker { types };
    if !config.is_object() {
        return Err(ApplyError::BadRequest(
            "apply patch must be a JSON object".into(),
        ));
    }
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let patch_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if patch_version != api_version {
        return Err(ApplyError::BadRequest(format!(
            "Incorrect version specified in apply patch. Specified patch version: {patch_version}, expected: {api_version}"
        )));
    }
    let invalid = |source| ApplyError::InvalidConfig {
        gvk: gvk(config),
        source,
    };
    let config_set = walker.to_field_set(config, true).map_err(invalid)?;

    let mut managed = match live {
        Some(l) => ManagedFields::from_object(l)?,
        None => ManagedFields::default(),
    };
    let live_obj = live.map_or_else(|| Value::Object(Map::new()), without_managed_fields);

    // An object nobody manages yet: whatever it holds was set before the first apply.
    if live.is_some() && managed.entries.is_empty() {
        record_update(
            &walker,
            &mut managed,
            &Value::Object(Map::new()),
            &live_obj,
            managed::BEFORE_FIRST_APPLY_MANAGER,
            api_version,
            subresource,
            now,
        );
    }

    let ignored = reset_fields(subresource);
    let merged = walker.merge(&live_obj, config).map_err(invalid)?;

    let me = entry(manager, Operation::Apply, api_version, subresource);
    let previous = managed.find(&me).map(|i| managed.entries.remove(i));
    let applied = ManagedFieldsEntry {
        fields: config_set.recursive_difference(&ignored),
        time: previous.as_ref().and_then(|p| p.time.clone()),
        ..me.clone()
    };
    managed.entries.push(applied);

    // Fields the manager applied last time and no longer does go, unless someone owns them.
    let mut merged = merged;
    if let Some(last) = previous.as_ref().filter(|p| !p.fields.is_empty()) {
        let owned = managed
            .entries
            .iter()
            .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
        let ensure = |s: &FieldSet| walker.ensure_named_fields_are_members(s);
        let merged_set = walker
            .to_field_set(&merged, false)
            .unwrap_or_else(|_| FieldSet::new());
        let remove = ensure(&last.fields)
            .intersection(&ensure(&merged_set))
            .difference(&ensure(&owned));
        merged = walker.remove_items(&merged, &remove);
    }

    let cmp = walker
        .compare(
            &walker.with_zero_fields(&live_obj),
            &walker.with_zero_fields(&merged),
        )
        .exclude(&ignored);
    settle_others(&mut managed, Some(&me), &cmp, force)?;

    if let Some(i) = managed.find(&me) {
        let e = &mut managed.entries[i];
        e.fields = e.fields.difference(strip_set());
        // Only a change of the object dates the entry (a no-op apply keeps the old time).
        if merged != live_obj {
            e.time = Some(now.to_owned());
        }
        if e.fields.is_empty() {
            managed.entries.remove(i);
        }
    }
    managed.cap_update_managers();
    managed.write_to(&mut merged);
    Ok(merged)
}

/// Records a non-apply write by `manager` (`old`: `None` for a create) and returns `new` with
/// its managedFields: the fields the write added or changed become the manager's (operation
/// Update) and leave the other managers, fields it removed leave everyone, entries left empty
/// go, and Update entries past ten merge into `ancient-changes`.
///
/// As upstream: managedFields sent in `new` are taken as the object's managers when they are
/// valid and non-empty (on the main resource), else the old object's are kept, so clients
/// unaware of the field (absent or `null`) cannot strip it; `[]` or `[{}]` clears them. An
/// existing object without managedFields stays untracked; a created one is always tracked.
#[allow(clippy::too_many_arguments)]
pub fn update(
    old: Option<&Value>,
    mut new: Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    now: &str,
    types: &dyn TypeInfo,
) -> Value {
    let walker = Walker { types };
    let on_main = subresource.is_none_or(str::is_empty);
    // Writes through a subresource cannot set managedFields; a reset request empties them;
    // otherwise valid, non-empty ones from the request win, else the old object's are kept.
    let from_old = || {
        old.map(|o| ManagedFields::from_object(o).unwrap_or_default())
            .unwrap_or_default()
    };
    let mut managed = if !on_main {
        from_old()
    } else if is_reset_request(&new) {
        ManagedFields::default()
    } else {
        match ManagedFields::from_object(&new) {
            Ok(m) if !m.entries.is_empty() => m,
            _ => from_old(),
        }
    };
    let is_create = old.is_none_or(|o| {
        o.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    });
    remove_managed_fields(&mut new);
    if managed.entries.is_empty() && !is_create {
        return new;
    }
    let old_obj = old.map_or_else(|| Value::Object(Map::new()), without_managed_fields);
    record_update(
        &walker,
        &mut managed,
        &old_obj,
        &new,
        manager,
        api_version,
        subresource,
        now,
    );
    managed.cap_update_managers();
    managed.write_to(&mut new);
    new
}

#[cfg(test)]
mod tests;
