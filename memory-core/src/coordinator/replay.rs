//! Replay: draining the journal into the durable store, exactly once per entry, in order.
//!
//! [`ResilientStore::replay`] reads the journal in batches, applies each entry through the
//! circuit breaker (so the first call after a cool-down is the half-open probe), and removes
//! the applied prefix with `Journal::remove_through` after each batch. An entry that has
//! already landed (an ambiguous commit before the outage, or an earlier replay that stopped
//! before trimming the journal) is recognised by the rules in `landing.rs` and skipped; an
//! append of which a prefix landed has only its tail applied. Entries of an episode that a
//! later journaled delete removes are skipped as superseded; an append, completion or update of
//! an episode the durable store does not hold is void (a delete the journal did not order
//! removed the episode first; see [`Landing::Void`]) and is removed without writing. A
//! transient failure stops the replay and leaves the rest for the next call; a non-transient
//! one stops it with an error naming the entry, which stays in the journal with everything
//! after it. Nothing here ever drops an entry it has not applied or proven applied, superseded
//! or void, and nothing runs in the background: the owner calls `replay` periodically.

use std::sync::atomic::Ordering;

use crate::coordinator::landing::{Landing, landing};
use crate::coordinator::resilient::ResilientStore;
use crate::coordinator::write::Write;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{JournalEntry, JournalSeq};

/// What one call of [`ResilientStore::replay`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Entries applied to the durable store by this call (an append of which only the tail
    /// was missing counts once).
    pub applied: u64,
    /// Entries found already applied (ambiguous commits, or a replay interrupted before it
    /// trimmed the journal) and removed without writing.
    pub skipped: u64,
    /// Entries of episodes that a later journaled delete removes, removed without writing.
    pub superseded: u64,
    /// Appends, completions and updates of episodes the durable store did not hold when they
    /// were replayed, removed without writing: journaled while the store could not be read,
    /// they lost a race with a delete the journal did not order (see the module docs). Each
    /// is logged at `warn`.
    pub void: u64,
    /// Journaled writes still pending when the call returned (as this store knows them).
    /// `0` means the journal is drained and writes go direct again.
    pub remaining: u64,
    /// Why the call stopped before draining the journal: the breaker is open (still cooling
    /// down, or the probe failed) or a transient failure of the durable store or the journal.
    /// Call again later.
    pub deferred: Option<Error>,
}

/// What became of one entry.
enum Replayed {
    Applied,
    Skipped,
    Superseded,
    Void,
}

/// Why a batch stopped early.
enum Stop {
    /// Transient: leave the rest for the next call.
    Deferred(Error),
    /// Non-transient: report it; the entry stays.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        if e.is_transient() {
            Stop::Deferred(e)
        } else {
            Stop::Failed(e)
        }
    }
}

impl ResilientStore {
    /// Apply the journal to the durable store in order, exactly once per entry, and switch
    /// back to direct writes when it is empty.
    ///
    /// Returns `Ok` with what was done, also when it stopped early on a transient failure or
    /// an open breaker ([`ReplayReport::deferred`]). Returns `Err` when an entry is refused
    /// for a non-transient reason (the error names its sequence number and episode; it and
    /// every later entry stay journaled), or when the journal fails non-transiently.
    ///
    /// Safe to call concurrently with every other method; concurrent calls of `replay` run
    /// one after the other. Cheap when the store is in direct mode (no I/O).
    pub async fn replay(&self) -> Result<ReplayReport> {
        // Lock 1, held across the whole replay: one replayer owns the journal's head.
        let _replayer = self.replayer.lock().await;
        let mut report = ReplayReport::default();
        if !self.overlay()?.journaling {
            return Ok(report);
        }
        if let Err(e) = self.refresh_if_stale().await {
            return deferred_or_err(report, e, self);
        }
        // Drain without blocking writers...
        loop {
            match self.replay_round(&mut report).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(Stop::Deferred(e)) => return deferred_or_err(report, e, self),
                Err(Stop::Failed(e)) => return Err(e),
            }
        }
        // ...then catch up with what arrived meanwhile while holding lock 2, so that no write
        // can be appended between the last empty read and the switch back to direct.
        let _writer = self.writer.lock().await;
        loop {
            match self.replay_round(&mut report).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(Stop::Deferred(e)) => return deferred_or_err(report, e, self),
                Err(Stop::Failed(e)) => return Err(e),
            }
        }
        self.overlay()?.drained();
        tracing::info!(
            applied = report.applied,
            skipped = report.skipped,
            superseded = report.superseded,
            void = report.void,
            "journal drained; writes go to the durable store again"
        );
        Ok(report)
    }

    /// Replay one batch from the head of the journal; `Ok(false)` when the journal is empty.
    async fn replay_round(&self, report: &mut ReplayReport) -> Result<bool, Stop> {
        let batch = self
            .journal
            .read(None, self.config.replay_batch_size)
            .await?;
        if batch.is_empty() {
            return Ok(false);
        }
        let mut done: Option<JournalSeq> = None;
        let mut stop = None;
        for (seq, entry) in &batch {
            match self.replay_entry(*seq, entry).await {
                Ok(Replayed::Applied) => report.applied += 1,
                Ok(Replayed::Skipped) => report.skipped += 1,
                Ok(Replayed::Superseded) => report.superseded += 1,
                Ok(Replayed::Void) => {
                    report.void += 1;
                    self.void_writes.fetch_add(1, Ordering::Relaxed);
                }
                Err(Stop::Failed(e)) => {
                    stop = Some(Stop::Failed(named(*seq, entry, e)));
                    break;
                }
                Err(deferred) => {
                    stop = Some(deferred);
                    break;
                }
            }
            done = Some(*seq);
        }
        if let Some(seq) = done {
            // If this fails the applied entries stay journaled; the next replay finds them
            // landed and skips them.
            if let Err(e) = self.journal.remove_through(seq).await {
                return Err(match stop {
                    Some(Stop::Failed(refused)) => Stop::Failed(refused),
                    _ => Stop::from(e),
                });
            }
            self.overlay().map_err(Stop::Failed)?.remove_through(seq);
        }
        match stop {
            Some(stop) => Err(stop),
            None => Ok(true),
        }
    }

    /// Apply one entry idempotently. Each durable call goes through the breaker.
    async fn replay_entry(&self, seq: JournalSeq, entry: &JournalEntry) -> Result<Replayed, Stop> {
        let id = entry.episode_id();
        if !matches!(entry, JournalEntry::Delete(_))
            && self.overlay().map_err(Stop::Failed)?.deleted_after(id, seq)
        {
            return Ok(Replayed::Superseded);
        }
        let refusal = match self.call(Write::of(entry).apply(self.inner.as_ref())).await {
            Ok(true) => return Ok(Replayed::Applied),
            // Only a delete answers `false`: nothing was there.
            Ok(false) => return Ok(Replayed::Skipped),
            Err(Stop::Failed(e))
                if matches!(
                    e.kind(),
                    ErrorKind::Conflict | ErrorKind::AlreadyCompleted | ErrorKind::NotFound
                ) =>
            {
                e
            }
            Err(stop) => return Err(stop),
        };
        // Refused: has it landed already?
        let stored = self.call(self.inner.get_episode(id)).await?;
        match landing(entry, stored.as_ref()) {
            Landing::Landed => Ok(Replayed::Skipped),
            Landing::Tail(steps) => {
                self.call(self.inner.append_steps(id, steps)).await?;
                Ok(Replayed::Applied)
            }
            Landing::Void => {
                tracing::warn!(
                    journal_seq = %seq,
                    episode_id = %id,
                    error = %refusal,
                    "journaled write void: its episode was deleted before it could be replayed"
                );
                Ok(Replayed::Void)
            }
            Landing::Missing => Err(Stop::Failed(refusal)),
            Landing::Diverged(why) => Err(Stop::Failed(
                Error::new(refusal.kind(), format!("{} ({why})", refusal.message()))
                    .with_source(refusal),
            )),
        }
    }

    /// One durable call through the breaker.
    async fn call<T, F>(&self, call: F) -> Result<T, Stop>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let Some(ticket) = self.breaker.admit() else {
            return Err(Stop::Deferred(Error::unavailable(
                "replay deferred: the circuit breaker on the durable store is open",
            )));
        };
        let result = call.await;
        ticket.report(&result);
        result.map_err(Stop::from)
    }
}

/// The error for an entry the durable store refused: names the entry, keeps the cause.
fn named(seq: JournalSeq, entry: &JournalEntry, e: Error) -> Error {
    let what = match entry {
        JournalEntry::Create(_) => "create",
        JournalEntry::AppendSteps { .. } => "append_steps",
        JournalEntry::Complete(_) => "complete",
        JournalEntry::Update(_) => "update",
        JournalEntry::Delete(_) => "delete",
    };
    Error::new(
        e.kind(),
        format!(
            "replay stopped at journal entry {seq} ({what} of episode {}): {}; it and every \
             later entry stay journaled",
            entry.episode_id(),
            e.message()
        ),
    )
    .transient(false)
    .with_source(e)
}

/// A transient stop is a deferral (reported, not an error); anything else is the error.
fn deferred_or_err(
    mut report: ReplayReport,
    e: Error,
    store: &ResilientStore,
) -> Result<ReplayReport> {
    if !e.is_transient() {
        return Err(e);
    }
    tracing::warn!(error = %e, "journal replay deferred");
    report.remaining = store.pending_writes() as u64;
    report.deferred = Some(e);
    Ok(report)
}
