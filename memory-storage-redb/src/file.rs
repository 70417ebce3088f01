//! The redb file: its tables, its layout version, opening it, and running blocking calls.
//!
//! One file holds three tables:
//!
//! | table      | key                               | value                                   |
//! |------------|-----------------------------------|-----------------------------------------|
//! | `episodes` | the 16 id bytes (sort in id order) | an `Episode` record (`record::encode`)  |
//! | `journal`  | sequence number (`u64`)           | a `JournalEntry` record                 |
//! | `meta`     | name (`&str`)                     | `u64`: layout version, last journal seq |
//!
//! This module owns the table definitions and the only place a `Database` is created. It never
//! holds episode or journal logic, and no redb type it uses leaves the crate.

use std::path::Path;
use std::sync::Arc;

use memory_core::{Error, Result};
use redb::{Database, ReadableTable, TableDefinition};

use crate::error::{from_join, from_redb};
use crate::options::RedbOptions;

/// Cached episodes: id bytes -> encoded `Episode` record.
pub(crate) const EPISODES: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("episodes");

/// The journal: sequence number -> encoded `JournalEntry` record.
pub(crate) const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");

/// Small named counters.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// `meta` key of the layout version of this file (the table set above).
pub(crate) const LAYOUT_KEY: &str = "layout";

/// The layout this build reads and writes.
pub(crate) const LAYOUT: u64 = 1;

/// `meta` key of the highest journal sequence number ever assigned (0 before the first).
pub(crate) const LAST_SEQ_KEY: &str = "journal.last_seq";

/// Open (or create) the file, check its layout and make sure every table exists, so that
/// later read transactions never meet a missing table. Blocks: call it off the async runtime.
pub(crate) fn open_database(path: &Path, options: &RedbOptions) -> Result<Arc<Database>> {
    options.validate()?;
    let what = format!("open {}", path.display());
    let db = Database::builder()
        .set_cache_size(options.page_cache_bytes)
        .set_check_integrity_on_open(options.check_integrity_on_open)
        .create(path)
        .map_err(|e| from_redb(&what, e))?;

    // Immediate (the default): the layout marker must be on disk before anything relies on it.
    let txn = db.begin_write().map_err(|e| from_redb(&what, e))?;
    {
        txn.open_table(EPISODES).map_err(|e| from_redb(&what, e))?;
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
            Some(other) => {
                return Err(Error::storage(format!(
                    "{what}: file layout {other} is not the layout this build reads ({LAYOUT})"
                )));
            }
        }
    }
    txn.commit().map_err(|e| from_redb(&what, e))?;
    Ok(Arc::new(db))
}

/// Run blocking redb work on tokio's blocking pool and map a failed task into the engine's
/// error. The closure owns what it needs (an `Arc<Database>`, copied arguments).
pub(crate) async fn blocking<T, F>(context: &'static str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| from_join(context, e))?
}
