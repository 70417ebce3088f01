//! Ambiguous commits before the breaker opens (the durable store applied the write, the caller
//! was told it failed, the retry was journaled) are recognised at replay: skipped whole, or
//! only their missing tail applied.

mod outage_support;

use std::time::Duration;

use memory_core::coordinator::BreakerState;
use memory_core::store::{DurableStore, FaultPlan, Op};
use outage_support::{config, episode, fixture, steps, with_steps};

fn ambiguous(ops: impl IntoIterator<Item = Op>) -> FaultPlan {
    FaultPlan {
        fail_after_write: true,
        ..FaultPlan::fail_ops(ops)
    }
}

#[tokio::test(start_paused = true)]
async fn retried_ambiguous_writes_journaled_after_the_breaker_opened_are_skipped_at_replay() {
    let f = fixture(config(2, 5, 1)).await;
    let a = episode("ns");
    let s = steps(0, 3);

    f.faults.set_plan(ambiguous([Op::Create, Op::AppendSteps]));
    // The create lands, the caller sees a transient error and retries: the retry fails too
    // (the second failure opens the breaker), so it is journaled and acknowledged.
    assert!(f.store.create_episode(&a).await.unwrap_err().is_transient());
    assert_eq!(f.store.breaker_state(), BreakerState::Closed);
    f.store.create_episode(&a).await.unwrap();
    assert_eq!(f.store.breaker_state(), BreakerState::Open);
    // The next append is journaled directly.
    f.store.append_steps(a.id, &s[..2]).await.unwrap();
    assert!(
        f.inner.inner().get_episode(a.id).await.unwrap().is_some(),
        "it did land"
    );

    f.faults.set_plan(FaultPlan::none());
    tokio::time::advance(Duration::from_secs(5)).await;
    let report = f.store.replay().await.unwrap();
    assert_eq!(
        (report.skipped, report.applied, report.remaining),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(
        f.inner.inner().get_episode(a.id).await.unwrap(),
        Some(with_steps(a, &s[..2]))
    );
}

#[tokio::test(start_paused = true)]
async fn an_append_whose_prefix_landed_has_only_its_tail_applied() {
    let f = fixture(config(2, 5, 1)).await;
    let a = episode("ns");
    let s = steps(0, 3);
    f.store.create_episode(&a).await.unwrap();

    // Steps 0 and 1 land, but the caller is told the append failed (the breaker stays closed).
    f.faults.set_plan(ambiguous([Op::AppendSteps]));
    assert!(
        f.store
            .append_steps(a.id, &s[..2])
            .await
            .unwrap_err()
            .is_transient()
    );
    // It retries with one more step queued meanwhile; this failure opens the breaker, so the
    // retry is journaled (the stored copy cannot be read to check it).
    f.store.append_steps(a.id, &s).await.unwrap();
    assert_eq!(f.store.breaker_state(), BreakerState::Open);
    assert_eq!(f.store.journal_depth().await.unwrap(), 1);

    f.faults.set_plan(FaultPlan::none());
    tokio::time::advance(Duration::from_secs(5)).await;
    let calls = f.faults.calls();
    let report = f.store.replay().await.unwrap();
    assert_eq!(
        (report.skipped, report.applied, report.remaining),
        (0, 1, 0),
        "{report:?}"
    );
    // Refused whole, read back, then only step 2 appended.
    assert_eq!(f.faults.calls(), calls + 3);
    assert_eq!(
        f.inner.inner().get_episode(a.id).await.unwrap(),
        Some(with_steps(a, &s))
    );
}
