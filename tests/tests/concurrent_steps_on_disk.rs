//! The concurrency guarantee of `log_step` on the real backends: 32 tasks × 100 steps on one
//! episode all land, numbered 0..3199 once each, and survive reopen.

use std::collections::HashSet;

use memory_core::{MemoryConfig, NewStep, Outcome, TaskContext};
use memory_tests::open_embedded;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_times_one_hundred_steps_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = MemoryConfig::default();
    config.limits.max_steps = 3_200;
    let e = open_embedded(dir.path(), config.clone()).await.unwrap();
    let id = e
        .memory
        .start_episode("stress", TaskContext::new("ns", "d", "t"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let m = e.memory.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..100 {
                    seqs.push(
                        m.log_step(id, NewStep::new(format!("t{t}"), i.to_string()))
                            .await
                            .unwrap(),
                    );
                }
                seqs
            })
        })
        .collect();
    let mut all = HashSet::new();
    for t in tasks {
        let seqs = t.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        all.extend(seqs);
    }
    assert_eq!(all, (0..3_200).collect::<HashSet<u32>>());
    let done = e
        .memory
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    e.memory.shutdown().await.unwrap();
    drop(e);

    let e = open_embedded(dir.path(), config).await.unwrap();
    let back = e.memory.get_episode(id).await.unwrap();
    assert_eq!(back, done);
    assert!(
        back.steps
            .iter()
            .enumerate()
            .all(|(i, s)| s.seq as usize == i)
    );
    e.memory.shutdown().await.unwrap();
}
