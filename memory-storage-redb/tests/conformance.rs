//! The shared conformance suite of `memory-core`, run against real redb files.

mod common;

use common::{bounded, episode, flip_bit, temp_file};
use memory_core::conformance;
use memory_core::store::{CacheStore, Journal};
use memory_storage_redb::{RedbCache, RedbJournal, RedbOptions};

#[tokio::test]
async fn redb_cache_conforms() {
    let (_dir, path) = temp_file();
    let cache = RedbCache::open(&path, RedbOptions::default()).expect("open");
    conformance::cache_store(&cache, |id| flip_bit(&cache, id)).await;
}

#[tokio::test]
async fn redb_cache_conforms_on_a_reopened_file_that_holds_data_under_a_tight_bound() {
    let (_dir, path) = temp_file();
    let kept = episode("conf-preexisting");
    {
        let cache = RedbCache::open(&path, RedbOptions::default()).expect("open");
        cache.put(&kept).await.expect("put");
    }
    // Room for a few records only: the suite's puts evict, and must still behave.
    let cache = RedbCache::open(&path, bounded(4 * 1024)).expect("reopen");
    assert_eq!(
        cache.stats().entries,
        1,
        "the earlier entry is found at open"
    );
    conformance::cache_store(&cache, |id| flip_bit(&cache, id)).await;
    assert!(cache.stats().bytes <= 4 * 1024);
}

#[tokio::test]
async fn redb_journal_conforms_and_again_after_reopen() {
    let (_dir, path) = temp_file();
    {
        let journal = RedbJournal::open(&path).expect("open");
        conformance::journal(&journal).await;
    }
    // The suite leaves the journal empty; a reopened file passes it again.
    let journal = RedbJournal::open(&path).expect("reopen");
    assert_eq!(journal.depth().await.expect("depth"), 0);
    conformance::journal(&journal).await;
}
