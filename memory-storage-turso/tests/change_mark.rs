//! The change mark and the history behind it are kept by the file itself: a write made
//! outside this crate (another program on the same file, as the sqlite3 shell would) moves
//! the mark and is listed by `changed_since`, reopening the file without writing does not
//! move it, and the history keeps its last `CHANGES_KEPT` rows.

use std::path::Path;

use memory_core::conformance::sample_episode;
use memory_core::store::{ChangeMark, DurableStore};
use memory_storage_turso::{CHANGES_KEPT, TursoOptions, TursoStore};

/// Open the file at `path`, read its change mark and what `changed_since` lists after
/// `since` (when given), close it.
async fn read_marks(
    path: &Path,
    since: Option<ChangeMark>,
) -> (ChangeMark, Option<Vec<memory_core::EpisodeId>>) {
    let store = TursoStore::open_local(path, TursoOptions::default())
        .await
        .expect("test setup");
    let mark = store.change_mark().await.expect("test setup");
    let changed = match since {
        Some(since) => store.changed_since(since).await.expect("test setup"),
        None => None,
    };
    store.close().await.expect("test setup");
    (mark, changed)
}

#[tokio::test]
async fn a_write_by_another_program_moves_the_mark_and_is_listed_and_a_reopen_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    let e = sample_episode("mark");
    store.create_episode(&e).await.unwrap();
    let before = store.change_mark().await.unwrap();
    store.close().await.unwrap();

    assert_eq!(read_marks(&path, None).await.0, before);

    for sql in [
        "UPDATE episodes SET description = 'edited by hand'",
        "UPDATE summaries SET step_count = step_count + 1",
        "DELETE FROM episodes",
    ] {
        let db = libsql::Builder::new_local(&path).build().await.unwrap();
        let conn = db.connect().unwrap();
        let (before, _) = read_marks(&path, None).await;
        assert_eq!(conn.execute(sql, ()).await.unwrap(), 1, "{sql}");
        drop(conn);
        drop(db);
        let (after, changed) = read_marks(&path, Some(before)).await;
        assert_ne!(after, before, "the mark did not move after `{sql}`");
        assert_eq!(changed, Some(vec![e.id]), "after `{sql}`");
    }
}

/// The triggers keep the last `CHANGES_KEPT` rows of the history: a mark older than that is
/// forgotten (`changed_since` says so with `None`), a newer one still lists every write.
#[tokio::test]
async fn the_history_keeps_its_last_rows_and_forgets_older_marks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let (start, _) = read_marks(&path, None).await;
    let half = CHANGES_KEPT as i64 / 2 + 10;
    let db = libsql::Builder::new_local(&path).build().await.unwrap();
    let conn = db.connect().unwrap();
    // Version-7 ids: the seventh byte's high nibble.
    let inserted = conn
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO episodes (id, namespace, domain, task_type, tags, description,
                                   reward_bits, reward, started_at, version)
             SELECT unhex(hex(randomblob(6)) || '70' || hex(randomblob(9))), 'bulk', 'd', 't', '[]', 'x',
                    0, 0.0, i, 1
               FROM n",
            [half],
        )
        .await
        .unwrap();
    assert_eq!(inserted, half as u64);
    let (middle, _) = read_marks(&path, None).await;
    assert_eq!(middle.seq, start.seq + half as u64);
    let updated = conn
        .execute("UPDATE episodes SET version = version + 1", ())
        .await
        .unwrap();
    assert_eq!(updated, half as u64);
    let kept: i64 = conn
        .query("SELECT count(*) FROM changes", ())
        .await
        .unwrap()
        .next()
        .await
        .unwrap()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(kept as u64, CHANGES_KEPT);
    drop(conn);
    drop(db);

    let store = TursoStore::open_local(&path, TursoOptions::default())
        .await
        .unwrap();
    assert_eq!(store.changed_since(start).await.unwrap(), None);
    let since_middle = store.changed_since(middle).await.unwrap().unwrap();
    assert_eq!(since_middle.len(), half as usize, "every episode, once");
    store.close().await.unwrap();
}
