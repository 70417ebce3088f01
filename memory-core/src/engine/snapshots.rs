//! How the engine builds its index at open and persists it: snapshot plus catch-up, or rebuild.
//!
//! Owns the open-time decision (open the snapshot when one is present and valid, bring it up
//! to date with the durable store by re-reading the episodes written since the snapshot's
//! change mark, or, when the store no longer knows that mark, those its whole `(id, version)`
//! list shows different; else rebuild from a full scan), the rebuild after a shard file turns
//! out damaged when it is loaded, the [`IndexOpen`] report of what happened, and the snapshot
//! writes (at shutdown and from the background job) with their counters. Opening a snapshot reads only its manifest: shards
//! stay spilled, their files linked into the spill directory, until first used (see
//! `crate::snapshot`). Snapshot files are read and written on the blocking pool. A refused
//! snapshot is logged with its reason and never indexed. This module must never serve
//! queries: the engine starts serving after [`open_index`] returns.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::id::EpisodeId;
use crate::index::SpatiotemporalIndex;
use crate::snapshot::{SnapshotDir, SnapshotStats, SpillDir};
use crate::store::{ChangeMark, DurableStore, each_page, scan_all_versions};

/// Where the index came from at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexSource {
    /// Loaded from the snapshot, then brought up to date with the durable store.
    Snapshot,
    /// Rebuilt from a full scan of the durable store: no snapshot is configured.
    RebuiltNoSnapshotConfigured,
    /// Rebuilt: the snapshot directory holds no snapshot yet.
    RebuiltNoSnapshot,
    /// Rebuilt: the snapshot was refused, for this reason.
    RebuiltSnapshotRefused(String),
    /// Rebuilt: the snapshot differed from the durable store in more than a tenth of its
    /// episodes, where a full scan is cheaper than re-reading them one by one.
    RebuiltSnapshotTooStale,
}

/// What building the index at open did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexOpen {
    /// Where the index came from.
    pub source: IndexSource,
    /// Episodes indexed when serving started.
    pub episodes: usize,
    /// Episodes re-read from the durable store because the snapshot lacked them or held
    /// another version.
    pub caught_up: usize,
    /// Episodes of the snapshot the durable store no longer holds, removed.
    pub removed: usize,
    /// Time spent opening the snapshot: reading its manifest, linking its shard files into
    /// the spill directory and installing the shards, still spilled (each is read when first
    /// used).
    pub load: Duration,
    /// Time spent reading what the snapshot is compared with (see `compared`) while the
    /// snapshot opens (zero without a snapshot).
    pub compare: Duration,
    /// What the snapshot was compared with.
    pub compared: Compared,
    /// Time spent after both, comparing and catching up (or rebuilding).
    pub sync: Duration,
}

/// What an opened snapshot was compared with to bring it up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    /// Nothing: no snapshot was opened.
    Nothing,
    /// The durable store's change mark was the one the snapshot recorded: nothing was written
    /// since, nothing was re-read.
    Unchanged,
    /// The durable store's list of the episodes written since the snapshot's mark; those
    /// were re-read.
    ChangesSince,
    /// The durable store's whole `(id, version)` list (the snapshot recorded no mark, or the
    /// store no longer knows it); the episodes that differ were re-read.
    AllVersions,
}

/// Counters of snapshot writes since open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotWrites {
    /// Snapshots written.
    pub written: u64,
    /// Attempts that failed (each logged).
    pub failed: u64,
    /// What the last written snapshot held, and how long writing it took.
    pub last: Option<(SnapshotStats, Duration)>,
    /// The last failure's message, until a later write succeeds.
    pub last_error: Option<String>,
}

/// The engine's snapshot directory, its spill directory and its write counters.
#[derive(Debug)]
pub(crate) struct Snapshots {
    dir: SnapshotDir,
    spill: Arc<SpillDir>,
    writes: Mutex<SnapshotWrites>,
    /// Held while a snapshot is written: one at a time (the job's, `write_snapshot()`'s and
    /// shutdown's may meet).
    writing: tokio::sync::Mutex<()>,
}

impl Snapshots {
    /// Snapshots in `dir` for `index`, whose spill target becomes `dir/spill` (emptied now).
    pub(crate) fn new(dir: SnapshotDir, index: &SpatiotemporalIndex) -> Result<Self> {
        let spill = Arc::new(SpillDir::new(&dir, index)?);
        index.set_spill(spill.clone())?;
        Ok(Self {
            dir,
            spill,
            writes: Mutex::new(SnapshotWrites::default()),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    /// The write counters.
    pub(crate) fn writes(&self) -> SnapshotWrites {
        self.writes.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Write a snapshot of `index` on the blocking pool, with the durable store's change mark
    /// it matches when known (see [`SnapshotDir::write`]); a failure is logged and counted.
    pub(crate) async fn persist(
        &self,
        index: &Arc<SpatiotemporalIndex>,
        durable_mark: Option<ChangeMark>,
    ) -> Result<SnapshotStats> {
        let _one_at_a_time = self.writing.lock().await;
        let dir = self.dir.clone();
        let index = index.clone();
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || dir.write(&index, durable_mark))
            .await
            .map_err(|e| crate::Error::storage("the snapshot task panicked").with_source(e))
            .and_then(|r| r);
        let took = started.elapsed();
        let mut w = self
            .writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &result {
            Ok(stats) => {
                tracing::info!(?stats, ?took, "index snapshot written");
                w.written += 1;
                w.last = Some((*stats, took));
                w.last_error = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "index snapshot not written");
                w.failed += 1;
                w.last_error = Some(e.to_string());
            }
        }
        result
    }
}

/// Build `index` before the engine serves: from `snapshots` when it holds a valid snapshot
/// (then caught up with `durable`), else from a full scan of `durable`. When a snapshot is
/// present, its manifest is opened on the blocking pool while what it is compared with is
/// read (see [`against`]).
pub(crate) async fn open_index(
    index: &Arc<SpatiotemporalIndex>,
    snapshots: Option<&Snapshots>,
    durable: &dyn DurableStore,
) -> Result<IndexOpen> {
    let started = Instant::now();
    let mut report = IndexOpen {
        source: IndexSource::RebuiltNoSnapshotConfigured,
        episodes: 0,
        caught_up: 0,
        removed: 0,
        load: Duration::ZERO,
        compare: Duration::ZERO,
        compared: Compared::Nothing,
        sync: Duration::ZERO,
    };
    let mut differ = None;
    if let Some(s) = snapshots {
        let dir = s.dir.clone();
        let spill = s.spill.clone();
        let idx = index.clone();
        let open = async {
            let opened =
                tokio::task::spawn_blocking(move || -> Result<Option<Option<ChangeMark>>> {
                    match dir.open(&idx, &spill)? {
                        Some(opened) => {
                            idx.install_spilled(opened.shards)?;
                            Ok(Some(opened.durable_mark))
                        }
                        None => Ok(None),
                    }
                })
                .await
                .map_err(|e| crate::Error::storage("the snapshot task panicked").with_source(e))
                .and_then(|r| r);
            (opened, started.elapsed())
        };
        let scan = async {
            let against = against(index, s, durable).await;
            (against, started.elapsed())
        };
        let ((opened, load), (against, compare)) = tokio::join!(open, scan);
        (report.load, report.compare) = (load, compare);
        report.source = match opened {
            Ok(Some(mark)) => {
                (report.compared, differ) = match against? {
                    // The manifest changed since its first bytes were read: compare all.
                    Against::Unchanged(m) | Against::ChangedSince(m, _) if mark != Some(m) => {
                        let all = scan_all_versions(durable).await?;
                        (Compared::AllVersions, Some(differences(index, all)?))
                    }
                    Against::Unchanged(_) => (Compared::Unchanged, None),
                    Against::ChangedSince(_, ids) => (Compared::ChangesSince, Some(ids)),
                    Against::Versions(all) => {
                        (Compared::AllVersions, Some(differences(index, all)?))
                    }
                };
                IndexSource::Snapshot
            }
            Ok(None) => IndexSource::RebuiltNoSnapshot,
            Err(e) => {
                tracing::warn!(error = %e, "index snapshot refused; rebuilding from the durable store");
                IndexSource::RebuiltSnapshotRefused(e.to_string())
            }
        };
    }
    if let Some(differ) = differ {
        if differ.len() > index.len() / 10 + 100 {
            report.source = IndexSource::RebuiltSnapshotTooStale;
        } else {
            (report.caught_up, report.removed) = apply(index, durable, &differ).await?;
        }
    }
    if report.source != IndexSource::Snapshot {
        build_from(index, durable, SCAN_PAGE).await?;
    }
    report.episodes = index.len();
    report.sync = started
        .elapsed()
        .saturating_sub(report.load.max(report.compare));
    tracing::info!(?report, "index ready");
    Ok(report)
}

/// What a snapshot is compared with at open.
enum Against {
    /// The durable store's change mark is the one the snapshot's manifest begins with.
    Unchanged(ChangeMark),
    /// The episodes the durable store lists as written since the mark the snapshot's manifest
    /// begins with.
    ChangedSince(ChangeMark, Vec<EpisodeId>),
    /// The durable store's `(id, version)` list, in id order.
    Versions(Vec<(EpisodeId, u64)>),
}

/// What to compare the snapshot in `snapshots` with: nothing when its manifest records the
/// durable store's current change mark; the episodes written since that mark when the
/// durable store still knows it; else the durable store's version list (empty when there is
/// no manifest: nothing will be compared). Read while the snapshot opens.
async fn against(
    index: &Arc<SpatiotemporalIndex>,
    snapshots: &Snapshots,
    durable: &dyn DurableStore,
) -> Result<Against> {
    if !snapshots.dir.is_present() {
        return Ok(Against::Versions(Vec::new()));
    }
    let (dir, idx) = (snapshots.dir.clone(), index.clone());
    let recorded = tokio::task::spawn_blocking(move || dir.durable_mark(&idx))
        .await
        .ok()
        .flatten();
    if let Some(recorded) = recorded {
        let since = match durable.change_mark().await {
            Ok(now) if now == recorded => return Ok(Against::Unchanged(now)),
            Ok(_) => durable.changed_since(recorded).await,
            Err(e) => Err(e),
        };
        match since {
            Ok(Some(ids)) => return Ok(Against::ChangedSince(recorded, ids)),
            Ok(None) => {
                tracing::info!(
                    "the durable store no longer knows the snapshot's change mark; comparing versions"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "the durable store's changes are unreadable; comparing versions");
            }
        }
    }
    scan_all_versions(durable).await.map(Against::Versions)
}

/// Rebuild `index` from a full scan of `durable` while the engine serves (after a snapshot
/// shard file was found damaged when it was loaded), then catch up with the writes made
/// during the scan. Returns the number of episodes indexed.
pub(crate) async fn rebuild(
    index: &SpatiotemporalIndex,
    durable: &dyn DurableStore,
) -> Result<usize> {
    build_from(index, durable, SCAN_PAGE).await?;
    let differ = differences(index, scan_all_versions(durable).await?)?;
    apply(index, durable, &differ).await?;
    Ok(index.len())
}

/// Summaries read per durable call when building from a full scan.
const SCAN_PAGE: usize = 10_000;

/// Replace the content of `index` with every summary of `durable`, read `page_size` at a time
/// and added as they come (the summaries are never all in memory at once). Returns the number
/// of episodes indexed.
async fn build_from(
    index: &SpatiotemporalIndex,
    durable: &dyn DurableStore,
    page_size: usize,
) -> Result<usize> {
    let mut build = index.bulk();
    each_page(
        |after| durable.scan_summaries(after, page_size),
        |page| page.iter().try_for_each(|summary| build.add(summary)),
    )
    .await?;
    build.finish()
}

/// Summaries re-read per durable call when catching up.
const CATCH_UP_BATCH: usize = 2_000;

/// Re-read `ids` from `durable` into `index`: each is removed, then indexed again at its
/// durable version when the durable store returns it (the durable version wins, also over a
/// newer indexed one). An id it does not return was deleted and stays removed; one the index
/// lacked that was written since the caller's list was read (a rebuild while serving) is
/// found and indexed. Returns how many were indexed again and how many removed for good.
async fn apply(
    index: &SpatiotemporalIndex,
    durable: &dyn DurableStore,
    ids: &[EpisodeId],
) -> Result<(usize, usize)> {
    let (mut found, mut removed) = (0, 0);
    for chunk in ids.chunks(CATCH_UP_BATCH) {
        let mut held = HashSet::new();
        for id in chunk {
            if index.remove(*id)? {
                held.insert(*id);
            }
        }
        for summary in durable.summaries_of(chunk).await? {
            index.insert(&summary)?;
            held.remove(&summary.id);
            found += 1;
        }
        removed += held.len();
    }
    Ok((found, removed))
}

/// The episodes whose durable version (`stored`, in id order) the index lacks or holds
/// different, and the indexed episodes the durable store no longer holds: one merge of the
/// two sorted lists.
fn differences(
    index: &SpatiotemporalIndex,
    stored: Vec<(EpisodeId, u64)>,
) -> Result<Vec<EpisodeId>> {
    let mut indexed = index.versions()?;
    indexed.sort_unstable();
    let mut at = 0;
    let mut differ = Vec::new();
    for (id, version) in stored {
        while at < indexed.len() && indexed[at].0 < id {
            differ.push(indexed[at].0);
            at += 1;
        }
        if at < indexed.len() && indexed[at].0 == id {
            if indexed[at].1 != version {
                differ.push(id);
            }
            at += 1;
        } else {
            differ.push(id);
        }
    }
    differ.extend(indexed[at..].iter().map(|(id, _)| *id));
    Ok(differ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{completed, sample_episode, sample_steps};
    use crate::index::IndexConfig;
    use crate::store::InMemoryStore;

    #[tokio::test]
    async fn a_build_from_the_durable_store_reads_every_page() {
        let durable = InMemoryStore::new();
        let mut ids = Vec::new();
        for _ in 0..23 {
            let e = sample_episode("ns");
            durable.create_episode(&e).await.unwrap();
            let done = completed(e, sample_steps(0, 2));
            durable.complete_episode(&done).await.unwrap();
            ids.push((done.id, done.version));
        }
        let index = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        let replaced = sample_episode("ns");
        index.insert(&replaced.summary()).unwrap();
        assert_eq!(build_from(&index, &durable, 5).await.unwrap(), 23);
        assert_eq!(index.len(), 23);
        assert_eq!(index.contains(replaced.id).unwrap(), None);
        for (id, version) in ids {
            assert_eq!(index.contains(id).unwrap(), Some(version));
        }
    }

    #[tokio::test]
    async fn catching_up_re_reads_what_differs_and_keeps_what_was_written_since_the_list() {
        let durable = InMemoryStore::new();
        let index = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
        let [a, b, c, d, e] = std::array::from_fn(|_| sample_episode("ns"));
        for x in [&a, &b, &c] {
            durable.create_episode(x).await.unwrap();
            index.insert(&x.summary()).unwrap();
        }
        let b2 = completed(b.clone(), Vec::new());
        durable.complete_episode(&b2).await.unwrap();
        assert!(durable.delete_episode(c.id).await.unwrap());
        durable.create_episode(&d).await.unwrap();
        let listed = scan_all_versions(&durable).await.unwrap();
        // Written (and indexed) after the version list was read, as while serving.
        durable.create_episode(&e).await.unwrap();
        index.insert(&e.summary()).unwrap();

        let mut differ = differences(&index, listed).unwrap();
        differ.sort();
        let mut expected = vec![b.id, c.id, d.id, e.id];
        expected.sort();
        assert_eq!(differ, expected);
        assert_eq!(apply(&index, &durable, &differ).await.unwrap(), (3, 1));
        let mut held = index.versions().unwrap();
        held.sort();
        assert_eq!(held, vec![(a.id, 1), (b.id, 2), (d.id, 1), (e.id, 1)]);
    }
}
