use serde_json::json;

use super::*;
use crate::Resource;

/// A container that passes every restricted check.
fn good(name: &str) -> Value {
    json!({
        "name": name,
        "image": "nginx",
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
        },
    })
}

/// A restricted-compliant pod with `patch` merged into its spec.
fn pod(patch: Value) -> Value {
    let mut spec = json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [good("c")],
    });
    merge(&mut spec, patch);
    json!({"metadata": {"name": "p"}, "spec": spec})
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn lv(level: Level) -> LevelVersion {
    LevelVersion {
        level,
        version: Version::Latest,
    }
}

fn detail(level: Level, p: &Value) -> String {
    forbidden_detail(&evaluate(lv(level), &p["metadata"], &p["spec"]))
}

#[test]
fn compliant_pod_passes_restricted() {
    assert_eq!(detail(Level::Restricted, &pod(json!({}))), "");
}

/// Each baseline check, at `baseline:latest`, with upstream's reason and detail.
#[test]
fn baseline_checks() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "hostNamespaces",
            pod(json!({"hostNetwork": true, "hostPID": true, "hostIPC": true})),
            "host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)",
        ),
        (
            "privileged",
            pod(json!({"containers": [
                {"name": "a", "securityContext": {"privileged": true}},
                {"name": "b", "securityContext": {"privileged": true}},
            ]})),
            "privileged (containers \"a\", \"b\" must not set securityContext.privileged=true)",
        ),
        (
            "capabilities",
            pod(json!({"containers": [
                {"name": "a", "securityContext": {"capabilities": {"add": ["NET_RAW", "CHOWN", "SYS_ADMIN"]}}},
            ]})),
            "non-default capabilities (container \"a\" must not include \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add)",
        ),
        (
            "hostPath",
            pod(json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]})),
            "hostPath volumes (volume \"h\")",
        ),
        (
            "hostPorts",
            pod(json!({"containers": [
                {"name": "a", "ports": [{"containerPort": 80, "hostPort": 80}, {"containerPort": 443, "hostPort": 443}]},
                {"name": "b", "ports": [{"containerPort": 80, "hostPort": 80}]},
            ]})),
            "hostPort (containers \"a\", \"b\" use hostPorts 443, 80)",
        ),
        (
            "appArmor field and annotation",
            {
                let mut p =
                    pod(json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}));
                p["metadata"]["annotations"] =
                    json!({"container.apparmor.security.beta.kubernetes.io/c": "unconfined"});
                p
            },
            "forbidden AppArmor profiles (pod and annotation must not set AppArmor profile type to \"Unconfined\", \"container.apparmor.security.beta.kubernetes.io/c=\\\"unconfined\\\"\")",
        ),
        (
            "appArmor container",
            pod(
                json!({"containers": [{"name": "a", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]}),
            ),
            "forbidden AppArmor profile (container \"a\" must not set AppArmor profile type to \"Unconfined\")",
        ),
        (
            "seLinuxOptions",
            pod(json!({
                "securityContext": {"seLinuxOptions": {"type": "spc_t"}},
                "containers": [{"name": "a", "securityContext": {"seLinuxOptions": {"type": "foo", "user": "u", "role": "r"}}}],
            })),
            "seLinuxOptions (pod and container \"a\" set forbidden securityContext.seLinuxOptions: types \"foo\", \"spc_t\"; user may not be set; role may not be set)",
        ),
        (
            "procMount",
            pod(
                json!({"containers": [{"name": "a", "securityContext": {"procMount": "Unmasked"}}]}),
            ),
            "procMount (container \"a\" must not set securityContext.procMount to \"Unmasked\")",
        ),
        (
            "seccomp",
            pod(json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}})),
            "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")",
        ),
        (
            "sysctls",
            pod(json!({"securityContext": {"sysctls": [
                {"name": "net.ipv4.tcp_rmem", "value": "1"},
                {"name": "kernel.msgmax", "value": "1"},
                {"name": "net.core.somaxconn", "value": "1"},
            ]}})),
            "forbidden sysctls (kernel.msgmax, net.core.somaxconn)",
        ),
        (
            "windows hostProcess",
            pod(json!({
                "securityContext": {"windowsOptions": {"hostProcess": true}},
                "containers": [{"name": "a", "securityContext": {"windowsOptions": {"hostProcess": true}}}],
            })),
            "hostProcess (pod and container \"a\" must not set securityContext.windowsOptions.hostProcess=true)",
        ),
    ];
    for (name, p, want) in cases {
        assert_eq!(detail(Level::Baseline, &p), want, "{name}");
    }
}

/// Each restricted check, at `restricted:latest`.
#[test]
fn restricted_checks() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "bare pod",
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}),
            "allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"nginx\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"nginx\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
        ),
        (
            "capabilities add",
            pod(json!({"containers": [{"name": "a", "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN"]}}}]})),
            "unrestricted capabilities (container \"a\" must not include \"CHOWN\" in securityContext.capabilities.add)",
        ),
        (
            "volumes",
            pod(json!({"volumes": [
                {"name": "a", "hostPath": {"path": "/"}},
                {"name": "b", "nfs": {"server": "x", "path": "/"}},
                {"name": "c", "emptyDir": {}},
            ]})),
            "restricted volume types (volumes \"a\", \"b\" use restricted volume types \"hostPath\", \"nfs\")",
        ),
        (
            "runAsNonRoot false",
            pod(json!({"securityContext": {"runAsNonRoot": false},
                "containers": [{"name": "a", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": false}}]})),
            "runAsNonRoot != true (pod and container \"a\" must not set securityContext.runAsNonRoot=false)",
        ),
        (
            "runAsUser 0",
            pod(json!({"securityContext": {"runAsUser": 0}})),
            "runAsUser=0 (pod must not set runAsUser=0)",
        ),
        (
            "seccomp container unconfined",
            pod(json!({"containers": [{"name": "a", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "Unconfined"}}}]})),
            "seccompProfile (container \"a\" must not set securityContext.seccompProfile.type to \"Unconfined\")",
        ),
        (
            "baseline failures come first",
            pod(json!({"hostPID": true, "containers": [{"name": "a"}]})),
            "host namespaces (hostPID=true), allowPrivilegeEscalation != false (container \"a\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"a\" must set securityContext.capabilities.drop=[\"ALL\"])",
        ),
    ];
    for (name, p, want) in cases {
        assert_eq!(detail(Level::Restricted, &p), want, "{name}");
    }
}

#[test]
fn windows_pods_skip_linux_checks_from_v1_25() {
    let p = json!({"metadata": {"name": "w"}, "spec": {"os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c"}]}});
    assert_eq!(detail(Level::Restricted, &p), "");
    let at24 = forbidden_detail(&evaluate(
        LevelVersion {
            level: Level::Restricted,
            version: Version::Minor(24),
        },
        &p["metadata"],
        &p["spec"],
    ));
    assert!(
        at24.starts_with("allowPrivilegeEscalation != false"),
        "{at24}"
    );
}

#[test]
fn image_volumes_pass_restricted() {
    let p = pod(json!({"volumes": [{"name": "i", "image": {"reference": "r"}}]}));
    assert_eq!(detail(Level::Restricted, &p), "");
}

#[test]
fn versions_select_checks() {
    let p = pod(
        json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "1"}]}}),
    );
    let at = |m| {
        forbidden_detail(&evaluate(
            LevelVersion {
                level: Level::Baseline,
                version: Version::Minor(m),
            },
            &p["metadata"],
            &p["spec"],
        ))
    };
    assert_eq!(at(28), "forbidden sysctls (net.ipv4.tcp_keepalive_time)");
    assert_eq!(at(29), "");
    assert_eq!(Version::parse("v1.25"), (Version::Minor(25), None));
    assert_eq!(Version::parse("v1.025").0, Version::Latest);
    assert!(Version::parse("1.25").1.is_some());
}

fn namespace(labels: Value) -> Value {
    json!({"metadata": {"name": "ns", "labels": labels}})
}

fn pods() -> Resource {
    Resource::new("", "v1", "pods")
}

#[test]
fn enforce_refuses_with_upstream_status() {
    let req = AdmissionRequest::create(
        pods(),
        "ns",
        json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    );
    let ns = namespace(json!({ENFORCE_LEVEL_LABEL: "restricted", WARN_LEVEL_LABEL: "restricted"}));
    let v = admit(&req, &ns, Policy::default(), &Exemptions::default());
    // A refused request carries no warnings.
    let d = v.denial.expect("denied");
    assert_eq!(d.code, 403);
    assert_eq!(d.reason, "Forbidden");
    assert!(
        d.message.starts_with(
            "pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), "
        ),
        "{}",
        d.message
    );
    assert!(v.warnings.is_empty());
    assert_eq!(v.annotations["enforce-policy"], "restricted:latest");
}

#[test]
fn warn_and_audit_modes() {
    let req = AdmissionRequest::create(
        pods(),
        "ns",
        json!({"metadata": {"name": "x"}, "spec": {"hostNetwork": true, "containers": [{"name": "c"}]}}),
    );
    let ns = namespace(json!({
        ENFORCE_LEVEL_LABEL: "privileged",
        WARN_LEVEL_LABEL: "baseline",
        WARN_VERSION_LABEL: "v1.30",
        AUDIT_LEVEL_LABEL: "baseline",
    }));
    let v = admit(&req, &ns, Policy::default(), &Exemptions::default());
    assert!(v.allowed());
    assert_eq!(
        v.warnings,
        vec!["would violate PodSecurity \"baseline:v1.30\": host namespaces (hostNetwork=true)"]
    );
    assert_eq!(
        v.annotations["audit-violations"],
        "would violate PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true)"
    );
}

#[test]
fn templates_only_warn() {
    let deploy = json!({"metadata": {"name": "d"}, "spec": {"template": {"metadata": {}, "spec": {
        "containers": [{"name": "c", "securityContext": {"privileged": true}}]}}}});
    let req = AdmissionRequest::create(Resource::new("apps", "v1", "deployments"), "ns", deploy);
    // Enforce alone never applies to templates.
    let enforce_only = namespace(json!({ENFORCE_LEVEL_LABEL: "baseline"}));
    assert_eq!(
        admit(
            &req,
            &enforce_only,
            Policy::default(),
            &Exemptions::default()
        ),
        Verdict::allow()
    );
    let ns = namespace(json!({ENFORCE_LEVEL_LABEL: "baseline", WARN_LEVEL_LABEL: "baseline"}));
    let v = admit(&req, &ns, Policy::default(), &Exemptions::default());
    assert!(v.allowed());
    assert_eq!(
        v.warnings,
        vec![
            "would violate PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"
        ]
    );
    let cron = json!({"metadata": {"name": "cj"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "hostIPC": true, "containers": [{"name": "c"}]}}}}}});
    let req = AdmissionRequest::create(Resource::new("batch", "v1", "cronjobs"), "ns", cron);
    let v = admit(&req, &ns, Policy::default(), &Exemptions::default());
    assert_eq!(
        v.warnings,
        vec!["would violate PodSecurity \"baseline:latest\": host namespaces (hostIPC=true)"]
    );
}

#[test]
fn invalid_labels_fall_back_to_restricted() {
    let req = AdmissionRequest::create(
        pods(),
        "ns",
        json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c"}]}}),
    );
    let ns = namespace(json!({ENFORCE_LEVEL_LABEL: "strict"}));
    let v = admit(&req, &ns, Policy::default(), &Exemptions::default());
    assert!(!v.allowed());
    assert_eq!(
        v.annotations["error"],
        "Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted"
    );
    let ns = namespace(json!({WARN_LEVEL_LABEL: "strict", AUDIT_VERSION_LABEL: "1.2"}));
    let (p, errs) = Policy::from_labels(
        &ns["metadata"]["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect(),
        Policy::default(),
    );
    assert_eq!(p.warn.level, Level::Privileged);
    assert_eq!(errs.len(), 2);
    assert_eq!(
        errs[0].to_string(),
        "metadata.labels[pod-security.kubernetes.io/audit-version]: Invalid value: \"1.2\": must be \"latest\" or \"v1.x\""
    );
}

#[test]
fn insignificant_updates_and_ignored_subresources_pass() {
    let p = json!({"metadata": {"name": "x"}, "spec": {"hostPID": true, "containers": [{"name": "c", "image": "a"}]}});
    let mut labelled = p.clone();
    labelled["metadata"]["labels"] = json!({"a": "b"});
    let ns = namespace(json!({ENFORCE_LEVEL_LABEL: "baseline"}));
    let req = AdmissionRequest::update(pods(), "ns", labelled, p.clone());
    assert!(admit(&req, &ns, Policy::default(), &Exemptions::default()).allowed());
    let mut new_image = p.clone();
    new_image["spec"]["containers"][0]["image"] = json!("b");
    let req = AdmissionRequest::update(pods(), "ns", new_image, p.clone());
    assert!(!admit(&req, &ns, Policy::default(), &Exemptions::default()).allowed());
    let mut req = AdmissionRequest::update(pods(), "ns", p.clone(), p);
    req.subresource = "status".to_owned();
    assert!(admit(&req, &ns, Policy::default(), &Exemptions::default()).allowed());
}

#[test]
fn exemptions() {
    let req = AdmissionRequest::create(
        pods(),
        "ns",
        json!({"metadata": {"name": "x"}, "spec": {"runtimeClassName": "kata", "hostPID": true, "containers": [{"name": "c"}]}}),
    );
    let ns = namespace(json!({ENFORCE_LEVEL_LABEL: "baseline"}));
    let ex = Exemptions {
        runtime_classes: vec!["kata".to_owned()],
        ..Exemptions::default()
    };
    assert!(admit(&req, &ns, Policy::default(), &ex).allowed());
    assert!(!admit(&req, &ns, Policy::default(), &Exemptions::default()).allowed());
}

#[test]
fn namespace_labels() {
    let nss = Resource::new("", "v1", "namespaces");
    let bad = json!({"metadata": {"name": "ns", "labels": {ENFORCE_LEVEL_LABEL: "strict"}}});
    let req = AdmissionRequest::create(nss.clone(), "", bad);
    let d = admit_namespace(&req, &[], Policy::default(), &Exemptions::default())
        .denial
        .expect("invalid");
    assert_eq!((d.code, d.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        d.message,
        "Namespace \"ns\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted"
    );

    let old = json!({"metadata": {"name": "ns", "labels": {}}});
    let new = json!({"metadata": {"name": "ns", "labels": {ENFORCE_LEVEL_LABEL: "baseline"}}});
    let req = AdmissionRequest::update(nss, "", new, old);
    let bad_pod = |name: &str, spec: Value| json!({"metadata": {"name": name}, "spec": spec});
    let pods = [
        bad_pod(
            "web-b",
            json!({"hostNetwork": true, "containers": [{"name": "c"}]}),
        ),
        bad_pod(
            "web-a",
            json!({"hostNetwork": true, "containers": [{"name": "c"}]}),
        ),
        bad_pod(
            "db",
            json!({"containers": [{"name": "c", "securityContext": {"privileged": true}}]}),
        ),
        bad_pod("ok", json!({"containers": [{"name": "c"}]})),
    ];
    let v = admit_namespace(&req, &pods, Policy::default(), &Exemptions::default());
    assert!(v.allowed());
    assert_eq!(
        v.warnings,
        vec![
            "existing pods in namespace \"ns\" violate the new PodSecurity enforce level \"baseline:latest\"",
            "db: privileged",
            "web-a (and 1 other pod): host namespaces",
        ]
    );
}
