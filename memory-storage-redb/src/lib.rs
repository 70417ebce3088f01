//! The episode cache and the local journal of the episodic-memory engine, each in its own redb
//! file.
//!
//! - [`RedbCache`] implements [`memory_core::store::CacheStore`]: a rebuildable cache of
//!   episodes, bounded in bytes ([`RedbOptions::max_cache_bytes`]) with least-recently-used
//!   eviction. Writes commit with redb's `Durability::None`; a file that was not closed (the
//!   process crashed) opens with an empty cache, so a crash never serves a damaged entry or
//!   one that a later write replaced or removed.
//! - [`RedbJournal`] implements [`memory_core::store::Journal`]: every append and removal is
//!   fsync'd before it returns. Its file is separate so that it opens fast: the cache file can
//!   then open in the background (`memory_core::store::DeferredCache`) while the engine
//!   replays the journal and serves.
//! - [`open_dir`] opens both in a data directory the way the engine's embedded default does:
//!   the journal at once, the cache in the background (a damaged cache file is moved aside).
//! - [`split_legacy_file`] moves the journal out of a cache file of an earlier layout (which
//!   held both).
//!
//! Stored values are `memory_core::record` encodings (versioned and checksummed), so a damaged
//! value is reported as `Corrupt`, never returned as data. Every redb call runs on tokio's
//! blocking pool; every redb error is mapped into [`memory_core::Error`] at this crate's edge,
//! and no redb type appears in its public API. A file can be open once per process: share the
//! handle (they are cheap to clone).
//!
//! ```
//! use memory_core::store::{CacheStore, Journal, JournalEntry};
//! use memory_core::{Episode, EpisodeId, TaskContext};
//! use memory_storage_redb::{RedbCache, RedbJournal, RedbOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> memory_core::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let options = RedbOptions {
//!     max_cache_bytes: 64 * 1024 * 1024,
//!     ..RedbOptions::default()
//! };
//! let cache = RedbCache::open(dir.path().join("cache.redb"), options)?;
//! let ctx = TaskContext::new("agent-1", "retail", "refund");
//! let episode = Episode::new(EpisodeId::new(), "refund order", ctx, memory_core::time::now());
//!
//! cache.put(&episode).await?;
//! assert_eq!(cache.get(episode.id).await?.as_ref(), Some(&episode));
//!
//! let journal = RedbJournal::open(dir.path().join("journal.redb"))?;
//! let seq = journal.append(&JournalEntry::Create(episode)).await?;
//! assert_eq!(journal.read(None, 10).await?[0].0, seq);
//! # Ok(())
//! # }
//! ```

mod cache;
mod dir;
mod error;
mod file;
mod journal;
mod lru;
mod options;

pub use cache::RedbCache;
pub use dir::{CACHE_FILE, DAMAGED_CACHE_FILE, JOURNAL_FILE, open_dir};
pub use file::split_legacy_file;
pub use journal::RedbJournal;
pub use options::RedbOptions;
