//! What the engine measures about itself, and [`MetricsSnapshot`], the answer of
//! `SelfLearningMemory::metrics()`.
//!
//! Everything here belongs to one engine instance (no globals): two engines in one process
//! report separately. Recording is lock-free (atomic counters and histograms). With the
//! `metrics` cargo feature the same figures are also published through the `metrics` facade
//! under Prometheus names (`SelfLearningMemory::publish_metrics`; names in `docs/observability.md`).

#[cfg(feature = "metrics")]
pub(crate) mod export;
mod histogram;
mod measured;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::coordinator::BreakerState;
use crate::engine::{PermitStats, ReconcileReport};
use crate::error::ErrorKind;
use crate::index::LockWaitStats;
use crate::retrieval::RetrievalCounts;
use crate::store::{CacheStats, WriteStats};

pub use histogram::LatencySummary;
pub(crate) use histogram::{LatencyHistogram, Timer};
pub(crate) use measured::{MeasuredCache, MeasuredDurable, MeasuredJournal};

/// Errors returned by one store, by kind, since the engine opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    counts: [u64; ErrorKind::ALL.len()],
}

impl ErrorCounts {
    /// Errors of `kind`.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        ErrorKind::ALL
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.counts[i])
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The kinds that occurred, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (*k, n))
    }
}

/// Live counters behind [`ErrorCounts`].
#[derive(Default)]
pub(crate) struct ErrorCounters {
    counts: [AtomicU64; ErrorKind::ALL.len()],
}

impl ErrorCounters {
    pub(crate) fn count<T>(&self, result: &crate::Result<T>) {
        if let Err(e) = result
            && let Some(i) = ErrorKind::ALL.iter().position(|k| *k == e.kind())
        {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> ErrorCounts {
        ErrorCounts {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
        }
    }
}

/// Errors returned by each store (the durable backend itself, below the breaker; the cache;
/// the journal), by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageErrors {
    /// The durable store (libsql).
    pub durable: ErrorCounts,
    /// The cache (redb).
    pub cache: ErrorCounts,
    /// The journal (redb), when configured.
    pub journal: ErrorCounts,
}

/// The durable store's circuit breaker and journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSnapshot {
    /// Closed (calls pass), open (writes journaled) or half-open (probing).
    pub state: BreakerState,
    /// State changes since open.
    pub transitions: u64,
    /// Journaled writes waiting for replay.
    pub journal_depth: u64,
    /// Journaled writes replay removed as void since open: changes to episodes that a delete
    /// the journal did not order had removed first (each logged at `warn`).
    pub journal_void: u64,
}

/// Everything `SelfLearningMemory::metrics()` reports, at one moment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// `complete_episode` calls (all outcomes), from entry to return, permit wait included.
    pub completion: LatencySummary,
    /// `log_step` and `log_steps` calls, from entry to durable acknowledgement.
    pub step_append: LatencySummary,
    /// `retrieve` calls, search and loading the hits.
    pub retrieval: LatencySummary,
    /// Index inserts and removals made by writes (lock wait included).
    pub index_write: LatencySummary,
    /// Waits for the index's locks (contended acquisitions only).
    pub index_lock_waits: LockWaitStats,
    /// Estimated heap bytes of the index (one pass over every shard to compute).
    pub index_memory_bytes: u64,
    /// What the memory budget bounds of the index: the running estimate of the loaded
    /// shards plus the id directory (see `MemoryConfig::memory_budget_bytes`).
    pub index_budgeted_bytes: u64,
    /// Shards whose content is on file, not in memory (loaded again when used): spilled by
    /// the memory budget, or not yet loaded after opening a snapshot.
    pub index_spilled_shards: u64,
    /// Shards loaded back from their spill (or snapshot) file since open: by queries and by
    /// the background load after a snapshot open. Climbing with queries means the budget's
    /// share is too small for the shards they search.
    pub index_shard_loads: u64,
    /// Shards spilled (written out, or dropped when their file already held them) since open.
    pub index_shard_spills: u64,
    /// Queues of changes on spilled shards that budget checks folded into the shards' files
    /// since open (the file rewritten with the changes, the shard not loaded).
    pub index_shard_folds: u64,
    /// Times the index asked the allocator to return the memory of spilled shards to the
    /// system since open (glibc's `malloc_trim`, once per sixteenth of the budget spilled;
    /// always 0 elsewhere, where allocators return freed memory themselves).
    pub index_memory_releases: u64,
    /// Times the index was rebuilt from the durable store since open because a shard file
    /// (snapshot or spill) was found damaged when loaded.
    pub index_rebuilds: u64,
    /// Estimated heap bytes of the in-progress episodes.
    pub in_progress_bytes: u64,
    /// Episodes in the index.
    pub indexed_episodes: u64,
    /// Episodes in progress held in memory.
    pub in_progress_episodes: u64,
    /// The whole cache's counters: hits (answered by the in-process tier or the cache store),
    /// misses, and the cache store's entries, bytes, evictions and damaged records.
    pub cache: CacheStats,
    /// The in-process tier alone: its hits and misses, entries and estimated bytes; `None`
    /// when it is off (`hot_cache_bytes` 0).
    pub hot_cache: Option<CacheStats>,
    /// Queries by retrieval path (hierarchical, flat, fallback to flat).
    pub retrieval_paths: RetrievalCounts,
    /// Errors returned by each store, by kind.
    pub storage_errors: StorageErrors,
    /// Completions running and waiting for a permit now, and refused since open.
    pub completions: PermitStats,
    /// The breaker and journal; `None` when the engine runs without a journal (no breaker).
    pub breaker: Option<BreakerSnapshot>,
    /// Reconciliation repairs by kind, summed over every pass since open.
    pub reconciliation: ReconcileReport,
    /// Reconciliation passes completed since open.
    pub reconcile_passes: u64,
    /// Repairs recorded after failed undos or cache invalidations, since open.
    pub repairs_recorded: u64,
    /// Recorded repairs not yet carried out.
    pub repairs_pending: u64,
    /// The durable store's group-commit counters and batch sizes, when it groups writes.
    pub writes: Option<WriteStats>,
}

/// The engine's own live measurements (the rest of a snapshot is read from the parts).
pub(crate) struct EngineMetrics {
    pub(crate) completion: LatencyHistogram,
    pub(crate) step_append: LatencyHistogram,
    pub(crate) retrieval: LatencyHistogram,
    pub(crate) index_write: LatencyHistogram,
    pub(crate) durable_errors: ErrorCounters,
    pub(crate) cache_errors: ErrorCounters,
    pub(crate) journal_errors: ErrorCounters,
    reconciliation: Mutex<(ReconcileReport, u64)>,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            completion: LatencyHistogram::new("memory_completion_seconds"),
            step_append: LatencyHistogram::new("memory_step_append_seconds"),
            retrieval: LatencyHistogram::new("memory_retrieval_seconds"),
            index_write: LatencyHistogram::new("memory_index_write_seconds"),
            durable_errors: ErrorCounters::default(),
            cache_errors: ErrorCounters::default(),
            journal_errors: ErrorCounters::default(),
            reconciliation: Mutex::new((ReconcileReport::default(), 0)),
        }
    }
}

impl EngineMetrics {
    /// Add one finished reconciliation pass.
    pub(crate) fn reconciled(&self, report: &ReconcileReport) {
        let mut totals = self
            .reconciliation
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        totals.0.absorb(report);
        totals.1 += 1;
    }

    pub(crate) fn reconciliation(&self) -> (ReconcileReport, u64) {
        self.reconciliation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn storage_errors(&self) -> StorageErrors {
        StorageErrors {
            durable: self.durable_errors.snapshot(),
            cache: self.cache_errors.snapshot(),
            journal: self.journal_errors.snapshot(),
        }
    }
}
