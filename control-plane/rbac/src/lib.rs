//! Kubernetes authorization as pure functions: RBAC (upstream's `plugin/pkg/auth/authorizer/rbac`
//! and `pkg/registry/rbac/validation`), the escalation checks the RBAC registry applies to writes
//! of roles and bindings, the ClusterRole aggregation controller, the bootstrap policy the API
//! server reconciles at startup, and the node authorizer.
//!
//! This crate is not an API server component: it does no I/O, keeps no clock, runs no tasks and
//! knows nothing of HTTP. A caller builds a [`Policy`] from the RBAC objects of one cluster each
//! time they change and asks it questions; how requests become [`Attributes`] and how decisions
//! become responses is the caller's business.

mod aggregate;
mod bootstrap;
mod node;
mod policy;
mod rules;

use std::collections::BTreeMap;

pub use aggregate::{aggregate, label_selector_matches};
pub use bootstrap::{
    AUTOUPDATE_ANNOTATION, BOOTSTRAPPING_LABEL, BOOTSTRAPPING_VALUE, BootstrapPolicy,
    bootstrap_policy,
};
pub use node::{NodeGraph, node_authorize, node_authorize_with_fields, node_rules};
pub use policy::{Policy, SubjectRules, may_bind, may_set_aggregation_rule, may_write_role};
pub use rules::{breakdown_rule, compact_string, covers, rule_allows};

/// The group every member of which may do anything, without escalation checks.
pub const SYSTEM_MASTERS: &str = "system:masters";

/// Who is asking: upstream's `user.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What is asked: upstream's `authorizer.Attributes`. For a resource request `path` is unused; for
/// a non-resource request only `user`, `verb` and `path` are.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    pub user: &'a UserInfo,
    pub verb: &'a str,
    pub namespace: &'a str,
    pub api_group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub name: &'a str,
    pub resource_request: bool,
    pub path: &'a str,
}

/// An authorizer's answer. Neither RBAC nor the node authorizer ever denies outright: when they
/// do not allow, the next authorizer in the chain is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow { reason: String },
    NoOpinion { reason: String },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow { reason } | Decision::NoOpinion { reason } => reason,
        }
    }
}

/// The user name a service account authenticates as.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}
