//! The `index` command: build the in-memory index from N synthetic episodes and measure build
//! time, bytes per episode, insert/remove/retrieve latency percentiles (distinct queries, no
//! result cache), and retrieval while 8 writer threads insert into other shards and into the
//! queried shard. Queries run at the end of the generated span (`synthetic::span_end`), so the
//! figures do not depend on the day the bench runs. Prints Markdown for docs/benchmarks.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memory_core::index::SpatiotemporalIndex;
use memory_core::retrieval::{RetrievalConfig, RetrievalFlags, RetrievalQuery, Retriever};
use memory_core::{Error, Result};

use crate::synthetic::{self, Generator, Shape, Vocabulary};
use crate::workload::percentile;

/// Resident set size of this process in bytes (Linux), if readable.
pub fn rss_bytes() -> Option<u64> {
    proc_status_bytes("VmRSS:")
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), if readable.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_bytes("VmHWM:")
}

/// A kB field of `/proc/self/status`, in bytes.
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// Parse `--episodes N`, `--queries N` and `--vocabulary zipf|small`, then measure.
pub fn run(args: &[String]) -> Result<()> {
    let mut episodes = 100_000usize;
    let mut queries = 2_000usize;
    let mut shape = Shape::default();
    let mut i = 0;
    while i < args.len() {
        let v = |i: usize| -> Result<usize> {
            args.get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| Error::invalid(args[i].clone(), "a number", "missing"))
        };
        match args[i].as_str() {
            "--episodes" => episodes = v(i)?,
            "--queries" => queries = v(i)?,
            "--vocabulary" => {
                shape.vocabulary = match args.get(i + 1).map(String::as_str) {
                    Some("zipf") => Vocabulary::Zipf,
                    Some("small") => Vocabulary::Small,
                    other => {
                        return Err(Error::invalid(
                            "--vocabulary",
                            "zipf or small",
                            other.unwrap_or("missing"),
                        ));
                    }
                }
            }
            other => {
                return Err(Error::invalid(
                    "argument",
                    "--episodes N, --queries N or --vocabulary zipf|small",
                    other,
                ));
            }
        }
        i += 2;
    }
    let mut generator = Generator::new(42, shape);
    let summaries: Vec<_> = (0..episodes).map(|_| generator.summary()).collect();
    let config = RetrievalConfig::default();
    let index = Arc::new(SpatiotemporalIndex::new(config.index_config())?);
    let rss_before = rss_bytes().unwrap_or(0);
    let started = Instant::now();
    // By reference: the summaries stay allocated, so the RSS growth is the index's (plus what
    // the allocator keeps of the build's transient allocations), not memory they give back.
    index.bulk_build(summaries.iter().cloned())?;
    let build = started.elapsed();
    let rss_after = rss_bytes().unwrap_or(0);
    let retriever = Retriever::new(index.clone(), config, Arc::new(RetrievalFlags::default()))?;

    let mut qgen = Generator::new(7, shape);
    let qs: Vec<RetrievalQuery> = (0..queries)
        .map(|_| {
            let (ns, domain, text) = qgen.query();
            RetrievalQuery::new(ns, text).domain(domain).limit(5)
        })
        .collect();
    // Recency at the end of the generated span, whatever day the bench runs.
    let now = synthetic::span_end();
    let mut lat = Vec::with_capacity(qs.len());
    let mut hits = 0usize;
    for q in &qs {
        let t = Instant::now();
        hits += retriever.search_at(q, now)?.len();
        lat.push(t.elapsed());
    }
    let mut ns_lat = Vec::new();
    for q in qs.iter().take(queries / 4) {
        let q =
            RetrievalQuery::new(q.namespace().to_string(), "refund order payment failed").limit(5);
        let t = Instant::now();
        retriever.search_at(&q, now)?;
        ns_lat.push(t.elapsed());
    }

    let mut extra = Generator::new(99, shape);
    let fresh: Vec<_> = (0..2_000).map(|_| extra.summary()).collect();
    let mut ins = Vec::new();
    for s in &fresh {
        let t = Instant::now();
        index.insert(s)?;
        ins.push(t.elapsed());
    }
    let mut rem = Vec::new();
    for s in &fresh {
        let t = Instant::now();
        index.remove(s.id)?;
        rem.push(t.elapsed());
    }

    let bytes_per_episode = index.memory_bytes() / episodes.max(1);

    // Retrieval while 8 writers write: 4 into other shards, 4 into the shard being queried.
    // Each writer cycles insert/remove over its own 200 episodes (the index size stays put)
    // at about 1,000 writes/s, so the 2 cores are shared rather than saturated by writers.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let target = qs.first().cloned();
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let index = index.clone();
            let stop = stop.clone();
            let written = written.clone();
            let target = target.clone();
            std::thread::spawn(move || -> Result<()> {
                let mut g = Generator::new(1_000 + w, shape);
                let own: Vec<_> = (0..200)
                    .map(|_| {
                        let mut s = g.summary();
                        if w < 4
                            && let Some(q) = &target
                        {
                            s.context.namespace = q.namespace().to_string();
                            if let Some(d) = q.domain_scope() {
                                s.context.domain = d.to_string();
                            }
                        } else {
                            s.context.namespace = format!("writer{w}");
                        }
                        s
                    })
                    .collect();
                let mut k = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let s = &own[k % own.len()];
                    if (k / own.len()).is_multiple_of(2) {
                        index.insert(s)?;
                    } else {
                        index.remove(s.id)?;
                    }
                    k += 1;
                    written.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
                for s in &own {
                    index.remove(s.id)?;
                }
                Ok(())
            })
        })
        .collect();
    let mut busy = Vec::new();
    for q in qs.iter().cycle().take(queries) {
        // Half the queries hit the shard the writers fill.
        let q = if busy.len().is_multiple_of(2) {
            target.as_ref().unwrap_or(q)
        } else {
            q
        };
        let t = Instant::now();
        retriever.search_at(q, now)?;
        busy.push(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join()
            .map_err(|_| Error::storage("a writer thread panicked"))??;
    }
    let waits = index.lock_waits();

    println!(
        "| episodes | build s | index bytes/episode (estimate) | RSS growth bytes/episode | retrieve p50 ms | p99 ms | namespace-wide p50 ms | p99 ms | insert p50 ms | p99 ms | remove p50 ms | p99 ms | retrieve p50 / p99 ms with 8 writers | writes during it |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {episodes} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
        build.as_secs_f64(),
        bytes_per_episode,
        rss_after.saturating_sub(rss_before) / episodes.max(1) as u64,
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(percentile(&ns_lat, 0.5)),
        ms(percentile(&ns_lat, 0.99)),
        ms(percentile(&ins, 0.5)),
        ms(percentile(&ins, 0.99)),
        ms(percentile(&rem, 0.5)),
        ms(percentile(&rem, 0.99)),
        ms(percentile(&busy, 0.5)),
        ms(percentile(&busy, 0.99)),
        written.load(Ordering::Relaxed),
    );
    println!("\n{queries} distinct queries returned {hits} hits; lock waits: {waits:?}");
    Ok(())
}
