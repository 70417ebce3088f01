//! The lexical access path of a shard: its posting lists, document at a time (MaxScore).
//!
//! Owns the walk over the posting lists of the query terms a shard holds. Each list carries a
//! bound of what its term can add to a score (`Resolved::bounds`: `Scorer::term_bound` on the
//! largest frequencies and shortest lengths of the list's documents). The lists are ordered by
//! bound, smallest first; once the top-k is full, the longest prefix of them whose bounds sum,
//! plus the bound of the non-lexical terms, stays below the k-th score is *non-essential*: a
//! document found only there cannot rank. The walk merges the essential lists in slot order;
//! for each document met, the bounds of the lists holding it are summed with those of the
//! non-essential ones; if that reaches the k-th score, each list's bound is replaced by what
//! its term adds to this very document (from the frequencies in the list and the shard's
//! length column), the non-essential lists are searched for the document (forward only, since
//! slots ascend), and the document is skipped as soon as the sum falls below the k-th score.
//! A document that survives is filtered and scored
//! exactly as on every other path (`ShardVisit::offer`), with the frequencies the lists carry,
//! so the path changes which documents are looked at, never a score. As the k-th score rises,
//! more lists become non-essential; when none is left, the walk ends. A document holding no
//! query term is never met here: the caller walks the partitions' clusters for those when
//! [`Outcome::rest_may_rank`] says they still could. This module must never skip a document
//! whose bound reaches the threshold.

use crate::index::{FieldTf, Partition, PostingList, Slot, TimeRewardBox};

use super::hierarchical::below;
use super::scorer::Hit;
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

/// One query term's posting list, read forward.
struct Cursor<'s> {
    /// The query term's index.
    term: u32,
    bound: f64,
    list: &'s PostingList,
    at: usize,
}

impl Cursor<'_> {
    fn current(&self) -> Option<Slot> {
        self.list.entries.get(self.at).map(|p| p.slot)
    }

    /// Move to the first entry at or after `slot` (galloping: cheap for short moves, and
    /// logarithmic for long ones); returns its frequencies if it is `slot`'s.
    fn seek(&mut self, slot: Slot) -> Option<FieldTf> {
        let entries = &self.list.entries;
        let rest = &entries[self.at.min(entries.len())..];
        let mut step = 1;
        let mut hi = 0;
        while hi < rest.len() && rest[hi].slot < slot {
            hi += step;
            step *= 2;
        }
        let lo = hi.saturating_sub(step / 2);
        let hi = hi.min(rest.len());
        self.at += lo + rest[lo..hi].partition_point(|p| p.slot < slot);
        entries
            .get(self.at)
            .filter(|p| p.slot == slot)
            .map(|p| p.tf)
    }
}

/// The posting lists of `visit`'s query terms that can add to a score.
fn cursors<'s>(visit: &ShardVisit<'s>) -> Vec<Cursor<'s>> {
    visit
        .resolved
        .lists
        .iter()
        .zip(&visit.resolved.bounds)
        .enumerate()
        .filter_map(|(i, (list, bound))| {
            let list = (*list)?;
            (*bound > 0.0).then_some(Cursor {
                term: u32::try_from(i).ok()?,
                bound: *bound,
                list,
                at: 0,
            })
        })
        .collect()
}

/// How many postings the walk reads at most: the work it costs.
pub(crate) fn work(visit: &ShardVisit<'_>) -> usize {
    cursors(visit).iter().map(|c| c.list.entries.len()).sum()
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

/// The seed pass reads the shortest lists until it has read this many postings (at least one
/// list).
const SEED_POSTINGS: usize = 2_048;

/// Offer to `top` every member of `partitions` (of `visit`'s shard) holding a query term that
/// can still rank.
///
/// Two passes. The first (the seed) sums the bounds of the shortest lists per document and
/// scores the documents with the largest sums, as many as `top` keeps: those holding several
/// telling terms, the likeliest to rank, so the k-th score is high before the second pass, a
/// MaxScore merge of all the lists, starts. That pass skips the seeds.
pub(crate) fn collect(
    visit: &ShardVisit<'_>,
    partitions: &[&Partition],
    top: &mut TopK,
) -> Outcome {
    let rest = partitions
        .iter()
        .flat_map(|p| p.clusters())
        .map(|(_, c)| visit.scorer.cluster_rest(c))
        .fold(0.0, f64::max);
    let mut lists = cursors(visit);
    // Smallest bound first; ties by term, so the walk does not depend on the query's order.
    lists.sort_unstable_by(|a, b| a.bound.total_cmp(&b.bound).then(a.term.cmp(&b.term)));
    let mut outcome = Outcome::default();
    let mut walk = Merge::new(visit, &mut lists, rest);
    let seeds = walk.seed(top, &mut outcome);
    walk.merge(&seeds, top, &mut outcome);
    outcome.rest_may_rank = top.threshold().is_none_or(|t| !below(rest, t));
    outcome
}

/// The lists of one shard, smallest bound first, and what both passes share.
struct Merge<'v, 's> {
    visit: &'v ShardVisit<'s>,
    lists: &'v mut [Cursor<'s>],
    /// `below_bound[j]`: what the lists before `j` can add together.
    below_bound: Vec<f64>,
    /// What the non-lexical terms can add.
    rest: f64,
    hits: Vec<Hit>,
}

impl<'v, 's> Merge<'v, 's> {
    fn new(visit: &'v ShardVisit<'s>, lists: &'v mut [Cursor<'s>], rest: f64) -> Self {
        let mut below_bound = Vec::with_capacity(lists.len() + 1);
        let mut sum = 0.0;
        below_bound.push(sum);
        for c in lists.iter() {
            sum += c.bound;
            below_bound.push(sum);
        }
        Self {
            visit,
            hits: Vec::with_capacity(lists.len()),
            lists,
            below_bound,
            rest,
        }
    }

    /// First pass: offer the documents with the largest bound sums over the shortest lists,
    /// as many as `top` keeps; returns their slots, ascending. Leaves every cursor at the
    /// start.
    fn seed(&mut self, top: &mut TopK, outcome: &mut Outcome) -> Vec<Slot> {
        let mut by_length: Vec<usize> = (0..self.lists.len()).collect();
        by_length.sort_unstable_by_key(|&i| (self.lists[i].list.entries.len(), i));
        let mut read = 0;
        let short: Vec<usize> = by_length
            .into_iter()
            .take_while(|&i| {
                let first = read == 0;
                read += self.lists[i].list.entries.len();
                first || read <= SEED_POSTINGS
            })
            .collect();
        let mut sums: Vec<(f64, Slot)> = Vec::new();
        while let Some(slot) = short.iter().filter_map(|&i| self.lists[i].current()).min() {
            let mut sum = 0.0;
            for &i in &short {
                let c = &mut self.lists[i];
                if c.current() == Some(slot) {
                    sum += c.bound;
                    c.at += 1;
                }
            }
            sums.push((sum, slot));
        }
        let keep = top.capacity().min(sums.len());
        if keep < sums.len() {
            sums.select_nth_unstable_by(keep, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            sums.truncate(keep);
        }
        let mut seeds: Vec<Slot> = sums.into_iter().map(|(_, slot)| slot).collect();
        seeds.sort_unstable();
        for &slot in &seeds {
            self.hits.clear();
            for c in self.lists.iter() {
                if let Some(tf) = c.list.tf_of(slot) {
                    self.hits.push((c.term, *tf));
                }
            }
            self.offer(slot, top, outcome);
        }
        for c in self.lists.iter_mut() {
            c.at = 0;
        }
        seeds
    }

    /// Second pass: the MaxScore merge, skipping `seeds` (ascending).
    fn merge(&mut self, seeds: &[Slot], top: &mut TopK, outcome: &mut Outcome) {
        let n = self.lists.len();
        let mut essential = 0;
        let mut next_seed = 0;
        loop {
            let threshold = top.threshold();
            if let Some(t) = threshold {
                while essential < n && below(self.rest + self.below_bound[essential + 1], t) {
                    essential += 1;
                }
            }
            let Some(slot) = self.lists[essential..]
                .iter()
                .filter_map(Cursor::current)
                .min()
            else {
                break;
            };
            self.hits.clear();
            let mut bound = self.rest + self.below_bound[essential];
            for c in self.lists[essential..].iter_mut() {
                if c.current() == Some(slot) {
                    bound += c.bound;
                    self.hits.push((c.term, c.list.entries[c.at].tf));
                    c.at += 1;
                }
            }
            next_seed += seeds[next_seed..].partition_point(|s| *s < slot);
            let ranks = |bound: f64| threshold.is_none_or(|t| !below(bound, t));
            if seeds.get(next_seed) == Some(&slot) || !ranks(bound) {
                continue;
            }
            // The lists' bounds allow it: put what the terms found add to this very document
            // in their place.
            let len = self.visit.shard.field_len(slot);
            let mut bound = self.rest + self.below_bound[essential];
            for (term, tf) in &self.hits {
                bound += self.visit.scorer.term_bound(*term as usize, tf, len);
            }
            if !ranks(bound) {
                continue;
            }
            // The non-essential lists, largest bound first: each takes its bound back and adds
            // what it adds to this document, if it holds it.
            let mut ranked = true;
            for c in self.lists[..essential].iter_mut().rev() {
                bound -= c.bound;
                if let Some(tf) = c.seek(slot) {
                    bound += self.visit.scorer.term_bound(c.term as usize, &tf, len);
                    self.hits.push((c.term, tf));
                }
                if !ranks(bound) {
                    ranked = false;
                    break;
                }
            }
            if ranked {
                self.offer(slot, top, outcome);
            }
        }
    }

    /// Filter, score and offer `slot` with the hits gathered.
    fn offer(&mut self, slot: Slot, top: &mut TopK, outcome: &mut Outcome) {
        let Some(doc) = self.visit.shard.doc(slot) else {
            return;
        };
        outcome.candidates += 1;
        if self.visit.filter.matches(doc) {
            self.hits.sort_unstable_by_key(|h| h.0);
            self.visit.offer(slot, doc, &self.hits, top);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Posting;

    #[test]
    fn seek_finds_each_slot_and_stops_at_the_next() {
        let list = PostingList {
            entries: (0..200u16)
                .map(|i| Posting {
                    slot: Slot::from(i) * 3,
                    tf: [i, 0, 0, 0],
                })
                .collect(),
            max_tf: [199, 0, 0, 0],
            min_len: [1, 0, 0, 0],
        };
        let entries = &list.entries;
        let slots: Vec<Slot> = entries.iter().map(|p| p.slot).collect();
        for start in [0usize, 1, 7, 150] {
            for target in [0u32, 1, 3, 4, 299, 450, 597, 598, 1000] {
                let mut c = Cursor {
                    term: 0,
                    bound: 1.0,
                    list: &list,
                    at: start,
                };
                let found = c.seek(target);
                let expected_at = start.max(slots.partition_point(|s| *s < target));
                assert_eq!(c.at, expected_at, "start {start}, target {target}");
                let expected = slots[start..]
                    .binary_search(&target)
                    .ok()
                    .map(|i| entries[start + i].tf);
                assert_eq!(found, expected, "start {start}, target {target}");
            }
        }
    }
}
