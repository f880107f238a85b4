//! Label and field selectors, parsed and matched as upstream does.
//!
//! Label selectors follow `k8s.io/apimachinery/pkg/labels`: `a=b`, `a==b`, `a!=b`,
//! `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, `a>1`, `a<1`, joined by commas. Field selectors follow
//! `k8s.io/apimachinery/pkg/fields`: `f=v`, `f==v`, `f!=v`, on the fields each kind supports.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::GroupKind;

/// Why a selector could not be parsed; the API server answers 400 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// The key has one of the values.
    In(String, Vec<String>),
    /// The key is absent or has none of the values.
    NotIn(String, Vec<String>),
    /// The key is present.
    Exists(String),
    /// The key is absent.
    DoesNotExist(String),
    /// The key's value, as an integer, is greater.
    Gt(String, i64),
    /// The key's value, as an integer, is smaller.
    Lt(String, i64),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::Gt(k, n) => labels
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            Requirement::Lt(k, n) => labels
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        }
    }
}

/// A parsed label selector: every requirement must hold. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    /// Parses the `labelSelector` query parameter syntax.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let (req, after) = parse_requirement(rest)?;
            reqs.push(req);
            rest = after.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
                if rest.is_empty() {
                    return Err(SelectorError(
                        "found '', expected: identifier after ','".into(),
                    ));
                }
            } else if !rest.is_empty() {
                return Err(SelectorError(format!(
                    "found '{}', expected: ',' or 'end of string'",
                    first_token(rest)
                )));
            }
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.is_empty() || self.matches(&labels_of(obj))
    }

    /// Converts a `metav1.LabelSelector` (matchLabels + matchExpressions), as in workload specs.
    pub fn from_api(selector: &Value) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                reqs.push(Requirement::In(
                    k.clone(),
                    vec![v.as_str().unwrap_or_default().to_owned()],
                ));
            }
        }
        if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                reqs.push(
                    match e
                        .get("operator")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                    {
                        "In" => Requirement::In(key, values),
                        "NotIn" => Requirement::NotIn(key, values),
                        "Exists" => Requirement::Exists(key),
                        "DoesNotExist" => Requirement::DoesNotExist(key),
                        other => {
                            return Err(SelectorError(format!(
                                "{other:?} is not a valid label selector operator"
                            )));
                        }
                    },
                );
            }
        }
        Ok(LabelSelector(reqs))
    }
}

/// An object's labels.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn first_token(s: &str) -> &str {
    let end = s
        .find(|c: char| c.is_whitespace() || c == ',')
        .unwrap_or(s.len());
    if end == 0 {
        &s[..s.chars().next().map_or(0, char::len_utf8)]
    } else {
        &s[..end]
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn take_while(s: &str, f: impl Fn(char) -> bool) -> (&str, &str) {
    let end = s.find(|c: char| !f(c)).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

fn parse_requirement(s: &str) -> Result<(Requirement, &str), SelectorError> {
    if let Some(rest) = s.strip_prefix('!') {
        let (key, after) = take_while(rest.trim_start(), is_key_char);
        check_key(key)?;
        return Ok((Requirement::DoesNotExist(key.to_owned()), after));
    }
    let (key, after) = take_while(s, is_key_char);
    check_key(key)?;
    let after = after.trim_start();
    if after.is_empty() || after.starts_with(',') {
        return Ok((Requirement::Exists(key.to_owned()), after));
    }
    let (op, rest) = if let Some(r) = after.strip_prefix("==") {
        ("=", r)
    } else if let Some(r) = after.strip_prefix("!=") {
        ("!=", r)
    } else if let Some(r) = after.strip_prefix('=') {
        ("=", r)
    } else if let Some(r) = after.strip_prefix('>') {
        (">", r)
    } else if let Some(r) = after.strip_prefix('<') {
        ("<", r)
    } else if let Some(r) = after
        .strip_prefix("notin")
        .filter(|r| r.starts_with([' ', '(']))
    {
        ("notin", r)
    } else if let Some(r) = after
        .strip_prefix("in")
        .filter(|r| r.starts_with([' ', '(']))
    {
        ("in", r)
    } else {
        return Err(SelectorError(format!(
            "found '{}', expected: in, notin, =, ==, !=, gt, lt",
            first_token(after)
        )));
    };
    let rest = rest.trim_start();
    match op {
        "in" | "notin" => {
            let Some(inner) = rest.strip_prefix('(') else {
                return Err(SelectorError(format!(
                    "found '{}', expected: '('",
                    first_token(rest)
                )));
            };
            let Some(close) = inner.find(')') else {
                return Err(SelectorError("found 'end of string', expected: ')'".into()));
            };
            let values: Vec<String> = inner[..close]
                .split(',')
                .map(|v| v.trim().to_owned())
                .collect();
            for v in &values {
                check_value(v)?;
            }
            let req = if op == "in" {
                Requirement::In(key.to_owned(), values)
            } else {
                Requirement::NotIn(key.to_owned(), values)
            };
            Ok((req, &inner[close + 1..]))
        }
        ">" | "<" => {
            let (value, after) = take_while(rest, |c| c.is_ascii_digit() || c == '-');
            let n: i64 = value.parse().map_err(|_| {
                SelectorError(format!(
                    "for 'Gt', 'Lt' operators, the value must be an integer, got {value:?}"
                ))
            })?;
            let req = if op == ">" {
                Requirement::Gt(key.to_owned(), n)
            } else {
                Requirement::Lt(key.to_owned(), n)
            };
            Ok((req, after))
        }
        _ => {
            let (value, after) = take_while(rest, |c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
            });
            check_value(value)?;
            let req = if op == "=" {
                Requirement::In(key.to_owned(), vec![value.to_owned()])
            } else {
                Requirement::NotIn(key.to_owned(), vec![value.to_owned()])
            };
            Ok((req, after))
        }
    }
}

fn check_key(key: &str) -> Result<(), SelectorError> {
    if key.is_empty() {
        return Err(SelectorError("found '', expected: identifier".into()));
    }
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "key: Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )))
    }
}

fn check_value(v: &str) -> Result<(), SelectorError> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "values[0]: Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        )))
    }
}

/// A parsed field selector: each term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `f=v,g!=w` and checks each field is one `kind` supports.
    pub fn parse(s: &str, kind: GroupKind) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if !supported_fields(kind).contains(&field) {
                return Err(SelectorError(format!("field label not supported: {field}")));
            }
            terms.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether the selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `obj` satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0
            .iter()
            .all(|(field, equal, value)| (field_value(obj, field) == *value) == *equal)
    }

    /// Whether the object `name` in `namespace` (`""`: cluster-scoped) satisfies every term,
    /// if the selector reads nothing else: the answer without the object itself, as a watch
    /// for one well-known name (`metadata.name=kube-root-ca.crt`) can have it from the key.
    pub fn matches_identity(&self, namespace: &str, name: &str) -> Option<bool> {
        let mut all = true;
        for (field, equal, value) in &self.0 {
            let actual = match field.as_str() {
                "metadata.name" => name,
                "metadata.namespace" => namespace,
                _ => return None,
            };
            all &= (actual == value) == *equal;
        }
        Some(all)
    }
}

/// The fields a kind can be selected on (upstream's field label conversion functions).
pub fn supported_fields(kind: GroupKind) -> &'static [&'static str] {
    match (kind.group, kind.kind) {
        ("", "Pod") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "Event") => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "Event") => &[
            "metadata.name",
            "metadata.namespace",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("", "Secret") => &["metadata.name", "metadata.namespace", "type"],
        ("", "Node") => &["metadata.name", "spec.unschedulable"],
        ("", "Namespace") => &["metadata.name", "status.phase"],
        ("", "ReplicationController") | ("apps", "ReplicaSet") => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        ("batch", "Job") => &["metadata.name", "metadata.namespace", "status.successful"],
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            &["metadata.name", "spec.signerName"]
        }
        _ => &["metadata.name", "metadata.namespace"],
    }
}

/// The value a field selector compares, rendered as upstream does (booleans and numbers as text).
pub fn field_value(obj: &Value, field: &str) -> String {
    let value = match field {
        "source" => obj.pointer("/source/component"),
        "status.podIPs" => obj.pointer("/status/podIPs/0/ip"),
        _ => obj.pointer(&format!("/{}", field.replace('.', "/"))),
    };
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        // Upstream converts absent booleans and numbers to their zero value.
        None if field == "spec.unschedulable" || field == "spec.hostNetwork" => "false".into(),
        None if field == "status.replicas" || field == "status.successful" => "0".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selectors_parse_and_match() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, api)", true),
            ("app notin (web,api)", false),
            ("app,tier", true),
            ("!missing", true),
            ("!app", false),
            ("missing!=x", true),
            ("app=web,tier=back", false),
            ("n>4", true),
            ("n<4", false),
            ("example.com/key", false),
        ] {
            let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(&l), want, "{sel}");
        }
        for bad in ["app=", "app in web", "app ~ web", "app=web,", "=web", "a b"] {
            if bad == "app=" {
                assert!(
                    LabelSelector::parse(bad).is_ok(),
                    "empty values are allowed"
                );
                continue;
            }
            assert!(LabelSelector::parse(bad).is_err(), "{bad} must fail");
        }
    }

    #[test]
    fn api_selectors_convert() {
        let sel = LabelSelector::from_api(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]
        }))
        .unwrap();
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!sel.matches(&labels(&[("app", "web")])));
    }

    #[test]
    fn field_selectors_check_supported_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let s = FieldSelector::parse(
            "spec.nodeName=n1,status.phase!=Failed",
            GroupKind::core("Pod"),
        )
        .unwrap();
        assert!(s.matches(&pod));
        let s = FieldSelector::parse("spec.nodeName=", GroupKind::core("Pod")).unwrap();
        assert!(!s.matches(&pod));
        let err = FieldSelector::parse("spec.bogus=1", GroupKind::core("Pod")).unwrap_err();
        assert_eq!(err.to_string(), "field label not supported: spec.bogus");
        let node = json!({"metadata": {"name": "n"}});
        assert!(
            FieldSelector::parse("spec.unschedulable=false", GroupKind::core("Node"))
                .unwrap()
                .matches(&node)
        );
    }

    #[test]
    fn identity_selectors_agree_with_matching_the_object() {
        let cm = |ns: &str, name: &str| json!({"metadata": {"name": name, "namespace": ns}});
        for sel in [
            "metadata.name=a",
            "metadata.name!=a",
            "metadata.namespace=d,metadata.name=a",
            "metadata.namespace!=d",
            "",
        ] {
            let s = FieldSelector::parse(sel, GroupKind::core("ConfigMap")).unwrap();
            for (ns, name) in [("d", "a"), ("d", "b"), ("e", "a")] {
                assert_eq!(
                    s.matches_identity(ns, name),
                    Some(s.matches(&cm(ns, name))),
                    "{sel} on {ns}/{name}"
                );
            }
        }
        let s = FieldSelector::parse(
            "metadata.name=a,status.phase=Running",
            GroupKind::core("Pod"),
        )
        .unwrap();
        assert_eq!(s.matches_identity("d", "a"), None, "needs the object");
    }
}
