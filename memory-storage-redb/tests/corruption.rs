//! Damaged bytes are reported as `Corrupt` and counted, never returned as data: flipped bits,
//! truncation, a record of another episode, damage made to the file behind redb's back (a
//! record's bytes, a byte anywhere in the file, the file cut short), and a damaged or cut-short
//! journal entry (named by its sequence number, never skipped).

mod common;

use std::path::Path;

use common::{episode, flip_bit, temp_file};
use memory_core::record::{self, RecordKind};
use memory_core::store::{CacheStore, Journal, JournalEntry, JournalSeq};
use memory_core::{Episode, EpisodeId, ErrorKind};
use memory_storage_redb::{RedbCache, RedbJournal, RedbOptions};

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

    // The damage is on disk: found again on every read (open decodes no record).
    let cache = RedbCache::open(&path, RedbOptions::default()).expect("reopen");
    assert_eq!(cache.stats().corrupt, 0, "open reads keys and sizes only");
    let err = cache.get(e.id).await.expect_err("still damaged");
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    let page = cache.scan(None, 10).await.expect("scan");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].version, None, "scan marks it");
    assert_eq!(cache.stats().corrupt, 2);

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
    let journal = RedbJournal::open(&path).expect("open");
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
    let err = RedbJournal::open(&path)
        .expect("reopen")
        .read(Some(seqs[1]), 1)
        .await
        .expect_err("still damaged");
    assert!(err.message().contains(&seqs[2].to_string()), "{err}");
}

/// What a closed file was filled with: 100 cached episodes, or 20 journal entries.
enum Filled {
    Cache(Vec<Episode>),
    Journal(Vec<(JournalSeq, JournalEntry)>),
}

impl Filled {
    async fn cache(path: &Path) -> Self {
        let cache = RedbCache::open(path, RedbOptions::default()).expect("open");
        let mut cached = Vec::new();
        for _ in 0..100 {
            let e = episode("filled");
            cache.put(&e).await.expect("put");
            cached.push(e);
        }
        Filled::Cache(cached)
    }

    async fn journal(path: &Path) -> Self {
        let journal = RedbJournal::open(path).expect("open");
        let mut journaled = Vec::new();
        for _ in 0..20 {
            let entry = JournalEntry::Create(episode("filled-journal"));
            let seq = journal.append(&entry).await.expect("append");
            journaled.push((seq, entry));
        }
        Filled::Journal(journaled)
    }

    /// Open the file as what it was filled as: a cache file with or without redb's check, a
    /// journal file (always checked). Blocking, and never expected to panic.
    fn open(&self, path: &Path, check: bool) -> memory_core::Result<Opened> {
        Ok(match self {
            Filled::Cache(_) => Opened::Cache(RedbCache::open(
                path,
                RedbOptions {
                    check_integrity_on_open: check,
                    ..RedbOptions::default()
                },
            )?),
            Filled::Journal(_) => Opened::Journal(RedbJournal::open(path)?),
        })
    }

    /// Assert that everything written reads back exactly from `opened`.
    async fn read_back(&self, opened: Opened, what: &str) {
        match (self, opened) {
            (Filled::Cache(cached), Opened::Cache(cache)) => {
                for e in cached {
                    assert_eq!(
                        cache.get(e.id).await.expect("valid entry").as_ref(),
                        Some(e),
                        "{what}"
                    );
                }
                assert_eq!(cache.stats().corrupt, 0, "{what}");
            }
            (Filled::Journal(journaled), Opened::Journal(journal)) => {
                let read = journal.read(None, 100).await.expect("journal");
                assert_eq!(&read, journaled, "{what}");
            }
            _ => unreachable!("opened as filled"),
        }
    }
}

/// A file opened as what [`Filled`] wrote.
enum Opened {
    Cache(RedbCache),
    Journal(RedbJournal),
}

#[tokio::test]
async fn a_file_cut_short_fails_to_open_as_corrupt() {
    for (journal, check) in [(false, true), (false, false), (true, true)] {
        for cut in [1, 4096, 100_000] {
            let (_dir, path) = temp_file();
            let filled = if journal {
                Filled::journal(&path).await
            } else {
                Filled::cache(&path).await
            };
            let len = std::fs::metadata(&path).expect("stat").len();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open for truncation");
            file.set_len(len.saturating_sub(cut)).expect("truncate");
            drop(file);

            let what = format!("journal {journal}, cut {cut}, check {check}");
            let Err(err) = filled.open(&path, check) else {
                panic!("{what}: a file cut short opened");
            };
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{what}: {err}");
            assert!(
                err.message().contains(&path.display().to_string()),
                "names the file: {err}"
            );
        }
    }
}

#[tokio::test]
async fn a_byte_flipped_anywhere_in_a_file_is_refused_or_harmless() {
    for journal in [false, true] {
        let (_dir, path) = temp_file();
        let filled = if journal {
            Filled::journal(&path).await
        } else {
            Filled::cache(&path).await
        };
        let pristine = std::fs::read(&path).expect("read file");
        let len = pristine.len();
        // The header, the last pages, and seeded offsets in between.
        let mut offsets: Vec<usize> = (0..512).step_by(37).collect();
        offsets.extend((1..=8192).step_by(397).map(|back| len - back));
        let mut z = 0x5EED_u64;
        for _ in 0..40 {
            z = z.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            offsets.push((z >> 33) as usize % len);
        }
        let (mut refused, mut harmless) = (0, 0);
        for offset in offsets {
            let mut bytes = pristine.clone();
            bytes[offset] ^= 0x5A;
            std::fs::write(&path, &bytes).expect("write file");
            let what = format!("journal {journal}, byte {offset}");
            let opened = std::panic::catch_unwind(|| filled.open(&path, true))
                .unwrap_or_else(|_| panic!("open panicked: {what}"));
            match opened {
                Err(err) => {
                    assert_eq!(err.kind(), ErrorKind::Corrupt, "{what}: {err}");
                    refused += 1;
                }
                // Opened: the flip hit bytes nothing reads. Everything reads back exactly.
                Ok(opened) => {
                    filled.read_back(opened, &what).await;
                    harmless += 1;
                }
            }
        }
        assert!(
            refused > 0 && harmless > 0,
            "journal {journal}: both outcomes exercised: {refused} refused, {harmless} harmless"
        );
    }
}

#[tokio::test]
async fn a_journal_entry_cut_short_stops_read_naming_it() {
    let (_dir, path) = temp_file();
    let journal = RedbJournal::open(&path).expect("open");
    let mut seqs = Vec::new();
    for _ in 0..4 {
        seqs.push(
            journal
                .append(&JournalEntry::Create(episode("journal-tail")))
                .await
                .expect("append"),
        );
    }
    let last = *seqs.last().expect("appended");
    let bytes = journal
        .raw_entry_blocking(last)
        .expect("raw")
        .expect("present");
    for keep in [bytes.len() - 1, bytes.len() / 2, 1, 0] {
        journal
            .put_raw_entry_blocking(last, &bytes[..keep])
            .expect("raw write");
        let err = journal.read(None, 100).await.expect_err("not skipped");
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{keep} bytes kept: {err}");
        assert!(
            err.message().contains(&format!("journal entry {last}")),
            "{err}"
        );
        assert_eq!(journal.read(None, 3).await.expect("before it").len(), 3);
        assert_eq!(journal.depth().await.expect("depth"), 4, "nothing dropped");
    }
}
