//! Retrieval end to end through the facade (issue 4): `SelfLearningMemory::retrieve` on the
//! embedded default (a local libsql file with fsync per commit and a redb cache, opened with
//! `open_embedded` in a temp directory), holding each size of `MEMORY_BENCH_E2E_SIZE` (default 10,000; a
//! comma-separated list)
//! synthetic episodes imported through `import_episode` by 64 concurrent tasks.
//!
//! Every hit is loaded from the cache: `import_episode` caches completed episodes, so no
//! query reads the durable store. Two variants, both in the criterion group `retrieve_e2e`:
//! - `hot_tier/N`: the default configuration, whose bounded in-process tier
//!   (`hot_cache_bytes`, 64 MiB by default) sits in front of redb; at large N it holds only
//!   part of the episodes, so some hits are redb reads;
//! - `redb_only/N`: the same files reopened with `hot_cache_bytes = 0`, so each hit is a redb
//!   read and a decode.
//!
//! Queries: `MEMORY_BENCH_QUERIES` (default 2,000) distinct domain-scoped queries drawn like
//! the episodes, limit 5, cycled through. Criterion reports means; the bench then times each
//! query once and prints p50/p99 for both variants and for the index alone (a
//! `SpatiotemporalIndex` bulk-built from the same summaries, `Retriever::search`), so the
//! share of loading hits shows; all go to `retrieve-e2e-percentiles.json` in criterion's
//! output directory. The bench never asserts a speed.

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use memory_bench::embedded::open_embedded;
use memory_bench::synthetic::Generator;
use memory_core::index::SpatiotemporalIndex;
use memory_core::retrieval::{RetrievalConfig, RetrievalFlags, RetrievalQuery, Retriever};
use memory_core::{Episode, MemoryConfig, SelfLearningMemory};

use support::{Percentiles, number_from_env, shape_from_env, sizes_from_env};

/// Concurrent importers: enough to fill group commits.
const IMPORTERS: usize = 64;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Import `episodes` through the facade with [`IMPORTERS`] tasks; every import must store.
async fn populate(memory: &SelfLearningMemory, episodes: Vec<Episode>) {
    let per_task = episodes.len().div_ceil(IMPORTERS).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    let mut rest = episodes;
    while !rest.is_empty() {
        let chunk: Vec<Episode> = rest.drain(..per_task.min(rest.len())).collect();
        let memory = memory.clone();
        tasks.spawn(async move {
            for e in &chunk {
                assert!(memory.import_episode(e).await.expect("import"), "stored");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("an import task panicked");
    }
}

/// Each query once through the facade, timed on its own; checks every hit is in scope.
fn time_each(
    rt: &tokio::runtime::Runtime,
    memory: &SelfLearningMemory,
    queries: &[RetrievalQuery],
) -> Vec<Duration> {
    rt.block_on(async {
        let mut samples = Vec::with_capacity(queries.len());
        let mut hits = 0usize;
        for q in queries {
            let t = Instant::now();
            let got = memory.retrieve(q.clone()).await.expect("retrieve");
            samples.push(t.elapsed());
            hits += got.len();
            for h in &got {
                assert_eq!(h.episode.context.namespace, q.namespace(), "in scope");
            }
        }
        assert!(hits > 0, "the queries found episodes");
        samples
    })
}

fn bench_variant(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    variant: &str,
    size: usize,
    memory: &SelfLearningMemory,
    queries: &[RetrievalQuery],
) {
    let mut g = c.benchmark_group("retrieve_e2e");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let next = AtomicUsize::new(0);
    g.bench_function(BenchmarkId::new(variant, size), |b| {
        b.to_async(rt).iter(|| {
            let q = queries[next.fetch_add(1, Ordering::Relaxed) % queries.len()].clone();
            let memory = memory.clone();
            async move { black_box(memory.retrieve(q).await.expect("retrieve")) }
        })
    });
    g.finish();
}

/// Populate a fresh engine with `size` episodes and measure both variants.
fn run_size(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    size: usize,
    queries: usize,
    out: &mut Percentiles,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = MemoryConfig {
        data_dir: dir.path().join("data"),
        ..MemoryConfig::default()
    };

    let mut generator = Generator::new(42, shape_from_env());
    let episodes: Vec<Episode> = (0..size).map(|_| generator.episode()).collect();
    let summaries: Vec<_> = episodes.iter().map(Episode::summary).collect();
    let mut qgen = Generator::new(7, shape_from_env());
    let qs: Vec<RetrievalQuery> = (0..queries)
        .map(|_| {
            let (ns, domain, text) = qgen.query();
            RetrievalQuery::new(ns, text).domain(domain).limit(5)
        })
        .collect();

    let memory = rt
        .block_on(open_embedded(config.clone()))
        .expect("open the embedded engine");
    let started = Instant::now();
    rt.block_on(populate(&memory, episodes));
    let took = started.elapsed();
    assert_eq!(memory.index().len(), size, "every episode indexed");
    println!(
        "retrieve_e2e: imported {size} episodes in {:.2} s ({:.0}/s, {IMPORTERS} tasks)",
        took.as_secs_f64(),
        size as f64 / took.as_secs_f64()
    );

    // The index alone over the same summaries and queries, for comparison.
    let retrieval = RetrievalConfig::default();
    let index = Arc::new(SpatiotemporalIndex::new(retrieval.index_config()).expect("index"));
    index.bulk_build(summaries).expect("bulk build");
    let retriever =
        Retriever::new(index, retrieval, Arc::new(RetrievalFlags::default())).expect("retriever");
    let index_only: Vec<Duration> = qs
        .iter()
        .map(|q| {
            let t = Instant::now();
            black_box(retriever.search(q).expect("search"));
            t.elapsed()
        })
        .collect();
    out.record("index_only", size, &index_only);
    drop(retriever);

    bench_variant(c, rt, "hot_tier", size, &memory, &qs);
    out.record("retrieve_e2e/hot_tier", size, &time_each(rt, &memory, &qs));
    rt.block_on(memory.shutdown()).expect("shutdown");
    drop(memory);

    let config = MemoryConfig {
        hot_cache_bytes: 0,
        ..config
    };
    let started = Instant::now();
    let memory = rt
        .block_on(open_embedded(config))
        .expect("reopen without the hot tier");
    println!(
        "retrieve_e2e: reopened ({size} episodes indexed from the durable store) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        memory.index().len(),
        size,
        "every episode indexed at reopen"
    );
    bench_variant(c, rt, "redb_only", size, &memory, &qs);
    out.record("retrieve_e2e/redb_only", size, &time_each(rt, &memory, &qs));
    rt.block_on(memory.shutdown()).expect("shutdown");
}

fn e2e(c: &mut Criterion) {
    let sizes = sizes_from_env("MEMORY_BENCH_E2E_SIZE", "10000");
    let queries = number_from_env("MEMORY_BENCH_QUERIES", 2_000) as usize;
    let rt = runtime();
    let mut out = Percentiles::default();
    for &size in &sizes {
        run_size(c, &rt, size, queries, &mut out);
    }
    out.write_json(
        "retrieve-e2e-percentiles.json",
        serde_json::json!({
            "bench": "memory-bench/benches/retrieve_e2e.rs",
            "sizes": sizes,
            "queries_per_variant": queries,
            "limit": 5,
            "stores": "local libsql file (fsync per commit) + redb cache, open_embedded",
        }),
    );
}

criterion_group!(benches, e2e);
criterion_main!(benches);
