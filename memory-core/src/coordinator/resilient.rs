//! [`ResilientStore`]: a [`DurableStore`] that keeps accepting writes while the durable store
//! behind it is down, by journaling them, and serves reads that never show stale data.
//!
//! **Modes.** *Direct* (the journal is empty): every call asks the circuit breaker and goes to
//! the durable store. A transient failure while the breaker stays closed is returned (the
//! caller may retry); once the breaker refuses a write, or the failure opened it, the write is
//! appended to the [`Journal`] instead, acknowledged, and the store turns to *journaling*:
//! from then on every write is checked against the effective state ([`View`]) and appended to
//! the journal in call order, so no write overtakes an earlier journaled one.
//! [`ResilientStore::replay`] (in `replay.rs`) drains the journal into the durable store and,
//! when it finds the journal empty, switches back to direct. Non-transient errors are always
//! returned as they are and never journaled.
//!
//! **Reads.** `get_episode` serves the durable copy with the pending journaled writes folded
//! on top; when the durable store cannot be read it serves what the journal alone knows whole
//! (an episode created or completed while journaling), else `Unavailable`. `list_episodes` and
//! the bulk scans (`scan_summaries`, `scan_versions`, `summaries_of`), `change_mark` and
//! `changed_since` return `Unavailable` while journaled writes are pending: a page cannot be
//! merged with the journal without reading around it, and a silently stale listing is worse
//! than a retry.
//!
//! **Locks**, outermost first (a lock is only taken while holding those above it):
//! 1. `replayer` (tokio `Mutex`), held for a whole `replay` across its `.await`s: one replayer
//!    owns the journal's head, so no entry is applied by two replays at once.
//! 2. `writer` (tokio `Mutex`), held by a journaling write across its optional read of the
//!    durable copy and its `Journal::append` (so the check, the append and the overlay update
//!    are one step with respect to other journaling writes, and the journal order is the check
//!    order); by an overlay rebuild across its journal reads; and by replay across its final
//!    catch-up and the switch back to direct (so a writer that chose the journal has appended
//!    before the switch, and none appends after it).
//! 3. `overlay` (std `Mutex`) and the breaker's std `Mutex`: in-memory work only, never held
//!    across an `.await`, never both at once.
//!
//! This file never holds a std lock across an `.await` and never retries on its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tracing::warn;

use crate::coordinator::admission::SharedBreaker;
use crate::coordinator::breaker::BreakerState;
use crate::coordinator::config::ResilienceConfig;
use crate::coordinator::overlay::Overlay;
use crate::coordinator::view::{Base, Verdict, View};
use crate::coordinator::write::Write;
use crate::episode::{Episode, EpisodeSummary, Step};
use crate::error::{Error, Result};
use crate::id::EpisodeId;
use crate::store::{
    ChangeMark, DurableStore, Journal, JournalEntry, JournalSeq, ListRequest, Page,
};

/// A [`DurableStore`] wrapper with a circuit breaker and a write-ahead [`Journal`] for
/// outages. See the module docs for the modes, the reads and the locks.
///
/// Hand it to the engine as `Arc<ResilientStore>` to keep a handle for
/// [`ResilientStore::replay`], which the owner calls periodically (there is no background
/// task here).
pub struct ResilientStore {
    pub(crate) inner: Arc<dyn DurableStore>,
    pub(crate) journal: Arc<dyn Journal>,
    pub(crate) config: ResilienceConfig,
    pub(crate) breaker: SharedBreaker,
    /// Pending entries and the mode flags. Lock 3: never held across `.await`.
    pub(crate) overlay: Mutex<Overlay>,
    /// Lock 2 (see the module docs).
    pub(crate) writer: tokio::sync::Mutex<()>,
    /// Lock 1 (see the module docs).
    pub(crate) replayer: tokio::sync::Mutex<()>,
    /// Journaled writes replay found void since open ([`ReplayReport::void`]).
    ///
    /// [`ReplayReport::void`]: crate::coordinator::ReplayReport::void
    pub(crate) void_writes: AtomicU64,
}

impl std::fmt::Debug for ResilientStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (journaling, pending) = self
            .overlay
            .lock()
            .map(|o| (o.journaling, o.len()))
            .unwrap_or_default();
        f.debug_struct("ResilientStore")
            .field("config", &self.config)
            .field("breaker", &self.breaker.state())
            .field("journaling", &journaling)
            .field("pending", &pending)
            .finish()
    }
}

/// Where the direct path left a write.
enum Direct {
    /// Answer the caller with this.
    Done(Result<bool>),
    /// The breaker refused it, or the failure left the breaker open: journal it.
    Divert,
}

/// Marks the overlay stale if dropped while armed: a journal append whose outcome is unknown
/// (it failed, or the caller's future was dropped mid-append).
struct StaleUnlessDisarmed<'a> {
    overlay: &'a Mutex<Overlay>,
    armed: bool,
}

impl Drop for StaleUnlessDisarmed<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Ok(mut o) = self.overlay.lock()
        {
            o.stale = true;
        }
    }
}

impl ResilientStore {
    /// Wrap `inner` with `journal`. Validates `config`, then reads the whole journal: entries
    /// left by an earlier run (a crash before they were replayed) put the store in journaling
    /// mode with the overlay rebuilt from them, so they are neither overtaken nor hidden.
    pub async fn open(
        inner: Arc<dyn DurableStore>,
        journal: Arc<dyn Journal>,
        config: ResilienceConfig,
    ) -> Result<Self> {
        config.validate()?;
        let store = Self {
            inner,
            journal,
            breaker: SharedBreaker::new(config.breaker),
            config,
            overlay: Mutex::new(Overlay::default()),
            writer: tokio::sync::Mutex::new(()),
            replayer: tokio::sync::Mutex::new(()),
            void_writes: AtomicU64::new(0),
        };
        let pending = store.read_journal().await?;
        store.overlay()?.rebuild(pending);
        Ok(store)
    }

    /// The settings in force.
    pub fn config(&self) -> &ResilienceConfig {
        &self.config
    }

    /// The circuit breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// How many times the breaker changed state so far.
    pub fn breaker_transitions(&self) -> u64 {
        self.breaker.transitions()
    }

    /// Entries in the journal, as the journal reports them.
    pub async fn journal_depth(&self) -> Result<u64> {
        self.journal.depth().await
    }

    /// Journaled writes not yet replayed, as this store knows them (no I/O).
    pub fn pending_writes(&self) -> usize {
        self.overlay.lock().map(|o| o.len()).unwrap_or_default()
    }

    /// Journaled writes that replay removed as void since open: changes to episodes a delete
    /// the journal did not order had removed first (see [`ReplayReport::void`]).
    ///
    /// [`ReplayReport::void`]: crate::coordinator::ReplayReport::void
    pub fn void_writes(&self) -> u64 {
        self.void_writes.load(Ordering::Relaxed)
    }

    /// Whether writes currently go to the journal. A replay loop should call
    /// [`ResilientStore::replay`] while this is true.
    pub fn is_journaling(&self) -> bool {
        self.overlay.lock().map(|o| o.journaling).unwrap_or(true)
    }

    pub(crate) fn overlay(&self) -> Result<MutexGuard<'_, Overlay>> {
        self.overlay
            .lock()
            .map_err(|_| Error::storage("resilient store overlay poisoned by a panic"))
    }

    /// Every entry of the journal, oldest first.
    async fn read_journal(&self) -> Result<Vec<(JournalSeq, JournalEntry)>> {
        let batch = self.config.replay_batch_size;
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.journal.read(after, batch).await?;
            let full = page.len() == batch;
            after = page.last().map(|(s, _)| *s).or(after);
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Rebuild the overlay from the journal if an append's outcome was unknown.
    pub(crate) async fn refresh_if_stale(&self) -> Result<()> {
        if !self.overlay()?.stale {
            return Ok(());
        }
        let _writer = self.writer.lock().await;
        self.refresh_locked().await
    }

    /// [`ResilientStore::refresh_if_stale`] for a caller already holding `writer`.
    async fn refresh_locked(&self) -> Result<()> {
        if !self.overlay()?.stale {
            return Ok(());
        }
        let entries = self.read_journal().await?;
        self.overlay()?.rebuild(entries);
        Ok(())
    }

    /// Call the durable store through the breaker; a refusal is `Unavailable`.
    async fn guarded<T, F>(&self, call: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let Some(ticket) = self.breaker.admit() else {
            return Err(breaker_open());
        };
        let result = call.await;
        ticket.report(&result);
        result
    }

    /// A read the journal cannot be folded into (a listing, a bulk scan, the change mark):
    /// `Unavailable` while journaled writes are pending, else `call` through the breaker.
    async fn unmerged<T, F>(&self, call: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        self.refresh_if_stale().await?;
        let pending = self.overlay()?.len();
        if pending > 0 {
            return Err(replay_pending(pending));
        }
        self.guarded(call).await
    }

    /// Route one write (see the module docs).
    async fn submit(&self, write: Write<'_>) -> Result<bool> {
        loop {
            let diverted = if self.overlay()?.journaling {
                false
            } else {
                match self.direct(write).await {
                    Direct::Done(result) => return result,
                    Direct::Divert => true,
                }
            };
            let _writer = self.writer.lock().await;
            if !diverted && !self.overlay()?.journaling {
                // Replay drained the journal while this write waited: go direct.
                continue;
            }
            return self.journal_write(write).await;
        }
    }

    async fn direct(&self, write: Write<'_>) -> Direct {
        let Some(ticket) = self.breaker.admit() else {
            return Direct::Divert;
        };
        let result = write.apply(self.inner.as_ref()).await;
        ticket.report(&result);
        match result {
            Err(e) if e.is_transient() && self.breaker.state() != BreakerState::Closed => {
                warn!(
                    error = %e,
                    episode_id = %write.id(),
                    "durable store unavailable; journaling the write"
                );
                Direct::Divert
            }
            other => Direct::Done(other),
        }
    }

    /// Check `write` against the effective state and append it to the journal. The caller
    /// holds `writer`.
    async fn journal_write(&self, write: Write<'_>) -> Result<bool> {
        self.refresh_locked().await?;
        let id = write.id();
        let entries = self.overlay()?.entries_for(id);
        let mut view = View::of(Base::Unknown, &entries);
        if !view.is_settled()
            && let Some(ticket) = self.breaker.admit_if_closed()
        {
            // The durable store looks healthy (replay is draining): read its copy to check
            // the write exactly. Never a half-open probe, which belongs to replay.
            let read = self.inner.get_episode(id).await;
            ticket.report(&read);
            match read {
                Ok(stored) => view = View::of(Base::known(stored), &entries),
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
        }
        let existed = match view.check(write)? {
            Verdict::NoOp => return Ok(false),
            Verdict::Journal { existed } => existed,
        };
        {
            let mut o = self.overlay()?;
            if o.len() as u64 >= self.config.max_journal_entries {
                return Err(Error::unavailable(format!(
                    "the journal is full ({} writes waiting for the durable store); retry later",
                    o.len()
                )));
            }
            o.journaling = true;
        }
        let entry = write.to_entry();
        let mut guard = StaleUnlessDisarmed {
            overlay: &self.overlay,
            armed: true,
        };
        let seq = self.journal.append(&entry).await?;
        guard.armed = false;
        self.overlay()?.insert(seq, entry);
        Ok(existed)
    }
}

fn breaker_open() -> Error {
    Error::unavailable("the durable store is unavailable (circuit breaker open)")
}

fn replay_pending(pending: usize) -> Error {
    Error::unavailable(format!(
        "{pending} journaled writes are waiting to be replayed into the durable store; \
         listings resume once the journal is drained"
    ))
}

#[async_trait]
impl DurableStore for ResilientStore {
    async fn create_episode(&self, episode: &Episode) -> Result<()> {
        self.submit(Write::Create(episode)).await.map(drop)
    }

    async fn append_steps(&self, id: EpisodeId, steps: &[Step]) -> Result<()> {
        self.submit(Write::AppendSteps(id, steps)).await.map(drop)
    }

    async fn complete_episode(&self, episode: &Episode) -> Result<()> {
        self.submit(Write::Complete(episode)).await.map(drop)
    }

    async fn update_episode(&self, episode: &Episode) -> Result<()> {
        self.submit(Write::Update(episode)).await.map(drop)
    }

    /// While journaling, `true` also when the episode's existence cannot be known (the
    /// durable store is unreadable and the journal does not mention it): after replay it
    /// certainly does not exist.
    async fn delete_episode(&self, id: EpisodeId) -> Result<bool> {
        self.submit(Write::Delete(id)).await
    }

    async fn get_episode(&self, id: EpisodeId) -> Result<Option<Episode>> {
        self.refresh_if_stale().await?;
        // Snapshot the pending entries *before* reading the durable copy: an entry replayed
        // and removed after the snapshot is then either in the snapshot or in the copy, and
        // the fold skips what the copy already has.
        let entries = self.overlay()?.entries_for(id);
        if entries.is_empty() {
            return self.guarded(self.inner.get_episode(id)).await;
        }
        let mut view = View::of(Base::Unknown, &entries);
        if !view.is_settled() {
            match self.guarded(self.inner.get_episode(id)).await {
                Ok(stored) => view = View::of(Base::known(stored), &entries),
                // The journal's word is all there is: serve a whole episode it claims.
                Err(e) if e.is_transient() && matches!(view, View::Claimed(_)) => {}
                Err(e) if e.is_transient() => {
                    return Err(Error::unavailable(format!(
                        "episode {id} has {} journaled writes not yet replayed and the durable \
                         store is unavailable: {}",
                        entries.len(),
                        e.message()
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        match view {
            View::Present(e) | View::Claimed(e) => Ok(Some(*e)),
            View::Absent => Ok(None),
            View::Inconsistent(why) => Err(Error::unavailable(format!(
                "episode {id}: journaled writes wait for replay, which will stop here ({why})"
            ))),
            View::Unknown | View::Partial(_) => Err(Error::unavailable(format!(
                "episode {id} has journaled writes not yet replayed"
            ))),
        }
    }

    async fn list_episodes(&self, request: &ListRequest) -> Result<Page<Episode>> {
        self.unmerged(self.inner.list_episodes(request)).await
    }

    async fn scan_summaries(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<EpisodeSummary>> {
        self.unmerged(self.inner.scan_summaries(after, limit)).await
    }

    async fn scan_versions(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<(EpisodeId, u64)>> {
        self.unmerged(self.inner.scan_versions(after, limit)).await
    }

    async fn change_mark(&self) -> Result<ChangeMark> {
        self.unmerged(self.inner.change_mark()).await
    }

    async fn changed_since(&self, since: ChangeMark) -> Result<Option<Vec<EpisodeId>>> {
        self.unmerged(self.inner.changed_since(since)).await
    }

    async fn summaries_of(&self, ids: &[EpisodeId]) -> Result<Vec<EpisodeSummary>> {
        self.unmerged(self.inner.summaries_of(ids)).await
    }

    /// Closes the durable store. Journaled writes stay in the journal (durable) for the next
    /// `open` to replay.
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }

    fn write_stats(&self) -> Option<crate::store::WriteStats> {
        self.inner.write_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;
    use crate::store::{InMemoryJournal, InMemoryStore};

    #[tokio::test]
    async fn passes_the_durable_store_conformance_suite_in_direct_mode() {
        let store = ResilientStore::open(
            Arc::new(InMemoryStore::new()),
            Arc::new(InMemoryJournal::new()),
            ResilienceConfig::default(),
        )
        .await
        .unwrap();
        conformance::durable_store(&store).await;
        assert!(!store.is_journaling());
        assert_eq!(store.journal_depth().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn opens_in_journaling_mode_over_a_non_empty_journal() {
        let journal = Arc::new(InMemoryJournal::new());
        let e = conformance::sample_episode("ns");
        journal
            .append(&JournalEntry::Create(e.clone()))
            .await
            .unwrap();
        let store = ResilientStore::open(
            Arc::new(InMemoryStore::new()),
            journal,
            ResilienceConfig::default(),
        )
        .await
        .unwrap();
        assert!(store.is_journaling());
        assert_eq!(store.pending_writes(), 1);
        assert_eq!(store.get_episode(e.id).await.unwrap(), Some(e));
        // The durable store's change mark does not know the journaled write.
        let refused = store.change_mark().await.unwrap_err();
        assert_eq!(refused.kind(), crate::ErrorKind::Unavailable, "{refused}");
    }
}
