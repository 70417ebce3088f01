//! The `write` command: one write workload with its throughput and latency percentiles, printed
//! as a Markdown table row for docs/benchmarks.md.

use memory_core::{Error, MemoryConfig, Result};

use crate::workload::{Backend, StepMode, WriteLoad, percentile, run_write_load};

fn value<T: std::str::FromStr>(args: &[String], i: usize, flag: &str) -> Result<T> {
    args.get(i + 1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::invalid(flag, "a number after the flag", "missing or not a number"))
}

/// Parse the flags and run the workload in a fresh temporary directory.
pub async fn run(args: &[String]) -> Result<()> {
    let mut backend = Backend::turso(true);
    let mut load = WriteLoad {
        tasks: 16,
        episodes_per_task: 50,
        steps_per_episode: 10,
        step_mode: StepMode::OneByOne,
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--backend" => {
                backend = match args.get(i + 1).map(String::as_str) {
                    Some("memory") => Backend::Memory,
                    Some("turso") => Backend::turso(true),
                    Some("turso-per-op") => Backend::turso(false),
                    Some(b) if b.starts_with("remote:") => Backend::Remote(b[7..].to_owned()),
                    Some(b) if b.starts_with("replica:") => Backend::Replica(b[8..].to_owned()),
                    other => {
                        return Err(Error::invalid(
                            "--backend",
                            "memory, turso, turso-per-op, remote:<http url> or replica:<http url>",
                            format!("{other:?}"),
                        ));
                    }
                };
                i += 1;
            }
            "--tasks" => {
                load.tasks = value(args, i, "--tasks")?;
                i += 1;
            }
            "--episodes" => {
                load.episodes_per_task = value(args, i, "--episodes")?;
                i += 1;
            }
            "--steps" => {
                load.steps_per_episode = value(args, i, "--steps")?;
                i += 1;
            }
            "--batched" => load.step_mode = StepMode::Batched,
            "--batch-delay-us" => {
                let us: u64 = value(args, i, "--batch-delay-us")?;
                if let Backend::Turso(o) = &mut backend {
                    o.max_batch_delay = std::time::Duration::from_micros(us);
                }
                i += 1;
            }
            "--batch-ops" => {
                let n: usize = value(args, i, "--batch-ops")?;
                if let Backend::Turso(o) = &mut backend {
                    o.max_batch_ops = n;
                }
                i += 1;
            }
            other => return Err(Error::invalid("argument", "a known flag", other)),
        }
        i += 1;
    }
    let dir = tempfile::tempdir()
        .map_err(|e| Error::storage("cannot create a temporary directory").with_source(e))?;
    let mut config = MemoryConfig::default();
    config.limits.max_steps = load.steps_per_episode.max(1);
    let memory = backend.open(dir.path(), config).await?;
    let r = run_write_load(&memory, load).await?;
    memory.shutdown().await?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "| backend | tasks | episodes | steps/episode | step calls | episodes/s | steps/s | step p50 ms | step p99 ms | complete p50 ms | complete p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
        backend.label(),
        load.tasks,
        r.episodes,
        load.steps_per_episode,
        match load.step_mode {
            StepMode::OneByOne => "log_step",
            StepMode::Batched => "log_steps",
        },
        r.episodes_per_sec(),
        r.steps_per_sec(),
        ms(percentile(&r.step_latencies, 0.5)),
        ms(percentile(&r.step_latencies, 0.99)),
        ms(percentile(&r.completion_latencies, 0.5)),
        ms(percentile(&r.completion_latencies, 0.99)),
    );
    Ok(())
}
