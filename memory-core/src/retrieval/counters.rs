//! How queries were answered: hierarchical, flat, or hierarchical with a flat fallback.
//!
//! Owns the counters behind [`RetrievalCounts`]. Each query that returns is counted exactly
//! once, in one of the three. This module must never influence how a query runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many queries took each path. `hierarchical + flat + fallback` is the number of
/// queries answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetrievalCounts {
    /// Answered by the hierarchical path alone.
    pub hierarchical: u64,
    /// Answered by the flat path because the `hierarchical_index` flag was off.
    pub flat: u64,
    /// Hierarchical first, which yielded fewer hits than the limit, then flat within the
    /// namespace.
    pub fallback: u64,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    hierarchical: AtomicU64,
    flat: AtomicU64,
    fallback: AtomicU64,
}

/// Which path answered a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathTaken {
    Hierarchical,
    Flat,
    Fallback,
}

impl Counters {
    /// Count one query.
    pub(crate) fn record(&self, path: PathTaken) {
        let c = match path {
            PathTaken::Hierarchical => &self.hierarchical,
            PathTaken::Flat => &self.flat,
            PathTaken::Fallback => &self.fallback,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> RetrievalCounts {
        RetrievalCounts {
            hierarchical: self.hierarchical.load(Ordering::Relaxed),
            flat: self.flat.load(Ordering::Relaxed),
            fallback: self.fallback.load(Ordering::Relaxed),
        }
    }
}
