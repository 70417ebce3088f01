//! The redb files: their tables, their layout versions, opening them, and running blocking
//! calls.
//!
//! The cache and the journal live in two files, so that the journal (small, and the only copy
//! of acknowledged writes until replayed) opens in milliseconds while the cache file (up to
//! its byte bound, read whole by the open-time integrity check) may open in the background.
//!
//! | file    | table           | key                                | value                                      |
//! |---------|-----------------|------------------------------------|--------------------------------------------|
//! | cache   | `episodes`      | the 16 id bytes (sort in id order) | an `Episode` record (`record::encode`)     |
//! | cache   | `episode_sizes` | the 16 id bytes                    | `u64`: byte length of that `episodes` record |
//! | journal | `journal`       | sequence number (`u64`)            | a `JournalEntry` record                    |
//! | both    | `meta`          | name (`&str`)                      | `u64`: layout version, last journal seq, open session |
//!
//! `episode_sizes` mirrors `episodes` key for key, changed in the same transactions, so that
//! opening the file rebuilds the cache's bookkeeping without reading the records. A cache file
//! is marked by `meta["layout"]`, a journal file by `meta["journal.layout"]`; neither opens as
//! the other. Cache layouts 1 and 2 held the journal too: such a file opens as a cache once its
//! journal is empty (its entries moved by [`split_legacy_file`]) and is upgraded to layout 3 in
//! its opening commit (layout 1 also gets its size table then).
//!
//! **Sessions (cache file).** Cache writes commit with `Durability::None`, and after a crash
//! redb rolls the file back to its last durable commit, which may hold an *older* version of
//! an entry that a later, non-durable put replaced, or an entry a later invalidation removed.
//! So the cache file records whether it is open: [`open_database`] sets the `session.open`
//! marker in its (durable) opening commit, and dropping the last [`OpenFile`] removes it in a
//! durable commit. A cache file found with the marker set was not closed (the process
//! crashed): its entries are dropped in the opening commit, so nothing a later write replaced
//! or removed is ever served again. Every journal commit is durable, so the journal file needs
//! no session.
//!
//! This module owns the table definitions and the only place a `Database` is created. It never
//! holds episode or journal logic, and no redb type it uses leaves the crate.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memory_core::{Error, Result};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use crate::error::{from_join, from_redb};
use crate::options::RedbOptions;

/// Cached episodes: id bytes -> encoded `Episode` record.
pub(crate) const EPISODES: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("episodes");

/// The journal: sequence number -> encoded `JournalEntry` record.
pub(crate) const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");

/// Record sizes of the cached episodes: id bytes -> byte length (mirrors `EPISODES`).
pub(crate) const SIZES: TableDefinition<&[u8; 16], u64> = TableDefinition::new("episode_sizes");

/// Small named counters.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// `meta` key of the layout version of a cache file.
pub(crate) const LAYOUT_KEY: &str = "layout";

/// The cache layout this build reads and writes (2: `episode_sizes` added; 3: the journal
/// moved to its own file).
pub(crate) const LAYOUT: u64 = 3;

/// `meta` key of the layout version of a journal file.
pub(crate) const JOURNAL_LAYOUT_KEY: &str = "journal.layout";

/// The journal layout this build reads and writes.
pub(crate) const JOURNAL_LAYOUT: u64 = 1;

/// `meta` key of the highest journal sequence number ever assigned (0 before the first).
pub(crate) const LAST_SEQ_KEY: &str = "journal.last_seq";

/// `meta` key present while a process has a cache file open (see the module docs).
pub(crate) const SESSION_KEY: &str = "session.open";

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Cache,
    Journal,
}

/// An open file: redb's `Database`, which it derefs to, and (for a cache file) the session it
/// ends when the last handle is dropped (after every handle and every blocking call using it).
pub(crate) struct OpenFile {
    db: Database,
    role: Role,
}

impl Deref for OpenFile {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

impl Drop for OpenFile {
    /// Mark a cache file's session closed in a durable commit, which also makes every earlier
    /// non-durable cache write durable. Blocks on an fsync, as redb's own close does. If it
    /// fails, the next open treats the file as crashed and starts with an empty cache: slower,
    /// never wrong.
    fn drop(&mut self) {
        if self.role == Role::Cache
            && let Err(e) = end_session(&self.db)
        {
            tracing::warn!(error = %e, "could not mark the redb cache file closed; the next open drops its entries");
        }
    }
}

fn end_session(db: &Database) -> Result<()> {
    let what = "close the file";
    let mut txn = db.begin_write().map_err(|e| from_redb(what, e))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| from_redb(what, e))?;
    txn.open_table(META)
        .map_err(|e| from_redb(what, e))?
        .remove(SESSION_KEY)
        .map_err(|e| from_redb(what, e))?;
    txn.commit().map_err(|e| from_redb(what, e))
}

/// Open (or create) a redb database with `options`' page cache and integrity check.
fn create(path: &Path, options: &RedbOptions, what: &str) -> Result<Database> {
    options.validate()?;
    Database::builder()
        .set_cache_size(options.page_cache_bytes)
        .set_check_integrity_on_open(options.check_integrity_on_open)
        .create(path)
        .map_err(|e| from_redb(what, e))
}

/// Open (or create) the file as `role`, check its layout, make sure every table of the role
/// exists (so that later read transactions never meet a missing table), and, for a cache file,
/// start a session: if the previous one did not end (a crash), drop every cache entry first
/// (see the module docs). Blocks: call it off the async runtime.
pub(crate) fn open_database(
    path: &Path,
    options: &RedbOptions,
    role: Role,
) -> Result<Arc<OpenFile>> {
    let what = format!("open {}", path.display());
    let db = create(path, options, &what)?;
    // Immediate (the default): the layout and session markers must be on disk before anything
    // relies on them.
    let txn = db.begin_write().map_err(|e| from_redb(&what, e))?;
    match role {
        Role::Cache => start_cache_session(&txn, path, &what)?,
        Role::Journal => check_journal_layout(&txn, &what)?,
    }
    txn.commit().map_err(|e| from_redb(&what, e))?;
    Ok(Arc::new(OpenFile { db, role }))
}

/// The layout `meta` records for a file opened as `role` (`None`: a new file), or `Storage`
/// if `meta` marks it as the other kind of file.
fn layout_of(meta: &redb::Table<&str, u64>, role: Role, what: &str) -> Result<Option<u64>> {
    let (own, other, kind, other_kind) = match role {
        Role::Cache => (LAYOUT_KEY, JOURNAL_LAYOUT_KEY, "cache", "journal"),
        Role::Journal => (JOURNAL_LAYOUT_KEY, LAYOUT_KEY, "journal", "cache"),
    };
    if meta.get(other).map_err(|e| from_redb(what, e))?.is_some() {
        return Err(Error::storage(format!(
            "{what}: this is a {other_kind} file, not a {kind} file"
        )));
    }
    Ok(meta
        .get(own)
        .map_err(|e| from_redb(what, e))?
        .map(|g| g.value()))
}

fn check_journal_layout(txn: &redb::WriteTransaction, what: &str) -> Result<()> {
    txn.open_table(JOURNAL).map_err(|e| from_redb(what, e))?;
    let mut meta = txn.open_table(META).map_err(|e| from_redb(what, e))?;
    match layout_of(&meta, Role::Journal, what)? {
        None => {
            meta.insert(JOURNAL_LAYOUT_KEY, JOURNAL_LAYOUT)
                .map_err(|e| from_redb(what, e))?;
            Ok(())
        }
        Some(JOURNAL_LAYOUT) => Ok(()),
        Some(other) => Err(Error::storage(format!(
            "{what}: journal layout {other} is not the layout this build reads ({JOURNAL_LAYOUT})"
        ))),
    }
}

fn start_cache_session(txn: &redb::WriteTransaction, path: &Path, what: &str) -> Result<()> {
    txn.open_table(EPISODES).map_err(|e| from_redb(what, e))?;
    txn.open_table(SIZES).map_err(|e| from_redb(what, e))?;
    let mut meta = txn.open_table(META).map_err(|e| from_redb(what, e))?;
    match layout_of(&meta, Role::Cache, what)? {
        None => {
            meta.insert(LAYOUT_KEY, LAYOUT)
                .map_err(|e| from_redb(what, e))?;
        }
        Some(LAYOUT) => {}
        Some(old @ (1 | 2)) => {
            let left = legacy_journal_len(txn, what)?;
            if left > 0 {
                return Err(Error::storage(format!(
                    "{what}: this cache file (layout {old}) still holds {left} journal entries; \
                     move them to a journal file first (memory_storage_redb::split_legacy_file)"
                )));
            }
            txn.delete_table(JOURNAL).map_err(|e| from_redb(what, e))?;
            meta.remove(LAST_SEQ_KEY).map_err(|e| from_redb(what, e))?;
            if old == 1 {
                let episodes = txn.open_table(EPISODES).map_err(|e| from_redb(what, e))?;
                let mut sizes = txn.open_table(SIZES).map_err(|e| from_redb(what, e))?;
                for row in episodes.iter().map_err(|e| from_redb(what, e))? {
                    let (key, value) = row.map_err(|e| from_redb(what, e))?;
                    sizes
                        .insert(key.value(), value.value().len() as u64)
                        .map_err(|e| from_redb(what, e))?;
                }
            }
            meta.insert(LAYOUT_KEY, LAYOUT)
                .map_err(|e| from_redb(what, e))?;
            tracing::info!(path = %path.display(), "redb cache file upgraded from layout {old} to {LAYOUT}");
        }
        Some(other) => {
            return Err(Error::storage(format!(
                "{what}: file layout {other} is not the layout this build reads ({LAYOUT})"
            )));
        }
    }
    let crashed = meta
        .insert(SESSION_KEY, 1)
        .map_err(|e| from_redb(what, e))?
        .is_some();
    drop(meta);
    if crashed {
        let dropped = txn
            .open_table(EPISODES)
            .map_err(|e| from_redb(what, e))?
            .len()
            .map_err(|e| from_redb(what, e))?;
        empty_cache_tables(txn).map_err(|e| from_redb(what, e))?;
        tracing::warn!(
            path = %path.display(),
            dropped,
            "the redb cache file was not closed (a crash?): its entries are dropped, since the \
             crash may have rolled them back to older versions"
        );
    }
    Ok(())
}

/// Entries in the `journal` table of a legacy (layout 1 or 2) cache file; 0 without one.
fn legacy_journal_len(txn: &redb::WriteTransaction, what: &str) -> Result<u64> {
    txn.open_table(JOURNAL)
        .map_err(|e| from_redb(what, e))?
        .len()
        .map_err(|e| from_redb(what, e))
}

/// Where [`split_legacy_file`] writes the journal file before renaming it into place.
fn partial_of(journal_path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.partial", journal_path.display()))
}

/// Move the journal of a legacy cache file (layout 1 or 2, which held cache and journal in
/// one file) at `cache_path` to a new journal file at `journal_path`, keeping sequence
/// numbers. Does nothing when `journal_path` exists or `cache_path` does not; returns the
/// number of entries moved. Call it before opening either file (the embedded opener does).
///
/// Crash-safe at every point: the entries are written to `<journal_path>.partial` and
/// fsync'd, then removed from the cache file in a durable commit, then the new file is renamed
/// into place (and the directory fsync'd). A crash before the removal redoes the copy; after
/// it, the next call only finishes the rename. **Blocks**: it opens (and checks) the cache
/// file, once.
pub fn split_legacy_file(cache_path: &Path, journal_path: &Path) -> Result<u64> {
    if journal_path.exists() || !cache_path.exists() {
        return Ok(0);
    }
    let what = format!("move the journal out of {}", cache_path.display());
    let partial = partial_of(journal_path);
    let legacy = create(cache_path, &RedbOptions::default(), &what)?;
    let (entries, last_seq) = {
        let txn = legacy.begin_read().map_err(|e| from_redb(&what, e))?;
        let entries = match txn.open_table(JOURNAL) {
            Ok(table) => table
                .iter()
                .map_err(|e| from_redb(&what, e))?
                .map(|row| {
                    let (seq, bytes) = row.map_err(|e| from_redb(&what, e))?;
                    Ok((seq.value(), bytes.value().to_vec()))
                })
                .collect::<Result<Vec<_>>>()?,
            Err(redb::TableError::TableDoesNotExist(_)) => Vec::new(),
            Err(e) => return Err(from_redb(&what, e)),
        };
        let last_seq = match txn.open_table(META) {
            Ok(meta) => meta
                .get(LAST_SEQ_KEY)
                .map_err(|e| from_redb(&what, e))?
                .map_or(0, |g| g.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(from_redb(&what, e)),
        };
        (entries, last_seq)
    };
    let moved = entries.len() as u64;
    if !entries.is_empty() {
        // Redo the copy from scratch: a partial file left by a crash may be incomplete.
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(|e| {
                Error::storage(format!("{what}: remove {}", partial.display())).with_source(e)
            })?;
        }
        {
            let journal = open_database(&partial, &RedbOptions::default(), Role::Journal)?;
            let txn = journal.begin_write().map_err(|e| from_redb(&what, e))?;
            {
                let mut table = txn.open_table(JOURNAL).map_err(|e| from_redb(&what, e))?;
                for (seq, bytes) in &entries {
                    table
                        .insert(*seq, bytes.as_slice())
                        .map_err(|e| from_redb(&what, e))?;
                }
                txn.open_table(META)
                    .map_err(|e| from_redb(&what, e))?
                    .insert(LAST_SEQ_KEY, last_seq)
                    .map_err(|e| from_redb(&what, e))?;
            }
            txn.commit().map_err(|e| from_redb(&what, e))?;
        }
        let txn = legacy.begin_write().map_err(|e| from_redb(&what, e))?;
        txn.delete_table(JOURNAL).map_err(|e| from_redb(&what, e))?;
        txn.commit().map_err(|e| from_redb(&what, e))?;
    }
    drop(legacy);
    if partial.exists() {
        std::fs::rename(&partial, journal_path).map_err(|e| {
            Error::storage(format!("{what}: rename {}", partial.display())).with_source(e)
        })?;
        if let Some(dir) = journal_path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| {
                    Error::storage(format!("{what}: fsync the directory")).with_source(e)
                })?;
        }
        tracing::info!(moved, from = %cache_path.display(), to = %journal_path.display(), "journal moved to its own file");
    }
    Ok(moved)
}

/// Drop every cache entry (`episodes` and `episode_sizes`) in `txn`.
pub(crate) fn empty_cache_tables(
    txn: &redb::WriteTransaction,
) -> std::result::Result<(), redb::Error> {
    txn.delete_table(EPISODES)?;
    txn.delete_table(SIZES)?;
    txn.open_table(EPISODES)?;
    txn.open_table(SIZES)?;
    Ok(())
}

/// Run blocking redb work on tokio's blocking pool and map a failed task into the engine's
/// error. The closure owns what it needs (an `Arc<OpenFile>`, copied arguments).
pub(crate) async fn blocking<T, F>(context: &'static str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| from_join(context, e))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    #[test]
    fn a_layout_1_file_gets_its_size_table_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        let records: [([u8; 16], Vec<u8>); 2] = [([1; 16], vec![7; 40]), ([2; 16], vec![9; 3])];
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut episodes = txn.open_table(EPISODES).unwrap();
                for (key, bytes) in &records {
                    episodes.insert(key, bytes.as_slice()).unwrap();
                }
                txn.open_table(JOURNAL).unwrap();
                txn.open_table(META).unwrap().insert(LAYOUT_KEY, 1).unwrap();
            }
            txn.commit().unwrap();
        }
        let file = open_database(&path, &RedbOptions::default(), Role::Cache).unwrap();
        let txn = file.begin_read().unwrap();
        let layout = txn
            .open_table(META)
            .unwrap()
            .get(LAYOUT_KEY)
            .unwrap()
            .unwrap()
            .value();
        assert_eq!(layout, LAYOUT);
        let sizes = txn.open_table(SIZES).unwrap();
        assert_eq!(sizes.len().unwrap(), 2);
        for (key, bytes) in &records {
            assert_eq!(sizes.get(key).unwrap().unwrap().value(), bytes.len() as u64);
        }
    }

    /// A layout-2 file holding one cached record and journal entries 3, 4, 5 (last seq 5).
    fn legacy_file(path: &Path) {
        let db = Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            txn.open_table(EPISODES)
                .unwrap()
                .insert(&[1; 16], [7u8; 40].as_slice())
                .unwrap();
            txn.open_table(SIZES).unwrap().insert(&[1; 16], 40).unwrap();
            let mut journal = txn.open_table(JOURNAL).unwrap();
            for seq in 3..=5u64 {
                journal.insert(seq, [seq as u8; 9].as_slice()).unwrap();
            }
            let mut meta = txn.open_table(META).unwrap();
            meta.insert(LAYOUT_KEY, 2).unwrap();
            meta.insert(LAST_SEQ_KEY, 5).unwrap();
        }
        txn.commit().unwrap();
    }

    fn journal_rows(path: &Path) -> (Vec<(u64, Vec<u8>)>, u64) {
        let file = open_database(path, &RedbOptions::default(), Role::Journal).unwrap();
        let txn = file.begin_read().unwrap();
        let rows = txn
            .open_table(JOURNAL)
            .unwrap()
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value(), v.value().to_vec())
            })
            .collect();
        let last = txn
            .open_table(META)
            .unwrap()
            .get(LAST_SEQ_KEY)
            .unwrap()
            .map_or(0, |g| g.value());
        (rows, last)
    }

    /// The cache and journal file paths of a data directory.
    fn file_pair(dir: &Path) -> (PathBuf, PathBuf) {
        (dir.join(crate::CACHE_FILE), dir.join(crate::JOURNAL_FILE))
    }

    fn expected_rows() -> Vec<(u64, Vec<u8>)> {
        (3..=5u64).map(|seq| (seq, vec![seq as u8; 9])).collect()
    }

    #[test]
    fn a_legacy_file_gives_up_its_journal_then_opens_as_a_cache_keeping_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, journal) = file_pair(dir.path());
        legacy_file(&cache);
        let err = open_database(&cache, &RedbOptions::default(), Role::Cache)
            .err()
            .expect("journal entries left");
        assert!(err.message().contains("3 journal entries"), "{err}");
        assert!(err.message().contains("split_legacy_file"), "{err}");

        assert_eq!(split_legacy_file(&cache, &journal).unwrap(), 3);
        assert_eq!(journal_rows(&journal), (expected_rows(), 5));
        assert!(!dir.path().join("journal.redb.partial").exists());
        assert_eq!(split_legacy_file(&cache, &journal).unwrap(), 0, "done once");

        let file = open_database(&cache, &RedbOptions::default(), Role::Cache).unwrap();
        let txn = file.begin_read().unwrap();
        assert_eq!(
            txn.open_table(SIZES).unwrap().len().unwrap(),
            1,
            "cache kept"
        );
        let meta = txn.open_table(META).unwrap();
        assert_eq!(meta.get(LAYOUT_KEY).unwrap().unwrap().value(), LAYOUT);
        assert!(meta.get(LAST_SEQ_KEY).unwrap().is_none());
        assert!(matches!(
            txn.open_table(JOURNAL),
            Err(redb::TableError::TableDoesNotExist(_))
        ));
    }

    #[test]
    fn a_split_cut_short_by_a_crash_completes_on_the_next_call() {
        // Crash while copying: a partial journal file, the entries still in the cache file.
        let dir = tempfile::tempdir().unwrap();
        let (cache, journal) = file_pair(dir.path());
        let partial = partial_of(&journal);
        legacy_file(&cache);
        std::fs::write(&partial, b"half a file").unwrap();
        assert_eq!(split_legacy_file(&cache, &journal).unwrap(), 3);
        assert_eq!(journal_rows(&journal), (expected_rows(), 5));

        // Crash after the entries left the cache file, before the rename.
        std::fs::rename(&journal, &partial).unwrap();
        assert_eq!(split_legacy_file(&cache, &journal).unwrap(), 0);
        assert_eq!(
            journal_rows(&journal),
            (expected_rows(), 5),
            "finished the rename"
        );
    }

    #[test]
    fn a_cache_file_and_a_journal_file_never_open_as_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, journal) = file_pair(dir.path());
        drop(open_database(&cache, &RedbOptions::default(), Role::Cache).unwrap());
        drop(open_database(&journal, &RedbOptions::default(), Role::Journal).unwrap());
        let err = open_database(&cache, &RedbOptions::default(), Role::Journal)
            .err()
            .expect("a cache file");
        assert!(err.message().contains("cache file"), "{err}");
        let err = open_database(&journal, &RedbOptions::default(), Role::Cache)
            .err()
            .expect("a journal file");
        assert!(err.message().contains("journal file"), "{err}");
    }
}
