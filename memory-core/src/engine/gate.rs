//! Admission of public operations, so that shutdown can stop new work and drain the old.
//!
//! Every public operation holds a [`Pass`] for its whole duration. `close` refuses new passes
//! and waits, bounded, for the outstanding ones; `settle` waits for the passes admitted before
//! it (not those admitted after), so that a snapshot knows every write that committed before
//! it read the durable store's change mark has also reached the index. No lock is held across
//! `.await` here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::error::{Error, ErrorKind, Result};

/// The admission gate of one engine instance.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
    tracker: TaskTracker,
    epochs: Mutex<Epochs>,
    /// Woken when the last pass of an epoch is dropped.
    emptied: Notify,
}

/// Passes held, by the epoch they were admitted in; `settle` starts a new epoch.
#[derive(Debug, Default)]
struct Epochs {
    current: u64,
    held: BTreeMap<u64, usize>,
}

/// Proof of admission; dropping it marks the operation finished.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    _token: TaskTrackerToken,
    gate: &'a Gate,
    epoch: u64,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut e = self.gate.epochs();
        if let Some(n) = e.held.get_mut(&self.epoch) {
            *n -= 1;
            if *n == 0 {
                e.held.remove(&self.epoch);
                drop(e);
                self.gate.emptied.notify_waiters();
            }
        }
    }
}

impl Gate {
    fn epochs(&self) -> MutexGuard<'_, Epochs> {
        self.epochs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admit one operation, or `ShuttingDown`.
    pub(crate) fn enter(&self) -> Result<Pass<'_>> {
        // Take the token first, then check the flag: either this call sees `closed`, or
        // `close` sees the token and waits for it.
        let token = self.tracker.token();
        self.refuse_if_closed()?;
        let epoch = {
            let mut e = self.epochs();
            let epoch = e.current;
            *e.held.entry(epoch).or_default() += 1;
            epoch
        };
        Ok(Pass {
            _token: token,
            gate: self,
            epoch,
        })
    }

    /// Wait until every pass admitted before this call is dropped; passes admitted meanwhile
    /// are not waited for. Must not be called while holding a pass (it would wait for it).
    pub(crate) async fn settle(&self) {
        let before = {
            let mut e = self.epochs();
            e.current += 1;
            e.current - 1
        };
        loop {
            let emptied = self.emptied.notified();
            tokio::pin!(emptied);
            emptied.as_mut().enable();
            if self.epochs().held.range(..=before).next().is_none() {
                return;
            }
            emptied.await;
        }
    }

    /// Refuse new work and wait up to `timeout` for admitted work to finish; on timeout an
    /// `Unavailable` error says how many operations were still running.
    pub(crate) async fn close(&self, timeout: Duration) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        self.tracker.close();
        match tokio::time::timeout(timeout, self.tracker.wait()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "shutdown timed out after {timeout:?} with {} operations still running",
                    self.tracker.len()
                ),
            )),
        }
    }

    /// `ShuttingDown` once `close` was called, the error `enter` returns then.
    pub(crate) fn refuse_if_closed(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::new(
                ErrorKind::ShuttingDown,
                "the memory engine is shut down",
            ));
        }
        Ok(())
    }

    /// Whether `close` was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn close_waits_for_passes_and_refuses_new_ones() {
        let gate = std::sync::Arc::new(Gate::default());
        let pass = gate.enter().unwrap();
        let g = gate.clone();
        let closing = tokio::spawn(async move { g.close(Duration::from_secs(60)).await });
        tokio::task::yield_now().await;
        assert!(gate.is_closed());
        assert_eq!(gate.enter().unwrap_err().kind(), ErrorKind::ShuttingDown);
        assert!(!closing.is_finished());
        drop(pass);
        closing.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn settle_waits_for_the_passes_admitted_before_it_only() {
        let gate = std::sync::Arc::new(Gate::default());
        let (older, also_older) = (gate.enter().unwrap(), gate.enter().unwrap());
        let g = gate.clone();
        let settling = tokio::spawn(async move { g.settle().await });
        while gate.epochs().current == 0 {
            tokio::task::yield_now().await;
        }
        let newer = gate.enter().unwrap();
        drop(older);
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(
            !settling.is_finished(),
            "one pass from before is still held"
        );
        drop(also_older);
        settling.await.unwrap();
        drop(newer);
        assert!(gate.epochs().held.is_empty());
        gate.settle().await; // nothing held: returns at once
    }

    #[tokio::test(start_paused = true)]
    async fn close_is_bounded() {
        let gate = Gate::default();
        let _stuck = gate.enter().unwrap();
        let e = gate.close(Duration::from_secs(1)).await.unwrap_err();
        assert!(e.to_string().contains("1 operations still running"), "{e}");
    }
}
