//! A shard behind its own lock, with its retirement flag and lock-wait accounting.
//!
//! Owns the only way to lock a shard. The lock is a `std::sync::RwLock` (a sync lock: it is
//! only ever held for in-memory work and never across an `.await`; the index API is sync, and
//! its only I/O, loading and saving spilled shards, happens with no shard lock held). A cell is *retired* when its shard became empty and is being dropped from the
//! shard map; a writer that finds a retired cell under its write lock must look the shard up
//! again, so nothing is ever written into a shard the map no longer points to. Lock poisoning
//! is ignored (the guard is recovered): a panic inside the index is a bug, and the index is
//! rebuildable from the durable store by reconciliation. This module must never take any other
//! lock.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{
    Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError,
};
use std::time::{Duration, Instant};

use super::shard::{Shard, ShardKey};
use super::stats::IndexStats;

/// How long the index's callers waited for its locks (shard locks and the shard-map lock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockWaitStats {
    /// Lock acquisitions that had to wait (uncontended acquisitions are not counted).
    pub contended: u64,
    /// Total time spent waiting in those acquisitions.
    pub total_wait: Duration,
}

/// Counters behind [`LockWaitStats`]. With the `metrics` feature each wait is also recorded
/// to the `metrics` facade's histogram `memory_index_lock_wait_seconds`.
#[derive(Debug)]
pub(crate) struct LockWaits {
    contended: AtomicU64,
    wait_nanos: AtomicU64,
    #[cfg(feature = "metrics")]
    exported: metrics::Histogram,
}

impl Default for LockWaits {
    fn default() -> Self {
        Self {
            contended: AtomicU64::new(0),
            wait_nanos: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            exported: metrics::histogram!("memory_index_lock_wait_seconds"),
        }
    }
}

impl LockWaits {
    fn record(&self, since: Instant) {
        let waited = since.elapsed();
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.contended.fetch_add(1, Ordering::Relaxed);
        self.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.exported.record(waited.as_secs_f64());
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> LockWaitStats {
        LockWaitStats {
            contended: self.contended.load(Ordering::Relaxed),
            total_wait: Duration::from_nanos(self.wait_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Read-lock `lock`, timing the wait only when the fast path fails.
    pub(crate) fn read<'a, T>(&self, lock: &'a RwLock<T>) -> RwLockReadGuard<'a, T> {
        match lock.try_read() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let since = Instant::now();
                let g = lock.read().unwrap_or_else(PoisonError::into_inner);
                self.record(since);
                g
            }
        }
    }

    /// Write-lock `lock`, timing the wait only when the fast path fails.
    pub(crate) fn write<'a, T>(&self, lock: &'a RwLock<T>) -> RwLockWriteGuard<'a, T> {
        match lock.try_write() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let since = Instant::now();
                let g = lock.write().unwrap_or_else(PoisonError::into_inner);
                self.record(since);
                g
            }
        }
    }
}

/// Where a shard's content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Residence {
    /// In memory, behind the lock.
    Loaded = 0,
    /// Being written out: taken from behind the lock, which holds an empty shard queuing
    /// changes, as when spilled.
    Spilling = 1,
    /// On file: the shard behind the lock is empty except for queued changes.
    Spilled = 2,
}

/// One shard and its lock, with what the memory budget needs: whether its content is
/// *spilled* (written out and dropped from memory: the shard behind the lock then only queues
/// changes, applied when the content is loaded again before any read), when it was last
/// used, and its estimated heap bytes.
#[derive(Debug)]
pub(crate) struct ShardCell {
    key: ShardKey,
    retired: AtomicBool,
    shard: RwLock<Shard>,
    /// [`Residence`] as a number; changes only under the write lock.
    residence: AtomicU8,
    /// The statistics of the spilled content (so `stats()` stays whole).
    spilled_stats: Mutex<IndexStats>,
    /// Serializes loading and spilling (never held with the shard lock across I/O).
    moving: Mutex<()>,
    /// Whether the spill target holds exactly the loaded content (loaded with no queued
    /// changes and not written since), so spilling it again needs no write.
    saved: AtomicBool,
    last_used: AtomicU64,
    bytes: AtomicUsize,
    /// The estimated heap bytes of the content when it was last spilled (0 when not known, as
    /// after a snapshot open): the room loading it again needs.
    spilled_bytes: AtomicUsize,
}

impl ShardCell {
    /// A live cell holding `shard`.
    pub(crate) fn new(key: ShardKey, shard: Shard) -> Self {
        Self {
            key,
            retired: AtomicBool::new(false),
            shard: RwLock::new(shard),
            residence: AtomicU8::new(Residence::Loaded as u8),
            spilled_stats: Mutex::new(IndexStats::default()),
            moving: Mutex::new(()),
            saved: AtomicBool::new(false),
            last_used: AtomicU64::new(0),
            bytes: AtomicUsize::new(0),
            spilled_bytes: AtomicUsize::new(0),
        }
    }

    /// Where the content is. Changes only under the write lock.
    pub(crate) fn residence(&self) -> Residence {
        match self.residence.load(Ordering::Acquire) {
            0 => Residence::Loaded,
            1 => Residence::Spilling,
            _ => Residence::Spilled,
        }
    }

    /// Whether the shard behind the lock is not the whole current content (spilled, or being
    /// spilled): readers must load it, writers queue their changes on it.
    pub(crate) fn is_spilled(&self) -> bool {
        self.residence() != Residence::Loaded
    }

    /// Set where the content is; with statistics, those of the content being or having been
    /// spilled. The caller holds the write lock and has changed the shard accordingly.
    pub(crate) fn set_residence(&self, residence: Residence, stats: Option<IndexStats>) {
        if let Some(stats) = stats {
            *self
                .spilled_stats
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = stats;
        }
        self.residence.store(residence as u8, Ordering::Release);
    }

    /// The statistics of the spilled content.
    pub(crate) fn spilled_stats(&self) -> IndexStats {
        *self
            .spilled_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the spill target holds exactly the loaded content.
    pub(crate) fn is_saved(&self) -> bool {
        self.saved.load(Ordering::Acquire)
    }

    /// Record whether the spill target holds exactly the loaded content; any change to the
    /// loaded content clears it (under the write lock, before the change).
    pub(crate) fn set_saved(&self, saved: bool) {
        self.saved.store(saved, Ordering::Release);
    }

    /// The lock that serializes loading and spilling this cell.
    pub(crate) fn moving(&self) -> MutexGuard<'_, ()> {
        self.moving.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Record a use at logical time `now`.
    pub(crate) fn touch(&self, now: u64) {
        self.last_used.fetch_max(now, Ordering::Relaxed);
    }

    /// The logical time of the last use.
    pub(crate) fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// Set the estimated heap bytes; returns the previous estimate.
    pub(crate) fn set_bytes(&self, bytes: usize) -> usize {
        self.bytes.swap(bytes, Ordering::AcqRel)
    }

    /// The estimated heap bytes of the content when it was last spilled; 0 if not known.
    pub(crate) fn spilled_bytes(&self) -> usize {
        self.spilled_bytes.load(Ordering::Acquire)
    }

    /// Record the estimated heap bytes of the content being spilled.
    pub(crate) fn set_spilled_bytes(&self, bytes: usize) {
        self.spilled_bytes.store(bytes, Ordering::Release);
    }

    /// Which shard this is.
    pub(crate) fn key(&self) -> &ShardKey {
        &self.key
    }

    /// Lock for reading.
    pub(crate) fn read(&self, waits: &LockWaits) -> RwLockReadGuard<'_, Shard> {
        waits.read(&self.shard)
    }

    /// Lock for writing.
    pub(crate) fn write(&self, waits: &LockWaits) -> RwLockWriteGuard<'_, Shard> {
        waits.write(&self.shard)
    }

    /// Whether the cell was retired (its shard emptied and dropped from the map).
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Retire the cell if `guard` (this cell's write guard) shows an empty shard. Returns
    /// whether it is retired. Once retired, a cell never comes back.
    pub(crate) fn retire_if_empty(&self, guard: &RwLockWriteGuard<'_, Shard>) -> bool {
        if guard.is_empty() {
            self.retired.store(true, Ordering::Release);
        }
        self.is_retired()
    }
}
