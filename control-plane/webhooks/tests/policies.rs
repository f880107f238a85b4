//! ValidatingAdmissionPolicy: Gateway API's safe-upgrades policy and table-driven cases for the
//! rest of the policy semantics.

use serde_json::{Value, json};
use webhooks::{Attributes, Compiled, Gvk, Gvr, Operation};

const SAFE_UPGRADES: &str =
    "/work/shared/data/crds/gateway-api/gateway.networking.k8s.io_vap_safeupgrades.yaml";
const SAFE_UPGRADES_NAME: &str = "safe-upgrades.gateway.networking.k8s.io";
const OLD_VERSIONS: &str = "Installing CRDs with version before v1.5.0 is prohibited by default. Uninstall ValidatingAdmissionPolicy safe-upgrades.gateway.networking.k8s.io to install older versions.";

fn no_services(_: &str, _: &str, _: u16, _: &str) -> Option<String> {
    None
}

fn safe_upgrades() -> Vec<Value> {
    let text = std::fs::read_to_string(SAFE_UPGRADES).expect("the Gateway API policy");
    let mut docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("YAML");
    for (i, d) in docs.iter_mut().enumerate() {
        d["metadata"]["resourceVersion"] = json!(i.to_string());
    }
    docs
}

fn crd(group: &str, bundle: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("httproutes.{group}"),
            "annotations": {
                "gateway.networking.k8s.io/bundle-version": bundle,
                "gateway.networking.k8s.io/channel": "standard",
            },
        },
        "spec": {"group": group, "names": {"plural": "httproutes", "kind": "HTTPRoute"}},
    })
}

fn crd_update(group: &str, bundle: &str) -> Attributes {
    let mut a = Attributes::new(
        Operation::Update,
        Gvk::new("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        Gvr::new("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
    );
    a.name = format!("httproutes.{group}");
    a.object = Some(crd(group, bundle));
    a.old_object = Some(crd(group, "v1.5.0"));
    a
}

async fn validate(
    objects: &[Value],
    a: &Attributes,
) -> Result<webhooks::Validated, webhooks::Denial> {
    Compiled::new(objects).validate(a, &no_services).await
}

#[tokio::test]
async fn safe_upgrades_denies_an_old_gateway_bundle() {
    let d = validate(
        &safe_upgrades(),
        &crd_update("gateway.networking.k8s.io", "v1.2.0"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        d.message,
        format!(
            "customresourcedefinitions.apiextensions.k8s.io \"httproutes.gateway.networking.k8s.io\" is forbidden: ValidatingAdmissionPolicy '{SAFE_UPGRADES_NAME}' with binding '{SAFE_UPGRADES_NAME}' denied request: {OLD_VERSIONS}"
        )
    );
    assert_eq!((d.code, d.reason.as_str()), (422, "Invalid"));
    let status = d.to_status();
    assert_eq!(status["details"]["group"], "apiextensions.k8s.io");
    assert_eq!(status["details"]["kind"], "customresourcedefinitions");
    assert_eq!(
        status["details"]["name"],
        "httproutes.gateway.networking.k8s.io"
    );
    assert!(
        status["details"]["causes"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("ValidatingAdmissionPolicy '")
    );
}

#[tokio::test]
async fn safe_upgrades_admits_new_bundles_and_other_groups() {
    let objects = safe_upgrades();
    for a in [
        crd_update("gateway.networking.k8s.io", "v1.5.0"),
        crd_update("example.com", "v1.2.0"),
    ] {
        let v = validate(&objects, &a).await.unwrap();
        assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    }
}

#[tokio::test]
async fn safe_upgrades_warn_action_warns_instead() {
    let mut objects = safe_upgrades();
    objects[1]["spec"]["validationActions"] = json!(["Warn", "Audit"]);
    let v = validate(&objects, &crd_update("gateway.networking.k8s.io", "v1.2.0"))
        .await
        .unwrap();
    assert_eq!(
        v.warnings,
        vec![format!(
            "Validation failed for ValidatingAdmissionPolicy '{SAFE_UPGRADES_NAME}' with binding '{SAFE_UPGRADES_NAME}': {OLD_VERSIONS}"
        )]
    );
    let audit: Value = serde_json::from_str(
        &v.audit_annotations["validation.policy.admission.k8s.io/validation_failure"],
    )
    .unwrap();
    assert_eq!(
        audit,
        json!([{
            "message": OLD_VERSIONS,
            "policy": SAFE_UPGRADES_NAME,
            "binding": SAFE_UPGRADES_NAME,
            "expressionIndex": 1,
            "validationActions": ["Warn", "Audit"],
        }])
    );
}

#[tokio::test]
async fn safe_upgrades_ignores_other_resources_and_deletes() {
    let objects = safe_upgrades();
    let mut a = crd_update("gateway.networking.k8s.io", "v1.2.0");
    a.operation = Operation::Delete;
    validate(&objects, &a).await.unwrap();
    let mut a = crd_update("gateway.networking.k8s.io", "v1.2.0");
    a.resource = Gvr::new(
        "apiextensions.k8s.io",
        "v1beta1",
        "customresourcedefinitions",
    );
    validate(&objects, &a).await.unwrap();
}

fn policy(spec: Value) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "replicas", "resourceVersion": "1"},
        "spec": spec,
    })
}

fn binding(spec: Value) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "replicas-binding", "resourceVersion": "1"},
        "spec": spec,
    })
}

fn deployment_create(replicas: i64, namespace_labels: Value) -> Attributes {
    let mut a = Attributes::new(
        Operation::Create,
        Gvk::new("apps", "v1", "Deployment"),
        Gvr::new("apps", "v1", "deployments"),
    );
    a.namespace = "team-a".into();
    a.name = "web".into();
    a.object = Some(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web"}},
        "spec": {"replicas": replicas},
    }));
    a.namespace_object = Some(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": namespace_labels},
    }));
    a.user.username = "alice".into();
    a
}

const DEPLOYMENTS: &str = r#"{"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]}"#;

struct Case {
    name: &'static str,
    policy: Value,
    binding: Value,
    replicas: i64,
    /// `Ok(warnings)` or `Err((code, reason, message after "is forbidden: "))`.
    want: Result<Vec<&'static str>, (u16, &'static str, &'static str)>,
}

#[tokio::test]
async fn policy_semantics() {
    let constraints: Value = serde_json::from_str(DEPLOYMENTS).unwrap();
    let deny = json!({"policyName": "replicas", "validationActions": ["Deny"]});
    let cases = vec![
        Case {
            name: "default message is the failed expression",
            policy: json!({"matchConstraints": constraints, "validations": [{"expression": "object.spec.replicas <= 5"}]}),
            binding: deny.clone(),
            replicas: 6,
            want: Err((
                422,
                "Invalid",
                "ValidatingAdmissionPolicy 'replicas' with binding 'replicas-binding' denied request: failed expression: object.spec.replicas <= 5",
            )),
        },
        Case {
            name: "admitted",
            policy: json!({"matchConstraints": constraints, "validations": [{"expression": "object.spec.replicas <= 5"}]}),
            binding: deny.clone(),
            replicas: 5,
            want: Ok(vec![]),
        },
        Case {
            name: "messageExpression, variables and reason",
            policy: json!({
                "matchConstraints": constraints,
                "variables": [{"name": "max", "expression": "5"}, {"name": "over", "expression": "object.spec.replicas > variables.max"}],
                "validations": [{
                    "expression": "!variables.over",
                    "messageExpression": "'replicas ' + string(object.spec.replicas) + ' exceed ' + string(variables.max) + ' for ' + request.userInfo.username",
                    "reason": "Forbidden",
                }],
            }),
            binding: deny.clone(),
            replicas: 7,
            want: Err((
                403,
                "Forbidden",
                "ValidatingAdmissionPolicy 'replicas' with binding 'replicas-binding' denied request: replicas 7 exceed 5 for alice",
            )),
        },
        Case {
            name: "a false match condition skips the policy",
            policy: json!({
                "matchConstraints": constraints,
                "matchConditions": [{"name": "only-db", "expression": "object.metadata.name == 'db'"}],
                "validations": [{"expression": "false", "message": "never"}],
            }),
            binding: deny.clone(),
            replicas: 1,
            want: Ok(vec![]),
        },
        Case {
            name: "evaluation errors deny under Fail",
            policy: json!({"matchConstraints": constraints, "validations": [{"expression": "object.spec.missing > 1"}]}),
            binding: deny.clone(),
            replicas: 1,
            want: Err((
                422,
                "Invalid",
                "ValidatingAdmissionPolicy 'replicas' with binding 'replicas-binding' denied request: expression 'object.spec.missing > 1' resulted in error: no such key: missing",
            )),
        },
        Case {
            name: "evaluation errors are ignored under Ignore",
            policy: json!({"matchConstraints": constraints, "failurePolicy": "Ignore", "validations": [{"expression": "object.spec.missing > 1"}]}),
            binding: deny.clone(),
            replicas: 1,
            want: Ok(vec![]),
        },
        Case {
            name: "binding namespace selector that does not match",
            policy: json!({"matchConstraints": constraints, "validations": [{"expression": "false", "message": "no"}]}),
            binding: json!({"policyName": "replicas", "validationActions": ["Deny"], "matchResources": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}}),
            replicas: 1,
            want: Ok(vec![]),
        },
        Case {
            name: "namespaceObject is bound",
            policy: json!({"matchConstraints": constraints, "validations": [{"expression": "namespaceObject.metadata.labels.env != 'dev'", "message": "not in dev"}]}),
            binding: deny.clone(),
            replicas: 1,
            want: Err((
                422,
                "Invalid",
                "ValidatingAdmissionPolicy 'replicas' with binding 'replicas-binding' denied request: not in dev",
            )),
        },
        Case {
            name: "paramKind is refused as configuration",
            policy: json!({"matchConstraints": constraints, "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}, "validations": [{"expression": "true"}]}),
            binding: deny.clone(),
            replicas: 1,
            want: Err((
                422,
                "Invalid",
                "ValidatingAdmissionPolicy 'replicas' denied request: failed to configure policy: paramKind is not supported by this server",
            )),
        },
        Case {
            name: "excluded resources",
            policy: json!({"matchConstraints": {"resourceRules": constraints["resourceRules"], "excludeResourceRules": [{"apiGroups": ["apps"], "apiVersions": ["*"], "operations": ["*"], "resources": ["deployments"], "resourceNames": ["web"]}]}, "validations": [{"expression": "false"}]}),
            binding: deny.clone(),
            replicas: 1,
            want: Ok(vec![]),
        },
        Case {
            name: "Warn",
            policy: json!({"matchConstraints": constraints, "validations": [{"expression": "object.spec.replicas <= 5", "message": "too many"}]}),
            binding: json!({"policyName": "replicas", "validationActions": ["Warn"]}),
            replicas: 6,
            want: Ok(vec![
                "Validation failed for ValidatingAdmissionPolicy 'replicas' with binding 'replicas-binding': too many",
            ]),
        },
    ];
    for c in cases {
        let objects = [policy(c.policy), binding(c.binding)];
        let a = deployment_create(c.replicas, json!({"env": "dev"}));
        let got = validate(&objects, &a).await;
        match (got, c.want) {
            (Ok(v), Ok(w)) => assert_eq!(v.warnings, w, "{}", c.name),
            (Err(d), Err((code, reason, msg))) => {
                assert_eq!(
                    (d.code, d.reason.as_str(), d.message.as_str()),
                    (
                        code,
                        reason,
                        format!("deployments.apps \"web\" is forbidden: {msg}").as_str()
                    ),
                    "{}",
                    c.name
                );
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", c.name),
        }
    }
}

#[tokio::test]
async fn audit_annotations_are_published_under_the_policy() {
    let constraints: Value = serde_json::from_str(DEPLOYMENTS).unwrap();
    let objects = [
        policy(json!({
            "matchConstraints": constraints,
            "auditAnnotations": [
                {"key": "replicas", "valueExpression": "'replicas: ' + string(object.spec.replicas)"},
                {"key": "nothing", "valueExpression": "null"},
            ],
        })),
        binding(json!({"policyName": "replicas", "validationActions": ["Audit"]})),
    ];
    let v = validate(&objects, &deployment_create(3, json!({})))
        .await
        .unwrap();
    assert_eq!(v.audit_annotations.len(), 1, "{:?}", v.audit_annotations);
    assert_eq!(v.audit_annotations["replicas/replicas"], "replicas: 3");
}

#[test]
fn recompiles_only_what_changed() {
    let objects = safe_upgrades();
    let c = Compiled::new(&objects);
    assert!(!c.is_stale(&objects));
    let mut changed = objects.clone();
    changed[0]["metadata"]["resourceVersion"] = json!("9");
    assert!(c.is_stale(&changed));
    assert!(c.is_stale(&objects[..1]));
    let c2 = c.update(&changed);
    assert!(!c2.is_stale(&changed));
}

#[test]
fn compiled_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>(_: &T) {}
    assert_send_sync::<Compiled>();
    // The API server awaits these in handlers that must be Send.
    let c = Compiled::new(&[]);
    let a = crd_update("example.com", "v1");
    assert_send(&c.mutate(&a, &no_services));
    assert_send(&c.validate(&a, &no_services));
}

#[tokio::test]
async fn denials_name_the_generate_name_before_the_server_generates_one() {
    let constraints: Value = serde_json::from_str(DEPLOYMENTS).unwrap();
    let objects = [
        policy(
            json!({"matchConstraints": constraints, "validations": [{"expression": "false", "message": "no"}]}),
        ),
        binding(json!({"policyName": "replicas", "validationActions": ["Deny"]})),
    ];
    let mut a = deployment_create(1, json!({}));
    a.name = String::new();
    let obj = a.object.as_mut().unwrap();
    obj["metadata"]["name"] = json!(null);
    obj["metadata"]["generateName"] = json!("web-");
    let d = validate(&objects, &a).await.unwrap_err();
    assert_eq!(
        d.message,
        "deployments.apps \"web-\" is forbidden: ValidatingAdmissionPolicy 'replicas' with binding 'replicas-binding' denied request: no"
    );
}
