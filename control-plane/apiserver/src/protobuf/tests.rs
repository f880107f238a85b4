//! The decoder against two oracles: bodies captured from kubectl 1.33 next to the JSON that
//! kubectl prints for the same object (`--dry-run=client -o json`, Go's own JSON encoding),
//! and typed k8s-pb messages encoded by prost.

use k8s_pb::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core, events::v1 as events};
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::{Value, json};

use super::{DecodeError, decode, go_duration};

/// `message` as kube-apiserver reads it: magic, then an `Unknown` naming its kind.
fn envelope(api_version: &str, kind: &str, message: &impl prost::Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(message.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

fn s(v: &str) -> Option<String> {
    Some(v.into())
}

fn quantity(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

fn int_port(v: i32) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(0),
        int_val: Some(v),
        str_val: Some(String::new()),
    })
}

fn meta(name: &str) -> Option<meta::ObjectMeta> {
    // As Go writes it: every non-pointer field, empty or not.
    Some(meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    })
}

#[test]
fn kubectl_bodies_decode_to_the_json_kubectl_prints() {
    for name in [
        "namespace",
        "deployment",
        "configmap",
        "secret",
        "service",
        "job",
        "priorityclass",
    ] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/protobuf/testdata");
        let body = std::fs::read(dir.join(format!("{name}.pb"))).expect("fixture");
        let want: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap())
                .unwrap();
        assert_eq!(decode(&body).unwrap(), want, "{name}");
    }
}

#[test]
fn pod_with_ports_quantities_probes_and_affinity() {
    let container = core::Container {
        name: s("web"),
        image: s("nginx:1.27"),
        ports: vec![core::ContainerPort {
            name: s(""),
            host_port: Some(0),
            container_port: Some(80),
            protocol: s("TCP"),
            host_ip: s(""),
        }],
        resources: Some(core::ResourceRequirements {
            limits: [("cpu".into(), quantity("500m"))].into(),
            requests: [("memory".into(), quantity("64Mi"))].into(),
            claims: vec![],
        }),
        liveness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: s("/healthz"),
                    port: int_port(8080),
                    host: s(""),
                    scheme: s("HTTP"),
                    http_headers: vec![],
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(5),
            timeout_seconds: Some(0),
            ..Default::default()
        }),
        readiness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                tcp_socket: Some(core::TcpSocketAction {
                    port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("http"),
                    }),
                    host: s(""),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        stdin: Some(false),
        ..Default::default()
    };
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            namespace: s("default"),
            labels: [("app".into(), "web".into())].into(),
            ..meta("web").unwrap()
        }),
        spec: Some(core::PodSpec {
            containers: vec![container],
            restart_policy: s(""),
            termination_grace_period_seconds: Some(0),
            host_network: Some(false),
            automount_service_account_token: Some(false),
            affinity: Some(core::Affinity {
                node_affinity: Some(core::NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(core::NodeSelector {
                        node_selector_terms: vec![core::NodeSelectorTerm {
                            match_expressions: vec![core::NodeSelectorRequirement {
                                key: s("zone"),
                                operator: s("In"),
                                values: vec!["a".into(), "b".into()],
                            }],
                            match_fields: vec![],
                        }],
                    }),
                    preferred_during_scheduling_ignored_during_execution: vec![],
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    let got = decode(&envelope("v1", "Pod", &pod)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "creationTimestamp": null,
                "labels": {"app": "web"},
            },
            "spec": {
                "containers": [{
                    "name": "web",
                    "image": "nginx:1.27",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {
                        "limits": {"cpu": "500m"},
                        "requests": {"memory": "64Mi"},
                    },
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                        "initialDelaySeconds": 5,
                    },
                    "readinessProbe": {"tcpSocket": {"port": "http"}},
                }],
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": false,
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["a", "b"]}
                                ],
                            }],
                        },
                    },
                },
            },
            // Go always prints structs, even empty ones.
            "status": {},
        })
    );
}

#[test]
fn deployment_strategy_takes_ints_and_percentages() {
    let deployment = apps::Deployment {
        metadata: meta("web"),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: int_port(0),
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("25%"),
                    }),
                }),
            }),
            paused: Some(false),
            min_ready_seconds: Some(0),
            ..Default::default()
        }),
        status: None,
    };
    let got = decode(&envelope("apps/v1", "Deployment", &deployment)).unwrap();
    // A zero replica count is kept (a pointer in Go); empty values are not; the template is
    // a struct, so Go always prints it.
    assert_eq!(
        got["spec"],
        json!({
            "replicas": 0,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}},
        })
    );
}

#[test]
fn secret_bytes_are_base64() {
    let secret = core::Secret {
        metadata: meta("creds"),
        data: [("key".into(), vec![0, 159, 146, 150, 255])].into(),
        string_data: Default::default(),
        r#type: s("Opaque"),
        immutable: None,
    };
    let got = decode(&envelope("v1", "Secret", &secret)).unwrap();
    assert_eq!(got["data"], json!({"key": "AJ+Slv8="}));
    assert_eq!(got["type"], "Opaque");
    assert!(got.get("immutable").is_none());
}

#[test]
fn configmap_data_and_binary_data() {
    let cm = core::ConfigMap {
        metadata: meta("settings"),
        data: [("a".into(), "b".into()), ("empty".into(), String::new())].into(),
        binary_data: [("blob".into(), b"hi".to_vec())].into(),
        immutable: Some(true),
    };
    let got = decode(&envelope("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(got["data"], json!({"a": "b", "empty": ""}));
    assert_eq!(got["binaryData"], json!({"blob": "aGk="}));
    assert_eq!(got["immutable"], true);
}

#[test]
fn service_ports_and_ip_lists() {
    let svc = core::Service {
        metadata: meta("web"),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: s("http"),
                protocol: s("TCP"),
                port: Some(80),
                target_port: int_port(8080),
                node_port: Some(0),
                app_protocol: None,
            }],
            selector: [("app".into(), "web".into())].into(),
            r#type: s("ClusterIP"),
            external_ips: vec!["192.0.2.1".into()],
            cluster_ips: vec![],
            ..Default::default()
        }),
        status: Some(Default::default()),
    };
    let got = decode(&envelope("v1", "Service", &svc)).unwrap();
    assert_eq!(
        got["spec"],
        json!({
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "web"},
            "type": "ClusterIP",
            "externalIPs": ["192.0.2.1"],
        })
    );
    assert_eq!(got["status"], json!({"loadBalancer": {}}));
}

#[test]
fn job_with_times_and_durations_of_its_pods() {
    let job = batch::Job {
        metadata: meta("once"),
        spec: Some(batch::JobSpec {
            backoff_limit: Some(0),
            template: Some(core::PodTemplateSpec {
                metadata: meta(""),
                spec: Some(core::PodSpec {
                    restart_policy: s("Never"),
                    containers: vec![core::Container {
                        name: s("once"),
                        image: s("busybox"),
                        command: vec!["echo".into(), "hi".into()],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: Some(batch::JobStatus {
            start_time: Some(meta::Time {
                seconds: Some(1_700_000_000),
                nanos: Some(123),
            }),
            active: Some(0),
            ..Default::default()
        }),
    };
    let got = decode(&envelope("batch/v1", "Job", &job)).unwrap();
    assert_eq!(got["spec"]["backoffLimit"], 0);
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["echo", "hi"])
    );
    assert_eq!(got["status"], json!({"startTime": "2023-11-14T22:13:20Z"}));
}

#[test]
fn namespace_finalizers() {
    let ns = core::Namespace {
        metadata: meta("team-a"),
        spec: Some(core::NamespaceSpec {
            finalizers: vec!["kubernetes".into()],
        }),
        status: None,
    };
    let got = decode(&envelope("v1", "Namespace", &ns)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-a", "creationTimestamp": null},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {},
        })
    );
}

#[test]
fn events_carry_micro_time_and_raw_fields() {
    let event = events::Event {
        metadata: meta("web.1"),
        event_time: Some(meta::MicroTime {
            seconds: Some(1_700_000_000),
            nanos: Some(123_456_789),
        }),
        series: Some(events::EventSeries {
            count: Some(2),
            last_observed_time: Some(meta::MicroTime {
                seconds: Some(1_700_000_001),
                nanos: Some(0),
            }),
        }),
        reporting_controller: s("berth"),
        reporting_instance: s("berth-1"),
        action: s("Pulled"),
        reason: s("Pulled"),
        note: s(""),
        r#type: s("Normal"),
        deprecated_count: Some(0),
        ..Default::default()
    };
    let got = decode(&envelope("events.k8s.io/v1", "Event", &event)).unwrap();
    assert_eq!(got["eventTime"], "2023-11-14T22:13:20.123456Z");
    assert_eq!(
        got["series"],
        json!({"count": 2, "lastObservedTime": "2023-11-14T22:13:21.000000Z"})
    );
    assert_eq!(got["reportingController"], "berth");
    assert!(got.get("note").is_none());
    assert!(got.get("deprecatedCount").is_none());
    // Value structs without a value are Go's zero values.
    assert_eq!(got["regarding"], json!({}));
    assert_eq!(got["deprecatedFirstTimestamp"], Value::Null);
}

#[test]
fn managed_fields_raw_extensions_and_durations() {
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                api_version: s("v1"),
                time: Some(meta::Time {
                    seconds: Some(0),
                    nanos: None,
                }),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:metadata":{}}"#.to_vec()),
                }),
                subresource: s(""),
            }],
            ..meta("web").unwrap()
        }),
        spec: None,
        status: None,
    };
    let got = decode(&envelope("v1", "Pod", &pod)).unwrap();
    assert_eq!(
        got["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "1970-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {}},
        }])
    );

    let revision = apps::ControllerRevision {
        metadata: meta("web-1"),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"template":{}}}"#.to_vec()),
        }),
        revision: Some(1),
    };
    let got = decode(&envelope("apps/v1", "ControllerRevision", &revision)).unwrap();
    assert_eq!(got["data"], json!({"spec": {"template": {}}}));

    for (nanos, text) in [
        (0, "0s"),
        (999, "999ns"),
        (1_500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (3_723_500_000_000, "1h2m3.5s"),
        (60_000_000_000, "1m0s"),
        (-2_000_000_000, "-2s"),
    ] {
        assert_eq!(go_duration(nanos), text);
    }
}

#[test]
fn delete_options_in_any_group_version() {
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        propagation_policy: s("Foreground"),
        ..Default::default()
    };
    let got = decode(&envelope("apps/v1", "DeleteOptions", &opts)).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "apps/v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "propagationPolicy": "Foreground",
        })
    );
}

#[test]
fn unknown_fields_are_skipped() {
    let mut raw = core::ConfigMap {
        metadata: meta("c"),
        ..Default::default()
    }
    .encode_to_vec();
    // Field 99, a varint, then field 98, a string: neither exists in ConfigMap.
    raw.extend([0x98, 0x06, 0x01, 0x92, 0x06, 0x01, b'x']);
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("ConfigMap"),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    assert_eq!(decode(&body).unwrap()["metadata"]["name"], "c");
}

#[test]
fn bad_bodies_are_refused() {
    assert_eq!(decode(b"{\"kind\":\"Pod\"}"), Err(DecodeError::NotProtobuf));
    assert!(matches!(
        decode(b"k8s\0\x0a\xff"),
        Err(DecodeError::Malformed(_))
    ));
    let cm = core::ConfigMap::default();
    // A truncated message.
    let mut body = envelope(
        "v1",
        "ConfigMap",
        &core::ConfigMap {
            metadata: meta("c"),
            ..cm
        },
    );
    body.truncate(body.len() - 3);
    assert!(matches!(decode(&body), Err(DecodeError::Malformed(_))));
    // A string where a message belongs.
    let mut body = b"k8s\0".to_vec();
    body.extend(
        Unknown {
            type_meta: Some(TypeMeta {
                api_version: s("v1"),
                kind: s("ConfigMap"),
            }),
            raw: Some(vec![0x08, 0x01]),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    assert!(matches!(decode(&body), Err(DecodeError::Malformed(_))));
    assert_eq!(
        decode(&envelope("v1", "Widget", &core::ConfigMap::default())),
        Err(DecodeError::UnknownKind {
            api_version: "v1".into(),
            kind: "Widget".into()
        })
    );
    assert!(matches!(
        decode(&envelope("example.com/v1", "Pod", &core::Pod::default())),
        Err(DecodeError::UnknownKind { .. })
    ));
}

/// Runs `f` on a thread with the stack of a tokio worker (2 MiB), so a decoder that recursed
/// without bound would crash the test rather than pass on the main thread's larger stack.
fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    // ControllerRevisions whose data (a RawExtension) holds a protobuf ControllerRevision, and so
    // on: every level is an envelope and two messages deep.
    let nest = |levels: usize| {
        let mut body = envelope(
            "apps/v1",
            "ControllerRevision",
            &apps::ControllerRevision::default(),
        );
        for _ in 0..levels {
            body = envelope(
                "apps/v1",
                "ControllerRevision",
                &apps::ControllerRevision {
                    data: Some(RawExtension { raw: Some(body) }),
                    ..Default::default()
                },
            );
        }
        body
    };
    let shallow = nest(10);
    let ok = on_worker_stack(move || decode(&shallow));
    assert_eq!(ok.unwrap()["data"]["kind"], "ControllerRevision");
    let deep = nest(1000);
    let err = on_worker_stack(move || decode(&deep)).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Malformed(m) if m.contains("nest")),
        "{err}"
    );
}

#[test]
fn lengths_past_the_end_are_refused() {
    // typeMeta claims 2^32 bytes; raw claims more than u64 can say.
    for body in [
        &b"k8s\0\x0a\x80\x80\x80\x80\x10"[..],
        b"k8s\0\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        b"k8s\0\x12\x05ab",
    ] {
        assert!(
            matches!(decode(body), Err(DecodeError::Malformed(_))),
            "{body:?}"
        );
    }
    assert_eq!(
        decode(b"k8s\0\x12\x05ab").unwrap_err().to_string(),
        "proto: unexpected end of data: a field of 5 bytes with 2 left in io.k8s.apimachinery.pkg.runtime.Unknown"
    );
    // Inside a kind, the message whose wire breaks is named: here the ConfigMap's metadata
    // claims more bytes than the raw message holds.
    let cm = core::ConfigMap {
        metadata: meta("c"),
        ..Default::default()
    }
    .encode_to_vec();
    let mut raw = cm.clone();
    raw[1] += 1;
    let mut body = b"k8s\0".to_vec();
    body.extend(
        Unknown {
            type_meta: Some(TypeMeta {
                api_version: s("v1"),
                kind: s("ConfigMap"),
            }),
            raw: Some(raw),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    assert_eq!(
        decode(&body).unwrap_err().to_string(),
        format!(
            "proto: unexpected end of data: a field of {} bytes with {} left in io.k8s.api.core.v1.ConfigMap",
            cm.len() - 1,
            cm.len() - 2
        )
    );
}

#[test]
fn invalid_utf8_in_strings_is_refused() {
    let cm = core::ConfigMap {
        metadata: meta("zzzz"),
        data: [("k".to_string(), "v".to_string())].into(),
        ..Default::default()
    };
    let mut body = envelope("v1", "ConfigMap", &cm);
    let at = body.windows(4).position(|w| w == b"zzzz").unwrap();
    body[at + 1] = 0xff;
    let err = decode(&body).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ObjectMeta.name: string is not valid UTF-8 (invalid byte at offset 1 of 4)"
    );
}

#[test]
fn empty_messages_cannot_expand_without_bound() {
    // Two bytes of wire each, several zero-valued JSON members each once decoded.
    let pod = |containers: usize| {
        envelope(
            "v1",
            "Pod",
            &core::Pod {
                metadata: meta("p"),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container::default(); containers],
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    };
    let ok = decode(&pod(1000)).unwrap();
    assert_eq!(ok["spec"]["containers"].as_array().unwrap().len(), 1000);
    let err = decode(&pod(300_000)).unwrap_err();
    assert!(
        err.to_string().contains("more than 250000 messages"),
        "{err}"
    );
}
