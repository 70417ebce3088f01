//! Converting between domain values (`Episode`, `Step`, `EpisodeSummary`) and SQL values.
//!
//! Owns the column lists of every table and their encodings (see [`crate::schema`]). Encoding
//! is lossless: ids as their 16 bytes, times as microseconds, the reward as its `f64` bits,
//! embeddings as little-endian `f32` bytes, `u64`s as their bit pattern in an `i64`. Decoding
//! never guesses: a value of the wrong type or shape is a `Corrupt` error naming the table and
//! column. This module does no I/O.

use libsql::{Row, Value};
use memory_core::time::{from_micros, to_micros};
use memory_core::{
    Complexity, Episode, EpisodeId, EpisodeSummary, Error, Outcome, OutcomeKind, Result, Step,
    TaskContext,
};

use crate::error::db_error;

/// Columns of `episodes`, in the order [`episode_values`] produces and [`decode_episode`]
/// reads (a macro so queries can be `concat!`ed into constant SQL).
macro_rules! episode_columns {
    () => {
        "id, namespace, domain, task_type, tags, language, complexity, description, outcome, \
         reward_bits, reward, embedding, started_at, completed_at, version, verdict, reflection"
    };
}
pub(crate) use episode_columns;

/// Columns of `steps`, in the order [`step_values`] produces and [`decode_step`] reads.
macro_rules! step_columns {
    () => {
        "episode_id, seq, tool, action, input, output, success, latency_ms, ts"
    };
}
pub(crate) use step_columns;

/// Columns of `episodes e LEFT JOIN summaries s`, in the order [`decode_summary`] reads.
macro_rules! summary_columns {
    () => {
        "e.id, e.namespace, e.domain, e.task_type, e.tags, e.language, e.complexity, \
         e.description, e.outcome, e.reward_bits, e.embedding, e.started_at, e.completed_at, \
         e.version, s.step_count, s.successful_steps, s.tools"
    };
}
pub(crate) use summary_columns;

/// [`episode_columns`] as a constant.
pub(crate) const EPISODE_COLUMNS: &str = episode_columns!();

/// Number of [`EPISODE_COLUMNS`].
pub(crate) const EPISODE_COLUMN_COUNT: usize = 17;

/// [`step_columns`] as a constant.
pub(crate) const STEP_COLUMNS: &str = step_columns!();

/// Number of [`STEP_COLUMNS`].
pub(crate) const STEP_COLUMN_COUNT: usize = 9;

/// Number of [`summary_columns`].
pub(crate) const SUMMARY_COLUMN_COUNT: usize = 17;

/// The key of an episode.
pub(crate) fn id_value(id: EpisodeId) -> Value {
    Value::Blob(id.to_bytes().to_vec())
}

/// A `u64` stored as its bit pattern (lossless for every value).
fn u64_value(v: u64) -> Value {
    Value::Integer(i64::from_ne_bytes(v.to_ne_bytes()))
}

fn opt_text(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::Text(s.to_owned()))
}

fn json_list(field: &str, list: &[String]) -> Result<String> {
    serde_json::to_string(list)
        .map_err(|e| Error::storage(format!("cannot encode {field} as JSON")).with_source(e))
}

fn complexity_str(c: Complexity) -> &'static str {
    match c {
        Complexity::Simple => "simple",
        Complexity::Moderate => "moderate",
        Complexity::Complex => "complex",
    }
}

fn parse_complexity(s: &str) -> Option<Complexity> {
    match s {
        "simple" => Some(Complexity::Simple),
        "moderate" => Some(Complexity::Moderate),
        "complex" => Some(Complexity::Complex),
        _ => None,
    }
}

fn embedding_bytes(e: &[f32]) -> Vec<u8> {
    e.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The values of every `episodes` column for `e`, in [`EPISODE_COLUMNS`] order.
pub(crate) fn episode_values(e: &Episode) -> Result<Vec<Value>> {
    let c = &e.context;
    Ok(vec![
        id_value(e.id),
        Value::Text(c.namespace.clone()),
        Value::Text(c.domain.clone()),
        Value::Text(c.task_type.clone()),
        Value::Text(json_list("context.tags", &c.tags)?),
        opt_text(c.language.as_deref()),
        opt_text(c.complexity.map(complexity_str)),
        Value::Text(e.description.clone()),
        opt_text(e.outcome.as_ref().map(|o| o.kind.as_str())),
        u64_value(e.reward.to_bits()),
        Value::Real(e.reward),
        e.embedding
            .as_deref()
            .map_or(Value::Null, |v| Value::Blob(embedding_bytes(v))),
        Value::Integer(to_micros(e.started_at)),
        e.completed_at
            .map_or(Value::Null, |t| Value::Integer(to_micros(t))),
        u64_value(e.version),
        opt_text(e.outcome.as_ref().map(|o| o.verdict.as_str())),
        opt_text(e.reflection.as_deref()),
    ])
}

/// The values of every `steps` column for step `s` of episode `id`.
pub(crate) fn step_values(id: EpisodeId, s: &Step) -> Vec<Value> {
    vec![
        id_value(id),
        Value::Integer(i64::from(s.seq)),
        Value::Text(s.tool.clone()),
        Value::Text(s.action.clone()),
        Value::Text(s.input.clone()),
        Value::Text(s.output.clone()),
        Value::Integer(i64::from(s.success)),
        u64_value(s.latency_ms),
        Value::Integer(to_micros(s.timestamp)),
    ]
}

/// The step-derived part of a summary: what the `summaries` table holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StepStats {
    /// Number of steps.
    pub count: u32,
    /// Number of successful steps.
    pub successful: u32,
    /// Distinct tools in first-use order.
    pub tools: Vec<String>,
}

impl StepStats {
    /// The stats of `steps`.
    #[cfg(test)]
    pub(crate) fn of(steps: &[Step]) -> Self {
        let mut stats = Self::default();
        stats.add(steps);
        stats
    }

    /// Account for `steps` appended after the ones already counted.
    #[cfg(test)]
    pub(crate) fn add(&mut self, steps: &[Step]) {
        for s in steps {
            self.push(&s.tool, s.success);
        }
    }

    /// Account for one step appended after the ones already counted.
    pub(crate) fn push(&mut self, tool: &str, success: bool) {
        self.count = self.count.saturating_add(1);
        if success {
            self.successful = self.successful.saturating_add(1);
        }
        if !self.tools.iter().any(|t| t == tool) {
            self.tools.push(tool.to_owned());
        }
    }

    /// `(id, step_count, successful_steps, tools)` for the `summaries` row of `id`.
    pub(crate) fn values(&self, id: EpisodeId) -> Result<Vec<Value>> {
        Ok(vec![
            id_value(id),
            Value::Integer(i64::from(self.count)),
            Value::Integer(i64::from(self.successful)),
            Value::Text(json_list("summary tools", &self.tools)?),
        ])
    }
}

/// Every value of `row`'s first `n` columns.
pub(crate) fn row_values(row: &Row, n: usize, what: &str) -> Result<Vec<Value>> {
    (0..n)
        .map(|i| {
            let idx = i32::try_from(i).map_err(|_| Error::storage("column index overflow"))?;
            row.get_value(idx)
                .map_err(|e| db_error(format!("reading {what}"), e))
        })
        .collect()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Integer(_) => "INTEGER",
        Value::Real(_) => "REAL",
        Value::Text(_) => "TEXT",
        Value::Blob(_) => "BLOB",
    }
}

/// Reads one row's values in column order, turning every surprise into `Corrupt`.
pub(crate) struct Fields {
    values: std::vec::IntoIter<Value>,
    table: &'static str,
}

impl Fields {
    pub(crate) fn new(values: Vec<Value>, table: &'static str) -> Self {
        Self {
            values: values.into_iter(),
            table,
        }
    }

    fn corrupt(&self, column: &str, problem: impl std::fmt::Display) -> Error {
        Error::corrupt(format!("{}.{column}: {problem}", self.table))
    }

    fn next(&mut self, column: &str) -> Result<Value> {
        self.values
            .next()
            .ok_or_else(|| self.corrupt(column, "column missing from the row"))
    }

    fn wrong(&self, column: &str, expected: &str, got: &Value) -> Error {
        self.corrupt(
            column,
            format!("expected {expected}, found {}", type_name(got)),
        )
    }

    pub(crate) fn skip(&mut self, column: &str) -> Result<()> {
        self.next(column).map(drop)
    }

    pub(crate) fn text(&mut self, column: &str) -> Result<String> {
        match self.next(column)? {
            Value::Text(s) => Ok(s),
            other => Err(self.wrong(column, "TEXT", &other)),
        }
    }

    pub(crate) fn opt_text(&mut self, column: &str) -> Result<Option<String>> {
        match self.next(column)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s)),
            other => Err(self.wrong(column, "TEXT or NULL", &other)),
        }
    }

    pub(crate) fn int(&mut self, column: &str) -> Result<i64> {
        match self.next(column)? {
            Value::Integer(v) => Ok(v),
            other => Err(self.wrong(column, "INTEGER", &other)),
        }
    }

    pub(crate) fn opt_int(&mut self, column: &str) -> Result<Option<i64>> {
        match self.next(column)? {
            Value::Null => Ok(None),
            Value::Integer(v) => Ok(Some(v)),
            other => Err(self.wrong(column, "INTEGER or NULL", &other)),
        }
    }

    pub(crate) fn u64_bits(&mut self, column: &str) -> Result<u64> {
        Ok(u64::from_ne_bytes(self.int(column)?.to_ne_bytes()))
    }

    pub(crate) fn u32(&mut self, column: &str) -> Result<u32> {
        let v = self.int(column)?;
        u32::try_from(v).map_err(|_| self.corrupt(column, format!("{v} is not a u32")))
    }

    pub(crate) fn bool(&mut self, column: &str) -> Result<bool> {
        match self.int(column)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.corrupt(column, format!("{v} is not 0 or 1"))),
        }
    }

    pub(crate) fn opt_blob(&mut self, column: &str) -> Result<Option<Vec<u8>>> {
        match self.next(column)? {
            Value::Null => Ok(None),
            Value::Blob(b) => Ok(Some(b)),
            other => Err(self.wrong(column, "BLOB or NULL", &other)),
        }
    }

    pub(crate) fn id(&mut self, column: &str) -> Result<EpisodeId> {
        match self.next(column)? {
            Value::Blob(b) => self.id_of(column, &b),
            other => Err(self.wrong(column, "BLOB", &other)),
        }
    }

    pub(crate) fn opt_id(&mut self, column: &str) -> Result<Option<EpisodeId>> {
        match self.next(column)? {
            Value::Null => Ok(None),
            Value::Blob(b) => self.id_of(column, &b).map(Some),
            other => Err(self.wrong(column, "BLOB or NULL", &other)),
        }
    }

    fn id_of(&self, column: &str, bytes: &[u8]) -> Result<EpisodeId> {
        let array: [u8; 16] = bytes
            .try_into()
            .map_err(|_| self.corrupt(column, format!("{} bytes, not 16", bytes.len())))?;
        EpisodeId::from_bytes(array).map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn string_list(&mut self, column: &str) -> Result<Vec<String>> {
        let text = self.text(column)?;
        serde_json::from_str(&text).map_err(|e| {
            self.corrupt(column, "not a JSON array of strings")
                .with_source(e)
        })
    }

    pub(crate) fn embedding(&mut self, column: &str) -> Result<Option<Vec<f32>>> {
        let Some(bytes) = self.opt_blob(column)? else {
            return Ok(None);
        };
        if bytes.len() % 4 != 0 {
            return Err(self.corrupt(
                column,
                format!("{} bytes is not a whole number of f32s", bytes.len()),
            ));
        }
        Ok(Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    pub(crate) fn complexity(&mut self, column: &str) -> Result<Option<Complexity>> {
        match self.opt_text(column)? {
            None => Ok(None),
            Some(s) => parse_complexity(&s)
                .map(Some)
                .ok_or_else(|| self.corrupt(column, format!("unknown complexity {s:?}"))),
        }
    }

    pub(crate) fn outcome_kind(&mut self, column: &str) -> Result<Option<OutcomeKind>> {
        match self.opt_text(column)? {
            None => Ok(None),
            Some(s) => OutcomeKind::parse(&s)
                .map(Some)
                .ok_or_else(|| self.corrupt(column, format!("unknown outcome {s:?}"))),
        }
    }

    /// The context columns: namespace, domain, task_type, tags, language, complexity.
    fn context(&mut self) -> Result<TaskContext> {
        Ok(TaskContext {
            namespace: self.text("namespace")?,
            domain: self.text("domain")?,
            task_type: self.text("task_type")?,
            tags: self.string_list("tags")?,
            language: self.opt_text("language")?,
            complexity: self.complexity("complexity")?,
        })
    }
}

/// An episode (without steps) from a row of [`EPISODE_COLUMNS`].
pub(crate) fn decode_episode(values: Vec<Value>) -> Result<Episode> {
    let mut f = Fields::new(values, "episodes");
    let id = f.id("id")?;
    let context = f.context()?;
    let description = f.text("description")?;
    let kind = f.outcome_kind("outcome")?;
    let reward = f64::from_bits(f.u64_bits("reward_bits")?);
    f.skip("reward")?;
    let embedding = f.embedding("embedding")?;
    let started_at = from_micros(f.int("started_at")?);
    let completed_at = f.opt_int("completed_at")?.map(from_micros);
    let version = f.u64_bits("version")?;
    let verdict = f.opt_text("verdict")?;
    let reflection = f.opt_text("reflection")?;
    let outcome = match (kind, verdict) {
        (Some(kind), Some(verdict)) => Some(Outcome { kind, verdict }),
        (None, None) => None,
        (kind, verdict) => {
            return Err(Error::corrupt(format!(
                "episodes.outcome/verdict of {id}: outcome {kind:?} with verdict {verdict:?}"
            )));
        }
    };
    Ok(Episode {
        id,
        context,
        description,
        steps: Vec::new(),
        outcome,
        reward,
        reflection,
        embedding,
        started_at,
        completed_at,
        version,
    })
}

/// `(episode id, step)` from a row of [`STEP_COLUMNS`].
pub(crate) fn decode_step(values: Vec<Value>) -> Result<(EpisodeId, Step)> {
    let mut f = Fields::new(values, "steps");
    let id = f.id("episode_id")?;
    let step = Step {
        seq: f.u32("seq")?,
        tool: f.text("tool")?,
        action: f.text("action")?,
        input: f.text("input")?,
        output: f.text("output")?,
        success: f.bool("success")?,
        latency_ms: f.u64_bits("latency_ms")?,
        timestamp: from_micros(f.int("ts")?),
    };
    Ok((id, step))
}

/// A summary from a row of [`SUMMARY_COLUMNS`].
pub(crate) fn decode_summary(values: Vec<Value>) -> Result<EpisodeSummary> {
    let mut f = Fields::new(values, "episodes");
    let id = f.id("id")?;
    let context = f.context()?;
    let description = f.text("description")?;
    let outcome = f.outcome_kind("outcome")?;
    let reward = f64::from_bits(f.u64_bits("reward_bits")?);
    let embedding = f.embedding("embedding")?;
    let started_at = from_micros(f.int("started_at")?);
    let completed_at = f.opt_int("completed_at")?.map(from_micros);
    let version = f.u64_bits("version")?;
    let stats = decode_stats(id, f.values.collect())?;
    Ok(EpisodeSummary {
        id,
        version,
        context,
        description,
        tools: stats.tools,
        step_count: stats.count,
        successful_steps: stats.successful,
        outcome,
        reward,
        embedding,
        started_at,
        completed_at,
    })
}

/// The [`StepStats`] from `(step_count, successful_steps, tools)` values; `Corrupt` when the
/// summaries row is missing (all NULL from a left join) or malformed.
pub(crate) fn decode_stats(id: EpisodeId, values: Vec<Value>) -> Result<StepStats> {
    let mut f = Fields::new(values, "summaries");
    let (Some(count), Some(successful)) =
        (f.opt_int("step_count")?, f.opt_int("successful_steps")?)
    else {
        return Err(Error::corrupt(format!("episode {id} has no summaries row")));
    };
    let to_u32 = |column: &str, v: i64| {
        u32::try_from(v)
            .map_err(|_| Error::corrupt(format!("summaries.{column} of {id}: {v} is not a u32")))
    };
    Ok(StepStats {
        count: to_u32("step_count", count)?,
        successful: to_u32("successful_steps", successful)?,
        tools: f.string_list("tools")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use memory_core::ErrorKind;
    use memory_core::conformance::{completed, sample_episode, sample_steps};

    #[test]
    fn episode_values_round_trip_bit_exactly() {
        for reward in [-0.0, 0.1 + 0.2, f64::MIN_POSITIVE, -7.5] {
            let mut e = completed(sample_episode("ns"), sample_steps(0, 2));
            e.reward = reward;
            e.embedding = Some(vec![-0.0, 1.5, f32::MIN_POSITIVE]);
            e.context.complexity = Some(Complexity::Moderate);
            e.context.language = Some(String::new());
            e.version = u64::MAX;
            let values = episode_values(&e).unwrap();
            assert_eq!(values.len(), EPISODE_COLUMN_COUNT);
            let mut back = decode_episode(values).unwrap();
            assert_eq!(back.reward.to_bits(), reward.to_bits());
            back.steps = e.steps.clone();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn column_counts_match_the_lists() {
        assert_eq!(EPISODE_COLUMNS.split(", ").count(), EPISODE_COLUMN_COUNT);
        assert_eq!(STEP_COLUMNS.split(", ").count(), STEP_COLUMN_COUNT);
        assert_eq!(summary_columns!().split(", ").count(), SUMMARY_COLUMN_COUNT);
    }

    #[test]
    fn steps_round_trip() {
        let e = sample_episode("ns");
        for s in sample_steps(0, 4) {
            let values = step_values(e.id, &s);
            assert_eq!(values.len(), STEP_COLUMN_COUNT);
            assert_eq!(decode_step(values).unwrap(), (e.id, s));
        }
    }

    #[test]
    fn stats_follow_episode_summary() {
        let mut e = sample_episode("ns");
        e.steps = sample_steps(0, 7);
        let s = e.summary();
        let mut stats = StepStats::of(&e.steps[..3]);
        stats.add(&e.steps[3..]);
        assert_eq!(stats.tools, s.tools);
        assert_eq!(stats.count, s.step_count);
        assert_eq!(stats.successful, s.successful_steps);
    }

    #[test]
    fn bad_values_are_corrupt() {
        let e = sample_episode("ns");
        let mut values = episode_values(&e).unwrap();
        values[8] = Value::Text("maybe".into());
        let err = decode_episode(values).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert!(err.to_string().contains("episodes.outcome"), "{err}");

        let mut values = episode_values(&e).unwrap();
        values[0] = Value::Blob(vec![1, 2, 3]);
        assert_eq!(
            decode_episode(values).unwrap_err().kind(),
            ErrorKind::Corrupt
        );

        let mut values = episode_values(&e).unwrap();
        values[4] = Value::Integer(3);
        assert_eq!(
            decode_episode(values).unwrap_err().kind(),
            ErrorKind::Corrupt
        );

        let err = decode_stats(e.id, vec![Value::Null, Value::Null, Value::Null]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
    }
}
