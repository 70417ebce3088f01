//! Reconciliation through the facade: divergences between the durable store, the cache and
//! the index are found and repaired, a second pass finds nothing, the periodic job does the
//! same on its own, and journaled writes reach the durable store when it comes back.

use std::sync::Arc;
use std::time::Duration;

use memory_core::retrieval::RetrievalQuery;
use memory_core::store::{
    CacheStore, DurableStore, FaultInjector, FaultPlan, Faulty, InMemoryCache, InMemoryJournal,
    InMemoryStore,
};
use memory_core::{
    Episode, EpisodeId, MemoryConfig, NewStep, Outcome, SelfLearningMemory, TaskContext, time,
};

async fn record(m: &SelfLearningMemory, desc: &str) -> EpisodeId {
    let id = m
        .start_episode(desc, TaskContext::new("ns", "d", "t"))
        .await
        .expect("record");
    m.log_step(id, NewStep::new("tool", "{}"))
        .await
        .expect("record");
    m.complete_episode(id, Outcome::success("ok"))
        .await
        .expect("record");
    id
}

#[tokio::test]
async fn every_kind_of_divergence_is_repaired_once() {
    let store = Arc::new(InMemoryStore::new());
    let cache = Arc::new(InMemoryCache::new());
    let m = SelfLearningMemory::builder()
        .durable(store.clone())
        .cache(cache.clone())
        .config(MemoryConfig {
            reconcile_interval: None,
            ..Default::default()
        })
        .open()
        .await
        .unwrap();
    let ids: Vec<_> = record_many(&m, 4).await;

    // 0: damaged cache record. 1: updated behind the engine's back (stale cache and index).
    // 2: deleted behind its back (orphan in cache and index). New: created behind its back
    // (missing from the index).
    assert!(cache.corrupt(ids[0]).unwrap());
    let mut newer = store.get_episode(ids[1]).await.unwrap().unwrap();
    newer.reflection = Some("changed elsewhere".into());
    newer.version += 1;
    store.update_episode(&newer).await.unwrap();
    assert!(store.delete_episode(ids[2]).await.unwrap());
    let mut outsider = Episode::new(
        EpisodeId::new(),
        "zebra migration notes",
        TaskContext::new("ns", "d", "t"),
        time::now(),
    );
    outsider.outcome = Some(Outcome::success("done elsewhere"));
    outsider.completed_at = Some(time::now());
    outsider.version = 2;
    store.create_episode(&outsider).await.unwrap();

    let report = m.reconcile().await.unwrap();
    assert_eq!(report.durable_episodes, 4);
    assert_eq!(report.cache_corrupt, 1, "{report:?}");
    assert_eq!(report.cache_stale, 1, "{report:?}");
    assert_eq!(report.cache_orphans, 1, "{report:?}");
    assert_eq!(report.index_orphans, 1, "{report:?}");
    assert_eq!(report.index_stale, 1, "{report:?}");
    assert_eq!(report.index_missing, 1, "{report:?}");

    // The stores agree now: a second pass repairs nothing.
    let again = m.reconcile().await.unwrap();
    assert_eq!(again.repairs(), 0, "{again:?}");

    assert_eq!(cache.get(ids[1]).await.unwrap(), Some(newer.clone()));
    assert!(cache.get(ids[2]).await.unwrap().is_none());
    assert_eq!(m.index().contains(ids[1]).unwrap(), Some(newer.version));
    assert_eq!(m.index().contains(ids[2]).unwrap(), None);
    let hits = m
        .retrieve(RetrievalQuery::new("ns", "zebra migration").limit(3))
        .await
        .unwrap();
    assert_eq!(hits.first().map(|h| h.episode.id), Some(outsider.id));
}

/// Record `n` episodes one after another.
async fn record_many(m: &SelfLearningMemory, n: usize) -> Vec<EpisodeId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(record(m, &format!("episode {i}")).await);
    }
    ids
}

#[tokio::test(start_paused = true)]
async fn the_periodic_job_repairs_on_its_own_and_stops_at_shutdown() {
    let store = Arc::new(InMemoryStore::new());
    let m = SelfLearningMemory::builder()
        .durable(store.clone())
        .config(MemoryConfig {
            reconcile_interval: Some(Duration::from_secs(10)),
            ..Default::default()
        })
        .open()
        .await
        .unwrap();
    let id = record(&m, "soon deleted elsewhere").await;
    store.delete_episode(id).await.unwrap();
    assert!(m.index().contains(id).unwrap().is_some());
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        m.index().contains(id).unwrap(),
        None,
        "the job removed the orphan"
    );
    m.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn journaled_writes_reach_the_durable_store_when_it_returns() {
    let faults = FaultInjector::new(FaultPlan::none());
    let store = Arc::new(Faulty::new(InMemoryStore::new(), faults.clone()));
    let mut config = MemoryConfig::default();
    config.resilience.breaker.failure_threshold = 1;
    config.resilience.breaker.cool_down = Duration::from_secs(5);
    let m = SelfLearningMemory::builder()
        .durable(store.clone())
        .journal(InMemoryJournal::new())
        .config(config)
        .open()
        .await
        .unwrap();
    faults.set_plan(FaultPlan {
        outage: true,
        transient: true,
        ..FaultPlan::none()
    });
    // The first write trips the breaker and is journaled; the rest go to the journal.
    let id = record(&m, "written during the outage").await;
    let resilience = m.resilience().expect("a journal was configured");
    assert!(resilience.is_journaling());
    assert!(store.inner().get_episode(id).await.unwrap().is_none());
    assert_eq!(
        m.get_episode(id).await.unwrap().steps.len(),
        1,
        "acknowledged data is served"
    );

    faults.set_outage(false);
    tokio::time::sleep(Duration::from_secs(7)).await; // cool-down, then the job's replay tick
    assert!(!resilience.is_journaling(), "the journal drained");
    let landed = store
        .inner()
        .get_episode(id)
        .await
        .unwrap()
        .expect("replayed");
    assert_eq!(landed, m.get_episode(id).await.unwrap());
    assert!(landed.is_completed());
    m.shutdown().await.unwrap();
}
