//! The retrieval index alone (issue 4): insert, remove and retrieve at each size of
//! `MEMORY_BENCH_SIZES` (default `10000,100000`; add `1000000` by hand, it takes ~1 GB and
//! minutes to build), on a `SpatiotemporalIndex` bulk-built once per size from the seeded
//! synthetic generator (4 namespaces, 20 domains with Zipf-skewed sizes; vocabulary from
//! `MEMORY_BENCH_VOCABULARY`, `zipf` by default or `small` for the first generator's 78 words).
//!
//! Criterion groups, each benchmark named by its size:
//! - `index/insert`, `index/remove`: fresh ids, in chunks of 100 that are undone (removed,
//!   resp. inserted) outside the timed part, so the index stays between N and N + 100.
//! - `index/retrieve`: `Retriever::search_at` at a fixed `now`, limit 5, cycling through
//!   distinct domain-scoped queries drawn like the episodes (no result cache exists).
//! - `index/retrieve_namespace_wide`: the same texts and namespaces without a domain.
//! - `index/retrieve_with_writers/{other_shards,same_shard}`: retrieval while 8 std threads
//!   insert and remove continuously, each pausing `MEMORY_BENCH_WRITER_PAUSE_US` (default
//!   1000 µs) between writes: into namespaces no query visits, resp. into the one shard
//!   (`tenant0`/`domain0`, the largest) that every query of that variant targets.
//!
//! Criterion reports means. After each retrieve variant the bench also times each of
//! `MEMORY_BENCH_QUERIES` (default 2,000) distinct queries once with `Instant` and prints
//! p50/p99 (`retrieve 100000 p50 … ms p99 … ms`), and at the end writes them all to
//! `index-percentiles.json` in criterion's output directory. The bench never asserts a speed.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use memory_bench::synthetic::Generator;
use memory_core::index::SpatiotemporalIndex;
use memory_core::retrieval::{RetrievalConfig, RetrievalFlags, RetrievalQuery, Retriever};
use memory_core::time::Timestamp;
use memory_core::{EpisodeId, EpisodeSummary};
use std::hint::black_box;

use support::{Percentiles, number_from_env, shape_from_env, sizes_from_env};

/// Inserts (or removes) timed between two untimed undo steps.
const CHUNK: usize = 100;
/// The shard the same-shard writers fill and the same-shard queries search: rank 0 of both
/// Zipf draws, so the largest shard.
const TARGET: (&str, &str) = ("tenant0", "domain0");
/// Episodes each writer thread cycles through (inserted, then removed, then again).
const WRITER_EPISODES: usize = 200;

/// The fixed `now` of every query: 2026-01-01, the end of the generated year of start times.
fn now() -> Timestamp {
    memory_bench::synthetic::span_end()
}

/// One size's index, retriever and queries.
struct Fixture {
    size: usize,
    index: Arc<SpatiotemporalIndex>,
    retriever: Retriever,
    /// Domain-scoped, as the generator draws them.
    scoped: Vec<RetrievalQuery>,
    /// The same namespaces and texts, no domain.
    wide: Vec<RetrievalQuery>,
    /// The same texts, all scoped to [`TARGET`].
    pinned: Vec<RetrievalQuery>,
}

impl Fixture {
    fn build(size: usize, queries: usize) -> Self {
        let shape = shape_from_env();
        let mut generator = Generator::new(42, shape);
        let started = Instant::now();
        let summaries: Vec<_> = (0..size).map(|_| generator.summary()).collect();
        let generated = started.elapsed();
        let config = RetrievalConfig::default();
        let index = Arc::new(SpatiotemporalIndex::new(config.index_config()).expect("index"));
        let started = Instant::now();
        let indexed = index.bulk_build(summaries).expect("bulk build");
        let built = started.elapsed();
        println!(
            "index {size}: generated in {:.2} s, bulk_build {indexed} episodes in {:.2} s, \
             memory_bytes estimate {} B/episode",
            generated.as_secs_f64(),
            built.as_secs_f64(),
            index.memory_bytes() / size.max(1)
        );
        let retriever = Retriever::new(index.clone(), config, Arc::new(RetrievalFlags::default()))
            .expect("retriever");
        let mut qgen = Generator::new(7, shape);
        let drawn: Vec<_> = (0..queries).map(|_| qgen.query()).collect();
        let scoped = drawn
            .iter()
            .map(|(ns, domain, text)| {
                RetrievalQuery::new(ns.clone(), text.clone())
                    .domain(domain.clone())
                    .limit(5)
            })
            .collect();
        let wide = drawn
            .iter()
            .map(|(ns, _, text)| RetrievalQuery::new(ns.clone(), text.clone()).limit(5))
            .collect();
        let pinned = drawn
            .iter()
            .map(|(_, _, text)| {
                RetrievalQuery::new(TARGET.0, text.clone())
                    .domain(TARGET.1)
                    .limit(5)
            })
            .collect();
        Self {
            size,
            index,
            retriever,
            scoped,
            wide,
            pinned,
        }
    }
}

/// Fresh episodes for insert/remove: a pool drawn once, handed out with new ids.
struct Fresh {
    pool: Vec<EpisodeSummary>,
    next: usize,
}

impl Fresh {
    fn new() -> Self {
        let mut g = Generator::new(99, shape_from_env());
        Self {
            pool: (0..4_096).map(|_| g.summary()).collect(),
            next: 0,
        }
    }

    fn batch(&mut self, n: usize) -> Vec<EpisodeSummary> {
        (0..n)
            .map(|_| {
                let mut s = self.pool[self.next % self.pool.len()].clone();
                self.next += 1;
                s.id = EpisodeId::new();
                s
            })
            .collect()
    }
}

/// 8 writer threads inserting and removing until stopped. Dropping them stops and joins them;
/// [`Writers::stop`] also surfaces a writer's panic and reports the writes done.
struct Writers {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    handles: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Writers {
    /// Start 8 writers: into `target` (namespace, domain) when given, else each into its own
    /// namespace `writer{w}` (which no query searches).
    fn start(
        index: &Arc<SpatiotemporalIndex>,
        target: Option<(&str, &str)>,
        pause: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let handles = (0..8u64)
            .map(|w| {
                let index = index.clone();
                let stop = stop.clone();
                let written = written.clone();
                let mut g = Generator::new(1_000 + w, shape_from_env());
                let own: Vec<EpisodeSummary> = (0..WRITER_EPISODES)
                    .map(|_| {
                        let mut s = g.summary();
                        match target {
                            Some((ns, domain)) => {
                                s.context.namespace = ns.to_string();
                                s.context.domain = domain.to_string();
                            }
                            None => s.context.namespace = format!("writer{w}"),
                        }
                        s
                    })
                    .collect();
                std::thread::spawn(move || {
                    let mut k = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let s = &own[k % own.len()];
                        if (k / own.len()).is_multiple_of(2) {
                            index.insert(s).expect("writer insert");
                        } else {
                            index.remove(s.id).expect("writer remove");
                        }
                        k += 1;
                        written.fetch_add(1, Ordering::Relaxed);
                        if !pause.is_zero() {
                            std::thread::sleep(pause);
                        }
                    }
                    for s in &own {
                        index.remove(s.id).expect("writer remove");
                    }
                })
            })
            .collect();
        Self {
            stop,
            written,
            handles,
            started: Instant::now(),
        }
    }

    /// Stop and join every writer (a writer's panic is re-raised); the writes per second.
    fn stop(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        for h in std::mem::take(&mut self.handles) {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
        self.written.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64()
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in std::mem::take(&mut self.handles) {
            // Already unwinding or stopping: the panic, if any, was reported by the thread.
            let _ = h.join();
        }
    }
}

/// Each query once, timed on its own.
fn time_each(retriever: &Retriever, queries: &[RetrievalQuery]) -> Vec<Duration> {
    let now = now();
    queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            black_box(retriever.search_at(q, now).expect("search"));
            t.elapsed()
        })
        .collect()
}

/// A criterion benchmark cycling through `queries`.
fn bench_queries(
    c: &mut Criterion,
    group: &str,
    size: usize,
    fx: &Fixture,
    queries: &[RetrievalQuery],
) {
    let mut g = c.benchmark_group(group);
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let now = now();
    g.bench_function(BenchmarkId::from_parameter(size), |b| {
        let mut i = 0usize;
        b.iter(|| {
            let q = &queries[i % queries.len()];
            i += 1;
            black_box(fx.retriever.search_at(q, now).expect("search"))
        })
    });
    g.finish();
}

fn bench_size(c: &mut Criterion, fx: &Fixture, out: &mut Percentiles, pause: Duration) {
    let size = fx.size;
    let mut fresh = Fresh::new();

    let mut g = c.benchmark_group("index/insert");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function(BenchmarkId::from_parameter(size), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let batch = fresh.batch(left.min(CHUNK));
                let t = Instant::now();
                for s in &batch {
                    black_box(fx.index.insert(s).expect("insert"));
                }
                timed += t.elapsed();
                for s in &batch {
                    fx.index.remove(s.id).expect("writer remove");
                }
                left -= batch.len();
            }
            timed
        })
    });
    g.finish();

    let mut g = c.benchmark_group("index/remove");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function(BenchmarkId::from_parameter(size), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let batch = fresh.batch(left.min(CHUNK));
                for s in &batch {
                    fx.index.insert(s).expect("insert");
                }
                let t = Instant::now();
                for s in &batch {
                    black_box(fx.index.remove(s.id).expect("remove"));
                }
                timed += t.elapsed();
                left -= batch.len();
            }
            timed
        })
    });
    g.finish();
    assert_eq!(
        fx.index.len(),
        size,
        "insert/remove left the index at its size"
    );

    bench_queries(c, "index/retrieve", size, fx, &fx.scoped);
    out.record("retrieve", size, &time_each(&fx.retriever, &fx.scoped));

    bench_queries(c, "index/retrieve_namespace_wide", size, fx, &fx.wide);
    out.record(
        "retrieve_namespace_wide",
        size,
        &time_each(&fx.retriever, &fx.wide),
    );

    let writers = Writers::start(&fx.index, None, pause);
    bench_queries(
        c,
        "index/retrieve_with_writers/other_shards",
        size,
        fx,
        &fx.scoped,
    );
    out.record(
        "retrieve_with_writers/other_shards",
        size,
        &time_each(&fx.retriever, &fx.scoped),
    );
    let rate = writers.stop();
    println!("writers (other shards, {size}): {rate:.0} writes/s");

    // The same-shard queries alone first: the baseline the variant with writers compares to.
    out.record(
        "retrieve_same_shard_no_writers",
        size,
        &time_each(&fx.retriever, &fx.pinned),
    );
    let writers = Writers::start(&fx.index, Some(TARGET), pause);
    bench_queries(
        c,
        "index/retrieve_with_writers/same_shard",
        size,
        fx,
        &fx.pinned,
    );
    out.record(
        "retrieve_with_writers/same_shard",
        size,
        &time_each(&fx.retriever, &fx.pinned),
    );
    let rate = writers.stop();
    println!("writers (same shard, {size}): {rate:.0} writes/s");
    assert_eq!(
        fx.index.len(),
        size,
        "the writers removed what they inserted"
    );
}

fn index_benches(c: &mut Criterion) {
    let sizes = sizes_from_env("MEMORY_BENCH_SIZES", "10000,100000");
    let queries = number_from_env("MEMORY_BENCH_QUERIES", 2_000) as usize;
    let pause = Duration::from_micros(number_from_env("MEMORY_BENCH_WRITER_PAUSE_US", 1_000));
    let mut out = Percentiles::default();
    for &size in &sizes {
        let fx = Fixture::build(size, queries);
        bench_size(c, &fx, &mut out, pause);
    }
    out.write_json(
        "index-percentiles.json",
        serde_json::json!({
            "bench": "memory-bench/benches/index.rs",
            "sizes": sizes,
            "queries_per_variant": queries,
            "limit": 5,
            "writer_pause_us": pause.as_micros() as u64,
            "writers": 8,
        }),
    );
}

criterion_group!(benches, index_benches);
criterion_main!(benches);
