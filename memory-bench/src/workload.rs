//! Write workloads shared by the criterion benches and the `write` command: many tasks
//! recording episodes concurrently through the facade, with per-operation latencies.
//!
//! This module measures; it never changes engine behaviour. Backends are opened exactly as an
//! application would (`Backend::open`).

use std::path::Path;
use std::time::{Duration, Instant};

use memory_core::store::{InMemoryCache, InMemoryStore};
use memory_core::{
    AuthToken, MemoryConfig, NewStep, Outcome, Result, SelfLearningMemory, TaskContext,
};
use memory_storage_redb::{RedbOptions, open_dir};
use memory_storage_turso::{CommitMode, Durability, TursoOptions, TursoStore};

/// Which stores a workload runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `InMemoryStore` + `InMemoryCache`: the cost of the engine without durability.
    Memory,
    /// The embedded default: a local libsql file + a redb cache, with these options
    /// (`TursoOptions::default()` is fsync per commit with group commit).
    Turso(TursoOptions),
    /// A remote libsql server at this `http://` URL (no auth) + a local redb cache.
    Remote(String),
    /// An embedded replica of the server at this `http://` URL + a local redb cache.
    Replica(String),
}

impl Backend {
    /// The embedded default with group commit on or off (fsync per commit either way).
    pub fn turso(group_commit: bool) -> Self {
        Backend::Turso(TursoOptions {
            durability: Durability::Full,
            commit_mode: if group_commit {
                CommitMode::Grouped
            } else {
                CommitMode::PerOperation
            },
            ..TursoOptions::default()
        })
    }

    /// A short label for reports.
    pub fn label(&self) -> String {
        match self {
            Backend::Memory => "in-memory".into(),
            Backend::Turso(o) => match o.commit_mode {
                CommitMode::Grouped => format!(
                    "libsql+redb, group commit (≤{} ops, {} µs)",
                    o.max_batch_ops,
                    o.max_batch_delay.as_micros()
                ),
                CommitMode::PerOperation => "libsql+redb, per-op commit".into(),
            },
            Backend::Remote(url) => format!("remote libsql ({url})+redb"),
            Backend::Replica(url) => format!("embedded replica of {url}+redb"),
        }
    }

    /// Open the backend in `dir` (unused for `Memory`) with `config`.
    pub async fn open(&self, dir: &Path, config: MemoryConfig) -> Result<SelfLearningMemory> {
        let builder = SelfLearningMemory::builder().config(config);
        let none = AuthToken::default();
        let durable = match self {
            Backend::Memory => {
                return builder
                    .durable(InMemoryStore::new())
                    .cache(InMemoryCache::new())
                    .open()
                    .await;
            }
            Backend::Turso(options) => {
                TursoStore::open_local(dir.join("memory.db"), options.clone()).await?
            }
            Backend::Remote(url) => {
                TursoStore::open_remote(url, &none, TursoOptions::default()).await?
            }
            Backend::Replica(url) => {
                TursoStore::open_replica(
                    dir.join("replica.db"),
                    url,
                    &none,
                    None,
                    TursoOptions::default(),
                )
                .await?
            }
        };
        let (journal, cache) = open_dir(dir, RedbOptions::default()).await?;
        builder
            .durable(durable)
            .journal(journal)
            .cache(cache)
            .open()
            .await
    }
}

/// How steps are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepMode {
    /// One `log_step` call per step (each acknowledged on its own).
    OneByOne,
    /// One `log_steps` call per episode.
    Batched,
}

/// A write workload: `tasks` concurrent tasks, each recording `episodes_per_task` episodes of
/// `steps_per_episode` steps.
#[derive(Debug, Clone, Copy)]
pub struct WriteLoad {
    /// Concurrent tasks.
    pub tasks: usize,
    /// Episodes each task records.
    pub episodes_per_task: usize,
    /// Steps per episode.
    pub steps_per_episode: usize,
    /// How steps are sent.
    pub step_mode: StepMode,
}

/// What a workload measured.
#[derive(Debug, Clone, Default)]
pub struct WriteReport {
    /// Wall time of the whole workload.
    pub elapsed: Duration,
    /// Completed episodes.
    pub episodes: usize,
    /// Steps logged.
    pub steps: usize,
    /// Latency of each `log_step`/`log_steps` call.
    pub step_latencies: Vec<Duration>,
    /// Latency of each `complete_episode` call.
    pub completion_latencies: Vec<Duration>,
}

impl WriteReport {
    /// Completed episodes per second.
    pub fn episodes_per_sec(&self) -> f64 {
        self.episodes as f64 / self.elapsed.as_secs_f64()
    }

    /// Steps per second.
    pub fn steps_per_sec(&self) -> f64 {
        self.steps as f64 / self.elapsed.as_secs_f64()
    }
}

/// The `p`-quantile (0.0..=1.0, nearest rank) of `samples`; zero when empty.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A step of a synthetic tool call, ~100 bytes of input.
fn step(task: usize, i: usize) -> NewStep {
    NewStep::new(
        format!("tool_{}", i % 7),
        format!("{{\"task\":{task},\"step\":{i},\"query\":\"look up order and customer\"}}"),
    )
    .with_output("ok")
    .with_latency_ms(12)
}

/// Run `load` on `memory`; every call must succeed.
pub async fn run_write_load(memory: &SelfLearningMemory, load: WriteLoad) -> Result<WriteReport> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..load.tasks {
        let memory = memory.clone();
        tasks.spawn(async move {
            let mut report = WriteReport::default();
            for e in 0..load.episodes_per_task {
                let ctx = TaskContext::new("bench", format!("domain{}", t % 20), "write");
                let id = memory
                    .start_episode(format!("task {t} episode {e}"), ctx)
                    .await?;
                match load.step_mode {
                    StepMode::OneByOne => {
                        for i in 0..load.steps_per_episode {
                            let at = Instant::now();
                            memory.log_step(id, step(t, i)).await?;
                            report.step_latencies.push(at.elapsed());
                        }
                    }
                    StepMode::Batched => {
                        let steps = (0..load.steps_per_episode).map(|i| step(t, i)).collect();
                        let at = Instant::now();
                        memory.log_steps(id, steps).await?;
                        report.step_latencies.push(at.elapsed());
                    }
                }
                report.steps += load.steps_per_episode;
                let at = Instant::now();
                memory
                    .complete_episode(id, Outcome::success("done"))
                    .await?;
                report.completion_latencies.push(at.elapsed());
                report.episodes += 1;
            }
            Ok::<_, memory_core::Error>(report)
        });
    }
    let mut total = WriteReport::default();
    while let Some(joined) = tasks.join_next().await {
        let r = joined.map_err(|e| {
            memory_core::Error::storage("a workload task panicked").with_source(e)
        })??;
        total.episodes += r.episodes;
        total.steps += r.steps;
        total.step_latencies.extend(r.step_latencies);
        total.completion_latencies.extend(r.completion_latencies);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&s, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&s, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&s, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_load_records_everything_it_reports() {
        let dir = tempfile::tempdir().unwrap();
        let m = Backend::turso(true)
            .open(dir.path(), MemoryConfig::default())
            .await
            .unwrap();
        let load = WriteLoad {
            tasks: 4,
            episodes_per_task: 3,
            steps_per_episode: 5,
            step_mode: StepMode::OneByOne,
        };
        let r = run_write_load(&m, load).await.unwrap();
        assert_eq!((r.episodes, r.steps), (12, 60));
        assert_eq!(r.step_latencies.len(), 60);
        let listed = m.list_episodes("bench", None, 100).await.unwrap();
        assert_eq!(listed.items.len(), 12);
        assert!(
            listed
                .items
                .iter()
                .all(|e| e.steps.len() == 5 && e.is_completed())
        );
        m.shutdown().await.unwrap();
    }
}
