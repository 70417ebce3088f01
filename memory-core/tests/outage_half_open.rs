//! Half-open probe limits: after the cool-down only the configured number of calls reach the
//! durable store at once (replay's first call is the probe); the rest are refused (reads) or
//! journaled (writes) until a probe succeeds. A failed probe reopens for a fresh cool-down.

mod outage_support;

use std::time::Duration;

use memory_core::ErrorKind;
use memory_core::coordinator::BreakerState;
use memory_core::store::{DurableStore, FaultPlan};
use outage_support::{config, episode, fixture};

#[tokio::test(start_paused = true)]
async fn one_probe_at_a_time_and_writes_keep_their_order() {
    let f = fixture(config(1, 5, 1)).await;
    let untouched = episode("ns");
    f.store.create_episode(&untouched).await.unwrap();
    f.outage(true);
    let first = episode("ns");
    f.store.create_episode(&first).await.unwrap();
    assert_eq!(f.store.breaker_state(), BreakerState::Open);

    // The store comes back slow; the cool-down ends.
    f.faults.set_plan(FaultPlan {
        latency: Duration::from_secs(1),
        ..FaultPlan::none()
    });
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(f.store.breaker_state(), BreakerState::HalfOpen);

    let calls = f.faults.calls();
    let replay = tokio::spawn({
        let store = f.store.clone();
        async move { store.replay().await }
    });
    while f.faults.calls() == calls {
        tokio::task::yield_now().await;
    }
    // Replay's probe is in flight: the only slot is taken.
    let err = f.store.get_episode(untouched.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        f.faults.calls(),
        calls + 1,
        "the refused read never reached the store"
    );
    // A write arriving now is journaled behind the earlier one, not sent around it.
    let second = episode("ns");
    f.store.create_episode(&second).await.unwrap();
    assert_eq!(f.faults.calls(), calls + 1);

    let report = replay.await.unwrap().unwrap();
    assert_eq!((report.applied, report.remaining), (2, 0), "{report:?}");
    assert_eq!(f.store.breaker_state(), BreakerState::Closed);
    assert!(!f.store.is_journaling());
    assert_eq!(
        f.inner.inner().get_episode(second.id).await.unwrap(),
        Some(second)
    );
    assert_eq!(
        f.inner.inner().get_episode(first.id).await.unwrap(),
        Some(first)
    );
}

#[tokio::test(start_paused = true)]
async fn probes_are_limited_to_the_configured_number() {
    let f = fixture(config(1, 5, 2)).await;
    let known = episode("ns");
    f.store.create_episode(&known).await.unwrap();
    f.outage(true);
    assert!(f.store.get_episode(known.id).await.is_err());
    assert_eq!(f.store.breaker_state(), BreakerState::Open);
    f.faults.set_plan(FaultPlan {
        latency: Duration::from_secs(1),
        ..FaultPlan::none()
    });
    tokio::time::advance(Duration::from_secs(5)).await;

    let calls = f.faults.calls();
    let probes: Vec<_> = (0..2)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move { store.get_episode(known.id).await })
        })
        .collect();
    while f.faults.calls() < calls + 2 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        f.store.get_episode(known.id).await.unwrap_err().kind(),
        ErrorKind::Unavailable,
        "a third call while two probes are out"
    );
    for p in probes {
        assert_eq!(p.await.unwrap().unwrap(), Some(known.clone()));
    }
    assert_eq!(f.store.breaker_state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_for_a_fresh_cool_down() {
    let f = fixture(config(1, 5, 1)).await;
    f.outage(true);
    let e = episode("ns");
    f.store.create_episode(&e).await.unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;

    let report = f.store.replay().await.unwrap();
    assert_eq!((report.applied, report.remaining), (0, 1));
    assert!(report.deferred.as_ref().is_some_and(|e| e.is_transient()));
    assert_eq!(f.store.breaker_state(), BreakerState::Open);
    // Closed -> Open -> HalfOpen -> Open
    assert_eq!(f.store.breaker_transitions(), 3);

    f.outage(false);
    tokio::time::advance(Duration::from_secs(4)).await;
    let report = f.store.replay().await.unwrap();
    assert_eq!(report.remaining, 1, "still cooling down");
    assert!(report.deferred.is_some());
    tokio::time::advance(Duration::from_secs(1)).await;
    let report = f.store.replay().await.unwrap();
    assert_eq!((report.applied, report.remaining), (1, 0));
    assert_eq!(f.inner.inner().get_episode(e.id).await.unwrap(), Some(e));
}
