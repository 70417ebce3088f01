//! Many concurrent writers on a multi-thread runtime: every write succeeds (no "database is
//! locked"), every episode holds all its steps in order, and the writer grouped commits.

use std::sync::Arc;

use memory_core::conformance::{sample_episode, sample_steps};
use memory_core::store::DurableStore;
use memory_storage_turso::{TursoOptions, TursoStore};

const TASKS: usize = 16;
const APPENDS: u32 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_tasks_of_fifty_appends_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let store = Arc::new(
        TursoStore::open_local(&path, TursoOptions::default())
            .await
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let e = sample_episode("concurrent");
            store.create_episode(&e).await?;
            for seq in 0..APPENDS {
                store.append_steps(e.id, &sample_steps(seq, 1)).await?;
                if seq % 10 == 0 {
                    // Reads run alongside the writes.
                    let now = store.get_episode(e.id).await?.expect("present");
                    assert_eq!(now.steps.len(), seq as usize + 1);
                }
            }
            Ok::<_, memory_core::Error>(e.id)
        }));
    }
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(id) => ids.push(id),
            Err(e) => errors.push(e.to_string()),
        }
    }
    assert!(errors.is_empty(), "every write succeeds: {errors:?}");

    for id in &ids {
        let e = store.get_episode(*id).await.unwrap().unwrap();
        assert_eq!(e.steps.len(), APPENDS as usize);
        assert!(e.steps.iter().enumerate().all(|(i, s)| s.seq as usize == i));
    }
    let stats = store.writer_stats();
    let ops = (TASKS * (APPENDS as usize + 1)) as u64;
    assert_eq!(stats.operations, ops);
    assert_eq!(stats.failed_operations + stats.failed_batches, 0);
    assert!(
        stats.batches < ops,
        "concurrent writes share commits: {} batches for {ops} operations",
        stats.batches
    );
    assert_eq!(
        stats.batch_sizes.iter().sum::<u64>(),
        stats.batches,
        "every commit is in the batch-size histogram"
    );
    assert!(stats.largest_batch > 1, "{stats:?}");
    assert_eq!(DurableStore::write_stats(&store), Some(stats));
    println!("{} operations in {} commits", ops, stats.batches);
    store.close().await.unwrap();

    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    for id in &ids {
        let e = store.get_episode(*id).await.unwrap().unwrap();
        assert_eq!(e.steps.len(), APPENDS as usize, "durable after reopen");
    }
    store.close().await.unwrap();
}
