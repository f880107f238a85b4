//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902), as kube-apiserver applies them with
//! `gopkg.in/evanphx/json-patch.v4`, quirks and messages included:
//!
//! - merge patch: nulls are pruned from objects taken over from the patch (also inside lists),
//!   while `null` elements of lists stay;
//! - JSON patch: `replace` of a missing object member adds it; negative array indices count from
//!   the end; `test` treats a missing member and `null` alike; errors read
//!   `add operation does not apply: doc is missing path: "/a/b": missing value` and so on.

use serde_json::{Map, Value};

use super::PatchError;
use super::gofmt;

/// The most operations kube-apiserver accepts in one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// How many bytes (of the copied values' JSON) the `copy` operations of one JSON patch may add
/// in all: upstream's `JSONPatchMaxCopyBytes` default. Without it, a few hundred bytes of
/// `copy` operations, each doubling the document, exhaust memory.
pub const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

/// Applies a JSON merge patch (RFC 7386): objects merge recursively, `null` deletes, everything
/// else (lists included) replaces. A patch that is not an object replaces the document; the API
/// server rejects `null` and scalar patches first, see [`validate_merge_patch`].
pub fn json_merge(original: &Value, patch: &Value) -> Value {
    match (original, patch) {
        (Value::Object(doc), Value::Object(patch)) => {
            let mut doc = doc.clone();
            merge_docs(&mut doc, patch);
            Value::Object(doc)
        }
        (_, patch) => pruned(patch),
    }
}

/// Checks a merge patch as the API server does before applying it: only objects and lists are
/// patches (`Invalid JSON Patch`, 400, otherwise).
pub fn validate_merge_patch(patch: &Value) -> Result<(), PatchError> {
    match patch {
        Value::Object(_) | Value::Array(_) => Ok(()),
        _ => Err(PatchError::InvalidMergePatch),
    }
}

fn merge_docs(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            doc.remove(key);
            continue;
        }
        let merged = match doc.get_mut(key) {
            Some(Value::Object(current)) => match value {
                Value::Object(patch) => {
                    merge_docs(current, patch);
                    continue;
                }
                other => other.clone(),
            },
            _ => pruned(value),
        };
        doc.insert(key.clone(), merged);
    }
}

/// The patch value with `null` members of its objects removed, at any depth.
fn pruned(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), pruned(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(pruned).collect()),
        other => other.clone(),
    }
}

/// Applies a JSON patch (RFC 6902): a list of `add`, `remove`, `replace`, `move`, `copy` and
/// `test` operations, in order, all or nothing.
///
/// A patch that is not a list is a decoding error (400); too many operations, 413; an operation
/// that does not apply, 422. A `null` patch changes nothing, as upstream.
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = match patch {
        Value::Array(ops) => ops.as_slice(),
        Value::Null => &[],
        other => {
            return Err(PatchError::JsonPatchDecode(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                gofmt::json_kind(other)
            )));
        }
    };
    let empty = Map::new();
    let mut operations = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Value::Object(map) => operations.push(map),
            // A `null` operation decodes to an empty one, which fails as an unknown kind.
            Value::Null => operations.push(&empty),
            other => {
                return Err(PatchError::JsonPatchDecode(format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                    gofmt::json_kind(other)
                )));
            }
        }
    }
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: operations.len(),
        });
    }
    let mut doc = original.clone();
    let mut copied = 0;
    for op in operations {
        apply(&mut doc, op, &mut copied)?;
    }
    Ok(doc)
}

/// The length of `value`'s compact JSON, counted without allocating it.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` cannot fail, and the counter never does.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

const MISSING: &str = "missing value";
const INVALID_INDEX: &str = "invalid index referenced";

/// One operation, adding what a `copy` adds to `copied`; errors are upstream's texts.
fn apply(doc: &mut Value, op: &Map<String, Value>, copied: &mut usize) -> Result<(), PatchError> {
    if op.get("op").and_then(Value::as_str) == Some("copy") {
        let from = op.get("from").and_then(Value::as_str).unwrap_or_default();
        if let Some((container, key)) = find_container(doc, from)
            && let Ok(Some(value)) = get(container, &key)
        {
            *copied += json_len(value);
            if *copied > MAX_JSON_PATCH_COPY_BYTES {
                return Err(PatchError::CopyTooLarge {
                    accumulated: *copied,
                    max: MAX_JSON_PATCH_COPY_BYTES,
                });
            }
        }
    }
    apply_one(doc, op).map_err(PatchError::JsonPatchApply)
}

/// One operation; errors are upstream's texts.
fn apply_one(doc: &mut Value, op: &Map<String, Value>) -> Result<(), String> {
    let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
    let value = || op.get("value").cloned().unwrap_or(Value::Null);
    match kind {
        "add" => {
            let path = string_field(op, "path")
                .map_err(|_| format!("add operation failed to decode path: {MISSING}"))?;
            let (container, key) = find_container(doc, &path).ok_or_else(|| {
                format!("add operation does not apply: doc is missing path: \"{path}\": {MISSING}")
            })?;
            add(container, &key, value())
                .map_err(|e| format!("error in add for path: '{path}': {e}"))
        }
        "remove" => {
            let path = string_field(op, "path")
                .map_err(|_| format!("remove operation failed to decode path: {MISSING}"))?;
            let (container, key) = find_container(doc, &path).ok_or_else(|| {
                format!(
                    "remove operation does not apply: doc is missing path: \"{path}\": {MISSING}"
                )
            })?;
            remove(container, &key)
                .map(drop)
                .map_err(|e| format!("error in remove for path: '{path}': {e}"))
        }
        "replace" => {
            let path = string_field(op, "path")
                .map_err(|e| format!("replace operation failed to decode path: {e}"))?;
            if path.is_empty() {
                let value = value();
                if !value.is_object() && !value.is_array() {
                    return Err(
                        "replace operation value must be object or array: %!w(<nil>)".to_owned(),
                    );
                }
                *doc = value;
                return Ok(());
            }
            let (container, key) = find_container(doc, &path).ok_or_else(|| {
                format!("replace operation does not apply: doc is missing path: {path}: {MISSING}")
            })?;
            get(container, &key).map_err(|_| {
                format!("replace operation does not apply: doc is missing key: {path}: {MISSING}")
            })?;
            set(container, &key, value())
                .map_err(|e| format!("error in remove for path: '{path}': {e}"))
        }
        "move" => {
            let from = string_field(op, "from")
                .map_err(|e| format!("move operation failed to decode from: {e}"))?;
            let (container, key) = find_container(doc, &from).ok_or_else(|| {
                format!(
                    "move operation does not apply: doc is missing from path: {from}: {MISSING}"
                )
            })?;
            get(container, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
            let moved = remove(container, &key)
                .map_err(|e| format!("error in move for path: '{key}': {e}"))?;
            let path = string_field(op, "path")
                .map_err(|e| format!("move operation failed to decode path: {e}"))?;
            let (container, key) = find_container(doc, &path).ok_or_else(|| {
                format!(
                    "move operation does not apply: doc is missing destination path: {path}: {MISSING}"
                )
            })?;
            add(container, &key, moved)
                .map_err(|e| format!("error in move for path: '{path}': {e}"))
        }
        "copy" => {
            let from = string_field(op, "from")
                .map_err(|e| format!("copy operation failed to decode from: {e}"))?;
            let (container, key) = find_container(doc, &from).ok_or_else(|| {
                format!(
                    "copy operation does not apply: doc is missing from path: {from}: {MISSING}"
                )
            })?;
            let copied = get(container, &key)
                .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
                .cloned()
                .unwrap_or(Value::Null);
            let path = string_field(op, "path")
                .map_err(|_| format!("copy operation failed to decode path: {MISSING}"))?;
            let (container, key) = find_container(doc, &path).ok_or_else(|| {
                format!(
                    "copy operation does not apply: doc is missing destination path: {path}: {MISSING}"
                )
            })?;
            add(container, &key, copied)
                .map_err(|e| format!("error while adding value during copy: {e}"))
        }
        "test" => {
            let path = string_field(op, "path")
                .map_err(|e| format!("test operation failed to decode path: {e}"))?;
            let failed = || format!("testing value {path} failed: test failed");
            let expected = op.get("value").filter(|v| !v.is_null());
            if path.is_empty() {
                return if expected == Some(&*doc) {
                    Ok(())
                } else {
                    Err(failed())
                };
            }
            let (container, key) = find_container(doc, &path).ok_or_else(|| {
                format!("test operation does not apply: is missing path: {path}: {MISSING}")
            })?;
            let actual = get(container, &key)
                .map_err(|e| format!("error in test for path: '{path}': {e}"))?
                .filter(|v| !v.is_null());
            if actual == expected {
                Ok(())
            } else {
                Err(failed())
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// A string member of an operation (`path`, `from`), with upstream's errors when it is missing or
/// not a string.
fn string_field(op: &Map<String, Value>, name: &str) -> Result<String, String> {
    match op.get(name) {
        None | Some(Value::Null) => Err(if name == "from" {
            format!("operation, missing from field: {MISSING}")
        } else {
            format!("operation missing path field: {MISSING}")
        }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go value of type string",
            gofmt::json_kind(other)
        )),
    }
}

/// RFC 6901 unescaping of one reference token.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The container (object or list) holding the last token of `path`, and that token. `None` when
/// the path is empty or a step along it is missing or not a container.
fn find_container<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let mut tokens: Vec<&str> = path.split('/').collect();
    if tokens.len() < 2 {
        return None;
    }
    let last = unescape(tokens.pop()?);
    let mut current = doc;
    for token in &tokens[1..] {
        let token = unescape(token);
        let next = match current {
            Value::Object(map) => map.get_mut(&token)?,
            Value::Array(items) => {
                let index = array_index(&token, items.len()).ok()?;
                items.get_mut(index)?
            }
            _ => return None,
        };
        if !next.is_object() && !next.is_array() {
            return None;
        }
        current = next;
    }
    Some((current, last))
}

/// Go's `strconv.Atoi` message for a token that is not an integer.
fn atoi_error(token: &str) -> String {
    format!("strconv.Atoi: parsing \"{token}\": invalid syntax")
}

fn parse_index(token: &str) -> Result<i64, String> {
    let digits = token.strip_prefix(['+', '-']).unwrap_or(token);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(atoi_error(token));
    }
    token.parse().map_err(|_| atoi_error(token))
}

fn invalid_index(index: i64) -> String {
    format!("Unable to access invalid index: {index}: {INVALID_INDEX}")
}

/// An existing element's index; negative indices count from the end.
fn array_index(token: &str, len: usize) -> Result<usize, String> {
    let index = parse_index(token)?;
    let len = len as i64;
    let resolved = if index < 0 { index + len } else { index };
    if index < -len || resolved >= len {
        return Err(invalid_index(index));
    }
    Ok(resolved as usize)
}

fn get<'a>(container: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match container {
        Value::Object(map) => Ok(map.get(key)),
        Value::Array(items) => Ok(Some(&items[array_index(key, items.len())?])),
        _ => Ok(None),
    }
}

fn set(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(key, items.len())?;
            items[index] = value;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn add(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        Value::Array(items) => {
            if key == "-" {
                items.push(value);
                return Ok(());
            }
            let index = parse_index(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let size = items.len() as i64 + 1;
            if index >= size || index < -size {
                return Err(invalid_index(index));
            }
            let index = if index < 0 { index + size } else { index };
            items.insert(index as usize, value);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn remove(container: &mut Value, key: &str) -> Result<Value, String> {
    match container {
        Value::Object(map) => map
            .remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: {MISSING}")),
        Value::Array(items) => {
            let index = array_index(key, items.len())?;
            Ok(items.remove(index))
        }
        _ => Err(format!(
            "Unable to remove nonexistent key: {key}: {MISSING}"
        )),
    }
}
