//! Patches: strategic merge patch, JSON merge patch (RFC 7386) and JSON patch (RFC 6902), with
//! kube-apiserver's semantics and error texts.
//!
//! - [`strategic_merge`] is what `kubectl patch` (default type), `kubectl apply` (client-side),
//!   `kubectl edit`, `label`, `annotate`, `scale` and `set image` send as
//!   `application/strategic-merge-patch+json`. It merges lists by their merge key, honours the
//!   directives `$patch: replace|delete|merge`, `$retainKeys`, `$setElementOrder/<field>` and
//!   `$deleteFromPrimitiveList/<field>`, deletes fields set to `null`, and takes its per-field
//!   strategies from the table in [`meta`], derived from upstream's struct tags.
//! - [`json_merge`] is `application/merge-patch+json`, and what kinds without strategy
//!   information (custom resources) get.
//! - [`json_patch`] is `application/json-patch+json`.
//!
//! The result is the patched object as JSON. Like upstream's decoding into typed objects, callers
//! still validate it; values copied verbatim from a patch have their directive keys (`$patch`,
//! `$retainKeys`, ...) stripped, since upstream's typed decoding would drop them as unknown fields.
//!
//! Errors carry upstream's messages and say which HTTP status the API server answers with
//! ([`PatchError::status_code`]).
//!
//! What this module is not: it does not compute patches (kubectl does, client side), does not
//! implement server-side apply, and knows nothing of HTTP beyond the status code of an error.

mod gofmt;
mod json;
pub mod meta;
mod strategic;

use serde_json::Value;

use crate::GroupKind;

pub use json::{
    MAX_JSON_PATCH_COPY_BYTES, MAX_JSON_PATCH_OPERATIONS, json_merge, json_patch,
    validate_merge_patch,
};

/// Why a patch could not be applied. The messages are upstream's, so kubectl prints what it
/// prints against kube-apiserver.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch (or the object) is not a JSON object where one is required.
    #[error("json: cannot unmarshal {found} into Go value of type {target}")]
    NotAnObject {
        /// The JSON kind found (`array`, `string`, ...).
        found: &'static str,
        /// The Go type upstream decodes into.
        target: &'static str,
    },
    /// A list holds lists.
    #[error("lists of lists are not supported")]
    NoListOfLists,
    /// A `$deleteFromPrimitiveList` key is malformed.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// A `$retainKeys` directive is not a list, or the patch sets a key it does not retain.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// A `$setElementOrder` key or list is malformed.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    /// An element of a merging list lacks the merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey {
        /// The element, printed as Go prints it.
        map: String,
        /// The merge key.
        key: String,
    },
    /// A value has the wrong JSON type for where it is.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        /// The Go type expected.
        expected: &'static str,
        /// The Go type found.
        actual: &'static str,
    },
    /// A `$patch` directive has an unknown value (or `merge`, which only lists accept upstream).
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownPatchType {
        /// The directive's value.
        directive: String,
        /// The map holding it.
        map: String,
    },
    /// `$patch: merge` inside a list.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// The patch list does not follow the `$setElementOrder` list.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    OrderMismatch {
        /// The patch list.
        patch: String,
        /// The `$setElementOrder` list.
        order: String,
    },
    /// A list mixes element types (objects and strings, say).
    #[error("list element types are not identical: {lists}")]
    MixedListElements {
        /// The lists involved.
        lists: String,
    },
    /// A merging list of primitives received objects.
    #[error("cannot merge lists without merge key for {field}")]
    NoMergeKeyDeclared {
        /// The field.
        field: String,
    },
    /// An element of a merging list of objects is not an object.
    #[error("value for key {index} is not a map")]
    NotAMap {
        /// Its index.
        index: usize,
    },
    /// A JSON patch that is not a list of operations.
    #[error("{0}")]
    JsonPatchDecode(String),
    /// A JSON patch with more operations than the API server accepts.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// The limit.
        max: usize,
        /// The operations in the patch.
        got: usize,
    },
    /// The `copy` operations of a JSON patch add more than upstream's `JSONPatchMaxCopyBytes`.
    #[error(
        "Unable to complete the copy, the accumulated size increase of copy is {accumulated}, exceeding the limit {max}"
    )]
    CopyTooLarge {
        /// Bytes the copies so far add.
        accumulated: usize,
        /// The limit.
        max: usize,
    },
    /// A JSON patch operation that does not apply.
    #[error("{0}")]
    JsonPatchApply(String),
    /// A merge patch that is not an object or a list.
    #[error("Invalid JSON Patch")]
    InvalidMergePatch,
}

impl PatchError {
    /// The HTTP status kube-apiserver answers with: 400 for malformed patches, 413 for too many
    /// operations, 422 for patches that do not apply, and 500 for the errors upstream passes
    /// through untyped (its strategic merge engine's own messages).
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::NotAnObject { .. }
            | PatchError::BadPrimitiveListFormat
            | PatchError::BadRetainKeysFormat
            | PatchError::BadSetElementOrderFormat
            | PatchError::JsonPatchDecode(_)
            | PatchError::InvalidMergePatch => 400,
            PatchError::TooManyOperations { .. } | PatchError::CopyTooLarge { .. } => 413,
            PatchError::NoListOfLists | PatchError::JsonPatchApply(_) => 422,
            PatchError::NoMergeKey { .. }
            | PatchError::BadArgType { .. }
            | PatchError::UnknownPatchType { .. }
            | PatchError::MergeDirectiveInList
            | PatchError::OrderMismatch { .. }
            | PatchError::MixedListElements { .. }
            | PatchError::NoMergeKeyDeclared { .. }
            | PatchError::NotAMap { .. } => 500,
        }
    }
}

/// Applies a strategic merge patch to an object of `kind`.
///
/// Kinds without strategy information (see [`meta::supports_strategic`]) get JSON merge patch
/// semantics instead; upstream refuses strategic merge patches of custom resources with 415, which
/// the caller can do by asking [`meta::supports_strategic`] first. A `null` patch changes nothing.
pub fn strategic_merge(
    kind: GroupKind<'_>,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    const TARGET: &str = "map[string]interface {}";
    let patch = match patch {
        Value::Object(map) => map.clone(),
        Value::Null => serde_json::Map::new(),
        other => {
            return Err(PatchError::NotAnObject {
                found: gofmt::json_kind(other),
                target: TARGET,
            });
        }
    };
    let Some(root) = meta::root_type(kind) else {
        return Ok(json_merge(original, &Value::Object(patch)));
    };
    let original = match original {
        Value::Object(map) => map.clone(),
        Value::Null => serde_json::Map::new(),
        other => {
            return Err(PatchError::NotAnObject {
                found: gofmt::json_kind(other),
                target: TARGET,
            });
        }
    };
    strategic::merge_map(original, patch, Some(root)).map(Value::Object)
}
