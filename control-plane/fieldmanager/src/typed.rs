//! Walks over objects guided by a [`TypeInfo`]: the field set of an object, the comparison of
//! two objects, the merge of an applied configuration into an object, and the removal of a set
//! of fields. Mirrors `sigs.k8s.io/structured-merge-diff/typed`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use crate::fieldpath::{FieldSet, Path, PathElement};
use crate::schema::{ListType, Shape, TypeInfo, Zero};

/// A value that does not fit its schema, in upstream's words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TypeError {
    /// Where.
    pub path: Path,
    /// What.
    pub message: String,
}

/// What the value at a path is, schema and value together.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Scalar,
    Map { atomic: bool, named: bool },
    List(ListType),
}

fn resolve(shape: &Shape, v: &Value) -> Kind {
    match v {
        Value::Object(_) => match shape {
            Shape::Struct { atomic } => Kind::Map {
                atomic: *atomic,
                named: true,
            },
            Shape::Map { atomic } => Kind::Map {
                atomic: *atomic,
                named: false,
            },
            Shape::Atomic => Kind::Map {
                atomic: true,
                named: false,
            },
            _ => Kind::Map {
                atomic: false,
                named: false,
            },
        },
        Value::Array(_) => match shape {
            Shape::List(lt) => Kind::List(lt.clone()),
            _ => Kind::List(ListType::Atomic),
        },
        _ => Kind::Scalar,
    }
}

fn is_leaf(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Scalar | Kind::Map { atomic: true, .. } | Kind::List(ListType::Atomic)
    )
}

/// The walk position: field names for the schema, path elements for the sets.
#[derive(Clone, Default)]
pub(crate) struct Cursor {
    names: Vec<String>,
    path: Vec<PathElement>,
}

impl Cursor {
    fn names(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }

    fn field(&self, name: &str) -> Cursor {
        let mut c = self.clone();
        c.names.push(name.to_owned());
        c.path.push(PathElement::Field(name.to_owned()));
        c
    }

    fn item(&self, pe: PathElement) -> Cursor {
        let mut c = self.clone();
        c.path.push(pe);
        c
    }

    fn err(&self, message: impl Into<String>) -> TypeError {
        TypeError {
            path: Path(self.path.clone()),
            message: message.into(),
        }
    }
}

/// The path element of list item `i`.
fn item_pe(lt: &ListType, item: &Value, i: usize, at: &Cursor) -> Result<PathElement, TypeError> {
    match lt {
        ListType::Atomic => Ok(PathElement::Index(i as i64)),
        ListType::Set => Ok(PathElement::Value(item.clone())),
        ListType::Map(keys) => {
            let Value::Object(obj) = item else {
                return Err(at.err("expected map, got a non-map list item"));
            };
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                match obj.get(&k.name).or(k.default.as_ref()) {
                    Some(v) => fields.push((k.name.clone(), v.clone())),
                    None => {
                        return Err(at.err(format!(
                            "associative list with keys has an element that omits key field {:?} (and doesn't have default value)",
                            k.name
                        )));
                    }
                }
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
    }
}

/// Path elements of a list's items; with `strict`, duplicates are an error (as for applied
/// configurations), otherwise the first of duplicates wins (as for live objects).
fn index_items<'v>(
    lt: &ListType,
    items: &'v [Value],
    at: &Cursor,
    strict: bool,
) -> Result<Vec<(PathElement, &'v Value)>, TypeError> {
    let mut out: Vec<(PathElement, &Value)> = Vec::with_capacity(items.len());
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let pe = item_pe(lt, item, i, at)?;
        if !seen.insert(pe.clone()) {
            if strict {
                return Err(at.err(format!("duplicate entries for key {pe}")));
            }
            continue;
        }
        out.push((pe, item));
    }
    Ok(out)
}

pub(crate) struct Walker<'t> {
    pub(crate) types: &'t dyn TypeInfo,
}

impl Walker<'_> {
    fn shape_of(&self, at: &Cursor, is_item: bool) -> Shape {
        if is_item {
            self.types.element_shape(&at.names())
        } else {
            self.types.shape(&at.names())
        }
    }

    /// Upstream's `ToFieldSet`: leaves, list items, empty or null map entries, and the entries
    /// of free-form maps.
    pub(crate) fn to_field_set(&self, v: &Value, strict: bool) -> Result<FieldSet, TypeError> {
        let mut out = FieldSet::new();
        self.fs(v, &Cursor::default(), false, strict, &mut out)?;
        Ok(out)
    }

    fn fs(
        &self,
        v: &Value,
        at: &Cursor,
        is_item: bool,
        strict: bool,
        out: &mut FieldSet,
    ) -> Result<(), TypeError> {
        let shape = self.shape_of(at, is_item);
        if v.is_null() && matches!(shape, Shape::Struct { .. } | Shape::Map { .. }) {
            // A null object is no object: nothing to own (a null list still is an atomic
            // list's value).
            if !matches!(
                shape,
                Shape::Struct { atomic: true } | Shape::Map { atomic: true }
            ) {
                return Ok(());
            }
        }
        if v.is_null() && matches!(shape, Shape::List(ListType::Set | ListType::Map(_))) {
            return Ok(());
        }
        let kind = resolve(&shape, v);
        match (&kind, v) {
            (k, _) if is_leaf(k) => out.insert(&at.path),
            (Kind::Map { named, .. }, Value::Object(obj)) => {
                for (key, child) in obj {
                    let c = at.field(key);
                    self.fs(child, &c, false, strict, out)?;
                    if !named {
                        out.insert(&c.path);
                    }
                }
            }
            (Kind::List(lt), Value::Array(items)) => {
                for (pe, item) in index_items(lt, items, at, strict)? {
                    let c = at.item(pe);
                    self.fs(item, &c, true, strict, out)?;
                    out.insert(&c.path);
                }
            }
            _ => out.insert(&at.path),
        }
        Ok(())
    }

    /// Upstream's `Compare`: leaves added, removed or changed; other nodes added or removed.
    pub(crate) fn compare(&self, lhs: &Value, rhs: &Value) -> Comparison {
        let mut out = Comparison::default();
        self.cmp(Some(lhs), Some(rhs), &Cursor::default(), false, &mut out);
        out
    }

    fn cmp(
        &self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        at: &Cursor,
        is_item: bool,
        out: &mut Comparison,
    ) {
        // Equal values differ nowhere below: no need to walk them (most of an update).
        if let (Some(l), Some(r)) = (lhs, rhs)
            && l == r
        {
            return;
        }
        let shape = self.shape_of(at, is_item);
        let Some(sample) = rhs
            .filter(|v| !v.is_null())
            .or(lhs.filter(|v| !v.is_null()))
        else {
            // Nulls on both sides, or a null on one side only.
            match (lhs, rhs) {
                (None, Some(_)) => out.added.insert(&at.path),
                (Some(_), None) => out.removed.insert(&at.path),
                _ => {}
            }
            return;
        };
        let kind = resolve(&shape, sample);
        // A side whose value is of another kind than the schema's counts as changed wholesale.
        let same_kind = |v: Option<&Value>| {
            v.is_none_or(|v| v.is_null() && !is_leaf(&kind) || resolve(&shape, v) == kind)
        };
        // Both sides empty or null: a leaf, which keeps `{}` and `null` apart (upstream's
        // `emptyPromoteToLeaf`).
        let empty = |v: Option<&Value>| match v {
            None | Some(Value::Null) => true,
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        if is_leaf(&kind) || !same_kind(lhs) || !same_kind(rhs) || (empty(lhs) && empty(rhs)) {
            match (lhs, rhs) {
                (None, Some(_)) => out.added.insert(&at.path),
                (Some(_), None) => out.removed.insert(&at.path),
                (Some(l), Some(r)) if l != r => out.modified.insert(&at.path),
                _ => {}
            }
            return;
        }
        match (lhs, rhs) {
            (None, Some(_)) => out.added.insert(&at.path),
            (Some(_), None) => out.removed.insert(&at.path),
            _ => {}
        }
        match kind {
            Kind::Map { .. } => {
                let empty = Map::new();
                let l = lhs.and_then(Value::as_object).unwrap_or(&empty);
                let r = rhs.and_then(Value::as_object).unwrap_or(&empty);
                let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
                for key in keys {
                    self.cmp(l.get(key), r.get(key), &at.field(key), false, out);
                }
            }
            Kind::List(lt) => {
                let none = Vec::new();
                let l = lhs.and_then(Value::as_array).unwrap_or(&none);
                let r = rhs.and_then(Value::as_array).unwrap_or(&none);
                let (Ok(l), Ok(r)) = (
                    index_items(&lt, l, at, false),
                    index_items(&lt, r, at, false),
                ) else {
                    out.modified.insert(&at.path);
                    return;
                };
                let l: BTreeMap<PathElement, &Value> = l.into_iter().collect();
                let r: BTreeMap<PathElement, &Value> = r.into_iter().collect();
                let pes: BTreeSet<&PathElement> = l.keys().chain(r.keys()).collect();
                for pe in pes {
                    let c = at.item(pe.clone());
                    self.cmp(l.get(pe).copied(), r.get(pe).copied(), &c, true, out);
                }
            }
            Kind::Scalar => {}
        }
    }

    /// Upstream's `Merge`: `rhs` (an applied configuration) over `lhs` (the live object).
    pub(crate) fn merge(&self, lhs: &Value, rhs: &Value) -> Result<Value, TypeError> {
        self.mrg(Some(lhs), rhs, &Cursor::default(), false)
    }

    fn mrg(
        &self,
        lhs: Option<&Value>,
        rhs: &Value,
        at: &Cursor,
        is_item: bool,
    ) -> Result<Value, TypeError> {
        let shape = self.shape_of(at, is_item);
        let kind = resolve(&shape, rhs);
        let Some(lhs) = lhs.filter(|l| !is_leaf(&kind) && resolve(&shape, l) == kind) else {
            // Validate what we take over wholesale (list keys), then take it.
            if !is_leaf(&kind) {
                self.fs(rhs, at, is_item, true, &mut FieldSet::new())?;
            }
            return Ok(rhs.clone());
        };
        match (kind, lhs, rhs) {
            (Kind::Map { .. }, Value::Object(l), Value::Object(r)) => {
                let mut out = l.clone();
                for (key, rv) in r {
                    if rv.is_null() {
                        out.remove(key);
                        continue;
                    }
                    let merged = self.mrg(l.get(key), rv, &at.field(key), false)?;
                    out.insert(key.clone(), merged);
                }
                Ok(Value::Object(out))
            }
            (Kind::List(lt), Value::Array(l), Value::Array(r)) => {
                self.merge_list(&lt, l, r, at).map(Value::Array)
            }
            _ => Ok(rhs.clone()),
        }
    }

    /// Items keep the live order; applied items the live object lacks go where the applied
    /// order puts them (upstream's `visitListItems` of the merging walker).
    fn merge_list(
        &self,
        lt: &ListType,
        lhs: &[Value],
        rhs: &[Value],
        at: &Cursor,
    ) -> Result<Vec<Value>, TypeError> {
        let lpes: Vec<PathElement> = lhs
            .iter()
            .enumerate()
            .map(|(i, v)| item_pe(lt, v, i, at))
            .collect::<Result<_, _>>()?;
        let rindexed = index_items(lt, rhs, at, true)?;
        let rpes: Vec<PathElement> = rindexed.iter().map(|(pe, _)| pe.clone()).collect();
        let mut observed_l: BTreeMap<&PathElement, &Value> = BTreeMap::new();
        for (pe, v) in lpes.iter().zip(lhs) {
            observed_l.entry(pe).or_insert(v);
        }
        let observed_r: BTreeMap<&PathElement, &Value> =
            rindexed.iter().map(|(pe, v)| (pe, *v)).collect();
        let mut shared: VecDeque<&PathElement> = rpes
            .iter()
            .filter(|pe| observed_l.contains_key(pe))
            .collect();
        let mut next_shared = shared.pop_front();
        let mut merged_r: BTreeSet<&PathElement> = BTreeSet::new();
        let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
        let (mut li, mut ri) = (0, 0);
        while li < lpes.len() || ri < rpes.len() {
            if li < lpes.len() && ri < rpes.len() {
                let pe = &lpes[li];
                if *pe == rpes[ri] {
                    merged_r.insert(pe);
                    let c = at.item(pe.clone());
                    out.push(self.mrg(observed_l.get(pe).copied(), observed_r[pe], &c, true)?);
                    li += 1;
                    ri += 1;
                    next_shared = shared.pop_front();
                    continue;
                }
                if observed_r.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < lpes.len() {
                let pe = &lpes[li];
                if !observed_r.contains_key(pe) {
                    out.push(lhs[li].clone());
                    li += 1;
                    continue;
                } else if merged_r.contains(pe) {
                    li += 1;
                    continue;
                }
            }
            if ri < rpes.len() {
                let pe = &rpes[ri];
                merged_r.insert(pe);
                let c = at.item(pe.clone());
                out.push(self.mrg(observed_l.get(pe).copied(), observed_r[pe], &c, true)?);
                ri += 1;
                if next_shared.is_some_and(|n| n == pe) {
                    next_shared = shared.pop_front();
                }
            }
        }
        Ok(out)
    }

    /// Upstream's `RemoveItems`: drops every member of `set` (with what is below it).
    pub(crate) fn remove_items(&self, v: &Value, set: &FieldSet) -> Value {
        self.rm(v, set, &Cursor::default(), false)
    }

    fn rm(&self, v: &Value, set: &FieldSet, at: &Cursor, is_item: bool) -> Value {
        if set.is_empty() {
            return v.clone();
        }
        let kind = resolve(&self.shape_of(at, is_item), v);
        match (kind, v) {
            (Kind::Map { .. }, Value::Object(obj)) => {
                let mut out = Map::new();
                for (key, child) in obj {
                    let pe = PathElement::Field(key.clone());
                    if set.has_member(&pe) {
                        continue;
                    }
                    let child = match set.child(&pe) {
                        Some(sub) => self.rm(child, sub, &at.field(key), false),
                        None => child.clone(),
                    };
                    out.insert(key.clone(), child);
                }
                Value::Object(out)
            }
            (Kind::List(lt), Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let Ok(pe) = item_pe(&lt, item, i, at) else {
                        out.push(item.clone());
                        continue;
                    };
                    if set.has_member(&pe) {
                        continue;
                    }
                    out.push(match set.child(&pe) {
                        Some(sub) => self.rm(item, sub, &at.item(pe.clone()), true),
                        None => item.clone(),
                    });
                }
                Value::Array(out)
            }
            _ => v.clone(),
        }
    }

    /// Upstream's `EnsureNamedFieldsAreMembers`: a declared field with members below it becomes
    /// a member itself (a map key does not).
    pub(crate) fn ensure_named_fields_are_members(&self, set: &FieldSet) -> FieldSet {
        self.ensure(set, &Cursor::default(), false)
    }

    fn ensure(&self, set: &FieldSet, at: &Cursor, is_item: bool) -> FieldSet {
        let struct_here = matches!(self.shape_of(at, is_item), Shape::Struct { .. });
        let mut out = FieldSet::new();
        for (pe, member, children) in set.entries() {
            let (c, item) = match pe {
                PathElement::Field(name) => (at.field(name), false),
                other => (at.item(other.clone()), true),
            };
            let named = struct_here && matches!(pe, PathElement::Field(_)) && !children.is_empty();
            let children = self.ensure(children, &c, item);
            out.put_child(pe.clone(), member || named, children);
        }
        out
    }

    /// Adds the fields Go always serializes for zero-valued structs (see [`Zero`]) where they
    /// are missing, so comparisons see objects as upstream's typed conversion does.
    /// Borrows `v` when nothing is missing (an object read back from storage, or written by
    /// a client that sends them, as kubectl does).
    pub(crate) fn with_zero_fields<'v>(&self, v: &'v Value) -> Cow<'v, Value> {
        if !self.lacks_zero_fields(v, &mut Vec::new()) {
            return Cow::Borrowed(v);
        }
        let mut v = v.clone();
        self.zero(&mut v, &mut Vec::new());
        Cow::Owned(v)
    }

    fn lacks_zero_fields<'v>(&self, v: &'v Value, path: &mut Vec<&'v str>) -> bool {
        let Value::Object(obj) = v else {
            return false;
        };
        if self
            .types
            .zero_fields(path)
            .iter()
            .any(|(field, _)| !obj.contains_key(*field))
        {
            return true;
        }
        obj.iter().any(|(key, child)| {
            child.is_object() && {
                path.push(key);
                let lacks = self.lacks_zero_fields(child, path);
                path.pop();
                lacks
            }
        })
    }

    fn zero(&self, v: &mut Value, names: &mut Vec<String>) {
        let Value::Object(obj) = v else {
            return;
        };
        let path: Vec<&str> = names.iter().map(String::as_str).collect();
        for (field, zero) in self.types.zero_fields(&path) {
            obj.entry(field).or_insert(match zero {
                Zero::Object => Value::Object(Map::new()),
                Zero::Null => Value::Null,
            });
        }
        for (key, child) in obj.iter_mut() {
            if child.is_object() {
                names.push(key.clone());
                self.zero(child, names);
                names.pop();
            }
        }
    }
}

/// What changed between two objects.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

impl Comparison {
    pub(crate) fn exclude(&self, ignored: &FieldSet) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }
}
