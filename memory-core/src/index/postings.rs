//! The inverted index of one shard: per term id, the documents holding the term.
//!
//! Owns [`Postings`]: one [`PostingList`] per term id of the shard's term interner (the same
//! ids, so a list is found without a lookup), each with the slots of the documents holding the
//! term, ascending, the document's per-field frequencies of the term beside each slot (the
//! only place they are kept: scoring reads them here), and bounds of the term's frequencies
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

/// The documents holding one term.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PostingList {
    /// By slot, strictly ascending (one vector: one allocation per term).
    pub(crate) entries: Vec<Posting>,
    /// Per field, at least the largest frequency of the term over the documents (it never
    /// shrinks while the list lives, so it stays a bound after removals).
    pub(crate) max_tf: FieldTf,
    /// Per field, at most the shortest length over the documents, saturating at `u16::MAX`
    /// (it never grows while the list lives).
    pub(crate) min_len: [u16; FIELD_COUNT],
}

impl PostingList {
    /// The frequencies of the term in the document at `slot`, if it holds the term.
    pub(crate) fn tf_of(&self, slot: Slot) -> Option<&FieldTf> {
        let i = self.find(slot).ok()?;
        Some(&self.entries[i].tf)
    }

    /// Where `slot` is (`Ok`) or would go (`Err`).
    pub(crate) fn find(&self, slot: Slot) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&slot, |p| p.slot)
    }
}

impl Default for PostingList {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
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
                    entries: Vec::with_capacity(n as usize),
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
        let at = match list.entries.last() {
            Some(last) if last.slot >= slot => list.find(slot),
            _ => Err(list.entries.len()),
        };
        match at {
            Ok(i) => list.entries[i] = posting,
            Err(i) => {
                footprint::reserve_one(&mut list.entries);
                list.entries.insert(i, posting);
            }
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
            list.entries.remove(i);
        }
        if list.entries.is_empty() {
            *list = PostingList::default();
        }
    }

    /// Every live list with its term id, by term id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Sym, &PostingList)> {
        self.lists
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.entries.is_empty())
            .map(|(sym, l)| (sym as Sym, l))
    }

    /// The documents holding `sym`, if any.
    pub(crate) fn get(&self, sym: Sym) -> Option<&PostingList> {
        self.lists
            .get(sym as usize)
            .filter(|l| !l.entries.is_empty())
    }

    /// Release spare capacity (after a bulk load).
    pub(crate) fn shrink(&mut self) {
        for list in &mut self.lists {
            list.entries.shrink_to_fit();
        }
        self.lists.shrink_to_fit();
    }

    /// Postings room allocated but unused, over all lists.
    #[cfg(test)]
    pub(crate) fn spare(&self) -> usize {
        self.lists
            .iter()
            .map(|l| l.entries.capacity() - l.entries.len())
            .sum()
    }

    /// How many (term, document) pairs are held.
    #[cfg(test)]
    pub(crate) fn pairs(&self) -> usize {
        self.lists.iter().map(|l| l.entries.len()).sum()
    }

    /// Estimated heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        footprint::vec::<PostingList>(self.lists.capacity())
            + self
                .lists
                .iter()
                .map(|l| footprint::vec::<Posting>(l.entries.capacity()))
                .sum::<usize>()
    }
}
