//! A journal left non-empty by a crash: the next process starts in journaling mode with the
//! overlay rebuilt from it, serves what it knows, never lets new writes overtake the old
//! entries, and drains it on replay.

mod outage_support;

use std::time::Duration;

use memory_core::ErrorKind;
use memory_core::store::DurableStore;
use outage_support::{completed, config, drain, episode, fixture, steps, with_steps};

#[tokio::test(start_paused = true)]
async fn a_new_process_resumes_from_the_left_over_journal() {
    let f = fixture(config(1, 5, 1)).await;
    let a = episode("ns");
    f.store.create_episode(&a).await.unwrap();
    f.outage(true);
    let s = steps(0, 3);
    f.store.append_steps(a.id, &s[..2]).await.unwrap();
    let b = episode("ns");
    f.store.create_episode(&b).await.unwrap();
    // The process dies with two entries journaled; the store comes back meanwhile.
    f.outage(false);

    let store = f.reopen(config(1, 5, 1)).await;
    assert!(store.is_journaling());
    assert_eq!(store.pending_writes(), 2);
    assert_eq!(store.get_episode(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(
        store.get_episode(a.id).await.unwrap(),
        Some(with_steps(a.clone(), &s[..2])),
        "stored copy with the journaled steps on top"
    );
    assert_eq!(
        store
            .list_episodes(&memory_core::store::ListRequest {
                namespace: "ns".into(),
                after: None,
                limit: 10
            })
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );

    // The durable store is healthy, yet the next writes queue behind the left-over entries.
    store.append_steps(a.id, &s[2..]).await.unwrap();
    let a_done = completed(with_steps(a.clone(), &s), s.clone());
    store.complete_episode(&a_done).await.unwrap();
    assert_eq!(store.journal_depth().await.unwrap(), 4);
    assert_eq!(
        f.inner.inner().get_episode(a.id).await.unwrap(),
        Some(a.clone())
    );

    let reports = drain(&store, Duration::from_secs(5), 1).await;
    assert_eq!(reports[0].applied, 4);
    assert!(!store.is_journaling());
    assert_eq!(
        f.inner.inner().get_episode(a.id).await.unwrap(),
        Some(a_done)
    );
    assert_eq!(f.inner.inner().get_episode(b.id).await.unwrap(), Some(b));
    // Direct again.
    let c = episode("ns");
    store.create_episode(&c).await.unwrap();
    assert_eq!(store.journal_depth().await.unwrap(), 0);
}
