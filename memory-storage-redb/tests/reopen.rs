//! Data survives closing and reopening the file: cache entries, their versions, the journal's
//! entries in order, and its sequence numbers (never reused, even once the journal is empty).

mod common;

use common::{episode, temp_file};
use memory_core::EpisodeId;
use memory_core::ErrorKind;
use memory_core::store::{CacheStore, Journal, JournalEntry};
use memory_storage_redb::{RedbCache, RedbJournal, RedbOptions};

#[tokio::test]
async fn cache_entries_and_versions_survive_reopen() {
    let (_dir, path) = temp_file();
    let episodes: Vec<_> = (0..20).map(|_| episode("reopen")).collect();
    let gone = [episodes[3].id, episodes[11].id];
    let mut newer = episodes[5].clone();
    newer.version += 1;
    newer.reflection = Some("newer".into());
    let before = {
        let cache = RedbCache::open(&path, RedbOptions::default()).expect("open");
        for e in &episodes {
            cache.put(e).await.expect("put");
        }
        cache.put(&newer).await.expect("put newer");
        for id in gone {
            cache.invalidate(id).await.expect("invalidate");
        }
        cache.stats()
    };

    let cache = RedbCache::open(&path, RedbOptions::default()).expect("reopen");
    let after = cache.stats();
    assert_eq!(after.entries, 18);
    assert_eq!((after.entries, after.bytes), (before.entries, before.bytes));
    assert_eq!(
        (after.hits, after.misses, after.corrupt),
        (0, 0, 0),
        "counters start at open"
    );
    for e in &episodes {
        let got = cache.get(e.id).await.expect("get");
        if gone.contains(&e.id) {
            assert_eq!(got, None, "invalidated entries stay gone");
        } else if e.id == newer.id {
            assert_eq!(got.as_ref(), Some(&newer));
        } else {
            assert_eq!(got.as_ref(), Some(e), "entry reads back unchanged");
        }
    }
    // Versions were rebuilt from disk: the older version is still refused.
    cache.put(&episodes[5]).await.expect("put older");
    assert_eq!(cache.get(newer.id).await.expect("get"), Some(newer));
}

#[tokio::test]
async fn journal_reads_the_same_entries_in_order_after_reopen() {
    let (_dir, path) = temp_file();
    let entries: Vec<JournalEntry> = (0..6)
        .map(|i| {
            if i % 2 == 0 {
                JournalEntry::Create(episode("journal-reopen"))
            } else {
                JournalEntry::Delete(EpisodeId::new())
            }
        })
        .collect();
    let written = {
        let journal = RedbJournal::open(&path).expect("open");
        for e in &entries {
            journal.append(e).await.expect("append");
        }
        journal.read(None, 100).await.expect("read")
    };
    assert_eq!(written.len(), 6);

    let journal = RedbJournal::open(&path).expect("reopen");
    let read = journal.read(None, 100).await.expect("read after reopen");
    assert_eq!(
        read, written,
        "same sequence numbers, same entries, same order"
    );
    assert_eq!(
        read.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        entries
    );
    assert_eq!(journal.depth().await.expect("depth"), 6);
}

#[tokio::test]
async fn sequence_numbers_continue_after_reopen_even_when_emptied() {
    let (_dir, path) = temp_file();
    let entry = JournalEntry::Delete(EpisodeId::new());
    let last = {
        let journal = RedbJournal::open(&path).expect("open");
        let mut last = 0;
        for _ in 0..5 {
            last = journal.append(&entry).await.expect("append");
        }
        journal.remove_through(2).await.expect("remove");
        last
    };
    assert_eq!(last, 5, "sequence numbers start at 1");

    let last = {
        let journal = RedbJournal::open(&path).expect("reopen");
        let seqs: Vec<_> = journal
            .read(None, 100)
            .await
            .expect("read")
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(seqs, vec![3, 4, 5], "removal was durable");
        let next = journal.append(&entry).await.expect("append");
        assert_eq!(next, 6, "continues after the last one assigned");
        journal.remove_through(next).await.expect("remove all");
        assert_eq!(journal.depth().await.expect("depth"), 0);
        next
    };

    let journal = RedbJournal::open(&path).expect("reopen again");
    assert_eq!(journal.depth().await.expect("depth"), 0, "still empty");
    let next = journal.append(&entry).await.expect("append");
    assert!(
        next > last,
        "an emptied journal never reuses {last}: got {next}"
    );
}

#[tokio::test]
async fn a_second_open_of_the_same_file_fails_until_the_first_is_dropped() {
    let (_dir, path) = temp_file();
    let first = RedbCache::open(&path, RedbOptions::default()).expect("open");
    let clone = first.clone();
    let err = RedbCache::open(&path, RedbOptions::default()).expect_err("second open");
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    assert!(err.message().contains("already open"), "{err}");

    drop(first);
    // The clone still holds the file open.
    assert!(RedbCache::open(&path, RedbOptions::default()).is_err());
    drop(clone);
    let again = RedbCache::open_async(&path, RedbOptions::default())
        .await
        .expect("open after every handle is gone");
    assert_eq!(again.stats().entries, 0);
}
