//! On the embedded default (libsql file + redb file): data survives shutdown and reopen, and
//! survives a drop without shutdown; an in-progress episode continues after reopen.

use memory_core::{Completion, MemoryConfig, NewStep, Outcome, TaskContext};
use memory_tests::open_embedded;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn episodes_survive_shutdown_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (done, open_id) = {
        let e = open_embedded(dir.path(), MemoryConfig::default())
            .await
            .unwrap();
        let m = &e.memory;
        let ctx = TaskContext::new("agent", "retail", "refund").with_tags(["orders"]);
        let id = m.start_episode("refund ✓ #1", ctx.clone()).await.unwrap();
        m.log_steps(
            id,
            vec![
                NewStep::new("find", "{\"a\":1}"),
                NewStep::new("refund", "{}"),
            ],
        )
        .await
        .unwrap();
        let done = m
            .complete_episode(
                id,
                Completion::from(Outcome::success("ok")).with_reward(0.1 + 0.2),
            )
            .await
            .unwrap();
        let open_id = m.start_episode("still going", ctx).await.unwrap();
        m.log_step(open_id, NewStep::new("first", ""))
            .await
            .unwrap();
        m.shutdown().await.unwrap();
        (done, open_id)
    };

    let e = open_embedded(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    let m = &e.memory;
    let back = m.get_episode(done.id).await.unwrap();
    assert_eq!(back, done);
    assert_eq!(back.reward.to_bits(), (0.1f64 + 0.2).to_bits());
    assert_eq!(
        m.log_step(open_id, NewStep::new("second", ""))
            .await
            .unwrap(),
        1
    );
    let finished = m
        .complete_episode(open_id, Outcome::partial("half"))
        .await
        .unwrap();
    let tools: Vec<_> = finished.steps.iter().map(|s| s.tool.as_str()).collect();
    assert_eq!(tools, ["first", "second"]);
    let page = m.list_episodes("agent", None, 10).await.unwrap();
    assert_eq!(page.items.len(), 2);
    m.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_drop_without_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let e = open_embedded(dir.path(), MemoryConfig::default())
            .await
            .unwrap();
        let id = e
            .memory
            .start_episode("t", TaskContext::new("ns", "d", "t"))
            .await
            .unwrap();
        for i in 0..20 {
            e.memory
                .log_step(id, NewStep::new("tool", i.to_string()))
                .await
                .unwrap();
        }
        id
        // dropped here: no shutdown, no flush
    };
    // The previous instance's files are released once its handles are gone.
    let e = open_embedded(dir.path(), MemoryConfig::default())
        .await
        .unwrap();
    let back = e.memory.get_episode(id).await.unwrap();
    assert_eq!(back.steps.len(), 20);
    assert!(
        back.steps
            .iter()
            .enumerate()
            .all(|(i, s)| s.input == i.to_string())
    );
    e.memory.shutdown().await.unwrap();
}
