//! Filters are applied inside the index, before the top-k: every hit satisfies every filter,
//! and when the limit covers every qualifying episode, none is missed (checked against a
//! brute-force statement of the filters).

mod retrieval_support;

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use retrieval_support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn filters_hold_and_miss_nothing(
        specs in prop::collection::vec(spec(), 0..80),
        queries in prop::collection::vec(qspec(), 1..5),
        hierarchical in any::<bool>(),
        diversity in any::<bool>(),
    ) {
        let episodes = summaries(&specs);
        let by_id: HashMap<_, _> = episodes.iter().map(|e| (e.id, e)).collect();
        let index = index_of(&episodes);
        let r = retriever(&index, flags(hierarchical, diversity, true));
        for q in &queries {
            let expected: BTreeSet<_> = episodes.iter().filter(|e| qualifies(q, e)).map(|e| e.id).collect();
            let all = r.search_at(&query(q, 1000), now()).unwrap();
            let got: BTreeSet<_> = all.iter().map(|h| h.id).collect();
            prop_assert_eq!(&got, &expected);
            prop_assert_eq!(got.len(), all.len(), "no duplicates");
            for limit in [1, 3] {
                let hits = r.search_at(&query(q, limit), now()).unwrap();
                prop_assert_eq!(hits.len(), expected.len().min(limit));
                for h in &hits {
                    prop_assert!(qualifies(q, by_id[&h.id]), "{:?} fails {:?}", by_id[&h.id], q);
                    let b = h.breakdown;
                    prop_assert!((b.total() - h.score).abs() < 1e-12);
                    prop_assert!(h.score.is_finite() && h.score >= 0.0);
                }
            }
        }
    }
}
