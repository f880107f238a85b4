//! Berth's object model: Kubernetes objects as data, and the rules upstream applies to them.
//!
//! Everything here is a pure function over JSON objects (`serde_json::Value`) or k8s-openapi
//! types: validation and defaulting with upstream's messages, label and field selectors,
//! strategic merge patch, and the table columns kubectl prints. The API server calls these; tests
//! drive them directly with tables of cases.
//!
//! What this crate is not: it knows no HTTP, no async runtime and no store. It never reads a
//! clock: functions that need the time (ages in tables) take it as an argument.

pub mod defaults;
pub mod field;
pub mod patch;
pub mod printers;
pub mod selectors;
pub mod validation;

/// A kind within an API group (`""` is the core group), as the rules here are keyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupKind<'a> {
    /// The API group, `""` for core.
    pub group: &'a str,
    /// The kind, e.g. `Pod`.
    pub kind: &'a str,
}

impl<'a> GroupKind<'a> {
    /// A kind of the core group.
    pub const fn core(kind: &'a str) -> Self {
        GroupKind { group: "", kind }
    }

    /// A kind of `group`.
    pub const fn new(group: &'a str, kind: &'a str) -> Self {
        GroupKind { group, kind }
    }
}
