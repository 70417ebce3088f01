//! Concurrent writers and readers: inserts, replaces, moves between shards (also of the same
//! ids from several threads at once) and removals run against searches without deadlock, and
//! leave the index consistent: every id in exactly one place, statistics that add up, and
//! searches that only ever return the namespace asked for.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use memory_core::index::SpatiotemporalIndex;
use memory_core::retrieval::{RetrievalConfig, RetrievalFlags, RetrievalQuery, Retriever};
use memory_core::time;
use memory_core::{EpisodeId, EpisodeSummary, OutcomeKind, TaskContext};

const NAMESPACES: [&str; 2] = ["alpha", "beta"];
const DOMAINS: [&str; 3] = ["retail", "travel", "code"];
const WRITERS: usize = 3;
const ROUNDS: usize = 300;

fn summary(id: EpisodeId, version: u64, ns: usize, domain: usize, text: &str) -> EpisodeSummary {
    EpisodeSummary {
        id,
        version,
        context: TaskContext::new(NAMESPACES[ns], DOMAINS[domain], "task").with_tags(["t"]),
        description: text.to_owned(),
        tools: vec!["get_order_details".into()],
        step_count: 1,
        successful_steps: 1,
        outcome: Some(OutcomeKind::Success),
        reward: 1.0,
        embedding: None,
        started_at: time::from_micros(1_750_000_000_000_000 + version as i64 * 3_600_000_000),
        completed_at: Some(time::from_micros(
            1_750_000_000_000_000 + version as i64 * 3_600_000_000 + 1,
        )),
    }
}

#[test]
fn concurrent_writes_and_searches_stay_consistent() {
    let config = RetrievalConfig::default();
    let index = Arc::new(SpatiotemporalIndex::new(config.index_config()).unwrap());
    let retriever =
        Retriever::new(index.clone(), config, Arc::new(RetrievalFlags::default())).unwrap();
    let shared: Vec<EpisodeId> = (0..8).map(|_| EpisodeId::new()).collect();
    let done = AtomicBool::new(false);

    let finals: Vec<HashMap<EpisodeId, Option<(u64, usize)>>> = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut searches = 0u32;
            while !done.load(Ordering::Relaxed) || searches < 50 {
                for (ns, name) in NAMESPACES.iter().enumerate() {
                    let q = RetrievalQuery::new(*name, "refund lamp order").limit(20);
                    let hits = retriever.search(&q).unwrap();
                    assert!(hits.len() <= 20);
                    let ids: BTreeSet<_> = hits.iter().map(|h| h.id).collect();
                    assert_eq!(ids.len(), hits.len(), "duplicate hit in {ns}");
                }
                searches += 1;
            }
            searches
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let index = &index;
                let shared = &shared;
                s.spawn(move || {
                    // The final state each private id should have: Some((version, namespace)).
                    let mut mine: HashMap<EpisodeId, Option<(u64, usize)>> = HashMap::new();
                    let own: Vec<EpisodeId> = (0..20).map(|_| EpisodeId::new()).collect();
                    for round in 0..ROUNDS {
                        let k = round * (w + 1);
                        let id = own[k % own.len()];
                        let version = round as u64 + 1;
                        let (ns, domain) = (k % 2, (k / 2) % 3);
                        if k % 7 == 3 {
                            index.remove(id).unwrap();
                            mine.insert(id, None);
                        } else {
                            let text = if k % 2 == 0 {
                                "refund the lamp"
                            } else {
                                "order a flight"
                            };
                            index
                                .insert(&summary(id, version, ns, domain, text))
                                .unwrap();
                            mine.insert(id, Some((version, ns)));
                        }
                        // Contended ids: every writer moves them around.
                        let sid = shared[(round + w) % shared.len()];
                        if k % 5 == 0 {
                            index.remove(sid).unwrap();
                        } else {
                            index
                                .insert(&summary(sid, version, (k / 3) % 2, k % 3, "lamp order"))
                                .unwrap();
                        }
                    }
                    mine
                })
            })
            .collect();
        let finals = writers.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() >= 50);
        finals
    });

    // Private ids end exactly as their writer left them.
    let mut expected_live = 0;
    for mine in &finals {
        for (id, state) in mine {
            assert_eq!(index.contains(*id).unwrap(), state.map(|(v, _)| v), "{id}");
            expected_live += usize::from(state.is_some());
        }
    }
    let shared_live = shared
        .iter()
        .filter(|id| index.contains(**id).unwrap().is_some())
        .count();
    assert_eq!(index.len(), expected_live + shared_live);
    let stats = index.stats();
    assert_eq!(stats.episodes, index.len());
    assert_eq!(stats.tree_points, index.len());

    // Every live id is found exactly once, in its own namespace.
    let mut seen = BTreeSet::new();
    for name in NAMESPACES {
        let q = RetrievalQuery::new(name, "lamp").limit(1000);
        for hit in retriever.search(&q).unwrap() {
            assert!(seen.insert(hit.id), "{} found twice", hit.id);
            assert_eq!(index.contains(hit.id).unwrap(), Some(hit.version));
        }
    }
    assert_eq!(seen.len(), index.len());
    for mine in &finals {
        for (id, state) in mine {
            if let Some((_, ns)) = state {
                let q = RetrievalQuery::new(NAMESPACES[*ns], "lamp").limit(1000);
                assert!(retriever.search(&q).unwrap().iter().any(|h| h.id == *id));
            }
        }
    }
}
