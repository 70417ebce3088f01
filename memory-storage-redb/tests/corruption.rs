//! Damaged bytes are reported as `Corrupt` and counted, never returned as data: flipped bits,
//! truncation, a record of another episode, damage made to the file behind redb's back, a
//! damaged journal entry (named by its sequence number, never skipped), and a file cut short.

mod common;

use common::{episode, flip_bit, temp_file};
use memory_core::record::{self, RecordKind};
use memory_core::store::{CacheStore, Journal, JournalEntry};
use memory_core::{EpisodeId, ErrorKind};
use memory_storage_redb::{RedbCache, RedbOptions};

#[tokio::test]
async fn a_flipped_bit_is_corrupt_counted_persisted_and_repaired_by_put() {
    let (_dir, path) = temp_file();
    let e = episode("corrupt");
    {
        let cache = RedbCache::open(&path, RedbOptions::default()).expect("open");
        cache.put(&e).await.expect("put");
        assert!(flip_bit(&cache, e.id));
        let err = cache.get(e.id).await.expect_err("damaged");
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        assert!(
            err.message().contains(&e.id.to_string()),
            "names the entry: {err}"
        );
        let s = cache.stats();
        assert_eq!(
            (s.hits, s.misses, s.corrupt),
            (0, 1, 1),
            "a miss and a corruption"
        );
    }

    // The damage is on disk: found again at open and on every read.
    let cache = RedbCache::open(&path, RedbOptions::default()).expect("reopen");
    assert_eq!(cache.stats().corrupt, 1, "found by the scan at open");
    let err = cache.get(e.id).await.expect_err("still damaged");
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    let page = cache.scan(None, 10).await.expect("scan");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].version, None, "scan marks it");
    assert_eq!(cache.stats().corrupt, 3);

    // A put at the same version repairs it (the damaged record's version is unknown).
    cache.put(&e).await.expect("repair");
    assert_eq!(cache.get(e.id).await.expect("get"), Some(e));
}

#[tokio::test]
async fn truncated_and_misplaced_records_are_corrupt() {
    let (_dir, path) = temp_file();
    let cache = RedbCache::open(&path, RedbOptions::default()).expect("open");
    let a = episode("misplaced");
    let b = episode("misplaced");

    let bytes = record::encode(RecordKind::Episode, &a).expect("encode");
    cache
        .put_raw_record_blocking(a.id, &bytes[..bytes.len() - 1])
        .expect("raw");
    let err = cache.get(a.id).await.expect_err("truncated");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");

    // A valid record, but of another episode: never served under this id.
    cache.put_raw_record_blocking(b.id, &bytes).expect("raw");
    let err = cache.get(b.id).await.expect_err("misplaced");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.message().contains(&a.id.to_string()), "{err}");

    // A journal record is not an episode record either.
    let j =
        record::encode(RecordKind::JournalEntry, &JournalEntry::Create(a.clone())).expect("encode");
    cache.put_raw_record_blocking(a.id, &j).expect("raw");
    assert_eq!(
        cache.get(a.id).await.expect_err("wrong kind").kind(),
        ErrorKind::Corrupt
    );

    let page = cache.scan(None, 10).await.expect("scan");
    assert!(
        page.items.iter().all(|v| v.version.is_none()),
        "{:?}",
        page.items
    );
    assert_eq!(cache.stats().hits, 0, "nothing damaged was served");
    assert_eq!(cache.stats().corrupt, 5);
}

#[tokio::test]
async fn bytes_damaged_in_the_file_behind_redbs_back_are_corrupt() {
    let (_dir, path) = temp_file();
    let marker = format!("MARKER-{}-MARKER", EpisodeId::new());
    let mut e = episode("on-disk");
    e.description.clone_from(&marker);
    {
        let cache = RedbCache::open(&path, RedbOptions::default()).expect("open");
        cache.put(&e).await.expect("put");
    }
    let mut file = std::fs::read(&path).expect("read file");
    let m = marker.as_bytes();
    let hits: Vec<usize> = (0..file.len() - m.len())
        .filter(|&i| &file[i..i + m.len()] == m)
        .collect();
    assert!(!hits.is_empty(), "the record is in the file");
    for i in hits {
        file[i + 7] ^= 0x01;
    }
    std::fs::write(&path, &file).expect("write file");

    // With the integrity check (the default), redb refuses the damaged file.
    let err = RedbCache::open(&path, RedbOptions::default()).expect_err("checked open");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");

    // Without it, the record's own checksum catches the damage.
    let unchecked = RedbOptions {
        check_integrity_on_open: false,
        ..RedbOptions::default()
    };
    let cache = RedbCache::open(&path, unchecked).expect("unchecked open");
    let err = cache.get(e.id).await.expect_err("damaged record");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(cache.stats().corrupt >= 1);
}

#[tokio::test]
async fn a_damaged_journal_entry_stops_read_naming_its_sequence_number() {
    let (_dir, path) = temp_file();
    let cache = RedbCache::open(&path, RedbOptions::default()).expect("open");
    let journal = cache.journal();
    let mut seqs = Vec::new();
    for _ in 0..4 {
        seqs.push(
            journal
                .append(&JournalEntry::Create(episode("journal-damage")))
                .await
                .expect("append"),
        );
    }
    let mut bytes = journal
        .raw_entry_blocking(seqs[2])
        .expect("raw")
        .expect("present");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    journal
        .put_raw_entry_blocking(seqs[2], &bytes)
        .expect("raw write");

    let err = journal.read(None, 100).await.expect_err("not skipped");
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.message()
            .contains(&format!("journal entry {}", seqs[2])),
        "{err}"
    );
    // Entries before it still read; reading past it works once the caller decides.
    assert_eq!(journal.read(None, 2).await.expect("before").len(), 2);
    let after = journal.read(Some(seqs[2]), 100).await.expect("after");
    assert_eq!(
        after.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![seqs[3]]
    );
    assert_eq!(journal.depth().await.expect("depth"), 4, "nothing dropped");

    // Damage survives reopen and is reported again.
    drop(journal);
    drop(cache);
    let cache = RedbCache::open(&path, RedbOptions::default()).expect("reopen");
    let err = cache
        .journal()
        .read(Some(seqs[1]), 1)
        .await
        .expect_err("still damaged");
    assert!(err.message().contains(&seqs[2].to_string()), "{err}");
}

#[tokio::test]
async fn a_file_cut_short_is_refused_with_an_error_never_read() {
    let (_dir, path) = temp_file();
    {
        let cache = RedbCache::open(&path, RedbOptions::default()).expect("open");
        let journal = cache.journal();
        for i in 0..200 {
            let e = episode(&format!("cut-{i}"));
            cache.put(&e).await.expect("put");
            journal
                .append(&JournalEntry::Create(e))
                .await
                .expect("append");
        }
    }
    let len = std::fs::metadata(&path).expect("stat").len();
    for keep in [len / 2, len - 4096, len * 9 / 10] {
        let copy = path.with_extension(format!("cut{keep}"));
        std::fs::copy(&path, &copy).expect("copy");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .expect("open copy");
        file.set_len(keep).expect("truncate");
        drop(file);
        // redb checks the file against its stored layout: a shorter file is refused, so
        // nothing of a torn cache or journal is ever read.
        let err = RedbCache::open(&copy, RedbOptions::default())
            .expect_err("a file cut short is refused");
        assert_eq!(
            err.kind(),
            ErrorKind::Corrupt,
            "cut to {keep} of {len}: {err}"
        );
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
