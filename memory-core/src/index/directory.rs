//! The id directory: where each indexed episode lives, and per-id write serialization.
//!
//! Owns the map `EpisodeId → (shard cell, version)` that answers `contains` and lets a replace
//! find the old copy when an episode moves to another shard (a sorted vector plus the changes
//! since its last merge, see `Entries`), and the *claims* that make
//! operations on one id run one at a time (two concurrent inserts of the same id into two
//! shards could otherwise both survive). The directory mutex is held only for map operations,
//! never while a shard lock is taken or waited for; a claim is a mark in the map, not a held
//! lock, so a write to one shard never waits on a write to another shard except for those
//! map operations. This module must never lock a shard.

use std::collections::{HashMap, HashSet};
use std::mem::size_of;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::id::{EpisodeId, IdRange};

use super::cell::ShardCell;
use super::footprint;

/// Where an episode is indexed.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) cell: Arc<ShardCell>,
    pub(crate) version: u64,
}

/// The map `EpisodeId → Located`: a vector sorted by id holds every entry as of the last
/// merge (32 bytes an entry, no empty room: a hash table of a million entries sits between
/// 44 % and 88 % full, about 69 bytes an entry at one million), and a hash table holds the
/// changes since, merged into the vector in place (no second copy of it) once they pass a
/// sixteenth of it; the vector stays exactly as long as its entries.
#[derive(Debug, Default)]
struct Entries {
    /// Sorted by id, no id twice.
    base: Vec<(EpisodeId, Located)>,
    /// Changes since `base` was built: `Some` adds or replaces an entry, `None` removes an
    /// entry of `base`.
    changes: HashMap<EpisodeId, Option<Located>>,
    /// Entries in all.
    len: usize,
}

/// Changes held before a merge, at least (a merge of a small base is cheap, but not free).
const MERGE_AT_LEAST: usize = 1_024;

impl Entries {
    /// `base` must be sorted by id with no id twice.
    fn from_sorted(base: Vec<(EpisodeId, Located)>) -> Self {
        debug_assert!(base.windows(2).all(|w| w[0].0 < w[1].0));
        Self {
            len: base.len(),
            base,
            changes: HashMap::new(),
        }
    }

    fn in_base(&self, id: EpisodeId) -> Option<&Located> {
        self.base
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|at| &self.base[at].1)
    }

    fn get(&self, id: EpisodeId) -> Option<&Located> {
        match self.changes.get(&id) {
            Some(change) => change.as_ref(),
            None => self.in_base(id),
        }
    }

    fn insert(&mut self, id: EpisodeId, location: Located) {
        if self.get(id).is_none() {
            self.len += 1;
        }
        self.changes.insert(id, Some(location));
        self.merge_if_due();
    }

    fn remove(&mut self, id: EpisodeId) {
        if self.get(id).is_none() {
            return;
        }
        self.len -= 1;
        if self.in_base(id).is_some() {
            self.changes.insert(id, None);
        } else {
            self.changes.remove(&id);
        }
        self.merge_if_due();
    }

    fn merge_if_due(&mut self) {
        if self.changes.len() > MERGE_AT_LEAST.max(self.base.len() / 16) {
            self.merge();
        }
    }

    /// Fold the changes into the base, in place: the base is never copied, so a merge costs
    /// the changes, not a second base (at 2M episodes the base is 61 MiB). Replacements and
    /// removals in one forward pass, then the new ids merged in from the back into room
    /// grown at the end (for a vector this large, glibc grows it by remapping its pages, not
    /// by copying them). The base ends exactly as long as its entries.
    fn merge(&mut self) {
        let mut changes: Vec<(EpisodeId, Option<Located>)> =
            std::mem::take(&mut self.changes).into_iter().collect();
        changes.sort_unstable_by_key(|(id, _)| *id);
        let mut changes = changes.into_iter().peekable();
        // New ids (a removal is only ever recorded for an id of the base).
        let mut inserts: Vec<(EpisodeId, Located)> = Vec::new();
        let mut insert = |(id, change): (EpisodeId, Option<Located>)| {
            if let Some(location) = change {
                inserts.push((id, location));
            }
        };
        self.base.retain_mut(|(id, location)| {
            while let Some(new) = changes.next_if(|(changed, _)| changed < id) {
                insert(new);
            }
            match changes.next_if(|(changed, _)| changed == id) {
                Some((_, Some(replaced))) => {
                    *location = replaced;
                    true
                }
                Some((_, None)) => false,
                None => true,
            }
        });
        changes.for_each(insert);
        let Some(filler) = inserts.first().cloned() else {
            self.base.shrink_to_fit();
            return;
        };
        // Room at the end, filled with copies of an entry (overwritten below), then the base
        // and the new ids merged from the back, each entry moved once.
        let room = inserts.len();
        self.base.reserve_exact(room);
        self.base
            .resize_with(self.base.len() + room, || filler.clone());
        let mut held = self.base.len() - room;
        for write in (0..self.base.len()).rev() {
            let Some((id, _)) = inserts.last() else {
                break;
            };
            if held > 0 && self.base[held - 1].0 > *id {
                self.base.swap(write, held - 1);
                held -= 1;
            } else if let Some(new) = inserts.pop() {
                self.base[write] = new;
            }
        }
        self.base.shrink_to_fit();
    }

    /// The entries in `range`, in no order: a slice of the base and the changes in it.
    fn in_range(&self, range: IdRange) -> impl Iterator<Item = (EpisodeId, &Located)> {
        let from = range
            .after
            .map_or(0, |a| self.base.partition_point(|(id, _)| *id <= a));
        let to = range.through.map_or(self.base.len(), |t| {
            self.base.partition_point(|(id, _)| *id <= t)
        });
        let kept = self.base[from..to.max(from)]
            .iter()
            .filter(|(id, _)| !self.changes.contains_key(id))
            .map(|(id, l)| (*id, l));
        let changed = self
            .changes
            .iter()
            .filter(move |(id, _)| range.holds(**id))
            .filter_map(|(id, l)| l.as_ref().map(|l| (*id, l)));
        kept.chain(changed)
    }

    fn heap_bytes(&self) -> usize {
        footprint::vec::<(EpisodeId, Located)>(self.base.capacity())
            + footprint::hash_map::<EpisodeId, Option<Located>>(self.changes.capacity())
    }
}

#[derive(Debug, Default)]
struct State {
    entries: Entries,
    /// Ids with an operation in flight.
    busy: HashSet<EpisodeId>,
    /// A whole-index replacement is waiting for, or doing, its swap: no new claims.
    rebuilding: bool,
}

/// The id directory.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    state: Mutex<State>,
    changed: Condvar,
}

impl Directory {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Claim `id`: wait until no other operation on it (and no rebuild) is in flight, then
    /// mark it busy until the claim is finished or dropped.
    pub(crate) fn claim(&self, id: EpisodeId) -> Claim<'_> {
        let mut st = self.lock();
        while st.rebuilding || st.busy.contains(&id) {
            st = self.wait(st);
        }
        st.busy.insert(id);
        let current = st.entries.get(id).cloned();
        Claim {
            dir: self,
            id,
            current,
            finished: false,
        }
    }

    /// The indexed version of `id`.
    pub(crate) fn version(&self, id: EpisodeId) -> Option<u64> {
        self.lock().entries.get(id).map(|l| l.version)
    }

    /// The indexed ids in `range` with their versions, in no order (the range of the sorted
    /// vector, and a pass over the changes since its merge).
    pub(crate) fn versions_in(&self, range: IdRange) -> Vec<(EpisodeId, u64)> {
        self.lock()
            .entries
            .in_range(range)
            .map(|(id, l)| (id, l.version))
            .collect()
    }

    /// How many episodes are indexed.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len
    }

    /// Replace every entry with `entries` (sorted by id, no id twice), running `swap` (which
    /// replaces the shard map) while no claim is in flight and none can start, so no write
    /// straddles the replacement.
    pub(crate) fn rebuild<R>(
        &self,
        entries: Vec<(EpisodeId, Located)>,
        swap: impl FnOnce() -> R,
    ) -> R {
        let mut st = self.lock();
        while st.rebuilding {
            st = self.wait(st);
        }
        st.rebuilding = true;
        while !st.busy.is_empty() {
            st = self.wait(st);
        }
        st.entries = Entries::from_sorted(entries);
        let result = swap();
        st.rebuilding = false;
        drop(st);
        self.changed.notify_all();
        result
    }

    /// Estimated heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        let st = self.lock();
        st.entries.heap_bytes()
            + footprint::hash_map::<EpisodeId, ()>(st.busy.capacity())
            + size_of::<State>()
    }
}

/// Exclusive right to change one id's entry; released on [`Claim::finish`] or drop.
#[derive(Debug)]
pub(crate) struct Claim<'a> {
    dir: &'a Directory,
    id: EpisodeId,
    current: Option<Located>,
    finished: bool,
}

impl Claim<'_> {
    /// Where the id was when claimed.
    pub(crate) fn current(&self) -> Option<&Located> {
        self.current.as_ref()
    }

    /// Record where the id now is (`None`: not indexed) and release the claim.
    pub(crate) fn finish(mut self, location: Option<Located>) {
        let mut st = self.dir.lock();
        match location {
            Some(l) => st.entries.insert(self.id, l),
            None => {
                st.entries.remove(self.id);
                if st.entries.len == 0 {
                    st.entries = Entries::default();
                }
            }
        }
        st.busy.remove(&self.id);
        drop(st);
        self.finished = true;
        self.dir.changed.notify_all();
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.dir.lock().busy.remove(&self.id);
            self.dir.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::shard::{Shard, ShardKey};

    fn cell(domain: &str) -> Arc<ShardCell> {
        let key = ShardKey {
            namespace: Arc::from("ns"),
            domain: Arc::from(domain),
        };
        Arc::new(ShardCell::new(key, Shard::new(3_600_000_000)))
    }

    /// Every entry of `entries` as (id, version, cell), sorted.
    fn listed(entries: &Entries, range: IdRange) -> Vec<(EpisodeId, u64, usize)> {
        let mut v: Vec<_> = entries
            .in_range(range)
            .map(|(id, l)| (id, l.version, Arc::as_ptr(&l.cell) as usize))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_sorted_base_and_its_changes_answer_like_a_hash_map_through_merges() {
        let cells = [cell("a"), cell("b")];
        let mut ids: Vec<EpisodeId> = (0..4_000).map(|_| EpisodeId::new()).collect();
        ids.sort();
        let mut model: HashMap<EpisodeId, (u64, usize)> = HashMap::new();
        // Start from a base, as a rebuild does, then change it past several merges.
        let base: Vec<(EpisodeId, Located)> = ids[..1_500]
            .iter()
            .map(|id| {
                model.insert(*id, (1, 0));
                (
                    *id,
                    Located {
                        cell: cells[0].clone(),
                        version: 1,
                    },
                )
            })
            .collect();
        let mut entries = Entries::from_sorted(base);
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut merges = 0;
        for step in 0..30_000u64 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let id = ids[(seed >> 33) as usize % ids.len()];
            let pending = entries.changes.len();
            if (seed >> 20).is_multiple_of(3) {
                entries.remove(id);
                model.remove(&id);
            } else {
                let c = (seed >> 10) as usize % 2;
                entries.insert(
                    id,
                    Located {
                        cell: cells[c].clone(),
                        version: step,
                    },
                );
                model.insert(id, (step, c));
            }
            // A merge empties the changes; only a merge empties as many.
            if entries.changes.is_empty() && pending >= MERGE_AT_LEAST {
                merges += 1;
            }
            assert_eq!(entries.len, model.len(), "step {step}");
            let probe = ids[(seed >> 40) as usize % ids.len()];
            assert_eq!(
                entries.get(probe).map(|l| l.version),
                model.get(&probe).map(|(v, _)| *v),
                "step {step}"
            );
        }
        assert!(merges >= 3, "only {merges} merges");
        let expect = |range: IdRange| {
            let mut v: Vec<_> = model
                .iter()
                .filter(|(id, _)| range.holds(**id))
                .map(|(id, (version, c))| (*id, *version, Arc::as_ptr(&cells[*c]) as usize))
                .collect();
            v.sort();
            v
        };
        for range in [
            IdRange::default(),
            IdRange {
                after: Some(ids[100]),
                through: Some(ids[2_500]),
            },
            IdRange {
                after: Some(ids[3_900]),
                through: None,
            },
        ] {
            assert_eq!(listed(&entries, range), expect(range), "{range:?}");
        }
        entries.merge();
        assert!(entries.changes.is_empty());
        assert_eq!(entries.base.len(), model.len());
        assert_eq!(entries.base.capacity(), entries.base.len(), "exact size");
        assert!(entries.base.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            listed(&entries, IdRange::default()),
            expect(IdRange::default())
        );
    }
}
