//! Crash consistency on a real process crash: a child process (this binary re-executed) writes
//! cache entries (`Durability::None`) and journal entries (fsync'd, in the journal's own file),
//! then replaces one cached entry with a newer version and invalidates another (after a
//! `flush` made the older state durable), reporting each acknowledged write on stdout; once it reports
//! `done` it waits, with the file still open, and the parent kills it (SIGKILL, no clean close).
//! The parent then reopens both files and checks that every acknowledged journal entry is there in
//! order and that the cache brings back nothing a later write had replaced or removed: redb
//! rolls non-durable commits back to the last durable one, which may hold older versions, so a
//! file the previous process did not close comes back with an empty cache.
//!
//! This file has its own `main` (`harness = false` in Cargo.toml) so that it can run itself as
//! the child.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use common::{episode, temp_file};
use memory_core::EpisodeId;
use memory_core::store::{CacheStore, Journal, JournalEntry};
use memory_storage_redb::{RedbCache, RedbJournal, RedbOptions};

/// Set in the child's environment to the path of the file to write.
const CHILD_ENV: &str = "MEMORY_STORAGE_REDB_CRASH_CHILD";

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match std::env::var(CHILD_ENV) {
        Ok(path) => rt.block_on(child(path)),
        Err(_) => {
            rt.block_on(parent());
            println!("test crash::killed_mid_workload_loses_nothing_acknowledged ... ok");
        }
    }
}

/// Write, acknowledge on stdout, then wait (file open) until killed.
async fn child(path: String) {
    use std::io::Write;
    let cache = RedbCache::open(&path, RedbOptions::default()).expect("child open");
    let journal = RedbJournal::open(journal_path(&path)).expect("child open journal");
    let mut out = std::io::stdout().lock();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let e = episode("crash");
        cache.put(&e).await.expect("put");
        writeln!(out, "cached {}", e.id).expect("stdout");
        ids.push(e.id);
    }
    for _ in 0..10 {
        let id = EpisodeId::new();
        let seq = journal
            .append(&JournalEntry::Delete(id))
            .await
            .expect("append");
        writeln!(out, "journaled {seq} {id}").expect("stdout");
    }
    // Make the older state of these two durable.
    cache.flush().await.expect("flush");
    let mut newer = cache
        .get(replaced_id(&ids))
        .await
        .expect("get")
        .expect("cached");
    newer.version += 1;
    newer.reflection = Some("newer".into());
    cache.put(&newer).await.expect("put newer");
    writeln!(out, "replaced {} {}", newer.id, newer.version).expect("stdout");
    cache.invalidate(ids[1]).await.expect("invalidate");
    writeln!(out, "invalidated {}", ids[1]).expect("stdout");
    for _ in 0..20 {
        let e = episode("crash-late");
        cache.put(&e).await.expect("put");
        writeln!(out, "late {}", e.id).expect("stdout");
    }
    writeln!(out, "done").expect("stdout");
    out.flush().expect("flush");
    // Block with the file open until the parent kills this process. Stdin is a pipe the
    // parent never writes to; if the parent dies first, EOF ends the wait.
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    drop(cache);
}

/// The journal file beside the cache file `path`.
fn journal_path(path: impl AsRef<std::path::Path>) -> std::path::PathBuf {
    path.as_ref().with_extension("journal")
}

/// The cached entry the child replaces with a newer version.
fn replaced_id(cached: &[EpisodeId]) -> EpisodeId {
    cached[0]
}

async fn parent() {
    let (_dir, path) = temp_file();
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .env(CHILD_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run child");
    let stdout = BufReader::new(child.stdout.take().expect("child stdout"));
    let (mut cached, mut journaled, mut late) = (Vec::new(), Vec::new(), Vec::new());
    let (mut replaced, mut invalidated) = (None, None);
    let mut done = false;
    for line in stdout.lines() {
        let line = line.expect("child output");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["done"] => {
                done = true;
                break;
            }
            ["cached", id] => cached.push(id.parse::<EpisodeId>().expect("id")),
            ["journaled", seq, id] => journaled.push((
                seq.parse::<u64>().expect("seq"),
                id.parse::<EpisodeId>().expect("id"),
            )),
            ["late", id] => late.push(id.parse::<EpisodeId>().expect("id")),
            ["replaced", id, version] => {
                replaced = Some((
                    id.parse::<EpisodeId>().expect("id"),
                    version.parse::<u64>().expect("version"),
                ));
            }
            ["invalidated", id] => invalidated = Some(id.parse::<EpisodeId>().expect("id")),
            _ => panic!("unexpected child output: {line}"),
        }
    }
    assert!(done, "the child finished its writes");
    child.kill().expect("kill child");
    let status = child.wait().expect("reap child");
    assert!(!status.success(), "the child died by the kill: {status}");
    assert_eq!(
        (cached.len(), journaled.len(), late.len()),
        (20, 10, 20),
        "child finished its work"
    );

    let cache = RedbCache::open(&path, RedbOptions::default()).expect("reopen after crash");
    assert_eq!(
        cache.stats().corrupt,
        0,
        "no damaged record after the crash"
    );

    let journal = RedbJournal::open(journal_path(&path)).expect("reopen the journal");
    let read = journal.read(None, 100).await.expect("read journal");
    let expected: Vec<_> = journaled
        .iter()
        .map(|(seq, id)| (*seq, JournalEntry::Delete(*id)))
        .collect();
    assert_eq!(read, expected, "every acknowledged journal entry, in order");

    // Nothing a later write replaced or removed comes back.
    let (replaced, version) = replaced.expect("the child replaced an entry");
    assert_eq!(replaced, replaced_id(&cached));
    if let Some(got) = cache.get(replaced).await.expect("get replaced") {
        assert_eq!(got.version, version, "never the version the child replaced");
    }
    let invalidated = invalidated.expect("the child invalidated an entry");
    assert_eq!(
        cache.get(invalidated).await.expect("get invalidated"),
        None,
        "an invalidated entry stays gone"
    );
    // How: the file was not closed, so the cache comes back empty.
    for id in cached.iter().chain(&late) {
        assert_eq!(cache.get(*id).await.expect("get"), None, "{id}");
    }
    assert_eq!(
        cache.stats().entries,
        0,
        "the cache starts empty after a crash"
    );

    let next = journal
        .append(&JournalEntry::Delete(EpisodeId::new()))
        .await
        .expect("append after crash");
    assert!(
        next > journaled[9].0,
        "sequence numbers continue after a crash"
    );
}
