//! [`SpatiotemporalIndex`]: the sharded, in-memory retrieval index and its locking protocol.
//!
//! Owns the shard map (`namespace → domain → shard cell`), the id directory, and every write
//! path (insert, replace, move, remove, bulk rebuild). Reads for retrieval go through
//! crate-private accessors that hand out shard cells; scoring lives in `retrieval`. The index
//! must never do I/O except loading and saving spilled shards and merging the id directory's
//! file through its spill thread (with no shard lock held) and, under a memory budget,
//! reading a block of that file per lookup of an id; never `.await`, never hold a lock
//! across a call into caller code, and never let a query of one namespace see a shard of
//! another.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use crate::episode::EpisodeSummary;
use crate::error::{Error, Result};
use crate::id::{EpisodeId, IdRange};

use super::cell::{LockWaitStats, LockWaits, Residence, ShardCell};
use super::config::IndexConfig;
use super::directory::{Directory, Located, Rebuilt};
use super::document::Draft;
use super::footprint;
use super::image::{ShardLoad, ShardView};
use super::postings::MAX_SLOTS;
use super::shard::{Pending, Shard, ShardBuilder, ShardKey};
use super::spill::{ShardSpill, SpillIo};
use super::stats::IndexStats;

/// A shard whose content is in the spill target, not in memory, with what the index needs to
/// serve it until it is loaded: its statistics and every `(id, version)` it holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpilledShard {
    pub(crate) namespace: String,
    pub(crate) domain: String,
    pub(crate) stats: IndexStats,
    pub(crate) versions: Vec<(EpisodeId, u64)>,
}

/// One shard's content as [`SpatiotemporalIndex::for_each_shard`] hands it over.
#[derive(Debug)]
pub(crate) enum ShardContent {
    /// Its encoding, with the `(id, version)` of each of its episodes.
    Encoded {
        namespace: String,
        domain: String,
        versions: Vec<(EpisodeId, u64)>,
        bytes: Vec<u8>,
    },
    /// Spilled and unchanged since: the spill file at `path` holds exactly its content.
    File {
        namespace: String,
        domain: String,
        path: std::path::PathBuf,
    },
}

/// A spilled shard and the `(id, version)` of its episodes, sorted by id.
type Listing = (Arc<ShardCell>, std::vec::IntoIter<(EpisodeId, u64)>);

/// Spilled shards' `(id, version)` lists, each sorted by id (newest version first), merged
/// in id order: the first of each id is kept (its newest version, the first shard's on a
/// tie), the others are `strays`.
struct ById {
    lists: Vec<Listing>,
    /// The head of each list not yet taken, least first.
    heads: BinaryHeap<Reverse<(EpisodeId, Reverse<u64>, usize)>>,
    last: Option<EpisodeId>,
    strays: Vec<(Arc<ShardCell>, EpisodeId)>,
}

impl ById {
    fn new(lists: Vec<Listing>) -> Self {
        let mut merged = Self {
            heads: BinaryHeap::with_capacity(lists.len()),
            lists,
            last: None,
            strays: Vec::new(),
        };
        for at in 0..merged.lists.len() {
            merged.advance(at);
        }
        merged
    }

    fn advance(&mut self, at: usize) {
        if let Some((id, version)) = self.lists[at].1.next() {
            self.heads.push(Reverse((id, Reverse(version), at)));
        }
    }
}

impl Iterator for ById {
    type Item = (EpisodeId, Located);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(Reverse((id, Reverse(version), at))) = self.heads.pop() {
            self.advance(at);
            let cell = self.lists[at].0.clone();
            if self.last == Some(id) {
                self.strays.push((cell, id));
                continue;
            }
            self.last = Some(id);
            return Some((id, Located { cell, version }));
        }
        None
    }
}

type DomainMap = BTreeMap<Arc<str>, Arc<ShardCell>>;
type ShardMap = HashMap<Arc<str>, DomainMap>;

/// The in-memory retrieval index: episode summaries sharded by `(namespace, domain)`.
///
/// Inside a shard, episodes are partitioned by task type; each partition keeps temporal
/// clusters (time buckets of [`IndexConfig::temporal_bucket_width`]) and an R-tree holding each
/// cluster as a box over `[started_at, reward]`, and the shard keeps what lexical scoring needs
/// (per-field term frequencies, document frequencies, length totals) and optional vectors.
/// All methods are synchronous and only hold locks for in-memory work; the only I/O is loading
/// and saving spilled shards (memory budget, snapshot open), done on the spill thread while
/// the caller waits holding at most that shard's `moving` lock, and under a memory budget the
/// id directory's file: merged on the spill thread by the budget check, one block of it read
/// under the directory mutex for each id a write claims (a read from the page cache, almost
/// always: the file is written shortly before and read often).
///
/// # Locks and their order
///
/// - **Shard lock**: one `std::sync::RwLock` per `(namespace, domain)` shard. Writes to one
///   shard take only that shard's lock, so a write to one shard never blocks another shard;
///   a query read-locks the shards it searches one at a time, never two at once.
/// - **Shard-map lock**: one `RwLock` over `namespace → domain → shard`, read-mostly. It is
///   never held while a shard lock is taken or held: a caller read-locks it, clones the
///   shard's `Arc`, and releases it before locking the shard. It is write-locked only to add
///   a shard, to drop a shard that became empty, and to swap in a whole new map (`install`,
///   which ends a bulk build, and `install_spilled`, a snapshot open).
/// - **Directory mutex**: guards `EpisodeId → (shard, version)` and the per-id claims that
///   serialize operations on one id. It is held only for map operations (under a memory
///   budget, a read of one block of the directory's file among them), never while a shard
///   lock is taken or held; a claim is a mark, not a held lock. The one nesting in the index
///   is the swap of a whole content (`install`, `install_spilled`), which holds the directory
///   mutex while it write-locks the shard map (order: directory → shard map); nothing takes
///   them in the other order.
///
/// An emptied shard is marked *retired* under its own write lock, then removed from the map
/// (map write lock, shard lock released); a writer that finds a retired shard under its write
/// lock looks the shard up again, so no write is ever lost in a shard being dropped. None of
/// these locks is ever held across an `.await`.
///
/// # Memory
///
/// [`SpatiotemporalIndex::memory_bytes`] walks every shard (one read lock at a time) and sums
/// container capacities × element sizes, string and slice lengths, and the R-tree node arrays;
/// see the `footprint` module for the method and what it does not see.
#[derive(Debug)]
pub struct SpatiotemporalIndex {
    config: IndexConfig,
    bucket_width: i64,
    shards: RwLock<ShardMap>,
    directory: Directory,
    waits: LockWaits,
    /// Where spilled shards go (set once, by the engine, when a memory budget is configured).
    spill: OnceLock<SpillIo>,
    /// The most bytes loaded shards and the directory may hold; 0: no limit.
    budget: AtomicUsize,
    /// Estimated heap bytes of the loaded shards (the sum of their cells' estimates).
    loaded: AtomicUsize,
    /// Logical clock of shard uses (least recently used shards are spilled first).
    clock: AtomicU64,
    /// Shards loaded from, and spilled to, the spill target since the index was made.
    moves: ShardMoves,
    /// Unit tests of the engine's compensation paths: inserts to fail before touching anything.
    #[cfg(test)]
    fail_inserts: std::sync::atomic::AtomicU32,
    /// Unit tests of the shard size limit: the most documents a shard may hold.
    #[cfg(test)]
    slot_limit: AtomicUsize,
}

/// Counts of shard moves between memory and the spill target.
#[derive(Debug, Default)]
struct ShardMoves {
    loads: AtomicU64,
    spills: AtomicU64,
    folds: AtomicU64,
}

/// Shard moves between memory and the spill target since the index was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MoveCounts {
    pub(crate) loads: u64,
    pub(crate) spills: u64,
    /// Queues of changes folded into spilled shards' files without loading the shards.
    pub(crate) folds: u64,
    /// Times the memory of spilled shards was handed back to the system (glibc only).
    pub(crate) releases: u64,
}

impl SpatiotemporalIndex {
    /// An empty index. Fails if `config` does not validate.
    pub fn new(config: IndexConfig) -> Result<Self> {
        config.validate()?;
        let bucket_width = config.bucket_width_micros().ok_or_else(|| {
            Error::invalid("index.temporal_bucket_width", "fits in i64 µs", "too large")
        })?;
        Ok(Self {
            config,
            bucket_width,
            shards: RwLock::new(HashMap::new()),
            directory: Directory::default(),
            waits: LockWaits::default(),
            spill: OnceLock::new(),
            budget: AtomicUsize::new(0),
            loaded: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
            moves: ShardMoves::default(),
            #[cfg(test)]
            fail_inserts: std::sync::atomic::AtomicU32::new(0),
            #[cfg(test)]
            slot_limit: AtomicUsize::new(MAX_SLOTS),
        })
    }

    /// The structural settings.
    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// Index `summary`, replacing the entry with the same id if there is one, wherever it was
    /// (another shard, another task type), unless that entry has a newer version: the index
    /// never goes back to an older version, so a slow writer or a repair cannot undo a newer
    /// write. Returns the version of the entry held before (unchanged if it was newer). Fails with
    /// `InvalidInput`, changing nothing, on a non-finite reward or a bad embedding (see
    /// [`IndexConfig::embedding_dimension`]), or when the episode is new to its (namespace,
    /// domain) and that shard already holds 16,777,216 episodes, the most one holds (a
    /// posting keeps a document's position in 24 bits; while the shard is spilled, changes
    /// queued for it count as new episodes), or, under a memory budget, when the id
    /// directory's file cannot be read. The text is analyzed before any lock is taken.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %summary.id))]
    pub fn insert(&self, summary: &EpisodeSummary) -> Result<Option<u64>> {
        #[cfg(test)]
        if self
            .fail_inserts
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok()
        {
            return Err(Error::storage("injected index failure"));
        }
        let draft = Draft::from_summary(summary, &self.config)?;
        let (id, version) = (draft.id, draft.version);
        let claim = self.directory.claim(id)?;
        if let Some(current) = claim.current()
            && current.version > version
        {
            return Ok(Some(current.version));
        }
        let mut draft = Some(draft);
        loop {
            let cell = self.cell_for(&summary.context.namespace, &summary.context.domain);
            cell.touch(self.tick());
            let mut shard = cell.write(&self.waits);
            if cell.is_retired() {
                continue;
            }
            let Some(d) = draft.take() else {
                return Err(Error::storage("index insert lost its draft"));
            };
            let same_cell = claim
                .current()
                .filter(|old| Arc::ptr_eq(&old.cell, &cell))
                .map(|old| old.version);
            let limit = self.slot_limit();
            let replaced = if cell.is_spilled() {
                // Every queued change counts as a new episode: a bound, without a walk of
                // the queue on each insert.
                let queued = shard.pending_len();
                if same_cell.is_none() && cell.spilled_stats().episodes + queued >= limit {
                    return Err(shard_full(cell.key(), limit));
                }
                // The content is on file: queue the change for when it is loaded.
                let bytes = shard.queue(Pending::Upsert(d));
                self.account(&cell, bytes);
                same_cell
            } else {
                if !shard.has_room(d.id, limit) {
                    return Err(shard_full(cell.key(), limit));
                }
                cell.set_saved(false);
                let replaced = shard.upsert(d);
                self.account(&cell, shard.approx_bytes());
                replaced
            };
            drop(shard);
            // A move: the new copy is in place before the old one goes, so a concurrent query
            // may meet the episode twice (it keeps one) but never misses it.
            let previous = match claim.current() {
                Some(old) if !Arc::ptr_eq(&old.cell, &cell) => {
                    self.remove_from(&old.cell, id, old.version)
                }
                _ => replaced,
            };
            claim.finish(Some(Located { cell, version }));
            return Ok(previous);
        }
    }

    /// Remove `id`. Returns whether it was indexed. Nothing of it remains: no term statistics,
    /// cluster membership or contribution, tag or directory entry; a shard, task type or
    /// cluster left empty is dropped. Fails, changing nothing, only when the id directory's
    /// file (under a memory budget) cannot be read.
    #[tracing::instrument(level = "debug", skip(self))]
    pub fn remove(&self, id: EpisodeId) -> Result<bool> {
        let claim = self.directory.claim(id)?;
        let Some(old) = claim.current().cloned() else {
            return Ok(false);
        };
        let removed = self.remove_from(&old.cell, id, old.version).is_some();
        claim.finish(None);
        Ok(removed)
    }

    /// Replace the whole content of the index with `summaries` (later duplicates of an id
    /// win), bulk-loading every tree: [`SpatiotemporalIndex::bulk`] fed with every summary,
    /// then finished. On error nothing changes. Returns the number of episodes indexed.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn bulk_build(&self, summaries: impl IntoIterator<Item = EpisodeSummary>) -> Result<usize> {
        let mut build = self.bulk();
        for s in summaries {
            build.add(&s)?;
        }
        build.finish()
    }

    /// Start replacing the whole content of the index (the rebuild path at open and after a
    /// damaged shard file): summaries are analyzed and attached to their shard as they are
    /// added, so only the index being built is held, never the whole input; nothing is
    /// visible until [`BulkBuild::finish`].
    pub fn bulk(&self) -> BulkBuild<'_> {
        BulkBuild {
            index: self,
            keys: BTreeMap::new(),
            shards: Vec::new(),
            home: HashMap::new(),
        }
    }

    /// The content of every shard with its statistics, handed to `each` one shard at a time:
    /// encoded (a shard's read lock is held while it is encoded into memory, never while
    /// `each` runs), or, for a shard whose spill target keeps a file holding exactly its
    /// content (spilled with no changes queued, or loaded from that file and unchanged since),
    /// as that file, which is not replaced while `each` runs (the shard's `moving` lock is
    /// held: a query that needs the shard loaded waits). A spilled shard's queued changes are
    /// folded into its file first ([`Self::fold_cell`]); if more arrive before it is read, it
    /// is read from the spill target and they are applied, not loaded. Shards are read one
    /// after another, so writes made meanwhile may be in some and not others: a caller that
    /// persists them must compare them with the durable store when it loads them.
    pub(crate) fn for_each_shard(
        &self,
        mut each: impl FnMut(ShardContent, IndexStats) -> Result<()>,
    ) -> Result<()> {
        for cell in self.all_cells() {
            if let Some(spill) = self.spill.get() {
                self.fold_cell(&cell, spill)?;
            }
            let moving = cell.moving();
            if let Some((file, stats)) = self.unchanged_file(&cell) {
                each(
                    ShardContent::File {
                        namespace: cell.key().namespace.to_string(),
                        domain: cell.key().domain.to_string(),
                        path: file,
                    },
                    stats,
                )?;
                continue;
            }
            let encoded = self.encoded(&cell)?;
            drop(moving);
            if let Some((content, stats)) = encoded {
                each(content, stats)?;
            }
        }
        Ok(())
    }

    /// The spill file of `cell` when it holds exactly the cell's content (spilled with no
    /// change queued since, or loaded from it and unchanged since), with the statistics of
    /// that content. The caller holds `cell`'s `moving` lock, so the file stays as it is.
    fn unchanged_file(&self, cell: &ShardCell) -> Option<(std::path::PathBuf, IndexStats)> {
        let shard = cell.read(&self.waits);
        // Under the read lock: a change clears `is_saved` under the write lock, before it.
        let stats = match cell.residence() {
            Residence::Spilled if shard.pending_len() == 0 => cell.spilled_stats(),
            Residence::Loaded if cell.is_saved() => shard.stats(),
            _ => return None,
        };
        drop(shard);
        Some((self.spill.get()?.file(cell.key())?, stats))
    }

    /// Replace the whole content of the index with `shards`, left spilled: each is loaded from
    /// the spill target when first used, and writes to it are queued until then. Needs a spill
    /// target holding every shard's content. An episode listed by two shards (a snapshot written
    /// while it moved) is kept at its newer version (the first shard on a tie); its removal
    /// from the other is queued. Returns the number of episodes indexed.
    pub(crate) fn install_spilled(&self, shards: Vec<SpilledShard>) -> Result<usize> {
        let spill = self.spill()?;
        let mut map = ShardMap::new();
        let mut lists = Vec::with_capacity(shards.len());
        for shard in shards {
            let key = ShardKey {
                namespace: Arc::from(shard.namespace.as_str()),
                domain: Arc::from(shard.domain.as_str()),
            };
            let cell = Arc::new(ShardCell::new(key.clone(), Shard::new(self.bucket_width)));
            cell.set_residence(Residence::Spilled, Some(shard.stats));
            let domains: &mut DomainMap = map.entry(key.namespace).or_default();
            if domains.insert(key.domain, cell.clone()).is_some() {
                return Err(Error::corrupt(format!(
                    "index snapshot: shard ({:?}, {:?}) appears twice",
                    shard.namespace, shard.domain
                )));
            }
            let mut versions = shard.versions;
            // Stable, so it finds the runs already in id order (a shard lists its episodes
            // mostly in the order they came); newest version first for an id listed twice.
            versions.sort_by_key(|(id, version)| (*id, Reverse(*version)));
            lists.push((cell, versions.into_iter()));
        }
        let mut merged = ById::new(lists);
        // Under a budget, the directory goes straight to its file: it is never whole in
        // memory, not even while the index opens.
        let budgeted = self.budget.load(Ordering::Acquire) > 0;
        let entries = match spill.scratch_dir().filter(|_| budgeted) {
            Some(dir) => Rebuilt::File(self.directory.write_file(&dir, &mut merged)?),
            None => Rebuilt::Memory(merged.by_ref().collect()),
        };
        let mut queued = 0;
        for (cell, id) in merged.strays {
            let bytes = cell.write(&self.waits).queue(Pending::Remove(id));
            queued += bytes - cell.set_bytes(bytes);
        }
        let count = entries.len();
        self.directory.rebuild(entries, || {
            *self.waits.write(&self.shards) = map;
            self.loaded.store(queued, Ordering::Release);
        });
        Ok(count)
    }

    /// Swap in `shards` (no id in two of them) as the whole content, the directory rebuilt
    /// from them.
    fn install(&self, shards: Vec<(ShardKey, Shard)>) -> Result<usize> {
        let count = shards.iter().map(|(_, shard)| shard.len()).sum();
        let mut map = ShardMap::new();
        let mut entries: Vec<(EpisodeId, Located)> = Vec::with_capacity(count);
        let mut loaded = 0;
        for (key, shard) in shards {
            if shard.is_empty() {
                continue;
            }
            let located: Vec<(EpisodeId, u64)> =
                shard.docs().map(|(_, d)| (d.id, d.version)).collect();
            let bytes = shard.approx_bytes();
            let cell = Arc::new(ShardCell::new(key.clone(), shard));
            cell.set_bytes(bytes);
            loaded += bytes;
            entries.extend(located.into_iter().map(|(id, version)| {
                (
                    id,
                    Located {
                        cell: cell.clone(),
                        version,
                    },
                )
            }));
            let domains: &mut DomainMap = map.entry(key.namespace).or_default();
            domains.insert(key.domain, cell);
        }
        entries.sort_by_key(|(id, _)| *id);
        self.directory.rebuild(Rebuilt::Memory(entries), || {
            *self.waits.write(&self.shards) = map;
            self.loaded.store(loaded, Ordering::Release);
        });
        Ok(count)
    }

    /// Make the next `n` inserts fail (unit tests of the engine's compensation paths).
    #[cfg(test)]
    pub(crate) fn fail_next_inserts(&self, n: u32) {
        self.fail_inserts
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every indexed id with its version (a snapshot, in no particular order): what an index
    /// opened from a snapshot is compared with the durable store by. Fails only when the id
    /// directory's file (under a memory budget) cannot be read; so do [`Self::contains`] and
    /// the crate's `versions_in`.
    pub fn versions(&self) -> Result<Vec<(EpisodeId, u64)>> {
        self.directory.versions_in(IdRange::default())
    }

    /// The indexed ids in `range` with their versions, in no order: what reconciliation
    /// compares a page of the durable store with.
    pub(crate) fn versions_in(&self, range: IdRange) -> Result<Vec<(EpisodeId, u64)>> {
        self.directory.versions_in(range)
    }

    /// Whether the id directory's entries are on file (under a memory budget).
    #[cfg(test)]
    pub(crate) fn directory_on_file(&self) -> bool {
        self.directory.on_file()
    }

    /// How many episodes are indexed.
    pub fn len(&self) -> usize {
        self.directory.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The indexed version of `id`, if indexed: what reconciliation compares with the store.
    pub fn contains(&self, id: EpisodeId) -> Result<Option<u64>> {
        self.directory.version(id)
    }

    /// Counts of what the index holds (see [`IndexStats`]).
    pub fn stats(&self) -> IndexStats {
        let mut total = IndexStats::default();
        for cell in self.all_cells() {
            let shard = cell.read(&self.waits);
            if !cell.is_spilled() {
                if !shard.is_empty() {
                    total.add(&shard.stats());
                }
            } else if shard.pending_len() == 0 {
                total.add(&cell.spilled_stats());
            } else {
                drop(shard);
                // Queued changes: count the content they make (a temporary restore).
                match self.restored(&cell) {
                    Ok(restored) => total.add(&restored.stats()),
                    Err(e) => {
                        tracing::warn!(error = %e, "spilled shard unreadable; counted as spilled");
                        total.add(&cell.spilled_stats());
                    }
                }
            }
        }
        total
    }

    /// An estimate of the heap bytes the index holds: shard map, directory, and every shard
    /// (document table, interners, per-document term and tag arrays, vectors, R-tree nodes,
    /// cluster summaries). Capacities are counted, not lengths, so memory kept after removals
    /// shows. Costs one pass over every shard, one read lock at a time.
    pub fn memory_bytes(&self) -> usize {
        let map_bytes = {
            let map = self.waits.read(&self.shards);
            let mut bytes = footprint::hash_map::<Arc<str>, DomainMap>(map.capacity());
            for (ns, domains) in map.iter() {
                bytes += ns.len() + footprint::btree_map::<Arc<str>, Arc<ShardCell>>(domains.len());
                bytes += domains
                    .keys()
                    .map(|d| d.len() + size_of::<ShardCell>())
                    .sum::<usize>();
            }
            bytes
        };
        let shard_bytes: usize = self
            .all_cells()
            .iter()
            .map(|c| c.read(&self.waits).heap_bytes())
            .sum();
        map_bytes + shard_bytes + self.directory.heap_bytes()
    }

    /// How long callers have waited for the index's locks.
    pub fn lock_waits(&self) -> LockWaitStats {
        self.waits.snapshot()
    }

    /// The shard cells of `namespace` (only that domain's, when given), ordered by domain.
    /// The map lock is released before this returns.
    pub(crate) fn shards_of(&self, namespace: &str, domain: Option<&str>) -> Vec<Arc<ShardCell>> {
        let map = self.waits.read(&self.shards);
        let Some(domains) = map.get(namespace) else {
            return Vec::new();
        };
        match domain {
            Some(d) => domains.get(d).cloned().into_iter().collect(),
            None => domains.values().cloned().collect(),
        }
    }

    /// The lock-wait counters.
    #[cfg(test)]
    pub(crate) fn waits(&self) -> &LockWaits {
        &self.waits
    }

    fn all_cells(&self) -> Vec<Arc<ShardCell>> {
        let map = self.waits.read(&self.shards);
        map.values().flat_map(|d| d.values().cloned()).collect()
    }

    /// The most documents a shard may hold: [`MAX_SLOTS`] (lower in unit tests).
    #[cfg(not(test))]
    fn slot_limit(&self) -> usize {
        MAX_SLOTS
    }

    #[cfg(test)]
    fn slot_limit(&self) -> usize {
        self.slot_limit.load(Ordering::Relaxed)
    }

    /// The live cell of `(namespace, domain)`, created if missing or retired.
    fn cell_for(&self, namespace: &str, domain: &str) -> Arc<ShardCell> {
        {
            let map = self.waits.read(&self.shards);
            if let Some(cell) = map.get(namespace).and_then(|d| d.get(domain))
                && !cell.is_retired()
            {
                return cell.clone();
            }
        }
        let mut map = self.waits.write(&self.shards);
        let domains = match map.get_mut(namespace) {
            Some(d) => d,
            None => map.entry(Arc::from(namespace)).or_default(),
        };
        if let Some(cell) = domains.get(domain)
            && !cell.is_retired()
        {
            return cell.clone();
        }
        let key = ShardKey {
            namespace: domains
                .values()
                .next()
                .map_or_else(|| Arc::from(namespace), |c| c.key().namespace.clone()),
            domain: Arc::from(domain),
        };
        let cell = Arc::new(ShardCell::new(key.clone(), Shard::new(self.bucket_width)));
        domains.insert(key.domain, cell.clone());
        cell
    }

    /// Remove `id` (indexed at `version`) from `cell`'s shard (queued if the content is
    /// spilled), dropping the shard from the map if it emptied.
    fn remove_from(&self, cell: &Arc<ShardCell>, id: EpisodeId, version: u64) -> Option<u64> {
        let mut shard = cell.write(&self.waits);
        if cell.is_spilled() {
            let bytes = shard.queue(Pending::Remove(id));
            self.account(cell, bytes);
            return Some(version);
        }
        cell.set_saved(false);
        let removed = shard.remove(id);
        self.account(cell, shard.approx_bytes());
        let retired = cell.retire_if_empty(&shard);
        drop(shard);
        if retired {
            self.drop_retired(cell);
        }
        removed
    }

    /// The next tick of the use clock.
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Set the cell's byte estimate to `bytes`, keeping the loaded total in step.
    fn account(&self, cell: &ShardCell, bytes: usize) {
        let before = cell.set_bytes(bytes);
        if bytes >= before {
            self.loaded.fetch_add(bytes - before, Ordering::AcqRel);
        } else {
            self.loaded.fetch_sub(before - bytes, Ordering::AcqRel);
        }
    }

    /// Spill shards to `spill` when the budget asks for it (see [`Self::set_budget`]). Set once;
    /// later calls fail.
    pub(crate) fn set_spill(&self, spill: Arc<dyn ShardSpill>) -> Result<()> {
        self.spill
            .set(SpillIo::new(spill)?)
            .map_err(|_| Error::storage("the index already has a spill target"))
    }

    /// Let loaded shards and the id directory hold at most `bytes` (0: no limit); enforced by
    /// [`Self::enforce_budget`], which needs a spill target, and which also moves the id
    /// directory's entries to a file in the target's scratch directory, when it has one (the
    /// directory then holds in memory only the changes since its last merge and a fence id per
    /// 128 entries).
    pub(crate) fn set_budget(&self, bytes: usize) {
        self.budget.store(bytes, Ordering::Release);
    }

    /// Estimated heap bytes of the loaded shards plus the id directory: what the budget
    /// bounds.
    pub(crate) fn budgeted_bytes(&self) -> usize {
        self.loaded.load(Ordering::Acquire) + self.directory.heap_bytes()
    }

    /// Shards loaded from the spill target and spilled to it, and releases of the memory
    /// spills freed, since the index was made.
    pub(crate) fn shard_moves(&self) -> MoveCounts {
        MoveCounts {
            loads: self.moves.loads.load(Ordering::Relaxed),
            spills: self.moves.spills.load(Ordering::Relaxed),
            folds: self.moves.folds.load(Ordering::Relaxed),
            releases: self.spill.get().map_or(0, SpillIo::releases),
        }
    }

    /// How many shards are spilled.
    pub(crate) fn spilled_shards(&self) -> usize {
        // Asked before every search: counted under the map lock, nothing allocated.
        let map = self.waits.read(&self.shards);
        map.values()
            .flat_map(BTreeMap::values)
            .filter(|c| c.is_spilled())
            .count()
    }

    /// The spill target, required once a shard is spilled.
    fn spill(&self) -> Result<&SpillIo> {
        self.spill
            .get()
            .ok_or_else(|| Error::storage("a shard is spilled but the index has no spill target"))
    }

    /// The shard `cell`'s spilled content as last saved (the changes queued since are not
    /// applied). The file is read and decoded with no shard lock held.
    fn restore(&self, cell: &ShardCell) -> Result<Shard> {
        self.spill()?.load(self.shard_load(cell))
    }

    /// How to decode `cell`'s spilled content.
    fn shard_load(&self, cell: &ShardCell) -> ShardLoad {
        ShardLoad {
            key: cell.key().clone(),
            bucket_width: self.bucket_width,
            embedding_dimension: self.config.embedding_dimension,
        }
    }

    /// Fold the changes queued on spilled `cell` into its spilled content without loading it
    /// ([`ShardSpill::fold`]): the queue is shared with the spill thread (not copied), and
    /// once the new content is saved, those changes leave the queue (changes queued meanwhile
    /// stay). If the fold fails, nothing changes. Returns whether a queue was folded.
    fn fold_cell(&self, cell: &Arc<ShardCell>, spill: &SpillIo) -> Result<bool> {
        if cell.residence() != Residence::Spilled {
            // Checked again under the locks; this spares loaded shards both.
            return Ok(false);
        }
        let _moving = cell.moving();
        let changes = {
            let mut shard = cell.write(&self.waits);
            if cell.residence() != Residence::Spilled {
                return Ok(false);
            }
            match shard.begin_fold() {
                Some(changes) => changes,
                None => return Ok(false),
            }
        };
        let before = cell.spilled_stats();
        let folded = spill.fold(self.shard_load(cell), changes);
        let mut shard = cell.write(&self.waits);
        let queued = shard.pending_bytes();
        let bytes = shard.end_fold(folded.is_ok());
        // A failed fold left the changes queued, and nothing else changed.
        let stats = folded?;
        cell.set_residence(Residence::Spilled, Some(stats));
        // The room a load will need: the size last measured, scaled by the documents and
        // postings the content has now.
        let weight = |s: &IndexStats| s.episodes as u128 + u128::from(s.postings);
        if weight(&before) > 0 {
            let scaled = cell.spilled_bytes() as u128 * weight(&stats) / weight(&before);
            cell.set_spilled_bytes(usize::try_from(scaled).unwrap_or(usize::MAX));
        }
        drop(shard);
        self.account(cell, bytes);
        self.moves.folds.fetch_add(1, Ordering::Relaxed);
        // What the fold freed (the queue) counts towards the next release, as a spill's
        // content does.
        spill.freed(queued - bytes, self.budget.load(Ordering::Acquire) / 16);
        Ok(true)
    }

    /// Make sure `cell`'s content is in memory, loading it from the spill target if it was
    /// spilled (waiting for a spill in progress to finish first) and applying the changes
    /// queued meanwhile, and count the use.
    pub(crate) fn ensure_loaded(&self, cell: &Arc<ShardCell>) -> Result<()> {
        cell.touch(self.tick());
        if !cell.is_spilled() {
            return Ok(());
        }
        let _moving = cell.moving();
        if !cell.is_spilled() {
            return Ok(());
        }
        let mut loaded = self.restore(cell)?;
        self.moves.loads.fetch_add(1, Ordering::Relaxed);
        let mut guard = cell.write(&self.waits);
        let queued = guard.take_pending();
        cell.set_saved(queued.is_empty());
        loaded.apply(queued);
        *guard = loaded;
        cell.set_residence(Residence::Loaded, None);
        let bytes = guard.approx_bytes();
        drop(guard);
        self.account(cell, bytes);
        if self.budget.load(Ordering::Acquire) == 0 {
            // No budget: this shard is never spilled again, its file is only disk used.
            cell.set_saved(false);
            if let Err(e) = self.spill()?.discard(cell.key()) {
                tracing::warn!(error = %e, "a loaded shard's spill file was not removed");
            }
        }
        Ok(())
    }

    /// Read-lock `cell` with its content loaded. Under a budget, loading it spills the least
    /// recently used other shards, so queries cannot grow the index past its share between
    /// budget checks: first to make room for the content's size when it was spilled (so the
    /// index does not hold both while the load runs), then for what the load actually took.
    pub(crate) fn read_loaded<'a>(
        &self,
        cell: &'a Arc<ShardCell>,
    ) -> Result<std::sync::RwLockReadGuard<'a, Shard>> {
        if cell.is_spilled() {
            self.relieve(cell, cell.spilled_bytes())?;
            self.ensure_loaded(cell)?;
            self.relieve(cell, 0)?;
        }
        loop {
            self.ensure_loaded(cell)?;
            let guard = cell.read(&self.waits);
            if !cell.is_spilled() {
                return Ok(guard);
            }
        }
    }

    /// The content of a spilled cell with the changes queued since applied, in a temporary
    /// shard (not loaded into the index). During a fold the file may already hold the changes
    /// being folded: applying them again changes nothing (each sets an episode's state).
    fn restored(&self, cell: &ShardCell) -> Result<Shard> {
        let mut restored = self.restore(cell)?;
        let queued: Vec<Pending> = cell.read(&self.waits).pending().cloned().collect();
        restored.apply(queued);
        Ok(restored)
    }

    /// The content of a cell that may be spilled, encoded, with its statistics, without
    /// loading it into the index (a spilled one is restored into a temporary shard); `None`
    /// if it holds nothing. The caller holds the cell's `moving` lock.
    fn encoded(&self, cell: &ShardCell) -> Result<Option<(ShardContent, IndexStats)>> {
        let encode = |shard: &Shard| -> Result<Option<(ShardContent, IndexStats)>> {
            if shard.is_empty() {
                return Ok(None);
            }
            let key = cell.key();
            let content = ShardContent::Encoded {
                namespace: key.namespace.to_string(),
                domain: key.domain.to_string(),
                versions: shard.docs().map(|(_, d)| (d.id, d.version)).collect(),
                bytes: ShardView::new(key, shard).to_vec()?,
            };
            Ok(Some((content, shard.stats())))
        };
        if cell.is_spilled() {
            encode(&self.restored(cell)?)
        } else {
            encode(&cell.read(&self.waits))
        }
    }

    /// Load one spilled shard, the most recently used first; returns whether there was one.
    /// Loads the index back into memory after a lazy open when no budget limits it.
    /// Blocking I/O: run it off the async executor.
    pub(crate) fn load_one_spilled(&self) -> Result<bool> {
        let next = self
            .all_cells()
            .into_iter()
            .filter(|c| c.is_spilled() && !c.is_retired())
            .max_by_key(|c| c.last_used());
        match next {
            Some(cell) => self.ensure_loaded(&cell).map(|()| true),
            None => Ok(false),
        }
    }

    /// Write `cell`'s content out and drop it from memory. Changes arriving meanwhile are
    /// queued, not lost: under the write lock the content is taken out of the cell (leaving an
    /// empty shard that queues changes) and the cell marked *spilling*; the content is written
    /// and dropped on the spill thread with no lock held (so moving a shard out costs no copy
    /// of it); if the write fails, the content goes back under the write lock with the queued
    /// changes applied. A shard loaded from its file and unchanged since is dropped without a
    /// write. Returns whether the cell was spilled.
    fn spill_cell(&self, cell: &Arc<ShardCell>, spill: &SpillIo) -> Result<bool> {
        let _moving = cell.moving();
        let (content, saved, resident) = {
            let mut shard = cell.write(&self.waits);
            if cell.is_spilled() || cell.is_retired() || shard.is_empty() {
                return Ok(false);
            }
            let resident = shard.approx_bytes();
            let saved = cell.is_saved();
            let content = std::mem::replace(&mut *shard, Shard::new(self.bucket_width));
            // Writers queue from here on, on the emptied shard; readers wait for `moving`.
            cell.set_residence(Residence::Spilling, Some(content.stats()));
            (content, saved, resident)
        };
        let written = if saved {
            drop(content);
            Ok(())
        } else {
            spill.save(cell.key(), content)
        };
        let mut shard = cell.write(&self.waits);
        match written {
            Ok(()) => {
                let bytes = shard.pending_bytes();
                self.moves.spills.fetch_add(1, Ordering::Relaxed);
                cell.set_spilled_bytes(resident);
                cell.set_residence(Residence::Spilled, None);
                drop(shard);
                self.account(cell, bytes);
                // Hand the pages of spilled shards back to the system every sixteenth of the
                // budget spilled, in proportion to what spills free. Measured at 2M episodes
                // with 512 MiB (`docs/benchmarks.md`, "Freed memory handed back"): once a
                // second instead cost less time but left a higher peak during queries.
                spill.freed(resident, self.budget.load(Ordering::Acquire) / 16);
                Ok(true)
            }
            Err((e, mut content)) => {
                let queued = shard.take_pending();
                if !queued.is_empty() {
                    cell.set_saved(false);
                }
                content.apply(queued);
                *shard = *content;
                cell.set_residence(Residence::Loaded, None);
                let bytes = shard.approx_bytes();
                drop(shard);
                self.account(cell, bytes);
                Err(e)
            }
        }
    }

    /// Spill least recently used loaded shards other than `keep` until `room` more bytes fit
    /// the budget (no-op without one). Blocking I/O, except for shards whose file already
    /// holds their content.
    fn relieve(&self, keep: &Arc<ShardCell>, room: usize) -> Result<()> {
        let budget = self.budget.load(Ordering::Acquire);
        let fits = || self.budgeted_bytes().saturating_add(room) <= budget;
        if budget == 0 || fits() {
            return Ok(());
        }
        let spill = self.spill()?;
        let cells: Vec<Arc<ShardCell>> = self
            .all_cells()
            .into_iter()
            .filter(|c| !Arc::ptr_eq(c, keep) && !c.is_spilled() && !c.is_retired())
            .collect();
        for cell in coldest_first(cells) {
            if fits() {
                break;
            }
            self.spill_cell(&cell, spill)?;
        }
        Ok(())
    }

    /// Spill least recently used shards until loaded shards, queued changes and the directory
    /// fit the budget (no-op without one), after counting the loaded shards' bytes exactly;
    /// once over it, down to a sixteenth below it.
    /// First, while over the budget (or for any queue past a sixteenth of it), the longest
    /// queues of changes on spilled shards are folded into their files, the shards staying
    /// on file ([`Self::fold_cell`]). Last, the id directory's changes are merged into its
    /// file, on the spill thread, when a merge is due (the first time, the whole directory
    /// moves to a file). Returns how many shards were spilled.
    /// Blocking I/O: run it off the async executor.
    pub(crate) fn enforce_budget(&self) -> Result<usize> {
        let budget = self.budget.load(Ordering::Acquire);
        if budget == 0 {
            return Ok(0);
        }
        let spill = self
            .spill
            .get()
            .ok_or_else(|| Error::storage("a memory budget needs a spill target"))?;
        let mut spilled = 0;
        // Once over the budget, come down to a sixteenth below it: without that slack, the
        // index stays at the budget's edge and every check folds or spills again for the few
        // bytes written since the last (measured in `docs/benchmarks.md`, "Queues folded").
        let low = budget - budget / 16;
        let mut over = self.budgeted_bytes() > budget;
        // Queued changes count against the budget too: fold the longest queues into their
        // files first while over it (each costs two reads and a write of that shard's file,
        // and no memory for the shard: the queue is shared, not copied), and any queue past a
        // sixteenth of the budget.
        let mut queued: Vec<(usize, Arc<ShardCell>)> = self
            .all_cells()
            .into_iter()
            .filter(|c| c.residence() == Residence::Spilled)
            .map(|c| {
                let bytes = c.read(&self.waits).pending_bytes();
                (bytes, c)
            })
            .filter(|(bytes, _)| *bytes > 0)
            .collect();
        queued.sort_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
        for (bytes, cell) in queued {
            if (!over || self.budgeted_bytes() <= low) && bytes <= budget / 16 {
                break;
            }
            self.fold_cell(&cell, spill)?;
        }
        let cells: Vec<Arc<ShardCell>> = self
            .all_cells()
            .into_iter()
            .filter(|c| !c.is_spilled() && !c.is_retired())
            .collect();
        // The running estimates miss vocabulary and container growth (measured: up to about
        // half the true size), so count exactly, one pass over the loaded shards each under
        // its write lock in turn, but only once the estimate is within that margin of the
        // budget: far below it, this check costs nothing per tick.
        let near = self.budgeted_bytes().saturating_mul(2) > budget;
        for cell in cells.iter().filter(|_| near) {
            let mut shard = cell.write(&self.waits);
            if !cell.is_spilled() {
                let bytes = shard.recount();
                self.account(cell, bytes);
            }
        }
        over |= self.budgeted_bytes() > budget;
        for cell in coldest_first(cells) {
            if !over || self.budgeted_bytes() <= low {
                break;
            }
            spilled += usize::from(self.spill_cell(&cell, spill)?);
        }
        // The id directory's changes into its file (the first time, the whole directory).
        if let Some(job) = spill
            .scratch_dir()
            .and_then(|d| self.directory.merge_job(&d))
        {
            spill.run(move || job.run())?;
        }
        Ok(spilled)
    }

    /// Remove a retired cell from the map, if the map still points to it.
    fn drop_retired(&self, cell: &Arc<ShardCell>) {
        let mut map = self.waits.write(&self.shards);
        let key = cell.key();
        let Some(domains) = map.get_mut(&*key.namespace) else {
            return;
        };
        if domains
            .get(&*key.domain)
            .is_some_and(|c| Arc::ptr_eq(c, cell))
        {
            domains.remove(&*key.domain);
        }
        if domains.is_empty() {
            map.remove(&*key.namespace);
            if map.is_empty() {
                *map = ShardMap::new();
            }
        }
    }
}

/// `cells`, least recently used first, by their last uses as of this call: queries keep
/// changing them, and a sort reading the live values could see an inconsistent order (which
/// the standard sort may answer with a panic).
fn coldest_first(mut cells: Vec<Arc<ShardCell>>) -> Vec<Arc<ShardCell>> {
    cells.sort_by_cached_key(|c| c.last_used());
    cells
}

/// A bulk build in progress ([`SpatiotemporalIndex::bulk`]). Dropping it unfinished leaves
/// the index unchanged.
#[derive(Debug)]
pub struct BulkBuild<'i> {
    index: &'i SpatiotemporalIndex,
    /// namespace → domain → position in `shards`.
    keys: BTreeMap<String, BTreeMap<String, usize>>,
    shards: Vec<(ShardKey, ShardBuilder)>,
    /// The shard (position in `shards`) of each id added, so that a later summary of the id
    /// in another shard replaces it there too.
    home: HashMap<EpisodeId, usize>,
}

impl BulkBuild<'_> {
    /// Analyze `summary` and add it to its shard, replacing an earlier summary of the same id.
    /// Fails (`InvalidInput`) on a summary the index refuses (as
    /// [`SpatiotemporalIndex::insert`] does), which is then not added; the build may go on
    /// without it (the engine's rebuilds stop and report the error instead).
    pub fn add(&mut self, summary: &EpisodeSummary) -> Result<()> {
        let draft = Draft::from_summary(summary, &self.index.config)?;
        let at = self.shard_of(&draft.namespace, &draft.domain);
        let limit = self.index.slot_limit();
        let (key, builder) = &self.shards[at];
        if !builder.has_room(draft.id, limit) {
            return Err(shard_full(key, limit));
        }
        if let Some(before) = self.home.insert(draft.id, at)
            && before != at
        {
            self.shards[before].1.remove(draft.id);
        }
        self.shards[at].1.add(draft);
        Ok(())
    }

    /// Build the trees and swap the result in as the whole content of the index; queries
    /// running meanwhile see the old content, writes wait for the swap. A write made to the
    /// index between [`SpatiotemporalIndex::bulk`] and `finish` is replaced with everything
    /// else: the caller brings the index up to date afterwards (the engine's rebuild compares
    /// it with the durable store; at open nothing writes before the build is installed).
    /// Returns the number of episodes indexed.
    pub fn finish(self) -> Result<usize> {
        let shards = self
            .shards
            .into_iter()
            .map(|(key, builder)| (key, builder.finish()))
            .collect();
        self.index.install(shards)
    }

    fn shard_of(&mut self, namespace: &str, domain: &str) -> usize {
        if let Some(&at) = self.keys.get(namespace).and_then(|d| d.get(domain)) {
            return at;
        }
        let at = self.shards.len();
        self.shards.push((
            ShardKey {
                namespace: Arc::from(namespace),
                domain: Arc::from(domain),
            },
            ShardBuilder::new(self.index.bucket_width),
        ));
        self.keys
            .entry(namespace.to_owned())
            .or_default()
            .insert(domain.to_owned(), at);
        at
    }
}

/// The error of an episode new to the shard `key` when it holds `limit` documents already.
fn shard_full(key: &ShardKey, limit: usize) -> Error {
    Error::invalid(
        format!("index shard ({:?}, {:?})", key.namespace, key.domain),
        format!("at most {limit} episodes in one (namespace, domain)"),
        format!("{limit} held, one more"),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::super::image::ShardLoad;
    use super::*;
    use crate::episode::{OutcomeKind, TaskContext};
    use crate::time;

    fn summary(id: EpisodeId, ns: &str, domain: &str) -> EpisodeSummary {
        EpisodeSummary {
            id,
            version: 1,
            context: TaskContext::new(ns, domain, "t"),
            description: "refund the lamp".into(),
            tools: vec![],
            step_count: 0,
            successful_steps: 0,
            outcome: Some(OutcomeKind::Success),
            reward: 1.0,
            embedding: None,
            started_at: time::now(),
            completed_at: Some(time::now()),
        }
    }

    /// `q`'s hits from `index` with the default retrieval settings, at time 0.
    fn search(
        index: &Arc<SpatiotemporalIndex>,
        q: &crate::retrieval::RetrievalQuery,
    ) -> Vec<crate::retrieval::RetrievalHit> {
        let config = crate::retrieval::RetrievalConfig::default();
        crate::retrieval::Retriever::new(index.clone(), config, Arc::default())
            .unwrap()
            .search_at(q, time::from_micros(0))
            .unwrap()
    }

    #[test]
    fn a_bulk_build_keeps_the_later_summary_of_an_id_and_changes_nothing_until_finished() {
        let index = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        let kept = EpisodeId::new();
        index.insert(&summary(kept, "ns", "old")).unwrap();
        let (moved, replaced) = (EpisodeId::new(), EpisodeId::new());
        let mut build = index.bulk();
        build.add(&summary(moved, "ns", "a")).unwrap();
        let mut later = summary(moved, "ns", "b");
        later.version = 2;
        build.add(&later).unwrap();
        build.add(&summary(replaced, "ns", "b")).unwrap();
        let mut again = summary(replaced, "ns", "b");
        again.version = 5;
        build.add(&again).unwrap();
        let mut bad = summary(EpisodeId::new(), "ns", "b");
        bad.reward = f64::NAN;
        assert!(build.add(&bad).is_err());
        // Nothing is visible before `finish`.
        assert_eq!((index.len(), index.contains(kept).unwrap()), (1, Some(1)));
        assert_eq!(build.finish().unwrap(), 2);
        assert_eq!(index.contains(kept).unwrap(), None);
        assert_eq!(index.contains(moved).unwrap(), Some(2));
        assert_eq!(index.contains(replaced).unwrap(), Some(5));
        // The first shard of `moved` was emptied: it is not installed.
        assert!(index.shards_of("ns", Some("a")).is_empty());
        let stats = index.stats();
        assert_eq!((stats.shards, stats.episodes, stats.tree_points), (1, 2, 2));
    }

    #[test]
    fn a_held_shard_lock_blocks_no_other_shard() {
        let index = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        let a = EpisodeId::new();
        index.insert(&summary(a, "ns", "a")).unwrap();
        let cell = index.shards_of("ns", Some("a")).pop().unwrap();
        let guard = cell.write(index.waits());
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let b = EpisodeId::new();
                index.insert(&summary(b, "ns", "b")).unwrap();
                index.insert(&summary(b, "other", "b")).unwrap();
                let removed = index.remove(b).unwrap();
                tx.send((removed, index.contains(a).unwrap(), index.len()))
                    .unwrap();
            });
            let got = rx.recv_timeout(Duration::from_secs(30));
            drop(guard);
            assert_eq!(got, Ok((true, Some(1), 1)));
        });
    }

    /// Spilled shards kept in memory, encoded, counting loads; with `watched` set, each load
    /// records that index's budgeted bytes as the load starts.
    #[derive(Debug, Default)]
    struct MemorySpill {
        files: std::sync::Mutex<HashMap<(String, String), Vec<u8>>>,
        loads: std::sync::atomic::AtomicUsize,
        saves: std::sync::atomic::AtomicUsize,
        watched: std::sync::OnceLock<std::sync::Weak<SpatiotemporalIndex>>,
        budgeted_at_load: std::sync::Mutex<Vec<usize>>,
        /// The next save runs this, then fails (or panics, if true).
        refuse: std::sync::Mutex<Option<(bool, Meanwhile)>>,
        /// The next fold runs this first, then goes on (`None`), or fails (or panics, if
        /// true).
        during_fold: std::sync::Mutex<Option<(Option<bool>, Meanwhile)>>,
    }

    /// What a refused save, or a fold, runs first.
    struct Meanwhile(Box<dyn FnOnce() + Send>);

    impl std::fmt::Debug for Meanwhile {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Meanwhile")
        }
    }

    impl ShardSpill for MemorySpill {
        fn save(&self, shard: ShardView<'_>) -> Result<()> {
            self.saves.fetch_add(1, Ordering::SeqCst);
            let refused = self.refuse.lock().unwrap().take();
            if let Some((panics, meanwhile)) = refused {
                (meanwhile.0)();
                assert!(!panics, "a spill target bug");
                return Err(Error::storage("disk full"));
            }
            let bytes = shard.to_vec()?;
            self.files.lock().unwrap().insert(
                (shard.namespace().to_owned(), shard.domain().to_owned()),
                bytes,
            );
            Ok(())
        }
        fn discard(&self, namespace: &str, domain: &str) -> Result<()> {
            self.files
                .lock()
                .unwrap()
                .remove(&(namespace.to_owned(), domain.to_owned()));
            Ok(())
        }
        fn fold(&self, fold: &crate::index::ShardFold) -> Result<IndexStats> {
            let hook = self.during_fold.lock().unwrap().take();
            if let Some((fails, meanwhile)) = hook {
                (meanwhile.0)();
                if let Some(panics) = fails {
                    assert!(!panics, "a spill target bug");
                    return Err(Error::storage("disk full"));
                }
            }
            let key = &fold.load().key;
            let key = (key.namespace.to_string(), key.domain.to_string());
            let mut files = self.files.lock().unwrap();
            let bytes = files
                .get(&key)
                .ok_or_else(|| Error::storage("no such spilled shard"))?;
            let (folded, stats) = fold.fold_bytes(bytes)?;
            files.insert(key, folded);
            Ok(stats)
        }
        fn load(&self, load: ShardLoad) -> Result<Shard> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            if let Some(index) = self.watched.get().and_then(std::sync::Weak::upgrade) {
                let bytes = index.budgeted_bytes();
                self.budgeted_at_load.lock().unwrap().push(bytes);
            }
            let key = (load.key.namespace.to_string(), load.key.domain.to_string());
            let bytes = self
                .files
                .lock()
                .unwrap()
                .get(&key)
                .cloned()
                .ok_or_else(|| Error::storage("no such spilled shard"))?;
            load.decode(&bytes)
        }
    }

    #[test]
    fn a_shard_full_refuses_new_episodes_only_loaded_spilled_or_bulk() {
        let index = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        index.slot_limit.store(3, Ordering::Relaxed);
        let full = |r: Result<Option<u64>>| {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::InvalidInput, "{e}");
            assert!(e.message().contains("at most 3 episodes"), "{e}");
        };
        let held: Vec<EpisodeSummary> = (0..3)
            .map(|_| summary(EpisodeId::new(), "ns", "d"))
            .collect();
        for s in &held {
            index.insert(s).unwrap();
        }
        full(index.insert(&summary(EpisodeId::new(), "ns", "d")));
        assert_eq!(index.len(), 3);
        // A new version of one held keeps its slot; another shard has its own room.
        let mut again = held[0].clone();
        again.version = 2;
        assert_eq!(index.insert(&again).unwrap(), Some(1));
        index.insert(&summary(EpisodeId::new(), "ns", "e")).unwrap();
        // A removal frees a slot.
        assert!(index.remove(held[1].id).unwrap());
        index.insert(&summary(EpisodeId::new(), "ns", "d")).unwrap();
        // Spilled: the episodes on file and those queued count.
        assert!(index.remove(held[0].id).unwrap());
        let spill = Arc::new(MemorySpill::default());
        index.set_spill(spill.clone()).unwrap();
        index.set_budget(1);
        index.enforce_budget().unwrap();
        assert!(
            index
                .shards_of("ns", Some("d"))
                .iter()
                .all(|c| c.is_spilled())
        );
        index.insert(&summary(EpisodeId::new(), "ns", "d")).unwrap();
        full(index.insert(&summary(EpisodeId::new(), "ns", "d")));
        let mut again = held[2].clone();
        again.version = 2;
        assert_eq!(index.insert(&again).unwrap(), Some(1));
        assert_eq!(index.len(), 4);
        // A bulk build refuses the fourth of a shard and goes on without it.
        let mut build = index.bulk();
        for s in &held {
            build.add(s).unwrap();
        }
        assert!(build.add(&summary(EpisodeId::new(), "ns", "d")).is_err());
        build.add(&summary(EpisodeId::new(), "ns", "e")).unwrap();
        assert_eq!(build.finish().unwrap(), 4);
    }

    #[test]
    fn a_budget_spills_cold_shards_and_they_come_back_on_use() {
        let budgeted = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        let reference = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        let spill = Arc::new(MemorySpill::default());
        budgeted.set_spill(spill.clone()).unwrap();
        let mut ids = Vec::new();
        for i in 0..300 {
            let mut s = summary(EpisodeId::new(), "ns", &format!("d{}", i % 6));
            s.description = format!("refund lamp {} order {}", i % 7, i % 11);
            budgeted.insert(&s).unwrap();
            reference.insert(&s).unwrap();
            ids.push(s);
        }
        let full = budgeted.budgeted_bytes();
        budgeted.set_budget(full / 2);
        let spilled = budgeted.enforce_budget().unwrap();
        assert!(spilled >= 2, "{spilled}");
        assert_eq!(budgeted.spilled_shards(), spilled);
        assert!(budgeted.budgeted_bytes() <= full / 2);
        // Nothing is lost: counts, versions and encodings agree with the reference.
        assert_eq!(budgeted.stats(), reference.stats());
        assert_eq!(budgeted.len(), 300);
        let contents = |index: &SpatiotemporalIndex| {
            let mut v = Vec::new();
            index
                .for_each_shard(|content, stats| {
                    let ShardContent::Encoded {
                        namespace,
                        domain,
                        mut versions,
                        bytes,
                    } = content
                    else {
                        panic!("a test spill target keeps no files");
                    };
                    assert_eq!(stats.episodes, versions.len());
                    versions.sort();
                    v.push((namespace, domain, versions, bytes));
                    Ok(())
                })
                .unwrap();
            v.sort();
            v
        };
        assert_eq!(contents(&budgeted), contents(&reference));
        // Writes and removals reach spilled shards (loaded on demand).
        let cold = ids
            .iter()
            .find(|s| {
                budgeted
                    .shards_of("ns", Some(&s.context.domain))
                    .iter()
                    .all(|c| c.is_spilled())
            })
            .cloned()
            .unwrap();
        assert!(budgeted.remove(cold.id).unwrap());
        assert!(reference.remove(cold.id).unwrap());
        let mut moved = cold.clone();
        moved.version = 2;
        budgeted.insert(&moved).unwrap();
        reference.insert(&moved).unwrap();
        assert!(spill.loads.load(Ordering::SeqCst) >= 1);
        assert_eq!(budgeted.stats(), reference.stats());
        // Spill everything: queries load what they search and answer as the reference does.
        budgeted.set_budget(1);
        budgeted.enforce_budget().unwrap();
        assert!(
            budgeted
                .shards_of("ns", None)
                .iter()
                .all(|c| c.is_spilled())
        );
        let budgeted = Arc::new(budgeted);
        let reference = Arc::new(reference);
        for text in ["refund lamp 3", "order 5", "lamp"] {
            let q = crate::retrieval::RetrievalQuery::new("ns", text).limit(7);
            assert_eq!(search(&budgeted, &q), search(&reference, &q), "{text}");
            let q = q.domain("d2");
            assert_eq!(search(&budgeted, &q), search(&reference, &q), "{text}");
        }
        budgeted.set_budget(1);
        budgeted.enforce_budget().unwrap();
        let cells = budgeted.shards_of("ns", None);
        assert!(cells.iter().all(|c| c.is_spilled()));
        for cell in &cells {
            let shard = budgeted.read_loaded(cell).unwrap();
            let key = cell.key();
            let other = reference
                .shards_of(&key.namespace, Some(&key.domain))
                .pop()
                .unwrap();
            assert_eq!(shard.stats(), other.read(reference.waits()).stats());
        }
    }

    #[test]
    fn the_budget_folds_a_queue_into_its_file_without_loading_the_shard() {
        let budgeted = Arc::new(SpatiotemporalIndex::new(IndexConfig::default()).unwrap());
        let reference = Arc::new(SpatiotemporalIndex::new(IndexConfig::default()).unwrap());
        let spill = Arc::new(MemorySpill::default());
        budgeted.set_spill(spill.clone()).unwrap();
        let both = |s: &EpisodeSummary| {
            budgeted.insert(s).unwrap();
            reference.insert(s).unwrap();
        };
        let mut held = Vec::new();
        for i in 0..120 {
            let mut s = summary(EpisodeId::new(), "ns", &format!("d{}", i % 2));
            s.description = format!("refund lamp {} order {i}", i % 7);
            both(&s);
            held.push(s);
        }
        budgeted.set_budget(1);
        assert_eq!(budgeted.enforce_budget().unwrap(), 2);
        // Changes queue on the spilled shards: removals, replacements (some in another task
        // type, with words no other episode has), new episodes, one added then removed.
        for s in held.iter().step_by(3) {
            assert!(budgeted.remove(s.id).unwrap());
            assert!(reference.remove(s.id).unwrap());
        }
        let mut replaced = Vec::new();
        for (i, s) in held.iter().enumerate().skip(1).step_by(3) {
            let mut again = s.clone();
            again.version = 2;
            again.description = format!("exchange keyboard {i}");
            if i % 2 == 1 {
                again.context.task_type = "swap".into();
            }
            both(&again);
            replaced.push(again);
        }
        for i in 0..30 {
            let mut s = summary(EpisodeId::new(), "ns", "d0");
            s.description = format!("brand new words {i}");
            both(&s);
        }
        let brief = summary(EpisodeId::new(), "ns", "d1");
        both(&brief);
        assert!(budgeted.remove(brief.id).unwrap());
        assert!(reference.remove(brief.id).unwrap());
        let cells = budgeted.shards_of("ns", None);
        let queued = |c: &Arc<ShardCell>| c.read(budgeted.waits()).pending_len();
        let before: Vec<usize> = cells.iter().map(queued).collect();
        assert!(before.iter().all(|n| *n > 0), "{before:?}");

        // A newer version of a replaced episode arrives during a fold of its shard (d0, the
        // longest queue, folded first), which then fails or panics: every change stays
        // queued, the newer one after those it replaces.
        let target = replaced.iter().find(|s| s.context.domain == "d0").unwrap();
        let later = |version: u64| {
            let mut later = target.clone();
            later.version = version;
            later.description = format!("version {version} of the lamp");
            reference.insert(&later).unwrap();
            let weak = Arc::downgrade(&budgeted);
            Meanwhile(Box::new(move || {
                weak.upgrade().unwrap().insert(&later).unwrap();
            }))
        };
        let cell = budgeted.shards_of("ns", Some("d0")).pop().unwrap();
        let mut expected = queued(&cell);
        for (version, panics) in [(3, false), (4, true)] {
            *spill.during_fold.lock().unwrap() = Some((Some(panics), later(version)));
            let e = budgeted.enforce_budget().unwrap_err();
            assert!(
                e.to_string()
                    .contains(if panics { "panicked" } else { "disk full" })
            );
            expected += 1;
            assert_eq!(queued(&cell), expected);
            let newest = cell.read(budgeted.waits()).pending().last().map(
                |p| matches!(p, Pending::Upsert(d) if d.id == target.id && d.version == version),
            );
            assert_eq!(newest, Some(true), "the newest change is queued last");
        }
        assert_eq!(spill.loads.load(Ordering::SeqCst), 0, "no shard was loaded");

        // Then they fold; a write made during the fold stays queued, for the next.
        *spill.during_fold.lock().unwrap() = Some((None, later(5)));
        let folds = budgeted.shard_moves().folds;
        budgeted.enforce_budget().unwrap();
        assert_eq!(budgeted.shard_moves().folds, folds + 2);
        assert_eq!(queued(&cell), 1);
        budgeted.enforce_budget().unwrap();
        assert_eq!(budgeted.shard_moves().folds, folds + 3);
        assert!(cells.iter().all(|c| queued(c) == 0));
        assert_eq!(spill.loads.load(Ordering::SeqCst), 0, "no shard was loaded");
        assert!(cells.iter().all(|c| c.is_spilled()));
        // The statistics come from the folds alone (no queue is left to apply).
        assert_eq!(budgeted.stats(), reference.stats());
        assert_eq!(budgeted.len(), reference.len());
        for text in [
            "refund lamp 3",
            "exchange keyboard",
            "brand new words 7",
            "version",
        ] {
            let q = crate::retrieval::RetrievalQuery::new("ns", text).limit(50);
            assert_eq!(search(&budgeted, &q), search(&reference, &q), "{text}");
        }
        let loaded = budgeted.read_loaded(&cell).unwrap();
        assert_eq!(loaded.version_of(target.id), Some(5));
    }

    #[test]
    fn a_load_under_budget_spills_colder_shards_and_unchanged_ones_without_a_write() {
        let index = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        let spill = Arc::new(MemorySpill::default());
        index.set_spill(spill.clone()).unwrap();
        for i in 0..40 {
            index
                .insert(&summary(EpisodeId::new(), "ns", &format!("d{}", i % 4)))
                .unwrap();
        }
        index.set_budget(1);
        assert_eq!(index.enforce_budget().unwrap(), 4);
        assert_eq!(spill.saves.load(Ordering::SeqCst), 4);
        let cell = |d: &str| index.shards_of("ns", Some(d)).pop().unwrap();
        drop(index.read_loaded(&cell("d0")).unwrap());
        assert_eq!(index.spilled_shards(), 3, "only the shard read is loaded");
        drop(index.read_loaded(&cell("d1")).unwrap());
        assert_eq!(index.spilled_shards(), 3, "loading d1 spilled d0");
        assert!(cell("d0").is_spilled());
        assert_eq!(
            spill.saves.load(Ordering::SeqCst),
            4,
            "d0 was unchanged since its load: dropped without a write"
        );
        index
            .insert(&summary(EpisodeId::new(), "ns", "d1"))
            .unwrap();
        drop(index.read_loaded(&cell("d2")).unwrap());
        assert!(cell("d1").is_spilled());
        assert_eq!(spill.saves.load(Ordering::SeqCst), 5, "d1 changed: written");
        assert_eq!(index.len(), 41);
        assert_eq!(index.stats().episodes, 41);
        assert_eq!(
            (index.shard_moves().loads, index.shard_moves().spills),
            (spill.loads.load(Ordering::SeqCst) as u64, 4 + 2),
            "every load counted; 4 spills by the check, d0 and d1 by the loads"
        );
    }

    #[test]
    fn budget_checks_order_shards_by_a_fixed_view_of_uses_that_queries_keep_changing() {
        // A shard's last use changes under concurrent queries; a sort that reads it while
        // sorting sees an inconsistent order, which the standard sort may report by panicking
        // (seen in the 2M budget bench).
        use std::sync::atomic::AtomicBool;
        let index = Arc::new(SpatiotemporalIndex::new(IndexConfig::default()).unwrap());
        index.set_spill(Arc::new(MemorySpill::default())).unwrap();
        for i in 0..64 {
            index
                .insert(&summary(EpisodeId::new(), "ns", &format!("d{i}")))
                .unwrap();
        }
        let cells = index.all_cells();
        let stop = Arc::new(AtomicBool::new(false));
        let toucher = {
            let (index, stop) = (index.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut round = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    // Each round makes a different shard the most recent, then the others.
                    for k in 0..cells.len() {
                        cells[(k * 7 + round) % cells.len()].touch(index.tick());
                    }
                    round += 1;
                }
            })
        };
        // Far above the index's size: nothing is spilled, the shards are only ordered.
        index.set_budget(usize::MAX / 2);
        let checks = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..20_000 {
                assert_eq!(index.enforce_budget().unwrap(), 0);
            }
        }));
        stop.store(true, Ordering::Relaxed);
        toucher.join().unwrap();
        assert!(checks.is_ok(), "a budget check panicked");
        assert_eq!(index.spilled_shards(), 0);
    }

    #[test]
    fn moves_between_shards_drop_emptied_shards() {
        let index = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        let id = EpisodeId::new();
        index.insert(&summary(id, "ns", "a")).unwrap();
        let mut moved = summary(id, "ns", "b");
        moved.version = 2;
        assert_eq!(index.insert(&moved).unwrap(), Some(1));
        assert_eq!(index.stats().shards, 1);
        assert!(index.shards_of("ns", Some("a")).is_empty());
        assert_eq!(index.contains(id).unwrap(), Some(2));
        assert!(index.remove(id).unwrap());
        assert_eq!(index.stats(), IndexStats::default());
        assert!(index.shards_of("ns", None).is_empty());
        assert_eq!(index.lock_waits().contended, 0);
    }

    #[test]
    fn a_load_makes_room_for_the_shard_before_it_runs() {
        let index = Arc::new(SpatiotemporalIndex::new(IndexConfig::default()).unwrap());
        let spill = Arc::new(MemorySpill::default());
        spill.watched.set(Arc::downgrade(&index)).unwrap();
        index.set_spill(spill.clone()).unwrap();
        for i in 0..200 {
            let mut s = summary(EpisodeId::new(), "ns", &format!("d{}", i % 4));
            s.description = format!("refund lamp {} order {i}", i % 7);
            index.insert(&s).unwrap();
        }
        index.set_budget(1);
        assert_eq!(index.enforce_budget().unwrap(), 4);
        let cell = |d: &str| index.shards_of("ns", Some(d)).pop().unwrap();
        let largest = (0..4)
            .map(|d| cell(&format!("d{d}")).spilled_bytes())
            .max()
            .unwrap();
        assert!(largest > 0, "a spill records the content's size");
        // Room for two shards, not three.
        let budget = index.budgeted_bytes() + 2 * largest + largest / 2;
        index.set_budget(budget);
        for d in ["d0", "d1", "d2", "d3", "d0"] {
            drop(index.read_loaded(&cell(d)).unwrap());
            assert!(index.budgeted_bytes() <= budget, "after loading {d}");
        }
        let seen = spill.budgeted_at_load.lock().unwrap().clone();
        assert_eq!(seen.len(), 5);
        for (k, bytes) in seen.iter().enumerate() {
            assert!(
                bytes + largest <= budget,
                "load {k} began with {bytes} bytes budgeted: no room for the shard ({largest}) \
                 within {budget}"
            );
        }
    }

    #[test]
    fn a_spill_that_fails_or_panics_keeps_the_content_and_the_changes_made_meanwhile() {
        for panics in [false, true] {
            let index = Arc::new(SpatiotemporalIndex::new(IndexConfig::default()).unwrap());
            let spill = Arc::new(MemorySpill::default());
            index.set_spill(spill.clone()).unwrap();
            let reference = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
            for i in 0..50 {
                let mut s = summary(EpisodeId::new(), "ns", "d0");
                s.description = format!("refund lamp {} order {i}", i % 7);
                index.insert(&s).unwrap();
                reference.insert(&s).unwrap();
            }
            let mut late = summary(EpisodeId::new(), "ns", "d0");
            late.description = "a late lamp".into();
            reference.insert(&late).unwrap();
            // A write arrives while the content is out being written, then the write fails.
            let weak = Arc::downgrade(&index);
            let meanwhile = move || {
                let index = weak.upgrade().unwrap();
                assert_eq!(index.insert(&late).unwrap(), None);
            };
            *spill.refuse.lock().unwrap() = Some((panics, Meanwhile(Box::new(meanwhile))));
            index.set_budget(1);
            let e = index.enforce_budget().unwrap_err();
            assert!(
                e.to_string()
                    .contains(if panics { "panicked" } else { "disk full" }),
                "{e}"
            );
            let cell = index.shards_of("ns", Some("d0")).pop().unwrap();
            assert!(!cell.is_spilled(), "panics: {panics}");
            assert_eq!(index.len(), 51);
            assert_eq!(index.stats(), reference.stats(), "panics: {panics}");
            assert_eq!(index.read_loaded(&cell).unwrap().len(), 51);
            // The next spill succeeds, and the content comes back whole.
            assert_eq!(index.enforce_budget().unwrap(), 1);
            index.set_budget(0);
            assert_eq!(index.read_loaded(&cell).unwrap().len(), 51);
            assert_eq!(index.stats(), reference.stats());
        }
    }

    #[test]
    fn once_over_the_budget_the_index_comes_down_a_sixteenth_below_it() {
        let index = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        index.set_spill(Arc::new(MemorySpill::default())).unwrap();
        let fill = |n: usize| {
            for i in 0..n {
                let mut s = summary(EpisodeId::new(), "ns", &format!("d{}", i % 40));
                s.description = format!("refund lamp {} order {i}", i % 7);
                index.insert(&s).unwrap();
            }
        };
        fill(400);
        // A budget under twice the estimate has every shard counted exactly, spilling none.
        index.set_budget(index.budgeted_bytes() * 2 - 1);
        assert_eq!(index.enforce_budget().unwrap(), 0);
        let budget = index.budgeted_bytes() - 1;
        index.set_budget(budget);
        // One shard of forty would bring it under the budget; it comes down past the slack.
        let spilled = index.enforce_budget().unwrap();
        assert!(spilled >= 3, "{spilled}");
        assert!(index.budgeted_bytes() <= budget - budget / 16);
        // Writes within the slack spill nothing.
        fill(3);
        assert!(index.budgeted_bytes() <= budget);
        assert_eq!(index.enforce_budget().unwrap(), 0);
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn spills_hand_memory_back_once_a_sixteenth_of_the_budget_is_freed() {
        let index = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        index.set_spill(Arc::new(MemorySpill::default())).unwrap();
        // The least recently used shard holds one document, the three others 200 each.
        index
            .insert(&summary(EpisodeId::new(), "ns", "tiny"))
            .unwrap();
        for i in 0..600 {
            let mut s = summary(EpisodeId::new(), "ns", &format!("d{}", i % 3));
            s.description = format!("refund lamp {} order {i}", i % 7);
            index.insert(&s).unwrap();
        }
        let size = |d: &str| {
            let cell = index.shards_of("ns", Some(d)).pop().unwrap();
            let bytes = cell.write(&index.waits).recount();
            index.account(&cell, bytes);
            bytes
        };
        let (tiny, [coldest_big, ..]) = (size("tiny"), ["d0", "d1", "d2"].map(size));
        let releases = || {
            index.spill().unwrap().settle();
            index.shard_moves().releases
        };
        // A query's room for half the tiny shard: the tiny one goes (the least recently
        // used), which frees less than a sixteenth of the budget.
        let budget = index.budgeted_bytes();
        assert!(
            tiny < budget / 16,
            "{tiny} bytes against a budget of {budget}"
        );
        index.set_budget(budget);
        let kept = index.shards_of("ns", Some("d2")).pop().unwrap();
        index.relieve(&kept, tiny / 2).unwrap();
        assert!(
            index
                .shards_of("ns", Some("tiny"))
                .pop()
                .unwrap()
                .is_spilled()
        );
        assert_eq!(index.spilled_shards(), 1);
        assert_eq!(releases(), 0, "a spill of under a sixteenth of the budget");
        // Room for two of the large shards: the coldest goes, more than a sixteenth.
        let budget = index.budgeted_bytes() - coldest_big / 2;
        assert!(
            coldest_big >= budget / 16,
            "{coldest_big} bytes against {budget}"
        );
        index.set_budget(budget);
        assert_eq!(index.enforce_budget().unwrap(), 1);
        assert!(
            index
                .shards_of("ns", Some("d0"))
                .pop()
                .unwrap()
                .is_spilled()
        );
        assert_eq!(releases(), 1, "the spilled shard's memory was handed back");
    }

    #[test]
    fn passes_over_spilled_shards_alternate_so_each_starts_with_those_still_loaded() {
        let index = Arc::new(SpatiotemporalIndex::new(IndexConfig::default()).unwrap());
        let reference = Arc::new(SpatiotemporalIndex::new(IndexConfig::default()).unwrap());
        let spill = Arc::new(MemorySpill::default());
        index.set_spill(spill.clone()).unwrap();
        for i in 0..200 {
            let mut s = summary(EpisodeId::new(), "ns", &format!("d{}", i % 4));
            s.description = format!("refund lamp {} order {i}", i % 7);
            index.insert(&s).unwrap();
            reference.insert(&s).unwrap();
        }
        index.set_budget(1);
        assert_eq!(index.enforce_budget().unwrap(), 4);
        let cells = index.shards_of("ns", None);
        let largest = cells.iter().map(|c| c.spilled_bytes()).max().unwrap();
        // Room for two of the four shards.
        index.set_budget(index.budgeted_bytes() + 2 * largest + largest / 2);
        // Without feedback a query makes two passes: corpus statistics, then the walk.
        let config = crate::retrieval::RetrievalConfig {
            feedback_episodes: 0,
            ..Default::default()
        };
        let search = |index: &Arc<SpatiotemporalIndex>| {
            let q = crate::retrieval::RetrievalQuery::new("ns", "refund lamp 3").limit(3);
            crate::retrieval::Retriever::new(index.clone(), config.clone(), Arc::default())
                .unwrap()
                .search_at(&q, time::from_micros(0))
                .unwrap()
        };
        assert_eq!(search(&index), search(&reference));
        // The first pass loads all four; the second starts with the two it left loaded and
        // loads only the other two (the same order both times would load all four again).
        assert_eq!(index.shard_moves().loads, 4 + 2);
    }
}
