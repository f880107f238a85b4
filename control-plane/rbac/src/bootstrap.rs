//! The bootstrap policy.
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

/// The RBAC objects the API server ensures exist at startup.
#[derive(Clone, Debug, Default)]
pub struct BootstrapPolicy {
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
}

pub fn bootstrap_policy() -> BootstrapPolicy {
    BootstrapPolicy::default()
}
