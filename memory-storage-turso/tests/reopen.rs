//! Data survives closing (or dropping) the store and opening the file again, bit for bit, and
//! the reopened file is in WAL mode at the current schema version.

use memory_core::conformance::{completed, sample_episode, sample_steps};
use memory_core::store::{DurableStore, ListRequest};
use memory_storage_turso::{SCHEMA_VERSION, TursoOptions, TursoStore};

#[tokio::test]
async fn everything_written_reads_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let ns = "reopen";

    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    let in_progress = sample_episode(ns);
    store.create_episode(&in_progress).await.unwrap();
    store
        .append_steps(in_progress.id, &sample_steps(0, 4))
        .await
        .unwrap();
    let mut done = completed(sample_episode(ns), sample_steps(0, 3));
    done.reward = -0.0;
    done.embedding = Some(vec![f32::MIN_POSITIVE, -0.0, 3.25]);
    store.create_episode(&done).await.unwrap();
    let deleted = sample_episode(ns);
    store.create_episode(&deleted).await.unwrap();
    assert!(store.delete_episode(deleted.id).await.unwrap());
    let before = store.get_episode(in_progress.id).await.unwrap().unwrap();
    let summaries = store.scan_summaries(None, 100).await.unwrap();
    store.close().await.unwrap();

    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    assert_eq!(
        store.get_episode(in_progress.id).await.unwrap(),
        Some(before)
    );
    let got = store.get_episode(done.id).await.unwrap().unwrap();
    assert_eq!(
        got.reward.to_bits(),
        (-0.0f64).to_bits(),
        "-0.0 keeps its sign"
    );
    assert_eq!(got, done);
    assert_eq!(store.get_episode(deleted.id).await.unwrap(), None);
    assert_eq!(store.scan_summaries(None, 100).await.unwrap(), summaries);
    let page = store
        .list_episodes(&ListRequest {
            namespace: ns.into(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);

    // Dropping without `close` also finishes the queued writes before the file is released.
    let late = sample_episode(ns);
    store.create_episode(&late).await.unwrap();
    drop(store);

    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get_episode(late.id).await.unwrap(), Some(late));
    store.close().await.unwrap();

    // The file is a WAL database at the current schema version.
    let db = libsql::Builder::new_local(&path).build().await.unwrap();
    let conn = db.connect().unwrap();
    let mut rows = conn.query("PRAGMA journal_mode", ()).await.unwrap();
    let mode = rows.next().await.unwrap().unwrap().get_value(0).unwrap();
    assert_eq!(mode, libsql::Value::Text("wal".into()));
    drop(rows);
    let mut rows = conn
        .query("SELECT version FROM schema_version", ())
        .await
        .unwrap();
    let version = rows.next().await.unwrap().unwrap().get_value(0).unwrap();
    assert_eq!(version, libsql::Value::Integer(i64::from(SCHEMA_VERSION)));
}
