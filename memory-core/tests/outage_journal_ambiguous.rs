//! A journal append whose outcome is unknown (it landed but reported an error) is not lost
//! from view: the store re-reads the journal before trusting its in-memory mirror again.

mod outage_support;

use std::time::Duration;

use memory_core::ErrorKind;
use memory_core::store::{DurableStore, FaultPlan, Op};
use outage_support::{config, episode, fixture};

#[tokio::test(start_paused = true)]
async fn an_ambiguous_journal_append_is_seen_by_reads_checks_and_replay() {
    let f = fixture(config(1, 5, 1)).await;
    f.outage(true);
    let a = episode("ns");
    f.store.create_episode(&a).await.unwrap();

    f.journal_faults.set_plan(FaultPlan {
        fail_after_write: true,
        ..FaultPlan::fail_ops([Op::JournalAppend])
    });
    let b = episode("ns");
    assert!(f.store.create_episode(&b).await.unwrap_err().is_transient());
    f.journal_faults.set_plan(FaultPlan::none());

    // The create is in the journal after all: reads and checks see it.
    assert_eq!(f.store.get_episode(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(f.store.pending_writes(), 2);
    assert_eq!(
        f.store.create_episode(&b).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );

    f.outage(false);
    tokio::time::advance(Duration::from_secs(5)).await;
    let report = f.store.replay().await.unwrap();
    assert_eq!((report.applied, report.remaining), (2, 0));
    assert_eq!(f.inner.inner().get_episode(b.id).await.unwrap(), Some(b));
}
