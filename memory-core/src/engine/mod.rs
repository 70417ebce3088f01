//! The engine facade: [`SelfLearningMemory`] and its builder.
//!
//! `facade` holds the public API and the order of work in each call; `live` owns the
//! in-progress episodes (step sequencing, per-episode group append, completion hand-off);
//! `gate` admits work and lets shutdown drain it; `permits` bounds concurrent completions; `compensate` decides what to undo when a stage of a
//! write fails, `repairs` keeps the repairs owed when an undo fails, `fence` keeps racing reads
//! from refilling the cache with old copies; `reconcile` compares and repairs the stores;
//! `snapshots` builds the index at open (snapshot and catch-up, or rebuild) and persists it;
//! `jobs` runs journal replay, periodic reconciliation and snapshots in the background.

mod builder;
mod compensate;
mod facade;
mod fence;
mod gate;
mod jobs;
mod live;
mod permits;
mod reconcile;
mod repairs;
mod snapshots;

pub use builder::MemoryBuilder;
pub use facade::{RetrievedEpisode, SelfLearningMemory};
pub use permits::PermitStats;
pub use reconcile::ReconcileReport;
pub use snapshots::{Compared, IndexOpen, IndexSource, SnapshotWrites};
