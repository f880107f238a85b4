//! Upstream's `audit.k8s.io/v1` `Policy`: which requests are logged, and at what level.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// How much of a request is logged. Levels are ordered: each logs what the previous one does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Nothing.
    None,
    /// Who did what to which object, and the response code; no bodies.
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Metadata and both bodies.
    RequestResponse,
}

/// A point in the life of a request at which upstream can write an event. Berth writes only
/// [`Stage::ResponseComplete`]; a policy that omits it logs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// The request was received.
    RequestReceived,
    /// The response headers were sent (long-running requests only).
    ResponseStarted,
    /// The response was sent.
    ResponseComplete,
    /// The handler panicked.
    Panic,
}

/// The request attributes a policy matches on. Empty strings mean "absent", as upstream's
/// attributes do: a request with an empty `resource` is a non-resource request (for example
/// `/healthz`), and an empty `namespace` is a cluster-scoped object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestAttrs<'a> {
    /// The authenticated user's name.
    pub user: &'a str,
    /// The user's groups.
    pub groups: &'a [String],
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`…) or, for non-resource requests,
    /// the lower-case HTTP method.
    pub verb: &'a str,
    /// The API group; empty for the core group.
    pub api_group: &'a str,
    /// The resource (`pods`).
    pub resource: &'a str,
    /// The subresource (`log`, `status`).
    pub subresource: &'a str,
    /// The namespace.
    pub namespace: &'a str,
    /// The object's name.
    pub name: &'a str,
    /// The URL path, for non-resource requests.
    pub path: &'a str,
}

impl RequestAttrs<'_> {
    fn is_resource_request(&self) -> bool {
        !self.resource.is_empty()
    }
}

/// A parsed audit policy: the first rule that matches a request decides its level; a request no
/// rule matches is not logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Stages never logged.
    pub omit_stages: Vec<Stage>,
    /// Whether `metadata.managedFields` is removed from logged bodies.
    pub omit_managed_fields: bool,
}

/// One rule of a policy. Empty lists match everything.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// The level of the requests this rule matches.
    pub level: Level,
    /// User names.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups; a user in any of them matches.
    #[serde(default)]
    pub user_groups: Vec<String>,
    /// Verbs.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resources; a rule with resources or namespaces matches only resource requests.
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    /// Namespaces; `""` matches cluster-scoped objects.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Non-resource URL paths, exact or a prefix ending in `*`; a rule with these matches only
    /// non-resource requests.
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    /// Stages never logged for the requests this rule matches, besides the policy's own.
    #[serde(default)]
    pub omit_stages: Vec<Stage>,
    /// Overrides the policy's `omitManagedFields` for this rule.
    #[serde(default)]
    pub omit_managed_fields: Option<bool>,
}

/// Resources of one API group, as a rule names them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupResources {
    /// The API group; `""` is the core group.
    #[serde(default)]
    pub group: String,
    /// Resources: `pods`, `pods/log` (a subresource), `*` (everything in the group, subresources
    /// included), `pods/*` (every subresource of pods), `*/scale` (that subresource of any
    /// resource). Empty matches every resource of the group.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Object names; empty matches any.
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// What a policy decides for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The level of the matching rule, or `None` when no rule matches.
    pub level: Level,
    /// Whether the `ResponseComplete` stage, the only one Berth writes, is omitted.
    pub omit_response_complete: bool,
    /// Whether `metadata.managedFields` is removed from logged bodies.
    pub omit_managed_fields: bool,
}

impl Decision {
    /// Whether an event is written for the request.
    pub fn logs(&self) -> bool {
        self.level != Level::None && !self.omit_response_complete
    }
}

/// Why a policy could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not a YAML policy of the expected shape.
    #[error("audit policy: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    /// The text is not a JSON policy of the expected shape.
    #[error("audit policy: {0}")]
    Json(#[from] serde_json::Error),
    /// The document is not an `audit.k8s.io/v1` `Policy`.
    #[error(
        "audit policy: expected apiVersion audit.k8s.io/v1 and kind Policy, got {api_version:?} and {kind:?}"
    )]
    Kind {
        /// The document's `apiVersion`.
        api_version: String,
        /// The document's `kind`.
        kind: String,
    },
    /// A rule is contradictory.
    #[error("audit policy: rules[{index}]: {message}")]
    Rule {
        /// The rule's position.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default, rename = "metadata")]
    _metadata: Option<IgnoredAny>,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    omit_stages: Vec<Stage>,
    #[serde(default)]
    omit_managed_fields: bool,
}

impl Policy {
    /// Reads an `audit.k8s.io/v1` `Policy` in YAML (or JSON, which YAML includes).
    pub fn from_yaml(text: &str) -> Result<Policy, Error> {
        let document: Document = serde_saphyr::from_str(text)?;
        Policy::from_document(document)
    }

    /// Reads an `audit.k8s.io/v1` `Policy` in JSON.
    pub fn from_json(text: &str) -> Result<Policy, Error> {
        let document: Document = serde_json::from_str(text)?;
        Policy::from_document(document)
    }

    fn from_document(document: Document) -> Result<Policy, Error> {
        if document.api_version != "audit.k8s.io/v1" || document.kind != "Policy" {
            return Err(Error::Kind {
                api_version: document.api_version,
                kind: document.kind,
            });
        }
        for (index, rule) in document.rules.iter().enumerate() {
            let resourceful = !rule.resources.is_empty() || !rule.namespaces.is_empty();
            if resourceful && !rule.non_resource_urls.is_empty() {
                return Err(Error::Rule {
                    index,
                    message: "rules cannot apply to both regular resources and non-resource URLs"
                        .to_owned(),
                });
            }
        }
        Ok(Policy {
            rules: document.rules,
            omit_stages: document.omit_stages,
            omit_managed_fields: document.omit_managed_fields,
        })
    }

    /// The level of the first rule matching the request, or `None` if no rule matches.
    pub fn level(&self, attrs: &RequestAttrs<'_>) -> Level {
        self.decide(attrs).level
    }

    /// Everything the policy decides for the request.
    pub fn decide(&self, attrs: &RequestAttrs<'_>) -> Decision {
        let omitted = self.omit_stages.contains(&Stage::ResponseComplete);
        match self.rules.iter().find(|rule| rule.matches(attrs)) {
            Some(rule) => Decision {
                level: rule.level,
                omit_response_complete: omitted
                    || rule.omit_stages.contains(&Stage::ResponseComplete),
                omit_managed_fields: rule.omit_managed_fields.unwrap_or(self.omit_managed_fields),
            },
            None => Decision {
                level: Level::None,
                omit_response_complete: omitted,
                omit_managed_fields: self.omit_managed_fields,
            },
        }
    }
}

impl Default for Policy {
    /// `Metadata` for everything, except `None` for reads of events and leases (frequent and
    /// dull) and for the health endpoints.
    fn default() -> Self {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        let group = |group: &str, resource: &str| GroupResources {
            group: group.to_owned(),
            resources: vec![resource.to_owned()],
            resource_names: Vec::new(),
        };
        let none = Rule {
            level: Level::None,
            users: Vec::new(),
            user_groups: Vec::new(),
            verbs: Vec::new(),
            resources: Vec::new(),
            namespaces: Vec::new(),
            non_resource_urls: Vec::new(),
            omit_stages: Vec::new(),
            omit_managed_fields: None,
        };
        Policy {
            rules: vec![
                Rule {
                    verbs: strings(&["get", "list", "watch"]),
                    resources: vec![
                        group("", "events"),
                        group("events.k8s.io", "events"),
                        group("coordination.k8s.io", "leases"),
                    ],
                    ..none.clone()
                },
                Rule {
                    non_resource_urls: strings(&["/healthz*", "/readyz*", "/livez*"]),
                    ..none.clone()
                },
                Rule {
                    level: Level::Metadata,
                    ..none
                },
            ],
            omit_stages: vec![Stage::RequestReceived],
            omit_managed_fields: false,
        }
    }
}

impl Rule {
    fn matches(&self, attrs: &RequestAttrs<'_>) -> bool {
        if !self.users.is_empty() && !self.users.iter().any(|u| u == attrs.user) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !attrs.groups.iter().any(|g| self.user_groups.contains(g))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.iter().any(|v| v == attrs.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(attrs);
        }
        if !self.non_resource_urls.is_empty() {
            return !attrs.is_resource_request()
                && self
                    .non_resource_urls
                    .iter()
                    .any(|spec| path_matches(attrs.path, spec));
        }
        true
    }

    fn matches_resource(&self, attrs: &RequestAttrs<'_>) -> bool {
        if !attrs.is_resource_request() {
            return false;
        }
        if !self.namespaces.is_empty() && !self.namespaces.iter().any(|n| n == attrs.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        self.resources
            .iter()
            .filter(|gr| gr.group == attrs.api_group)
            .any(|gr| gr.matches(attrs))
    }
}

impl GroupResources {
    fn matches(&self, attrs: &RequestAttrs<'_>) -> bool {
        if self.resources.is_empty() {
            return true;
        }
        if !self.resource_names.is_empty() && !self.resource_names.iter().any(|n| n == attrs.name) {
            return false;
        }
        self.resources.iter().any(|spec| {
            if spec == "*" {
                return true;
            }
            if attrs.subresource.is_empty() {
                return spec == attrs.resource;
            }
            match spec.split_once('/') {
                Some(("*", sub)) => sub == attrs.subresource,
                Some((resource, "*")) => resource == attrs.resource,
                Some((resource, sub)) => resource == attrs.resource && sub == attrs.subresource,
                None => false,
            }
        })
    }
}

/// Upstream's non-resource URL match: `*`, the exact path, or a prefix ending in `*`.
fn path_matches(path: &str, spec: &str) -> bool {
    match spec.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => spec == path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource<'a>(verb: &'a str, group: &'a str, resource: &'a str) -> RequestAttrs<'a> {
        RequestAttrs {
            user: "alice",
            verb,
            api_group: group,
            resource,
            namespace: "default",
            ..RequestAttrs::default()
        }
    }

    fn path(path: &str) -> RequestAttrs<'_> {
        RequestAttrs {
            user: "alice",
            verb: "get",
            path,
            ..RequestAttrs::default()
        }
    }

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
metadata:
  name: example
omitStages:
  - "RequestReceived"
rules:
  # Pod changes at RequestResponse.
  - level: RequestResponse
    resources:
    - group: ""
      resources: ["pods"]
  - level: Metadata
    resources:
    - group: ""
      resources: ["pods/log", "pods/status"]
  - level: None
    resources:
    - group: ""
      resources: ["configmaps"]
      resourceNames: ["controller-leader"]
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
    - group: "" # core API group
      resources: ["endpoints", "services"]
  - level: None
    userGroups: ["system:authenticated"]
    nonResourceURLs:
    - "/api*" # Wildcard matching.
    - "/version"
  - level: Request
    resources:
    - group: "" # core API group
      resources: ["configmaps"]
    namespaces: ["kube-system"]
  - level: Metadata
    resources:
    - group: "" # core API group
      resources: ["secrets", "configmaps"]
  - level: Request
    resources:
    - group: "" # core API group
    - group: "extensions"
  - level: Metadata
    omitStages:
      - "RequestReceived"
"#;

    #[test]
    fn parses_upstreams_example_policy() {
        let policy = Policy::from_yaml(POLICY).unwrap();
        assert_eq!(policy.rules.len(), 9);
        assert_eq!(policy.omit_stages, vec![Stage::RequestReceived]);
        assert_eq!(
            policy.rules[2].resources[0].resource_names,
            ["controller-leader"]
        );
        assert_eq!(policy.rules[4].non_resource_urls, ["/api*", "/version"]);
        assert_eq!(policy.rules[4].user_groups, ["system:authenticated"]);
    }

    #[test]
    fn first_matching_rule_wins() {
        let policy = Policy::from_yaml(POLICY).unwrap();
        let cases: &[(RequestAttrs<'_>, Level)] = &[
            (resource("create", "", "pods"), Level::RequestResponse),
            (
                RequestAttrs {
                    subresource: "log",
                    ..resource("get", "", "pods")
                },
                Level::Metadata,
            ),
            // A subresource is not matched by its resource alone; here the core-group rule
            // further down catches it.
            (
                RequestAttrs {
                    subresource: "exec",
                    ..resource("create", "", "pods")
                },
                Level::Request,
            ),
            (
                RequestAttrs {
                    name: "controller-leader",
                    ..resource("update", "", "configmaps")
                },
                Level::None,
            ),
            (
                RequestAttrs {
                    name: "other",
                    ..resource("update", "", "configmaps")
                },
                Level::Metadata,
            ),
            (
                RequestAttrs {
                    namespace: "kube-system",
                    ..resource("update", "", "configmaps")
                },
                Level::Request,
            ),
            (
                RequestAttrs {
                    user: "system:kube-proxy",
                    ..resource("watch", "", "services")
                },
                Level::None,
            ),
            (
                RequestAttrs {
                    user: "system:kube-proxy",
                    ..resource("list", "", "services")
                },
                Level::Request,
            ),
            (resource("get", "", "secrets"), Level::Metadata),
            (resource("get", "extensions", "ingresses"), Level::Request),
            (resource("get", "apps", "deployments"), Level::Metadata),
            // The non-resource rule needs the group.
            (path("/apis"), Level::Metadata),
        ];
        for (attrs, level) in cases {
            assert_eq!(policy.level(attrs), *level, "{attrs:?}");
        }
        let groups = ["system:authenticated".to_owned()];
        for p in ["/apis", "/api/v1", "/version"] {
            let attrs = RequestAttrs {
                groups: &groups,
                ..path(p)
            };
            assert_eq!(policy.level(&attrs), Level::None, "{p}");
        }
        let attrs = RequestAttrs {
            groups: &groups,
            ..path("/versions")
        };
        assert_eq!(policy.level(&attrs), Level::Metadata);
    }

    #[test]
    fn resource_wildcards() {
        let rule = |spec: &str| GroupResources {
            group: String::new(),
            resources: vec![spec.to_owned()],
            resource_names: Vec::new(),
        };
        let pods = resource("get", "", "pods");
        let scale = RequestAttrs {
            subresource: "scale",
            ..resource("get", "", "deployments")
        };
        let pod_log = RequestAttrs {
            subresource: "log",
            ..pods
        };
        let cases = [
            ("*", pods, true),
            ("*", pod_log, true),
            ("pods", pods, true),
            ("pods", pod_log, false),
            ("pods/log", pod_log, true),
            ("pods/log", pods, false),
            ("pods/*", pod_log, true),
            ("pods/*", scale, false),
            ("*/scale", scale, true),
            ("*/scale", pod_log, false),
            ("deployments/scale", scale, true),
        ];
        for (spec, attrs, matches) in cases {
            assert_eq!(rule(spec).matches(&attrs), matches, "{spec} {attrs:?}");
        }
    }

    #[test]
    fn rules_without_conditions_match_everything_and_no_rule_means_none() {
        let policy = Policy::from_yaml(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Request\n  verbs: [create]\n",
        )
        .unwrap();
        assert_eq!(
            policy.level(&resource("create", "", "pods")),
            Level::Request
        );
        assert_eq!(policy.level(&path("/healthz")), Level::None);
        let attrs = RequestAttrs {
            verb: "create",
            ..path("/x")
        };
        assert_eq!(policy.level(&attrs), Level::Request);
    }

    #[test]
    fn namespaces_match_resource_requests_only() {
        let policy = Policy::from_yaml(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Request\n  namespaces: [\"\"]\n",
        )
        .unwrap();
        let node = RequestAttrs {
            namespace: "",
            ..resource("get", "", "nodes")
        };
        assert_eq!(policy.level(&node), Level::Request);
        assert_eq!(policy.level(&resource("get", "", "pods")), Level::None);
        assert_eq!(policy.level(&path("/version")), Level::None);
    }

    #[test]
    fn default_policy() {
        let policy = Policy::default();
        let none = [
            resource("get", "", "events"),
            resource("watch", "events.k8s.io", "events"),
            resource("list", "coordination.k8s.io", "leases"),
            path("/healthz"),
            path("/readyz/etcd"),
            path("/livez"),
        ];
        for attrs in none {
            assert_eq!(policy.level(&attrs), Level::None, "{attrs:?}");
        }
        let metadata = [
            resource("create", "", "events"),
            resource("update", "coordination.k8s.io", "leases"),
            resource("get", "", "pods"),
            resource("delete", "apps", "deployments"),
            path("/version"),
            path("/metrics"),
        ];
        for attrs in metadata {
            assert_eq!(policy.level(&attrs), Level::Metadata, "{attrs:?}");
            assert!(policy.decide(&attrs).logs());
        }
    }

    #[test]
    fn omitted_response_complete_logs_nothing() {
        let policy = Policy::from_yaml(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nrules:\n\
             - level: Metadata\n  verbs: [get]\n  omitStages: [ResponseComplete]\n\
             - level: Request\n  omitManagedFields: false\n",
        )
        .unwrap();
        let get = policy.decide(&resource("get", "", "pods"));
        assert_eq!(get.level, Level::Metadata);
        assert!(!get.logs());
        assert!(get.omit_managed_fields);
        let create = policy.decide(&resource("create", "", "pods"));
        assert!(create.logs());
        assert!(!create.omit_managed_fields);
    }

    #[test]
    fn json_policies_parse_too() {
        let text = r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"RequestResponse","resources":[{"group":"apps","resources":["deployments/scale"]}]}]}"#;
        for policy in [
            Policy::from_json(text).unwrap(),
            Policy::from_yaml(text).unwrap(),
        ] {
            let attrs = RequestAttrs {
                subresource: "scale",
                ..resource("patch", "apps", "deployments")
            };
            assert_eq!(policy.level(&attrs), Level::RequestResponse);
        }
    }

    #[test]
    fn bad_policies_are_refused() {
        let err = Policy::from_yaml("apiVersion: v1\nkind: ConfigMap\n").unwrap_err();
        assert!(matches!(err, Error::Kind { .. }), "{err}");
        let err =
            Policy::from_yaml("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n")
                .unwrap_err();
        assert!(matches!(err, Error::Yaml(_)), "{err}");
        let err = Policy::from_yaml(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- verbs: [get]\n",
        )
        .unwrap_err();
        assert!(matches!(err, Error::Yaml(_)), "missing level: {err}");
        let err = Policy::from_yaml(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  verb: [get]\n",
        )
        .unwrap_err();
        assert!(matches!(err, Error::Yaml(_)), "misspelt field: {err}");
        let err = Policy::from_yaml(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  namespaces: [a]\n  nonResourceURLs: [/x]\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "audit policy: rules[0]: rules cannot apply to both regular resources and non-resource URLs"
        );
    }
}
