//! Authentication, authorization and tenant isolation through the router, with every kind of
//! credential: client certificates (as the TLS layer hands them over), service-account and
//! bootstrap tokens, in-process identities and none at all.

mod support;

use std::sync::Arc;

use apiserver::Api;
use serde_json::{Value, json};
use support::{Env, Who, env};

impl Env {
    /// A token for service account `default/<name>` of cluster `id`.
    async fn token(&self, id: &str, name: &str, spec: Value) -> (u16, Value) {
        self.call(
            &Who::Admin,
            "POST",
            &format!("/clusters/{id}/api/v1/namespaces/default/serviceaccounts/{name}/token"),
            Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})),
        )
        .await
    }
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

#[tokio::test]
async fn anonymous_requests_reach_only_health_and_version() {
    let env = env().await;
    for path in [
        "/healthz",
        "/livez",
        "/readyz",
        "/version",
        "/clusters/a/healthz",
    ] {
        let (code, _) = env.call(&Who::Anonymous, "GET", path, None).await;
        assert_eq!(code, 200, "{path}");
    }
    for path in [
        "/api",
        "/apis",
        "/openapi/v2",
        "/metrics",
        "/api/v1/namespaces",
        "/clusters/a/api/v1/namespaces/default/configmaps",
        "/clusters/missing/healthz",
    ] {
        let (code, body) = env.call(&Who::Anonymous, "GET", path, None).await;
        assert_eq!(code, 401, "{path}: {body}");
        assert_eq!(body["reason"], "Unauthorized");
    }
}

#[tokio::test]
async fn a_certificate_is_a_user_of_its_own_cluster_only() {
    let env = env().await;
    let admin_a = env.cert("a", "alice", &["system:masters"]).await;
    env.ok(
        &admin_a,
        "POST",
        "/clusters/a/api/v1/namespaces/default/configmaps",
        Some(configmap("mine")),
    )
    .await;
    let list = env
        .ok(
            &admin_a,
            "GET",
            "/clusters/a/api/v1/namespaces/default/configmaps",
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    for path in [
        "/clusters/b/api/v1/namespaces/default/configmaps",
        "/clusters/b/api",
        "/api/v1/namespaces/default/configmaps",
        "/clusters/b/healthz",
    ] {
        let (code, body) = env.call(&admin_a, "GET", path, None).await;
        assert_eq!(code, 401, "{path}: {body}");
    }
    // What a's admin wrote is nowhere in b.
    let list = env
        .ok(
            &Who::Admin,
            "GET",
            "/clusters/b/api/v1/namespaces/default/configmaps",
            None,
        )
        .await;
    assert!(list["items"].as_array().unwrap().is_empty());
    // A certificate without groups is authenticated, then refused by RBAC with upstream's words.
    let carol = env.cert("a", "carol", &[]).await;
    let (code, body) = env
        .call(
            &carol,
            "GET",
            "/clusters/a/api/v1/namespaces/default/configmaps/mine",
            None,
        )
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        r#"configmaps "mine" is forbidden: User "carol" cannot get resource "configmaps" in API group "" in the namespace "default""#
    );
    // Authenticated users may still discover the API (system:discovery).
    env.ok(&carol, "GET", "/clusters/a/api", None).await;
    env.ok(&carol, "GET", "/clusters/a/apis", None).await;
}

#[tokio::test]
async fn view_in_one_namespace_allows_reading_that_namespace_only() {
    let env = env().await;
    for ns in ["dev", "prod"] {
        env.ok(
            &Who::Admin,
            "POST",
            "/clusters/a/api/v1/namespaces",
            Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
        )
        .await;
    }
    env.ok(&Who::Admin, "POST", "/clusters/a/apis/rbac.authorization.k8s.io/v1/namespaces/dev/rolebindings",
        Some(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "viewer", "namespace": "dev"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "vic"}]}))).await;
    let vic = env.cert("a", "vic", &[]).await;
    env.ok(&vic, "GET", "/clusters/a/api/v1/namespaces/dev/pods", None)
        .await;
    env.ok(
        &vic,
        "GET",
        "/clusters/a/apis/apps/v1/namespaces/dev/deployments",
        None,
    )
    .await;
    for (method, path, body) in [
        ("GET", "/clusters/a/api/v1/namespaces/prod/pods", None),
        ("GET", "/clusters/a/api/v1/pods", None),
        ("GET", "/clusters/a/api/v1/namespaces/dev/secrets", None),
        (
            "POST",
            "/clusters/a/api/v1/namespaces/dev/configmaps",
            Some(configmap("x")),
        ),
        ("DELETE", "/clusters/a/api/v1/namespaces/dev", None),
    ] {
        let (code, body) = env.call(&vic, method, path, body).await;
        assert_eq!(code, 403, "{method} {path}: {body}");
    }
    // The same user in cluster b has nothing.
    let vic_b = env.cert("b", "vic", &[]).await;
    let (code, _) = env
        .call(
            &vic_b,
            "GET",
            "/clusters/b/api/v1/namespaces/default/pods",
            None,
        )
        .await;
    assert_eq!(code, 403);

    // kubectl auth can-i and can-i --list.
    let review = |ns: &str, verb: &str, resource: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": ns, "verb": verb, "resource": resource}}})
    };
    let path = "/clusters/a/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let r = env
        .ok(&vic, "POST", path, Some(review("dev", "list", "pods")))
        .await;
    assert_eq!(r["status"]["allowed"], true, "{r}");
    assert!(
        r["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("RoleBinding \"viewer"),
        "{r}"
    );
    let r = env
        .ok(&vic, "POST", path, Some(review("prod", "list", "pods")))
        .await;
    assert_eq!(r["status"]["allowed"], false);
    let r = env
        .ok(&vic, "POST", path, Some(review("dev", "get", "secrets")))
        .await;
    assert_eq!(r["status"]["allowed"], false);
    let rules = env
        .ok(&vic, "POST", "/clusters/a/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            Some(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "dev"}})))
        .await;
    let text = rules["status"]["resourceRules"].to_string();
    assert!(
        text.contains("pods") && !text.contains("\"secrets\""),
        "{text}"
    );
    // SubjectAccessReview asks about someone else, and needs the right to.
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "vic", "resourceAttributes": {"namespace": "dev", "verb": "watch", "resource": "pods"}}});
    let (code, _) = env
        .call(
            &vic,
            "POST",
            "/clusters/a/apis/authorization.k8s.io/v1/subjectaccessreviews",
            Some(sar.clone()),
        )
        .await;
    assert_eq!(code, 403, "vic may not ask about others");
    let r = env
        .ok(
            &Who::Admin,
            "POST",
            "/clusters/a/apis/authorization.k8s.io/v1/subjectaccessreviews",
            Some(sar),
        )
        .await;
    assert_eq!(r["status"]["allowed"], true);
}

#[tokio::test]
async fn nobody_grants_what_they_do_not_hold() {
    let env = env().await;
    env.ok(&Who::Admin, "POST", "/clusters/a/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
        Some(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "rbac-writer"},
            "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "get", "update"]},
                      {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}))).await;
    env.ok(&Who::Admin, "POST", "/clusters/a/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        Some(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "lead"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rbac-writer"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "lee"}]}))).await;
    let lee = env.cert("a", "lee", &[]).await;
    let roles = "/clusters/a/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles";
    let role = |name: &str, resource: &str, verb: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": [resource], "verbs": [verb]}]})
    };
    let (code, body) = env
        .call(&lee, "POST", roles, Some(role("wider", "secrets", "get")))
        .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with(
            r#"roles.rbac.authorization.k8s.io "wider" is forbidden: user "lee" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held"#
        ),
        "{body}"
    );
    env.ok(&lee, "POST", roles, Some(role("same", "configmaps", "get")))
        .await;
    // Binding cluster-admin is binding more than lee holds.
    let (code, body) = env
        .call(&lee, "POST", "/clusters/a/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            Some(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "mine"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "lee"}]})))
        .await;
    assert_eq!(code, 403, "{body}");
    // Binding a role lee holds all of is fine.
    env.ok(&lee, "POST", "/clusters/a/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        Some(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "share"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "same"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "sam"}]}))).await;
}

#[tokio::test]
async fn service_account_tokens_work_in_their_cluster_while_their_account_lives() {
    let env = env().await;
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"}});
    env.ok(
        &Who::Admin,
        "POST",
        "/clusters/a/api/v1/namespaces/default/serviceaccounts",
        Some(sa.clone()),
    )
    .await;
    env.ok(
        &Who::Admin,
        "POST",
        "/clusters/b/api/v1/namespaces/default/serviceaccounts",
        Some(sa),
    )
    .await;

    let (code, tr) = env.token("a", "builder", json!({})).await;
    assert_eq!(code, 201, "{tr}");
    assert_eq!(tr["spec"]["expirationSeconds"], 3600);
    let token = Who::Token(tr["status"]["token"].as_str().unwrap().to_owned());
    let pods = "/clusters/a/api/v1/namespaces/default/pods";
    let (code, body) = env.call(&token, "GET", pods, None).await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("system:serviceaccount:default:builder")
    );
    env.ok(&Who::Admin, "POST", "/clusters/a/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        Some(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "builder-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "builder", "namespace": "default"}]}))).await;
    env.ok(&token, "GET", pods, None).await;
    let me = env
        .ok(
            &token,
            "POST",
            "/clusters/a/apis/authentication.k8s.io/v1/selfsubjectreviews",
            Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
        )
        .await;
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:serviceaccount:default:builder"
    );
    assert!(
        me["status"]["userInfo"]["groups"]
            .to_string()
            .contains("system:serviceaccounts:default")
    );

    // Replayed to another cluster (where an account of the same name exists) or to the root.
    for path in [
        "/clusters/b/api/v1/namespaces/default/pods",
        "/api/v1/namespaces/default/pods",
    ] {
        let (code, _) = env.call(&token, "GET", path, None).await;
        assert_eq!(code, 401, "{path}");
    }
    // TokenReview in a says who it is; in b, that it is not valid.
    let review = |t: &Who| {
        let Who::Token(t) = t else { unreachable!() };
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": t}})
    };
    let r = env
        .ok(
            &Who::Admin,
            "POST",
            "/clusters/a/apis/authentication.k8s.io/v1/tokenreviews",
            Some(review(&token)),
        )
        .await;
    assert_eq!(r["status"]["authenticated"], true);
    assert_eq!(
        r["status"]["user"]["username"],
        "system:serviceaccount:default:builder"
    );
    let r = env
        .ok(
            &Who::Admin,
            "POST",
            "/clusters/b/apis/authentication.k8s.io/v1/tokenreviews",
            Some(review(&token)),
        )
        .await;
    assert_eq!(r["status"]["authenticated"], false);

    // Too short, and another audience.
    let (code, body) = env
        .token("a", "builder", json!({"expirationSeconds": 60}))
        .await;
    assert_eq!(code, 422, "{body}");
    let (_, tr) = env
        .token("a", "builder", json!({"audiences": ["vault"]}))
        .await;
    let vault = Who::Token(tr["status"]["token"].as_str().unwrap().to_owned());
    let (code, _) = env.call(&vault, "GET", pods, None).await;
    assert_eq!(
        code, 401,
        "a token for another audience is not an API credential"
    );
    // Missing account.
    let (code, _) = env.token("a", "ghost", json!({})).await;
    assert_eq!(code, 404);
    // Tampered.
    let Who::Token(t) = &token else {
        unreachable!()
    };
    let mut forged = t.clone();
    let flip = forged.len() - 5;
    forged.replace_range(
        flip..flip + 1,
        if &t[flip..flip + 1] == "A" { "B" } else { "A" },
    );
    let (code, _) = env.call(&Who::Token(forged), "GET", pods, None).await;
    assert_eq!(code, 401);
    let (code, _) = env
        .call(&Who::Token("not-a-token".into()), "GET", pods, None)
        .await;
    assert_eq!(code, 401);

    // Deleting the account revokes its tokens.
    env.ok(
        &Who::Admin,
        "DELETE",
        "/clusters/a/api/v1/namespaces/default/serviceaccounts/builder",
        None,
    )
    .await;
    let (code, _) = env.call(&token, "GET", pods, None).await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn pod_bound_tokens_die_with_their_pod() {
    let env = env().await;
    env.ok(
        &Who::Admin,
        "POST",
        "/clusters/a/api/v1/namespaces/default/serviceaccounts",
        Some(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}})),
    )
    .await;
    let pod = env
        .ok(&Who::Admin, "POST", "/clusters/a/api/v1/namespaces/default/pods",
            Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                "spec": {"serviceAccountName": "app", "containers": [{"name": "c", "image": "nginx"}]}})))
        .await;
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let (code, body) = env
        .token("a", "app", json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "wrong"}}))
        .await;
    assert_eq!(code, 409, "{body}");
    let (code, tr) = env
        .token("a", "app", json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": uid}}))
        .await;
    assert_eq!(code, 201, "{tr}");
    let token = Who::Token(tr["status"]["token"].as_str().unwrap().to_owned());
    let me = env
        .ok(
            &token,
            "POST",
            "/clusters/a/apis/authentication.k8s.io/v1/selfsubjectreviews",
            Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
        )
        .await;
    assert_eq!(
        me["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"][0],
        "web"
    );
    env.ok(
        &Who::Admin,
        "DELETE",
        "/clusters/a/api/v1/namespaces/default/pods/web?gracePeriodSeconds=0",
        None,
    )
    .await;
    let (code, _) = env
        .call(
            &token,
            "POST",
            "/clusters/a/apis/authentication.k8s.io/v1/selfsubjectreviews",
            Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
        )
        .await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn bootstrap_tokens_authenticate_nodes_joining() {
    let env = env().await;
    let secret = |name: &str, secret: &str, expiration: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": format!("bootstrap-token-{name}"), "namespace": "kube-system"},
            "stringData": {"token-id": name, "token-secret": secret, "expiration": expiration,
                "usage-bootstrap-authentication": "true",
                "auth-extra-groups": "system:bootstrappers:berth:default-node-token,system:masters"}})
    };
    let secrets = "/clusters/a/api/v1/namespaces/kube-system/secrets";
    env.ok(
        &Who::Admin,
        "POST",
        secrets,
        Some(secret("abcdef", "0123456789abcdef", "2999-01-01T00:00:00Z")),
    )
    .await;
    env.ok(
        &Who::Admin,
        "POST",
        secrets,
        Some(secret("old000", "0123456789abcdef", "2001-01-01T00:00:00Z")),
    )
    .await;
    let whoami = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let path = "/clusters/a/apis/authentication.k8s.io/v1/selfsubjectreviews";
    let me = env
        .ok(
            &Who::Token("abcdef.0123456789abcdef".into()),
            "POST",
            path,
            Some(whoami.clone()),
        )
        .await;
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:bootstrap:abcdef"
    );
    let groups = me["status"]["userInfo"]["groups"].to_string();
    assert!(
        groups.contains("system:bootstrappers:berth:default-node-token"),
        "{groups}"
    );
    assert!(
        !groups.contains("system:masters"),
        "extra groups outside system:bootstrappers: are dropped"
    );
    for bad in [
        "abcdef.0123456789abcdee",
        "old000.0123456789abcdef",
        "zzzzzz.0123456789abcdef",
    ] {
        let (code, _) = env
            .call(&Who::Token(bad.into()), "POST", path, Some(whoami.clone()))
            .await;
        assert_eq!(code, 401, "{bad}");
    }
    // A's bootstrap token is nothing in b.
    let (code, _) = env
        .call(
            &Who::Token("abcdef.0123456789abcdef".into()),
            "POST",
            "/clusters/b/apis/authentication.k8s.io/v1/selfsubjectreviews",
            Some(whoami),
        )
        .await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn hostile_paths_never_reach_another_cluster() {
    let env = env().await;
    env.ok(
        &Who::Admin,
        "POST",
        "/clusters/b/api/v1/namespaces/default/configmaps",
        Some(configmap("secret-of-b")),
    )
    .await;
    let admin_a = env.cert("a", "alice", &["system:masters"]).await;
    let long = "x".repeat(200);
    for path in [
        "/clusters/a/../b/api/v1/namespaces/default/configmaps".to_owned(),
        "/clusters/a/%2e%2e/b/api/v1/namespaces/default/configmaps".to_owned(),
        "/clusters/a%2Fb/api/v1/namespaces/default/configmaps".to_owned(),
        "/clusters/a/clusters/b/api/v1/namespaces/default/configmaps".to_owned(),
        "/clusters/%D0%B0/api/v1/namespaces/default/configmaps".to_owned(), // Cyrillic a
        "/clusters/A/api/v1/namespaces/default/configmaps".to_owned(),
        "/clusters/b:/api/v1/namespaces/default/configmaps".to_owned(),
        "/clusters//b/api/v1/namespaces/default/configmaps".to_owned(),
        format!("/clusters/{long}/api/v1/namespaces/default/configmaps"),
        "/clusters/_root/api/v1/namespaces/default/configmaps".to_owned(),
        "/clusters/b/api/v1/namespaces/default/configmaps".to_owned(),
        "/clusters/b/api/v1/namespaces/default/configmaps/secret-of-b".to_owned(),
    ] {
        let (code, body) = env.call(&admin_a, "GET", &path, None).await;
        assert!(matches!(code, 400 | 401 | 404), "{path}: {code} {body}");
        assert!(
            !body.to_string().contains("secret-of-b"),
            "{path} leaked: {body}"
        );
    }
}

#[tokio::test]
async fn a_node_reads_only_what_its_pods_need() {
    let env = env().await;
    let ns = "/clusters/a/api/v1/namespaces/default";
    for name in ["db-password", "other-secret"] {
        env.ok(&Who::Admin, "POST", &format!("{ns}/secrets"),
            Some(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "v"}})))
            .await;
    }
    for node in ["n1", "n2"] {
        env.ok(
            &Who::Admin,
            "POST",
            "/clusters/a/api/v1/nodes",
            Some(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})),
        )
        .await;
    }
    env.ok(
        &Who::Admin,
        "POST",
        &format!("{ns}/pods"),
        Some(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "postgres"}],
                "volumes": [{"name": "pw", "secret": {"secretName": "db-password"}}]}}),
        ),
    )
    .await;
    let n1 = env.cert("a", "system:node:n1", &["system:nodes"]).await;
    env.ok(&n1, "GET", &format!("{ns}/secrets/db-password"), None)
        .await;
    for path in [
        format!("{ns}/secrets/other-secret"),
        format!("{ns}/secrets"),
        "/clusters/a/api/v1/pods".to_owned(),
    ] {
        let (code, body) = env.call(&n1, "GET", &path, None).await;
        assert_eq!(code, 403, "{path}: {body}");
    }
    env.ok(
        &n1,
        "GET",
        "/clusters/a/api/v1/pods?fieldSelector=spec.nodeName%3Dn1",
        None,
    )
    .await;
    let (code, _) = env
        .call(
            &n1,
            "GET",
            "/clusters/a/api/v1/pods?fieldSelector=spec.nodeName%3Dn2",
            None,
        )
        .await;
    assert_eq!(code, 403);
    // Another node sees none of n1's pod's secrets; the same name in cluster b is nothing.
    let n2 = env.cert("a", "system:node:n2", &["system:nodes"]).await;
    let (code, _) = env
        .call(&n2, "GET", &format!("{ns}/secrets/db-password"), None)
        .await;
    assert_eq!(code, 403);
    let n1_b = env.cert("b", "system:node:n1", &["system:nodes"]).await;
    let (code, _) = env.call(&n1, "GET", "/clusters/b/api/v1/nodes", None).await;
    assert_eq!(code, 401);
    let (code, _) = env
        .call(
            &n1_b,
            "GET",
            "/clusters/b/api/v1/namespaces/default/secrets/db-password",
            None,
        )
        .await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn oidc_users_are_authenticated_and_authorized_per_cluster() {
    use base64::Engine;
    let key = rcgen::KeyPair::generate().unwrap();
    let raw = key.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = serde_json::from_value(json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k",
        "alg": "ES256", "x": b64(&raw[1..33]), "y": b64(&raw[33..65])}]}))
    .unwrap();
    let mut config = apiserver::auth::oidc::OidcConfig::new("https://sso.example.com", "berth");
    config.groups_claim = Some("groups".into());
    config.groups_prefix = "sso:".into();
    let oidc = Arc::new(apiserver::auth::oidc::Oidc::new(config, jwks));
    let env =
        support::env_with(Api::new(Arc::new(store::MemoryStore::default())).with_oidc(oidc)).await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k".into());
    let signer = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let id_token = jsonwebtoken::encode(
        &header,
        &json!({"iss": "https://sso.example.com", "aud": "berth", "sub": "ann", "exp": exp, "groups": ["platform"]}),
        &signer,
    )
    .unwrap();
    let ann = Who::Token(id_token);
    let pods = |id: &str| format!("/clusters/{id}/api/v1/namespaces/default/pods");
    let (code, body) = env.call(&ann, "GET", &pods("a"), None).await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("https://sso.example.com#ann")
    );
    env.ok(&Who::Admin, "POST", "/clusters/a/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        Some(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "platform-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "sso:platform"}]}))).await;
    env.ok(&ann, "GET", &pods("a"), None).await;
    let (code, _) = env.call(&ann, "GET", &pods("b"), None).await;
    assert_eq!(code, 403, "b's RBAC grants the SSO group nothing");
    let (code, _) = env
        .call(
            &Who::Token(format!(
                "{}x",
                match &ann {
                    Who::Token(t) => t,
                    _ => unreachable!(),
                }
            )),
            "GET",
            &pods("a"),
            None,
        )
        .await;
    assert_eq!(code, 401);
}
