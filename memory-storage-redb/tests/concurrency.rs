//! Concurrent cache writers and readers, and concurrent journal appends, on a multi-thread
//! runtime: the bound holds, the bookkeeping matches the file, no sequence number repeats.

mod common;

use std::collections::BTreeSet;

use common::{bounded, encoded_len, episode, on_disk, temp_file};
use memory_core::store::{CacheStore, Journal, JournalEntry};
use memory_storage_redb::{RedbCache, RedbJournal};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_and_gets_keep_the_bound_and_the_books_straight() {
    let (_dir, path) = temp_file();
    let size = encoded_len(&episode("concurrent"));
    let max = 40 * size;
    let cache = RedbCache::open(&path, bounded(max)).expect("open");
    let mut tasks = Vec::new();
    for t in 0..8 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..30 {
                let e = episode("concurrent");
                cache.put(&e).await.expect("put");
                mine.push(e);
                if i % 3 == t % 3 {
                    let back = mine[i / 2].clone();
                    if let Some(got) = cache.get(back.id).await.expect("get") {
                        assert_eq!(got, back, "a hit is the stored episode");
                    }
                }
                assert!(cache.stats().bytes <= max, "bound holds at every moment");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let s = cache.stats();
    assert!(s.bytes <= max);
    assert_eq!(s.entries, 40, "240 puts of one size into room for 40");
    assert_eq!(
        s.evictions,
        240 - 40,
        "every put past the bound evicted one entry"
    );
    let (ids, bytes) = on_disk(&cache).await;
    assert_eq!(ids.len() as u64, s.entries);
    assert_eq!(bytes, s.bytes, "bookkeeping matches the stored records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_distinct_increasing_sequence_numbers() {
    let (_dir, path) = temp_file();
    let journal = RedbJournal::open(&path).expect("open");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let journal = journal.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for _ in 0..10 {
                let e = JournalEntry::Create(episode("journal-concurrent"));
                seqs.push((journal.append(&e).await.expect("append"), e));
            }
            assert!(
                seqs.windows(2).all(|w| w[0].0 < w[1].0),
                "increasing per task"
            );
            seqs
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("task"));
    }
    acked.sort_by_key(|(s, _)| *s);
    let distinct: BTreeSet<_> = acked.iter().map(|(s, _)| *s).collect();
    assert_eq!(distinct.len(), 40, "no sequence number handed out twice");
    let read = journal.read(None, 100).await.expect("read");
    assert_eq!(read, acked, "every acknowledged entry, in sequence order");
}
