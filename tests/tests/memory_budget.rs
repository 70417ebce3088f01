//! The memory budget on the embedded default: with a budget far below what the index needs,
//! cold shards are spilled to files beside the index snapshots, the index stays within what
//! the budget leaves after the hot cache and the in-progress episodes, and every query still
//! answers exactly as an unbudgeted index does (spilled shards are loaded when searched).

use std::time::{Duration, Instant};

use memory_core::retrieval::RetrievalQuery;
use memory_core::{
    Completion, EpisodeId, ErrorKind, MemoryConfig, Outcome, SelfLearningMemory, TaskContext,
};
use memory_tests::{open_embedded, open_embedded_snapshots};

const HOT: u64 = 1 << 20;
const INDEX_SHARE: u64 = 96 * 1024;

async fn record(m: &SelfLearningMemory, i: usize) -> EpisodeId {
    let words = [
        "refund", "lamp", "order", "exchange", "keyboard", "cancel", "invoice",
    ];
    let desc = format!(
        "{} the {} for {} number {i}",
        words[i % 7],
        words[(i / 7) % 7],
        words[(i * 3) % 7]
    );
    let ctx = TaskContext::new("agent", format!("domain{}", i % 12), "support");
    let id = m.start_episode(desc, ctx).await.expect("start");
    m.complete_episode(id, Completion::from(Outcome::success("ok")))
        .await
        .expect("complete");
    id
}

async fn answers(m: &SelfLearningMemory) -> Vec<Vec<(EpisodeId, u64)>> {
    let mut out = Vec::new();
    for (text, domain) in [
        ("refund lamp", None),
        ("order keyboard", Some("domain3")),
        ("cancel invoice", None),
        ("exchange", Some("domain11")),
    ] {
        let mut q = RetrievalQuery::new("agent", text).limit(6);
        if let Some(d) = domain {
            q = q.domain(d);
        }
        let hits = m.retrieve(q).await.expect("retrieve");
        out.push(
            hits.iter()
                .map(|h| {
                    let b = h.breakdown;
                    (h.episode.id, (b.lexical + b.feedback).to_bits())
                })
                .collect(),
        );
    }
    out
}

fn budgeted() -> MemoryConfig {
    MemoryConfig {
        hot_cache_bytes: HOT,
        memory_budget_bytes: Some(HOT + INDEX_SHARE),
        replay_interval: Duration::from_millis(50),
        ..MemoryConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_shards_are_spilled_and_queries_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_embedded_snapshots(dir.path(), budgeted())
        .await
        .unwrap();
    let m = &e.memory;
    for i in 0..600 {
        record(m, i).await;
    }
    // The background job checks the budget every replay_interval.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let s = m.metrics();
        if s.index_spilled_shards > 0 && s.index_budgeted_bytes <= INDEX_SHARE {
            break s;
        }
        assert!(Instant::now() < deadline, "budget not enforced: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        metrics.index_spilled_shards >= 6,
        "{}",
        metrics.index_spilled_shards
    );
    assert_eq!(metrics.indexed_episodes, 600);
    assert!(
        dir.path()
            .join("index-snapshot/spill")
            .read_dir()
            .unwrap()
            .count()
            > 0
    );
    // Queries load what they search; more writes go to spilled shards too.
    let first = answers(m).await;
    for i in 600..650 {
        record(m, i).await;
    }
    let budgeted_answers = answers(m).await;
    assert_eq!(m.index().stats().episodes, 650);
    m.shutdown().await.unwrap();
    drop(e);

    let e = open_embedded(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    assert_eq!(answers(&e.memory).await, budgeted_answers);
    assert_ne!(
        first, budgeted_answers,
        "the later writes changed some answers"
    );
    e.memory.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_without_a_snapshot_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Err(e) = open_embedded(dir.path(), budgeted()).await else {
        panic!("a budget without a snapshot directory was accepted");
    };
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("memory_budget_bytes"), "{e}");
}
