//! ValidatingAdmissionPolicy: Gateway API's safe-upgrades policy and table-driven cases for the
//! rest of the policy semantics.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use webhooks::{
    Attributes, BoxFuture, Compiled, Gvk, Gvr, Operation, ParamScope, ParamSource, Validated,
};

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
            name: "without a param source, paramKind names no served kind",
            policy: json!({"matchConstraints": constraints, "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}, "validations": [{"expression": "true"}]}),
            binding: deny.clone(),
            replicas: 1,
            want: Err((
                422,
                "Invalid",
                "ValidatingAdmissionPolicy 'replicas' denied request: failed to configure policy: failed to find resource referenced by paramKind: '/v1, Kind=ConfigMap'",
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
    assert_send(&c.validate_with_params(&a, &no_services, &Memory::new(vec![])));
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

// ---------------------------------------------------------------------------------------------
// Parameters: paramKind and paramRef, read through an in-memory ParamSource.

/// Param objects in memory: ConfigMaps (namespaced) and `example.com/v1` `Limit`s
/// (cluster-scoped); counts the reads.
struct Memory {
    objects: Vec<Value>,
    reads: AtomicUsize,
}

impl Memory {
    fn new(objects: Vec<Value>) -> Self {
        Memory {
            objects,
            reads: AtomicUsize::new(0),
        }
    }
}

impl ParamSource for Memory {
    fn scope<'a>(&'a self, kind: &'a Gvk) -> BoxFuture<'a, Result<Option<ParamScope>, String>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let scope = match (
            kind.group.as_str(),
            kind.version.as_str(),
            kind.kind.as_str(),
        ) {
            ("", "v1", "ConfigMap") => Some(ParamScope::Namespaced),
            ("example.com", "v1", "Limit") => Some(ParamScope::Cluster),
            _ => None,
        };
        Box::pin(async move { Ok(scope) })
    }

    fn objects<'a>(
        &'a self,
        kind: &'a Gvk,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Value>, String>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let found = self
            .objects
            .iter()
            .filter(|o| o["kind"] == kind.kind.as_str())
            .filter(|o| o["metadata"]["namespace"].as_str() == namespace)
            .filter(|o| name.is_none_or(|n| o["metadata"]["name"] == n))
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }
}

fn limits(namespace: &str, name: &str, max: i64, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"maxReplicas": max.to_string()},
    })
}

/// A policy on deployments with `paramKind` and the binding `param_ref`.
fn param_policy(param_kind: Value, failure: &str, param_ref: Value) -> [Value; 2] {
    let constraints: Value = serde_json::from_str(DEPLOYMENTS).unwrap();
    let mut b = json!({"policyName": "replicas", "validationActions": ["Deny"]});
    if !param_ref.is_null() {
        b["paramRef"] = param_ref;
    }
    [
        policy(json!({
            "matchConstraints": constraints,
            "failurePolicy": failure,
            "paramKind": param_kind,
            "validations": [{
                "expression": "object.spec.replicas <= int(params.data.maxReplicas)",
                "messageExpression": "'at most ' + params.data.maxReplicas + ' replicas (' + params.metadata.namespace + '/' + params.metadata.name + ')'",
            }],
        })),
        binding(b),
    ]
}

fn config_maps() -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap"})
}

async fn validate_params(
    objects: &[Value],
    a: &Attributes,
    source: &Memory,
) -> Result<Validated, String> {
    Compiled::new(objects)
        .validate_with_params(a, &no_services, source)
        .await
        .map_err(|d| {
            assert_eq!(
                (d.code, d.reason.as_str()),
                (422, "Invalid"),
                "{}",
                d.message
            );
            let prefix = "deployments.apps \"web\" is forbidden: ";
            d.message
                .strip_prefix(prefix)
                .unwrap_or(&d.message)
                .to_owned()
        })
}

const DENIED: &str =
    "ValidatingAdmissionPolicy 'replicas' with binding 'replicas-binding' denied request: ";

#[tokio::test]
async fn params_by_name() {
    let source = Memory::new(vec![
        limits("team-a", "limits", 3, json!({})),
        limits("shared", "limits", 5, json!({})),
    ]);
    let objects = param_policy(
        config_maps(),
        "Fail",
        json!({"name": "limits", "namespace": "shared", "parameterNotFoundAction": "Deny"}),
    );
    validate_params(&objects, &deployment_create(5, json!({})), &source)
        .await
        .unwrap();
    let err = validate_params(&objects, &deployment_create(6, json!({})), &source)
        .await
        .unwrap_err();
    assert_eq!(err, format!("{DENIED}at most 5 replicas (shared/limits)"));
}

#[tokio::test]
async fn params_namespace_defaults_to_the_request_namespace() {
    let source = Memory::new(vec![
        limits("team-a", "limits", 3, json!({})),
        limits("shared", "limits", 5, json!({})),
    ]);
    let objects = param_policy(
        config_maps(),
        "Fail",
        json!({"name": "limits", "parameterNotFoundAction": "Deny"}),
    );
    validate_params(&objects, &deployment_create(3, json!({})), &source)
        .await
        .unwrap();
    let err = validate_params(&objects, &deployment_create(4, json!({})), &source)
        .await
        .unwrap_err();
    assert_eq!(err, format!("{DENIED}at most 3 replicas (team-a/limits)"));
}

#[tokio::test]
async fn params_by_selector_evaluate_once_per_object() {
    let source = Memory::new(vec![
        limits("team-a", "generous", 5, json!({"policy": "replicas"})),
        limits("team-a", "strict", 2, json!({"policy": "replicas"})),
        // Not selected: its label differs, or it is in another namespace.
        limits("team-a", "zero", 0, json!({"policy": "other"})),
        limits("team-b", "zero", 0, json!({"policy": "replicas"})),
    ]);
    let objects = param_policy(
        config_maps(),
        "Fail",
        json!({"selector": {"matchLabels": {"policy": "replicas"}}, "parameterNotFoundAction": "Deny"}),
    );
    validate_params(&objects, &deployment_create(2, json!({})), &source)
        .await
        .unwrap();
    // 3 passes `generous` and violates `strict`: the denial is that evaluation's.
    let err = validate_params(&objects, &deployment_create(3, json!({})), &source)
        .await
        .unwrap_err();
    assert_eq!(err, format!("{DENIED}at most 2 replicas (team-a/strict)"));
}

#[tokio::test]
async fn parameter_not_found_action() {
    let source = Memory::new(vec![limits(
        "team-a",
        "limits",
        3,
        json!({"policy": "replicas"}),
    )]);
    let missing = |action: &str, failure: &str| {
        (
            param_policy(
                config_maps(),
                failure,
                json!({"name": "missing", "parameterNotFoundAction": action}),
            ),
            param_policy(
                config_maps(),
                failure,
                json!({"selector": {"matchLabels": {"policy": "none"}}, "parameterNotFoundAction": action}),
            ),
        )
    };
    let a = deployment_create(9, json!({}));
    let (by_name, by_selector) = missing("Allow", "Fail");
    validate_params(&by_name, &a, &source).await.unwrap();
    validate_params(&by_selector, &a, &source).await.unwrap();
    let (by_name, by_selector) = missing("Deny", "Fail");
    let want = format!(
        "{DENIED}failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
    );
    assert_eq!(
        validate_params(&by_name, &a, &source).await.unwrap_err(),
        want
    );
    assert_eq!(
        validate_params(&by_selector, &a, &source)
            .await
            .unwrap_err(),
        want
    );
    // Upstream: Deny is subject to the policy's failurePolicy.
    let (by_name, _) = missing("Deny", "Ignore");
    validate_params(&by_name, &a, &source).await.unwrap();
}

#[tokio::test]
async fn params_configuration_errors_follow_the_failure_policy() {
    let source = Memory::new(vec![limits("team-a", "limits", 3, json!({}))]);
    let by_name = json!({"name": "limits", "parameterNotFoundAction": "Deny"});
    let unknown = json!({"apiVersion": "example.com/v1", "kind": "Widget"});
    let limit_kind = json!({"apiVersion": "example.com/v1", "kind": "Limit"});
    let a = deployment_create(1, json!({}));
    let mut cluster_scoped = a.clone();
    cluster_scoped.namespace = String::new();
    let cases: Vec<(&str, [Value; 2], &Attributes, String)> = vec![
        (
            "unknown paramKind",
            param_policy(unknown.clone(), "Fail", by_name.clone()),
            &a,
            "ValidatingAdmissionPolicy 'replicas' denied request: failed to configure policy: failed to find resource referenced by paramKind: 'example.com/v1, Kind=Widget'".into(),
        ),
        (
            "namespaced paramKind for a cluster-scoped request",
            param_policy(config_maps(), "Fail", by_name.clone()),
            &cluster_scoped,
            format!(
                "{DENIED}failed to configure binding: cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
            ),
        ),
        (
            "namespace on a cluster-scoped paramKind",
            param_policy(
                limit_kind,
                "Fail",
                json!({"name": "l", "namespace": "team-a", "parameterNotFoundAction": "Deny"}),
            ),
            &a,
            format!(
                "{DENIED}failed to configure binding: paramRef.namespace must not be provided for a cluster-scoped `paramKind`"
            ),
        ),
        (
            "name and selector",
            param_policy(
                config_maps(),
                "Fail",
                json!({"name": "limits", "selector": {}, "parameterNotFoundAction": "Deny"}),
            ),
            &a,
            format!(
                "{DENIED}failed to configure binding: paramRef.name and paramRef.selector are mutually exclusive"
            ),
        ),
        (
            "neither name nor selector",
            param_policy(config_maps(), "Fail", json!({"parameterNotFoundAction": "Deny"})),
            &a,
            format!("{DENIED}failed to configure binding: one of name or selector must be provided"),
        ),
    ];
    for (name, mut objects, attrs, want) in cases {
        let got = validate_params(&objects, attrs, &source).await;
        assert_eq!(got.map(|_| ()), Err(want), "{name} under Fail");
        objects[0]["spec"]["failurePolicy"] = json!("Ignore");
        let got = validate_params(&objects, attrs, &source).await;
        assert!(got.is_ok(), "{name} under Ignore: {got:?}");
    }
}

#[tokio::test]
async fn a_binding_without_param_ref_evaluates_with_null_params() {
    // Upstream `CollectParams`: paramKind without paramRef validates with nil params, so
    // expressions that read params fail, as the failure policy says.
    let source = Memory::new(vec![limits("team-a", "limits", 3, json!({}))]);
    let a = deployment_create(1, json!({}));
    let mut objects = param_policy(config_maps(), "Fail", Value::Null);
    let err = validate_params(&objects, &a, &source).await.unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{DENIED}expression 'object.spec.replicas <= int(params.data.maxReplicas)' resulted in error: "
        )),
        "{err}"
    );
    objects[0]["spec"]["failurePolicy"] = json!("Ignore");
    validate_params(&objects, &a, &source).await.unwrap();
    objects[0]["spec"]["validations"] =
        json!([{"expression": "params == null", "message": "params are set"}]);
    objects[0]["spec"]["failurePolicy"] = json!("Fail");
    validate_params(&objects, &a, &source).await.unwrap();
}

#[tokio::test]
async fn policies_without_param_kind_read_no_params() {
    let constraints: Value = serde_json::from_str(DEPLOYMENTS).unwrap();
    let source = Memory::new(vec![limits("team-a", "limits", 3, json!({}))]);
    let objects = [
        policy(
            json!({"matchConstraints": constraints, "validations": [{"expression": "params == null", "message": "params are set"}]}),
        ),
        // A paramRef without paramKind on the policy is ignored, as upstream.
        binding(
            json!({"policyName": "replicas", "validationActions": ["Deny"], "paramRef": {"name": "limits", "parameterNotFoundAction": "Deny"}}),
        ),
    ];
    validate_params(&objects, &deployment_create(9, json!({})), &source)
        .await
        .unwrap();
    assert_eq!(source.reads.load(Ordering::Relaxed), 0);
}
