//! The hierarchical path: task-type partition → R-tree box → temporal clusters by bound.
//!
//! Owns the walk below a shard (the shard itself was chosen by namespace and domain). The
//! query's task type picks one partition (else all). Each partition's R-tree returns only the
//! points inside the query's `started_at` range and reward floor. With temporal clustering on,
//! the clusters meeting that box are ranked by their score bound (`Scorer::bound`) and visited
//! best first; once the top-k is full, the first cluster whose bound is below the k-th score
//! ends the walk, since neither it nor any later cluster can place an episode. Because bounds
//! never under-estimate, the result is exactly the flat path's. This module must never offer an
//! episode the filter rejects, and never skip a cluster whose bound reaches the threshold.

use std::cmp::Ordering;

use crate::index::{ClusterSummary, Partition, TimeRewardBox, bucket_span};

use super::scorer::TermBounds;
use super::topk::TopK;
use super::visit::ShardVisit;

/// A cluster is skipped only if its bound is below the threshold by more than this relative
/// margin: a guard against libm's `exp2` not being correctly rounded.
const BOUND_MARGIN: f64 = 1e-9;

/// What the walk did, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Clusters whose members were scored.
    pub(crate) visited: usize,
    /// Clusters skipped by their bound.
    pub(crate) pruned: usize,
}

/// Offer the qualifying episodes of `visit`'s shard that can still rank to `top`.
pub(crate) fn collect(visit: &ShardVisit<'_>, top: &mut TopK, clustering: bool) -> Walk {
    let shard = visit.shard;
    let partitions: Vec<&Partition> = match visit.filter.task_type() {
        Some(t) => shard.partition(t).into_iter().collect(),
        None => shard.partitions().collect(),
    };
    let tree_box = visit.filter.tree_box();
    let mut walk = Walk::default();
    if !clustering {
        for p in partitions {
            scan(visit, p, &tree_box, top, None);
        }
        return walk;
    }
    let width = shard.bucket_width();
    let mut clusters: Vec<(f64, &Partition, TimeRewardBox, &ClusterSummary)> = Vec::new();
    for p in partitions {
        for (bucket, summary) in p.clusters() {
            let (from, to) = bucket_span(bucket, width);
            let Some(b) = tree_box.within(from, to) else {
                continue;
            };
            if summary.max_reward < tree_box.min_reward {
                continue;
            }
            clusters.push((visit.scorer.bound(summary, visit.resolved), p, b, summary));
        }
    }
    // Equal bounds may be visited in any order: the result is exact either way.
    clusters.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let total = clusters.len();
    for (bound, p, b, summary) in clusters {
        if let Some(threshold) = top.threshold()
            && below(bound, threshold)
        {
            walk.pruned = total - walk.visited;
            break;
        }
        walk.visited += 1;
        let bounds = visit.scorer.term_bounds(summary, visit.resolved);
        scan(visit, p, &b, top, Some(&bounds));
    }
    walk
}

/// Whether `bound` is certainly below `threshold` (by more than the margin).
pub(crate) fn below(bound: f64, threshold: f64) -> bool {
    let margin = BOUND_MARGIN * threshold.abs().max(1.0);
    (bound + margin).total_cmp(&threshold) == Ordering::Less
}

fn scan(
    visit: &ShardVisit<'_>,
    p: &Partition,
    b: &TimeRewardBox,
    top: &mut TopK,
    bounds: Option<&TermBounds>,
) {
    for slot in p.locate(b) {
        if let Some(doc) = visit.shard.doc(slot) {
            visit.consider(slot, doc, top, bounds);
        }
    }
}
