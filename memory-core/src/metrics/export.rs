//! Publishing a [`MetricsSnapshot`] through the `metrics` facade (cargo feature `metrics`).
//!
//! Latencies are recorded live, as they happen, to facade histograms (`memory_*_seconds`);
//! everything else is a level or a count read from the parts, so it is published when
//! `SelfLearningMemory::publish_metrics()` is called: call it right before rendering (in the
//! scrape handler) or on a timer. Counters are set with `absolute` (they only grow), levels
//! are gauges. Names follow Prometheus conventions: `_total` counters, `_seconds` and
//! `_bytes` units. The facade is process-wide: several engines in one process publish to the
//! same names (the last publish wins for counters and gauges; latency samples merge).
//!
//! Every name, type and label is listed in `docs/observability.md`.

use metrics::{counter, gauge};

use super::MetricsSnapshot;
use crate::coordinator::BreakerState;

/// The `size` labels of `WriteStats::batch_sizes`.
const BATCH_SIZE_LABELS: [&str; 8] = [
    "1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128+",
];

/// Publish `s` to the installed `metrics` recorder.
pub(crate) fn publish(s: &MetricsSnapshot) {
    for (store, counts) in [
        ("durable", &s.storage_errors.durable),
        ("cache", &s.storage_errors.cache),
        ("journal", &s.storage_errors.journal),
    ] {
        for (kind, n) in counts.iter() {
            counter!("memory_storage_errors_total", "store" => store, "kind" => kind.as_str())
                .absolute(n);
        }
    }
    for (path, n) in [
        ("hierarchical", s.retrieval_paths.hierarchical),
        ("flat", s.retrieval_paths.flat),
        ("fallback", s.retrieval_paths.fallback),
    ] {
        counter!("memory_retrievals_total", "path" => path).absolute(n);
    }
    counter!("memory_cache_hits_total").absolute(s.cache.hits);
    counter!("memory_cache_misses_total").absolute(s.cache.misses);
    counter!("memory_cache_evictions_total").absolute(s.cache.evictions);
    counter!("memory_cache_corrupt_total").absolute(s.cache.corrupt);
    gauge!("memory_cache_bytes").set(s.cache.bytes as f64);
    gauge!("memory_cache_entries").set(s.cache.entries as f64);
    if let Some(h) = &s.hot_cache {
        counter!("memory_hot_cache_hits_total").absolute(h.hits);
        counter!("memory_hot_cache_misses_total").absolute(h.misses);
        gauge!("memory_hot_cache_bytes").set(h.bytes as f64);
        gauge!("memory_hot_cache_entries").set(h.entries as f64);
    }
    counter!("memory_index_lock_waits_total").absolute(s.index_lock_waits.contended);
    gauge!("memory_index_memory_bytes").set(s.index_memory_bytes as f64);
    gauge!("memory_indexed_episodes").set(s.indexed_episodes as f64);
    gauge!("memory_in_progress_episodes").set(s.in_progress_episodes as f64);
    gauge!("memory_in_progress_bytes").set(s.in_progress_bytes as f64);
    gauge!("memory_index_budgeted_bytes").set(s.index_budgeted_bytes as f64);
    gauge!("memory_index_spilled_shards").set(s.index_spilled_shards as f64);
    counter!("memory_index_rebuilds_total").absolute(s.index_rebuilds);
    counter!("memory_index_shard_loads_total").absolute(s.index_shard_loads);
    counter!("memory_index_shard_spills_total").absolute(s.index_shard_spills);
    counter!("memory_index_shard_folds_total").absolute(s.index_shard_folds);
    counter!("memory_index_memory_releases_total").absolute(s.index_memory_releases);
    gauge!("memory_completions_in_flight").set(s.completions.in_flight as f64);
    gauge!("memory_completions_waiting").set(s.completions.waiting as f64);
    counter!("memory_completions_rejected_total").absolute(s.completions.rejected);
    if let Some(b) = &s.breaker {
        for (name, state) in [
            ("closed", BreakerState::Closed),
            ("open", BreakerState::Open),
            ("half_open", BreakerState::HalfOpen),
        ] {
            let on = if b.state == state { 1.0 } else { 0.0 };
            gauge!("memory_breaker_state", "state" => name).set(on);
        }
        counter!("memory_breaker_transitions_total").absolute(b.transitions);
        gauge!("memory_journal_depth").set(b.journal_depth as f64);
        counter!("memory_journal_void_total").absolute(b.journal_void);
    }
    let r = &s.reconciliation;
    counter!("memory_reconcile_passes_total").absolute(s.reconcile_passes);
    for (kind, n) in [
        ("journal_replayed", r.journal_replayed),
        ("cache_orphan", r.cache_orphans),
        ("cache_corrupt", r.cache_corrupt),
        ("cache_stale", r.cache_stale),
        ("cache_ahead", r.cache_ahead),
        ("index_orphan", r.index_orphans),
        ("index_missing", r.index_missing),
        ("index_stale", r.index_stale),
        ("recorded", r.recorded_repaired),
    ] {
        counter!("memory_reconcile_repairs_total", "kind" => kind).absolute(n);
    }
    counter!("memory_repairs_recorded_total").absolute(s.repairs_recorded);
    gauge!("memory_repairs_pending").set(s.repairs_pending as f64);
    if let Some(w) = &s.writes {
        counter!("memory_write_batches_total").absolute(w.batches);
        counter!("memory_write_operations_total").absolute(w.operations);
        counter!("memory_write_failed_operations_total").absolute(w.failed_operations);
        counter!("memory_write_failed_batches_total").absolute(w.failed_batches);
        for (label, n) in BATCH_SIZE_LABELS.iter().zip(w.batch_sizes) {
            counter!("memory_write_batches_by_size_total", "size" => *label).absolute(n);
        }
    }
}
