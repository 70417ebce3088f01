//! The inverted index of one shard: per term id, the documents holding the term.
//!
//! Owns [`Postings`]: one [`PostingList`] per term id of the shard's term interner (the same
//! ids, so a list is found without a lookup), each with the slots of the documents holding the
//! term, ascending, the document's per-field frequencies of the term beside each slot (the
//! only place they are kept: scoring reads them here), and bounds of the term's frequencies
//! and of its documents' lengths that let a query bound what the term can add to any score.
//! Most terms of a shard occur in one document, so a list of one posting is 16 bytes with no
//! heap block: the posting inline, its bounds those of its document. A longer list keeps its
//! postings and bounds in one heap block. A list emptied by removals is reset, so a term id
//! reused by the interner starts with fresh bounds. This module must never score and never
//! hold a document.

use super::document::FieldTf;
use super::fields::FIELD_COUNT;
use super::footprint;
use super::interner::Sym;
use super::partition::Slot;

/// One document holding a term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Posting {
    pub(crate) slot: Slot,
    /// The document's frequencies of the term.
    pub(crate) tf: FieldTf,
}

/// The documents holding one term.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum PostingList {
    #[default]
    Empty,
    /// One document: its posting.
    One(Posting),
    /// Any number of documents (also none, sized ahead by a bulk load).
    Many(Box<Many>),
}

/// A list kept on the heap.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Many {
    /// By slot, strictly ascending.
    entries: Vec<Posting>,
    /// Per field, at least the largest frequency of the term over the documents (it never
    /// shrinks while the list lives, so it stays a bound after removals).
    max_tf: FieldTf,
    /// Per field, at most the shortest length over the documents, saturating at `u16::MAX`
    /// (it never grows while the list lives).
    min_len: [u16; FIELD_COUNT],
}

impl Many {
    fn with_capacity(n: usize) -> Box<Self> {
        Box::new(Self {
            entries: Vec::with_capacity(n),
            max_tf: [0; FIELD_COUNT],
            min_len: [u16::MAX; FIELD_COUNT],
        })
    }

    /// Widen the bounds to cover a document holding the term `tf` times, of lengths `len`.
    fn cover(&mut self, tf: &FieldTf, len: &[u32; FIELD_COUNT]) {
        for f in 0..FIELD_COUNT {
            self.max_tf[f] = self.max_tf[f].max(tf[f]);
            let len = u16::try_from(len[f]).unwrap_or(u16::MAX);
            self.min_len[f] = self.min_len[f].min(len);
        }
    }
}

impl PostingList {
    /// The postings, by slot, strictly ascending.
    pub(crate) fn entries(&self) -> &[Posting] {
        match self {
            Self::Empty => &[],
            Self::One(p) => std::slice::from_ref(p),
            Self::Many(m) => &m.entries,
        }
    }

    /// Whether the list holds no posting.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Per field, at least the largest frequency of the term over the documents, and at most
    /// their shortest length; `field_len` gives a document's lengths by slot.
    pub(crate) fn bounds(
        &self,
        field_len: impl Fn(Slot) -> [u32; FIELD_COUNT],
    ) -> (FieldTf, [u32; FIELD_COUNT]) {
        match self {
            Self::Empty => ([0; FIELD_COUNT], [u32::MAX; FIELD_COUNT]),
            Self::One(p) => (p.tf, field_len(p.slot)),
            Self::Many(m) => (m.max_tf, m.min_len.map(u32::from)),
        }
    }

    /// Record that the document at `slot` holds the term `tf` times; `lens` holds every
    /// document's field lengths by slot, this one's included.
    fn add(&mut self, slot: Slot, tf: &FieldTf, lens: &[[u32; FIELD_COUNT]]) {
        let posting = Posting { slot, tf: *tf };
        let len_of = |s: Slot| lens.get(s as usize).copied().unwrap_or_default();
        // Bulk loads and fresh slots append.
        let at = match self.entries().last() {
            Some(last) if last.slot >= slot => self.find(slot),
            _ => Err(self.entries().len()),
        };
        match (&mut *self, at) {
            (Self::Empty, _) => *self = Self::One(posting),
            (Self::One(p), Ok(_)) => *p = posting,
            (Self::One(p), Err(i)) => {
                let first = *p;
                let mut m = Many::with_capacity(2);
                m.cover(&first.tf, &len_of(first.slot));
                m.entries.push(first);
                m.entries.insert(i, posting);
                m.cover(tf, &len_of(slot));
                *self = Self::Many(m);
            }
            (Self::Many(m), at) => {
                match at {
                    Ok(i) => m.entries[i] = posting,
                    Err(i) => {
                        footprint::reserve_one(&mut m.entries);
                        m.entries.insert(i, posting);
                    }
                }
                m.cover(tf, &len_of(slot));
            }
        }
    }

    /// Forget the document at `slot`.
    fn remove(&mut self, slot: Slot) {
        let Ok(i) = self.find(slot) else {
            return;
        };
        match self {
            Self::Many(m) if m.entries.len() > 1 => {
                m.entries.remove(i);
            }
            _ => *self = Self::Empty,
        }
    }

    /// Heap bytes of the postings.
    fn heap_bytes(&self) -> usize {
        match self {
            Self::Empty | Self::One(_) => 0,
            Self::Many(m) => {
                std::mem::size_of::<Many>() + footprint::vec::<Posting>(m.entries.capacity())
            }
        }
    }

    /// The frequencies of the term in the document at `slot`, if it holds the term.
    pub(crate) fn tf_of(&self, slot: Slot) -> Option<&FieldTf> {
        let i = self.find(slot).ok()?;
        Some(&self.entries()[i].tf)
    }

    /// Where `slot` is (`Ok`) or would go (`Err`).
    pub(crate) fn find(&self, slot: Slot) -> Result<usize, usize> {
        self.entries().binary_search_by_key(&slot, |p| p.slot)
    }
}

/// Every posting list of a shard, indexed by term id.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    lists: Vec<PostingList>,
}

impl Postings {
    /// Empty lists for term ids `0..counts.len()`, each with room for exactly `counts[id]`
    /// postings: a bulk load that knows its counts appends without a reallocation.
    pub(crate) fn with_capacities(counts: &[u32]) -> Self {
        Self {
            lists: counts
                .iter()
                .map(|&n| {
                    if n > 1 {
                        PostingList::Many(Many::with_capacity(n as usize))
                    } else {
                        PostingList::Empty
                    }
                })
                .collect(),
        }
    }

    /// Record that the document at `slot` holds term `sym` with `tf`; `lens` holds every
    /// document's field lengths by slot, this one's included.
    pub(crate) fn add(&mut self, sym: Sym, slot: Slot, tf: &FieldTf, lens: &[[u32; FIELD_COUNT]]) {
        let at = sym as usize;
        while self.lists.len() <= at {
            footprint::reserve_one(&mut self.lists);
            self.lists.push(PostingList::Empty);
        }
        self.lists[at].add(slot, tf, lens);
    }

    /// Forget that the document at `slot` holds term `sym`.
    pub(crate) fn remove(&mut self, sym: Sym, slot: Slot) {
        if let Some(list) = self.lists.get_mut(sym as usize) {
            list.remove(slot);
        }
    }

    /// Every live list with its term id, by term id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Sym, &PostingList)> {
        self.lists
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(sym, l)| (sym as Sym, l))
    }

    /// The documents holding `sym`, if any.
    pub(crate) fn get(&self, sym: Sym) -> Option<&PostingList> {
        self.lists.get(sym as usize).filter(|l| !l.is_empty())
    }

    /// Release spare capacity (after a bulk load).
    pub(crate) fn shrink(&mut self) {
        for list in &mut self.lists {
            if let PostingList::Many(m) = list {
                m.entries.shrink_to_fit();
            }
        }
        self.lists.shrink_to_fit();
    }

    /// Postings room allocated but unused, over all lists.
    #[cfg(test)]
    pub(crate) fn spare(&self) -> usize {
        self.lists
            .iter()
            .map(|l| match l {
                PostingList::Many(m) => m.entries.capacity() - m.entries.len(),
                _ => 0,
            })
            .sum()
    }

    /// How many (term, document) pairs are held.
    #[cfg(test)]
    pub(crate) fn pairs(&self) -> usize {
        self.lists.iter().map(|l| l.entries().len()).sum()
    }

    /// Estimated heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        footprint::vec::<PostingList>(self.lists.capacity())
            + self
                .lists
                .iter()
                .map(PostingList::heap_bytes)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(p: &Postings, sym: Sym) -> Vec<Slot> {
        p.get(sym)
            .map(|l| l.entries().iter().map(|e| e.slot).collect())
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
        assert_eq!(p.heap_bytes(), footprint::vec::<PostingList>(4));
        assert!(std::mem::size_of::<PostingList>() <= 16);
        p.add(0, 7, &[2, 0, 0, 0], &lens);
        assert_eq!(p.get(0).unwrap().tf_of(7), Some(&[2, 0, 0, 0]));
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
            p.get(0).unwrap().bounds(|_| lens[1]),
            ([0, 1, 0, 0], lens[1])
        );
        assert_eq!(p.spare(), 0);
    }

    #[test]
    fn bounds_cover_the_inline_posting_when_the_list_moves_to_the_heap() {
        let mut p = Postings::default();
        let lens = [[2, 0, 0, 1], [10, 3, 0, 1]];
        p.add(0, 0, &[1, 0, 0, 0], &lens);
        assert_eq!(
            p.get(0).unwrap().bounds(|s| lens[s as usize]),
            ([1, 0, 0, 0], lens[0])
        );
        p.add(0, 1, &[4, 1, 0, 0], &lens);
        assert_eq!(
            p.get(0).unwrap().bounds(|s| lens[s as usize]),
            ([4, 1, 0, 0], [2, 0, 0, 1])
        );
        // Removals never tighten a heap list's bounds.
        p.remove(0, 0);
        assert_eq!(
            p.get(0).unwrap().bounds(|s| lens[s as usize]),
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
