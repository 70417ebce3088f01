//! Configuration of a [`crate::TursoStore`]: a plain struct with documented defaults and one
//! [`TursoOptions::validate`].
//!
//! This module owns only the settings and their bounds; it never opens anything.

use std::time::Duration;

use memory_core::{Error, Result};

use crate::retry::RetryPolicy;

/// What an acknowledged write survives. Maps to SQLite's `PRAGMA synchronous` in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL` (the default): the write-ahead log is fsync'd at every commit, so
    /// every acknowledged write survives a process crash **and** a power loss or OS crash.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the log is fsync'd only at checkpoints. Every acknowledged write
    /// survives a process crash (the committed log pages are in the OS page cache), but after a
    /// power loss or OS crash the last commits before the loss may be rolled back. The database
    /// is never corrupted either way. Commits cost no fsync, so they are much cheaper.
    Normal,
}

/// How the writer turns operations into transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// Group commit (the default): the writer takes the first queued operation, gathers more
    /// until [`TursoOptions::max_batch_ops`] or [`TursoOptions::max_batch_delay`] is reached,
    /// and runs them all in one `BEGIN IMMEDIATE` transaction, each inside its own savepoint, so
    /// one commit (one fsync) acknowledges the whole batch and a failing operation fails alone.
    #[default]
    Grouped,
    /// Each operation in its own transaction, with its own commit. For benchmarking the cost
    /// of group commit away; otherwise strictly slower under concurrency.
    PerOperation,
}

/// Settings of a [`crate::TursoStore`]. Every field has a documented default
/// ([`TursoOptions::default`]); call [`TursoOptions::validate`] after changing them (opening a
/// store validates too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TursoOptions {
    /// What an acknowledged write survives. Default [`Durability::Full`].
    pub durability: Durability,
    /// How long any connection waits for a lock held by another connection (another process
    /// writing the same file, a checkpoint) before failing with a transient error. Set on every
    /// connection. Default 5 s; at most `i32::MAX` milliseconds (SQLite's limit).
    pub busy_timeout: Duration,
    /// Number of read connections; at most this many reads run at once, each on a blocking
    /// thread. Default 4; 1 to 64.
    pub read_connections: usize,
    /// Operations that may wait for the writer before callers are held back (backpressure).
    /// Default 1,024; 1 to 1,000,000.
    pub queue_capacity: usize,
    /// Group commit on or off. Default [`CommitMode::Grouped`].
    pub commit_mode: CommitMode,
    /// Most operations in one group-commit transaction. Default 64; 1 to 10,000.
    pub max_batch_ops: usize,
    /// Longest the writer waits, after taking a batch's first operation, for more operations to
    /// join it. Default 0: take only what is already queued — writes that arrive while a
    /// commit is running form the next batch, so batches grow with load by themselves. A
    /// non-zero delay makes the writer wait the full delay unless `max_batch_ops` is reached
    /// first, so a lone sequential writer pays it on every write; measured here it lowered
    /// throughput at 16 writers (docs/benchmarks.md). At most 10 s.
    pub max_batch_delay: Duration,
    /// Retries of transient network failures in the remote and replica modes (reads, and
    /// write batches that failed before their commit); ignored for a local file, whose
    /// transient failure (a lock held by another process) is waited out by `busy_timeout`.
    /// Default [`RetryPolicy::default`]: 4 attempts, 50 ms doubling to 2 s, full jitter.
    pub retry: RetryPolicy,
}

impl Default for TursoOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            queue_capacity: 1_024,
            commit_mode: CommitMode::Grouped,
            max_batch_ops: 64,
            max_batch_delay: Duration::ZERO,
            retry: RetryPolicy::default(),
        }
    }
}

impl TursoOptions {
    /// Check every bound; the error names the field, the limit and the value given.
    pub fn validate(&self) -> Result<()> {
        let max_busy = Duration::from_millis(i32::MAX as u64);
        if self.busy_timeout > max_busy {
            return Err(Error::invalid(
                "turso.busy_timeout",
                format!("at most {} ms", i32::MAX),
                format!("{} ms", self.busy_timeout.as_millis()),
            ));
        }
        let counts = [
            ("turso.read_connections", self.read_connections, 64),
            ("turso.queue_capacity", self.queue_capacity, 1_000_000),
            ("turso.max_batch_ops", self.max_batch_ops, 10_000),
        ];
        for (field, value, max) in counts {
            if value == 0 || value > max {
                return Err(Error::invalid(
                    field,
                    format!("1 to {max}"),
                    value.to_string(),
                ));
            }
        }
        if self.max_batch_delay > Duration::from_secs(10) {
            return Err(Error::invalid(
                "turso.max_batch_delay",
                "at most 10 s",
                format!("{:?}", self.max_batch_delay),
            ));
        }
        self.retry.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memory_core::ErrorKind;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let o = TursoOptions::default();
        o.validate().unwrap();
        assert_eq!(o.durability, Durability::Full);
        assert_eq!(o.max_batch_ops, 64);
        assert_eq!(o.max_batch_delay, Duration::ZERO);
        assert_eq!(o.read_connections, 4);
        assert_eq!(o.commit_mode, CommitMode::Grouped);
    }

    #[test]
    fn bounds_name_the_field() {
        let bad = [
            TursoOptions {
                read_connections: 0,
                ..Default::default()
            },
            TursoOptions {
                max_batch_ops: 0,
                ..Default::default()
            },
            TursoOptions {
                queue_capacity: 0,
                ..Default::default()
            },
            TursoOptions {
                busy_timeout: Duration::from_secs(u64::MAX / 2),
                ..Default::default()
            },
            TursoOptions {
                max_batch_delay: Duration::from_secs(11),
                ..Default::default()
            },
        ];
        let fields = [
            "turso.read_connections",
            "turso.max_batch_ops",
            "turso.queue_capacity",
            "turso.busy_timeout",
            "turso.max_batch_delay",
        ];
        for (o, field) in bad.iter().zip(fields) {
            let e = o.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert_eq!(e.violation().unwrap().field, field);
        }
    }
}
