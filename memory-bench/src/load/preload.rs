//! Setup before the measured phase: store the bundled sample and `n` synthetic episodes
//! through the facade (the demo's `ingest_one`: start, `log_steps`, complete), a bounded
//! number at a time, remembering each acknowledged completion. Nothing here is timed into
//! the run's figures.

use std::time::{Duration, Instant};

use memory_core::{Error, Result, SelfLearningMemory};
use tokio::task::JoinSet;

use crate::dataset::{self, DatasetEpisode};
use crate::demo;
use crate::load::client::Acked;
use crate::load::items::Items;

/// Episodes stored at once during the pre-load.
const CONCURRENCY: usize = 64;

/// Store the bundled sample and `n` episodes from `items`; returns how long it took.
pub async fn preload(
    memory: &SelfLearningMemory,
    acked: &std::sync::Arc<Acked>,
    items: &mut Items,
    n: usize,
) -> Result<Duration> {
    let started = Instant::now();
    let sample = dataset::load(&dataset::bundled_sample())?;
    let all = sample
        .into_iter()
        .chain((0..n).map(|_| items.next_episode()));
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    for e in all {
        while tasks.len() >= CONCURRENCY {
            joined(tasks.join_next().await)?;
        }
        let memory = memory.clone();
        let acked = acked.clone();
        tasks.spawn(async move { store(&memory, &acked, e).await });
    }
    while let Some(done) = tasks.join_next().await {
        joined(Some(done))?;
    }
    Ok(started.elapsed())
}

async fn store(memory: &SelfLearningMemory, acked: &Acked, e: DatasetEpisode) -> Result<()> {
    let done = demo::ingest_one(memory, e).await?;
    acked.add_setup(&done);
    Ok(())
}

fn joined(r: Option<std::result::Result<Result<()>, tokio::task::JoinError>>) -> Result<()> {
    match r {
        None => Ok(()),
        Some(r) => r.map_err(|e| Error::storage("a pre-load task panicked").with_source(e))?,
    }
}
