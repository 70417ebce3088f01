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
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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

/// One write, ready for the writer (cloned only to run a batch again after a network failure
/// before its commit).
#[derive(Debug, Clone)]
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
    conn: Connection,
    state: Sql,
    insert_episode: Sql,
    update_episode: Sql,
    insert_step: Sql,
    insert_summary: Sql,
    update_summary: Sql,
    delete_steps: Sql,
    delete_summary: Sql,
    delete_episode: Sql,
}

/// One write-path statement: prepared once on a local file; in the network modes run as text
/// each time, because a remote prepared statement decides when it is prepared whether it ends
/// its stream, and one prepared outside a transaction would end the batch's transaction.
pub(crate) struct Sql {
    text: String,
    prepared: Option<Statement>,
}

impl Sql {
    async fn new(conn: &Connection, text: impl Into<String>, prepare: bool) -> Result<Self> {
        let text = text.into();
        let prepared = if prepare {
            Some(
                conn.prepare(&text)
                    .await
                    .map_err(|e| db_error(format!("preparing `{}`", text.trim()), e))?,
            )
        } else {
            None
        };
        Ok(Self { text, prepared })
    }

    /// Run it (no rows returned); the number of rows changed.
    async fn run(&self, conn: &Connection, params: Vec<Value>, what: &str) -> Result<usize> {
        match &self.prepared {
            Some(stmt) => run(stmt, params, what).await,
            None => conn
                .execute(&self.text, params)
                .await
                .map(|n| n as usize)
                .map_err(|e| db_error(what, e)),
        }
    }

    /// Its first row's first `width` values, or `None`.
    async fn first_row(
        &self,
        conn: &Connection,
        params: Vec<Value>,
        width: usize,
        what: &str,
    ) -> Result<Option<Vec<Value>>> {
        if let Some(stmt) = &self.prepared {
            stmt.reset();
        }
        let mut rows = match &self.prepared {
            Some(stmt) => stmt.query(params).await,
            None => conn.query(&self.text, params).await,
        }
        .map_err(|e| db_error(what, e))?;
        let values = match rows.next().await.map_err(|e| db_error(what, e))? {
            None => None,
            Some(row) => Some(row_values(&row, width, what)?),
        };
        drop(rows);
        if let Some(stmt) = &self.prepared {
            stmt.reset();
        }
        Ok(values)
    }
}

/// The transaction-control statements the writer runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Control {
    Begin,
    Commit,
    Rollback,
    Savepoint,
    Release,
    RollbackTo,
}

impl Control {
    fn sql(self) -> &'static str {
        match self {
            Control::Begin => "BEGIN IMMEDIATE",
            Control::Commit => "COMMIT",
            Control::Rollback => "ROLLBACK",
            Control::Savepoint => "SAVEPOINT op",
            Control::Release => "RELEASE op",
            Control::RollbackTo => "ROLLBACK TO op",
        }
    }
}

/// Run a transaction-control statement on the connection itself, never as a prepared
/// statement: the remote and replica clients track the transaction by the statements the
/// connection runs (a prepared `BEGIN` leaves a remote connection in autocommit, and a replica
/// refuses to prepare a `COMMIT` outside a transaction).
pub(crate) async fn control(conn: &Connection, what: Control) -> Result<()> {
    conn.execute(what.sql(), ())
        .await
        .map(drop)
        .map_err(|e| db_error(format!("running `{}`", what.sql()), e))
}

/// Run a prepared statement that returns no rows; the number of rows changed.
pub(crate) async fn run(stmt: &Statement, params: Vec<Value>, what: &str) -> Result<usize> {
    stmt.reset();
    let result = stmt.execute(params).await;
    stmt.reset();
    result.map_err(|e| db_error(what, e))
}

impl Statements {
    /// The write statements of the writer's connection (the schema must be current), prepared
    /// when `prepare` (a local file).
    pub(crate) async fn new(conn: &Connection, prepare: bool) -> Result<Self> {
        let sql = |text: &str| Sql::new(conn, text.to_owned(), prepare);
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
            conn: conn.clone(),
            state: sql("SELECT e.outcome IS NOT NULL, e.version, \
                        s.step_count, s.successful_steps, s.tools \
                   FROM episodes e LEFT JOIN summaries s ON s.id = e.id \
                  WHERE e.id = ?1")
            .await?,
            insert_episode: sql(&format!(
                "INSERT INTO episodes ({EPISODE_COLUMNS}) VALUES ({})",
                placeholders(episode_columns.len())
            ))
            .await?,
            update_episode: sql(&format!("UPDATE episodes SET {assignments} WHERE id = ?1"))
                .await?,
            insert_step: sql(&format!(
                "INSERT INTO steps ({STEP_COLUMNS}) VALUES ({})",
                placeholders(step_count)
            ))
            .await?,
            insert_summary: sql(
                "INSERT INTO summaries (id, step_count, successful_steps, tools) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .await?,
            update_summary: sql(
                "UPDATE summaries SET step_count = ?2, successful_steps = ?3, tools = ?4 \
                  WHERE id = ?1",
            )
            .await?,
            delete_steps: sql("DELETE FROM steps WHERE episode_id = ?1").await?,
            delete_summary: sql("DELETE FROM summaries WHERE id = ?1").await?,
            delete_episode: sql("DELETE FROM episodes WHERE id = ?1").await?,
        })
    }

    /// The stored state of `id`, or `None`.
    async fn state(&self, id: EpisodeId) -> Result<Option<Stored>> {
        const WHAT: &str = "reading the episode before a write";
        let values = self
            .state
            .first_row(&self.conn, vec![id_value(id)], 5, WHAT)
            .await?;
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
            self.insert_step
                .run(&self.conn, step.values, "inserting a step")
                .await?;
        }
        Ok(())
    }

    async fn create(&self, row: EpisodeRow) -> Result<bool> {
        let id = row.id;
        let exists = self.state(id).await?.is_some();
        rules::check_create(id, exists, row.steps.iter().map(|s| s.seq))?;
        self.insert_episode
            .run(&self.conn, row.values, "inserting the episode")
            .await?;
        let mut stats = StepStats::default();
        self.insert_steps(row.steps, &mut stats).await?;
        self.insert_summary
            .run(&self.conn, stats.values(id)?, "inserting the summary")
            .await?;
        Ok(true)
    }

    async fn append(&self, id: EpisodeId, steps: Vec<StepRow>) -> Result<bool> {
        let stored = self.existing(id).await?;
        rules::check_append(id, &stored.rules_view(), steps.iter().map(|s| s.seq))?;
        let mut stats = stored.stats;
        self.insert_steps(steps, &mut stats).await?;
        self.update_summary
            .run(&self.conn, stats.values(id)?, "updating the summary")
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
        self.update_episode
            .run(&self.conn, row.values, "completing the episode")
            .await?;
        let mut stats = stored.stats;
        self.insert_steps(new_steps, &mut stats).await?;
        self.update_summary
            .run(&self.conn, stats.values(id)?, "updating the summary")
            .await?;
        Ok(true)
    }

    async fn update(&self, row: EpisodeRow) -> Result<bool> {
        let id = row.id;
        let stored = self.existing(id).await?;
        rules::check_version(id, stored.version, row.version)?;
        self.update_episode
            .run(&self.conn, row.values, "updating the episode")
            .await?;
        Ok(true)
    }

    async fn delete(&self, id: EpisodeId) -> Result<bool> {
        self.delete_steps
            .run(&self.conn, vec![id_value(id)], "deleting steps")
            .await?;
        self.delete_summary
            .run(&self.conn, vec![id_value(id)], "deleting the summary")
            .await?;
        let n = self
            .delete_episode
            .run(&self.conn, vec![id_value(id)], "deleting the episode")
            .await?;
        Ok(n > 0)
    }
}
