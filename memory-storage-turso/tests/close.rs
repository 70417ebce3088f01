//! `close` finishes every write queued before it, stops the writer, and makes later calls fail
//! with `ShuttingDown`; it is idempotent.

use std::sync::Arc;

use memory_core::ErrorKind;
use memory_core::conformance::sample_episode;
use memory_core::store::DurableStore;
use memory_storage_turso::{TursoOptions, TursoStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_drains_queued_writes_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let store = Arc::new(
        TursoStore::open_local(&path, TursoOptions::default())
            .await
            .unwrap(),
    );
    let episodes: Vec<_> = (0..40).map(|_| sample_episode("close")).collect();
    let mut tasks = Vec::new();
    for e in episodes.clone() {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move { store.create_episode(&e).await }));
    }
    store.close().await.unwrap();
    let mut acknowledged = Vec::new();
    for (t, e) in tasks.into_iter().zip(&episodes) {
        match t.await.unwrap() {
            Ok(()) => acknowledged.push(e.clone()),
            Err(err) => assert_eq!(err.kind(), ErrorKind::ShuttingDown, "{err}"),
        }
    }
    let err = store.get_episode(episodes[0].id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShuttingDown);
    let err = store
        .create_episode(&sample_episode("close"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShuttingDown);
    store.close().await.unwrap();

    // Exactly the acknowledged writes are on disk.
    let reopened = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    for e in &episodes {
        let got = reopened.get_episode(e.id).await.unwrap();
        let was_acknowledged = acknowledged.iter().any(|a| a.id == e.id);
        assert_eq!(got.is_some(), was_acknowledged, "episode {}", e.id);
    }
    reopened.close().await.unwrap();
}
