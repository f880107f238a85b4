//! The Deployment controller's reconcile core (`pkg/controller/deployment`): find or create the
//! ReplicaSet for the current template, roll pods over by the strategy, scale proportionally,
//! clean up history and compute `status` with upstream's conditions.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use objects::selectors::LabelSelector;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::meta::{self, Claim};

/// The label (and selector term) that tells one revision's pods from another's.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The revision of a ReplicaSet, and of its Deployment.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The earlier revisions a ReplicaSet held before a rollback made it current again.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's `spec.replicas` when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// Annotations a Deployment does not copy to its ReplicaSets.
const SKIPPED_ANNOTATIONS: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// Upstream caps `revision-history` at this many characters.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// `progressDeadlineSeconds` of `MaxInt32` means no deadline.
const NO_DEADLINE: i64 = i32::MAX as i64;

/// Upstream's condition reasons.
pub mod reasons {
    /// Progressing: the controller created the ReplicaSet for a new template.
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    /// Progressing: an existing ReplicaSet matches the template.
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    /// Progressing: the rollout made progress.
    pub const RS_UPDATED: &str = "ReplicaSetUpdated";
    /// Progressing: the rollout completed.
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    /// Progressing (False): no progress within `progressDeadlineSeconds`.
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    /// Progressing (Unknown): the Deployment is paused.
    pub const PAUSED: &str = "DeploymentPaused";
    /// Progressing (Unknown): the Deployment was resumed.
    pub const RESUMED: &str = "DeploymentResumed";
    /// Available (True).
    pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
    /// Available (False).
    pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
}

/// The writes one Deployment sync asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Orphan ReplicaSets matching the selector, with the Deployment's controller reference
    /// added.
    pub adopt: Vec<Value>,
    /// Owned ReplicaSets that stopped matching, with the reference removed.
    pub release: Vec<Value>,
    /// The ReplicaSet to create for the current template (its name is deterministic).
    pub create: Option<Value>,
    /// Owned ReplicaSets to replace (scaled, annotated), each as it should be stored.
    pub update: Vec<Value>,
    /// Names of old ReplicaSets that `revisionHistoryLimit` cleans up.
    pub delete: Vec<String>,
    /// The Deployment with its new `status` and `deployment.kubernetes.io/revision` annotation,
    /// to write through the status subresource (which, as upstream's, keeps annotations), when
    /// either changed.
    pub deployment: Option<Value>,
    /// Sync again after this long (progress deadline checks; zero after a hash collision).
    pub requeue_after: Option<Duration>,
}

impl Plan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.adopt.is_empty()
            && self.release.is_empty()
            && self.create.is_none()
            && self.update.is_empty()
            && self.delete.is_empty()
            && self.deployment.is_none()
    }
}

/// Upstream's `ComputeHash`: FNV-32a over the pod template, then the collision count as four
/// little-endian bytes when set, rendered with `rand.SafeEncodeString`. The template is hashed
/// as canonical JSON (keys sorted), so equal templates always hash alike.
pub fn compute_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = String::new();
    meta::canonical_json(&normalized(template), &mut text);
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(text.as_bytes());
    if let Some(c) = collision_count {
        feed(&(c as u32).to_le_bytes());
    }
    safe_encode(&h.to_string())
}

/// `rand.SafeEncodeString`: each byte picks from an alphabet without vowels or look-alikes, so
/// names never spell words.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// Upstream's `EqualIgnoreHash`: two pod templates are the same revision when they are equal
/// after dropping the `pod-template-hash` label.
pub fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    strip_hash(a) == strip_hash(b)
}

/// The template with what Go's typed round trip would make equal removed: `null` fields
/// (`creationTimestamp: null`) and empty objects and lists (`resources: {}`). Clients built on
/// Go types send those (e.g. `kubectl rollout undo`), clients built on JSON leave them out;
/// upstream compares decoded structs, where both are the same.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| match v {
                    Value::Null => false,
                    Value::Object(o) => !o.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    _ => true,
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn strip_hash(t: &Value) -> Value {
    let mut t = normalized(t);
    if let Some(Value::Object(labels)) = t.pointer_mut("/metadata/labels") {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty()
            && let Some(Value::Object(m)) = t.pointer_mut("/metadata")
        {
            m.remove("labels");
        }
    }
    t
}

/// Resolves an int-or-percent against `total`, rounding percentages up or down
/// (`GetScaledValueFromIntOrPercent`).
pub fn scaled_value(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99).div_euclid(100),
            Some(p) => (p * total).div_euclid(100),
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// Upstream's `ResolveFenceposts`: `(maxSurge, maxUnavailable)` for `desired` replicas, with
/// surge rounded up, unavailability rounded down, and `maxUnavailable` raised to 1 when both
/// resolve to zero. Absent values take the apps/v1 defaults of 25%.
pub fn resolve_fenceposts(deploy: &Value, desired: i64) -> (i64, i64) {
    let ru = deploy.pointer("/spec/strategy/rollingUpdate");
    let pct = json!("25%");
    let surge_v = ru.and_then(|r| r.get("maxSurge")).unwrap_or(&pct);
    let unavail_v = ru.and_then(|r| r.get("maxUnavailable")).unwrap_or(&pct);
    let surge = scaled_value(Some(surge_v), desired, true);
    let mut unavailable = scaled_value(Some(unavail_v), desired, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn is_rolling(d: &Value) -> bool {
    meta::str_at(d, "/spec/strategy/type") != "Recreate"
}

fn desired(d: &Value) -> i64 {
    meta::int_at(d, "/spec/replicas", 1)
}

fn max_surge(d: &Value) -> i64 {
    if !is_rolling(d) {
        return 0;
    }
    resolve_fenceposts(d, desired(d)).0
}

fn max_unavailable(d: &Value) -> i64 {
    let want = desired(d);
    if !is_rolling(d) || want == 0 {
        return 0;
    }
    resolve_fenceposts(d, want).1.min(want)
}

fn progress_deadline(d: &Value) -> Option<i64> {
    let s = d.pointer("/spec/progressDeadlineSeconds")?.as_i64()?;
    (s != NO_DEADLINE).then_some(s)
}

fn spec_replicas(rs: &Value) -> i64 {
    meta::int_at(rs, "/spec/replicas", 1)
}

fn status_count(obj: &Value, key: &str) -> i64 {
    meta::int_at(obj, &format!("/status/{key}"), 0)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")?.get(key)?.as_str()
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) -> bool {
    if annotation(obj, key) == Some(value) {
        return false;
    }
    let metadata = meta::object_at(obj, "metadata");
    let ann = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !ann.is_object() {
        *ann = Value::Object(Map::new());
    }
    ann[key] = json!(value);
    true
}

fn revision(rs: &Value) -> Option<i64> {
    annotation(rs, REVISION)?.parse().ok()
}

/// `ReplicaSetsByCreationTimestamp`: older first, then by name.
fn by_creation(a: &Value, b: &Value) -> Ordering {
    let t = |r: &Value| meta::parse_time(meta::str_at(r, "/metadata/creationTimestamp"));
    t(a).unwrap_or(i64::MIN)
        .cmp(&t(b).unwrap_or(i64::MIN))
        .then_with(|| meta::name(a).cmp(meta::name(b)))
}

/// `SetReplicasAnnotations`.
fn set_replicas_annotations(rs: &mut Value, desired: i64, max: i64) -> bool {
    let a = set_annotation(rs, DESIRED_REPLICAS, &desired.to_string());
    let b = set_annotation(rs, MAX_REPLICAS, &max.to_string());
    a || b
}

/// A Deployment condition as upstream's `NewDeploymentCondition` stamps it.
fn new_condition(type_: &str, status: &str, reason: &str, message: &str, now: i64) -> Value {
    let t = meta::format_time(now);
    json!({
        "type": type_, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
        "reason": reason, "message": message,
    })
}

fn conditions_mut(status: &mut Value) -> &mut Vec<Value> {
    if !status.is_object() {
        *status = json!({});
    }
    let slot = status
        .as_object_mut()
        .map(|m| m.entry("conditions").or_insert_with(|| json!([])))
        .expect("status is an object");
    if !slot.is_array() {
        *slot = json!([]);
    }
    slot.as_array_mut().expect("conditions is an array")
}

/// Upstream's `SetDeploymentCondition`: a condition with the same status and reason is left
/// alone; the same status keeps its transition time; the new condition goes last.
fn set_condition(status: &mut Value, mut cond: Value) {
    let type_ = cond["type"].as_str().unwrap_or_default().to_owned();
    if let Some(cur) = meta::condition(status, &type_) {
        if cur["status"] == cond["status"] && cur["reason"] == cond["reason"] {
            return;
        }
        if cur["status"] == cond["status"] {
            cond["lastTransitionTime"] = cur["lastTransitionTime"].clone();
        }
    }
    remove_condition(status, &type_);
    conditions_mut(status).push(cond);
}

fn remove_condition(status: &mut Value, type_: &str) {
    let conds = conditions_mut(status);
    conds.retain(|c| c["type"] != type_);
    if conds.is_empty()
        && let Some(m) = status.as_object_mut()
    {
        m.remove("conditions");
    }
}

/// Drops the zero counts upstream's JSON omits, so stored and computed statuses compare.
fn normalized_status(status: &Value) -> Value {
    let mut m = status.as_object().cloned().unwrap_or_default();
    for k in [
        "observedGeneration",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    ] {
        if m.get(k).and_then(Value::as_i64) == Some(0) {
            m.remove(k);
        }
    }
    if m.get("conditions")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        m.remove("conditions");
    }
    Value::Object(m)
}

/// Reconciles one Deployment against the ReplicaSets of its namespace (others' are left alone)
/// and the pods of its namespace (consulted by Recreate, which waits for old pods to go).
pub fn reconcile(
    deploy: &Value,
    replicasets: &[Value],
    pods: &[Value],
    now: SystemTime,
) -> Result<Plan, Error> {
    let selector_value = deploy
        .pointer("/spec/selector")
        .ok_or(Error::MissingSelector)?;
    let selector = LabelSelector::from_api(selector_value).map_err(Error::Selector)?;
    let mut d = deploy.clone();
    if let Some(m) = d.as_object_mut() {
        let status = normalized_status(m.get("status").unwrap_or(&Value::Null));
        m.insert("status".into(), status);
    }
    let mut plan = Plan::default();
    if selector.is_empty() {
        // Upstream refuses to select every pod and only records the generation it saw.
        let generation = meta::int_at(deploy, "/metadata/generation", 0);
        if status_count(deploy, "observedGeneration") < generation {
            d["status"]["observedGeneration"] = json!(generation);
            plan.deployment = Some(d);
        }
        return Ok(plan);
    }
    let mut owned = Vec::new();
    for rs in replicasets
        .iter()
        .filter(|r| meta::namespace(r) == meta::namespace(deploy))
    {
        match meta::claim(deploy, rs, selector.matches_object(rs)) {
            Claim::Owned => owned.push(rs.clone()),
            Claim::Adopt => {
                let adopted = meta::with_owner(rs, meta::owner_ref(deploy, "Deployment"));
                plan.adopt.push(adopted.clone());
                owned.push(adopted);
            }
            Claim::Release => plan
                .release
                .push(meta::without_owner(rs, meta::uid(deploy))),
            Claim::Ignore => {}
        }
    }
    owned.sort_by(by_creation);
    let taken: BTreeSet<&str> = replicasets
        .iter()
        .filter(|r| meta::namespace(r) == meta::namespace(deploy))
        .map(meta::name)
        .collect();
    let mut sync = Sync {
        now: meta::unix_seconds(now),
        original: owned.clone(),
        rss: owned,
        d,
        created: None,
        delete: Vec::new(),
        requeue: None,
        taken,
    };
    sync.run(pods);
    plan.create = sync.created.map(|i| sync.rss[i].clone());
    for (i, rs) in sync.rss.iter().enumerate() {
        if Some(i) != sync.created && sync.original.get(i) != Some(rs) {
            plan.update.push(rs.clone());
        }
    }
    plan.delete = sync.delete;
    plan.requeue_after = sync.requeue;
    let before = normalized_status(deploy.get("status").unwrap_or(&Value::Null));
    let mut out = sync.d;
    let status_changed = out["status"] != before
        && !(before.as_object().is_some_and(Map::is_empty)
            && deploy.get("status").is_none()
            && out["status"].as_object().is_some_and(Map::is_empty));
    if status_changed || out.get("metadata") != deploy.get("metadata") {
        if out["status"].as_object().is_some_and(Map::is_empty)
            && let Some(m) = out.as_object_mut()
        {
            m.remove("status");
        }
        plan.deployment = Some(out);
    }
    Ok(plan)
}

/// One sync's working state: the Deployment and its ReplicaSets as they will be after the
/// writes so far (upstream reads its own writes back the same way within a sync).
struct Sync<'a> {
    now: i64,
    d: Value,
    /// Owned ReplicaSets, oldest first; a created one is appended.
    rss: Vec<Value>,
    original: Vec<Value>,
    created: Option<usize>,
    delete: Vec<String>,
    requeue: Option<Duration>,
    /// Every ReplicaSet name in the namespace, for collision detection.
    taken: BTreeSet<&'a str>,
}

impl Sync<'_> {
    /// `syncDeployment` after claiming.
    fn run(&mut self, pods: &[Value]) {
        if meta::is_deleting(&self.d) {
            let (new, old) = self.all_and_sync_revision(false);
            self.sync_status(new, &old);
            return;
        }
        self.check_paused_conditions();
        let paused = self.d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
        if paused || self.is_scaling_event() {
            let (new, old) = self.all_and_sync_revision(false);
            self.scale(new, &old);
            if paused {
                self.cleanup(&old);
            }
            self.sync_status(new, &old);
            return;
        }
        if is_rolling(&self.d) {
            self.rollout_rolling();
        } else {
            self.rollout_recreate(pods);
        }
    }

    fn find_new(&self) -> Option<usize> {
        let template = self.d.pointer("/spec/template")?;
        (0..self.rss.len()).find(|&i| {
            self.rss[i]
                .pointer("/spec/template")
                .is_some_and(|t| equal_ignore_hash(t, template))
        })
    }

    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when asked and missing)
    /// and the old ones, with the new one's annotations and the Deployment's revision synced.
    fn all_and_sync_revision(&mut self, create: bool) -> (Option<usize>, Vec<usize>) {
        let existing = self.find_new();
        let old: Vec<usize> = (0..self.rss.len())
            .filter(|&i| Some(i) != existing)
            .collect();
        let max_old = old
            .iter()
            .filter_map(|&i| revision(&self.rss[i]))
            .max()
            .unwrap_or(0);
        let new_revision = (max_old + 1).to_string();
        if let Some(i) = existing {
            let mut rs = self.rss[i].clone();
            let changed = self.set_new_rs_annotations(&mut rs, &new_revision, true);
            let mrs = meta::int_at(&self.d, "/spec/minReadySeconds", 0);
            if changed || meta::int_at(&rs, "/spec/minReadySeconds", 0) != mrs {
                set_min_ready(&mut rs, mrs);
                self.rss[i] = rs;
                return (Some(i), old);
            }
            let rev = annotation(&rs, REVISION).unwrap_or_default().to_owned();
            set_annotation(&mut self.d, REVISION, &rev);
            if progress_deadline(&self.d).is_some()
                && meta::condition(&self.d["status"], "Progressing").is_none()
            {
                let msg = format!("Found new replica set {:?}", meta::name(&rs));
                let c = new_condition("Progressing", "True", reasons::FOUND_NEW_RS, &msg, self.now);
                set_condition(&mut self.d["status"], c);
            }
            return (Some(i), old);
        }
        if !create {
            return (None, old);
        }
        match self.create_new(&old, &new_revision) {
            Some(i) => (Some(i), old),
            None => (None, old),
        }
    }

    /// Builds the new ReplicaSet, or on a name collision bumps `collisionCount` and gives up
    /// this sync, as upstream does.
    fn create_new(&mut self, old: &[usize], new_revision: &str) -> Option<usize> {
        let template = self
            .d
            .pointer("/spec/template")
            .cloned()
            .unwrap_or(json!({}));
        let collisions = self
            .d
            .pointer("/status/collisionCount")
            .and_then(Value::as_i64);
        let hash = compute_hash(&template, collisions);
        let name = format!("{}-{hash}", meta::name(&self.d));
        if self.taken.contains(name.as_str()) {
            self.d["status"]["collisionCount"] = json!(collisions.unwrap_or(0) + 1);
            self.requeue = Some(Duration::ZERO);
            return None;
        }
        let mut rs_template = template;
        let mut labels = meta::string_map(&rs_template, "/metadata/labels");
        labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
        rs_template["metadata"]["labels"] = json!(labels);
        let mut selector = self
            .d
            .pointer("/spec/selector")
            .cloned()
            .unwrap_or(json!({}));
        let mut match_labels = meta::string_map(&selector, "/matchLabels");
        match_labels.insert(POD_TEMPLATE_HASH.into(), hash);
        selector["matchLabels"] = json!(match_labels);
        let mut rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta::namespace(&self.d),
                "labels": labels,
                "ownerReferences": [meta::owner_ref(&self.d, "Deployment")],
            },
            "spec": {"replicas": 0, "selector": selector, "template": rs_template},
        });
        set_min_ready(&mut rs, meta::int_at(&self.d, "/spec/minReadySeconds", 0));
        self.rss.push(rs);
        let i = self.rss.len() - 1;
        let mut all = old.to_vec();
        all.push(i);
        let replicas = self.new_rs_new_replicas(&all, i);
        self.rss[i]["spec"]["replicas"] = json!(replicas);
        let mut rs = self.rss[i].clone();
        self.set_new_rs_annotations(&mut rs, new_revision, false);
        self.rss[i] = rs;
        self.created = Some(i);
        set_annotation(&mut self.d, REVISION, new_revision);
        if progress_deadline(&self.d).is_some() {
            let msg = format!("Created new replica set {:?}", meta::name(&self.rss[i]));
            let c = new_condition(
                "Progressing",
                "True",
                reasons::NEW_RS_CREATED,
                &msg,
                self.now,
            );
            set_condition(&mut self.d["status"], c);
        }
        Some(i)
    }

    /// `SetNewReplicaSetAnnotations`.
    fn set_new_rs_annotations(&self, rs: &mut Value, new_revision: &str, exists: bool) -> bool {
        let mut changed = false;
        for (k, v) in meta::string_map(&self.d, "/metadata/annotations") {
            if !SKIPPED_ANNOTATIONS.contains(&k.as_str()) {
                changed |= set_annotation(rs, &k, &v);
            }
        }
        let old_revision = annotation(rs, REVISION).map(str::to_owned);
        let old_int = match old_revision.as_deref().map(str::parse::<i64>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return false,
        };
        let new_int: i64 = new_revision.parse().unwrap_or(0);
        if old_int < new_int {
            changed |= set_annotation(rs, REVISION, new_revision);
            if let Some(old) = old_revision {
                let history = annotation(rs, REVISION_HISTORY)
                    .unwrap_or_default()
                    .to_owned();
                let value = if history.is_empty() {
                    Some(old)
                } else {
                    let mut parts: Vec<&str> = history.split(',').collect();
                    let mut total = history.len() + old.len() + 1;
                    let mut start = 0;
                    while total > MAX_REVISION_HISTORY_CHARS && start < parts.len() {
                        total -= parts[start].len() + 1;
                        start += 1;
                    }
                    (total <= MAX_REVISION_HISTORY_CHARS).then(|| {
                        parts.drain(..start);
                        parts.push(&old);
                        parts.join(",")
                    })
                };
                if let Some(v) = value {
                    set_annotation(rs, REVISION_HISTORY, &v);
                }
            }
        }
        if !exists {
            let want = desired(&self.d);
            changed |= set_replicas_annotations(rs, want, want + max_surge(&self.d));
        }
        changed
    }

    /// `NewRSNewReplicas`.
    fn new_rs_new_replicas(&self, all: &[usize], new: usize) -> i64 {
        let want = desired(&self.d);
        if !is_rolling(&self.d) {
            return want;
        }
        let current: i64 = all.iter().map(|&i| spec_replicas(&self.rss[i])).sum();
        let new_replicas = spec_replicas(&self.rss[new]);
        let max_total = want + max_surge(&self.d);
        if current >= max_total {
            return new_replicas;
        }
        new_replicas + (max_total - current).min(want - new_replicas)
    }

    /// `scaleReplicaSet`: sets the size and the replicas annotations; true when the size changed.
    fn scale_rs(&mut self, i: usize, size: i64) -> bool {
        let want = desired(&self.d);
        let max = want + max_surge(&self.d);
        let rs = &mut self.rss[i];
        let resized = spec_replicas(rs) != size;
        let annotated = set_replicas_annotations(rs, want, max);
        if resized || annotated {
            rs["spec"]["replicas"] = json!(size);
        }
        resized
    }

    /// `checkPausedConditions`.
    fn check_paused_conditions(&mut self) {
        if progress_deadline(&self.d).is_none() {
            return;
        }
        let reason = meta::condition(&self.d["status"], "Progressing")
            .map(|c| c["reason"].as_str().unwrap_or_default().to_owned());
        if reason.as_deref() == Some(reasons::TIMED_OUT) {
            return;
        }
        let paused_cond = reason.as_deref() == Some(reasons::PAUSED);
        let paused = self.d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
        let cond = if paused && !paused_cond {
            new_condition(
                "Progressing",
                "Unknown",
                reasons::PAUSED,
                "Deployment is paused",
                self.now,
            )
        } else if !paused && paused_cond {
            new_condition(
                "Progressing",
                "Unknown",
                reasons::RESUMED,
                "Deployment is resumed",
                self.now,
            )
        } else {
            return;
        };
        set_condition(&mut self.d["status"], cond);
    }

    /// `isScalingEvent`: an active ReplicaSet was sized for a different `spec.replicas`.
    fn is_scaling_event(&mut self) -> bool {
        let (new, old) = self.all_and_sync_revision(false);
        let want = desired(&self.d).to_string();
        old.iter()
            .chain(new.iter())
            .map(|&i| &self.rss[i])
            .filter(|rs| spec_replicas(rs) > 0)
            .filter_map(|rs| annotation(rs, DESIRED_REPLICAS))
            .filter(|a| a.parse::<i64>().is_ok())
            .any(|a| *a != want)
    }

    /// `scale`: the sizing used for paused Deployments and scaling events, proportional across
    /// ReplicaSets during a rolling update.
    fn scale(&mut self, new: Option<usize>, old: &[usize]) {
        let want = desired(&self.d);
        let mut old_newest_first: Vec<usize> = old.to_vec();
        old_newest_first.reverse();
        let mut all: Vec<usize> = old_newest_first.clone();
        all.extend(new);
        let active: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| spec_replicas(&self.rss[i]) > 0)
            .collect();
        let active_or_latest = match active.len() {
            0 => new.or(old_newest_first.first().copied()),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = active_or_latest {
            if spec_replicas(&self.rss[i]) != want {
                self.scale_rs(i, want);
            }
            return;
        }
        if let Some(n) = new
            && self.is_saturated(n)
        {
            for &i in old {
                if spec_replicas(&self.rss[i]) > 0 {
                    self.scale_rs(i, 0);
                }
            }
            return;
        }
        if !is_rolling(&self.d) {
            return;
        }
        let mut active: Vec<usize> = old.to_vec();
        active.extend(new);
        active.retain(|&i| spec_replicas(&self.rss[i]) > 0);
        let total: i64 = active.iter().map(|&i| spec_replicas(&self.rss[i])).sum();
        let allowed = if want > 0 {
            want + max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - total;
        let rss = &self.rss;
        match to_add.cmp(&0) {
            Ordering::Greater => active.sort_by(|&a, &b| {
                spec_replicas(&rss[b])
                    .cmp(&spec_replicas(&rss[a]))
                    .then_with(|| by_creation(&rss[b], &rss[a]))
            }),
            Ordering::Less => active.sort_by(|&a, &b| {
                spec_replicas(&rss[b])
                    .cmp(&spec_replicas(&rss[a]))
                    .then_with(|| by_creation(&rss[a], &rss[b]))
            }),
            Ordering::Equal => {}
        }
        let mut added = 0;
        let mut sizes = Vec::new();
        for &i in &active {
            let size = spec_replicas(&self.rss[i]);
            if to_add != 0 {
                let p = self.proportion(i, to_add, added);
                sizes.push(size + p);
                added += p;
            } else {
                sizes.push(size);
            }
        }
        for (k, &i) in active.iter().enumerate() {
            if k == 0 && to_add != 0 {
                sizes[0] = (sizes[0] + to_add - added).max(0);
            }
            self.scale_rs(i, sizes[k]);
        }
    }

    /// `GetReplicaSetProportion`.
    fn proportion(&self, i: usize, to_add: i64, added: i64) -> i64 {
        let rs = &self.rss[i];
        let size = spec_replicas(rs);
        if size == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let want = desired(&self.d);
        let fraction = if want == 0 {
            -size
        } else {
            let target = want + max_surge(&self.d);
            let annotated = annotation(rs, MAX_REPLICAS)
                .and_then(|a| a.parse::<i64>().ok())
                .unwrap_or_else(|| status_count(&self.d, "replicas"));
            if annotated == 0 {
                0
            } else {
                ((size * target) as f64 / annotated as f64).round() as i64 - size
            }
        };
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    /// `IsSaturated`.
    fn is_saturated(&self, i: usize) -> bool {
        let rs = &self.rss[i];
        let want = desired(&self.d);
        annotation(rs, DESIRED_REPLICAS) == Some(want.to_string().as_str())
            && status_count(rs, "availableReplicas") == want
            && spec_replicas(rs) == want
    }

    /// `rolloutRolling`.
    fn rollout_rolling(&mut self) {
        let (new, old) = self.all_and_sync_revision(true);
        let Some(new) = new else {
            // A hash collision: only the bumped collision count is written.
            return;
        };
        let mut all = old.clone();
        all.push(new);
        if self.reconcile_new(&all, new) {
            self.sync_rollout_status(Some(new), &old);
            return;
        }
        let active_old: Vec<usize> = old
            .iter()
            .copied()
            .filter(|&i| spec_replicas(&self.rss[i]) > 0)
            .collect();
        if self.reconcile_old(&all, &active_old, new) {
            self.sync_rollout_status(Some(new), &old);
            return;
        }
        if self.complete(&self.d["status"].clone()) {
            self.cleanup(&old);
        }
        self.sync_rollout_status(Some(new), &old);
    }

    /// `reconcileNewReplicaSet`.
    fn reconcile_new(&mut self, all: &[usize], new: usize) -> bool {
        let want = desired(&self.d);
        let size = spec_replicas(&self.rss[new]);
        if size == want {
            return false;
        }
        if size > want {
            return self.scale_rs(new, want);
        }
        let n = self.new_rs_new_replicas(all, new);
        self.scale_rs(new, n)
    }

    /// `reconcileOldReplicaSets`: scale old ReplicaSets down as far as `maxUnavailable` allows,
    /// unhealthy replicas first.
    fn reconcile_old(&mut self, all: &[usize], old: &[usize], new: usize) -> bool {
        let old_count: i64 = old.iter().map(|&i| spec_replicas(&self.rss[i])).sum();
        if old_count == 0 {
            return false;
        }
        let all_count: i64 = all.iter().map(|&i| spec_replicas(&self.rss[i])).sum();
        let min_available = desired(&self.d) - max_unavailable(&self.d);
        let new_rs = &self.rss[new];
        let new_unavailable = spec_replicas(new_rs) - status_count(new_rs, "availableReplicas");
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        // Unhealthy replicas first (`cleanupUnhealthyReplicas`), oldest ReplicaSet first.
        let mut cleaned = 0;
        for &i in old {
            if cleaned >= max_scaled_down {
                break;
            }
            let (size, available) = (
                spec_replicas(&self.rss[i]),
                status_count(&self.rss[i], "availableReplicas"),
            );
            if size == 0 || size == available {
                continue;
            }
            let n = (max_scaled_down - cleaned).min(size - available);
            self.scale_rs(i, size - n);
            cleaned += n;
        }
        // Then healthy ones while availability allows (`scaleDownOldReplicaSetsForRollingUpdate`).
        let available: i64 = all
            .iter()
            .map(|&i| status_count(&self.rss[i], "availableReplicas"))
            .sum();
        let mut scaled = 0;
        if available > min_available {
            let budget = available - min_available;
            for &i in old {
                if scaled >= budget {
                    break;
                }
                let size = spec_replicas(&self.rss[i]);
                if size == 0 {
                    continue;
                }
                let n = size.min(budget - scaled);
                self.scale_rs(i, size - n);
                scaled += n;
            }
        }
        cleaned + scaled > 0
    }

    /// `rolloutRecreate`: every old pod gone before the new ReplicaSet scales up.
    fn rollout_recreate(&mut self, pods: &[Value]) {
        let (mut new, mut old) = self.all_and_sync_revision(false);
        let mut scaled_down = false;
        for &i in &old {
            if spec_replicas(&self.rss[i]) > 0 {
                self.scale_rs(i, 0);
                scaled_down = true;
            }
        }
        if scaled_down || self.old_pods_running(new, &old, pods) {
            self.sync_rollout_status(new, &old);
            return;
        }
        if new.is_none() {
            (new, old) = self.all_and_sync_revision(true);
        }
        if let Some(n) = new {
            let want = desired(&self.d);
            self.scale_rs(n, want);
        }
        if self.complete(&self.d["status"].clone()) {
            self.cleanup(&old);
        }
        self.sync_rollout_status(new, &old);
    }

    /// `oldPodsRunning`: old ReplicaSets still report pods, or pods of theirs are not finished.
    fn old_pods_running(&self, new: Option<usize>, old: &[usize], pods: &[Value]) -> bool {
        if old
            .iter()
            .map(|&i| status_count(&self.rss[i], "replicas"))
            .sum::<i64>()
            > 0
        {
            return true;
        }
        let new_uid = new.map(|i| meta::uid(&self.rss[i]));
        let old_uids: BTreeSet<&str> = old.iter().map(|&i| meta::uid(&self.rss[i])).collect();
        pods.iter().any(|p| {
            let Some(owner) = meta::controller_ref(p).and_then(|r| r["uid"].as_str()) else {
                return false;
            };
            Some(owner) != new_uid
                && old_uids.contains(owner)
                && !matches!(meta::str_at(p, "/status/phase"), "Succeeded" | "Failed")
        })
    }

    /// `cleanupDeployment`: delete the oldest revisions beyond `revisionHistoryLimit` that have
    /// no pods left.
    fn cleanup(&mut self, old: &[usize]) {
        let Some(limit) = self
            .d
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
        else {
            return;
        };
        let mut alive: Vec<usize> = old
            .iter()
            .copied()
            .filter(|&i| !meta::is_deleting(&self.rss[i]))
            .collect();
        let diff = alive.len() as i64 - limit;
        if diff <= 0 {
            return;
        }
        let rss = &self.rss;
        alive.sort_by(|&a, &b| {
            revision(&rss[a])
                .unwrap_or(0)
                .cmp(&revision(&rss[b]).unwrap_or(0))
                .then_with(|| by_creation(&rss[a], &rss[b]))
        });
        for &i in alive.iter().take(diff as usize) {
            let rs = &self.rss[i];
            if status_count(rs, "replicas") != 0
                || spec_replicas(rs) != 0
                || meta::int_at(rs, "/metadata/generation", 0)
                    > status_count(rs, "observedGeneration")
            {
                continue;
            }
            self.delete.push(meta::name(rs).to_owned());
        }
    }

    /// `calculateStatus` over the ReplicaSets as this sync leaves them.
    fn calculate_status(&self, new: Option<usize>, old: &[usize]) -> Value {
        let all: Vec<&Value> = old
            .iter()
            .chain(new.iter())
            .map(|&i| &self.rss[i])
            .collect();
        let sum = |f: &dyn Fn(&Value) -> i64| all.iter().map(|rs| f(rs)).sum::<i64>();
        let available = sum(&|rs| status_count(rs, "availableReplicas"));
        let total = sum(&|rs| spec_replicas(rs));
        let mut status = json!({
            "observedGeneration": meta::int_at(&self.d, "/metadata/generation", 0),
            "replicas": sum(&|rs| status_count(rs, "replicas")),
            "updatedReplicas": new.map_or(0, |i| status_count(&self.rss[i], "replicas")),
            "readyReplicas": sum(&|rs| status_count(rs, "readyReplicas")),
            "availableReplicas": available,
            "unavailableReplicas": (total - available).max(0),
        });
        if let Some(c) = self.d.pointer("/status/conditions") {
            status["conditions"] = c.clone();
        }
        if let Some(c) = self.d.pointer("/status/collisionCount") {
            status["collisionCount"] = c.clone();
        }
        let cond = if available >= desired(&self.d) - max_unavailable(&self.d) {
            new_condition(
                "Available",
                "True",
                reasons::MIN_AVAILABLE,
                "Deployment has minimum availability.",
                self.now,
            )
        } else {
            new_condition(
                "Available",
                "False",
                reasons::MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.",
                self.now,
            )
        };
        set_condition(&mut status, cond);
        normalized_status(&status)
    }

    /// `DeploymentComplete`.
    fn complete(&self, status: &Value) -> bool {
        let want = desired(&self.d);
        let n = |k: &str| status.get(k).and_then(Value::as_i64).unwrap_or(0);
        n("updatedReplicas") == want
            && n("replicas") == want
            && n("availableReplicas") == want
            && n("observedGeneration") >= meta::int_at(&self.d, "/metadata/generation", 0)
    }

    /// `syncDeploymentStatus`.
    fn sync_status(&mut self, new: Option<usize>, old: &[usize]) {
        let status = self.calculate_status(new, old);
        self.d["status"] = status;
    }

    /// `syncRolloutStatus`: status plus the Progressing condition and the progress deadline.
    fn sync_rollout_status(&mut self, new: Option<usize>, old: &[usize]) {
        let mut status = self.calculate_status(new, old);
        let deadline = progress_deadline(&self.d);
        if deadline.is_none() {
            remove_condition(&mut status, "Progressing");
        }
        let current = meta::condition(&self.d["status"], "Progressing").cloned();
        let n = |s: &Value, k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
        let complete_before = n(&status, "replicas") == n(&status, "updatedReplicas")
            && current
                .as_ref()
                .is_some_and(|c| c["reason"] == reasons::NEW_RS_AVAILABLE);
        let rs_name = new.map_or(String::new(), |i| meta::name(&self.rss[i]).to_owned());
        if let Some(deadline) = deadline
            && !complete_before
        {
            let old_status = &self.d["status"];
            let progressing = n(&status, "updatedReplicas") > n(old_status, "updatedReplicas")
                || n(&status, "replicas") - n(&status, "updatedReplicas")
                    < n(old_status, "replicas") - n(old_status, "updatedReplicas")
                || n(&status, "readyReplicas") > n(old_status, "readyReplicas")
                || n(&status, "availableReplicas") > n(old_status, "availableReplicas");
            if self.complete(&status) {
                let msg = format!("ReplicaSet {rs_name:?} has successfully progressed.");
                let c = new_condition(
                    "Progressing",
                    "True",
                    reasons::NEW_RS_AVAILABLE,
                    &msg,
                    self.now,
                );
                set_condition(&mut status, c);
            } else if progressing {
                let msg = format!("ReplicaSet {rs_name:?} is progressing.");
                let mut c =
                    new_condition("Progressing", "True", reasons::RS_UPDATED, &msg, self.now);
                if let Some(cur) = &current {
                    if cur["status"] == "True" {
                        c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                    }
                    remove_condition(&mut status, "Progressing");
                }
                set_condition(&mut status, c);
            } else if self.timed_out(&status, deadline) {
                let msg = format!("ReplicaSet {rs_name:?} has timed out progressing.");
                let c = new_condition("Progressing", "False", reasons::TIMED_OUT, &msg, self.now);
                set_condition(&mut status, c);
            }
        }
        // ReplicaSet failures surface as the Deployment's ReplicaFailure condition.
        let failure = new
            .iter()
            .chain(old.iter())
            .find_map(|&i| meta::condition(&self.rss[i]["status"], "ReplicaFailure"))
            .filter(|c| c["status"] == "True")
            .map(|c| {
                new_condition(
                    "ReplicaFailure",
                    "True",
                    c["reason"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default(),
                    self.now,
                )
            });
        match failure {
            Some(c) => set_condition(&mut status, c),
            None => remove_condition(&mut status, "ReplicaFailure"),
        }
        let status = normalized_status(&status);
        if status == self.d["status"] {
            self.requeue = self.requeue_stuck(&status, deadline);
        }
        self.d["status"] = status;
    }

    /// `DeploymentTimedOut`.
    fn timed_out(&self, status: &Value, deadline: i64) -> bool {
        let Some(c) = meta::condition(status, "Progressing") else {
            return false;
        };
        if c["reason"] == reasons::NEW_RS_AVAILABLE {
            return false;
        }
        if c["reason"] == reasons::TIMED_OUT {
            return true;
        }
        c["lastUpdateTime"]
            .as_str()
            .and_then(meta::parse_time)
            .is_some_and(|t| t + deadline < self.now)
    }

    /// `requeueStuckDeployment`: when nothing moved, look again once the deadline can have
    /// passed.
    fn requeue_stuck(&self, status: &Value, deadline: Option<i64>) -> Option<Duration> {
        let deadline = deadline?;
        let cur = meta::condition(&self.d["status"], "Progressing")?;
        if self.complete(status) || cur["reason"] == reasons::TIMED_OUT {
            return None;
        }
        let updated = cur["lastUpdateTime"].as_str().and_then(meta::parse_time)?;
        let after = updated + deadline - self.now;
        Some(if after < 1 {
            Duration::ZERO
        } else {
            meta::seconds(after + 1)
        })
    }
}

fn set_min_ready(rs: &mut Value, seconds: i64) {
    let spec = meta::object_at(rs, "spec");
    if seconds == 0 {
        spec.remove("minReadySeconds");
    } else {
        spec.insert("minReadySeconds".into(), json!(seconds));
    }
}
