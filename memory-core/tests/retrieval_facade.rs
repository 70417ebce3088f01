//! Retrieval through the facade: what is findable follows every write (start, completion,
//! update, delete), the index is rebuilt from the durable store at open, and the runtime
//! flags switch paths without changing answers.

use std::sync::Arc;

use memory_core::retrieval::{RetrievalFlag, RetrievalQuery};
use memory_core::store::InMemoryStore;
use memory_core::{EpisodeId, EpisodeUpdate, NewStep, Outcome, SelfLearningMemory, TaskContext};

async fn open(store: Arc<InMemoryStore>) -> SelfLearningMemory {
    SelfLearningMemory::builder()
        .durable(store)
        .open()
        .await
        .expect("open")
}

async fn record(m: &SelfLearningMemory, ns: &str, desc: &str, tools: &[&str]) -> EpisodeId {
    let id = m
        .start_episode(desc, TaskContext::new(ns, "retail", "support"))
        .await
        .expect("start");
    let steps = tools.iter().map(|t| NewStep::new(*t, "{}")).collect();
    m.log_steps(id, steps).await.expect("steps");
    m.complete_episode(id, Outcome::success("ok"))
        .await
        .expect("complete");
    id
}

fn ids(hits: &[memory_core::RetrievedEpisode]) -> Vec<EpisodeId> {
    hits.iter().map(|h| h.episode.id).collect()
}

#[tokio::test]
async fn retrieval_follows_writes_and_never_crosses_namespaces() {
    let m = open(Default::default()).await;
    let refund = record(
        &m,
        "a",
        "refund a broken lamp",
        &["get_order", "refund_order"],
    )
    .await;
    let exchange = record(
        &m,
        "a",
        "exchange shoes for a bigger size",
        &["exchange_items"],
    )
    .await;
    let foreign = record(&m, "b", "refund a broken lamp", &["refund_order"]).await;

    let hits = m
        .retrieve(RetrievalQuery::new("a", "lamp refund").limit(5))
        .await
        .unwrap();
    assert_eq!(hits.first().map(|h| h.episode.id), Some(refund));
    assert!(!ids(&hits).contains(&foreign), "never another namespace");
    assert!(hits[0].score > 0.0);
    assert!((hits[0].breakdown.total() - hits[0].score).abs() < 1e-12);

    // In-progress episodes are only found when asked for.
    let open_id = m
        .start_episode(
            "refund a lamp, still working",
            TaskContext::new("a", "retail", "support"),
        )
        .await
        .unwrap();
    let hits = m
        .retrieve(RetrievalQuery::new("a", "lamp refund").limit(10))
        .await
        .unwrap();
    assert!(!ids(&hits).contains(&open_id));
    let hits = m
        .retrieve(
            RetrievalQuery::new("a", "lamp refund")
                .limit(10)
                .include_in_progress(),
        )
        .await
        .unwrap();
    assert!(ids(&hits).contains(&open_id));

    // Updates are visible to filters; deletes remove the episode from results.
    let v = m.get_episode(exchange).await.unwrap().version;
    m.update_episode(exchange, v, EpisodeUpdate::default().tags(["vip"]))
        .await
        .unwrap();
    let hits = m
        .retrieve(RetrievalQuery::new("a", "shoes").tags_any(["vip"]).limit(5))
        .await
        .unwrap();
    assert_eq!(ids(&hits), vec![exchange]);
    assert_eq!(hits[0].episode.context.tags, ["vip"]);

    m.delete_episode(refund).await.unwrap();
    let hits = m
        .retrieve(RetrievalQuery::new("a", "lamp refund").limit(5))
        .await
        .unwrap();
    assert!(
        !ids(&hits).contains(&refund),
        "deleted episodes are gone from results"
    );
}

#[tokio::test]
async fn the_index_is_rebuilt_from_the_durable_store_at_open() {
    let store = Arc::new(InMemoryStore::new());
    let first = open(store.clone()).await;
    let mut recorded = Vec::new();
    for i in 0..30 {
        let tool = if i % 2 == 0 {
            "refund_order"
        } else {
            "exchange_items"
        };
        recorded.push(
            record(
                &first,
                "ns",
                &format!("customer {i} wants a {tool}"),
                &[tool],
            )
            .await,
        );
    }
    let query = RetrievalQuery::new("ns", "refund my order").limit(7);
    let before = ids(&first.retrieve(query.clone()).await.unwrap());
    drop(first);

    let second = open(store).await;
    assert_eq!(second.index().len(), 30);
    let after = ids(&second.retrieve(query).await.unwrap());
    assert_eq!(before, after, "same answers after a restart");
}

#[tokio::test]
async fn flags_switch_paths_at_runtime_with_the_same_answers() {
    let m = open(Default::default()).await;
    for i in 0..20 {
        record(
            &m,
            "ns",
            &format!("order {i} refund request"),
            &["refund_order"],
        )
        .await;
    }
    let q = RetrievalQuery::new("ns", "refund").limit(5);
    m.retrieval_flags().disable(RetrievalFlag::Diversity);
    let hierarchical = ids(&m.retrieve(q.clone()).await.unwrap());
    m.retrieval_flags()
        .disable(RetrievalFlag::HierarchicalIndex);
    let flat = ids(&m.retrieve(q.clone()).await.unwrap());
    assert_eq!(hierarchical, flat);
    let counts = m.retrieval_counts();
    assert_eq!((counts.hierarchical, counts.flat), (1, 1), "{counts:?}");
}
