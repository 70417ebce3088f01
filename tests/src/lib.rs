//! Shared helpers of the workspace integration tests: open the embedded default (a libsql file
//! and a redb file) in a directory, as an application would, and the crash harness's workload
//! ([`crash`]).

use std::path::Path;
use std::sync::Arc;

use memory_core::MemoryBuilder;
use memory_core::store::{FaultInjector, Faulty};
use memory_core::{MemoryConfig, Result, SelfLearningMemory};
use memory_storage_redb::{
    CACHE_FILE, JOURNAL_FILE, RedbCache, RedbJournal, RedbOptions, open_dir,
};
use memory_storage_turso::{TursoOptions, TursoStore};

pub mod crash;

/// The stores of the embedded default in `dir`, with handles kept for inspection.
pub struct Embedded {
    /// The engine.
    pub memory: SelfLearningMemory,
    /// The cache, shared with the engine (for corruption tests).
    pub cache: RedbCache,
}

/// Open the embedded default in `dir` (`memory.db`, `journal.redb`, `cache.redb`) with
/// `config`. Unlike the binaries' opener, the cache is open (and checked) before the engine,
/// so that a test can hold and inspect it; [`open_deferred_with`] opens it as they do.
pub async fn open_embedded(dir: &Path, config: MemoryConfig) -> Result<Embedded> {
    open_embedded_with(dir, config, None).await
}

/// [`open_embedded`], with the durable store wrapped in [`Faulty`] following `faults` when
/// given (the journal and the cache are not wrapped): a test switches the durable store's
/// outage on and off while the engine runs.
pub async fn open_embedded_with(
    dir: &Path,
    config: MemoryConfig,
    faults: Option<Arc<FaultInjector>>,
) -> Result<Embedded> {
    open_parts(dir, config, faults, false).await
}

/// [`open_embedded`] with index snapshots kept in `dir/index-snapshot`, as the embedded
/// default of the binaries does.
pub async fn open_embedded_snapshots(dir: &Path, config: MemoryConfig) -> Result<Embedded> {
    open_parts(dir, config, None, true).await
}

async fn open_parts(
    dir: &Path,
    config: MemoryConfig,
    faults: Option<Arc<FaultInjector>>,
    snapshots: bool,
) -> Result<Embedded> {
    let builder = with_durable(dir, faults).await?;
    let cache = RedbCache::open_async(dir.join(CACHE_FILE), RedbOptions::default()).await?;
    let journal = RedbJournal::open_async(dir.join(JOURNAL_FILE)).await?;
    let builder = if snapshots {
        builder.index_snapshots(dir.join("index-snapshot"))
    } else {
        builder
    };
    let memory = builder
        .cache(cache.clone())
        .journal(journal)
        .config(config)
        .open()
        .await?;
    Ok(Embedded { memory, cache })
}

/// The embedded default in `dir` as the binaries open it (`memory_storage_redb::open_dir`:
/// the journal first, the cache in the background), with the durable store wrapped in
/// [`Faulty`] following `faults` when given.
pub async fn open_deferred_with(
    dir: &Path,
    config: MemoryConfig,
    faults: Option<Arc<FaultInjector>>,
) -> Result<SelfLearningMemory> {
    let builder = with_durable(dir, faults).await?;
    let (journal, cache) = open_dir(dir, RedbOptions::default()).await?;
    builder
        .cache(cache)
        .journal(journal)
        .config(config)
        .open()
        .await
}

/// A builder over `dir/memory.db`, wrapped in [`Faulty`] following `faults` when given.
async fn with_durable(dir: &Path, faults: Option<Arc<FaultInjector>>) -> Result<MemoryBuilder> {
    let durable = TursoStore::open_local(dir.join("memory.db"), TursoOptions::default()).await?;
    Ok(match faults {
        Some(faults) => SelfLearningMemory::builder().durable(Faulty::new(durable, faults)),
        None => SelfLearningMemory::builder().durable(durable),
    })
}

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExample;
