//! The hierarchical path's pruning (posting lists read a window of slots at a time,
//! MaxScore-style, cluster bounds) must return exactly the flat path's hits, scores and order.
//! The property test in memory-core checks this on up to 80 episodes, where every list is
//! short; this one uses the benchmark's generator at a size where lists are long, shards span
//! several windows, and lists switch from essential to non-essential during the walk.

use std::sync::Arc;

use memory_bench::synthetic::{Generator, Shape};
use memory_core::index::SpatiotemporalIndex;
use memory_core::retrieval::{
    RetrievalConfig, RetrievalFlag, RetrievalFlags, RetrievalQuery, Retriever,
};
use memory_core::time;

#[test]
fn hierarchical_matches_flat_on_long_posting_lists() {
    let shape = Shape {
        namespaces: 1,
        domains: 2,
        ..Shape::default()
    };
    let mut generator = Generator::new(5, shape);
    let episodes: Vec<_> = (0..12_000).map(|_| generator.summary()).collect();
    let config = RetrievalConfig::default();
    let index = Arc::new(SpatiotemporalIndex::new(config.index_config()).unwrap());
    index.bulk_build(episodes).unwrap();
    let flags = Arc::new(RetrievalFlags::default());
    let retriever = Retriever::new(index, config, flags.clone()).unwrap();
    let now = time::now();
    let mut queries = Generator::new(11, shape);
    let mut compared = 0;
    for i in 0..60 {
        let (namespace, domain, text) = queries.query();
        let mut query = RetrievalQuery::new(namespace, text).limit([1, 5, 20][i % 3]);
        if i % 4 != 0 {
            query = query.domain(domain);
        }
        for diversity in [false, true] {
            if diversity {
                flags.enable(RetrievalFlag::Diversity);
            } else {
                flags.disable(RetrievalFlag::Diversity);
            }
            flags.enable(RetrievalFlag::HierarchicalIndex);
            let hierarchical = retriever.search_at(&query, now).unwrap();
            flags.disable(RetrievalFlag::HierarchicalIndex);
            let flat = retriever.search_at(&query, now).unwrap();
            assert_eq!(hierarchical, flat, "query {i}, diversity {diversity}");
            assert_eq!(flat.len(), query.hit_limit(), "query {i}");
            compared += 1;
        }
    }
    assert_eq!(compared, 120);
    let counts = retriever.counts();
    assert_eq!(counts.hierarchical, 120, "{counts:?}");
}
