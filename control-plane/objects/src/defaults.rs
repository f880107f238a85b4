//! Defaulting of built-in kinds as upstream applies it (Kubernetes v1.33).
//!
//! What this is: [`apply_defaults`] mirrors the generated defaulters of `pkg/apis/core/v1`,
//! `apps/v1`, `batch/v1`, `networking/v1`, `storage/v1` and `scheduling/v1`, plus the few
//! fields upstream fills in its create strategies without needing the store (a Namespace's
//! `kubernetes` finalizer and name label, a Service's `clusterIPs` mirroring `clusterIP` and
//! single-stack IPv4 family fields). It is idempotent: applying it twice equals applying it once.
//! Fields already set are never changed; values of the wrong JSON type are left for validation
//! to report.
//!
//! What this is not: admission. [`admission_defaults`] adds what upstream's default admission
//! plugins (`Priority`, `DefaultTolerationSeconds`) add to Pods; anything needing the store
//! (service account token volumes, allocated cluster IPs and node ports, generated names) belongs
//! to the API server.

use serde_json::{Map, Value, json};

use crate::GroupKind;

type Obj = Map<String, Value>;

/// The object at `key` in `o`, created (as `{}`) when absent or `null`; `None` when the
/// field holds another type.
fn obj_at<'a>(o: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    let slot = o.entry(key.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Obj::new());
    }
    slot.as_object_mut()
}

/// The object at `key` in `o` when present.
fn existing<'a>(o: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    o.get_mut(key).and_then(Value::as_object_mut)
}

/// Sets `key` to `v` when absent or `null`.
fn set_default(o: &mut Obj, key: &str, v: Value) {
    let slot = o.entry(key.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = v;
    }
}

/// Sets `key` to `v` when absent, `null` or the empty string (Go's zero value for strings).
fn set_default_str(o: &mut Obj, key: &str, v: &str) {
    match o.get(key) {
        None | Some(Value::Null) => {
            o.insert(key.to_owned(), Value::from(v));
        }
        Some(Value::String(s)) if s.is_empty() => {
            o.insert(key.to_owned(), Value::from(v));
        }
        _ => {}
    }
}

/// Each object element of the list at `key`.
fn each_in<'a>(o: &'a mut Obj, key: &str) -> impl Iterator<Item = &'a mut Obj> {
    o.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn is_empty_str(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// Berth's defaults for a `berth.dev` Cluster: the region of a `local` cluster, the address
/// ranges, and anonymous health checks.
fn berth_cluster(o: &mut Obj) {
    let Some(spec) = obj_at(o, "spec") else {
        return;
    };
    if spec.get("cloud").and_then(Value::as_str) == Some("local") {
        set_default_str(spec, "region", berth_api::LOCAL_REGION);
    }
    set_default_str(spec, "serviceCIDR", berth_api::DEFAULT_SERVICE_CIDR);
    set_default_str(spec, "podCIDR", berth_api::DEFAULT_POD_CIDR);
    if let Some(access) = obj_at(spec, "apiAccess") {
        set_default(access, "anonymousHealth", Value::Bool(true));
    }
}

/// Berth's defaults for a `berth.dev` NodePool: `minSize` 0, `desiredSize` the minimum and
/// `maxSize` the desired size (so a pool does not grow unless it is given room to).
fn berth_node_pool(o: &mut Obj) {
    let Some(spec) = obj_at(o, "spec") else {
        return;
    };
    set_default(spec, "minSize", json!(0));
    let min = spec.get("minSize").cloned().unwrap_or(json!(0));
    set_default(spec, "desiredSize", min);
    let desired = spec.get("desiredSize").cloned().unwrap_or(json!(0));
    set_default(spec, "maxSize", desired);
}

/// Applies upstream's defaults for `kind` to `obj` in place.
pub fn apply_defaults(kind: GroupKind<'_>, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    match (kind.group, kind.kind) {
        ("", "Pod") => pod(o),
        ("", "PodTemplate") => {
            if let Some(t) = existing(o, "template") {
                pod_template(t);
            }
        }
        ("", "ReplicationController") => {
            if let Some(s) = existing(o, "spec") {
                set_default(s, "replicas", json!(1));
                if let Some(t) = existing(s, "template") {
                    pod_template(t);
                }
            }
        }
        ("", "Service") => service(o),
        ("", "Secret") => set_default_str(o, "type", "Opaque"),
        ("", "Namespace") => namespace(o),
        ("", "PersistentVolumeClaim") => pvc(o),
        ("apps", "Deployment") => deployment(o),
        ("apps", "ReplicaSet") => {
            if let Some(s) = existing(o, "spec") {
                set_default(s, "replicas", json!(1));
                if let Some(t) = existing(s, "template") {
                    pod_template(t);
                }
            }
        }
        ("apps", "StatefulSet") => stateful_set(o),
        ("apps", "DaemonSet") => daemon_set(o),
        ("batch", "Job") => job(o),
        ("batch", "CronJob") => cron_job(o),
        ("networking.k8s.io", "NetworkPolicy") => network_policy(o),
        ("storage.k8s.io", "StorageClass") => {
            set_default_str(o, "reclaimPolicy", "Delete");
            set_default_str(o, "volumeBindingMode", "Immediate");
        }
        (berth_api::GROUP, "Cluster") => berth_cluster(o),
        (berth_api::GROUP, "NodePool") => berth_node_pool(o),
        ("scheduling.k8s.io", "PriorityClass") => {
            set_default_str(o, "preemptionPolicy", "PreemptLowerPriority");
        }
        _ => {}
    }
}

/// Adds to a Pod what upstream's default admission chain adds without the store: `priority: 0`
/// and `preemptionPolicy: PreemptLowerPriority` when no priority class is named (`Priority`),
/// and 300-second `NoExecute` tolerations for `node.kubernetes.io/not-ready` and
/// `node.kubernetes.io/unreachable` (`DefaultTolerationSeconds`). Idempotent; other kinds are
/// left alone.
pub fn admission_defaults(kind: GroupKind<'_>, obj: &mut Value) {
    if (kind.group, kind.kind) != ("", "Pod") {
        return;
    }
    let Some(spec) = obj.as_object_mut().and_then(|o| obj_at(o, "spec")) else {
        return;
    };
    if is_empty_str(spec.get("priorityClassName")) {
        set_default(spec, "priority", json!(0));
        set_default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
    }
    let tolerations = spec.entry("tolerations").or_insert(Value::Null);
    if tolerations.is_null() {
        *tolerations = Value::Array(Vec::new());
    }
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = list.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || (k.is_empty() && op == "Exists"))
                && (effect.is_empty() || effect == "NoExecute")
        });
        if !tolerated {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }));
        }
    }
}

/// Upstream's `SetDefaults_Pod`: the pod spec, requests from limits, service links, host ports
/// under host networking, and the deprecated `serviceAccount` mirror.
fn pod(o: &mut Obj) {
    let Some(spec) = obj_at(o, "spec") else {
        return;
    };
    pod_spec(spec);
    set_default(spec, "enableServiceLinks", json!(true));
    let host_network = spec.get("hostNetwork") == Some(&Value::Bool(true));
    for key in ["containers", "initContainers"] {
        for c in each_in(spec, key) {
            if let Some(r) = existing(c, "resources") {
                let limits = r.get("limits").and_then(Value::as_object).cloned();
                if let Some(limits) = limits.filter(|l| !l.is_empty())
                    && let Some(req) = obj_at(r, "requests")
                {
                    for (k, v) in limits {
                        req.entry(k).or_insert(v);
                    }
                }
            }
            if host_network {
                for p in each_in(c, "ports") {
                    let cp = p.get("containerPort").cloned();
                    let hp = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                    if let (Some(cp), 0) = (cp, hp) {
                        p.insert("hostPort".to_owned(), cp);
                    }
                }
            }
        }
    }
}

/// The pod template in a workload: labels stay, the spec is defaulted.
fn pod_template(t: &mut Obj) {
    if let Some(spec) = obj_at(t, "spec") {
        pod_spec(spec);
    }
}

/// Upstream's `SetDefaults_PodSpec` and the defaulters of what a pod spec contains.
fn pod_spec(s: &mut Obj) {
    set_default_str(s, "dnsPolicy", "ClusterFirst");
    set_default_str(s, "restartPolicy", "Always");
    set_default(s, "securityContext", json!({}));
    set_default(s, "terminationGracePeriodSeconds", json!(30));
    set_default_str(s, "schedulerName", "default-scheduler");
    // The v1 conversion keeps the deprecated `serviceAccount` equal to `serviceAccountName`.
    if is_empty_str(s.get("serviceAccountName")) {
        if let Some(sa) = s
            .get("serviceAccount")
            .filter(|v| !is_empty_str(Some(v)))
            .cloned()
        {
            s.insert("serviceAccountName".to_owned(), sa);
        }
    } else if is_empty_str(s.get("serviceAccount"))
        && let Some(sa) = s.get("serviceAccountName").cloned()
    {
        s.insert("serviceAccount".to_owned(), sa);
    }
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for c in each_in(s, key) {
            container(c);
        }
    }
    for v in each_in(s, "volumes") {
        volume(v);
    }
}

/// The pull policy upstream picks for an image: `Always` for `:latest` or no tag (unless
/// pinned by digest), `IfNotPresent` otherwise.
fn pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.rsplit_once(':').map(|(_, t)| t);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

fn container(c: &mut Obj) {
    if is_empty_str(c.get("imagePullPolicy"))
        && let Some(image) = c.get("image").and_then(Value::as_str)
    {
        let p = pull_policy(image);
        c.insert("imagePullPolicy".to_owned(), Value::from(p));
    }
    set_default_str(c, "terminationMessagePath", "/dev/termination-log");
    set_default_str(c, "terminationMessagePolicy", "File");
    for p in each_in(c, "ports") {
        set_default_str(p, "protocol", "TCP");
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing(c, probe) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            handler(p);
        }
    }
    if let Some(l) = existing(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = existing(l, hook) {
                handler(h);
            }
        }
    }
    for ev in each_in(c, "env") {
        if let Some(fr) = existing(ev, "valueFrom").and_then(|vf| existing(vf, "fieldRef")) {
            set_default_str(fr, "apiVersion", "v1");
        }
    }
}

fn handler(h: &mut Obj) {
    if let Some(g) = existing(h, "httpGet") {
        set_default_str(g, "path", "/");
        set_default_str(g, "scheme", "HTTP");
    }
}

use crate::validation::pod::VOLUME_SOURCES;

fn volume(v: &mut Obj) {
    if !VOLUME_SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()))
    {
        v.insert("emptyDir".to_owned(), json!({}));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = existing(v, src) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = existing(v, "hostPath") {
        set_default(h, "type", json!(""));
    }
    if let Some(d) = existing(v, "downwardAPI") {
        for item in each_in(d, "items") {
            if let Some(fr) = existing(item, "fieldRef") {
                set_default_str(fr, "apiVersion", "v1");
            }
        }
    }
    if let Some(p) = existing(v, "projected") {
        for src in each_in(p, "sources") {
            if let Some(t) = existing(src, "serviceAccountToken") {
                set_default(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = existing(src, "downwardAPI") {
                for item in each_in(d, "items") {
                    if let Some(fr) = existing(item, "fieldRef") {
                        set_default_str(fr, "apiVersion", "v1");
                    }
                }
            }
        }
    }
    if let Some(spec) = existing(v, "ephemeral")
        .and_then(|e| existing(e, "volumeClaimTemplate"))
        .and_then(|t| existing(t, "spec"))
    {
        set_default_str(spec, "volumeMode", "Filesystem");
    }
}

/// Upstream's `SetDefaults_Service`, plus the strategy's cluster-IP and family normalisation.
fn service(o: &mut Obj) {
    let Some(s) = obj_at(o, "spec") else {
        return;
    };
    set_default_str(s, "sessionAffinity", "None");
    set_default_str(s, "type", "ClusterIP");
    let typ = s
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    for p in each_in(s, "ports") {
        set_default_str(p, "protocol", "TCP");
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset && let Some(port) = p.get("port").cloned() {
            p.insert("targetPort".to_owned(), port);
        }
    }
    if s.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
        let has_timeout = s
            .get("sessionAffinityConfig")
            .and_then(|c| c.get("clientIP"))
            .and_then(|c| c.get("timeoutSeconds"))
            .is_some_and(|t| !t.is_null());
        if !has_timeout {
            s.insert(
                "sessionAffinityConfig".to_owned(),
                json!({"clientIP": {"timeoutSeconds": 10800}}),
            );
        }
    }
    if typ == "NodePort" || typ == "LoadBalancer" {
        set_default_str(s, "externalTrafficPolicy", "Cluster");
    }
    if matches!(typ.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        set_default_str(s, "internalTrafficPolicy", "Cluster");
        // Single-stack IPv4, as a single-stack cluster's registry fills them in.
        set_default_str(s, "ipFamilyPolicy", "SingleStack");
        set_default(s, "ipFamilies", json!(["IPv4"]));
        let ip = s
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !ip.is_empty() {
            set_default(s, "clusterIPs", json!([ip]));
        }
    }
    if typ == "LoadBalancer" {
        set_default(s, "allocateLoadBalancerNodePorts", json!(true));
    }
}

/// The Namespace strategy's `kubernetes` finalizer, `SetDefaults_Namespace`'s name label and
/// `SetDefaults_NamespaceStatus`'s phase.
fn namespace(o: &mut Obj) {
    let name = o
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let (Some(name), Some(m)) = (name, obj_at(o, "metadata"))
        && !name.is_empty()
        && let Some(l) = obj_at(m, "labels")
    {
        l.insert("kubernetes.io/metadata.name".to_owned(), Value::from(name));
    }
    if let Some(s) = obj_at(o, "spec") {
        let has = s
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if !has {
            s.insert("finalizers".to_owned(), json!(["kubernetes"]));
        }
    }
    if let Some(st) = obj_at(o, "status") {
        set_default_str(st, "phase", "Active");
    }
}

fn pvc(o: &mut Obj) {
    if let Some(s) = obj_at(o, "spec") {
        set_default_str(s, "volumeMode", "Filesystem");
    }
    if let Some(st) = obj_at(o, "status") {
        set_default_str(st, "phase", "Pending");
    }
}

fn deployment(o: &mut Obj) {
    let Some(s) = obj_at(o, "spec") else {
        return;
    };
    set_default(s, "replicas", json!(1));
    if let Some(st) = obj_at(s, "strategy") {
        set_default_str(st, "type", "RollingUpdate");
        if st.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = obj_at(st, "rollingUpdate")
        {
            set_default(ru, "maxUnavailable", json!("25%"));
            set_default(ru, "maxSurge", json!("25%"));
        }
    }
    set_default(s, "revisionHistoryLimit", json!(10));
    set_default(s, "progressDeadlineSeconds", json!(600));
    if let Some(t) = existing(s, "template") {
        pod_template(t);
    }
}

fn stateful_set(o: &mut Obj) {
    let Some(s) = obj_at(o, "spec") else {
        return;
    };
    set_default_str(s, "podManagementPolicy", "OrderedReady");
    if let Some(us) = obj_at(s, "updateStrategy") {
        if is_empty_str(us.get("type")) {
            us.insert("type".to_owned(), json!("RollingUpdate"));
            set_default(us, "rollingUpdate", json!({}));
        }
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = existing(us, "rollingUpdate")
        {
            set_default(ru, "partition", json!(0));
        }
    }
    if let Some(r) = obj_at(s, "persistentVolumeClaimRetentionPolicy") {
        set_default_str(r, "whenDeleted", "Retain");
        set_default_str(r, "whenScaled", "Retain");
    }
    set_default(s, "replicas", json!(1));
    set_default(s, "revisionHistoryLimit", json!(10));
    if let Some(t) = existing(s, "template") {
        pod_template(t);
    }
    for claim in each_in(s, "volumeClaimTemplates") {
        pvc(claim);
    }
}

fn daemon_set(o: &mut Obj) {
    let Some(s) = obj_at(o, "spec") else {
        return;
    };
    if let Some(us) = obj_at(s, "updateStrategy") {
        set_default_str(us, "type", "RollingUpdate");
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = obj_at(us, "rollingUpdate")
        {
            set_default(ru, "maxUnavailable", json!(1));
            set_default(ru, "maxSurge", json!(0));
        }
    }
    set_default(s, "revisionHistoryLimit", json!(10));
    if let Some(t) = existing(s, "template") {
        pod_template(t);
    }
}

/// Upstream's `SetDefaults_Job`.
fn job(o: &mut Obj) {
    let template_labels = o
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let (Some(labels), Some(m)) = (template_labels, obj_at(o, "metadata")) {
        let empty = m
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if empty {
            m.insert("labels".to_owned(), labels);
        }
    }
    let Some(s) = obj_at(o, "spec") else {
        return;
    };
    job_spec(s);
}

fn job_spec(s: &mut Obj) {
    let unset = |s: &Obj, k: &str| s.get(k).is_none_or(Value::is_null);
    if unset(s, "completions") && unset(s, "parallelism") {
        s.insert("completions".to_owned(), json!(1));
        s.insert("parallelism".to_owned(), json!(1));
    }
    set_default(s, "parallelism", json!(1));
    if unset(s, "backoffLimit") {
        let limit = if unset(s, "backoffLimitPerIndex") {
            6
        } else {
            i64::from(i32::MAX)
        };
        s.insert("backoffLimit".to_owned(), json!(limit));
    }
    set_default_str(s, "completionMode", "NonIndexed");
    set_default(s, "suspend", json!(false));
    let has_failure_policy = !unset(s, "podFailurePolicy");
    if let Some(pfp) = existing(s, "podFailurePolicy") {
        for rule in each_in(pfp, "rules") {
            for cond in each_in(rule, "onPodConditions") {
                set_default_str(cond, "status", "True");
            }
        }
    }
    set_default_str(
        s,
        "podReplacementPolicy",
        if has_failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        },
    );
    if let Some(t) = existing(s, "template") {
        pod_template(t);
    }
}

fn cron_job(o: &mut Obj) {
    let Some(s) = obj_at(o, "spec") else {
        return;
    };
    set_default_str(s, "concurrencyPolicy", "Allow");
    set_default(s, "suspend", json!(false));
    set_default(s, "successfulJobsHistoryLimit", json!(3));
    set_default(s, "failedJobsHistoryLimit", json!(1));
    if let Some(t) = existing(s, "jobTemplate")
        .and_then(|jt| existing(jt, "spec"))
        .and_then(|js| existing(js, "template"))
    {
        pod_template(t);
    }
}

fn network_policy(o: &mut Obj) {
    let Some(s) = obj_at(o, "spec") else {
        return;
    };
    for dir in ["ingress", "egress"] {
        for rule in each_in(s, dir) {
            for p in each_in(rule, "ports") {
                set_default_str(p, "protocol", "TCP");
            }
        }
    }
    let no_types = s
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_types {
        let egress = s
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty());
        let types = if egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        s.insert("policyTypes".to_owned(), types);
    }
}

/// What upstream's Job strategy does on create unless `spec.manualSelector` is true: select the
/// Job's pods by its uid and label the template to match (`controller-uid`, `job-name` and
/// their `batch.kubernetes.io/` forms). Call after the uid is assigned, before validation.
pub fn generate_job_selector(obj: &mut Value, uid: &str) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let name = o
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let Some(s) = obj_at(o, "spec") else {
        return;
    };
    if s.get("manualSelector") == Some(&Value::Bool(true)) {
        return;
    }
    s.insert(
        "selector".to_owned(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    if let Some(labels) = obj_at(s, "template")
        .and_then(|t| obj_at(t, "metadata"))
        .and_then(|m| obj_at(m, "labels"))
    {
        for (k, v) in [
            ("controller-uid", uid),
            ("batch.kubernetes.io/controller-uid", uid),
            ("job-name", name.as_str()),
            ("batch.kubernetes.io/job-name", name.as_str()),
        ] {
            labels.entry(k.to_owned()).or_insert_with(|| Value::from(v));
        }
    }
}
