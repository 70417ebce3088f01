//! The lexical access path of a shard: its posting lists, a window of slots at a time
//! (MaxScore).
//!
//! Owns the walk over the posting lists of the query terms a shard holds. Each list carries a
//! bound of what its term can add to a score (`Resolved::bounds`: `Scorer::term_bound` on the
//! largest frequencies and shortest lengths of the list's documents). Once the top-k is full,
//! lists whose bounds sum, plus the bound of the non-lexical terms, below the k-th score are
//! *non-essential*: a document found only there cannot rank. Which ones is chosen again each
//! time the k-th score rises ([`non_essential`]): the most postings left to read for the least
//! bound, so the long lists of common words are the ones left out, up to a share of the room
//! below the k-th score ([`LEFT_OUT_SHARE`]), so a document still needs part of its score from
//! the lists read to be a candidate. The walk reads the essential lists a window of [`WINDOW`]
//! slots at a time, list after list, adding what each term adds to each of its documents (from
//! the frequencies in the list and the shard's length column) into a small array per slot of
//! the window: a sequential read of each list, with no search for the smallest slot among the
//! lists. A document met whose sum, plus the bounds of the non-essential lists holding any
//! document of the window and of its own non-lexical terms (`Scorer::rest_of` on its `RestKey`,
//! the shard's column beside the lengths: its recency, reward and embedding rounded up, so an
//! old or failed episode is not carried by the bound of the shard's newest or best), reaches
//! the k-th score is a candidate; the non-essential lists, largest bound first, are then
//! searched for the candidates (forward only, since slots ascend), each putting what it adds to
//! the candidate in place of its bound, and a candidate is dropped as soon as its sum falls
//! below the k-th score. The survivors are filtered and scored, the best bounds first (so the
//! first offers raise the k-th score for the rest), exactly as on every other path
//! (`ShardVisit::offer`), with the frequencies the lists carry: the path changes which
//! documents are looked at, never a score. Every list's cursor is at the window's end when the
//! next window begins, so the choice may change between windows; when no essential list has a
//! posting left, the walk ends. A document holding no query term is never met here: the caller
//! walks the partitions' clusters for those when [`Outcome::rest_may_rank`] says they still
//! could. This module must never skip a document whose bound reaches the threshold.

use crate::index::{FieldTf, Partition, Posting, Slot, TermPostings, TimeRewardBox};

use super::hierarchical::{Cut, below};
use super::scorer::{Hit, TermBound};
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
    /// What the term adds to a document's score.
    adds: TermBound<'s>,
    /// The list, to read its postings' frequencies.
    list: TermPostings<'s>,
    /// The list's postings (`list.entries()`, looked up once for the walk's loops).
    entries: &'s [Posting],
    at: usize,
}

impl Cursor<'_> {
    fn current(&self) -> Option<Slot> {
        self.entries.get(self.at).map(|p| p.slot())
    }

    /// Move to the first entry at or after `slot`.
    fn skip_to(&mut self, slot: Slot) {
        seek_in(self.entries, &mut self.at, slot);
    }
}

/// Move `at` forward to the first entry of `entries` at or after `slot` (galloping: cheap for
/// short moves, and logarithmic for long ones); returns it if it is `slot`'s.
fn seek_in(entries: &[Posting], at: &mut usize, slot: Slot) -> Option<Posting> {
    let rest = &entries[(*at).min(entries.len())..];
    let mut step = 1usize;
    let mut hi = 0;
    while hi < rest.len() && rest[hi].slot() < slot {
        hi += step;
        step *= 2;
    }
    let lo = hi.saturating_sub(step / 2);
    let hi = hi.min(rest.len());
    *at += lo + rest[lo..hi].partition_point(|p| p.slot() < slot);
    entries.get(*at).copied().filter(|p| p.slot() == slot)
}

/// Slots per window of the merge: the window's sums (8 bytes a slot) stay in the L1 cache.
const WINDOW: Slot = 2_048;

/// Slots of a window read before the top-k is full.
const FIRST_WINDOW: Slot = 256;

/// A list's postings are looked up through [`Window::mark`] for the candidates of a window
/// when it holds at most this many postings per candidate there (filling and clearing the map
/// costs a little per posting; a search costs more per candidate).
const MARK_PER_CANDIDATE: usize = 8;

/// No posting: the empty entry of [`Window::at`].
const NO_POSTING: u16 = u16::MAX;

/// Per slot of one window of the walk: what the essential lists' terms add, which slots any of
/// them holds, and where one list's posting of the slot is.
///
/// On the stack (20 KiB): a heap block this size per searched shard costs more to allocate
/// than to clear.
struct Window {
    sums: [f64; WINDOW as usize],
    met: [u64; WINDOW as usize / 64],
    /// Per slot: the index of its posting among the marked postings, or [`NO_POSTING`].
    at: [u16; WINDOW as usize],
}

impl Default for Window {
    fn default() -> Self {
        Self {
            sums: [0.0; WINDOW as usize],
            met: [0; WINDOW as usize / 64],
            at: [NO_POSTING; WINDOW as usize],
        }
    }
}

impl Window {
    /// Add `add` to the sum of the slot at `offset` from the window's first.
    fn add(&mut self, offset: Slot, add: f64) {
        let i = offset as usize;
        self.sums[i] += add;
        self.met[i / 64] |= 1 << (i % 64);
    }

    /// Map each slot of `postings` (of the window beginning at `first`) to its index there.
    fn mark(&mut self, first: Slot, postings: &[Posting]) {
        for (k, p) in postings.iter().enumerate() {
            // At most one posting per slot of the window: `k` < WINDOW < NO_POSTING.
            self.at[(p.slot() - first) as usize] = k as u16;
        }
    }

    /// The index of the marked posting of the slot at `offset` from the window's first.
    fn posting(&self, offset: Slot) -> Option<usize> {
        let k = self.at[offset as usize];
        (k != NO_POSTING).then_some(usize::from(k))
    }

    /// Undo [`Window::mark`].
    fn unmark(&mut self, first: Slot, postings: &[Posting]) {
        for p in postings {
            self.at[(p.slot() - first) as usize] = NO_POSTING;
        }
    }

    /// The slots met (the window beginning at `first`), ascending, each with what `keep`
    /// makes of it and its sum when it keeps it; leaves the window empty.
    #[inline]
    fn drain(&mut self, first: Slot, keep: impl Fn(Slot, f64) -> Option<f64>) -> Vec<(Slot, f64)> {
        let mut kept = Vec::new();
        for (w, word) in self.met.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let sum = std::mem::take(&mut self.sums[i]);
                // `i` < WINDOW, a `Slot`.
                let slot = first + i as Slot;
                if let Some(bound) = keep(slot, sum) {
                    kept.push((slot, bound));
                }
            }
        }
        kept
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
                adds: visit.scorer.term(i),
                list,
                entries: list.entries(),
                at: 0,
            })
        })
        .collect()
}

/// How many postings the walk reads at most: the work it costs.
pub(crate) fn work(visit: &ShardVisit<'_>) -> usize {
    cursors(visit).iter().map(|c| c.entries.len()).sum()
}

/// How many members of `p` the clusters meeting box `b` hold: the work a cluster walk costs
/// at most.
pub(crate) fn box_work(p: &Partition, b: &TimeRewardBox, bucket_width: i64) -> usize {
    let mut work = 0;
    p.meeting(b, |bucket, c| {
        let (from, to) = crate::index::bucket_span(bucket, bucket_width);
        if b.within(from, to).is_some() && c.summary().max_reward >= b.min_reward {
            work += c.members().len();
        }
    });
    work
}

/// Offer to `top` every member of `partitions` (of `visit`'s shard) holding a query term that
/// can still rank.
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
    let mut outcome = Outcome::default();
    Merge::new(visit, &mut lists, rest).run(top, &mut outcome);
    outcome.rest_may_rank = top.threshold().is_none_or(|t| !below(rest, t));
    outcome
}

/// The lists left unread take at most this share of the room between the non-lexical bound
/// and the k-th score; a document must get the rest of it from the lists read to be a
/// candidate, which keeps the searches of the unread lists to few documents. With all of it
/// (classic MaxScore), nearly every document holding a read term was a candidate: in
/// `memory-bench index` at 1M, retrieve p99 6.3-6.4 ms against 4.5-4.9 with any share from
/// 0.5 to 0.9.
const LEFT_OUT_SHARE: f64 = 0.8;

/// Choose the non-essential lists of `lists` for threshold `t`, the non-lexical terms adding
/// at most `rest`, and put them first, smallest bound first; returns how many. `key` gives a
/// list's bound, postings left to read and term. Any lists whose bounds sum, with `rest`,
/// below `t` could be non-essential; the choice takes the most postings left for the least
/// bound first (a list of common words costs the most to sum and, its bound low, the least to
/// leave out), not merely the smallest bounds, up to [`LEFT_OUT_SHARE`] of the room.
fn non_essential<T>(
    lists: &mut [T],
    rest: f64,
    t: f64,
    key: impl Fn(&T) -> (f64, usize, u32),
) -> usize {
    let per_bound = |c: &T| {
        let (bound, left, _) = key(c);
        left as f64 / bound
    };
    let term = |c: &T| key(c).2;
    lists.sort_unstable_by(|a, b| {
        per_bound(b)
            .total_cmp(&per_bound(a))
            .then(term(a).cmp(&term(b)))
    });
    let room = rest + LEFT_OUT_SHARE * (t - rest);
    let mut sum = rest;
    let mut chosen = 0;
    for i in 0..lists.len() {
        let bound = key(&lists[i]).0;
        if below(sum + bound, t) && sum + bound <= room {
            sum += bound;
            lists.swap(chosen, i);
            chosen += 1;
        }
    }
    // A candidate searches them largest bound first: one that cannot rank is dropped after
    // the fewest searches.
    lists[..chosen]
        .sort_unstable_by(|a, b| key(a).0.total_cmp(&key(b).0).then(term(a).cmp(&term(b))));
    chosen
}

/// The lists of one shard, the non-essential ones first, and what the walk over them keeps.
struct Merge<'v, 's> {
    visit: &'v ShardVisit<'s>,
    lists: &'v mut [Cursor<'s>],
    /// What the non-lexical terms can add.
    rest: f64,
    hits: Vec<Hit>,
}

impl<'v, 's> Merge<'v, 's> {
    fn new(visit: &'v ShardVisit<'s>, lists: &'v mut [Cursor<'s>], rest: f64) -> Self {
        Self {
            visit,
            hits: Vec::with_capacity(lists.len()),
            lists,
            rest,
        }
    }

    /// What the term of `c` adds to the score of the document at `slot`, which holds it `tf`
    /// times.
    #[inline]
    fn adds(&self, c: &Cursor<'_>, slot: Slot, tf: &FieldTf) -> f64 {
        c.adds.one(tf, &self.visit.shard.field_len(slot))
    }

    /// The walk, window after window, until no essential list has a posting left.
    fn run(&mut self, top: &mut TopK, outcome: &mut Outcome) {
        let n = self.lists.len();
        let mut window = Window::default();
        let mut essential = 0;
        let mut split_at = None;
        // Where each list's postings of the current window begin.
        let mut starts = vec![0; n];
        loop {
            let threshold = top.threshold();
            if threshold != split_at
                && let Some(t) = threshold
            {
                essential = non_essential(self.lists, self.rest, t, |c| {
                    (c.bound, c.entries.len() - c.at, c.term)
                });
                split_at = threshold;
            }
            let cut = threshold.map(Cut::new);
            let Some(first) = self.lists[essential..]
                .iter()
                .filter_map(Cursor::current)
                .min()
            else {
                break;
            };
            let end = first.saturating_add(if threshold.is_some() {
                WINDOW
            } else {
                FIRST_WINDOW
            });
            for (c, at) in self.lists.iter_mut().zip(starts.iter_mut()) {
                c.skip_to(first);
                *at = c.at;
            }
            for j in essential..n {
                let c = &self.lists[j];
                for p in c.entries[c.at..].iter().take_while(|p| p.slot() < end) {
                    window.add(p.slot() - first, self.adds(c, p.slot(), &c.list.tf(*p)));
                }
                self.lists[j].skip_to(end);
            }
            // Of the non-essential lists, only those holding a document of the window can add.
            let present: f64 = self.lists[..essential]
                .iter()
                .filter(|c| c.current().is_some_and(|s| s < end))
                .map(|c| c.bound)
                .sum();
            // The shard's non-lexical bound first, then the document's own, from its key.
            let (shard, scorer, rest) = (self.visit.shard, self.visit.scorer, self.rest);
            let need = cut.map_or(f64::NEG_INFINITY, |c| c.least(rest + present));
            // A bound under this cannot rank.
            let floor = cut.map_or(f64::NEG_INFINITY, |c| c.least(0.0));
            let mut candidates = window.drain(first, |slot, sum| {
                if sum < need {
                    return None;
                }
                let own = scorer.rest_of(shard.rest_key(slot));
                let bound = own.min(rest) + present + sum;
                (bound >= floor).then_some(bound)
            });
            for j in (0..essential).rev() {
                if candidates.is_empty() {
                    break;
                }
                let c = &self.lists[j];
                let mut to = c.at;
                seek_in(c.entries, &mut to, end);
                let postings = &c.entries[c.at..to];
                if postings.is_empty() {
                    continue;
                }
                // Few postings per candidate: look the candidates up in a map of the window's
                // slots to the list's postings; else search the list for each.
                let marked = postings.len() <= MARK_PER_CANDIDATE * candidates.len();
                if marked {
                    window.mark(first, postings);
                }
                let mut at = 0;
                candidates.retain_mut(|(slot, bound)| {
                    *bound -= c.bound;
                    let found = if marked {
                        window.posting(*slot - first).map(|k| postings[k])
                    } else {
                        seek_in(postings, &mut at, *slot)
                    };
                    if let Some(p) = found {
                        *bound += self.adds(c, *slot, &c.list.tf(p));
                    }
                    *bound >= floor
                });
                if marked {
                    window.unmark(first, postings);
                }
                self.lists[j].at = to;
            }
            for c in self.lists[..essential].iter_mut() {
                c.skip_to(end);
            }
            // As many as the top-k keeps, best bound first, then the others.
            let best = top.capacity().min(candidates.len());
            let order = |a: &(Slot, f64), b: &(Slot, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
            if best < candidates.len() {
                candidates.select_nth_unstable_by(best, order);
            }
            candidates[..best].sort_unstable_by(order);
            for (slot, bound) in candidates {
                // Offers made in this window may have raised the k-th score.
                if top.threshold().is_some_and(|t| below(bound, t)) {
                    continue;
                }
                self.hits.clear();
                for (c, from) in self.lists.iter().zip(&starts) {
                    let postings = &c.entries[*from..c.at];
                    if let Ok(i) = postings.binary_search_by_key(&slot, |p| p.slot()) {
                        self.hits.push((c.term, c.list.tf(postings[i])));
                    }
                }
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

    #[test]
    fn the_lists_left_out_are_those_with_the_most_postings_per_bound() {
        // (bound, postings left, term). By bound alone, 1 and 2 would be left out (20
        // postings) and 0 summed (1,000); per bound, 0 and 1 are left out and only 2 summed.
        let mut lists = vec![(0.4, 1_000, 0), (0.3, 10, 1), (0.35, 10, 2)];
        let key = |l: &(f64, usize, u32)| *l;
        assert_eq!(non_essential(&mut lists, 0.0, 1.0, key), 2);
        assert_eq!(lists, [(0.3, 10, 1), (0.4, 1_000, 0), (0.35, 10, 2)]);
        // The non-lexical bound takes its share of the threshold.
        let mut lists = vec![(0.4, 1_000, 0), (0.3, 10, 1), (0.35, 10, 2)];
        assert_eq!(non_essential(&mut lists, 0.6, 1.0, key), 1);
        assert_eq!(lists[0], (0.3, 10, 1));
        // The lists left out take at most their share of the room: both fit under the
        // threshold, only one in the share.
        let mut lists = vec![(0.45, 1_000, 0), (0.45, 900, 1)];
        assert_eq!(non_essential(&mut lists, 0.0, 1.0, key), 1);
        assert_eq!(lists[0], (0.45, 1_000, 0));
        // A sum reaching the threshold is never left out.
        let mut lists = vec![(0.5, 1_000, 0), (0.5, 1_000, 1)];
        assert_eq!(non_essential(&mut lists, 0.0, 0.5, key), 0);
    }

    #[test]
    fn seek_finds_each_slot_and_stops_at_the_next() {
        let entries: Vec<Posting> = (0..200u8)
            .map(|i| Posting::new(Slot::from(i) * 3, i))
            .collect();
        let slots: Vec<Slot> = entries.iter().map(|p| p.slot()).collect();
        for start in [0usize, 1, 7, 150] {
            for target in [0u32, 1, 3, 4, 299, 450, 597, 598, 1000] {
                let mut at = start;
                let found = seek_in(&entries, &mut at, target);
                let expected_at = start.max(slots.partition_point(|s| *s < target));
                assert_eq!(at, expected_at, "start {start}, target {target}");
                let expected = slots[start..]
                    .binary_search(&target)
                    .ok()
                    .map(|i| entries[start + i]);
                assert_eq!(found, expected, "start {start}, target {target}");
            }
        }
    }
}
