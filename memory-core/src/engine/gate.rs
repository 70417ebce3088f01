//! Admission of public operations, so that shutdown can stop new work and drain the old.
//!
//! Every public operation holds a [`Pass`] for its whole duration. `close` refuses new passes
//! and waits, bounded, for the outstanding ones. No lock is held across `.await` here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::error::{Error, ErrorKind, Result};

/// The admission gate of one engine instance.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
    tracker: TaskTracker,
}

/// Proof of admission; dropping it marks the operation finished.
#[derive(Debug)]
pub(crate) struct Pass {
    _token: TaskTrackerToken,
}

impl Gate {
    /// Admit one operation, or `ShuttingDown`.
    pub(crate) fn enter(&self) -> Result<Pass> {
        // Take the token first, then check the flag: either this call sees `closed`, or
        // `close` sees the token and waits for it.
        let token = self.tracker.token();
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::ShuttingDown,
                "the memory engine is shut down",
            ));
        }
        Ok(Pass { _token: token })
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

    #[tokio::test(start_paused = true)]
    async fn close_is_bounded() {
        let gate = Gate::default();
        let _stuck = gate.enter().unwrap();
        let e = gate.close(Duration::from_secs(1)).await.unwrap_err();
        assert!(e.to_string().contains("1 operations still running"), "{e}");
    }
}
