//! Two engines on the embedded default in separate directories, working at the same time in
//! one process, never see each other's data.

use memory_core::{ErrorKind, MemoryConfig, NewStep, Outcome, TaskContext};
use memory_tests::open_embedded;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_instances_stay_isolated() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open_embedded(dir_a.path(), MemoryConfig::default())
        .await
        .unwrap();
    let b = open_embedded(dir_b.path(), MemoryConfig::default())
        .await
        .unwrap();

    let work = |m: memory_core::SelfLearningMemory, tag: &'static str| async move {
        let mut ids = Vec::new();
        for i in 0..10 {
            let id = m
                .start_episode(
                    format!("{tag} {i}"),
                    TaskContext::new("shared-ns", "d", "t"),
                )
                .await
                .unwrap();
            m.log_step(id, NewStep::new(tag, "")).await.unwrap();
            m.complete_episode(id, Outcome::success(tag)).await.unwrap();
            ids.push(id);
        }
        ids
    };
    let (ids_a, ids_b) = tokio::join!(work(a.memory.clone(), "a"), work(b.memory.clone(), "b"));

    for (mine, theirs, m) in [(&ids_a, &ids_b, &a.memory), (&ids_b, &ids_a, &b.memory)] {
        let listed: Vec<_> = m
            .list_episodes("shared-ns", None, 100)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(&listed, mine, "each lists exactly its own episodes");
        for id in theirs {
            assert_eq!(
                m.get_episode(*id).await.unwrap_err().kind(),
                ErrorKind::NotFound
            );
        }
    }
    a.memory.shutdown().await.unwrap();
    b.memory.shutdown().await.unwrap();
}
