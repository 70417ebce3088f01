//! [`RedbJournal`]: the fsync'd journal of writes accepted while the durable store is away.
//!
//! It owns its own redb file: the `journal` table and the persisted last sequence number in
//! `meta`. Every write
//! commits with `Durability::Immediate` (an fsync) before returning, because an entry here is
//! the only copy of an acknowledged write until it is replayed. It never skips a damaged entry:
//! `read` stops with `Corrupt` naming the sequence number. It never reuses a sequence number,
//! even after the journal is emptied and the file reopened.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use memory_core::record::{self, RecordKind};
use memory_core::store::{Journal, JournalEntry, JournalSeq};
use memory_core::{Error, Result};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::error::from_redb;
use crate::file::{JOURNAL, LAST_SEQ_KEY, META, OpenFile, Role, blocking, open_database};
use crate::options::RedbOptions;

/// The journal in its own redb file.
///
/// Cheap to clone; clones share one open file. Sequence numbers start at 1 and the highest
/// one ever assigned is stored in the same transaction as its entry.
///
/// ```
/// use memory_core::EpisodeId;
/// use memory_core::store::{Journal, JournalEntry};
/// use memory_storage_redb::RedbJournal;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> memory_core::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let journal = RedbJournal::open(dir.path().join("journal.redb"))?;
/// let seq = journal.append(&JournalEntry::Delete(EpisodeId::new())).await?; // fsync'd
/// assert_eq!(journal.read(None, 10).await?.len(), 1);
/// journal.remove_through(seq).await?;
/// assert_eq!(journal.depth().await?, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedbJournal {
    db: Arc<OpenFile>,
}

impl std::fmt::Debug for RedbJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbJournal").finish_non_exhaustive()
    }
}

/// Decode the journal entry `seq`; damage is `Corrupt` naming `seq`.
fn decode_entry(seq: JournalSeq, bytes: &[u8]) -> Result<JournalEntry> {
    record::decode(RecordKind::JournalEntry, bytes)
        .map_err(|err| Error::corrupt(format!("journal entry {seq} is damaged")).with_source(err))
}

/// Settings of every journal file: redb's integrity check always runs at open (the file is
/// small, and its entries are the only copy of acknowledged writes), with a small page cache.
fn journal_options() -> RedbOptions {
    RedbOptions {
        page_cache_bytes: 4 * 1024 * 1024,
        check_integrity_on_open: true,
        ..RedbOptions::default()
    }
}

impl RedbJournal {
    /// Open (or create) the journal file at `path`, checking every page of it.
    ///
    /// **Blocks** the calling thread on file I/O; from async code prefer
    /// [`RedbJournal::open_async`]. Fails with `Storage` if the file is already open in this
    /// process or is a cache file, `Corrupt` if redb finds it damaged. A cache file of an
    /// earlier layout that still holds journal entries is moved with
    /// [`crate::split_legacy_file`] first.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let db = open_database(path.as_ref(), &journal_options(), Role::Journal)?;
        Ok(Self { db })
    }

    /// [`RedbJournal::open`] on tokio's blocking pool.
    pub async fn open_async(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        blocking("open journal", move || Self::open(path)).await
    }

    /// Append `bytes` as the next entry, durably. Blocking.
    fn append_bytes(db: &Database, bytes: &[u8]) -> Result<JournalSeq> {
        let what = "append journal entry";
        let txn = Self::begin_durable_write(db, what)?;
        let seq = {
            let mut meta = txn.open_table(META).map_err(|e| from_redb(what, e))?;
            let last = meta
                .get(LAST_SEQ_KEY)
                .map_err(|e| from_redb(what, e))?
                .map_or(0, |g| g.value());
            let seq = last
                .checked_add(1)
                .ok_or_else(|| Error::storage("journal sequence numbers exhausted"))?;
            meta.insert(LAST_SEQ_KEY, seq)
                .map_err(|e| from_redb(what, e))?;
            let mut journal = txn.open_table(JOURNAL).map_err(|e| from_redb(what, e))?;
            journal.insert(seq, bytes).map_err(|e| from_redb(what, e))?;
            seq
        };
        txn.commit().map_err(|e| from_redb(what, e))?;
        Ok(seq)
    }

    fn begin_durable_write(db: &Database, what: &str) -> Result<redb::WriteTransaction> {
        let mut txn = db.begin_write().map_err(|e| from_redb(what, e))?;
        // Immediate is redb's default; set it anyway so the fsync is a stated choice.
        txn.set_durability(Durability::Immediate)
            .map_err(|e| from_redb(what, e))?;
        Ok(txn)
    }

    /// The raw stored bytes of entry `seq`, exactly as on disk, or `None`.
    ///
    /// A hook for repair tools and fault tests. **Blocks** the calling thread on file I/O.
    pub fn raw_entry_blocking(&self, seq: JournalSeq) -> Result<Option<Vec<u8>>> {
        let what = "read raw journal entry";
        let txn = self.db.begin_read().map_err(|e| from_redb(what, e))?;
        let table = txn.open_table(JOURNAL).map_err(|e| from_redb(what, e))?;
        let bytes = table
            .get(seq)
            .map_err(|e| from_redb(what, e))?
            .map(|g| g.value().to_vec());
        Ok(bytes)
    }

    /// Overwrite (or create) entry `seq` with `bytes`, exactly, without encoding or checking
    /// them, and commit durably. The last assigned sequence number is raised to `seq` if lower,
    /// so it is never handed out again.
    ///
    /// A hook for repair tools and fault tests: damaged bytes written here make `read` fail with
    /// `Corrupt` naming `seq`. **Blocks** the calling thread on file I/O.
    pub fn put_raw_entry_blocking(&self, seq: JournalSeq, bytes: &[u8]) -> Result<()> {
        let what = "write raw journal entry";
        let txn = Self::begin_durable_write(&self.db, what)?;
        {
            let mut meta = txn.open_table(META).map_err(|e| from_redb(what, e))?;
            let last = meta
                .get(LAST_SEQ_KEY)
                .map_err(|e| from_redb(what, e))?
                .map_or(0, |g| g.value());
            if seq > last {
                meta.insert(LAST_SEQ_KEY, seq)
                    .map_err(|e| from_redb(what, e))?;
            }
            let mut journal = txn.open_table(JOURNAL).map_err(|e| from_redb(what, e))?;
            journal.insert(seq, bytes).map_err(|e| from_redb(what, e))?;
        }
        txn.commit().map_err(|e| from_redb(what, e))
    }
}

#[async_trait]
impl Journal for RedbJournal {
    #[tracing::instrument(level = "debug", name = "redb_journal.append", skip_all, fields(id = %entry.episode_id()))]
    async fn append(&self, entry: &JournalEntry) -> Result<JournalSeq> {
        let bytes = record::encode(RecordKind::JournalEntry, entry)?;
        let db = self.db.clone();
        blocking("journal append", move || Self::append_bytes(&db, &bytes)).await
    }

    #[tracing::instrument(level = "debug", name = "redb_journal.read", skip(self))]
    async fn read(
        &self,
        after: Option<JournalSeq>,
        limit: usize,
    ) -> Result<Vec<(JournalSeq, JournalEntry)>> {
        let db = self.db.clone();
        blocking("journal read", move || {
            let what = "read journal";
            let txn = db.begin_read().map_err(|e| from_redb(what, e))?;
            let table = txn.open_table(JOURNAL).map_err(|e| from_redb(what, e))?;
            let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
            let rows = table
                .range::<u64>((lower, Bound::Unbounded))
                .map_err(|e| from_redb(what, e))?;
            let mut out = Vec::new();
            for row in rows.take(limit) {
                let (seq, bytes) = row.map_err(|e| from_redb(what, e))?;
                let seq = seq.value();
                out.push((seq, decode_entry(seq, bytes.value())?));
            }
            Ok(out)
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "redb_journal.remove_through", skip(self))]
    async fn remove_through(&self, seq: JournalSeq) -> Result<()> {
        let db = self.db.clone();
        blocking("journal remove", move || {
            let what = "remove journal entries";
            let txn = Self::begin_durable_write(&db, what)?;
            txn.open_table(JOURNAL)
                .map_err(|e| from_redb(what, e))?
                .retain_in::<u64, _>(..=seq, |_, _| false)
                .map_err(|e| from_redb(what, e))?;
            txn.commit().map_err(|e| from_redb(what, e))
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "redb_journal.depth", skip(self))]
    async fn depth(&self) -> Result<u64> {
        let db = self.db.clone();
        blocking("journal depth", move || {
            let what = "journal depth";
            let txn = db.begin_read().map_err(|e| from_redb(what, e))?;
            let table = txn.open_table(JOURNAL).map_err(|e| from_redb(what, e))?;
            table.len().map_err(|e| from_redb(what, e))
        })
        .await
    }
}
