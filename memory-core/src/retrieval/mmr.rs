//! Diversity: maximal marginal relevance (MMR) re-ranking of the best candidates.
//!
//! Owns what similarity between two episodes means for diversity ([`Features`]: their
//! embeddings when both have one, else the idf-weighted Jaccard overlap of their terms over
//! every field) and the greedy MMR selection: repeatedly take the candidate maximizing
//! `λ × relevance − (1 − λ) × (greatest similarity to anything already taken)`, relevance being
//! the score divided by the best score. Ties go to the better-ranked candidate, so the order is
//! deterministic. Cost: O(pool² × terms) for a pool of `limit × mmr_pool_factor`. This module
//! must never change which episodes qualify or their scores, only their order and cut.

use std::collections::HashMap;

use crate::id::EpisodeId;
use crate::index::{Doc, Shard};

use super::scorer::idf;
use super::topk::Candidate;

/// What diversity compares two episodes on. Term identities are 64-bit FNV-1a hashes of the
/// term text, so episodes from different shards (different term ids) compare correctly.
#[derive(Debug, Clone)]
pub(crate) struct Features {
    /// (term hash, idf weight in the episode's shard), sorted by hash.
    terms: Vec<(u64, f64)>,
    vector: Option<(Vec<f32>, f64)>,
}

fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Features {
    /// The features of `doc`, which lives in `shard`.
    pub(crate) fn extract(shard: &Shard, doc: Doc<'_>) -> Self {
        let docs = shard.len() as u64;
        let mut terms: Vec<(u64, f64)> = doc
            .terms()
            .filter_map(|sym| {
                let text = shard.term_text(sym)?;
                Some((fnv1a(text), idf(docs, u64::from(shard.term_df(sym)))))
            })
            .collect();
        terms.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        terms.dedup_by_key(|t| t.0);
        Self {
            terms,
            vector: doc.embedding().map(|(e, norm)| (e.to_vec(), norm)),
        }
    }

    /// Similarity in `[0, 1]`.
    pub(crate) fn similarity(&self, other: &Features) -> f64 {
        if let (Some((a, na)), Some((b, nb))) = (&self.vector, &other.vector)
            && *na > 0.0
            && *nb > 0.0
        {
            let dot: f64 = a
                .iter()
                .zip(b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            return (dot / (na * nb)).clamp(0.0, 1.0);
        }
        let (mut i, mut j) = (0, 0);
        let (mut inter, mut union) = (0.0, 0.0);
        let (a, b) = (&self.terms, &other.terms);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => {
                    union += a[i].1;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    union += b[j].1;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    inter += a[i].1.min(b[j].1);
                    union += a[i].1.max(b[j].1);
                    i += 1;
                    j += 1;
                }
            }
        }
        union += a[i..].iter().map(|t| t.1).sum::<f64>();
        union += b[j..].iter().map(|t| t.1).sum::<f64>();
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// Select `limit` of `pool` (sorted best first) by MMR with trade-off `lambda`. Returns each
/// selected candidate with its redundancy: its greatest similarity to those selected before it.
pub(crate) fn rerank(
    pool: Vec<Candidate>,
    features: &HashMap<EpisodeId, Features>,
    limit: usize,
    lambda: f64,
) -> Vec<(Candidate, f64)> {
    let n = pool.len();
    let best = pool.first().map_or(0.0, |c| c.score);
    let relevance: Vec<f64> = pool
        .iter()
        .map(|c| if best > 0.0 { c.score / best } else { 0.0 })
        .collect();
    let feats: Vec<Option<&Features>> = pool.iter().map(|c| features.get(&c.id)).collect();
    let mut redundancy = vec![0.0f64; n];
    let mut taken = vec![false; n];
    let mut order = Vec::with_capacity(limit.min(n));
    while order.len() < limit.min(n) {
        let mut pick: Option<(usize, f64)> = None;
        for i in (0..n).filter(|&i| !taken[i]) {
            let m = lambda * relevance[i] - (1.0 - lambda) * redundancy[i];
            // Strictly greater: on a tie the earlier (better-ranked) candidate stays.
            if pick.is_none_or(|(_, best_m)| m > best_m) {
                pick = Some((i, m));
            }
        }
        let Some((p, _)) = pick else { break };
        taken[p] = true;
        order.push(p);
        if let Some(fp) = feats[p] {
            for i in (0..n).filter(|&i| !taken[i]) {
                if let Some(fi) = feats[i] {
                    redundancy[i] = redundancy[i].max(fi.similarity(fp));
                }
            }
        }
    }
    let mut slots: Vec<Option<Candidate>> = pool.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots[i].take().map(|c| (c, redundancy[i])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(terms: &[(&str, f64)]) -> Features {
        let mut terms: Vec<(u64, f64)> = terms.iter().map(|(t, w)| (fnv1a(t), *w)).collect();
        terms.sort_by_key(|t| t.0);
        Features {
            terms,
            vector: None,
        }
    }

    #[test]
    fn jaccard_is_weighted_and_bounded() {
        let a = f(&[("lamp", 2.0), ("return", 1.0)]);
        let b = f(&[("lamp", 2.0), ("exchange", 1.0)]);
        assert!((a.similarity(&b) - 0.5).abs() < 1e-12);
        assert!((a.similarity(&a) - 1.0).abs() < 1e-12);
        assert_eq!(a.similarity(&f(&[])), 0.0);
    }

    #[test]
    fn vectors_win_when_both_have_one() {
        let mut a = f(&[("x", 1.0)]);
        let mut b = f(&[("x", 1.0)]);
        a.vector = Some((vec![1.0, 0.0], 1.0));
        b.vector = Some((vec![0.0, 1.0], 1.0));
        assert_eq!(a.similarity(&b), 0.0);
    }
}
