//! The Rust type behind each built-in kind, for the things that need the type itself: OpenAPI
//! schemas and strict decoding (finding fields the type does not have).

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
    certificates::v1 as certificates, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Something done with a built-in kind's type.
pub(crate) trait KindVisitor {
    type Output;
    fn visit<
        T: k8s_openapi::Resource + schemars::JsonSchema + DeserializeOwned + Serialize + 'static,
    >(
        self,
    ) -> Self::Output;
}

/// Runs `v` with the type of `group`/`kind`, if it is built in.
pub(crate) fn with_type<V: KindVisitor>(group: &str, kind: &str, v: V) -> Option<V::Output> {
    Some(match (group, kind) {
        ("", "ConfigMap") => v.visit::<core::ConfigMap>(),
        ("", "Endpoints") => v.visit::<core::Endpoints>(),
        ("", "Event") => v.visit::<core::Event>(),
        ("", "LimitRange") => v.visit::<core::LimitRange>(),
        ("", "Namespace") => v.visit::<core::Namespace>(),
        ("", "Node") => v.visit::<core::Node>(),
        ("", "PersistentVolumeClaim") => v.visit::<core::PersistentVolumeClaim>(),
        ("", "PersistentVolume") => v.visit::<core::PersistentVolume>(),
        ("", "Pod") => v.visit::<core::Pod>(),
        ("", "ReplicationController") => v.visit::<core::ReplicationController>(),
        ("", "ResourceQuota") => v.visit::<core::ResourceQuota>(),
        ("", "Secret") => v.visit::<core::Secret>(),
        ("", "ServiceAccount") => v.visit::<core::ServiceAccount>(),
        ("", "Service") => v.visit::<core::Service>(),
        ("apps", "ControllerRevision") => v.visit::<apps::ControllerRevision>(),
        ("apps", "DaemonSet") => v.visit::<apps::DaemonSet>(),
        ("apps", "Deployment") => v.visit::<apps::Deployment>(),
        ("apps", "ReplicaSet") => v.visit::<apps::ReplicaSet>(),
        ("apps", "StatefulSet") => v.visit::<apps::StatefulSet>(),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            v.visit::<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration>()
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => v.visit::<
            k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
        >(),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            v.visit::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy>()
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => v.visit::<
            k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        >(),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            v.visit::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>()
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            v.visit::<autoscaling::HorizontalPodAutoscaler>()
        }
        ("batch", "CronJob") => v.visit::<batch::CronJob>(),
        ("batch", "Job") => v.visit::<batch::Job>(),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            v.visit::<certificates::CertificateSigningRequest>()
        }
        ("coordination.k8s.io", "Lease") => v.visit::<coordination::Lease>(),
        ("discovery.k8s.io", "EndpointSlice") => v.visit::<discovery::EndpointSlice>(),
        ("events.k8s.io", "Event") => v.visit::<events::Event>(),
        ("networking.k8s.io", "IngressClass") => v.visit::<networking::IngressClass>(),
        ("networking.k8s.io", "Ingress") => v.visit::<networking::Ingress>(),
        ("networking.k8s.io", "NetworkPolicy") => v.visit::<networking::NetworkPolicy>(),
        ("policy", "PodDisruptionBudget") => v.visit::<policy::PodDisruptionBudget>(),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            v.visit::<rbac::ClusterRoleBinding>()
        }
        ("rbac.authorization.k8s.io", "ClusterRole") => v.visit::<rbac::ClusterRole>(),
        ("rbac.authorization.k8s.io", "RoleBinding") => v.visit::<rbac::RoleBinding>(),
        ("rbac.authorization.k8s.io", "Role") => v.visit::<rbac::Role>(),
        ("scheduling.k8s.io", "PriorityClass") => v.visit::<scheduling::PriorityClass>(),
        ("storage.k8s.io", "StorageClass") => v.visit::<storage::StorageClass>(),
        (berth_api::GROUP, "Cluster") => v.visit::<berth_api::Cluster>(),
        (berth_api::GROUP, "NodePool") => v.visit::<berth_api::NodePool>(),
        _ => return None,
    })
}

/// What strict decoding found wrong with a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeProblem {
    /// The body does not fit the type (a wrong JSON type somewhere).
    Malformed(String),
    /// Fields the type does not have, as dotted paths (`spec.replicass`).
    Unknown(Vec<String>),
}

struct StrictDecode<'a>(&'a Value);

impl KindVisitor for StrictDecode<'_> {
    type Output = Result<(), DecodeProblem>;

    fn visit<
        T: k8s_openapi::Resource + schemars::JsonSchema + DeserializeOwned + Serialize + 'static,
    >(
        self,
    ) -> Self::Output {
        let typed = T::deserialize(self.0).map_err(|e| DecodeProblem::Malformed(e.to_string()))?;
        let back =
            serde_json::to_value(&typed).map_err(|e| DecodeProblem::Malformed(e.to_string()))?;
        let mut unknown = Vec::new();
        unknown_fields(self.0, &back, "", &mut unknown);
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(DecodeProblem::Unknown(unknown))
        }
    }
}

/// Decodes `obj` as the type of `group`/`kind` and reports fields it does not have. The typed
/// decoders skip unknown fields, so whatever the body has and the re-encoded value lacks is one.
pub(crate) fn strict_decode(group: &str, kind: &str, obj: &Value) -> Result<(), DecodeProblem> {
    with_type(group, kind, StrictDecode(obj)).unwrap_or(Ok(()))
}

fn unknown_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(tv) => unknown_fields(v, tv, &p, out),
                    // Nulls and empty values are dropped by the typed encoder without being unknown.
                    None if v.is_null()
                        || v.as_object().is_some_and(|m| m.is_empty())
                        || v.as_array().is_some_and(|a| a.is_empty()) => {}
                    None if typed_allows_empty(b) => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                unknown_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Typed maps of free-form values (labels, data) always keep their keys, so a missing key there
/// cannot happen; this hook exists for kinds whose typed form drops zero values.
fn typed_allows_empty(_typed: &serde_json::Map<String, Value>) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_are_found_by_path() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"replicas": 1, "replicass": 2, "selector": {}, "template": {"spec": {"containers": [{"name": "c", "imagee": "x"}]}}}});
        match strict_decode("apps", "Deployment", &obj) {
            Err(DecodeProblem::Unknown(f)) => {
                assert_eq!(
                    f,
                    vec![
                        "spec.replicass".to_string(),
                        "spec.template.spec.containers[0].imagee".to_string()
                    ]
                )
            }
            other => panic!("{other:?}"),
        }
        let ok = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "b"}}, "data": {"k": "v"}});
        assert_eq!(strict_decode("", "ConfigMap", &ok), Ok(()));
        let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": 1}});
        assert!(matches!(
            strict_decode("", "ConfigMap", &bad),
            Err(DecodeProblem::Malformed(_))
        ));
    }
}
