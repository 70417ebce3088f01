//! The breaker trips after the configured run of transient failures; before that the failures
//! reach the caller, after it writes are journaled. Non-transient errors are never journaled.

mod outage_support;

use memory_core::ErrorKind;
use memory_core::coordinator::BreakerState;
use memory_core::store::{DurableStore, FaultPlan, Op};
use outage_support::{config, episode, fixture, steps};

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_the_configured_run_and_writes_are_journaled_from_then_on() {
    let f = fixture(config(3, 10, 1)).await;
    let before = episode("ns");
    f.store.create_episode(&before).await.unwrap();
    assert_eq!(
        f.store.journal_depth().await.unwrap(),
        0,
        "direct while healthy"
    );

    f.outage(true);
    for run in 1..3 {
        let e = episode("ns");
        let err = f.store.create_episode(&e).await.unwrap_err();
        assert!(err.is_transient(), "run {run}: {err}");
        assert_eq!(f.store.breaker_state(), BreakerState::Closed, "run {run}");
        assert_eq!(
            f.store.journal_depth().await.unwrap(),
            0,
            "nothing journaled yet"
        );
        assert!(!f.store.is_journaling());
    }
    // The third consecutive failure opens the breaker: this write is journaled and acknowledged.
    let journaled = episode("ns");
    f.store.create_episode(&journaled).await.unwrap();
    assert_eq!(f.store.breaker_state(), BreakerState::Open);
    assert_eq!(f.store.breaker_transitions(), 1);
    assert!(f.store.is_journaling());
    assert_eq!(f.store.journal_depth().await.unwrap(), 1);

    // From now on the durable store is not even called.
    let calls = f.faults.calls();
    f.store
        .append_steps(journaled.id, &steps(0, 2))
        .await
        .unwrap();
    f.store.append_steps(before.id, &steps(0, 1)).await.unwrap();
    assert_eq!(f.faults.calls(), calls);
    assert_eq!(f.store.journal_depth().await.unwrap(), 3);
    assert!(
        f.inner
            .inner()
            .get_episode(journaled.id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_run() {
    let f = fixture(config(2, 10, 1)).await;
    f.faults.set_plan(FaultPlan::fail_nth(0));
    assert!(f.store.create_episode(&episode("ns")).await.is_err());
    f.store.create_episode(&episode("ns")).await.unwrap();
    f.faults.set_plan(FaultPlan::fail_nth(2));
    assert!(f.store.create_episode(&episode("ns")).await.is_err());
    assert_eq!(f.store.breaker_state(), BreakerState::Closed);
    assert_eq!(f.store.journal_depth().await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn non_transient_errors_are_returned_as_they_are_and_never_journaled() {
    let f = fixture(config(1, 10, 1)).await;
    let e = episode("ns");
    f.store.create_episode(&e).await.unwrap();
    let err = f.store.create_episode(&e).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = f
        .store
        .append_steps(episode("ns").id, &steps(0, 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = f.store.append_steps(e.id, &steps(3, 1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);

    // A permanent storage failure is the caller's to see; it says nothing about availability.
    f.faults.set_plan(FaultPlan {
        transient: false,
        ..FaultPlan::fail_ops([Op::AppendSteps])
    });
    let err = f.store.append_steps(e.id, &steps(0, 1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage);
    assert!(!err.is_transient());

    assert_eq!(f.store.breaker_state(), BreakerState::Closed);
    assert_eq!(f.store.journal_depth().await.unwrap(), 0);
    assert!(!f.store.is_journaling());
}
