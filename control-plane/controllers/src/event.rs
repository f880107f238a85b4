//! Events a controller core asks its loop to record, worded as kube-controller-manager words
//! them.

/// `Normal` or `Warning`, as `core/v1` Events spell their `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// An expected step (`SuccessfulCreate`, `Completed`).
    Normal,
    /// Something a person should look at (`BackoffLimitExceeded`, `UnparseableSchedule`).
    Warning,
}

impl EventType {
    /// The `type` field of the Event.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One Event about the reconciled object (the Event's `involvedObject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// The machine-readable reason, e.g. `SuccessfulCreate`.
    pub reason: String,
    /// The human-readable message, e.g. `Created job hello-28912345`.
    pub message: String,
}

impl Event {
    /// A `Normal` event.
    pub fn normal(reason: &str, message: impl Into<String>) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    /// A `Warning` event.
    pub fn warning(reason: &str, message: impl Into<String>) -> Event {
        Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}
