//! Temporal clusters: the third level of the hierarchy, one per time bucket of a task type.
//!
//! Owns the bucket arithmetic (which bucket a `started_at` falls in, which time span a bucket
//! covers) and [`ClusterSummary`], the aggregates a query needs to bound the non-lexical part
//! of any member's score without looking at the members: the latest recency instant, the
//! largest reward, and how many members carry a vector (the lexical part is bounded per term
//! by the shard's posting lists), and the smallest reward (the cluster's box in the
//! partition's R-tree spans its members' rewards). Every aggregate is a max, a min or a count,
//! so a summary rebuilt from the remaining members after a removal is exactly the summary
//! those members would have produced alone. This module must never hold members themselves
//! (the partition does) and never score.

use super::document::IndexedEpisode;

/// The bucket of instant `micros` for buckets `width` microseconds wide.
pub(crate) fn bucket_of(micros: i64, width: i64) -> i64 {
    micros.div_euclid(width.max(1))
}

/// The inclusive span `[first, last]` of microseconds bucket `bucket` covers.
pub(crate) fn bucket_span(bucket: i64, width: i64) -> (i64, i64) {
    let width = width.max(1);
    let first = bucket.saturating_mul(width);
    (first, first.saturating_add(width - 1))
}

/// Aggregates over the members of one temporal cluster.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClusterSummary {
    /// How many members.
    pub(crate) members: u32,
    /// The latest `recency_at` over the members.
    pub(crate) max_recency_at: i64,
    /// The largest reward over the members.
    pub(crate) max_reward: f64,
    /// The smallest reward over the members (the low edge of the cluster's box in the tree).
    pub(crate) min_reward: f64,
    /// How many members carry an embedding.
    pub(crate) embeddings: u32,
}

impl Default for ClusterSummary {
    fn default() -> Self {
        Self {
            members: 0,
            max_recency_at: i64::MIN,
            max_reward: f64::NEG_INFINITY,
            min_reward: f64::INFINITY,
            embeddings: 0,
        }
    }
}

impl ClusterSummary {
    /// The summary of exactly `members`.
    pub(crate) fn of<'a>(members: impl IntoIterator<Item = &'a IndexedEpisode>) -> Self {
        let mut s = Self::default();
        for m in members {
            s.absorb(m);
        }
        s
    }

    /// Add one member.
    pub(crate) fn absorb(&mut self, doc: &IndexedEpisode) {
        self.members += 1;
        self.max_recency_at = self.max_recency_at.max(doc.recency_at());
        self.max_reward = self.max_reward.max(doc.reward);
        self.min_reward = self.min_reward.min(doc.reward);
        if doc.has_embedding() {
            self.embeddings += 1;
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_time_line() {
        let w = 10;
        for t in [-21i64, -11, -10, -1, 0, 9, 10, 123] {
            let b = bucket_of(t, w);
            let (lo, hi) = bucket_span(b, w);
            assert!(lo <= t && t <= hi, "{t} in bucket {b} = [{lo}, {hi}]");
            assert_eq!(hi - lo + 1, w);
        }
        assert_eq!(bucket_of(-1, w), -1);
    }
}
