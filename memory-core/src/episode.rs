//! The domain model: episodes, their context, steps and outcome.
//!
//! Plain data with serde derives. Invariants that need configuration (sizes, character rules)
//! are checked by [`crate::limits`]; invariants that need the engine (sequence numbers,
//! versions, timestamps) are set by the lifecycle in `SelfLearningMemory`, never by callers.

use serde::{Deserialize, Serialize};

use crate::id::EpisodeId;
use crate::time::Timestamp;

/// Where an episode belongs and what kind of task it was.
///
/// `namespace` is the tenant (an agent, user or project) and the outermost isolation boundary:
/// nothing ever crosses it. `domain` and `task_type` are the next two levels of the retrieval
/// hierarchy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskContext {
    /// Tenant: an agent, user or project. Never crossed by any read.
    pub namespace: String,
    /// Problem area, e.g. `retail` or `web-dev`.
    pub domain: String,
    /// Kind of task within the domain, e.g. `refund` or `lookup`.
    pub task_type: String,
    /// Free labels (tool names, topics); at most `Limits::max_tags`.
    pub tags: Vec<String>,
    /// Programming or natural language, when it matters.
    pub language: Option<String>,
    /// How hard the task was judged to be.
    pub complexity: Option<Complexity>,
}

impl TaskContext {
    /// A context with the three hierarchy levels and nothing else.
    pub fn new(
        namespace: impl Into<String>,
        domain: impl Into<String>,
        task_type: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            domain: domain.into(),
            task_type: task_type.into(),
            tags: Vec::new(),
            language: None,
            complexity: None,
        }
    }

    /// Builder-style: set the tags.
    pub fn with_tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }
}

/// A coarse difficulty grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Complexity {
    /// A few steps, no branching.
    Simple,
    /// Several tools or decisions.
    Moderate,
    /// Long, branching or failure-prone.
    Complex,
}

/// One step as the caller reports it; the engine adds the sequence number and timestamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewStep {
    /// The tool called, e.g. `get_order_details`.
    pub tool: String,
    /// What was done with it (free text; often the tool name again).
    pub action: String,
    /// The input given to the tool (e.g. JSON text); at most `Limits::max_step_payload_bytes`.
    pub input: String,
    /// What the tool returned; at most `Limits::max_step_payload_bytes`.
    pub output: String,
    /// Whether the step did what it was meant to.
    pub success: bool,
    /// How long the step took, in milliseconds.
    pub latency_ms: u64,
}

impl NewStep {
    /// A successful step of `tool` with the given input and no output yet.
    pub fn new(tool: impl Into<String>, input: impl Into<String>) -> Self {
        let tool = tool.into();
        Self {
            action: tool.clone(),
            tool,
            input: input.into(),
            output: String::new(),
            success: true,
            latency_ms: 0,
        }
    }

    /// Builder-style: set the output.
    pub fn with_output(mut self, output: impl Into<String>) -> Self {
        self.output = output.into();
        self
    }

    /// Builder-style: set the success flag.
    pub fn with_success(mut self, success: bool) -> Self {
        self.success = success;
        self
    }

    /// Builder-style: set the latency.
    pub fn with_latency_ms(mut self, latency_ms: u64) -> Self {
        self.latency_ms = latency_ms;
        self
    }
}

/// One stored step: the caller's [`NewStep`] plus engine-assigned order and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Position in the episode, assigned by the engine: 0, 1, 2… in acceptance order.
    pub seq: u32,
    /// The tool called.
    pub tool: String,
    /// What was done with it.
    pub action: String,
    /// Tool input.
    pub input: String,
    /// Tool output.
    pub output: String,
    /// Whether the step succeeded.
    pub success: bool,
    /// Duration in milliseconds.
    pub latency_ms: u64,
    /// When the engine accepted the step (microsecond precision).
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub timestamp: Timestamp,
}

impl Step {
    /// Attach engine-assigned `seq` and `timestamp` to a caller's step.
    pub fn from_new(step: NewStep, seq: u32, timestamp: Timestamp) -> Self {
        Self {
            seq,
            tool: step.tool,
            action: step.action,
            input: step.input,
            output: step.output,
            success: step.success,
            latency_ms: step.latency_ms,
            timestamp,
        }
    }
}

/// How an episode ended, coarsely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutcomeKind {
    /// The task was done.
    Success,
    /// Part of the task was done.
    Partial,
    /// The task failed.
    Failure,
}

impl OutcomeKind {
    /// The reward used when the caller supplies none: 1.0, 0.5 or 0.0.
    pub fn default_reward(self) -> f64 {
        match self {
            OutcomeKind::Success => 1.0,
            OutcomeKind::Partial => 0.5,
            OutcomeKind::Failure => 0.0,
        }
    }

    /// Stable lower-case name (`success`, `partial`, `failure`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Success => "success",
            OutcomeKind::Partial => "partial",
            OutcomeKind::Failure => "failure",
        }
    }

    /// Parse [`OutcomeKind::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(OutcomeKind::Success),
            "partial" => Some(OutcomeKind::Partial),
            "failure" => Some(OutcomeKind::Failure),
            _ => None,
        }
    }
}

/// How an episode ended: a kind and a verdict text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Success, partial or failure.
    pub kind: OutcomeKind,
    /// Why: a short human- or judge-written explanation.
    pub verdict: String,
}

impl Outcome {
    /// A successful outcome with a verdict.
    pub fn success(verdict: impl Into<String>) -> Self {
        Self {
            kind: OutcomeKind::Success,
            verdict: verdict.into(),
        }
    }

    /// A partial outcome with a verdict.
    pub fn partial(verdict: impl Into<String>) -> Self {
        Self {
            kind: OutcomeKind::Partial,
            verdict: verdict.into(),
        }
    }

    /// A failed outcome with a verdict.
    pub fn failure(verdict: impl Into<String>) -> Self {
        Self {
            kind: OutcomeKind::Failure,
            verdict: verdict.into(),
        }
    }
}

/// What the caller supplies to complete an episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// How it ended.
    pub outcome: Outcome,
    /// The reward; `None` means [`OutcomeKind::default_reward`]. Stored bit for bit.
    pub reward: Option<f64>,
    /// What the agent learned, in its own words.
    pub reflection: Option<String>,
    /// A caller-computed embedding of the episode (fixed dimension per store).
    pub embedding: Option<Vec<f32>>,
}

impl From<Outcome> for Completion {
    fn from(outcome: Outcome) -> Self {
        Self {
            outcome,
            reward: None,
            reflection: None,
            embedding: None,
        }
    }
}

impl Completion {
    /// Builder-style: set the reward.
    pub fn with_reward(mut self, reward: f64) -> Self {
        self.reward = Some(reward);
        self
    }

    /// Builder-style: set the reflection.
    pub fn with_reflection(mut self, reflection: impl Into<String>) -> Self {
        self.reflection = Some(reflection.into());
        self
    }

    /// Builder-style: set the embedding.
    pub fn with_embedding(mut self, embedding: Vec<f32>) -> Self {
        self.embedding = Some(embedding);
        self
    }
}

/// Changes to a completed episode, applied by `SelfLearningMemory::update_episode` with a
/// version check. Fields left `None` are unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpisodeUpdate {
    /// Replace the tags.
    pub tags: Option<Vec<String>>,
    /// Replace the reflection (`Some(None)` clears it).
    pub reflection: Option<Option<String>>,
    /// Replace the reward.
    pub reward: Option<f64>,
}

impl EpisodeUpdate {
    /// Builder-style: replace the tags.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Builder-style: replace the reflection.
    pub fn reflection(mut self, reflection: impl Into<String>) -> Self {
        self.reflection = Some(Some(reflection.into()));
        self
    }

    /// Builder-style: replace the reward.
    pub fn reward(mut self, reward: f64) -> Self {
        self.reward = Some(reward);
        self
    }

    /// Apply to `episode` (version untouched).
    pub fn apply_to(&self, episode: &mut Episode) {
        if let Some(tags) = &self.tags {
            episode.context.tags = tags.clone();
        }
        if let Some(reflection) = &self.reflection {
            episode.reflection = reflection.clone();
        }
        if let Some(reward) = self.reward {
            episode.reward = reward;
        }
    }
}

/// One recorded task attempt.
///
/// `version` starts at 1 when the episode is created and grows by one with every change of an
/// episode-level field (completion, update). Appending steps does not change it: steps are
/// append-only rows identified by `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Time-ordered id.
    pub id: EpisodeId,
    /// Namespace, domain, task type, tags.
    pub context: TaskContext,
    /// What the task was.
    pub description: String,
    /// Steps in sequence order (`steps[i].seq == i`).
    pub steps: Vec<Step>,
    /// How it ended; `None` while in progress.
    pub outcome: Option<Outcome>,
    /// Reward given at completion (0.0 while in progress). Stored bit for bit.
    pub reward: f64,
    /// The agent's reflection, if any.
    pub reflection: Option<String>,
    /// Caller-supplied embedding, if any.
    pub embedding: Option<Vec<f32>>,
    /// When the episode started.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub started_at: Timestamp,
    /// When it was completed; `None` while in progress.
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    pub completed_at: Option<Timestamp>,
    /// Optimistic-concurrency version; see the type docs.
    pub version: u64,
}

impl Episode {
    /// A new in-progress episode (version 1, no steps) started at `started_at`.
    pub fn new(
        id: EpisodeId,
        description: impl Into<String>,
        context: TaskContext,
        started_at: Timestamp,
    ) -> Self {
        Self {
            id,
            context,
            description: description.into(),
            steps: Vec::new(),
            outcome: None,
            reward: 0.0,
            reflection: None,
            embedding: None,
            started_at,
            completed_at: None,
            version: 1,
        }
    }

    /// Whether the episode has an outcome.
    pub fn is_completed(&self) -> bool {
        self.outcome.is_some()
    }

    /// The derived summary the index and rebuild scans use.
    pub fn summary(&self) -> EpisodeSummary {
        EpisodeSummary::of(self)
    }
}

/// What retrieval and rebuilds need of an episode, without its step payloads.
///
/// Derived from the [`Episode`] and written by the durable store in the same transaction as the
/// episode row, so a rebuild from summaries sees exactly what the episodes say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeSummary {
    /// The episode.
    pub id: EpisodeId,
    /// Its version when the summary was derived.
    pub version: u64,
    /// Its context.
    pub context: TaskContext,
    /// Its description.
    pub description: String,
    /// Distinct tools used, in first-use order.
    pub tools: Vec<String>,
    /// Number of steps.
    pub step_count: u32,
    /// Number of successful steps.
    pub successful_steps: u32,
    /// Outcome kind; `None` while in progress.
    pub outcome: Option<OutcomeKind>,
    /// Reward.
    pub reward: f64,
    /// Embedding, if any.
    pub embedding: Option<Vec<f32>>,
    /// Start time.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub started_at: Timestamp,
    /// Completion time.
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    pub completed_at: Option<Timestamp>,
}

impl EpisodeSummary {
    /// Derive the summary of `episode`.
    pub fn of(episode: &Episode) -> Self {
        let mut tools: Vec<String> = Vec::new();
        for s in &episode.steps {
            if !tools.iter().any(|t| t == &s.tool) {
                tools.push(s.tool.clone());
            }
        }
        Self {
            id: episode.id,
            version: episode.version,
            context: episode.context.clone(),
            description: episode.description.clone(),
            tools,
            step_count: episode.steps.len() as u32,
            successful_steps: episode.steps.iter().filter(|s| s.success).count() as u32,
            outcome: episode.outcome.as_ref().map(|o| o.kind),
            reward: episode.reward,
            embedding: episode.embedding.clone(),
            started_at: episode.started_at,
            completed_at: episode.completed_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time;

    #[test]
    fn summary_counts_distinct_tools_in_order() {
        let mut e = Episode::new(
            EpisodeId::new(),
            "d",
            TaskContext::new("ns", "dom", "t"),
            time::now(),
        );
        for (i, tool) in ["a", "b", "a", "c"].iter().enumerate() {
            let step = NewStep::new(*tool, "{}").with_success(i != 1);
            e.steps.push(Step::from_new(step, i as u32, time::now()));
        }
        let s = e.summary();
        assert_eq!(s.tools, vec!["a", "b", "c"]);
        assert_eq!(s.step_count, 4);
        assert_eq!(s.successful_steps, 3);
        assert_eq!(s.outcome, None);
    }
}
