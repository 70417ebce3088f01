//! Backup and restore on the embedded default (libsql file + redb file): fill an engine,
//! export it to a file, import the file into a fresh engine on new files, and find every
//! episode there exactly as it was, also after reopening, and through retrieval.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};

use memory_core::transfer::{self, ImportOptions, OnBadLine};
use memory_core::{
    Completion, Episode, EpisodeUpdate, Limits, MemoryConfig, NewStep, Outcome, RetrievalQuery,
    SelfLearningMemory, TaskContext,
};
use memory_tests::open_embedded;

fn config() -> MemoryConfig {
    MemoryConfig {
        limits: Limits {
            embedding_dimension: Some(4),
            ..Limits::default()
        },
        ..MemoryConfig::default()
    }
}

/// Every stored episode, in id order.
async fn all(m: &SelfLearningMemory) -> Vec<Episode> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = m.scan_episodes(after, 7).await.expect("scan");
        out.extend(page.items);
        match page.next_after {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

const TOPICS: [&str; 4] = [
    "refund a damaged blender",
    "change the shipping address of a pending order",
    "exchange shoes for a bigger size",
    "cancel a duplicate subscription",
];

/// 24 completed episodes over two namespaces (some updated, some with an embedding), plus
/// two in progress.
async fn fill(m: &SelfLearningMemory) {
    for i in 0..24u32 {
        let ns = if i % 2 == 0 { "shop" } else { "support" };
        let topic = TOPICS[(i / 2) as usize % TOPICS.len()];
        let ctx = TaskContext::new(ns, "retail", format!("kind-{}", i % 3))
            .with_tags(["orders", topic.split(' ').next().unwrap_or("x")]);
        let id = m
            .start_episode(format!("{topic} (case {i})"), ctx)
            .await
            .expect("fill the source");
        let steps = (0..i % 4)
            .map(|s| {
                NewStep::new("tool", format!(r#"{{"case":{i},"step":{s}}}"#))
                    .with_output("ok ✓")
                    .with_latency_ms(u64::from(s) * 10)
            })
            .collect();
        m.log_steps(id, steps).await.expect("fill the source");
        let mut completion =
            Completion::from(Outcome::success(format!("done {i}"))).with_reward(f64::from(i) / 7.0);
        if i % 3 == 0 {
            completion = completion
                .with_reflection("look the order up first")
                .with_embedding(vec![0.25, -1.0 / 3.0, 1e-7, f32::from(i as u8)]);
        }
        let done = m
            .complete_episode(id, completion)
            .await
            .expect("fill the source");
        if i % 5 == 0 {
            m.update_episode(id, done.version, EpisodeUpdate::default().reward(0.5))
                .await
                .expect("fill the source");
        }
    }
    for ns in ["shop", "support"] {
        let id = m
            .start_episode("still open", TaskContext::new(ns, "retail", "kind-0"))
            .await
            .expect("fill the source");
        m.log_step(id, NewStep::new("tool", "{}"))
            .await
            .expect("fill the source");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_restores_every_episode_into_fresh_files() {
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.jsonl");

    let source_dir = dir.path().join("source");
    std::fs::create_dir(&source_dir).unwrap();
    let source = open_embedded(&source_dir, config()).await.unwrap().memory;
    fill(&source).await;
    let original = all(&source).await;
    assert_eq!(original.len(), 26);
    let mut out = BufWriter::new(File::create(&backup).unwrap());
    let exported = transfer::export(&source, &mut out, None).await.unwrap();
    out.flush().unwrap();
    drop(out);
    assert_eq!(exported.exported, 26);
    assert_eq!(exported.last_id, original.last().map(|e| e.id));
    source.shutdown().await.unwrap();

    let target_dir = dir.path().join("target");
    std::fs::create_dir(&target_dir).unwrap();
    {
        let target = open_embedded(&target_dir, config()).await.unwrap().memory;
        let input = BufReader::new(File::open(&backup).unwrap());
        let report = transfer::import(&target, input, ImportOptions::default())
            .await
            .unwrap();
        assert_eq!((report.lines, report.imported, report.skipped), (26, 26, 0));
        assert_eq!(all(&target).await, original);
        target.shutdown().await.unwrap();
    }

    // Reopened, the restored files hold every episode exactly (versions, µs timestamps,
    // embeddings, in-progress steps), serve them, and retrieval finds them.
    let target = open_embedded(&target_dir, config()).await.unwrap().memory;
    assert_eq!(all(&target).await, original);
    for e in &original {
        let back = target.get_episode(e.id).await.unwrap();
        assert_eq!(&back, e);
        assert_eq!(back.reward.to_bits(), e.reward.to_bits());
    }
    for topic in TOPICS {
        for ns in ["shop", "support"] {
            let hits = target
                .retrieve(RetrievalQuery::new(ns, topic).limit(3))
                .await
                .unwrap();
            assert!(
                hits.iter()
                    .any(|h| h.episode.description.starts_with(topic)),
                "{ns}: {topic}: {:?}",
                hits.iter()
                    .map(|h| &h.episode.description)
                    .collect::<Vec<_>>()
            );
        }
    }
    // The in-progress episodes go on where they stopped.
    let (line, open) = original
        .iter()
        .enumerate()
        .find(|(_, e)| !e.is_completed())
        .unwrap();
    assert_eq!(
        target
            .log_step(open.id, NewStep::new("tool", "more"))
            .await
            .unwrap(),
        1
    );
    // Restoring the same backup again changes nothing: what is there is recognised, and the
    // episode that moved on since is reported as a conflict, not overwritten.
    let input = BufReader::new(File::open(&backup).unwrap());
    let skip = ImportOptions {
        on_bad_line: OnBadLine::Skip,
        ..ImportOptions::default()
    };
    let again = transfer::import(&target, input, skip).await.unwrap();
    assert_eq!((again.imported, again.already_present), (0, 25));
    assert_eq!((again.skipped, again.conflicts), (1, 1));
    assert_eq!(again.bad_lines[0].line, line as u64 + 1);
    assert_eq!(target.get_episode(open.id).await.unwrap().steps.len(), 2);
    target.shutdown().await.unwrap();
}
