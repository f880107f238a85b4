//! Applying `default`s, as `pkg/apiserver/schema/defaulting/algorithm.go`, and dropping nulls
//! nobody may hold, as `prunenulls.go`.

use serde_json::Value;

use crate::Structural;

fn non_nullable_null(v: &Value, s: Option<&Structural>) -> bool {
    v.is_null() && s.is_some_and(|s| !s.nullable)
}

pub(crate) fn default(x: &mut Value, s: &Structural) {
    match x {
        Value::Object(map) => {
            for (k, prop) in &s.properties {
                let Some(d) = &prop.default else { continue };
                match map.get_mut(k) {
                    None => {
                        map.insert(k.clone(), d.clone());
                    }
                    Some(v) if non_nullable_null(v, Some(prop)) => *v = d.clone(),
                    Some(_) => {}
                }
            }
            for (k, v) in map.iter_mut() {
                if let Some(prop) = s.properties.get(k) {
                    default(v, prop);
                } else if let Some(ap) = s.additional_properties_schema() {
                    if let Some(d) = &ap.default
                        && non_nullable_null(v, Some(ap))
                    {
                        *v = d.clone();
                    }
                    default(v, ap);
                }
            }
        }
        Value::Array(items) => {
            let Some(is) = s.items.as_deref() else { return };
            for v in items.iter_mut() {
                if let Some(d) = &is.default
                    && non_nullable_null(v, Some(is))
                {
                    *v = d.clone();
                }
                default(v, is);
            }
        }
        _ => {}
    }
}

pub(crate) fn prune_nulls(x: &mut Value, s: &Structural) {
    match x {
        Value::Object(map) => {
            map.retain(|k, v| {
                let sub = s
                    .properties
                    .get(k)
                    .or_else(|| s.additional_properties_schema());
                !(v.is_null() && sub.is_some_and(|p| !p.nullable && p.default.is_none()))
            });
            for (k, v) in map.iter_mut() {
                let sub = s
                    .properties
                    .get(k)
                    .or_else(|| s.additional_properties_schema());
                if let Some(sub) = sub {
                    prune_nulls(v, sub);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.items.as_deref() {
                for v in items.iter_mut() {
                    prune_nulls(v, is);
                }
            }
        }
        _ => {}
    }
}
