//! Schema migrations: down then up again round-trips; data written before going down reads
//! back unchanged after going up (the v2 summaries are rebuilt from the steps, the v3 version
//! index is rebuilt, the v4 change mark and the v5 change log come back); down to 0
//! empties the file; unknown targets are refused; every migration runs the same after
//! libsql's client-side parser (what remote and replica modes send).

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

    // Explicit up one step at a time (the version index of migration 3, the change mark of
    // migration 4 and the change log replacing it in migration 5 come and go with them), and
    // a no-op at the current version.
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
        TursoStore::migrate_local(&path, 5).await.unwrap(),
        SchemaChange { from: 4, to: 5 }
    );
    let tables = table_names(&path).await;
    assert!(
        tables.contains(&"changes".into()) && !tables.contains(&"change_mark".into()),
        "{tables:?}"
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

/// Each statement of `sql` as libsql's remote and replica modes send it: split by the
/// client-side parser and printed back from its syntax tree.
fn as_sent_remotely(sql: &str) -> Vec<String> {
    use fallible_iterator::FallibleIterator;
    let mut parser = libsql_sqlite3_parser::lexer::sql::Parser::new(sql.as_bytes());
    let mut out = Vec::new();
    while let Some(cmd) = parser
        .next()
        .unwrap_or_else(|e| panic!("the client-side parser refused: {e}\n{sql}"))
    {
        out.push(cmd.to_string());
    }
    out
}

/// The schema objects of `path`: kind and name, in order.
async fn objects(path: &std::path::Path) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for kind in ["table", "index", "trigger"] {
        for name in names_of(path, kind).await {
            all.push((kind.to_string(), name));
        }
    }
    all
}

#[tokio::test]
async fn every_migration_runs_the_same_as_the_client_side_parser_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let (direct, parsed) = (dir.path().join("direct.db"), dir.path().join("parsed.db"));
    let db = libsql::Builder::new_local(&parsed).build().await.unwrap();
    let conn = db.connect().unwrap();
    for (i, m) in MIGRATIONS.iter().enumerate() {
        let statements = as_sent_remotely(m.up);
        assert!(!statements.is_empty(), "{}", m.name);
        for statement in &statements {
            conn.execute(statement, ()).await.unwrap_or_else(|e| {
                panic!("migration {} up, as printed back: {e}\n{statement}", m.name)
            });
        }
        let version = i as u32 + 1;
        TursoStore::migrate_local(&direct, version).await.unwrap();
        let (want, got) = (objects(&direct).await, objects(&parsed).await);
        // The direct file also holds the version table.
        let want: Vec<_> = want
            .into_iter()
            .filter(|(_, n)| n != "schema_version")
            .collect();
        assert_eq!(got, want, "after migration {} up", m.name);
    }
    // The triggers of the last migration work as printed back: a write reaches the log.
    let count = |sql: &'static str| {
        let conn = conn.clone();
        async move {
            let mut rows = conn.query(sql, ()).await.unwrap();
            let n: i64 = rows.next().await.unwrap().unwrap().get(0).unwrap();
            n
        }
    };
    let before = count("SELECT count(*) FROM changes").await;
    conn.execute(
        "INSERT INTO episodes (id, namespace, domain, task_type, tags, description,
                               reward_bits, reward, started_at, version)
         VALUES (unhex('0190c0de000070000000000000000001'), 'n', 'd', 't', '[]', 'x', 0, 0.0, 1, 1)",
        (),
    )
    .await
    .unwrap();
    assert_eq!(count("SELECT count(*) FROM changes").await, before + 1);
    for m in MIGRATIONS.iter().rev() {
        for statement in as_sent_remotely(m.down) {
            conn.execute(&statement, ()).await.unwrap_or_else(|e| {
                panic!(
                    "migration {} down, as printed back: {e}\n{statement}",
                    m.name
                )
            });
        }
    }
    assert_eq!(objects(&parsed).await, Vec::new());
}
