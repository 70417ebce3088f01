//! Bytes per indexed episode, measured with `memory_bytes()` on a synthetic workload shaped
//! like agent episodes (10 namespaces × 3 domains × 5 task types, 25-word descriptions over a
//! 3,000-word vocabulary, 3 tags, 4 tools, 90 days), after a bulk build and after incremental
//! inserts; and that removing everything returns the estimate to (almost) nothing.

use memory_core::index::{IndexConfig, SpatiotemporalIndex};
use memory_core::time;
use memory_core::{EpisodeId, EpisodeSummary, OutcomeKind, TaskContext};

const EPISODES: usize = 10_000;

fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn workload() -> Vec<EpisodeSummary> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let words: Vec<String> = (0..3000).map(|i| format!("w{i}x")).collect();
    (0..EPISODES)
        .map(|i| {
            let text: Vec<&str> = (0..25)
                .map(|_| {
                    // Zipf-like: small indices far more often.
                    let r = rng(&mut s) % 3000;
                    words[(r * r / 3000) as usize].as_str()
                })
                .collect();
            let tools: Vec<String> = (0..4)
                .map(|_| format!("tool_{}_call", rng(&mut s) % 40))
                .collect();
            let started = 1_750_000_000_000_000 + (rng(&mut s) % (90 * 86_400_000_000)) as i64;
            EpisodeSummary {
                id: EpisodeId::new(),
                version: 1,
                context: TaskContext::new(
                    format!("ns{}", i % 10),
                    format!("domain{}", i % 3),
                    format!("task_type_{}", rng(&mut s) % 5),
                )
                .with_tags((0..3).map(|_| format!("tag{}", rng(&mut s) % 30))),
                description: text.join(" "),
                tools,
                step_count: 6,
                successful_steps: 6,
                outcome: Some(OutcomeKind::Success),
                reward: (rng(&mut s) % 11) as f64 / 10.0,
                embedding: None,
                started_at: time::from_micros(started),
                completed_at: Some(time::from_micros(started + 60_000_000)),
            }
        })
        .collect()
}

#[test]
fn bytes_per_episode_are_bounded_and_reported() {
    let data = workload();
    let bulk = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
    bulk.bulk_build(data.clone()).unwrap();
    let incremental = SpatiotemporalIndex::new(IndexConfig::default()).unwrap();
    for e in &data {
        incremental.insert(e).unwrap();
    }
    assert_eq!(bulk.stats(), incremental.stats());
    let per_bulk = bulk.memory_bytes() / EPISODES;
    let per_inc = incremental.memory_bytes() / EPISODES;
    println!(
        "{EPISODES} episodes: {per_bulk} B/episode bulk-built, {per_inc} B/episode inserted; {:?}",
        bulk.stats()
    );
    // Each episode holds ~35 distinct terms (12 B each), its table slot, directory and id-map
    // entries, an R-tree point and its share of cluster summaries: a few KiB at most.
    assert!(per_bulk > 500 && per_bulk < 4096, "{per_bulk}");
    assert!(per_inc > 500 && per_inc < 4096, "{per_inc}");

    for e in &data {
        assert!(incremental.remove(e.id).unwrap());
    }
    assert!(incremental.is_empty());
    assert!(
        incremental.memory_bytes() < 64 * 1024,
        "{} bytes left after removing everything",
        incremental.memory_bytes()
    );
}
