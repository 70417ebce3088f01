//! The hierarchy is an accelerator, never a filter: on random data and queries, the
//! hierarchical path (with and without temporal clustering) returns exactly what the flat
//! path returns — the same set when the limit covers every candidate, and in fact the same
//! hits in the same order with the same scores for any limit, with or without diversity.

mod retrieval_support;

use proptest::prelude::*;
use retrieval_support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn hierarchical_and_flat_agree(
        specs in prop::collection::vec(spec(), 0..80),
        queries in prop::collection::vec(qspec(), 1..4),
        diversity in any::<bool>(),
    ) {
        let episodes = summaries(&specs);
        let index = index_of(&episodes);
        let flat = retriever(&index, flags(false, diversity, false));
        let tree_only = retriever(&index, flags(true, diversity, false));
        let clustered = retriever(&index, flags(true, diversity, true));
        for q in &queries {
            let candidates = episodes.iter().filter(|e| qualifies(q, e)).count();
            for limit in [1, 3, candidates.max(1), 1000] {
                let query = query(q, limit);
                let f = flat.search_at(&query, now()).unwrap();
                let t = tree_only.search_at(&query, now()).unwrap();
                let c = clustered.search_at(&query, now()).unwrap();
                prop_assert_eq!(&f, &t, "limit {}", limit);
                prop_assert_eq!(&f, &c, "limit {}", limit);
                prop_assert_eq!(f.len(), candidates.min(limit));
                if limit >= candidates {
                    let mut a: Vec<_> = f.iter().map(|h| h.id).collect();
                    let mut b: Vec<_> = c.iter().map(|h| h.id).collect();
                    a.sort();
                    b.sort();
                    prop_assert_eq!(a, b);
                }
            }
        }
        let counts = clustered.counts();
        prop_assert_eq!(counts.flat, 0);
        prop_assert!(counts.hierarchical + counts.fallback > 0);
        prop_assert_eq!(flat.counts().hierarchical + flat.counts().fallback, 0);
    }
}
