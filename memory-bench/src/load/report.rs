//! [`Report`]: everything a load run found, as plain serialisable data (`report.json` is
//! this struct), built from the recorder, the engine's `metrics()` and the read-back. The
//! Markdown form is `markdown.rs`; this file does no I/O.

use std::collections::BTreeMap;

use memory_core::metrics::ErrorCounts;
use memory_core::store::WriteStats;
use memory_core::{LatencySummary, MemoryConfig, MetricsSnapshot};
use serde::Serialize;
use serde_json::Value;

use crate::load::engine::ReadBack;
use crate::load::machine::Machine;
use crate::load::plot::Span;
use crate::load::recorder::OpRecord;
use crate::load::sampler::{EnginePoint, state_name};
use crate::load::samples::WindowStat;
use crate::load::scenario::mixed::Arrivals;
use crate::load::verdict::{Check, Status, Thresholds};

/// Nanoseconds to milliseconds.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// One operation's figures, as the client saw them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpFigures {
    /// The operation.
    pub op: String,
    /// Calls (ok and failed, retries included).
    pub calls: u64,
    /// Calls that succeeded.
    pub ok: u64,
    /// Failed calls by error kind.
    pub errors: BTreeMap<String, u64>,
    /// Successful calls per second of the measured phase.
    pub ok_per_s: f64,
    /// Latency quantiles of all calls, milliseconds (HDR histogram, ≤ 0.8 % high).
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum (exact).
    pub max_ms: f64,
    /// Mean (exact).
    pub mean_ms: f64,
    /// p50 / p99 per time window (the latency-over-time plot's lines).
    pub windows: Vec<WindowStat>,
}

impl OpFigures {
    /// The figures of `r` over a measured phase of `duration_s` seconds.
    pub fn of(r: &OpRecord, duration_s: f64) -> Self {
        let h = &r.latency;
        Self {
            op: r.op.as_str().to_owned(),
            calls: r.calls(),
            ok: r.ok,
            errors: r.errors.clone(),
            ok_per_s: if duration_s > 0.0 {
                r.ok as f64 / duration_s
            } else {
                0.0
            },
            p50_ms: ms(h.quantile(0.5)),
            p95_ms: ms(h.quantile(0.95)),
            p99_ms: ms(h.quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1e6,
            windows: r.windows.clone(),
        }
    }
}

/// Episodes of the measured phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EpisodeFigures {
    /// Episodes begun.
    pub attempted: u64,
    /// Completions acknowledged.
    pub acknowledged: u64,
    /// Episodes given up after an error.
    pub abandoned: u64,
    /// Completions acknowledged during setup (pre-load), also read back.
    pub setup_acknowledged: u64,
}

/// Targets against achieved rates (open-loop scenarios).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateFigures {
    /// What the arrival process did.
    pub arrivals: Arrivals,
    /// Episodes per second asked for.
    pub target_episodes_per_s: f64,
    /// Episodes started per second of the arrival window.
    pub issued_episodes_per_s: f64,
    /// Completions acknowledged per second of the measured phase.
    pub acknowledged_episodes_per_s: f64,
    /// `retrieve` calls per second asked for.
    pub target_queries_per_s: f64,
    /// Successful `retrieve` calls per second of the measured phase.
    pub ok_queries_per_s: f64,
    /// `get_episode` calls per second asked for.
    pub target_gets_per_s: f64,
    /// Successful `get_episode` calls per second of the measured phase.
    pub ok_gets_per_s: f64,
}

/// A latency distribution from the engine's own histograms, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Operations recorded.
    pub count: u64,
    /// Median (upper bucket edge, ≤ 12.5 % high).
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum (exact).
    pub max_ms: f64,
}

impl From<LatencySummary> for Latency {
    fn from(s: LatencySummary) -> Self {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        Self {
            count: s.count,
            p50_ms: ms(s.p50),
            p95_ms: ms(s.p95),
            p99_ms: ms(s.p99),
            max_ms: ms(s.max),
        }
    }
}

/// The cache's counters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CacheFigures {
    /// Reads answered by the cache.
    pub hits: u64,
    /// Reads it could not answer.
    pub misses: u64,
    /// `hits / (hits + misses)`.
    pub hit_ratio: Option<f64>,
    /// Entries now.
    pub entries: u64,
    /// Bytes now.
    pub bytes: u64,
    /// Evicted entries.
    pub evictions: u64,
    /// Damaged records found.
    pub corrupt: u64,
}

/// The durable store's group commit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WriteFigures {
    /// Transactions committed.
    pub batches: u64,
    /// Operations committed.
    pub operations: u64,
    /// Operations that failed alone.
    pub failed_operations: u64,
    /// Transactions that failed.
    pub failed_batches: u64,
    /// Mean operations per transaction.
    pub mean_batch: f64,
    /// Largest transaction.
    pub largest_batch: u64,
    /// Transactions by size (`1`, `2-3`, …, `128+`), empty sizes left out.
    pub batch_sizes: BTreeMap<String, u64>,
}

/// The batch-size bucket labels of `WriteStats::batch_sizes`.
pub const BATCH_LABELS: [&str; 8] = [
    "1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128+",
];

impl From<&WriteStats> for WriteFigures {
    fn from(w: &WriteStats) -> Self {
        Self {
            batches: w.batches,
            operations: w.operations,
            failed_operations: w.failed_operations,
            failed_batches: w.failed_batches,
            mean_batch: w.mean_batch(),
            largest_batch: w.largest_batch,
            batch_sizes: BATCH_LABELS
                .iter()
                .zip(w.batch_sizes)
                .filter(|(_, n)| *n > 0)
                .map(|(l, n)| ((*l).to_owned(), n))
                .collect(),
        }
    }
}

fn by_kind(c: &ErrorCounts) -> BTreeMap<String, u64> {
    c.iter().map(|(k, n)| (k.as_str().to_owned(), n)).collect()
}

/// What the engine measured about itself (`metrics()` at the end of the run; counters and
/// histograms cover the whole run since open, pre-load included).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineFigures {
    /// `complete_episode`.
    pub completion: Latency,
    /// `log_step` / `log_steps`.
    pub step_append: Latency,
    /// `retrieve`.
    pub retrieval: Latency,
    /// Index inserts and removals by writes.
    pub index_write: Latency,
    /// Contended index lock acquisitions.
    pub index_lock_waits: u64,
    /// Total time waited for them, milliseconds.
    pub index_lock_wait_ms: f64,
    /// Episodes in the index.
    pub indexed_episodes: u64,
    /// Estimated index heap bytes.
    pub index_memory_bytes: u64,
    /// The cache.
    pub cache: CacheFigures,
    /// Queries answered hierarchically, flat, and with fallback to flat.
    pub retrieval_paths: BTreeMap<String, u64>,
    /// Errors of the durable store (below the breaker), the cache and the journal, by kind.
    pub storage_errors: BTreeMap<String, BTreeMap<String, u64>>,
    /// Completions refused as `Overloaded`.
    pub completions_rejected: u64,
    /// Breaker state at the end, `None` without a journal.
    pub breaker_state: Option<String>,
    /// Breaker transitions since open.
    pub breaker_transitions: u64,
    /// Journaled writes waiting at the end.
    pub journal_depth: u64,
    /// Reconciliation passes.
    pub reconcile_passes: u64,
    /// Repairs recorded after failed undos or cache invalidations.
    pub repairs_recorded: u64,
    /// Group commit, when the store groups writes.
    pub writes: Option<WriteFigures>,
}

impl From<&MetricsSnapshot> for EngineFigures {
    fn from(m: &MetricsSnapshot) -> Self {
        let e = &m.storage_errors;
        Self {
            completion: m.completion.into(),
            step_append: m.step_append.into(),
            retrieval: m.retrieval.into(),
            index_write: m.index_write.into(),
            index_lock_waits: m.index_lock_waits.contended,
            index_lock_wait_ms: m.index_lock_waits.total_wait.as_secs_f64() * 1e3,
            indexed_episodes: m.indexed_episodes,
            index_memory_bytes: m.index_memory_bytes,
            cache: CacheFigures {
                hits: m.cache.hits,
                misses: m.cache.misses,
                hit_ratio: m.cache.hit_ratio(),
                entries: m.cache.entries,
                bytes: m.cache.bytes,
                evictions: m.cache.evictions,
                corrupt: m.cache.corrupt,
            },
            retrieval_paths: [
                ("hierarchical", m.retrieval_paths.hierarchical),
                ("flat", m.retrieval_paths.flat),
                ("fallback", m.retrieval_paths.fallback),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            storage_errors: [
                ("durable", by_kind(&e.durable)),
                ("cache", by_kind(&e.cache)),
                ("journal", by_kind(&e.journal)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            completions_rejected: m.completions.rejected,
            breaker_state: m.breaker.map(|b| state_name(b.state).to_owned()),
            breaker_transitions: m.breaker.map_or(0, |b| b.transitions),
            journal_depth: m.breaker.map_or(0, |b| b.journal_depth),
            reconcile_passes: m.reconcile_passes,
            repairs_recorded: m.repairs_recorded,
            writes: m.writes.as_ref().map(WriteFigures::from),
        }
    }
}

/// The engine settings the run used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineSettings {
    /// Completions allowed at once.
    pub max_concurrent_completions: usize,
    /// How long a completion waits for a permit, milliseconds.
    pub completion_wait_timeout_ms: u64,
    /// Consecutive transient failures that open the breaker.
    pub breaker_failure_threshold: u32,
    /// Breaker cool-down, milliseconds.
    pub breaker_cool_down_ms: u64,
    /// Journal replay interval, milliseconds.
    pub replay_interval_ms: u64,
    /// Periodic reconciliation interval, milliseconds (`None`: off).
    pub reconcile_interval_ms: Option<u64>,
    /// Journal capacity.
    pub max_journal_entries: u64,
    /// The data directory, and whether it was fresh.
    pub data_dir: String,
    /// Whether the data directory held no database before the run.
    pub fresh: bool,
}

impl EngineSettings {
    /// The settings of `c`.
    pub fn of(c: &MemoryConfig, fresh: bool) -> Self {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        Self {
            max_concurrent_completions: c.max_concurrent_completions,
            completion_wait_timeout_ms: ms(c.completion_wait_timeout),
            breaker_failure_threshold: c.resilience.breaker.failure_threshold,
            breaker_cool_down_ms: ms(c.resilience.breaker.cool_down),
            replay_interval_ms: ms(c.replay_interval),
            reconcile_interval_ms: c.reconcile_interval.map(ms),
            max_journal_entries: c.resilience.max_journal_entries,
            data_dir: c.data_dir.display().to_string(),
            fresh,
        }
    }
}

/// A change of breaker state seen by the sampler.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateChange {
    /// When it was first seen, seconds.
    pub at_s: f64,
    /// The state before.
    pub from: String,
    /// The state after.
    pub to: String,
    /// Journal depth at that sample.
    pub journal_depth: u64,
}

/// The engine over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// Samples of breaker, journal and permits.
    pub points: Vec<EnginePoint>,
    /// Breaker state changes between samples (quick flips between two samples can hide;
    /// the engine's transition counter is exact).
    pub changes: Vec<StateChange>,
    /// The deepest journal seen.
    pub journal_depth_peak: u64,
    /// The most completions seen waiting for a permit.
    pub completions_waiting_peak: u64,
    /// The injected outage, if any.
    pub outage: Option<Span>,
    /// Faults the injector raised.
    pub faults_injected: Option<u64>,
    /// When the journal was found empty after the load, seconds (`None`: not within the
    /// drain timeout). This is when the check ran, not when replay finished: see
    /// `journal_emptied_at_s`.
    pub drained_at_s: Option<f64>,
    /// The first sample, after the last one with journaled writes waiting, that found the
    /// journal empty: when replay finished, to the sampling interval (`None`: the journal
    /// never held anything, or was still not empty at the last sample).
    pub journal_emptied_at_s: Option<f64>,
}

impl Timeline {
    /// The timeline of `points`.
    pub fn of(points: Vec<EnginePoint>) -> Self {
        let mut changes = Vec::new();
        for pair in points.windows(2) {
            if let (Some(a), Some(b)) = (pair[0].breaker, pair[1].breaker)
                && a != b
            {
                changes.push(StateChange {
                    at_s: pair[1].at_s,
                    from: a.to_owned(),
                    to: b.to_owned(),
                    journal_depth: pair[1].journal_depth,
                });
            }
        }
        let journal_emptied_at_s = points
            .iter()
            .rposition(|p| p.journal_depth > 0)
            .and_then(|last| points.get(last + 1))
            .map(|p| p.at_s);
        Self {
            journal_emptied_at_s,
            journal_depth_peak: points.iter().map(|p| p.journal_depth).max().unwrap_or(0),
            completions_waiting_peak: points
                .iter()
                .map(|p| p.completions_waiting)
                .max()
                .unwrap_or(0),
            changes,
            points,
            ..Self::default()
        }
    }
}

/// Acknowledged completions read back after the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Verification {
    /// Through the engine (`get_episode`), before shutdown.
    pub facade: Option<ReadBack>,
    /// Straight from the libsql file, after shutdown.
    pub durable: Option<ReadBack>,
    /// Completions not read back intact by either (the worse of the two); `None` when the
    /// read-back did not run.
    pub lost: Option<u64>,
}

/// A whole load run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: String,
    /// The command that reproduces it.
    pub command: String,
    /// Its parameters.
    pub parameters: Value,
    /// `log_step` calls per episode.
    pub steps: usize,
    /// Seed of the synthetic data.
    pub seed: u64,
    /// The engine's settings.
    pub engine_settings: EngineSettings,
    /// The verdict's thresholds.
    pub thresholds: Thresholds,
    /// Where it ran.
    pub machine: Machine,
    /// When it began (UTC, RFC 3339).
    pub date: String,
    /// Setup (pre-load) time, seconds.
    pub setup_s: f64,
    /// The measured phase, seconds (from its start until the last call returned).
    pub duration_s: f64,
    /// Whether the run finished before the watchdog.
    pub finished: bool,
    /// Watchdog timeout, seconds.
    pub watchdog_s: f64,
    /// All calls of the measured phase.
    pub calls: u64,
    /// Calls per second of the measured phase.
    pub calls_per_s: f64,
    /// Per operation.
    pub ops: Vec<OpFigures>,
    /// Episodes.
    pub episodes: EpisodeFigures,
    /// Targets and achieved rates (open-loop scenarios).
    pub rates: Option<RateFigures>,
    /// The read-back.
    pub verification: Verification,
    /// The engine's own figures.
    pub engine: EngineFigures,
    /// The engine over time.
    pub timeline: Timeline,
    /// Peak RSS of the process, bytes (`None`: unavailable on this OS).
    pub peak_rss_bytes: Option<u64>,
    /// The checks.
    pub checks: Vec<Check>,
    /// The verdict.
    pub verdict: Status,
    /// Files written next to the report.
    pub files: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at_s: f64, breaker: &'static str, journal_depth: u64) -> EnginePoint {
        EnginePoint {
            at_s,
            breaker: Some(breaker),
            transitions: 0,
            journal_depth,
            completions_waiting: 0,
            completions_in_flight: 0,
        }
    }

    #[test]
    fn the_timeline_finds_state_changes_and_when_the_journal_emptied() {
        let t = Timeline::of(vec![
            point(0.0, "closed", 0),
            point(1.0, "open", 5),
            point(2.0, "half_open", 40),
            point(3.0, "closed", 12),
            point(4.0, "closed", 0),
            point(5.0, "closed", 0),
        ]);
        let seen: Vec<(f64, &str, &str)> = t
            .changes
            .iter()
            .map(|c| (c.at_s, c.from.as_str(), c.to.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (1.0, "closed", "open"),
                (2.0, "open", "half_open"),
                (3.0, "half_open", "closed")
            ]
        );
        assert_eq!(t.journal_depth_peak, 40);
        assert_eq!(t.journal_emptied_at_s, Some(4.0));
        let never = Timeline::of(vec![point(0.0, "closed", 0), point(1.0, "closed", 0)]);
        assert_eq!(never.journal_emptied_at_s, None);
        let stuck = Timeline::of(vec![point(0.0, "open", 3), point(1.0, "open", 4)]);
        assert_eq!(stuck.journal_emptied_at_s, None);
    }
}
