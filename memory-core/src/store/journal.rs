//! The journal contract: writes accepted while the durable store is unavailable.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::episode::{Episode, Step};
use crate::error::Result;
use crate::id::EpisodeId;

/// Position of an entry in a journal; strictly increasing in append order, never reused.
pub type JournalSeq = u64;

/// One durable-store write, recorded for later replay. Each variant replays as the
/// [`crate::store::DurableStore`] method of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JournalEntry {
    /// `create_episode`.
    Create(Episode),
    /// `append_steps`.
    AppendSteps {
        /// The episode.
        id: EpisodeId,
        /// The steps, with their sequence numbers.
        steps: Vec<Step>,
    },
    /// `complete_episode`.
    Complete(Episode),
    /// `update_episode`.
    Update(Episode),
    /// `delete_episode`.
    Delete(EpisodeId),
}

impl JournalEntry {
    /// The episode this entry concerns.
    pub fn episode_id(&self) -> EpisodeId {
        match self {
            JournalEntry::Create(e) | JournalEntry::Complete(e) | JournalEntry::Update(e) => e.id,
            JournalEntry::AppendSteps { id, .. } | JournalEntry::Delete(id) => *id,
        }
    }
}

/// An append-only, durable log of pending writes.
///
/// **Durable on return.** `append` returns only after the entry is on stable storage (fsync):
/// it is the only copy of an acknowledged write until replayed. **Ordered.** `read` returns
/// entries in append order. **Exactly once** is the replayer's job: it removes entries with
/// `remove_through` only after the durable store has applied them.
#[async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Append durably; returns the entry's sequence number.
    async fn append(&self, entry: &JournalEntry) -> Result<JournalSeq>;

    /// Entries after `after` (all if `None`) in order, at most `limit`. A damaged entry is a
    /// `Corrupt` error naming its sequence number, never skipped silently.
    async fn read(
        &self,
        after: Option<JournalSeq>,
        limit: usize,
    ) -> Result<Vec<(JournalSeq, JournalEntry)>>;

    /// Remove every entry with a sequence number `<= seq`, durably.
    async fn remove_through(&self, seq: JournalSeq) -> Result<()>;

    /// Number of entries held (the journal depth).
    async fn depth(&self) -> Result<u64>;
}
