//! Building a [`SelfLearningMemory`]: pick the stores and the config, then `open`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::MemoryConfig;
use crate::engine::facade::SelfLearningMemory;
use crate::error::{Error, Result};
use crate::snapshot::SnapshotDir;
use crate::store::{CacheStore, DurableStore, InMemoryCache, Journal};

/// Collects the parts of an engine instance. Nothing is shared between instances: two engines
/// built from separate stores never see each other's data.
#[derive(Default)]
pub struct MemoryBuilder {
    durable: Option<Arc<dyn DurableStore>>,
    cache: Option<Arc<dyn CacheStore>>,
    journal: Option<Arc<dyn Journal>>,
    snapshots: Option<PathBuf>,
    config: MemoryConfig,
}

impl std::fmt::Debug for MemoryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBuilder")
            .field("durable", &self.durable.is_some())
            .field("cache", &self.cache.is_some())
            .field("journal", &self.journal.is_some())
            .field("snapshots", &self.snapshots)
            .field("config", &self.config)
            .finish()
    }
}

impl MemoryBuilder {
    /// The durable store (the source of truth). Required.
    pub fn durable(mut self, store: impl DurableStore) -> Self {
        self.durable = Some(Arc::new(store));
        self
    }

    /// The cache. Optional: without one, an unbounded [`InMemoryCache`] is used.
    pub fn cache(mut self, cache: impl CacheStore) -> Self {
        self.cache = Some(Arc::new(cache));
        self
    }

    /// The journal that keeps writes while the durable store is unavailable. Optional:
    /// without one, a durable-store outage fails writes (transient errors) instead of
    /// journaling them, and there is no circuit breaker.
    pub fn journal(mut self, journal: impl Journal) -> Self {
        self.journal = Some(Arc::new(journal));
        self
    }

    /// Keep index snapshots in the directory `dir` (created at open): written at shutdown and
    /// every [`MemoryConfig::index_snapshot_interval`], opened at open instead of rebuilding
    /// the index from a full scan of the durable store (docs/operations.md). Spilled shards
    /// live in `dir/spill`, emptied at each open. The directory belongs to this engine alone:
    /// two engines must not share it. Optional: without it, `open` always rebuilds (and a
    /// memory budget is refused).
    pub fn index_snapshots(mut self, dir: impl Into<PathBuf>) -> Self {
        self.snapshots = Some(dir.into());
        self
    }

    /// The configuration (default: [`MemoryConfig::default`]).
    pub fn config(mut self, config: MemoryConfig) -> Self {
        self.config = config;
        self
    }

    /// Validate the configuration, replay any journaled writes left by an earlier run, build
    /// the index (from the snapshot when there is a valid one, caught up with the durable
    /// store; else from a full scan of it), start the background job, and start the engine.
    /// Nothing is served before this returns. Needs a tokio runtime.
    pub async fn open(self) -> Result<SelfLearningMemory> {
        self.config.validate()?;
        let durable = self.durable.ok_or_else(|| {
            Error::invalid(
                "durable",
                "a durable store (MemoryBuilder::durable)",
                "none",
            )
        })?;
        let cache = self.cache.unwrap_or_else(|| Arc::new(InMemoryCache::new()));
        let snapshots = self.snapshots.map(SnapshotDir::new);
        SelfLearningMemory::open_parts(durable, cache, self.journal, snapshots, self.config).await
    }
}
