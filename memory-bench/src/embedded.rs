//! Opening the engine on the user's data directory: the embedded default (a local libsql file
//! and a redb cache with its journal, no server) unless `MEMORY_DURABLE_MODE` chooses a remote
//! server or an embedded replica (docs/deployment.md). Shared by every command that works on
//! the user's data (`demo`, `export`, `import`), so they all see the same stores.

use memory_core::{MemoryConfig, Result, SelfLearningMemory};
use memory_storage_redb::{RedbOptions, open_dir};
use memory_storage_turso::{TursoOptions, TursoStore};

/// Open the engine under `config.data_dir`, creating the directory if needed: the durable
/// store `config.durable` describes (by default `memory.db`), the journal `journal.redb` and
/// the cache `cache.redb` (opened in the background, `memory_storage_redb::open_dir`), and the
/// index snapshots in `index-snapshot/`.
pub async fn open_embedded(config: MemoryConfig) -> Result<SelfLearningMemory> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        memory_core::Error::storage(format!("cannot create {}", config.data_dir.display()))
            .with_source(e)
    })?;
    let durable =
        TursoStore::open_target(&config.durable, &config.data_dir, TursoOptions::default()).await?;
    let (journal, cache) = open_dir(&config.data_dir, RedbOptions::default()).await?;
    SelfLearningMemory::builder()
        .durable(durable)
        .journal(journal)
        .cache(cache)
        .index_snapshots(config.data_dir.join("index-snapshot"))
        .config(config)
        .open()
        .await
}

/// The embedded default with the settings of the `MEMORY_*` variables
/// (`MemoryConfig::from_env`; `MEMORY_DATA_DIR` chooses the directory, default `data`).
pub async fn open_default() -> Result<SelfLearningMemory> {
    open_embedded(MemoryConfig::from_env()?).await
}
