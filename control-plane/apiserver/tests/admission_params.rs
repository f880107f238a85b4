//! ValidatingAdmissionPolicy parameters end to end: a policy whose `paramKind` is ConfigMap (or
//! a custom resource), bound with `paramRef`, admits or refuses writes by what the parameter
//! objects of the request's logical cluster say.

mod support;

use serde_json::{Value, json};
use support::{Env, Who, env};

const ADMIN: Who = Who::Admin;

fn policy(name: &str, param_kind: Value) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": param_kind,
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["apps"], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["deployments"],
            }]},
            "validations": [{
                "expression": "object.spec.replicas <= int(params.data.maxReplicas)",
                "messageExpression": "'at most ' + params.data.maxReplicas + ' replicas'",
            }],
        },
    })
}

fn binding(name: &str, param_ref: Value) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"], "paramRef": param_ref},
    })
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    })
}

async fn create(env: &Env, cluster: &str, path: &str, body: Value) -> (u16, Value) {
    env.call(
        &ADMIN,
        "POST",
        &format!("/clusters/{cluster}{path}"),
        Some(body),
    )
    .await
}

async fn setup(env: &Env, cluster: &str) {
    for ns in ["team-a", "team-b"] {
        let (code, v) = create(
            env,
            cluster,
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
        assert_eq!(code, 201, "{v}");
    }
    let vap = "/apis/admissionregistration.k8s.io/v1";
    let p = policy("replicas", json!({"apiVersion": "v1", "kind": "ConfigMap"}));
    let (code, v) = create(
        env,
        cluster,
        &format!("{vap}/validatingadmissionpolicies"),
        p,
    )
    .await;
    assert_eq!(code, 201, "{v}");
    // No namespace: the param is looked up in the namespace of the request.
    let b = binding(
        "replicas",
        json!({"name": "replica-limits", "parameterNotFoundAction": "Deny"}),
    );
    let (code, v) = create(
        env,
        cluster,
        &format!("{vap}/validatingadmissionpolicybindings"),
        b,
    )
    .await;
    assert_eq!(code, 201, "{v}");
}

fn deployments(ns: &str) -> String {
    format!("/apis/apps/v1/namespaces/{ns}/deployments")
}

#[tokio::test]
async fn a_config_map_param_admits_and_refuses_deployments() {
    let env = env().await;
    setup(&env, "a").await;
    setup(&env, "b").await;
    let (code, v) = create(
        &env,
        "a",
        "/api/v1/namespaces/team-a/configmaps",
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "replica-limits"},
            "data": {"maxReplicas": "3"},
        }),
    )
    .await;
    assert_eq!(code, 201, "{v}");

    let (code, v) = create(&env, "a", &deployments("team-a"), deployment("ok", 3)).await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = create(&env, "a", &deployments("team-a"), deployment("big", 4)).await;
    assert_eq!((code, v["reason"].as_str()), (422, Some("Invalid")), "{v}");
    assert_eq!(
        v["message"],
        "deployments.apps \"big\" is forbidden: ValidatingAdmissionPolicy 'replicas' with binding 'replicas' denied request: at most 3 replicas"
    );

    // team-b has no such ConfigMap, and neither has cluster b: parameterNotFoundAction Deny.
    let not_found = "ValidatingAdmissionPolicy 'replicas' with binding 'replicas' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction";
    for (cluster, ns) in [("a", "team-b"), ("b", "team-a")] {
        let (code, v) = create(&env, cluster, &deployments(ns), deployment("one", 1)).await;
        assert_eq!(code, 422, "{cluster}/{ns}: {v}");
        assert!(
            v["message"].as_str().unwrap().ends_with(not_found),
            "{cluster}/{ns}: {v}"
        );
    }

    // Params are read on every request: raising the limit admits what was refused.
    env.ok(
        &ADMIN,
        "PATCH",
        "/clusters/a/api/v1/namespaces/team-a/configmaps/replica-limits",
        Some(json!({"data": {"maxReplicas": "10"}})),
    )
    .await;
    let (code, v) = create(&env, "a", &deployments("team-a"), deployment("big", 4)).await;
    assert_eq!(code, 201, "{v}");

    // With parameterNotFoundAction Allow, a namespace without the param is not checked.
    env.ok(
        &ADMIN,
        "PATCH",
        "/clusters/a/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/replicas",
        Some(json!({"spec": {"paramRef": {"parameterNotFoundAction": "Allow"}}})),
    )
    .await;
    let (code, v) = create(&env, "a", &deployments("team-b"), deployment("huge", 50)).await;
    assert_eq!(code, 201, "{v}");
}

#[tokio::test]
async fn a_param_kind_the_cluster_does_not_serve_fails_to_configure_the_policy() {
    let env = env().await;
    let vap = "/apis/admissionregistration.k8s.io/v1";
    let (code, v) = create(
        &env,
        "a",
        &format!("{vap}/validatingadmissionpolicies"),
        policy(
            "widgets",
            json!({"apiVersion": "example.com/v1", "kind": "Widget"}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = create(
        &env,
        "a",
        &format!("{vap}/validatingadmissionpolicybindings"),
        binding(
            "widgets",
            json!({"name": "w", "parameterNotFoundAction": "Deny"}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = create(&env, "a", &deployments("default"), deployment("one", 1)).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(
        v["message"],
        "deployments.apps \"one\" is forbidden: ValidatingAdmissionPolicy 'widgets' denied request: failed to configure policy: failed to find resource referenced by paramKind: 'example.com/v1, Kind=Widget'"
    );
}

#[tokio::test]
async fn a_cluster_scoped_custom_param_kind_selected_by_labels() {
    let env = env().await;
    let crds = "/clusters/a/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    env.ok(
        &ADMIN,
        "POST",
        crds,
        Some(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "limits.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Cluster",
                "names": {"plural": "limits", "singular": "limit", "kind": "Limit", "listKind": "LimitList"},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                }],
            },
        })),
    )
    .await;
    // No CRD controller runs here: mark it established as that loop would.
    let mut crd = env
        .ok(&ADMIN, "GET", &format!("{crds}/limits.example.com"), None)
        .await;
    crd["status"] = json!({
        "conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
        "acceptedNames": {"plural": "limits", "singular": "limit", "kind": "Limit", "listKind": "LimitList"},
        "storedVersions": ["v1"],
    });
    env.ok(
        &ADMIN,
        "PUT",
        &format!("{crds}/limits.example.com/status"),
        Some(crd),
    )
    .await;
    for (name, max) in [("generous", "5"), ("strict", "2")] {
        env.ok(
            &ADMIN,
            "POST",
            "/clusters/a/apis/example.com/v1/limits",
            Some(json!({
                "apiVersion": "example.com/v1", "kind": "Limit",
                "metadata": {"name": name, "labels": {"policy": "replicas"}},
                "data": {"maxReplicas": max},
            })),
        )
        .await;
    }
    let vap = "/apis/admissionregistration.k8s.io/v1";
    let mut p = policy(
        "limits",
        json!({"apiVersion": "example.com/v1", "kind": "Limit"}),
    );
    p["spec"]["validations"][0]["messageExpression"] = json!(
        "params.apiVersion + ' ' + params.metadata.name + ': at most ' + params.data.maxReplicas"
    );
    let (code, v) = create(&env, "a", &format!("{vap}/validatingadmissionpolicies"), p).await;
    assert_eq!(code, 201, "{v}");
    let b = binding(
        "limits",
        json!({"selector": {"matchLabels": {"policy": "replicas"}}, "parameterNotFoundAction": "Deny"}),
    );
    let (code, v) = create(
        &env,
        "a",
        &format!("{vap}/validatingadmissionpolicybindings"),
        b,
    )
    .await;
    assert_eq!(code, 201, "{v}");

    let (code, v) = create(&env, "a", &deployments("default"), deployment("two", 2)).await;
    assert_eq!(code, 201, "{v}");
    // Within `generous`, beyond `strict`: refused by the evaluation with `strict`.
    let (code, v) = create(&env, "a", &deployments("default"), deployment("three", 3)).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(
        v["message"],
        "deployments.apps \"three\" is forbidden: ValidatingAdmissionPolicy 'limits' with binding 'limits' denied request: example.com/v1 strict: at most 2"
    );
}
