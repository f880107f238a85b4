//! ServiceAccount: defaults a pod's `serviceAccountName` to `default`, refuses pods whose service
//! account does not exist, mounts the projected API token volume (`kube-api-access-<suffix>`) into
//! every container, copies the account's image pull secrets, and enforces
//! `kubernetes.io/enforce-mountable-secrets`. Mirror pods may reference neither accounts nor
//! secrets. As upstream's `plugin/pkg/admission/serviceaccount`.
//!
//! Upstream looks the account up in its informer cache and, when absent there, retries a live read
//! before refusing (the account may have just been created). Here the caller does that lookup:
//! [`service_account_to_fetch`] names the account, and [`admit`] takes what the caller found.

use serde_json::{Value, json};

use crate::{AdmissionRequest, Denial, Operation, Verdict, items};

/// The account a pod without `serviceAccountName` runs as.
pub const DEFAULT_SERVICE_ACCOUNT_NAME: &str = "default";
/// Where the API token volume is mounted in every container.
pub const DEFAULT_API_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The prefix of the token volume's name (a random 5-character suffix follows a dash).
pub const SERVICE_ACCOUNT_VOLUME_NAME: &str = "kube-api-access";
/// The lifetime the token projection asks for (upstream's `WarnOnlyBoundTokenExpirationSeconds`).
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// The ConfigMap holding the cluster CA, published into every namespace.
pub const CA_CERT_CONFIG_MAP_NAME: &str = "kube-root-ca.crt";
/// The pod annotation marking a mirror (static) pod.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// The service account annotation that limits pods to the secrets the account lists.
pub const ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: &str = "kubernetes.io/enforce-mountable-secrets";

fn ignored(req: &AdmissionRequest) -> bool {
    !req.resource.is("", "pods")
        || !(req.subresource.is_empty() || req.subresource == "ephemeralcontainers")
        || req.object.as_ref().is_none_or(|o| !o.is_object())
}

fn is_mirror(pod: &Value) -> bool {
    !pod["metadata"]["annotations"][MIRROR_POD_ANNOTATION].is_null()
}

/// The name of the service account the caller must look up (live, not only from a cache) before
/// calling [`admit`]; none when the plugin needs none for this request.
pub fn service_account_to_fetch(req: &AdmissionRequest) -> Option<String> {
    if ignored(req) {
        return None;
    }
    let pod = req.object.as_ref()?;
    if is_mirror(pod) {
        return None;
    }
    let sa = pod["spec"]["serviceAccountName"]
        .as_str()
        .unwrap_or_default();
    match req.operation {
        Operation::Create => Some(if sa.is_empty() {
            DEFAULT_SERVICE_ACCOUNT_NAME.to_owned()
        } else {
            sa.to_owned()
        }),
        Operation::Update if req.subresource == "ephemeralcontainers" && !sa.is_empty() => {
            Some(sa.to_owned())
        }
        _ => None,
    }
}

/// The projected volume source of the API token (upstream's `TokenVolumeSource`).
pub fn token_volume_source() -> Value {
    json!({
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
            {"configMap": {"name": CA_CERT_CONFIG_MAP_NAME, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    })
}

/// Runs the plugin (mutation then validation). `service_account` is the account named by
/// [`service_account_to_fetch`] as the caller found it (none: it does not exist);
/// `volume_suffix` is the 5 random characters that end a new token volume's name.
pub fn admit(
    req: &AdmissionRequest,
    service_account: Option<&Value>,
    volume_suffix: &str,
) -> Verdict {
    if ignored(req) {
        return Verdict::allow();
    }
    let Some(original) = req.object.as_ref() else {
        return Verdict::allow();
    };
    let namespace = &req.namespace;
    if req.operation == Operation::Update && req.subresource == "ephemeralcontainers" {
        let sa_name = original["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or_default();
        if sa_name.is_empty() {
            let pod_name = original["metadata"]["name"].as_str().unwrap_or_default();
            return Verdict::deny(Denial::forbidden(
                req,
                format!("no service account specified for pod {namespace}/{pod_name}"),
            ));
        }
        let Some(sa) = service_account else {
            return Verdict::deny(Denial::forbidden(req, not_found(namespace, sa_name)));
        };
        if enforce_mountable_secrets(sa)
            && let Err(e) = limit_ephemeral_secret_references(sa, original)
        {
            return Verdict::deny(Denial::forbidden(req, e));
        }
        return Verdict::allow();
    }
    if req.operation != Operation::Create {
        return Verdict::allow();
    }
    if is_mirror(original) {
        return match validate_mirror(original) {
            Ok(()) => Verdict::allow(),
            Err(e) => Verdict::deny(Denial::forbidden(req, e)),
        };
    }
    let mut pod = original.clone();
    let sa_name = match pod["spec"]["serviceAccountName"].as_str() {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => {
            pod["spec"]["serviceAccountName"] = json!(DEFAULT_SERVICE_ACCOUNT_NAME);
            DEFAULT_SERVICE_ACCOUNT_NAME.to_owned()
        }
    };
    let Some(sa) = service_account else {
        return Verdict::deny(Denial::forbidden(req, not_found(namespace, &sa_name)));
    };
    if should_automount(sa, &pod) {
        mount_token(&mut pod, volume_suffix);
    }
    if items(&pod["spec"]["imagePullSecrets"]).is_empty() {
        let secrets: Vec<Value> = items(&sa["imagePullSecrets"])
            .iter()
            .map(|s| json!({"name": s["name"].as_str().unwrap_or_default()}))
            .collect();
        if !secrets.is_empty() {
            pod["spec"]["imagePullSecrets"] = Value::Array(secrets);
        }
    }
    if enforce_mountable_secrets(sa)
        && let Err(e) = limit_secret_references(sa, &pod)
    {
        return Verdict::deny(Denial::forbidden(req, e));
    }
    if pod == *original {
        Verdict::allow()
    } else {
        Verdict::patch(pod)
    }
}

/// Upstream's refusal when the account does not exist, even after its live retries.
fn not_found(namespace: &str, name: &str) -> String {
    format!(
        "error looking up service account {namespace}/{name}: serviceaccount {name:?} not found"
    )
}

fn should_automount(sa: &Value, pod: &Value) -> bool {
    pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| sa["automountServiceAccountToken"].as_bool())
        .unwrap_or(true)
}

fn mount_token(pod: &mut Value, suffix: &str) {
    let prefix = format!("{SERVICE_ACCOUNT_VOLUME_NAME}-");
    let existing = items(&pod["spec"]["volumes"])
        .iter()
        .filter_map(|v| v["name"].as_str())
        .find(|n| n.starts_with(&prefix))
        .map(str::to_owned);
    let has_volume = existing.is_some();
    let volume_name = existing.unwrap_or_else(|| format!("{prefix}{suffix}"));
    let mount =
        json!({"name": volume_name, "readOnly": true, "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH});
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod["spec"][list].as_array_mut() else {
            continue;
        };
        for c in containers {
            let mounted = items(&c["volumeMounts"])
                .iter()
                .any(|m| m["mountPath"] == DEFAULT_API_TOKEN_MOUNT_PATH);
            if mounted {
                continue;
            }
            match c["volumeMounts"].as_array_mut() {
                Some(mounts) => mounts.push(mount.clone()),
                None => c["volumeMounts"] = json!([mount.clone()]),
            }
            needs_volume = true;
        }
    }
    if !has_volume && needs_volume {
        let volume = json!({"name": volume_name, "projected": token_volume_source()});
        match pod["spec"]["volumes"].as_array_mut() {
            Some(v) => v.push(volume),
            None => pod["spec"]["volumes"] = json!([volume]),
        }
    }
}

/// Secret names a pod references (volumes, env, envFrom of every container, image pull secrets).
fn references_secrets(pod: &Value) -> bool {
    let spec = &pod["spec"];
    if items(&spec["imagePullSecrets"])
        .iter()
        .any(|s| s["name"].as_str().is_some_and(|n| !n.is_empty()))
    {
        return true;
    }
    for v in items(&spec["volumes"]) {
        if v["secret"]["secretName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
        {
            return true;
        }
        for key in [
            "azureFile",
            "cephfs",
            "cinder",
            "flexVolume",
            "iscsi",
            "rbd",
            "scaleIO",
            "storageos",
            "csi",
        ] {
            let src = &v[key];
            let name = src["secretName"]
                .as_str()
                .or(src["secretRef"]["name"].as_str())
                .or(src["nodePublishSecretRef"]["name"].as_str());
            if name.is_some_and(|n| !n.is_empty()) {
                return true;
            }
        }
        if items(&v["projected"]["sources"])
            .iter()
            .any(|s| s["secret"]["name"].as_str().is_some_and(|n| !n.is_empty()))
        {
            return true;
        }
    }
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .any(|list| {
            items(&spec[*list]).iter().any(|c| {
                items(&c["envFrom"]).iter().any(|e| {
                    e["secretRef"]["name"]
                        .as_str()
                        .is_some_and(|n| !n.is_empty())
                }) || items(&c["env"]).iter().any(|e| {
                    e["valueFrom"]["secretKeyRef"]["name"]
                        .as_str()
                        .is_some_and(|n| !n.is_empty())
                })
            })
        })
}

fn validate_mirror(pod: &Value) -> Result<(), String> {
    if pod["spec"]["serviceAccountName"]
        .as_str()
        .is_some_and(|s| !s.is_empty())
    {
        return Err("a mirror pod may not reference service accounts".to_owned());
    }
    if references_secrets(pod) {
        return Err("a mirror pod may not reference secrets".to_owned());
    }
    for v in items(&pod["spec"]["volumes"]) {
        if items(&v["projected"]["sources"])
            .iter()
            .any(|s| s["serviceAccountToken"].is_object())
        {
            return Err(
                "a mirror pod may not use ServiceAccountToken volume projections".to_owned(),
            );
        }
    }
    Ok(())
}

fn enforce_mountable_secrets(sa: &Value) -> bool {
    sa["metadata"]["annotations"][ENFORCE_MOUNTABLE_SECRETS_ANNOTATION].as_str() == Some("true")
}

fn names(list: &Value) -> Vec<&str> {
    items(list)
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect()
}

fn check_env(kind: &str, c: &Value, mountable: &[&str], sa_name: &str) -> Result<(), String> {
    let cname = c["name"].as_str().unwrap_or_default();
    for env in items(&c["env"]) {
        if let Some(s) = env["valueFrom"]["secretKeyRef"]["name"].as_str()
            && !mountable.contains(&s)
        {
            return Err(format!(
                "{kind} {cname} with envVar {} referencing secret.secretName=\"{s}\" is not allowed because service account {sa_name} does not reference that secret",
                env["name"].as_str().unwrap_or_default()
            ));
        }
    }
    for env in items(&c["envFrom"]) {
        if let Some(s) = env["secretRef"]["name"].as_str()
            && !mountable.contains(&s)
        {
            return Err(format!(
                "{kind} {cname} with envFrom referencing secret.secretName=\"{s}\" is not allowed because service account {sa_name} does not reference that secret"
            ));
        }
    }
    Ok(())
}

fn limit_secret_references(sa: &Value, pod: &Value) -> Result<(), String> {
    let sa_name = sa["metadata"]["name"].as_str().unwrap_or_default();
    let mountable = names(&sa["secrets"]);
    for v in items(&pod["spec"]["volumes"]) {
        if v["secret"].is_object() {
            let s = v["secret"]["secretName"].as_str().unwrap_or_default();
            if !mountable.contains(&s) {
                return Err(format!(
                    "volume with secret.secretName=\"{s}\" is not allowed because service account {sa_name} does not reference that secret"
                ));
            }
        }
    }
    for c in items(&pod["spec"]["initContainers"]) {
        check_env("init container", c, &mountable, sa_name)?;
    }
    for c in items(&pod["spec"]["containers"]) {
        check_env("container", c, &mountable, sa_name)?;
    }
    let pull = names(&sa["imagePullSecrets"]);
    for (i, s) in items(&pod["spec"]["imagePullSecrets"]).iter().enumerate() {
        let s = s["name"].as_str().unwrap_or_default();
        if !pull.contains(&s) {
            return Err(format!(
                "imagePullSecrets[{i}].name=\"{s}\" is not allowed because service account {sa_name} does not reference that imagePullSecret"
            ));
        }
    }
    Ok(())
}

fn limit_ephemeral_secret_references(sa: &Value, pod: &Value) -> Result<(), String> {
    let sa_name = sa["metadata"]["name"].as_str().unwrap_or_default();
    let mountable = names(&sa["secrets"]);
    for c in items(&pod["spec"]["ephemeralContainers"]) {
        check_env("ephemeral container", c, &mountable, sa_name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Resource;

    fn pods() -> Resource {
        Resource::new("", "v1", "pods")
    }

    fn sa(extra: Value) -> Value {
        let mut sa = json!({"metadata": {"name": "default", "namespace": "ns"}});
        if let (Some(a), Some(b)) = (sa.as_object_mut(), extra.as_object()) {
            for (k, v) in b {
                a.insert(k.clone(), v.clone());
            }
        }
        sa
    }

    #[test]
    fn defaults_account_and_mounts_token_everywhere() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "own", "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH}]}],
        }});
        let req = AdmissionRequest::create(pods(), "ns", pod);
        assert_eq!(service_account_to_fetch(&req).as_deref(), Some("default"));
        let v = admit(
            &req,
            Some(&sa(json!({"imagePullSecrets": [{"name": "reg"}]}))),
            "x7k2q",
        );
        let p = v.patched.expect("mutated");
        assert_eq!(p["spec"]["serviceAccountName"], "default");
        let mount = json!({"name": "kube-api-access-x7k2q", "readOnly": true, "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH});
        assert_eq!(
            p["spec"]["initContainers"][0]["volumeMounts"],
            json!([mount])
        );
        assert_eq!(p["spec"]["containers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(
            p["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            p["spec"]["volumes"],
            json!([{"name": "kube-api-access-x7k2q", "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ]}}])
        );
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "reg"}]));
    }

    #[test]
    fn automount_preferences() {
        let cases = [
            (json!(null), json!(null), true),
            (json!(null), json!(false), false),
            (json!(true), json!(false), true),
            (json!(false), json!(true), false),
        ];
        for (pod_pref, sa_pref, mounted) in cases {
            let mut pod =
                json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
            if !pod_pref.is_null() {
                pod["spec"]["automountServiceAccountToken"] = pod_pref.clone();
            }
            let account = if sa_pref.is_null() {
                sa(json!({}))
            } else {
                sa(json!({"automountServiceAccountToken": sa_pref}))
            };
            let req = AdmissionRequest::create(pods(), "ns", pod);
            let p = admit(&req, Some(&account), "abcde").patched.unwrap();
            assert_eq!(
                p["spec"]["volumes"].is_array(),
                mounted,
                "{pod_pref} {sa_pref}"
            );
        }
    }

    #[test]
    fn refusals() {
        let req = AdmissionRequest::create(
            pods(),
            "ns",
            json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "robot", "containers": [{"name": "a"}]}}),
        );
        assert_eq!(
            admit(&req, None, "abcde").denial.unwrap().message,
            "pods \"p\" is forbidden: error looking up service account ns/robot: serviceaccount \"robot\" not found"
        );
        let mirror = json!({"metadata": {"name": "m", "annotations": {MIRROR_POD_ANNOTATION: "x"}},
            "spec": {"containers": [{"name": "a", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}});
        let req = AdmissionRequest::create(pods(), "ns", mirror);
        assert_eq!(service_account_to_fetch(&req), None);
        assert_eq!(
            admit(&req, None, "abcde").denial.unwrap().message,
            "pods \"m\" is forbidden: a mirror pod may not reference secrets"
        );
        let strict = sa(
            json!({"metadata": {"name": "default", "annotations": {ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: "true"}},
            "secrets": [{"name": "ok"}]}),
        );
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}],
            "volumes": [{"name": "v", "secret": {"secretName": "other"}}]}});
        let req = AdmissionRequest::create(pods(), "ns", pod);
        assert_eq!(
            admit(&req, Some(&strict), "abcde").denial.unwrap().message,
            "pods \"p\" is forbidden: volume with secret.secretName=\"other\" is not allowed because service account default does not reference that secret"
        );
        let debug = json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "default",
            "containers": [{"name": "a"}],
            "ephemeralContainers": [{"name": "dbg", "envFrom": [{"secretRef": {"name": "other"}}]}]}});
        let mut req = AdmissionRequest::update(pods(), "ns", debug.clone(), debug);
        req.subresource = "ephemeralcontainers".to_owned();
        assert_eq!(service_account_to_fetch(&req).as_deref(), Some("default"));
        assert_eq!(
            admit(&req, Some(&strict), "abcde").denial.unwrap().message,
            "pods \"p\" is forbidden: ephemeral container dbg with envFrom referencing secret.secretName=\"other\" is not allowed because service account default does not reference that secret"
        );
    }
}
