//! The lexical access path inside a task-type partition: MaxScore over its posting lists.
//!
//! Owns the document-at-a-time walk over the posting lists of the query terms a partition
//! holds. Each list carries a bound of what its term can add to a score (`Scorer::term_bound`
//! on the list's largest frequencies and the partition's shortest lengths). Once the top-k is
//! full, a prefix of the lists whose bounds, summed with the bound of the non-lexical terms,
//! cannot reach the k-th score is *non-essential*: a document found only in them cannot rank,
//! so only the essential lists are walked for candidates, and a candidate's membership in the
//! non-essential lists is looked up only while it could still rank (MaxScore). Every candidate
//! is filtered and scored exactly as on every other path (`ShardVisit::consider`), so the path
//! changes which documents are looked at, never a score. A document holding no query term is
//! never met here: the caller walks the partition's clusters for those when
//! [`Outcome::rest_may_rank`] says they still could. This module must never skip a document
//! whose bound reaches the threshold.

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

/// One query term's list in this partition, with its bound.
struct List<'p> {
    bound: f64,
    slots: &'p [Slot],
    at: usize,
}

impl List<'_> {
    fn current(&self) -> Option<Slot> {
        self.slots.get(self.at).copied()
    }
}

/// The posting lists of `visit`'s query terms in `p`, with their bounds, in the order they
/// become non-essential: most postings per unit of bound first (a greedy answer to "which
/// lists, summing below the threshold, save the most work"; long lists of common terms and
/// feedback labels go first, short lists of rare terms last); and the bound of the
/// non-lexical terms over `p`'s members.
fn lists<'p>(visit: &ShardVisit<'_>, p: &'p Partition) -> (Vec<List<'p>>, f64) {
    let mut embeddings = false;
    let mut max_recency_at = i64::MIN;
    let mut max_reward = f64::NEG_INFINITY;
    for (_, c) in p.clusters() {
        embeddings |= c.embeddings > 0;
        max_recency_at = max_recency_at.max(c.max_recency_at);
        max_reward = max_reward.max(c.max_reward);
    }
    let rest = visit
        .scorer
        .rest_bound(embeddings, max_recency_at, max_reward);
    let mut lists: Vec<List<'p>> = visit
        .resolved
        .syms
        .iter()
        .enumerate()
        .filter_map(|(i, sym)| {
            let list = p.postings((*sym)?)?;
            let bound = visit.scorer.term_bound(i, &list.max_tf, p.min_len());
            (bound > 0.0).then_some(List {
                bound,
                slots: &list.slots,
                at: 0,
            })
        })
        .collect();
    let saved = |l: &List<'_>| l.slots.len() as f64 / l.bound;
    lists.sort_unstable_by(|a, b| saved(b).total_cmp(&saved(a)));
    (lists, rest)
}

/// How many postings the walk would start from: the work it costs at most.
pub(crate) fn work(visit: &ShardVisit<'_>, p: &Partition) -> usize {
    visit
        .resolved
        .syms
        .iter()
        .flatten()
        .filter_map(|sym| p.postings(*sym))
        .map(|l| l.slots.len())
        .sum()
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

/// Offer to `top` every member of `p` holding a query term that can still rank.
pub(crate) fn collect(visit: &ShardVisit<'_>, p: &Partition, top: &mut TopK) -> Outcome {
    let (mut lists, rest) = lists(visit, p);
    // upto[k]: the most lists 0..=k add together.
    let mut upto = Vec::with_capacity(lists.len());
    let mut sum = 0.0;
    for l in &lists {
        sum += l.bound;
        upto.push(sum);
    }
    let mut outcome = Outcome::default();
    // Seed the top-k from the rarest lists (the strongest evidence per posting) until it is
    // full, so the walk starts with a threshold that already makes common lists
    // non-essential. Seeded documents are not visited again.
    let mut seeded: Vec<Slot> = Vec::new();
    'seed: for l in lists.iter().rev() {
        for &slot in l.slots {
            if top.threshold().is_some() {
                break 'seed;
            }
            if let Some(doc) = visit.shard.doc(slot) {
                outcome.candidates += 1;
                seeded.push(slot);
                visit.consider(slot, doc, top, None);
            }
        }
    }
    seeded.sort_unstable();
    seeded.dedup();
    // Lists before `essential` cannot bring a document that ranks on their own: only the
    // others are walked for candidates.
    let mut essential = 0;
    let advance = |essential: &mut usize, top: &TopK| {
        if let Some(t) = top.threshold() {
            while *essential < upto.len() && below(rest + upto[*essential], t) {
                *essential += 1;
            }
        }
    };
    advance(&mut essential, top);
    'candidates: while essential < lists.len() {
        let Some(slot) = lists[essential..].iter().filter_map(List::current).min() else {
            break;
        };
        // What the essential lists holding the document add, then each non-essential list
        // (strongest first) while the document could still rank with all the rest.
        let mut bound = rest;
        for l in &mut lists[essential..] {
            if l.current() == Some(slot) {
                bound += l.bound;
                l.at += 1;
            }
        }
        if seeded.binary_search(&slot).is_ok() {
            continue;
        }
        if let Some(t) = top.threshold() {
            for k in (0..essential).rev() {
                if below(bound + upto[k], t) {
                    continue 'candidates;
                }
                let l = &mut lists[k];
                l.at += l.slots[l.at..].partition_point(|s| *s < slot);
                if l.current() == Some(slot) {
                    bound += l.bound;
                }
            }
            if below(bound, t) {
                continue;
            }
        }
        if let Some(doc) = visit.shard.doc(slot) {
            outcome.candidates += 1;
            visit.consider(slot, doc, top, None);
            advance(&mut essential, top);
        }
    }
    outcome.rest_may_rank = top.threshold().is_none_or(|t| !below(rest, t));
    outcome
}
