//! Runtime feature switches for retrieval, flipped without a rebuild.
//!
//! Owns [`RetrievalFlags`]: three atomics shared (in an `Arc`) between whoever operates the
//! engine and every query, read once at the start of each query. Turning a flag off selects a
//! simpler path over the same data; it must never change which episodes qualify, and the index
//! structures stay maintained whatever the flags say, so turning a flag back on is immediate.

use std::sync::atomic::{AtomicBool, Ordering};

/// One runtime switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetrievalFlag {
    /// Walk the hierarchy (domain shard → task-type partition → R-tree / temporal clusters)
    /// instead of scanning every episode of the namespace. Default on. Results are the same
    /// either way: the hierarchy only skips what provably cannot rank.
    HierarchicalIndex,
    /// Re-rank the best candidates with maximal marginal relevance so near-duplicates do not
    /// fill the result. Default on.
    Diversity,
    /// Within the hierarchy, visit temporal clusters best-bound first and skip clusters whose
    /// score bound cannot reach the current top-k. Default on.
    TemporalClustering,
}

/// The value of every flag at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagValues {
    /// See [`RetrievalFlag::HierarchicalIndex`].
    pub hierarchical_index: bool,
    /// See [`RetrievalFlag::Diversity`].
    pub diversity: bool,
    /// See [`RetrievalFlag::TemporalClustering`].
    pub temporal_clustering: bool,
}

impl Default for FlagValues {
    fn default() -> Self {
        Self {
            hierarchical_index: true,
            diversity: true,
            temporal_clustering: true,
        }
    }
}

/// The runtime switches; share one `Arc<RetrievalFlags>` between the operator and retrievers.
#[derive(Debug)]
pub struct RetrievalFlags {
    hierarchical_index: AtomicBool,
    diversity: AtomicBool,
    temporal_clustering: AtomicBool,
}

impl Default for RetrievalFlags {
    fn default() -> Self {
        Self::from(FlagValues::default())
    }
}

impl From<FlagValues> for RetrievalFlags {
    fn from(v: FlagValues) -> Self {
        Self {
            hierarchical_index: AtomicBool::new(v.hierarchical_index),
            diversity: AtomicBool::new(v.diversity),
            temporal_clustering: AtomicBool::new(v.temporal_clustering),
        }
    }
}

impl RetrievalFlags {
    fn cell(&self, flag: RetrievalFlag) -> &AtomicBool {
        match flag {
            RetrievalFlag::HierarchicalIndex => &self.hierarchical_index,
            RetrievalFlag::Diversity => &self.diversity,
            RetrievalFlag::TemporalClustering => &self.temporal_clustering,
        }
    }

    /// Turn `flag` on; queries starting after this see it.
    pub fn enable(&self, flag: RetrievalFlag) {
        self.cell(flag).store(true, Ordering::Relaxed);
    }

    /// Turn `flag` off; queries starting after this see it.
    pub fn disable(&self, flag: RetrievalFlag) {
        self.cell(flag).store(false, Ordering::Relaxed);
    }

    /// Whether `flag` is on.
    pub fn is_enabled(&self, flag: RetrievalFlag) -> bool {
        self.cell(flag).load(Ordering::Relaxed)
    }

    /// Set every flag at once.
    pub fn apply(&self, values: FlagValues) {
        self.hierarchical_index
            .store(values.hierarchical_index, Ordering::Relaxed);
        self.diversity.store(values.diversity, Ordering::Relaxed);
        self.temporal_clustering
            .store(values.temporal_clustering, Ordering::Relaxed);
    }

    /// Every flag's value now.
    pub fn snapshot(&self) -> FlagValues {
        FlagValues {
            hierarchical_index: self.hierarchical_index.load(Ordering::Relaxed),
            diversity: self.diversity.load(Ordering::Relaxed),
            temporal_clustering: self.temporal_clustering.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_switch_at_runtime() {
        let f = RetrievalFlags::default();
        assert_eq!(f.snapshot(), FlagValues::default());
        f.disable(RetrievalFlag::Diversity);
        assert!(!f.is_enabled(RetrievalFlag::Diversity));
        assert!(f.is_enabled(RetrievalFlag::HierarchicalIndex));
        f.enable(RetrievalFlag::Diversity);
        assert!(f.snapshot().diversity);
        f.apply(FlagValues {
            hierarchical_index: false,
            diversity: false,
            temporal_clustering: false,
        });
        assert!(!f.is_enabled(RetrievalFlag::TemporalClustering));
    }
}
