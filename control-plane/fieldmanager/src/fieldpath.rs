//! Field paths and sets of them, with the FieldsV1 encoding of `metadata.managedFields`.
//!
//! Mirrors `sigs.k8s.io/structured-merge-diff/fieldpath`: a path is a list of elements (a field
//! name, the key fields of a list-map item, the value of a set item, or a list index), and a set
//! is a tree whose nodes may be members themselves and have children. Elements sort as upstream
//! sorts them (field names, then keys, then values, then indexes), which is the order FieldsV1
//! is written in.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A field of a struct or a key of a map: `f:name`.
    Field(String),
    /// An item of a list-map, by its key fields sorted by name: `k:{"name":"nginx"}`.
    Key(Vec<(String, Value)>),
    /// An item of a set list, by its value: `v:"a"`.
    Value(Value),
    /// An item of a list by position (atomic lists never need it): `i:0`.
    Index(i64),
}

impl PathElement {
    /// The element as written in FieldsV1 (`f:spec`, `k:{"name":"a"}`, `v:1`, `i:0`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let map: Map<String, Value> = fields.iter().cloned().collect();
                format!("k:{}", Value::Object(map))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses one FieldsV1 key (not `.`).
    pub fn from_fields_v1_key(key: &str) -> Result<Self, DecodeError> {
        let bad = || DecodeError(format!("unrecognized path element {key:?}"));
        let (prefix, rest) = key.split_once(':').ok_or_else(bad)?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_owned())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(map)) => {
                    let mut fields: Vec<(String, Value)> = map.into_iter().collect();
                    fields.sort_by(|a, b| a.0.cmp(&b.0));
                    Ok(PathElement::Key(fields))
                }
                _ => Err(bad()),
            },
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|_| bad()),
            "i" => rest.parse().map(PathElement::Index).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for (x, y) in a.iter().zip(b) {
                    let c = x.0.cmp(&y.0).then_with(|| compare_values(&x.1, &y.1));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

/// Upstream's `value.Compare`: numbers, then strings, booleans, lists, maps, null.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = compare_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            // Maps compare as their sorted (key, value) lists.
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for (p, q) in xs.iter().zip(&ys) {
                let c = p.0.cmp(q.0).then_with(|| compare_values(p.1, q.1));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Prints values as upstream's `value.ToString` does in paths: JSON.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the root of an object, printed as upstream prints it in conflicts:
/// `.spec.template.spec.containers[name="nginx"].image`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// A path of field names only.
    pub fn fields(names: &[&str]) -> Self {
        Path(
            names
                .iter()
                .map(|n| PathElement::Field((*n).to_owned()))
                .collect(),
        )
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

/// FieldsV1 that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Node {
    member: bool,
    children: FieldSet,
}

impl Node {
    fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }
}

/// A set of field paths (upstream's `fieldpath.Set`). A path can be a member and also have
/// members below it; in FieldsV1 that is the `.` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    nodes: BTreeMap<PathElement, Node>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        FieldSet::default()
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.nodes.values().all(Node::is_empty)
    }

    /// Adds `path` (the empty path is not a member of anything and is ignored).
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.nodes.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.member = true;
        } else {
            node.children.insert(rest);
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        match self.nodes.get(first) {
            Some(node) if rest.is_empty() => node.member,
            Some(node) => node.children.has(rest),
            None => false,
        }
    }

    /// The members below `pe`, relative to it.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.nodes.get(pe).map(|n| &n.children)
    }

    /// Whether `pe` itself is a member.
    pub(crate) fn has_member(&self, pe: &PathElement) -> bool {
        self.nodes.get(pe).is_some_and(|n| n.member)
    }

    /// Every path in the set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for (pe, node) in &other.nodes {
            let mine = out.nodes.entry(pe.clone()).or_default();
            mine.member |= node.member;
            mine.children = mine.children.union(&node.children);
        }
        out
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            if let Some(theirs) = other.nodes.get(pe) {
                let n = Node {
                    member: node.member && theirs.member,
                    children: node.children.intersection(&theirs.children),
                };
                if !n.is_empty() {
                    out.nodes.insert(pe.clone(), n);
                }
            }
        }
        out
    }

    /// The paths of `self` that are not in `other` (a member of `other` does not take away
    /// what is below it; see [`FieldSet::recursive_difference`]).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            let n = match other.nodes.get(pe) {
                Some(theirs) => Node {
                    member: node.member && !theirs.member,
                    children: node.children.difference(&theirs.children),
                },
                None => node.clone(),
            };
            if !n.is_empty() {
                out.nodes.insert(pe.clone(), n);
            }
        }
        out
    }

    /// The paths of `self` that neither are in `other` nor lie below a member of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            let n = match other.nodes.get(pe) {
                Some(theirs) if theirs.member => continue,
                Some(theirs) => Node {
                    member: node.member,
                    children: node.children.recursive_difference(&theirs.children),
                },
                None => node.clone(),
            };
            if !n.is_empty() {
                out.nodes.insert(pe.clone(), n);
            }
        }
        out
    }

    /// Every member, in upstream's iteration order: the members at a level first, then what is
    /// below each element in turn.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for (pe, node) in &self.nodes {
            if node.member {
                let mut p = prefix.clone();
                p.push(pe.clone());
                out.push(Path(p));
            }
        }
        for (pe, node) in &self.nodes {
            prefix.push(pe.clone());
            node.children.collect(prefix, out);
            prefix.pop();
        }
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = (&PathElement, bool, &FieldSet)> {
        self.nodes
            .iter()
            .filter(|(_, n)| !n.is_empty())
            .map(|(pe, n)| (pe, n.member, &n.children))
    }

    pub(crate) fn put_child(&mut self, pe: PathElement, member: bool, children: FieldSet) {
        let n = Node { member, children };
        if !n.is_empty() {
            self.nodes.insert(pe, n);
        }
    }

    /// The set as FieldsV1 JSON (`{"f:spec":{"f:replicas":{}}}`), elements in upstream's order.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for (pe, node) in &self.nodes {
            if node.is_empty() {
                continue;
            }
            let inner = if node.children.is_empty() {
                Map::new()
            } else {
                node.children.emit(node.member)
            };
            out.insert(pe.to_fields_v1_key(), Value::Object(inner));
        }
        out
    }

    /// Parses FieldsV1 JSON.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, DecodeError> {
        let Value::Object(map) = v else {
            return Err(DecodeError("FieldsV1 must be a JSON object".to_owned()));
        };
        let mut out = FieldSet::new();
        for (key, child) in map {
            if key == "." {
                // Only meaningful below an element; handled by the caller.
                continue;
            }
            let pe = PathElement::from_fields_v1_key(key)?;
            let Value::Object(inner) = child else {
                return Err(DecodeError(format!("expected an object at {key:?}")));
            };
            let member = inner.is_empty() || inner.contains_key(".");
            let children = FieldSet::from_fields_v1(child)?;
            out.nodes.insert(pe, Node { member, children });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.to_owned())
    }

    #[test]
    fn fields_v1_round_trips_and_marks_self_with_dot() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {
                "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}
            }, "f:finalizers": {"v:\"a\"": {}}, "f:args": {"i:0": {}}}
        });
        let set = FieldSet::from_fields_v1(&v).unwrap();
        assert!(set.has(&[f("metadata"), f("labels")]));
        assert!(!set.has(&[f("metadata")]));
        assert!(set.has(&[
            f("spec"),
            f("containers"),
            PathElement::Key(vec![("name".into(), json!("nginx"))]),
        ]));
        assert_eq!(set.to_fields_v1(), v);
    }

    #[test]
    fn keys_write_their_fields_sorted_and_compact() {
        let pe = PathElement::Key(vec![
            ("containerPort".into(), json!(80)),
            ("protocol".into(), json!("TCP")),
        ]);
        assert_eq!(
            pe.to_fields_v1_key(),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
        assert_eq!(pe.to_string(), r#"[containerPort=80,protocol="TCP"]"#);
        assert_eq!(
            PathElement::from_fields_v1_key(&pe.to_fields_v1_key()).unwrap(),
            pe
        );
    }

    #[test]
    fn elements_sort_fields_keys_values_indexes() {
        let mut v = [
            PathElement::Index(0),
            PathElement::Value(json!("a")),
            PathElement::Key(vec![("name".into(), json!("x"))]),
            f("z"),
            f("a"),
            PathElement::Value(json!(1)),
        ];
        v.sort();
        let keys: Vec<String> = v.iter().map(|p| p.to_fields_v1_key()).collect();
        assert_eq!(
            keys,
            ["f:a", "f:z", r#"k:{"name":"x"}"#, "v:1", r#"v:"a""#, "i:0"]
        );
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::new();
        a.insert(&[f("spec")]);
        a.insert(&[f("spec"), f("replicas")]);
        a.insert(&[f("spec"), f("paused")]);
        let mut b = FieldSet::new();
        b.insert(&[f("spec")]);
        b.insert(&[f("spec"), f("replicas")]);

        let d = a.difference(&b);
        assert_eq!(d.paths(), vec![Path::fields(&["spec", "paused"])]);
        assert!(a.recursive_difference(&b).is_empty());
        assert_eq!(a.intersection(&b), b);
        assert_eq!(d.union(&b), a);
        assert_eq!(
            a.paths()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [".spec", ".spec.paused", ".spec.replicas"]
        );
    }

    #[test]
    fn bad_fields_v1_is_an_error() {
        for bad in [
            json!([]),
            json!({"x:y": {}}),
            json!({"k:[1]": {}}),
            json!({"f:a": 1}),
        ] {
            assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
        }
    }
}
