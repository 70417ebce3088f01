//! The engine facade: [`SelfLearningMemory`] and its builder.
//!
//! `facade` holds the public API and the order of work in each call; `live` owns the
//! in-progress episodes (step sequencing, per-episode group append, completion hand-off);
//! `gate` admits work and lets shutdown drain it; `permits` bounds concurrent completions; `reconcile` compares and repairs the stores;
//! `jobs` runs journal replay and periodic reconciliation in the background.

mod builder;
mod facade;
mod gate;
mod jobs;
mod live;
mod permits;
mod reconcile;

pub use builder::MemoryBuilder;
pub use facade::{RetrievedEpisode, SelfLearningMemory};
pub use permits::PermitStats;
pub use reconcile::ReconcileReport;
