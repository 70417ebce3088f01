//! `metrics()` reports what happened: one latency sample per operation, store errors by store
//! and kind, cache hits, retrieval paths, breaker and journal, reconciliation totals.

use std::sync::Arc;

use memory_core::coordinator::{BreakerConfig, BreakerState};
use memory_core::store::{
    FaultInjector, FaultPlan, Faulty, InMemoryCache, InMemoryJournal, InMemoryStore, Op,
};
use memory_core::{
    ErrorKind, MemoryConfig, NewStep, Outcome, ResilienceConfig, RetrievalQuery,
    SelfLearningMemory, TaskContext,
};

#[tokio::test]
async fn every_operation_is_counted_once() {
    let m = SelfLearningMemory::builder()
        .durable(InMemoryStore::new())
        .cache(InMemoryCache::new())
        .config(MemoryConfig {
            reconcile_interval: None,
            ..Default::default()
        })
        .open()
        .await
        .unwrap();
    let before = m.metrics();
    assert_eq!(before.completion.count, 0);
    assert!(before.breaker.is_none(), "no journal, no breaker");
    assert!(
        before.writes.is_none(),
        "the in-memory store does not group writes"
    );

    let mut ids = Vec::new();
    for i in 0..5 {
        let id = m
            .start_episode(
                format!("refund order {i}"),
                TaskContext::new("ns", "retail", "refund"),
            )
            .await
            .unwrap();
        m.log_step(id, NewStep::new("get_order", "{}"))
            .await
            .unwrap();
        m.log_steps(
            id,
            vec![NewStep::new("refund", "{}"), NewStep::new("notify", "{}")],
        )
        .await
        .unwrap();
        m.complete_episode(id, Outcome::success("ok"))
            .await
            .unwrap();
        ids.push(id);
    }
    m.get_episode(ids[0]).await.unwrap(); // a cache hit
    let hits = m
        .retrieve(RetrievalQuery::new("ns", "refund order"))
        .await
        .unwrap();
    assert!(!hits.is_empty());
    m.delete_episode(ids[4]).await.unwrap();
    let report = m.reconcile().await.unwrap();

    let s = m.metrics();
    assert_eq!(s.completion.count, 5);
    assert_eq!(s.step_append.count, 10, "log_step and log_steps calls");
    assert_eq!(s.retrieval.count, 1);
    // 5 starts + 5 completions insert, 1 delete removes.
    assert_eq!(s.index_write.count, 11);
    assert!(s.completion.p50 <= s.completion.p99 && s.completion.p99 <= s.completion.max);
    assert_eq!(s.indexed_episodes, 4);
    assert_eq!(s.in_progress_episodes, 0);
    assert!(s.index_memory_bytes > 0);
    assert!(s.cache.hits > hits.len() as u64, "{:?}", s.cache);
    let hot = s.hot_cache.expect("on");
    assert!(
        hot.hits >= 1 && hot.hits <= s.cache.hits,
        "the hot tier answered reads: {hot:?}"
    );
    assert_eq!(hot.entries, 4, "the completed episodes still stored");
    assert_eq!(
        s.retrieval_paths.hierarchical + s.retrieval_paths.flat + s.retrieval_paths.fallback,
        1
    );
    assert_eq!(s.storage_errors.durable.total(), 0);
    assert_eq!(s.completions.in_flight, 0);
    assert_eq!(s.reconcile_passes, 1);
    assert_eq!(s.reconciliation, report);
    assert_eq!((s.repairs_recorded, s.repairs_pending), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn store_errors_and_the_breaker_are_reported() {
    let faults = FaultInjector::new(FaultPlan::none());
    let cache_faults = FaultInjector::new(FaultPlan::none());
    let m = SelfLearningMemory::builder()
        .durable(Faulty::new(InMemoryStore::new(), faults.clone()))
        .cache(Arc::new(Faulty::new(
            InMemoryCache::new(),
            cache_faults.clone(),
        )))
        .journal(InMemoryJournal::new())
        .config(MemoryConfig {
            reconcile_interval: None,
            // The cache read below must reach the failing cache store.
            hot_cache_bytes: 0,
            resilience: ResilienceConfig {
                breaker: BreakerConfig {
                    failure_threshold: 1,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        })
        .open()
        .await
        .unwrap();
    let id = m
        .start_episode("t", TaskContext::new("ns", "d", "t"))
        .await
        .unwrap();
    // A failing cache read is counted and the durable copy served.
    let done = m
        .start_episode("c", TaskContext::new("ns", "d", "t"))
        .await
        .unwrap();
    let done = m
        .complete_episode(done, Outcome::success("ok"))
        .await
        .unwrap();
    cache_faults.set_plan(FaultPlan::fail_ops([Op::CacheGet]));
    assert_eq!(m.get_episode(done.id).await.unwrap(), done);
    assert_eq!(
        m.metrics().storage_errors.cache.get(ErrorKind::Unavailable),
        1
    );
    let b = m.metrics().breaker.expect("a journal brings a breaker");
    assert_eq!((b.state, b.journal_depth), (BreakerState::Closed, 0));

    // The first transient durable failure opens the breaker; the steps are journaled.
    faults.set_plan(FaultPlan {
        outage: true,
        transient: true,
        ..FaultPlan::none()
    });
    for i in 0..3 {
        assert_eq!(
            m.log_step(id, NewStep::new("tool", "{}")).await.unwrap(),
            i,
            "acknowledged through the journal"
        );
    }
    let s = m.metrics();
    let b = s.breaker.unwrap();
    assert_eq!(b.state, BreakerState::Open);
    assert!(b.transitions >= 1);
    assert!(b.journal_depth >= 1, "{b:?}");
    assert_eq!(
        s.storage_errors.durable.get(ErrorKind::Unavailable),
        s.storage_errors.durable.total()
    );
    assert!(
        s.storage_errors.durable.get(ErrorKind::Unavailable) >= 1,
        "{:?}",
        s.storage_errors
    );
    assert_eq!(s.storage_errors.journal.total(), 0);
    assert_eq!(s.step_append.count, 3);
    assert_eq!(s.completion.count, 1);
}
