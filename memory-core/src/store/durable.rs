//! The durable store contract: the source of truth for episodes.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::episode::{Episode, EpisodeSummary, Step};
use crate::error::Result;
use crate::id::EpisodeId;

/// A page request for [`DurableStore::list_episodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Only episodes of this namespace are listed.
    pub namespace: String,
    /// Resume after this id (the previous page's [`Page::next_after`]); `None` starts at the
    /// oldest episode.
    pub after: Option<EpisodeId>,
    /// Page size; the caller has already checked it against `Limits::max_page_size`.
    pub limit: usize,
}

/// One page of a listing, in ascending id (creation time) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// `Some(cursor)` exactly when more items exist after this page; pass it as
    /// [`ListRequest::after`] to continue. `None` means the listing is complete.
    pub next_after: Option<EpisodeId>,
}

/// A point in a durable store's history of writes (see [`DurableStore::change_mark`]): the
/// write's place in the store's order (`seq`) and a random number drawn for that write
/// (`mark`), which tells this store's history from another's with the same `seq` (a restored
/// backup that was written to since, another store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeMark {
    /// The write's place in the store's order of writes.
    pub seq: u64,
    /// The random number drawn for that write.
    pub mark: u64,
}

/// Counters of a durable store's writes since it was opened, for stores that group writes
/// into transactions (see [`DurableStore::write_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Transactions committed (each holds one or more operations).
    pub batches: u64,
    /// Operations that took effect (their transaction committed).
    pub operations: u64,
    /// Operations that failed alone (conflict, not found, …) while their batch committed.
    pub failed_operations: u64,
    /// Transactions that could not begin or commit; all their operations failed.
    pub failed_batches: u64,
    /// Committed transactions by number of operations: `batch_sizes[i]` counts batches of
    /// 2^i to 2^(i+1) − 1 operations (1, 2–3, 4–7, …), the last bucket everything from 128.
    pub batch_sizes: [u64; 8],
    /// The most operations one committed transaction held.
    pub largest_batch: u64,
}

impl WriteStats {
    /// The bucket of [`WriteStats::batch_sizes`] a batch of `ops` operations falls in.
    pub fn batch_bucket(ops: u64) -> usize {
        (63 - ops.max(1).leading_zeros() as usize).min(7)
    }

    /// Mean operations per committed transaction (0 when none committed).
    pub fn mean_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            (self.operations + self.failed_operations) as f64 / self.batches as f64
        }
    }
}

/// The source of truth. Every method is atomic: it either takes full effect or none.
///
/// **Durability.** When a write method returns `Ok`, its effect survives a process crash, and
/// (unless the backend documents a relaxed setting that the user chose) a power loss.
/// When it returns `Err`, the effect either did not happen or, for errors that leave the
/// outcome unknown (a lost connection mid-commit), the caller must re-read before retrying.
///
/// **Versions.** An episode is created at the version it carries (1 for a new episode).
/// `complete_episode` and `update_episode` carry the *next* version: the store applies them only
/// if the stored version is exactly one less, else `Conflict`. Step appends leave the version
/// alone.
///
/// **Summaries.** Every write that changes an episode also writes its
/// [`EpisodeSummary`] in the same transaction, so [`DurableStore::scan_summaries`] always agrees
/// with [`DurableStore::get_episode`].
#[async_trait]
pub trait DurableStore: Send + Sync + 'static {
    /// Insert `episode` (in any state, with any steps it carries) and its summary.
    /// `Conflict` if the id already exists.
    async fn create_episode(&self, episode: &Episode) -> Result<()>;

    /// Append `steps` to an in-progress episode, all or none. `steps` must be non-empty with
    /// consecutive `seq`s starting at the number of steps already stored, else `Conflict`;
    /// `NotFound` for an unknown episode; `AlreadyCompleted` for a completed one.
    async fn append_steps(&self, id: EpisodeId, steps: &[Step]) -> Result<()>;

    /// Complete an in-progress episode in one transaction: the episode row (outcome, reward,
    /// reflection, embedding, `completed_at`, version), any of `episode.steps` not yet stored,
    /// and the summary. `NotFound`, `AlreadyCompleted`, or `Conflict` on a version mismatch or
    /// when fewer steps are given than are stored.
    async fn complete_episode(&self, episode: &Episode) -> Result<()>;

    /// Replace the episode-level fields (context, outcome, reward, reflection, embedding,
    /// `completed_at`, version) of a stored episode, and its summary; steps are untouched.
    /// `NotFound`, or `Conflict` on a version mismatch.
    async fn update_episode(&self, episode: &Episode) -> Result<()>;

    /// Delete an episode, its steps and summary. `Ok(false)` if it did not exist.
    async fn delete_episode(&self, id: EpisodeId) -> Result<bool>;

    /// The episode with all its steps in `seq` order, or `None`.
    async fn get_episode(&self, id: EpisodeId) -> Result<Option<Episode>>;

    /// Episodes of one namespace in ascending id order, one page at a time. Never truncates
    /// silently: `next_after` says whether more exist.
    async fn list_episodes(&self, request: &ListRequest) -> Result<Page<Episode>>;

    /// Summaries of all episodes of all namespaces in ascending id order, after `after`, at most
    /// `limit`: the bulk scan used to rebuild the index.
    async fn scan_summaries(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<EpisodeSummary>>;

    /// `(id, version)` of all episodes of all namespaces in ascending id order, after `after`,
    /// at most `limit`: what an index opened from a snapshot, and reconciliation, compare
    /// with. (No default:
    /// a slow default would be silently kept by any wrapper that forgot to forward it.)
    async fn scan_versions(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<(EpisodeId, u64)>>;

    /// The store's change mark: where its history of writes stands. It differs, but for a
    /// chance of 2^-64, between two reads with any episode or summary created, changed or
    /// deleted in between (by this process or any other writer of the same store), and stays
    /// the same across reads and failed writes. An index snapshot written with the mark it
    /// matched needs no comparison with [`DurableStore::scan_versions`] at the next open if
    /// the mark is still the same, and re-reads only [`DurableStore::changed_since`] the mark
    /// when the store still remembers it. (No default, for the same reason.)
    async fn change_mark(&self) -> Result<ChangeMark>;

    /// The ids of the episodes created, changed or deleted since `since` (a mark this store
    /// returned), each once, in no particular order: `None` when `since` is not a point of
    /// this store's history any more (it came from another store, the store was restored
    /// from a backup taken before it, or more writes followed it than the store remembers,
    /// see its docs). An id listed may have been written back to what it was; an id not
    /// listed was not written since. (No default, for the same reason.)
    async fn changed_since(&self, since: ChangeMark) -> Result<Option<Vec<EpisodeId>>>;

    /// The summaries of those of `ids` that exist, in no particular order (a missing id is
    /// left out): what catching an index snapshot up re-reads. Callers pass at most a few
    /// thousand ids at a time.
    async fn summaries_of(&self, ids: &[EpisodeId]) -> Result<Vec<EpisodeSummary>>;

    /// Finish every write accepted so far, then release the store's resources; later calls
    /// may fail with `ShuttingDown`. Idempotent. The default does nothing.
    async fn close(&self) -> Result<()> {
        Ok(())
    }

    /// Write counters, for stores that group writes into transactions; `None` (the default)
    /// for stores that do not.
    fn write_stats(&self) -> Option<WriteStats> {
        None
    }
}

/// Every summary of `store`, paging through [`DurableStore::scan_summaries`], all held at once
/// (the engine's index rebuilds do not use it: they add each page to the index as it comes).
pub async fn scan_all_summaries(store: &dyn DurableStore) -> Result<Vec<EpisodeSummary>> {
    all_pages(|after| store.scan_summaries(after, 10_000)).await
}

/// Every `(id, version)` of `store`, in id order, paging through
/// [`DurableStore::scan_versions`]: what an index opened from a snapshot, and reconciliation,
/// compare with.
pub async fn scan_all_versions(store: &dyn DurableStore) -> Result<Vec<(EpisodeId, u64)>> {
    all_pages(|after| store.scan_versions(after, 50_000)).await
}

/// Every item of an id-ordered paged read: `page(after)` is called with `None`, then with each
/// page's `next_after`, until a page has none.
async fn all_pages<T, F, Fut>(page: F) -> Result<Vec<T>>
where
    F: FnMut(Option<EpisodeId>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>>>,
{
    let mut all = Vec::new();
    each_page(page, |items| {
        all.extend(items);
        Ok(())
    })
    .await?;
    Ok(all)
}

/// Hand each page of an id-ordered paged read to `each` as it arrives (`page` is called as
/// for [`all_pages`]); stops at the first error of either.
pub(crate) async fn each_page<T, F, Fut>(
    mut page: F,
    mut each: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<()>
where
    F: FnMut(Option<EpisodeId>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>>>,
{
    let mut after = None;
    loop {
        let got = page(after).await?;
        each(got.items)?;
        match got.next_after {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}
