//! The SQL of each write operation, run by the writer thread inside a transaction it opened.
//!
//! Owns the prepared write statements and the rules of each operation (the same checks, in
//! the same order and with the same error kinds, as `memory_core::store::InMemoryStore`).
//! Operations are encoded into SQL values by the caller's task ([`WriteOp::create`] and
//! friends), so the single writer thread spends its time on SQL only. This module never opens,
//! commits or rolls back a transaction: that is the writer's job.

use libsql::{Connection, Statement, Value};
use memory_core::store::rules::{self, StoredState};
use memory_core::{Episode, EpisodeId, Result, Step};

use crate::codec::{
    EPISODE_COLUMNS, STEP_COLUMNS, StepStats, decode_stats, episode_values, id_value, row_values,
    step_values,
};
use crate::error::db_error;

/// One step, encoded for its `INSERT`, with what the summary needs.
#[derive(Debug)]
pub(crate) struct StepRow {
    seq: u32,
    tool: String,
    success: bool,
    values: Vec<Value>,
}

impl StepRow {
    fn new(id: EpisodeId, step: &Step) -> Self {
        Self {
            seq: step.seq,
            tool: step.tool.clone(),
            success: step.success,
            values: step_values(id, step),
        }
    }
}

/// An episode, encoded for its `INSERT`/`UPDATE`, with its steps.
#[derive(Debug)]
pub(crate) struct EpisodeRow {
    id: EpisodeId,
    version: u64,
    values: Vec<Value>,
    steps: Vec<StepRow>,
}

impl EpisodeRow {
    fn new(episode: &Episode, with_steps: bool) -> Result<Self> {
        Ok(Self {
            id: episode.id,
            version: episode.version,
            values: episode_values(episode)?,
            steps: if with_steps {
                episode
                    .steps
                    .iter()
                    .map(|s| StepRow::new(episode.id, s))
                    .collect()
            } else {
                Vec::new()
            },
        })
    }
}

/// One write, ready for the writer.
#[derive(Debug)]
pub(crate) enum WriteOp {
    /// `DurableStore::create_episode`.
    Create(Box<EpisodeRow>),
    /// `DurableStore::append_steps`.
    Append {
        /// The episode.
        id: EpisodeId,
        /// The steps, in order.
        steps: Vec<StepRow>,
    },
    /// `DurableStore::complete_episode`.
    Complete(Box<EpisodeRow>),
    /// `DurableStore::update_episode` (steps are not carried).
    Update(Box<EpisodeRow>),
    /// `DurableStore::delete_episode`.
    Delete(EpisodeId),
}

impl WriteOp {
    /// Encode a create.
    pub(crate) fn create(episode: &Episode) -> Result<Self> {
        Ok(Self::Create(Box::new(EpisodeRow::new(episode, true)?)))
    }

    /// Encode an append.
    pub(crate) fn append(id: EpisodeId, steps: &[Step]) -> Self {
        Self::Append {
            id,
            steps: steps.iter().map(|s| StepRow::new(id, s)).collect(),
        }
    }

    /// Encode a completion.
    pub(crate) fn complete(episode: &Episode) -> Result<Self> {
        Ok(Self::Complete(Box::new(EpisodeRow::new(episode, true)?)))
    }

    /// Encode an update.
    pub(crate) fn update(episode: &Episode) -> Result<Self> {
        Ok(Self::Update(Box::new(EpisodeRow::new(episode, false)?)))
    }

    /// A short name for logs and errors.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            WriteOp::Create(_) => "create_episode",
            WriteOp::Append { .. } => "append_steps",
            WriteOp::Complete(_) => "complete_episode",
            WriteOp::Update(_) => "update_episode",
            WriteOp::Delete(_) => "delete_episode",
        }
    }
}

/// What the writer knows of a stored episode before changing it.
struct Stored {
    completed: bool,
    version: u64,
    stats: StepStats,
}

impl Stored {
    /// What the shared write rules need.
    fn rules_view(&self) -> StoredState {
        StoredState {
            completed: self.completed,
            version: self.version,
            step_count: self.stats.count as usize,
        }
    }
}

/// The writer's prepared statements. libsql keeps no statement cache, so the writer prepares
/// each statement once. libsql's `Statement::execute` neither resets the statement nor checks
/// the bind result, so a statement reused without `reset()` silently runs with its previous
/// parameters: [`run`] and [`Statements::state`] reset before and after every use.
pub(crate) struct Statements {
    pub(crate) begin: Statement,
    pub(crate) commit: Statement,
    pub(crate) rollback: Statement,
    pub(crate) savepoint: Statement,
    pub(crate) release: Statement,
    pub(crate) rollback_to: Statement,
    state: Statement,
    insert_episode: Statement,
    update_episode: Statement,
    insert_step: Statement,
    insert_summary: Statement,
    update_summary: Statement,
    delete_steps: Statement,
    delete_summary: Statement,
    delete_episode: Statement,
}

async fn prepare(conn: &Connection, sql: &str) -> Result<Statement> {
    conn.prepare(sql)
        .await
        .map_err(|e| db_error(format!("preparing `{}`", sql.trim()), e))
}

/// Run a prepared statement that returns no rows; the number of rows changed.
pub(crate) async fn run(stmt: &Statement, params: Vec<Value>, what: &str) -> Result<usize> {
    stmt.reset();
    let result = stmt.execute(params).await;
    stmt.reset();
    result.map_err(|e| db_error(what, e))
}

impl Statements {
    /// Prepare every write statement on the writer's connection (the schema must be current).
    pub(crate) async fn prepare(conn: &Connection) -> Result<Self> {
        let placeholders = |n: usize| {
            (1..=n)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let episode_columns: Vec<&str> = EPISODE_COLUMNS.split(", ").collect();
        let assignments = episode_columns
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, c)| format!("{c} = ?{}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let step_count = STEP_COLUMNS.split(", ").count();
        Ok(Self {
            begin: prepare(conn, "BEGIN IMMEDIATE").await?,
            commit: prepare(conn, "COMMIT").await?,
            rollback: prepare(conn, "ROLLBACK").await?,
            savepoint: prepare(conn, "SAVEPOINT op").await?,
            release: prepare(conn, "RELEASE op").await?,
            rollback_to: prepare(conn, "ROLLBACK TO op").await?,
            state: prepare(
                conn,
                "SELECT e.outcome IS NOT NULL, e.version, \
                        s.step_count, s.successful_steps, s.tools \
                   FROM episodes e LEFT JOIN summaries s ON s.id = e.id \
                  WHERE e.id = ?1",
            )
            .await?,
            insert_episode: prepare(
                conn,
                &format!(
                    "INSERT INTO episodes ({EPISODE_COLUMNS}) VALUES ({})",
                    placeholders(episode_columns.len())
                ),
            )
            .await?,
            update_episode: prepare(
                conn,
                &format!("UPDATE episodes SET {assignments} WHERE id = ?1"),
            )
            .await?,
            insert_step: prepare(
                conn,
                &format!(
                    "INSERT INTO steps ({STEP_COLUMNS}) VALUES ({})",
                    placeholders(step_count)
                ),
            )
            .await?,
            insert_summary: prepare(
                conn,
                "INSERT INTO summaries (id, step_count, successful_steps, tools) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .await?,
            update_summary: prepare(
                conn,
                "UPDATE summaries SET step_count = ?2, successful_steps = ?3, tools = ?4 \
                  WHERE id = ?1",
            )
            .await?,
            delete_steps: prepare(conn, "DELETE FROM steps WHERE episode_id = ?1").await?,
            delete_summary: prepare(conn, "DELETE FROM summaries WHERE id = ?1").await?,
            delete_episode: prepare(conn, "DELETE FROM episodes WHERE id = ?1").await?,
        })
    }

    /// The stored state of `id`, or `None`.
    async fn state(&self, id: EpisodeId) -> Result<Option<Stored>> {
        const WHAT: &str = "reading the episode before a write";
        self.state.reset();
        let mut rows = self
            .state
            .query(vec![id_value(id)])
            .await
            .map_err(|e| db_error(WHAT, e))?;
        let values = match rows.next().await.map_err(|e| db_error(WHAT, e))? {
            None => None,
            Some(row) => Some(row_values(&row, 5, WHAT)?),
        };
        drop(rows);
        self.state.reset();
        let Some(mut values) = values else {
            return Ok(None);
        };
        let stats = decode_stats(id, values.split_off(2))?;
        let mut head = crate::codec::Fields::new(values, "episodes");
        Ok(Some(Stored {
            completed: head.bool("outcome")?,
            version: head.u64_bits("version")?,
            stats,
        }))
    }

    /// The stored state of `id`, or `NotFound`.
    async fn existing(&self, id: EpisodeId) -> Result<Stored> {
        rules::require(id, self.state(id).await?)
    }

    /// Apply one operation inside the caller's open transaction. On `Err` the caller must roll
    /// the operation back (its savepoint or the whole transaction). `Ok(true)` means "done"
    /// (for a delete: "it existed").
    pub(crate) async fn apply(&self, op: WriteOp) -> Result<bool> {
        match op {
            WriteOp::Create(row) => self.create(*row).await,
            WriteOp::Append { id, steps } => self.append(id, steps).await,
            WriteOp::Complete(row) => self.complete(*row).await,
            WriteOp::Update(row) => self.update(*row).await,
            WriteOp::Delete(id) => self.delete(id).await,
        }
    }

    async fn insert_steps(&self, steps: Vec<StepRow>, stats: &mut StepStats) -> Result<()> {
        for step in steps {
            stats.push(&step.tool, step.success);
            run(&self.insert_step, step.values, "inserting a step").await?;
        }
        Ok(())
    }

    async fn create(&self, row: EpisodeRow) -> Result<bool> {
        let id = row.id;
        let exists = self.state(id).await?.is_some();
        rules::check_create(id, exists, row.steps.iter().map(|s| s.seq))?;
        run(&self.insert_episode, row.values, "inserting the episode").await?;
        let mut stats = StepStats::default();
        self.insert_steps(row.steps, &mut stats).await?;
        run(
            &self.insert_summary,
            stats.values(id)?,
            "inserting the summary",
        )
        .await?;
        Ok(true)
    }

    async fn append(&self, id: EpisodeId, steps: Vec<StepRow>) -> Result<bool> {
        let stored = self.existing(id).await?;
        rules::check_append(id, &stored.rules_view(), steps.iter().map(|s| s.seq))?;
        let mut stats = stored.stats;
        self.insert_steps(steps, &mut stats).await?;
        run(
            &self.update_summary,
            stats.values(id)?,
            "updating the summary",
        )
        .await?;
        Ok(true)
    }

    async fn complete(&self, mut row: EpisodeRow) -> Result<bool> {
        let id = row.id;
        let stored = self.existing(id).await?;
        let seqs: Vec<u32> = row.steps.iter().map(|s| s.seq).collect();
        rules::check_complete(id, &stored.rules_view(), row.version, &seqs)?;
        // The stored steps stand; only the ones beyond them are new.
        let new_steps = row.steps.split_off(stored.stats.count as usize);
        run(&self.update_episode, row.values, "completing the episode").await?;
        let mut stats = stored.stats;
        self.insert_steps(new_steps, &mut stats).await?;
        run(
            &self.update_summary,
            stats.values(id)?,
            "updating the summary",
        )
        .await?;
        Ok(true)
    }

    async fn update(&self, row: EpisodeRow) -> Result<bool> {
        let id = row.id;
        let stored = self.existing(id).await?;
        rules::check_version(id, stored.version, row.version)?;
        run(&self.update_episode, row.values, "updating the episode").await?;
        Ok(true)
    }

    async fn delete(&self, id: EpisodeId) -> Result<bool> {
        run(&self.delete_steps, vec![id_value(id)], "deleting steps").await?;
        run(
            &self.delete_summary,
            vec![id_value(id)],
            "deleting the summary",
        )
        .await?;
        let n = run(
            &self.delete_episode,
            vec![id_value(id)],
            "deleting the episode",
        )
        .await?;
        Ok(n > 0)
    }
}
