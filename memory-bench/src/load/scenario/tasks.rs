//! A set of load tasks whose panics are surfaced as errors, shared by the scenarios.

use memory_core::{Error, Result};
use tokio::task::JoinSet;

/// Spawned load tasks; at most one panic is reported, the rest are joined.
#[derive(Debug, Default)]
pub struct Tasks {
    set: JoinSet<()>,
    /// Most tasks in flight at once.
    pub peak: usize,
}

impl Tasks {
    /// No tasks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawn `task`.
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.set.spawn(task);
        self.peak = self.peak.max(self.set.len());
    }

    /// Tasks not yet joined.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether every task was joined.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Join the tasks that already finished, without waiting.
    pub fn reap(&mut self) -> Result<()> {
        while let Some(done) = self.set.try_join_next() {
            done.map_err(panicked)?;
        }
        Ok(())
    }

    /// Wait for every task.
    pub async fn join_all(&mut self) -> Result<()> {
        while let Some(done) = self.set.join_next().await {
            done.map_err(panicked)?;
        }
        Ok(())
    }
}

fn panicked(e: tokio::task::JoinError) -> Error {
    Error::storage("a load task panicked").with_source(e)
}
