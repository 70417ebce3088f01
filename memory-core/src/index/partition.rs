//! A task-type partition of a shard: its temporal clusters and an R-tree over them.
//!
//! Owns the second and third levels below a shard. The documents of one task type in one
//! shard are grouped into time buckets by `started_at` (the temporal clusters, each with its
//! members' slots in the shard's table and the [`ClusterSummary`] queries use to bound and
//! skip it whole), and an [`rstar`] R-tree holds each cluster as a box over (start time,
//! reward): its bucket's time span by its members' reward range. A query's box (a time range
//! on `started_at`, a minimum reward) finds the clusters it meets through the tree, then
//! checks each member exactly ([`TimeRewardBox::holds`]).
//!
//! Why these two axes: `started_at` is the axis every hierarchical query walks (time-range
//! filters, cluster membership), and `reward` is the numeric filter callers use most ("only
//! attempts that scored at least 0.8"), so one box query applies both filters before any
//! document is read. Why clusters and not documents in the tree: a tree entry costs 40 bytes
//! (rstar's node entry), a member 4 in its cluster's list. The boxes are `f32`, rounded
//! monotonically, so a box converted the same way never misses a cluster it meets; it may
//! meet a few within rounding of its edges, which the exact checks drop.
//!
//! This module must never score, and never hold a document itself: the shard's table does.

use std::collections::BTreeMap;
use std::sync::Arc;

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, ParentNode, RStarInsertionStrategy, RTree, RTreeNode, RTreeParams};

use super::cluster::{self, ClusterSummary};
use super::document::IndexedEpisode;
use super::footprint;

/// Position of a document in its shard's table.
pub(crate) type Slot = u32;

/// Node sizes 8..32 (rstar's default is 3..6): wide nodes serve box scans well and keep the
/// tree shallow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreeParams;

impl RTreeParams for TreeParams {
    const MIN_SIZE: usize = 8;
    const MAX_SIZE: usize = 32;
    const REINSERTION_COUNT: usize = 8;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// A cluster in the tree: its box and its bucket.
type Entry = GeomWithData<Rectangle<[f32; 2]>, i64>;
type Tree = RTree<Entry, TreeParams>;

/// `x` on the tree's axes: rounded to the nearest `f32` (monotone), and finite.
fn axis(x: f64) -> f32 {
    (x as f32).clamp(f32::MIN, f32::MAX)
}

/// The tree entry of the cluster of `bucket` summarized by `summary`.
fn entry(bucket: i64, width: i64, summary: &ClusterSummary) -> Entry {
    let (from, to) = cluster::bucket_span(bucket, width);
    let rect = Rectangle::from_corners(
        [axis(from as f64), axis(summary.min_reward)],
        [axis(to as f64), axis(summary.max_reward)],
    );
    GeomWithData::new(rect, bucket)
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
    pub(crate) const EVERYTHING: Self = Self {
        started_from: i64::MIN,
        started_to: i64::MAX,
        min_reward: f64::NEG_INFINITY,
    };

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

/// One temporal cluster: its aggregates and its members.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cluster {
    summary: ClusterSummary,
    /// The members' slots, in no particular order.
    members: Vec<Slot>,
}

impl Cluster {
    /// The aggregates over the members.
    pub(crate) fn summary(&self) -> &ClusterSummary {
        &self.summary
    }

    /// The members' slots.
    pub(crate) fn members(&self) -> &[Slot] {
        &self.members
    }
}

/// The documents of one task type in one shard.
#[derive(Debug)]
pub(crate) struct Partition {
    task_type: Arc<str>,
    /// One entry per cluster.
    tree: Tree,
    clusters: BTreeMap<i64, Cluster>,
    /// Members over all clusters.
    len: usize,
}

impl Partition {
    /// An empty partition for `task_type`.
    pub(crate) fn new(task_type: Arc<str>) -> Self {
        Self {
            task_type,
            tree: Tree::new_with_params(),
            clusters: BTreeMap::new(),
            len: 0,
        }
    }

    /// A partition of `members`, with the tree bulk-loaded (much cheaper than inserting).
    pub(crate) fn bulk<'a>(
        task_type: Arc<str>,
        members: impl IntoIterator<Item = (Slot, &'a IndexedEpisode)>,
        bucket_width: i64,
    ) -> Self {
        let mut clusters: BTreeMap<i64, Cluster> = BTreeMap::new();
        let mut len = 0;
        for (slot, doc) in members {
            let c = clusters
                .entry(cluster::bucket_of(doc.started_at, bucket_width))
                .or_default();
            c.summary.absorb(doc);
            c.members.push(slot);
            len += 1;
        }
        let entries = clusters
            .iter_mut()
            .map(|(bucket, c)| {
                c.members.shrink_to_fit();
                entry(*bucket, bucket_width, &c.summary)
            })
            .collect();
        Self {
            task_type,
            tree: Tree::bulk_load_with_params(entries),
            clusters,
            len,
        }
    }

    /// The task type.
    pub(crate) fn task_type(&self) -> &Arc<str> {
        &self.task_type
    }

    /// How many documents.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Add the document at `slot`.
    pub(crate) fn insert(&mut self, slot: Slot, doc: &IndexedEpisode, bucket_width: i64) {
        let bucket = cluster::bucket_of(doc.started_at, bucket_width);
        let c = self.clusters.entry(bucket).or_default();
        let before = (c.summary.members > 0).then(|| entry(bucket, bucket_width, &c.summary));
        c.summary.absorb(doc);
        footprint::reserve_one(&mut c.members);
        c.members.push(slot);
        self.len += 1;
        let after = entry(bucket, bucket_width, &c.summary);
        if before.as_ref() != Some(&after) {
            if let Some(before) = before {
                self.tree.remove(&before);
            }
            self.tree.insert(after);
        }
    }

    /// Remove the document at `slot` (`doc` is its current content). Its cluster is dropped if
    /// it was the last member, else re-summarized from the remaining members, looked up in
    /// `docs`. Returns whether the document was found.
    pub(crate) fn remove(
        &mut self,
        slot: Slot,
        doc: &IndexedEpisode,
        bucket_width: i64,
        docs: &[Option<IndexedEpisode>],
    ) -> bool {
        let bucket = cluster::bucket_of(doc.started_at, bucket_width);
        let Some(c) = self.clusters.get_mut(&bucket) else {
            return false;
        };
        let Some(at) = c.members.iter().position(|s| *s == slot) else {
            return false;
        };
        c.members.swap_remove(at);
        self.len -= 1;
        let before = entry(bucket, bucket_width, &c.summary);
        if c.members.is_empty() {
            self.clusters.remove(&bucket);
            self.tree.remove(&before);
            return true;
        }
        c.summary = ClusterSummary::of(
            c.members
                .iter()
                .filter_map(|s| docs.get(*s as usize).and_then(Option::as_ref)),
        );
        let after = entry(bucket, bucket_width, &c.summary);
        if after != before {
            self.tree.remove(&before);
            self.tree.insert(after);
        }
        true
    }

    /// Call `f` with each cluster whose members may be inside `b` (every cluster holding a
    /// member inside, and perhaps some within rounding of its edges) and its bucket: check
    /// each member with [`TimeRewardBox::holds`]. A box over the whole plane takes every
    /// cluster without asking the tree.
    pub(crate) fn meeting<'p>(&'p self, b: &TimeRewardBox, mut f: impl FnMut(i64, &'p Cluster)) {
        if *b == TimeRewardBox::EVERYTHING {
            for (bucket, c) in &self.clusters {
                f(*bucket, c);
            }
            return;
        }
        for e in self.tree.locate_in_envelope_intersecting(b.aabb()) {
            if let Some(c) = self.clusters.get(&e.data) {
                f(e.data, c);
            }
        }
    }

    /// The temporal clusters' summaries, oldest bucket first.
    pub(crate) fn clusters(&self) -> impl Iterator<Item = (i64, &ClusterSummary)> {
        self.clusters.iter().map(|(b, c)| (*b, &c.summary))
    }

    /// How many clusters.
    pub(crate) fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// Estimated heap bytes: tree nodes (walked), the cluster map and the member lists.
    pub(crate) fn heap_bytes(&self) -> usize {
        tree_bytes(self.tree.root())
            + footprint::btree_map::<i64, Cluster>(self.clusters.len())
            + self
                .clusters
                .values()
                .map(|c| footprint::vec::<Slot>(c.members.capacity()))
                .sum::<usize>()
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
            &mut crate::index::DocHeap::default(),
            EpisodeId::new(),
            1,
            0,
            std::iter::empty(),
            std::iter::empty(),
            None,
            reward,
            started_at,
            Some(started_at + 1),
            None,
        )
    }

    #[test]
    fn the_tree_holds_each_cluster_as_its_span_by_its_reward_range() {
        let mut docs: Vec<Option<IndexedEpisode>> = [(0, 0.2), (1, 0.9), (8, 0.3), (9, 0.4)]
            .into_iter()
            .map(|(day, reward)| Some(doc(day * DAY, reward)))
            .collect();
        let mut p = Partition::new(Arc::from("t"));
        for (slot, d) in docs.iter().enumerate() {
            p.insert(slot as Slot, d.as_ref().unwrap(), 7 * DAY);
        }
        assert_eq!((p.len(), p.cluster_count(), p.tree.size()), (4, 2, 2));
        let met = |p: &Partition, b: TimeRewardBox| {
            let mut v: Vec<i64> = Vec::new();
            p.meeting(&b, |bucket, _| v.push(bucket));
            v.sort_unstable();
            v
        };
        let rich = |min_reward| TimeRewardBox {
            min_reward,
            ..TimeRewardBox::EVERYTHING
        };
        // Only the first week holds a reward of 0.5 or more; both hold one of 0.35 or more.
        assert_eq!(met(&p, rich(0.5)), [0]);
        assert_eq!(met(&p, rich(0.35)), [0, 1]);
        let second = TimeRewardBox::EVERYTHING.within(8 * DAY, 20 * DAY).unwrap();
        assert_eq!(met(&p, second), [1]);
        // Its best member gone, the first week's box shrinks to what is left.
        let gone = docs[1].take().unwrap();
        assert!(p.remove(1, &gone, 7 * DAY, &docs));
        assert_eq!(met(&p, rich(0.5)), Vec::<i64>::new());
        assert_eq!(met(&p, rich(0.1)), [0, 1]);
        let gone = docs[0].take().unwrap();
        assert!(p.remove(0, &gone, 7 * DAY, &docs));
        assert!(!p.remove(0, &gone, 7 * DAY, &docs));
        assert_eq!((p.len(), p.cluster_count(), p.tree.size()), (2, 1, 1));
        assert_eq!(met(&p, rich(0.1)), [1]);
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
            let mut v: Vec<Slot> = Vec::new();
            p.meeting(&b, |_, c| {
                v.extend(
                    c.members()
                        .iter()
                        .filter(|s| b.holds(docs[**s as usize].as_ref().unwrap())),
                )
            });
            v.sort_unstable();
            v
        };
        let span = |from, to| TimeRewardBox::EVERYTHING.within(from, to).unwrap();
        assert_eq!(inside(&p, &docs, span(boundary, boundary)), [1]);
        assert_eq!(inside(&p, &docs, span(i64::MIN, boundary - 1)), [0]);
        let rich = TimeRewardBox {
            min_reward: 0.5 + 2e-12,
            ..TimeRewardBox::EVERYTHING
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
