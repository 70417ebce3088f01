//! Retrieval quality on real agent episodes: precision@5 on tau2-bench retail tasks.
//!
//! Each of the 114 episodes in turn is the query (its description text only, within its
//! domain); the other 113 are stored as completed summaries. A hit is relevant when its
//! `relevance_key` (the set of state-changing tools the task needed) equals the query's. The
//! key and the query's task type are never given to the engine. Prints the table; asserts the
//! default configuration's precision@5, that the hierarchical and flat paths agree, and that
//! results do not depend on ingest order.

// Test helpers: a failed unwrap is a failed test (clippy.toml only covers `#[test]` fns).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use memory_core::index::SpatiotemporalIndex;
use memory_core::retrieval::{
    FieldWeights, FlagValues, RetrievalConfig, RetrievalFlags, RetrievalHit, RetrievalQuery,
    Retriever,
};
use memory_core::{EpisodeId, EpisodeSummary, OutcomeKind, TaskContext};
use serde_json::Value;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../memory-bench/data/tau2-retail.jsonl"
);

/// The precision@5 the default configuration must reach (flat BM25 over description + tags
/// reaches about 0.26 on this data).
const REQUIRED_P_AT_5: f64 = 0.35;

struct Example {
    summary: EpisodeSummary,
    relevance_key: String,
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("field {key} missing in {v}"))
}

/// A stable, well-spread v7 id for example `i` (ties between equal scores break by id, so the
/// ids must not follow the file order).
fn id_for(i: usize) -> EpisodeId {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&x.to_le_bytes());
    let uuid = uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000, &bytes).into_uuid();
    EpisodeId::from_uuid(uuid).unwrap()
}

fn load() -> Vec<Example> {
    let text = std::fs::read_to_string(DATA)
        .unwrap_or_else(|e| panic!("the bundled data set {DATA} must exist: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let v: Value = serde_json::from_str(line).unwrap();
            let tags: Vec<String> = v["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect();
            let steps = v["steps"].as_array().unwrap();
            let mut tools: Vec<String> = Vec::new();
            for s in steps {
                let tool = str_field(s, "tool").to_owned();
                if !tools.contains(&tool) {
                    tools.push(tool);
                }
            }
            let latency: i64 = steps
                .iter()
                .map(|s| s["latency_ms"].as_i64().unwrap_or(0))
                .sum();
            let started_at: DateTime<Utc> =
                DateTime::parse_from_rfc3339(str_field(&v, "started_at"))
                    .unwrap()
                    .with_timezone(&Utc);
            let completed_at = started_at + chrono::Duration::milliseconds(latency);
            let outcome = OutcomeKind::parse(str_field(&v["outcome"], "kind")).unwrap();
            let context = TaskContext::new(
                str_field(&v, "namespace"),
                str_field(&v, "domain"),
                str_field(&v, "task_type"),
            )
            .with_tags(tags);
            Example {
                summary: EpisodeSummary {
                    id: id_for(i),
                    version: 2,
                    context,
                    description: str_field(&v, "description").to_owned(),
                    tools,
                    step_count: steps.len() as u32,
                    successful_steps: steps
                        .iter()
                        .filter(|s| s["success"].as_bool().unwrap_or(true))
                        .count() as u32,
                    outcome: Some(outcome),
                    reward: v["reward"].as_f64().unwrap(),
                    embedding: None,
                    started_at,
                    completed_at: Some(completed_at),
                },
                relevance_key: str_field(&v, "relevance_key").to_owned(),
            }
        })
        .collect()
}

fn query_of(e: &Example) -> RetrievalQuery {
    // Description text only, within the episode's domain: no task type, no tags.
    RetrievalQuery::new(&e.summary.context.namespace, &e.summary.description)
        .domain(&e.summary.context.domain)
        .limit(5)
}

fn now_of(data: &[Example]) -> DateTime<Utc> {
    data.iter().map(|e| e.summary.started_at).max().unwrap() + chrono::Duration::days(1)
}

/// Leave-one-out over `data` on `retriever`'s index (which holds all of `data`): per query,
/// the hits.
fn leave_one_out(retriever: &Retriever, data: &[Example]) -> Vec<Vec<RetrievalHit>> {
    let now = now_of(data);
    data.iter()
        .map(|e| {
            assert!(retriever.index().remove(e.summary.id).unwrap());
            let hits = retriever.search_at(&query_of(e), now).unwrap();
            retriever.index().insert(&e.summary).unwrap();
            hits
        })
        .collect()
}

fn precision_at_5(data: &[Example], results: &[Vec<RetrievalHit>]) -> f64 {
    let key_of = |id: EpisodeId| {
        &data
            .iter()
            .find(|e| e.summary.id == id)
            .unwrap()
            .relevance_key
    };
    let total: f64 = data
        .iter()
        .zip(results)
        .map(|(e, hits)| {
            assert!(
                hits.iter().all(|h| h.id != e.summary.id),
                "query returned itself"
            );
            let relevant = hits
                .iter()
                .filter(|h| *key_of(h.id) == e.relevance_key)
                .count();
            relevant as f64 / 5.0
        })
        .sum();
    total / data.len() as f64
}

fn ids(results: &[Vec<RetrievalHit>]) -> Vec<Vec<EpisodeId>> {
    results
        .iter()
        .map(|hits| hits.iter().map(|h| h.id).collect())
        .collect()
}

fn retriever(
    index: &Arc<SpatiotemporalIndex>,
    config: RetrievalConfig,
    flags: FlagValues,
) -> Retriever {
    Retriever::new(index.clone(), config, Arc::new(RetrievalFlags::from(flags))).unwrap()
}

fn flags(hierarchical_index: bool, diversity: bool, temporal_clustering: bool) -> FlagValues {
    FlagValues {
        hierarchical_index,
        diversity,
        temporal_clustering,
    }
}

#[test]
fn precision_at_5_on_tau2_retail() {
    let data = load();
    assert_eq!(data.len(), 114);
    let index =
        Arc::new(SpatiotemporalIndex::new(RetrievalConfig::default().index_config()).unwrap());
    assert_eq!(
        index
            .bulk_build(data.iter().map(|e| e.summary.clone()))
            .unwrap(),
        114
    );
    // The reference point: BM25 over the description and the tags only, both channels
    // weighted alike, no tools, task type, feedback, recency or reward.
    let baseline = RetrievalConfig {
        field_weights: FieldWeights {
            description: 1.0,
            tags: 1.0,
            tools: 0.0,
            task_type: 0.0,
        },
        text_channel_weight: 1.0,
        label_channel_weight: 1.0,
        feedback_weight: 0.0,
        feedback_episodes: 0,
        recency_weight: 0.0,
        reward_weight: 0.0,
        ..RetrievalConfig::default()
    };
    let d = RetrievalConfig::default;
    let rows: Vec<(&str, RetrievalConfig, FlagValues)> = vec![
        (
            "flat, BM25 over description + tags",
            baseline,
            flags(false, false, false),
        ),
        (
            "flat, default scoring without feedback",
            RetrievalConfig {
                feedback_episodes: 0,
                ..d()
            },
            flags(false, false, false),
        ),
        ("flat, default scoring", d(), flags(false, false, false)),
        (
            "flat, default scoring + diversity",
            d(),
            flags(false, true, false),
        ),
        (
            "hierarchical, no temporal clusters",
            d(),
            flags(true, false, false),
        ),
        ("hierarchical", d(), flags(true, false, true)),
        (
            "hierarchical + diversity (default)",
            d(),
            FlagValues::default(),
        ),
    ];
    let mut results = Vec::new();
    println!();
    println!("| configuration | precision@5 |");
    println!("|---|---|");
    for (name, config, f) in rows {
        let r = retriever(&index, config, f);
        let hits = leave_one_out(&r, &data);
        let p = precision_at_5(&data, &hits);
        println!("| {name} | {p:.3} |");
        results.push((name, p, hits, r.counts()));
    }
    let bytes = index.memory_bytes();
    println!(
        "\nindex: {} episodes, {} bytes ({} bytes/episode), {:?}",
        index.len(),
        bytes,
        bytes / index.len(),
        index.stats()
    );

    // Every query filled its five hits on the path its flags chose.
    for (name, _, hits, counts) in &results {
        assert!(hits.iter().all(|h| h.len() == 5), "{name}");
        assert_eq!(counts.fallback, 0, "{name}: {counts:?}");
    }
    // The hierarchy only skips what cannot rank: same hits, same order as flat.
    assert_eq!(ids(&results[2].2), ids(&results[4].2));
    assert_eq!(ids(&results[2].2), ids(&results[5].2));
    assert_eq!(ids(&results[3].2), ids(&results[6].2));
    let default_p = results[6].1;
    assert!(
        default_p >= REQUIRED_P_AT_5,
        "default configuration precision@5 {default_p:.3} < {REQUIRED_P_AT_5}"
    );
}

#[test]
fn results_do_not_depend_on_ingest_order() {
    let data = load();
    let config = RetrievalConfig::default();
    let bulk = Arc::new(SpatiotemporalIndex::new(config.index_config()).unwrap());
    bulk.bulk_build(data.iter().map(|e| e.summary.clone()))
        .unwrap();
    let shuffled = Arc::new(SpatiotemporalIndex::new(config.index_config()).unwrap());
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    for &i in &order {
        shuffled.insert(&data[i].summary).unwrap();
    }
    assert_eq!(bulk.stats(), shuffled.stats());
    let a = retriever(&bulk, config.clone(), FlagValues::default());
    let b = retriever(&shuffled, config, FlagValues::default());
    let now = now_of(&data);
    for e in &data {
        let q = query_of(e);
        let x = a.search_at(&q, now).unwrap();
        let y = b.search_at(&q, now).unwrap();
        assert_eq!(x, y, "query {:?}", e.summary.description);
    }
}
