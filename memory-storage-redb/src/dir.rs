//! [`open_dir`]: the journal and the cache of a data directory, opened the way the engine's
//! embedded default needs them: the journal at once (the engine replays it before serving),
//! the cache in the background, so that reading the whole cache file for redb's integrity
//! check is not on the way to the first answer.

use std::path::{Path, PathBuf};

use memory_core::store::DeferredCache;
use memory_core::{Error, ErrorKind, Result};

use crate::cache::RedbCache;
use crate::file::{blocking, split_legacy_file};
use crate::journal::RedbJournal;
use crate::options::RedbOptions;

/// The cache file's name inside a data directory.
pub const CACHE_FILE: &str = "cache.redb";

/// The journal file's name inside a data directory.
pub const JOURNAL_FILE: &str = "journal.redb";

/// Where a cache file redb refused as damaged is moved.
pub const DAMAGED_CACHE_FILE: &str = "cache.redb.damaged";

/// Open `dir/journal.redb` (moving the journal out of a `cache.redb` of an earlier layout
/// first, [`split_legacy_file`]) and start opening `dir/cache.redb` with `options` in the
/// background (a [`DeferredCache`]: misses until open, see its docs).
///
/// A cache file redb finds damaged (`Corrupt`) is moved to `dir/cache.redb.damaged`
/// (replacing an earlier one) and a new, empty cache file is created in its place: the cache
/// only ever holds copies of what the durable store has, and the journal is in its own file.
/// Any other failure to open the cache leaves the deferred cache failed (its calls return
/// `Unavailable` naming the cause; the engine then reads from the durable store).
///
/// Must be called within a tokio runtime. Fails if the journal cannot be opened or moved.
pub async fn open_dir(dir: &Path, options: RedbOptions) -> Result<(RedbJournal, DeferredCache)> {
    options.validate()?;
    let (cache_path, journal_path) = (dir.join(CACHE_FILE), dir.join(JOURNAL_FILE));
    let journal = {
        let (cache_path, journal_path) = (cache_path.clone(), journal_path.clone());
        blocking("open journal", move || {
            split_legacy_file(&cache_path, &journal_path)?;
            RedbJournal::open(&journal_path)
        })
        .await?
    };
    let aside = dir.join(DAMAGED_CACHE_FILE);
    let cache = DeferredCache::spawn(open_cache(cache_path, aside, options));
    Ok((journal, cache))
}

/// Open the cache file; if redb refuses it as damaged, move it aside and start a new one.
async fn open_cache(path: PathBuf, aside: PathBuf, options: RedbOptions) -> Result<RedbCache> {
    match RedbCache::open_async(&path, options.clone()).await {
        Err(e) if e.kind() == ErrorKind::Corrupt => {
            tracing::error!(
                error = %e,
                moved_to = %aside.display(),
                "the cache file is damaged: moved aside, starting with an empty cache"
            );
            std::fs::rename(&path, &aside).map_err(|io| {
                Error::storage(format!(
                    "could not move the damaged cache file {} aside ({e})",
                    path.display()
                ))
                .with_source(io)
            })?;
            RedbCache::open_async(&path, options).await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{JOURNAL, LAST_SEQ_KEY, LAYOUT_KEY, META};
    use memory_core::store::{CacheStore, Journal, JournalEntry};
    use memory_core::{Episode, EpisodeId, TaskContext};

    fn episode() -> Episode {
        let ctx = TaskContext::new("ns", "retail", "refund");
        Episode::new(
            EpisodeId::new(),
            "refund order",
            ctx,
            memory_core::time::now(),
        )
    }

    #[tokio::test]
    async fn a_damaged_cache_file_is_moved_aside_and_an_empty_one_takes_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE);
        {
            let (_journal, cache) = open_dir(dir.path(), RedbOptions::default()).await.unwrap();
            cache.opened().await.unwrap();
            for _ in 0..50 {
                cache.put(&episode()).await.unwrap();
            }
            cache.close().await.unwrap();
        }
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 4096).unwrap();
        drop(file);

        let (journal, cache) = open_dir(dir.path(), RedbOptions::default()).await.unwrap();
        cache.opened().await.expect("a new cache file");
        assert_eq!(cache.stats().entries, 0);
        let damaged = std::fs::metadata(dir.path().join(DAMAGED_CACHE_FILE)).unwrap();
        assert_eq!(
            damaged.len(),
            len - 4096,
            "the damaged file, kept as it was"
        );
        let e = episode();
        cache.put(&e).await.unwrap();
        assert_eq!(cache.get(e.id).await.unwrap(), Some(e));
        journal
            .append(&JournalEntry::Delete(EpisodeId::new()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_cache_file_of_the_old_layout_hands_its_journal_over_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let entry = JournalEntry::Delete(EpisodeId::new());
        let bytes =
            memory_core::record::encode(memory_core::record::RecordKind::JournalEntry, &entry)
                .unwrap();
        {
            let db = redb::Database::create(dir.path().join(CACHE_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                txn.open_table(JOURNAL)
                    .unwrap()
                    .insert(7, bytes.as_slice())
                    .unwrap();
                let mut meta = txn.open_table(META).unwrap();
                meta.insert(LAYOUT_KEY, 2).unwrap();
                meta.insert(LAST_SEQ_KEY, 7).unwrap();
            }
            txn.commit().unwrap();
        }
        let (journal, cache) = open_dir(dir.path(), RedbOptions::default()).await.unwrap();
        assert_eq!(journal.read(None, 10).await.unwrap(), vec![(7, entry)]);
        assert_eq!(
            journal
                .append(&JournalEntry::Delete(EpisodeId::new()))
                .await
                .unwrap(),
            8
        );
        cache
            .opened()
            .await
            .expect("the old file opens as a cache once its journal moved");
    }
}
