//! Removal leaves no trace: inserting extra episodes (interleaved with the rest, some
//! replaced or moved to another shard or task type first) and removing them again gives the
//! same statistics and the same search results, bit for bit, as never inserting them.

mod retrieval_support;

use proptest::prelude::*;
use retrieval_support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn insert_then_remove_equals_never_inserted(
        base in prop::collection::vec(spec(), 0..40),
        extra in prop::collection::vec(spec(), 1..30),
        moved in prop::collection::vec(spec(), 0..10),
        order_seed in any::<u64>(),
        queries in prop::collection::vec(qspec(), 1..4),
    ) {
        let base_eps = summaries(&base);
        // Extra episodes get ids after the base ones.
        let extra_eps: Vec<_> = extra.iter().enumerate().map(|(i, s)| summary(1000 + i, s)).collect();
        let clean = index_of(&base_eps);

        let dirty = index_of(&[]);
        let mut all: Vec<_> = base_eps.iter().chain(&extra_eps).cloned().collect();
        // A deterministic shuffle from the seed.
        let mut state = order_seed | 1;
        for i in (1..all.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            all.swap(i, (state % (i as u64 + 1)) as usize);
        }
        for e in &all {
            dirty.insert(e).unwrap();
        }
        // Replace some extras with other content (other shard, task type, time, vector).
        for (e, s) in extra_eps.iter().zip(&moved) {
            let mut other = summary(0, s);
            other.id = e.id;
            other.version = e.version + 1;
            prop_assert_eq!(dirty.insert(&other).unwrap(), Some(e.version));
        }
        for e in &extra_eps {
            prop_assert!(dirty.remove(e.id).unwrap());
            prop_assert!(!dirty.remove(e.id).unwrap());
            prop_assert_eq!(dirty.contains(e.id).unwrap(), None);
        }
        prop_assert_eq!(dirty.len(), clean.len());
        prop_assert_eq!(dirty.stats(), clean.stats());
        for e in &base_eps {
            prop_assert_eq!(dirty.contains(e.id).unwrap(), Some(e.version));
        }
        let a = retriever(&clean, flags(true, true, true));
        let b = retriever(&dirty, flags(true, true, true));
        for q in &queries {
            for limit in [3, 1000] {
                let query = query(q, limit);
                prop_assert_eq!(a.search_at(&query, now()).unwrap(), b.search_at(&query, now()).unwrap());
            }
        }
        // Removing everything leaves an empty index.
        for e in &base_eps {
            prop_assert!(dirty.remove(e.id).unwrap());
        }
        prop_assert!(dirty.is_empty());
        prop_assert_eq!(dirty.stats(), Default::default());
    }
}

#[test]
fn bulk_build_replaces_everything_and_matches_inserts() {
    let specs: Vec<Spec> = (0..60)
        .map(|i| Spec {
            ns: i % 3,
            domain: i % 2,
            task: i % 3,
            words: vec![i % 12, (i * 7) % 12],
            tags: vec![i % 4],
            tools: vec![i % 4, (i + 1) % 4],
            outcome: Some(i % 3),
            reward_tenths: (i % 11) as u8,
            start_hour: (i as i64 * 23) % (60 * 24),
            duration_hours: 2,
            embedding: (i % 2 == 0).then_some([1, (i % 3) as i8, -1]),
        })
        .collect();
    let episodes = summaries(&specs);
    let inserted = index_of(&episodes);
    let bulk = index_of(&summaries(&specs[..10]));
    assert_eq!(bulk.bulk_build(episodes.clone()).unwrap(), 60);
    assert_eq!(bulk.stats(), inserted.stats());
    let a = retriever(&inserted, flags(true, true, true));
    let b = retriever(&bulk, flags(true, true, true));
    for ns in 0..3 {
        let q = QSpec {
            ns,
            domain: None,
            task: None,
            words: vec![0, 3, 5],
            tags_any: vec![],
            tags_all: vec![],
            started: None,
            completed: None,
            outcome: None,
            min_reward_tenths: None,
            include_in_progress: false,
            embedding: Some([1, 0, 0]),
        };
        assert_eq!(
            a.search_at(&query(&q, 10), now()).unwrap(),
            b.search_at(&query(&q, 10), now()).unwrap()
        );
    }
    // A bad summary changes nothing.
    let mut bad = episodes[0].clone();
    bad.reward = f64::NAN;
    assert!(bulk.bulk_build([bad]).is_err());
    assert_eq!(bulk.stats(), inserted.stats());
}
