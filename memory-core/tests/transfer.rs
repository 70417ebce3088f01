//! Export and import through the facade on the in-memory stores: an export imported into a
//! fresh engine reproduces every episode exactly; the bundled sample imports and re-imports
//! idempotently; bad lines are skipped or stop the import at their line; an interrupted export
//! resumes after its last id.

use std::io::{self, Write};

use memory_core::store::{InMemoryCache, InMemoryStore};
use memory_core::transfer::{self, ImportOptions, OnBadLine};
use memory_core::{
    Completion, Episode, EpisodeId, EpisodeUpdate, ErrorKind, Limits, MemoryConfig, NewStep,
    Outcome, SelfLearningMemory, TaskContext,
};

fn config() -> MemoryConfig {
    MemoryConfig {
        limits: Limits {
            embedding_dimension: Some(3),
            // Small pages, so exports cross several of them.
            max_page_size: 2,
            ..Limits::default()
        },
        ..MemoryConfig::default()
    }
}

async fn open() -> SelfLearningMemory {
    SelfLearningMemory::builder()
        .durable(InMemoryStore::new())
        .cache(InMemoryCache::new())
        .config(config())
        .open()
        .await
        .expect("open")
}

/// Every stored episode, in id order.
async fn all(m: &SelfLearningMemory) -> Vec<Episode> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = m.scan_episodes(after, 2).await.expect("scan");
        out.extend(page.items);
        match page.next_after {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// Seven episodes of every shape: completed with reflection and embedding, updated (version
/// 3), failed without steps, in progress with and without steps, two namespaces.
async fn fill(m: &SelfLearningMemory) {
    for i in 0..3 {
        let ctx = TaskContext::new("agent-a", "retail", "refund").with_tags(["orders", "€"]);
        let id = m
            .start_episode(format!("refund order #{i}\n\"quoted\""), ctx)
            .await
            .expect("fill the source");
        m.log_steps(
            id,
            vec![
                NewStep::new("find", r#"{"order": 1,  "spaced":true}"#)
                    .with_output("found\u{1}")
                    .with_latency_ms(12),
                NewStep::new("refund", "").with_success(false),
            ],
        )
        .await
        .expect("fill the source");
        let done = m
            .complete_episode(
                id,
                Completion::from(Outcome::partial("half"))
                    .with_reward(0.1 + 0.2 * f64::from(i))
                    .with_reflection("check the order first")
                    .with_embedding(vec![0.1, -2.5e-8, 3.0]),
            )
            .await
            .expect("fill the source");
        if i == 1 {
            m.update_episode(id, done.version, EpisodeUpdate::default().tags(["x"]))
                .await
                .expect("fill the source");
        }
    }
    let id = m
        .start_episode(
            "failed at once",
            TaskContext::new("agent-b", "web", "deploy"),
        )
        .await
        .expect("fill the source");
    m.complete_episode(id, Outcome::failure("no access"))
        .await
        .expect("fill the source");
    let id = m
        .start_episode("still going", TaskContext::new("agent-b", "web", "deploy"))
        .await
        .expect("fill the source");
    m.log_step(id, NewStep::new("ls", "-la"))
        .await
        .expect("fill the source");
    m.start_episode("just started", TaskContext::new("agent-b", "web", "lint"))
        .await
        .expect("fill the source");
    m.start_episode("another", TaskContext::new("agent-a", "retail", "lookup"))
        .await
        .expect("fill the source");
}

async fn export_all(m: &SelfLearningMemory) -> Vec<u8> {
    let mut out = Vec::new();
    transfer::export(m, &mut out, None).await.expect("export");
    out
}

fn skip() -> ImportOptions {
    ImportOptions {
        on_bad_line: OnBadLine::Skip,
        ..ImportOptions::default()
    }
}

#[tokio::test]
async fn export_then_import_reproduces_every_episode_exactly() {
    let source = open().await;
    fill(&source).await;
    let original = all(&source).await;
    assert_eq!(original.len(), 7);
    assert!(original.iter().any(|e| e.version == 3));
    assert!(
        original
            .iter()
            .any(|e| !e.is_completed() && !e.steps.is_empty())
    );

    let mut out = Vec::new();
    let report = transfer::export(&source, &mut out, None).await.unwrap();
    assert_eq!(report.exported, 7);
    assert_eq!(report.last_id, original.last().map(|e| e.id));
    assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 7);

    let target = open().await;
    let imported = transfer::import(&target, out.as_slice(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!((imported.lines, imported.imported), (7, 7));
    assert_eq!(imported.already_present + imported.skipped, 0);

    assert_eq!(all(&target).await, original);
    for e in &original {
        let back = target.get_episode(e.id).await.unwrap();
        assert_eq!(&back, e);
        assert_eq!(back.reward.to_bits(), e.reward.to_bits());
    }
    // The copy exports byte for byte as the original did.
    assert_eq!(export_all(&target).await, out);
    // Imported episodes are findable.
    let hits = target
        .retrieve(memory_core::RetrievalQuery::new("agent-a", "refund order"))
        .await
        .unwrap();
    assert_eq!(hits.len(), 3);
}

#[tokio::test]
async fn an_imported_in_progress_episode_continues() {
    let source = open().await;
    let id = source
        .start_episode("open", TaskContext::new("ns", "d", "t"))
        .await
        .unwrap();
    source.log_step(id, NewStep::new("a", "1")).await.unwrap();
    let out = export_all(&source).await;

    let target = open().await;
    transfer::import(&target, out.as_slice(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(
        target.log_step(id, NewStep::new("b", "2")).await.unwrap(),
        1
    );
    let done = target
        .complete_episode(id, Outcome::success("ok"))
        .await
        .unwrap();
    assert_eq!(done.version, 2);
    assert_eq!(done.steps.len(), 2);
}

#[tokio::test]
async fn importing_twice_stores_once() {
    let source = open().await;
    fill(&source).await;
    let out = export_all(&source).await;
    let target = open().await;
    transfer::import(&target, out.as_slice(), ImportOptions::default())
        .await
        .unwrap();
    let again = transfer::import(&target, out.as_slice(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!((again.imported, again.already_present), (0, 7));
    assert_eq!(all(&target).await, all(&source).await);
}

fn sample_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../memory-bench/data/tau2-retail.jsonl")
}

#[tokio::test]
async fn the_bundled_sample_imports_completely_and_idempotently() {
    let m = SelfLearningMemory::builder()
        .durable(InMemoryStore::new())
        .cache(InMemoryCache::new())
        .open()
        .await
        .unwrap();
    let read = || io::BufReader::new(std::fs::File::open(sample_path()).unwrap());
    let first = transfer::import(&m, read(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!((first.lines, first.imported, first.skipped), (114, 114, 0));
    let second = transfer::import(&m, read(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!((second.imported, second.already_present), (0, 114));

    let stored = all(&m).await;
    assert_eq!(stored.len(), 114);
    assert!(stored.iter().all(|e| e.is_completed() && e.version == 2));
    // retail-0: its derived id, its start and its completion (start + 1288 ms of steps).
    let first_line = std::fs::read_to_string(sample_path()).unwrap();
    let first_line = first_line.lines().next().unwrap();
    let e = transfer::parse_line(first_line).unwrap();
    let back = m.get_episode(e.id).await.unwrap();
    assert_eq!(back, e);
    assert_eq!(back.id.to_string(), "019fba21-2450-728b-a4f7-5662b9c1d848");
    assert_eq!(back.steps.len(), 5);
    assert_eq!(
        back.completed_at.unwrap() - back.started_at,
        chrono::TimeDelta::milliseconds(212 + 331 + 390 + 220 + 135)
    );
    let hits = m
        .retrieve(memory_core::RetrievalQuery::new(
            "tau2",
            "exchange the mechanical keyboard",
        ))
        .await
        .unwrap();
    assert!(!hits.is_empty());
}

/// An export of `fill`'s seven episodes with `bad` inserted as line 3.
async fn with_bad_line_3(bad: &str) -> (Vec<Episode>, Vec<u8>) {
    let source = open().await;
    fill(&source).await;
    let out = String::from_utf8(export_all(&source).await).expect("export");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.insert(2, bad);
    (
        all(&source).await,
        format!("{}\n", lines.join("\n")).into_bytes(),
    )
}

#[tokio::test]
async fn skip_imports_every_other_line_and_reports_the_bad_one() {
    let (original, input) = with_bad_line_3(r#"{"id": "retail-9", "namespace": "#).await;
    let target = open().await;
    let report = transfer::import(&target, input.as_slice(), skip())
        .await
        .unwrap();
    assert_eq!((report.lines, report.imported, report.skipped), (8, 7, 1));
    assert_eq!(report.bad_lines.len(), 1);
    assert_eq!(report.bad_lines[0].line, 3);
    assert_eq!(
        report.bad_lines[0].episode, None,
        "the line could not be read"
    );
    assert_eq!(report.bad_lines[0].error.kind(), ErrorKind::InvalidInput);
    assert_eq!(all(&target).await, original);
}

#[tokio::test]
async fn abort_stops_at_the_bad_line_and_keeps_exactly_the_lines_before() {
    let (original, input) = with_bad_line_3("not json at all").await;
    let target = open().await;
    let err = transfer::import(&target, input.as_slice(), ImportOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("line 3"), "{err}");
    assert!(err.to_string().contains("2 episodes imported"), "{err}");
    assert_eq!(all(&target).await, original[..2]);

    // Resuming is running the same import again once the line is gone.
    let fixed: Vec<u8> = String::from_utf8(input)
        .unwrap()
        .lines()
        .filter(|l| *l != "not json at all")
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let report = transfer::import(&target, fixed.as_slice(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!((report.imported, report.already_present), (5, 2));
    assert_eq!(all(&target).await, original);
}

#[tokio::test]
async fn a_different_episode_under_a_stored_id_is_a_conflict() {
    let source = open().await;
    fill(&source).await;
    let out = export_all(&source).await;
    let target = open().await;
    transfer::import(&target, out.as_slice(), ImportOptions::default())
        .await
        .unwrap();
    let first = String::from_utf8(out)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let changed = first.replace("check the order first", "something else");
    assert_ne!(changed, first);

    let report = transfer::import(&target, changed.as_bytes(), skip())
        .await
        .unwrap();
    assert_eq!((report.skipped, report.conflicts), (1, 1));
    assert_eq!(report.bad_lines[0].line, 1);
    assert_eq!(
        report.bad_lines[0].episode,
        Some(transfer::parse_line(&first).unwrap().id)
    );
    let err = transfer::import(&target, changed.as_bytes(), ImportOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("line 1"), "{err}");
    // The stored episode is untouched.
    assert_eq!(all(&target).await, all(&source).await);
}

#[tokio::test]
async fn limits_blank_lines_and_crlf() {
    let source = open().await;
    fill(&source).await;
    let out = String::from_utf8(export_all(&source).await).unwrap();
    let mut input = String::from("\r\n");
    for l in out.lines() {
        input.push_str(l);
        input.push_str("\r\n\n");
    }
    input.push_str(&"x".repeat(100));
    // An engine that refuses embeddings refuses the three lines that carry one.
    let strict = SelfLearningMemory::builder()
        .durable(InMemoryStore::new())
        .cache(InMemoryCache::new())
        .open()
        .await
        .unwrap();
    let options = ImportOptions {
        max_line_bytes: Some(out.lines().map(str::len).max().unwrap()),
        max_reported_bad_lines: 2,
        ..skip()
    };
    let report = transfer::import(&strict, input.as_bytes(), options)
        .await
        .unwrap();
    assert_eq!(report.lines, 16);
    assert_eq!(report.blank, 8);
    assert_eq!((report.imported, report.skipped), (4, 4));
    // Only the first two bad lines are listed; the count has all four.
    assert_eq!(report.bad_lines.len(), 2);
    let e = &report.bad_lines[0].error;
    assert_eq!(e.violation().unwrap().field, "embedding", "{e}");
    assert_eq!(report.bad_lines[0].line, 2);

    let tiny = ImportOptions {
        max_line_bytes: Some(99),
        ..skip()
    };
    let report = transfer::import(&strict, "x".repeat(100).as_bytes(), tiny)
        .await
        .unwrap();
    assert_eq!(report.skipped, 1);
    assert!(
        report.bad_lines[0]
            .error
            .to_string()
            .contains("max_line_bytes")
    );
}

/// A writer that fails once it has accepted `budget` bytes, keeping what it accepted.
struct Failing<'a> {
    out: &'a mut Vec<u8>,
    budget: usize,
}

impl Write for Failing<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::Error::other("disk full"));
        }
        let n = buf.len().min(self.budget);
        self.out.extend_from_slice(&buf[..n]);
        self.budget -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_interrupted_export_resumes_after_its_last_complete_line() {
    let m = open().await;
    fill(&m).await;
    let whole = export_all(&m).await;
    let original = all(&m).await;

    // Cut in the middle of the fourth line.
    let cut = whole
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(2)
        .map(|(i, _)| i + 10)
        .unwrap();
    let mut out = Vec::new();
    let err = transfer::export(
        &m,
        Failing {
            out: &mut out,
            budget: cut,
        },
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage);
    assert!(err.to_string().contains("after 3 episodes"), "{err}");
    assert!(
        err.to_string().contains(&original[2].id.to_string()),
        "{err}"
    );

    // Resume: drop the partial line, continue after the id of the last complete one.
    let complete = out.iter().rposition(|b| *b == b'\n').unwrap() + 1;
    out.truncate(complete);
    let last = String::from_utf8(out.clone()).unwrap();
    let last: EpisodeId = transfer::parse_line(last.lines().last().unwrap())
        .unwrap()
        .id;
    assert_eq!(last, original[2].id);
    let report = transfer::export(&m, &mut out, Some(last)).await.unwrap();
    assert_eq!(report.exported, 4);
    assert_eq!(report.last_id, Some(original[6].id));
    assert_eq!(out, whole);

    // Nothing after the last id: an empty, complete export.
    let mut rest = Vec::new();
    let report = transfer::export(&m, &mut rest, Some(original[6].id))
        .await
        .unwrap();
    assert_eq!((report.exported, report.last_id), (0, None));
    assert!(rest.is_empty());
}
