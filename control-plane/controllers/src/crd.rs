//! The CustomResourceDefinition status core: upstream's naming and establishing controllers.
//!
//! A CRD's names are accepted when no other CRD of the same group already serves them (plural,
//! singular and short names among resources, kind and list kind among kinds), in upstream's
//! words (`"widgets" is already in use`, reasons `PluralConflict`, `KindConflict`, …). Once
//! its names are accepted it is `Established` and the API server serves it. Upstream sets
//! `Established` in a second controller after an informer round trip; here both conditions are
//! computed in one sync, which clients cannot tell apart (they wait for `Established`).
//!
//! [`cleanup_conditions`] words the `Terminating` condition while the CRD's objects are deleted.

use serde_json::{Value, json};

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn fresh(requested: &str, accepted: &str, used: &[String]) -> Result<(), String> {
    if requested == accepted || !used.iter().any(|u| u == requested) {
        Ok(())
    } else {
        Err(format!("{requested:?} is already in use"))
    }
}

/// The status `crd` should have, given the other CRDs of the cluster, or `None` when it has it
/// already. `now` stamps conditions that change.
pub fn status(crd: &Value, others: &[Value], now: &str) -> Option<Value> {
    let group = str_at(crd, "/spec/group");
    let name = str_at(crd, "/metadata/name");
    let mut resources = Vec::new();
    let mut kinds = Vec::new();
    for other in others {
        if str_at(other, "/spec/group") != group || str_at(other, "/metadata/name") == name {
            continue;
        }
        let accepted = other
            .pointer("/status/acceptedNames")
            .cloned()
            .unwrap_or(json!({}));
        resources.push(str_at(&accepted, "/plural").to_owned());
        resources.push(str_at(&accepted, "/singular").to_owned());
        resources.extend(strings_at(&accepted, "/shortNames"));
        kinds.push(str_at(&accepted, "/kind").to_owned());
        kinds.push(str_at(&accepted, "/listKind").to_owned());
    }
    resources.retain(|r| !r.is_empty());
    kinds.retain(|k| !k.is_empty());

    let requested = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let accepted = crd
        .pointer("/status/acceptedNames")
        .cloned()
        .unwrap_or(json!({}));
    let mut names = accepted.clone();
    if !names.is_object() {
        names = json!({});
    }
    let mut conflict: Option<(&str, String)> = None;
    for (field, reason, used) in [
        ("plural", "PluralConflict", &resources),
        ("singular", "SingularConflict", &resources),
    ] {
        let want = str_at(&requested, &format!("/{field}"));
        match fresh(want, str_at(&accepted, &format!("/{field}")), used) {
            Ok(()) => names[field] = json!(want),
            Err(e) => conflict = Some((reason, e)),
        }
    }
    let want_short = strings_at(&requested, "/shortNames");
    let have_short = strings_at(&accepted, "/shortNames");
    if want_short != have_short {
        let errs: Vec<String> = want_short
            .iter()
            .filter(|s| !have_short.contains(s))
            .filter_map(|s| fresh(s, "", &resources).err())
            .collect();
        if errs.is_empty() {
            names["shortNames"] = json!(want_short);
        } else if errs.len() == 1 {
            conflict = Some(("ShortNamesConflict", errs[0].clone()));
        } else {
            conflict = Some(("ShortNamesConflict", format!("[{}]", errs.join(", "))));
        }
    }
    for (field, reason) in [("kind", "KindConflict"), ("listKind", "ListKindConflict")] {
        let want = str_at(&requested, &format!("/{field}"));
        match fresh(want, str_at(&accepted, &format!("/{field}")), &kinds) {
            Ok(()) => names[field] = json!(want),
            Err(e) => conflict = Some((reason, e)),
        }
    }
    if let Some(c) = requested.get("categories") {
        names["categories"] = c.clone();
    }
    if names
        .get("shortNames")
        .is_some_and(|s| s.as_array().is_some_and(Vec::is_empty))
    {
        names.as_object_mut().expect("object").remove("shortNames");
    }

    let (accepted_cond, established_cond) = match &conflict {
        None => (
            ("True", "NoConflicts", "no conflicts found".to_owned()),
            (
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted".to_owned(),
            ),
        ),
        Some((reason, message)) => {
            let established =
                if condition(crd, "Established").is_some_and(|c| str_at(c, "/status") == "True") {
                    (
                        "True",
                        "InitialNamesAccepted",
                        "the initial names have been accepted".to_owned(),
                    )
                } else {
                    (
                        "False",
                        "NotAccepted",
                        "not all names are accepted".to_owned(),
                    )
                };
            (("False", *reason, message.clone()), established)
        }
    };
    let mut conditions: Vec<Value> = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    set_condition(&mut conditions, "NamesAccepted", accepted_cond, now);
    set_condition(&mut conditions, "Established", established_cond, now);

    let mut status = crd.get("status").cloned().unwrap_or(json!({}));
    if !status.is_object() {
        status = json!({});
    }
    status["acceptedNames"] = names;
    status["conditions"] = json!(conditions);
    if status.get("storedVersions").is_none() {
        status["storedVersions"] = json!([]);
    }
    (crd.get("status") != Some(&status)).then_some(status)
}

fn condition<'a>(crd: &'a Value, type_: &str) -> Option<&'a Value> {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| str_at(c, "/type") == type_)
}

/// Sets condition `type_` to `(status, reason, message)`, keeping its transition time when the
/// status does not change.
fn set_condition(
    conditions: &mut Vec<Value>,
    type_: &str,
    (status, reason, message): (&str, &str, String),
    now: &str,
) {
    let existing = conditions.iter_mut().find(|c| str_at(c, "/type") == type_);
    match existing {
        Some(c) => {
            if str_at(c, "/status") != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => conditions.push(json!({
            "type": type_, "status": status, "lastTransitionTime": now,
            "reason": reason, "message": message,
        })),
    }
}

/// The conditions of a CRD whose objects are being deleted: `Terminating` says how far it got
/// (`remaining` objects left, or the `failure` that stopped it).
pub fn cleanup_conditions(
    crd: &Value,
    remaining: usize,
    failure: Option<&str>,
    now: &str,
) -> Vec<Value> {
    let mut conditions: Vec<Value> = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (reason, message) = match failure {
        Some(f) => (
            "InstanceDeletionFailed",
            format!("could not delete instances: {f}"),
        ),
        None if remaining > 0 => (
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress".to_owned(),
        ),
        None => (
            "InstanceDeletionCompleted",
            "removed all instances".to_owned(),
        ),
    };
    let status = if remaining == 0 && failure.is_none() {
        "False"
    } else {
        "True"
    };
    set_condition(
        &mut conditions,
        "Terminating",
        (status, reason, message),
        now,
    );
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str, plural: &str, kind: &str, short: &[&str]) -> Value {
        let group = name.split_once('.').unwrap().1;
        json!({
            "metadata": {"name": name},
            "spec": {"group": group, "names": {"plural": plural, "singular": kind.to_lowercase(),
                "kind": kind, "listKind": format!("{kind}List"), "shortNames": short}},
        })
    }

    #[test]
    fn names_are_accepted_and_the_crd_established() {
        let c = crd("widgets.example.com", "widgets", "Widget", &["wd"]);
        let s = status(&c, &[], "t0").unwrap();
        assert_eq!(s["acceptedNames"]["plural"], "widgets");
        assert_eq!(s["acceptedNames"]["shortNames"], json!(["wd"]));
        let cond = |t: &str| {
            s["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == t)
                .unwrap()
                .clone()
        };
        assert_eq!(cond("NamesAccepted")["reason"], "NoConflicts");
        assert_eq!(cond("Established")["status"], "True");
        assert_eq!(cond("Established")["reason"], "InitialNamesAccepted");
        // The second sync writes nothing.
        let mut synced = c.clone();
        synced["status"] = s;
        assert_eq!(status(&synced, &[], "t1"), None);
    }

    #[test]
    fn a_name_another_crd_of_the_group_serves_is_refused() {
        let mut first = crd("widgets.example.com", "widgets", "Widget", &["wd"]);
        first["status"] = status(&first, &[], "t0").unwrap();
        let second = crd("gadgets.example.com", "gadgets", "Widget", &["wd"]);
        let s = status(&second, std::slice::from_ref(&first), "t0").unwrap();
        let names_accepted = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "NamesAccepted")
            .unwrap();
        assert_eq!(names_accepted["status"], "False");
        // As upstream, the last conflict checked is the one reported (kind, then list kind).
        assert_eq!(names_accepted["reason"], "ListKindConflict");
        assert_eq!(
            names_accepted["message"],
            "\"WidgetList\" is already in use"
        );
        let established = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Established")
            .unwrap();
        assert_eq!(established["status"], "False");
        // Another group may reuse the names.
        let third = crd("widgets.other.io", "widgets", "Widget", &["wd"]);
        let s = status(&third, &[first], "t0").unwrap();
        assert_eq!(s["conditions"][0]["status"], "True");
    }

    #[test]
    fn cleanup_reports_progress_in_upstream_words() {
        let c = crd("widgets.example.com", "widgets", "Widget", &[]);
        let cs = cleanup_conditions(&c, 3, None, "t");
        assert_eq!(cs[0]["reason"], "InstanceDeletionInProgress");
        assert_eq!(cs[0]["status"], "True");
        let cs = cleanup_conditions(&c, 0, None, "t");
        assert_eq!(cs[0]["status"], "False");
    }
}
