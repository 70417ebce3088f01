//! [`RedbCache`]: the byte-bounded, least-recently-used episode cache in the `episodes` table.
//!
//! It owns the cache's write path (plan with [`Lru`], one redb write transaction committed with
//! `Durability::None`, then update the bookkeeping) and its counters. It never returns a record
//! that fails to decode, or that decodes to another id than its key, as data: that is `Corrupt`.
//! It never blocks an async worker: every redb call runs on tokio's blocking pool (the
//! `*_blocking` hooks and `open` are documented as blocking and run on the caller's thread).

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use memory_core::record::{self, RecordKind};
use memory_core::store::{CacheStats, CacheStore, CachedVersion, Page};
use memory_core::{Episode, EpisodeId, Error, Result};
use redb::{Durability, ReadableDatabase, ReadableTable};

use crate::error::from_redb;
use crate::file::{EPISODES, OpenFile, Role, SIZES, blocking, empty_cache_tables, open_database};
use crate::lru::{Lru, Plan, Replace, StoredVersion};
use crate::options::RedbOptions;

/// An episode cache in a redb file, bounded in bytes, evicting the least recently used
/// entries. The journal has a file of its own ([`crate::RedbJournal`]).
///
/// Cheap to clone: clones share the file and the bookkeeping. The file closes when the last
/// clone and every blocking call still running on its behalf are gone; only then can the file
/// be opened again in this process.
///
/// **Durability.** Cache writes commit with redb's `Durability::None`. A crash would roll the
/// file back to its last durable commit (the opening commit, a [`RedbCache::flush`], a raw
/// write), which may hold an older version of an entry a later put replaced, or an entry a
/// later invalidation removed; so a file that was not closed (the last handle dropped) opens
/// with an empty cache. A crash loses the cached entries, never serves an old or damaged one.
///
/// **Bookkeeping.** Size, last access and version of every entry are kept in memory (about
/// 100 bytes per entry, independent of the episode's size; see the `lru` module), rebuilt by
/// one scan of the table at open. Recency is not persisted: after an open, entries are ranked
/// by id, so the oldest episodes are evicted first.
///
/// ```
/// use memory_core::store::CacheStore;
/// use memory_core::{Episode, EpisodeId, TaskContext};
/// use memory_storage_redb::{RedbCache, RedbOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> memory_core::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let cache = RedbCache::open(dir.path().join("cache.redb"), RedbOptions::default())?;
/// let ctx = TaskContext::new("agent-1", "retail", "refund");
/// let episode = Episode::new(EpisodeId::new(), "refund order", ctx, memory_core::time::now());
/// cache.put(&episode).await?;
/// assert_eq!(cache.get(episode.id).await?, Some(episode));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedbCache {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<OpenFile>,
    path: PathBuf,
    max_bytes: u64,
    /// Held by every cache write from before its plan until its bookkeeping is updated, so each
    /// plan sees what the previous write left. A sync lock held across redb I/O, but only on
    /// blocking-pool threads (or the caller's thread in the `*_blocking` hooks), never across
    /// an `.await`. Journal writes do not take it.
    writer: Mutex<()>,
    /// Sizes, recency, versions. A sync lock held only for in-memory work, never across I/O.
    lru: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    corrupt: AtomicU64,
}

impl std::fmt::Debug for RedbCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbCache")
            .field("path", &self.inner.path)
            .field("max_bytes", &self.inner.max_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Lock a std mutex, treating poisoning (a panic in another holder) as a storage error.
fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::storage("redb cache bookkeeping lock poisoned by a panic"))
}

/// Decode a stored record as the episode `id`; any damage, or another id, is `Corrupt`.
fn decode_as(id: EpisodeId, bytes: &[u8]) -> Result<Episode> {
    match record::decode::<Episode>(RecordKind::Episode, bytes) {
        Ok(e) if e.id == id => Ok(e),
        Ok(e) => Err(Error::corrupt(format!(
            "cache entry {id} holds episode {}",
            e.id
        ))),
        Err(err) => Err(Error::corrupt(format!("cache entry {id} is damaged")).with_source(err)),
    }
}

/// The two tables every cache entry lives in, opened in one write transaction: the record and
/// its size change together.
struct Entries<'txn> {
    episodes: redb::Table<'txn, &'static [u8; 16], &'static [u8]>,
    sizes: redb::Table<'txn, &'static [u8; 16], u64>,
}

impl<'txn> Entries<'txn> {
    fn open(txn: &'txn redb::WriteTransaction, what: &str) -> Result<Self> {
        Ok(Self {
            episodes: txn.open_table(EPISODES).map_err(|e| from_redb(what, e))?,
            sizes: txn.open_table(SIZES).map_err(|e| from_redb(what, e))?,
        })
    }

    fn insert(&mut self, key: &[u8; 16], bytes: &[u8], what: &str) -> Result<()> {
        self.episodes
            .insert(key, bytes)
            .map_err(|e| from_redb(what, e))?;
        self.sizes
            .insert(key, bytes.len() as u64)
            .map_err(|e| from_redb(what, e))?;
        Ok(())
    }

    fn remove(&mut self, key: &[u8; 16], what: &str) -> Result<()> {
        self.episodes.remove(key).map_err(|e| from_redb(what, e))?;
        self.sizes.remove(key).map_err(|e| from_redb(what, e))?;
        Ok(())
    }
}

impl RedbCache {
    /// Open (or create) the file at `path` and rebuild the bookkeeping from the size table.
    ///
    /// **Blocks** the calling thread: it opens the file (with `check_integrity_on_open`, reads
    /// all of it), reads every cached entry's key and size from the size table (records are
    /// decoded when read, and an entry's version at its first `put`), and, if the file holds
    /// more than `max_cache_bytes`, evicts down to the bound. From async code prefer
    /// [`RedbCache::open_async`]. Fails with `Storage` if the file is already open in this
    /// process or is a journal file (or a cache file of an earlier layout still holding journal
    /// entries: see [`crate::split_legacy_file`]), `Corrupt` if redb finds it damaged,
    /// `InvalidInput` for bad options.
    pub fn open(path: impl AsRef<Path>, options: RedbOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let db = open_database(&path, &options, Role::Cache)?;
        let inner = Inner {
            db,
            path,
            max_bytes: options.max_cache_bytes,
            writer: Mutex::new(()),
            lru: Mutex::new(Lru::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
        };
        inner.rebuild()?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// [`RedbCache::open`] on tokio's blocking pool.
    pub async fn open_async(path: impl AsRef<Path>, options: RedbOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        blocking("open", move || Self::open(path, options)).await
    }

    /// The file this cache lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The configured byte bound.
    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// Make every cache write so far durable (one empty `Durability::Immediate` commit, an
    /// fsync). Not needed for correctness (the cache is rebuildable), and it does not keep the
    /// cache across a crash: a file that was not closed opens with an empty cache. Dropping the
    /// last handle does the same commit.
    pub async fn flush(&self) -> Result<()> {
        let db = self.inner.db.clone();
        blocking("flush", move || {
            let mut txn = db.begin_write().map_err(|e| from_redb("flush", e))?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| from_redb("flush", e))?;
            txn.commit().map_err(|e| from_redb("flush", e))
        })
        .await
    }

    /// The raw stored bytes of the cache entry for `id`, exactly as on disk, or `None`.
    ///
    /// A hook for repair tools and fault tests. **Blocks** the calling thread on file I/O.
    pub fn raw_record_blocking(&self, id: EpisodeId) -> Result<Option<Vec<u8>>> {
        let what = "read raw cache record";
        let txn = self.inner.db.begin_read().map_err(|e| from_redb(what, e))?;
        let table = txn.open_table(EPISODES).map_err(|e| from_redb(what, e))?;
        let bytes = table
            .get(&id.to_bytes())
            .map_err(|e| from_redb(what, e))?
            .map(|g| g.value().to_vec());
        Ok(bytes)
    }

    /// Overwrite (or create) the stored bytes of the cache entry for `id` with `bytes`, exactly,
    /// without encoding or checking them, and commit durably (`Durability::Immediate`).
    ///
    /// A hook for repair tools and fault tests: damaged bytes written here are reported as
    /// `Corrupt` by `get` and as `version: None` by `scan`, like damage found on disk. The entry
    /// counts against the byte bound (others may be evicted; bytes larger than the bound are
    /// not stored and the entry is removed) and ignores the monotonic version rule.
    /// **Blocks** the calling thread on file I/O.
    pub fn put_raw_record_blocking(&self, id: EpisodeId, bytes: &[u8]) -> Result<()> {
        let version = decode_as(id, bytes)
            .map_or(StoredVersion::Damaged, |e| StoredVersion::Known(e.version));
        self.inner
            .write(id, bytes, version, Replace::Always, Durability::Immediate)
    }
}

impl Inner {
    /// Scan the size table into the bookkeeping; remove entries whose key is not an episode id
    /// and, if the file holds more than the bound, the oldest entries. Blocking.
    fn rebuild(&self) -> Result<()> {
        let what = "rebuild cache bookkeeping";
        // Built here and installed at the end: no lock is held across the scan.
        let mut lru = Lru::default();
        let mut bad_keys = Vec::new();
        {
            let txn = self.db.begin_read().map_err(|e| from_redb(what, e))?;
            let table = txn.open_table(SIZES).map_err(|e| from_redb(what, e))?;
            for row in table.iter().map_err(|e| from_redb(what, e))? {
                let (key, size) = row.map_err(|e| from_redb(what, e))?;
                let key: [u8; 16] = *key.value();
                let Ok(id) = EpisodeId::from_bytes(key) else {
                    bad_keys.push(key);
                    continue;
                };
                lru.insert(id, size.value(), StoredVersion::Unread);
            }
        }
        let excess = lru.excess(self.max_bytes);
        if bad_keys.is_empty() && excess.is_empty() {
            *lock(&self.lru)? = lru;
            return Ok(());
        }
        let txn = self.begin_cache_write(what, Durability::None)?;
        {
            let mut entries = Entries::open(&txn, what)?;
            for key in &bad_keys {
                entries.remove(key, what)?;
            }
            for id in &excess {
                entries.remove(&id.to_bytes(), what)?;
            }
        }
        txn.commit().map_err(|e| from_redb(what, e))?;
        if !bad_keys.is_empty() {
            tracing::warn!(
                rows = bad_keys.len(),
                "removed cache rows with invalid keys"
            );
            self.corrupt
                .fetch_add(bad_keys.len() as u64, Ordering::Relaxed);
        }
        for id in &excess {
            lru.remove(*id);
        }
        *lock(&self.lru)? = lru;
        self.evictions
            .fetch_add(excess.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn begin_cache_write(
        &self,
        what: &str,
        durability: Durability,
    ) -> Result<redb::WriteTransaction> {
        let mut txn = self.db.begin_write().map_err(|e| from_redb(what, e))?;
        txn.set_durability(durability)
            .map_err(|e| from_redb(what, e))?;
        Ok(txn)
    }

    /// The one cache write path: plan against the bookkeeping, apply the plan in one
    /// transaction, then record it. Blocking.
    fn write(
        &self,
        id: EpisodeId,
        bytes: &[u8],
        version: StoredVersion,
        replace: Replace,
        durability: Durability,
    ) -> Result<()> {
        let what = "write cache entry";
        let _writer = lock(&self.writer)?;
        let mut plan = lock(&self.lru)?.plan(id, bytes.len() as u64, replace, self.max_bytes);
        if plan == Plan::ReadVersion {
            // Only this writer changes entries, so the version read stays true until planned.
            let stored = self.stored_version(id)?;
            let mut lru = lock(&self.lru)?;
            lru.set_version(id, stored);
            plan = lru.plan(id, bytes.len() as u64, replace, self.max_bytes);
        }
        let key = id.to_bytes();
        let txn = match &plan {
            Plan::Skip | Plan::ReadVersion => return Ok(()),
            Plan::TooLarge {
                remove_existing: false,
            } => return Ok(()),
            Plan::TooLarge {
                remove_existing: true,
            } => {
                let txn = self.begin_cache_write(what, durability)?;
                Entries::open(&txn, what)?.remove(&key, what)?;
                txn
            }
            Plan::Store { evict } => {
                let txn = self.begin_cache_write(what, durability)?;
                {
                    let mut entries = Entries::open(&txn, what)?;
                    for victim in evict {
                        entries.remove(&victim.to_bytes(), what)?;
                    }
                    entries.insert(&key, bytes, what)?;
                }
                txn
            }
        };
        txn.commit().map_err(|e| from_redb(what, e))?;

        let mut lru = lock(&self.lru)?;
        let evicted = match plan {
            Plan::Skip | Plan::ReadVersion => 0,
            Plan::TooLarge { .. } => {
                tracing::debug!(%id, size = bytes.len(), "record larger than the cache bound; not cached");
                u64::from(lru.remove(id))
            }
            Plan::Store { evict } => {
                for victim in &evict {
                    lru.remove(*victim);
                }
                lru.insert(id, bytes.len() as u64, version);
                evict.len() as u64
            }
        };
        drop(lru);
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
            tracing::debug!(
                evicted,
                "cache entries evicted to stay within the byte bound"
            );
        }
        Ok(())
    }

    /// The stored record of `id`, decoded (`Some(Err)`: damaged), or `None`.
    fn read_record(&self, id: EpisodeId, what: &str) -> Result<Option<Result<Episode>>> {
        let txn = self.db.begin_read().map_err(|e| from_redb(what, e))?;
        let table = txn.open_table(EPISODES).map_err(|e| from_redb(what, e))?;
        Ok(table
            .get(&id.to_bytes())
            .map_err(|e| from_redb(what, e))?
            .map(|guard| decode_as(id, guard.value())))
    }

    fn get(&self, id: EpisodeId) -> Result<Option<Episode>> {
        match self.read_record(id, "get cache entry")? {
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            Some(Ok(episode)) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                lock(&self.lru)?.touch(id);
                Ok(Some(episode))
            }
            Some(Err(err)) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                self.found_damaged(id, &err)?;
                Err(err)
            }
        }
    }

    /// Count a damaged record and forget its version, so the next `put` replaces it.
    fn found_damaged(&self, id: EpisodeId, err: &Error) -> Result<()> {
        tracing::warn!(%id, error = %err, "damaged cache record");
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        lock(&self.lru)?.set_version(id, StoredVersion::Damaged);
        Ok(())
    }

    /// The version of the stored record of `id`, read and decoded (a damaged one is counted).
    fn stored_version(&self, id: EpisodeId) -> Result<StoredVersion> {
        match self.read_record(id, "read cache entry version")? {
            None => Ok(StoredVersion::Damaged),
            Some(Ok(e)) => Ok(StoredVersion::Known(e.version)),
            Some(Err(err)) => {
                tracing::warn!(%id, error = %err, "damaged cache record");
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                Ok(StoredVersion::Damaged)
            }
        }
    }

    fn invalidate(&self, id: EpisodeId) -> Result<()> {
        let what = "invalidate cache entry";
        let _writer = lock(&self.writer)?;
        let txn = self.begin_cache_write(what, Durability::None)?;
        Entries::open(&txn, what)?.remove(&id.to_bytes(), what)?;
        txn.commit().map_err(|e| from_redb(what, e))?;
        lock(&self.lru)?.remove(id);
        Ok(())
    }

    fn scan(&self, after: Option<EpisodeId>, limit: usize) -> Result<Page<CachedVersion>> {
        let what = "scan cache";
        let txn = self.db.begin_read().map_err(|e| from_redb(what, e))?;
        let table = txn.open_table(EPISODES).map_err(|e| from_redb(what, e))?;
        let after_key = after.map(EpisodeId::to_bytes);
        let lower = match &after_key {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        let rows = table
            .range::<&[u8; 16]>((lower, Bound::Unbounded))
            .map_err(|e| from_redb(what, e))?;
        let mut items = Vec::new();
        let mut more = false;
        for row in rows {
            let (key, value) = row.map_err(|e| from_redb(what, e))?;
            if items.len() == limit {
                more = true;
                break;
            }
            let id = EpisodeId::from_bytes(*key.value()).map_err(|e| {
                Error::corrupt(format!(
                    "cache key {:02x?} is not an episode id",
                    key.value()
                ))
                .with_source(e)
            })?;
            let version = match decode_as(id, value.value()) {
                Ok(e) => Some(e.version),
                Err(err) => {
                    self.found_damaged(id, &err)?;
                    None
                }
            };
            items.push(CachedVersion { id, version });
        }
        let next_after = if more {
            items.last().map(|v| v.id)
        } else {
            None
        };
        Ok(Page { items, next_after })
    }

    fn clear(&self) -> Result<()> {
        let what = "clear cache";
        let _writer = lock(&self.writer)?;
        let txn = self.begin_cache_write(what, Durability::None)?;
        empty_cache_tables(&txn).map_err(|e| from_redb(what, e))?;
        txn.commit().map_err(|e| from_redb(what, e))?;
        lock(&self.lru)?.clear();
        Ok(())
    }
}

#[async_trait]
impl CacheStore for RedbCache {
    #[tracing::instrument(level = "debug", name = "redb_cache.get", skip(self))]
    async fn get(&self, id: EpisodeId) -> Result<Option<Episode>> {
        let inner = self.inner.clone();
        blocking("get", move || inner.get(id)).await
    }

    #[tracing::instrument(
        level = "debug",
        name = "redb_cache.put",
        skip_all,
        fields(id = %episode.id, version = episode.version)
    )]
    async fn put(&self, episode: &Episode) -> Result<()> {
        let bytes = record::encode(RecordKind::Episode, episode)?;
        let (id, version) = (episode.id, episode.version);
        let inner = self.inner.clone();
        blocking("put", move || {
            inner.write(
                id,
                &bytes,
                StoredVersion::Known(version),
                Replace::UnlessNewerStored(version),
                Durability::None,
            )
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "redb_cache.invalidate", skip(self))]
    async fn invalidate(&self, id: EpisodeId) -> Result<()> {
        let inner = self.inner.clone();
        blocking("invalidate", move || inner.invalidate(id)).await
    }

    #[tracing::instrument(level = "debug", name = "redb_cache.scan", skip(self))]
    async fn scan(&self, after: Option<EpisodeId>, limit: usize) -> Result<Page<CachedVersion>> {
        let inner = self.inner.clone();
        blocking("scan", move || inner.scan(after, limit)).await
    }

    #[tracing::instrument(level = "debug", name = "redb_cache.clear", skip(self))]
    async fn clear(&self) -> Result<()> {
        let inner = self.inner.clone();
        blocking("clear", move || inner.clear()).await
    }

    fn stats(&self) -> CacheStats {
        let (entries, bytes) = self
            .inner
            .lru
            .lock()
            .map(|l| (l.len(), l.bytes()))
            .unwrap_or_default();
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            entries,
            bytes,
            evictions: self.inner.evictions.load(Ordering::Relaxed),
            corrupt: self.inner.corrupt.load(Ordering::Relaxed),
        }
    }
}
