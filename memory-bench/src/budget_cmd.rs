//! `memory-bench budget`: ingest many episodes under a memory budget far below what their
//! index needs, and report peak RSS and whether queries stayed exact.
//!
//! Opens the embedded default in a fresh directory with index snapshots and
//! `memory_budget_bytes = --budget-mib`, imports `--episodes N` synthetic episodes (64
//! concurrent tasks), sampling the process's peak RSS (`VmHWM`), its RSS, the live Rust heap
//! (now, and the highest since the last line: [`crate::heap`]), the engine's budget
//! metrics and the redb cache's entries (its bookkeeping costs about 100 bytes an entry in
//! memory, outside the budget), then answers `--queries Q` distinct queries. It then shuts
//! down, reopens the same files without a budget (the whole index in memory) and checks that
//! every query returns the same episodes with the same lexical scores. The peak RSS reported is the one reached
//! before the shutdown; the shutdown (which writes a snapshot) is reported on a line of its
//! own. Never touches the user's data directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memory_core::retrieval::RetrievalQuery;
use memory_core::{EpisodeId, Error, MemoryConfig, Result, SelfLearningMemory};

use crate::heap::{PeakSampler, live_bytes};
use crate::index_cmd::{peak_rss_bytes, rss_bytes};
use crate::open_cmd::{fill, open_with};
use crate::synthetic::{Generator, Shape};

async fn answers(
    m: &SelfLearningMemory,
    queries: &[RetrievalQuery],
) -> Result<Vec<Vec<(EpisodeId, u64)>>> {
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let hits = m.retrieve(q.clone()).await?;
        out.push(
            hits.iter()
                .map(|h| {
                    let b = h.breakdown;
                    (h.episode.id, (b.lexical + b.feedback).to_bits())
                })
                .collect(),
        );
    }
    Ok(out)
}

/// Parse `--episodes N`, `--budget-mib M`, `--queries Q`, `--dir PATH`, then run.
pub async fn run(args: &[String]) -> Result<()> {
    let mut episodes = 2_000_000usize;
    let mut budget_mib = 512u64;
    let mut queries = 200usize;
    let mut dir: Option<PathBuf> = None;
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| Error::invalid(args[i].clone(), "a number", value.clone()))
        };
        match args[i].as_str() {
            "--episodes" => episodes = number()? as usize,
            "--budget-mib" => budget_mib = number()?,
            "--queries" => queries = number()? as usize,
            "--dir" => dir = Some(value.clone().into()),
            other => {
                return Err(Error::invalid(
                    "argument",
                    "--episodes N, --budget-mib M, --queries Q or --dir PATH",
                    other,
                ));
            }
        }
        i += 2;
    }
    let tmp = tempfile::tempdir().map_err(|e| Error::storage("temp dir").with_source(e))?;
    let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|e| Error::storage("data dir").with_source(e))?;
    let budget = budget_mib << 20;
    let config = MemoryConfig {
        data_dir: dir.clone(),
        index_snapshot_interval: None,
        memory_budget_bytes: Some(budget),
        ..MemoryConfig::default()
    };
    let hot = config.hot_cache_bytes;
    let m = Arc::new(open_with(&dir, true, config).await?);
    let mut g = Generator::new(42, Shape::default());
    let started = Instant::now();
    let mut done = 0;
    let heap = PeakSampler::start();
    println!(
        "| episodes | elapsed s | peak RSS MiB | RSS now MiB | live heap now / highest MiB | \
         index budgeted MiB | spilled shards | queues folded | redb cache entries / MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    while done < episodes {
        let n = (episodes - done).min(250_000);
        fill(&m, &mut g, n).await?;
        done += n;
        let s = m.metrics();
        println!(
            "| {done} | {:.0} | {} | {} | {} / {} | {:.1} | {} | {} | {} / {} |",
            started.elapsed().as_secs_f64(),
            peak_rss_bytes().unwrap_or(0) >> 20,
            rss_bytes().unwrap_or(0) >> 20,
            live_bytes() >> 20,
            heap.take() >> 20,
            s.index_budgeted_bytes as f64 / f64::from(1 << 20),
            s.index_spilled_shards,
            s.index_shard_folds,
            s.cache.entries,
            s.cache.bytes >> 20,
        );
    }
    // Let the job catch up with the last writes, then ask.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut qg = Generator::new(7, Shape::default());
    let qs: Vec<RetrievalQuery> = (0..queries)
        .map(|k| {
            let (ns, domain, text) = qg.query();
            let q = RetrievalQuery::new(ns, text).limit(5);
            if k % 4 == 0 { q } else { q.domain(domain) }
        })
        .collect();
    let before = m.metrics();
    let t = Instant::now();
    let under_budget = answers(&m, &qs).await?;
    let query_time = t.elapsed();
    let s = m.metrics();
    let peak = peak_rss_bytes().unwrap_or(0);
    println!(
        "\nbudget {budget_mib} MiB (hot cache {} MiB); {episodes} episodes indexed: {}; \
         peak RSS {} MiB (now {} MiB); live heap {} MiB, highest during the queries {} MiB; \
         index budgeted {:.1} MiB, index estimate {:.1} MiB, spilled shards \
         {}, in-progress {} bytes; {queries} queries in {:.2} s ({:.1} ms each, shards loaded \
         on demand: {} loads, {} spills, {} queues folded during the queries; freed memory handed back to \
         the system {} times during ingest, {} during the queries)",
        hot >> 20,
        s.indexed_episodes,
        peak >> 20,
        rss_bytes().unwrap_or(0) >> 20,
        live_bytes() >> 20,
        heap.take() >> 20,
        s.index_budgeted_bytes as f64 / f64::from(1 << 20),
        s.index_memory_bytes as f64 / f64::from(1 << 20),
        s.index_spilled_shards,
        s.in_progress_bytes,
        query_time.as_secs_f64(),
        query_time.as_secs_f64() * 1e3 / queries.max(1) as f64,
        s.index_shard_loads - before.index_shard_loads,
        s.index_shard_spills - before.index_shard_spills,
        s.index_shard_folds - before.index_shard_folds,
        before.index_memory_releases,
        s.index_memory_releases - before.index_memory_releases,
    );
    let t = Instant::now();
    m.shutdown().await?;
    if let Some((written, took)) = m.snapshot_writes().and_then(|w| w.last) {
        println!(
            "shutdown in {:.2} s, its snapshot {} shards ({} spilled, {} linked from their spill \
             file), {} bytes in {:.2} s; peak RSS {} MiB; live heap highest during the shutdown \
             {} MiB",
            t.elapsed().as_secs_f64(),
            written.shards,
            s.index_spilled_shards,
            written.linked,
            written.bytes,
            took.as_secs_f64(),
            peak_rss_bytes().unwrap_or(0) >> 20,
            heap.take() >> 20,
        );
    }
    drop(m);
    let full = open_with(
        &dir,
        true,
        MemoryConfig {
            data_dir: dir.clone(),
            index_snapshot_interval: None,
            ..MemoryConfig::default()
        },
    )
    .await?;
    let reference = answers(&full, &qs).await?;
    let same = reference == under_budget;
    println!(
        "unbudgeted reopen: index estimate {:.1} MiB; the {queries} answers are {}",
        full.metrics().index_memory_bytes as f64 / f64::from(1 << 20),
        if same { "identical" } else { "DIFFERENT" }
    );
    full.shutdown().await?;
    if same {
        Ok(())
    } else {
        Err(Error::storage(
            "answers under the budget differ from the unbudgeted index",
        ))
    }
}
