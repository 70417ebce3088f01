//! The hierarchical path: task-type partition → posting lists → R-tree box → temporal clusters.
//!
//! Owns the walk below a shard (the shard itself was chosen by namespace and domain). The
//! query's task type picks one partition (else all). In each partition, the members holding a
//! query term come first, through the posting lists (`postings`: MaxScore, exact); the members
//! holding none can only score the non-lexical terms, so they are looked at only while that
//! bound still reaches the k-th score. They are found through the R-tree, which returns the
//! clusters meeting the query's `started_at` range and reward floor (each member is then
//! checked against the box exactly); with temporal clustering on, those clusters are ranked by
//! their score bound (`Scorer::bound`) and visited best first, and once the top-k is full, the
//! first cluster whose bound is below the k-th score ends the walk. When the box holds fewer
//! members than the posting lists, the box alone is walked (both are exact; the smaller is
//! cheaper). Because bounds never under-estimate, the result is exactly the flat path's. This
//! module must never offer an episode the filter rejects, and never skip a cluster whose bound
//! reaches the threshold.

use std::cmp::Ordering;

use crate::index::{Cluster, Partition, Slot, TimeRewardBox, bucket_span};

use super::postings;
use super::topk::TopK;
use super::visit::ShardVisit;

/// The posting lists are read instead of the members inside the query's box unless they hold
/// more than this many postings per member: reading a posting costs a few nanoseconds, scoring
/// a member a microsecond or so, and the lists only lead to members that can rank.
const POSTINGS_PER_DOCUMENT: usize = 16;

/// A cluster is skipped only if its bound is below the threshold by more than this relative
/// margin: a guard against libm's `exp2` not being correctly rounded.
const BOUND_MARGIN: f64 = 1e-9;

/// [`Cut::least`] stays below the exact cut by this relative amount: a few additions in
/// another order round differently by a few units in the last place (about 1e-16), far less.
const REORDER_SLACK: f64 = 1e-12;

/// What the walk did, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Clusters whose members were scored.
    pub(crate) visited: usize,
    /// Clusters skipped by their bound.
    pub(crate) pruned: usize,
    /// Partitions searched through their posting lists.
    pub(crate) by_postings: usize,
    /// Documents taken from posting lists.
    pub(crate) candidates: usize,
}

impl Walk {
    /// Add `other`'s counts.
    pub(crate) fn add(&mut self, other: Walk) {
        self.visited += other.visited;
        self.pruned += other.pruned;
        self.by_postings += other.by_postings;
        self.candidates += other.candidates;
    }
}

/// Offer the qualifying episodes of `visit`'s shard that can still rank to `top`: the members
/// holding a query term through the shard's posting lists (unless the query's partitions and
/// box hold so few members that scoring them all is cheaper), then, partition by partition,
/// the members holding none, through the clusters, only while they could still rank.
pub(crate) fn collect(visit: &ShardVisit<'_>, top: &mut TopK, clustering: bool) -> Walk {
    let shard = visit.shard;
    let partitions: Vec<&Partition> = match visit.filter.task_type() {
        Some(t) => shard.partition(t).into_iter().collect(),
        None => shard.partitions().collect(),
    };
    let tree_box = visit.filter.tree_box();
    let mut walk = Walk::default();
    let lexical = postings::work(visit);
    let in_box: usize = partitions
        .iter()
        .map(|p| postings::box_work(p, &tree_box, shard.bucket_width()))
        .sum();
    if lexical > 0 && in_box.saturating_mul(POSTINGS_PER_DOCUMENT) >= lexical {
        walk.by_postings += 1;
        let outcome = postings::collect(visit, &partitions, top);
        walk.candidates += outcome.candidates;
        if !outcome.rest_may_rank {
            return walk;
        }
    }
    for p in partitions {
        if clustering {
            walk.add(clusters(visit, p, &tree_box, top));
        } else {
            p.meeting(&tree_box, |_, c| {
                scan(visit, c.members(), &tree_box, top, None)
            });
        }
    }
    walk
}

/// The cluster walk over one partition: the clusters meeting the box (found through the
/// partition's R-tree), best bound first, until the first whose bound is below the threshold.
fn clusters(
    visit: &ShardVisit<'_>,
    p: &Partition,
    tree_box: &TimeRewardBox,
    top: &mut TopK,
) -> Walk {
    let width = visit.shard.bucket_width();
    let mut clusters: Vec<(f64, TimeRewardBox, &Cluster)> = Vec::new();
    p.meeting(tree_box, |bucket, c| {
        let summary = c.summary();
        let (from, to) = bucket_span(bucket, width);
        if let Some(b) = tree_box.within(from, to)
            && summary.max_reward >= tree_box.min_reward
        {
            clusters.push((visit.scorer.bound(summary, visit.resolved), b, c));
        }
    });
    // Equal bounds may be visited in any order: the result is exact either way.
    clusters.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let total = clusters.len();
    let mut walk = Walk::default();
    for (bound, b, c) in clusters {
        if let Some(threshold) = top.threshold()
            && below(bound, threshold)
        {
            walk.pruned = total - walk.visited;
            break;
        }
        walk.visited += 1;
        let rest = visit.scorer.cluster_rest(c.summary());
        scan(visit, c.members(), &b, top, Some(rest));
    }
    walk
}

/// Whether `bound` is certainly below `threshold` (by more than the margin).
pub(crate) fn below(bound: f64, threshold: f64) -> bool {
    Cut::new(threshold).above(bound)
}

/// A threshold with its margin computed once, for a loop that checks many bounds against it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cut {
    threshold: f64,
    margin: f64,
}

impl Cut {
    pub(crate) fn new(threshold: f64) -> Self {
        Self {
            threshold,
            margin: BOUND_MARGIN * threshold.abs().max(1.0),
        }
    }

    /// [`below`]`(bound, threshold)`.
    pub(crate) fn above(&self, bound: f64) -> bool {
        (bound + self.margin).total_cmp(&self.threshold) == Ordering::Less
    }

    /// A value under which a sum `s` is certainly [`Cut::above`] once `add` is added to it:
    /// one plain comparison per sum in a hot loop, instead of an addition and a total order.
    /// Lower than exact by far more than the rounding of adding in another order.
    pub(crate) fn least(&self, add: f64) -> f64 {
        self.threshold - self.margin - add - REORDER_SLACK * self.threshold.abs().max(1.0)
    }
}

/// Offer the members of a cluster (`members`) inside `b`.
fn scan(
    visit: &ShardVisit<'_>,
    members: &[Slot],
    b: &TimeRewardBox,
    top: &mut TopK,
    rest: Option<f64>,
) {
    for &slot in members {
        if let Some(doc) = visit.shard.doc(slot)
            && b.holds(&doc)
        {
            visit.consider(slot, doc, top, rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_under_the_least_is_cut_and_no_sum_that_ranks_is_under_it() {
        for threshold in [0.0, 1e-300, 0.093, 0.27, 1.0, 3.5, 1e6] {
            let cut = Cut::new(threshold);
            for add in [0.0, 0.07, 0.0151, 0.25, threshold] {
                let least = cut.least(add);
                // Sums from well under to well over the cut, a few units in the last place
                // apart around it.
                let edge = threshold - cut.margin - add;
                let mut sums = vec![least, edge, 0.0, threshold];
                let mut s = edge;
                for _ in 0..64 {
                    s = s.next_down();
                    sums.push(s);
                }
                for s in sums {
                    if !cut.above(add + s) {
                        assert!(s >= least, "{threshold} {add} {s}: ranks, under {least}");
                    }
                    if s < least {
                        assert!(cut.above(add + s), "{threshold} {add} {s}");
                    }
                }
            }
        }
    }
}
