//! Patch metadata: which fields merge, by which key, and which are replaced wholesale.
//!
//! Upstream reads this from the `patchStrategy` and `patchMergeKey` struct tags of the `k8s.io/api`
//! Go types (published in OpenAPI as `x-kubernetes-patch-strategy` and
//! `x-kubernetes-patch-merge-key`). Berth has no Go structs, so the tags live here as data: a table
//! of types, each listing only the fields that carry a strategy or lead to a type that does, and a
//! table of kinds naming their root type.
//!
//! The type table was derived mechanically from the stable (`v1`/`v2`) `types.go` files of
//! `k8s.io/api` plus `metav1.ObjectMeta`, keeping every type reachable from a served kind through
//! objects or merging lists. Lists without a merge strategy are replaced wholesale by strategic
//! merge patch, so nothing below them needs metadata (for example `containerStatuses`, whose
//! elements carry tags upstream too, or `tolerations` and `readinessGates`, which have none).
//!
//! A field that is not listed has the default strategy: an object merges key by key, a list is
//! replaced, a scalar is replaced.

use crate::GroupKind;

/// How strategic merge patch combines a field of the original with the same field of the patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Objects merge key by key; lists and scalars are replaced.
    Default,
    /// The list merges with the original: lists of objects element by element, matched on the
    /// merge key; lists of scalars as a set (`key` is `None`).
    Merge(Option<&'static str>),
    /// The value replaces the original wholesale, even an object.
    Replace,
}

/// Patch metadata of one field of one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The JSON name of the field.
    pub name: &'static str,
    /// How the field merges.
    pub strategy: Strategy,
    /// Upstream also tags the field `retainKeys`: clients (kubectl apply) send a `$retainKeys`
    /// directive with it. Applying `$retainKeys` needs no metadata; this records the tag.
    pub retain_keys: bool,
    /// The type of the field (of its elements, for a list), when that type has metadata itself.
    pub ty: Option<&'static str>,
}

impl Field {
    /// The merge key, when this is a merging list of objects.
    pub fn merge_key(&self) -> Option<&'static str> {
        match self.strategy {
            Strategy::Merge(key) => key,
            _ => None,
        }
    }
}

/// The metadata of a field no table lists: default strategy, no type below.
pub(crate) const DEFAULT_FIELD: Field = Field {
    name: "",
    strategy: Strategy::Default,
    retain_keys: false,
    ty: None,
};

const fn field(
    name: &'static str,
    strategy: Strategy,
    retain_keys: bool,
    ty: Option<&'static str>,
) -> Field {
    Field {
        name,
        strategy,
        retain_keys,
        ty,
    }
}

/// Served kinds with strategic merge patch support: (group, kind, root type). Kinds whose only
/// tagged fields are in `metadata` point at their own type or at `meta/v1.Object`.
static KINDS: &[(&str, &str, &str)] = &[
    ("", "Pod", "core/v1.Pod"),
    ("", "PodTemplate", "core/v1.PodTemplate"),
    ("", "ReplicationController", "core/v1.ReplicationController"),
    ("", "Service", "core/v1.Service"),
    ("", "ServiceAccount", "core/v1.ServiceAccount"),
    ("", "Node", "core/v1.Node"),
    ("", "Namespace", "core/v1.Namespace"),
    ("", "PersistentVolumeClaim", "core/v1.PersistentVolumeClaim"),
    ("", "PersistentVolume", "core/v1.PersistentVolume"),
    ("", "ComponentStatus", "core/v1.ComponentStatus"),
    ("", "Binding", "core/v1.Binding"),
    ("", "ConfigMap", "core/v1.ConfigMap"),
    ("", "Endpoints", "core/v1.Endpoints"),
    ("", "Event", "core/v1.Event"),
    ("", "LimitRange", "core/v1.LimitRange"),
    ("", "ResourceQuota", "core/v1.ResourceQuota"),
    ("", "Secret", "core/v1.Secret"),
    ("apps", "Deployment", "apps/v1.Deployment"),
    ("apps", "StatefulSet", "apps/v1.StatefulSet"),
    ("apps", "DaemonSet", "apps/v1.DaemonSet"),
    ("apps", "ReplicaSet", "apps/v1.ReplicaSet"),
    ("apps", "ControllerRevision", "apps/v1.ControllerRevision"),
    ("batch", "Job", "batch/v1.Job"),
    ("batch", "CronJob", "batch/v1.CronJob"),
    (
        "autoscaling",
        "HorizontalPodAutoscaler",
        "autoscaling/v2.HorizontalPodAutoscaler",
    ),
    ("autoscaling", "Scale", "autoscaling/v1.Scale"),
    ("networking.k8s.io", "Ingress", "networking/v1.Ingress"),
    (
        "networking.k8s.io",
        "IngressClass",
        "networking/v1.IngressClass",
    ),
    (
        "networking.k8s.io",
        "NetworkPolicy",
        "networking/v1.NetworkPolicy",
    ),
    ("networking.k8s.io", "IPAddress", "networking/v1.IPAddress"),
    (
        "networking.k8s.io",
        "ServiceCIDR",
        "networking/v1.ServiceCIDR",
    ),
    (
        "policy",
        "PodDisruptionBudget",
        "policy/v1.PodDisruptionBudget",
    ),
    ("policy", "Eviction", "policy/v1.Eviction"),
    ("rbac.authorization.k8s.io", "Role", "rbac/v1.Role"),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "rbac/v1.RoleBinding",
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "rbac/v1.ClusterRole",
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "rbac/v1.ClusterRoleBinding",
    ),
    ("coordination.k8s.io", "Lease", "coordination/v1.Lease"),
    (
        "discovery.k8s.io",
        "EndpointSlice",
        "discovery/v1.EndpointSlice",
    ),
    ("events.k8s.io", "Event", "events/v1.Event"),
    ("storage.k8s.io", "CSIDriver", "storage/v1.CSIDriver"),
    ("storage.k8s.io", "CSINode", "storage/v1.CSINode"),
    (
        "storage.k8s.io",
        "CSIStorageCapacity",
        "storage/v1.CSIStorageCapacity",
    ),
    ("storage.k8s.io", "StorageClass", "storage/v1.StorageClass"),
    (
        "storage.k8s.io",
        "VolumeAttachment",
        "storage/v1.VolumeAttachment",
    ),
    (
        "storage.k8s.io",
        "VolumeAttributesClass",
        "storage/v1.VolumeAttributesClass",
    ),
    (
        "scheduling.k8s.io",
        "PriorityClass",
        "scheduling/v1.PriorityClass",
    ),
    ("node.k8s.io", "RuntimeClass", "node/v1.RuntimeClass"),
    (
        "certificates.k8s.io",
        "CertificateSigningRequest",
        "certificates/v1.CertificateSigningRequest",
    ),
    (
        "certificates.k8s.io",
        "ClusterTrustBundle",
        "certificates/v1.ClusterTrustBundle",
    ),
    (
        "certificates.k8s.io",
        "PodCertificateRequest",
        "certificates/v1.PodCertificateRequest",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "admissionregistration/v1.MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "admissionregistration/v1.ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        "admissionregistration/v1.ValidatingAdmissionPolicy",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        "admissionregistration/v1.ValidatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicy",
        "admissionregistration/v1.MutatingAdmissionPolicy",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
        "admissionregistration/v1.MutatingAdmissionPolicyBinding",
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "FlowSchema",
        "flowcontrol/v1.FlowSchema",
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        "flowcontrol/v1.PriorityLevelConfiguration",
    ),
    ("resource.k8s.io", "DeviceClass", "resource/v1.DeviceClass"),
    (
        "resource.k8s.io",
        "DeviceTaintRule",
        "resource/v1.DeviceTaintRule",
    ),
    (
        "resource.k8s.io",
        "ResourceClaim",
        "resource/v1.ResourceClaim",
    ),
    (
        "resource.k8s.io",
        "ResourceClaimTemplate",
        "resource/v1.ResourceClaimTemplate",
    ),
    (
        "resource.k8s.io",
        "ResourceSlice",
        "resource/v1.ResourceSlice",
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "meta/v1.Object",
    ),
    ("apiregistration.k8s.io", "APIService", "meta/v1.Object"),
];

/// Types with patch metadata, sorted by name (`<group dir>/<version>.<Go type>`, as in
/// `k8s.io/api`), each with its tagged fields and the fields leading to tagged types.
static TYPES: &[(&str, &[Field])] = &[
    (
        "admissionregistration/v1.MutatingAdmissionPolicy",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("admissionregistration/v1.MutatingAdmissionPolicySpec"),
            ),
        ],
    ),
    (
        "admissionregistration/v1.MutatingAdmissionPolicyBinding",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "admissionregistration/v1.MutatingAdmissionPolicySpec",
        &[field(
            "matchConditions",
            Strategy::Merge(Some("name")),
            false,
            None,
        )],
    ),
    (
        "admissionregistration/v1.MutatingWebhook",
        &[field(
            "matchConditions",
            Strategy::Merge(Some("name")),
            false,
            None,
        )],
    ),
    (
        "admissionregistration/v1.MutatingWebhookConfiguration",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "webhooks",
                Strategy::Merge(Some("name")),
                false,
                Some("admissionregistration/v1.MutatingWebhook"),
            ),
        ],
    ),
    (
        "admissionregistration/v1.ValidatingAdmissionPolicy",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("admissionregistration/v1.ValidatingAdmissionPolicySpec"),
            ),
        ],
    ),
    (
        "admissionregistration/v1.ValidatingAdmissionPolicyBinding",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "admissionregistration/v1.ValidatingAdmissionPolicySpec",
        &[
            field(
                "matchConditions",
                Strategy::Merge(Some("name")),
                false,
                None,
            ),
            field("variables", Strategy::Merge(Some("name")), false, None),
        ],
    ),
    (
        "admissionregistration/v1.ValidatingWebhook",
        &[field(
            "matchConditions",
            Strategy::Merge(Some("name")),
            false,
            None,
        )],
    ),
    (
        "admissionregistration/v1.ValidatingWebhookConfiguration",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "webhooks",
                Strategy::Merge(Some("name")),
                false,
                Some("admissionregistration/v1.ValidatingWebhook"),
            ),
        ],
    ),
    (
        "apps/v1.ControllerRevision",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "apps/v1.DaemonSet",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("apps/v1.DaemonSetSpec"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("apps/v1.DaemonSetStatus"),
            ),
        ],
    ),
    (
        "apps/v1.DaemonSetSpec",
        &[field(
            "template",
            Strategy::Default,
            false,
            Some("core/v1.PodTemplateSpec"),
        )],
    ),
    (
        "apps/v1.DaemonSetStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "apps/v1.Deployment",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("apps/v1.DeploymentSpec"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("apps/v1.DeploymentStatus"),
            ),
        ],
    ),
    (
        "apps/v1.DeploymentSpec",
        &[
            field(
                "template",
                Strategy::Default,
                false,
                Some("core/v1.PodTemplateSpec"),
            ),
            field("strategy", Strategy::Default, true, None),
        ],
    ),
    (
        "apps/v1.DeploymentStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "apps/v1.ReplicaSet",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("apps/v1.ReplicaSetSpec"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("apps/v1.ReplicaSetStatus"),
            ),
        ],
    ),
    (
        "apps/v1.ReplicaSetSpec",
        &[field(
            "template",
            Strategy::Default,
            false,
            Some("core/v1.PodTemplateSpec"),
        )],
    ),
    (
        "apps/v1.ReplicaSetStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "apps/v1.StatefulSet",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("apps/v1.StatefulSetSpec"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("apps/v1.StatefulSetStatus"),
            ),
        ],
    ),
    (
        "apps/v1.StatefulSetSpec",
        &[field(
            "template",
            Strategy::Default,
            false,
            Some("core/v1.PodTemplateSpec"),
        )],
    ),
    (
        "apps/v1.StatefulSetStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "autoscaling/v1.Scale",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "autoscaling/v2.HorizontalPodAutoscaler",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("autoscaling/v2.HorizontalPodAutoscalerStatus"),
            ),
        ],
    ),
    (
        "autoscaling/v2.HorizontalPodAutoscalerStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "batch/v1.CronJob",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("batch/v1.CronJobSpec"),
            ),
        ],
    ),
    (
        "batch/v1.CronJobSpec",
        &[field(
            "jobTemplate",
            Strategy::Default,
            false,
            Some("batch/v1.JobTemplateSpec"),
        )],
    ),
    (
        "batch/v1.Job",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field("spec", Strategy::Default, false, Some("batch/v1.JobSpec")),
            field(
                "status",
                Strategy::Default,
                false,
                Some("batch/v1.JobStatus"),
            ),
        ],
    ),
    (
        "batch/v1.JobSchedulingConfiguration",
        &[field(
            "resourceClaims",
            Strategy::Merge(Some("name")),
            false,
            None,
        )],
    ),
    (
        "batch/v1.JobSpec",
        &[
            field(
                "template",
                Strategy::Default,
                false,
                Some("core/v1.PodTemplateSpec"),
            ),
            field(
                "scheduling",
                Strategy::Default,
                false,
                Some("batch/v1.JobSchedulingConfiguration"),
            ),
        ],
    ),
    (
        "batch/v1.JobStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "batch/v1.JobTemplateSpec",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field("spec", Strategy::Default, false, Some("batch/v1.JobSpec")),
        ],
    ),
    (
        "certificates/v1.CertificateSigningRequest",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "certificates/v1.ClusterTrustBundle",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "certificates/v1.PodCertificateRequest",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("certificates/v1.PodCertificateRequestStatus"),
            ),
        ],
    ),
    (
        "certificates/v1.PodCertificateRequestStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "coordination/v1.Lease",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "core/v1.Binding",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "core/v1.ComponentStatus",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field("conditions", Strategy::Merge(Some("type")), false, None),
        ],
    ),
    (
        "core/v1.ConfigMap",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "core/v1.Container",
        &[
            field("ports", Strategy::Merge(Some("containerPort")), false, None),
            field("env", Strategy::Merge(Some("name")), false, None),
            field(
                "volumeMounts",
                Strategy::Merge(Some("mountPath")),
                false,
                None,
            ),
            field(
                "volumeDevices",
                Strategy::Merge(Some("devicePath")),
                false,
                None,
            ),
        ],
    ),
    (
        "core/v1.Endpoints",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "core/v1.EphemeralContainer",
        &[
            field("ports", Strategy::Merge(Some("containerPort")), false, None),
            field("env", Strategy::Merge(Some("name")), false, None),
            field(
                "volumeMounts",
                Strategy::Merge(Some("mountPath")),
                false,
                None,
            ),
            field(
                "volumeDevices",
                Strategy::Merge(Some("devicePath")),
                false,
                None,
            ),
        ],
    ),
    (
        "core/v1.EphemeralVolumeSource",
        &[field(
            "volumeClaimTemplate",
            Strategy::Default,
            false,
            Some("core/v1.PersistentVolumeClaimTemplate"),
        )],
    ),
    (
        "core/v1.Event",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "core/v1.LimitRange",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "core/v1.Namespace",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("core/v1.NamespaceStatus"),
            ),
        ],
    ),
    (
        "core/v1.NamespaceStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "core/v1.Node",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field("spec", Strategy::Default, false, Some("core/v1.NodeSpec")),
            field(
                "status",
                Strategy::Default,
                false,
                Some("core/v1.NodeStatus"),
            ),
        ],
    ),
    (
        "core/v1.NodeAllocatableResourceClaimStatus",
        &[
            field("mapping", Strategy::Merge(Some("name")), false, None),
            field("overhead", Strategy::Merge(Some("name")), false, None),
        ],
    ),
    (
        "core/v1.NodeSpec",
        &[field("podCIDRs", Strategy::Merge(None), false, None)],
    ),
    (
        "core/v1.NodeStatus",
        &[
            field("conditions", Strategy::Merge(Some("type")), false, None),
            field("addresses", Strategy::Merge(Some("type")), false, None),
        ],
    ),
    (
        "core/v1.PersistentVolume",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "core/v1.PersistentVolumeClaim",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("core/v1.PersistentVolumeClaimStatus"),
            ),
        ],
    ),
    (
        "core/v1.PersistentVolumeClaimStatus",
        &[
            field("conditions", Strategy::Merge(Some("type")), false, None),
            field(
                "healthStatus",
                Strategy::Default,
                false,
                Some("core/v1.VolumeHealthStatus"),
            ),
        ],
    ),
    (
        "core/v1.PersistentVolumeClaimTemplate",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "core/v1.Pod",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field("spec", Strategy::Default, false, Some("core/v1.PodSpec")),
            field(
                "status",
                Strategy::Default,
                false,
                Some("core/v1.PodStatus"),
            ),
        ],
    ),
    (
        "core/v1.PodSpec",
        &[
            field(
                "volumes",
                Strategy::Merge(Some("name")),
                true,
                Some("core/v1.Volume"),
            ),
            field(
                "initContainers",
                Strategy::Merge(Some("name")),
                false,
                Some("core/v1.Container"),
            ),
            field(
                "containers",
                Strategy::Merge(Some("name")),
                false,
                Some("core/v1.Container"),
            ),
            field(
                "ephemeralContainers",
                Strategy::Merge(Some("name")),
                false,
                Some("core/v1.EphemeralContainer"),
            ),
            field(
                "imagePullSecrets",
                Strategy::Merge(Some("name")),
                false,
                None,
            ),
            field("hostAliases", Strategy::Merge(Some("ip")), false, None),
            field(
                "topologySpreadConstraints",
                Strategy::Merge(Some("topologyKey")),
                false,
                None,
            ),
            field(
                "schedulingGates",
                Strategy::Merge(Some("name")),
                false,
                None,
            ),
            field("resourceClaims", Strategy::Merge(Some("name")), true, None),
            field(
                "evictionResponders",
                Strategy::Merge(Some("name")),
                false,
                None,
            ),
        ],
    ),
    (
        "core/v1.PodStatus",
        &[
            field("conditions", Strategy::Merge(Some("type")), false, None),
            field("hostIPs", Strategy::Merge(Some("ip")), false, None),
            field("podIPs", Strategy::Merge(Some("ip")), false, None),
            field(
                "resourceClaimStatuses",
                Strategy::Merge(Some("name")),
                true,
                None,
            ),
            field(
                "nodeAllocatableResourceClaimStatuses",
                Strategy::Merge(Some("resourceClaimName")),
                false,
                Some("core/v1.NodeAllocatableResourceClaimStatus"),
            ),
        ],
    ),
    (
        "core/v1.PodTemplate",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "template",
                Strategy::Default,
                false,
                Some("core/v1.PodTemplateSpec"),
            ),
        ],
    ),
    (
        "core/v1.PodTemplateSpec",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field("spec", Strategy::Default, false, Some("core/v1.PodSpec")),
        ],
    ),
    (
        "core/v1.ReplicationController",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("core/v1.ReplicationControllerSpec"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("core/v1.ReplicationControllerStatus"),
            ),
        ],
    ),
    (
        "core/v1.ReplicationControllerSpec",
        &[field(
            "template",
            Strategy::Default,
            false,
            Some("core/v1.PodTemplateSpec"),
        )],
    ),
    (
        "core/v1.ReplicationControllerStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "core/v1.ResourceQuota",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "core/v1.Secret",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "core/v1.Service",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("core/v1.ServiceSpec"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("core/v1.ServiceStatus"),
            ),
        ],
    ),
    (
        "core/v1.ServiceAccount",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field("secrets", Strategy::Merge(Some("name")), false, None),
        ],
    ),
    (
        "core/v1.ServiceSpec",
        &[field("ports", Strategy::Merge(Some("port")), false, None)],
    ),
    (
        "core/v1.ServiceStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "core/v1.Volume",
        &[field(
            "ephemeral",
            Strategy::Default,
            false,
            Some("core/v1.EphemeralVolumeSource"),
        )],
    ),
    (
        "core/v1.VolumeHealthStatus",
        &[field(
            "healthConditions",
            Strategy::Merge(Some("status")),
            false,
            None,
        )],
    ),
    (
        "discovery/v1.EndpointSlice",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "events/v1.Event",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "flowcontrol/v1.FlowSchema",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("flowcontrol/v1.FlowSchemaStatus"),
            ),
        ],
    ),
    (
        "flowcontrol/v1.FlowSchemaStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "flowcontrol/v1.PriorityLevelConfiguration",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("flowcontrol/v1.PriorityLevelConfigurationStatus"),
            ),
        ],
    ),
    (
        "flowcontrol/v1.PriorityLevelConfigurationStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "meta/v1.Object",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "meta/v1.ObjectMeta",
        &[
            field("finalizers", Strategy::Merge(None), false, None),
            field("ownerReferences", Strategy::Merge(Some("uid")), false, None),
        ],
    ),
    (
        "networking/v1.IPAddress",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "networking/v1.Ingress",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "networking/v1.IngressClass",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "networking/v1.NetworkPolicy",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "networking/v1.ServiceCIDR",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("networking/v1.ServiceCIDRStatus"),
            ),
        ],
    ),
    (
        "networking/v1.ServiceCIDRStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "node/v1.RuntimeClass",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "policy/v1.Eviction",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "policy/v1.PodDisruptionBudget",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("policy/v1.PodDisruptionBudgetSpec"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("policy/v1.PodDisruptionBudgetStatus"),
            ),
        ],
    ),
    (
        "policy/v1.PodDisruptionBudgetSpec",
        &[field("selector", Strategy::Replace, false, None)],
    ),
    (
        "policy/v1.PodDisruptionBudgetStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "rbac/v1.ClusterRole",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "rbac/v1.ClusterRoleBinding",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "rbac/v1.Role",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "rbac/v1.RoleBinding",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "resource/v1.DeviceClass",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "resource/v1.DeviceTaintRule",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("resource/v1.DeviceTaintRuleStatus"),
            ),
        ],
    ),
    (
        "resource/v1.DeviceTaintRuleStatus",
        &[field(
            "conditions",
            Strategy::Merge(Some("type")),
            false,
            None,
        )],
    ),
    (
        "resource/v1.ResourceClaim",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("resource/v1.ResourceClaimStatus"),
            ),
        ],
    ),
    (
        "resource/v1.ResourceClaimStatus",
        &[field(
            "reservedFor",
            Strategy::Merge(Some("uid")),
            false,
            None,
        )],
    ),
    (
        "resource/v1.ResourceClaimTemplate",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("resource/v1.ResourceClaimTemplateSpec"),
            ),
        ],
    ),
    (
        "resource/v1.ResourceClaimTemplateSpec",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "resource/v1.ResourceSlice",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "scheduling/v1.PriorityClass",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "storage/v1.CSIDriver",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "storage/v1.CSINode",
        &[
            field(
                "metadata",
                Strategy::Default,
                false,
                Some("meta/v1.ObjectMeta"),
            ),
            field(
                "spec",
                Strategy::Default,
                false,
                Some("storage/v1.CSINodeSpec"),
            ),
            field(
                "status",
                Strategy::Default,
                false,
                Some("storage/v1.CSINodeStatus"),
            ),
        ],
    ),
    (
        "storage/v1.CSINodeSpec",
        &[field("drivers", Strategy::Merge(Some("name")), false, None)],
    ),
    (
        "storage/v1.CSINodeStatus",
        &[field(
            "storageHealth",
            Strategy::Merge(Some("name")),
            false,
            None,
        )],
    ),
    (
        "storage/v1.CSIStorageCapacity",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "storage/v1.StorageClass",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "storage/v1.VolumeAttachment",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
    (
        "storage/v1.VolumeAttributesClass",
        &[field(
            "metadata",
            Strategy::Default,
            false,
            Some("meta/v1.ObjectMeta"),
        )],
    ),
];

/// The root type of `kind`, or `None` for kinds without strategy information (custom resources,
/// unknown kinds).
pub fn root_type(kind: GroupKind<'_>) -> Option<&'static str> {
    // Every write looks its kind up (field tracking, patches): a hash map, not a scan.
    static BY_KIND: std::sync::LazyLock<
        std::collections::HashMap<(&'static str, &'static str), &'static str>,
    > = std::sync::LazyLock::new(|| {
        KINDS
            .iter()
            .map(|(group, name, ty)| ((*group, *name), *ty))
            .collect()
    });
    BY_KIND.get(&(kind.group, kind.kind)).copied()
}

/// Whether strategic merge patch has type information for `kind`. Upstream rejects strategic
/// merge patches of custom resources with 415; this lets the API server do the same.
pub fn supports_strategic(kind: GroupKind<'_>) -> bool {
    root_type(kind).is_some()
}

/// The fields of type `ty` that have metadata.
pub fn fields(ty: &str) -> &'static [Field] {
    TYPES
        .binary_search_by(|(name, _)| (*name).cmp(ty))
        .map(|i| TYPES[i].1)
        .unwrap_or(&[])
}

/// The metadata of field `name` of type `ty` (`None`: a type without metadata).
pub(crate) fn lookup(ty: Option<&str>, name: &str) -> &'static Field {
    ty.and_then(|ty| fields(ty).iter().find(|f| f.name == name))
        .unwrap_or(&DEFAULT_FIELD)
}

/// The metadata of the field at `path` (JSON names; list elements are not path steps) in objects
/// of `kind`: `["spec", "template", "spec", "containers"]` for a Deployment's containers.
pub fn field_at(kind: GroupKind<'_>, path: &[&str]) -> Option<&'static Field> {
    let mut ty = Some(root_type(kind)?);
    let mut found = None;
    for step in path {
        let f = ty.and_then(|ty| fields(ty).iter().find(|f| f.name == *step))?;
        ty = f.ty;
        found = Some(f);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_sorted_and_every_reference_resolves() {
        for pair in TYPES.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "{} sorts after {}",
                pair[0].0,
                pair[1].0
            );
        }
        for (_, _, ty) in KINDS {
            assert!(!fields(ty).is_empty(), "kind root {ty} has no entry");
        }
        for (name, fs) in TYPES {
            for f in *fs {
                if let Some(ty) = f.ty {
                    assert!(
                        !fields(ty).is_empty(),
                        "{name}.{} points at unknown {ty}",
                        f.name
                    );
                }
            }
        }
    }

    #[test]
    fn every_type_is_reachable_from_a_kind() {
        let mut seen: Vec<&str> = KINDS.iter().map(|(_, _, ty)| *ty).collect();
        let mut i = 0;
        while i < seen.len() {
            for f in fields(seen[i]) {
                if let Some(ty) = f.ty
                    && !seen.contains(&ty)
                {
                    seen.push(ty);
                }
            }
            i += 1;
        }
        for (name, _) in TYPES {
            assert!(seen.contains(name), "{name} is unreachable");
        }
    }
}
