//! Dropping unknown fields, as `pkg/apiserver/schema/pruning/algorithm.go`.

use serde_json::Value;

use crate::{AdditionalProperties, Structural};

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

struct Pruner {
    path: String,
    pruned: Vec<String>,
}

impl Pruner {
    fn record(&mut self, k: &str) {
        if self.path.is_empty() {
            self.pruned.push(k.to_owned());
        } else {
            self.pruned.push(format!("{}.{k}", self.path));
        }
    }

    fn push_key(&mut self, k: &str) -> usize {
        let len = self.path.len();
        if len > 0 {
            self.path.push('.');
        }
        self.path.push_str(k);
        len
    }

    fn push_index(&mut self, i: usize) -> usize {
        use std::fmt::Write;
        let len = self.path.len();
        let _ = write!(self.path, "[{i}]");
        len
    }

    fn prune(&mut self, x: &mut Value, s: Option<&Structural>, embedded: bool) {
        if let Some(s) = s
            && s.preserve_unknown_fields()
        {
            self.skip(x, s, embedded);
            return;
        }
        match x {
            Value::Object(map) => {
                let Some(s) = s else {
                    let keys: Vec<String> = map.keys().cloned().collect();
                    for k in keys {
                        self.record(&k);
                    }
                    map.clear();
                    return;
                };
                let embedded = embedded || s.embedded_resource;
                let mut drop = Vec::new();
                for (k, v) in map.iter_mut() {
                    if embedded {
                        match k.as_str() {
                            "apiVersion" | "kind" if v.is_string() => continue,
                            "metadata" if v.is_object() => continue,
                            _ => {}
                        }
                    }
                    if let Some(p) = s.properties.get(k) {
                        let len = self.push_key(k);
                        self.prune(v, Some(p), false);
                        self.path.truncate(len);
                    } else if let Some(ap) = &s.additional_properties {
                        let len = self.push_key(k);
                        let sub = match ap {
                            AdditionalProperties::Schema(a) => Some(&**a),
                            AdditionalProperties::Bool(_) => None,
                        };
                        self.prune(v, sub, false);
                        self.path.truncate(len);
                    } else {
                        self.record(k);
                        drop.push(k.clone());
                    }
                }
                for k in drop {
                    map.remove(&k);
                }
            }
            Value::Array(items) => {
                let is = s.and_then(|s| s.items.as_deref());
                for (i, v) in items.iter_mut().enumerate() {
                    let len = self.push_index(i);
                    self.prune(v, is, false);
                    self.path.truncate(len);
                }
            }
            _ => {}
        }
    }

    /// Below `x-kubernetes-preserve-unknown-fields`, only specified fields are pruned into.
    fn skip(&mut self, x: &mut Value, s: &Structural, embedded: bool) {
        match x {
            Value::Object(map) => {
                let embedded = embedded || s.embedded_resource;
                for (k, v) in map.iter_mut() {
                    if embedded && META_FIELDS.contains(&k.as_str()) {
                        continue;
                    }
                    if let Some(p) = s.properties.get(k) {
                        let len = self.push_key(k);
                        self.prune(v, Some(p), false);
                        self.path.truncate(len);
                    } else if let Some(ap) = &s.additional_properties {
                        let len = self.push_key(k);
                        let sub = match ap {
                            AdditionalProperties::Schema(a) => Some(&**a),
                            AdditionalProperties::Bool(_) => None,
                        };
                        self.prune(v, sub, false);
                        self.path.truncate(len);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(is) = s.items.as_deref() {
                    for (i, v) in items.iter_mut().enumerate() {
                        let len = self.push_index(i);
                        self.skip(v, is, false);
                        self.path.truncate(len);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Prunes `x` against `s`; `resource_root` keeps `apiVersion`, `kind` and `metadata` at the top.
/// Returns the sorted paths of the dropped fields.
pub(crate) fn prune(x: &mut Value, s: &Structural, resource_root: bool) -> Vec<String> {
    let mut p = Pruner {
        path: String::new(),
        pruned: Vec::new(),
    };
    p.prune(x, Some(s), resource_root);
    p.pruned.sort();
    p.pruned
}

/// Whether pruning would change `x` (without changing it).
pub(crate) fn needs_pruning(x: &Value, s: &Structural, resource_root: bool) -> bool {
    let mut copy = x.clone();
    !prune(&mut copy, s, resource_root).is_empty()
}
