//! Concurrent `log_step` calls on one episode: every step lands, numbered gaplessly in
//! acceptance order; completion includes everything accepted before it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use memory_core::store::{FaultInjector, FaultPlan, Faulty, InMemoryStore};
use memory_core::{ErrorKind, NewStep, Outcome, SelfLearningMemory, TaskContext};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_times_one_hundred_steps() {
    // 3,200 steps in one episode: above the default limit of 1,000, so raise it.
    let mut config = memory_core::MemoryConfig::default();
    config.limits.max_steps = 3_200;
    let m = SelfLearningMemory::builder()
        .durable(InMemoryStore::new())
        .config(config)
        .open()
        .await
        .unwrap();
    let id = m
        .start_episode("stress", TaskContext::new("ns", "d", "t"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..100 {
                let step = NewStep::new(format!("task{t}"), format!("{i}"));
                seqs.push(m.log_step(id, step).await.unwrap());
            }
            seqs
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one task's steps are numbered in its own order"
        );
        all.extend(seqs);
    }
    assert_eq!(all, (0..3_200).collect::<HashSet<u32>>());

    let done = m
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    assert_eq!(done.steps.len(), 3_200);
    for (i, s) in done.steps.iter().enumerate() {
        assert_eq!(s.seq as usize, i);
    }
    // Each task's inputs 0..100 appear in order within the episode.
    for t in 0..32 {
        let tool = format!("task{t}");
        let inputs: Vec<u32> = done
            .steps
            .iter()
            .filter(|s| s.tool == tool)
            .map(|s| s.input.parse().unwrap())
            .collect();
        assert_eq!(inputs, (0..100).collect::<Vec<_>>());
    }
}

#[tokio::test(start_paused = true)]
async fn completion_waits_for_accepted_steps_and_refuses_later_ones() {
    // Every durable call takes 10 s (paused clock): steps are in flight when completion starts.
    let faults = FaultInjector::new(FaultPlan {
        latency: Duration::from_secs(10),
        ..FaultPlan::none()
    });
    let m = SelfLearningMemory::builder()
        .durable(Faulty::new(InMemoryStore::new(), faults))
        .open()
        .await
        .unwrap();
    let id = m
        .start_episode("t", TaskContext::new("ns", "d", "t"))
        .await
        .unwrap();
    let early = {
        let m = m.clone();
        tokio::spawn(async move { m.log_step(id, NewStep::new("early", "")).await })
    };
    tokio::time::sleep(Duration::from_millis(1)).await; // the step is accepted and in flight
    let completing = {
        let m = m.clone();
        tokio::spawn(async move { m.complete_episode(id, Outcome::success("ok")).await })
    };
    tokio::time::sleep(Duration::from_millis(1)).await; // completion has begun
    let late = m.log_step(id, NewStep::new("late", "")).await.unwrap_err();
    assert_eq!(late.kind(), ErrorKind::AlreadyCompleted, "{late}");
    assert!(late.to_string().contains("being completed"), "{late}");

    assert_eq!(early.await.unwrap().unwrap(), 0);
    let done = completing.await.unwrap().unwrap();
    let tools: Vec<_> = done.steps.iter().map(|s| s.tool.as_str()).collect();
    assert_eq!(
        tools,
        ["early"],
        "the accepted step is in, the late one is not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_completions_succeed_exactly_once() {
    let store = Arc::new(InMemoryStore::new());
    let m = SelfLearningMemory::builder()
        .durable(store)
        .open()
        .await
        .unwrap();
    for _ in 0..50 {
        let id = m
            .start_episode("t", TaskContext::new("ns", "d", "t"))
            .await
            .unwrap();
        let racers: Vec<_> = (0..4)
            .map(|i| {
                let m = m.clone();
                tokio::spawn(async move {
                    m.complete_episode(id, Outcome::success(format!("racer {i}")))
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        for r in racers {
            match r.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => assert_eq!(e.kind(), ErrorKind::AlreadyCompleted, "{e}"),
            }
        }
        assert_eq!(ok, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn completions_beyond_the_permit_bound_wait_then_get_overloaded() {
    // Completions take 10 s each; one slot; waiting more than 1 s is refused.
    let faults = FaultInjector::new(FaultPlan::none());
    let config = memory_core::MemoryConfig {
        max_concurrent_completions: 1,
        completion_wait_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let m = SelfLearningMemory::builder()
        .durable(Faulty::new(InMemoryStore::new(), faults.clone()))
        .config(config)
        .open()
        .await
        .unwrap();
    let a = m
        .start_episode("a", TaskContext::new("ns", "d", "t"))
        .await
        .unwrap();
    let b = m
        .start_episode("b", TaskContext::new("ns", "d", "t"))
        .await
        .unwrap();
    faults.set_plan(FaultPlan {
        latency: Duration::from_secs(10),
        ..FaultPlan::none()
    });
    let slow = {
        let m = m.clone();
        tokio::spawn(async move { m.complete_episode(a, Outcome::success("ok")).await })
    };
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(m.completion_permits().in_flight, 1);
    let e = m
        .complete_episode(b, Outcome::success("ok"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overloaded, "{e}");
    assert!(e.is_transient());
    assert_eq!(m.completion_permits().rejected, 1);
    slow.await.unwrap().unwrap();
    // b was untouched by the refusal and completes once a slot is free.
    faults.set_plan(FaultPlan::none());
    m.complete_episode(b, Outcome::success("ok")).await.unwrap();
}
