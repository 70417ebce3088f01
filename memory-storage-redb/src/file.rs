//! The redb file: its tables, its layout version, opening it, and running blocking calls.
//!
//! One file holds four tables:
//!
//! | table           | key                                | value                                               |
//! |-----------------|------------------------------------|-----------------------------------------------------|
//! | `episodes`      | the 16 id bytes (sort in id order) | an `Episode` record (`record::encode`)              |
//! | `episode_sizes` | the 16 id bytes                    | `u64`: byte length of that `episodes` record        |
//! | `journal`       | sequence number (`u64`)            | a `JournalEntry` record                             |
//! | `meta`          | name (`&str`)                      | `u64`: layout version, last journal seq, open session |
//!
//! `episode_sizes` mirrors `episodes` key for key, changed in the same transactions, so that
//! opening the file rebuilds the cache's bookkeeping without reading the records (layout 2;
//! a layout-1 file gets it built once, at its first open by this build).
//!
//! **Sessions.** Cache writes commit with `Durability::None`, and after a crash redb rolls the
//! file back to its last durable commit (a journal append, say), which may hold an *older*
//! version of an entry that a later, non-durable put replaced, or an entry a later
//! invalidation removed. So the file records whether it is open: [`open_database`] sets the
//! `session.open` marker in its (durable) opening commit, and dropping the last [`OpenFile`]
//! removes it in a durable commit. A file found with the marker set was not closed (the process
//! crashed): its cache entries are dropped in the opening commit, so nothing a later write
//! replaced or removed is ever served again. The journal, fsync'd entry by entry, is kept.
//!
//! This module owns the table definitions and the only place a `Database` is created. It never
//! holds episode or journal logic, and no redb type it uses leaves the crate.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use memory_core::{Error, Result};
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};

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

/// `meta` key of the layout version of this file (the table set above).
pub(crate) const LAYOUT_KEY: &str = "layout";

/// The layout this build reads and writes (2: `episode_sizes` added).
pub(crate) const LAYOUT: u64 = 2;

/// `meta` key of the highest journal sequence number ever assigned (0 before the first).
pub(crate) const LAST_SEQ_KEY: &str = "journal.last_seq";

/// `meta` key present while a process has the file open (see the module docs).
pub(crate) const SESSION_KEY: &str = "session.open";

/// The open file: redb's `Database`, which it derefs to, and the session it ends when the last
/// handle is dropped (after every cache and journal handle and every blocking call using it).
pub(crate) struct OpenFile {
    db: Database,
}

impl Deref for OpenFile {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

impl Drop for OpenFile {
    /// Mark the session closed in a durable commit, which also makes every earlier non-durable
    /// cache write durable. Blocks on an fsync, as redb's own close does. If it fails, the next
    /// open treats the file as crashed and starts with an empty cache: slower, never wrong.
    fn drop(&mut self) {
        if let Err(e) = end_session(&self.db) {
            tracing::warn!(error = %e, "could not mark the redb file closed; the next open drops its cache entries");
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

/// Open (or create) the file, check its layout, make sure every table exists (so that later
/// read transactions never meet a missing table), and start a session: if the previous one
/// did not end (a crash), drop every cache entry first (see the module docs). Blocks: call it
/// off the async runtime.
pub(crate) fn open_database(path: &Path, options: &RedbOptions) -> Result<Arc<OpenFile>> {
    options.validate()?;
    let what = format!("open {}", path.display());
    let db = Database::builder()
        .set_cache_size(options.page_cache_bytes)
        .set_check_integrity_on_open(options.check_integrity_on_open)
        .create(path)
        .map_err(|e| from_redb(&what, e))?;

    // Immediate (the default): the layout and session markers must be on disk before anything
    // relies on them.
    let txn = db.begin_write().map_err(|e| from_redb(&what, e))?;
    let crashed = {
        txn.open_table(EPISODES).map_err(|e| from_redb(&what, e))?;
        txn.open_table(SIZES).map_err(|e| from_redb(&what, e))?;
        txn.open_table(JOURNAL).map_err(|e| from_redb(&what, e))?;
        let mut meta = txn.open_table(META).map_err(|e| from_redb(&what, e))?;
        let layout = meta
            .get(LAYOUT_KEY)
            .map_err(|e| from_redb(&what, e))?
            .map(|g| g.value());
        match layout {
            None => {
                meta.insert(LAYOUT_KEY, LAYOUT)
                    .map_err(|e| from_redb(&what, e))?;
            }
            Some(LAYOUT) => {}
            Some(1) => {
                let episodes = txn.open_table(EPISODES).map_err(|e| from_redb(&what, e))?;
                let mut sizes = txn.open_table(SIZES).map_err(|e| from_redb(&what, e))?;
                for row in episodes.iter().map_err(|e| from_redb(&what, e))? {
                    let (key, value) = row.map_err(|e| from_redb(&what, e))?;
                    sizes
                        .insert(key.value(), value.value().len() as u64)
                        .map_err(|e| from_redb(&what, e))?;
                }
                meta.insert(LAYOUT_KEY, LAYOUT)
                    .map_err(|e| from_redb(&what, e))?;
                tracing::info!(path = %path.display(), "redb file upgraded to layout {LAYOUT}");
            }
            Some(other) => {
                return Err(Error::storage(format!(
                    "{what}: file layout {other} is not the layout this build reads ({LAYOUT})"
                )));
            }
        }
        meta.insert(SESSION_KEY, 1)
            .map_err(|e| from_redb(&what, e))?
            .is_some()
    };
    if crashed {
        let dropped = txn
            .open_table(EPISODES)
            .map_err(|e| from_redb(&what, e))?
            .len()
            .map_err(|e| from_redb(&what, e))?;
        empty_cache_tables(&txn).map_err(|e| from_redb(&what, e))?;
        tracing::warn!(
            path = %path.display(),
            dropped,
            "the redb file was not closed (a crash?): its cache entries are dropped, since the \
             crash may have rolled them back to older versions; the journal is kept"
        );
    }
    txn.commit().map_err(|e| from_redb(&what, e))?;
    Ok(Arc::new(OpenFile { db }))
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
        let file = open_database(&path, &RedbOptions::default()).unwrap();
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
}
