//! The resources the API server serves, and what discovery says about each.
//!
//! Built-in resources are described once, from k8s-openapi's types (group, version, kind, plural,
//! scope) plus the facts kubectl learns from discovery: short names, categories, subresources.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::{
    admissionregistration::v1 as admissionregistration, apps::v1 as apps,
    authentication::v1 as authentication, authorization::v1 as authorization,
    autoscaling::v2 as autoscaling, batch::v1 as batch, certificates::v1 as certificates,
    coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
    events::v1 as events, networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::{ListableResource, NamespaceResourceScope, Resource};

/// The verbs every stored resource supports.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A name in a [`ResourceDef`]: borrowed for built-in resources, owned for custom ones.
pub type Name = Cow<'static, str>;

/// A served resource.
#[derive(Clone, Debug)]
pub struct ResourceDef {
    /// API group, `""` for core.
    pub group: Name,
    /// Version, e.g. `v1`.
    pub version: Name,
    /// Kind, e.g. `Pod`.
    pub kind: Name,
    /// Kind of the list, e.g. `PodList`.
    pub list_kind: Name,
    /// Plural resource name in URLs, e.g. `pods`.
    pub plural: Name,
    /// Singular resource name, e.g. `pod`.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names kubectl accepts, e.g. `po`.
    pub short_names: Vec<Name>,
    /// Categories, e.g. `all`.
    pub categories: Vec<Name>,
    /// Subresources served besides the object itself.
    pub subresources: Cow<'static, [Subresource]>,
    /// Whether only the root cluster serves it (the `berth.dev` management kinds): tenant
    /// clusters neither list it in discovery or OpenAPI nor serve requests for it.
    pub root_only: bool,
    /// The verbs discovery lists: [`STANDARD_VERBS`] for stored resources, `create` alone for
    /// the reviews, which answer a question and store nothing.
    pub verbs: &'static [&'static str],
    /// What a CustomResourceDefinition says about this resource; `None` for built-ins.
    pub custom: Option<Arc<crate::crd::Custom>>,
}

impl PartialEq for ResourceDef {
    fn eq(&self, other: &Self) -> bool {
        (&self.group, &self.version, &self.plural) == (&other.group, &other.version, &other.plural)
    }
}

impl Eq for ResourceDef {}

/// A subresource of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    /// `status`: get, update and patch of `.status` only.
    Status,
    /// `scale`: an `autoscaling/v1` `Scale` view of `.spec.replicas`.
    Scale,
    /// `pods/binding`: binds a pod to a node.
    Binding,
    /// `pods/eviction`: evicts a pod.
    Eviction,
    /// `namespaces/finalize`: updates a namespace's `spec.finalizers` only.
    Finalize,
    /// `certificatesigningrequests/approval`: get, update and patch of the `Approved` and
    /// `Denied` conditions only.
    Approval,
    /// `serviceaccounts/token`: a TokenRequest for a bound service-account token.
    Token,
}

impl Subresource {
    /// Its name in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Finalize => "finalize",
            Subresource::Approval => "approval",
            Subresource::Token => "token",
        }
    }

    /// The verbs it supports.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Subresource::Status | Subresource::Scale | Subresource::Approval => {
                &["get", "patch", "update"]
            }
            Subresource::Binding | Subresource::Eviction | Subresource::Token => &["create"],
            Subresource::Finalize => &["update"],
        }
    }

    /// The kind its requests and responses carry: (group, version, kind).
    pub fn response_kind(self, def: &ResourceDef) -> (&str, &str, &str) {
        match self {
            Subresource::Status | Subresource::Finalize | Subresource::Approval => {
                (&def.group, &def.version, &def.kind)
            }
            Subresource::Scale => ("autoscaling", "v1", "Scale"),
            Subresource::Binding => ("", "v1", "Binding"),
            Subresource::Eviction => ("policy", "v1", "Eviction"),
            Subresource::Token => ("authentication.k8s.io", "v1", "TokenRequest"),
        }
    }
}

impl ResourceDef {
    /// `apiVersion` of objects of this resource.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource as named in error details: `pods`, `deployments.apps`.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The group as used in store keys (`core` for the core group).
    pub fn storage_group(&self) -> &str {
        if self.group.is_empty() {
            "core"
        } else {
            &self.group
        }
    }

    /// Whether this is a custom resource (defined by a CustomResourceDefinition).
    pub fn is_custom(&self) -> bool {
        self.custom.is_some()
    }

    /// Whether the resource has a `status` subresource (so the main resource ignores status).
    pub fn has_status(&self) -> bool {
        self.subresources.contains(&Subresource::Status)
    }

    /// The subresource named `name`, if served.
    pub fn subresource(&self, name: &str) -> Option<Subresource> {
        self.subresources.iter().copied().find(|s| s.name() == name)
    }
}

fn def<T: Resource + ListableResource + 'static>(
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Subresource],
) -> ResourceDef {
    ResourceDef {
        group: Cow::Borrowed(T::GROUP),
        version: Cow::Borrowed(T::VERSION),
        kind: Cow::Borrowed(T::KIND),
        list_kind: Cow::Borrowed(T::LIST_KIND),
        plural: Cow::Borrowed(T::URL_PATH_SEGMENT),
        singular: T::KIND.to_ascii_lowercase(),
        namespaced: TypeId::of::<T::Scope>() == TypeId::of::<NamespaceResourceScope>(),
        short_names: short_names.iter().map(|s| Cow::Borrowed(*s)).collect(),
        categories: categories.iter().map(|s| Cow::Borrowed(*s)).collect(),
        subresources: Cow::Borrowed(subresources),
        root_only: false,
        verbs: STANDARD_VERBS,
        custom: None,
    }
}

/// A create-only resource that stores nothing (the reviews: `kubectl auth can-i`, `whoami`).
fn review<T: Resource + 'static>() -> ResourceDef {
    ResourceDef {
        group: Cow::Borrowed(T::GROUP),
        version: Cow::Borrowed(T::VERSION),
        kind: Cow::Borrowed(T::KIND),
        list_kind: Cow::Borrowed(""),
        plural: Cow::Borrowed(T::URL_PATH_SEGMENT),
        singular: T::KIND.to_ascii_lowercase(),
        namespaced: TypeId::of::<T::Scope>() == TypeId::of::<NamespaceResourceScope>(),
        short_names: Vec::new(),
        categories: Vec::new(),
        subresources: Cow::Borrowed(&[]),
        root_only: false,
        verbs: &["create"],
        custom: None,
    }
}

/// A resource only the root cluster serves.
fn root_only(def: ResourceDef) -> ResourceDef {
    ResourceDef {
        root_only: true,
        ..def
    }
}

use Subresource::{Approval, Binding, Eviction, Finalize, Scale, Status, Token};

/// Every built-in resource, in the order discovery lists them.
pub fn builtin() -> Vec<ResourceDef> {
    const ALL: &[&str] = &["all"];
    const BERTH: &[&str] = &["berth"];
    vec![
        def::<core::ConfigMap>(&["cm"], &[], &[]),
        def::<core::Endpoints>(&["ep"], &[], &[]),
        def::<core::Event>(&["ev"], &[], &[]),
        def::<core::LimitRange>(&["limits"], &[], &[]),
        def::<core::Namespace>(&["ns"], &[], &[Finalize, Status]),
        def::<core::Node>(&["no"], &[], &[Status]),
        def::<core::PersistentVolumeClaim>(&["pvc"], &[], &[Status]),
        def::<core::PersistentVolume>(&["pv"], &[], &[Status]),
        def::<core::Pod>(&["po"], ALL, &[Binding, Eviction, Status]),
        def::<core::ReplicationController>(&["rc"], ALL, &[Scale, Status]),
        def::<core::ResourceQuota>(&["quota"], &[], &[Status]),
        def::<core::Secret>(&[], &[], &[]),
        def::<core::ServiceAccount>(&["sa"], &[], &[Token]),
        def::<core::Service>(&["svc"], ALL, &[Status]),
        def::<apps::ControllerRevision>(&[], &[], &[]),
        def::<apps::DaemonSet>(&["ds"], ALL, &[Status]),
        def::<apps::Deployment>(&["deploy"], ALL, &[Scale, Status]),
        def::<apps::ReplicaSet>(&["rs"], ALL, &[Scale, Status]),
        def::<apps::StatefulSet>(&["sts"], ALL, &[Scale, Status]),
        def::<admissionregistration::MutatingWebhookConfiguration>(&[], &["api-extensions"], &[]),
        def::<admissionregistration::ValidatingAdmissionPolicyBinding>(
            &[],
            &["api-extensions"],
            &[],
        ),
        def::<admissionregistration::ValidatingAdmissionPolicy>(
            &[],
            &["api-extensions"],
            &[Status],
        ),
        def::<admissionregistration::ValidatingWebhookConfiguration>(&[], &["api-extensions"], &[]),
        def::<apiextensions::CustomResourceDefinition>(
            &["crd", "crds"],
            &["api-extensions"],
            &[Status],
        ),
        def::<autoscaling::HorizontalPodAutoscaler>(&["hpa"], ALL, &[Status]),
        review::<authentication::SelfSubjectReview>(),
        review::<authentication::TokenReview>(),
        review::<authorization::LocalSubjectAccessReview>(),
        review::<authorization::SelfSubjectAccessReview>(),
        review::<authorization::SelfSubjectRulesReview>(),
        review::<authorization::SubjectAccessReview>(),
        def::<batch::CronJob>(&["cj"], ALL, &[Status]),
        def::<batch::Job>(&[], ALL, &[Status]),
        def::<certificates::CertificateSigningRequest>(&["csr"], &[], &[Approval, Status]),
        def::<coordination::Lease>(&[], &[], &[]),
        def::<discovery::EndpointSlice>(&[], &[], &[]),
        def::<events::Event>(&["ev"], &[], &[]),
        def::<networking::IngressClass>(&[], &[], &[]),
        def::<networking::Ingress>(&["ing"], &[], &[Status]),
        def::<networking::NetworkPolicy>(&["netpol"], &[], &[]),
        def::<policy::PodDisruptionBudget>(&["pdb"], &[], &[Status]),
        def::<rbac::ClusterRoleBinding>(&[], &[], &[]),
        def::<rbac::ClusterRole>(&[], &[], &[]),
        def::<rbac::RoleBinding>(&[], &[], &[]),
        def::<rbac::Role>(&[], &[], &[]),
        def::<scheduling::PriorityClass>(&["pc"], &[], &[]),
        def::<storage::StorageClass>(&["sc"], &[], &[]),
        root_only(def::<berth_api::Cluster>(&["bc"], BERTH, &[Status])),
        root_only(def::<berth_api::NodePool>(&["np"], BERTH, &[Status])),
    ]
}

/// The built-in resource `group/plural` (at its only served version).
pub(crate) fn builtin_def(group: &str, plural: &str) -> Option<&'static ResourceDef> {
    static BUILTIN: std::sync::LazyLock<Vec<ResourceDef>> = std::sync::LazyLock::new(builtin);
    BUILTIN
        .iter()
        .find(|d| d.group == group && d.plural == plural)
}

/// Upstream's `CompareKubeAwareVersionStrings` as an ordering, highest priority first:
/// GA before beta before alpha, higher major then minor numbers first; versions that do not
/// look like `v<major>[alpha|beta<minor>]` come last, in alphabetical order.
pub(crate) fn kube_version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (stage, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (0, m)
        } else {
            return None;
        };
        Some((major, stage, minor.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, sa, na)), Some((mb, sb, nb))) => (sb, mb, nb).cmp(&(sa, ma, na)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Resources looked up by (group, version, plural).
#[derive(Debug, Clone)]
pub struct Registry {
    by_path: BTreeMap<(String, String, String), ResourceDef>,
    /// Groups in discovery order, each with its versions (preferred first).
    groups: Vec<(String, Vec<String>)>,
}

impl Registry {
    /// The registry of built-in resources, as the root cluster serves them.
    pub fn builtin() -> Self {
        Self::of(builtin())
    }

    /// The registry of built-in resources a tenant cluster serves: those not root-only.
    pub fn tenant() -> Self {
        Self::of(builtin().into_iter().filter(|d| !d.root_only).collect())
    }

    fn of(defs: Vec<ResourceDef>) -> Self {
        let mut registry = Registry {
            by_path: BTreeMap::new(),
            groups: Vec::new(),
        };
        for def in defs {
            registry.add(def);
        }
        registry
    }

    pub(crate) fn add(&mut self, def: ResourceDef) {
        match self.groups.iter_mut().find(|(g, _)| *g == def.group) {
            Some((_, versions)) => {
                if !versions.iter().any(|v| *v == def.version) {
                    versions.push(def.version.to_string());
                    // The preferred version first, as upstream orders a group's versions.
                    versions.sort_by(|a, b| kube_version_order(a, b));
                }
            }
            None => self
                .groups
                .push((def.group.to_string(), vec![def.version.to_string()])),
        }
        self.by_path.insert(
            (
                def.group.to_string(),
                def.version.to_string(),
                def.plural.to_string(),
            ),
            def,
        );
    }

    /// The resource served at `group/version/plural`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.by_path
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
    }

    /// The served groups with their versions, core first.
    pub fn groups(&self) -> &[(String, Vec<String>)] {
        &self.groups
    }

    /// Resources of one group version, in name order.
    pub fn resources(&self, group: &str, version: &str) -> impl Iterator<Item = &ResourceDef> {
        self.by_path
            .values()
            .filter(move |d| d.group == group && d.version == version)
    }

    /// Every served resource.
    pub fn all(&self) -> impl Iterator<Item = &ResourceDef> {
        self.by_path.values()
    }

    /// The resource of a kind, if served.
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<&ResourceDef> {
        self.by_path
            .values()
            .find(|d| d.group == group && d.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_resources_carry_upstream_names_and_scopes() {
        let r = Registry::builtin();
        let pods = r.get("", "v1", "pods").unwrap();
        assert_eq!(
            (&*pods.kind, &*pods.list_kind, pods.namespaced),
            ("Pod", "PodList", true)
        );
        assert_eq!(pods.singular, "pod");
        assert!(!r.get("", "v1", "namespaces").unwrap().namespaced);
        let deploy = r.get("apps", "v1", "deployments").unwrap();
        assert_eq!(deploy.qualified_plural(), "deployments.apps");
        assert_eq!(deploy.api_version(), "apps/v1");
        assert!(deploy.subresource("scale").is_some());
        assert_eq!(
            r.get("storage.k8s.io", "v1", "storageclasses")
                .unwrap()
                .short_names,
            &["sc"]
        );
        assert_eq!(r.groups()[0].0, "");
        assert!(
            r.groups()
                .iter()
                .any(|(g, _)| g == "rbac.authorization.k8s.io")
        );
    }

    #[test]
    fn versions_sort_as_upstream_prefers_them() {
        let mut v = vec![
            "v1beta1",
            "foo1",
            "v1alpha2",
            "v2",
            "v1",
            "v10beta3",
            "v11alpha2",
            "v12alpha1",
            "foo10",
        ];
        v.sort_by(|a, b| kube_version_order(a, b));
        assert_eq!(
            v,
            [
                "v2",
                "v1",
                "v10beta3",
                "v1beta1",
                "v12alpha1",
                "v11alpha2",
                "v1alpha2",
                "foo1",
                "foo10"
            ]
        );
    }

    #[test]
    fn management_kinds_are_served_by_the_root_cluster_only() {
        let root = Registry::builtin();
        let clusters = root.get("berth.dev", "v1", "clusters").unwrap();
        assert!(clusters.root_only && clusters.namespaced && clusters.has_status());
        assert_eq!(clusters.list_kind, "ClusterList");
        assert_eq!(
            root.get("berth.dev", "v1", "nodepools")
                .unwrap()
                .short_names,
            &["np"]
        );
        let tenant = Registry::tenant();
        assert!(tenant.get("berth.dev", "v1", "clusters").is_none());
        assert!(tenant.groups().iter().all(|(g, _)| g != "berth.dev"));
        assert_eq!(tenant.all().count() + 2, root.all().count());
        // No short name of a management kind shadows another resource's.
        let mut names: Vec<&str> = root
            .all()
            .flat_map(|d| d.short_names.iter().map(|s| &**s))
            .collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(
            before - names.len(),
            1,
            "only `ev` (two Event kinds) repeats"
        );
    }
}
