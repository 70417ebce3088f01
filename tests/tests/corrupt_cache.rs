//! A damaged cache record in the redb file is detected and never served: the engine serves
//! the durable copy and repairs the cache entry.

use memory_core::store::CacheStore;
use memory_core::{MemoryConfig, Outcome, TaskContext};
use memory_tests::open_embedded;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_is_served_from_the_durable_store() {
    let dir = tempfile::tempdir().unwrap();
    // No in-process tier: it would answer from memory, and this is about the redb file.
    let config = MemoryConfig {
        hot_cache_bytes: 0,
        ..Default::default()
    };
    let e = open_embedded(dir.path(), config).await.unwrap();
    let id = e
        .memory
        .start_episode("t", TaskContext::new("ns", "d", "t"))
        .await
        .unwrap();
    let done = e
        .memory
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();

    // Flip one bit in the middle of the stored record.
    let mut bytes = e.cache.raw_record_blocking(id).unwrap().expect("cached");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x04;
    e.cache.put_raw_record_blocking(id, &bytes).unwrap();
    assert_eq!(
        e.cache.get(id).await.unwrap_err().kind(),
        memory_core::ErrorKind::Corrupt
    );

    let served = e.memory.get_episode(id).await.unwrap();
    assert_eq!(served, done, "the durable copy, not the damaged bytes");
    assert_eq!(
        e.cache.get(id).await.unwrap(),
        Some(done),
        "the cache was repaired"
    );
    assert!(e.cache.stats().corrupt >= 1);
    e.memory.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_of_another_episode_under_this_key_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_embedded(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for d in ["first", "second"] {
        let id = e
            .memory
            .start_episode(d, TaskContext::new("ns", "d", "t"))
            .await
            .unwrap();
        e.memory
            .complete_episode(id, Outcome::success("ok"))
            .await
            .unwrap();
        ids.push(id);
    }
    // Put the second episode's valid bytes under the first one's key.
    let other = e
        .cache
        .raw_record_blocking(ids[1])
        .unwrap()
        .expect("cached");
    e.cache.put_raw_record_blocking(ids[0], &other).unwrap();
    let served = e.memory.get_episode(ids[0]).await.unwrap();
    assert_eq!(served.description, "first");
    e.memory.shutdown().await.unwrap();
}
