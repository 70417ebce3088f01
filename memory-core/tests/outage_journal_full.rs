//! A full journal refuses further writes with `Unavailable` (transient) and writes nothing;
//! room comes back once replay has drained it.

mod outage_support;

use std::time::Duration;

use memory_core::store::DurableStore;
use memory_core::{ErrorKind, ResilienceConfig};
use outage_support::{config, episode, fixture, steps};

#[tokio::test(start_paused = true)]
async fn a_full_journal_returns_unavailable_and_writes_nothing() {
    let f = fixture(ResilienceConfig {
        max_journal_entries: 3,
        ..config(1, 5, 1)
    })
    .await;
    f.outage(true);
    let a = episode("ns");
    f.store.create_episode(&a).await.unwrap();
    f.store.append_steps(a.id, &steps(0, 1)).await.unwrap();
    f.store.append_steps(a.id, &steps(1, 1)).await.unwrap();
    assert_eq!(f.store.journal_depth().await.unwrap(), 3);

    let journal_calls = f.journal_faults.calls();
    let b = episode("ns");
    let err = f.store.create_episode(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_transient());
    assert!(err.message().contains("journal is full"), "{err}");
    let err = f.store.append_steps(a.id, &steps(2, 1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        f.journal_faults.calls(),
        journal_calls,
        "nothing was appended"
    );
    assert_eq!(f.store.journal_depth().await.unwrap(), 3);
    assert_eq!(
        f.store.get_episode(b.id).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(
        f.store
            .get_episode(a.id)
            .await
            .unwrap()
            .unwrap()
            .steps
            .len(),
        2
    );

    f.outage(false);
    tokio::time::advance(Duration::from_secs(5)).await;
    let report = f.store.replay().await.unwrap();
    assert_eq!((report.applied, report.remaining), (3, 0));
    f.store.create_episode(&b).await.unwrap();
    assert!(f.inner.inner().get_episode(b.id).await.unwrap().is_some());
}
