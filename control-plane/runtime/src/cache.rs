//! An indexed, shared cache of one resource's objects in one logical cluster.
//!
//! The informer writes it; controllers read it. Reads hand out `Arc`s, so a reader never
//! copies an object and never blocks the informer for longer than a map lookup.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::watch;

use crate::resource;

/// An object's identity in a cache: namespace ("" when cluster-scoped) and name.
pub type ObjectKey = (String, String);

/// A function from an object to the index values it is filed under.
pub type IndexFn = Box<dyn Fn(&Value) -> Vec<String> + Send + Sync>;

/// The index of objects by namespace; always present.
pub const BY_NAMESPACE: &str = "namespace";
/// The index of objects by the uid of their controller owner reference; always present.
pub const BY_CONTROLLER: &str = "controller";
/// The index of pods by `spec.nodeName` (only filled for objects that have one).
pub const BY_NODE_NAME: &str = "nodeName";

/// The standard index of objects by `spec.nodeName`.
pub fn node_name_index() -> (&'static str, IndexFn) {
    (
        BY_NODE_NAME,
        Box::new(|obj| {
            let node = resource::str_at(obj, "/spec/nodeName");
            if node.is_empty() {
                vec![]
            } else {
                vec![node.to_string()]
            }
        }),
    )
}

/// The cache.
pub struct Cache {
    inner: RwLock<Inner>,
    indexers: Vec<(&'static str, IndexFn)>,
    synced: watch::Sender<bool>,
    compact: bool,
}

/// One cached object: shared as parsed, or (in a compact cache) kept as its JSON text and
/// parsed when read. A parsed object costs a few hundred bytes of map nodes per field level;
/// its text costs what it says.
#[derive(Clone)]
enum Entry {
    Parsed(Arc<Value>),
    Text(Arc<str>),
}

impl Entry {
    fn value(&self) -> Arc<Value> {
        match self {
            Entry::Parsed(v) => Arc::clone(v),
            Entry::Text(t) => Arc::new(serde_json::from_str(t).unwrap_or(Value::Null)),
        }
    }
}

#[derive(Default)]
struct Inner {
    objects: HashMap<ObjectKey, Entry>,
    indexes: HashMap<&'static str, HashMap<String, HashSet<ObjectKey>>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.len())
            .field("synced", &self.is_synced())
            .finish()
    }
}

impl Default for Cache {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Cache {
    /// An empty cache with the namespace and controller indexes plus `extra`.
    pub fn new(extra: Vec<(&'static str, IndexFn)>) -> Self {
        let mut indexers: Vec<(&'static str, IndexFn)> = vec![
            (
                BY_NAMESPACE,
                Box::new(|o| vec![resource::namespace(o).to_string()]),
            ),
            (
                BY_CONTROLLER,
                Box::new(|o| {
                    resource::controller_uid(o)
                        .map(str::to_string)
                        .into_iter()
                        .collect()
                }),
            ),
        ];
        indexers.extend(extra);
        Cache {
            inner: RwLock::new(Inner::default()),
            indexers,
            synced: watch::channel(false).0,
            compact: false,
        }
    }

    /// An empty cache with no index at all (lookups by key only) that keeps objects as JSON
    /// text: for loops that hold every object of a kind and read few of them, such as the
    /// garbage collector.
    pub fn compact() -> Self {
        Cache {
            inner: RwLock::new(Inner::default()),
            indexers: Vec::new(),
            synced: watch::channel(false).0,
            compact: true,
        }
    }

    /// The object `namespace/name` ("" namespace for cluster-scoped objects).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.inner
            .read()
            .objects
            .get(&(namespace.to_string(), name.to_string()))
            .map(Entry::value)
    }

    /// Every object.
    pub fn list(&self) -> Vec<Arc<Value>> {
        self.inner
            .read()
            .objects
            .values()
            .map(Entry::value)
            .collect()
    }

    /// The objects filed under `value` in index `index`.
    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<Value>> {
        let inner = self.inner.read();
        let Some(keys) = inner.indexes.get(index).and_then(|i| i.get(value)) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| inner.objects.get(k).map(Entry::value))
            .collect()
    }

    /// The objects in `namespace`.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<Value>> {
        self.by_index(BY_NAMESPACE, namespace)
    }

    /// The objects whose controller has uid `uid`.
    pub fn controlled_by(&self, uid: &str) -> Vec<Arc<Value>> {
        self.by_index(BY_CONTROLLER, uid)
    }

    /// How many objects the cache holds.
    pub fn len(&self) -> usize {
        self.inner.read().objects.len()
    }

    /// Whether the cache holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first full list has been loaded.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first full list has been loaded.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Stores `obj`, returning the copy it replaces.
    pub fn apply(&self, obj: Arc<Value>) -> Option<Arc<Value>> {
        let key = key_of(&obj);
        let entry = if self.compact {
            Entry::Text(obj.to_string().into())
        } else {
            Entry::Parsed(Arc::clone(&obj))
        };
        let mut inner = self.inner.write();
        let old = inner.objects.insert(key.clone(), entry).map(|e| e.value());
        if let Some(old) = &old {
            self.unindex(&mut inner, &key, old);
        }
        self.index(&mut inner, &key, &obj);
        old
    }

    /// Removes the object with `obj`'s key, returning the removed copy.
    pub fn delete(&self, obj: &Value) -> Option<Arc<Value>> {
        let key = key_of(obj);
        let mut inner = self.inner.write();
        let old = inner.objects.remove(&key).map(|e| e.value());
        if let Some(old) = &old {
            self.unindex(&mut inner, &key, old);
        }
        old
    }

    /// Replaces the whole content with a fresh list and marks the cache synced. Returns the
    /// objects that were removed, for the informer to report as deletions.
    pub fn replace(&self, objects: Vec<Arc<Value>>) -> Vec<Arc<Value>> {
        let fresh: HashSet<ObjectKey> = objects.iter().map(|o| key_of(o)).collect();
        let removed: Vec<Arc<Value>> = {
            let inner = self.inner.read();
            inner
                .objects
                .iter()
                .filter(|(k, _)| !fresh.contains(*k))
                .map(|(_, v)| v.value())
                .collect()
        };
        for gone in &removed {
            self.delete(gone);
        }
        for obj in objects {
            self.apply(obj);
        }
        self.synced.send_replace(true);
        removed
    }

    fn index(&self, inner: &mut Inner, key: &ObjectKey, obj: &Value) {
        for (name, f) in &self.indexers {
            for value in f(obj) {
                inner
                    .indexes
                    .entry(name)
                    .or_default()
                    .entry(value)
                    .or_default()
                    .insert(key.clone());
            }
        }
    }

    fn unindex(&self, inner: &mut Inner, key: &ObjectKey, obj: &Value) {
        for (name, f) in &self.indexers {
            let Some(index) = inner.indexes.get_mut(name) else {
                continue;
            };
            for value in f(obj) {
                if let Some(set) = index.get_mut(&value) {
                    set.remove(key);
                    if set.is_empty() {
                        index.remove(&value);
                    }
                }
            }
        }
    }
}

/// The cache key of an object.
pub fn key_of(obj: &Value) -> ObjectKey {
    (
        resource::namespace(obj).to_string(),
        resource::name(obj).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, owner: Option<&str>, node: &str) -> Arc<Value> {
        let mut p =
            json!({"metadata": {"namespace": ns, "name": name}, "spec": {"nodeName": node}});
        if let Some(uid) = owner {
            p["metadata"]["ownerReferences"] = json!([{"uid": uid, "controller": true}]);
        }
        Arc::new(p)
    }

    #[test]
    fn indexes_follow_updates_and_deletes() {
        let cache = Cache::new(vec![node_name_index()]);
        cache.apply(pod("a", "p1", Some("rs1"), "n1"));
        cache.apply(pod("a", "p2", Some("rs1"), ""));
        cache.apply(pod("b", "p1", None, "n1"));
        assert_eq!(cache.in_namespace("a").len(), 2);
        assert_eq!(cache.controlled_by("rs1").len(), 2);
        assert_eq!(cache.by_index(BY_NODE_NAME, "n1").len(), 2);

        // Re-owned and moved: the old index entries go away.
        cache.apply(pod("a", "p1", Some("rs2"), "n2"));
        assert_eq!(cache.controlled_by("rs1").len(), 1);
        assert_eq!(cache.controlled_by("rs2").len(), 1);
        assert_eq!(cache.by_index(BY_NODE_NAME, "n1").len(), 1);

        cache.delete(&pod("a", "p2", None, ""));
        assert!(cache.controlled_by("rs1").is_empty());
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_compact_cache_gives_back_what_it_was_given() {
        let cache = Cache::compact();
        let p = pod("a", "p1", Some("rs1"), "n1");
        assert!(cache.apply(Arc::clone(&p)).is_none());
        assert_eq!(cache.get("a", "p1").as_deref(), Some(&*p));
        assert_eq!(
            cache.apply(pod("a", "p1", None, "n2")).as_deref(),
            Some(&*p)
        );
        assert_eq!(cache.list().len(), 1);
        assert!(cache.delete(&p).is_some());
        assert!(cache.is_empty());
    }

    #[test]
    fn replace_reports_what_vanished_and_marks_synced() {
        let cache = Cache::default();
        assert!(!cache.is_synced());
        cache.apply(pod("a", "old", None, ""));
        let removed = cache.replace(vec![pod("a", "new", None, "")]);
        assert_eq!(removed.len(), 1);
        assert_eq!(resource::name(&removed[0]), "old");
        assert!(cache.get("a", "new").is_some());
        assert!(cache.is_synced());
    }
}
