//! Schema migrations: down then up again round-trips; data written before going down reads
//! back unchanged after going up (the v2 summaries are rebuilt from the steps, the v3 version
//! index is rebuilt, the v4 change mark comes back); down to 0
//! empties the file; unknown targets are refused.

use memory_core::conformance::{completed, sample_episode, sample_steps};
use memory_core::store::DurableStore;
use memory_core::{ErrorKind, NewStep, Step, time};
use memory_storage_turso::{MIGRATIONS, SCHEMA_VERSION, SchemaChange, TursoOptions, TursoStore};

async fn table_names(path: &std::path::Path) -> Vec<String> {
    names_of(path, "table").await
}

async fn index_names(path: &std::path::Path) -> Vec<String> {
    names_of(path, "index").await
}

async fn names_of(path: &std::path::Path, kind: &str) -> Vec<String> {
    let db = libsql::Builder::new_local(path)
        .build()
        .await
        .expect("test setup");
    let conn = db.connect().expect("test setup");
    let mut rows = conn
        .query(
            "SELECT name FROM sqlite_master WHERE type = ?1 ORDER BY name",
            [kind],
        )
        .await
        .expect("test setup");
    let mut names = Vec::new();
    while let Some(row) = rows.next().await.expect("test setup") {
        names.push(row.get::<String>(0).expect("test setup"));
    }
    names
}

#[tokio::test]
async fn down_and_up_again_keeps_every_episode_and_summary() {
    assert_eq!(MIGRATIONS.len() as u32, SCHEMA_VERSION);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");

    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    let mut episodes = Vec::new();
    let plain = sample_episode("migrate");
    store.create_episode(&plain).await.unwrap();
    episodes.push(plain);
    let with_steps = sample_episode("migrate");
    store.create_episode(&with_steps).await.unwrap();
    // Tools repeat and interleave, so first-use order matters in the rebuilt summary.
    let steps: Vec<Step> = ["b", "a", "b", "c", "a"]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Step::from_new(
                NewStep::new(*t, "{}").with_success(i != 2),
                i as u32,
                time::now(),
            )
        })
        .collect();
    store.append_steps(with_steps.id, &steps).await.unwrap();
    episodes.push(store.get_episode(with_steps.id).await.unwrap().unwrap());
    let done = completed(sample_episode("migrate"), sample_steps(0, 7));
    store.create_episode(&done).await.unwrap();
    episodes.push(done);
    let summaries = store.scan_summaries(None, 100).await.unwrap();
    assert_eq!(summaries.items[1].tools, vec!["b", "a", "c"]);
    store.close().await.unwrap();

    let change = TursoStore::migrate_local(&path, 1).await.unwrap();
    assert_eq!(
        change,
        SchemaChange {
            from: SCHEMA_VERSION,
            to: 1
        }
    );
    let tables = table_names(&path).await;
    assert!(!tables.contains(&"summaries".to_string()), "{tables:?}");
    assert!(tables.contains(&"episodes".to_string()), "{tables:?}");

    // Opening runs the pending up migration.
    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    for e in &episodes {
        assert_eq!(store.get_episode(e.id).await.unwrap().as_ref(), Some(e));
    }
    assert_eq!(store.scan_summaries(None, 100).await.unwrap(), summaries);
    // And the store keeps working on the migrated file.
    store
        .append_steps(episodes[1].id, &sample_steps(5, 1))
        .await
        .unwrap();
    store.close().await.unwrap();

    // Explicit up one step at a time (the version index of migration 3 and the change mark
    // of migration 4 come and go with them), and a no-op at the current version.
    assert_eq!(
        TursoStore::migrate_local(&path, 1).await.unwrap(),
        SchemaChange {
            from: SCHEMA_VERSION,
            to: 1
        }
    );
    assert!(
        !index_names(&path)
            .await
            .contains(&"episodes_id_version".to_string())
    );
    assert_eq!(
        TursoStore::migrate_local(&path, 2).await.unwrap(),
        SchemaChange { from: 1, to: 2 }
    );
    assert_eq!(
        TursoStore::migrate_local(&path, 3).await.unwrap(),
        SchemaChange { from: 2, to: 3 }
    );
    assert!(
        index_names(&path)
            .await
            .contains(&"episodes_id_version".to_string())
    );
    assert!(!table_names(&path).await.contains(&"change_mark".into()));
    assert_eq!(
        TursoStore::migrate_local(&path, 4).await.unwrap(),
        SchemaChange { from: 3, to: 4 }
    );
    assert!(table_names(&path).await.contains(&"change_mark".into()));
    assert_eq!(
        TursoStore::migrate_local(&path, SCHEMA_VERSION)
            .await
            .unwrap(),
        SchemaChange {
            from: SCHEMA_VERSION,
            to: SCHEMA_VERSION
        }
    );
    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    let summary = store
        .scan_summaries(None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|s| s.id == episodes[1].id)
        .unwrap();
    assert_eq!(summary.step_count, 6);
    store.close().await.unwrap();
}

#[tokio::test]
async fn down_to_zero_drops_everything_and_up_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    let e = sample_episode("zero");
    store.create_episode(&e).await.unwrap();
    store.close().await.unwrap();

    assert_eq!(
        TursoStore::migrate_local(&path, 0).await.unwrap(),
        SchemaChange {
            from: SCHEMA_VERSION,
            to: 0
        }
    );
    assert_eq!(table_names(&path).await, vec!["schema_version".to_string()]);

    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get_episode(e.id).await.unwrap(), None);
    store.create_episode(&e).await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn an_unknown_target_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let err = TursoStore::migrate_local(&path, SCHEMA_VERSION + 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains(&(SCHEMA_VERSION + 1).to_string()),
        "{err}"
    );
    assert_eq!(
        TursoStore::migrate_local(&path, SCHEMA_VERSION)
            .await
            .unwrap(),
        SchemaChange {
            from: SCHEMA_VERSION,
            to: SCHEMA_VERSION
        }
    );
}
