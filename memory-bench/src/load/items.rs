//! What the load generator writes and asks: synthetic episodes in the shape of
//! `synthetic::Generator` (namespaces, skewed domains, per-domain tools), as
//! [`DatasetEpisode`]s so the demo's ingest path stores them, and distinct query texts drawn
//! from the bundled sample's descriptions and the generator's vocabulary.
//!
//! Deterministic for a seed. Never touches the engine.

use std::collections::HashSet;

use memory_core::retrieval::RetrievalQuery;
use memory_core::{NewStep, Outcome, OutcomeKind, Result};

use crate::dataset::{self, DatasetEpisode};
use crate::synthetic::{Generator, Shape};

/// A seeded source of synthetic episodes with `steps` steps each.
#[derive(Debug, Clone)]
pub struct Items {
    generator: Generator,
    steps: usize,
    made: u64,
}

impl Items {
    /// Episodes from `seed`, each with `steps` steps.
    pub fn new(seed: u64, steps: usize) -> Self {
        Self {
            generator: Generator::new(seed, Shape::default()),
            steps,
            made: 0,
        }
    }

    /// The next episode.
    pub fn next_episode(&mut self) -> DatasetEpisode {
        let s = self.generator.summary();
        let n = self.made;
        self.made += 1;
        let steps = (0..self.steps)
            .map(|i| {
                let tool = s.tools[i % s.tools.len().max(1)].clone();
                NewStep::new(
                    tool,
                    format!(
                        "{{\"episode\":{n},\"step\":{i},\"note\":\"look up {} for the customer\"}}",
                        s.context.domain
                    ),
                )
                .with_output("ok")
                .with_latency_ms(5 + (n + i as u64) % 40)
            })
            .collect();
        let kind = s.outcome.unwrap_or(OutcomeKind::Success);
        DatasetEpisode {
            source_id: format!("load-{n}"),
            description: s.description,
            context: s.context,
            steps,
            outcome: Outcome {
                kind,
                verdict: "done".into(),
            },
            reward: s.reward,
            started_at: s.started_at,
            relevance_key: String::new(),
        }
    }
}

/// Distinct query texts: every fourth from the bundled sample's descriptions (in its
/// namespace and domain) while they last, the rest from the generator's vocabulary.
/// Distinctness is checked over the last 100,000 texts (memory stays bounded).
#[derive(Debug, Clone)]
pub struct Queries {
    generator: Generator,
    sample: Vec<(String, String, String)>,
    next_sample: usize,
    seen: HashSet<String>,
    issued: u64,
    limit: usize,
}

const DISTINCT_WINDOW: usize = 100_000;

impl Queries {
    /// Queries from `seed` with `limit` hits each, including the bundled sample's
    /// descriptions.
    pub fn new(seed: u64, limit: usize) -> Result<Self> {
        let sample = dataset::load(&dataset::bundled_sample())?
            .into_iter()
            .map(|e| (e.context.namespace, e.context.domain, e.description))
            .collect();
        Ok(Self {
            generator: Generator::new(seed ^ 0x9E37_79B9, Shape::default()),
            sample,
            next_sample: 0,
            seen: HashSet::new(),
            issued: 0,
            limit,
        })
    }

    /// The next query; its text differs from every recent one.
    pub fn next_query(&mut self) -> RetrievalQuery {
        if self.seen.len() >= DISTINCT_WINDOW {
            self.seen.clear();
        }
        self.issued += 1;
        if self.issued % 4 == 1
            && let Some((ns, domain, text)) = self.sample.get(self.next_sample).cloned()
        {
            self.next_sample += 1;
            if self.seen.insert(text.clone()) {
                return RetrievalQuery::new(ns, text)
                    .domain(domain)
                    .limit(self.limit);
            }
        }
        for _ in 0..100 {
            let (ns, domain, text) = self.generator.query();
            if self.seen.insert(text.clone()) {
                return RetrievalQuery::new(ns, text)
                    .domain(domain)
                    .limit(self.limit);
            }
        }
        let (ns, domain, text) = self.generator.query();
        let text = format!("{text} q{}", self.issued);
        self.seen.insert(text.clone());
        RetrievalQuery::new(ns, text)
            .domain(domain)
            .limit(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episodes_have_the_asked_steps_and_are_deterministic() {
        let mut a = Items::new(3, 4);
        let mut b = Items::new(3, 4);
        for _ in 0..20 {
            let (x, y) = (a.next_episode(), b.next_episode());
            assert_eq!(x.steps.len(), 4);
            assert_eq!((x.description, x.steps), (y.description, y.steps));
        }
    }

    #[test]
    fn query_texts_are_distinct_and_include_the_sample() {
        let mut q = Queries::new(1, 5).unwrap();
        let texts: Vec<String> = (0..2_000)
            .map(|_| q.next_query().text().to_owned())
            .collect();
        let distinct: HashSet<&String> = texts.iter().collect();
        assert_eq!(distinct.len(), texts.len());
        let sample = dataset::load(&dataset::bundled_sample()).unwrap();
        assert!(texts.contains(&sample[0].description));
    }
}
