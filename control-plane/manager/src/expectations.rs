//! Upstream's controller expectations: after a sync asks for N creations, the controller does
//! not sync that owner again until the informer has shown it those N pods (or five minutes
//! pass), so it never acts twice on a cache that has not caught up with its own writes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use runtime::Key;

/// How long expectations hold before the controller syncs regardless.
const TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Expected {
    adds: i64,
    deletes: i64,
    at: Instant,
}

/// Outstanding creations and deletions per owner.
#[derive(Debug, Default)]
pub(crate) struct Expectations {
    map: Mutex<HashMap<Key, Expected>>,
}

impl Expectations {
    /// Records that a sync of `key` is about to create `adds` and delete `deletes` objects.
    pub(crate) fn expect(&self, key: &Key, adds: i64, deletes: i64) {
        self.map.lock().insert(
            key.clone(),
            Expected {
                adds,
                deletes,
                at: Instant::now(),
            },
        );
    }

    /// An expected creation was observed (or will never happen).
    pub(crate) fn creation_observed(&self, key: &Key) {
        if let Some(e) = self.map.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// An expected deletion was observed (or will never happen).
    pub(crate) fn deletion_observed(&self, key: &Key) {
        if let Some(e) = self.map.lock().get_mut(key) {
            e.deletes -= 1;
        }
    }

    /// Whether `key` may sync: nothing outstanding, or the expectations expired.
    pub(crate) fn satisfied(&self, key: &Key) -> bool {
        match self.map.lock().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.deletes <= 0) || e.at.elapsed() > TTL,
        }
    }

    /// Forgets `key` (its owner is gone).
    pub(crate) fn forget(&self, key: &Key) {
        self.map.lock().remove(key);
    }
}
