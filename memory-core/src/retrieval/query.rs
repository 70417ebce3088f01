//! What a caller asks for: [`RetrievalQuery`] and its builder.
//!
//! Owns the query's shape and its validation against a configuration. The namespace is
//! required and is the isolation boundary; domain and task type narrow the scope (they are
//! hard scope, never relaxed); the filters are exact. This module must never read the index.

use crate::episode::OutcomeKind;
use crate::error::{Error, Result};
use crate::index::check_vector;
use crate::time::{self, Timestamp};

use super::config::RetrievalConfig;

/// A half-open time range `[from, until)`; an absent end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    /// Inclusive start.
    pub from: Option<Timestamp>,
    /// Exclusive end.
    pub until: Option<Timestamp>,
}

impl TimeRange {
    /// `[from, until)`.
    pub fn between(from: Timestamp, until: Timestamp) -> Self {
        Self {
            from: Some(from),
            until: Some(until),
        }
    }

    /// `[from, ∞)`.
    pub fn since(from: Timestamp) -> Self {
        Self {
            from: Some(from),
            until: None,
        }
    }

    /// `(-∞, until)`.
    pub fn before(until: Timestamp) -> Self {
        Self {
            from: None,
            until: Some(until),
        }
    }

    /// The range as inclusive microsecond bounds, or `None` if it is empty.
    pub(crate) fn micros(&self) -> Option<(i64, i64)> {
        let lo = self.from.map_or(i64::MIN, time::to_micros);
        let hi = match self.until {
            Some(u) => time::to_micros(u).checked_sub(1)?,
            None => i64::MAX,
        };
        (lo <= hi).then_some((lo, hi))
    }
}

/// A retrieval request. Build with [`RetrievalQuery::new`] and the builder methods:
///
/// ```
/// use memory_core::retrieval::RetrievalQuery;
/// use memory_core::OutcomeKind;
///
/// let q = RetrievalQuery::new("agent-1", "refund a damaged lamp")
///     .domain("retail")
///     .outcome(OutcomeKind::Success)
///     .tags_any(["orders"])
///     .limit(5);
/// assert_eq!(q.hit_limit(), 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalQuery {
    namespace: String,
    text: String,
    domain: Option<String>,
    task_type: Option<String>,
    limit: usize,
    tags_any: Vec<String>,
    tags_all: Vec<String>,
    started: Option<TimeRange>,
    completed: Option<TimeRange>,
    outcome: Option<OutcomeKind>,
    min_reward: Option<f64>,
    include_in_progress: bool,
    embedding: Option<Vec<f32>>,
}

/// The default `limit`.
pub const DEFAULT_LIMIT: usize = 10;

impl RetrievalQuery {
    /// Episodes of `namespace` similar to `text`: every domain and task type, completed
    /// episodes only, at most [`DEFAULT_LIMIT`] hits.
    pub fn new(namespace: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            text: text.into(),
            domain: None,
            task_type: None,
            limit: DEFAULT_LIMIT,
            tags_any: Vec::new(),
            tags_all: Vec::new(),
            started: None,
            completed: None,
            outcome: None,
            min_reward: None,
            include_in_progress: false,
            embedding: None,
        }
    }

    /// Only this domain (its shard); absent: every domain of the namespace.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Only this task type.
    pub fn task_type(mut self, task_type: impl Into<String>) -> Self {
        self.task_type = Some(task_type.into());
        self
    }

    /// At most `limit` hits (1..=`RetrievalConfig::max_limit`).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Only episodes carrying at least one of `tags` (adds to earlier calls).
    pub fn tags_any<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags_any.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Only episodes carrying every one of `tags` (adds to earlier calls).
    pub fn tags_all<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags_all.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Only episodes whose `started_at` is in `range`.
    pub fn started_within(mut self, range: TimeRange) -> Self {
        self.started = Some(range);
        self
    }

    /// Only episodes whose `completed_at` is in `range` (so only completed ones).
    pub fn completed_within(mut self, range: TimeRange) -> Self {
        self.completed = Some(range);
        self
    }

    /// Only episodes that ended with `kind`.
    pub fn outcome(mut self, kind: OutcomeKind) -> Self {
        self.outcome = Some(kind);
        self
    }

    /// Only episodes whose reward is at least `min` (a finite number).
    pub fn min_reward(mut self, min: f64) -> Self {
        self.min_reward = Some(min);
        self
    }

    /// Also consider episodes still in progress (by default only completed ones qualify).
    pub fn include_in_progress(mut self) -> Self {
        self.include_in_progress = true;
        self
    }

    /// Score by cosine similarity to `embedding` too (dimension of the index).
    pub fn embedding(mut self, embedding: Vec<f32>) -> Self {
        self.embedding = Some(embedding);
        self
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The query text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The domain scope, if any.
    pub fn domain_scope(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The task-type scope, if any.
    pub fn task_type_scope(&self) -> Option<&str> {
        self.task_type.as_deref()
    }

    /// The most hits returned.
    pub fn hit_limit(&self) -> usize {
        self.limit
    }

    /// Tags of which at least one is required.
    pub fn any_tags(&self) -> &[String] {
        &self.tags_any
    }

    /// Tags all of which are required.
    pub fn all_tags(&self) -> &[String] {
        &self.tags_all
    }

    /// The `started_at` range, if any.
    pub fn started_range(&self) -> Option<TimeRange> {
        self.started
    }

    /// The `completed_at` range, if any.
    pub fn completed_range(&self) -> Option<TimeRange> {
        self.completed
    }

    /// The required outcome, if any.
    pub fn outcome_filter(&self) -> Option<OutcomeKind> {
        self.outcome
    }

    /// The smallest reward accepted, if any.
    pub fn reward_floor(&self) -> Option<f64> {
        self.min_reward
    }

    /// Whether in-progress episodes qualify.
    pub fn includes_in_progress(&self) -> bool {
        self.include_in_progress
    }

    /// The query embedding, if any.
    pub fn query_embedding(&self) -> Option<&[f32]> {
        self.embedding.as_deref()
    }

    /// Check the query against `config`; the error names the field.
    pub fn validate(&self, config: &RetrievalConfig) -> Result<()> {
        if self.namespace.is_empty() {
            return Err(Error::invalid("query.namespace", "not empty", "empty"));
        }
        if self.limit == 0 || self.limit > config.max_limit {
            return Err(Error::invalid(
                "query.limit",
                format!("1 to {}", config.max_limit),
                self.limit.to_string(),
            ));
        }
        if let Some(m) = self.min_reward
            && !m.is_finite()
        {
            return Err(Error::invalid(
                "query.min_reward",
                "a finite number",
                m.to_string(),
            ));
        }
        for (field, range) in [
            ("query.started_within", self.started),
            ("query.completed_within", self.completed),
        ] {
            if let Some(TimeRange {
                from: Some(f),
                until: Some(u),
            }) = range
                && f > u
            {
                return Err(Error::invalid(field, "from <= until", format!("{f} > {u}")));
            }
        }
        if let Some(e) = &self.embedding {
            match config.embedding_dimension {
                Some(dim) => check_vector("query.embedding", e, dim)?,
                None => {
                    return Err(Error::invalid(
                        "query.embedding",
                        "no embedding: no embedding dimension is configured",
                        format!("{} components", e.len()),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_fields() {
        let c = RetrievalConfig::default();
        let field = |q: RetrievalQuery| {
            q.validate(&c)
                .unwrap_err()
                .violation()
                .unwrap()
                .field
                .clone()
        };
        assert_eq!(field(RetrievalQuery::new("", "x")), "query.namespace");
        assert_eq!(field(RetrievalQuery::new("n", "x").limit(0)), "query.limit");
        assert_eq!(
            field(RetrievalQuery::new("n", "x").limit(1001)),
            "query.limit"
        );
        assert_eq!(
            field(RetrievalQuery::new("n", "x").min_reward(f64::NAN)),
            "query.min_reward"
        );
        assert_eq!(
            field(RetrievalQuery::new("n", "x").embedding(vec![1.0])),
            "query.embedding"
        );
        let t = time::now();
        let later = time::from_micros(time::to_micros(t) + 1);
        assert_eq!(
            field(RetrievalQuery::new("n", "x").started_within(TimeRange::between(later, t))),
            "query.started_within"
        );
        RetrievalQuery::new("n", "x").validate(&c).unwrap();
    }

    #[test]
    fn ranges_are_half_open() {
        let t = time::from_micros(100);
        let u = time::from_micros(200);
        assert_eq!(TimeRange::between(t, u).micros(), Some((100, 199)));
        assert_eq!(TimeRange::between(t, t).micros(), None);
        assert_eq!(TimeRange::since(t).micros(), Some((100, i64::MAX)));
        assert_eq!(TimeRange::before(u).micros(), Some((i64::MIN, 199)));
    }
}
