//! The lexical access path of a shard: its posting lists, best bound first.
//!
//! Owns the walk over the posting lists of the query terms a shard holds. Each list carries a
//! bound of what its term can add to a score (`Resolved::bounds`: `Scorer::term_bound` on the
//! largest frequencies and shortest lengths of the list's documents). One pass over the lists sums,
//! per member, the bounds of the lists holding it; members are then taken best sum first,
//! and the first whose sum plus the bound of the non-lexical terms is below the k-th score
//! ends the walk, since no member after it can rank. Every member taken is filtered and scored
//! exactly as on every other path (`ShardVisit::consider`), so the path changes which
//! documents are looked at, never a score. A document holding no query term is never met
//! here: the caller walks the partitions' clusters for those when [`Outcome::rest_may_rank`]
//! says they still could. This module must never skip a document whose bound reaches the
//! threshold.

use std::collections::BinaryHeap;

use crate::index::{Partition, Slot, TimeRewardBox};

use super::hierarchical::below;
use super::topk::TopK;
use super::visit::ShardVisit;

/// What the walk found out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Documents taken from the lists and filtered (and scored, unless bounded out).
    pub(crate) candidates: usize,
    /// A document holding none of the query terms could still enter the top-k: the top-k is
    /// not full, or the non-lexical bound reaches its threshold.
    pub(crate) rest_may_rank: bool,
}

/// The posting lists of `visit`'s query terms with their bounds.
fn lists<'s>(visit: &ShardVisit<'s>) -> Vec<(f64, &'s [Slot])> {
    visit
        .resolved
        .syms
        .iter()
        .zip(&visit.resolved.bounds)
        .filter_map(|(sym, bound)| {
            let list = visit.shard.postings((*sym)?)?;
            (*bound > 0.0).then_some((*bound, list.slots.as_slice()))
        })
        .collect()
}

/// How many postings the walk reads: the work it costs.
pub(crate) fn work(visit: &ShardVisit<'_>) -> usize {
    lists(visit).iter().map(|(_, slots)| slots.len()).sum()
}

/// How many members of `p` the clusters meeting box `b` hold: the work a cluster walk costs
/// at most.
pub(crate) fn box_work(p: &Partition, b: &TimeRewardBox, bucket_width: i64) -> usize {
    p.clusters()
        .filter(|(bucket, c)| {
            let (from, to) = crate::index::bucket_span(*bucket, bucket_width);
            b.within(from, to).is_some() && c.max_reward >= b.min_reward
        })
        .map(|(_, c)| c.members as usize)
        .sum()
}

/// Per-slot sums reused across the partitions and shards of one query: all zero between uses.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    sums: Vec<f64>,
}

/// Offer to `top` every member of `partitions` (of `visit`'s shard) holding a query term that
/// can still rank.
pub(crate) fn collect(
    visit: &ShardVisit<'_>,
    partitions: &[&Partition],
    top: &mut TopK,
    scratch: &mut Scratch,
) -> Outcome {
    let lists = lists(visit);
    let rest = partitions
        .iter()
        .flat_map(|p| p.clusters())
        .map(|(_, c)| visit.scorer.cluster_rest(c))
        .fold(0.0, f64::max);
    let sums = &mut scratch.sums;
    if sums.len() < visit.shard.slot_bound() {
        sums.resize(visit.shard.slot_bound(), 0.0);
    }
    let mut touched: Vec<Slot> = Vec::new();
    for (bound, slots) in &lists {
        for &slot in *slots {
            let sum = &mut sums[slot as usize];
            if *sum == 0.0 {
                touched.push(slot);
            }
            *sum += bound;
        }
    }
    // Bounds are positive, so their bits order like their values.
    let mut order: BinaryHeap<(u64, Slot)> = touched
        .iter()
        .map(|&slot| {
            let bits = sums[slot as usize].to_bits();
            sums[slot as usize] = 0.0;
            (bits, slot)
        })
        .collect();
    let mut outcome = Outcome::default();
    while let Some((bits, slot)) = order.pop() {
        if let Some(t) = top.threshold()
            && below(rest + f64::from_bits(bits), t)
        {
            // Every member left has a bound at most this one.
            break;
        }
        if let Some(doc) = visit.shard.doc(slot) {
            outcome.candidates += 1;
            visit.consider(slot, doc, top, None);
        }
    }
    outcome.rest_may_rank = top.threshold().is_none_or(|t| !below(rest, t));
    outcome
}
