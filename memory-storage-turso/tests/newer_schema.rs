//! A file written by a newer build (schema version above `SCHEMA_VERSION`) is refused with an
//! error naming both versions, and left byte for byte as it was.

use std::collections::BTreeMap;
use std::path::Path;

use memory_core::ErrorKind;
use memory_core::conformance::sample_episode;
use memory_core::store::DurableStore;
use memory_storage_turso::{SCHEMA_VERSION, TursoOptions, TursoStore};

const NEWER: i64 = 99;

/// Every file in `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("test setup")
        .map(|entry| {
            let entry = entry.expect("test setup");
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).expect("test setup"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_the_file_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    store
        .create_episode(&sample_episode("newer"))
        .await
        .unwrap();
    store.close().await.unwrap();
    drop(store);
    {
        // What a future build would leave behind.
        let db = libsql::Builder::new_local(&path).build().await.unwrap();
        let conn = db.connect().unwrap();
        conn.execute(
            "UPDATE schema_version SET version = ?1",
            vec![libsql::Value::Integer(NEWER)],
        )
        .await
        .unwrap();
    }
    let before = snapshot(dir.path());
    assert!(before.contains_key("memory.db"));

    let err = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&NEWER.to_string()) && message.contains(&SCHEMA_VERSION.to_string()),
        "the error names both versions: {message}"
    );
    assert!(!err.is_transient());

    let err = TursoStore::migrate_local(&path, 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");

    assert_eq!(
        snapshot(dir.path()),
        before,
        "no byte of the directory changed"
    );
}
