//! Shared generators and a reference model for the index and retrieval property tests.
//!
//! Random episodes over a few namespaces, domains, task types, words, tags and tools, spread
//! over 60 days, some in progress, some with embeddings; random queries with every filter; and
//! a brute-force statement of what a query's filters mean, to check the index against.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]
// Test helpers: a failed unwrap is a failed test (clippy.toml only covers `#[test]` fns).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use memory_core::index::SpatiotemporalIndex;
use memory_core::retrieval::{
    FlagValues, RetrievalConfig, RetrievalFlags, RetrievalQuery, Retriever, TimeRange,
};
use memory_core::time::{self, Timestamp};
use memory_core::{EpisodeId, EpisodeSummary, OutcomeKind, TaskContext};
use proptest::prelude::*;

pub const NAMESPACES: [&str; 3] = ["ns-a", "ns-b", "ns-c"];
pub const DOMAINS: [&str; 2] = ["retail", "travel"];
pub const TASKS: [&str; 3] = ["refund", "exchange_item", "lookup"];
pub const WORDS: [&str; 12] = [
    "lamp", "bottle", "refund", "exchange", "order", "address", "cancel", "returned", "keyboard",
    "flight", "hotel", "damaged",
];
pub const TAGS: [&str; 4] = ["orders", "billing", "urgent", "vip"];
pub const TOOLS: [&str; 4] = [
    "get_order_details",
    "refund_payment",
    "exchange_delivered_items",
    "searchFlights",
];
pub const DIM: usize = 3;
pub const DAY: i64 = 86_400_000_000;
pub const OUTCOMES: [OutcomeKind; 3] = [
    OutcomeKind::Success,
    OutcomeKind::Partial,
    OutcomeKind::Failure,
];

/// One random episode.
#[derive(Debug, Clone)]
pub struct Spec {
    pub ns: usize,
    pub domain: usize,
    pub task: usize,
    pub words: Vec<usize>,
    pub tags: Vec<usize>,
    pub tools: Vec<usize>,
    /// `None`: in progress.
    pub outcome: Option<usize>,
    pub reward_tenths: u8,
    pub start_hour: i64,
    pub duration_hours: i64,
    pub embedding: Option<[i8; DIM]>,
}

pub fn spec() -> impl Strategy<Value = Spec> {
    (
        (0..NAMESPACES.len(), 0..DOMAINS.len(), 0..TASKS.len()),
        prop::collection::vec(0..WORDS.len(), 0..6),
        prop::collection::vec(0..TAGS.len(), 0..3),
        prop::collection::vec(0..TOOLS.len(), 0..3),
        prop::option::weighted(0.85, 0..OUTCOMES.len()),
        0u8..=10,
        (0i64..60 * 24, 0i64..48),
        prop::option::of(prop::array::uniform3(-3i8..=3)),
    )
        .prop_map(
            |((ns, domain, task), words, tags, tools, outcome, reward_tenths, (h, d), emb)| Spec {
                ns,
                domain,
                task,
                words,
                tags,
                tools,
                outcome,
                reward_tenths,
                start_hour: h,
                duration_hours: d,
                embedding: emb,
            },
        )
}

/// A stable v7 id for episode `i`, not ordered like `i`.
pub fn id_for(i: usize) -> EpisodeId {
    let mut x = (i as u64 + 7).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&x.to_le_bytes());
    let uuid = uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000, &bytes).into_uuid();
    EpisodeId::from_uuid(uuid).unwrap()
}

pub fn at_hour(h: i64) -> Timestamp {
    time::from_micros(1_750_000_000_000_000 + h * DAY / 24)
}

/// The instant queries are made at.
pub fn now() -> Timestamp {
    at_hour(62 * 24)
}

pub fn summary(i: usize, s: &Spec) -> EpisodeSummary {
    let started_at = at_hour(s.start_hour);
    let outcome = s.outcome.map(|o| OUTCOMES[o]);
    EpisodeSummary {
        id: id_for(i),
        version: 1 + (i as u64 % 3),
        context: TaskContext::new(NAMESPACES[s.ns], DOMAINS[s.domain], TASKS[s.task])
            .with_tags(s.tags.iter().map(|t| TAGS[*t])),
        description: s
            .words
            .iter()
            .map(|w| WORDS[*w])
            .collect::<Vec<_>>()
            .join(" "),
        tools: s.tools.iter().map(|t| TOOLS[*t].to_owned()).collect(),
        step_count: s.tools.len() as u32,
        successful_steps: s.tools.len() as u32,
        outcome,
        reward: if outcome.is_some() {
            f64::from(s.reward_tenths) / 10.0
        } else {
            0.0
        },
        embedding: s
            .embedding
            .map(|e| e.iter().map(|x| f32::from(*x)).collect()),
        started_at,
        completed_at: outcome.map(|_| at_hour(s.start_hour + s.duration_hours)),
    }
}

pub fn summaries(specs: &[Spec]) -> Vec<EpisodeSummary> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| summary(i, s))
        .collect()
}

/// The configuration the property tests use: embeddings on, 2-day clusters (many clusters,
/// so pruning has work to do).
pub fn config() -> RetrievalConfig {
    RetrievalConfig {
        embedding_dimension: Some(DIM),
        temporal_bucket_width: Duration::from_secs(2 * 24 * 3600),
        ..RetrievalConfig::default()
    }
}

pub fn index_of(episodes: &[EpisodeSummary]) -> Arc<SpatiotemporalIndex> {
    let index = Arc::new(SpatiotemporalIndex::new(config().index_config()).unwrap());
    for e in episodes {
        index.insert(e).unwrap();
    }
    index
}

pub fn retriever(index: &Arc<SpatiotemporalIndex>, flags: FlagValues) -> Retriever {
    Retriever::new(
        index.clone(),
        config(),
        Arc::new(RetrievalFlags::from(flags)),
    )
    .unwrap()
}

pub fn flags(hierarchical_index: bool, diversity: bool, temporal_clustering: bool) -> FlagValues {
    FlagValues {
        hierarchical_index,
        diversity,
        temporal_clustering,
    }
}

/// One random query.
#[derive(Debug, Clone)]
pub struct QSpec {
    pub ns: usize,
    pub domain: Option<usize>,
    pub task: Option<usize>,
    pub words: Vec<usize>,
    pub tags_any: Vec<usize>,
    pub tags_all: Vec<usize>,
    /// Start and end day of a `started_at` range.
    pub started: Option<(i64, i64)>,
    pub completed: Option<(i64, i64)>,
    pub outcome: Option<usize>,
    pub min_reward_tenths: Option<u8>,
    pub include_in_progress: bool,
    pub embedding: Option<[i8; DIM]>,
}

fn day_range() -> impl Strategy<Value = Option<(i64, i64)>> {
    prop::option::weighted(0.3, (0i64..62, 0i64..30).prop_map(|(a, len)| (a, a + len)))
}

pub fn qspec() -> impl Strategy<Value = QSpec> {
    (
        (
            0..NAMESPACES.len(),
            prop::option::of(0..DOMAINS.len()),
            prop::option::weighted(0.3, 0..TASKS.len()),
        ),
        prop::collection::vec(0..WORDS.len(), 0..4),
        (
            prop::collection::vec(0..TAGS.len(), 0..2),
            prop::collection::vec(0..TAGS.len(), 0..2),
        ),
        (day_range(), day_range()),
        prop::option::weighted(0.3, 0..OUTCOMES.len()),
        prop::option::weighted(0.3, 0u8..=10),
        any::<bool>(),
        prop::option::weighted(0.3, prop::array::uniform3(-3i8..=3)),
    )
        .prop_map(
            |(
                (ns, domain, task),
                words,
                (tags_any, tags_all),
                (started, completed),
                outcome,
                min_reward_tenths,
                include_in_progress,
                embedding,
            )| QSpec {
                ns,
                domain,
                task,
                words,
                tags_any,
                tags_all,
                started,
                completed,
                outcome,
                min_reward_tenths,
                include_in_progress,
                embedding,
            },
        )
}

fn day_range_of((a, b): (i64, i64)) -> TimeRange {
    TimeRange::between(at_hour(a * 24), at_hour(b * 24))
}

pub fn query(q: &QSpec, limit: usize) -> RetrievalQuery {
    let text: Vec<&str> = q.words.iter().map(|w| WORDS[*w]).collect();
    let mut r = RetrievalQuery::new(NAMESPACES[q.ns], text.join(" ")).limit(limit);
    if let Some(d) = q.domain {
        r = r.domain(DOMAINS[d]);
    }
    if let Some(t) = q.task {
        r = r.task_type(TASKS[t]);
    }
    if !q.tags_any.is_empty() {
        r = r.tags_any(q.tags_any.iter().map(|t| TAGS[*t]));
    }
    if !q.tags_all.is_empty() {
        r = r.tags_all(q.tags_all.iter().map(|t| TAGS[*t]));
    }
    if let Some(s) = q.started {
        r = r.started_within(day_range_of(s));
    }
    if let Some(c) = q.completed {
        r = r.completed_within(day_range_of(c));
    }
    if let Some(o) = q.outcome {
        r = r.outcome(OUTCOMES[o]);
    }
    if let Some(m) = q.min_reward_tenths {
        r = r.min_reward(f64::from(m) / 10.0);
    }
    if q.include_in_progress {
        r = r.include_in_progress();
    }
    if let Some(e) = q.embedding {
        r = r.embedding(e.iter().map(|x| f32::from(*x)).collect());
    }
    r
}

fn in_days(t: Timestamp, (a, b): (i64, i64)) -> bool {
    at_hour(a * 24) <= t && t < at_hour(b * 24)
}

/// What the query's scope and filters mean, stated directly.
pub fn qualifies(q: &QSpec, e: &EpisodeSummary) -> bool {
    let c = &e.context;
    c.namespace == NAMESPACES[q.ns]
        && q.domain.is_none_or(|d| c.domain == DOMAINS[d])
        && q.task.is_none_or(|t| c.task_type == TASKS[t])
        && (q.include_in_progress || e.outcome.is_some())
        && q.outcome.is_none_or(|o| e.outcome == Some(OUTCOMES[o]))
        && q.min_reward_tenths
            .is_none_or(|m| e.reward >= f64::from(m) / 10.0)
        && q.started.is_none_or(|r| in_days(e.started_at, r))
        && q.completed
            .is_none_or(|r| e.completed_at.is_some_and(|c| in_days(c, r)))
        && (q.tags_any.is_empty()
            || q.tags_any
                .iter()
                .any(|t| c.tags.iter().any(|x| x == TAGS[*t])))
        && q.tags_all
            .iter()
            .all(|t| c.tags.iter().any(|x| x == TAGS[*t]))
}
