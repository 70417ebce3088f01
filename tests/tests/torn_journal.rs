//! Writes acknowledged during an outage wait in the journal; if the journal is damaged on disk
//! before they are replayed (its last entry cut short), the engine refuses to open with
//! `Corrupt` naming that entry, and drops nothing: the entries stay, and once the entry is whole
//! again the next open replays every acknowledged write.

use std::path::Path;
use std::time::Duration;

use memory_core::store::{FaultInjector, FaultPlan, Journal};
use memory_core::{ErrorKind, MemoryConfig, NewStep, Outcome, TaskContext};
use memory_storage_redb::{JOURNAL_FILE, RedbJournal};
use memory_tests::{open_embedded, open_embedded_with};

fn config() -> MemoryConfig {
    let mut config = MemoryConfig {
        // No replay attempt while the test runs: the journal stays as written.
        replay_interval: Duration::from_secs(3600),
        reconcile_interval: None,
        ..MemoryConfig::default()
    };
    // The first failure opens the breaker: every write of the test goes to the journal.
    config.resilience.breaker.failure_threshold = 1;
    config
}

fn journal_of(dir: &Path) -> RedbJournal {
    RedbJournal::open(dir.join(JOURNAL_FILE)).expect("open the journal file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_entry_cut_short_is_refused_at_open_and_nothing_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new(FaultPlan {
        transient: true,
        ..FaultPlan::none()
    });
    let e = open_embedded_with(dir.path(), config(), Some(faults.clone()))
        .await
        .unwrap();
    faults.set_outage(true);
    let m = &e.memory;
    let ctx = TaskContext::new("ns", "d", "t");
    let done_id = m
        .start_episode("completed in the outage", ctx.clone())
        .await
        .unwrap();
    m.log_step(done_id, NewStep::new("tool", "a"))
        .await
        .unwrap();
    let done = m
        .complete_episode(done_id, Outcome::success("ok"))
        .await
        .unwrap();
    let open_id = m.start_episode("open in the outage", ctx).await.unwrap();
    m.log_step(open_id, NewStep::new("tool", "b"))
        .await
        .unwrap();
    let open = m.get_episode(open_id).await.unwrap();
    let pending = m.resilience().unwrap().pending_writes() as u64;
    assert_eq!(pending, 5, "every write was journaled");
    m.shutdown().await.unwrap();
    drop(e);

    // Cut the last entry short, as a torn tail would.
    let (last, whole) = {
        let journal = journal_of(dir.path());
        let entries = journal.read(None, 100).await.unwrap();
        let last = entries.last().unwrap().0;
        let whole = journal.raw_entry_blocking(last).unwrap().unwrap();
        journal
            .put_raw_entry_blocking(last, &whole[..whole.len() / 2])
            .unwrap();
        (last, whole)
    };

    let err = match open_embedded(dir.path(), config()).await {
        Ok(_) => panic!("the engine opened over a damaged journal"),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.message().contains(&format!("journal entry {last}")),
        "names the entry: {err}"
    );

    // Nothing was dropped or replayed past the damage.
    {
        let journal = journal_of(dir.path());
        assert_eq!(journal.depth().await.unwrap(), pending);
        assert_eq!(
            journal
                .read(None, (pending - 1) as usize)
                .await
                .unwrap()
                .len() as u64,
            pending - 1
        );
        journal.put_raw_entry_blocking(last, &whole).unwrap();
    }

    // Whole again: the open replays every acknowledged write.
    let e = open_embedded(dir.path(), config()).await.unwrap();
    assert_eq!(e.memory.resilience().unwrap().pending_writes(), 0);
    assert_eq!(e.memory.get_episode(done_id).await.unwrap(), done);
    assert_eq!(e.memory.get_episode(open_id).await.unwrap(), open);
    e.memory.shutdown().await.unwrap();
}
