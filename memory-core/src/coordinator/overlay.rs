//! [`Overlay`]: the in-memory mirror of the journal's pending entries, by sequence number and
//! by episode, plus the mode flags of the store that owns it.
//!
//! It is what lets reads and write checks see journaled-but-not-replayed writes without
//! reading the journal. Pure data: no I/O, no locks of its own (its owner keeps it behind a
//! std mutex), never consulted for anything older than `removed_through`. Memory use grows
//! with the journal: it holds a copy of every pending entry (bounded by
//! `ResilienceConfig::max_journal_entries`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::id::EpisodeId;
use crate::store::{JournalEntry, JournalSeq};

/// Pending journal entries and the store's mode.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    entries: BTreeMap<JournalSeq, JournalEntry>,
    by_episode: HashMap<EpisodeId, BTreeSet<JournalSeq>>,
    /// Every entry up to here has been replayed and removed from the journal.
    removed_through: Option<JournalSeq>,
    /// Writes go to the journal (it holds entries, or replay has not yet confirmed it empty).
    pub(crate) journaling: bool,
    /// The journal may hold entries this mirror lacks (an append whose outcome is unknown);
    /// rebuild from the journal before trusting it.
    pub(crate) stale: bool,
}

impl Overlay {
    /// Record an appended entry (ignored if it is already known to be removed).
    pub(crate) fn insert(&mut self, seq: JournalSeq, entry: JournalEntry) {
        if self.removed_through.is_some_and(|r| seq <= r) {
            return;
        }
        self.by_episode
            .entry(entry.episode_id())
            .or_default()
            .insert(seq);
        self.entries.insert(seq, entry);
    }

    /// Forget every entry up to `seq` (replayed and removed from the journal).
    pub(crate) fn remove_through(&mut self, seq: JournalSeq) {
        let kept = self.entries.split_off(&seq.saturating_add(1));
        let removed = std::mem::replace(&mut self.entries, kept);
        for (s, entry) in removed {
            let id = entry.episode_id();
            if let Some(seqs) = self.by_episode.get_mut(&id) {
                seqs.remove(&s);
                if seqs.is_empty() {
                    self.by_episode.remove(&id);
                }
            }
        }
        self.removed_through = Some(self.removed_through.map_or(seq, |r| r.max(seq)));
    }

    /// Replace the content with `entries` read from the journal, dropping any that replay
    /// removed meanwhile.
    pub(crate) fn rebuild(&mut self, entries: Vec<(JournalSeq, JournalEntry)>) {
        self.entries.clear();
        self.by_episode.clear();
        for (seq, entry) in entries {
            self.insert(seq, entry);
        }
        self.stale = false;
        if !self.entries.is_empty() {
            self.journaling = true;
        }
    }

    /// The journal is empty: forget everything and go back to direct writes.
    pub(crate) fn drained(&mut self) {
        self.entries.clear();
        self.by_episode.clear();
        self.journaling = false;
        self.stale = false;
    }

    /// Pending entries of one episode, oldest first.
    pub(crate) fn entries_for(&self, id: EpisodeId) -> Vec<JournalEntry> {
        self.by_episode.get(&id).map_or_else(Vec::new, |seqs| {
            seqs.iter()
                .filter_map(|s| self.entries.get(s).cloned())
                .collect()
        })
    }

    /// Whether a delete of `id` is pending after `seq` (which makes every earlier entry of
    /// that episode irrelevant).
    pub(crate) fn deleted_after(&self, id: EpisodeId, seq: JournalSeq) -> bool {
        self.by_episode.get(&id).is_some_and(|seqs| {
            seqs.range(seq.saturating_add(1)..)
                .any(|s| matches!(self.entries.get(s), Some(JournalEntry::Delete(_))))
        })
    }

    /// Number of pending entries known.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::sample_episode;

    #[test]
    fn tracks_entries_by_episode_and_forgets_removed_ones() {
        let a = sample_episode("ns");
        let b = sample_episode("ns");
        let mut o = Overlay::default();
        o.insert(1, JournalEntry::Create(a.clone()));
        o.insert(2, JournalEntry::Create(b.clone()));
        o.insert(3, JournalEntry::Delete(a.id));
        assert_eq!(o.entries_for(a.id).len(), 2);
        assert!(o.deleted_after(a.id, 1));
        assert!(!o.deleted_after(a.id, 3));
        assert!(!o.deleted_after(b.id, 0));
        o.remove_through(2);
        assert_eq!(o.len(), 1);
        assert_eq!(o.entries_for(a.id), vec![JournalEntry::Delete(a.id)]);
        assert!(o.entries_for(b.id).is_empty());
        o.insert(2, JournalEntry::Delete(b.id));
        assert_eq!(o.len(), 1, "an entry already removed is not brought back");
        o.rebuild(vec![
            (1, JournalEntry::Create(a.clone())),
            (3, JournalEntry::Delete(a.id)),
        ]);
        assert_eq!(o.len(), 1, "a rebuild drops what replay removed meanwhile");
        assert!(o.journaling);
        o.drained();
        assert!(o.len() == 0 && !o.journaling);
    }
}
