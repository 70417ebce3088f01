//! The change mark is kept by the file itself: a write made outside this crate (another
//! program on the same file, as the sqlite3 shell would) moves it, and reopening the file
//! without writing does not.

use memory_core::conformance::sample_episode;
use memory_core::store::DurableStore;
use memory_storage_turso::{TursoOptions, TursoStore};

#[tokio::test]
async fn a_write_by_another_program_moves_the_mark_and_a_reopen_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    let e = sample_episode("mark");
    store.create_episode(&e).await.unwrap();
    let before = store.change_mark().await.unwrap();
    store.close().await.unwrap();

    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    assert_eq!(store.change_mark().await.unwrap(), before);
    store.close().await.unwrap();

    for sql in [
        "UPDATE episodes SET description = 'edited by hand'",
        "UPDATE summaries SET step_count = step_count + 1",
        "DELETE FROM episodes",
    ] {
        let db = libsql::Builder::new_local(&path).build().await.unwrap();
        let conn = db.connect().unwrap();
        let before = {
            let store = TursoStore::open_local(&path, TursoOptions::default())
                .await
                .unwrap();
            let mark = store.change_mark().await.unwrap();
            store.close().await.unwrap();
            mark
        };
        assert_eq!(conn.execute(sql, ()).await.unwrap(), 1, "{sql}");
        drop(conn);
        drop(db);
        let store = TursoStore::open_local(&path, TursoOptions::default())
            .await
            .unwrap();
        assert_ne!(
            store.change_mark().await.unwrap(),
            before,
            "the mark did not move after `{sql}`"
        );
        store.close().await.unwrap();
    }
}
