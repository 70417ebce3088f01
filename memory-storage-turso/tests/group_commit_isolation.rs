//! Group commit: a failing operation in a batch fails alone; the others in the same batch
//! commit. The batch is made deterministic by bounds, not timing: `max_batch_ops` is the number
//! of operations sent and `max_batch_delay` is generous, so the writer closes the batch exactly
//! when the last one arrives. The writer's counters show that they shared one transaction.

use std::time::Duration;

use memory_core::ErrorKind;
use memory_core::conformance::{sample_episode, sample_steps};
use memory_core::store::DurableStore;
use memory_storage_turso::{TursoOptions, TursoStore};

fn batching(ops: usize) -> TursoOptions {
    TursoOptions {
        max_batch_ops: ops,
        max_batch_delay: Duration::from_secs(10),
        ..TursoOptions::default()
    }
}

#[tokio::test]
async fn a_conflicting_create_fails_alone_while_its_batch_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let existing = sample_episode("batch");
    {
        let store = TursoStore::open_local(&path, TursoOptions::default())
            .await
            .unwrap();
        store.create_episode(&existing).await.unwrap();
        store.close().await.unwrap();
    }

    let store = TursoStore::open_local(&path, batching(5)).await.unwrap();
    let before = store.writer_stats();
    let a = sample_episode("batch");
    let b = sample_episode("batch");
    let c = sample_episode("batch");
    let mut duplicate = existing.clone();
    duplicate.description = "must not replace the stored episode".into();
    let steps = sample_steps(0, 3);
    let (ra, rdup, rb, rsteps, rc) = tokio::join!(
        store.create_episode(&a),
        store.create_episode(&duplicate),
        store.create_episode(&b),
        store.append_steps(existing.id, &steps),
        store.create_episode(&c),
    );
    ra.unwrap();
    rb.unwrap();
    rc.unwrap();
    rsteps.unwrap();
    assert_eq!(rdup.unwrap_err().kind(), ErrorKind::Conflict);

    let after = store.writer_stats();
    assert_eq!(
        after.batches - before.batches,
        1,
        "all five shared one commit"
    );
    assert_eq!(after.operations - before.operations, 4);
    assert_eq!(after.failed_operations - before.failed_operations, 1);
    assert_eq!(after.failed_batches, before.failed_batches);

    for e in [&a, &b, &c] {
        assert_eq!(store.get_episode(e.id).await.unwrap().as_ref(), Some(e));
    }
    let stored = store.get_episode(existing.id).await.unwrap().unwrap();
    assert_eq!(
        stored.description, existing.description,
        "the conflict changed nothing"
    );
    assert_eq!(
        stored.steps, steps,
        "the append in the same batch committed"
    );
    store.close().await.unwrap();

    // And it is all on disk.
    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    for e in [&a, &b, &c] {
        assert_eq!(store.get_episode(e.id).await.unwrap().as_ref(), Some(e));
    }
    store.close().await.unwrap();
}

#[tokio::test]
async fn two_creates_of_one_id_in_one_batch_let_exactly_one_win() {
    let dir = tempfile::tempdir().unwrap();
    let store = TursoStore::open_local(dir.path().join("memory.db"), batching(3))
        .await
        .unwrap();
    let first = sample_episode("batch-dup");
    let mut second = first.clone();
    second.description = "second".into();
    let other = sample_episode("batch-dup");
    let (r1, r2, r3) = tokio::join!(
        store.create_episode(&first),
        store.create_episode(&second),
        store.create_episode(&other),
    );
    r3.unwrap();
    let winner = match (r1, r2) {
        (Ok(()), Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::Conflict);
            &first
        }
        (Err(e), Ok(())) => {
            assert_eq!(e.kind(), ErrorKind::Conflict);
            &second
        }
        (r1, r2) => panic!("exactly one create must win: {r1:?} {r2:?}"),
    };
    assert_eq!(
        store.get_episode(first.id).await.unwrap().as_ref(),
        Some(winner)
    );
    assert_eq!(
        store.get_episode(other.id).await.unwrap().as_ref(),
        Some(&other)
    );
    assert_eq!(store.writer_stats().batches, 1);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_append_in_a_batch_leaves_no_partial_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let e = sample_episode("batch-append");
    {
        let store = TursoStore::open_local(&path, TursoOptions::default())
            .await
            .unwrap();
        store.create_episode(&e).await.unwrap();
        store.close().await.unwrap();
    }
    let store = TursoStore::open_local(&path, batching(2)).await.unwrap();
    // The second append restarts at seq 0 after the first took 0..2: a conflict, rolled back
    // to its savepoint alone.
    let good = sample_steps(0, 2);
    let bad = sample_steps(0, 3);
    let (r_good, r_bad) = tokio::join!(
        store.append_steps(e.id, &good),
        store.append_steps(e.id, &bad),
    );
    r_good.unwrap();
    assert_eq!(r_bad.unwrap_err().kind(), ErrorKind::Conflict);
    let stored = store.get_episode(e.id).await.unwrap().unwrap();
    assert_eq!(stored.steps, good);
    let summary = store.scan_summaries(None, 10).await.unwrap();
    assert_eq!(
        summary.items[0].step_count, 2,
        "the summary saw only the good append"
    );
    store.close().await.unwrap();
}
