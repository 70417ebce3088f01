//! Repairs owed after a failed compensation or cache invalidation, kept until the reconciler
//! has made the episode's cache entry and index entry agree with the durable store again.
//!
//! Recording never fails and never drops: the set holds one entry per episode (bounded by the
//! episodes that had such a failure) and an entry leaves only when its repair succeeded. While
//! an episode has a pending repair, reads skip its cache entry, so a stale entry that could not
//! be invalidated is never served.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::id::EpisodeId;

/// Why an episode needs a repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RepairReason {
    /// A cache write or invalidation failed: the cache may hold a wrong entry.
    Cache,
    /// Undoing a durable write failed: the index may disagree with the durable store.
    Compensation,
}

/// A pending repair as [`RepairLog::snapshot`] hands it out; pass it back to
/// [`RepairLog::resolve`] once repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owed {
    pub(crate) id: EpisodeId,
    pub(crate) reason: RepairReason,
    /// Which `record` call this is; a later `record` of the same id makes a newer one.
    generation: u64,
}

/// The pending repairs.
#[derive(Default)]
pub(crate) struct RepairLog {
    pending: Mutex<HashMap<EpisodeId, Owed>>,
    /// `pending.len()`, readable without the lock (the read path's fast check).
    len: AtomicUsize,
    /// Generations for `record` calls.
    generations: AtomicU64,
}

impl RepairLog {
    /// Record that `id` needs a repair.
    pub(crate) fn record(&self, id: EpisodeId, reason: RepairReason) {
        tracing::warn!(episode_id = %id, ?reason, "repair recorded for the reconciler");
        let generation = self.generations.fetch_add(1, Ordering::SeqCst);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        // A compensation repair outranks a cache one: it also re-checks the index.
        let reason = match pending.get(&id) {
            Some(o) if o.reason == RepairReason::Compensation => o.reason,
            _ => reason,
        };
        pending.insert(
            id,
            Owed {
                id,
                reason,
                generation,
            },
        );
        self.len.store(pending.len(), Ordering::SeqCst);
    }

    /// Whether `id` has a pending repair (its cache entry must not be trusted).
    pub(crate) fn is_pending(&self, id: EpisodeId) -> bool {
        self.len.load(Ordering::SeqCst) > 0
            && self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&id)
    }

    /// The pending repairs, in id order.
    pub(crate) fn snapshot(&self) -> Vec<Owed> {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut owed: Vec<Owed> = pending.values().copied().collect();
        owed.sort_by_key(|o| o.id);
        owed
    }

    /// Mark a repair from [`RepairLog::snapshot`] done. If the episode was recorded again
    /// since (a newer failure the repair may have missed), the newer record stays.
    pub(crate) fn resolve(&self, owed: Owed) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.get(&owed.id) == Some(&owed) {
            pending.remove(&owed.id);
        }
        self.len.store(pending.len(), Ordering::SeqCst);
    }

    /// Repairs recorded since the engine opened (a repeated record of one episode counts
    /// each time).
    pub(crate) fn recorded(&self) -> u64 {
        self.generations.load(Ordering::SeqCst)
    }

    /// Pending repairs now.
    pub(crate) fn pending(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_made_during_a_repair_survives_its_resolve() {
        let log = RepairLog::default();
        let id = EpisodeId::new();
        assert!(!log.is_pending(id));
        log.record(id, RepairReason::Cache);
        let owed = log.snapshot();
        assert_eq!(owed.len(), 1);
        assert!(log.is_pending(id));
        log.record(id, RepairReason::Cache); // a new failure while repairing
        log.resolve(owed[0]);
        assert!(log.is_pending(id), "the newer record is kept");
        log.resolve(log.snapshot()[0]);
        assert!(!log.is_pending(id));
        assert_eq!(log.pending(), 0);
    }

    #[test]
    fn a_compensation_repair_is_not_downgraded() {
        let log = RepairLog::default();
        let id = EpisodeId::new();
        log.record(id, RepairReason::Compensation);
        log.record(id, RepairReason::Cache);
        assert_eq!(log.snapshot()[0].reason, RepairReason::Compensation);
    }
}
