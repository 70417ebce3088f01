//! Reads during an outage return acknowledged data or `Unavailable`, never stale or wrong
//! data; journaled writes are checked against what is known before they are acknowledged.

mod outage_support;

use std::time::Duration;

use memory_core::ErrorKind;
use memory_core::coordinator::BreakerState;
use memory_core::store::{DurableStore, ListRequest};
use outage_support::{completed, config, episode, fixture, steps, with_steps};

#[tokio::test(start_paused = true)]
async fn reads_serve_acknowledged_data_or_unavailable() {
    let f = fixture(config(1, 10, 1)).await;
    // Before the outage: A in progress with 2 steps, B completed.
    let a = episode("ns");
    let a_steps = steps(0, 3);
    f.store.create_episode(&a).await.unwrap();
    f.store.append_steps(a.id, &a_steps[..2]).await.unwrap();
    let b = episode("ns");
    f.store.create_episode(&b).await.unwrap();
    let b_done = completed(b.clone(), vec![]);
    f.store.complete_episode(&b_done).await.unwrap();

    f.outage(true);
    // A during the outage: one more step, journaled over a stored copy we cannot read.
    f.store.append_steps(a.id, &a_steps[2..]).await.unwrap();
    assert_eq!(f.store.breaker_state(), BreakerState::Open);
    // C lives entirely in the journal: created, stepped, completed.
    let c = episode("ns");
    let c_steps = steps(0, 3);
    f.store.create_episode(&c).await.unwrap();
    f.store.append_steps(c.id, &c_steps).await.unwrap();
    let c_done = completed(with_steps(c.clone(), &c_steps), c_steps.clone());
    f.store.complete_episode(&c_done).await.unwrap();
    // D is created and deleted during the outage.
    let d = episode("ns");
    f.store.create_episode(&d).await.unwrap();
    assert!(f.store.delete_episode(d.id).await.unwrap(), "it existed");
    assert!(
        !f.store.delete_episode(d.id).await.unwrap(),
        "already deleted: not journaled"
    );
    assert_eq!(f.store.journal_depth().await.unwrap(), 6);

    let calls = f.faults.calls();
    // Known whole from the journal: served without the durable store.
    assert_eq!(
        f.store.get_episode(c.id).await.unwrap(),
        Some(c_done.clone())
    );
    assert_eq!(f.store.get_episode(d.id).await.unwrap(), None);
    // Partly journaled, partly stored: cannot be told now.
    let err = f.store.get_episode(a.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("journaled"), "{err}");
    // Untouched by the journal, but the store is down.
    assert_eq!(
        f.store.get_episode(b.id).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    // Listings never show a stale page.
    let list = ListRequest {
        namespace: "ns".into(),
        after: None,
        limit: 100,
    };
    let err = f.store.list_episodes(&list).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("replayed"), "{err}");
    assert!(f.store.scan_summaries(None, 100).await.is_err());
    assert_eq!(
        f.faults.calls(),
        calls,
        "an open breaker keeps reads off the store"
    );

    // Writes are checked against what is known before they are acknowledged.
    assert_eq!(
        f.store.create_episode(&c).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        f.store
            .append_steps(c.id, &steps(3, 1))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyCompleted
    );
    assert_eq!(
        f.store
            .append_steps(d.id, &steps(0, 1))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        f.store
            .append_steps(a.id, &steps(4, 1))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict,
        "seq 3 is next after the journaled append"
    );
    assert_eq!(
        f.store.journal_depth().await.unwrap(),
        6,
        "refused writes are not journaled"
    );

    // The store is back but the breaker still cools down: still no stale read.
    f.outage(false);
    assert_eq!(
        f.store.get_episode(a.id).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    // The read is the half-open probe: stored copy + journaled step.
    let a_now = with_steps(a.clone(), &a_steps);
    assert_eq!(
        f.store.get_episode(a.id).await.unwrap(),
        Some(a_now.clone())
    );
    assert_eq!(f.store.breaker_state(), BreakerState::Closed);
    assert_eq!(
        f.store.get_episode(b.id).await.unwrap(),
        Some(b_done.clone())
    );
    assert!(
        f.store.list_episodes(&list).await.is_err(),
        "journal not replayed yet"
    );

    let report = f.store.replay().await.unwrap();
    assert_eq!((report.applied, report.remaining), (4, 0));
    assert_eq!(
        report.superseded, 1,
        "D's create is superseded by its delete"
    );
    assert_eq!(report.skipped, 1, "D's delete finds nothing to delete");
    let page = f.store.list_episodes(&list).await.unwrap();
    assert_eq!(page.items, vec![a_now, b_done, c_done]);
}
