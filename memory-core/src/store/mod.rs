//! Storage contracts and the in-process implementations every test builds on.
//!
//! - [`DurableStore`]: the source of truth.
//! - [`CacheStore`]: fast local reads, always rebuildable from the durable store.
//! - [`Journal`]: writes accepted while the durable store is unavailable, replayed later.
//!
//! In-memory implementations ([`InMemoryStore`], [`InMemoryCache`], [`InMemoryJournal`]) and a
//! fault-injecting wrapper ([`Faulty`]) live here too. Nothing in this module knows about
//! libsql or redb; backends map their errors into [`crate::Error`] at their own edge.

mod cache;
mod deferred;
mod durable;
mod fault;
mod hot;
mod journal;
mod memory;
pub mod rules;
mod shared;

pub use cache::{CacheStats, CacheStore, CachedVersion};
pub use deferred::{DeferredCache, DeferredState, MAX_REMEMBERED};
pub(crate) use durable::each_page;
pub use durable::{
    ChangeMark, DurableStore, ListRequest, Page, WriteStats, scan_all_summaries, scan_all_versions,
};
pub use fault::{FaultInjector, FaultPlan, Faulty, Op};
pub use hot::{HotCache, episode_weight};
pub use journal::{Journal, JournalEntry, JournalSeq};
pub use memory::{InMemoryCache, InMemoryJournal, InMemoryStore};
