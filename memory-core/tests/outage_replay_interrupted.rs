//! A replay interrupted after applying entries (the journal cannot be trimmed, or the durable
//! store fails mid-batch, or commits ambiguously) and then resumed applies nothing twice.

mod outage_support;

use std::time::Duration;

use memory_core::store::{DurableStore, FaultPlan, Op};
use memory_core::{Episode, ResilienceConfig};
use outage_support::{Fixture, completed, config, drain, episode, fixture, steps, with_steps};

/// Journal 8 writes over two episodes during an outage; returns the fixture and what the
/// durable store must end with.
async fn journaled_outage(config: ResilienceConfig) -> (Fixture, Vec<Episode>) {
    let f = fixture(config).await;
    f.outage(true);
    let a = episode("ns");
    let b = episode("ns");
    let s = steps(0, 4);
    for e in [&a, &b] {
        f.store.create_episode(e).await.expect("journaled");
    }
    for (from, to) in [(0, 1), (1, 3), (3, 4)] {
        f.store
            .append_steps(a.id, &s[from..to])
            .await
            .expect("journaled");
    }
    f.store
        .append_steps(b.id, &s[..2])
        .await
        .expect("journaled");
    let a_done = completed(a.clone(), s.clone());
    f.store.complete_episode(&a_done).await.expect("journaled");
    f.store
        .append_steps(b.id, &s[2..3])
        .await
        .expect("journaled");
    assert_eq!(f.store.journal_depth().await.expect("depth"), 8);
    f.outage(false);
    let mut expected = vec![a_done, with_steps(b, &s[..3])];
    expected.sort_by_key(|e| e.id);
    (f, expected)
}

fn small_batches() -> ResilienceConfig {
    ResilienceConfig {
        replay_batch_size: 3,
        ..config(1, 5, 1)
    }
}

#[tokio::test(start_paused = true)]
async fn a_journal_that_cannot_be_trimmed_leaves_entries_that_are_then_skipped() {
    let (f, expected) = journaled_outage(small_batches()).await;
    f.journal_faults
        .set_plan(FaultPlan::fail_ops([Op::JournalRemove]));
    tokio::time::advance(Duration::from_secs(5)).await;
    let first = f.store.replay().await.unwrap();
    assert_eq!(first.applied, 3, "the first batch was applied: {first:?}");
    assert!(first.deferred.is_some());
    assert_eq!(f.store.journal_depth().await.unwrap(), 8, "but not trimmed");

    f.journal_faults.set_plan(FaultPlan::none());
    let second = f.store.replay().await.unwrap();
    assert_eq!(
        (second.skipped, second.applied, second.remaining),
        (3, 5, 0)
    );
    assert_eq!(f.stored().await, expected, "nothing applied twice");
}

#[tokio::test(start_paused = true)]
async fn an_ambiguous_trim_is_harmless() {
    let (f, expected) = journaled_outage(small_batches()).await;
    f.journal_faults.set_plan(FaultPlan {
        fail_after_write: true,
        ..FaultPlan::fail_ops([Op::JournalRemove])
    });
    tokio::time::advance(Duration::from_secs(5)).await;
    let first = f.store.replay().await.unwrap();
    assert!(first.deferred.is_some());
    assert_eq!(
        f.store.journal_depth().await.unwrap(),
        5,
        "trimmed despite the error"
    );
    f.journal_faults.set_plan(FaultPlan::none());
    let second = f.store.replay().await.unwrap();
    assert_eq!(
        (second.skipped, second.applied, second.remaining),
        (0, 5, 0)
    );
    assert_eq!(f.stored().await, expected);
}

#[tokio::test(start_paused = true)]
async fn a_store_failing_mid_batch_stops_replay_and_the_rest_follows_later() {
    let (f, expected) = journaled_outage(small_batches()).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    // The 5th durable call fails (the first 4 entries are applied, one call each).
    f.faults.set_plan(FaultPlan::fail_nth(f.faults.calls() + 4));
    let first = f.store.replay().await.unwrap();
    assert_eq!((first.applied, first.remaining), (4, 4), "{first:?}");
    assert!(first.deferred.as_ref().is_some_and(|e| e.is_transient()));
    assert_eq!(
        f.store.journal_depth().await.unwrap(),
        4,
        "the applied prefix is trimmed"
    );

    tokio::time::advance(Duration::from_secs(5)).await;
    let second = f.store.replay().await.unwrap();
    assert_eq!(
        (second.skipped, second.applied, second.remaining),
        (0, 4, 0)
    );
    assert_eq!(f.stored().await, expected);
}

#[tokio::test(start_paused = true)]
async fn an_ambiguous_commit_during_replay_is_recognised_on_resume() {
    let (f, expected) = journaled_outage(small_batches()).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    // The 3rd durable call (an append) lands, but replay is told it failed.
    f.faults.set_plan(FaultPlan {
        fail_after_write: true,
        ..FaultPlan::fail_nth(f.faults.calls() + 2)
    });
    let first = f.store.replay().await.unwrap();
    assert_eq!((first.applied, first.remaining), (2, 6), "{first:?}");
    tokio::time::advance(Duration::from_secs(5)).await;
    let second = f.store.replay().await.unwrap();
    assert_eq!(
        (second.skipped, second.applied, second.remaining),
        (1, 5, 0)
    );
    assert_eq!(f.stored().await, expected);
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_applying_and_trimming_is_recovered_by_the_next_process() {
    let (f, expected) = journaled_outage(small_batches()).await;
    f.journal_faults
        .set_plan(FaultPlan::fail_ops([Op::JournalRemove]));
    tokio::time::advance(Duration::from_secs(5)).await;
    let first = f.store.replay().await.unwrap();
    assert_eq!(first.applied, 3);
    // The process dies here (the old store is never used again); a new one opens the same
    // durable store and journal.
    f.journal_faults.set_plan(FaultPlan::none());
    let reopened = f.reopen(small_batches()).await;
    assert!(
        reopened.is_journaling(),
        "left-over entries put it in journaling mode"
    );
    assert_eq!(reopened.pending_writes(), 8);
    let reports = drain(&reopened, Duration::from_secs(5), 2).await;
    let last = reports.last().unwrap();
    assert_eq!((last.skipped, last.applied, last.remaining), (3, 5, 0));
    assert_eq!(f.stored().await, expected);
}
