//! Validation and defaulting against upstream's rules and exact messages.

use objects::GroupKind;
use objects::defaults::{admission_defaults, apply_defaults, generate_job_selector};
use objects::validation::{name_is_valid, validate_create, validate_update};
use serde_json::{Value, json};

const POD: GroupKind<'static> = GroupKind::core("Pod");
const SERVICE: GroupKind<'static> = GroupKind::core("Service");
const DEPLOYMENT: GroupKind<'static> = GroupKind::new("apps", "Deployment");

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn messages(errs: &[objects::field::FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

/// Defaults `obj` as the API server would, then validates it.
fn create(kind: GroupKind<'_>, mut obj: Value) -> Vec<String> {
    apply_defaults(kind, &mut obj);
    messages(&validate_create(kind, &obj))
}

fn update(kind: GroupKind<'_>, old: Value, new: Value) -> Vec<String> {
    let (mut old, mut new) = (old, new);
    apply_defaults(kind, &mut old);
    apply_defaults(kind, &mut new);
    messages(&validate_update(kind, &new, &old))
}

/// Applies `edit` to a copy of `base`.
fn with(base: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    edit(&mut v);
    v
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "containers": [{
                "name": "nginx",
                "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 80}],
                "env": [{"name": "MODE", "value": "prod"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"cpu": "500m", "memory": "128Mi"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "readinessProbe": {"httpGet": {"port": "http"}},
            }],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
        },
    })
}

fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                      {"name": "https", "port": 443}],
        },
    })
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "frontend"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]},
            },
        },
    })
}

#[test]
fn realistic_objects_pass() {
    assert_eq!(create(POD, pod()), Vec::<String>::new());
    assert_eq!(create(SERVICE, service()), Vec::<String>::new());
    assert_eq!(create(DEPLOYMENT, deployment()), Vec::<String>::new());
}

#[test]
fn pod_rules() {
    let base = pod();
    let bad_name = format!("spec.containers[0].name: Invalid value: \"Nginx\": {LABEL_MSG}");
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "no containers",
            with(&base, |p| p["spec"]["containers"] = json!([])),
            vec!["spec.containers: Required value"],
        ),
        (
            "missing container name",
            with(&base, |p| {
                p["spec"]["containers"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("name");
            }),
            vec!["spec.containers[0].name: Required value"],
        ),
        (
            "bad container name",
            with(&base, |p| {
                p["spec"]["containers"][0]["name"] = json!("Nginx")
            }),
            vec![bad_name.as_str()],
        ),
        (
            "duplicate container name",
            with(&base, |p| {
                let c = p["spec"]["containers"][0].clone();
                p["spec"]["containers"].as_array_mut().unwrap().push(c);
            }),
            vec!["spec.containers[1].name: Duplicate value: \"nginx\""],
        ),
        (
            "missing image",
            with(&base, |p| p["spec"]["containers"][0]["image"] = json!("")),
            vec!["spec.containers[0].image: Required value"],
        ),
        (
            "image whitespace",
            with(&base, |p| {
                p["spec"]["containers"][0]["image"] = json!(" nginx")
            }),
            vec![
                "spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace",
            ],
        ),
        (
            "port out of range",
            with(&base, |p| {
                p["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(70000)
            }),
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            "port zero",
            with(&base, |p| {
                p["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(0)
            }),
            vec!["spec.containers[0].ports[0].containerPort: Required value"],
        ),
        (
            "bad protocol",
            with(&base, |p| {
                p["spec"]["containers"][0]["ports"][0]["protocol"] = json!("HTTP")
            }),
            vec![
                "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ],
        ),
        (
            "bad port name",
            with(&base, |p| {
                p["spec"]["containers"][0]["ports"][0]["name"] = json!("a-very-long-port-name")
            }),
            vec![
                "spec.containers[0].ports[0].name: Invalid value: \"a-very-long-port-name\": must be no more than 15 characters",
            ],
        ),
        (
            "restart policy",
            with(&base, |p| p["spec"]["restartPolicy"] = json!("Sometimes")),
            vec![
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ],
        ),
        (
            "dns policy",
            with(&base, |p| p["spec"]["dnsPolicy"] = json!("Cluster")),
            vec![
                "spec.dnsPolicy: Unsupported value: \"Cluster\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ],
        ),
        (
            "requests above limits",
            with(&base, |p| {
                p["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("1")
            }),
            vec![
                "spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
            ],
        ),
        (
            "negative quantity",
            with(&base, |p| {
                p["spec"]["containers"][0]["resources"]["limits"]["memory"] = json!("-1")
            }),
            vec![
                "spec.containers[0].resources.limits[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
                "spec.containers[0].resources.requests: Invalid value: \"64Mi\": must be less than or equal to memory limit of -1",
            ],
        ),
        (
            "empty env name",
            with(&base, |p| {
                p["spec"]["containers"][0]["env"][0]["name"] = json!("")
            }),
            vec!["spec.containers[0].env[0].name: Required value"],
        ),
        (
            "env name with =",
            with(&base, |p| {
                p["spec"]["containers"][0]["env"][0]["name"] = json!("A=B")
            }),
            vec![
                "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            ],
        ),
        (
            "unknown volume mount",
            with(&base, |p| {
                p["spec"]["containers"][0]["volumeMounts"][0]["name"] = json!("cache")
            }),
            vec!["spec.containers[0].volumeMounts[0].name: Not found: \"cache\""],
        ),
        (
            "duplicate volume",
            with(&base, |p| {
                p["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "data", "emptyDir": {}}))
            }),
            vec!["spec.volumes[1].name: Duplicate value: \"data\""],
        ),
        (
            "two volume sources",
            with(&base, |p| {
                p["spec"]["volumes"][0]["hostPath"] = json!({"path": "/x"})
            }),
            vec!["spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"],
        ),
        (
            "negative grace period",
            with(&base, |p| p["spec"]["activeDeadlineSeconds"] = json!(0)),
            vec![
                "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
            ],
        ),
        (
            "node selector value",
            with(&base, |p| p["spec"]["nodeSelector"]["zone"] = json!("a b")),
            vec![
                "spec.nodeSelector: Invalid value: \"a b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ],
        ),
        (
            "toleration operator",
            with(&base, |p| {
                p["spec"]["tolerations"][0]["operator"] = json!("Has")
            }),
            vec![
                "spec.tolerations[0].operator: Unsupported value: \"Has\": supported values: \"Equal\", \"Exists\"",
            ],
        ),
        (
            "toleration effect",
            with(&base, |p| {
                p["spec"]["tolerations"][0]["effect"] = json!("NoRun")
            }),
            vec![
                "spec.tolerations[0].effect: Unsupported value: \"NoRun\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            ],
        ),
        (
            "toleration without key",
            with(&base, |p| {
                p["spec"]["tolerations"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("key");
            }),
            vec![
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ],
        ),
        (
            "wrong json type",
            with(&base, |p| p["spec"]["containers"][0]["name"] = json!(7)),
            vec![
                "spec.containers[0].name: Invalid value: 7: must be of type string",
                "spec.containers[0].name: Required value",
            ],
        ),
        (
            "containers not a list",
            with(&base, |p| p["spec"]["containers"] = json!({"a": 1})),
            vec![
                "spec.containers: Invalid value: {\"a\":1}: must be of type array",
                "spec.containers: Required value",
            ],
        ),
    ];
    for (name, obj, want) in cases {
        assert_eq!(create(POD, obj), want, "{name}");
    }
}

#[test]
fn metadata_rules() {
    let base = pod();
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        ("bad name", with(&base, |p| p["metadata"]["name"] = json!("Web_0")),
            vec![format!("metadata.name: Invalid value: \"Web_0\": {SUBDOMAIN_MSG}")]),
        ("no name", with(&base, |p| { p["metadata"].as_object_mut().unwrap().remove("name"); }),
            vec!["metadata.name: Required value: name or generateName is required".into()]),
        ("no namespace", with(&base, |p| { p["metadata"].as_object_mut().unwrap().remove("namespace"); }),
            vec!["metadata.namespace: Required value".into()]),
        ("label key", with(&base, |p| p["metadata"]["labels"]["bad key"] = json!("x")),
            vec!["metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into()]),
        ("label value too long", with(&base, |p| p["metadata"]["labels"]["app"] = json!("a".repeat(64))),
            vec![format!("metadata.labels: Invalid value: \"{}\": must be no more than 63 characters", "a".repeat(64))]),
        ("label prefix", with(&base, |p| p["metadata"]["labels"]["Example.com/app"] = json!("x")),
            vec![format!("metadata.labels: Invalid value: \"Example.com/app\": prefix part {SUBDOMAIN_MSG}")]),
        ("annotations too large", with(&base, |p| p["metadata"]["annotations"] = json!({"big": "x".repeat(256 * 1024)})),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes".into()]),
        ("owner reference fields", with(&base, |p| p["metadata"]["ownerReferences"] = json!([{"apiVersion": "", "kind": "ReplicaSet", "name": "rs", "uid": ""}])),
            vec!["metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty".into(),
                 "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty".into()]),
        ("two controllers", with(&base, |p| p["metadata"]["ownerReferences"] = json!([
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": true}])),
            vec!["metadata.ownerReferences: Invalid value: [{\"apiVersion\":\"apps/v1\",\"controller\":true,\"kind\":\"ReplicaSet\",\"name\":\"a\",\"uid\":\"1\"},{\"apiVersion\":\"apps/v1\",\"controller\":true,\"kind\":\"ReplicaSet\",\"name\":\"b\",\"uid\":\"2\"}]: Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/a and ReplicaSet/b".into()]),
        ("finalizer", with(&base, |p| p["metadata"]["finalizers"] = json!(["example.com/ok", "bad/fin/alizer"])),
            vec!["metadata.finalizers: Invalid value: \"bad/fin/alizer\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into()]),
    ];
    for (name, obj, want) in cases {
        assert_eq!(create(POD, obj), want, "{name}");
    }
    // Cluster-scoped kinds may not carry a namespace; Namespaces are DNS labels.
    let ns = json!({"metadata": {"name": "a.b", "namespace": "x"}});
    assert_eq!(
        create(GroupKind::core("Namespace"), ns),
        vec![
            "metadata.name: Invalid value: \"a.b\": must not contain dots",
            "metadata.namespace: Forbidden: not allowed on this type",
        ]
    );
    assert!(
        create(
            GroupKind::core("Namespace"),
            json!({"metadata": {"name": "team-a"}})
        )
        .is_empty()
    );
}

#[test]
fn name_rules_per_kind() {
    assert!(name_is_valid(POD, "a.b").is_empty());
    assert_eq!(
        name_is_valid(GroupKind::core("Namespace"), "a.b"),
        vec!["must not contain dots"]
    );
    assert_eq!(name_is_valid(SERVICE, "1web").len(), 1);
    assert!(
        name_is_valid(
            GroupKind::new("rbac.authorization.k8s.io", "ClusterRole"),
            "system:admin"
        )
        .is_empty()
    );
    assert_eq!(
        name_is_valid(GroupKind::new("rbac.authorization.k8s.io", "Role"), "a/b"),
        vec!["may not contain '/'"]
    );
    assert!(name_is_valid(GroupKind::new("example.com", "Widget"), "w.1").is_empty());
}

#[test]
fn service_rules() {
    let base = service();
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "no ports",
            with(&base, |s| s["spec"]["ports"] = json!([])),
            vec!["spec.ports: Required value"],
        ),
        (
            "headless without ports",
            with(&base, |s| {
                s["spec"]["ports"] = json!([]);
                s["spec"]["clusterIP"] = json!("None");
            }),
            vec![],
        ),
        (
            "external name without ports",
            json!({"metadata": {"name": "db", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
            vec![],
        ),
        (
            "external name required",
            json!({"metadata": {"name": "db", "namespace": "default"},
            "spec": {"type": "ExternalName"}}),
            vec!["spec.externalName: Required value"],
        ),
        (
            "port range",
            with(&base, |s| s["spec"]["ports"][0]["port"] = json!(0)),
            vec!["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
        ),
        (
            "target port range",
            with(&base, |s| {
                s["spec"]["ports"][1]["targetPort"] = json!(65536)
            }),
            vec![
                "spec.ports[1].targetPort: Invalid value: 65536: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            "names required with many ports",
            with(&base, |s| {
                s["spec"]["ports"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("name");
            }),
            vec!["spec.ports[1].name: Required value"],
        ),
        (
            "duplicate port name",
            with(&base, |s| s["spec"]["ports"][1]["name"] = json!("http")),
            vec!["spec.ports[1].name: Duplicate value: \"http\""],
        ),
        (
            "protocol",
            with(&base, |s| s["spec"]["ports"][0]["protocol"] = json!("ICMP")),
            vec![
                "spec.ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ],
        ),
        (
            "type",
            with(&base, |s| s["spec"]["type"] = json!("Internal")),
            // Unknown types get no traffic-policy default, so upstream reports that too.
            vec![
                "spec.type: Unsupported value: \"Internal\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                "spec.internalTrafficPolicy: Required value",
            ],
        ),
        (
            "session affinity",
            with(&base, |s| s["spec"]["sessionAffinity"] = json!("Cookie")),
            vec![
                "spec.sessionAffinity: Unsupported value: \"Cookie\": supported values: \"ClientIP\", \"None\"",
            ],
        ),
        (
            "selector",
            with(&base, |s| s["spec"]["selector"]["app"] = json!("-web")),
            vec![
                "spec.selector: Invalid value: \"-web\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ],
        ),
        (
            "node port on cluster ip",
            with(&base, |s| s["spec"]["ports"][0]["nodePort"] = json!(30080)),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
        ),
        (
            "node port format",
            with(&base, |s| {
                s["spec"]["type"] = json!("NodePort");
                s["spec"]["ports"][0]["nodePort"] = json!(70000);
            }),
            vec![
                "spec.ports[0].nodePort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            "name is a DNS-1035 label",
            with(&base, |s| s["metadata"]["name"] = json!("1web")),
            vec![
                "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
            ],
        ),
    ];
    for (name, obj, want) in cases {
        assert_eq!(create(SERVICE, obj), want, "{name}");
    }
}

#[test]
fn workload_rules() {
    let base = deployment();
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "selector mismatch",
            with(&base, |d| {
                d["spec"]["selector"]["matchLabels"]["app"] = json!("api")
            }),
            vec![
                "spec.template.metadata.labels: Invalid value: {\"app\":\"web\",\"tier\":\"frontend\"}: `selector` does not match template `labels`",
            ],
        ),
        (
            "selector required",
            with(&base, |d| {
                d["spec"].as_object_mut().unwrap().remove("selector");
            }),
            vec!["spec.selector: Required value"],
        ),
        (
            "empty selector",
            with(&base, |d| d["spec"]["selector"] = json!({})),
            vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"],
        ),
        (
            "negative replicas",
            with(&base, |d| d["spec"]["replicas"] = json!(-1)),
            vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            "restart policy",
            with(&base, |d| {
                d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never")
            }),
            vec![
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ],
        ),
        (
            "strategy both zero",
            with(
                &base,
                |d| d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}}),
            ),
            vec![
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0",
            ],
        ),
        (
            "bad percent",
            with(
                &base,
                |d| d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "x%", "maxSurge": 1}}),
            ),
            vec![
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"x%\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            ],
        ),
        (
            "recreate with rolling update",
            with(&base, |d| {
                d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}})
            }),
            vec![
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
            ],
        ),
        (
            "template pod spec",
            with(&base, |d| {
                d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("")
            }),
            vec!["spec.template.spec.containers[0].image: Required value"],
        ),
    ];
    for (name, obj, want) in cases {
        assert_eq!(create(DEPLOYMENT, obj), want, "{name}");
    }

    // ReplicaSet, StatefulSet and DaemonSet share the selector and template rules.
    let rs = with(&base, |d| {
        d["kind"] = json!("ReplicaSet");
        d["spec"].as_object_mut().unwrap().remove("strategy");
    });
    assert!(create(GroupKind::new("apps", "ReplicaSet"), rs).is_empty());
    let sts = with(&base, |d| {
        d["spec"]["serviceName"] = json!("web");
        d["spec"]["podManagementPolicy"] = json!("Sometimes");
    });
    assert_eq!(
        create(GroupKind::new("apps", "StatefulSet"), sts),
        vec![
            "spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or 'Parallel'"
        ]
    );
    let ds = with(&base, |d| {
        d["spec"].as_object_mut().unwrap().remove("replicas");
        d["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}});
    });
    assert_eq!(
        create(GroupKind::new("apps", "DaemonSet"), ds),
        vec![
            "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"
        ]
    );
}

fn job() -> Value {
    json!({
        "metadata": {"name": "pi", "namespace": "default"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "pi", "image": "perl:5.34", "command": ["perl"]}]}}},
    })
}

#[test]
fn batch_rules() {
    let jk = GroupKind::new("batch", "Job");
    let mut j = job();
    apply_defaults(jk, &mut j);
    generate_job_selector(&mut j, "0b1f");
    assert_eq!(messages(&validate_create(jk, &j)), Vec::<String>::new());
    assert_eq!(
        j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        "0b1f"
    );
    assert_eq!(
        create(
            jk,
            with(&job(), |j| j["spec"]["template"]["spec"]["restartPolicy"] =
                json!("Always"))
        ),
        vec![
            "spec.selector: Required value",
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
        ]
    );
    let mut neg = with(&j, |j| j["spec"]["parallelism"] = json!(-1));
    apply_defaults(jk, &mut neg);
    assert_eq!(
        messages(&validate_create(jk, &neg)),
        vec!["spec.parallelism: Invalid value: -1: must be greater than or equal to 0"]
    );

    let ck = GroupKind::new("batch", "CronJob");
    let cron = json!({"metadata": {"name": "nightly", "namespace": "default"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job()["spec"].clone()}}});
    assert!(create(ck, cron.clone()).is_empty());
    assert_eq!(
        create(ck, with(&cron, |c| c["spec"]["schedule"] = json!(""))),
        vec!["spec.schedule: Required value"]
    );
    assert_eq!(
        create(
            ck,
            with(&cron, |c| c["spec"]["schedule"] = json!("0 3 * *"))
        ),
        vec![
            "spec.schedule: Invalid value: \"0 3 * *\": expected exactly 5 fields, found 4: [0 3 * *]"
        ]
    );
    assert_eq!(
        create(
            ck,
            with(&cron, |c| c["spec"]["schedule"] = json!("61 * * * *"))
        ),
        vec![
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
        ]
    );
    assert_eq!(
        create(
            ck,
            with(&cron, |c| c["spec"]["concurrencyPolicy"] =
                json!("Sometimes"))
        ),
        vec![
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\""
        ]
    );
    assert!(
        create(
            ck,
            with(&cron, |c| c["spec"]["schedule"] = json!("@hourly"))
        )
        .is_empty()
    );
}

#[test]
fn config_map_and_secret_rules() {
    let cm = GroupKind::core("ConfigMap");
    let base = json!({"metadata": {"name": "cfg", "namespace": "default"}, "data": {"app.conf": "x", "KEY_1": "y"}});
    assert!(create(cm, base.clone()).is_empty());
    assert_eq!(
        create(cm, with(&base, |c| c["data"]["bad/key"] = json!("z"))),
        vec![
            "data[bad/key]: Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        ]
    );
    assert_eq!(
        create(
            cm,
            with(&base, |c| c["data"]["big"] = json!("x".repeat(1024 * 1024)))
        ),
        vec![": Too long: may not be more than 1048576 bytes"]
    );

    let sk = GroupKind::core("Secret");
    let secret = json!({"metadata": {"name": "s", "namespace": "default"}, "data": {"password": "c2VjcmV0"}});
    assert!(create(sk, secret.clone()).is_empty());
    assert_eq!(
        create(
            sk,
            with(&secret, |s| s["data"]["password"] = json!("not base64!"))
        ),
        vec![
            "data[password]: Invalid value: \"<secret contents redacted>\": illegal base64 data at input byte 3"
        ]
    );
    assert_eq!(
        create(
            sk,
            with(&secret, |s| s["type"] =
                json!("kubernetes.io/service-account-token"))
        ),
        vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
    );
    assert_eq!(
        create(
            sk,
            with(&secret, |s| s["type"] =
                json!("kubernetes.io/dockerconfigjson"))
        ),
        vec!["data[.dockerconfigjson]: Required value"]
    );
    let docker = with(&secret, |s| {
        s["type"] = json!("kubernetes.io/dockerconfigjson");
        s["stringData"] = json!({".dockerconfigjson": "{\"auths\":{}}"});
    });
    assert!(create(sk, docker).is_empty());
    assert_eq!(
        create(
            sk,
            with(&secret, |s| s["type"] = json!("kubernetes.io/tls"))
        ),
        vec![
            "data[tls.crt]: Required value",
            "data[tls.key]: Required value"
        ]
    );

    // Immutable data.
    let locked = with(&base, |c| {
        c["immutable"] = json!(true);
        c["metadata"]["resourceVersion"] = json!("1");
    });
    assert_eq!(
        update(
            cm,
            locked.clone(),
            with(&locked, |c| c["data"]["KEY_1"] = json!("z"))
        ),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
    assert!(update(cm, locked.clone(), locked).is_empty());
}

#[test]
fn update_rules() {
    let rv = |mut v: Value| {
        v["metadata"]["resourceVersion"] = json!("7");
        v["metadata"]["uid"] = json!("u-1");
        v
    };
    // Pods: images may change, ports may not.
    let old = rv(pod());
    assert!(
        update(
            POD,
            old.clone(),
            with(&old, |p| p["spec"]["containers"][0]["image"] =
                json!("nginx:1.28"))
        )
        .is_empty()
    );
    let changed = update(
        POD,
        old.clone(),
        with(&old, |p| {
            p["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(8080)
        }),
    );
    assert_eq!(changed.len(), 1);
    assert!(changed[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"), "{changed:?}");
    assert!(
        changed[0].contains("containers[0].ports[0].containerPort: 8080"),
        "{changed:?}"
    );
    assert_eq!(
        update(
            POD,
            old.clone(),
            with(&old, |p| {
                p["spec"]["containers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "b", "image": "b"}));
            })
        ),
        vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );
    assert_eq!(
        update(
            POD,
            old.clone(),
            with(&old, |p| p["spec"]["tolerations"][0]["value"] =
                json!("api"))
        ),
        vec![
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        ]
    );
    // Metadata.
    assert_eq!(
        update(
            POD,
            old.clone(),
            with(&old, |p| p["metadata"]["uid"] = json!("u-2"))
        ),
        vec!["metadata.uid: Invalid value: \"u-2\": field is immutable"]
    );
    assert_eq!(
        update(
            POD,
            old.clone(),
            with(&old, |p| {
                p["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("resourceVersion");
            })
        ),
        vec!["metadata.resourceVersion: Invalid value: \"\": must be specified for an update"]
    );

    // Deployments: the selector is fixed in apps/v1.
    let d = rv(deployment());
    let moved = with(&d, |d| {
        d["spec"]["selector"]["matchLabels"]["tier"] = json!("frontend");
    });
    assert_eq!(
        update(DEPLOYMENT, d.clone(), moved),
        vec![
            "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web\",\"tier\":\"frontend\"}}: field is immutable"
        ]
    );
    assert!(
        update(
            DEPLOYMENT,
            d.clone(),
            with(&d, |d| d["spec"]["replicas"] = json!(5))
        )
        .is_empty()
    );

    // Services: the cluster IP may not change once set.
    let s = rv(with(&service(), |s| {
        s["spec"]["clusterIP"] = json!("10.96.0.10")
    }));
    assert_eq!(
        update(
            SERVICE,
            s.clone(),
            with(&s, |s| {
                s["spec"]["clusterIP"] = json!("10.96.0.11");
                s["spec"]["clusterIPs"] = json!(["10.96.0.11"]);
            })
        ),
        vec!["spec.clusterIPs[0]: Invalid value: [\"10.96.0.11\"]: may not change once set"]
    );

    // Jobs: selector and template are fixed.
    let jk = GroupKind::new("batch", "Job");
    let mut j = rv(job());
    apply_defaults(jk, &mut j);
    generate_job_selector(&mut j, "u-1");
    let new = with(&j, |j| {
        j["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36")
    });
    let errs = update(jk, j.clone(), new);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("spec.template: Invalid value: ")
            && errs[0].ends_with(": field is immutable"),
        "{errs:?}"
    );
}

#[test]
fn other_kinds() {
    let lease = GroupKind::new("coordination.k8s.io", "Lease");
    assert_eq!(
        create(
            lease,
            json!({"metadata": {"name": "l", "namespace": "kube-system"}, "spec": {"leaseDurationSeconds": 0}})
        ),
        vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
    );
    let pc = GroupKind::new("scheduling.k8s.io", "PriorityClass");
    assert_eq!(
        create(
            pc,
            json!({"metadata": {"name": "high"}, "value": 2_000_000_000})
        ),
        vec!["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
    );
    let sc = GroupKind::new("storage.k8s.io", "StorageClass");
    assert_eq!(
        create(
            sc,
            json!({"metadata": {"name": "fast"}, "reclaimPolicy": "Recycle", "provisioner": "ebs.csi.aws.com"})
        ),
        vec![
            "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\""
        ]
    );
    let pdb = GroupKind::new("policy", "PodDisruptionBudget");
    assert_eq!(
        create(
            pdb,
            json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"minAvailable": "120%", "selector": {"matchLabels": {"app": "web"}}}})
        ),
        vec!["spec.minAvailable: Invalid value: \"120%\": must not be greater than 100%"]
    );
    let ing = GroupKind::new("networking.k8s.io", "Ingress");
    assert_eq!(
        create(
            ing,
            json!({"metadata": {"name": "i", "namespace": "default"}, "spec": {"rules": [{"host": "10.0.0.1",
            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
        ),
        vec![
            "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"
        ]
    );
    let np = GroupKind::new("networking.k8s.io", "NetworkPolicy");
    assert_eq!(
        create(
            np,
            json!({"metadata": {"name": "n", "namespace": "default"}, "spec": {"podSelector": {}, "ingress": [{"from": [{}]}]}})
        ),
        vec!["spec.ingress[0].from[0]: Required value: must specify a peer"]
    );
    // Kinds without spec rules still get metadata validation.
    assert_eq!(
        create(
            GroupKind::new("example.com", "Widget"),
            json!({"metadata": {"name": "w", "namespace": "default", "labels": {"a": "-"}}})
        )
        .len(),
        1
    );
}

#[test]
fn never_panics_on_bad_input() {
    let kinds = [
        POD,
        SERVICE,
        DEPLOYMENT,
        GroupKind::core("ConfigMap"),
        GroupKind::core("Secret"),
        GroupKind::core("Namespace"),
        GroupKind::core("Node"),
        GroupKind::core("Event"),
        GroupKind::new("apps", "StatefulSet"),
        GroupKind::new("apps", "DaemonSet"),
        GroupKind::new("batch", "Job"),
        GroupKind::new("batch", "CronJob"),
        GroupKind::new("networking.k8s.io", "Ingress"),
        GroupKind::new("networking.k8s.io", "NetworkPolicy"),
        GroupKind::new("policy", "PodDisruptionBudget"),
    ];
    let junk = [
        json!(null),
        json!(3),
        json!("x"),
        json!([]),
        json!({}),
        json!({"metadata": 1, "spec": []}),
        json!({"metadata": {"name": 1, "labels": [1], "annotations": {"a": 2}}, "spec": {"containers": [1, null, {"ports": "x", "env": {}}], "volumes": [{"name": null}]}}),
        json!({"spec": {"template": 5, "selector": "x", "ports": [{"port": "80", "targetPort": true}], "rules": [null]}}),
        json!({"data": [1], "stringData": 2, "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": {}}}}}}}),
    ];
    for k in kinds {
        for j in &junk {
            let mut d = j.clone();
            apply_defaults(k, &mut d);
            admission_defaults(k, &mut d);
            let _ = validate_create(k, j);
            let _ = validate_create(k, &d);
            let _ = validate_update(k, j, &d);
            let _ = validate_update(k, &d, j);
        }
    }
}

#[test]
fn defaults_match_upstream_and_are_idempotent() {
    let mut p = pod();
    apply_defaults(POD, &mut p);
    let s = &p["spec"];
    assert_eq!(s["restartPolicy"], "Always");
    assert_eq!(s["dnsPolicy"], "ClusterFirst");
    assert_eq!(s["terminationGracePeriodSeconds"], 30);
    assert_eq!(s["schedulerName"], "default-scheduler");
    assert_eq!(s["securityContext"], json!({}));
    assert_eq!(s["enableServiceLinks"], true);
    let c = &s["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/");
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
    assert_eq!(c["readinessProbe"]["periodSeconds"], 10);
    assert_eq!(c["env"][1]["valueFrom"]["fieldRef"]["apiVersion"], "v1");

    let mut latest = json!({"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "nginx:latest"},
        {"name": "c", "image": "reg:5000/nginx"}, {"name": "d", "image": "nginx@sha256:abc"}],
        "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]}});
    apply_defaults(POD, &mut latest);
    let pulls: Vec<&Value> = (0..4)
        .map(|i| &latest["spec"]["containers"][i]["imagePullPolicy"])
        .collect();
    assert_eq!(pulls, vec!["Always", "Always", "Always", "IfNotPresent"]);
    assert_eq!(latest["spec"]["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(latest["spec"]["volumes"][1]["secret"]["defaultMode"], 420);

    let mut limits_only = json!({"spec": {"containers": [{"name": "a", "image": "a", "resources": {"limits": {"cpu": "1"}}}]}});
    apply_defaults(POD, &mut limits_only);
    assert_eq!(
        limits_only["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "1"})
    );

    let mut svc = service();
    apply_defaults(SERVICE, &mut svc);
    let s = &svc["spec"];
    assert_eq!(s["type"], "ClusterIP");
    assert_eq!(s["sessionAffinity"], "None");
    assert_eq!(s["internalTrafficPolicy"], "Cluster");
    assert_eq!(s["ipFamilyPolicy"], "SingleStack");
    assert_eq!(s["ports"][0]["protocol"], "TCP");
    assert_eq!(s["ports"][0]["targetPort"], "http");
    assert_eq!(s["ports"][1]["targetPort"], 443);

    let mut d = deployment();
    apply_defaults(DEPLOYMENT, &mut d);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert!(
        d["spec"]["template"]["spec"]
            .get("enableServiceLinks")
            .is_none()
    );

    let mut sts = json!({"spec": {"template": {"spec": {}}}});
    apply_defaults(GroupKind::new("apps", "StatefulSet"), &mut sts);
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );

    let mut ds = json!({"spec": {}});
    apply_defaults(GroupKind::new("apps", "DaemonSet"), &mut ds);
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );

    let mut j = job();
    apply_defaults(GroupKind::new("batch", "Job"), &mut j);
    for (k, v) in [
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
    ] {
        assert_eq!(j["spec"][k], v, "{k}");
    }

    let mut cj = json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {}}}}}});
    apply_defaults(GroupKind::new("batch", "CronJob"), &mut cj);
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );

    let mut p = pod();
    admission_defaults(POD, &mut p);
    assert_eq!(p["spec"]["priority"], 0);
    assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(p["spec"]["tolerations"].as_array().map(Vec::len), Some(3));

    // Idempotence: once equals twice, for every kind with defaults.
    let objects = [
        (POD, pod()),
        (SERVICE, service()),
        (DEPLOYMENT, deployment()),
        (GroupKind::new("apps", "StatefulSet"), deployment()),
        (GroupKind::new("apps", "DaemonSet"), deployment()),
        (GroupKind::new("apps", "ReplicaSet"), deployment()),
        (GroupKind::new("batch", "Job"), job()),
        (GroupKind::new("batch", "CronJob"), cj.clone()),
        (
            GroupKind::core("Namespace"),
            json!({"metadata": {"name": "a"}}),
        ),
        (GroupKind::core("Secret"), json!({})),
        (
            GroupKind::new("networking.k8s.io", "NetworkPolicy"),
            json!({"spec": {"egress": [{"ports": [{}]}]}}),
        ),
        (
            GroupKind::core("Service"),
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "clusterIP": "10.0.0.1", "ports": [{"port": 80}]}}),
        ),
    ];
    for (k, o) in objects {
        let mut once = o.clone();
        apply_defaults(k, &mut once);
        admission_defaults(k, &mut once);
        let mut twice = once.clone();
        apply_defaults(k, &mut twice);
        admission_defaults(k, &mut twice);
        assert_eq!(once, twice, "{k:?}");
    }
}
