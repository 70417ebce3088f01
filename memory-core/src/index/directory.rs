//! The id directory: where each indexed episode lives, and per-id write serialization.
//!
//! Owns the map `EpisodeId → (shard cell, version)` that answers `contains` and lets a replace
//! find the old copy when an episode moves to another shard (a base sorted by id, a vector or,
//! under a memory budget, a file of `dirfile`, plus the changes since its last merge, see
//! `Entries`), and the *claims* that make
//! operations on one id run one at a time (two concurrent inserts of the same id into two
//! shards could otherwise both survive). The directory mutex is held only for map operations,
//! never while a shard lock is taken or waited for; a claim is a mark in the map, not a held
//! lock, so a write to one shard never waits on a write to another shard except for those
//! map operations. This module must never lock a shard.

use std::collections::{HashMap, HashSet};
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::Result;
use crate::id::{EpisodeId, IdRange};

use super::cell::ShardCell;
use super::dirfile::DirFile;
use super::footprint;

/// Where an episode is indexed.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) cell: Arc<ShardCell>,
    pub(crate) version: u64,
}

/// Changes since the last merge: `Some` adds or replaces an entry, `None` removes one.
type Changes = HashMap<EpisodeId, Option<Located>>;

/// The entries as of the last merge.
#[derive(Debug, Clone)]
enum Base {
    /// Sorted by id, no id twice, exactly as long as its entries (shared only while a merge
    /// writes it to a file).
    Memory(Arc<Vec<(EpisodeId, Located)>>),
    /// In a file ([`DirFile`]), once a memory budget applies ([`Directory::merge_job`]).
    File(Arc<DirFile>),
}

impl Default for Base {
    fn default() -> Self {
        Self::Memory(Arc::default())
    }
}

/// The map `EpisodeId → Located`: a base sorted by id holds every entry as of the last
/// merge, and a hash table holds the changes since. In memory (no budget), the base is a
/// vector (32 bytes an entry, no empty room: a hash table of a million entries sits between
/// 44 % and 88 % full, about 69 bytes an entry at one million) and the changes are merged into
/// it in place (no second copy of it) once they pass a sixteenth of it. Under a memory budget
/// the base is a file and merges write a new file on the spill thread while lookups go on,
/// reading the changes being merged between the new changes and the base.
#[derive(Debug, Default)]
struct Entries {
    base: Base,
    /// Changes a merge is writing into a new base file.
    merging: Option<Arc<Changes>>,
    changes: Changes,
    /// Entries in all.
    len: usize,
}

/// Changes held before a merge, at least (a merge of a small base is cheap, but not free).
const MERGE_AT_LEAST: usize = 1_024;
/// Changes held before a file is merged, at most: the memory a directory on file holds stays
/// bounded (about 40 bytes a change), at the price of rewriting the file more often per
/// change past 4M episodes.
const FILE_MERGE_AT_MOST: usize = 1 << 18;

/// The whole content a rebuild installs: entries sorted by id, no id twice, in memory or
/// already written to a file ([`Directory::write_file`]).
#[derive(Debug)]
pub(crate) enum Rebuilt {
    Memory(Vec<(EpisodeId, Located)>),
    File(DirFile),
}

impl Rebuilt {
    /// Entries in all.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Memory(entries) => entries.len(),
            Self::File(file) => file.len(),
        }
    }
}

impl Entries {
    fn from_rebuilt(rebuilt: Rebuilt) -> Self {
        let (len, base) = match rebuilt {
            Rebuilt::Memory(base) => {
                debug_assert!(base.windows(2).all(|w| w[0].0 < w[1].0));
                (base.len(), Base::Memory(Arc::new(base)))
            }
            Rebuilt::File(file) => (file.len(), Base::File(Arc::new(file))),
        };
        Self {
            len,
            base,
            merging: None,
            changes: HashMap::new(),
        }
    }

    fn get(&self, id: EpisodeId) -> Result<Option<Located>> {
        if let Some(change) = self.changes.get(&id) {
            return Ok(change.clone());
        }
        if let Some(change) = self.merging.as_ref().and_then(|m| m.get(&id)) {
            return Ok(change.clone());
        }
        match &self.base {
            Base::Memory(base) => Ok(base
                .binary_search_by_key(&id, |(i, _)| *i)
                .ok()
                .map(|at| base[at].1.clone())),
            Base::File(file) => file.get(id),
        }
    }

    /// Record `id`'s new location (`None`: removed); `existed` says whether it had one.
    fn set(&mut self, id: EpisodeId, location: Option<Located>, existed: bool) {
        match (&location, existed) {
            (Some(_), false) => self.len += 1,
            (None, true) => self.len -= 1,
            _ => {}
        }
        self.changes.insert(id, location);
        self.merge_if_due();
    }

    /// In memory, merge the changes into the base once they pass a sixteenth of it (a
    /// directory on file is merged by [`Directory::merge_job`]).
    fn merge_if_due(&mut self) {
        if self.merging.is_some() || self.changes.len() <= MERGE_AT_LEAST.max(self.len / 16) {
            return;
        }
        if let Base::Memory(base) = &mut self.base
            && let Some(base) = Arc::get_mut(base)
        {
            merge_in_place(base, std::mem::take(&mut self.changes));
        }
    }

    /// The entries in `range` with their versions, in no order: those of the base's range
    /// no change shadows, then the changes in it.
    fn versions_in(&self, range: IdRange) -> Result<Vec<(EpisodeId, u64)>> {
        let merging = self.merging.as_deref();
        let shadowed = |id: &EpisodeId| {
            self.changes.contains_key(id) || merging.is_some_and(|m| m.contains_key(id))
        };
        let mut out = Vec::new();
        match &self.base {
            Base::Memory(base) => {
                let from = range
                    .after
                    .map_or(0, |a| base.partition_point(|(id, _)| *id <= a));
                let to = range
                    .through
                    .map_or(base.len(), |t| base.partition_point(|(id, _)| *id <= t));
                out.extend(
                    base[from..to.max(from)]
                        .iter()
                        .filter(|(id, _)| !shadowed(id))
                        .map(|(id, l)| (*id, l.version)),
                );
            }
            Base::File(file) => file.for_each_in(range, |id, l| {
                if !shadowed(&id) {
                    out.push((id, l.version));
                }
            })?,
        }
        let merged = merging
            .into_iter()
            .flatten()
            .filter(|(id, _)| !self.changes.contains_key(id));
        out.extend(
            merged
                .chain(&self.changes)
                .filter(|(id, _)| range.holds(**id))
                .filter_map(|(id, l)| l.as_ref().map(|l| (*id, l.version))),
        );
        Ok(out)
    }

    fn heap_bytes(&self) -> usize {
        let base = match &self.base {
            Base::Memory(base) => footprint::vec::<(EpisodeId, Located)>(base.capacity()),
            Base::File(file) => file.heap_bytes(),
        };
        let changes = |c: &Changes| footprint::hash_map::<EpisodeId, Option<Located>>(c.capacity());
        base + changes(&self.changes) + self.merging.as_deref().map_or(0, changes)
    }
}

/// Fold `changes` into `base`, in place: the base is never copied, so a merge costs the
/// changes, not a second base (at 2M episodes the base is 61 MiB). Replacements and removals
/// in one forward pass, then the new ids merged in from the back into room grown at the end
/// (for a vector this large, glibc grows it by remapping its pages, not by copying them). The
/// base ends exactly as long as its entries.
fn merge_in_place(base: &mut Vec<(EpisodeId, Located)>, changes: Changes) {
    let mut changes: Vec<(EpisodeId, Option<Located>)> = changes.into_iter().collect();
    changes.sort_unstable_by_key(|(id, _)| *id);
    let mut changes = changes.into_iter().peekable();
    // New ids (a removal of an id the base does not hold changes nothing).
    let mut inserts: Vec<(EpisodeId, Located)> = Vec::new();
    let mut insert = |(id, change): (EpisodeId, Option<Located>)| {
        if let Some(location) = change {
            inserts.push((id, location));
        }
    };
    base.retain_mut(|(id, location)| {
        while let Some(new) = changes.next_if(|(changed, _)| changed < id) {
            insert(new);
        }
        match changes.next_if(|(changed, _)| changed == id) {
            Some((_, Some(replaced))) => {
                *location = replaced;
                true
            }
            Some((_, None)) => false,
            None => true,
        }
    });
    changes.for_each(insert);
    let Some(filler) = inserts.first().cloned() else {
        base.shrink_to_fit();
        return;
    };
    // Room at the end, filled with copies of an entry (overwritten below), then the base and
    // the new ids merged from the back, each entry moved once.
    let room = inserts.len();
    base.reserve_exact(room);
    base.resize_with(base.len() + room, || filler.clone());
    let mut held = base.len() - room;
    for write in (0..base.len()).rev() {
        let Some((id, _)) = inserts.last() else {
            break;
        };
        if held > 0 && base[held - 1].0 > *id {
            base.swap(write, held - 1);
            held -= 1;
        } else if let Some(new) = inserts.pop() {
            base[write] = new;
        }
    }
    base.shrink_to_fit();
}

/// `old` (ascending) with `changes` (ascending, no id twice) applied, ascending.
struct Merged<I: Iterator<Item = Result<(EpisodeId, Located)>>> {
    old: std::iter::Peekable<I>,
    changes: std::iter::Peekable<std::vec::IntoIter<(EpisodeId, Option<Located>)>>,
}

impl<I: Iterator<Item = Result<(EpisodeId, Located)>>> Iterator for Merged<I> {
    type Item = Result<(EpisodeId, Located)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let change = self.changes.peek().map(|(id, _)| *id);
            let old = match self.old.peek() {
                Some(Ok((id, _))) => Some(*id),
                Some(Err(_)) => return self.old.next(),
                None => None,
            };
            match (old, change) {
                (Some(o), c) if c.is_none_or(|c| o < c) => return self.old.next(),
                (None, None) => return None,
                (o, _) => {
                    let (id, change) = self.changes.next()?;
                    if o == Some(id) {
                        self.old.next();
                    }
                    if let Some(location) = change {
                        return Some(Ok((id, location)));
                    }
                }
            }
        }
    }
}

/// A merge of a directory's changes and base into a new base file, made by
/// [`Directory::merge_job`] and run, without the directory's lock, by [`DirMerge::run`].
#[derive(Debug)]
pub(crate) struct DirMerge {
    shared: Arc<Shared>,
    base: Base,
    changes: Arc<Changes>,
    path: PathBuf,
    epoch: u64,
}

impl DirMerge {
    /// Write the new base file and make it the base. On an error the changes stay where
    /// they were (lookups never stopped seeing them) and the next merge takes them again.
    pub(crate) fn run(self) -> Result<()> {
        let mut changes: Vec<(EpisodeId, Option<Located>)> = self
            .changes
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect();
        changes.sort_unstable_by_key(|(id, _)| *id);
        let changes = changes.into_iter().peekable();
        let written = match &self.base {
            Base::Memory(base) => DirFile::write(
                self.path,
                Merged {
                    old: base.iter().map(|(id, l)| Ok((*id, l.clone()))).peekable(),
                    changes,
                },
            ),
            Base::File(file) => file.entries().and_then(|old| {
                DirFile::write(
                    self.path,
                    Merged {
                        old: old.peekable(),
                        changes,
                    },
                )
            }),
        };
        let mut st = self.shared.lock();
        if st.epoch != self.epoch {
            // Replaced meanwhile: the file written is dropped (removed) with no lock held.
            drop(st);
            return written.map(drop);
        }
        let merging = st.entries.merging.take();
        match written {
            Ok(file) => {
                let old = std::mem::replace(&mut st.entries.base, Base::File(Arc::new(file)));
                drop(st);
                drop(old);
                Ok(())
            }
            Err(e) => {
                for (id, change) in merging.iter().flat_map(|m| m.iter()) {
                    st.entries
                        .changes
                        .entry(*id)
                        .or_insert_with(|| change.clone());
                }
                Err(e)
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    entries: Entries,
    /// Ids with an operation in flight.
    busy: HashSet<EpisodeId>,
    /// A whole-index replacement is waiting for, or doing, its swap: no new claims.
    rebuilding: bool,
    /// Bumped whenever `entries` is replaced whole: a merge begun before does not apply.
    epoch: u64,
    /// Directory files named so far.
    files: u64,
}

impl State {
    /// A new file's name in `dir`.
    fn next_file(&mut self, dir: &Path) -> PathBuf {
        self.files += 1;
        dir.join(format!("directory-{}", self.files - 1))
    }

    fn replace(&mut self, entries: Entries) {
        self.entries = entries;
        self.epoch += 1;
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The id directory.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    shared: Arc<Shared>,
}

impl Directory {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.shared
            .changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Claim `id`: wait until no other operation on it (and no rebuild) is in flight, then
    /// mark it busy until the claim is finished or dropped. Fails, claiming nothing, when the
    /// directory's file cannot be read.
    pub(crate) fn claim(&self, id: EpisodeId) -> Result<Claim<'_>> {
        let mut st = self.lock();
        while st.rebuilding || st.busy.contains(&id) {
            st = self.wait(st);
        }
        let current = st.entries.get(id)?;
        st.busy.insert(id);
        Ok(Claim {
            dir: self,
            id,
            current,
            finished: false,
        })
    }

    /// The indexed version of `id`.
    pub(crate) fn version(&self, id: EpisodeId) -> Result<Option<u64>> {
        Ok(self.lock().entries.get(id)?.map(|l| l.version))
    }

    /// The indexed ids in `range` with their versions, in no order (the base's range, and a
    /// pass over the changes since its merge).
    pub(crate) fn versions_in(&self, range: IdRange) -> Result<Vec<(EpisodeId, u64)>> {
        self.lock().entries.versions_in(range)
    }

    /// How many episodes are indexed.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len
    }

    /// Whether the base is a file.
    #[cfg(test)]
    pub(crate) fn on_file(&self) -> bool {
        matches!(self.lock().entries.base, Base::File(_))
    }

    /// A merge of the changes into a new base file in `dir`, when one is due: the base is
    /// still in memory (the first merge moves it to a file), or the changes passed a
    /// sixteenth of the entries (at least 1,024, at most 262,144). `None` while a merge runs
    /// or a rebuild waits. Run it with [`DirMerge::run`], on the spill thread.
    pub(crate) fn merge_job(&self, dir: &Path) -> Option<DirMerge> {
        let mut st = self.lock();
        let e = &st.entries;
        let due = match e.base {
            Base::Memory(_) => e.len > 0,
            Base::File(_) => {
                e.changes.len() > MERGE_AT_LEAST.max((e.len / 16).min(FILE_MERGE_AT_MOST))
            }
        };
        if st.rebuilding || e.merging.is_some() || !due {
            return None;
        }
        let changes = Arc::new(std::mem::take(&mut st.entries.changes));
        st.entries.merging = Some(changes.clone());
        let path = st.next_file(dir);
        Some(DirMerge {
            shared: self.shared.clone(),
            base: st.entries.base.clone(),
            changes,
            path,
            epoch: st.epoch,
        })
    }

    /// Write `entries` (ascending ids, no id twice) to a new file in `dir`, for a
    /// [`Self::rebuild`] (no lock held while it is written).
    pub(crate) fn write_file(
        &self,
        dir: &Path,
        entries: impl Iterator<Item = (EpisodeId, Located)>,
    ) -> Result<DirFile> {
        let path = self.lock().next_file(dir);
        DirFile::write(path, entries.map(Ok))
    }

    /// Replace every entry with `entries` (in memory, they stay there until the next
    /// [`Self::merge_job`]), running `swap` (which replaces the shard map) while no claim is
    /// in flight and none can start, so no write straddles the replacement.
    pub(crate) fn rebuild<R>(&self, entries: Rebuilt, swap: impl FnOnce() -> R) -> R {
        let mut st = self.lock();
        while st.rebuilding {
            st = self.wait(st);
        }
        st.rebuilding = true;
        while !st.busy.is_empty() {
            st = self.wait(st);
        }
        let old = std::mem::take(&mut st.entries);
        st.replace(Entries::from_rebuilt(entries));
        let result = swap();
        st.rebuilding = false;
        drop(st);
        drop(old);
        self.shared.changed.notify_all();
        result
    }

    /// Estimated heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        let st = self.lock();
        st.entries.heap_bytes()
            + footprint::hash_map::<EpisodeId, ()>(st.busy.capacity())
            + size_of::<State>()
    }
}

/// Exclusive right to change one id's entry; released on [`Claim::finish`] or drop.
#[derive(Debug)]
pub(crate) struct Claim<'a> {
    dir: &'a Directory,
    id: EpisodeId,
    current: Option<Located>,
    finished: bool,
}

impl Claim<'_> {
    /// Where the id was when claimed.
    pub(crate) fn current(&self) -> Option<&Located> {
        self.current.as_ref()
    }

    /// Record where the id now is (`None`: not indexed) and release the claim.
    pub(crate) fn finish(mut self, location: Option<Located>) {
        let mut st = self.dir.lock();
        let existed = self.current.is_some();
        let old = match location {
            None if !existed => None,
            // The last entry gone: start afresh (a merge under way no longer applies).
            None if st.entries.len == 1 => {
                st.epoch += 1;
                Some(std::mem::take(&mut st.entries))
            }
            location => {
                st.entries.set(self.id, location, existed);
                None
            }
        };
        st.busy.remove(&self.id);
        drop(st);
        drop(old);
        self.finished = true;
        self.dir.shared.changed.notify_all();
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.dir.lock().busy.remove(&self.id);
            self.dir.shared.changed.notify_all();
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::index::shard::{Shard, ShardKey};

    /// An empty shard of namespace "ns" and `domain`, for entries to point at.
    pub(in crate::index) fn cell(domain: &str) -> Arc<ShardCell> {
        let key = ShardKey {
            namespace: Arc::from("ns"),
            domain: Arc::from(domain),
        };
        Arc::new(ShardCell::new(key, Shard::new(3_600_000_000)))
    }

    /// Every entry in `range` as (id, version), sorted.
    fn listed(directory: &Directory, range: IdRange) -> Vec<(EpisodeId, u64)> {
        let mut v = directory.versions_in(range).unwrap();
        v.sort();
        v
    }

    /// Random inserts, moves and removals through claims, checked against a hash map at each
    /// step; with `dir`, merged into files there, each merge taken at one step and run a few
    /// hundred changes later (lookups meanwhile read the changes being merged).
    fn changes_answer_like_a_hash_map(dir: Option<&Path>) {
        let cells = [cell("a"), cell("b")];
        let which = |l: &Located| usize::from(Arc::ptr_eq(&l.cell, &cells[1]));
        let directory = Directory::default();
        let mut ids: Vec<EpisodeId> = (0..4_000).map(|_| EpisodeId::new()).collect();
        ids.sort();
        let mut model: HashMap<EpisodeId, (u64, usize)> = HashMap::new();
        // Start from a base, as a rebuild does, then change it past several merges.
        let base: Vec<(EpisodeId, Located)> = ids[..1_500]
            .iter()
            .map(|id| {
                model.insert(*id, (1, 0));
                let at = Located {
                    cell: cells[0].clone(),
                    version: 1,
                };
                (*id, at)
            })
            .collect();
        directory.rebuild(Rebuilt::Memory(base), || ());
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let (mut merges, mut job) = (0, None);
        for step in 0..30_000u64 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let id = ids[(seed >> 33) as usize % ids.len()];
            let pending = directory.lock().entries.changes.len();
            let claim = directory.claim(id).unwrap();
            let current = claim.current().map(|l| (l.version, which(l)));
            assert_eq!(current, model.get(&id).copied(), "step {step}");
            if (seed >> 20).is_multiple_of(3) {
                claim.finish(None);
                model.remove(&id);
            } else {
                let c = (seed >> 10) as usize % 2;
                let at = Located {
                    cell: cells[c].clone(),
                    version: step,
                };
                claim.finish(Some(at));
                model.insert(id, (step, c));
            }
            match dir {
                Some(dir) if step % 300 == 0 => {
                    if let Some(job) = job.take() {
                        DirMerge::run(job).unwrap();
                        merges += 1;
                    }
                    job = directory.merge_job(dir);
                }
                Some(_) => {}
                // In memory a merge empties the changes; only a merge empties as many.
                None => {
                    if directory.lock().entries.changes.is_empty() && pending >= MERGE_AT_LEAST {
                        merges += 1;
                    }
                }
            }
            assert_eq!(directory.len(), model.len(), "step {step}");
            let probe = ids[(seed >> 40) as usize % ids.len()];
            assert_eq!(
                directory.version(probe).unwrap(),
                model.get(&probe).map(|(v, _)| *v),
                "step {step}"
            );
        }
        assert!(merges >= 3, "only {merges} merges");
        assert_eq!(directory.on_file(), dir.is_some());
        let expect = |range: IdRange| {
            let mut v: Vec<_> = model
                .iter()
                .filter(|(id, _)| range.holds(**id))
                .map(|(id, (version, _))| (*id, *version))
                .collect();
            v.sort();
            v
        };
        for range in [
            IdRange::default(),
            IdRange {
                after: Some(ids[100]),
                through: Some(ids[2_500]),
            },
            IdRange {
                after: Some(ids[3_900]),
                through: None,
            },
        ] {
            assert_eq!(listed(&directory, range), expect(range), "{range:?}");
        }
        if let Some(job) = job {
            DirMerge::run(job).unwrap();
            assert_eq!(
                listed(&directory, IdRange::default()),
                expect(IdRange::default())
            );
        }
        let mut st = directory.lock();
        let changes = std::mem::take(&mut st.entries.changes);
        if let Base::Memory(base) = &mut st.entries.base {
            let base = Arc::get_mut(base).unwrap();
            merge_in_place(base, changes);
            assert_eq!(base.len(), model.len());
            assert_eq!(base.capacity(), base.len(), "exact size");
            assert!(base.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    #[test]
    fn the_sorted_base_and_its_changes_answer_like_a_hash_map_through_merges() {
        changes_answer_like_a_hash_map(None);
    }

    #[test]
    fn a_base_on_file_and_its_changes_answer_like_a_hash_map_through_merges() {
        let tmp = tempfile::tempdir().unwrap();
        changes_answer_like_a_hash_map(Some(tmp.path()));
        // Every file but the base's was removed.
        assert!(std::fs::read_dir(tmp.path()).unwrap().count() <= 1);
    }

    #[test]
    fn a_failed_merge_keeps_its_changes_and_one_outrun_by_a_rebuild_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let directory = Directory::default();
        let a = cell("a");
        let ids: Vec<EpisodeId> = (0..10).map(|_| EpisodeId::new()).collect();
        for (v, id) in ids.iter().enumerate() {
            let at = Located {
                cell: a.clone(),
                version: v as u64,
            };
            directory.claim(*id).unwrap().finish(Some(at));
        }
        let all = listed(&directory, IdRange::default());
        assert_eq!(all.len(), 10);
        // A directory that does not exist: the write fails, the changes stay.
        let job = directory.merge_job(&tmp.path().join("missing")).unwrap();
        assert!(
            directory.merge_job(tmp.path()).is_none(),
            "one merge at a time"
        );
        assert!(DirMerge::run(job).is_err());
        assert!(!directory.on_file());
        assert_eq!(listed(&directory, IdRange::default()), all);
        let job = directory.merge_job(tmp.path()).unwrap();
        DirMerge::run(job).unwrap();
        assert!(directory.on_file());
        assert_eq!(listed(&directory, IdRange::default()), all);
        // A rebuild while a merge runs: the merge's file is not used.
        let id = EpisodeId::new();
        let at = Located {
            cell: a.clone(),
            version: 1,
        };
        directory.claim(id).unwrap().finish(Some(at));
        let job = directory.merge_job(tmp.path());
        assert!(job.is_none(), "a single change is not worth a merge");
        directory
            .lock()
            .entries
            .changes
            .extend((0..MERGE_AT_LEAST).map(|_| (EpisodeId::new(), None)));
        let job = directory.merge_job(tmp.path()).unwrap();
        directory.rebuild(Rebuilt::Memory(Vec::new()), || ());
        DirMerge::run(job).unwrap();
        assert!(!directory.on_file());
        assert_eq!(directory.len(), 0);
        assert!(listed(&directory, IdRange::default()).is_empty());
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "{:?}",
            tmp.path()
        );
    }
}
