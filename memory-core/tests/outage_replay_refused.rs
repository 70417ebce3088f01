//! An entry the durable store refuses for a non-transient reason stops replay with an error
//! naming its sequence number and episode; it and every later entry stay journaled, and the
//! store keeps journaling. A journaled delete of that episode resolves it.
//!
//! The one refusal that does not stop replay: a change journaled for an episode that a delete
//! the journal did not order had already removed is void, counted, and replay goes on.

mod outage_support;

use std::time::Duration;

use memory_core::ErrorKind;
use memory_core::store::DurableStore;
use outage_support::{completed, config, episode, fixture, steps, with_steps};

#[tokio::test(start_paused = true)]
async fn a_refused_entry_is_kept_with_everything_after_it() {
    let f = fixture(config(1, 5, 1)).await;
    let a = episode("ns");
    f.store.create_episode(&a).await.unwrap();
    f.store.append_steps(a.id, &steps(0, 2)).await.unwrap();

    f.outage(true);
    let b = episode("ns");
    f.store.create_episode(&b).await.unwrap();
    // Nothing known of A's stored copy can refute this append (seq 5 where 2 is next), so it
    // is accepted; the durable store will refuse it.
    f.store.append_steps(a.id, &steps(5, 1)).await.unwrap();
    let c = episode("ns");
    f.store.create_episode(&c).await.unwrap();
    assert_eq!(f.store.journal_depth().await.unwrap(), 3);

    f.outage(false);
    tokio::time::advance(Duration::from_secs(5)).await;
    let err = f.store.replay().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(!err.is_transient());
    assert!(err.message().contains("journal entry 2"), "{err}");
    assert!(err.message().contains(&a.id.to_string()), "{err}");
    assert!(err.message().contains("append_steps"), "{err}");
    assert_eq!(
        f.store.journal_depth().await.unwrap(),
        2,
        "only B's create was removed"
    );
    assert!(f.inner.inner().get_episode(b.id).await.unwrap().is_some());
    assert!(f.inner.inner().get_episode(c.id).await.unwrap().is_none());
    assert!(f.store.is_journaling());

    // Every further replay stops at the same entry; nothing is dropped.
    let again = f.store.replay().await.unwrap_err();
    assert_eq!(again.message(), err.message());
    assert_eq!(f.store.journal_depth().await.unwrap(), 2);
    // Reads of A say so instead of guessing; further writes to it are refused.
    assert_eq!(
        f.store.get_episode(a.id).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(
        f.store
            .append_steps(a.id, &steps(6, 1))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );

    // Deleting A resolves it: its refused append is superseded.
    assert!(f.store.delete_episode(a.id).await.unwrap());
    let report = f.store.replay().await.unwrap();
    assert_eq!(
        (report.superseded, report.applied, report.remaining),
        (1, 2, 0),
        "{report:?}"
    );
    assert!(f.inner.inner().get_episode(a.id).await.unwrap().is_none());
    assert!(f.inner.inner().get_episode(c.id).await.unwrap().is_some());
    assert!(!f.store.is_journaling());
}

/// The race the stress test found: a delete lands directly while a step for the same episode
/// fails on the outage's first fault and is journaled without the store being readable. The
/// journal accepts the step on its word that the episode exists; replay must not stop at it
/// for good (which held every later write and every listing back until someone deleted the
/// episode again).
#[tokio::test(start_paused = true)]
async fn a_change_to_an_episode_deleted_outside_the_journal_is_void() {
    let f = fixture(config(1, 5, 1)).await;
    let a = episode("ns");
    f.store.create_episode(&a).await.unwrap();
    let d = episode("ns");
    f.store.create_episode(&d).await.unwrap();
    f.store.append_steps(d.id, &steps(0, 2)).await.unwrap();
    assert!(f.store.delete_episode(d.id).await.unwrap(), "direct delete");

    f.outage(true);
    let b = episode("ns");
    f.store.create_episode(&b).await.unwrap();
    assert!(f.store.is_journaling());
    // Neither can be checked against the store: both are journaled and acknowledged.
    f.store.append_steps(d.id, &steps(2, 1)).await.unwrap();
    let done = completed(with_steps(d.clone(), &steps(0, 3)), steps(0, 3));
    f.store.complete_episode(&done).await.unwrap();
    f.store.append_steps(a.id, &steps(0, 1)).await.unwrap();
    assert_eq!(f.store.journal_depth().await.unwrap(), 4);

    f.outage(false);
    tokio::time::advance(Duration::from_secs(5)).await;
    // A's read is the half-open probe; it closes the breaker, so D's stored copy is read.
    assert_eq!(
        f.store
            .get_episode(a.id)
            .await
            .unwrap()
            .unwrap()
            .steps
            .len(),
        1
    );
    assert_eq!(
        f.store.get_episode(d.id).await.unwrap(),
        None,
        "the journaled changes are void over the missing episode"
    );
    assert_eq!(
        f.store
            .append_steps(d.id, &steps(3, 1))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound,
        "a further change is refused as the store would refuse it"
    );

    let report = f.store.replay().await.unwrap();
    assert_eq!(
        (report.applied, report.void, report.remaining),
        (2, 2, 0),
        "{report:?}"
    );
    assert_eq!(f.store.void_writes(), 2);
    assert!(!f.store.is_journaling());
    assert!(f.inner.inner().get_episode(d.id).await.unwrap().is_none());
    assert!(f.inner.inner().get_episode(b.id).await.unwrap().is_some());
    let a_stored = f.inner.inner().get_episode(a.id).await.unwrap().unwrap();
    assert_eq!(a_stored.steps.len(), 1);
}
