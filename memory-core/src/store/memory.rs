//! In-memory implementations of the storage contracts, for tests and for embedding without
//! persistence. They honour every contract except durability across process exit.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::episode::{Episode, EpisodeSummary, Step};
use crate::error::{Error, Result};
use crate::id::EpisodeId;
use crate::store::cache::{CacheStats, CacheStore, CachedVersion};
use crate::store::durable::{ChangeMark, DurableStore, ListRequest, Page};
use crate::store::journal::{Journal, JournalEntry, JournalSeq};
use crate::store::rules::{self, StoredState};

/// Lock a std mutex, treating poisoning (a panic in another holder) as a storage error.
fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::storage("in-memory store lock poisoned by a panic"))
}

/// Page through a sorted map after `after`, at most `limit` items.
fn page<V, T>(
    map: &BTreeMap<EpisodeId, V>,
    after: Option<EpisodeId>,
    limit: usize,
    mut keep: impl FnMut(&V) -> bool,
    mut map_item: impl FnMut(&EpisodeId, &V) -> T,
) -> Page<T> {
    use std::ops::Bound;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut items = Vec::new();
    let mut last = None;
    let mut more = false;
    for (id, v) in map.range((start, Bound::Unbounded)) {
        if !keep(v) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(map_item(id, v));
        last = Some(*id);
    }
    Page {
        items,
        next_after: if more { last } else { None },
    }
}

/// A [`DurableStore`] in a `BTreeMap`. Atomic per call; not durable across process exit.
/// Remembers its last [`InMemoryStore::HISTORY`] writes for
/// [`DurableStore::changed_since`] (another number with [`InMemoryStore::with_history`]).
#[derive(Debug)]
pub struct InMemoryStore {
    episodes: Mutex<BTreeMap<EpisodeId, Episode>>,
    /// Taken only inside the `episodes` lock.
    history: Mutex<History>,
}

/// The writes an [`InMemoryStore`] remembers.
#[derive(Debug)]
struct History {
    /// The mark before the oldest write kept (a random one at first: two stores never share
    /// marks).
    base: ChangeMark,
    /// The writes after `base`, oldest first, at most `capacity`.
    kept: VecDeque<(ChangeMark, EpisodeId)>,
    capacity: usize,
}

impl History {
    fn last(&self) -> ChangeMark {
        self.kept.back().map_or(self.base, |(m, _)| *m)
    }
}

impl Default for InMemoryStore {
    fn default() -> Self {
        Self::with_history(Self::HISTORY)
    }
}

impl InMemoryStore {
    /// The writes a store remembers by default.
    pub const HISTORY: usize = 250_000;

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that remembers its last `writes` writes (at least one).
    pub fn with_history(writes: usize) -> Self {
        Self {
            episodes: Mutex::default(),
            history: Mutex::new(History {
                base: ChangeMark {
                    seq: 0,
                    mark: random_u64(),
                },
                kept: VecDeque::new(),
                capacity: writes.max(1),
            }),
        }
    }

    /// Record one write of `id` that took effect (called under the `episodes` lock; the
    /// write is done, so a poisoned lock is taken over: the history is never left half
    /// changed).
    fn changed(&self, id: EpisodeId) {
        let mut h = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mark = ChangeMark {
            seq: h.last().seq + 1,
            mark: random_u64(),
        };
        h.kept.push_back((mark, id));
        if h.kept.len() > h.capacity
            && let Some((oldest, _)) = h.kept.pop_front()
        {
            h.base = oldest;
        }
    }
}

/// A random number (from the random bits of a new id).
fn random_u64() -> u64 {
    let bytes = EpisodeId::new().to_bytes();
    u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes"))
}

#[async_trait]
impl DurableStore for InMemoryStore {
    async fn create_episode(&self, episode: &Episode) -> Result<()> {
        let mut map = lock(&self.episodes)?;
        rules::check_create(
            episode.id,
            map.contains_key(&episode.id),
            rules::seqs(&episode.steps),
        )?;
        map.insert(episode.id, episode.clone());
        self.changed(episode.id);
        Ok(())
    }

    async fn append_steps(&self, id: EpisodeId, steps: &[Step]) -> Result<()> {
        let mut map = lock(&self.episodes)?;
        let e = rules::require(id, map.get_mut(&id))?;
        rules::check_append(id, &StoredState::of(e), rules::seqs(steps))?;
        e.steps.extend_from_slice(steps);
        self.changed(id);
        Ok(())
    }

    async fn complete_episode(&self, episode: &Episode) -> Result<()> {
        let mut map = lock(&self.episodes)?;
        let stored = rules::require(episode.id, map.get_mut(&episode.id))?;
        let given: Vec<u32> = rules::seqs(&episode.steps).collect();
        rules::check_complete(
            episode.id,
            &StoredState::of(stored),
            episode.version,
            &given,
        )?;
        let steps = std::mem::take(&mut stored.steps);
        let mut next = episode.clone();
        next.steps = steps;
        let stored_len = next.steps.len();
        next.steps.extend_from_slice(&episode.steps[stored_len..]);
        *stored = next;
        self.changed(episode.id);
        Ok(())
    }

    async fn update_episode(&self, episode: &Episode) -> Result<()> {
        let mut map = lock(&self.episodes)?;
        let stored = rules::require(episode.id, map.get_mut(&episode.id))?;
        rules::check_version(episode.id, stored.version, episode.version)?;
        let steps = std::mem::take(&mut stored.steps);
        *stored = Episode {
            steps,
            ..episode.clone()
        };
        self.changed(episode.id);
        Ok(())
    }

    async fn delete_episode(&self, id: EpisodeId) -> Result<bool> {
        let mut map = lock(&self.episodes)?;
        let removed = map.remove(&id).is_some();
        if removed {
            self.changed(id);
        }
        Ok(removed)
    }

    async fn get_episode(&self, id: EpisodeId) -> Result<Option<Episode>> {
        Ok(lock(&self.episodes)?.get(&id).cloned())
    }

    async fn list_episodes(&self, request: &ListRequest) -> Result<Page<Episode>> {
        let map = lock(&self.episodes)?;
        Ok(page(
            &map,
            request.after,
            request.limit,
            |e| e.context.namespace == request.namespace,
            |_, e| e.clone(),
        ))
    }

    async fn scan_summaries(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<EpisodeSummary>> {
        let map = lock(&self.episodes)?;
        Ok(page(&map, after, limit, |_| true, |_, e| e.summary()))
    }

    async fn scan_versions(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<(EpisodeId, u64)>> {
        let map = lock(&self.episodes)?;
        Ok(page(&map, after, limit, |_| true, |_, e| (e.id, e.version)))
    }

    async fn change_mark(&self) -> Result<ChangeMark> {
        let _map = lock(&self.episodes)?;
        Ok(lock(&self.history)?.last())
    }

    async fn changed_since(&self, since: ChangeMark) -> Result<Option<Vec<EpisodeId>>> {
        let _map = lock(&self.episodes)?;
        let h = lock(&self.history)?;
        let after = if since == h.base {
            0
        } else {
            match h.kept.iter().position(|(m, _)| *m == since) {
                Some(at) => at + 1,
                None => return Ok(None),
            }
        };
        let mut seen = HashSet::new();
        Ok(Some(
            h.kept
                .iter()
                .skip(after)
                .filter_map(|(_, id)| seen.insert(*id).then_some(*id))
                .collect(),
        ))
    }

    async fn summaries_of(&self, ids: &[EpisodeId]) -> Result<Vec<EpisodeSummary>> {
        let map = lock(&self.episodes)?;
        Ok(ids
            .iter()
            .filter_map(|id| map.get(id).map(Episode::summary))
            .collect())
    }
}

/// A [`CacheStore`] in a `BTreeMap` of encoded records, unbounded. Stores the same checksummed
/// bytes a persistent cache would, so corruption tests can damage them with
/// [`InMemoryCache::corrupt`].
#[derive(Debug, Default)]
pub struct InMemoryCache {
    entries: Mutex<BTreeMap<EpisodeId, (u64, Vec<u8>)>>,
    hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
}

impl InMemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Flip one bit of the stored record for `id` (a test hook for corruption handling).
    /// Returns whether an entry was there.
    pub fn corrupt(&self, id: EpisodeId) -> Result<bool> {
        let mut map = lock(&self.entries)?;
        Ok(match map.get_mut(&id) {
            Some((_, bytes)) => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x10;
                true
            }
            None => false,
        })
    }
}

#[async_trait]
impl CacheStore for InMemoryCache {
    async fn get(&self, id: EpisodeId) -> Result<Option<Episode>> {
        let bytes = lock(&self.entries)?.get(&id).map(|(_, b)| b.clone());
        let Some(bytes) = bytes else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        match crate::record::decode::<Episode>(crate::record::RecordKind::Episode, &bytes) {
            Ok(e) if e.id == id => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Ok(Some(e))
            }
            Ok(e) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                Err(Error::corrupt(format!(
                    "cache entry {id} holds episode {}",
                    e.id
                )))
            }
            Err(err) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                Err(err)
            }
        }
    }

    async fn put(&self, episode: &Episode) -> Result<()> {
        let bytes = crate::record::encode(crate::record::RecordKind::Episode, episode)?;
        let mut map = lock(&self.entries)?;
        if let Some((v, _)) = map.get(&episode.id)
            && *v > episode.version
        {
            return Ok(());
        }
        map.insert(episode.id, (episode.version, bytes));
        Ok(())
    }

    async fn invalidate(&self, id: EpisodeId) -> Result<()> {
        lock(&self.entries)?.remove(&id);
        Ok(())
    }

    async fn scan(&self, after: Option<EpisodeId>, limit: usize) -> Result<Page<CachedVersion>> {
        let map = lock(&self.entries)?;
        Ok(page(
            &map,
            after,
            limit,
            |_| true,
            |id, (_, bytes)| CachedVersion {
                id: *id,
                version: crate::record::decode::<Episode>(
                    crate::record::RecordKind::Episode,
                    bytes,
                )
                .ok()
                .filter(|e| e.id == *id)
                .map(|e| e.version),
            },
        ))
    }

    async fn clear(&self) -> Result<()> {
        lock(&self.entries)?.clear();
        Ok(())
    }

    fn stats(&self) -> CacheStats {
        let (entries, bytes) = self
            .entries
            .lock()
            .map(|m| {
                (
                    m.len() as u64,
                    m.values().map(|(_, b)| b.len() as u64).sum(),
                )
            })
            .unwrap_or_default();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            bytes,
            evictions: 0,
            corrupt: self.corrupt.load(Ordering::Relaxed),
        }
    }
}

/// A [`Journal`] in a `BTreeMap`. Ordered and exactly-once like a real one; not durable.
#[derive(Debug, Default)]
pub struct InMemoryJournal {
    inner: Mutex<(JournalSeq, BTreeMap<JournalSeq, JournalEntry>)>,
}

impl InMemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Journal for InMemoryJournal {
    async fn append(&self, entry: &JournalEntry) -> Result<JournalSeq> {
        let mut g = lock(&self.inner)?;
        g.0 += 1;
        let seq = g.0;
        g.1.insert(seq, entry.clone());
        Ok(seq)
    }

    async fn read(
        &self,
        after: Option<JournalSeq>,
        limit: usize,
    ) -> Result<Vec<(JournalSeq, JournalEntry)>> {
        let g = lock(&self.inner)?;
        let start = after.map_or(0, |a| a.saturating_add(1));
        Ok(g.1
            .range(start..)
            .take(limit)
            .map(|(s, e)| (*s, e.clone()))
            .collect())
    }

    async fn remove_through(&self, seq: JournalSeq) -> Result<()> {
        let mut g = lock(&self.inner)?;
        let keep = g.1.split_off(&seq.saturating_add(1));
        g.1 = keep;
        Ok(())
    }

    async fn depth(&self) -> Result<u64> {
        Ok(lock(&self.inner)?.1.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    #[tokio::test]
    async fn in_memory_store_conforms() {
        conformance::durable_store(&InMemoryStore::new()).await;
    }

    #[tokio::test]
    async fn a_store_forgets_the_marks_before_its_history() {
        let store = InMemoryStore::with_history(3);
        let mut marks = vec![store.change_mark().await.unwrap()];
        let mut ids = Vec::new();
        for _ in 0..4 {
            let e = conformance::sample_episode("history");
            store.create_episode(&e).await.unwrap();
            ids.push(e.id);
            marks.push(store.change_mark().await.unwrap());
        }
        assert_eq!(store.changed_since(marks[0]).await.unwrap(), None);
        assert_eq!(
            store.changed_since(marks[1]).await.unwrap(),
            Some(ids[1..].to_vec())
        );
        assert_eq!(
            store.changed_since(marks[3]).await.unwrap(),
            Some(vec![ids[3]])
        );
    }

    #[tokio::test]
    async fn in_memory_cache_conforms() {
        let cache = InMemoryCache::new();
        conformance::cache_store(&cache, |id| cache.corrupt(id).unwrap()).await;
    }

    #[tokio::test]
    async fn in_memory_journal_conforms() {
        conformance::journal(&InMemoryJournal::new()).await;
    }
}
