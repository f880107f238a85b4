//! Turning a request path and method into what is asked of which logical cluster.
//!
//! Mirrors upstream's `RequestInfoFactory`: `/api/v1/namespaces/ns/pods/name/status` becomes the
//! `status` subresource of pod `name` in namespace `ns`, `GET` without a name is a list (a watch
//! with `?watch=true` or the legacy `/watch/` prefix). Before that, the logical cluster is taken off
//! the front: `/clusters/<id>/...` addresses tenant cluster `<id>`, everything else the root cluster.
//! The cluster id is checked strictly here, because every store key the request touches starts
//! with it.

use axum::http::Method;

/// The store-key id of the root cluster. Tenant ids cannot contain `_`, so they never collide.
pub const ROOT_CLUSTER: &str = "_root";

/// Longest tenant cluster id: a namespace (63), `:` and a Cluster name (40).
const MAX_CLUSTER_ID: usize = 104;

/// The logical cluster a request addresses and the path within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed<'a> {
    /// Store-key id of the cluster ([`ROOT_CLUSTER`] for the root).
    pub cluster: String,
    /// The path below the cluster prefix, starting with `/`.
    pub path: &'a str,
    /// The prefix clients used to reach the cluster (`""` or `/clusters/<id>`).
    pub prefix: String,
}

/// Whether `id` is a well-formed tenant cluster id: lower-case alphanumerics, `-` and `:` (for
/// `namespace:name`), starting and ending alphanumeric.
pub fn valid_cluster_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLUSTER_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b':')
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id.as_bytes()[id.len() - 1].is_ascii_alphanumeric()
}

/// Splits the cluster off `path`. `None` when the path is malformed (bad cluster id, `.` or `..`
/// segments, percent-escapes): such requests match nothing.
pub fn route(path: &str) -> Option<Routed<'_>> {
    if path.contains('%') || path.split('/').any(|s| s == "." || s == "..") {
        return None;
    }
    if let Some(rest) = path.strip_prefix("/clusters/") {
        let (id, below) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if !valid_cluster_id(id) {
            return None;
        }
        return Some(Routed {
            cluster: id.to_owned(),
            path: below,
            prefix: format!("/clusters/{id}"),
        });
    }
    Some(Routed {
        cluster: ROOT_CLUSTER.to_owned(),
        path,
        prefix: String::new(),
    })
}

/// What a resource request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    /// The verb's name, as in RBAC and discovery.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request for a resource (as opposed to discovery, health and other fixed paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub verb: Verb,
}

/// Parses a path within a cluster into a resource request; `None` for non-resource paths
/// (`/api`, `/apis/apps`, `/healthz`, ...) and malformed ones.
pub fn parse(method: &Method, path: &str, query_watch: bool) -> Option<ResourceRequest> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, mut rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return None;
    }
    let mut legacy_watch = false;
    if rest[0] == "watch" {
        legacy_watch = true;
        rest = &rest[1..];
    }
    let mut namespace = None;
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        namespace = Some(rest[1].to_owned());
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        } else {
            // `namespaces/<name>[/status]`: the namespace object itself.
            namespace = None;
        }
    }
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub] => (*resource, Some(*name), Some(*sub)),
        _ => return None,
    };
    let verb = match *method {
        Method::GET | Method::HEAD if legacy_watch || (query_watch && subresource.is_none()) => {
            Verb::Watch
        }
        Method::GET | Method::HEAD if name.is_some() => Verb::Get,
        Method::GET | Method::HEAD => Verb::List,
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        Method::DELETE if name.is_some() => Verb::Delete,
        Method::DELETE => Verb::DeleteCollection,
        _ => return None,
    };
    Some(ResourceRequest {
        group: group.to_owned(),
        version: version.to_owned(),
        namespace,
        resource: resource.to_owned(),
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
        verb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: Method, path: &str) -> Option<ResourceRequest> {
        parse(&method, path, false)
    }

    #[test]
    fn paths_resolve_like_upstream() {
        let r = p(Method::GET, "/api/v1/namespaces/default/pods/web/status").unwrap();
        assert_eq!(
            (
                r.group.as_str(),
                r.namespace.as_deref(),
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref(),
                r.verb
            ),
            (
                "",
                Some("default"),
                "pods",
                Some("web"),
                Some("status"),
                Verb::Get
            )
        );
        let r = p(Method::GET, "/api/v1/namespaces/kube-system").unwrap();
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        let r = p(Method::PUT, "/api/v1/namespaces/ns1/finalize").unwrap();
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("namespaces", Some("ns1"), Some("finalize"))
        );
        let r = p(Method::GET, "/apis/apps/v1/deployments").unwrap();
        assert_eq!(
            (r.group.as_str(), r.verb, r.namespace),
            ("apps", Verb::List, None)
        );
        assert_eq!(
            parse(&Method::GET, "/api/v1/pods", true).unwrap().verb,
            Verb::Watch
        );
        assert_eq!(
            p(Method::GET, "/api/v1/watch/namespaces/a/pods")
                .unwrap()
                .verb,
            Verb::Watch
        );
        assert_eq!(
            p(Method::DELETE, "/api/v1/namespaces/a/pods").unwrap().verb,
            Verb::DeleteCollection
        );
        assert!(p(Method::GET, "/api").is_none());
        assert!(p(Method::GET, "/apis/apps/v1").is_none());
        assert!(p(Method::GET, "/api/v1/namespaces/a/pods/b/c/d").is_none());
    }

    #[test]
    fn cluster_prefix_is_strict() {
        let r = route("/clusters/acme-prod/api/v1/pods").unwrap();
        assert_eq!(
            (r.cluster.as_str(), r.path, r.prefix.as_str()),
            ("acme-prod", "/api/v1/pods", "/clusters/acme-prod")
        );
        assert_eq!(route("/api/v1/pods").unwrap().cluster, ROOT_CLUSTER);
        for bad in [
            "/clusters/../api",
            "/clusters/a/../b/api",
            "/clusters/a%2Fb/api",
            "/clusters/_root/api",
            "/clusters/Acme/api",
            "/clusters/а/api", // Cyrillic a
            "/clusters/-a/api",
            "/clusters//api",
        ] {
            assert!(route(bad).is_none(), "{bad} must not route");
        }
        assert!(route(&format!("/clusters/{}/api", "a".repeat(105))).is_none());
    }
}
