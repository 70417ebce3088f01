//! The single writer: an OS thread that owns the only write connection and turns queued
//! operations into transactions (group commit).
//!
//! Callers take a queue permit (async backpressure: at most `queue_capacity` operations wait),
//! send a [`Request`] over a std channel and await its oneshot reply. The thread blocks on the
//! channel (precise timeouts, no async runtime of its own, libsql futures driven by its
//! `Exec`), takes the first queued request, gathers more until `max_batch_ops` or
//! `max_batch_delay`, and runs them in one `BEGIN IMMEDIATE` transaction, each inside
//! `SAVEPOINT op`, so a failing operation is rolled back alone and fails alone (a *transient*
//! failure, a lost connection or lock, fails the whole batch instead). After `COMMIT` each
//! caller gets its own result; if the commit fails, every operation that had succeeded gets the
//! commit's error. Nothing is acknowledged before its commit returned. In the network modes a
//! batch that failed transiently before its `COMMIT` was sent is run again with back-off
//! (`RetryPolicy`); a failed `COMMIT` never is.
//!
//! This module never runs on a tokio worker thread (libsql's local calls block), never lets
//! two transactions overlap, and after a failed commit refuses all further writes (the store
//! is poisoned until reopened) rather than guessing what reached the disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use libsql::Connection;
use memory_core::store::WriteStats;
use memory_core::{Error, Result};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::error::shutting_down;
use crate::exec::Exec;
use crate::options::{CommitMode, TursoOptions};
use crate::retry::{self, Backoff, RetryPolicy};
use crate::write_ops::{Control, Statements, WriteOp, control};

/// One queued operation and where its result goes.
pub(crate) struct Request {
    pub(crate) op: WriteOp,
    pub(crate) reply: oneshot::Sender<Result<bool>>,
    /// The caller's place in the queue, given back when the writer takes the request.
    pub(crate) _permit: OwnedSemaphorePermit,
}

/// What travels on the writer's channel.
pub(crate) enum Message {
    /// Run this operation.
    Op(Request),
    /// Finish everything queued before this message, then stop.
    Shutdown,
}

/// Shared counters behind [`WriteStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    batches: AtomicU64,
    operations: AtomicU64,
    failed_operations: AtomicU64,
    failed_batches: AtomicU64,
    batch_sizes: [AtomicU64; 8],
    largest_batch: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> WriteStats {
        WriteStats {
            batches: self.batches.load(Ordering::Relaxed),
            operations: self.operations.load(Ordering::Relaxed),
            failed_operations: self.failed_operations.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            batch_sizes: std::array::from_fn(|i| self.batch_sizes[i].load(Ordering::Relaxed)),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// A transaction of `ops` operations committed, `failed` of which failed alone.
    fn committed(&self, ops: u64, failed: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.operations.fetch_add(ops - failed, Ordering::Relaxed);
        self.failed_operations.fetch_add(failed, Ordering::Relaxed);
        self.batch_sizes[WriteStats::batch_bucket(ops)].fetch_add(1, Ordering::Relaxed);
        self.largest_batch.fetch_max(ops, Ordering::Relaxed);
    }
}

/// The batching bounds the writer runs with.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    max_ops: usize,
    max_delay: Duration,
}

/// The writer thread's state.
pub(crate) struct Writer {
    conn: Connection,
    statements: Statements,
    bounds: Bounds,
    counters: Arc<Counters>,
    /// Set after a commit failed in a way that leaves the disk state unknown.
    poisoned: Option<Error>,
    /// How this thread drives libsql futures (parked for a local file, the opening runtime
    /// for the network modes).
    exec: Exec,
    /// Retries of batches that failed before their commit was sent (network modes only).
    retry: RetryPolicy,
    /// Whether the batch being executed got as far as sending its `COMMIT`.
    commit_sent: bool,
    /// The database, in the network modes, to replace a connection a network failure left
    /// unusable (a stale stream is refused by the server even once it is back).
    reconnect: Option<Arc<libsql::Database>>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        statements: Statements,
        options: &TursoOptions,
        counters: Arc<Counters>,
        exec: Exec,
        reconnect: Option<Arc<libsql::Database>>,
    ) -> Self {
        let max_ops = match options.commit_mode {
            CommitMode::Grouped => options.max_batch_ops,
            CommitMode::PerOperation => 1,
        };
        Self {
            conn,
            statements,
            bounds: Bounds {
                max_ops,
                max_delay: options.max_batch_delay,
            },
            counters,
            poisoned: None,
            retry: match exec {
                Exec::Park => RetryPolicy::none(),
                Exec::Runtime(_) => options.retry,
            },
            exec,
            commit_sent: false,
            reconnect,
        }
    }

    /// Serve requests until a `Shutdown` message or until every sender is gone, then answer
    /// whatever is still queued with `ShuttingDown`. Runs on the writer thread and blocks it.
    pub(crate) fn run(mut self, rx: Receiver<Message>) {
        loop {
            let first = match rx.recv() {
                Ok(Message::Op(request)) => request,
                Ok(Message::Shutdown) | Err(_) => break,
            };
            let (batch, stop) = self.gather(first, &rx);
            let span = tracing::debug_span!("turso_write_batch", ops = batch.len());
            let _entered = span.enter();
            let exec = self.exec.clone();
            exec.block_on(self.commit_batch(batch));
            if stop {
                break;
            }
        }
        // Requests sent after this drain are dropped with the receiver; their callers see the
        // reply channel close and report `ShuttingDown`.
        while let Ok(message) = rx.try_recv() {
            if let Message::Op(request) = message {
                // The caller may have gone away; nothing to do then.
                let _ = request.reply.send(Err(shutting_down()));
            }
        }
        tracing::debug!("turso writer stopped");
    }

    /// Collect up to `max_ops` requests, waiting at most `max_delay` after the first. Returns
    /// the batch and whether a shutdown was seen.
    fn gather(&self, first: Request, rx: &Receiver<Message>) -> (Vec<Request>, bool) {
        let mut batch = vec![first];
        let deadline = Instant::now() + self.bounds.max_delay;
        while batch.len() < self.bounds.max_ops {
            let message = match rx.try_recv() {
                Ok(message) => message,
                Err(TryRecvError::Disconnected) => return (batch, true),
                Err(TryRecvError::Empty) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(message) => message,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return (batch, true),
                    }
                }
            };
            match message {
                Message::Op(request) => batch.push(request),
                Message::Shutdown => return (batch, true),
            }
        }
        (batch, false)
    }

    /// Run `batch` in one transaction and answer every caller.
    async fn commit_batch(&mut self, batch: Vec<Request>) {
        // Dropping the permits here frees the callers' queue places.
        let (ops, replies): (Vec<WriteOp>, Vec<_>) =
            batch.into_iter().map(|r| (r.op, r.reply)).unzip();
        let results = self.execute_retrying(ops).await;
        for (reply, result) in replies.into_iter().zip(results) {
            // A caller that stopped waiting (cancelled future) still had its write applied.
            let _ = reply.send(result);
        }
    }

    /// [`Writer::execute`], run again (per the retry policy) while the batch fails with a
    /// transient error before its `COMMIT` was sent: the transaction was rolled back, so
    /// nothing of it applied. A failed `COMMIT` is never retried (its outcome is unknown).
    async fn execute_retrying(&mut self, ops: Vec<WriteOp>) -> Vec<Result<bool>> {
        if self.retry.max_attempts <= 1 {
            return self.execute(ops).await;
        }
        let mut backoff = Backoff::new(self.retry, retry::seed());
        loop {
            let results = self.execute(ops.clone()).await;
            let retryable = !self.commit_sent
                && results
                    .iter()
                    .any(|r| r.as_ref().is_err_and(Error::is_transient));
            match backoff.next_delay() {
                Some(wait) if retryable => {
                    tracing::debug!(?wait, "write batch failed before its commit; retrying");
                    tokio::time::sleep(wait).await;
                }
                _ => return results,
            }
        }
    }

    /// The results of `ops`, in order, after their transaction ended.
    async fn execute(&mut self, ops: Vec<WriteOp>) -> Vec<Result<bool>> {
        self.commit_sent = false;
        let n = ops.len();
        if let Some(poison) = &self.poisoned {
            return vec![Err(poison.clone()); n];
        }
        if let Err(e) = control(&self.conn, Control::Begin).await {
            self.counters.failed_batches.fetch_add(1, Ordering::Relaxed);
            return vec![Err(e); n];
        }
        let grouped = n > 1;
        let mut results: Vec<Result<bool>> = Vec::with_capacity(n);
        for op in ops {
            let name = op.name();
            if grouped && let Err(e) = control(&self.conn, Control::Savepoint).await {
                return self.abort(results, n, e).await;
            }
            match self.statements.apply(op).await {
                Ok(value) => {
                    if grouped && let Err(e) = control(&self.conn, Control::Release).await {
                        return self.abort(results, n, e).await;
                    }
                    results.push(Ok(value));
                }
                Err(e) => {
                    tracing::debug!(op = name, error = %e, "write operation failed");
                    if e.is_transient() {
                        // The connection or the lock failed, not the operation: the rest of
                        // the batch would fail the same way. Nothing commits; a retry (or
                        // the caller) runs it again.
                        return self.abort(results, n, e).await;
                    }
                    if self.conn.is_autocommit() {
                        // SQLite rolled the whole transaction back (disk full, I/O error):
                        // nothing of this batch is on disk.
                        return self.abort(results, n, e).await;
                    }
                    if grouped {
                        let undone = async {
                            control(&self.conn, Control::RollbackTo).await?;
                            control(&self.conn, Control::Release).await
                        }
                        .await;
                        if let Err(undo) = undone {
                            results.push(Err(e));
                            return self.abort(results, n, undo).await;
                        }
                    }
                    results.push(Err(e));
                }
            }
        }
        if !grouped && results.iter().all(|r| r.is_err()) {
            // A lone failed operation: nothing to commit.
            self.rollback().await;
            self.counters
                .failed_operations
                .fetch_add(1, Ordering::Relaxed);
            return results;
        }
        self.commit_sent = true;
        match control(&self.conn, Control::Commit).await {
            Ok(_) => {
                let failed = results.iter().filter(|r| r.is_err()).count() as u64;
                self.counters.committed(n as u64, failed);
                results
            }
            Err(e) => {
                if !e.is_transient() {
                    tracing::error!(error = %e, "commit failed; the store refuses writes until reopened");
                    self.poisoned = Some(Error::storage(format!(
                        "an earlier commit failed ({e}); the store refuses writes until it is \
                         reopened"
                    )));
                }
                self.abort(results, n, e).await
            }
        }
    }

    /// End a transaction that cannot commit: roll back what SQLite has not already rolled back
    /// and fail every operation that had succeeded (and the ones never run) with `err`.
    async fn abort(
        &mut self,
        mut results: Vec<Result<bool>>,
        n: usize,
        err: Error,
    ) -> Vec<Result<bool>> {
        self.rollback().await;
        if err.is_transient() {
            self.reset_connection().await;
        }
        self.counters.failed_batches.fetch_add(1, Ordering::Relaxed);
        for r in &mut results {
            if r.is_ok() {
                *r = Err(err.clone());
            }
        }
        results.resize(n, Err(err));
        results
    }

    /// Network modes: start over on a fresh connection (the server rolls back whatever the old
    /// one left open). A local file keeps its one connection.
    async fn reset_connection(&mut self) {
        let Some(db) = &self.reconnect else {
            return;
        };
        let fresh = match db.connect() {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a fresh connection; keeping the old one");
                return;
            }
        };
        match Statements::new(&fresh, false).await {
            Ok(statements) => {
                self.conn = fresh;
                self.statements = statements;
            }
            Err(e) => tracing::warn!(error = %e, "cannot set up a fresh connection"),
        }
    }

    async fn rollback(&mut self) {
        if self.conn.is_autocommit() {
            return;
        }
        let rolled_back = control(&self.conn, Control::Rollback).await;
        if let Err(e) = &rolled_back
            && self.reconnect.is_some()
        {
            // Over the network an unfinished transaction dies with its stream: nothing of it
            // can commit later. Drop the connection instead of refusing all writes.
            tracing::debug!(error = %e, "rollback over the network failed; reconnecting");
            self.reset_connection().await;
            return;
        }
        if let Err(e) = rolled_back {
            tracing::error!(error = %e, "rollback failed; the store refuses writes until reopened");
            self.poisoned = Some(Error::storage(format!(
                "a rollback failed ({e}); the store refuses writes until it is reopened"
            )));
        }
    }
}
