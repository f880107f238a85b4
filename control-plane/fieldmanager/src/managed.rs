//! `metadata.managedFields`: parsing, writing, validation and trimming, as upstream's
//! `k8s.io/apimachinery/pkg/util/managedfields/internal` does.

use objects::field::{ErrorType, FieldError, Path as FieldPath};
use serde_json::{Map, Value};

use crate::fieldpath::FieldSet;

/// The most Update entries an object keeps; older ones merge into `ancient-changes`.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager older Update entries merge into past [`MAX_UPDATE_MANAGERS`].
pub const ANCIENT_CHANGES_MANAGER: &str = "ancient-changes";

/// The manager that owns the fields of an object without managedFields at its first apply.
pub const BEFORE_FIRST_APPLY_MANAGER: &str = "before-first-apply";

/// The longest manager name (`FieldManagerMaxLength`).
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// How the manager last wrote its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write (create, update, non-apply patch).
    Update,
}

impl Operation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedFieldsEntry {
    /// The field manager.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion the fields are in.
    pub api_version: String,
    /// When the manager last changed the object (RFC 3339), if ever.
    pub time: Option<String>,
    /// The fields owned.
    pub fields: FieldSet,
    /// The subresource written through, `""` for the main resource.
    pub subresource: String,
}

impl ManagedFieldsEntry {
    /// Whether `other` is the same manager as upstream identifies them: name, operation,
    /// subresource, and for Update entries the apiVersion.
    pub fn same_manager(&self, other: &ManagedFieldsEntry) -> bool {
        self.identity() == other.identity()
    }

    /// Upstream's manager identifier: the entry as JSON without fields and time (and without
    /// apiVersion for appliers). Sorting managers sorts these strings.
    pub fn identity(&self) -> String {
        let mut s = format!(
            "{{\"manager\":{},\"operation\":{}",
            Value::from(self.manager.as_str()),
            Value::from(self.operation.as_str())
        );
        if self.operation == Operation::Update && !self.api_version.is_empty() {
            s.push_str(&format!(
                ",\"apiVersion\":{}",
                Value::from(self.api_version.as_str())
            ));
        }
        if !self.subresource.is_empty() {
            s.push_str(&format!(
                ",\"subresource\":{}",
                Value::from(self.subresource.as_str())
            ));
        }
        s.push('}');
        s
    }

    /// The manager as conflict messages print it: `"kubectl"`, `"m" using apps/v1`,
    /// `"m" with subresource "status" using v1`.
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), self.manager.clone().into());
        m.insert("operation".into(), self.operation.as_str().into());
        m.insert("apiVersion".into(), self.api_version.clone().into());
        if let Some(t) = &self.time {
            m.insert("time".into(), t.clone().into());
        }
        m.insert("fieldsType".into(), "FieldsV1".into());
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(m)
    }
}

/// Why managedFields could not be decoded (upstream's `DecodeManagedFields` errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ManagedFieldsError(pub String);

/// The managers of one object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManagedFields {
    /// The entries, in no particular order until written.
    pub entries: Vec<ManagedFieldsEntry>,
}

impl ManagedFields {
    /// Parses a `metadata.managedFields` list.
    pub fn decode(list: &Value) -> Result<ManagedFields, ManagedFieldsError> {
        let err = |m: String| ManagedFieldsError(m);
        let Value::Array(items) = list else {
            return Err(err("managedFields must be a list".into()));
        };
        let mut out = ManagedFields::default();
        for (i, item) in items.iter().enumerate() {
            let Value::Object(e) = item else {
                return Err(err(format!("managed fields entry {i} is not an object")));
            };
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
            let operation = match s("operation") {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                _ => return Err(err("operation must be `Apply` or `Update`".into())),
            };
            if s("apiVersion").is_empty() {
                return Err(err("apiVersion must not be empty".into()));
            }
            match s("fieldsType") {
                "FieldsV1" => {}
                "" => {
                    return Err(err(format!(
                        "missing fieldsType in managed fields entry {i}"
                    )));
                }
                other => {
                    return Err(err(format!(
                        "invalid fieldsType {other:?} in managed fields entry {i}"
                    )));
                }
            }
            let fields = match e.get("fieldsV1") {
                None | Some(Value::Null) => FieldSet::new(),
                Some(v) => FieldSet::from_fields_v1(v)
                    .map_err(|e| err(format!("error decoding versioned set: {e}")))?,
            };
            let entry = ManagedFieldsEntry {
                manager: s("manager").to_owned(),
                operation,
                api_version: s("apiVersion").to_owned(),
                time: e.get("time").and_then(Value::as_str).map(str::to_owned),
                fields,
                subresource: s("subresource").to_owned(),
            };
            // Decoding into a map keyed by manager: a later entry replaces an earlier one.
            out.entries.retain(|x| !x.same_manager(&entry));
            out.entries.push(entry);
        }
        Ok(out)
    }

    /// The managedFields of `obj`; absent is empty.
    pub fn from_object(obj: &Value) -> Result<ManagedFields, ManagedFieldsError> {
        match obj.pointer("/metadata/managedFields") {
            None | Some(Value::Null) => Ok(ManagedFields::default()),
            Some(list) => ManagedFields::decode(list),
        }
    }

    /// The list as upstream writes it: sorted by operation (Apply first), time, manager,
    /// apiVersion, subresource.
    pub fn encode(&self) -> Value {
        let mut entries: Vec<&ManagedFieldsEntry> = self.entries.iter().collect();
        entries.sort_by(|p, q| {
            p.operation
                .cmp(&q.operation)
                .then_with(|| time_key(p.time.as_deref()).cmp(&time_key(q.time.as_deref())))
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| p.subresource.cmp(&q.subresource))
        });
        Value::Array(
            entries
                .into_iter()
                .map(ManagedFieldsEntry::to_json)
                .collect(),
        )
    }

    /// Writes the entries into `obj.metadata.managedFields`, or removes the field when there
    /// are none (upstream's `omitempty`).
    pub fn write_to(&self, obj: &mut Value) {
        let Some(meta) = obj
            .as_object_mut()
            .map(|o| {
                o.entry("metadata")
                    .or_insert_with(|| Value::Object(Map::new()))
            })
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        if self.entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), self.encode());
        }
    }

    pub(crate) fn find(&self, like: &ManagedFieldsEntry) -> Option<usize> {
        self.entries.iter().position(|e| e.same_manager(like))
    }

    /// Merges the oldest Update entries, per apiVersion, into `ancient-changes` until at most
    /// [`MAX_UPDATE_MANAGERS`] Update entries are left (upstream's `capManagersManager`).
    pub fn cap_update_managers(&mut self) {
        let mut updaters: Vec<ManagedFieldsEntry> = self
            .entries
            .iter()
            .filter(|e| e.operation == Operation::Update)
            .cloned()
            .collect();
        if updaters.len() <= MAX_UPDATE_MANAGERS {
            return;
        }
        updaters.sort_by(|a, b| {
            time_key(a.time.as_deref())
                .cmp(&time_key(b.time.as_deref()))
                .then_with(|| a.identity().cmp(&b.identity()))
        });
        let mut first_of_version: Vec<(String, ManagedFieldsEntry)> = Vec::new();
        let mut length = updaters.len();
        for u in updaters {
            if length <= MAX_UPDATE_MANAGERS {
                break;
            }
            let bucket = ManagedFieldsEntry {
                manager: ANCIENT_CHANGES_MANAGER.into(),
                operation: Operation::Update,
                api_version: u.api_version.clone(),
                time: None,
                fields: FieldSet::new(),
                subresource: String::new(),
            };
            let Some((_, first)) = first_of_version.iter().find(|(v, _)| *v == u.api_version)
            else {
                first_of_version.push((u.api_version.clone(), u));
                continue;
            };
            if self.find(&bucket).is_none() {
                // The first manager of this version becomes the bucket.
                if let Some(i) = self.find(first) {
                    let mut b = self.entries.remove(i);
                    b.manager = bucket.manager.clone();
                    b.subresource = String::new();
                    self.entries.retain(|e| !e.same_manager(&b));
                    self.entries.push(b);
                }
            }
            if let Some(bi) = self.find(&bucket) {
                let merged = self.entries[bi].fields.union(&u.fields);
                self.entries[bi].fields = merged;
                self.entries[bi].time = u.time.clone();
            }
            if let Some(i) = self.find(&u) {
                self.entries.remove(i);
            }
            length -= 1;
        }
    }
}

/// A sort key for RFC 3339 times: upstream compares whole seconds, and absent sorts first.
fn time_key(t: Option<&str>) -> String {
    // `2006-01-02T15:04:05Z` and `...05.999Z` agree up to the seconds; UTC is assumed, as
    // upstream writes it.
    t.map(|t| t.get(..19).unwrap_or(t).to_owned())
        .unwrap_or_default()
}

/// Whether a request's managedFields ask to clear them (upstream's `isResetManagedFields`): an
/// empty list, or a list of one empty entry (`[{}]`). Absent or `null` does not: clients
/// unaware of the field must not strip it.
pub fn is_reset_request(obj: &Value) -> bool {
    let empty_entry = |e: &Value| {
        e.as_object().is_some_and(|m| {
            m.values()
                .all(|v| v.is_null() || v.as_str().is_some_and(str::is_empty))
        })
    };
    match obj.pointer("/metadata/managedFields") {
        Some(Value::Array(items)) => match items.as_slice() {
            [] => true,
            [one] => empty_entry(one),
            _ => false,
        },
        _ => false,
    }
}

/// Upstream's `ValidateFieldManager`: at most 128 characters, all printable.
pub fn validate_field_manager(manager: &str, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if manager.chars().count() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(FieldError::too_long(path.clone(), FIELD_MANAGER_MAX_LENGTH));
    }
    for (i, c) in manager.char_indices() {
        if !is_print(c) {
            errs.push(FieldError::invalid(
                path.clone(),
                manager,
                format!("invalid character U+{:04X} (at position {i})", c as u32),
            ));
        }
    }
    errs
}

/// Upstream's `ValidateManagedFields` (part of object metadata validation, a 422).
pub fn validate_managed_fields(obj: &Value) -> Vec<FieldError> {
    let Some(Value::Array(items)) = obj.pointer("/metadata/managedFields") else {
        return Vec::new();
    };
    let base = FieldPath::new("metadata").child("managedFields");
    let mut errs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = base.index(i);
        let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("");
        if !matches!(s("operation"), "Apply" | "Update") {
            errs.push(FieldError::invalid(
                p.child("operation"),
                s("operation"),
                "must be `Apply` or `Update`",
            ));
        }
        if !s("fieldsType").is_empty() && s("fieldsType") != "FieldsV1" {
            errs.push(FieldError::invalid(
                p.child("fieldsType"),
                s("fieldsType"),
                "must be `FieldsV1`",
            ));
        }
        errs.extend(validate_field_manager(s("manager"), &p.child("manager")));
        if s("subresource").len() > 256 {
            errs.push(FieldError {
                kind: ErrorType::TooLong { max: 256 },
                field: p.child("subresource"),
                value: None,
                detail: String::new(),
            });
        }
    }
    errs
}

/// Go's `unicode.IsPrint`, near enough: no control characters, and the only space is ' '.
fn is_print(c: char) -> bool {
    c == ' '
        || !(c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

/// The manager name for a request without `fieldManager`: the User-Agent up to the first `/`,
/// without unprintable characters, cut to 128 bytes (upstream's `prefixFromUserAgent`).
pub fn default_manager(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars().filter(|c| is_print(*c)) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}
