//! A seeded generator of synthetic episodes with a realistic shape, for index and load
//! benchmarks: several namespaces, ~20 domains with skewed sizes (Zipf-like), per-domain tool
//! sets with snake_case names, descriptions drawn from a shared vocabulary plus domain words,
//! outcomes and rewards, start times spread over a year.
//!
//! Deterministic: the same seed gives the same episodes. It never touches a store.

use memory_core::time::{self, Timestamp};
use memory_core::{
    Episode, EpisodeId, EpisodeSummary, NewStep, Outcome, OutcomeKind, Step, TaskContext,
};

/// splitmix64: small, fast, well mixed; enough for workloads.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Zipf-like in `0..n`: index `i` with weight `1 / (i + 1)`.
    pub fn zipf(&mut self, n: usize) -> usize {
        let h: f64 = (1..=n).map(|i| 1.0 / i as f64).sum();
        let mut x = self.unit() * h;
        for i in 0..n {
            x -= 1.0 / (i + 1) as f64;
            if x <= 0.0 {
                return i;
            }
        }
        n - 1
    }
}

const VERBS: &[&str] = &[
    "refund",
    "exchange",
    "cancel",
    "update",
    "deploy",
    "debug",
    "summarize",
    "translate",
    "schedule",
    "book",
    "review",
    "migrate",
    "install",
    "configure",
    "search",
    "compare",
    "return",
    "track",
    "verify",
    "reset",
    "analyze",
    "classify",
    "draft",
    "fix",
];
const OBJECTS: &[&str] = &[
    "order",
    "invoice",
    "account",
    "password",
    "flight",
    "hotel",
    "report",
    "ticket",
    "branch",
    "container",
    "database",
    "address",
    "payment",
    "subscription",
    "meeting",
    "document",
    "dataset",
    "model",
    "package",
    "service",
    "query",
    "shipment",
    "profile",
    "calendar",
];
const FILLER: &[&str] = &[
    "the", "customer", "wants", "to", "please", "urgent", "their", "new", "old", "after", "before",
    "because", "with", "for", "my", "a", "recent", "failed", "twice", "today", "again", "quickly",
    "large", "small", "second", "first", "last", "week", "month", "team",
];

/// Where description words come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    /// A word list of natural-language shape: 20,000 distinct words drawn by Zipf's law (the
    /// r-th most frequent word with probability ∝ 1/r, as in English text), the 300 most
    /// frequent shared by every domain and the rest shifted per domain (topical words), plus
    /// domain verbs and objects and item numbers. The default.
    Zipf,
    /// The first generator's: 78 words (30 fillers, 24 verbs, 24 objects) plus item numbers,
    /// so every description shares several words with every query of its domain, a worst case
    /// for any lexical index. Kept to compare with earlier figures.
    Small,
}

/// Distinct words of [`Vocabulary::Zipf`].
const ZIPF_WORDS: usize = 20_000;
/// The most frequent words of [`Vocabulary::Zipf`], shared by every domain.
const SHARED_WORDS: usize = 300;

/// The `i`-th word of the synthetic vocabulary: syllables spelling `i` (distinct for distinct
/// `i`, letters only, at least two syllables, so no word is a stop word or a number).
fn word(i: usize) -> String {
    const SYLLABLES: [&str; 32] = [
        "ka", "ri", "to", "me", "su", "la", "no", "vi", "pe", "do", "ga", "zu", "ho", "ne", "fi",
        "ba", "ru", "se", "mo", "ti", "ja", "ke", "lu", "po", "wa", "xi", "de", "gu", "ya", "co",
        "bi", "fe",
    ];
    let mut n = i + 32;
    let mut w = String::new();
    while n > 0 {
        w.push_str(SYLLABLES[n % 32]);
        n /= 32;
    }
    w
}

/// Cumulative Zipf weights of `0..n` (rank `r` ∝ `1 / (r + 1)`), for sampling by binary search.
#[derive(Debug, Clone)]
struct ZipfTable(Vec<f64>);

impl ZipfTable {
    fn new(n: usize) -> Self {
        let mut sum = 0.0;
        Self(
            (0..n)
                .map(|r| {
                    sum += 1.0 / (r + 1) as f64;
                    sum
                })
                .collect(),
        )
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.0.last().copied().unwrap_or(0.0);
        let x = rng.unit() * total;
        self.0.partition_point(|c| *c < x).min(self.0.len() - 1)
    }
}

/// Settings of the generator.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Namespaces (tenants).
    pub namespaces: usize,
    /// Domains per namespace (sizes are skewed).
    pub domains: usize,
    /// Task types per domain.
    pub task_types: usize,
    /// Tools per domain.
    pub tools: usize,
    /// Where description words come from.
    pub vocabulary: Vocabulary,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            namespaces: 4,
            domains: 20,
            task_types: 8,
            tools: 12,
            vocabulary: Vocabulary::Zipf,
        }
    }
}

/// Episodes start within [`SPAN_MICROS`] from this instant (2025-01-01 UTC).
const START_MICROS: i64 = 1_735_689_600_000_000;

/// 365 days.
const SPAN_MICROS: i64 = 365 * 86_400_000_000;

/// The end of the span the generated episodes start in (2026-01-01 UTC): the instant the
/// benchmarks query at, so that recency weighs the same whatever day they run (measured at
/// the wall clock, every episode grows older, recency adds less, and retrieval gets cheaper
/// as the months pass).
pub fn span_end() -> Timestamp {
    time::from_micros(START_MICROS + SPAN_MICROS)
}

/// The generator.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Rng,
    shape: Shape,
    start: Timestamp,
    zipf: ZipfTable,
    words: Vec<String>,
}

impl Generator {
    /// A generator with `seed` and `shape`.
    pub fn new(seed: u64, shape: Shape) -> Self {
        Self {
            rng: Rng::new(seed),
            shape,
            start: time::from_micros(START_MICROS),
            zipf: ZipfTable::new(ZIPF_WORDS),
            words: match shape.vocabulary {
                Vocabulary::Zipf => (0..ZIPF_WORDS).map(word).collect(),
                Vocabulary::Small => Vec::new(),
            },
        }
    }

    fn tool(&mut self, domain: usize) -> String {
        let t = self.rng.zipf(self.shape.tools);
        let verb = VERBS[(domain * 7 + t) % VERBS.len()];
        let object = OBJECTS[(domain * 3 + t * 5) % OBJECTS.len()];
        format!("{verb}_{object}")
    }

    /// A description-like text for `domain`: 8 to 24 words.
    pub fn text(&mut self, domain: usize) -> String {
        let n = 8 + self.rng.below(17);
        let mut words = Vec::with_capacity(n);
        for _ in 0..n {
            if self.shape.vocabulary == Vocabulary::Zipf {
                let w = match self.rng.below(20) {
                    0..=5 => FILLER[self.rng.zipf(FILLER.len())].to_string(),
                    6..=7 => VERBS[(domain + self.rng.zipf(VERBS.len())) % VERBS.len()].to_string(),
                    8..=9 => OBJECTS[(domain * 2 + self.rng.zipf(OBJECTS.len())) % OBJECTS.len()]
                        .to_string(),
                    10 => format!("item{}", self.rng.below(5_000)),
                    _ => {
                        let rank = self.zipf.sample(&mut self.rng);
                        let at = if rank < SHARED_WORDS {
                            rank
                        } else {
                            SHARED_WORDS
                                + (rank - SHARED_WORDS + domain * 1_009)
                                    % (ZIPF_WORDS - SHARED_WORDS)
                        };
                        self.words[at].clone()
                    }
                };
                words.push(w);
                continue;
            }
            let w = match self.rng.below(10) {
                0..=3 => FILLER[self.rng.zipf(FILLER.len())].to_string(),
                4..=5 => VERBS[(domain + self.rng.zipf(VERBS.len())) % VERBS.len()].to_string(),
                6..=8 => {
                    OBJECTS[(domain * 2 + self.rng.zipf(OBJECTS.len())) % OBJECTS.len()].to_string()
                }
                _ => format!("item{}", self.rng.below(5_000)),
            };
            words.push(w);
        }
        words.join(" ")
    }

    /// The next episode summary (completed), as the index receives it.
    pub fn summary(&mut self) -> EpisodeSummary {
        let ns = self.rng.zipf(self.shape.namespaces);
        let domain = self.rng.zipf(self.shape.domains);
        let task_type = self.rng.zipf(self.shape.task_types);
        let tools: Vec<String> = {
            let mut t: Vec<String> = (0..1 + self.rng.below(5))
                .map(|_| self.tool(domain))
                .collect();
            t.dedup();
            t
        };
        let started_at = time::from_micros(
            time::to_micros(self.start) + (self.rng.unit() * SPAN_MICROS as f64) as i64,
        );
        let outcome = match self.rng.below(10) {
            0..=6 => OutcomeKind::Success,
            7..=8 => OutcomeKind::Partial,
            _ => OutcomeKind::Failure,
        };
        let context = TaskContext::new(
            format!("tenant{ns}"),
            format!("domain{domain}"),
            format!("type{task_type}"),
        )
        .with_tags(tools.iter().take(3).cloned());
        EpisodeSummary {
            id: EpisodeId::new(),
            version: 2,
            description: self.text(domain),
            step_count: tools.len() as u32 * 2,
            successful_steps: tools.len() as u32 * 2,
            tools,
            outcome: Some(outcome),
            reward: outcome.default_reward(),
            embedding: None,
            started_at,
            completed_at: Some(time::from_micros(time::to_micros(started_at) + 60_000_000)),
            context,
        }
    }

    /// The next episode (completed, version 2), as `import_episode` takes it: drawn like
    /// [`Generator::summary`], with two steps per tool (a JSON input of a few dozen bytes), so
    /// its derived summary has the same scope, text, tools, outcome and times.
    pub fn episode(&mut self) -> Episode {
        let s = self.summary();
        let mut episode = Episode::new(s.id, s.description, s.context, s.started_at);
        for (i, tool) in s.tools.iter().flat_map(|t| [t, t]).enumerate() {
            let input = format!("{{\"call\":{i},\"ref\":\"item{}\"}}", self.rng.below(5_000));
            let step = NewStep::new(tool.clone(), input).with_output("ok");
            episode
                .steps
                .push(Step::from_new(step, i as u32, s.started_at));
        }
        let outcome = s.outcome.unwrap_or(OutcomeKind::Success);
        episode.outcome = Some(Outcome {
            kind: outcome,
            verdict: format!("{} after {} steps", outcome.as_str(), episode.steps.len()),
        });
        episode.reward = s.reward;
        episode.completed_at = s.completed_at;
        episode.version = 2;
        episode
    }

    /// A query text and the namespace/domain it targets, drawn like the episodes.
    pub fn query(&mut self) -> (String, String, String) {
        let ns = self.rng.zipf(self.shape.namespaces);
        let domain = self.rng.zipf(self.shape.domains);
        let text = self.text(domain);
        (format!("tenant{ns}"), format!("domain{domain}"), text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_shapes() {
        let a: Vec<_> = {
            let mut g = Generator::new(7, Shape::default());
            (0..50)
                .map(|_| g.summary())
                .map(|s| (s.description, s.context))
                .collect()
        };
        let b: Vec<_> = {
            let mut g = Generator::new(7, Shape::default());
            (0..50)
                .map(|_| g.summary())
                .map(|s| (s.description, s.context))
                .collect()
        };
        assert_eq!(a, b);
        let domains: std::collections::HashSet<_> =
            a.iter().map(|(_, c)| c.domain.clone()).collect();
        assert!(domains.len() > 5, "skewed but varied: {}", domains.len());
    }

    #[test]
    fn synthetic_words_are_distinct_letters() {
        let words: std::collections::HashSet<String> = (0..ZIPF_WORDS).map(word).collect();
        assert_eq!(words.len(), ZIPF_WORDS);
        assert!(
            words
                .iter()
                .all(|w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_lowercase()))
        );
        let t = ZipfTable::new(100);
        let mut rng = Rng::new(1);
        let mut counts = [0usize; 100];
        for _ in 0..10_000 {
            counts[t.sample(&mut rng)] += 1;
        }
        assert!(
            counts[0] > counts[9] && counts[9] > counts[99],
            "{counts:?}"
        );
    }

    #[test]
    fn an_episode_summarizes_to_what_the_generator_drew() {
        let mut g = Generator::new(11, Shape::default());
        for _ in 0..50 {
            let e = g.episode();
            let s = e.summary();
            assert!(e.is_completed());
            assert_eq!(s.step_count as usize, e.steps.len());
            assert!(!s.tools.is_empty());
            assert!(
                s.tools
                    .iter()
                    .all(|t| e.steps.iter().any(|st| &st.tool == t))
            );
            assert!(s.context.namespace.starts_with("tenant"));
            assert!(s.context.domain.starts_with("domain"));
            assert_eq!(s.version, 2);
            memory_core::Limits::default()
                .check_episode(&e)
                .expect("a generated episode passes the default limits");
        }
    }
}
