//! PodSecurity: the Pod Security Standards (`baseline`, `restricted`) of
//! `k8s.io/pod-security-admission`, as the in-tree admission plugin applies them.
//!
//! The namespace's labels `pod-security.kubernetes.io/{enforce,warn,audit}[-version]` choose a
//! level and version per mode. `enforce` refuses pods; `warn` returns warnings and `audit` audit
//! annotations, each `would violate PodSecurity "<level>:<version>": …`. Workload resources with a
//! pod template are checked for `warn` and `audit` only. Every check reports upstream's reason and
//! detail text; checks run in upstream's order so the joined message matches byte for byte.
//! Exemptions (users, namespaces, runtime classes) are configuration: see [`Exemptions`].

use std::collections::{BTreeMap, BTreeSet};

use objects::field::{FieldError, Path, aggregate_message};
use serde_json::Value;

use crate::{AdmissionRequest, Denial, Operation, Verdict, items, quote};

/// The label naming the enforced level.
pub const ENFORCE_LEVEL_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// The label naming the enforced version.
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
/// The label naming the audited level.
pub const AUDIT_LEVEL_LABEL: &str = "pod-security.kubernetes.io/audit";
/// The label naming the audited version.
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
/// The label naming the warned level.
pub const WARN_LEVEL_LABEL: &str = "pod-security.kubernetes.io/warn";
/// The label naming the warned version.
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

/// A Pod Security Standards level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No restrictions.
    Privileged,
    /// Known privilege escalations prevented.
    Baseline,
    /// Hardening best practices.
    Restricted,
}

impl Level {
    /// The level's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// Parses a label value; an invalid one yields `restricted`, the most restrictive, and an error
    /// (as upstream's `ParseLevel`).
    pub fn parse(s: &str) -> (Level, Option<String>) {
        match s {
            "privileged" => (Level::Privileged, None),
            "baseline" => (Level::Baseline, None),
            "restricted" => (Level::Restricted, None),
            _ => (
                Level::Restricted,
                Some("must be one of privileged, baseline, restricted".to_owned()),
            ),
        }
    }
}

/// A policy version: `latest` or `v1.<minor>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// The newest checks.
    Latest,
    /// The checks as of Kubernetes `v1.<minor>`.
    Minor(u32),
}

impl Version {
    /// Parses a label value; an invalid one yields `latest` and an error.
    pub fn parse(s: &str) -> (Version, Option<String>) {
        if s == "latest" {
            return (Version::Latest, None);
        }
        let minor = s
            .strip_prefix("v1.")
            .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
            .filter(|m| *m == "0" || !m.starts_with('0'))
            .and_then(|m| m.parse::<u32>().ok());
        match minor {
            Some(m) => (Version::Minor(m), None),
            None => (
                Version::Latest,
                Some(r#"must be "latest" or "v1.x""#.to_owned()),
            ),
        }
    }

    /// The minor version checks are selected by (`latest` is newer than any).
    fn minor(self) -> u32 {
        match self {
            Version::Latest => u32::MAX,
            Version::Minor(m) => m,
        }
    }
}

/// A level at a version, printed `restricted:latest` or `baseline:v1.25`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// The version.
    pub version: Version,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            Version::Latest => write!(f, "{}:latest", self.level.as_str()),
            Version::Minor(m) => write!(f, "{}:v1.{m}", self.level.as_str()),
        }
    }
}

/// The level and version of each mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Refuse pods that violate this.
    pub enforce: LevelVersion,
    /// Annotate the audit event of requests that violate this.
    pub audit: LevelVersion,
    /// Warn the client about requests that violate this.
    pub warn: LevelVersion,
}

impl Default for Policy {
    /// Upstream's default configuration: `privileged:latest` for every mode.
    fn default() -> Self {
        let lv = LevelVersion {
            level: Level::Privileged,
            version: Version::Latest,
        };
        Policy {
            enforce: lv,
            audit: lv,
            warn: lv,
        }
    }
}

impl Policy {
    /// The policy a namespace's labels select over `defaults` (upstream's `PolicyToEvaluate`),
    /// with the label errors found. An invalid enforce level enforces `restricted`; invalid audit
    /// and warn levels fail open to `privileged`; an invalid version means `latest`.
    pub fn from_labels(
        labels: &BTreeMap<String, String>,
        defaults: Policy,
    ) -> (Policy, Vec<FieldError>) {
        let mut p = defaults;
        let mut errs = Vec::new();
        let path = Path::new("metadata").child("labels");
        let mut record = |label: &str, value: &str, err: Option<String>| -> bool {
            match err {
                Some(e) => {
                    errs.push(FieldError::invalid(path.key(label), value, e));
                    true
                }
                None => false,
            }
        };
        for (mode, level_label, version_label) in [
            (&mut p.enforce, ENFORCE_LEVEL_LABEL, ENFORCE_VERSION_LABEL),
            (&mut p.audit, AUDIT_LEVEL_LABEL, AUDIT_VERSION_LABEL),
            (&mut p.warn, WARN_LEVEL_LABEL, WARN_VERSION_LABEL),
        ] {
            if let Some(v) = labels.get(level_label) {
                let (l, e) = Level::parse(v);
                let failed = record(level_label, v, e);
                // Audit and warn fail open; enforce fails closed.
                mode.level = if failed && level_label != ENFORCE_LEVEL_LABEL {
                    Level::Privileged
                } else {
                    l
                };
            }
            if let Some(v) = labels.get(version_label) {
                let (ver, e) = Version::parse(v);
                mode.version = ver;
                record(version_label, v, e);
            }
        }
        (p, errs)
    }
}

/// Who and what is exempt from every mode (upstream's `exemptions` configuration).
#[derive(Clone, Debug, Default)]
pub struct Exemptions {
    /// Exempt user names.
    pub usernames: Vec<String>,
    /// Exempt namespaces.
    pub namespaces: Vec<String>,
    /// Exempt runtime class names.
    pub runtime_classes: Vec<String>,
}

/// One failed check: upstream's `ForbiddenReason` and `ForbiddenDetail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The short reason, e.g. `privileged`.
    pub reason: String,
    /// The detail, e.g. `container "c" must not set securityContext.privileged=true`.
    pub detail: String,
}

/// Upstream's `AggregateCheckResult.ForbiddenDetail`: `reason (detail), reason (detail)`.
pub fn forbidden_detail(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            if v.detail.is_empty() {
                v.reason.clone()
            } else {
                format!("{} ({})", v.reason, v.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

type Check = fn(&Value, &Value, u32) -> Option<Violation>;

/// Baseline checks that restricted keeps, in upstream's registration order.
const BASELINE: &[Check] = &[
    app_armor_profile,
    host_namespaces,
    host_ports,
    privileged,
    proc_mount,
    se_linux_options,
    sysctls,
    windows_host_process,
];
/// Baseline checks that a restricted check supersedes: run for `baseline` only.
const BASELINE_OVERLAP: &[Check] = &[capabilities_baseline, host_path_volumes, seccomp_baseline];
/// Restricted checks, in upstream's registration order.
const RESTRICTED: &[Check] = &[
    allow_privilege_escalation,
    capabilities_restricted,
    restricted_volumes,
    run_as_non_root,
    run_as_user,
    seccomp_restricted,
];

/// Evaluates a pod's metadata and spec against `lv`; empty when it complies.
pub fn evaluate(lv: LevelVersion, metadata: &Value, spec: &Value) -> Vec<Violation> {
    let minor = lv.version.minor();
    let run = |checks: &[Check]| -> Vec<Violation> {
        checks
            .iter()
            .filter_map(|c| c(metadata, spec, minor))
            .collect()
    };
    match lv.level {
        Level::Privileged => Vec::new(),
        Level::Baseline => {
            let mut v = run(BASELINE);
            v.extend(run(BASELINE_OVERLAP));
            v
        }
        Level::Restricted => {
            let mut v = run(BASELINE);
            v.extend(run(RESTRICTED));
            v
        }
    }
}

/// Subresources of pods that do not change the pod spec, never checked.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

/// The pod template of a workload resource: `(metadata, spec)`, none when the resource is not one
/// (or has no template).
fn pod_template<'a>(req: &AdmissionRequest, obj: &'a Value) -> Option<(&'a Value, &'a Value)> {
    let template = match (req.resource.group.as_str(), req.resource.resource.as_str()) {
        ("", "podtemplates") => &obj["template"],
        ("", "replicationcontrollers")
        | ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => &obj["spec"]["template"],
        ("batch", "cronjobs") => &obj["spec"]["jobTemplate"]["spec"]["template"],
        _ => return None,
    };
    if template.is_null() {
        return None;
    }
    Some((&template["metadata"], &template["spec"]))
}

/// Runs PodSecurity on a create or update of a pod or a workload's pod template. `namespace` is the
/// request's Namespace object (its labels select the policy); `defaults` is the configured default
/// policy.
pub fn admit(
    req: &AdmissionRequest,
    namespace: &Value,
    defaults: Policy,
    exemptions: &Exemptions,
) -> Verdict {
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return Verdict::allow();
    }
    let Some(obj) = req.object.as_ref() else {
        return Verdict::allow();
    };
    let is_pod = req.resource.is("", "pods");
    if is_pod {
        if IGNORED_POD_SUBRESOURCES.contains(&req.subresource.as_str()) {
            return Verdict::allow();
        }
    } else if !req.subresource.is_empty() {
        return Verdict::allow();
    }
    if (!req.namespace.is_empty() && exemptions.namespaces.contains(&req.namespace))
        || (!req.user.username.is_empty() && exemptions.usernames.contains(&req.user.username))
    {
        return Verdict::allow();
    }
    let (policy, errs) = Policy::from_labels(&labels_of(namespace), defaults);
    let (metadata, spec) = if is_pod {
        if errs.is_empty()
            && policy.enforce.level == Level::Privileged
            && policy.warn.level == Level::Privileged
            && policy.audit.level == Level::Privileged
        {
            return Verdict::allow();
        }
        if req.operation == Operation::Update
            && let Some(old) = &req.old_object
            && !significant_pod_update(obj, old)
        {
            return Verdict::allow();
        }
        (&obj["metadata"], &obj["spec"])
    } else {
        if errs.is_empty()
            && policy.warn.level == Level::Privileged
            && policy.audit.level == Level::Privileged
        {
            return Verdict::allow();
        }
        match pod_template(req, obj) {
            Some(t) => t,
            None => return Verdict::allow(),
        }
    };
    if let Some(rc) = spec["runtimeClassName"].as_str()
        && !rc.is_empty()
        && exemptions.runtime_classes.iter().any(|e| e == rc)
    {
        return Verdict::allow();
    }
    let mut verdict = Verdict::allow();
    if !errs.is_empty() {
        verdict.annotations.insert(
            "error".to_owned(),
            format!("Failed to parse policy: {}", aggregate_message(&errs)),
        );
    }
    let mut cache: Vec<(LevelVersion, Vec<Violation>)> = Vec::new();
    let mut eval = |lv: LevelVersion| -> Vec<Violation> {
        if let Some((_, v)) = cache.iter().find(|(k, _)| *k == lv) {
            return v.clone();
        }
        let v = evaluate(lv, metadata, spec);
        cache.push((lv, v.clone()));
        v
    };
    if is_pod {
        verdict
            .annotations
            .insert("enforce-policy".to_owned(), policy.enforce.to_string());
        let v = eval(policy.enforce);
        if !v.is_empty() {
            verdict.denial = Some(Denial::forbidden(
                req,
                format!(
                    "violates PodSecurity {}: {}",
                    quote(&policy.enforce.to_string()),
                    forbidden_detail(&v)
                ),
            ));
        }
    }
    let v = eval(policy.audit);
    if !v.is_empty() {
        verdict.annotations.insert(
            "audit-violations".to_owned(),
            format!(
                "would violate PodSecurity {}: {}",
                quote(&policy.audit.to_string()),
                forbidden_detail(&v)
            ),
        );
    }
    if verdict.denial.is_none() {
        let v = eval(policy.warn);
        if !v.is_empty() {
            verdict.warnings.push(format!(
                "would violate PodSecurity {}: {}",
                quote(&policy.warn.to_string()),
                forbidden_detail(&v)
            ));
        }
    }
    verdict
}

/// How many existing pods a namespace label change is checked against (upstream's default).
pub const NAMESPACE_MAX_PODS_TO_CHECK: usize = 3000;

/// Runs PodSecurity on a create or update of a Namespace (upstream's `ValidateNamespace`): invalid
/// labels are refused (422) on create and when they changed on update; tightening the enforce
/// level warns about the existing `pods` of the namespace that would violate it.
pub fn admit_namespace(
    req: &AdmissionRequest,
    pods: &[Value],
    defaults: Policy,
    exemptions: &Exemptions,
) -> Verdict {
    if !req.addresses("", "namespaces") {
        return Verdict::allow();
    }
    let Some(ns) = req.object.as_ref() else {
        return Verdict::allow();
    };
    let (new_policy, new_errs) = Policy::from_labels(&labels_of(ns), defaults);
    let invalid = |errs: &[FieldError]| {
        let name = req.display_name();
        Verdict::deny(Denial {
            code: 422,
            reason: "Invalid".to_owned(),
            message: format!("Namespace {name:?} is invalid: {}", aggregate_message(errs)),
            name,
            group: String::new(),
            kind: "Namespace".to_owned(),
        })
    };
    match req.operation {
        Operation::Create if !new_errs.is_empty() => invalid(&new_errs),
        Operation::Update => {
            let Some(old) = req.old_object.as_ref() else {
                return Verdict::allow();
            };
            let (old_policy, old_errs) = Policy::from_labels(&labels_of(old), defaults);
            if !new_errs.is_empty() && aggregate_message(&new_errs) != aggregate_message(&old_errs)
            {
                return invalid(&new_errs);
            }
            let (new, old) = (new_policy.enforce, old_policy.enforce);
            let name = ns["metadata"]["name"].as_str().unwrap_or_default();
            if new == old
                || new.level == Level::Privileged
                || (new.version == old.version && new.level <= old.level)
                || exemptions.namespaces.iter().any(|n| n == name)
            {
                return Verdict::allow();
            }
            Verdict {
                warnings: evaluate_pods_in_namespace(name, new, pods, exemptions),
                ..Verdict::allow()
            }
        }
        _ => Verdict::allow(),
    }
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The warnings about existing pods that violate a new enforce level, grouped by their reasons
/// and named after the lexically first pod of each group.
fn evaluate_pods_in_namespace(
    namespace: &str,
    enforce: LevelVersion,
    pods: &[Value],
    exemptions: &Exemptions,
) -> Vec<String> {
    let checked = &pods[..pods.len().min(NAMESPACE_MAX_PODS_TO_CHECK)];
    let mut groups: Vec<(String, String, usize)> = Vec::new();
    for pod in checked {
        let rc = pod["spec"]["runtimeClassName"].as_str().unwrap_or_default();
        if !rc.is_empty() && exemptions.runtime_classes.iter().any(|e| e == rc) {
            continue;
        }
        let v = evaluate(enforce, &pod["metadata"], &pod["spec"]);
        if v.is_empty() {
            continue;
        }
        let reasons = v
            .iter()
            .map(|v| v.reason.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let pod_name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match groups.iter_mut().find(|(r, _, _)| *r == reasons) {
            Some((_, first, n)) => {
                if pod_name < *first {
                    *first = pod_name;
                }
                *n += 1;
            }
            None => groups.push((reasons, pod_name, 1)),
        }
    }
    let mut warnings = Vec::new();
    if checked.len() < pods.len() {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {} of {} existing pods",
            checked.len(),
            pods.len()
        ));
    }
    if !groups.is_empty() {
        warnings.push(format!(
            "existing pods in namespace {} violate the new PodSecurity enforce level {}",
            quote(namespace),
            quote(&enforce.to_string())
        ));
    }
    let mut pod_warnings: Vec<String> = groups
        .into_iter()
        .map(|(reasons, first, n)| match n {
            1 => format!("{first}: {reasons}"),
            2 => format!("{first} (and 1 other pod): {reasons}"),
            n => format!("{first} (and {} other pods): {reasons}", n - 1),
        })
        .collect();
    pod_warnings.sort();
    warnings.extend(pod_warnings);
    warnings
}

/// Whether a pod update changes something the checks look at (upstream's
/// `isSignificantPodUpdate`): only images, container lists and seccomp annotations can change on
/// a running pod.
fn significant_pod_update(pod: &Value, old: &Value) -> bool {
    const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
    const SECCOMP_CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";
    let ann = |o: &Value, k: &str| o["metadata"]["annotations"][k].as_str().map(str::to_owned);
    if ann(pod, SECCOMP_POD) != ann(old, SECCOMP_POD) {
        return true;
    }
    let container_changed = |c: &Value, oc: &Value| {
        let key = format!(
            "{SECCOMP_CONTAINER}{}",
            c["name"].as_str().unwrap_or_default()
        );
        c["image"] != oc["image"] || ann(pod, &key) != ann(old, &key)
    };
    for list in ["containers", "initContainers"] {
        let (new, prev) = (items(&pod["spec"][list]), items(&old["spec"][list]));
        if new.len() != prev.len() {
            return true;
        }
        if new.iter().zip(prev).any(|(c, oc)| container_changed(c, oc)) {
            return true;
        }
    }
    let prev = items(&old["spec"]["ephemeralContainers"]);
    items(&pod["spec"]["ephemeralContainers"]).iter().any(|c| {
        match prev.iter().find(|oc| oc["name"] == c["name"]) {
            None => true,
            Some(oc) => container_changed(c, oc),
        }
    })
}

// ---- helpers shared by the checks ----

fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| quote(s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pluralize<'a>(singular: &'a str, plural: &'a str, n: usize) -> &'a str {
    if n == 1 { singular } else { plural }
}

/// Init containers, containers, then ephemeral containers, as upstream's `visitContainers`.
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| items(&spec[k]).iter())
}

fn name(c: &Value) -> String {
    c["name"].as_str().unwrap_or_default().to_owned()
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn violation(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
    Some(Violation {
        reason: reason.into(),
        detail: detail.into(),
    })
}

fn containers_phrase(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

// ---- baseline ----

fn app_armor_profile(meta: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let unconfined = |p: &Value| p.is_object() && str_of(&p["type"]) == "Unconfined";
    if unconfined(&spec["securityContext"]["appArmorProfile"]) {
        setters.push("pod".to_owned());
        values.insert("Unconfined".to_owned());
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| unconfined(&c["securityContext"]["appArmorProfile"]))
        .map(name)
        .collect();
    if !bad.is_empty() {
        values.insert("Unconfined".to_owned());
        setters.push(containers_phrase(&bad));
    }
    let mut values: Vec<String> = values.into_iter().collect();
    let mut annotations: Vec<String> = meta["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("container.apparmor.security.beta.kubernetes.io/"))
        .filter_map(|(k, v)| {
            let v = str_of(v);
            let ok = v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
            (!ok).then(|| format!("{k}={}", quote(v)))
        })
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_owned());
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    )
}

fn host_namespaces(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|k| spec[*k].as_bool() == Some(true))
        .map(|k| format!("{k}=true"))
        .collect();
    if set.is_empty() {
        return None;
    }
    violation("host namespaces", set.join(", "))
}

fn host_ports(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in containers(spec) {
        let mut uses = false;
        for p in items(&c["ports"]) {
            let hp = p["hostPort"].as_i64().unwrap_or(0);
            if hp != 0 {
                uses = true;
                ports.insert(hp.to_string());
            }
        }
        if uses {
            bad.push(name(c));
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    violation(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

fn privileged(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let bad: Vec<String> = containers(spec)
        .filter(|c| c["securityContext"]["privileged"].as_bool() == Some(true))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

fn proc_mount(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in containers(spec) {
        if let Some(pm) = c["securityContext"]["procMount"].as_str()
            && pm != "Default"
        {
            bad.push(name(c));
            types.insert(pm.to_owned());
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    violation(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&types)
        ),
    )
}

fn se_linux_options(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    let mut allowed = vec!["", "container_t", "container_init_t", "container_kvm_t"];
    if minor >= 31 {
        allowed.push("container_engine_t");
    }
    let mut bad_types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |o: &Value| -> bool {
        let mut ok = true;
        let t = str_of(&o["type"]);
        if !allowed.contains(&t) {
            ok = false;
            bad_types.insert(t.to_owned());
        }
        if !str_of(&o["user"]).is_empty() {
            ok = false;
            set_user = true;
        }
        if !str_of(&o["role"]).is_empty() {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut setters = Vec::new();
    let pod_opts = &spec["securityContext"]["seLinuxOptions"];
    if pod_opts.is_object() && !valid(pod_opts) {
        setters.push("pod".to_owned());
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| {
            let o = &c["securityContext"]["seLinuxOptions"];
            o.is_object() && !valid(o)
        })
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    // Upstream only lists the user and role when a type is also bad.
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
        if set_user {
            data.push("user may not be set".to_owned());
        }
        if set_role {
            data.push("role may not be set".to_owned());
        }
    }
    violation(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    )
}

fn sysctls(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    let mut allowed = vec![
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    ];
    if minor >= 27 {
        allowed.push("net.ipv4.ip_local_reserved_ports");
    }
    if minor >= 29 {
        allowed.extend([
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        ]);
    }
    if minor >= 32 {
        allowed.extend(["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]);
    }
    let bad: Vec<&str> = items(&spec["securityContext"]["sysctls"])
        .iter()
        .map(|s| str_of(&s["name"]))
        .filter(|n| !allowed.contains(n))
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation("forbidden sysctls", bad.join(", "))
}

fn windows_host_process(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let host = |sc: &Value| sc["windowsOptions"]["hostProcess"].as_bool() == Some(true);
    let bad: Vec<String> = containers(spec)
        .filter(|c| host(&c["securityContext"]))
        .map(name)
        .collect();
    let mut setters = Vec::new();
    if host(&spec["securityContext"]) {
        setters.push("pod".to_owned());
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities_baseline(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let mut ok = true;
        for cap in items(&c["securityContext"]["capabilities"]["add"]) {
            let cap = str_of(cap);
            if !BASELINE_CAPABILITIES.contains(&cap) {
                ok = false;
                caps.insert(cap.to_owned());
            }
        }
        if !ok {
            bad.push(name(c));
        }
    }
    if bad.is_empty() {
        return None;
    }
    let caps: Vec<String> = caps.into_iter().collect();
    violation(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&caps)
        ),
    )
}

fn host_path_volumes(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let bad: Vec<String> = items(&spec["volumes"])
        .iter()
        .filter(|v| v["hostPath"].is_object())
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
    )
}

fn valid_seccomp(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// Bad setters and values of `seccompProfile.type`, and the containers that set none.
fn seccomp_setters(spec: &Value) -> (Vec<String>, BTreeSet<String>, bool, Vec<String>) {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let mut pod_set = false;
    let pod = &spec["securityContext"]["seccompProfile"];
    if pod.is_object() {
        let t = str_of(&pod["type"]);
        if valid_seccomp(t) {
            pod_set = true;
        } else {
            setters.push("pod".to_owned());
            values.insert(t.to_owned());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        let p = &c["securityContext"]["seccompProfile"];
        if p.is_object() {
            let t = str_of(&p["type"]);
            if !valid_seccomp(t) {
                explicit.push(name(c));
                values.insert(t.to_owned());
            }
        } else if !pod_set {
            implicit.push(name(c));
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    (setters, values, pod_set, implicit)
}

fn seccomp_baseline(meta: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    if minor < 19 {
        const POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
        const PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";
        let ok = |v: &str| {
            v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
        };
        let mut bad = BTreeSet::new();
        let ann = &meta["annotations"];
        if let Some(v) = ann[POD].as_str()
            && !ok(v)
        {
            bad.insert(format!("{POD}={}", quote(v)));
        }
        for c in containers(spec) {
            let key = format!("{PREFIX}{}", name(c));
            if let Some(v) = ann[&key].as_str()
                && !ok(v)
            {
                bad.insert(format!("{key}={}", quote(v)));
            }
        }
        if bad.is_empty() {
            return None;
        }
        let bad: Vec<String> = bad.into_iter().collect();
        return violation(
            "seccompProfile",
            format!(
                "forbidden {} {}",
                pluralize("annotation", "annotations", bad.len()),
                bad.join(", ")
            ),
        );
    }
    let (setters, values, _, _) = seccomp_setters(spec);
    if setters.is_empty() {
        return None;
    }
    let values: Vec<String> = values.into_iter().collect();
    violation(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    )
}

// ---- restricted ----

/// From policy v1.25, Windows pods are exempt from the Linux-only restricted checks.
fn windows_exempt(spec: &Value, minor: u32) -> bool {
    minor >= 25 && spec["os"]["name"].as_str() == Some("windows")
}

fn allow_privilege_escalation(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    if minor < 8 || windows_exempt(spec, minor) {
        return None;
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| c["securityContext"]["allowPrivilegeEscalation"].as_bool() != Some(false))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

fn capabilities_restricted(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    if minor < 22 || windows_exempt(spec, minor) {
        return None;
    }
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in containers(spec) {
        let caps = &c["securityContext"]["capabilities"];
        if !caps.is_object() {
            missing_drop.push(name(c));
            continue;
        }
        if !items(&caps["drop"]).iter().any(|d| str_of(d) == "ALL") {
            missing_drop.push(name(c));
        }
        let mut added = false;
        for a in items(&caps["add"]) {
            if str_of(a) != "NET_BIND_SERVICE" {
                added = true;
                forbidden.insert(str_of(a).to_owned());
            }
        }
        if added {
            adding.push(name(c));
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        let forbidden: Vec<String> = forbidden.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&forbidden)
        ));
    }
    if details.is_empty() {
        return None;
    }
    violation("unrestricted capabilities", details.join("; "))
}

/// Volume sources the restricted level allows.
const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Volume sources upstream names when it refuses them, in its order.
const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "hostPath",
];

fn restricted_volumes(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in items(&spec["volumes"]) {
        let set = |k: &str| !v[k].is_null();
        if ALLOWED_VOLUMES.iter().any(|k| set(k)) {
            continue;
        }
        bad.push(name(v));
        let t = RESTRICTED_VOLUME_TYPES
            .iter()
            .find(|k| set(k))
            .copied()
            .unwrap_or("unknown");
        types.insert(t.to_owned());
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

fn run_as_non_root(_: &Value, spec: &Value, _: u32) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut pod_true = false;
    match spec["securityContext"]["runAsNonRoot"].as_bool() {
        Some(false) => setters.push("pod".to_owned()),
        Some(true) => pod_true = true,
        None => {}
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        match c["securityContext"]["runAsNonRoot"].as_bool() {
            Some(false) => explicit.push(name(c)),
            Some(true) => {}
            None if !pod_true => implicit.push(name(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !implicit.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

fn run_as_user(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    if minor < 23 {
        return None;
    }
    let mut setters = Vec::new();
    if spec["securityContext"]["runAsUser"].as_i64() == Some(0) {
        setters.push("pod".to_owned());
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| c["securityContext"]["runAsUser"].as_i64() == Some(0))
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

fn seccomp_restricted(_: &Value, spec: &Value, minor: u32) -> Option<Violation> {
    if minor < 19 || windows_exempt(spec, minor) {
        return None;
    }
    let (setters, values, _, implicit) = seccomp_setters(spec);
    if !setters.is_empty() {
        let values: Vec<String> = values.into_iter().collect();
        return violation(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
        );
    }
    if !implicit.is_empty() {
        return violation(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

#[cfg(test)]
mod tests;
