//! [`Write`]: one durable-store write in borrowed form, so the direct path costs no copy and
//! the journal path, replay and validation all dispatch through one place.
//!
//! It never decides where a write goes; it only names it, turns it into a
//! [`JournalEntry`] and sends it to a store.

use crate::episode::{Episode, Step};
use crate::error::Result;
use crate::id::EpisodeId;
use crate::store::{DurableStore, JournalEntry};

/// A write of the [`DurableStore`] contract, borrowing its arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Write<'a> {
    /// `create_episode`.
    Create(&'a Episode),
    /// `append_steps`.
    AppendSteps(EpisodeId, &'a [Step]),
    /// `complete_episode`.
    Complete(&'a Episode),
    /// `update_episode`.
    Update(&'a Episode),
    /// `delete_episode`.
    Delete(EpisodeId),
}

impl<'a> Write<'a> {
    /// The borrowed form of a journal entry.
    pub(crate) fn of(entry: &'a JournalEntry) -> Self {
        match entry {
            JournalEntry::Create(e) => Write::Create(e),
            JournalEntry::AppendSteps { id, steps } => Write::AppendSteps(*id, steps),
            JournalEntry::Complete(e) => Write::Complete(e),
            JournalEntry::Update(e) => Write::Update(e),
            JournalEntry::Delete(id) => Write::Delete(*id),
        }
    }

    /// The episode written.
    pub(crate) fn id(&self) -> EpisodeId {
        match self {
            Write::Create(e) | Write::Complete(e) | Write::Update(e) => e.id,
            Write::AppendSteps(id, _) | Write::Delete(id) => *id,
        }
    }

    /// The owned journal entry.
    pub(crate) fn to_entry(self) -> JournalEntry {
        match self {
            Write::Create(e) => JournalEntry::Create(e.clone()),
            Write::AppendSteps(id, steps) => JournalEntry::AppendSteps {
                id,
                steps: steps.to_vec(),
            },
            Write::Complete(e) => JournalEntry::Complete(e.clone()),
            Write::Update(e) => JournalEntry::Update(e.clone()),
            Write::Delete(id) => JournalEntry::Delete(id),
        }
    }

    /// Send it to `store`. The `bool` is `delete_episode`'s answer, `true` for the others.
    pub(crate) async fn apply(self, store: &dyn DurableStore) -> Result<bool> {
        match self {
            Write::Create(e) => store.create_episode(e).await.map(|()| true),
            Write::AppendSteps(id, steps) => store.append_steps(id, steps).await.map(|()| true),
            Write::Complete(e) => store.complete_episode(e).await.map(|()| true),
            Write::Update(e) => store.update_episode(e).await.map(|()| true),
            Write::Delete(id) => store.delete_episode(id).await,
        }
    }
}
