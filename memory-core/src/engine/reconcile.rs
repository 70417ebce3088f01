//! Reconciliation: compare the durable store (the truth), the cache and the index, and repair
//! every divergence.
//!
//! [`plan`] is pure: from what was observed it decides which repairs to attempt. `apply`
//! then performs each repair only after re-reading the episode from the durable store, so a
//! write that landed after the scan is never undone: cache `put` and index `insert` never
//! replace a newer version, and removals happen only when the durable store, read again, no
//! longer has the episode. A divergence created by a write racing the pass is left for the
//! next pass, which is why a pass is idempotent and safe to run at any time.

use std::collections::{HashMap, VecDeque};

use crate::engine::fence::CacheFence;
use crate::episode::Episode;
use crate::error::Result;
use crate::id::{EpisodeId, IdRange};
use crate::index::SpatiotemporalIndex;
use crate::store::{CacheStore, CachedVersion, DurableStore};

/// What one reconciliation pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// Episodes in the durable store when the pass scanned it.
    pub durable_episodes: u64,
    /// Journaled writes replayed into the durable store first.
    pub journal_replayed: u64,
    /// Journaled writes still pending (the durable store is still unavailable); the rest of
    /// the pass is skipped while any remain, since the durable store cannot be compared.
    pub journal_remaining: u64,
    /// Cache entries of episodes the durable store does not have, removed.
    pub cache_orphans: u64,
    /// Damaged cache records, removed (and refilled from the durable store when completed).
    pub cache_corrupt: u64,
    /// Cache entries older than the durable store, refreshed (or removed if the episode is no
    /// longer completed).
    pub cache_stale: u64,
    /// Cache entries newer than the durable store (left by a write whose durable commit was
    /// undone), removed.
    pub cache_ahead: u64,
    /// Index entries of episodes the durable store does not have, removed.
    pub index_orphans: u64,
    /// Durable episodes missing from the index, indexed.
    pub index_missing: u64,
    /// Index entries at another version than the durable store, re-indexed.
    pub index_stale: u64,
    /// Planned repairs found unnecessary on re-reading (a concurrent write settled them).
    pub raced: u64,
    /// Episodes whose recorded repair (after a failed compensation or cache invalidation)
    /// was carried out before the comparison.
    pub recorded_repaired: u64,
}

impl ReconcileReport {
    /// Add `other`'s counts to these (totals over several passes).
    pub fn absorb(&mut self, other: &ReconcileReport) {
        self.durable_episodes = other.durable_episodes;
        self.journal_replayed += other.journal_replayed;
        self.journal_remaining = other.journal_remaining;
        self.cache_orphans += other.cache_orphans;
        self.cache_corrupt += other.cache_corrupt;
        self.cache_stale += other.cache_stale;
        self.cache_ahead += other.cache_ahead;
        self.index_orphans += other.index_orphans;
        self.index_missing += other.index_missing;
        self.index_stale += other.index_stale;
        self.raced += other.raced;
        self.recorded_repaired += other.recorded_repaired;
    }

    /// Repairs made (every kind above except `raced`).
    pub fn repairs(&self) -> u64 {
        self.recorded_repaired
            + self.cache_orphans
            + self.cache_corrupt
            + self.cache_stale
            + self.cache_ahead
            + self.index_orphans
            + self.index_missing
            + self.index_stale
    }
}

/// One repair to attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repair {
    /// The cache has an episode the durable store lacks.
    CacheOrphan(EpisodeId),
    /// The cache record is damaged.
    CacheCorrupt(EpisodeId),
    /// The cache holds an older version.
    CacheStale(EpisodeId),
    /// The cache holds a newer version than the durable store.
    CacheAhead(EpisodeId),
    /// The index has an episode the durable store lacks.
    IndexOrphan(EpisodeId),
    /// The durable store has an episode the index lacks.
    IndexMissing(EpisodeId),
    /// The index holds another version.
    IndexStale(EpisodeId),
}

/// Decide the repairs from one observation of the three stores.
fn plan(
    durable: &HashMap<EpisodeId, u64>,
    cache: &[CachedVersion],
    index: &[(EpisodeId, u64)],
) -> Vec<Repair> {
    let mut repairs = Vec::new();
    for c in cache {
        match (c.version, durable.get(&c.id)) {
            (None, _) => repairs.push(Repair::CacheCorrupt(c.id)),
            (Some(_), None) => repairs.push(Repair::CacheOrphan(c.id)),
            (Some(v), Some(d)) if v < *d => repairs.push(Repair::CacheStale(c.id)),
            (Some(v), Some(d)) if v > *d => repairs.push(Repair::CacheAhead(c.id)),
            _ => {}
        }
    }
    let mut indexed: HashMap<EpisodeId, u64> = HashMap::with_capacity(index.len());
    for (id, v) in index {
        indexed.insert(*id, *v);
        match durable.get(id) {
            None => repairs.push(Repair::IndexOrphan(*id)),
            Some(d) if d != v => repairs.push(Repair::IndexStale(*id)),
            _ => {}
        }
    }
    for id in durable.keys() {
        if !indexed.contains_key(id) {
            repairs.push(Repair::IndexMissing(*id));
        }
    }
    repairs.sort_by_key(|r| match r {
        Repair::CacheOrphan(id)
        | Repair::CacheCorrupt(id)
        | Repair::CacheStale(id)
        | Repair::CacheAhead(id)
        | Repair::IndexOrphan(id)
        | Repair::IndexMissing(id)
        | Repair::IndexStale(id) => *id,
    });
    repairs
}

/// Ids of the durable store compared per step of a pass.
const RANGE: usize = 50_000;
/// Cache entries read per cache scan.
const CACHE_PAGE: usize = 10_000;

/// One comparison of the three stores, with its repairs, a range of ids at a time: each page
/// of the durable store's id-ordered versions fixes a range, and only that range's index and
/// cache entries are read against it. So a pass holds one range of each store's ids, however
/// many episodes there are (reading them all at once cost about 150 bytes an episode, outside
/// the memory budget).
///
/// Each range's index entries are read after its durable page: an episode written in between
/// can look like an index orphan, and `apply` finds it on re-reading (`raced`).
pub(crate) async fn pass(
    durable: &dyn DurableStore,
    cache: &dyn CacheStore,
    index: &SpatiotemporalIndex,
    fence: &CacheFence,
    report: &mut ReconcileReport,
) -> Result<()> {
    let stores = Stores {
        durable,
        cache,
        index,
        fence,
    };
    pass_in(&stores, RANGE, CACHE_PAGE, report).await.map(drop)
}

/// The three stores a pass compares, and the cache fence its refills respect.
struct Stores<'a> {
    durable: &'a dyn DurableStore,
    cache: &'a dyn CacheStore,
    index: &'a SpatiotemporalIndex,
    fence: &'a CacheFence,
}

/// [`pass`] with `range` durable ids per step and `cache_page` cache entries per scan; returns
/// the most ids (of the three stores together) one step held.
async fn pass_in(
    s: &Stores<'_>,
    range: usize,
    cache_page: usize,
    report: &mut ReconcileReport,
) -> Result<usize> {
    let mut cached = CacheCursor::new(s.cache, cache_page);
    let (mut after, mut held) = (None, 0);
    loop {
        let page = s.durable.scan_versions(after, range).await?;
        let ids = IdRange {
            after,
            through: page.next_after,
        };
        let indexed = s.index.versions_in(ids)?;
        let stored: HashMap<EpisodeId, u64> = page.items.into_iter().collect();
        let in_cache = cached.take(ids).await?;
        held = held.max(stored.len() + indexed.len() + in_cache.len() + cached.ahead.len());
        report.durable_episodes += stored.len() as u64;
        let repairs = plan(&stored, &in_cache, &indexed);
        apply(&repairs, s.durable, s.cache, s.index, s.fence, report).await?;
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(held),
        }
    }
}

/// The cache's entries in id order, read a page at a time and handed out a range at a time.
struct CacheCursor<'a> {
    cache: &'a dyn CacheStore,
    page: usize,
    /// Read but not yet handed out, ascending.
    ahead: VecDeque<CachedVersion>,
    /// Where the next cache page starts.
    after: Option<EpisodeId>,
    /// Whether the cache has no entries after `ahead`.
    done: bool,
}

impl<'a> CacheCursor<'a> {
    fn new(cache: &'a dyn CacheStore, page: usize) -> Self {
        Self {
            cache,
            page,
            ahead: VecDeque::new(),
            after: None,
            done: false,
        }
    }

    /// The entries up to the end of `range`; ranges must be asked in ascending order.
    async fn take(&mut self, range: IdRange) -> Result<Vec<CachedVersion>> {
        let past = |c: &CachedVersion| range.through.is_some_and(|t| c.id > t);
        while !self.done && !self.ahead.back().is_some_and(past) {
            let page = self.cache.scan(self.after, self.page).await?;
            self.ahead.extend(page.items);
            self.after = page.next_after;
            self.done = page.next_after.is_none();
        }
        let n = self.ahead.iter().take_while(|c| !past(c)).count();
        Ok(self.ahead.drain(..n).collect())
    }
}

/// Perform `repairs`, each after re-reading the episode from the durable store.
async fn apply(
    repairs: &[Repair],
    durable: &dyn DurableStore,
    cache: &dyn CacheStore,
    index: &SpatiotemporalIndex,
    fence: &CacheFence,
    report: &mut ReconcileReport,
) -> Result<()> {
    for repair in repairs {
        match *repair {
            Repair::CacheOrphan(id) => match durable.get_episode(id).await? {
                None => {
                    cache.invalidate(id).await?;
                    report.cache_orphans += 1;
                }
                Some(_) => report.raced += 1,
            },
            Repair::CacheCorrupt(id) => {
                cache.invalidate(id).await?;
                refresh_cache(id, durable, cache, fence).await?;
                report.cache_corrupt += 1;
            }
            Repair::CacheStale(id) => {
                refresh_cache(id, durable, cache, fence).await?;
                report.cache_stale += 1;
            }
            Repair::CacheAhead(id) => {
                let fresh = durable.get_episode(id).await?;
                let cached = cache.get(id).await.ok().flatten();
                match (fresh, cached) {
                    (Some(d), Some(c)) if c.version > d.version => {
                        cache.invalidate(id).await?;
                        report.cache_ahead += 1;
                    }
                    (None, Some(_)) => {
                        cache.invalidate(id).await?;
                        report.cache_orphans += 1;
                    }
                    _ => report.raced += 1,
                }
            }
            Repair::IndexOrphan(id) => match durable.get_episode(id).await? {
                None => {
                    index.remove(id)?;
                    report.index_orphans += 1;
                }
                Some(_) => report.raced += 1,
            },
            Repair::IndexMissing(id) | Repair::IndexStale(id) => {
                match durable.get_episode(id).await? {
                    Some(e) if index.contains(id)? != Some(e.version) => {
                        index.insert(&e.summary())?;
                        if matches!(repair, Repair::IndexMissing(_)) {
                            report.index_missing += 1;
                        } else {
                            report.index_stale += 1;
                        }
                    }
                    _ => report.raced += 1,
                }
            }
        }
    }
    Ok(())
}

/// Replace an older cache entry with the durable copy, or drop it if the episode is no longer
/// completed (the cache holds completed episodes only).
async fn refresh_cache(
    id: EpisodeId,
    durable: &dyn DurableStore,
    cache: &dyn CacheStore,
    fence: &CacheFence,
) -> Result<()> {
    let ticket = fence.ticket(id);
    match durable.get_episode(id).await? {
        Some(e) if e.is_completed() => put_fenced(&e, cache, fence, ticket).await,
        _ => cache.invalidate(id).await,
    }
}

/// Put a copy read from the durable store since `ticket` into the cache, and drop it again if
/// a write of the episode committed meanwhile (the copy may be older than that write).
async fn put_fenced(
    e: &Episode,
    cache: &dyn CacheStore,
    fence: &CacheFence,
    ticket: crate::engine::fence::Ticket,
) -> Result<()> {
    cache.put(e).await?;
    if !fence.unchanged(e.id, ticket) {
        cache.invalidate(e.id).await?;
    }
    Ok(())
}

/// Make one episode's cache and index entries agree with the durable store: the targeted
/// repair of an episode whose compensation or cache invalidation failed. Never undoes a
/// newer write (index inserts are monotonic by version, cache fills are fenced).
pub(crate) async fn resync(
    id: EpisodeId,
    durable: &dyn DurableStore,
    cache: &dyn CacheStore,
    index: &SpatiotemporalIndex,
    fence: &CacheFence,
) -> Result<()> {
    let ticket = fence.ticket(id);
    match durable.get_episode(id).await? {
        None => {
            index.remove(id)?;
            cache.invalidate(id).await
        }
        Some(e) => {
            if index.contains(id)? != Some(e.version) {
                index.insert(&e.summary())?;
            }
            if e.is_completed() {
                put_fenced(&e, cache, fence, ticket).await
            } else {
                cache.invalidate(id).await
            }
        }
    }
}

/// The cache entry for `e`, for tests.
#[cfg(test)]
fn version_of(e: &crate::Episode) -> CachedVersion {
    CachedVersion {
        id: e.id,
        version: Some(e.version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_finds_each_kind_of_divergence() {
        let ids: Vec<EpisodeId> = (0..7).map(|_| EpisodeId::new()).collect();
        let durable: HashMap<_, _> = [(ids[0], 2), (ids[1], 3), (ids[2], 2), (ids[3], 2)].into();
        let cache = vec![
            CachedVersion {
                id: ids[0],
                version: Some(2),
            }, // agrees
            CachedVersion {
                id: ids[1],
                version: Some(2),
            }, // stale
            CachedVersion {
                id: ids[2],
                version: None,
            }, // corrupt
            CachedVersion {
                id: ids[4],
                version: Some(2),
            }, // orphan
            CachedVersion {
                id: ids[3],
                version: Some(5),
            }, // ahead
        ];
        let index = vec![(ids[0], 2), (ids[1], 2), (ids[5], 2)]; // agrees, stale, orphan
        let got = plan(&durable, &cache, &index);
        let want = {
            let mut w = vec![
                Repair::CacheStale(ids[1]),
                Repair::CacheCorrupt(ids[2]),
                Repair::CacheOrphan(ids[4]),
                Repair::CacheAhead(ids[3]),
                Repair::IndexStale(ids[1]),
                Repair::IndexOrphan(ids[5]),
                Repair::IndexMissing(ids[2]),
                Repair::IndexMissing(ids[3]),
            ];
            w.sort_by_key(|r| format!("{r:?}"));
            w
        };
        let mut got_sorted = got.clone();
        got_sorted.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(got_sorted, want);
    }

    #[test]
    fn agreeing_stores_need_nothing() {
        let e = crate::conformance::sample_episode("ns");
        let durable: HashMap<_, _> = [(e.id, e.version)].into();
        assert!(plan(&durable, &[version_of(&e)], &[(e.id, e.version)]).is_empty());
        assert!(
            plan(&durable, &[], &[(e.id, e.version)]).is_empty(),
            "a cache miss is fine"
        );
    }

    /// Divergences at the first and last ids, and at the edges of the ranges a pass steps
    /// through, are all repaired, with nothing counted as raced, and no step holds more than
    /// its range's ids plus one cache page.
    #[tokio::test]
    async fn a_pass_repairs_range_by_range_and_holds_one_range_at_a_time() {
        use crate::store::{InMemoryCache, InMemoryStore};
        let durable = InMemoryStore::new();
        let cache = InMemoryCache::new();
        let index = SpatiotemporalIndex::new(crate::index::IndexConfig::default()).unwrap();
        let fence = CacheFence::default();
        let mut all: Vec<Episode> = (0..30)
            .map(|_| crate::conformance::sample_episode("ns"))
            .collect();
        all.sort_by_key(|e| e.id);
        // Ranges of 3 durable ids: the durable store lacks 0, 13 and 29 (index and cache
        // orphans before, inside and after its ids); the index lacks 6 and 12 (each the last
        // id of its range) and 27; the cache holds every fourth episode, range edges among them.
        let (index_only, missing) = ([0, 13, 29], [6, 12, 27]);
        for (i, e) in all.iter().enumerate() {
            if !index_only.contains(&i) {
                durable.create_episode(e).await.unwrap();
            }
            if !missing.contains(&i) {
                index.insert(&e.summary()).unwrap();
            }
            if i % 4 == 0 || index_only.contains(&i) {
                cache.put(e).await.unwrap();
            }
        }
        let stores = Stores {
            durable: &durable,
            cache: &cache,
            index: &index,
            fence: &fence,
        };
        let mut report = ReconcileReport::default();
        let held = pass_in(&stores, 3, 2, &mut report).await.unwrap();
        assert_eq!(report.durable_episodes, 27);
        assert_eq!(report.index_orphans, 3, "{report:?}");
        assert_eq!(report.index_missing, 3, "{report:?}");
        assert_eq!(report.cache_orphans, 3, "{report:?}");
        assert_eq!(report.raced, 0, "{report:?}");
        assert_eq!(report.repairs(), 9, "{report:?}");
        // A range of 3 durable ids, up to 3 + 1 indexed (an orphan after the last), up to 3
        // cached plus a page of 2 read ahead.
        assert!(held <= 12, "one step held {held} ids");

        let mut indexed = index.versions().unwrap();
        indexed.sort();
        let stored = crate::store::scan_all_versions(&durable).await.unwrap();
        assert_eq!(indexed, stored, "the index agrees with the durable store");
        let mut again = ReconcileReport::default();
        let all_at_once = pass_in(&stores, 1_000, 1_000, &mut again).await;
        assert_eq!(again.repairs(), 0, "{again:?}");
        assert!(
            all_at_once.unwrap() >= 27 + 27,
            "in one range a step holds every id"
        );
    }
}
