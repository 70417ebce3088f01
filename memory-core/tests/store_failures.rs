//! What the lifecycle does when a store fails: nothing half-written, numbering stays gapless,
//! a failed completion leaves the episode in progress, cache trouble never fails a write and
//! damaged cache records are never served.

use std::sync::Arc;

use memory_core::store::{
    CacheStore, DurableStore, FaultInjector, FaultPlan, Faulty, InMemoryCache, InMemoryStore, Op,
};
use memory_core::{ErrorKind, MemoryConfig, NewStep, Outcome, SelfLearningMemory, TaskContext};

fn ctx() -> TaskContext {
    TaskContext::new("ns", "d", "t")
}

async fn faulty_memory() -> (
    SelfLearningMemory,
    Arc<Faulty<InMemoryStore>>,
    Arc<FaultInjector>,
) {
    let faults = FaultInjector::new(FaultPlan::none());
    let store = Arc::new(Faulty::new(InMemoryStore::new(), faults.clone()));
    let m = SelfLearningMemory::builder()
        .durable(store.clone())
        .open()
        .await
        .expect("open");
    (m, store, faults)
}

#[tokio::test]
async fn a_failed_start_writes_nothing() {
    let (m, store, faults) = faulty_memory().await;
    faults.set_plan(FaultPlan::fail_ops([Op::Create]));
    let e = m.start_episode("t", ctx()).await.unwrap_err();
    assert!(e.is_transient());
    faults.set_plan(FaultPlan::none());
    assert!(
        store
            .scan_summaries(None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_failed_append_leaves_no_gap() {
    let (m, store, faults) = faulty_memory().await;
    let id = m.start_episode("t", ctx()).await.unwrap();
    assert_eq!(m.log_step(id, NewStep::new("a", "")).await.unwrap(), 0);
    faults.set_plan(FaultPlan::fail_ops([Op::AppendSteps]));
    let e = m.log_step(id, NewStep::new("lost", "")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    faults.set_plan(FaultPlan::none());
    assert_eq!(m.log_step(id, NewStep::new("b", "")).await.unwrap(), 1);
    let stored = store.inner().get_episode(id).await.unwrap().unwrap();
    let tools: Vec<_> = stored.steps.iter().map(|s| s.tool.as_str()).collect();
    assert_eq!(tools, ["a", "b"]);
}

#[tokio::test]
async fn an_ambiguous_append_is_resynchronised() {
    // The store applies the append but the caller sees an error (a lost connection at commit).
    let (m, store, faults) = faulty_memory().await;
    let id = m.start_episode("t", ctx()).await.unwrap();
    faults.set_plan(FaultPlan {
        fail_after_write: true,
        ..FaultPlan::fail_ops([Op::AppendSteps])
    });
    m.log_step(id, NewStep::new("maybe", "")).await.unwrap_err();
    faults.set_plan(FaultPlan::none());
    // The engine re-reads the episode and numbers the next step after the one that landed.
    assert_eq!(m.log_step(id, NewStep::new("next", "")).await.unwrap(), 1);
    let done = m
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    assert_eq!(done, store.inner().get_episode(id).await.unwrap().unwrap());
    assert_eq!(done.steps.len(), 2);
}

#[tokio::test]
async fn a_failed_completion_leaves_the_episode_in_progress() {
    let (m, store, faults) = faulty_memory().await;
    let id = m.start_episode("t", ctx()).await.unwrap();
    m.log_step(id, NewStep::new("a", "")).await.unwrap();
    faults.set_plan(FaultPlan::fail_ops([Op::Complete]));
    m.complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap_err();
    faults.set_plan(FaultPlan::none());
    assert!(
        !store
            .inner()
            .get_episode(id)
            .await
            .unwrap()
            .unwrap()
            .is_completed()
    );
    assert_eq!(m.log_step(id, NewStep::new("b", "")).await.unwrap(), 1);
    let done = m
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    assert_eq!(done.steps.len(), 2);
    assert_eq!(done.version, 2);
}

#[tokio::test]
async fn an_ambiguous_completion_is_detected_on_retry() {
    let (m, store, faults) = faulty_memory().await;
    let id = m.start_episode("t", ctx()).await.unwrap();
    faults.set_plan(FaultPlan {
        fail_after_write: true,
        ..FaultPlan::fail_ops([Op::Complete])
    });
    m.complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap_err();
    faults.set_plan(FaultPlan::none());
    // It did land: a retry says so instead of writing a second completion.
    let e = m
        .complete_episode(id, Outcome::success("again"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyCompleted, "{e}");
    let stored = store.inner().get_episode(id).await.unwrap().unwrap();
    assert_eq!(stored.outcome.unwrap().verdict, "ok");
}

#[tokio::test]
async fn cache_failures_never_fail_a_completion() {
    let cache_faults = FaultInjector::new(FaultPlan::fail_ops([Op::CachePut]));
    let cache = Arc::new(Faulty::new(InMemoryCache::new(), cache_faults));
    let store = Arc::new(InMemoryStore::new());
    let m = SelfLearningMemory::builder()
        .durable(store.clone())
        .cache(cache.clone())
        .open()
        .await
        .unwrap();
    let id = m.start_episode("t", ctx()).await.unwrap();
    let done = m
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    assert!(
        cache.inner().get(id).await.unwrap().is_none(),
        "no cache entry"
    );
    assert_eq!(
        m.get_episode(id).await.unwrap(),
        done,
        "served from the durable store"
    );
}

#[tokio::test]
async fn a_corrupt_cache_record_is_never_served() {
    let cache = Arc::new(InMemoryCache::new());
    let store = Arc::new(InMemoryStore::new());
    let m = SelfLearningMemory::builder()
        .durable(store.clone())
        .cache(cache.clone())
        // No in-process tier: it would answer from memory, and this is about the store below.
        .config(MemoryConfig {
            hot_cache_bytes: 0,
            ..Default::default()
        })
        .open()
        .await
        .unwrap();
    let id = m.start_episode("t", ctx()).await.unwrap();
    let done = m
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    assert!(cache.corrupt(id).unwrap());
    assert_eq!(m.get_episode(id).await.unwrap(), done);
    let stats = cache.stats();
    assert_eq!(stats.corrupt, 1);
    // The damaged entry was replaced by a good copy.
    assert_eq!(cache.get(id).await.unwrap(), Some(done));
}
