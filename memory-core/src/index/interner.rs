//! A reference-counted string interner: terms (with their document frequency) and tags.
//!
//! Owns the mapping between strings and the dense `u32` ids the rest of a shard stores, and the
//! count of documents holding each string. A string whose count drops to zero is forgotten at
//! once (its id goes to a free list for reuse), so removing the last document that used a term
//! leaves no trace of it. Ids are private to one shard and must never be compared across
//! shards; the interner must never hand out an id for a string it does not hold.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::footprint;

/// A dense id of an interned string, private to one interner.
pub(crate) type Sym = u32;

#[derive(Debug)]
struct Entry {
    text: Box<str>,
    /// Documents holding the string; 0 only for free slots.
    count: u32,
}

/// Strings with reference counts. Not thread-safe on its own: it lives inside a shard lock.
/// Each string is stored once, in its entry; the table holds only ids, hashed by their text.
#[derive(Default)]
pub(crate) struct Interner {
    ids: HashTable<Sym>,
    hasher: DefaultHashBuilder,
    entries: Vec<Entry>,
    free: Vec<Sym>,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("live", &self.ids.len())
            .field("id_bound", &self.entries.len())
            .finish()
    }
}

impl Interner {
    /// The id of `text`, if some document holds it.
    pub(crate) fn get(&self, text: &str) -> Option<Sym> {
        let hash = self.hasher.hash_one(text);
        self.ids
            .find(hash, |&id| &*self.entries[id as usize].text == text)
            .copied()
    }

    /// How many documents hold `id` (0 for an unknown id).
    pub(crate) fn count(&self, id: Sym) -> u32 {
        self.entries.get(id as usize).map_or(0, |e| e.count)
    }

    /// The string of `id`, if live.
    pub(crate) fn text(&self, id: Sym) -> Option<&str> {
        self.entries
            .get(id as usize)
            .filter(|e| e.count > 0)
            .map(|e| &*e.text)
    }

    /// Count one more document holding `text`; returns its id.
    pub(crate) fn acquire(&mut self, text: &str) -> Sym {
        if let Some(id) = self.get(text) {
            self.entries[id as usize].count += 1;
            return id;
        }
        let entry = Entry {
            text: text.into(),
            count: 1,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                id
            }
            None => {
                footprint::reserve_one(&mut self.entries);
                self.entries.push(entry);
                (self.entries.len() - 1) as Sym
            }
        };
        let Self {
            ids,
            hasher,
            entries,
            ..
        } = self;
        ids.insert_unique(hasher.hash_one(text), id, |&id| {
            hasher.hash_one(&*entries[id as usize].text)
        });
        id
    }

    /// Count one document fewer holding `id`; forgets the string when none is left.
    pub(crate) fn release(&mut self, id: Sym) {
        let Some(e) = self.entries.get_mut(id as usize) else {
            return;
        };
        if e.count == 0 {
            return;
        }
        e.count -= 1;
        if e.count == 0 {
            let text = std::mem::take(&mut e.text);
            if let Ok(slot) = self
                .ids
                .find_entry(self.hasher.hash_one(&*text), |&other| other == id)
            {
                slot.remove();
            }
            self.free.push(id);
            if self.ids.is_empty() {
                // Nothing live: release the tables too, so an emptied interner is a new one.
                *self = Self::default();
            }
        }
    }

    /// Every live string with its id, in id order.
    pub(crate) fn live(&self) -> impl Iterator<Item = (Sym, &str)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.count > 0)
            .map(|(i, e)| (i as Sym, &*e.text))
    }

    /// An interner holding `texts` (distinct) under ids `0..texts.len()`, each held by the
    /// number of documents `counts` gives (same length; every count at least 1).
    pub(crate) fn from_counted(texts: Vec<Box<str>>, counts: Vec<u32>) -> Self {
        debug_assert_eq!(texts.len(), counts.len());
        let hasher = DefaultHashBuilder::default();
        let mut ids = HashTable::with_capacity(texts.len());
        let entries: Vec<Entry> = texts
            .into_iter()
            .zip(counts)
            .map(|(text, count)| Entry { text, count })
            .collect();
        for (i, e) in entries.iter().enumerate() {
            ids.insert_unique(hasher.hash_one(&*e.text), i as Sym, |&id| {
                hasher.hash_one(&*entries[id as usize].text)
            });
        }
        Self {
            ids,
            hasher,
            entries,
            free: Vec::new(),
        }
    }

    /// One more than the largest id ever handed out and not yet forgotten with the whole
    /// table: every live id is below it (the size of a table indexed by id).
    pub(crate) fn id_bound(&self) -> usize {
        self.entries.len()
    }

    /// How many distinct strings are held.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Estimated heap bytes (see [`footprint`] for the method).
    pub(crate) fn heap_bytes(&self) -> usize {
        let texts: usize = self.entries.iter().map(|e| e.text.len()).sum();
        footprint::hash_map::<Sym, ()>(self.ids.capacity())
            + footprint::vec::<Entry>(self.entries.capacity())
            + footprint::vec::<Sym>(self.free.capacity())
            + texts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_forgets() {
        let mut i = Interner::default();
        let a = i.acquire("a");
        assert_eq!(i.acquire("a"), a);
        let b = i.acquire("b");
        assert_eq!(i.count(a), 2);
        i.release(a);
        assert_eq!(i.text(a), Some("a"));
        i.release(a);
        assert_eq!(i.get("a"), None);
        assert_eq!(i.text(a), None);
        assert_eq!(i.len(), 1);
        let c = i.acquire("c");
        assert_eq!(c, a, "free ids are reused");
        i.release(b);
        i.release(c);
        assert_eq!(i.len(), 0);
        assert!(i.entries.is_empty());
        i.release(c);
        assert_eq!(i.count(c), 0);
    }
}
