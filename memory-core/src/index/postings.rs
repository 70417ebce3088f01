//! The inverted index of one shard: per term id, the documents holding the term.
//!
//! Owns [`Postings`]: one [`PostingList`] per term id of the shard's term interner (the same
//! ids, so a list is found without a lookup), each with the documents holding the term by
//! slot, ascending, and bounds of the term's frequencies and of its documents' lengths that
//! let a query bound what the term can add to any score. A posting is 4 bytes: the slot in
//! the high 24 bits (a shard holds at most [`MAX_SLOTS`] documents) and a code of the
//! document's per-field frequencies of the term in the low 8 ([`encode`]: up to 7
//! occurrences in the description, 3 in the tags, 3 in the tools and 1 in the task type,
//! which covers nearly every posting); frequencies beyond it are kept exactly in a map of
//! the shard beside the lists, and the posting's code says to look there. The lists are the
//! only place the frequencies are kept: scoring reads them here ([`TermPostings::tf`]). Most
//! terms of a shard occur in one document, so a term's entry in the table is 8 bytes and
//! holds a list of one itself: the posting inline, its bounds those of its document. A longer
//! list keeps its postings and bounds in a vector of heap lists, where the entry points. A
//! list emptied by removals is reset (its place in that vector reused), so a term id reused
//! by the interner starts with fresh bounds. This module must never score and never
//! hold a document.

use std::collections::HashMap;

use super::document::{FieldLen, FieldTf};
use super::fields::FIELD_COUNT;
use super::footprint;
use super::interner::Sym;
use super::partition::Slot;

/// The most documents one shard holds: a slot takes 24 bits of a posting.
pub(crate) const MAX_SLOTS: usize = 1 << 24;

/// The code of frequencies that do not fit one: they are in the shard's map of exact ones.
const ESCAPE: u8 = u8::MAX;

/// The largest frequency each field's bits in a code hold, and where the bits begin.
const CODE_FIELDS: [(u8, u32); FIELD_COUNT] = [(7, 0), (3, 3), (3, 5), (1, 7)];

/// The code of `tf`, or [`ESCAPE`] when a field's frequency exceeds what its bits hold (or
/// every field is at its largest, which is the escape itself, or none holds the term).
fn encode(tf: &FieldTf) -> u8 {
    let mut code = 0;
    for (t, (max, shift)) in tf.iter().zip(CODE_FIELDS) {
        if *t > max {
            return ESCAPE;
        }
        code |= t << shift;
    }
    // Code 0 (no occurrence anywhere, which no posting has) marks "no posting" in a list's
    // head: escaped too.
    if code == 0 { ESCAPE } else { code }
}

/// The frequencies of every code but [`ESCAPE`].
static DECODE: [FieldTf; 256] = {
    let mut table = [[0; FIELD_COUNT]; 256];
    let mut code = 0;
    while code < 256 {
        let mut f = 0;
        while f < FIELD_COUNT {
            let (max, shift) = CODE_FIELDS[f];
            table[code][f] = (code as u8 >> shift) & max;
            f += 1;
        }
        code += 1;
    }
    table
};

/// One document holding a term: its slot and the code of its frequencies of the term.
/// `Posting(0)` (code 0) is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Posting(u32);

impl Posting {
    pub(crate) fn new(slot: Slot, code: u8) -> Self {
        debug_assert!((slot as usize) < MAX_SLOTS, "slot {slot}");
        Self(slot << 8 | u32::from(code))
    }

    /// The document's slot.
    #[inline]
    pub(crate) fn slot(self) -> Slot {
        self.0 >> 8
    }

    fn code(self) -> u8 {
        self.0 as u8
    }
}

/// A term's entry in the table of lists: its one posting inline (no heap block: most terms
/// of a shard occur in one document), or which heap list holds its postings. 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Head {
    /// The posting of a list of one; `Posting(0)` (no frequencies code 0) otherwise.
    one: Posting,
    /// 0, or `k + 1` for the list at `k` of [`Postings::many`].
    heap: u32,
}

/// A list kept on the heap.
#[derive(Debug, Clone, PartialEq)]
struct Many {
    /// By slot, strictly ascending.
    entries: Vec<Posting>,
    /// Per field, at least the largest frequency of the term over the documents (it never
    /// shrinks while the list lives, so it stays a bound after removals).
    max_tf: FieldTf,
    /// Per field, at most the shortest length over the documents (it never grows while the
    /// list lives).
    min_len: FieldLen,
}

impl Many {
    fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
            max_tf: [0; FIELD_COUNT],
            min_len: [u16::MAX; FIELD_COUNT],
        }
    }

    /// Widen the bounds to cover a document holding the term `tf` times, of lengths `len`.
    fn cover(&mut self, tf: &FieldTf, len: &FieldLen) {
        for f in 0..FIELD_COUNT {
            self.max_tf[f] = self.max_tf[f].max(tf[f]);
            self.min_len[f] = self.min_len[f].min(len[f]);
        }
    }

    /// Where `slot` is (`Ok`) or would go (`Err`).
    fn find(&self, slot: Slot) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&slot, |p| p.slot())
    }
}

/// Frequencies too large for a posting's code, by (term id, slot).
type Escaped = HashMap<(Sym, Slot), FieldTf>;

/// The frequencies of posting `p` of term `sym`.
#[inline]
fn tf_in(escaped: &Escaped, sym: Sym, p: Posting) -> FieldTf {
    if p.code() != ESCAPE {
        return DECODE[usize::from(p.code())];
    }
    let tf = escaped.get(&(sym, p.slot())).copied();
    debug_assert!(tf.is_some(), "escaped frequencies of ({sym}, {})", p.slot());
    tf.unwrap_or_default()
}

/// One term's posting list with what reading its frequencies takes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TermPostings<'a> {
    sym: Sym,
    /// The list of one, when not on the heap.
    one: &'a Posting,
    many: Option<&'a Many>,
    escaped: &'a Escaped,
}

impl<'a> TermPostings<'a> {
    /// The postings, by slot, strictly ascending.
    pub(crate) fn entries(&self) -> &'a [Posting] {
        match self.many {
            Some(m) => &m.entries,
            None => std::slice::from_ref(self.one),
        }
    }

    /// The frequencies of the term in the document of `p`, one of [`TermPostings::entries`].
    #[inline]
    pub(crate) fn tf(&self, p: Posting) -> FieldTf {
        tf_in(self.escaped, self.sym, p)
    }

    /// The frequencies of the term in the document at `slot`, if it holds the term.
    pub(crate) fn tf_of(&self, slot: Slot) -> Option<FieldTf> {
        let entries = self.entries();
        let i = entries.binary_search_by_key(&slot, |p| p.slot()).ok()?;
        Some(self.tf(entries[i]))
    }

    /// Per field, at least the largest frequency of the term over the documents, and at most
    /// their shortest length; `field_len` gives a document's lengths by slot.
    pub(crate) fn bounds(
        &self,
        field_len: impl Fn(Slot) -> [u32; FIELD_COUNT],
    ) -> (FieldTf, [u32; FIELD_COUNT]) {
        match self.many {
            Some(m) => (m.max_tf, m.min_len.map(u32::from)),
            None => (self.tf(*self.one), field_len(self.one.slot())),
        }
    }
}

/// Every posting list of a shard, indexed by term id.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    /// Per term id: its list of one, or where its heap list is.
    heads: Vec<Head>,
    /// The heap lists (a slot of a list emptied by removals is reused).
    many: Vec<Many>,
    /// Unused slots of `many`.
    free: Vec<u32>,
    escaped: Escaped,
}

impl Postings {
    /// Empty lists for term ids `0..counts.len()`, each with room for exactly `counts[id]`
    /// postings: a bulk load that knows its counts appends without a reallocation.
    pub(crate) fn with_capacities(counts: &[u32]) -> Self {
        let mut p = Self::default();
        p.many
            .reserve_exact(counts.iter().filter(|n| **n > 1).count());
        p.heads = counts
            .iter()
            .map(|&n| {
                if n > 1 {
                    Head {
                        one: Posting(0),
                        heap: p.keep(Many::with_capacity(n as usize)),
                    }
                } else {
                    Head::default()
                }
            })
            .collect();
        p
    }

    /// Keep `m` on the heap; returns its [`Head::heap`].
    fn keep(&mut self, m: Many) -> u32 {
        footprint::place(&mut self.many, &mut self.free, m) + 1
    }

    /// Record that the document at `slot` (below [`MAX_SLOTS`]) holds term `sym` with `tf`;
    /// `lens` holds every document's field lengths by slot, this one's included.
    pub(crate) fn add(&mut self, sym: Sym, slot: Slot, tf: &FieldTf, lens: &[FieldLen]) {
        let at = sym as usize;
        while self.heads.len() <= at {
            footprint::reserve_one(&mut self.heads);
            self.heads.push(Head::default());
        }
        let code = encode(tf);
        let posting = Posting::new(slot, code);
        let len_of = |s: Slot| lens.get(s as usize).copied().unwrap_or_default();
        let head = self.heads[at];
        let replaced = match head.heap {
            0 if head.one == Posting(0) => {
                self.heads[at].one = posting;
                None
            }
            0 if head.one.slot() == slot => {
                self.heads[at].one = posting;
                Some(head.one)
            }
            0 => {
                let first = head.one;
                let mut m = Many::with_capacity(2);
                m.cover(&tf_in(&self.escaped, sym, first), &len_of(first.slot()));
                m.cover(tf, &len_of(slot));
                if first.slot() < slot {
                    m.entries.extend([first, posting]);
                } else {
                    m.entries.extend([posting, first]);
                }
                self.heads[at] = Head {
                    one: Posting(0),
                    heap: self.keep(m),
                };
                None
            }
            k => {
                let m = &mut self.many[k as usize - 1];
                // Bulk loads and fresh slots append.
                let found = match m.entries.last() {
                    Some(last) if last.slot() >= slot => m.find(slot),
                    _ => Err(m.entries.len()),
                };
                m.cover(tf, &len_of(slot));
                match found {
                    Ok(i) => Some(std::mem::replace(&mut m.entries[i], posting)),
                    Err(i) => {
                        footprint::reserve_one(&mut m.entries);
                        m.entries.insert(i, posting);
                        None
                    }
                }
            }
        };
        if replaced.is_some_and(|p| p.code() == ESCAPE) {
            self.escaped.remove(&(sym, slot));
        }
        if code == ESCAPE {
            self.escaped.insert((sym, slot), *tf);
        }
    }

    /// Forget that the document at `slot` holds term `sym`.
    pub(crate) fn remove(&mut self, sym: Sym, slot: Slot) {
        let Some(head) = self.heads.get(sym as usize).copied() else {
            return;
        };
        let removed = match head.heap {
            0 if head.one != Posting(0) && head.one.slot() == slot => {
                self.heads[sym as usize] = Head::default();
                head.one
            }
            0 => return,
            k => {
                let m = &mut self.many[k as usize - 1];
                let Ok(i) = m.find(slot) else {
                    return;
                };
                let removed = m.entries[i];
                if m.entries.len() > 1 {
                    m.entries.remove(i);
                } else {
                    // Emptied: its heap block goes, its slot is reused, the term's bounds
                    // start afresh.
                    *m = Many::with_capacity(0);
                    self.free.push(k - 1);
                    self.heads[sym as usize] = Head::default();
                }
                removed
            }
        };
        if removed.code() == ESCAPE {
            self.escaped.remove(&(sym, slot));
        }
    }

    /// The view of `head`, the entry of `sym`, if its list holds a posting.
    fn view<'a>(&'a self, sym: Sym, head: &'a Head) -> Option<TermPostings<'a>> {
        let many = head.heap.checked_sub(1).map(|k| &self.many[k as usize]);
        let live = match many {
            Some(m) => !m.entries.is_empty(),
            None => head.one != Posting(0),
        };
        live.then_some(TermPostings {
            sym,
            one: &head.one,
            many,
            escaped: &self.escaped,
        })
    }

    /// The documents holding `sym`, if any.
    pub(crate) fn get(&self, sym: Sym) -> Option<TermPostings<'_>> {
        self.view(sym, self.heads.get(sym as usize)?)
    }

    /// Release spare capacity (after a bulk load).
    pub(crate) fn shrink(&mut self) {
        for m in &mut self.many {
            m.entries.shrink_to_fit();
        }
        self.heads.shrink_to_fit();
        self.many.shrink_to_fit();
        self.free.shrink_to_fit();
        self.escaped.shrink_to_fit();
    }

    /// Postings room allocated but unused, over all lists.
    #[cfg(test)]
    pub(crate) fn spare(&self) -> usize {
        self.many
            .iter()
            .map(|m| m.entries.capacity() - m.entries.len())
            .sum()
    }

    /// How many (term, document) pairs are held.
    #[cfg(test)]
    pub(crate) fn pairs(&self) -> usize {
        self.heads
            .iter()
            .enumerate()
            .filter_map(|(sym, head)| self.view(sym as Sym, head))
            .map(|t| t.entries().len())
            .sum()
    }

    /// Estimated heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        footprint::vec::<Head>(self.heads.capacity())
            + footprint::vec::<Many>(self.many.capacity())
            + footprint::vec::<u32>(self.free.capacity())
            + footprint::hash_map::<(Sym, Slot), FieldTf>(self.escaped.capacity())
            + self
                .many
                .iter()
                .map(|m| footprint::vec::<Posting>(m.entries.capacity()))
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(p: &Postings, sym: Sym) -> Vec<Slot> {
        p.get(sym)
            .map(|l| l.entries().iter().map(|e| e.slot()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_list_of_one_is_inline_and_grows_and_shrinks_through_it() {
        let mut p = Postings::default();
        let len = [3, 0, 0, 1];
        let lens = vec![len; 10];
        p.add(0, 7, &[1, 0, 0, 0], &lens);
        assert_eq!(slots(&p, 0), [7]);
        // Only the vector of lists (room for 4) is on the heap.
        assert_eq!(p.heap_bytes(), footprint::vec::<Head>(4));
        assert!(std::mem::size_of::<Head>() <= 8);
        p.add(0, 7, &[2, 0, 0, 0], &lens);
        assert_eq!(p.get(0).unwrap().tf_of(7), Some([2, 0, 0, 0]));
        p.add(0, 3, &[1, 0, 0, 0], &lens);
        p.add(0, 9, &[1, 0, 0, 0], &lens);
        assert_eq!(slots(&p, 0), [3, 7, 9]);
        assert_eq!(p.pairs(), 3);
        p.remove(0, 7);
        p.remove(0, 3);
        assert_eq!(slots(&p, 0), [9]);
        p.remove(0, 9);
        assert!(p.get(0).is_none());
        // Emptied: a fresh list, inline again.
        p.add(0, 1, &[0, 1, 0, 0], &lens);
        assert_eq!(slots(&p, 0), [1]);
        assert_eq!(
            p.get(0).unwrap().bounds(|_| lens[1].map(u32::from)),
            ([0, 1, 0, 0], lens[1].map(u32::from))
        );
        assert_eq!(p.spare(), 0);
    }

    #[test]
    fn every_frequency_pattern_reads_back_exactly() {
        // Every pattern a code holds, the largest of each field and one past it, and the
        // saturated byte: each comes back as it went in, whatever its code.
        let values = |max: u8| [0, 1, max, max.saturating_add(1), 255];
        let mut patterns = Vec::new();
        for a in values(7) {
            for b in values(3) {
                for c in values(3) {
                    for d in values(1) {
                        patterns.push([a, b, c, d]);
                    }
                }
            }
        }
        for code in 0..=255u8 {
            patterns.push(DECODE[usize::from(code)]);
        }
        let lens = vec![[1; FIELD_COUNT]; patterns.len()];
        let mut p = Postings::default();
        for (slot, tf) in patterns.iter().enumerate() {
            p.add(0, slot as Slot, tf, &lens);
            p.add(1, 0, tf, &lens);
            assert_eq!(p.get(1).unwrap().tf_of(0), Some(*tf));
        }
        let list = p.get(0).unwrap();
        for (slot, tf) in patterns.iter().enumerate() {
            assert_eq!(list.tf_of(slot as Slot), Some(*tf), "{tf:?}");
        }
        // Only what no code holds is in the map: one past a field's largest, 255, or all
        // fields at their largest (the escape). The term 1 keeps only its last pattern's.
        let escaped = patterns.iter().filter(|tf| encode(tf) == ESCAPE).count();
        assert!(escaped > 0 && escaped < patterns.len());
        assert_eq!(encode(&[7, 3, 3, 1]), ESCAPE);
        assert_eq!(encode(&[1, 0, 0, 0]), 1);
        let last = usize::from(encode(patterns.last().unwrap()) == ESCAPE);
        assert_eq!(p.escaped.len(), escaped + last);
        // Removals and replacements leave no stale exact frequencies behind.
        for slot in 0..patterns.len() {
            p.remove(0, slot as Slot);
        }
        p.add(1, 0, &[1, 0, 0, 0], &lens);
        assert!(p.escaped.is_empty());
        assert_eq!(p.get(1).unwrap().tf_of(0), Some([1, 0, 0, 0]));
    }

    #[test]
    fn an_emptied_heap_list_frees_its_place_for_the_next_with_fresh_bounds() {
        let mut p = Postings::default();
        let lens = [[5, 0, 0, 0], [1, 0, 0, 0], [9, 0, 0, 0], [7, 0, 0, 0]];
        p.add(0, 0, &[3, 0, 0, 0], &lens);
        p.add(0, 1, &[1, 0, 0, 0], &lens);
        p.remove(0, 0);
        p.remove(0, 1);
        assert!(p.get(0).is_none());
        assert_eq!((p.many.len(), p.free.as_slice()), (1, &[0][..]));
        p.add(1, 2, &[1, 0, 0, 0], &lens);
        p.add(1, 3, &[2, 0, 0, 0], &lens);
        assert!(p.free.is_empty() && p.many.len() == 1);
        assert_eq!(slots(&p, 1), [2, 3]);
        assert_eq!(
            p.get(1)
                .unwrap()
                .bounds(|s| lens[s as usize].map(u32::from)),
            ([2, 0, 0, 0], [7, 0, 0, 0])
        );
        assert_eq!(p.pairs(), 2);
    }

    #[test]
    fn bounds_cover_the_inline_posting_when_the_list_moves_to_the_heap() {
        let mut p = Postings::default();
        let lens = [[2, 0, 0, 1], [10, 3, 0, 1]];
        p.add(0, 0, &[1, 0, 0, 0], &lens);
        assert_eq!(
            p.get(0)
                .unwrap()
                .bounds(|s| lens[s as usize].map(u32::from)),
            ([1, 0, 0, 0], lens[0].map(u32::from))
        );
        p.add(0, 1, &[4, 1, 0, 0], &lens);
        assert_eq!(
            p.get(0)
                .unwrap()
                .bounds(|s| lens[s as usize].map(u32::from)),
            ([4, 1, 0, 0], [2, 0, 0, 1])
        );
        // Removals never tighten a heap list's bounds.
        p.remove(0, 0);
        assert_eq!(
            p.get(0)
                .unwrap()
                .bounds(|s| lens[s as usize].map(u32::from)),
            ([4, 1, 0, 0], [2, 0, 0, 1])
        );
    }

    #[test]
    fn a_bulk_load_fills_lists_sized_ahead() {
        let mut p = Postings::with_capacities(&[1, 3]);
        let lens = [[1, 0, 0, 0]; 7];
        for slot in [2, 4, 6] {
            p.add(1, slot, &[1, 0, 0, 0], &lens);
        }
        p.add(0, 5, &[1, 0, 0, 0], &lens);
        assert_eq!(slots(&p, 1), [2, 4, 6]);
        assert_eq!(slots(&p, 0), [5]);
        assert_eq!(p.spare(), 0);
    }
}
