//! The cache contract: fast local reads of episodes, rebuildable from the durable store.

use async_trait::async_trait;

use crate::episode::Episode;
use crate::error::Result;
use crate::id::EpisodeId;
use crate::store::durable::Page;

/// Counters of a cache since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `get` calls that returned an episode.
    pub hits: u64,
    /// `get` calls that returned `None` or `Corrupt`.
    pub misses: u64,
    /// Entries held now.
    pub entries: u64,
    /// Bytes held now (encoded size of the entries).
    pub bytes: u64,
    /// Entries removed to stay within the size bound.
    pub evictions: u64,
    /// Records found damaged by `get` or `scan`.
    pub corrupt: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or `None` before the first `get`.
    pub fn hit_ratio(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }
}

/// One entry as seen by [`CacheStore::scan`]: its id and version, or `None` if the record is
/// damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedVersion {
    /// The cached episode.
    pub id: EpisodeId,
    /// Its version, or `None` when the stored record is corrupt.
    pub version: Option<u64>,
}

/// A rebuildable cache of episodes. Never the only copy of anything: losing all of it loses
/// no data, only speed.
///
/// **Monotonic.** `put` never replaces an entry with an older version, so a slow writer or a
/// repair can never undo a newer write. **Honest.** A damaged record is reported as `Corrupt`
/// (and counted as a miss), never returned as data. **Crash-safe.** Writes need not be
/// durable; a crash may lose recent entries but never leaves a damaged one readable as valid,
/// and never brings back an entry that a later `put` replaced or `invalidate` removed (a
/// persistent cache that cannot tell which writes a crash lost must come back empty).
#[async_trait]
pub trait CacheStore: Send + Sync + 'static {
    /// The cached episode, `None` on a miss, `Corrupt` if the record is damaged.
    async fn get(&self, id: EpisodeId) -> Result<Option<Episode>>;

    /// Insert or replace, unless the cached version is newer than `episode.version`. The cache
    /// may evict other entries to stay within its size bound.
    async fn put(&self, episode: &Episode) -> Result<()>;

    /// Remove the entry if present (including a damaged one).
    async fn invalidate(&self, id: EpisodeId) -> Result<()>;

    /// Ids and versions of all entries in ascending id order after `after`, at most `limit`.
    async fn scan(&self, after: Option<EpisodeId>, limit: usize) -> Result<Page<CachedVersion>>;

    /// Remove every entry.
    async fn clear(&self) -> Result<()>;

    /// Counters since open.
    fn stats(&self) -> CacheStats;

    /// Flush what can be flushed and release resources; later calls may fail. Idempotent.
    /// The default does nothing.
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}
