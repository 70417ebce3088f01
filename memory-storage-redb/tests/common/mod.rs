//! Helpers shared by the behaviour tests: temp files, sample episodes, damage.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use memory_core::conformance::{completed, sample_episode, sample_steps};
use memory_core::record::{self, RecordKind};
use memory_core::store::CacheStore;
use memory_core::{Episode, EpisodeId};
use memory_storage_redb::{RedbCache, RedbOptions};
use tempfile::TempDir;

/// A fresh directory and the path of a cache file inside it.
pub fn temp_file() -> (TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.redb");
    (dir, path)
}

/// Options with the given byte bound, defaults otherwise.
pub fn bounded(max_cache_bytes: u64) -> RedbOptions {
    RedbOptions {
        max_cache_bytes,
        ..RedbOptions::default()
    }
}

/// A completed episode with three steps, in namespace `ns`.
pub fn episode(ns: &str) -> Episode {
    completed(sample_episode(ns), sample_steps(0, 3))
}

/// The size the cache accounts for `e`.
pub fn encoded_len(e: &Episode) -> u64 {
    record::encode(RecordKind::Episode, e)
        .expect("encode")
        .len() as u64
}

/// Flip one bit in the middle of the stored record of `id`; whether there was one.
pub fn flip_bit(cache: &RedbCache, id: EpisodeId) -> bool {
    match cache.raw_record_blocking(id).expect("raw read") {
        Some(mut bytes) => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x10;
            cache
                .put_raw_record_blocking(id, &bytes)
                .expect("raw write");
            true
        }
        None => false,
    }
}

/// Every id in the cache, in scan order, with the sum of their stored record sizes.
pub async fn on_disk(cache: &RedbCache) -> (Vec<EpisodeId>, u64) {
    let mut ids = Vec::new();
    let mut bytes = 0;
    let mut after = None;
    loop {
        let page = cache.scan(after, 7).await.expect("scan");
        for v in &page.items {
            ids.push(v.id);
            bytes += cache
                .raw_record_blocking(v.id)
                .expect("raw read")
                .expect("scanned entry is stored")
                .len() as u64;
        }
        match page.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    (ids, bytes)
}
