//! The demo: ingest the bundled sample into the embedded default and read it back.
//!
//! Opens the embedded default ([`crate::embedded::open_default`]: a `TursoStore` on
//! `<data_dir>/memory.db`, a `RedbJournal` and a `RedbCache` on `<data_dir>/journal.redb` and
//! `<data_dir>/cache.redb`, no server), ingests
//! every sample episode through the public facade unless the namespace already holds them, and
//! prints a summary and a few episodes.

use std::collections::HashMap;
use std::time::Instant;

use memory_core::retrieval::RetrievalQuery;
use memory_core::{Completion, Episode, Result, SelfLearningMemory};
use tokio::task::JoinSet;

use crate::dataset::{self, DatasetEpisode};
use crate::embedded::open_default;

/// Record one sample episode through the facade: start, steps, completion.
pub async fn ingest_one(memory: &SelfLearningMemory, e: DatasetEpisode) -> Result<Episode> {
    let id = memory.start_episode(e.description, e.context).await?;
    if !e.steps.is_empty() {
        memory.log_steps(id, e.steps).await?;
    }
    memory
        .complete_episode(id, Completion::from(e.outcome).with_reward(e.reward))
        .await
}

/// Every episode of a namespace, paging through all of them.
pub async fn list_all(memory: &SelfLearningMemory, namespace: &str) -> Result<Vec<Episode>> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = memory.list_episodes(namespace, after, 100).await?;
        all.extend(page.items);
        match page.next_after {
            Some(n) => after = Some(n),
            None => return Ok(all),
        }
    }
}

/// The sample episodes not stored yet (an interrupted earlier run may have stored some),
/// matched by description as a multiset.
fn missing(sample: Vec<DatasetEpisode>, stored: &[Episode]) -> Vec<DatasetEpisode> {
    let mut have: HashMap<&str, usize> = HashMap::new();
    for e in stored {
        *have.entry(e.description.as_str()).or_default() += 1;
    }
    sample
        .into_iter()
        .filter(|e| match have.get_mut(e.description.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

/// The `demo` command.
pub async fn run() -> Result<()> {
    let memory = open_default().await?;
    println!(
        "data directory: {} (memory.db, journal.redb, cache.redb)",
        memory.config().data_dir.display()
    );

    let sample = dataset::load(&dataset::bundled_sample())?;
    let namespace = sample
        .first()
        .map(|e| e.context.namespace.clone())
        .unwrap_or_default();
    let stored = list_all(&memory, &namespace).await?;
    let todo = missing(sample, &stored);
    if todo.is_empty() {
        println!(
            "reusing {} stored episodes in namespace {namespace:?}",
            stored.len()
        );
    } else {
        let started = Instant::now();
        let n = todo.len();
        let mut tasks = JoinSet::new();
        for e in todo {
            let memory = memory.clone();
            tasks.spawn(async move { ingest_one(&memory, e).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| {
                memory_core::Error::storage("an ingest task panicked").with_source(e)
            })??;
        }
        println!(
            "ingested {n} episodes of real agent tasks in {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }

    let all = list_all(&memory, &namespace).await?;
    println!("namespace {namespace:?} holds {} episodes", all.len());
    for e in all.iter().rev().take(3) {
        let full = memory.get_episode(e.id).await?;
        let tools: Vec<&str> = full.steps.iter().map(|s| s.tool.as_str()).collect();
        println!(
            "- {} [{}] reward {:.2}, {} steps: {}\n  {}",
            full.id,
            full.context.task_type,
            full.reward,
            full.steps.len(),
            tools.join(" → "),
            shorten(&full.description, 110),
        );
    }

    println!("\nretrieval (namespace {namespace:?}, top 3 per question):");
    for question in [
        "I received my order but want to return the headphones for a refund",
        "please change the shipping address of my pending order",
        "the shoes I got are too small, can I swap them for a bigger size",
    ] {
        let query = RetrievalQuery::new(namespace.clone(), question).limit(3);
        let hits = memory.retrieve(query).await?;
        println!("? {question}");
        for hit in hits {
            println!(
                "  {:.3}  [{}] {}",
                hit.score,
                hit.episode.context.task_type,
                shorten(&hit.episode.description, 90)
            );
        }
    }
    let counts = memory.retrieval_counts();
    println!(
        "index: {} episodes, ~{} KiB; queries: {} hierarchical, {} flat, {} fell back to flat",
        memory.index().len(),
        memory.index().memory_bytes() / 1024,
        counts.hierarchical,
        counts.flat,
        counts.fallback
    );
    memory.shutdown().await
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}
