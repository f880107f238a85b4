//! Store errors.
//!
//! Errors split in three groups, which callers treat differently: a request the store refuses
//! ([`StoreError::is_invalid`]), a condition that may pass if the request is retried
//! ([`StoreError::is_retryable`]), and a fault of the store itself.

use crate::types::Revision;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The revision asked for has been compacted away. The API server answers 410 Gone.
    #[error("required revision {requested} has been compacted (compacted up to {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// Revisions below this one are gone.
        compacted: Revision,
    },
    /// The revision asked for is newer than the store's current revision.
    #[error("required revision {requested} is a future revision (current {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// A value is larger than the configured limit.
    #[error("value of {size} bytes exceeds the limit of {limit} bytes")]
    ValueTooLarge {
        /// Size of the value.
        size: usize,
        /// Largest value accepted.
        limit: usize,
    },
    /// A key is empty or too long.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A transaction writes the same key twice.
    #[error("duplicate key given in txn request: {0:?}")]
    DuplicateKey(String),
    /// The store cannot serve the request now (no leader, no quorum, shutting down); retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Reading or writing the data directory failed.
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The data directory holds data this store cannot read (corruption or a foreign format).
    #[error("data directory is corrupt or foreign: {0}")]
    Corrupt(String),
    /// A fault inside the store that is not the caller's.
    #[error("internal store error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Whether the request itself was at fault, so retrying it unchanged fails again.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            StoreError::ValueTooLarge { .. }
                | StoreError::InvalidKey(_)
                | StoreError::DuplicateKey(_)
                | StoreError::FutureRevision { .. }
                | StoreError::Compacted { .. }
        )
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
