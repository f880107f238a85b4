//! The strategic merge patch engine: upstream's `mergeMap` and `mergeSlice` with the server-side
//! options kube-apiserver uses (parallel lists are applied, nulls that match nothing are dropped).
//!
//! Order of work in one map, as upstream: a `$patch` directive decides the whole map; then
//! `$retainKeys` clears what it does not list; then every `$setElementOrder/<field>` merges and
//! orders its list; then the remaining keys merge one by one, `null` deleting and
//! `$deleteFromPrimitiveList/<field>` removing scalars.
//!
//! List order follows upstream: `$setElementOrder` first, then the order of the patch, then the
//! order of the original. Without `$setElementOrder`, an element the patch adds goes before the
//! original elements it is not ordered against, which is why `kubectl patch` prepends.

use serde_json::{Map, Value};

use super::PatchError;
use super::gofmt;
use super::meta::{self, Field, Strategy};

const DIRECTIVE: &str = "$patch";
const DELETE: &str = "delete";
const REPLACE: &str = "replace";
const MERGE: &str = "merge";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Merges `patch` into `original`, both objects of type `ty`.
pub(crate) fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: Option<&str>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some(REPLACE) => {
                patch.remove(DIRECTIVE);
                Ok(strip_directive_keys_map(patch))
            }
            Some(DELETE) => Ok(Map::new()),
            _ => Err(PatchError::UnknownPatchType {
                directive: gofmt::s(directive),
                map: gofmt::v(&Value::Object(patch)),
            }),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, ty)?;

    // Deletions from primitive lists go after the other keys so that the outcome does not depend
    // on key order (upstream iterates a Go map, in random order).
    let (deletions, others): (Vec<_>, Vec<_>) = patch
        .into_iter()
        .partition(|(k, _)| k.starts_with(DELETE_FROM_PRIMITIVE_LIST));
    for (key, value) in others.into_iter().chain(deletions) {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (
                extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?.to_owned(),
                true,
            )
        } else {
            (key, false)
        };
        merge_field(&mut original, key, value, ty, is_delete_list)?;
    }
    Ok(original)
}

/// Merges one patch entry into `original`.
fn merge_field(
    original: &mut Map<String, Value>,
    key: String,
    value: Value,
    ty: Option<&str>,
    is_delete_list: bool,
) -> Result<(), PatchError> {
    if value.is_null() {
        original.remove(&key);
        return Ok(());
    }
    let Some(current) = original.get_mut(&key) else {
        // Nothing to merge with: take the patch value, minus its nulls and directives. Deleting
        // from an absent list changes nothing.
        if !is_delete_list {
            insert_fresh(original, key, value);
        }
        return Ok(());
    };
    if !same_type(current, &value) {
        if !is_delete_list {
            insert_fresh(original, key, value);
        }
        return Ok(());
    }
    let field = meta::lookup(ty, &key);
    let merged = match (current.take(), value) {
        (Value::Object(current), Value::Object(patch)) => {
            if field.strategy == Strategy::Replace {
                Value::Object(strip_directive_keys_map(patch))
            } else {
                Value::Object(merge_map(current, patch, field.ty)?)
            }
        }
        (Value::Array(current), Value::Array(patch)) => {
            Value::Array(merge_list_field(current, patch, field, is_delete_list)?)
        }
        (_, scalar) => scalar,
    };
    original.insert(key, merged);
    Ok(())
}

/// Takes a patch value where the original has nothing to merge it with.
fn insert_fresh(original: &mut Map<String, Value>, key: String, mut value: Value) {
    discard_nulls(&mut value);
    match remove_directives(value) {
        Some(value) => {
            original.insert(key, value);
        }
        None => {
            original.remove(&key);
        }
    }
}

/// Go's `reflect.TypeOf` equality on decoded JSON, except that all numbers count as one type
/// (a number replaces a number either way).
fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Upstream's `mergeSliceHandler`: merging lists merge, other lists are replaced. A deletion list
/// always deletes, whatever the field's strategy.
fn merge_list_field(
    original: Vec<Value>,
    patch: Vec<Value>,
    field: &Field,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if matches!(field.strategy, Strategy::Merge(_)) || is_delete_list {
        merge_list(original, patch, field, is_delete_list)
    } else {
        Ok(strip_directive_keys_list(patch))
    }
}

/// The kind of the elements of some lists, which must all agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Map,
    Scalar(ScalarKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScalarKind {
    Null,
    Bool,
    Int,
    Float,
    String,
}

fn kind_of(value: &Value) -> Option<Kind> {
    Some(match value {
        Value::Null => Kind::Scalar(ScalarKind::Null),
        Value::Bool(_) => Kind::Scalar(ScalarKind::Bool),
        Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Scalar(ScalarKind::Int),
        Value::Number(_) => Kind::Scalar(ScalarKind::Float),
        Value::String(_) => Kind::Scalar(ScalarKind::String),
        Value::Object(_) => Kind::Map,
        Value::Array(_) => return None,
    })
}

/// Upstream's `sliceElementType`: `None` when every list is empty.
fn element_kind(lists: &[&[Value]]) -> Result<Option<Kind>, PatchError> {
    let mut found: Option<Kind> = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        let kind = kind_of(item).ok_or(PatchError::NoListOfLists)?;
        match found {
            None => found = Some(kind),
            Some(k) if k == kind => {}
            Some(_) => {
                let all = Value::Array(lists.iter().map(|l| Value::Array(l.to_vec())).collect());
                return Err(PatchError::MixedListElements {
                    lists: gofmt::v(&all),
                });
            }
        }
    }
    Ok(found)
}

/// Upstream's `mergeSlice`.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    field: &Field,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let Some(kind) = element_kind(&[&original, &patch])? else {
        return Ok(original);
    };
    let merge_key = field.merge_key();
    let (order_original, order_patch, merged) = if kind == Kind::Map {
        let Some(key) = merge_key else {
            return Err(PatchError::NoMergeKeyDeclared {
                field: field.name.to_owned(),
            });
        };
        let (original, patch) = apply_list_directives(original, patch, key)?;
        let merged = merge_list_elements(original.clone(), patch.clone(), key, field.ty)?;
        (original, patch, merged)
    } else {
        if is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for item in original.iter().chain(patch.iter()) {
            if !merged.contains(item) {
                merged.push(item.clone());
            }
        }
        (original, patch, merged)
    };
    let key = if kind == Kind::Map { merge_key } else { None };
    let (patch_items, server_only) = partition(merged, &order_patch, key)?;
    normalize_order(
        patch_items,
        server_only,
        &order_patch,
        &order_original,
        key,
        kind,
    )
}

/// Upstream's `mergeSliceWithSpecialElements`: applies `$patch` elements of a list of objects.
/// Returns the original (less deleted elements, or the replacement) and the plain patch elements.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(map) = &item else {
            unreachable!("element_kind checked that every element is a map");
        };
        let Some(directive) = map.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let Some(value) = map.get(key) else {
                    return Err(no_merge_key(&item, key));
                };
                for (index, element) in original.iter().enumerate() {
                    if !element.is_object() {
                        return Err(PatchError::NotAMap { index });
                    }
                }
                original.retain(|element| element.get(key) != Some(value));
            }
            Some(REPLACE) => replace = true,
            Some(MERGE) => return Err(PatchError::MergeDirectiveInList),
            _ => {
                return Err(PatchError::UnknownPatchType {
                    directive: gofmt::s(directive),
                    map: gofmt::v(&item),
                });
            }
        }
    }
    if replace {
        return Ok((strip_directive_keys_list(plain), Vec::new()));
    }
    Ok((original, plain))
}

/// Upstream's `mergeSliceWithoutSpecialElements`: merges each patch element into the original
/// element with the same merge key, or appends it.
fn merge_list_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    ty: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let Value::Object(map) = item else {
            unreachable!("element_kind checked that every element is a map");
        };
        let Some(value) = map.get(key) else {
            return Err(no_merge_key(&Value::Object(map), key));
        };
        match find_by_key(&original, key, value)? {
            Some(index) => {
                let Value::Object(current) = original[index].take() else {
                    unreachable!("find_by_key only matches maps");
                };
                original[index] = Value::Object(merge_map(current, map, ty)?);
            }
            None => original.push(Value::Object(strip_directive_keys_map(map))),
        }
    }
    Ok(original)
}

/// The index of the first map in `list` whose `key` is `value`.
fn find_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, PatchError> {
    for (index, element) in list.iter().enumerate() {
        let Value::Object(map) = element else {
            return Err(PatchError::NotAMap { index });
        };
        if map.get(key) == Some(value) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

fn no_merge_key(map: &Value, key: &str) -> PatchError {
    PatchError::NoMergeKey {
        map: gofmt::v(map),
        key: key.to_owned(),
    }
}

fn bad_arg_type(expected: &'static str, actual: &Value) -> PatchError {
    PatchError::BadArgType {
        expected,
        actual: gofmt::type_name(actual),
    }
}

/// Splits `merged` into the elements present in `by` and the rest (server-only), keeping order.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::with_capacity(merged.len());
    let mut server_only = Vec::with_capacity(merged.len());
    for item in merged {
        let found = match key {
            None => by.contains(&item),
            Some(key) => {
                let Value::Object(map) = &item else {
                    return Err(bad_arg_type(gofmt::MAP, &item));
                };
                let Some(value) = map.get(key) else {
                    return Err(no_merge_key(&item, key));
                };
                find_by_key(by, key, value)?.is_some()
            }
        };
        if found {
            present.push(item);
        } else {
            server_only.push(item);
        }
    }
    Ok((present, server_only))
}

/// Upstream's `normalizeElementOrder`: sorts the patch's elements by `patch_order` and the
/// server-only ones by `server_order`, then interleaves them.
fn normalize_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
    kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = sort_by_order(patch_items, patch_order, key, kind)?;
    let server_only = sort_by_order(server_only, server_order, key, kind)?;
    Ok(interleave(
        server_only,
        patch_items,
        server_order,
        key,
        kind,
    ))
}

/// Upstream's `normalizeSliceOrder`: a stable sort by position in `order`; `$patch: delete`
/// elements go last.
fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    key: Option<&str>,
    kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let (mut keep, deletes) = if kind == Kind::Map {
        let key = key.unwrap_or("");
        for item in items.iter().chain(order.iter()) {
            let Value::Object(map) = item else {
                return Err(bad_arg_type(gofmt::MAP, item));
            };
            if !map.contains_key(key) {
                return Err(no_merge_key(item, key));
            }
        }
        items
            .into_iter()
            .partition(|item| item.get(DIRECTIVE).and_then(Value::as_str) != Some(DELETE))
    } else {
        (items, Vec::new())
    };
    keep.sort_by_cached_key(|item| position(order, item, key, kind).unwrap_or(usize::MAX));
    keep.extend(deletes);
    Ok(keep)
}

/// Upstream's `index`: where `item` is in `list`, by merge key for maps.
fn position(list: &[Value], item: &Value, key: Option<&str>, kind: Kind) -> Option<usize> {
    if kind == Kind::Map {
        let key = key.unwrap_or("");
        let wanted = item.get(key);
        list.iter().position(|other| other.get(key) == wanted)
    } else {
        list.iter().position(|other| other == item)
    }
}

/// Upstream's `mergeSortedSlice`: merges two sorted lists, taking from `left` only while its head
/// comes before the head of `right` in `server_order`.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    key: Option<&str>,
    kind: Kind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    position(server_order, l, key, kind),
                    position(server_order, r, key, kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Upstream's `applyRetainKeysDirective`: clears every key of `original` that `$retainKeys` does
/// not list, after checking that the patch sets only listed keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRetainKeysFormat);
    };
    let retained = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(k) {
            return Err(PatchError::BadRetainKeysFormat);
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// Upstream's `mergePatchIntoOriginal`: for every `$setElementOrder/<field>`, merges the field's
/// patch list into the original and orders the result; the field then leaves the patch.
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ty: Option<&str>,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive_key in keys {
        let order = patch.remove(&directive_key).unwrap_or(Value::Null);
        let Value::Array(order) = order else {
            return Err(bad_arg_type(gofmt::SLICE, &order));
        };
        let name = extract_key(&directive_key, SET_ELEMENT_ORDER)?.to_owned();
        let list_of = |value: Option<&Value>| -> Result<Option<Vec<Value>>, PatchError> {
            match value {
                None => Ok(None),
                Some(Value::Array(items)) => Ok(Some(items.clone())),
                Some(other) => Err(bad_arg_type(gofmt::SLICE, other)),
            }
        };
        let original_list = list_of(original.get(&name))?;
        let patch_list = list_of(patch.get(&name))?;
        let field = meta::lookup(ty, &name);
        let key = field.merge_key();
        check_order(patch_list.as_deref().unwrap_or(&[]), &order, key)?;

        let kind = element_kind(&[
            original_list.as_deref().unwrap_or(&[]),
            patch_list.as_deref().unwrap_or(&[]),
        ])?;
        let server_order = original_list.clone().unwrap_or_default();
        let merged = match (original_list, patch_list) {
            (Some(original_list), None) => original_list,
            (None, Some(patch_list)) => match remove_directives(Value::Array(patch_list)) {
                Some(Value::Array(items)) => items,
                _ => continue,
            },
            (Some(original_list), Some(patch_list)) => {
                merge_list_field(original_list, patch_list, field, false)?
            }
            (None, None) => continue,
        };
        let ordered = match kind {
            // Upstream fails with "no elements in any of the given slices" here; with nothing to
            // order, Berth keeps the (empty) list.
            None => merged,
            Some(kind) => {
                let (patch_items, server_only) = partition(merged, &order, key)?;
                normalize_order(patch_items, server_only, &order, &server_order, key, kind)?
            }
        };
        original.insert(name.clone(), Value::Array(ordered));
        patch.remove(&name);
    }
    Ok(())
}

/// Upstream's `validatePatchWithSetOrderList`: the patch list's elements (deletions aside) must
/// appear in the `$setElementOrder` list, in the same relative order.
fn check_order(patch_list: &[Value], order: &[Value], key: Option<&str>) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut items: Vec<&Value> = Vec::with_capacity(patch_list.len());
    for item in patch_list {
        if key.is_some() {
            if !item.is_object() {
                return Err(bad_arg_type(gofmt::MAP, item));
            }
            if item.get(DIRECTIVE).and_then(Value::as_str) == Some(DELETE) {
                continue;
            }
        }
        items.push(item);
    }
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if items[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if merge_key_equal(items[p], &order[o], key)? {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() && o >= order.len() {
        return Err(PatchError::OrderMismatch {
            patch: gofmt::v(&Value::Array(patch_list.to_vec())),
            order: gofmt::v(&Value::Array(order.to_vec())),
        });
    }
    Ok(())
}

/// Upstream's `mergeKeyValueEqual`.
fn merge_key_equal(left: &Value, right: &Value, key: Option<&str>) -> Result<bool, PatchError> {
    let Some(key) = key else {
        return Ok(left == right);
    };
    for side in [left, right] {
        if !side.is_object() {
            return Err(bad_arg_type(gofmt::MAP, side));
        }
        if side.get(key).is_none() {
            return Err(no_merge_key(side, key));
        }
    }
    Ok(left.get(key) == right.get(key))
}

/// Upstream's `extractKey`: the field name after `<prefix>/`.
fn extract_key<'a>(key: &'a str, prefix: &str) -> Result<&'a str, PatchError> {
    match key.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => Err(PatchError::BadPrimitiveListFormat),
        _ => Err(PatchError::BadSetElementOrderFormat),
    }
}

/// Upstream's `discardNullValuesFromPatch`: drops `null` members of maps, at any depth.
fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Upstream's `removeDirectives`: maps carrying `$patch` vanish (`None` at the top), at any
/// depth. Other directive keys are stripped, as upstream's typed decoding would drop them.
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(
                map.into_iter()
                    .filter(|(k, _)| !is_directive_key(k))
                    .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Whether a map key is a patch directive rather than a field.
fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// Strips directive keys from a value upstream copies verbatim from the patch; its typed decoding
/// drops them as unknown fields.
fn strip_directive_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(strip_directive_keys_map(map)),
        Value::Array(items) => Value::Array(strip_directive_keys_list(items)),
        other => other,
    }
}

fn strip_directive_keys_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(k, _)| !is_directive_key(k))
        .map(|(k, v)| (k, strip_directive_keys(v)))
        .collect()
}

fn strip_directive_keys_list(items: Vec<Value>) -> Vec<Value> {
    items.into_iter().map(strip_directive_keys).collect()
}
