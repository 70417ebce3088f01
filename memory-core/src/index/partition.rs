//! A task-type partition of a shard: an R-tree over (start time, reward) and its clusters.
//!
//! Owns the second level below a shard. Every document of one task type in one shard is a point
//! `[started_at µs, reward]` in an [`rstar`] R-tree, tagged with the document's slot in the
//! shard's table; time buckets over the same axis form the temporal clusters
//! ([`ClusterSummary`]) that queries use to bound and skip whole groups.
//!
//! Why these two axes: `started_at` is the axis every hierarchical query walks (time-range
//! filters, cluster membership: a cluster is the tree's points inside one bucket's time span),
//! and `reward` is the numeric filter callers use most ("only attempts that scored at least
//! 0.8"), so one box query applies both filters inside the index, before any top-k. Both are
//! stored as `f32` (a point is 12 bytes, a tree node entry 40 instead of 56 with `f64`): the
//! conversion rounds, but monotonically, so a box converted the same way never loses a point;
//! it may gain points within rounding of its edges (about two minutes of time at today's
//! instants), so [`Partition::locate`] is a superset and its callers check each document
//! against the box exactly ([`TimeRewardBox::holds`]). `completed_at` is not an axis: it is
//! absent while in progress and its range filter is rarer; it is checked per document.
//!
//! This module must never score, and never hold a document itself: the shard's table does.

use std::collections::BTreeMap;
use std::sync::Arc;

use rstar::primitives::GeomWithData;
use rstar::{AABB, ParentNode, RStarInsertionStrategy, RTree, RTreeNode, RTreeParams};

use super::cluster::{self, ClusterSummary};
use super::document::IndexedEpisode;
use super::footprint;

/// Position of a document in its shard's table.
pub(crate) type Slot = u32;

/// Node sizes 8..32 (rstar's default is 3..6): a bulk-loaded tree of this shape costs ~60
/// instead of ~76 bytes per point with `f64` points, and loads ~2.5× faster (measured on 1M
/// points); queries here are box scans, which wide leaves serve well.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreeParams;

impl RTreeParams for TreeParams {
    const MIN_SIZE: usize = 8;
    const MAX_SIZE: usize = 32;
    const REINSERTION_COUNT: usize = 8;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

type Entry = GeomWithData<[f32; 2], Slot>;
type Tree = RTree<Entry, TreeParams>;

/// `x` on the tree's axes: rounded to the nearest `f32` (monotone), and finite.
fn axis(x: f64) -> f32 {
    (x as f32).clamp(f32::MIN, f32::MAX)
}

fn entry(slot: Slot, doc: &IndexedEpisode) -> Entry {
    GeomWithData::new([axis(doc.started_at as f64), axis(doc.reward)], slot)
}

/// A box over both axes: `started_at` in `[started_from, started_to]` (µs, inclusive) and
/// reward at least `min_reward`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TimeRewardBox {
    pub(crate) started_from: i64,
    pub(crate) started_to: i64,
    pub(crate) min_reward: f64,
}

impl TimeRewardBox {
    /// The whole plane.
    pub(crate) fn everything() -> Self {
        Self {
            started_from: i64::MIN,
            started_to: i64::MAX,
            min_reward: f64::NEG_INFINITY,
        }
    }

    /// This box restricted to the time span `[from, to]`, or `None` if they do not meet.
    pub(crate) fn within(&self, from: i64, to: i64) -> Option<Self> {
        let b = Self {
            started_from: self.started_from.max(from),
            started_to: self.started_to.min(to),
            min_reward: self.min_reward,
        };
        (b.started_from <= b.started_to).then_some(b)
    }

    /// Whether `doc` is inside, exactly.
    pub(crate) fn holds(&self, doc: &IndexedEpisode) -> bool {
        (self.started_from..=self.started_to).contains(&doc.started_at)
            && doc.reward >= self.min_reward
    }

    fn aabb(&self) -> AABB<[f32; 2]> {
        AABB::from_corners(
            [axis(self.started_from as f64), axis(self.min_reward)],
            [axis(self.started_to as f64), f32::MAX],
        )
    }
}

/// The documents of one task type in one shard.
#[derive(Debug)]
pub(crate) struct Partition {
    task_type: Arc<str>,
    tree: Tree,
    clusters: BTreeMap<i64, ClusterSummary>,
}

impl Partition {
    /// An empty partition for `task_type`.
    pub(crate) fn new(task_type: Arc<str>) -> Self {
        Self {
            task_type,
            tree: Tree::new_with_params(),
            clusters: BTreeMap::new(),
        }
    }

    /// A partition of `members`, with the tree bulk-loaded (much cheaper than inserting).
    pub(crate) fn bulk<'a>(
        task_type: Arc<str>,
        members: impl IntoIterator<Item = (Slot, &'a IndexedEpisode)>,
        bucket_width: i64,
    ) -> Self {
        let mut entries = Vec::new();
        let mut buckets: BTreeMap<i64, Vec<&IndexedEpisode>> = BTreeMap::new();
        for (slot, doc) in members {
            entries.push(entry(slot, doc));
            buckets
                .entry(cluster::bucket_of(doc.started_at, bucket_width))
                .or_default()
                .push(doc);
        }
        let clusters = buckets
            .into_iter()
            .map(|(bucket, docs)| (bucket, ClusterSummary::of(docs)))
            .collect();
        Self {
            task_type,
            tree: Tree::bulk_load_with_params(entries),
            clusters,
        }
    }

    /// The task type (shared with the documents).
    pub(crate) fn task_type(&self) -> &Arc<str> {
        &self.task_type
    }

    /// How many documents.
    pub(crate) fn len(&self) -> usize {
        self.tree.size()
    }

    /// Add the document at `slot`.
    pub(crate) fn insert(&mut self, slot: Slot, doc: &IndexedEpisode, bucket_width: i64) {
        self.tree.insert(entry(slot, doc));
        self.clusters
            .entry(cluster::bucket_of(doc.started_at, bucket_width))
            .or_default()
            .absorb(doc);
    }

    /// Remove the document at `slot` (`doc` is its current content). Its cluster is dropped if
    /// it was the last member, else re-summarized from the remaining members, looked up in
    /// `docs`. Returns whether the point was found.
    pub(crate) fn remove(
        &mut self,
        slot: Slot,
        doc: &IndexedEpisode,
        bucket_width: i64,
        docs: &[Option<IndexedEpisode>],
    ) -> bool {
        let found = self.tree.remove(&entry(slot, doc)).is_some();
        let bucket = cluster::bucket_of(doc.started_at, bucket_width);
        let (from, to) = cluster::bucket_span(bucket, bucket_width);
        let span = TimeRewardBox::everything().within(from, to);
        let remaining: Vec<&IndexedEpisode> = span
            .map(|b| {
                self.locate(&b)
                    .filter_map(|s| docs.get(s as usize).and_then(Option::as_ref))
                    .filter(|d| b.holds(d))
                    .collect()
            })
            .unwrap_or_default();
        if remaining.is_empty() {
            self.clusters.remove(&bucket);
        } else {
            self.clusters
                .insert(bucket, ClusterSummary::of(remaining.iter().copied()));
        }
        found
    }

    /// Slots of the documents inside `b`, and perhaps of some within rounding of its edges
    /// (see the module docs): check each with [`TimeRewardBox::holds`].
    pub(crate) fn locate(&self, b: &TimeRewardBox) -> impl Iterator<Item = Slot> + '_ {
        self.tree.locate_in_envelope(b.aabb()).map(|e| e.data)
    }

    /// The temporal clusters, oldest bucket first.
    pub(crate) fn clusters(&self) -> impl Iterator<Item = (i64, &ClusterSummary)> {
        self.clusters.iter().map(|(b, c)| (*b, c))
    }

    /// How many clusters.
    pub(crate) fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// Estimated heap bytes: tree nodes (walked) and the cluster map.
    pub(crate) fn heap_bytes(&self) -> usize {
        tree_bytes(self.tree.root())
            + footprint::btree_map::<i64, ClusterSummary>(self.clusters.len())
    }
}

/// Bytes of the children arrays under `node`. rstar does not expose capacities, so this counts
/// lengths: growth slack of incrementally built nodes (at most `MAX_SIZE` − len per node) is
/// not seen; bulk-loaded nodes have none.
fn tree_bytes(node: &ParentNode<Entry>) -> usize {
    let mut bytes = footprint::vec::<RTreeNode<Entry>>(node.children().len());
    for child in node.children() {
        if let RTreeNode::Parent(p) = child {
            bytes += tree_bytes(p);
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::EpisodeId;

    const DAY: i64 = 86_400_000_000;

    fn doc(started_at: i64, reward: f64) -> IndexedEpisode {
        IndexedEpisode::new(
            EpisodeId::new(),
            1,
            0,
            [],
            [],
            None,
            reward,
            started_at,
            Some(started_at + 1),
            None,
        )
    }

    #[test]
    fn rounding_never_loses_a_point_and_clusters_stay_exact_after_removals() {
        // A microsecond apart around a day boundary: one f32 for all three.
        let boundary = 20_500 * DAY;
        let mut docs: Vec<Option<IndexedEpisode>> = [boundary - 1, boundary, boundary + 1]
            .into_iter()
            .enumerate()
            .map(|(k, at)| Some(doc(at, 0.5 + k as f64 * 1e-12)))
            .collect();
        let mut p = Partition::new(Arc::from("t"));
        for (slot, d) in docs.iter().enumerate() {
            p.insert(slot as Slot, d.as_ref().unwrap(), DAY);
        }
        let inside = |p: &Partition, docs: &[Option<IndexedEpisode>], b: TimeRewardBox| {
            let mut v: Vec<Slot> = p
                .locate(&b)
                .filter(|s| b.holds(docs[*s as usize].as_ref().unwrap()))
                .collect();
            v.sort_unstable();
            v
        };
        let span = |from, to| TimeRewardBox::everything().within(from, to).unwrap();
        assert_eq!(inside(&p, &docs, span(boundary, boundary)), [1]);
        assert_eq!(inside(&p, &docs, span(i64::MIN, boundary - 1)), [0]);
        let rich = TimeRewardBox {
            min_reward: 0.5 + 2e-12,
            ..TimeRewardBox::everything()
        };
        assert_eq!(inside(&p, &docs, rich), [2]);
        // Removing the day's first member re-summarizes that day from its real members only.
        let gone = docs[1].take().unwrap();
        assert!(p.remove(1, &gone, DAY, &docs));
        let expected = Partition::bulk(
            Arc::from("t"),
            [
                (0, docs[0].as_ref().unwrap()),
                (2, docs[2].as_ref().unwrap()),
            ],
            DAY,
        );
        let clusters = |p: &Partition| {
            p.clusters()
                .map(|(b, c)| (b, c.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(clusters(&p), clusters(&expected));
        assert_eq!(clusters(&p)[1].1.members, 1);
    }
}
