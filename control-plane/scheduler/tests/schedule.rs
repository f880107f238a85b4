//! Whole decisions: FitError messages, scoring order, preemption, and the snapshot's aggregates.

mod common;

use std::sync::Arc;

use common::*;
use scheduler::{Outcome, ScheduleError, Scheduler, score};
use serde_json::{Value, json};

fn taint(n: Value, key: &str, value: &str, effect: &str) -> Value {
    with(
        n,
        "/spec/taints",
        json!([{"key": key, "value": value, "effect": effect}]),
    )
}

fn message(s: &scheduler::Snapshot, pod: &Value) -> String {
    match Scheduler::default().schedule_or_preempt(&info(pod), s) {
        Outcome::Unschedulable(e) => e.to_string(),
        other => panic!("expected failure, got {other:?}"),
    }
}

#[test]
fn fit_error_messages() {
    // The example from the brief: a tainted control plane and two full workers.
    let mut s = snapshot(&[
        taint(
            node("cp", "4", "8Gi", 110),
            "node-role.kubernetes.io/control-plane",
            "",
            "NoSchedule",
        ),
        node("w1", "2", "4Gi", 110),
        node("w2", "2", "4Gi", 110),
    ]);
    bind(&mut s, &pod("a", Some("1500m"), None), "w1");
    bind(&mut s, &pod("b", Some("1500m"), None), "w2");
    assert_eq!(
        message(&s, &pod("p", Some("1"), None)),
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
         2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, \
         2 No preemption victims found for incoming pod."
    );

    // Nothing can be preempted anywhere: every node is unresolvable.
    let s = snapshot(&[
        taint(
            node("n1", "2", "4Gi", 110),
            "node.kubernetes.io/unreachable",
            "",
            "NoExecute",
        ),
        label(node("n2", "2", "4Gi", 110), "zone", "b"),
    ]);
    let p = with(
        pod("p", None, None),
        "/spec/nodeSelector",
        json!({"zone": "a"}),
    );
    assert_eq!(
        message(&s, &p),
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
         1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. preemption: 0/2 nodes are available: \
         2 Preemption is not helpful for scheduling."
    );

    // Counts sort as strings, as upstream's sort.Strings does: "10 ..." before "2 ...".
    let mut nodes: Vec<Value> = (0..10)
        .map(|i| node(&format!("c{i}"), "1", "1Gi", 110))
        .collect();
    nodes.push(with(
        node("u1", "8", "8Gi", 110),
        "/spec/unschedulable",
        json!(true),
    ));
    nodes.push(with(
        node("u2", "8", "8Gi", 110),
        "/spec/unschedulable",
        json!(true),
    ));
    let s = snapshot(&nodes);
    assert_eq!(
        message(
            &s,
            &with(
                pod("p", Some("2"), None),
                "/spec/preemptionPolicy",
                json!("Never")
            )
        ),
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable. \
         preemption: not eligible due to preemptionPolicy=Never."
    );

    // A DaemonSet-style pod pinned by matchFields to a full node.
    let mut s = snapshot(&[
        node("n1", "1", "1Gi", 110),
        node("n2", "1", "1Gi", 110),
        node("n3", "1", "1Gi", 110),
    ]);
    bind(&mut s, &pod("a", Some("1"), None), "n1");
    let ds = with(
        pod("ds", Some("100m"), None),
        "/spec/affinity",
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
        ]}}}),
    );
    assert_eq!(
        message(&s, &ds),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
         preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
         2 Preemption is not helpful for scheduling."
    );

    // Conflicting name terms fail in PreFilter; the message replaces the histogram.
    let conflict = with(
        pod("c", None, None),
        "/spec/affinity",
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]},
                             {"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
        ]}}}),
    );
    assert_eq!(
        message(&s, &conflict),
        "0/3 nodes are available: pod affinity terms conflict. preemption: 0/3 nodes are available: \
         3 Preemption is not helpful for scheduling."
    );

    assert_eq!(
        Scheduler::default().schedule(&info(&pod("p", None, None)), &snapshot(&[])),
        Err(ScheduleError::NoNodes)
    );
}

#[test]
fn scoring_prefers_least_allocated_then_taints_and_affinity() {
    let mut s = snapshot(&[node("busy", "4", "8Gi", 110), node("idle", "4", "8Gi", 110)]);
    bind(&mut s, &pod("a", Some("3"), Some("6Gi")), "busy");
    let p = info(&pod("p", Some("500m"), Some("1Gi")));
    let ranked = score(&p, &["busy", "idle"], &s);
    assert_eq!(ranked[0].0, "idle");
    assert_eq!(Scheduler::default().schedule(&p, &s).unwrap(), "idle");

    // PreferNoSchedule costs 3 × 100 and outweighs the resource difference.
    let mut s = snapshot(&[
        taint(node("soft", "4", "8Gi", 110), "k", "v", "PreferNoSchedule"),
        node("busy", "4", "8Gi", 110),
    ]);
    bind(&mut s, &pod("a", Some("2"), Some("4Gi")), "busy");
    assert_eq!(Scheduler::default().schedule(&p, &s).unwrap(), "busy");

    // Preferred node affinity.
    let s = snapshot(&[
        node("a", "4", "8Gi", 110),
        label(node("b", "4", "8Gi", 110), "disk", "ssd"),
    ]);
    let pref = with(
        pod("p", None, None),
        "/spec/affinity",
        json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}
        ]}}),
    );
    assert_eq!(
        Scheduler::default().schedule(&info(&pref), &s).unwrap(),
        "b"
    );

    // Preferred pod anti-affinity pushes replicas apart; preferred affinity pulls them together.
    let mut s = snapshot(&[node("a", "4", "8Gi", 110), node("b", "4", "8Gi", 110)]);
    bind(&mut s, &label(pod("w", None, None), "app", "web"), "a");
    let term = json!({"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}});
    let away = with(
        pod("p", None, None),
        "/spec/affinity",
        json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term.clone()]}}),
    );
    let near = with(
        pod("p", None, None),
        "/spec/affinity",
        json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term]}}),
    );
    assert_eq!(
        Scheduler::default().schedule(&info(&away), &s).unwrap(),
        "b"
    );
    assert_eq!(
        Scheduler::default().schedule(&info(&near), &s).unwrap(),
        "a"
    );

    // ScheduleAnyway spreading picks the emptier zone.
    let mut s = snapshot(&[
        label(node("a", "4", "8Gi", 110), "zone", "1"),
        label(node("b", "4", "8Gi", 110), "zone", "2"),
    ]);
    bind(&mut s, &label(pod("w", None, None), "app", "web"), "a");
    let spread = with(
        label(pod("p", None, None), "app", "web"),
        "/spec/topologySpreadConstraints",
        json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}]),
    );
    assert_eq!(
        Scheduler::default().schedule(&info(&spread), &s).unwrap(),
        "b"
    );
}

#[test]
fn ties_are_deterministic() {
    let s = snapshot(&[
        node("a", "4", "8Gi", 110),
        node("b", "4", "8Gi", 110),
        node("c", "4", "8Gi", 110),
    ]);
    let p = info(&pod("p", Some("1"), None));
    // Seed 0: the first best node in evaluation order; the start index rotates per decision.
    let mut sched = Scheduler::new(0);
    let picks: Vec<String> = (0..3).map(|_| sched.schedule(&p, &s).unwrap()).collect();
    assert_eq!(picks, ["a", "a", "a"]);
    let mut a = Scheduler::new(42);
    let mut b = Scheduler::new(42);
    for _ in 0..10 {
        assert_eq!(a.schedule(&p, &s), b.schedule(&p, &s));
    }
}

#[test]
fn assume_updates_aggregates_incrementally() {
    let mut s = snapshot(&[node("n1", "2", "4Gi", 3)]);
    let mut sched = Scheduler::default();
    let p = with(
        pod("p", Some("600m"), Some("1Gi")),
        "/spec/containers/0/ports",
        json!([{"containerPort": 1, "hostPort": 9000}]),
    );
    let first = info(&p);
    assert_eq!(sched.schedule(&first, &s).unwrap(), "n1");
    s.assume(Arc::new(first.clone()), "n1").unwrap();
    let n = s.node("n1").unwrap();
    assert_eq!(n.requested.milli_cpu, 600);
    assert_eq!(n.requested.memory, 1 << 30);
    assert_eq!(n.pods.len(), 1);
    assert_eq!(n.used_ports.len(), 1);
    // The same host port no longer fits.
    let again = info(&with(p.clone(), "/metadata/name", json!("q")));
    assert_eq!(
        sched.schedule(&again, &s).unwrap_err().to_string(),
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
    );
    // Removing the assumed pod restores every aggregate.
    s.remove_pod("n1", "default", "p").unwrap();
    let n = s.node("n1").unwrap();
    assert_eq!(
        (
            n.requested.milli_cpu,
            n.requested.memory,
            n.pods.len(),
            n.used_ports.len()
        ),
        (0, 0, 0, 0)
    );
    // Fill by pod count.
    for i in 0..3 {
        let q = info(&pod(&format!("x{i}"), Some("100m"), None));
        let node = sched.schedule(&q, &s).unwrap();
        s.assume(Arc::new(q), &node).unwrap();
    }
    assert_eq!(
        sched
            .schedule(&info(&pod("y", None, None)), &s)
            .unwrap_err()
            .to_string(),
        "0/1 nodes are available: 1 Too many pods."
    );
    // Non-zero defaults are tracked for pods without requests.
    assert_eq!(s.node("n1").unwrap().non_zero_memory, 3 * 200 * 1024 * 1024);
}

fn prio(v: Value, p: i64) -> Value {
    with(v, "/spec/priority", json!(p))
}

#[test]
fn preemption_picks_minimal_lowest_priority_victims() {
    let mut s = snapshot(&[node("n1", "4", "8Gi", 110), node("n2", "4", "8Gi", 110)]);
    // n1: two low pods of 1 cpu and a 2-cpu middle one; n2: one high-priority 3-cpu pod.
    bind(&mut s, &prio(pod("low1", Some("1"), None), 1), "n1");
    bind(&mut s, &prio(pod("low2", Some("1"), None), 1), "n1");
    bind(&mut s, &prio(pod("mid", Some("2"), None), 5), "n1");
    bind(&mut s, &prio(pod("high", Some("3"), None), 100), "n2");
    let p = info(&prio(pod("p", Some("2"), None), 10));
    match Scheduler::default().schedule_or_preempt(&p, &s) {
        Outcome::Preempt(fit, pre) => {
            assert_eq!(
                fit.to_string(),
                "0/2 nodes are available: 2 Insufficient cpu."
            );
            assert_eq!(pre.node, "n1");
            let mut names: Vec<&str> = pre.victims.iter().map(|v| v.name.as_str()).collect();
            names.sort();
            // Evicting both 1-cpu pods (highest victim priority 1) beats evicting `mid` (5).
            assert_eq!(names, ["low1", "low2"]);
        }
        other => panic!("{other:?}"),
    }

    // A PodDisruptionBudget steers preemption to the other node.
    let mut s = snapshot(&[node("n1", "2", "8Gi", 110), node("n2", "2", "8Gi", 110)]);
    bind(
        &mut s,
        &prio(label(pod("guarded", Some("2"), None), "app", "db"), 1),
        "n1",
    );
    bind(&mut s, &prio(pod("other", Some("2"), None), 2), "n2");
    s.budgets.push(
        scheduler::DisruptionBudget::from_api(&json!({
            "metadata": {"namespace": "default", "name": "db"},
            "spec": {"selector": {"matchLabels": {"app": "db"}}},
            "status": {"disruptionsAllowed": 0}
        }))
        .unwrap(),
    );
    match Scheduler::default().schedule_or_preempt(&info(&prio(pod("p", Some("1"), None), 10)), &s)
    {
        Outcome::Preempt(_, pre) => {
            assert_eq!(pre.node, "n2");
            assert_eq!(pre.pdb_violations, 0);
        }
        other => panic!("{other:?}"),
    }

    // Evicting everything lower still does not help: the filter's own reason is reported.
    let mut s = snapshot(&[node("n1", "2", "8Gi", 110)]);
    bind(&mut s, &prio(pod("a", Some("1"), None), 1), "n1");
    bind(&mut s, &prio(pod("b", Some("1"), None), 100), "n1");
    assert_eq!(
        message(&s, &prio(pod("p", Some("2"), None), 10)),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Insufficient cpu."
    );

    // Existing anti-affinity is lifted by evicting the lower-priority pod that carries it.
    let mut s = snapshot(&[node("n1", "2", "8Gi", 110)]);
    bind(
        &mut s,
        &prio(
            with(
                pod("e", None, None),
                "/spec/affinity",
                json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
                ]}}),
            ),
            1,
        ),
        "n1",
    );
    match Scheduler::default().schedule_or_preempt(
        &info(&prio(label(pod("p", None, None), "app", "web"), 10)),
        &s,
    ) {
        Outcome::Preempt(fit, pre) => {
            assert_eq!(
                fit.to_string(),
                "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules."
            );
            assert_eq!(pre.victims.len(), 1);
        }
        other => panic!("{other:?}"),
    }
}
