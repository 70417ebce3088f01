//! The inverted index of one shard: per term id, the documents holding the term.
//!
//! Owns [`Postings`]: one [`PostingList`] per term id of the shard's term interner (the same
//! ids, so a list is found without a lookup), each with the slots of the documents holding the
//! term, ascending, the document's per-field frequencies of the term beside each slot (the
//! only place they are kept: scoring reads them here; a list of one posting keeps it inline,
//! with no heap block, since most terms of a shard occur in one document), and bounds of the term's frequencies
//! and of its documents' lengths that let a query bound what the term can add to any score. A
//! list emptied by removals is reset, so a term id reused by the interner starts with fresh
//! bounds. This module must never score and never hold a document.

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

/// The postings of one list: one inline, or a vector.
#[derive(Debug, Clone, PartialEq)]
enum Entries {
    One(Posting),
    Many(Vec<Posting>),
}

/// The documents holding one term.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PostingList {
    /// By slot, strictly ascending.
    entries: Entries,
    /// Per field, at least the largest frequency of the term over the documents (it never
    /// shrinks while the list lives, so it stays a bound after removals).
    pub(crate) max_tf: FieldTf,
    /// Per field, at most the shortest length over the documents, saturating at `u16::MAX`
    /// (it never grows while the list lives).
    pub(crate) min_len: [u16; FIELD_COUNT],
}

impl PostingList {
    /// The postings, by slot, strictly ascending.
    pub(crate) fn entries(&self) -> &[Posting] {
        match &self.entries {
            Entries::One(p) => std::slice::from_ref(p),
            Entries::Many(v) => v,
        }
    }

    /// How many postings.
    pub(crate) fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether the list holds no posting.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(&self.entries, Entries::Many(v) if v.is_empty())
    }

    /// Put `posting` at `i` (where [`PostingList::find`] says it goes).
    fn insert(&mut self, i: usize, posting: Posting) {
        match &mut self.entries {
            // Empty and not sized ahead by a bulk load: inline.
            Entries::Many(v) if v.capacity() == 0 => self.entries = Entries::One(posting),
            Entries::Many(v) => {
                footprint::reserve_one(v);
                v.insert(i, posting);
            }
            Entries::One(first) => {
                let mut v = Vec::with_capacity(2);
                v.push(*first);
                v.insert(i, posting);
                self.entries = Entries::Many(v);
            }
        }
    }

    /// Take out the posting at `i`.
    fn remove(&mut self, i: usize) {
        match &mut self.entries {
            Entries::One(_) => self.entries = Entries::Many(Vec::new()),
            Entries::Many(v) => {
                v.remove(i);
            }
        }
    }

    /// Heap bytes of the postings.
    fn heap_bytes(&self) -> usize {
        match &self.entries {
            Entries::One(_) => 0,
            Entries::Many(v) => footprint::vec::<Posting>(v.capacity()),
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

impl Default for PostingList {
    fn default() -> Self {
        Self {
            entries: Entries::Many(Vec::new()),
            max_tf: [0; FIELD_COUNT],
            min_len: [u16::MAX; FIELD_COUNT],
        }
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
                .map(|&n| PostingList {
                    entries: Entries::Many(if n > 1 {
                        Vec::with_capacity(n as usize)
                    } else {
                        Vec::new()
                    }),
                    ..PostingList::default()
                })
                .collect(),
        }
    }

    /// Record that the document at `slot` (field lengths `len`) holds term `sym` with `tf`.
    pub(crate) fn add(&mut self, sym: Sym, slot: Slot, tf: &FieldTf, len: &[u32; FIELD_COUNT]) {
        let at = sym as usize;
        while self.lists.len() <= at {
            footprint::reserve_one(&mut self.lists);
            self.lists.push(PostingList::default());
        }
        let list = &mut self.lists[at];
        let posting = Posting { slot, tf: *tf };
        // Bulk loads and fresh slots append.
        let at = match list.entries().last() {
            Some(last) if last.slot >= slot => list.find(slot),
            _ => Err(list.len()),
        };
        match at {
            Ok(i) => match &mut list.entries {
                Entries::One(p) => *p = posting,
                Entries::Many(v) => v[i] = posting,
            },
            Err(i) => list.insert(i, posting),
        }
        for f in 0..FIELD_COUNT {
            list.max_tf[f] = list.max_tf[f].max(tf[f]);
            let len = u16::try_from(len[f]).unwrap_or(u16::MAX);
            list.min_len[f] = list.min_len[f].min(len);
        }
    }

    /// Forget that the document at `slot` holds term `sym`.
    pub(crate) fn remove(&mut self, sym: Sym, slot: Slot) {
        let Some(list) = self.lists.get_mut(sym as usize) else {
            return;
        };
        if let Ok(i) = list.find(slot) {
            list.remove(i);
        }
        if list.is_empty() {
            *list = PostingList::default();
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
            if let Entries::Many(v) = &mut list.entries {
                v.shrink_to_fit();
            }
        }
        self.lists.shrink_to_fit();
    }

    /// Postings room allocated but unused, over all lists.
    #[cfg(test)]
    pub(crate) fn spare(&self) -> usize {
        self.lists
            .iter()
            .map(|l| match &l.entries {
                Entries::One(_) => 0,
                Entries::Many(v) => v.capacity() - v.len(),
            })
            .sum()
    }

    /// How many (term, document) pairs are held.
    #[cfg(test)]
    pub(crate) fn pairs(&self) -> usize {
        self.lists.iter().map(PostingList::len).sum()
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
        p.add(0, 7, &[1, 0, 0, 0], &len);
        assert_eq!(slots(&p, 0), [7]);
        // Only the vector of lists (room for 4) is on the heap.
        assert_eq!(p.heap_bytes(), footprint::vec::<PostingList>(4));
        assert!(std::mem::size_of::<PostingList>() <= 40);
        p.add(0, 7, &[2, 0, 0, 0], &len);
        assert_eq!(p.get(0).unwrap().tf_of(7), Some(&[2, 0, 0, 0]));
        p.add(0, 3, &[1, 0, 0, 0], &len);
        p.add(0, 9, &[1, 0, 0, 0], &len);
        assert_eq!(slots(&p, 0), [3, 7, 9]);
        assert_eq!(p.pairs(), 3);
        p.remove(0, 7);
        p.remove(0, 3);
        assert_eq!(slots(&p, 0), [9]);
        p.remove(0, 9);
        assert!(p.get(0).is_none());
        // Emptied: a fresh list, inline again.
        p.add(0, 1, &[0, 1, 0, 0], &[0, 5, 0, 0]);
        assert_eq!(slots(&p, 0), [1]);
        assert_eq!(p.get(0).unwrap().max_tf, [0, 1, 0, 0]);
        assert_eq!(p.spare(), 0);
    }

    #[test]
    fn a_bulk_load_fills_lists_sized_ahead() {
        let mut p = Postings::with_capacities(&[1, 3]);
        for slot in [2, 4, 6] {
            p.add(1, slot, &[1, 0, 0, 0], &[1, 0, 0, 0]);
        }
        p.add(0, 5, &[1, 0, 0, 0], &[1, 0, 0, 0]);
        assert_eq!(slots(&p, 1), [2, 4, 6]);
        assert_eq!(slots(&p, 0), [5]);
        assert_eq!(p.spare(), 0);
    }
}
