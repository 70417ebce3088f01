//! The whole stack through the facade: `SelfLearningMemory` over a `ResilientStore` keeps
//! recording episodes through an outage, and after replay the durable store holds exactly
//! what was acknowledged.

mod outage_support;

use std::time::Duration;

use memory_core::store::DurableStore;
use memory_core::{ErrorKind, NewStep, Outcome, SelfLearningMemory, TaskContext};
use outage_support::{config, drain, fixture};

#[tokio::test(start_paused = true)]
async fn episodes_are_recorded_through_an_outage_and_land_after_replay() {
    let f = fixture(config(1, 5, 1)).await;
    let memory = SelfLearningMemory::builder()
        .durable(f.store.clone())
        .open()
        .await
        .unwrap();
    let ctx = || TaskContext::new("agent-1", "retail", "refund");

    // Started before the outage, continued during it.
    let before = memory.start_episode("before", ctx()).await.unwrap();
    assert_eq!(
        memory
            .log_step(before, NewStep::new("lookup", "{}"))
            .await
            .unwrap(),
        0
    );

    f.outage(true);
    // The first failed write opens the breaker (threshold 1) and is journaled.
    let during = memory.start_episode("during", ctx()).await.unwrap();
    assert!(f.store.is_journaling());
    for i in 0..3 {
        let seq = memory
            .log_step(during, NewStep::new("tool", format!("{{\"i\":{i}}}")))
            .await
            .unwrap();
        assert_eq!(seq, i);
    }
    assert_eq!(
        memory
            .log_step(before, NewStep::new("refund", "{}"))
            .await
            .unwrap(),
        1
    );
    let done = memory
        .complete_episode(during, Outcome::success("refunded"))
        .await
        .unwrap();
    assert_eq!(done.steps.len(), 3);
    // Reads: the facade's own copies, and the store's overlay, agree with what was acknowledged.
    assert_eq!(memory.get_episode(during).await.unwrap(), done);
    assert_eq!(
        f.store.get_episode(during).await.unwrap(),
        Some(done.clone())
    );
    assert_eq!(
        memory
            .list_episodes("agent-1", None, 10)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
    // Deleted during the outage.
    let dropped = memory.start_episode("dropped", ctx()).await.unwrap();
    assert!(memory.delete_episode(dropped).await.unwrap());
    assert!(
        f.inner.inner().get_episode(during).await.unwrap().is_none(),
        "not yet"
    );

    f.outage(false);
    drain(&f.store, Duration::from_secs(5), 2).await;
    assert_eq!(
        f.inner.inner().get_episode(during).await.unwrap(),
        Some(done.clone())
    );
    assert!(
        f.inner
            .inner()
            .get_episode(dropped)
            .await
            .unwrap()
            .is_none()
    );
    let page = memory.list_episodes("agent-1", None, 10).await.unwrap();
    assert_eq!(page.items.len(), 2);

    // Direct again: the episode started before the outage completes straight through.
    let before_done = memory
        .complete_episode(before, Outcome::partial("half"))
        .await
        .unwrap();
    assert_eq!(before_done.steps.len(), 2);
    assert_eq!(f.store.journal_depth().await.unwrap(), 0);
    assert_eq!(
        f.inner.inner().get_episode(before).await.unwrap(),
        Some(before_done)
    );
    memory.shutdown().await.unwrap();
}
