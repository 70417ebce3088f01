//! One shard as a query sees it while holding the shard's read lock.
//!
//! Owns [`ShardVisit`]: the shard, its compiled filter, the query's term ids in this shard, and
//! the scorer, plus the single place where an episode that passed the filter is scored and
//! offered to the top-k. Both paths (flat and hierarchical) go through it, so they score
//! identically. This module must never decide which episodes are visited.

use crate::index::{IndexedEpisode, Shard, Slot, Sym};

use super::filter::ShardFilter;
use super::scorer::Scorer;
use super::topk::{Candidate, TopK};

/// A read-locked shard, ready to be searched.
#[derive(Debug)]
pub(crate) struct ShardVisit<'a> {
    pub(crate) shard: &'a Shard,
    /// Position of the shard in the query's shard list.
    pub(crate) shard_no: usize,
    pub(crate) filter: &'a ShardFilter<'a>,
    pub(crate) scorer: &'a Scorer,
    /// The query terms' ids in this shard.
    pub(crate) syms: &'a [Option<Sym>],
}

impl ShardVisit<'_> {
    /// Filter, score and offer the episode at `slot`.
    pub(crate) fn consider(&self, slot: Slot, doc: &IndexedEpisode, top: &mut TopK) {
        if !self.filter.matches(doc) {
            return;
        }
        let breakdown = self.scorer.score(doc, self.syms);
        top.offer(Candidate {
            id: doc.id,
            version: doc.version,
            score: breakdown.total(),
            breakdown,
            shard: self.shard_no,
            slot,
        });
    }
}
