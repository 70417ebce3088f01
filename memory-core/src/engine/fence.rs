//! The cache fence: stops a read that raced a write from putting an out-of-date episode back
//! into the cache.
//!
//! A read that misses the cache reads the durable store and then fills the cache. If a delete,
//! update, reopen or invalidation of the same episode commits in between, the fill would
//! resurrect what the writer just removed. Every writer therefore *advances* the episode's
//! epoch after its durable commit and before touching the cache; a reader takes a *ticket*
//! (the epoch) before its durable read and, after its fill, drops the entry again if the epoch
//! moved. Either the writer's cache action comes after the reader's fill (and wins), or the
//! reader sees the moved epoch (and undoes its fill).
//!
//! Epochs live in a fixed array of stripes indexed by a hash of the id, so memory is bounded
//! whatever the number of episodes; two ids sharing a stripe only cost a needless
//! invalidation.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::id::EpisodeId;

/// Number of stripes: a power of two.
const STRIPES: usize = 1024;

/// Per-episode (striped) write epochs.
pub(crate) struct CacheFence {
    stripes: Box<[AtomicU64]>,
}

/// An episode's epoch when a read began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

impl Default for CacheFence {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl CacheFence {
    fn stripe(&self, id: EpisodeId) -> &AtomicU64 {
        // The low bytes of a v7 id are random: a good spread without hashing.
        let b = id.to_bytes();
        let low = u16::from_be_bytes([b[14], b[15]]) as usize;
        &self.stripes[low % STRIPES]
    }

    /// Take before reading the durable store.
    pub(crate) fn ticket(&self, id: EpisodeId) -> Ticket {
        Ticket(self.stripe(id).load(Ordering::SeqCst))
    }

    /// Call after a durable write of `id` commits, before changing its cache entry.
    pub(crate) fn advance(&self, id: EpisodeId) {
        self.stripe(id).fetch_add(1, Ordering::SeqCst);
    }

    /// Whether no write of `id` (or of an id sharing its stripe) committed since `ticket`.
    pub(crate) fn unchanged(&self, id: EpisodeId, ticket: Ticket) -> bool {
        self.ticket(id) == ticket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_after_the_ticket_is_seen_and_others_are_not() {
        let fence = CacheFence::default();
        let a = EpisodeId::new();
        let t = fence.ticket(a);
        assert!(fence.unchanged(a, t));
        fence.advance(a);
        assert!(!fence.unchanged(a, t));
        let t2 = fence.ticket(a);
        // An id in another stripe does not disturb `a`.
        let other = std::iter::repeat_with(EpisodeId::new)
            .find(|b| !std::ptr::eq(fence.stripe(*b), fence.stripe(a)))
            .unwrap();
        fence.advance(other);
        assert!(fence.unchanged(a, t2));
    }
}
