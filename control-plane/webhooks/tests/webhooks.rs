//! Admission webhooks against a real HTTPS server on 127.0.0.1 with certificates from a test CA.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use webhooks::{Attributes, Compiled, Gvk, Gvr, Operation};

/// What a test webhook answers: the request's `AdmissionReview.request` and the path in,
/// `(allowed, status, patch)` out.
type Handler = Arc<dyn Fn(&str, &Value) -> Value + Send + Sync>;

struct Ca {
    pem: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

/// A CA and a server certificate for 127.0.0.1 and `hook.webhooks.svc`.
fn certs() -> Ca {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "hook.webhooks.svc".to_owned()])
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Ca {
        pem: ca_cert.pem(),
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

struct Server {
    addr: SocketAddr,
    ca_bundle: String,
    /// Every `AdmissionReview` received, with its path.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    /// TCP connections accepted.
    accepts: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(handler: Handler) -> Server {
    let ca = certs();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ca.cert], ca.key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let accepts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepts2 = accepts.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            accepts2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    let seen = seen.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let query = req.uri().query().unwrap_or_default().to_owned();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let review: Value = serde_json::from_slice(&body).unwrap();
                        seen.lock()
                            .unwrap()
                            .push((format!("{path}?{query}"), review.clone()));
                        if path == "/slow" {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                        let request = &review["request"];
                        let mut response = handler(&path, request);
                        if response.get("uid").is_none() {
                            response["uid"] = request["uid"].clone();
                        }
                        let out = json!({
                            "apiVersion": "admission.k8s.io/v1",
                            "kind": "AdmissionReview",
                            "response": response,
                        });
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(out.to_string()))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Server {
        addr,
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca.pem),
        seen,
        accepts,
        task,
    }
}

fn no_services(_: &str, _: &str, _: u16, _: &str) -> Option<String> {
    None
}

fn pod_create(namespace_labels: Option<Value>) -> Attributes {
    let mut a = Attributes::new(
        Operation::Create,
        Gvk::new("", "v1", "Pod"),
        Gvr::new("", "v1", "pods"),
    );
    a.namespace = "team-a".into();
    a.name = "web".into();
    a.object = Some(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }));
    a.namespace_object = namespace_labels.map(|l| {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": l}})
    });
    a.user.username = "alice".into();
    a.user.groups = vec!["system:authenticated".into()];
    a.options = Some(json!({"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}));
    a
}

/// A configuration of `kind` named `name` with one webhook named `hook`, with `extra` merged
/// into the webhook.
fn config(kind: &str, name: &str, url: &str, ca: &str, extra: Value) -> Value {
    let mut hook = json!({
        "name": format!("{name}.example.com"),
        "clientConfig": {"url": url, "caBundle": ca},
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    for (k, v) in extra.as_object().unwrap() {
        hook[k] = v.clone();
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "resourceVersion": "1"},
        "webhooks": [hook],
    })
}

fn deny_all() -> Handler {
    Arc::new(
        |_, _| json!({"allowed": false, "status": {"code": 403, "message": "pods are not welcome"}}),
    )
}

fn allow_all() -> Handler {
    Arc::new(|_, _| json!({"allowed": true}))
}

const VWC: &str = "ValidatingWebhookConfiguration";
const MWC: &str = "MutatingWebhookConfiguration";

#[tokio::test]
async fn validating_denial_carries_the_webhook_message_and_code() {
    let s = serve(deny_all()).await;
    let url = format!("https://{}/validate", s.addr);
    let c = Compiled::new(&[config(VWC, "deny", &url, &s.ca_bundle, json!({}))]);
    let d = c
        .validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap_err();
    assert_eq!(
        (d.code, d.message.as_str()),
        (
            403,
            "admission webhook \"deny.example.com\" denied the request: pods are not welcome"
        )
    );

    // No status: 400 and "without explanation".
    let s = serve(Arc::new(|_, _| json!({"allowed": false}))).await;
    let url = format!("https://{}/validate", s.addr);
    let c = Compiled::new(&[config(VWC, "deny", &url, &s.ca_bundle, json!({}))]);
    let d = c
        .validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap_err();
    assert_eq!(
        (d.code, d.message.as_str()),
        (
            400,
            "admission webhook \"deny.example.com\" denied the request without explanation"
        )
    );
}

#[tokio::test]
async fn connections_are_reused() {
    let s = serve(allow_all()).await;
    let url = format!("https://{}/validate", s.addr);
    let objects = [config(VWC, "allow", &url, &s.ca_bundle, json!({}))];
    let c = Compiled::new(&objects);
    for _ in 0..3 {
        c.validate(&pod_create(Some(json!({}))), &no_services)
            .await
            .unwrap();
    }
    // A rebuilt configuration keeps the pool of an unchanged CA bundle.
    let c = c.update(&objects);
    c.validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap();
    assert_eq!(s.seen.lock().unwrap().len(), 4);
    assert_eq!(s.accepts.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn admission_review_request_is_upstreams() {
    let s = serve(Arc::new(
        |_, _| json!({"allowed": true, "warnings": ["careful"], "auditAnnotations": {"k": "v"}}),
    ))
    .await;
    let url = format!("https://{}/validate", s.addr);
    let c = Compiled::new(&[config(VWC, "allow", &url, &s.ca_bundle, json!({}))]);
    let v = c
        .validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap();
    assert_eq!(v.warnings, vec!["careful"]);
    assert_eq!(v.audit_annotations["allow.example.com/k"], "v");
    let seen = s.seen.lock().unwrap();
    let (path, review) = &seen[0];
    assert_eq!(path, "/validate?timeout=10s");
    let mut req = review["request"].clone();
    assert_eq!(req["uid"].as_str().unwrap().len(), 36);
    req["uid"] = json!("x");
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(
        req,
        json!({
            "uid": "x",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web",
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": pod_create(None).object.unwrap(),
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        })
    );
}

#[tokio::test]
async fn mutating_json_patch_is_applied() {
    let patch = json!([{"op": "add", "path": "/metadata/labels/injected", "value": "yes"}]);
    let encoded = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    let s = serve(Arc::new(
        move |_, _| json!({"allowed": true, "patchType": "JSONPatch", "patch": encoded}),
    ))
    .await;
    let url = format!("https://{}/mutate", s.addr);
    let c = Compiled::new(&[config(MWC, "inject", &url, &s.ca_bundle, json!({}))]);
    let out = c
        .mutate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(out.object.unwrap()["metadata"]["labels"]["injected"], "yes");
    let mutation: Value = serde_json::from_str(
        &out.audit_annotations["mutation.webhook.admission.k8s.io/round_0_index_0"],
    )
    .unwrap();
    assert_eq!(
        mutation,
        json!({"configuration": "inject", "webhook": "inject.example.com", "mutated": true})
    );
    assert!(
        out.audit_annotations
            .contains_key("patch.webhook.admission.k8s.io/round_0_index_0")
    );
}

#[tokio::test]
async fn patches_that_do_not_apply_and_patches_on_delete() {
    let patch = json!([{"op": "remove", "path": "/metadata/annotations/nope"}]);
    let encoded = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    let s = serve(Arc::new(
        move |_, _| json!({"allowed": true, "patchType": "JSONPatch", "patch": encoded}),
    ))
    .await;
    let url = format!("https://{}/mutate", s.addr);
    let everything = json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]});
    let c = Compiled::new(&[config(MWC, "bad", &url, &s.ca_bundle, everything)]);
    let d = c
        .mutate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap_err();
    assert_eq!(
        (d.code, d.message.as_str()),
        (
            500,
            "Internal error occurred: remove operation does not apply: doc is missing path: \"/metadata/annotations/nope\": missing value"
        )
    );
    let mut a = pod_create(Some(json!({})));
    a.operation = Operation::Delete;
    a.old_object = a.object.take();
    let d = c.mutate(&a, &no_services).await.unwrap_err();
    assert_eq!(
        d.message,
        "Internal error occurred: admission webhook \"bad.example.com\" attempted to modify the object, which is not supported for this operation"
    );
}

#[tokio::test]
async fn invalid_responses() {
    // (response, mutating, message after `failed calling webhook "x.example.com": `)
    let cases = [
        (
            json!({"allowed": true, "uid": "other"}),
            false,
            "received invalid webhook response: expected response.uid=\"UID\", got \"other\"",
        ),
        (
            json!({"allowed": true, "patch": "W10="}),
            false,
            "received invalid webhook response: validating webhook may not return response.patch",
        ),
        (
            json!({"allowed": true, "patch": "W10="}),
            true,
            "received invalid webhook response: webhook returned response.patch but not response.patchType",
        ),
        (
            json!({"allowed": true, "patchType": "JSONPatch"}),
            true,
            "received invalid webhook response: webhook returned response.patchType but not response.patch",
        ),
    ];
    for (response, mutating, want) in cases {
        let r = response.clone();
        let s = serve(Arc::new(move |_, req| {
            let mut r = r.clone();
            if r.get("uid").is_none() {
                r["uid"] = req["uid"].clone();
            }
            r
        }))
        .await;
        let url = format!("https://{}/x", s.addr);
        let kind = if mutating { MWC } else { VWC };
        let c = Compiled::new(&[config(kind, "x", &url, &s.ca_bundle, json!({}))]);
        let a = pod_create(Some(json!({})));
        let d = if mutating {
            c.mutate(&a, &no_services).await.unwrap_err()
        } else {
            c.validate(&a, &no_services).await.unwrap_err()
        };
        let uid = s.seen.lock().unwrap()[0].1["request"]["uid"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            d.message,
            format!(
                "Internal error occurred: failed calling webhook \"x.example.com\": {}",
                want.replace("UID", &uid)
            )
        );
    }
}

#[tokio::test]
async fn failure_policy_fail_and_ignore_when_the_server_is_gone() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let ca = base64::engine::general_purpose::STANDARD.encode(certs().pem);
    let url = format!("https://{addr}/validate");
    let c = Compiled::new(&[config(
        VWC,
        "gone",
        &url,
        &ca,
        json!({"failurePolicy": "Fail"}),
    )]);
    let d = c
        .validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap_err();
    assert_eq!(
        d.message,
        format!(
            "Internal error occurred: failed calling webhook \"gone.example.com\": failed to call webhook: Post \"https://{addr}/validate?timeout=10s\": dial tcp {addr}: connect: connection refused"
        )
    );
    assert_eq!((d.code, d.reason.as_str()), (500, "InternalError"));

    let c = Compiled::new(&[config(
        VWC,
        "gone",
        &url,
        &ca,
        json!({"failurePolicy": "Ignore"}),
    )]);
    c.validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap();
    let c = Compiled::new(&[config(
        MWC,
        "gone",
        &url,
        &ca,
        json!({"failurePolicy": "Ignore"}),
    )]);
    let out = c
        .mutate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap();
    assert_eq!(
        out.audit_annotations["failed-open.mutation.webhook.admission.k8s.io/round_0_index_0"],
        "gone.example.com"
    );
}

#[tokio::test]
async fn timeout() {
    let s = serve(allow_all()).await;
    let url = format!("https://{}/slow", s.addr);
    let c = Compiled::new(&[config(
        VWC,
        "slow",
        &url,
        &s.ca_bundle,
        json!({"timeoutSeconds": 1}),
    )]);
    let d = c
        .validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap_err();
    assert_eq!(
        d.message,
        format!(
            "Internal error occurred: failed calling webhook \"slow.example.com\": failed to call webhook: Post \"https://{}/slow?timeout=1s\": context deadline exceeded",
            s.addr
        )
    );
}

#[tokio::test]
async fn unknown_authority() {
    let s = serve(allow_all()).await;
    let other = base64::engine::general_purpose::STANDARD.encode(certs().pem);
    let url = format!("https://{}/validate", s.addr);
    let c = Compiled::new(&[config(VWC, "tls", &url, &other, json!({}))]);
    let d = c
        .validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap_err();
    assert!(
        d.message.ends_with(
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        ),
        "{}",
        d.message
    );
}

#[tokio::test]
async fn namespace_and_object_selectors() {
    let s = serve(deny_all()).await;
    let url = format!("https://{}/validate", s.addr);
    let ns_sel = json!({"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}});
    let obj_sel = json!({"objectSelector": {"matchLabels": {"app": "db"}}});
    let by_ns = Compiled::new(&[config(VWC, "ns", &url, &s.ca_bundle, ns_sel)]);
    let by_obj = Compiled::new(&[config(VWC, "obj", &url, &s.ca_bundle, obj_sel)]);

    // (compiled, namespace labels, object labels, denied)
    let cases = [
        (
            &by_ns,
            Some(json!({"env": "dev"})),
            json!({"app": "web"}),
            false,
        ),
        (
            &by_ns,
            Some(json!({"env": "prod"})),
            json!({"app": "web"}),
            true,
        ),
        (&by_obj, Some(json!({})), json!({"app": "web"}), false),
        (&by_obj, Some(json!({})), json!({"app": "db"}), true),
    ];
    for (i, (c, ns, labels, denied)) in cases.into_iter().enumerate() {
        let mut a = pod_create(ns);
        a.object.as_mut().unwrap()["metadata"]["labels"] = labels;
        assert_eq!(
            c.validate(&a, &no_services).await.is_err(),
            denied,
            "case {i}"
        );
    }

    // A cluster-scoped object always matches a namespace selector.
    let mut a = Attributes::new(
        Operation::Create,
        Gvk::new("", "v1", "Node"),
        Gvr::new("", "v1", "nodes"),
    );
    a.object = Some(json!({"metadata": {"name": "n1"}}));
    let c = Compiled::new(&[config(
        VWC,
        "ns",
        &url,
        &s.ca_bundle,
        json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}, "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]}),
    )]);
    assert!(c.validate(&a, &no_services).await.is_err());

    // A namespace that does not exist is a 404.
    let d = by_ns
        .validate(&pod_create(None), &no_services)
        .await
        .unwrap_err();
    assert_eq!(
        (d.code, d.message.as_str()),
        (404, "namespaces \"team-a\" not found")
    );
}

#[tokio::test]
async fn match_conditions() {
    let s = serve(deny_all()).await;
    let url = format!("https://{}/validate", s.addr);
    let c = Compiled::new(&[config(
        VWC,
        "mc",
        &url,
        &s.ca_bundle,
        json!({"matchConditions": [{"name": "not-web", "expression": "object.metadata.name != 'web'"}]}),
    )]);
    c.validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap();
    assert!(s.seen.lock().unwrap().is_empty());
    let c = Compiled::new(&[config(
        VWC,
        "mc",
        &url,
        &s.ca_bundle,
        json!({"matchConditions": [{"name": "broken", "expression": "object.spec.nope == 1"}]}),
    )]);
    let d = c
        .validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap_err();
    assert_eq!(
        (d.code, d.message.as_str()),
        (
            403,
            "pods \"web\" is forbidden: expression 'object.spec.nope == 1' resulted in error: no such key: nope"
        )
    );
}

#[tokio::test]
async fn side_effects_and_dry_run() {
    let s = serve(allow_all()).await;
    let url = format!("https://{}/validate", s.addr);
    let mut a = pod_create(Some(json!({})));
    a.dry_run = true;
    for (side_effects, ok) in [
        ("None", true),
        ("NoneOnDryRun", true),
        ("Unknown", false),
        ("Some", false),
    ] {
        let c = Compiled::new(&[config(
            VWC,
            "se",
            &url,
            &s.ca_bundle,
            json!({"sideEffects": side_effects, "failurePolicy": "Ignore"}),
        )]);
        match c.validate(&a, &no_services).await {
            Ok(_) => assert!(ok, "{side_effects}"),
            Err(d) => {
                assert!(!ok, "{side_effects}");
                assert_eq!(
                    (d.code, d.reason.as_str(), d.message.as_str()),
                    (
                        400,
                        "BadRequest",
                        "admission webhook \"se.example.com\" does not support dry run"
                    )
                );
            }
        }
    }
    let seen = s.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1["request"]["dryRun"], true);
}

#[tokio::test]
async fn reinvocation_if_needed() {
    // "a" records whether it saw the label "b" adds; "b" runs after it and adds the label.
    let s = serve(Arc::new(|path, req| {
        let labels = &req["object"]["metadata"]["labels"];
        let patch = if path == "/a" {
            let seen = if labels.get("b").is_some() {
                "true"
            } else {
                "false"
            };
            json!([{"op": "add", "path": "/metadata/annotations", "value": {"saw-b": seen}}])
        } else if labels.get("b").is_none() {
            json!([{"op": "add", "path": "/metadata/labels/b", "value": "1"}])
        } else {
            json!([])
        };
        let p = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
        json!({"allowed": true, "patchType": "JSONPatch", "patch": p})
    }))
    .await;
    let a_url = format!("https://{}/a", s.addr);
    let b_url = format!("https://{}/b", s.addr);
    for (policy, want_saw_b, want_calls) in [("IfNeeded", "true", 3), ("Never", "false", 2)] {
        s.seen.lock().unwrap().clear();
        let c = Compiled::new(&[
            config(
                MWC,
                "a",
                &a_url,
                &s.ca_bundle,
                json!({"reinvocationPolicy": policy}),
            ),
            config(MWC, "b", &b_url, &s.ca_bundle, json!({})),
        ]);
        let out = c
            .mutate(&pod_create(Some(json!({}))), &no_services)
            .await
            .unwrap();
        let obj = out.object.unwrap();
        assert_eq!(
            obj["metadata"]["annotations"]["saw-b"], want_saw_b,
            "{policy}"
        );
        assert_eq!(obj["metadata"]["labels"]["b"], "1");
        assert_eq!(s.seen.lock().unwrap().len(), want_calls, "{policy}");
    }
}

#[tokio::test]
async fn service_references_go_through_the_resolver() {
    let s = serve(deny_all()).await;
    let addr = s.addr;
    let hook = |port: u16| {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": VWC,
            "metadata": {"name": "svc", "resourceVersion": "1"},
            "webhooks": [{
                "name": "svc.example.com",
                "clientConfig": {"service": {"namespace": "webhooks", "name": "hook", "path": "/validate", "port": port}, "caBundle": s.ca_bundle},
                "rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }],
        })
    };
    let c = Compiled::new(&[hook(addr.port())]);
    let resolve = move |ns: &str, name: &str, port: u16, path: &str| {
        assert_eq!((ns, name, port), ("webhooks", "hook", addr.port()));
        Some(format!("https://127.0.0.1:{port}{path}"))
    };
    let d = c
        .validate(&pod_create(Some(json!({}))), &resolve)
        .await
        .unwrap_err();
    assert_eq!(
        d.message,
        "admission webhook \"svc.example.com\" denied the request: pods are not welcome"
    );
    let d = c
        .validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap_err();
    assert_eq!(
        d.message,
        format!(
            "Internal error occurred: failed calling webhook \"svc.example.com\": failed to call webhook: Post \"https://hook.webhooks.svc:{}/validate?timeout=10s\": no endpoints available for service \"hook\"",
            addr.port()
        )
    );
}

#[tokio::test]
async fn admission_configuration_is_exempt() {
    let s = serve(deny_all()).await;
    let url = format!("https://{}/validate", s.addr);
    let everything = json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}]});
    let c = Compiled::new(&[config(VWC, "all", &url, &s.ca_bundle, everything)]);
    let mut a = Attributes::new(
        Operation::Create,
        Gvk::new("admissionregistration.k8s.io", "v1", VWC),
        Gvr::new(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
        ),
    );
    a.object = Some(json!({"metadata": {"name": "x"}}));
    c.validate(&a, &no_services).await.unwrap();
    // A subresource matches `*/*`.
    let mut a = pod_create(Some(json!({})));
    a.subresource = "status".into();
    assert!(c.validate(&a, &no_services).await.is_err());
}

#[tokio::test]
async fn public_only_clients_do_not_dial_names_of_this_machine() {
    let s = serve(deny_all()).await;
    let url = format!("https://localhost:{}/validate", s.addr.port());
    let hook = config(
        VWC,
        "deny",
        &url,
        &s.ca_bundle,
        json!({"failurePolicy": "Fail"}),
    );
    let d = Compiled::new_public_only(std::slice::from_ref(&hook))
        .validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap_err();
    assert!(
        d.message.contains("localhost resolves only to loopback, link-local or unspecified addresses, which webhooks of tenant clusters may not call"),
        "{}",
        d.message
    );
    assert_eq!(d.code, 500);
    // Without the restriction the same name is dialled (and reached: only its certificate,
    // issued for 127.0.0.1, does not match the name).
    let d = Compiled::new(&[hook])
        .validate(&pod_create(Some(json!({}))), &no_services)
        .await
        .unwrap_err();
    assert!(!d.message.contains("resolves only to"), "{}", d.message);
}
