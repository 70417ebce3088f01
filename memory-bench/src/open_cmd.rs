//! `memory-bench open`: time from `open` to the first answered query on the embedded default,
//! with and without an index snapshot.
//!
//! Fills a fresh directory (local libsql file, redb cache and journal, snapshot directory)
//! with `--episodes N` synthetic completed episodes (the seeded `synthetic::Generator`, one
//! step each, imported by 64 concurrent tasks), then measures four opens:
//! **rebuild** (no snapshot directory given: the index is built from a full scan),
//! **snapshot** (after a clean shutdown wrote a fresh snapshot), **after a kill with nothing
//! newer** (a snapshot is written and the engine dropped without shutdown), and **after a
//! kill** (a snapshot is written, `--stale K` more episodes are stored, and the engine is
//! dropped without shutdown, so the snapshot lacks them and open catches them up). Each line reports
//! the open's own account (`index_open()`: snapshot load and the durable store's change mark
//! and, unless the snapshot recorded that mark, version read, which run side by side, then
//! merge and catch-up) and the wall time to the first retrieved hit; the
//! time to open the stores (libsql and the journal), the time `open` took, and when the cache
//! finished opening in the background (`memory_storage_redb::open_dir`) are printed to
//! stderr. A `--dir` that
//! already holds a filled store is measured as it is (its episode count, plus `--stale` more
//! per run). Never touches the user's data directory.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memory_core::retrieval::RetrievalQuery;
use memory_core::{Episode, Error, IndexOpen, MemoryConfig, Result, SelfLearningMemory};
use memory_storage_redb::{JOURNAL_FILE, RedbJournal, RedbOptions, open_dir};
use memory_storage_turso::{TursoOptions, TursoStore};

use crate::index_cmd::rss_bytes;
use crate::synthetic::{Generator, Shape};

async fn open(dir: &Path, snapshots: bool) -> Result<SelfLearningMemory> {
    open_with(
        dir,
        snapshots,
        MemoryConfig {
            data_dir: dir.to_path_buf(),
            index_snapshot_interval: None,
            ..MemoryConfig::default()
        },
    )
    .await
}

/// The embedded default in `dir` with `config`, with index snapshots in `dir/index-snapshot`
/// when `snapshots`.
pub(crate) async fn open_with(
    dir: &Path,
    snapshots: bool,
    config: MemoryConfig,
) -> Result<SelfLearningMemory> {
    let started = Instant::now();
    let durable = TursoStore::open_local(dir.join("memory.db"), TursoOptions::default()).await?;
    let durable_open = started.elapsed();
    let (journal, cache) = open_dir(dir, RedbOptions::default()).await?;
    eprintln!(
        "  stores opened: libsql {:.3} s, redb journal {:.3} s",
        durable_open.as_secs_f64(),
        (started.elapsed() - durable_open).as_secs_f64()
    );
    let cache = Arc::new(cache);
    let opening = cache.clone();
    tokio::spawn(async move {
        let opened = opening.opened().await;
        eprintln!(
            "  redb cache opened in the background after {:.3} s ({})",
            started.elapsed().as_secs_f64(),
            if opened.is_ok() { "ok" } else { "failed" }
        );
    });
    let builder = SelfLearningMemory::builder()
        .durable(durable)
        .journal(journal)
        .cache(cache)
        .config(config);
    let builder = if snapshots {
        builder.index_snapshots(dir.join("index-snapshot"))
    } else {
        builder
    };
    builder.open().await
}

/// Import `n` episodes from `g` with 64 concurrent tasks.
pub(crate) async fn fill(m: &Arc<SelfLearningMemory>, g: &mut Generator, n: usize) -> Result<()> {
    const TASKS: usize = 64;
    let mut left = n;
    while left > 0 {
        let batch: Vec<Episode> = (0..left.min(TASKS * 64)).map(|_| g.episode()).collect();
        left -= batch.len();
        let chunks: Vec<Vec<Episode>> = batch
            .chunks(batch.len().div_ceil(TASKS))
            .map(<[Episode]>::to_vec)
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in chunks {
            let m = m.clone();
            tasks.spawn(async move {
                for e in &chunk {
                    m.import_episode(e).await?;
                }
                Ok::<(), Error>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| Error::storage("an import task panicked").with_source(e))??;
        }
    }
    Ok(())
}

/// Wait (up to a minute) until no engine of this process still holds `dir`'s journal file,
/// outside the timed part: a dropped engine's background shard loads hold it a while, and one
/// was seen holding it for a moment after `shutdown()` returned, at 1.2M episodes.
async fn released(dir: &Path) -> Result<()> {
    let path = dir.join(JOURNAL_FILE);
    let started = Instant::now();
    for tries in 0..6_000 {
        match RedbJournal::open_async(&path).await {
            Ok(journal) => {
                drop(journal);
                if tries > 0 {
                    eprintln!(
                        "  waited {:.3} s for a dropped engine's journal file",
                        started.elapsed().as_secs_f64()
                    );
                }
                return Ok(());
            }
            Err(e) if e.message().contains("already open") => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::storage(format!(
        "{} stayed open for a minute after its engine was dropped",
        path.display()
    )))
}

/// Open, then answer one query; the open's report and the wall time to the first hit.
async fn measure(dir: &Path, snapshots: bool) -> Result<(IndexOpen, Duration)> {
    released(dir).await?;
    let started = Instant::now();
    let m = open(dir, snapshots).await?;
    eprintln!(
        "  open returned after {:.3} s",
        started.elapsed().as_secs_f64()
    );
    let (ns, domain, text) = Generator::new(7, Shape::default()).query();
    let hits = m
        .retrieve(RetrievalQuery::new(ns, text).domain(domain).limit(5))
        .await?;
    let took = started.elapsed();
    if hits.is_empty() {
        return Err(Error::storage("the first query found nothing"));
    }
    let report = m.index_open().clone();
    m.shutdown().await?;
    Ok((report, took))
}

fn line(what: &str, r: &IndexOpen, took: Duration) {
    println!(
        "| {what} | {} | {:?} | {:?} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
        r.episodes,
        r.source,
        r.compared,
        r.caught_up,
        r.removed,
        r.load.as_secs_f64(),
        r.compare.as_secs_f64(),
        r.sync.as_secs_f64(),
        took.as_secs_f64()
    );
}

/// Parse `--episodes N`, `--stale K` and `--dir PATH` (default: a temporary directory), then
/// measure.
pub async fn run(args: &[String]) -> Result<()> {
    let mut episodes = 100_000usize;
    let mut stale = 1_000usize;
    let mut dir: Option<std::path::PathBuf> = None;
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| Error::invalid(args[i].clone(), "a number", value.clone()))
        };
        match args[i].as_str() {
            "--episodes" => episodes = number()?,
            "--stale" => stale = number()?,
            "--dir" => dir = Some(value.clone().into()),
            other => {
                return Err(Error::invalid(
                    "argument",
                    "--episodes N, --stale K or --dir PATH",
                    other,
                ));
            }
        }
        i += 2;
    }
    let tmp = tempfile::tempdir().map_err(|e| Error::storage("temp dir").with_source(e))?;
    let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|e| Error::storage("data dir").with_source(e))?;
    {
        let mut g = Generator::new(42, Shape::default());
        let started = Instant::now();
        // A directory filled by an earlier run is measured again as it is.
        let reuse = dir.join("memory.db").exists();
        let m = Arc::new(open(&dir, true).await?);
        if reuse {
            episodes = m.index_open().episodes;
            for _ in 0..episodes {
                g.episode();
            }
        } else {
            fill(&m, &mut g, episodes).await?;
        }
        m.shutdown().await?;
        if let Some((stats, took)) = m.snapshot_writes().and_then(|w| w.last) {
            eprintln!(
                "  snapshot written at shutdown: {} shards, {} episodes, {} bytes in {:.3} s",
                stats.shards,
                stats.episodes,
                stats.bytes,
                took.as_secs_f64()
            );
        }
        drop(m);
        eprintln!(
            "{} {episodes} episodes in {:.1} s",
            if reuse { "reused" } else { "filled" },
            started.elapsed().as_secs_f64()
        );
        println!(
            "| open | episodes | index from | compared with | caught up | removed | load s | mark, changes or versions read s (alongside load) | then: merge + catch-up, or rebuild s | open → first hit s |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let (r, took) = measure(&dir, false).await?;
        line("rebuild (no snapshot)", &r, took);
        let (r, took) = measure(&dir, true).await?;
        line("snapshot after clean shutdown", &r, took);
        {
            released(&dir).await?;
            let m = open(&dir, true).await?;
            m.write_snapshot().await?;
            // Dropped without shutdown, nothing written since the snapshot.
        }
        let (r, took) = measure(&dir, true).await?;
        line("snapshot after a kill (nothing newer)", &r, took);
        {
            released(&dir).await?;
            let m = Arc::new(open(&dir, true).await?);
            m.write_snapshot().await?;
            fill(&m, &mut g, stale).await?;
            // Dropped without shutdown: the snapshot lacks the last `stale` episodes.
        }
        let (r, took) = measure(&dir, true).await?;
        line(&format!("snapshot after a kill ({stale} newer)"), &r, took);
        let snapshot_bytes: u64 = std::fs::read_dir(dir.join("index-snapshot"))
            .map(|d| {
                d.flatten()
                    .filter_map(|f| f.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        println!(
            "\nsnapshot: {snapshot_bytes} bytes ({:.0} bytes/episode); peak RSS {} MiB",
            snapshot_bytes as f64 / (episodes + stale) as f64,
            rss_bytes().unwrap_or(0) / (1 << 20)
        );
        Ok(())
    }
}
