//! The id directory: where each indexed episode lives, and per-id write serialization.
//!
//! Owns the map `EpisodeId → (shard cell, version)` that answers `contains` and lets a replace
//! find the old copy when an episode moves to another shard, and the *claims* that make
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

#[derive(Debug, Default)]
struct State {
    entries: HashMap<EpisodeId, Located>,
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
        let current = st.entries.get(&id).cloned();
        Claim {
            dir: self,
            id,
            current,
            finished: false,
        }
    }

    /// The indexed version of `id`.
    pub(crate) fn version(&self, id: EpisodeId) -> Option<u64> {
        self.lock().entries.get(&id).map(|l| l.version)
    }

    /// The indexed ids in `range` with their versions, in no order (one pass over the map).
    pub(crate) fn versions_in(&self, range: IdRange) -> Vec<(EpisodeId, u64)> {
        self.lock()
            .entries
            .iter()
            .filter(|(id, _)| range.holds(**id))
            .map(|(id, l)| (*id, l.version))
            .collect()
    }

    /// How many episodes are indexed.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Replace every entry with `entries`, running `swap` (which replaces the shard map) while
    /// no claim is in flight and none can start, so no write straddles the replacement.
    pub(crate) fn rebuild<R>(
        &self,
        entries: HashMap<EpisodeId, Located>,
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
        st.entries = entries;
        let result = swap();
        st.rebuilding = false;
        drop(st);
        self.changed.notify_all();
        result
    }

    /// Estimated heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        let st = self.lock();
        footprint::hash_map::<EpisodeId, Located>(st.entries.capacity())
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
            Some(l) => {
                st.entries.insert(self.id, l);
            }
            None => {
                st.entries.remove(&self.id);
                if st.entries.is_empty() {
                    st.entries = HashMap::new();
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
