//! One shard as a query sees it while holding the shard's read lock.
//!
//! Owns [`ShardVisit`]: the shard, its compiled filter, the query's term ids in this shard, and
//! the scorer, plus the single place where an episode that passed the filter is scored and
//! offered to the top-k. Both paths (flat and hierarchical) go through it, so they score
//! identically. This module must never decide which episodes are visited.

use crate::index::{Doc, Shard, Slot};

use super::filter::ShardFilter;
use super::scorer::{Hit, Resolved, Scorer};
use super::topk::{Candidate, TopK};

/// A read-locked shard, ready to be searched.
#[derive(Debug)]
pub(crate) struct ShardVisit<'a> {
    pub(crate) shard: &'a Shard,
    /// Position of the shard in the query's shard list.
    pub(crate) shard_no: usize,
    pub(crate) filter: &'a ShardFilter<'a>,
    pub(crate) scorer: &'a Scorer,
    /// The query terms resolved in this shard.
    pub(crate) resolved: &'a Resolved<'a>,
}

impl ShardVisit<'_> {
    /// Filter, score and offer the episode at `slot`; `rest`, when known, bounds what its
    /// non-lexical terms can add (then a quick bound may skip it before scoring).
    pub(crate) fn consider(&self, slot: Slot, doc: Doc<'_>, top: &mut TopK, rest: Option<f64>) {
        if !self.filter.matches(doc) {
            return;
        }
        let threshold = top.threshold();
        if let (Some(rest), Some(t)) = (rest, threshold)
            && super::hierarchical::below(
                self.scorer.quick_bound(self.resolved, doc.terms(), rest),
                t,
            )
        {
            return;
        }
        self.resolved
            .hits_of(doc, slot, |hits| self.offer(slot, doc, hits, top));
    }

    /// Score and offer the episode at `slot`, which passed the filter and holds the query
    /// terms `hits` (all of them, by query term index).
    pub(crate) fn offer(&self, slot: Slot, doc: Doc<'_>, hits: &[Hit], top: &mut TopK) {
        // An episode that cannot reach the current k-th score is not scored in full (its
        // exact score would be rejected by the top-k anyway).
        let len = &self.shard.field_len(slot);
        let Some(breakdown) =
            self.scorer
                .score_above(doc, len, hits, top.threshold(), super::hierarchical::below)
        else {
            return;
        };
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
