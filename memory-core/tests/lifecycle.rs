//! The episode lifecycle through the facade on the in-memory stores: start, steps, complete,
//! read, list, delete, restart, shutdown.

use std::sync::Arc;

use memory_core::store::{CacheStore, DurableStore, InMemoryCache, InMemoryStore};
use memory_core::{
    Completion, ErrorKind, MemoryConfig, NewStep, Outcome, OutcomeKind, SelfLearningMemory,
    TaskContext,
};

async fn open(store: Arc<InMemoryStore>, cache: Arc<InMemoryCache>) -> SelfLearningMemory {
    SelfLearningMemory::builder()
        .durable(store)
        .cache(cache)
        .open()
        .await
        .expect("open")
}

fn ctx(ns: &str) -> TaskContext {
    TaskContext::new(ns, "retail", "refund").with_tags(["orders"])
}

#[tokio::test]
async fn full_lifecycle_round_trips() {
    let store = Arc::new(InMemoryStore::new());
    let cache = Arc::new(InMemoryCache::new());
    let m = open(store.clone(), cache.clone()).await;
    let id = m.start_episode("refund #1", ctx("a")).await.unwrap();
    assert_eq!(m.log_step(id, NewStep::new("find", "{}")).await.unwrap(), 0);
    let seqs = m
        .log_steps(
            id,
            vec![NewStep::new("get", "{}"), NewStep::new("refund", "{}")],
        )
        .await
        .unwrap();
    assert_eq!(seqs, vec![1, 2]);

    let in_progress = m.get_episode(id).await.unwrap();
    assert!(!in_progress.is_completed());
    assert_eq!(in_progress.steps.len(), 3);

    let done = m
        .complete_episode(
            id,
            Completion::from(Outcome::success("refunded"))
                .with_reward(0.7)
                .with_reflection("look up the order first"),
        )
        .await
        .unwrap();
    assert_eq!(done.version, 2);
    assert_eq!(done.reward, 0.7);
    assert_eq!(
        done.steps.iter().map(|s| s.seq).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(done.completed_at.is_some());

    // Durable store and cache both hold exactly the acknowledged episode.
    assert_eq!(store.get_episode(id).await.unwrap(), Some(done.clone()));
    assert_eq!(cache.get(id).await.unwrap(), Some(done.clone()));
    assert_eq!(m.get_episode(id).await.unwrap(), done);
}

#[tokio::test]
async fn reward_defaults_from_the_outcome() {
    let m = open(Default::default(), Default::default()).await;
    for (outcome, reward) in [
        (Outcome::success("ok"), 1.0),
        (Outcome::partial("half"), 0.5),
        (Outcome::failure("no"), 0.0),
    ] {
        let kind = outcome.kind;
        let id = m.start_episode("t", ctx("a")).await.unwrap();
        let done = m.complete_episode(id, outcome).await.unwrap();
        assert_eq!(done.reward, reward, "{kind:?}");
        assert_eq!(done.outcome.unwrap().kind, kind);
    }
    assert_eq!(OutcomeKind::parse("partial"), Some(OutcomeKind::Partial));
}

#[tokio::test]
async fn steps_after_completion_and_double_completion_are_refused() {
    let m = open(Default::default(), Default::default()).await;
    let id = m.start_episode("t", ctx("a")).await.unwrap();
    m.complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    let e = m
        .log_step(id, NewStep::new("late", "{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyCompleted, "{e}");
    let e = m
        .complete_episode(id, Outcome::failure("again"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyCompleted, "{e}");
    assert_eq!(
        m.get_episode(id).await.unwrap().outcome.unwrap().verdict,
        "ok"
    );
}

#[tokio::test]
async fn unknown_episodes_are_not_found() {
    let m = open(Default::default(), Default::default()).await;
    let ghost = memory_core::EpisodeId::new();
    for e in [
        m.log_step(ghost, NewStep::new("t", "{}"))
            .await
            .unwrap_err(),
        m.complete_episode(ghost, Outcome::success("x"))
            .await
            .unwrap_err(),
        m.get_episode(ghost).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
    assert!(!m.delete_episode(ghost).await.unwrap());
}

#[tokio::test]
async fn listing_is_scoped_paginated_and_never_capped_silently() {
    let m = open(Default::default(), Default::default()).await;
    let mut mine = Vec::new();
    for i in 0..12 {
        mine.push(m.start_episode(format!("t{i}"), ctx("mine")).await.unwrap());
        m.start_episode("other", ctx("theirs")).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = m.list_episodes("mine", after, 5).await.unwrap();
        seen.extend(page.items.iter().map(|e| e.id));
        match page.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, mine);
    let e = m.list_episodes("mine", None, 1001).await.unwrap_err();
    assert_eq!(e.violation().unwrap().field, "limit");
    let e = m.list_episodes("mine", None, 0).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = m.list_episodes("bad ns", None, 5).await.unwrap_err();
    assert_eq!(e.violation().unwrap().field, "namespace");
}

#[tokio::test]
async fn delete_removes_from_store_cache_and_progress() {
    let store = Arc::new(InMemoryStore::new());
    let cache = Arc::new(InMemoryCache::new());
    let m = open(store.clone(), cache.clone()).await;
    let done = m.start_episode("t", ctx("a")).await.unwrap();
    m.complete_episode(done, Outcome::success("ok"))
        .await
        .unwrap();
    let open_one = m.start_episode("t", ctx("a")).await.unwrap();
    m.log_step(open_one, NewStep::new("x", "{}")).await.unwrap();

    for id in [done, open_one] {
        assert!(m.delete_episode(id).await.unwrap());
        assert!(store.get_episode(id).await.unwrap().is_none());
        assert!(cache.get(id).await.unwrap().is_none());
        assert_eq!(
            m.get_episode(id).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
    let e = m
        .log_step(open_one, NewStep::new("x", "{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn a_new_instance_continues_in_progress_episodes() {
    let store = Arc::new(InMemoryStore::new());
    let first = open(store.clone(), Default::default()).await;
    let id = first.start_episode("t", ctx("a")).await.unwrap();
    first.log_step(id, NewStep::new("a", "{}")).await.unwrap();
    first.log_step(id, NewStep::new("b", "{}")).await.unwrap();
    drop(first); // no shutdown: acknowledged steps are already durable

    let second = open(store.clone(), Default::default()).await;
    assert_eq!(
        second.log_step(id, NewStep::new("c", "{}")).await.unwrap(),
        2
    );
    let done = second
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    let tools: Vec<_> = done.steps.iter().map(|s| s.tool.as_str()).collect();
    assert_eq!(tools, ["a", "b", "c"]);
}

#[tokio::test]
async fn two_instances_never_share_state() {
    let a = open(Default::default(), Default::default()).await;
    let b = open(Default::default(), Default::default()).await;
    let id = a.start_episode("t", ctx("same-ns")).await.unwrap();
    assert_eq!(
        b.get_episode(id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(
        b.list_episodes("same-ns", None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        b.log_step(id, NewStep::new("x", "{}"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn shutdown_refuses_new_work_and_keeps_data() {
    let store = Arc::new(InMemoryStore::new());
    let m = open(store.clone(), Default::default()).await;
    let id = m.start_episode("t", ctx("a")).await.unwrap();
    m.log_step(id, NewStep::new("a", "{}")).await.unwrap();
    m.shutdown().await.unwrap();
    let e = m.log_step(id, NewStep::new("b", "{}")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ShuttingDown);
    assert_eq!(store.get_episode(id).await.unwrap().unwrap().steps.len(), 1);
}

#[tokio::test]
async fn open_needs_a_durable_store_and_a_valid_config() {
    let e = SelfLearningMemory::builder().open().await.unwrap_err();
    assert_eq!(e.violation().unwrap().field, "durable");
    let mut config = MemoryConfig::default();
    config.limits.max_steps = 0;
    let e = SelfLearningMemory::builder()
        .durable(InMemoryStore::new())
        .config(config)
        .open()
        .await
        .unwrap_err();
    assert_eq!(e.violation().unwrap().field, "limits.max_steps");
}

#[tokio::test]
async fn step_limit_is_enforced_per_episode() {
    let mut config = MemoryConfig::default();
    config.limits.max_steps = 3;
    let m = SelfLearningMemory::builder()
        .durable(InMemoryStore::new())
        .config(config)
        .open()
        .await
        .unwrap();
    let id = m.start_episode("t", ctx("a")).await.unwrap();
    m.log_steps(id, vec![NewStep::new("a", ""), NewStep::new("b", "")])
        .await
        .unwrap();
    let e = m
        .log_steps(id, vec![NewStep::new("c", ""), NewStep::new("d", "")])
        .await
        .unwrap_err();
    assert_eq!(e.violation().unwrap().value, "4 steps");
    assert_eq!(
        m.get_episode(id).await.unwrap().steps.len(),
        2,
        "nothing written"
    );
    assert_eq!(m.log_step(id, NewStep::new("c", "")).await.unwrap(), 2);
}

#[tokio::test]
async fn updates_are_compare_and_set_and_refresh_the_cache() {
    use memory_core::EpisodeUpdate;
    let store = Arc::new(InMemoryStore::new());
    let cache = Arc::new(InMemoryCache::new());
    let m = open(store.clone(), cache.clone()).await;
    let id = m.start_episode("t", ctx("a")).await.unwrap();
    let done = m
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    assert_eq!(done.version, 2);

    let v3 = m
        .update_episode(id, 2, EpisodeUpdate::default().tags(["x"]).reward(0.25))
        .await
        .unwrap();
    assert_eq!((v3.version, v3.reward), (3, 0.25));
    assert_eq!(v3.context.tags, ["x"]);
    assert_eq!(
        cache.get(id).await.unwrap(),
        Some(v3.clone()),
        "cache holds the new version"
    );
    assert_eq!(store.get_episode(id).await.unwrap(), Some(v3.clone()));

    // A writer that read version 2 loses the race instead of overwriting version 3.
    let e = m
        .update_episode(id, 2, EpisodeUpdate::default().reflection("stale"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert_eq!(m.get_episode(id).await.unwrap(), v3);

    // Bad values are refused before anything is written.
    let e = m
        .update_episode(id, 3, EpisodeUpdate::default().reward(f64::NAN))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(store.get_episode(id).await.unwrap().unwrap().version, 3);

    let open_one = m.start_episode("t", ctx("a")).await.unwrap();
    let e = m
        .update_episode(open_one, 1, EpisodeUpdate::default().tags(["y"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn concurrent_updates_lose_nothing() {
    use memory_core::EpisodeUpdate;
    let m = open(Default::default(), Default::default()).await;
    let id = m.start_episode("t", ctx("a")).await.unwrap();
    m.complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    // 8 writers each add one tag with read-modify-write retries on Conflict.
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                loop {
                    let cur = m.get_episode(id).await.unwrap();
                    let mut tags = cur.context.tags.clone();
                    tags.push(format!("w{i}"));
                    match m
                        .update_episode(id, cur.version, EpisodeUpdate::default().tags(tags))
                        .await
                    {
                        Ok(_) => return,
                        Err(e) if e.kind() == ErrorKind::Conflict => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let end = m.get_episode(id).await.unwrap();
    assert_eq!(end.version, 2 + 8);
    let mut tags = end.context.tags.clone();
    tags.sort();
    let mut want = vec!["orders".to_string()];
    want.extend((0..8).map(|i| format!("w{i}")));
    want.sort();
    assert_eq!(tags, want, "every writer's tag is there: no lost update");
}

#[tokio::test]
async fn invalidate_cache_forces_a_durable_read() {
    let store = Arc::new(InMemoryStore::new());
    let cache = Arc::new(InMemoryCache::new());
    let m = open(store.clone(), cache.clone()).await;
    let id = m.start_episode("t", ctx("a")).await.unwrap();
    let done = m
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    assert!(cache.get(id).await.unwrap().is_some());
    m.invalidate_cache(id).await.unwrap();
    assert!(cache.get(id).await.unwrap().is_none());
    assert_eq!(m.get_episode(id).await.unwrap(), done);
}
