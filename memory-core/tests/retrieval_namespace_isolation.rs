//! A query never returns an episode of another namespace, whatever the data, the filters,
//! the flags or the limit — also after episodes move between namespaces and are removed.

mod retrieval_support;

use std::collections::HashMap;

use proptest::prelude::*;
use retrieval_support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn hits_stay_in_their_namespace(
        specs in prop::collection::vec(spec(), 0..80),
        moves in prop::collection::vec((0usize..80, 0..NAMESPACES.len()), 0..10),
        removals in prop::collection::vec(0usize..80, 0..10),
        queries in prop::collection::vec(qspec(), 1..5),
        hierarchical in any::<bool>(),
        diversity in any::<bool>(),
    ) {
        let mut episodes = summaries(&specs);
        let index = index_of(&episodes);
        for (i, ns) in moves {
            if let Some(e) = episodes.get_mut(i) {
                e.context.namespace = NAMESPACES[ns].to_owned();
                e.version += 1;
                index.insert(e).unwrap();
            }
        }
        let mut live: HashMap<_, _> = episodes.iter().map(|e| (e.id, e.context.namespace.clone())).collect();
        for i in removals {
            if let Some(e) = episodes.get(i) {
                index.remove(e.id).unwrap();
                live.remove(&e.id);
            }
        }
        prop_assert_eq!(index.len(), live.len());
        let r = retriever(&index, flags(hierarchical, diversity, true));
        for q in &queries {
            for limit in [2, 1000] {
                for hit in r.search_at(&query(q, limit), now()).unwrap() {
                    prop_assert_eq!(live.get(&hit.id).map(String::as_str), Some(NAMESPACES[q.ns]));
                }
            }
        }
    }
}
