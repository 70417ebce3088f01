//! Index snapshots on the embedded default (libsql file + redb file): a clean shutdown writes
//! a snapshot that the next open loads instead of rebuilding; writes made after the last
//! snapshot (the engine dropped without shutdown, as a kill leaves it) are caught up from the
//! durable store, and so are changes another program makes to the file between two runs (the
//! file's change mark moves); a damaged snapshot is refused with its reason and the index is
//! rebuilt.
//! Every open must answer queries exactly as an index rebuilt from the durable store does.

use std::path::Path;

use memory_core::conformance::completed;
use memory_core::retrieval::RetrievalQuery;
use memory_core::store::DurableStore;
use memory_core::{
    Compared, Completion, EpisodeId, EpisodeUpdate, IndexOpen, IndexSource, MemoryConfig, Outcome,
    SelfLearningMemory, TaskContext,
};
use memory_storage_turso::{TursoOptions, TursoStore};
use memory_tests::{Embedded, open_embedded, open_embedded_snapshots};

const WORDS: [&str; 8] = [
    "refund", "lamp", "order", "exchange", "keyboard", "cancel", "address", "invoice",
];

async fn record(m: &SelfLearningMemory, i: usize) -> EpisodeId {
    let desc = format!(
        "{} the {} and {} {i}",
        WORDS[i % 8],
        WORDS[(i / 8) % 8],
        WORDS[(i * 3 + 1) % 8]
    );
    let ctx = TaskContext::new(
        "agent",
        format!("domain{}", i % 3),
        format!("type{}", i % 2),
    )
    .with_tags([WORDS[i % 5]]);
    let id = m.start_episode(desc, ctx).await.expect("start");
    m.complete_episode(
        id,
        Completion::from(Outcome::success("ok")).with_reward(0.5),
    )
    .await
    .expect("complete");
    id
}

fn queries() -> Vec<RetrievalQuery> {
    let mut q: Vec<RetrievalQuery> = WORDS
        .iter()
        .map(|w| RetrievalQuery::new("agent", format!("{w} lamp")).limit(7))
        .collect();
    q.push(
        RetrievalQuery::new("agent", "refund order")
            .domain("domain1")
            .limit(3),
    );
    q
}

/// What every query returns: ids, versions and the time-independent score terms (recency
/// moves with the clock between two opens).
/// Each query's hits: id, version and the bits of the lexical plus feedback score.
type Answers = Vec<Vec<(EpisodeId, u64, u64)>>;

async fn answers(m: &SelfLearningMemory) -> Answers {
    let mut out = Vec::new();
    for q in queries() {
        let hits = m.retrieve(q).await.expect("retrieve");
        out.push(
            hits.iter()
                .map(|h| {
                    let b = h.breakdown;
                    (
                        h.episode.id,
                        h.episode.version,
                        (b.lexical + b.feedback).to_bits(),
                    )
                })
                .collect(),
        );
    }
    out
}

/// The answers of an index rebuilt from the durable store (no snapshot), for comparison.
async fn rebuilt_answers(dir: &Path) -> Answers {
    let e = open_embedded(dir, MemoryConfig::default())
        .await
        .expect("open");
    assert_eq!(
        e.memory.index_open().source,
        IndexSource::RebuiltNoSnapshotConfigured
    );
    let a = answers(&e.memory).await;
    e.memory.shutdown().await.expect("shutdown");
    a
}

/// Open `dir` with snapshots again; the index must come from the snapshot.
async fn reopened_from_snapshot(dir: &Path) -> (Embedded, IndexOpen) {
    let e = open_embedded_snapshots(dir, MemoryConfig::default())
        .await
        .expect("open");
    let open = e.memory.index_open().clone();
    assert_eq!(open.source, IndexSource::Snapshot, "{open:?}");
    (e, open)
}

/// Shut `e` down, then check that an index rebuilt from the durable store answers `expected`.
async fn shut_down_matching_a_rebuild(e: Embedded, dir: &Path, expected: &Answers) {
    e.memory.shutdown().await.expect("shutdown");
    drop(e);
    assert_eq!(&rebuilt_answers(dir).await, expected);
}

fn sorted(mut v: Vec<(EpisodeId, u64)>) -> Vec<(EpisodeId, u64)> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_leaves_a_snapshot_the_next_open_uses() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    assert_eq!(e.memory.index_open().source, IndexSource::RebuiltNoSnapshot);
    for i in 0..60 {
        record(&e.memory, i).await;
    }
    let before = answers(&e.memory).await;
    e.memory.shutdown().await.unwrap();
    drop(e);

    let (e, open) = reopened_from_snapshot(dir.path()).await;
    assert_eq!((open.episodes, open.caught_up, open.removed), (60, 0, 0));
    assert_eq!(open.compared, Compared::Unchanged, "{open:?}");
    assert_eq!(answers(&e.memory).await, before);
    shut_down_matching_a_rebuild(e, dir.path(), &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_by_another_program_after_a_clean_shutdown_is_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(record(&e.memory, i).await);
    }
    e.memory.shutdown().await.unwrap();
    drop(e);

    // Another program on the same file, between two runs of the engine.
    let store = TursoStore::open_local(dir.path().join("memory.db"), TursoOptions::default())
        .await
        .unwrap();
    assert!(store.delete_episode(ids[5]).await.unwrap());
    store.close().await.unwrap();

    let (e, open) = reopened_from_snapshot(dir.path()).await;
    assert_eq!(open.compared, Compared::ChangesSince, "{open:?}");
    assert_eq!((open.episodes, open.caught_up, open.removed), (39, 0, 1));
    assert_eq!(e.memory.index().contains(ids[5]).unwrap(), None);
    let after = answers(&e.memory).await;
    shut_down_matching_a_rebuild(e, dir.path(), &after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_open_reads_each_shard_file_only_when_the_shard_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    for i in 0..60 {
        record(&e.memory, i).await;
    }
    let before = answers(&e.memory).await;
    let stats = e.memory.index().stats();
    e.memory.shutdown().await.unwrap();
    drop(e);

    // Under a memory budget nothing loads in the background, so what is loaded shows.
    let config = MemoryConfig {
        memory_budget_bytes: Some(1 << 30),
        ..MemoryConfig::default()
    };
    let e = open_embedded_snapshots(dir.path(), config).await.unwrap();
    assert_eq!(e.memory.index_open().source, IndexSource::Snapshot);
    let m = e.memory.metrics();
    assert_eq!((m.index_spilled_shards, m.indexed_episodes), (3, 60));
    assert_eq!(e.memory.index().stats(), stats, "served from the manifest");
    // A query of one domain loads that shard only.
    let hits = e
        .memory
        .retrieve(RetrievalQuery::new("agent", "refund order").domain("domain1"))
        .await
        .unwrap();
    assert!(!hits.is_empty());
    assert_eq!(e.memory.metrics().index_spilled_shards, 2);
    assert_eq!(answers(&e.memory).await, before);
    assert_eq!(e.memory.metrics().index_spilled_shards, 0);
    e.memory.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_with_nothing_written_since_the_last_snapshot_needs_no_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
            .await
            .unwrap();
        for i in 0..40 {
            record(&e.memory, i).await;
        }
        e.memory.write_snapshot().await.unwrap();
        answers(&e.memory).await
        // Dropped without shutdown, as a kill leaves it; reads only since the snapshot.
    };
    let (e, open) = reopened_from_snapshot(dir.path()).await;
    assert_eq!(open.compared, Compared::Unchanged, "{open:?}");
    assert_eq!((open.episodes, open.caught_up, open.removed), (40, 0, 0));
    assert_eq!(answers(&e.memory).await, before);
    shut_down_matching_a_rebuild(e, dir.path(), &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_the_last_snapshot_are_caught_up_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (deleted, updated) = {
        let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
            .await
            .unwrap();
        let m = &e.memory;
        let mut ids = Vec::new();
        for i in 0..40 {
            ids.push(record(m, i).await);
        }
        let stats = m.write_snapshot().await.unwrap();
        assert_eq!(stats.episodes, 40);
        assert_eq!(m.snapshot_writes().unwrap().written, 1);
        // After the snapshot: 15 new episodes, one deleted, one updated.
        for i in 40..55 {
            record(m, i).await;
        }
        assert!(m.delete_episode(ids[3]).await.unwrap());
        let current = m.get_episode(ids[7]).await.unwrap();
        let update = EpisodeUpdate {
            tags: Some(vec!["reviewed".into()]),
            ..EpisodeUpdate::default()
        };
        m.update_episode(ids[7], current.version, update)
            .await
            .unwrap();
        (ids[3], ids[7])
        // Dropped without shutdown: no snapshot at exit, as after a kill.
    };

    let (e, open) = reopened_from_snapshot(dir.path()).await;
    assert_eq!(open.compared, Compared::ChangesSince, "{open:?}");
    assert_eq!((open.caught_up, open.removed), (16, 1), "{open:?}");
    assert_eq!(open.episodes, 54);
    let index = e.memory.index();
    assert_eq!(index.contains(deleted).unwrap(), None);
    let durable_version = e.memory.get_episode(updated).await.unwrap().version;
    assert_eq!(index.contains(updated).unwrap(), Some(durable_version));
    let after_catch_up = answers(&e.memory).await;
    let versions = sorted(index.versions().unwrap());
    e.memory.shutdown().await.unwrap();
    drop(e);

    let e = open_embedded(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    assert_eq!(sorted(e.memory.index().versions().unwrap()), versions);
    shut_down_matching_a_rebuild(e, dir.path(), &after_catch_up).await;
}

/// The durable store's files in `dir`: `memory.db` and any `-wal`/`-shm` beside it.
fn durable_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .expect("test setup")
        .map(|entry| entry.expect("test setup").path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("memory.db"))
        })
        .collect()
}

/// Copy the durable store's files from `from` to `to`, replacing those `to` had: a backup,
/// or its restore.
fn copy_durable_files(from: &Path, to: &Path) {
    for path in durable_files(to) {
        std::fs::remove_file(path).expect("test setup");
    }
    for path in durable_files(from) {
        let name = path.file_name().expect("test setup");
        std::fs::copy(&path, to.join(name)).expect("test setup");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_store_restored_from_an_older_backup_and_written_since_is_compared_whole() {
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    for i in 0..30 {
        record(&e.memory, i).await;
    }
    e.memory.shutdown().await.unwrap();
    drop(e);
    copy_durable_files(dir.path(), backup.path());

    // Ten more episodes, in the snapshot; then a kill.
    let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    for i in 30..40 {
        record(&e.memory, i).await;
    }
    e.memory.write_snapshot().await.unwrap();
    drop(e);

    // The backup comes back, and another program writes to it past the snapshot's place in
    // the history: the store's history no longer passes through the snapshot's mark.
    copy_durable_files(backup.path(), dir.path());
    let store = TursoStore::open_local(dir.path().join("memory.db"), TursoOptions::default())
        .await
        .unwrap();
    for i in 100..160 {
        let ctx = TaskContext::new("agent", format!("domain{}", i % 3), "type0");
        let started = memory_core::Episode::new(
            EpisodeId::new(),
            format!("{} restored {i}", WORDS[i % 8]),
            ctx,
            memory_core::time::now(),
        );
        store
            .create_episode(&completed(started, Vec::new()))
            .await
            .unwrap();
    }
    store.close().await.unwrap();

    let (e, open) = reopened_from_snapshot(dir.path()).await;
    assert_eq!(open.compared, Compared::AllVersions, "{open:?}");
    assert_eq!((open.episodes, open.removed), (90, 10), "{open:?}");
    let after = answers(&e.memory).await;
    shut_down_matching_a_rebuild(e, dir.path(), &after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_shard_file_is_refused_when_loaded_and_the_index_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    for i in 0..30 {
        record(&e.memory, i).await;
    }
    let before = answers(&e.memory).await;
    e.memory.shutdown().await.unwrap();
    drop(e);

    let snap = dir.path().join("index-snapshot");
    let shard = std::fs::read_dir(&snap)
        .unwrap()
        .map(|f| f.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("shard-")
        })
        .unwrap();
    let mut bytes = std::fs::read(&shard).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&shard, bytes).unwrap();

    let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    // Open reads only the manifest: the damage shows when the shard is loaded (by a query
    // or the background load), and the index is then rebuilt from the durable store.
    assert_eq!(e.memory.index_open().source, IndexSource::Snapshot);
    assert_eq!(e.memory.index_open().episodes, 30);
    assert_eq!(answers(&e.memory).await, before);
    assert_eq!(e.memory.metrics().index_rebuilds, 1);
    assert_eq!(e.memory.metrics().index_spilled_shards, 0);
    // Shutdown writes a good snapshot again.
    e.memory.shutdown().await.unwrap();
    drop(e);
    let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    assert_eq!(e.memory.index_open().source, IndexSource::Snapshot);
    assert_eq!(answers(&e.memory).await, before);
    assert_eq!(e.memory.metrics().index_rebuilds, 0);
    e.memory.shutdown().await.unwrap();
    drop(e);

    // A damaged manifest is refused at open, and the index rebuilt before serving.
    let manifest = snap.join("manifest");
    let mut bytes = std::fs::read(&manifest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&manifest, bytes).unwrap();
    let e = open_embedded_snapshots(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    match &e.memory.index_open().source {
        IndexSource::RebuiltSnapshotRefused(why) => {
            assert!(why.contains("checksum"), "{why}")
        }
        other => panic!("a damaged manifest was used: {other:?}"),
    }
    assert_eq!(answers(&e.memory).await, before);
    e.memory.shutdown().await.unwrap();
}
