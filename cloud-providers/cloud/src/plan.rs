//! Pure decisions that every provider makes the same way: which targets to register and
//! deregister, which listeners to create, keep or replace, and which of several resources found by
//! tag to keep. Providers run the calls; these functions decide them, so the decisions are tested
//! without a cloud.

use std::collections::BTreeSet;

use crate::ServicePort;

/// The target changes that bring a target group from `actual` to `desired`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetDiff {
    /// Targets to register, sorted.
    pub register: Vec<String>,
    /// Targets to deregister, sorted.
    pub deregister: Vec<String>,
}

impl TargetDiff {
    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.register.is_empty() && self.deregister.is_empty()
    }
}

/// Compares desired and actual targets.
pub fn diff_targets(desired: &BTreeSet<String>, actual: &BTreeSet<String>) -> TargetDiff {
    TargetDiff {
        register: desired.difference(actual).cloned().collect(),
        deregister: actual.difference(desired).cloned().collect(),
    }
}

/// A per-port resource (listener, target group, forwarding rule) that exists in the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingPort<Id> {
    /// The port it serves, as read back from the cloud.
    pub port: ServicePort,
    /// The cloud's ID of the resource.
    pub id: Id,
}

/// What to do with per-port resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPlan<Id> {
    /// Ports that need a new resource.
    pub create: Vec<ServicePort>,
    /// Resources that serve a wanted port unchanged.
    pub keep: Vec<ExistingPort<Id>>,
    /// Resources to delete: unwanted ports, a changed NodePort, or duplicates.
    pub delete: Vec<ExistingPort<Id>>,
}

/// Plans per-port resources. A resource whose port and protocol are wanted but whose NodePort
/// changed is replaced (deleted and created), since clouds cannot retarget it in place. Deletions
/// come first in [`PortPlan::delete`] so that a listener port is free before it is created again.
pub fn plan_ports<Id: Clone>(desired: &[ServicePort], actual: &[ExistingPort<Id>]) -> PortPlan<Id> {
    let mut plan = PortPlan {
        create: Vec::new(),
        keep: Vec::new(),
        delete: Vec::new(),
    };
    let mut kept = BTreeSet::new();
    for existing in actual {
        if desired.contains(&existing.port) && kept.insert(existing.port.clone()) {
            plan.keep.push(existing.clone());
        } else {
            plan.delete.push(existing.clone());
        }
    }
    let mut wanted: Vec<ServicePort> = desired.to_vec();
    wanted.sort();
    wanted.dedup();
    plan.create = wanted.into_iter().filter(|p| !kept.contains(p)).collect();
    plan
}

/// The outcome of looking a resource up by its ownership tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<Id> {
    /// None exists: create it.
    Missing,
    /// Exactly one exists: use it.
    One(Id),
    /// Several exist, left by a crash between a create and its bookkeeping on a cloud without
    /// idempotency tokens: keep the oldest, delete the others.
    Duplicates {
        /// The one to use.
        keep: Id,
        /// The ones to delete.
        extra: Vec<Id>,
    },
}

/// Chooses among resources found by tag. `candidates` pairs each ID with a sort key such as the
/// creation time; the smallest key (then the smallest ID) wins so that every caller picks the same.
pub fn select_owned<Id: Ord + Clone, K: Ord>(mut candidates: Vec<(K, Id)>) -> Found<Id> {
    candidates.sort();
    let mut ids = candidates.into_iter().map(|(_, id)| id);
    match ids.next() {
        None => Found::Missing,
        Some(keep) => {
            let extra: Vec<Id> = ids.collect();
            if extra.is_empty() {
                Found::One(keep)
            } else {
                Found::Duplicates { keep, extra }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn target_diffs() {
        type Case = (
            &'static [&'static str],
            &'static [&'static str],
            &'static [&'static str],
            &'static [&'static str],
        );
        let cases: [Case; 5] = [
            (&[], &[], &[], &[]),
            (&["a", "b"], &[], &["a", "b"], &[]),
            (&[], &["a"], &[], &["a"]),
            (&["a", "b"], &["b", "c"], &["a"], &["c"]),
            (&["a", "b"], &["a", "b"], &[], &[]),
        ];
        for (desired, actual, register, deregister) in cases {
            let d = diff_targets(&set(desired), &set(actual));
            assert_eq!(d.register, register, "{desired:?} vs {actual:?}");
            assert_eq!(d.deregister, deregister, "{desired:?} vs {actual:?}");
            assert_eq!(d.is_empty(), register.is_empty() && deregister.is_empty());
        }
    }

    fn p(port: u16, node_port: u16) -> ServicePort {
        ServicePort {
            protocol: Protocol::Tcp,
            port,
            node_port,
        }
    }

    fn e(port: u16, node_port: u16, id: &'static str) -> ExistingPort<&'static str> {
        ExistingPort {
            port: p(port, node_port),
            id,
        }
    }

    #[test]
    fn port_plans() {
        struct Case {
            name: &'static str,
            desired: Vec<ServicePort>,
            actual: Vec<ExistingPort<&'static str>>,
            create: Vec<ServicePort>,
            keep: Vec<&'static str>,
            delete: Vec<&'static str>,
        }
        let cases = [
            Case {
                name: "fresh",
                desired: vec![p(80, 30080), p(443, 30443)],
                actual: vec![],
                create: vec![p(80, 30080), p(443, 30443)],
                keep: vec![],
                delete: vec![],
            },
            Case {
                name: "converged",
                desired: vec![p(80, 30080)],
                actual: vec![e(80, 30080, "l1")],
                create: vec![],
                keep: vec!["l1"],
                delete: vec![],
            },
            Case {
                name: "port removed",
                desired: vec![p(80, 30080)],
                actual: vec![e(80, 30080, "l1"), e(443, 30443, "l2")],
                create: vec![],
                keep: vec!["l1"],
                delete: vec!["l2"],
            },
            Case {
                name: "node port changed",
                desired: vec![p(80, 30081)],
                actual: vec![e(80, 30080, "l1")],
                create: vec![p(80, 30081)],
                keep: vec![],
                delete: vec!["l1"],
            },
            Case {
                name: "duplicate listener",
                desired: vec![p(80, 30080)],
                actual: vec![e(80, 30080, "l1"), e(80, 30080, "l2")],
                create: vec![],
                keep: vec!["l1"],
                delete: vec!["l2"],
            },
            Case {
                name: "all removed",
                desired: vec![],
                actual: vec![e(80, 30080, "l1")],
                create: vec![],
                keep: vec![],
                delete: vec!["l1"],
            },
        ];
        for c in cases {
            let plan = plan_ports(&c.desired, &c.actual);
            assert_eq!(plan.create, c.create, "{}", c.name);
            assert_eq!(
                plan.keep.iter().map(|e| e.id).collect::<Vec<_>>(),
                c.keep,
                "{}",
                c.name
            );
            assert_eq!(
                plan.delete.iter().map(|e| e.id).collect::<Vec<_>>(),
                c.delete,
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn selection_keeps_the_oldest() {
        assert_eq!(select_owned::<&str, u32>(vec![]), Found::Missing);
        assert_eq!(select_owned(vec![(5, "i-1")]), Found::One("i-1"));
        assert_eq!(
            select_owned(vec![(7, "i-2"), (5, "i-3"), (9, "i-1")]),
            Found::Duplicates {
                keep: "i-3",
                extra: vec!["i-2", "i-1"]
            }
        );
        // Equal keys fall back to the ID, so two controllers pick the same.
        assert_eq!(
            select_owned(vec![(1, "i-b"), (1, "i-a")]),
            Found::Duplicates {
                keep: "i-a",
                extra: vec!["i-b"]
            }
        );
    }
}
