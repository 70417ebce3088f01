//! Write-path throughput through the facade: completed episodes of 10 steps per second, on the
//! in-memory stores and on the embedded default (libsql file with fsync per commit + redb),
//! with group commit on and off, 1 and 16 concurrent tasks; and `log_step` throughput with 16
//! and 64 tasks. Latency percentiles come from `memory-bench write` (see docs/benchmarks.md).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memory_bench::workload::{Backend, StepMode, WriteLoad, run_write_load};
use memory_core::MemoryConfig;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Time `iters` episodes (spread over `tasks` tasks) on a fresh store.
fn measure(
    rt: &tokio::runtime::Runtime,
    backend: &Backend,
    tasks: usize,
    iters: u64,
    mode: StepMode,
    steps: usize,
) -> Duration {
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = MemoryConfig::default();
        config.limits.max_steps = steps.max(1);
        let memory = backend.open(dir.path(), config).await.expect("open");
        let per_task = (iters as usize).div_ceil(tasks).max(1);
        let load = WriteLoad {
            tasks,
            episodes_per_task: per_task,
            steps_per_episode: steps,
            step_mode: mode,
        };
        let report = run_write_load(&memory, load).await.expect("workload");
        memory.shutdown().await.expect("shutdown");
        // Scale to exactly `iters` episodes' worth of time.
        report
            .elapsed
            .mul_f64(iters as f64 / report.episodes as f64)
    })
}

fn completions(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("complete_10_step_episodes");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    let backends = [Backend::Memory, Backend::turso(true), Backend::turso(false)];
    for backend in &backends {
        for tasks in [1, 16] {
            for (mode, mode_name) in [
                (StepMode::OneByOne, "log_step"),
                (StepMode::Batched, "log_steps"),
            ] {
                let id = format!("{}/{tasks}_tasks/{mode_name}", backend.label());
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| measure(&rt, backend, tasks, iters, mode, 10))
                });
            }
        }
    }
    group.finish();
}

fn steps(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("log_step");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    // One element = one step; each task logs 100 steps into one episode.
    group.throughput(Throughput::Elements(100));
    for backend in &[Backend::Memory, Backend::turso(true)] {
        for tasks in [16, 64] {
            let id = format!("{}/{tasks}_tasks", backend.label());
            group.bench_function(id, |b| {
                b.iter_custom(|iters| measure(&rt, backend, tasks, iters, StepMode::OneByOne, 100))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, completions, steps);
criterion_main!(benches);
