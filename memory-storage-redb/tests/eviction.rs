//! The byte bound: puts evict the least recently used entries, the bound always holds, the
//! bookkeeping matches what is on disk, and a smaller bound at open evicts down to it.

mod common;

use common::{bounded, encoded_len, episode, on_disk, temp_file};
use memory_core::Episode;
use memory_core::store::CacheStore;
use memory_storage_redb::{RedbCache, RedbOptions};

/// `n` episodes of one encoded size, in id order; returns them and the size.
fn same_size(n: usize) -> (Vec<Episode>, u64) {
    let es: Vec<_> = (0..n).map(|_| episode("evict")).collect();
    let size = encoded_len(&es[0]);
    assert!(
        es.iter().all(|e| encoded_len(e) == size),
        "sample episodes share a size"
    );
    (es, size)
}

#[tokio::test]
async fn bound_holds_and_the_least_recently_used_go_first() {
    let (_dir, path) = temp_file();
    let (es, size) = same_size(10);
    let max = 5 * size;
    let cache = RedbCache::open(&path, bounded(max)).expect("open");

    for e in &es[..5] {
        cache.put(e).await.expect("put");
    }
    let s = cache.stats();
    assert_eq!(
        (s.entries, s.bytes, s.evictions),
        (5, max, 0),
        "exactly full"
    );

    // es[0] becomes the most recently used; es[1] is now the oldest.
    assert!(cache.get(es[0].id).await.expect("get").is_some());
    cache.put(&es[5]).await.expect("put");
    assert_eq!(cache.stats().evictions, 1);
    assert_eq!(cache.get(es[1].id).await.expect("get"), None, "LRU evicted");
    assert_eq!(
        cache.get(es[0].id).await.expect("get").as_ref(),
        Some(&es[0]),
        "touched entry kept"
    );

    // Order now (oldest first): 2, 3, 4, 5, 0. Four more puts evict 2, 3, 4, 5.
    for e in &es[6..10] {
        cache.put(e).await.expect("put");
        assert!(cache.stats().bytes <= max, "bound holds after every put");
    }
    let s = cache.stats();
    assert_eq!((s.entries, s.bytes, s.evictions), (5, max, 5));
    let kept: Vec<_> = [0, 6, 7, 8, 9].iter().map(|&i| es[i].id).collect();
    let (ids, bytes) = on_disk(&cache).await;
    assert_eq!(ids, kept, "exactly the recently used survive, on disk");
    assert_eq!(bytes, s.bytes, "bookkeeping matches the stored records");
}

#[tokio::test]
async fn sizes_follow_replacements_invalidations_and_clear() {
    let (_dir, path) = temp_file();
    let cache = RedbCache::open(&path, RedbOptions::default()).expect("open");
    let a = episode("sizes");
    let b = episode("sizes");
    cache.put(&a).await.expect("put a");
    cache.put(&b).await.expect("put b");
    let mut a2 = a.clone();
    a2.version += 1;
    a2.reflection = Some("a much longer reflection than before".repeat(10));
    cache.put(&a2).await.expect("replace a");
    let s = cache.stats();
    assert_eq!(s.entries, 2);
    assert_eq!(s.bytes, encoded_len(&a2) + encoded_len(&b));
    assert_eq!(on_disk(&cache).await.1, s.bytes);

    cache.invalidate(b.id).await.expect("invalidate");
    assert_eq!(cache.stats().bytes, encoded_len(&a2));
    cache.clear().await.expect("clear");
    let s = cache.stats();
    assert_eq!((s.entries, s.bytes, s.evictions), (0, 0, 0));
    assert_eq!(on_disk(&cache).await, (vec![], 0));

    // The sizes the next open reads (the size table) followed every change.
    cache.put(&a2).await.expect("put a2");
    cache.put(&b).await.expect("put b");
    cache.invalidate(a2.id).await.expect("invalidate a2");
    drop(cache);
    let cache = RedbCache::open(&path, RedbOptions::default()).expect("reopen");
    let s = cache.stats();
    assert_eq!((s.entries, s.bytes), (1, encoded_len(&b)));
    assert_eq!(on_disk(&cache).await, (vec![b.id], encoded_len(&b)));
}

#[tokio::test]
async fn a_record_larger_than_the_bound_is_not_cached_and_drops_the_stale_copy() {
    let (_dir, path) = temp_file();
    let (es, size) = same_size(2);
    let cache = RedbCache::open(&path, bounded(2 * size)).expect("open");
    cache.put(&es[0]).await.expect("put");
    cache.put(&es[1]).await.expect("put");
    let mut huge = es[0].clone();
    huge.version += 1;
    huge.description = "x".repeat(10_000);
    cache.put(&huge).await.expect("put huge is not an error");
    assert_eq!(
        cache.get(es[0].id).await.expect("get"),
        None,
        "no stale version left"
    );
    assert_eq!(
        cache.get(es[1].id).await.expect("get").as_ref(),
        Some(&es[1]),
        "others untouched"
    );
    let s = cache.stats();
    assert_eq!((s.entries, s.bytes, s.evictions), (1, size, 1));
    drop(cache);
    let cache = RedbCache::open(&path, bounded(2 * size)).expect("reopen");
    let s = cache.stats();
    assert_eq!(
        (s.entries, s.bytes),
        (1, size),
        "the dropped copy's size went too"
    );
}

#[tokio::test]
async fn a_smaller_bound_at_open_evicts_the_oldest_ids_down_to_it() {
    let (_dir, path) = temp_file();
    let (es, size) = same_size(6);
    {
        let cache = RedbCache::open(&path, RedbOptions::default()).expect("open");
        for e in es.iter().rev() {
            cache.put(e).await.expect("put");
        }
        assert_eq!(cache.stats().bytes, 6 * size);
    }
    let cache = RedbCache::open(&path, bounded(3 * size + size / 2)).expect("reopen smaller");
    let s = cache.stats();
    assert_eq!((s.entries, s.bytes, s.evictions), (3, 3 * size, 3));
    let (ids, bytes) = on_disk(&cache).await;
    assert_eq!(
        ids,
        es[3..].iter().map(|e| e.id).collect::<Vec<_>>(),
        "newest ids kept"
    );
    assert_eq!(bytes, s.bytes);
}
