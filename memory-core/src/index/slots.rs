//! A shard's id → slot table, holding slots only.
//!
//! Owns [`SlotTable`]: a hash table of the live documents' slots, hashed by their episode
//! ids, which it reads from the shard's document table instead of storing them again (4 bytes
//! an entry instead of 20). Every call takes the document table; a slot in the table must
//! hold a document there, the one whose id it was hashed by. This module must never hold a
//! document or an id.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::id::EpisodeId;

use super::document::IndexedEpisode;
use super::footprint;
use super::partition::Slot;

/// The slots of a shard's documents by id.
#[derive(Default)]
pub(crate) struct SlotTable {
    slots: HashTable<Slot>,
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotTable")
            .field("len", &self.slots.len())
            .finish()
    }
}

/// The id of the document at `slot` (every slot in the table holds one).
fn id_at(docs: &[Option<IndexedEpisode>], slot: Slot) -> Option<EpisodeId> {
    docs.get(slot as usize)
        .and_then(Option::as_ref)
        .map(|d| d.id)
}

impl SlotTable {
    /// Room for `additional` more documents.
    pub(crate) fn reserve(&mut self, additional: usize, docs: &[Option<IndexedEpisode>]) {
        let hasher = &self.hasher;
        self.slots
            .reserve(additional, |&s| hasher.hash_one(id_at(docs, s)));
    }

    /// The slot of `id`.
    pub(crate) fn get(&self, id: EpisodeId, docs: &[Option<IndexedEpisode>]) -> Option<Slot> {
        self.slots
            .find(self.hasher.hash_one(Some(id)), |&s| {
                id_at(docs, s) == Some(id)
            })
            .copied()
    }

    /// Record `slot`, whose document (in `docs`) has an id not in the table yet.
    pub(crate) fn insert(&mut self, slot: Slot, docs: &[Option<IndexedEpisode>]) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(id_at(docs, slot));
        self.slots
            .insert_unique(hash, slot, |&s| hasher.hash_one(id_at(docs, s)));
    }

    /// Forget `id`; returns its slot. Call before the document leaves `docs`.
    pub(crate) fn remove(
        &mut self,
        id: EpisodeId,
        docs: &[Option<IndexedEpisode>],
    ) -> Option<Slot> {
        let entry = self
            .slots
            .find_entry(self.hasher.hash_one(Some(id)), |&s| {
                id_at(docs, s) == Some(id)
            })
            .ok()?;
        Some(entry.remove().0)
    }

    /// How many documents.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Estimated heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        footprint::hash_map::<Slot, ()>(self.slots.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: EpisodeId) -> Option<IndexedEpisode> {
        Some(IndexedEpisode::new(
            &mut crate::index::DocHeap::default(),
            id,
            1,
            0,
            std::iter::empty(),
            std::iter::empty(),
            None,
            0.0,
            0,
            None,
            None,
        ))
    }

    #[test]
    fn finds_every_live_slot_through_growth_and_removals() {
        let mut docs: Vec<Option<IndexedEpisode>> = Vec::new();
        let mut table = SlotTable::default();
        let ids: Vec<EpisodeId> = (0..2_000).map(|_| EpisodeId::new()).collect();
        for id in &ids {
            docs.push(doc(*id));
            table.insert((docs.len() - 1) as Slot, &docs);
        }
        for (slot, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
            assert_eq!(table.remove(*id, &docs), Some(slot as Slot));
            docs[slot] = None;
            assert_eq!(table.remove(*id, &docs), None);
        }
        // A freed slot reused by another episode.
        let newcomer = EpisodeId::new();
        docs[0] = doc(newcomer);
        table.insert(0, &docs);
        assert_eq!(table.len(), 2_000 - 667 + 1);
        for (slot, id) in ids.iter().enumerate() {
            let expected = (slot % 3 != 0).then_some(slot as Slot);
            assert_eq!(table.get(*id, &docs), expected, "episode {slot}");
        }
        assert_eq!(table.get(newcomer, &docs), Some(0));
        assert_eq!(table.get(EpisodeId::new(), &docs), None);
    }
}
