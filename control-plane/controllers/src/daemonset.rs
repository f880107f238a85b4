//! The DaemonSet controller's reconcile core (`pkg/controller/daemon`): keep one pod on every
//! node the DaemonSet's scheduling constraints admit, roll pods over to the current template
//! (RollingUpdate with `maxUnavailable` or `maxSurge`, or OnDelete), keep the ControllerRevision
//! history and compute `status`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use objects::selectors::LabelSelector;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::controllerrevision::{self as history, CONTROLLER_REVISION_HASH};
use crate::event::Event;
use crate::meta::{self, Claim};

/// Upstream's `BurstReplicas` for DaemonSets: at most this many pods are created or deleted in
/// one sync.
pub const BURST_REPLICAS: usize = 250;
/// The label carrying the DaemonSet's template generation on its pods.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// The annotation the API server keeps the template generation in for apps/v1.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
/// `revisionHistoryLimit`'s apps/v1 default.
const DEFAULT_HISTORY_LIMIT: i64 = 10;

/// The writes one DaemonSet sync asks for. Applying them in field order reproduces upstream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// ControllerRevisions to write back: adopted or released ones, ones given their missing
    /// `controller-revision-hash` label, and the current one renumbered to the newest revision.
    pub update_revisions: Vec<Value>,
    /// The ControllerRevision for the current template, when none exists (its name is
    /// deterministic).
    pub create_revision: Option<Value>,
    /// Names of ControllerRevisions to delete: duplicates of the current one and history beyond
    /// `revisionHistoryLimit`.
    pub delete_revisions: Vec<String>,
    /// Orphan pods matching the selector, with the DaemonSet's controller reference added.
    pub adopt: Vec<Value>,
    /// Owned pods that stopped matching, with the reference removed.
    pub release: Vec<Value>,
    /// Owned pods relabelled to the surviving revision after duplicate revisions were folded.
    pub relabel: Vec<Value>,
    /// Pods to create (with `generateName`), each pinned to its node by node affinity. Create
    /// them in [`crate::replicaset::slow_start_batches`], and record [`created_event`] with the
    /// name the API server gave each.
    pub create: Vec<Value>,
    /// Names of pods to delete.
    pub delete: Vec<String>,
    /// The new `status`, when it differs from the stored one.
    pub status: Option<Value>,
    /// Events to record, except the per-pod `SuccessfulCreate` ones (see [`created_event`]).
    pub events: Vec<Event>,
    /// Sync again after this long even if nothing changes (zero: at once, after a revision name
    /// collision).
    pub requeue_after: Option<Duration>,
}

impl Plan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.update_revisions.is_empty()
            && self.create_revision.is_none()
            && self.delete_revisions.is_empty()
            && self.adopt.is_empty()
            && self.release.is_empty()
            && self.relabel.is_empty()
            && self.create.is_empty()
            && self.delete.is_empty()
            && self.status.is_none()
    }
}

/// The Event upstream's pod control records after creating a pod.
pub fn created_event(pod_name: &str) -> Event {
    Event::normal("SuccessfulCreate", format!("Created pod: {pod_name}"))
}

/// Reconciles one DaemonSet against every Node, the pods of its namespace and the
/// ControllerRevisions of its namespace (others' objects are left alone). The caller must not
/// call this while creations or deletions from an earlier plan are still unobserved (upstream's
/// expectations).
pub fn reconcile(
    ds: &Value,
    nodes: &[Value],
    pods: &[Value],
    revisions: &[Value],
    now: SystemTime,
) -> Result<Plan, Error> {
    let now = meta::unix_seconds(now);
    let selector_value = ds.pointer("/spec/selector").ok_or(Error::MissingSelector)?;
    let selector = LabelSelector::from_api(selector_value).map_err(Error::Selector)?;
    let mut plan = Plan::default();
    if selector.is_empty() {
        plan.events.push(Event::warning(
            "SelectingAll",
            "This daemon set is selecting all pods. A non-empty selector is required.",
        ));
        return Ok(plan);
    }
    if meta::is_deleting(ds) {
        // Upstream cannot tell which revisions and pods survive the deletion and writes nothing.
        return Ok(plan);
    }

    // History.
    let claimed = history::claim(ds, "DaemonSet", &selector, revisions);
    plan.update_revisions.extend(claimed.adopt);
    plan.update_revisions.extend(claimed.release);
    let Some(cur) = construct_history(ds, claimed.owned, revisions, &mut plan) else {
        // A revision name collision: only the bumped collision count is written.
        return Ok(plan);
    };
    let hash = label(&cur.cur, CONTROLLER_REVISION_HASH).to_owned();

    // Pods.
    let mut owned: Vec<Value> = Vec::new();
    for pod in pods
        .iter()
        .filter(|p| meta::namespace(p) == meta::namespace(ds))
    {
        match meta::claim(ds, pod, selector.matches_object(pod)) {
            Claim::Owned => owned.push(pod.clone()),
            Claim::Adopt => {
                let adopted = meta::with_owner(pod, meta::owner_ref(ds, "DaemonSet"));
                plan.adopt.push(adopted.clone());
                owned.push(adopted);
            }
            Claim::Release => plan.release.push(meta::without_owner(pod, meta::uid(ds))),
            Claim::Ignore => {}
        }
    }
    if cur.deduplicated {
        // `dedupCurHistories` relabels every pod whose hash differs from the survivor's.
        for pod in owned.iter_mut() {
            if label(pod, CONTROLLER_REVISION_HASH) != hash {
                *pod = history::with_label(pod, CONTROLLER_REVISION_HASH, &hash);
                plan.relabel.push(pod.clone());
            }
        }
    }

    let sync = Sync {
        ds,
        nodes: nodes.iter().map(|n| (meta::name(n), n)).collect(),
        node_order: nodes.iter().collect(),
        owned: &owned,
        hash: &hash,
        generation: template_generation(ds),
        now,
    };
    let (create_nodes, delete) = sync.manage(&mut plan.events);
    let (create_nodes, delete) = if create_nodes.is_empty() && delete.is_empty() {
        // Upstream's expectations are met only when `manage` wrote nothing.
        match meta::str_at(ds, "/spec/updateStrategy/type") {
            "OnDelete" => (Vec::new(), Vec::new()),
            _ => sync.rolling_update(),
        }
    } else {
        (create_nodes, delete)
    };
    let template = sync.pod_template();
    for node in create_nodes.iter().take(BURST_REPLICAS) {
        plan.create.push(pin_to_node(&template, node));
    }
    for name in delete.into_iter().take(BURST_REPLICAS) {
        plan.events.push(Event::normal(
            "SuccessfulDelete",
            format!("Deleted pod: {name}"),
        ));
        plan.delete.push(name);
    }

    // `cleanupHistory`, which counts terminal pods being deleted as live too.
    let limit = meta::int_at(ds, "/spec/revisionHistoryLimit", DEFAULT_HISTORY_LIMIT);
    let mut to_kill = cur.old.len() as i64 - limit;
    if to_kill > 0 {
        let live: BTreeSet<&str> = sync
            .pods_by_node(true)
            .values()
            .flatten()
            .map(|p| label(p, CONTROLLER_REVISION_HASH))
            .filter(|h| !h.is_empty())
            .collect();
        let mut old = cur.old.clone();
        old.sort_by_key(history::number);
        for r in &old {
            if to_kill <= 0 {
                break;
            }
            if live.contains(label(r, CONTROLLER_REVISION_HASH)) {
                continue;
            }
            plan.delete_revisions.push(meta::name(r).to_owned());
            to_kill -= 1;
        }
    }

    let status = sync.status();
    let min_ready = meta::int_at(ds, "/spec/minReadySeconds", 0);
    if min_ready > 0 && status.ready != status.available {
        plan.requeue_after = Some(meta::seconds(min_ready));
    }
    let old = ds.get("status").cloned().unwrap_or(Value::Null);
    let generation = meta::int_at(ds, "/metadata/generation", 0);
    if Status::read(&old) != status || meta::int_at(&old, "/observedGeneration", 0) < generation {
        plan.status = Some(status.write(&old, generation));
    }
    Ok(plan)
}

/// The current revision and the others, as `constructHistory` leaves them.
struct Current {
    cur: Value,
    old: Vec<Value>,
    /// Whether several revisions matched the template and were folded into one.
    deduplicated: bool,
}

/// Upstream's `constructHistory` and `snapshot`; `None` after a name collision, with the
/// collision count bump planned.
fn construct_history(
    ds: &Value,
    owned: Vec<Value>,
    all: &[Value],
    plan: &mut Plan,
) -> Option<Current> {
    let patch = history::template_patch(ds);
    let mut current = Vec::new();
    let mut old = Vec::new();
    for mut r in owned {
        if r.pointer(&format!(
            "/metadata/labels/{}",
            history::escape(CONTROLLER_REVISION_HASH)
        ))
        .is_none()
        {
            let name = meta::name(&r).to_owned();
            r = history::with_label(&r, CONTROLLER_REVISION_HASH, &name);
            upsert(&mut plan.update_revisions, r.clone());
        }
        if r.get("data") == Some(&patch) {
            current.push(r);
        } else {
            old.push(r);
        }
    }
    let next = old.iter().map(history::number).max().unwrap_or(0) + 1;
    if current.is_empty() {
        let collision = ds.pointer("/status/collisionCount").and_then(Value::as_i64);
        let template = ds.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = crate::deployment::compute_hash(&template, collision);
        let name = format!("{}-{hash}", meta::name(ds));
        if let Some(existing) = all
            .iter()
            .find(|r| meta::namespace(r) == meta::namespace(ds) && meta::name(r) == name)
        {
            if existing.get("data") == Some(&patch) {
                return Some(Current {
                    cur: existing.clone(),
                    old,
                    deduplicated: false,
                });
            }
            let mut status = ds.get("status").cloned().unwrap_or_else(|| json!({}));
            status["collisionCount"] = json!(collision.unwrap_or(0) + 1);
            plan.status = Some(status);
            plan.requeue_after = Some(Duration::ZERO);
            return None;
        }
        let mut labels = ds
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        labels.insert(CONTROLLER_REVISION_HASH.into(), json!(hash));
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(name));
        metadata.insert("namespace".into(), json!(meta::namespace(ds)));
        metadata.insert("labels".into(), Value::Object(labels));
        if let Some(a) = ds.pointer("/metadata/annotations") {
            metadata.insert("annotations".into(), a.clone());
        }
        metadata.insert(
            "ownerReferences".into(),
            json!([meta::owner_ref(ds, "DaemonSet")]),
        );
        let cur = json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": metadata,
            "data": patch,
            "revision": next,
        });
        plan.create_revision = Some(cur.clone());
        return Some(Current {
            cur,
            old,
            deduplicated: false,
        });
    }
    // `dedupCurHistories`: the highest revision (the last of equals) survives.
    let keep = current.iter().enumerate().fold(0, |best, (i, r)| {
        if history::number(r) >= history::number(&current[best]) {
            i
        } else {
            best
        }
    });
    let deduplicated = current.len() > 1;
    for (i, r) in current.iter().enumerate() {
        if i != keep {
            plan.delete_revisions.push(meta::name(r).to_owned());
        }
    }
    let mut cur = current.swap_remove(keep);
    if history::number(&cur) < next {
        cur = history::with_number(&cur, next);
        upsert(&mut plan.update_revisions, cur.clone());
    }
    Some(Current {
        cur,
        old,
        deduplicated,
    })
}

/// Replaces the entry of the same name in `list`, or appends.
fn upsert(list: &mut Vec<Value>, obj: Value) {
    match list.iter_mut().find(|o| meta::name(o) == meta::name(&obj)) {
        Some(slot) => *slot = obj,
        None => list.push(obj),
    }
}

fn label<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `GetTemplateGeneration`: the deprecated annotation the API server maintains, or, where the
/// API server does not write it, `metadata.generation`.
fn template_generation(ds: &Value) -> Option<i64> {
    match ds
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
        .and_then(Value::as_str)
    {
        Some(s) => s.parse().ok(),
        None => ds.pointer("/metadata/generation").and_then(Value::as_i64),
    }
}

/// The counted part of a DaemonSet status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    desired: i64,
    current: i64,
    misscheduled: i64,
    ready: i64,
    updated: i64,
    available: i64,
    unavailable: i64,
}

impl Status {
    fn read(s: &Value) -> Status {
        let n = |k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
        Status {
            desired: n("desiredNumberScheduled"),
            current: n("currentNumberScheduled"),
            misscheduled: n("numberMisscheduled"),
            ready: n("numberReady"),
            updated: n("updatedNumberScheduled"),
            available: n("numberAvailable"),
            unavailable: n("numberUnavailable"),
        }
    }

    /// Renders the status as upstream serialises it (the four required counts always, the
    /// others when non-zero), keeping `collisionCount` and conditions.
    fn write(&self, old: &Value, generation: i64) -> Value {
        let mut out = old.as_object().cloned().unwrap_or_default();
        for (k, v, required) in [
            ("currentNumberScheduled", self.current, true),
            ("numberMisscheduled", self.misscheduled, true),
            ("desiredNumberScheduled", self.desired, true),
            ("numberReady", self.ready, true),
            ("observedGeneration", generation, false),
            ("updatedNumberScheduled", self.updated, false),
            ("numberAvailable", self.available, false),
            ("numberUnavailable", self.unavailable, false),
        ] {
            if v == 0 && !required {
                out.remove(k);
            } else {
                out.insert(k.into(), json!(v));
            }
        }
        Value::Object(out)
    }
}

/// One sync's view of the world.
struct Sync<'a> {
    ds: &'a Value,
    nodes: BTreeMap<&'a str, &'a Value>,
    node_order: Vec<&'a Value>,
    owned: &'a [Value],
    hash: &'a str,
    generation: Option<i64>,
    now: i64,
}

impl Sync<'_> {
    /// `getNodesToDaemonPods`: owned pods by target node; terminal pods being deleted only when
    /// `include_deleted_terminal`.
    fn pods_by_node(&self, include_deleted_terminal: bool) -> BTreeMap<String, Vec<&Value>> {
        let mut out: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for pod in self.owned {
            let terminal = matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed");
            if !include_deleted_terminal && terminal && meta::is_deleting(pod) {
                continue;
            }
            if let Some(node) = target_node(pod) {
                out.entry(node).or_default().push(pod);
            }
        }
        out
    }

    fn min_ready(&self) -> i64 {
        meta::int_at(self.ds, "/spec/minReadySeconds", 0)
    }

    fn available(&self, pod: &Value) -> bool {
        meta::is_pod_available(pod, self.min_ready(), self.now)
    }

    /// `IsPodUpdated`: the pod carries the current hash or the current template generation.
    fn is_updated(&self, pod: &Value) -> bool {
        let generation_matches = self
            .generation
            .is_some_and(|g| label(pod, TEMPLATE_GENERATION_LABEL) == g.to_string());
        (!self.hash.is_empty() && label(pod, CONTROLLER_REVISION_HASH) == self.hash)
            || generation_matches
    }

    fn allows_surge(&self) -> bool {
        self.is_rolling() && self.surge_value(1) > 0
    }

    fn is_rolling(&self) -> bool {
        meta::str_at(self.ds, "/spec/updateStrategy/type") != "OnDelete"
    }

    fn surge_value(&self, desired: i64) -> i64 {
        let v = self
            .ds
            .pointer("/spec/updateStrategy/rollingUpdate/maxSurge");
        crate::deployment::scaled_value(v, desired, true)
    }

    /// `manage`: which nodes need a pod and which pods must go, before any rollout.
    fn manage(&self, events: &mut Vec<Event>) -> (Vec<String>, Vec<String>) {
        let by_node = self.pods_by_node(false);
        let mut create = Vec::new();
        let mut delete = Vec::new();
        for node in &self.node_order {
            let node_name = meta::name(node);
            let (should_run, should_continue) = should_run(self.ds, node);
            let pods = by_node.get(node_name);
            match pods {
                None if should_run => create.push(node_name.to_owned()),
                Some(pods) if should_continue => {
                    let mut running = Vec::new();
                    for pod in pods.iter().filter(|p| !meta::is_deleting(p)) {
                        match meta::str_at(pod, "/status/phase") {
                            "Failed" => {
                                events.push(Event::warning(
                                    "FailedDaemonPod",
                                    format!(
                                        "Found failed daemon pod {}/{} on node {node_name}, will try to kill it",
                                        meta::namespace(pod),
                                        meta::name(pod)
                                    ),
                                ));
                                delete.push(meta::name(pod).to_owned());
                            }
                            "Succeeded" => delete.push(meta::name(pod).to_owned()),
                            _ => running.push(*pod),
                        }
                    }
                    running.sort_by(|a, b| by_creation_and_phase(a, b));
                    if !self.allows_surge() {
                        for p in running.iter().skip(1) {
                            delete.push(meta::name(p).to_owned());
                        }
                        continue;
                    }
                    if running.len() <= 1 {
                        if running.is_empty() && should_run {
                            create.push(node_name.to_owned());
                        }
                        continue;
                    }
                    // Surging: keep the oldest new pod and, while it is not yet available and
                    // the oldest old pod is ready, that old pod too.
                    let (mut oldest_new, mut oldest_old) = (None, None);
                    for pod in &running {
                        let slot = if label(pod, CONTROLLER_REVISION_HASH) == self.hash {
                            &mut oldest_new
                        } else {
                            &mut oldest_old
                        };
                        if slot.is_none() {
                            *slot = Some(*pod);
                        } else {
                            delete.push(meta::name(pod).to_owned());
                        }
                    }
                    if let (Some(new), Some(old)) = (oldest_new, oldest_old)
                        && (!meta::is_pod_ready(old) || self.available(new))
                    {
                        delete.push(meta::name(old).to_owned());
                    }
                }
                Some(pods) if !should_continue => {
                    delete.extend(
                        pods.iter()
                            .filter(|p| !meta::is_deleting(p))
                            .map(|p| meta::name(p).to_owned()),
                    );
                }
                _ => {}
            }
        }
        // Unscheduled pods aimed at nodes that no longer exist never get scheduled.
        for (node, pods) in &by_node {
            if self.nodes.contains_key(node.as_str()) {
                continue;
            }
            delete.extend(
                pods.iter()
                    .filter(|p| meta::str_at(p, "/spec/nodeName").is_empty())
                    .map(|p| meta::name(p).to_owned()),
            );
        }
        (create, delete)
    }

    /// `updatedDesiredNodeCounts`: `(maxSurge, maxUnavailable, desiredNumberScheduled)`, and
    /// the pods by node with an empty entry for every node that should run a pod.
    fn desired_counts(&self) -> (i64, i64, i64, BTreeMap<String, Vec<&Value>>) {
        let mut by_node = self.pods_by_node(false);
        let mut desired = 0;
        for node in &self.node_order {
            if should_run(self.ds, node).0 {
                desired += 1;
                by_node.entry(meta::name(node).to_owned()).or_default();
            }
        }
        let (mut surge, mut unavailable) = (0, 0);
        if self.is_rolling() {
            let ru = self.ds.pointer("/spec/updateStrategy/rollingUpdate");
            let default = json!(1);
            let unavail_v = ru.and_then(|r| r.get("maxUnavailable")).unwrap_or(&default);
            unavailable = crate::deployment::scaled_value(Some(unavail_v), desired, true);
            surge = self.surge_value(desired);
        }
        if desired > 0 && unavailable == 0 && surge == 0 {
            unavailable = 1;
        }
        (surge, unavailable, desired, by_node)
    }

    /// `findUpdatedPodsOnNode`: at most one new and one old live pod, or `None`.
    fn new_and_old<'p>(
        &self,
        pods: &[&'p Value],
    ) -> Option<(Option<&'p Value>, Option<&'p Value>)> {
        let (mut new, mut old) = (None, None);
        for pod in pods.iter().filter(|p| !meta::is_deleting(p)) {
            let slot = if self.is_updated(pod) {
                &mut new
            } else {
                &mut old
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(*pod);
        }
        Some((new, old))
    }

    /// `rollingUpdate`: nodes to create new pods on and old pods to delete. Nodes are visited
    /// in name order.
    fn rolling_update(&self) -> (Vec<String>, Vec<String>) {
        let (max_surge, max_unavailable, desired, by_node) = self.desired_counts();
        if max_surge == 0 {
            let mut unavailable = 0;
            let mut replacements = Vec::new();
            let mut candidates = Vec::new();
            for pods in by_node.values() {
                let Some((new, old)) = self.new_and_old(pods) else {
                    unavailable += 1;
                    continue;
                };
                match (new, old) {
                    (None, None) | (Some(_), Some(_)) => unavailable += 1,
                    (Some(new), None) => {
                        if !self.available(new) {
                            unavailable += 1;
                        }
                    }
                    (None, Some(old)) => {
                        if !self.available(old) {
                            replacements.push(meta::name(old).to_owned());
                            unavailable += 1;
                        } else if unavailable < max_unavailable {
                            candidates.push(meta::name(old).to_owned());
                        }
                    }
                }
            }
            let remaining = (max_unavailable - unavailable).clamp(0, candidates.len() as i64);
            replacements.extend(candidates.into_iter().take(remaining as usize));
            return (Vec::new(), replacements);
        }

        let mut delete = Vec::new();
        let mut should_not_run = Vec::new();
        let mut candidates = Vec::new();
        let mut allowed = Vec::new();
        let (mut surge, mut available) = (0, 0);
        for (node_name, pods) in &by_node {
            let Some((new, old)) = self.new_and_old(pods) else {
                surge += 1;
                continue;
            };
            if let Some(p) = old.or(new)
                && self.available(p)
            {
                available += 1;
            }
            match (new, old) {
                (_, None) => {}
                (None, Some(old)) => {
                    let Some(node) = self.nodes.get(node_name.as_str()) else {
                        // Upstream fails the sync when the node is gone.
                        return (Vec::new(), Vec::new());
                    };
                    let runs = should_run(self.ds, node).0;
                    if !self.available(old) {
                        if runs {
                            allowed.push(node_name.clone());
                        } else {
                            delete.push(meta::name(old).to_owned());
                        }
                    } else if !runs {
                        should_not_run.push(meta::name(old).to_owned());
                    } else if surge < max_surge {
                        candidates.push(node_name.clone());
                    }
                }
                (Some(new), Some(old)) => {
                    if self.available(new) {
                        delete.push(meta::name(old).to_owned());
                    } else {
                        surge += 1;
                    }
                }
            }
        }
        // Pods on nodes that stopped qualifying go only as others become available.
        let deletable = (available - desired).clamp(0, should_not_run.len() as i64);
        delete.extend(should_not_run.into_iter().take(deletable as usize));
        let remaining = (max_surge - surge).clamp(0, candidates.len() as i64);
        allowed.extend(candidates.into_iter().take(remaining as usize));
        (allowed, delete)
    }

    /// `CreatePodTemplate`: the template with the DaemonSet tolerations, the template
    /// generation and the revision hash.
    fn pod_template(&self) -> Value {
        let mut t = self
            .ds
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        add_daemon_tolerations(meta::object_at(&mut t, "spec"));
        if let Some(g) = self.generation {
            t = history::with_label(&t, TEMPLATE_GENERATION_LABEL, &g.to_string());
        }
        if !self.hash.is_empty() {
            t = history::with_label(&t, CONTROLLER_REVISION_HASH, self.hash);
        }
        let mut pod = json!({"spec": {}, "metadata": {}});
        let metadata = meta::object_at(&mut pod, "metadata");
        metadata.insert(
            "generateName".into(),
            json!(format!("{}-", meta::name(self.ds))),
        );
        metadata.insert("namespace".into(), json!(meta::namespace(self.ds)));
        for key in ["labels", "annotations", "finalizers"] {
            if let Some(v) = t.pointer(&format!("/metadata/{key}")) {
                metadata.insert(key.into(), v.clone());
            }
        }
        metadata.insert(
            "ownerReferences".into(),
            json!([meta::owner_ref(self.ds, "DaemonSet")]),
        );
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": pod["metadata"].take(),
            "spec": t.get("spec").cloned().unwrap_or_else(|| json!({})),
        })
    }

    /// `updateDaemonSetStatus`, over the pods as this sync read them.
    fn status(&self) -> Status {
        let by_node = self.pods_by_node(false);
        let mut s = Status {
            desired: 0,
            current: 0,
            misscheduled: 0,
            ready: 0,
            updated: 0,
            available: 0,
            unavailable: 0,
        };
        for node in &self.node_order {
            let pods = by_node.get(meta::name(node)).filter(|p| !p.is_empty());
            if should_run(self.ds, node).0 {
                s.desired += 1;
                let Some(pods) = pods else { continue };
                s.current += 1;
                let mut pods = pods.clone();
                pods.sort_by(|a, b| by_creation_and_phase(a, b));
                let pod = pods[0];
                if meta::is_pod_ready(pod) {
                    s.ready += 1;
                    if self.available(pod) {
                        s.available += 1;
                    }
                }
                if self.is_updated(pod) {
                    s.updated += 1;
                }
            } else if pods.is_some() {
                s.misscheduled += 1;
            }
        }
        s.unavailable = s.desired - s.available;
        s
    }
}

/// `podByCreationTimestampAndPhase`: scheduled pods first, then oldest, then by name.
fn by_creation_and_phase(a: &Value, b: &Value) -> Ordering {
    let scheduled = |p: &Value| !meta::str_at(p, "/spec/nodeName").is_empty();
    let created = |p: &Value| meta::parse_time(meta::str_at(p, "/metadata/creationTimestamp"));
    scheduled(b)
        .cmp(&scheduled(a))
        .then_with(|| {
            created(a)
                .unwrap_or(i64::MIN)
                .cmp(&created(b).unwrap_or(i64::MIN))
        })
        .then_with(|| meta::name(a).cmp(meta::name(b)))
}

/// `GetTargetNodeName`: `spec.nodeName`, or the node a single `metadata.name` field term pins
/// the pod to.
fn target_node(pod: &Value) -> Option<String> {
    let node = meta::str_at(pod, "/spec/nodeName");
    if !node.is_empty() {
        return Some(node.to_owned());
    }
    let terms = pod
        .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?
        .as_array()?;
    if terms.len() != 1 {
        return None;
    }
    let fields = terms[0].get("matchFields")?.as_array()?;
    fields.iter().find_map(|f| {
        let values = f.get("values")?.as_array()?;
        (f.get("key")?.as_str()? == "metadata.name"
            && f.get("operator")?.as_str()? == "In"
            && values.len() == 1)
            .then(|| values[0].as_str().map(str::to_owned))?
    })
}

/// The tolerations every DaemonSet pod gets (`AddOrUpdateDaemonPodTolerations`), in upstream's
/// order; `network-unavailable` only for host-network pods.
fn daemon_tolerations(host_network: bool) -> Vec<Value> {
    let mut out = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        out.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    out.into_iter()
        .map(|(key, effect)| json!({"key": key, "operator": "Exists", "effect": effect}))
        .collect()
}

/// `AddOrUpdateTolerationInPodSpec` for each DaemonSet toleration: one with the same key,
/// operator, value and effect is replaced, others appended.
fn add_daemon_tolerations(spec: &mut Map<String, Value>) {
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    let slot = spec
        .entry("tolerations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(tolerations) = slot else {
        unreachable!()
    };
    for t in daemon_tolerations(host_network) {
        let same = |o: &Value| {
            ["key", "operator", "value", "effect"].iter().all(|k| {
                o.get(*k).and_then(Value::as_str).unwrap_or("") == t[*k].as_str().unwrap_or("")
            })
        };
        match tolerations.iter_mut().find(|o| same(o)) {
            Some(existing) => *existing = t,
            None => tolerations.push(t),
        }
    }
}

/// `ReplaceDaemonSetPodNodeNameNodeAffinity` on a copy of the pod: its required node affinity
/// becomes the single term `metadata.name In [node]`.
fn pin_to_node(pod: &Value, node: &str) -> Value {
    let mut out = pod.clone();
    let term = json!({"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [node]}]}]});
    let spec = meta::object_at(&mut out, "spec");
    let affinity = spec.entry("affinity").or_insert_with(|| json!({}));
    let node_affinity = meta::object_at(affinity, "nodeAffinity");
    match node_affinity.get_mut("requiredDuringSchedulingIgnoredDuringExecution") {
        Some(Value::Object(required)) => {
            required.insert(
                "nodeSelectorTerms".into(),
                term["nodeSelectorTerms"].clone(),
            );
        }
        _ => {
            node_affinity.insert(
                "requiredDuringSchedulingIgnoredDuringExecution".into(),
                term,
            );
        }
    }
    out
}

/// `NodeShouldRunDaemonPod`: `(shouldRun, shouldContinueRunning)` for the DaemonSet's pod on
/// `node`. A pod may start where the node name, node selector, required node affinity and
/// every `NoSchedule`/`NoExecute` taint admit it; a running pod may stay where only
/// `NoSchedule` taints are untolerated.
pub fn should_run(ds: &Value, node: &Value) -> (bool, bool) {
    let node_name = meta::name(node);
    let template_node = meta::str_at(ds, "/spec/template/spec/nodeName");
    if !template_node.is_empty() && template_node != node_name {
        return (false, false);
    }
    let spec = ds
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if !matches_node_selector(&spec, node) || !matches_required_affinity(&spec, node) {
        return (false, false);
    }
    let mut spec_map = spec.as_object().cloned().unwrap_or_default();
    add_daemon_tolerations(&mut spec_map);
    let tolerations = spec_map
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let taints = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let untolerated = |effects: &[&str]| {
        taints.iter().any(|taint| {
            effects.contains(&meta::str_at(taint, "/effect"))
                && !tolerations.iter().any(|t| tolerates(t, taint))
        })
    };
    if untolerated(&["NoSchedule", "NoExecute"]) {
        return (false, !untolerated(&["NoExecute"]));
    }
    (true, true)
}

/// `Toleration.ToleratesTaint`.
fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = meta::str_at(toleration, "/effect");
    if !effect.is_empty() && effect != meta::str_at(taint, "/effect") {
        return false;
    }
    let key = meta::str_at(toleration, "/key");
    if !key.is_empty() && key != meta::str_at(taint, "/key") {
        return false;
    }
    match meta::str_at(toleration, "/operator") {
        "Exists" => true,
        "" | "Equal" => meta::str_at(toleration, "/value") == meta::str_at(taint, "/value"),
        _ => false,
    }
}

fn matches_node_selector(spec: &Value, node: &Value) -> bool {
    let labels = meta::string_map(node, "/metadata/labels");
    meta::string_map(spec, "/nodeSelector")
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// The required node affinity: any term matches; a term needs all its expressions on labels and
/// fields, and an empty term matches nothing.
fn matches_required_affinity(spec: &Value, node: &Value) -> bool {
    let Some(terms) = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array)
    else {
        return true;
    };
    let labels = meta::string_map(node, "/metadata/labels");
    let fields = BTreeMap::from([("metadata.name".to_owned(), meta::name(node).to_owned())]);
    terms.iter().any(|term| {
        let exprs = term.get("matchExpressions").and_then(Value::as_array);
        let field_exprs = term.get("matchFields").and_then(Value::as_array);
        let count = exprs.map_or(0, Vec::len) + field_exprs.map_or(0, Vec::len);
        count > 0
            && exprs
                .into_iter()
                .flatten()
                .all(|e| requirement_matches(e, &labels))
            && field_exprs
                .into_iter()
                .flatten()
                .all(|e| requirement_matches(e, &fields))
    })
}

/// One `NodeSelectorRequirement`.
fn requirement_matches(req: &Value, values: &BTreeMap<String, String>) -> bool {
    let key = meta::str_at(req, "/key");
    let wanted: Vec<&str> = req
        .get("values")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let have = values.get(key);
    let number = |s: &str| s.parse::<i64>().ok();
    match meta::str_at(req, "/operator") {
        "In" => have.is_some_and(|v| wanted.contains(&v.as_str())),
        "NotIn" => have.is_none_or(|v| !wanted.contains(&v.as_str())),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(w)) = (
                have.and_then(|v| number(v)),
                wanted.first().and_then(|w| number(w)),
            ) else {
                return false;
            };
            if meta::str_at(req, "/operator") == "Gt" {
                v > w
            } else {
                v < w
            }
        }
        _ => false,
    }
}
