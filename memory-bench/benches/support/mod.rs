//! What the index and end-to-end retrieval benches share: sizes from the environment, and the
//! latency percentiles criterion does not give (it reports means). Each bench times individual
//! distinct queries with `Instant`, prints one `p50 … p99 …` line per variant to stdout and
//! writes them all as JSON next to criterion's own output. It measures; it never asserts speed.

use std::path::PathBuf;
use std::time::Duration;

use memory_bench::synthetic::{Shape, Vocabulary};
use memory_bench::workload::percentile;

/// The sizes listed in the environment variable `var` (comma-separated, `_` allowed as a digit
/// separator), or `default` when it is unset. A malformed list stops the bench: a silently
/// skipped size would read as a measured one.
pub fn sizes_from_env(var: &str, default: &str) -> Vec<usize> {
    let raw = std::env::var(var).unwrap_or_else(|_| default.to_string());
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{var}: {s:?} is not a number (list: {raw:?})"))
        })
        .collect()
}

/// The number in the environment variable `var`, or `default`.
pub fn number_from_env(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{var}: {v:?} is not a number")),
        Err(_) => default,
    }
}

/// The generator's shape, with the vocabulary `MEMORY_BENCH_VOCABULARY` names: `zipf` (the
/// default, 20,000 words) or `small` (the first generator's 78 words, to compare with figures
/// taken before the Zipf vocabulary).
pub fn shape_from_env() -> Shape {
    let vocabulary = match std::env::var("MEMORY_BENCH_VOCABULARY").as_deref() {
        Err(_) | Ok("zipf") => Vocabulary::Zipf,
        Ok("small") => Vocabulary::Small,
        Ok(other) => panic!("MEMORY_BENCH_VOCABULARY: {other:?} is not zipf or small"),
    };
    Shape {
        vocabulary,
        ..Shape::default()
    }
}

/// Where criterion writes (the same rule as criterion 0.8): `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `target/criterion` under the working directory.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        PathBuf::from(home)
    } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(target).join("criterion")
    } else {
        PathBuf::from("target/criterion")
    }
}

/// One variant's percentiles.
#[derive(Debug, Clone)]
struct Row {
    variant: String,
    episodes: usize,
    queries: usize,
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

/// Percentiles collected over a bench run, printed as they come and written at the end.
#[derive(Debug, Default)]
pub struct Percentiles {
    rows: Vec<Row>,
}

impl Percentiles {
    /// Record `samples` (one per distinct query) of `variant` at `episodes`, and print
    /// `variant episodes p50 x ms p99 y ms (mean z ms, n queries)`.
    pub fn record(&mut self, variant: &str, episodes: usize, samples: &[Duration]) {
        let mean = if samples.is_empty() {
            Duration::ZERO
        } else {
            samples.iter().sum::<Duration>() / samples.len() as u32
        };
        let row = Row {
            variant: variant.to_string(),
            episodes,
            queries: samples.len(),
            p50: percentile(samples, 0.5),
            p99: percentile(samples, 0.99),
            mean,
        };
        println!(
            "{} {} p50 {:.3} ms p99 {:.3} ms (mean {:.3} ms, {} queries)",
            row.variant,
            row.episodes,
            ms(row.p50),
            ms(row.p99),
            ms(row.mean),
            row.queries
        );
        self.rows.push(row);
    }

    /// Write every row as JSON to `file_name` in [`criterion_dir`] and say where.
    pub fn write_json(&self, file_name: &str, notes: serde_json::Value) {
        let rows: Vec<_> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "variant": r.variant,
                    "episodes": r.episodes,
                    "queries": r.queries,
                    "p50_ms": micros_as_ms(r.p50),
                    "p99_ms": micros_as_ms(r.p99),
                    "mean_ms": micros_as_ms(r.mean),
                })
            })
            .collect();
        let doc = serde_json::json!({ "notes": notes, "percentiles": rows });
        let dir = criterion_dir();
        let path = dir.join(file_name);
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
            std::fs::write(&path, text + "\n")
        });
        match written {
            Ok(()) => println!("percentiles written to {}", path.display()),
            Err(e) => panic!("cannot write {}: {e}", path.display()),
        }
    }
}

/// Milliseconds as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Milliseconds rounded to the microsecond, for the JSON file.
fn micros_as_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e3
}
