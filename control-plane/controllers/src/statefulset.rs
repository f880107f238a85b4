//! The StatefulSet controller's reconcile core (`pkg/controller/statefulset`): keep pods
//! `<set>-<ordinal>` for every ordinal in `[start, start + replicas)` with their claims from
//! `volumeClaimTemplates`, in order (OrderedReady) or all at once (Parallel), roll them over to
//! the update revision (RollingUpdate with `partition`, or OnDelete), keep the ControllerRevision
//! history and compute `status`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use objects::selectors::LabelSelector;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::controllerrevision::{self as history, CONTROLLER_REVISION_HASH};
use crate::event::Event;
use crate::meta;

/// The label naming a pod's StatefulSet pod (its own name), used by per-pod Services.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label carrying a pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// `revisionHistoryLimit`'s apps/v1 default.
const DEFAULT_HISTORY_LIMIT: i64 = 10;

/// The writes one StatefulSet sync asks for. Applying them in field order reproduces upstream:
/// claims before the pods that mount them, creations in list order, stopping at the first
/// failure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// ControllerRevisions to write back: orphans adopted, and an earlier revision renumbered
    /// to become the update revision again (a rollback).
    pub update_revisions: Vec<Value>,
    /// The ControllerRevision for the current template, when no equal one exists.
    pub create_revision: Option<Value>,
    /// Orphan pods that match the selector and are named `<set>-<n>`, with the StatefulSet's
    /// controller reference added.
    pub adopt: Vec<Value>,
    /// Owned pods that no longer match, with the reference removed.
    pub release: Vec<Value>,
    /// PersistentVolumeClaims to create from `volumeClaimTemplates`, with the owner references
    /// `persistentVolumeClaimRetentionPolicy` asks for.
    pub create_claims: Vec<Value>,
    /// Existing claims whose owner references are rewritten for the retention policy.
    pub update_claims: Vec<Value>,
    /// Names of pods to delete, in order. A failed pod is deleted and recreated under the same
    /// name in one plan: delete before creating, and treat the creation's `AlreadyExists` while
    /// the old pod terminates as upstream does (stop and sync again later).
    pub delete: Vec<String>,
    /// Pods to create, named `<set>-<ordinal>`, in order.
    pub create: Vec<Value>,
    /// Existing pods rewritten to restore their identity or storage.
    pub update: Vec<Value>,
    /// The new `status`, when it differs from the stored one.
    pub status: Option<Value>,
    /// Names of ControllerRevisions beyond `revisionHistoryLimit` to delete.
    pub delete_revisions: Vec<String>,
    /// Events to record, in upstream's wording.
    pub events: Vec<Event>,
    /// Sync again after this long even if nothing changes (`minReadySeconds`; zero when a
    /// claim blocks progress).
    pub requeue_after: Option<Duration>,
}

impl Plan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.update_revisions.is_empty()
            && self.create_revision.is_none()
            && self.adopt.is_empty()
            && self.release.is_empty()
            && self.create_claims.is_empty()
            && self.update_claims.is_empty()
            && self.delete.is_empty()
            && self.create.is_empty()
            && self.update.is_empty()
            && self.status.is_none()
            && self.delete_revisions.is_empty()
    }
}

/// `getParentNameAndOrdinal`: a pod named `<parent>-<digits>` (the ordinal fitting in 32 bits).
fn parent_and_ordinal(name: &str) -> Option<(&str, i64)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = digits.parse::<i32>().ok()?;
    Some((parent, i64::from(n)))
}

fn ordinal(pod: &Value) -> Option<i64> {
    parent_and_ordinal(meta::name(pod)).map(|(_, n)| n)
}

fn label<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn phase(pod: &Value) -> &str {
    meta::str_at(pod, "/status/phase")
}

fn running_and_ready(pod: &Value) -> bool {
    phase(pod) == "Running" && meta::is_pod_ready(pod)
}

fn healthy(pod: &Value) -> bool {
    running_and_ready(pod) && !meta::is_deleting(pod)
}

/// Whether the PVC retention policy asks for `Delete` on `field` (`whenDeleted`, `whenScaled`).
fn deletes_when(set: &Value, field: &str) -> bool {
    meta::str_at(
        set,
        &format!("/spec/persistentVolumeClaimRetentionPolicy/{field}"),
    ) == "Delete"
}

/// One slot of the sync: a pod that exists or one this sync would create.
#[derive(Debug, Clone)]
struct Slot {
    pod: Value,
    created: bool,
}

/// Reconciles one StatefulSet against the pods, PersistentVolumeClaims and ControllerRevisions
/// of its namespace (others' objects are left alone). The caller must not call this while
/// writes from an earlier plan are still unobserved (upstream's expectations).
pub fn reconcile(
    set: &Value,
    pods: &[Value],
    claims: &[Value],
    revisions: &[Value],
    now: SystemTime,
) -> Result<Plan, Error> {
    let selector_value = set
        .pointer("/spec/selector")
        .ok_or(Error::MissingSelector)?;
    let selector = LabelSelector::from_api(selector_value).map_err(Error::Selector)?;
    let mut plan = Plan::default();
    let ns = meta::namespace(set);
    let selects = |o: &Value| !selector.is_empty() && selector.matches_object(o);

    // `adoptOrphanRevisions` and `ListRevisions`: matching revisions that are ours or orphans.
    let mut owned_revisions = Vec::new();
    for r in revisions
        .iter()
        .filter(|r| meta::namespace(r) == ns && selects(r))
    {
        match meta::controller_ref(r)
            .and_then(|c| c.get("uid"))
            .and_then(Value::as_str)
        {
            None if !meta::is_deleting(set) => {
                let adopted = meta::with_owner(r, meta::owner_ref(set, "StatefulSet"));
                plan.update_revisions.push(adopted.clone());
                owned_revisions.push(adopted);
            }
            None => owned_revisions.push(r.clone()),
            Some(uid) if uid == meta::uid(set) => owned_revisions.push(r.clone()),
            Some(_) => {}
        }
    }
    history::sort(&mut owned_revisions);

    // `getPodsForStatefulSet`: claim pods that match and are named after the set.
    let mut owned = Vec::new();
    for pod in pods.iter().filter(|p| meta::namespace(p) == ns) {
        let member = parent_and_ordinal(meta::name(pod)).is_some_and(|(p, _)| p == meta::name(set));
        match meta::claim(set, pod, selects(pod) && member) {
            meta::Claim::Owned => owned.push(pod.clone()),
            meta::Claim::Adopt => {
                let adopted = meta::with_owner(pod, meta::owner_ref(set, "StatefulSet"));
                plan.adopt.push(adopted.clone());
                owned.push(adopted);
            }
            meta::Claim::Release => plan.release.push(meta::without_owner(pod, meta::uid(set))),
            meta::Claim::Ignore => {}
        }
    }

    let (current, update, collision_count) =
        revisions_of(set, &owned_revisions, revisions, &mut plan);
    let mut sync = Sync {
        set,
        current_set: history::apply_revision(set, &current),
        update_set: history::apply_revision(set, &update),
        current_name: meta::name(&current).to_owned(),
        update_name: meta::name(&update).to_owned(),
        claims: claims
            .iter()
            .filter(|c| meta::namespace(c) == ns)
            .map(|c| (meta::name(c).to_owned(), c.clone()))
            .collect(),
        now: meta::unix_seconds(now),
        plan,
        blocked: false,
    };
    let mut status = sync.run(owned.clone());
    status.collision_count = collision_count;
    let mut plan = sync.plan;

    let want = meta::int_at(set, "/spec/replicas", 1);
    let min_ready = meta::int_at(set, "/spec/minReadySeconds", 0);
    if sync.blocked {
        plan.requeue_after = Some(Duration::ZERO);
    } else if min_ready > 0 && status.available != want {
        plan.requeue_after = Some(meta::seconds(min_ready));
    }

    // `updateStatefulSetStatus`: complete a finished rolling update, write when inconsistent.
    if meta::str_at(set, "/spec/updateStrategy/type") != "OnDelete"
        && status.updated == status.replicas
        && status.ready == status.replicas
    {
        status.current = status.updated;
        status.current_revision = status.update_revision.clone();
    }
    let old = Status::read(set.get("status").unwrap_or(&Value::Null));
    if status.observed_generation > old.observed_generation
        || (
            status.replicas,
            status.current,
            status.ready,
            status.updated,
            &status.current_revision,
            status.available,
            &status.update_revision,
        ) != (
            old.replicas,
            old.current,
            old.ready,
            old.updated,
            &old.current_revision,
            old.available,
            &old.update_revision,
        )
    {
        plan.status = Some(status.write());
    }

    // `truncateHistory` over the revisions as read, keeping every live one.
    let mut live: BTreeSet<String> = owned
        .iter()
        .map(|p| label(p, CONTROLLER_REVISION_HASH).to_owned())
        .collect();
    live.insert(meta::name(&current).to_owned());
    live.insert(meta::name(&update).to_owned());
    let limit = meta::int_at(set, "/spec/revisionHistoryLimit", DEFAULT_HISTORY_LIMIT);
    plan.delete_revisions = history::truncate(&owned_revisions, &live, limit);
    Ok(plan)
}

/// `getStatefulSetRevisions`: `(current, update, collisionCount)`, planning the creation or
/// renumbering of the update revision.
fn revisions_of(
    set: &Value,
    sorted: &[Value],
    all: &[Value],
    plan: &mut Plan,
) -> (Value, Value, i64) {
    let mut collision = meta::int_at(set, "/status/collisionCount", 0);
    let labels = set
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut candidate = history::new_revision(
        set,
        "StatefulSet",
        &labels,
        history::template_patch(set),
        history::next_number(sorted),
        Some(collision),
    );
    if let Some(a) = set.pointer("/metadata/annotations") {
        candidate["metadata"]["annotations"] = a.clone();
    }
    let equal: Vec<&Value> = sorted
        .iter()
        .filter(|r| history::equal(r, &candidate))
        .collect();
    let update = match (equal.last(), sorted.last()) {
        (Some(eq), Some(last)) if history::equal(last, eq) => last.clone(),
        (Some(eq), _) => {
            // An earlier template is back: it becomes the newest revision again.
            let renumbered = history::with_number(eq, history::number(&candidate));
            match plan
                .update_revisions
                .iter_mut()
                .find(|r| meta::name(r) == meta::name(&renumbered))
            {
                Some(slot) => *slot = renumbered.clone(),
                None => plan.update_revisions.push(renumbered.clone()),
            }
            renumbered
        }
        (None, _) => loop {
            // `CreateControllerRevision`: probe names until one is free or already ours.
            let hash = history::hash_revision(&candidate["data"], Some(collision));
            let name = history::revision_name(meta::name(set), &hash);
            match all
                .iter()
                .find(|r| meta::namespace(r) == meta::namespace(set) && meta::name(r) == name)
            {
                Some(existing) if existing.get("data") == candidate.get("data") => {
                    break existing.clone();
                }
                Some(_) => collision += 1,
                None => {
                    candidate["metadata"]["name"] = json!(name);
                    plan.create_revision = Some(candidate.clone());
                    break candidate;
                }
            }
        },
    };
    let current_name = meta::str_at(set, "/status/currentRevision");
    let current = sorted
        .iter()
        .find(|r| !current_name.is_empty() && meta::name(r) == current_name)
        .cloned()
        .unwrap_or_else(|| update.clone());
    (current, update, collision)
}

/// The status fields one sync computes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Status {
    observed_generation: i64,
    replicas: i64,
    ready: i64,
    current: i64,
    updated: i64,
    available: i64,
    current_revision: String,
    update_revision: String,
    collision_count: i64,
}

impl Status {
    fn read(s: &Value) -> Status {
        let n = |k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
        let t = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        Status {
            observed_generation: n("observedGeneration"),
            replicas: n("replicas"),
            ready: n("readyReplicas"),
            current: n("currentReplicas"),
            updated: n("updatedReplicas"),
            available: n("availableReplicas"),
            current_revision: t("currentRevision"),
            update_revision: t("updateRevision"),
            collision_count: n("collisionCount"),
        }
    }

    /// The status as upstream serialises a fresh `StatefulSetStatus`: zero counts and empty
    /// names omitted except `replicas`, `availableReplicas` and `collisionCount`.
    fn write(&self) -> Value {
        let mut out = Map::new();
        let mut put = |k: &str, v: Value, keep: bool| {
            let empty = v == json!(0) || v == json!("");
            if keep || !empty {
                out.insert(k.into(), v);
            }
        };
        put("observedGeneration", json!(self.observed_generation), false);
        put("replicas", json!(self.replicas), true);
        put("readyReplicas", json!(self.ready), false);
        put("currentReplicas", json!(self.current), false);
        put("updatedReplicas", json!(self.updated), false);
        put("currentRevision", json!(self.current_revision), false);
        put("updateRevision", json!(self.update_revision), false);
        put("collisionCount", json!(self.collision_count), true);
        put("availableReplicas", json!(self.available), true);
        Value::Object(out)
    }
}

/// One sync of `updateStatefulSet`.
struct Sync<'a> {
    set: &'a Value,
    current_set: Value,
    update_set: Value,
    current_name: String,
    update_name: String,
    claims: BTreeMap<String, Value>,
    now: i64,
    plan: Plan,
    /// A claim blocked progress (being deleted, or still owned by an earlier pod).
    blocked: bool,
}

impl Sync<'_> {
    fn name(&self) -> &str {
        meta::name(self.set)
    }

    fn start(&self) -> i64 {
        meta::int_at(self.set, "/spec/ordinals/start", 0)
    }

    fn replicas(&self) -> i64 {
        meta::int_at(self.set, "/spec/replicas", 1).max(0)
    }

    fn in_range(&self, ord: i64) -> bool {
        ord >= self.start() && ord < self.start() + self.replicas()
    }

    fn min_ready(&self) -> i64 {
        meta::int_at(self.set, "/spec/minReadySeconds", 0)
    }

    fn available(&self, pod: &Value) -> bool {
        meta::is_pod_available(pod, self.min_ready(), self.now)
    }

    fn event(&mut self, event: Event) {
        self.plan.events.push(event);
    }

    fn pod_event(&mut self, verb: &str, pod: &str) {
        let reason = match verb {
            "create" => "SuccessfulCreate",
            "update" => "SuccessfulUpdate",
            _ => "SuccessfulDelete",
        };
        let message = format!("{verb} Pod {pod} in StatefulSet {} successful", self.name());
        self.event(Event::normal(reason, message));
    }

    /// `computeReplicaStatus` over `pods`.
    fn count(&self, status: &mut Status, slots: &[&Slot]) {
        status.replicas = 0;
        status.ready = 0;
        status.available = 0;
        status.current = 0;
        status.updated = 0;
        for slot in slots {
            let pod = &slot.pod;
            if slot.created {
                status.replicas += 1;
            }
            if running_and_ready(pod) {
                status.ready += 1;
                if self.available(pod) {
                    status.available += 1;
                }
            }
            if slot.created && !meta::is_deleting(pod) {
                let rev = label(pod, CONTROLLER_REVISION_HASH);
                if rev == self.current_name {
                    status.current += 1;
                }
                if rev == self.update_name {
                    status.updated += 1;
                }
            }
        }
    }

    /// `newVersionedStatefulSetPod`, with upstream's operator precedence: the current
    /// revision below the partition (or below `status.currentReplicas` without a
    /// `rollingUpdate` block), the update revision otherwise.
    fn new_pod(&self, ord: i64) -> Slot {
        let cs = &self.current_set;
        let start = self.start();
        let rolling = meta::str_at(cs, "/spec/updateStrategy/type") != "OnDelete";
        let ru = cs.pointer("/spec/updateStrategy/rollingUpdate");
        let below_current =
            rolling && ru.is_none() && ord < start + meta::int_at(cs, "/status/currentReplicas", 0);
        let below_partition = ru.is_some()
            && ord < start + meta::int_at(cs, "/spec/updateStrategy/rollingUpdate/partition", 0);
        let (from, revision) = if below_current || below_partition {
            (cs, &self.current_name)
        } else {
            (&self.update_set, &self.update_name)
        };
        let mut pod = stateful_pod(from, ord);
        pod = history::with_label(&pod, CONTROLLER_REVISION_HASH, revision);
        Slot {
            pod,
            created: false,
        }
    }

    fn run(&mut self, pods: Vec<Value>) -> Status {
        let mut status = Status {
            observed_generation: meta::int_at(self.set, "/metadata/generation", 0),
            current_revision: self.current_name.clone(),
            update_revision: self.update_name.clone(),
            ..Status::default()
        };
        let all: Vec<Slot> = pods
            .iter()
            .map(|p| Slot {
                pod: p.clone(),
                created: true,
            })
            .collect();
        self.count(&mut status, &all.iter().collect::<Vec<_>>());

        let start = self.start();
        let mut replicas: Vec<Option<Slot>> = vec![None; self.replicas() as usize];
        let mut condemned: Vec<Slot> = Vec::new();
        for slot in all {
            let Some(ord) = ordinal(&slot.pod) else {
                continue;
            };
            if self.in_range(ord) {
                replicas[(ord - start) as usize] = Some(slot);
            } else if ord >= 0 {
                condemned.push(slot);
            }
        }
        let mut replicas: Vec<Slot> = replicas
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.unwrap_or_else(|| self.new_pod(start + i as i64)))
            .collect();
        condemned.sort_by_key(|s| std::cmp::Reverse(ordinal(&s.pod)));

        let first_unhealthy: Option<String> = replicas
            .iter()
            .chain(condemned.iter().rev())
            .find(|s| !healthy(&s.pod))
            .map(|s| meta::name(&s.pod).to_owned());

        let finish = |sync: &Self, status: &mut Status, r: &[Slot], c: &[Slot]| {
            sync.count(status, &r.iter().chain(c).collect::<Vec<_>>());
        };
        if meta::is_deleting(self.set) {
            return status;
        }
        let monotonic = meta::str_at(self.set, "/spec/podManagementPolicy") != "Parallel";

        let mut exit = false;
        for i in 0..replicas.len() {
            if self.process_replica(&mut replicas, i, monotonic) && monotonic {
                exit = true;
                break;
            }
        }
        if exit || self.blocked {
            finish(self, &mut status, &replicas, &condemned);
            return status;
        }

        // Bring the claims of condemned pods in line with `whenScaled`.
        for slot in &condemned {
            self.fix_claims(&slot.pod);
        }

        for i in 0..condemned.len() {
            if self.process_condemned(&condemned[i], first_unhealthy.as_deref(), monotonic)
                && monotonic
            {
                finish(self, &mut status, &replicas, &condemned);
                return status;
            }
        }
        finish(self, &mut status, &replicas, &condemned);

        if meta::str_at(self.set, "/spec/updateStrategy/type") == "OnDelete" {
            return status;
        }
        let update_min = meta::int_at(self.set, "/spec/updateStrategy/rollingUpdate/partition", 0);
        if let Some(max) = self
            .set
            .pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable")
        {
            self.update_with_max_unavailable(&replicas, update_min, max, &mut status);
            return status;
        }
        for target in (0..replicas.len()).rev() {
            if (target as i64) < update_min {
                break;
            }
            let pod = &replicas[target].pod;
            if label(pod, CONTROLLER_REVISION_HASH) != self.update_name && !meta::is_deleting(pod) {
                let name = meta::name(pod).to_owned();
                self.plan.delete.push(name.clone());
                self.pod_event("delete", &name);
                status.current -= 1;
                return status;
            }
            if !healthy(pod) {
                return status;
            }
        }
        status
    }

    /// `updateStatefulSetAfterInvariantEstablished` (the `MaxUnavailableStatefulSet` path):
    /// while fewer than `maxUnavailable` replicas are unhealthy, delete that many more
    /// out-of-date pods from the highest ordinal down to the partition.
    fn update_with_max_unavailable(
        &mut self,
        replicas: &[Slot],
        update_min: i64,
        max: &Value,
        status: &mut Status,
    ) {
        let count = self.replicas();
        let max = crate::deployment::scaled_value(Some(max), count, false).max(1);
        let unavailable = replicas.iter().filter(|s| !healthy(&s.pod)).count() as i64;
        if unavailable >= max {
            return;
        }
        let mut budget = max - unavailable;
        for target in (0..replicas.len()).rev() {
            if (target as i64) < update_min || budget == 0 {
                break;
            }
            let pod = &replicas[target].pod;
            if label(pod, CONTROLLER_REVISION_HASH) != self.update_name && !meta::is_deleting(pod) {
                let name = meta::name(pod).to_owned();
                self.plan.delete.push(name.clone());
                self.pod_event("delete", &name);
                status.current -= 1;
                budget -= 1;
            }
        }
    }

    /// `processReplica`: whether a monotonic sync must stop here.
    fn process_replica(&mut self, replicas: &mut [Slot], i: usize, monotonic: bool) -> bool {
        let ord = self.start() + i as i64;
        let set_name = self.name().to_owned();
        let ns = meta::namespace(self.set).to_owned();
        if replicas[i].created && matches!(phase(&replicas[i].pod), "Failed" | "Succeeded") {
            let name = meta::name(&replicas[i].pod).to_owned();
            self.event(if phase(&replicas[i].pod) == "Failed" {
                Event::warning(
                    "RecreatingFailedPod",
                    format!("StatefulSet {ns}/{set_name} is recreating failed Pod {name}"),
                )
            } else {
                Event::normal(
                    "RecreatingTerminatedPod",
                    format!("StatefulSet {ns}/{set_name} is recreating terminated Pod {name}"),
                )
            });
            self.plan.delete.push(name.clone());
            self.pod_event("delete", &name);
            replicas[i] = self.new_pod(ord);
        }
        if !replicas[i].created {
            if deletes_when(self.set, "whenScaled") && self.claim_is_stale(&replicas[i].pod) {
                return true;
            }
            let pod = replicas[i].pod.clone();
            if !self.create_claims(&pod) {
                return true;
            }
            let name = meta::name(&pod).to_owned();
            self.plan.create.push(pod);
            self.pod_event("create", &name);
            return monotonic;
        }
        let pod = replicas[i].pod.clone();
        if phase(&pod) == "Pending" && !self.create_claims(&pod) {
            return true;
        }
        if monotonic
            && (meta::is_deleting(&pod) || !running_and_ready(&pod) || !self.available(&pod))
        {
            return true;
        }
        let identity = identity_matches(self.set, &pod);
        let storage = storage_matches(self.set, &pod);
        let retention = self.claims_match_policy(&pod);
        if identity && storage && retention {
            return false;
        }
        // `UpdateStatefulPod` against the update revision's set.
        let mut updated = pod.clone();
        if !identity {
            update_identity(self.set, &mut updated);
        }
        if !storage {
            update_storage(&self.update_set, &mut updated);
            if !self.create_claims(&updated) {
                return true;
            }
        }
        if !retention {
            self.fix_claims(&updated);
        }
        if updated != pod {
            self.plan.update.push(updated);
        }
        self.pod_event("update", meta::name(&pod));
        false
    }

    /// `processCondemned`: whether a monotonic sync must stop here.
    fn process_condemned(
        &mut self,
        slot: &Slot,
        first_unhealthy: Option<&str>,
        monotonic: bool,
    ) -> bool {
        let pod = &slot.pod;
        if meta::is_deleting(pod) {
            return monotonic;
        }
        let is_first = first_unhealthy == Some(meta::name(pod));
        if monotonic && !is_first && (!running_and_ready(pod) || !self.available(pod)) {
            return true;
        }
        let name = meta::name(pod).to_owned();
        self.plan.delete.push(name.clone());
        self.pod_event("delete", &name);
        monotonic
    }

    /// The claims a pod of `ordinal` mounts (`getPersistentVolumeClaims`), in template order.
    fn claims_for(&self, set: &Value, ord: i64) -> Vec<(String, Value)> {
        let match_labels = set
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        templates(set)
            .iter()
            .map(|t| {
                let tname = meta::name(t).to_owned();
                let mut claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim"});
                let mut metadata = t.get("metadata").cloned().unwrap_or_else(|| json!({}));
                let m = meta::object_at(&mut claim, "metadata");
                if let Value::Object(tm) = &mut metadata {
                    for (k, v) in std::mem::take(tm) {
                        m.insert(k, v);
                    }
                }
                m.insert(
                    "name".into(),
                    json!(claim_name(&tname, meta::name(set), ord)),
                );
                m.insert("namespace".into(), json!(meta::namespace(set)));
                let labels = m.entry("labels").or_insert_with(|| json!({}));
                for (k, v) in &match_labels {
                    labels[k] = v.clone();
                }
                if labels.as_object().is_some_and(Map::is_empty) {
                    m.remove("labels");
                }
                if let Some(spec) = t.get("spec") {
                    claim["spec"] = spec.clone();
                }
                (tname, claim)
            })
            .collect()
    }

    /// `createPersistentVolumeClaims`: plan the missing claims of `pod`; false when a claim is
    /// being deleted and the pod must wait.
    fn create_claims(&mut self, pod: &Value) -> bool {
        let Some(ord) = ordinal(pod) else { return true };
        let pod_name = meta::name(pod).to_owned();
        let set_name = self.name().to_owned();
        let mut ok = true;
        for (_, mut claim) in self.claims_for(self.set, ord) {
            let name = meta::name(&claim).to_owned();
            match self.claims.get(&name) {
                Some(existing) if meta::is_deleting(existing) => {
                    self.event(Event::warning(
                        "FailedCreate",
                        format!(
                            "create Pod {pod_name} in StatefulSet {set_name} failed error: pvc {name} is being deleted"
                        ),
                    ));
                    self.blocked = true;
                    ok = false;
                }
                Some(_) => {}
                None => {
                    if self.in_range(ord) {
                        set_claim_refs(&mut claim, self.set, pod);
                    }
                    self.claims.insert(name.clone(), claim.clone());
                    self.plan.create_claims.push(claim);
                    self.event(Event::normal(
                        "SuccessfulCreate",
                        format!(
                            "create Claim {name} Pod {pod_name} in StatefulSet {set_name} success"
                        ),
                    ));
                }
            }
        }
        ok
    }

    /// `PodClaimIsStale`: a claim still owned by an earlier pod of the same name.
    fn claim_is_stale(&self, pod: &Value) -> bool {
        let Some(ord) = ordinal(pod) else {
            return false;
        };
        self.claims_for(self.set, ord).iter().any(|(_, c)| {
            self.claims
                .get(meta::name(c))
                .is_some_and(|existing| stale_ref(existing, pod, "Pod"))
        })
    }

    /// `ClaimsMatchRetentionPolicy` for an existing pod.
    fn claims_match_policy(&self, pod: &Value) -> bool {
        let Some(ord) = ordinal(pod) else { return true };
        self.claims_for(self.set, ord).iter().all(|(_, c)| {
            self.claims
                .get(meta::name(c))
                .is_none_or(|existing| self.claim_owner_up_to_date(existing, pod))
        })
    }

    /// `UpdatePodClaimForRetentionPolicy`.
    fn fix_claims(&mut self, pod: &Value) {
        let Some(ord) = ordinal(pod) else { return };
        for (_, c) in self.claims_for(self.set, ord) {
            let Some(existing) = self.claims.get(meta::name(&c)).cloned() else {
                continue;
            };
            if self.claim_owner_up_to_date(&existing, pod) {
                continue;
            }
            let mut updated = existing.clone();
            self.update_claim_refs(&mut updated, pod);
            if updated != existing {
                self.claims
                    .insert(meta::name(&updated).to_owned(), updated.clone());
                match self
                    .plan
                    .update_claims
                    .iter_mut()
                    .find(|u| meta::name(u) == meta::name(&updated))
                {
                    Some(slot) => *slot = updated,
                    None => self.plan.update_claims.push(updated),
                }
            }
        }
    }

    fn scaled_down(&self, pod: &Value) -> bool {
        !ordinal(pod).is_some_and(|o| self.in_range(o))
    }

    /// `isClaimOwnerUpToDate`.
    fn claim_owner_up_to_date(&self, claim: &Value, pod: &Value) -> bool {
        let set = self.set;
        if stale_ref(claim, set, "StatefulSet") || stale_ref(claim, pod, "Pod") {
            return true;
        }
        let has_set = has_ref(claim, meta::uid(set));
        let has_pod = has_ref(claim, meta::uid(pod));
        if unexpected_controller(claim, set, pod) {
            return !(has_set || has_pod);
        }
        if non_controller_owner(claim, set, pod) {
            return false;
        }
        let down = self.scaled_down(pod);
        match (
            deletes_when(set, "whenScaled"),
            deletes_when(set, "whenDeleted"),
        ) {
            (false, false) => !has_set && !has_pod,
            (false, true) => has_set && !has_pod,
            (true, false) => !has_set && down == has_pod,
            (true, true) => down != has_set && down == has_pod,
        }
    }

    /// `updateClaimOwnerRefForSetAndPod`.
    fn update_claim_refs(&self, claim: &mut Value, pod: &Value) {
        let set = self.set;
        let unexpected = unexpected_controller(claim, set, pod);
        let down = self.scaled_down(pod);
        let mut refs: Vec<Value> = owner_refs(claim)
            .into_iter()
            .filter(|r| !matches_ref(r, set, "StatefulSet") && !matches_ref(r, pod, "Pod"))
            .collect();
        if !unexpected {
            let (scaled, deleted) = (
                deletes_when(set, "whenScaled"),
                deletes_when(set, "whenDeleted"),
            );
            if scaled && down {
                push_ref(&mut refs, pod_owner_ref(pod));
            }
            if deleted && (!scaled || !down) {
                push_ref(&mut refs, meta::owner_ref(set, "StatefulSet"));
            }
        }
        set_refs(claim, refs);
    }
}

/// The volume claim templates of a set.
fn templates(set: &Value) -> Vec<Value> {
    set.pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `getPersistentVolumeClaimName`: `<template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &str, ordinal: i64) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// `newStatefulSetPod`: the template as a pod named `<set>-<ordinal>` with its identity
/// (hostname, subdomain, name and index labels) and claim volumes.
fn stateful_pod(set: &Value, ord: i64) -> Value {
    let mut pod = crate::replicaset::pod_from_template(set);
    if let Some(r) = pod.pointer_mut("/metadata/ownerReferences/0") {
        *r = meta::owner_ref(set, "StatefulSet");
    }
    let name = format!("{}-{ord}", meta::name(set));
    pod["metadata"]["name"] = json!(name);
    update_identity(set, &mut pod);
    let spec = meta::object_at(&mut pod, "spec");
    spec.insert("hostname".into(), json!(name));
    let service = meta::str_at(set, "/spec/serviceName");
    if !service.is_empty() {
        spec.insert("subdomain".into(), json!(service));
    }
    update_storage(set, &mut pod);
    pod
}

/// `updateIdentity`: name, namespace and the name and index labels.
fn update_identity(set: &Value, pod: &mut Value) {
    let ord = ordinal(pod).unwrap_or(-1);
    let name = format!("{}-{ord}", meta::name(set));
    let m = meta::object_at(pod, "metadata");
    m.insert("name".into(), json!(name));
    m.insert("namespace".into(), json!(meta::namespace(set)));
    *pod = history::with_label(pod, POD_NAME_LABEL, &name);
    *pod = history::with_label(pod, POD_INDEX_LABEL, &ord.to_string());
}

/// `identityMatches`.
fn identity_matches(set: &Value, pod: &Value) -> bool {
    let name = meta::name(pod);
    parent_and_ordinal(name)
        .is_some_and(|(p, o)| p == meta::name(set) && name == format!("{p}-{o}"))
        && meta::namespace(pod) == meta::namespace(set)
        && label(pod, POD_NAME_LABEL) == name
}

/// `storageMatches`: every template has a volume of its name on the right claim.
fn storage_matches(set: &Value, pod: &Value) -> bool {
    let Some(ord) = ordinal(pod) else {
        return false;
    };
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    templates(set).iter().all(|t| {
        let want = claim_name(meta::name(t), meta::name(set), ord);
        volumes.iter().any(|v| {
            v.get("name") == t.pointer("/metadata/name")
                && meta::str_at(v, "/persistentVolumeClaim/claimName") == want
        })
    })
}

/// `updateStorage`: a claim volume per template first, then the pod's other volumes.
fn update_storage(set: &Value, pod: &mut Value) {
    let Some(ord) = ordinal(pod) else { return };
    let tmpls = templates(set);
    let names: BTreeSet<&str> = tmpls.iter().map(meta::name).collect();
    let mut volumes: Vec<Value> = tmpls
        .iter()
        .map(|t| {
            json!({"name": meta::name(t), "persistentVolumeClaim": {
                "claimName": claim_name(meta::name(t), meta::name(set), ord)}})
        })
        .collect();
    if let Some(current) = pod.pointer("/spec/volumes").and_then(Value::as_array) {
        volumes.extend(
            current
                .iter()
                .filter(|v| !names.contains(meta::str_at(v, "/name")))
                .cloned(),
        );
    }
    let spec = meta::object_at(pod, "spec");
    if volumes.is_empty() {
        spec.remove("volumes");
    } else {
        spec.insert("volumes".into(), Value::Array(volumes));
    }
}

fn owner_refs(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn set_refs(obj: &mut Value, refs: Vec<Value>) {
    let m = meta::object_at(obj, "metadata");
    if refs.is_empty() {
        m.remove("ownerReferences");
    } else {
        m.insert("ownerReferences".into(), Value::Array(refs));
    }
}

fn push_ref(refs: &mut Vec<Value>, r: Value) {
    if !refs.iter().any(|o| o.get("uid") == r.get("uid")) {
        refs.push(r);
    }
}

fn pod_owner_ref(pod: &Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "name": meta::name(pod), "uid": meta::uid(pod),
        "controller": true, "blockOwnerDeletion": true})
}

fn has_ref(obj: &Value, uid: &str) -> bool {
    owner_refs(obj)
        .iter()
        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
}

/// `matchesRef`: same name, kind and API group (`apps` for StatefulSets, core for pods).
fn matches_ref(r: &Value, owner: &Value, kind: &str) -> bool {
    let group = meta::str_at(r, "/apiVersion")
        .rsplit_once('/')
        .map_or("", |(g, _)| g);
    let want_group = if kind == "Pod" { "" } else { "apps" };
    meta::str_at(r, "/name") == meta::name(owner)
        && meta::str_at(r, "/kind") == kind
        && group == want_group
}

/// `hasStaleOwnerRef`: the first reference naming `owner` carries another UID.
fn stale_ref(claim: &Value, owner: &Value, kind: &str) -> bool {
    owner_refs(claim)
        .iter()
        .find(|r| matches_ref(r, owner, kind))
        .is_some_and(|r| meta::str_at(r, "/uid") != meta::uid(owner))
}

/// `hasUnexpectedController`: someone else controls the claim (never a problem under
/// Retain/Retain).
fn unexpected_controller(claim: &Value, set: &Value, pod: &Value) -> bool {
    if !deletes_when(set, "whenScaled") && !deletes_when(set, "whenDeleted") {
        return false;
    }
    owner_refs(claim).iter().any(|r| {
        let uid = meta::str_at(r, "/uid");
        if matches_ref(r, set, "StatefulSet") {
            return uid != meta::uid(set);
        }
        if matches_ref(r, pod, "Pod") {
            return uid != meta::uid(pod);
        }
        r.get("controller").and_then(Value::as_bool) == Some(true)
    })
}

/// `hasNonControllerOwner`: the set or pod owns the claim without controlling it.
fn non_controller_owner(claim: &Value, set: &Value, pod: &Value) -> bool {
    owner_refs(claim).iter().any(|r| {
        let uid = meta::str_at(r, "/uid");
        (uid == meta::uid(set) || (!meta::uid(pod).is_empty() && uid == meta::uid(pod)))
            && r.get("controller").and_then(Value::as_bool) != Some(true)
    })
}

/// The owner references a new claim for an in-range pod gets: the set's when `whenDeleted`
/// is `Delete`.
fn set_claim_refs(claim: &mut Value, set: &Value, _pod: &Value) {
    if deletes_when(set, "whenDeleted") {
        set_refs(claim, vec![meta::owner_ref(set, "StatefulSet")]);
    }
}
