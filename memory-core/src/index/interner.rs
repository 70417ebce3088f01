//! A reference-counted string interner: terms (with their document frequency) and tags.
//!
//! Owns the mapping between strings and the dense `u32` ids the rest of a shard stores, and the
//! count of documents holding each string. A string whose count drops to zero is forgotten at
//! once (its id goes to a free list for reuse), so removing the last document that used a term
//! leaves no trace of it. The strings live end to end in one arena, not one heap block each
//! (most terms are a few bytes, smaller than an allocation's own overhead); a forgotten
//! string's bytes stay there, dead, until they outweigh the live ones and the arena is
//! rewritten. Ids are private to one shard and must never be compared across shards; the
//! interner must never hand out an id for a string it does not hold.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::footprint;

/// A dense id of an interned string, private to one interner.
pub(crate) type Sym = u32;

/// The longest string an interner holds (its length is kept in a `u32`). Terms are cut far
/// below it; a longer tag is refused before it reaches the index.
pub(crate) const MAX_STRING_BYTES: usize = u32::MAX as usize;

/// Where an interned string is in the arena, and how many documents hold it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: usize,
    len: u32,
    /// Documents holding the string; 0 only for free slots.
    count: u32,
}

/// Strings with reference counts. Not thread-safe on its own: it lives inside a shard lock.
/// Each string is stored once, in the arena; the table holds only ids, hashed by their text.
#[derive(Default)]
pub(crate) struct Interner {
    ids: HashTable<Sym>,
    hasher: DefaultHashBuilder,
    entries: Vec<Entry>,
    free: Vec<Sym>,
    /// The strings, at their entries' offsets, and dead bytes in between.
    arena: String,
    /// Bytes of `arena` no live entry points to.
    dead: usize,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("live", &self.ids.len())
            .field("id_bound", &self.entries.len())
            .field("arena", &self.arena.len())
            .finish()
    }
}

/// The text of `e` in `arena`.
fn text_in(arena: &str, e: Entry) -> &str {
    &arena[e.at..e.at + e.len as usize]
}

impl Interner {
    /// The id of `text`, if some document holds it.
    pub(crate) fn get(&self, text: &str) -> Option<Sym> {
        let hash = self.hasher.hash_one(text);
        self.ids
            .find(hash, |&id| {
                text_in(&self.arena, self.entries[id as usize]) == text
            })
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
            .map(|e| text_in(&self.arena, *e))
    }

    /// Count one more document holding `text` (at most [`MAX_STRING_BYTES`]); returns its id.
    pub(crate) fn acquire(&mut self, text: &str) -> Sym {
        if let Some(id) = self.get(text) {
            self.entries[id as usize].count += 1;
            return id;
        }
        let len = u32::try_from(text.len()).expect("callers check MAX_STRING_BYTES");
        if self.arena.capacity() - self.arena.len() < text.len() {
            // Grow by an eighth, as the other long-lived vectors (`footprint::reserve_one`).
            self.arena
                .reserve_exact(text.len().max(self.arena.len() / 8).max(64));
        }
        let entry = Entry {
            at: self.arena.len(),
            len,
            count: 1,
        };
        self.arena.push_str(text);
        let id = footprint::place(&mut self.entries, &mut self.free, entry);
        let Self {
            ids,
            hasher,
            entries,
            arena,
            ..
        } = self;
        ids.insert_unique(hasher.hash_one(text), id, |&id| {
            hasher.hash_one(text_in(arena, entries[id as usize]))
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
        if e.count > 0 {
            return;
        }
        let e = *e;
        let hash = self.hasher.hash_one(text_in(&self.arena, e));
        if let Ok(slot) = self.ids.find_entry(hash, |&other| other == id) {
            slot.remove();
        }
        self.free.push(id);
        self.dead += e.len as usize;
        if self.ids.is_empty() {
            // Nothing live: release the tables too, so an emptied interner is a new one.
            *self = Self::default();
        } else if self.dead > self.arena.len() / 2 {
            self.compact();
        }
    }

    /// Rewrite the arena with the live strings only.
    fn compact(&mut self) {
        let mut arena = String::with_capacity(self.arena.len() - self.dead);
        for e in self.entries.iter_mut().filter(|e| e.count > 0) {
            let at = arena.len();
            arena.push_str(text_in(&self.arena, *e));
            e.at = at;
        }
        self.arena = arena;
        self.dead = 0;
    }

    /// Every live string with its id, in id order.
    pub(crate) fn live(&self) -> impl Iterator<Item = (Sym, &str)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.count > 0)
            .map(|(i, e)| (i as Sym, text_in(&self.arena, *e)))
    }

    /// An interner holding `texts` (each at most [`MAX_STRING_BYTES`]) under ids
    /// `0..texts.len()`, each held by the number of documents `counts` gives (same length;
    /// every count at least 1); `None` if a string appears twice.
    pub(crate) fn from_counted(texts: &[String], counts: Vec<u32>) -> Option<Self> {
        debug_assert_eq!(texts.len(), counts.len());
        let hasher = DefaultHashBuilder::default();
        let mut arena = String::with_capacity(texts.iter().map(|t| t.len()).sum());
        let entries: Vec<Entry> = texts
            .iter()
            .zip(counts)
            .map(|(text, count)| {
                let at = arena.len();
                arena.push_str(text);
                Entry {
                    at,
                    len: u32::try_from(text.len()).expect("callers check MAX_STRING_BYTES"),
                    count,
                }
            })
            .collect();
        let mut ids = HashTable::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let text = text_in(&arena, *e);
            let slot = ids.entry(
                hasher.hash_one(text),
                |&id| text_in(&arena, entries[id as usize]) == text,
                |&id| hasher.hash_one(text_in(&arena, entries[id as usize])),
            );
            match slot {
                hashbrown::hash_table::Entry::Occupied(_) => return None,
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(i as Sym);
                }
            }
        }
        Some(Self {
            ids,
            hasher,
            entries,
            free: Vec::new(),
            arena,
            dead: 0,
        })
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
        footprint::hash_map::<Sym, ()>(self.ids.capacity())
            + footprint::vec::<Entry>(self.entries.capacity())
            + footprint::vec::<Sym>(self.free.capacity())
            + self.arena.capacity()
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

    #[test]
    fn dead_strings_are_dropped_from_the_arena_and_the_rest_still_found() {
        let mut i = Interner::default();
        let words: Vec<String> = (0..1_000).map(|k| format!("word{k}")).collect();
        let ids: Vec<Sym> = words.iter().map(|w| i.acquire(w)).collect();
        let full = i.arena.len();
        for (k, id) in ids.iter().enumerate().filter(|(k, _)| k % 4 != 0) {
            i.release(*id);
            assert_eq!(i.get(&words[k]), None);
        }
        assert!(
            i.arena.len() < full / 2,
            "{} of {full} bytes kept",
            i.arena.len()
        );
        assert!(i.dead <= i.arena.len() / 2);
        for (k, id) in ids.iter().enumerate().filter(|(k, _)| k % 4 == 0) {
            assert_eq!(i.get(&words[k]), Some(*id));
            assert_eq!(i.text(*id), Some(words[k].as_str()));
        }
        let live: Vec<&str> = i.live().map(|(_, t)| t).collect();
        assert_eq!(live.len(), 250);
        // Freed ids are reused for new strings, which land after the live ones.
        let fresh = i.acquire("fresh");
        assert!(ids.contains(&fresh));
        assert_eq!(i.text(fresh), Some("fresh"));
        let rebuilt = Interner::from_counted(&words[..3], vec![1, 2, 3]).unwrap();
        assert_eq!(rebuilt.get("word2"), Some(2));
        assert_eq!(rebuilt.count(1), 2);
        let twice = [words[0].clone(), words[1].clone(), words[0].clone()];
        assert!(Interner::from_counted(&twice, vec![1, 1, 1]).is_none());
    }
}
