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
//! signed (`f64`), as rstar requires; microseconds convert to `f64` exactly until the year
//! 2255 and monotonically after that, so a box built from the same conversion never loses a
//! point (boundaries are re-checked exactly on each document anyway). `completed_at` is not an
//! axis: it is absent while in progress and its range filter is rarer; it is checked per
//! document.
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
/// instead of ~76 bytes per point and loads ~2.5× faster (measured on 1M points); queries
/// here are box scans, which wide leaves serve well.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreeParams;

impl RTreeParams for TreeParams {
    const MIN_SIZE: usize = 8;
    const MAX_SIZE: usize = 32;
    const REINSERTION_COUNT: usize = 8;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

type Entry = GeomWithData<[f64; 2], Slot>;
type Tree = RTree<Entry, TreeParams>;

fn entry(slot: Slot, doc: &IndexedEpisode) -> Entry {
    GeomWithData::new([doc.started_at as f64, doc.reward], slot)
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

    fn aabb(&self) -> AABB<[f64; 2]> {
        let min_reward = if self.min_reward.is_finite() {
            self.min_reward
        } else {
            f64::MIN
        };
        AABB::from_corners(
            [self.started_from as f64, min_reward],
            [self.started_to as f64, f64::MAX],
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

    /// Slots of the documents inside `b`.
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
