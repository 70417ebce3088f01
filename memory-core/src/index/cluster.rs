//! Temporal clusters: the third level of the hierarchy, one per time bucket of a task type.
//!
//! Owns the bucket arithmetic (which bucket a `started_at` falls in, which time span a bucket
//! covers) and [`ClusterSummary`], the aggregates a query needs to bound the best score any
//! member could reach without looking at the members: per term the largest per-field
//! frequency, per field the shortest length, the latest recency instant, the largest reward,
//! and how many members carry a vector. Every aggregate is a max or min, so a summary rebuilt
//! from the remaining members after a removal is exactly the summary those members would have
//! produced alone. This module must never hold members themselves (the partition's R-tree
//! does) and never score.

use super::document::{FieldTf, IndexedEpisode};
use super::fields::FIELD_COUNT;
use super::footprint;
use super::interner::Sym;

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
    /// Per term held by any member: the largest frequency in each field over the members;
    /// sorted by term id (a sorted vector: a third of a hash map's bytes, and a query matches
    /// it in one pass).
    pub(crate) term_max: Vec<(Sym, FieldTf)>,
    /// Per field: the shortest length over the members.
    pub(crate) min_len: [u32; FIELD_COUNT],
    /// The latest `recency_at` over the members.
    pub(crate) max_recency_at: i64,
    /// The largest reward over the members.
    pub(crate) max_reward: f64,
    /// How many members carry an embedding.
    pub(crate) embeddings: u32,
}

impl Default for ClusterSummary {
    fn default() -> Self {
        Self {
            members: 0,
            term_max: Vec::new(),
            min_len: [u32::MAX; FIELD_COUNT],
            max_recency_at: i64::MIN,
            max_reward: f64::NEG_INFINITY,
            embeddings: 0,
        }
    }
}

impl ClusterSummary {
    /// The summary of exactly `members`.
    pub(crate) fn of<'a>(members: impl IntoIterator<Item = &'a IndexedEpisode>) -> Self {
        let mut s = Self::default();
        let mut all: Vec<(Sym, FieldTf)> = Vec::new();
        for m in members {
            s.absorb_scalars(m);
            all.extend_from_slice(&m.terms);
        }
        all.sort_unstable_by_key(|(sym, _)| *sym);
        for (sym, tf) in all {
            match s.term_max.last_mut() {
                Some((last, max)) if *last == sym => {
                    for f in 0..FIELD_COUNT {
                        max[f] = max[f].max(tf[f]);
                    }
                }
                _ => s.term_max.push((sym, tf)),
            }
        }
        s.term_max.shrink_to_fit();
        s
    }

    /// Add one member.
    pub(crate) fn absorb(&mut self, doc: &IndexedEpisode) {
        self.absorb_scalars(doc);
        let mut adds: Vec<(Sym, FieldTf)> = Vec::new();
        for (sym, tf) in doc.terms.iter() {
            match self.term_max.binary_search_by_key(sym, |(s, _)| *s) {
                Ok(i) => {
                    let max = &mut self.term_max[i].1;
                    for f in 0..FIELD_COUNT {
                        max[f] = max[f].max(tf[f]);
                    }
                }
                Err(_) => adds.push((*sym, *tf)),
            }
        }
        if adds.is_empty() {
            return;
        }
        // Both lists are sorted: merge the new terms in from the back.
        let old_len = self.term_max.len();
        self.term_max.reserve_exact(adds.len());
        self.term_max
            .resize(old_len + adds.len(), (0, [0; FIELD_COUNT]));
        let (mut old, mut out) = (old_len, old_len + adds.len());
        for &(sym, tf) in adds.iter().rev() {
            while old > 0 && self.term_max[old - 1].0 > sym {
                old -= 1;
                out -= 1;
                self.term_max[out] = self.term_max[old];
            }
            out -= 1;
            self.term_max[out] = (sym, tf);
        }
    }

    fn absorb_scalars(&mut self, doc: &IndexedEpisode) {
        self.members += 1;
        for f in 0..FIELD_COUNT {
            self.min_len[f] = self.min_len[f].min(doc.field_len[f]);
        }
        self.max_recency_at = self.max_recency_at.max(doc.recency_at());
        self.max_reward = self.max_reward.max(doc.reward);
        if doc.embedding.is_some() {
            self.embeddings += 1;
        }
    }

    /// Estimated heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        footprint::vec::<(Sym, FieldTf)>(self.term_max.capacity())
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
