//! The `metrics` feature: the engine's figures rendered as Prometheus exposition text, on the
//! embedded default (libsql + redb with its journal). Names and values are checked against
//! `metrics()` and against what the test did.
//!
//! The `metrics` facade has one process-wide recorder, so this file holds one test (its own
//! test binary, its own process).

use memory_core::{MemoryConfig, NewStep, Outcome, RetrievalQuery, TaskContext};
use memory_tests::open_embedded;
use metrics_exporter_prometheus::PrometheusBuilder;

/// The value of the exposition line `series` (name with its labels, as rendered).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_text_names_and_counts_what_happened() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this process");

    let dir = tempfile::tempdir().unwrap();
    let e = open_embedded(
        dir.path(),
        MemoryConfig {
            reconcile_interval: None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let m = &e.memory;
    for i in 0..3 {
        let id = m
            .start_episode(
                format!("refund a damaged lamp {i}"),
                TaskContext::new("agent", "retail", "refund"),
            )
            .await
            .unwrap();
        m.log_step(id, NewStep::new("get_order_details", "{}"))
            .await
            .unwrap();
        m.complete_episode(id, Outcome::success("refunded"))
            .await
            .unwrap();
    }
    m.retrieve(RetrievalQuery::new("agent", "damaged lamp"))
        .await
        .unwrap();
    m.reconcile().await.unwrap();
    m.publish_metrics();
    let text = handle.render();
    let s = m.metrics();

    // Live latency samples: one per call.
    assert_eq!(
        value(&text, "memory_completion_seconds_count"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(value(&text, "memory_step_append_seconds_count"), Some(3.0));
    assert_eq!(value(&text, "memory_retrieval_seconds_count"), Some(1.0));
    assert_eq!(value(&text, "memory_index_write_seconds_count"), Some(6.0));
    assert!(
        text.contains("memory_completion_seconds{quantile=\"0.99\"}"),
        "{text}"
    );

    // Published counts and levels equal the snapshot.
    let hier = s.retrieval_paths.hierarchical as f64;
    assert_eq!(
        value(&text, "memory_retrievals_total{path=\"hierarchical\"}"),
        Some(hier)
    );
    assert_eq!(
        value(&text, "memory_indexed_episodes"),
        Some(s.indexed_episodes as f64)
    );
    assert_eq!(s.indexed_episodes, 3);
    assert_eq!(
        value(&text, "memory_cache_hits_total"),
        Some(s.cache.hits as f64)
    );
    assert_eq!(
        value(&text, "memory_index_memory_bytes"),
        Some(s.index_memory_bytes as f64)
    );
    assert_eq!(
        value(&text, "memory_breaker_state{state=\"closed\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "memory_breaker_state{state=\"open\"}"),
        Some(0.0)
    );
    assert_eq!(value(&text, "memory_journal_depth"), Some(0.0));
    assert_eq!(value(&text, "memory_journal_void_total"), Some(0.0));
    assert_eq!(value(&text, "memory_reconcile_passes_total"), Some(1.0));
    assert_eq!(value(&text, "memory_completions_in_flight"), Some(0.0));
    // libsql groups writes: 3 starts, 3 step appends, 3 completions at least.
    let w = s.writes.expect("libsql reports its group commit");
    assert!(w.operations >= 9, "{w:?}");
    assert_eq!(
        value(&text, "memory_write_operations_total"),
        Some(w.operations as f64)
    );
    assert_eq!(
        value(&text, "memory_write_batches_by_size_total{size=\"1\"}"),
        Some(w.batch_sizes[0] as f64)
    );
    assert!(
        !text.contains("memory_storage_errors_total"),
        "no store failed, so no error series: {text}"
    );

    m.shutdown().await.unwrap();
}
