//! The cache never serves what the durable store no longer says: a read that raced a delete
//! does not put the deleted episode back, a cache invalidation that failed is recorded,
//! bypassed by reads, and repaired by the reconciler, and a cache file opened in the
//! background does not bring back a copy that a write made meanwhile replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use memory_core::store::{
    CacheStats, CacheStore, CachedVersion, DeferredCache, FaultInjector, FaultPlan, Faulty,
    InMemoryCache, InMemoryStore, Op, Page,
};
use memory_core::{
    Episode, EpisodeId, EpisodeUpdate, ErrorKind, MemoryConfig, NewStep, Outcome, Result,
    SelfLearningMemory, TaskContext,
};
use tokio::sync::Notify;

/// A cache whose `put` can be held at its start until the test releases it.
#[derive(Default)]
struct GatedCache {
    inner: InMemoryCache,
    armed: AtomicBool,
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl CacheStore for GatedCache {
    async fn get(&self, id: EpisodeId) -> Result<Option<Episode>> {
        self.inner.get(id).await
    }
    async fn put(&self, episode: &Episode) -> Result<()> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        self.inner.put(episode).await
    }
    async fn invalidate(&self, id: EpisodeId) -> Result<()> {
        self.inner.invalidate(id).await
    }
    async fn scan(&self, after: Option<EpisodeId>, limit: usize) -> Result<Page<CachedVersion>> {
        self.inner.scan(after, limit).await
    }
    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }
    fn stats(&self) -> CacheStats {
        self.inner.stats()
    }
}

fn quiet() -> MemoryConfig {
    MemoryConfig {
        reconcile_interval: None,
        ..Default::default()
    }
}

async fn completed(m: &SelfLearningMemory) -> EpisodeId {
    let id = m
        .start_episode("renew a certificate", TaskContext::new("ns", "ops", "tls"))
        .await
        .expect("record");
    m.log_step(id, NewStep::new("certbot", "{}"))
        .await
        .expect("record");
    m.complete_episode(id, Outcome::success("renewed"))
        .await
        .expect("record");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_racing_a_delete_does_not_refill_the_cache() {
    let cache = Arc::new(GatedCache::default());
    let m = SelfLearningMemory::builder()
        .durable(InMemoryStore::new())
        .cache(cache.clone())
        .config(quiet())
        .open()
        .await
        .unwrap();
    let id = completed(&m).await;
    m.invalidate_cache(id).await.unwrap();

    // The read misses the cache, reads the durable store, and is held before its fill.
    cache.armed.store(true, Ordering::SeqCst);
    let reader = {
        let m = m.clone();
        tokio::spawn(async move { m.get_episode(id).await })
    };
    cache.entered.notified().await;
    assert!(m.delete_episode(id).await.unwrap());
    cache.release.notify_one();
    let read = reader.await.unwrap().unwrap();
    assert_eq!(read.id, id, "the read began before the delete");

    assert_eq!(
        cache.inner.get(id).await.unwrap(),
        None,
        "the racing fill was taken back"
    );
    let e = m.get_episode(id).await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::NotFound,
        "a deleted episode stays deleted"
    );
}

#[tokio::test]
async fn a_failed_invalidation_is_recorded_bypassed_and_repaired() {
    let faults = FaultInjector::new(FaultPlan::none());
    let cache = Arc::new(Faulty::new(InMemoryCache::new(), faults.clone()));
    let m = SelfLearningMemory::builder()
        .durable(InMemoryStore::new())
        .cache(cache.clone())
        .config(quiet())
        .open()
        .await
        .unwrap();
    let id = completed(&m).await;
    assert!(cache.inner().get(id).await.unwrap().is_some(), "cached");

    faults.set_plan(FaultPlan::fail_ops([Op::CacheInvalidate]));
    assert!(
        m.delete_episode(id).await.unwrap(),
        "the delete is durable, so it is acknowledged"
    );
    assert!(
        cache.inner().get(id).await.unwrap().is_some(),
        "the stale entry is still in the cache"
    );
    let e = m.get_episode(id).await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::NotFound,
        "the stale entry is not served"
    );

    faults.set_plan(FaultPlan::none());
    let report = m.reconcile().await.unwrap();
    assert_eq!(report.recorded_repaired, 1, "{report:?}");
    assert_eq!(cache.inner().get(id).await.unwrap(), None);
    let again = m.reconcile().await.unwrap();
    assert_eq!(again.repairs(), 0, "{again:?}");
}

#[tokio::test]
async fn a_failed_cache_write_is_acknowledged_and_recorded() {
    let faults = FaultInjector::new(FaultPlan::none());
    let cache = Arc::new(Faulty::new(InMemoryCache::new(), faults.clone()));
    let m = SelfLearningMemory::builder()
        .durable(InMemoryStore::new())
        .cache(cache.clone())
        .config(quiet())
        .open()
        .await
        .unwrap();
    let id = m
        .start_episode("rotate keys", TaskContext::new("ns", "ops", "keys"))
        .await
        .unwrap();
    faults.set_plan(FaultPlan::fail_ops([Op::CachePut]));
    let done = m
        .complete_episode(id, Outcome::success("rotated"))
        .await
        .expect("a cache failure does not fail the completion");
    assert_eq!(m.get_episode(id).await.unwrap(), done);

    faults.set_plan(FaultPlan::none());
    let report = m.reconcile().await.unwrap();
    assert_eq!(report.recorded_repaired, 1, "{report:?}");
    assert_eq!(
        cache.inner().get(id).await.unwrap(),
        Some(done),
        "the repair filled the cache"
    );
}

/// A cache file that takes a while to open holds an older copy of an episode that is updated
/// meanwhile: once the file is open, the older copy is never served (`DeferredCache`
/// invalidates in it what was written while it opened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_made_while_the_cache_opens_is_not_undone_by_the_opened_cache() {
    let store = Arc::new(InMemoryStore::new());
    let file = Arc::new(InMemoryCache::new());
    let config = MemoryConfig {
        hot_cache_bytes: 0, // every read asks the cache under test
        ..quiet()
    };
    let first = SelfLearningMemory::builder()
        .durable(store.clone())
        .cache(file.clone())
        .config(config.clone())
        .open()
        .await
        .expect("open");
    let id = completed(&first).await;
    let old = first.get_episode(id).await.expect("read");
    assert_eq!(file.get(id).await.unwrap(), Some(old.clone()), "cached");
    first.shutdown().await.expect("shutdown");

    let (release, opening) = tokio::sync::oneshot::channel::<()>();
    let opened_file = file.clone();
    let cache = Arc::new(DeferredCache::spawn(async move {
        let _ = opening.await;
        Ok(opened_file)
    }));
    let m = SelfLearningMemory::builder()
        .durable(store)
        .cache(cache.clone())
        .config(config)
        .open()
        .await
        .expect("open while the cache file is still opening");
    let new = m
        .update_episode(
            id,
            old.version,
            EpisodeUpdate::default().reflection("newer"),
        )
        .await
        .expect("update");
    assert_eq!(
        m.get_episode(id).await.unwrap(),
        new,
        "served from the durable store"
    );

    release.send(()).expect("release");
    cache.opened().await.expect("opened");
    assert_eq!(
        m.get_episode(id).await.unwrap(),
        new,
        "never the older copy"
    );
    assert_ne!(
        file.get(id).await.unwrap(),
        Some(old),
        "the older copy is gone"
    );
    m.shutdown().await.expect("shutdown");
}
