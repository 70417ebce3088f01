//! The on-disk schema and its migrations.
//!
//! The database holds a one-row `schema_version` table and the tables created by an ordered
//! list of [`MIGRATIONS`], each with `up` and `down` SQL. Opening a store runs the pending `up`s
//! in one `BEGIN IMMEDIATE` transaction; [`crate::TursoStore::migrate_local`] moves an offline
//! file to any known version, up or down, the same way. A file whose version is newer than
//! [`SCHEMA_VERSION`] is refused before anything is written to it.
//!
//! Tables at [`SCHEMA_VERSION`] 5:
//!
//! - `episodes`: one row per episode, keyed by the 16 bytes of `EpisodeId::to_bytes` (which
//!   sort in id, i.e. creation, order). Episode-level fields as columns; `tags` is a JSON array;
//!   `reward_bits` holds the `f64` bits (authoritative: SQLite's REAL affinity turns `-0.0` into
//!   `0.0`), `reward` the same number as REAL for humans and SQL; `embedding` is little-endian
//!   `f32`s; times are microseconds since the Unix epoch; `version` is the `u64` bit pattern.
//!   Index `(namespace, id)` serves listing; the primary key serves lookups and id-ordered scans.
//! - `steps`: one row per step, primary key `(episode_id, seq)`, `WITHOUT ROWID` so an
//!   episode's steps are stored together in `seq` order. Appending a step inserts rows here and
//!   never rewrites the episode row.
//! - `summaries`: the step-derived part of an `EpisodeSummary` (`step_count`,
//!   `successful_steps`, `tools` as a JSON array in first-use order), one row per episode,
//!   written in the same transaction as every change of the episode or its steps. The rest of a
//!   summary is read from the episode row in the same snapshot.
//! - `changes`: the store's recent history of writes, one row per insert, update and delete
//!   of an `episodes` or `summaries` row (`seq` its place, `id` the episode's, `mark` a random
//!   number drawn for it), added by triggers in the same transaction as the write, so every
//!   writer of the file is recorded; the same triggers delete the rows more than
//!   [`CHANGES_KEPT`] behind the newest. The newest row is `DurableStore::change_mark`;
//!   `DurableStore::changed_since` reads the rows after a given one. A first row with no id
//!   stands for the state before any recorded write.
//!
//! This module never formats a value into SQL: migrations are constant text and the version is
//! a bound parameter.

use libsql::{Connection, Value};
use memory_core::{Error, Result};

use crate::error::db_error;

/// One schema change: `up` moves a database from `version - 1` to `version`, `down` back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The version this migration produces.
    pub version: u32,
    /// A short name for logs.
    pub name: &'static str,
    /// SQL run to go from `version - 1` to `version` (one or more statements).
    pub up: &'static str,
    /// SQL run to go from `version` back to `version - 1`.
    pub down: &'static str,
}

/// The schema version this build reads and writes: the last migration's version.
pub const SCHEMA_VERSION: u32 = 5;

/// The rows of the `changes` table kept: the history `DurableStore::changed_since` can reach
/// back through (about two rows per episode write, one for the episode row and one for its
/// summary). The number in `record_change!`, the body of migration 5's triggers.
pub const CHANGES_KEPT: u64 = 250_000;

/// The body of a migration-5 trigger: a `changes` row for the written row's id (`new`, `old`,
/// or for an `update` both when the id changed), then the delete of the rows more than
/// 250,000 (`CHANGES_KEPT`) behind the newest.
macro_rules! record_change {
    (new) => {
        record_change!(@ "INSERT INTO changes (id, mark) VALUES (new.id, random());")
    };
    (old) => {
        record_change!(@ "INSERT INTO changes (id, mark) VALUES (old.id, random());")
    };
    (update) => {
        record_change!(@ "INSERT INTO changes (id, mark) SELECT old.id, random() WHERE old.id IS NOT new.id;
                INSERT INTO changes (id, mark) VALUES (new.id, random());")
    };
    (@ $insert:literal) => {
        concat!(
            "
            BEGIN
                ",
            $insert,
            "
                DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - 250000;
            END;
            "
        )
    };
}

/// Migration 4's `up`: also migration 5's `down`.
macro_rules! v4_change_mark {
    () => {
        "
            CREATE TABLE change_mark (
                id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
                mark INTEGER NOT NULL
            );
            INSERT INTO change_mark (id, mark) VALUES (1, random());
            CREATE TRIGGER episodes_insert_mark AFTER INSERT ON episodes
            BEGIN UPDATE change_mark SET mark = random() WHERE id = 1; END;
            CREATE TRIGGER episodes_update_mark AFTER UPDATE ON episodes
            BEGIN UPDATE change_mark SET mark = random() WHERE id = 1; END;
            CREATE TRIGGER episodes_delete_mark AFTER DELETE ON episodes
            BEGIN UPDATE change_mark SET mark = random() WHERE id = 1; END;
            CREATE TRIGGER summaries_insert_mark AFTER INSERT ON summaries
            BEGIN UPDATE change_mark SET mark = random() WHERE id = 1; END;
            CREATE TRIGGER summaries_update_mark AFTER UPDATE ON summaries
            BEGIN UPDATE change_mark SET mark = random() WHERE id = 1; END;
            CREATE TRIGGER summaries_delete_mark AFTER DELETE ON summaries
            BEGIN UPDATE change_mark SET mark = random() WHERE id = 1; END;
        "
    };
}

/// Migration 4's `down`: also the start of migration 5's `up`.
macro_rules! v4_change_mark_drop {
    () => {
        "
            DROP TRIGGER summaries_delete_mark;
            DROP TRIGGER summaries_update_mark;
            DROP TRIGGER summaries_insert_mark;
            DROP TRIGGER episodes_delete_mark;
            DROP TRIGGER episodes_update_mark;
            DROP TRIGGER episodes_insert_mark;
            DROP TABLE change_mark;
        "
    };
}

/// Every migration, in order; `MIGRATIONS[i].version == i + 1`.
///
/// - v1 `episodes-and-steps`: the episode and step tables and their index. Down drops them
///   (and their data).
/// - v2 `summaries`: the step-derived summary table, backfilled from `steps` on the way up, so
///   going down to 1 and up again loses nothing.
/// - v3 `episode-versions`: the `(id, version)` index `scan_versions` reads.
/// - v4 `change-mark`: the one-row `change_mark` table and the triggers that set it to a new
///   random number on every insert, update and delete of an episode or summary row.
/// - v5 `change-log`: replaces v4's table and triggers by the `changes` table and triggers
///   that append a row to it on every insert, update and delete of an episode or summary row
///   (an update that changes the id appends one for each id), keeping the last
///   [`CHANGES_KEPT`]. Down goes back to v4's mark.
///
/// The SQL must parse with libsql's client-side parser too (remote and replica modes split
/// statements with it): it does not know SQLite 3.44's `agg(x ORDER BY y)`, so the backfill
/// orders a subquery instead (`tests/migrations.rs` runs every migration as that parser
/// prints it back, and checks the tools' first-use order).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "episodes-and-steps",
        up: "
            CREATE TABLE episodes (
                id           BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
                namespace    TEXT NOT NULL,
                domain       TEXT NOT NULL,
                task_type    TEXT NOT NULL,
                tags         TEXT NOT NULL,
                language     TEXT,
                complexity   TEXT,
                description  TEXT NOT NULL,
                outcome      TEXT,
                reward_bits  INTEGER NOT NULL,
                reward       REAL NOT NULL,
                embedding    BLOB,
                started_at   INTEGER NOT NULL,
                completed_at INTEGER,
                version      INTEGER NOT NULL,
                verdict      TEXT,
                reflection   TEXT
            );
            CREATE INDEX episodes_namespace_id ON episodes (namespace, id);
            CREATE TABLE steps (
                episode_id BLOB NOT NULL,
                seq        INTEGER NOT NULL,
                tool       TEXT NOT NULL,
                action     TEXT NOT NULL,
                input      TEXT NOT NULL,
                output     TEXT NOT NULL,
                success    INTEGER NOT NULL,
                latency_ms INTEGER NOT NULL,
                ts         INTEGER NOT NULL,
                PRIMARY KEY (episode_id, seq)
            ) WITHOUT ROWID;
        ",
        down: "
            DROP TABLE steps;
            DROP INDEX episodes_namespace_id;
            DROP TABLE episodes;
        ",
    },
    Migration {
        version: 2,
        name: "summaries",
        up: "
            CREATE TABLE summaries (
                id               BLOB PRIMARY KEY NOT NULL,
                step_count       INTEGER NOT NULL,
                successful_steps INTEGER NOT NULL,
                tools            TEXT NOT NULL
            ) WITHOUT ROWID;
            INSERT INTO summaries (id, step_count, successful_steps, tools)
            SELECT e.id,
                   (SELECT count(*) FROM steps s WHERE s.episode_id = e.id),
                   (SELECT count(*) FROM steps s WHERE s.episode_id = e.id AND s.success <> 0),
                   (SELECT json_group_array(t.tool)
                      FROM (SELECT tool, min(seq) AS first_seq
                              FROM steps s WHERE s.episode_id = e.id
                             GROUP BY tool
                             ORDER BY first_seq) AS t)
              FROM episodes e;
        ",
        down: "
            DROP TABLE summaries;
        ",
    },
    Migration {
        version: 3,
        name: "episode-versions",
        // Lets `scan_versions` (what an index loaded from a snapshot is compared with) read
        // the index alone, in id order, instead of one table row per episode.
        up: "
            CREATE INDEX episodes_id_version ON episodes (id, version);
        ",
        down: "
            DROP INDEX episodes_id_version;
        ",
    },
    Migration {
        version: 4,
        name: "change-mark",
        // `DurableStore::change_mark`: triggers, so that every writer of the file (another
        // process, the sqlite3 shell) moves the mark, not only this crate's statements.
        up: v4_change_mark!(),
        down: v4_change_mark_drop!(),
    },
    Migration {
        version: 5,
        name: "change-log",
        // `DurableStore::changed_since`: the same triggers' reach, a row per write; each
        // trigger also deletes what fell out of the last 250,000 rows (`CHANGES_KEPT`; the
        // newest row is never deleted, so `seq` keeps growing).
        up: concat!(
            v4_change_mark_drop!(),
            "
            CREATE TABLE changes (
                seq  INTEGER PRIMARY KEY NOT NULL,
                id   BLOB,
                mark INTEGER NOT NULL
            );
            INSERT INTO changes (seq, id, mark) VALUES (1, NULL, random());
            ",
            "CREATE TRIGGER episodes_insert_change AFTER INSERT ON episodes",
            record_change!(new),
            "CREATE TRIGGER episodes_update_change AFTER UPDATE ON episodes",
            record_change!(update),
            "CREATE TRIGGER episodes_delete_change AFTER DELETE ON episodes",
            record_change!(old),
            "CREATE TRIGGER summaries_insert_change AFTER INSERT ON summaries",
            record_change!(new),
            "CREATE TRIGGER summaries_update_change AFTER UPDATE ON summaries",
            record_change!(update),
            "CREATE TRIGGER summaries_delete_change AFTER DELETE ON summaries",
            record_change!(old),
        ),
        down: concat!(
            "
            DROP TRIGGER summaries_delete_change;
            DROP TRIGGER summaries_update_change;
            DROP TRIGGER summaries_insert_change;
            DROP TRIGGER episodes_delete_change;
            DROP TRIGGER episodes_update_change;
            DROP TRIGGER episodes_insert_change;
            DROP TABLE changes;
            ",
            v4_change_mark!()
        ),
    },
];

/// What a migration run did: the version found and the version left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaChange {
    /// The file's schema version before the run (0 for an empty file).
    pub from: u32,
    /// The file's schema version after the run.
    pub to: u32,
}

/// The error for a file written by a newer build.
fn newer_than_known(found: u32) -> Error {
    Error::storage(format!(
        "the database schema version is {found}, newer than the newest version this build \
         knows ({SCHEMA_VERSION}); upgrade memory-storage-turso to open it (the file was not \
         changed)"
    ))
}

/// The schema version recorded in the file, 0 if there is none (empty or foreign file).
/// Only reads; safe to call before deciding whether the file may be touched.
pub(crate) async fn read_version(conn: &Connection) -> Result<u32> {
    let mut rows = conn
        .query(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            (),
        )
        .await
        .map_err(|e| db_error("reading the schema", e))?;
    let has_table = match rows.next().await {
        Ok(Some(row)) => matches!(row.get_value(0), Ok(Value::Integer(n)) if n > 0),
        Ok(None) => false,
        Err(e) => return Err(db_error("reading the schema", e)),
    };
    drop(rows);
    if !has_table {
        return Ok(0);
    }
    version_row(conn).await
}

/// The value in the `schema_version` row (0 if the row is missing).
async fn version_row(conn: &Connection) -> Result<u32> {
    let mut rows = conn
        .query("SELECT version FROM schema_version WHERE id = 1", ())
        .await
        .map_err(|e| db_error("reading the schema version", e))?;
    let row = rows
        .next()
        .await
        .map_err(|e| db_error("reading the schema version", e))?;
    let value = match row {
        None => return Ok(0),
        Some(row) => row
            .get_value(0)
            .map_err(|e| db_error("reading the schema version", e))?,
    };
    match value {
        Value::Integer(v) => u32::try_from(v)
            .map_err(|_| Error::corrupt(format!("schema_version holds {v}, not a version"))),
        other => Err(Error::corrupt(format!(
            "schema_version holds {other:?}, not a version"
        ))),
    }
}

/// Refuse a file written by a newer build, without writing to it.
pub(crate) async fn check_not_newer(conn: &Connection) -> Result<u32> {
    let found = read_version(conn).await?;
    if found > SCHEMA_VERSION {
        return Err(newer_than_known(found));
    }
    Ok(found)
}

/// Move the database on `conn` to `target` (up or down) in one `BEGIN IMMEDIATE`
/// transaction: all the migrations in between take effect, or none.
pub(crate) async fn migrate(conn: &Connection, target: u32) -> Result<SchemaChange> {
    if target > SCHEMA_VERSION {
        return Err(Error::invalid(
            "schema target version",
            format!("at most {SCHEMA_VERSION} (the newest this build knows)"),
            target.to_string(),
        ));
    }
    conn.execute("BEGIN IMMEDIATE", ())
        .await
        .map_err(|e| db_error("starting the migration transaction", e))?;
    let result = migrate_in_transaction(conn, target).await;
    match result {
        Ok(change) => {
            if let Err(e) = conn.execute("COMMIT", ()).await {
                let err = db_error("committing the migration", e);
                rollback(conn).await;
                return Err(err);
            }
            if change.from != change.to {
                tracing::info!(from = change.from, to = change.to, "schema migrated");
            }
            Ok(change)
        }
        Err(e) => {
            rollback(conn).await;
            Err(e)
        }
    }
}

/// Best-effort rollback of a failed migration (SQLite may already have rolled back).
async fn rollback(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute("ROLLBACK", ()).await
    {
        tracing::warn!(error = %e, "rollback of a failed migration failed");
    }
}

async fn migrate_in_transaction(conn: &Connection, target: u32) -> Result<SchemaChange> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             id      INTEGER PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL
         )",
        (),
    )
    .await
    .map_err(|e| db_error("creating the schema_version table", e))?;
    let from = version_row(conn).await?;
    if from > SCHEMA_VERSION {
        return Err(newer_than_known(from));
    }
    if from < target {
        for m in MIGRATIONS
            .iter()
            .filter(|m| m.version > from && m.version <= target)
        {
            conn.execute_batch(m.up)
                .await
                .map_err(|e| db_error(format!("migration {} ({}) up", m.version, m.name), e))?;
        }
    } else {
        for m in MIGRATIONS
            .iter()
            .rev()
            .filter(|m| m.version > target && m.version <= from)
        {
            conn.execute_batch(m.down)
                .await
                .map_err(|e| db_error(format!("migration {} ({}) down", m.version, m.name), e))?;
        }
    }
    if from != target {
        conn.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            vec![Value::Integer(i64::from(target))],
        )
        .await
        .map_err(|e| db_error("recording the schema version", e))?;
    }
    Ok(SchemaChange { from, to: target })
}

#[cfg(test)]
mod tests {
    use super::*;
    use memory_core::ErrorKind;

    fn is_newer_schema(e: &Error) -> bool {
        e.kind() == ErrorKind::Storage && e.message().contains("newer than the newest version")
    }

    #[test]
    fn migrations_are_numbered_in_order_and_end_at_the_current_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
            assert!(!m.up.trim().is_empty() && !m.down.trim().is_empty());
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn newer_schema_error_names_both_versions() {
        let e = newer_than_known(7);
        assert!(is_newer_schema(&e));
        assert!(
            e.to_string().contains('7') && e.to_string().contains(&SCHEMA_VERSION.to_string()),
            "{e}"
        );
    }
}
