//! Admission end to end with stock kubectl: built-in plugins (PodSecurity, ServiceAccount,
//! DefaultTolerationSeconds, LimitRanger, ResourceQuota), a real HTTPS webhook server started
//! here (mutating and validating, and what `failurePolicy: Fail` does once it is gone), and the
//! Gateway API's ValidatingAdmissionPolicy.

mod support;

use std::time::Duration;

use axum::Json;
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};
use support::start_with_kubectl as start;

/// The answer to an AdmissionReview: `allowed`, and a message or a JSON patch.
fn review(request: &Value, allowed: bool, message: Option<&str>, patch: Option<Value>) -> Value {
    let mut response = json!({"uid": request["request"]["uid"], "allowed": allowed});
    if let Some(m) = message {
        response["status"] = json!({"code": 403, "message": m});
    }
    if let Some(p) = patch {
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(p.to_string()));
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// A webhook server on 127.0.0.1 with its own CA: `/mutate` labels ConfigMaps `mutated=yes`,
/// `/validate` refuses those labelled `deny=yes`. Runs until the returned runtime is dropped.
fn webhook_server(dir: &std::path::Path) -> (tokio::runtime::Runtime, u16, String) {
    webhook_server_for(dir, &["127.0.0.1"])
}

/// [`webhook_server`] with a serving certificate for `sans`.
fn webhook_server_for(
    dir: &std::path::Path,
    sans: &[&str],
) -> (tokio::runtime::Runtime, u16, String) {
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    let pki = apiserver::tls::Pki::load_or_create(dir, &sans).unwrap();
    let config = pki.server_config().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = axum::Router::new()
        .route(
            "/mutate",
            post(|Json(req): Json<Value>| async move {
                let has_labels = req["request"]["object"]["metadata"]["labels"].is_object();
                let patch = if has_labels {
                    json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}])
                } else {
                    json!([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])
                };
                Json(review(&req, true, None, Some(patch)))
            }),
        )
        .route(
            "/validate",
            post(|Json(req): Json<Value>| async move {
                let deny = req["request"]["object"]["metadata"]["labels"]["deny"] == "yes";
                Json(if deny {
                    review(
                        &req,
                        false,
                        Some("configmaps labelled deny are refused"),
                        None,
                    )
                } else {
                    review(&req, true, None, None)
                })
            }),
        );
    rt.spawn(apiserver::tls::serve(
        listener,
        config,
        router,
        std::future::pending(),
    ));
    (rt, port, pki.ca_pem.clone())
}

fn webhook_configurations(port: u16, ca_pem: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        r#"
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {{name: label-configmaps}}
webhooks:
- name: label.example.com
  clientConfig: {{url: "https://127.0.0.1:{port}/mutate", caBundle: "{ca}"}}
  rules: [{{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}}]
  namespaceSelector: {{matchLabels: {{webhooks: "on"}}}}
  sideEffects: None
  admissionReviewVersions: [v1]
  failurePolicy: Fail
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: deny-configmaps}}
webhooks:
- name: deny.example.com
  clientConfig: {{url: "https://127.0.0.1:{port}/validate", caBundle: "{ca}"}}
  rules: [{{operations: [CREATE, UPDATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}}]
  namespaceSelector: {{matchLabels: {{webhooks: "on"}}}}
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 5
"#
    )
}

#[test]
fn webhooks_mutate_refuse_and_fail_closed() {
    let (dir, _replica, k) = start();
    let (webhook, port, ca) = webhook_server(&dir.path().join("webhook-pki"));
    k.ok_in(
        &["apply", "-f", "-"],
        Some(&webhook_configurations(port, &ca)),
    );
    k.ok(&["create", "namespace", "hooked"]);
    k.ok(&["label", "namespace", "hooked", "webhooks=on"]);

    // Mutated by the webhook.
    k.ok(&[
        "create",
        "configmap",
        "a",
        "-n",
        "hooked",
        "--from-literal=k=v",
    ]);
    let labels = k.ok(&[
        "get",
        "cm",
        "a",
        "-n",
        "hooked",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert_eq!(labels, r#"{"mutated":"yes"}"#);
    // Outside the selected namespaces nothing is sent.
    k.ok(&["create", "configmap", "plain", "--from-literal=k=v"]);
    let labels = k.ok(&["get", "cm", "plain", "-o", "jsonpath={.metadata.labels}"]);
    assert_eq!(labels, "");

    // Refused by the validating webhook, with its message.
    let manifest = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: b, namespace: hooked, labels: {deny: "yes"}}
data: {k: v}
"#;
    let err = k.fails(&["apply", "-f", "-"], Some(manifest));
    assert!(
        err.contains(
            "admission webhook \"deny.example.com\" denied the request: configmaps labelled deny are refused"
        ),
        "{err}"
    );

    // With the webhook server gone, failurePolicy Fail refuses and says why.
    drop(webhook);
    let err = k.fails(&["create", "configmap", "c", "-n", "hooked"], None);
    assert!(
        err.contains("Internal error occurred: failed calling webhook \"label.example.com\"")
            && err.contains("connection refused"),
        "{err}"
    );
    // Deleting the configuration restores writes at once.
    k.ok(&["delete", "mutatingwebhookconfiguration", "label-configmaps"]);
    k.ok(&[
        "delete",
        "validatingwebhookconfiguration",
        "deny-configmaps",
    ]);
    k.ok(&["create", "configmap", "c", "-n", "hooked"]);
}

#[test]
fn built_in_admission_plugins_run_in_upstream_order() {
    let (_dir, _replica, k) = start();
    k.ok(&["create", "namespace", "locked"]);
    k.ok(&[
        "label",
        "namespace",
        "locked",
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    ]);
    // PodSecurity: a root, privileged pod is refused with upstream's list of violations.
    let pod = r#"
apiVersion: v1
kind: Pod
metadata: {name: root, namespace: locked}
spec:
  containers:
  - name: c
    image: busybox
    securityContext: {privileged: true}
"#;
    let err = k.fails(&["apply", "-f", "-"], Some(pod));
    assert!(
        err.contains("pods \"root\" is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"),
        "{err}"
    );
    // A Deployment with such a template is admitted with a warning (templates only warn).
    let out = k.run(
        &[
            "create",
            "deployment",
            "web",
            "-n",
            "locked",
            "--image=nginx",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("would violate PodSecurity \"restricted:latest\""),
        "{stderr}"
    );

    // ServiceAccount and DefaultTolerationSeconds mutate pods.
    k.ok(&["run", "p", "--image=busybox", "--restart=Never"]);
    let spec = k.ok(&["get", "pod", "p", "-o", "json"]);
    let pod: Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    let volume = pod["spec"]["volumes"][0]["name"]
        .as_str()
        .unwrap_or_default();
    assert!(volume.starts_with("kube-api-access-"), "{spec}");
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    let tolerations = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        tolerations
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/not-ready" && t["tolerationSeconds"] == 300),
        "{spec}"
    );

    // LimitRanger defaults, and ResourceQuota refuses what would exceed the quota.
    k.ok(&["create", "namespace", "metered"]);
    k.ok_in(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: v1
kind: LimitRange
metadata: {name: defaults, namespace: metered}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 128Mi}
    defaultRequest: {cpu: 100m, memory: 64Mi}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: quota, namespace: metered}
spec:
  hard: {pods: "1", configmaps: "3"}
"#,
        ),
    );
    // The quota counts once its controller has recorded `status.hard`.
    k.eventually(
        &[
            "get",
            "quota",
            "quota",
            "-n",
            "metered",
            "-o",
            "jsonpath={.status.hard.pods}",
        ],
        Duration::from_secs(20),
        |out| out == "1",
    );
    k.ok(&[
        "run",
        "one",
        "-n",
        "metered",
        "--image=busybox",
        "--restart=Never",
    ]);
    let resources = k.ok(&[
        "get",
        "pod",
        "one",
        "-n",
        "metered",
        "-o",
        "jsonpath={.spec.containers[0].resources}",
    ]);
    let resources: Value = serde_json::from_str(&resources).unwrap();
    assert_eq!(
        resources,
        json!({"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}})
    );
    let err = k.fails(
        &[
            "run",
            "two",
            "-n",
            "metered",
            "--image=busybox",
            "--restart=Never",
        ],
        None,
    );
    assert!(
        err.contains("pods \"two\" is forbidden: exceeded quota: quota, requested: pods=1, used: pods=1, limited: pods=1"),
        "{err}"
    );
}

#[test]
fn gateway_api_validating_admission_policy_refuses_old_bundles() {
    let (_dir, _replica, k) = start();
    let dir = "/work/shared/data/crds/gateway-api";
    let gateways = format!("{dir}/gateway.networking.k8s.io_gateways.yaml");
    k.ok(&["apply", "-f", &gateways]);
    let out = k.ok(&[
        "apply",
        "-f",
        &format!("{dir}/gateway.networking.k8s.io_vap_safeupgrades.yaml"),
    ]);
    assert!(
        out.contains("validatingadmissionpolicy.admissionregistration.k8s.io/safe-upgrades.gateway.networking.k8s.io created"),
        "{out}"
    );
    // The shipped CRDs carry bundle version v0.0.0-dev: the policy refuses to install them.
    let err = k.fails(
        &[
            "apply",
            "-f",
            &format!("{dir}/gateway.networking.k8s.io_httproutes.yaml"),
        ],
        None,
    );
    assert!(
        err.contains("ValidatingAdmissionPolicy 'safe-upgrades.gateway.networking.k8s.io' with binding 'safe-upgrades.gateway.networking.k8s.io' denied request: Installing CRDs with version before v1.5.0 is prohibited by default."),
        "{err}"
    );
    // Other groups are not its business.
    k.ok_in(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#,
        ),
    );
    // Without the policy, the install goes through.
    k.ok(&[
        "delete",
        "validatingadmissionpolicybinding",
        "safe-upgrades.gateway.networking.k8s.io",
    ]);
    k.ok(&[
        "apply",
        "-f",
        &format!("{dir}/gateway.networking.k8s.io_httproutes.yaml"),
    ]);
}

/// A webhook named by `clientConfig.service` is called at one of its Service's endpoints, with
/// TLS verified against the Service's DNS name (`hook.hooks.svc`), as upstream's endpoint
/// routing does; without endpoints it fails as upstream says.
#[test]
fn webhooks_are_reached_through_their_service_endpoints() {
    let (dir, _replica, k) = start();
    let (_webhook, port, ca) =
        webhook_server_for(&dir.path().join("svc-webhook-pki"), &["hook.hooks.svc"]);
    let ca = base64::engine::general_purpose::STANDARD.encode(ca);
    k.ok_in(
        &["apply", "-f", "-"],
        Some(&format!(
            r#"
apiVersion: v1
kind: Namespace
metadata: {{name: hooks, labels: {{webhooks: "on"}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: hook, namespace: hooks}}
spec:
  ports: [{{name: https, port: 443, targetPort: {port}}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: hook, namespace: hooks}}
subsets:
- addresses: [{{ip: 127.0.0.1}}]
  ports: [{{name: https, port: {port}}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: deny-through-service}}
webhooks:
- name: deny.hooks.example.com
  clientConfig:
    service: {{namespace: hooks, name: hook, path: /validate, port: 443}}
    caBundle: "{ca}"
  rules: [{{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}}]
  namespaceSelector: {{matchLabels: {{webhooks: "on"}}}}
  sideEffects: None
  admissionReviewVersions: [v1]
  failurePolicy: Fail
"#
        )),
    );
    k.ok(&[
        "create",
        "configmap",
        "fine",
        "-n",
        "hooks",
        "--from-literal=k=v",
    ]);
    let denied = k.fails(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: refused, namespace: hooks, labels: {deny: \"yes\"}}\n"),
    );
    assert!(
        denied.contains(
            "admission webhook \"deny.hooks.example.com\" denied the request: configmaps labelled deny are refused"
        ),
        "{denied}"
    );
    k.ok(&["delete", "endpoints", "hook", "-n", "hooks"]);
    let failed = k.fails(
        &[
            "create",
            "configmap",
            "later",
            "-n",
            "hooks",
            "--from-literal=k=v",
        ],
        None,
    );
    assert!(
        failed.contains("no endpoints available for service \"hook\""),
        "{failed}"
    );
}
