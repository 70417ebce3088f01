//! [`HotCache`]: a bounded in-process cache of decoded episodes in front of a [`CacheStore`].
//!
//! Reads that hit it cost a map lookup and a clone instead of a redb read and a decode. It is
//! weighed in bytes (an estimate of each episode's heap size), bounded by a byte capacity, and
//! evicts by moka's TinyLFU policy. It never holds what the store below would not: every write
//! goes to the store below first and reaches the hot tier only if that succeeded; every
//! invalidation clears the hot tier first. `put` is monotonic here too (an older version never
//! replaces a newer one). Entries also expire after a time to live, which bounds how long a
//! copy can outlive a change made behind this engine's back (another instance of a shared
//! remote database) once the store below has evicted its own copy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use moka::ops::compute::Op;

use crate::episode::Episode;
use crate::error::Result;
use crate::id::EpisodeId;
use crate::store::cache::{CacheStats, CacheStore, CachedVersion};
use crate::store::durable::Page;

/// A byte-bounded in-process tier over a cache store.
pub struct HotCache<C> {
    hot: moka::sync::Cache<EpisodeId, Arc<Episode>>,
    below: C,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Estimated heap bytes of an episode (what the hot tier is weighed in).
pub fn episode_weight(e: &Episode) -> u32 {
    let texts = e.description.len()
        + e.context.namespace.len()
        + e.context.domain.len()
        + e.context.task_type.len()
        + e.context.tags.iter().map(|t| t.len() + 24).sum::<usize>()
        + e.reflection.as_ref().map_or(0, String::len)
        + e.outcome.as_ref().map_or(0, |o| o.verdict.len())
        + e.embedding.as_ref().map_or(0, |v| v.len() * 4);
    let steps: usize = e
        .steps
        .iter()
        .map(|s| {
            std::mem::size_of_val(s)
                + s.tool.len()
                + s.action.len()
                + s.input.len()
                + s.output.len()
        })
        .sum();
    let total = std::mem::size_of::<Episode>() + texts + steps + 64;
    u32::try_from(total).unwrap_or(u32::MAX)
}

impl<C: CacheStore> HotCache<C> {
    /// A hot tier of at most `capacity_bytes` over `below`; entries live at most
    /// `time_to_live`.
    pub fn new(below: C, capacity_bytes: u64, time_to_live: Duration) -> Self {
        Self {
            hot: moka::sync::Cache::builder()
                .max_capacity(capacity_bytes)
                .weigher(|_, e: &Arc<Episode>| episode_weight(e))
                .time_to_live(time_to_live)
                .build(),
            below,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The store below.
    pub fn below(&self) -> &C {
        &self.below
    }

    /// The hot tier's own counters: hits and misses of `get` here, and the entries and
    /// estimated bytes it holds.
    pub fn hot_stats(&self) -> CacheStats {
        self.hot.run_pending_tasks();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.hot.entry_count(),
            bytes: self.hot.weighted_size(),
            evictions: 0,
            corrupt: 0,
        }
    }

    /// Keep `e` unless a newer version is already held.
    fn keep(&self, e: Arc<Episode>) {
        self.hot.entry(e.id).and_compute_with(|held| match held {
            Some(h) if h.value().version > e.version => Op::Nop,
            _ => Op::Put(e),
        });
    }
}

#[async_trait]
impl<C: CacheStore> CacheStore for HotCache<C> {
    async fn get(&self, id: EpisodeId) -> Result<Option<Episode>> {
        if let Some(e) = self.hot.get(&id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some((*e).clone()));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let found = self.below.get(id).await?;
        if let Some(e) = &found {
            self.keep(Arc::new(e.clone()));
        }
        Ok(found)
    }

    async fn put(&self, episode: &Episode) -> Result<()> {
        self.below.put(episode).await?;
        self.keep(Arc::new(episode.clone()));
        Ok(())
    }

    async fn invalidate(&self, id: EpisodeId) -> Result<()> {
        self.hot.invalidate(&id);
        self.below.invalidate(id).await
    }

    async fn scan(&self, after: Option<EpisodeId>, limit: usize) -> Result<Page<CachedVersion>> {
        self.below.scan(after, limit).await
    }

    async fn clear(&self) -> Result<()> {
        self.hot.invalidate_all();
        self.below.clear().await
    }

    /// The whole cache's counters: a hit is a `get` answered by either tier, a miss one
    /// neither could answer; entries, bytes, evictions and damaged records are the store
    /// below's (the hot tier's own figures are [`HotCache::hot_stats`]).
    fn stats(&self) -> CacheStats {
        let below = self.below.stats();
        CacheStats {
            hits: below.hits + self.hits.load(Ordering::Relaxed),
            ..below
        }
    }

    async fn close(&self) -> Result<()> {
        self.hot.invalidate_all();
        self.below.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::sample_episode;
    use crate::store::InMemoryCache;

    fn hot() -> HotCache<InMemoryCache> {
        HotCache::new(InMemoryCache::new(), 1 << 20, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn hits_are_served_from_memory_and_counted() {
        let c = hot();
        let e = sample_episode("ns");
        c.put(&e).await.unwrap();
        assert_eq!(c.get(e.id).await.unwrap(), Some(e.clone()));
        assert_eq!(c.below().stats().hits, 0, "the store below was not asked");
        assert_eq!((c.hot_stats().hits, c.hot_stats().misses), (1, 0));
        c.invalidate(e.id).await.unwrap();
        assert_eq!(c.get(e.id).await.unwrap(), None);
        assert_eq!(c.hot_stats().misses, 1);
    }

    #[tokio::test]
    async fn an_older_version_never_replaces_a_newer_one() {
        let c = hot();
        let mut e = sample_episode("ns");
        e.version = 3;
        c.put(&e).await.unwrap();
        let mut old = e.clone();
        old.version = 2;
        old.description = "old".into();
        c.put(&old).await.unwrap();
        assert_eq!(c.get(e.id).await.unwrap().unwrap().version, 3);
    }

    #[tokio::test]
    async fn a_failed_write_below_leaves_nothing_hot() {
        use crate::store::{FaultInjector, FaultPlan, Faulty, Op as FaultOp};
        let faults = FaultInjector::new(FaultPlan::fail_ops([FaultOp::CachePut]));
        let c = HotCache::new(
            Faulty::new(InMemoryCache::new(), faults),
            1 << 20,
            Duration::from_secs(60),
        );
        let e = sample_episode("ns");
        assert!(c.put(&e).await.is_err());
        assert_eq!(c.hot_stats().entries, 0);
    }

    #[tokio::test]
    async fn the_byte_bound_holds() {
        let c = HotCache::new(InMemoryCache::new(), 64 * 1024, Duration::from_secs(60));
        let mut weight = 0;
        for _ in 0..500 {
            let e = sample_episode("ns");
            weight = episode_weight(&e);
            c.put(&e).await.unwrap();
        }
        let s = c.hot_stats();
        assert!(s.bytes <= 64 * 1024, "{s:?}");
        assert!(
            s.entries < 500 && s.entries * u64::from(weight) <= 64 * 1024,
            "{s:?}"
        );
        assert_eq!(
            c.below().stats().entries,
            500,
            "the store below keeps everything"
        );
    }

    #[tokio::test]
    async fn it_passes_the_cache_conformance_suite() {
        let c = hot();
        // Damage below, with the hot copy gone (as after a restart): reported, not served.
        crate::conformance::cache_store(&c, |id| {
            c.hot.invalidate(&id);
            c.below().corrupt(id).unwrap()
        })
        .await;
    }
}
