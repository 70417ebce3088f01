//! The engine facade: [`SelfLearningMemory`] and its builder.
//!
//! `facade` holds the public API and the order of work in each call; `live` owns the
//! in-progress episodes (step sequencing, per-episode group append, completion hand-off);
//! `gate` admits work and lets shutdown drain it; `permits` bounds concurrent completions.

mod builder;
mod facade;
mod gate;
mod live;
mod permits;

pub use builder::MemoryBuilder;
pub use facade::{RetrievedEpisode, SelfLearningMemory};
pub use permits::PermitStats;
