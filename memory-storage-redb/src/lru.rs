//! In-memory bookkeeping of the episode cache: size, recency and version of every entry.
//!
//! [`Lru`] decides what a `put` does (store, skip an older version, evict which entries, or
//! first read the stored entry's version) and records what was done; it is pure and does no
//! I/O. It is rebuilt by one scan of the `episodes` table's keys and record sizes when the
//! file is opened (records are not decoded then: an entry's version is read at the first `put`
//! that needs it), so it is never persisted and can never disagree with the file for long:
//! the cache keeps it under a sync mutex held only for in-memory work.
//!
//! **Cost per entry** (64-bit): a `HashMap` slot of 48 bytes (16-byte id, 8-byte size, 8-byte
//! tick, 16-byte `Option<u64>` version) plus one control byte, at hashbrown's load factor of at
//! most 7/8 (~56 B), and a `BTreeMap<u64, EpisodeId>` entry of 24 bytes in nodes of 11 that are
//! at least half full (~35–50 B): about **100 bytes per cached episode**, ~10 MB per 100,000
//! entries, independent of the episode's size.

use std::collections::{BTreeMap, HashMap};

use memory_core::EpisodeId;

/// What the cache knows of a stored entry's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoredVersion {
    /// The stored episode's version.
    Known(u64),
    /// The record is known to be damaged (the next `put` replaces it whatever its version).
    Damaged,
    /// Not read yet (entries found at open): a `put` reads it first.
    Unread,
}

/// What the cache knows about one stored entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Encoded record size in bytes (what counts against the bound).
    pub size: u64,
    /// Last access; larger is more recent. Key into [`Lru::order`].
    pub tick: u64,
    /// The stored episode's version, as far as known.
    pub version: StoredVersion,
}

/// When a write may replace the stored entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// A `put` of this version: never over a newer stored version (monotonic). A damaged
    /// entry (unknown version) is always replaced.
    UnlessNewerStored(u64),
    /// A raw write (repair tools, fault tests): always.
    Always,
}

/// What a write must do in its transaction, decided before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The stored entry's version is unread: read it ([`Lru::set_version`]), then plan again.
    ReadVersion,
    /// A newer version is stored: write nothing.
    Skip,
    /// Remove `evict` (least recently used first), then insert the record.
    Store {
        /// Entries to remove to stay within the bound.
        evict: Vec<EpisodeId>,
    },
    /// The record alone exceeds the bound: do not cache it, and remove the stored entry for
    /// the id if there is one, so no stale version stays behind.
    TooLarge {
        /// Whether an entry for the id is stored now.
        remove_existing: bool,
    },
}

/// Size, recency and version of every cached entry, and their total.
#[derive(Debug, Default)]
pub(crate) struct Lru {
    slots: HashMap<EpisodeId, Slot>,
    /// Tick -> id, oldest access first: the eviction order.
    order: BTreeMap<u64, EpisodeId>,
    next_tick: u64,
    bytes: u64,
}

impl Lru {
    /// Entries held.
    pub fn len(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Sum of the entries' sizes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The slot of `id`, if cached.
    #[cfg(test)]
    pub fn get(&self, id: EpisodeId) -> Option<Slot> {
        self.slots.get(&id).copied()
    }

    /// Mark `id` as just used. No effect if it is not cached (it may have been evicted while
    /// the caller was reading it).
    pub fn touch(&mut self, id: EpisodeId) {
        let tick = self.tick();
        if let Some(slot) = self.slots.get_mut(&id) {
            self.order.remove(&slot.tick);
            slot.tick = tick;
            self.order.insert(tick, id);
        }
    }

    /// Record what the stored record of `id` says of its version (`Damaged`: the next `put`
    /// replaces it whatever its version).
    pub fn set_version(&mut self, id: EpisodeId, version: StoredVersion) {
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.version = version;
        }
    }

    /// Decide what writing a record of `size` bytes for `id` does under `replace` and `max`.
    pub fn plan(&self, id: EpisodeId, size: u64, replace: Replace, max: u64) -> Plan {
        let existing = self.slots.get(&id);
        if let (Replace::UnlessNewerStored(incoming), Some(slot)) = (replace, existing) {
            match slot.version {
                StoredVersion::Unread => return Plan::ReadVersion,
                StoredVersion::Known(v) if v > incoming => return Plan::Skip,
                _ => {}
            }
        }
        if size > max {
            return Plan::TooLarge {
                remove_existing: existing.is_some(),
            };
        }
        let mut total = self.bytes - existing.map_or(0, |s| s.size) + size;
        let mut evict = Vec::new();
        for victim in self.order.values() {
            if total <= max {
                break;
            }
            if *victim == id {
                continue;
            }
            if let Some(s) = self.slots.get(victim) {
                total -= s.size;
                evict.push(*victim);
            }
        }
        Plan::Store { evict }
    }

    /// The least recently used entries whose removal brings the total within `max` (used at
    /// open, when the file holds more than the configured bound).
    pub fn excess(&self, max: u64) -> Vec<EpisodeId> {
        let mut total = self.bytes;
        let mut evict = Vec::new();
        for (id, slot) in self
            .order
            .values()
            .filter_map(|id| Some((id, self.slots.get(id)?)))
        {
            if total <= max {
                break;
            }
            total -= slot.size;
            evict.push(*id);
        }
        evict
    }

    /// Record a stored entry (new or replaced) as the most recently used.
    pub fn insert(&mut self, id: EpisodeId, size: u64, version: StoredVersion) {
        self.remove(id);
        let tick = self.tick();
        self.slots.insert(
            id,
            Slot {
                size,
                tick,
                version,
            },
        );
        self.order.insert(tick, id);
        self.bytes += size;
    }

    /// Forget `id`; returns whether it was cached.
    pub fn remove(&mut self, id: EpisodeId) -> bool {
        match self.slots.remove(&id) {
            Some(slot) => {
                self.order.remove(&slot.tick);
                self.bytes -= slot.size;
                true
            }
            None => false,
        }
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.order.clear();
        self.bytes = 0;
    }

    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    /// Check the internal invariants (tests only).
    #[cfg(test)]
    fn check(&self) {
        assert_eq!(
            self.slots.len(),
            self.order.len(),
            "one order entry per slot"
        );
        for (tick, id) in &self.order {
            assert_eq!(self.slots[id].tick, *tick, "order and slots agree");
        }
        assert_eq!(
            self.bytes,
            self.slots.values().map(|s| s.size).sum::<u64>(),
            "bytes is the sum of sizes"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Apply a plan the way the cache does after its transaction commits.
    fn apply(lru: &mut Lru, id: EpisodeId, size: u64, version: StoredVersion, plan: &Plan) {
        match plan {
            Plan::Skip | Plan::ReadVersion => {}
            Plan::Store { evict } => {
                for v in evict {
                    assert!(lru.remove(*v));
                }
                lru.insert(id, size, version);
            }
            Plan::TooLarge { .. } => {
                lru.remove(id);
            }
        }
    }

    #[test]
    fn evicts_least_recently_used_first_and_skips_older_versions() {
        let ids: Vec<EpisodeId> = (0..4).map(|_| EpisodeId::new()).collect();
        let mut lru = Lru::default();
        for id in &ids[..3] {
            lru.insert(*id, 10, StoredVersion::Known(1));
        }
        lru.touch(ids[0]);
        let plan = lru.plan(ids[3], 10, Replace::UnlessNewerStored(1), 30);
        assert_eq!(
            plan,
            Plan::Store {
                evict: vec![ids[1]]
            }
        );
        assert_eq!(
            lru.plan(ids[0], 10, Replace::UnlessNewerStored(0), 30),
            Plan::Skip
        );
        assert_eq!(
            lru.plan(ids[0], 10, Replace::Always, 30),
            Plan::Store { evict: vec![] }
        );
        assert_eq!(
            lru.plan(ids[0], 31, Replace::UnlessNewerStored(2), 30),
            Plan::TooLarge {
                remove_existing: true
            }
        );
        lru.set_version(ids[0], StoredVersion::Unread);
        assert_eq!(
            lru.plan(ids[0], 10, Replace::UnlessNewerStored(5), 30),
            Plan::ReadVersion,
            "an unread version is read before a monotonic put"
        );
        assert_eq!(
            lru.plan(ids[0], 10, Replace::Always, 30),
            Plan::Store { evict: vec![] }
        );
        lru.set_version(ids[0], StoredVersion::Damaged);
        assert_eq!(lru.get(ids[0]).unwrap().version, StoredVersion::Damaged);
        assert_eq!(
            lru.plan(ids[0], 10, Replace::UnlessNewerStored(0), 30),
            Plan::Store { evict: vec![] },
            "a damaged entry is replaced whatever the version"
        );
        lru.check();
        assert_eq!(lru.excess(30), Vec::<EpisodeId>::new());
        assert_eq!(lru.excess(15), vec![ids[1], ids[2]], "oldest first");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put { id: usize, size: u64, version: u64 },
        Touch(usize),
        Remove(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0usize..8, 1u64..120, 0u64..4).prop_map(|(id, size, version)| Op::Put { id, size, version }),
            2 => (0usize..8).prop_map(Op::Touch),
            1 => (0usize..8).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Against a reference model (a recency-ordered list): the bound always holds after a
        /// put, victims are exactly the least recently used, versions never go backwards.
        #[test]
        fn matches_a_recency_list_model(ops in proptest::collection::vec(op(), 1..80)) {
            const MAX: u64 = 100;
            let ids: Vec<EpisodeId> = (0..8).map(|_| EpisodeId::new()).collect();
            let mut lru = Lru::default();
            // Model: (index, size, version), least recently used first.
            let mut model: Vec<(usize, u64, u64)> = Vec::new();
            for op in ops {
                match op {
                    Op::Put { id, size, version } => {
                        let plan = lru.plan(ids[id], size, Replace::UnlessNewerStored(version), MAX);
                        let pos = model.iter().position(|e| e.0 == id);
                        if pos.is_some_and(|p| model[p].2 > version) {
                            prop_assert_eq!(&plan, &Plan::Skip);
                        } else if size > MAX {
                            prop_assert_eq!(&plan, &Plan::TooLarge { remove_existing: pos.is_some() });
                            if let Some(p) = pos {
                                model.remove(p);
                            }
                        } else {
                            if let Some(p) = pos {
                                model.remove(p);
                            }
                            let mut expected = Vec::new();
                            let mut total: u64 = model.iter().map(|e| e.1).sum::<u64>() + size;
                            while total > MAX && !model.is_empty() {
                                let v = model.remove(0);
                                total -= v.1;
                                expected.push(ids[v.0]);
                            }
                            model.push((id, size, version));
                            prop_assert_eq!(&plan, &Plan::Store { evict: expected });
                        }
                        apply(&mut lru, ids[id], size, StoredVersion::Known(version), &plan);
                        prop_assert!(lru.bytes() <= MAX, "bound holds after a put");
                    }
                    Op::Touch(id) => {
                        lru.touch(ids[id]);
                        if let Some(p) = model.iter().position(|e| e.0 == id) {
                            let e = model.remove(p);
                            model.push(e);
                        }
                    }
                    Op::Remove(id) => {
                        let was = lru.remove(ids[id]);
                        let pos = model.iter().position(|e| e.0 == id);
                        prop_assert_eq!(was, pos.is_some());
                        if let Some(p) = pos {
                            model.remove(p);
                        }
                    }
                }
                lru.check();
                prop_assert_eq!(lru.len(), model.len() as u64);
                prop_assert_eq!(lru.bytes(), model.iter().map(|e| e.1).sum::<u64>());
                for (i, _, v) in &model {
                    prop_assert_eq!(lru.get(ids[*i]).map(|s| s.version), Some(StoredVersion::Known(*v)));
                }
            }
        }
    }
}
