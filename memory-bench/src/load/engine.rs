//! Opening the engine a load run measures: the embedded default (a local libsql file and a
//! redb journal and cache) opened by `embedded::open_embedded`, or, for the outage
//! scenario, the same with the libsql store wrapped in `Faulty` so an outage can be switched
//! on and off. Also the read-back of acknowledged completions straight from the libsql file
//! after the engine is shut down.

use std::path::Path;
use std::sync::Arc;

use memory_core::store::{DurableStore, FaultInjector, Faulty};
use memory_core::{MemoryConfig, Result, SelfLearningMemory};
use memory_storage_redb::{RedbOptions, open_dir};
use memory_storage_turso::{TursoOptions, TursoStore};

use crate::embedded;
use crate::load::client::Fingerprint;

/// The libsql file inside the data directory (as `embedded::open_embedded` names it).
const DB_FILE: &str = "memory.db";

/// Open the embedded default in `config.data_dir`; with `faults`, the libsql store is
/// wrapped in a `Faulty` following them.
pub async fn open(
    config: MemoryConfig,
    faults: Option<Arc<FaultInjector>>,
) -> Result<SelfLearningMemory> {
    let Some(faults) = faults else {
        return embedded::open_embedded(config).await;
    };
    let dir = config.data_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| {
        memory_core::Error::storage(format!("cannot create {}", dir.display())).with_source(e)
    })?;
    let durable = TursoStore::open_local(dir.join(DB_FILE), TursoOptions::default()).await?;
    let (journal, cache) = open_dir(&dir, RedbOptions::default()).await?;
    SelfLearningMemory::builder()
        .durable(Faulty::new(durable, faults))
        .journal(journal)
        .cache(cache)
        .config(config)
        .open()
        .await
}

/// What reading acknowledged completions back found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadBack {
    /// Completions read.
    pub checked: u64,
    /// Not found.
    pub missing: u64,
    /// Found with other content (version or any field or step).
    pub different: u64,
    /// Reads that failed with an error.
    pub errors: u64,
}

impl ReadBack {
    /// Count one comparison.
    pub fn count(&mut self, expected: &Fingerprint, got: Result<Option<memory_core::Episode>>) {
        self.checked += 1;
        match got {
            Ok(Some(e)) if Fingerprint::of(&e) == *expected => {}
            Ok(Some(_)) => self.different += 1,
            Ok(None) => self.missing += 1,
            Err(e) if e.kind() == memory_core::ErrorKind::NotFound => self.missing += 1,
            Err(_) => self.errors += 1,
        }
    }

    /// Completions not read back intact.
    pub fn lost(&self) -> u64 {
        self.missing + self.different + self.errors
    }
}

/// Read every fingerprinted completion straight from the libsql file in `dir` (the engine
/// must be shut down) and compare.
pub async fn read_back_durable(dir: &Path, expected: &[Fingerprint]) -> Result<ReadBack> {
    let store = TursoStore::open_local(dir.join(DB_FILE), TursoOptions::default()).await?;
    let mut found = ReadBack::default();
    for f in expected {
        found.count(f, store.get_episode(f.id).await);
    }
    store.close().await?;
    Ok(found)
}

/// Whether `dir` already holds a database (the run then reuses its data).
pub fn holds_data(dir: &Path) -> bool {
    dir.join(DB_FILE).exists()
}
