//! A redb file damaged on disk (cut short, or bytes flipped inside a record) is refused when
//! the engine opens, with `Corrupt` naming the file: nothing in it is served. The same file
//! holds the journal, so the engine never opens over it silently; once the journal is known to
//! be empty, moving the file aside recovers every episode from the durable store.

use std::path::Path;

use memory_core::{Episode, ErrorKind, MemoryConfig, NewStep, Outcome, TaskContext};
use memory_tests::{Embedded, open_embedded};

/// Record `n` completed episodes (descriptions `"{prefix} {i}"`), shut down cleanly, and
/// return them as stored.
async fn recorded(dir: &Path, prefix: &str, n: usize) -> Vec<Episode> {
    let e = open_embedded(dir, MemoryConfig::default())
        .await
        .expect("open");
    let mut done = Vec::new();
    for i in 0..n {
        let id = e
            .memory
            .start_episode(format!("{prefix} {i}"), TaskContext::new("ns", "d", "t"))
            .await
            .expect("start");
        e.memory
            .log_step(id, NewStep::new("tool", format!("input {i}")))
            .await
            .expect("step");
        done.push(
            e.memory
                .complete_episode(id, Outcome::success("ok"))
                .await
                .expect("complete"),
        );
    }
    let journal = e.memory.resilience().expect("a journal").pending_writes();
    assert_eq!(journal, 0, "nothing waits in the journal");
    e.memory.shutdown().await.expect("shutdown");
    done
}

/// The error of an open that must fail.
async fn open_error(dir: &Path) -> memory_core::Error {
    match open_embedded(dir, MemoryConfig::default()).await {
        Ok(Embedded { memory, .. }) => {
            memory.shutdown().await.expect("shutdown");
            panic!("the engine opened over a damaged cache file")
        }
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_file_cut_short_is_refused_and_moving_it_aside_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let done = recorded(dir.path(), "cut", 20).await;
    let path = dir.path().join("cache.redb");
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 4096).unwrap();
    drop(file);

    let err = open_error(dir.path()).await;
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.message().contains("cache.redb"),
        "names the file: {err}"
    );

    // The operator's move once the journal is known empty (it was: clean shutdown, depth 0).
    std::fs::rename(&path, dir.path().join("cache.redb.damaged")).unwrap();
    let e = open_embedded(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    for want in &done {
        assert_eq!(&e.memory.get_episode(want.id).await.unwrap(), want);
    }
    assert_eq!(e.memory.metrics().cache.corrupt, 0);
    e.memory.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_file_with_flipped_bytes_in_a_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let marker = "MARKER-torn-cache-file-MARKER";
    recorded(dir.path(), marker, 3).await;
    let path = dir.path().join("cache.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    let m = marker.as_bytes();
    let hits: Vec<usize> = (0..bytes.len() - m.len())
        .filter(|&i| &bytes[i..i + m.len()] == m)
        .collect();
    assert!(!hits.is_empty(), "the cached records are in the file");
    for i in hits {
        bytes[i + 3] ^= 0x01;
    }
    std::fs::write(&path, &bytes).unwrap();

    let err = open_error(dir.path()).await;
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.message().contains("cache.redb"),
        "names the file: {err}"
    );
}
