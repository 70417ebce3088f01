//! What to undo when one stage of a write fails: a pure decision table, tested without I/O.
//!
//! A write goes durable store → cache → index. The durable store is the truth, so:
//! a failed durable write leaves nothing behind in the cache or index; a failed cache write
//! is not the caller's problem (the entry is dropped, a repair is recorded, the write is
//! acknowledged); a failed index update makes the write unacknowledged and is undone in the
//! durable store, because an episode stored but unfindable is exactly what must not happen.
//! The facade executes the plan; any undo that fails becomes a recorded repair
//! ([`super::repairs`]), never a silent loss.

use super::repairs::RepairReason;

/// The write that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// `start_episode`.
    Create,
    /// `import_episode`.
    Import,
    /// `complete_episode`.
    Complete,
    /// `update_episode`.
    Update,
    /// `delete_episode`.
    Delete,
}

/// The stage of the write that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The durable write returned an error (which may hide a commit: an ambiguous outcome).
    Durable,
    /// The cache write or invalidation.
    Cache,
    /// The index update.
    Index,
}

/// One undo step, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Undo {
    /// Forget this instance's in-progress copy; the next use re-reads the durable store.
    ForgetLive,
    /// Drop the cache entry.
    InvalidateCache,
    /// Delete the episode from the durable store again.
    DeleteDurable,
    /// Write the episode's state from before the write back to the durable store, one
    /// version later (versions only grow).
    RestoreDurable,
    /// Index the restored state.
    IndexRestored,
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Undo steps, in order.
    pub(crate) undo: &'static [Undo],
    /// A repair to record even when every undo succeeds.
    pub(crate) record: Option<RepairReason>,
    /// Whether the write is still acknowledged to the caller.
    pub(crate) acknowledge: bool,
}

/// The plan for `write` failing at `stage`.
pub(crate) fn plan(write: WriteKind, stage: Stage) -> Plan {
    use Undo::*;
    use WriteKind::*;
    let (undo, record, acknowledge): (&'static [Undo], _, _) = match (write, stage) {
        // Nothing reached the cache or index; a commit hidden behind the error is a new
        // episode or completion the next read finds in the durable store.
        (Create | Import | Complete, Stage::Durable) => (&[], None, false),
        // A hidden commit would make the cached copy (update) or the in-memory copy
        // (delete) stale: drop them so the next read asks the durable store.
        (Update, Stage::Durable) => (&[InvalidateCache], None, false),
        (Delete, Stage::Durable) => (&[ForgetLive, InvalidateCache], None, false),
        // The cache is only a copy: drop it, have the reconciler check it, acknowledge.
        (_, Stage::Cache) => (&[InvalidateCache], Some(RepairReason::Cache), true),
        (Create | Import, Stage::Index) => (&[DeleteDurable], None, false),
        (Complete | Update, Stage::Index) => (
            &[RestoreDurable, InvalidateCache, IndexRestored],
            None,
            false,
        ),
        // Removing from the index cannot fail; were it to, the durable delete stands and the
        // reconciler removes the orphan entry.
        (Delete, Stage::Index) => (&[], Some(RepairReason::Compensation), true),
    };
    Plan {
        undo,
        record,
        acknowledge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITES: [WriteKind; 5] = [
        WriteKind::Create,
        WriteKind::Import,
        WriteKind::Complete,
        WriteKind::Update,
        WriteKind::Delete,
    ];

    #[test]
    fn a_durable_failure_is_never_acknowledged_and_leaves_no_copy_behind() {
        for w in WRITES {
            let p = plan(w, Stage::Durable);
            assert!(!p.acknowledge, "{w:?}");
            assert!(
                !p.undo.contains(&Undo::DeleteDurable),
                "{w:?}: nothing to undo"
            );
            assert!(
                !p.undo.contains(&Undo::RestoreDurable),
                "{w:?}: nothing to undo"
            );
        }
        // Writes that could have left a copy in the cache drop it.
        assert!(
            plan(WriteKind::Update, Stage::Durable)
                .undo
                .contains(&Undo::InvalidateCache)
        );
        assert!(
            plan(WriteKind::Delete, Stage::Durable)
                .undo
                .contains(&Undo::InvalidateCache)
        );
    }

    #[test]
    fn a_cache_failure_is_acknowledged_invalidated_and_recorded() {
        for w in WRITES {
            let p = plan(w, Stage::Cache);
            assert!(p.acknowledge, "{w:?}");
            assert_eq!(p.undo, &[Undo::InvalidateCache], "{w:?}");
            assert_eq!(p.record, Some(RepairReason::Cache), "{w:?}");
        }
    }

    #[test]
    fn an_index_failure_undoes_the_durable_write() {
        for w in [WriteKind::Create, WriteKind::Import] {
            let p = plan(w, Stage::Index);
            assert!(!p.acknowledge);
            assert_eq!(p.undo, &[Undo::DeleteDurable], "{w:?}");
        }
        for w in [WriteKind::Complete, WriteKind::Update] {
            let p = plan(w, Stage::Index);
            assert!(!p.acknowledge);
            assert_eq!(p.undo[0], Undo::RestoreDurable, "{w:?}: durable first");
            assert!(p.undo.contains(&Undo::InvalidateCache), "{w:?}");
        }
        let d = plan(WriteKind::Delete, Stage::Index);
        assert!(
            d.acknowledge && d.record.is_some(),
            "a durable delete stands"
        );
    }
}
