//! The shared durable-store conformance suite, on a temp file, in every commit mode.

use std::time::Duration;

use memory_core::conformance;
use memory_storage_turso::{CommitMode, Durability, TursoOptions, TursoStore};

async fn run_suite(options: TursoOptions) {
    let dir = tempfile::tempdir().expect("test setup");
    let store = TursoStore::open_local(dir.path().join("memory.db"), options)
        .await
        .expect("test setup");
    conformance::durable_store(&store).await;
    store.close().await.expect("test setup");
}

#[tokio::test]
async fn group_commit_store_conforms() {
    run_suite(TursoOptions::default()).await;
}

#[tokio::test]
async fn per_operation_commit_store_conforms() {
    run_suite(TursoOptions {
        commit_mode: CommitMode::PerOperation,
        ..TursoOptions::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_durability_zero_delay_store_conforms() {
    run_suite(TursoOptions {
        durability: Durability::Normal,
        max_batch_delay: Duration::ZERO,
        read_connections: 1,
        ..TursoOptions::default()
    })
    .await;
}

#[tokio::test]
async fn a_reopened_store_with_data_still_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    conformance::durable_store(&store).await;
    store.close().await.unwrap();
    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    conformance::durable_store(&store).await;
    store.close().await.unwrap();
}
