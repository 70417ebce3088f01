//! The JSON-lines episode format of the bundled sample data (`data/tau2-retail.jsonl`).
//!
//! Parses each line into a [`DatasetEpisode`]: what the facade needs to replay it (description,
//! context, steps, outcome, reward) plus the original start time and the `relevance_key` used
//! only to judge retrieval. A bad line is an error naming its line number; nothing is skipped
//! silently.

use std::path::Path;

use memory_core::{Error, NewStep, Outcome, OutcomeKind, Result, TaskContext, time::Timestamp};
use serde::Deserialize;

/// One episode of the sample data.
#[derive(Debug, Clone)]
pub struct DatasetEpisode {
    /// The id in the source file (e.g. `retail-0`).
    pub source_id: String,
    /// What the task was.
    pub description: String,
    /// Namespace, domain, task type, tags.
    pub context: TaskContext,
    /// The tool calls in order.
    pub steps: Vec<NewStep>,
    /// How it ended.
    pub outcome: Outcome,
    /// The reward given.
    pub reward: f64,
    /// When it started (synthetic in the sample).
    pub started_at: Timestamp,
    /// The kind of problem solved; for judging retrieval only.
    pub relevance_key: String,
}

#[derive(Deserialize)]
struct Line {
    id: String,
    namespace: String,
    domain: String,
    task_type: String,
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    steps: Vec<LineStep>,
    outcome: LineOutcome,
    reward: f64,
    started_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    relevance_key: String,
}

#[derive(Deserialize)]
struct LineStep {
    tool: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    input: serde_json::Value,
    #[serde(default)]
    output: Option<serde_json::Value>,
    #[serde(default = "yes")]
    success: bool,
    #[serde(default)]
    latency_ms: u64,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct LineOutcome {
    kind: String,
    #[serde(default)]
    verdict: String,
}

/// JSON text of a value; strings stay as they are.
fn text(v: serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Parse one line; `line_no` (1-based) names it in errors.
pub fn parse_line(line: &str, line_no: usize) -> Result<DatasetEpisode> {
    let l: Line = serde_json::from_str(line)
        .map_err(|e| Error::invalid(format!("line {line_no}"), "a JSON episode", e.to_string()))?;
    let kind = OutcomeKind::parse(&l.outcome.kind).ok_or_else(|| {
        Error::invalid(
            format!("line {line_no}: outcome.kind"),
            "success, partial or failure",
            l.outcome.kind.clone(),
        )
    })?;
    let steps = l
        .steps
        .into_iter()
        .map(|s| NewStep {
            action: s.action.unwrap_or_else(|| s.tool.clone()),
            tool: s.tool,
            input: text(s.input),
            output: s.output.map(text).unwrap_or_default(),
            success: s.success,
            latency_ms: s.latency_ms,
        })
        .collect();
    Ok(DatasetEpisode {
        source_id: l.id,
        description: l.description,
        context: TaskContext::new(l.namespace, l.domain, l.task_type).with_tags(l.tags),
        steps,
        outcome: Outcome {
            kind,
            verdict: l.outcome.verdict,
        },
        reward: l.reward,
        started_at: memory_core::time::truncate(l.started_at),
        relevance_key: l.relevance_key,
    })
}

/// Every episode of a JSON-lines file; blank lines are skipped, a bad line is an error.
pub fn load(path: &Path) -> Result<Vec<DatasetEpisode>> {
    let body = std::fs::read_to_string(path)
        .map_err(|e| Error::storage(format!("cannot read {}", path.display())).with_source(e))?;
    body.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(l, i + 1))
        .collect()
}

/// The path of the bundled sample.
pub fn bundled_sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tau2-retail.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_sample_parses_completely() {
        let all = load(&bundled_sample()).unwrap();
        assert_eq!(all.len(), 114);
        let first = &all[0];
        assert_eq!(first.source_id, "retail-0");
        assert_eq!(first.context.domain, "retail");
        assert_eq!(first.steps.len(), 5);
        assert!(first.steps[0].input.contains("Yusuf"));
        assert!(all.iter().all(|e| !e.relevance_key.is_empty()));
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let e = parse_line("{not json", 7).unwrap_err();
        assert_eq!(e.violation().unwrap().field, "line 7");
    }
}
