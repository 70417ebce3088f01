//! Backpressure on completions: a bounded number run at once; a caller that waits longer than
//! the configured timeout gets `Overloaded` (transient) instead of queueing without bound.
//!
//! Owns the semaphore and the in-flight and waiting counts shown in metrics. Never holds a
//! lock; the permit is released when the completion ends, however it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, ErrorKind, Result};

/// Completion permits of one engine instance.
#[derive(Debug)]
pub(crate) struct Permits {
    semaphore: Arc<Semaphore>,
    capacity: usize,
    timeout: Duration,
    waiting: AtomicU64,
    rejected: AtomicU64,
}

/// Counts for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermitStats {
    /// Completions running now.
    pub in_flight: u64,
    /// Completions waiting for a permit now (the queue depth).
    pub waiting: u64,
    /// Completions refused with `Overloaded` since open.
    pub rejected: u64,
}

impl Permits {
    pub(crate) fn new(capacity: usize, timeout: Duration) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
            timeout,
            waiting: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Wait (at most the timeout) for a permit.
    pub(crate) async fn acquire(&self) -> Result<OwnedSemaphorePermit> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let acquired =
            tokio::time::timeout(self.timeout, self.semaphore.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match acquired {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(Error::new(
                ErrorKind::ShuttingDown,
                "completion permits are closed",
            )),
            Err(_elapsed) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(Error::new(
                    ErrorKind::Overloaded,
                    format!(
                        "{} completions already running; waited {:?} for a slot (max_concurrent_completions, completion_wait_timeout)",
                        self.capacity, self.timeout
                    ),
                ))
            }
        }
    }

    pub(crate) fn stats(&self) -> PermitStats {
        PermitStats {
            in_flight: (self.capacity - self.semaphore.available_permits()) as u64,
            waiting: self.waiting.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gets_a_freed_slot() {
        let permits = Arc::new(Permits::new(1, Duration::from_secs(1)));
        let held = permits.acquire().await.unwrap();
        let p = permits.clone();
        let waiter = tokio::spawn(async move { p.acquire().await.map(drop) });
        tokio::task::yield_now().await;
        assert_eq!(permits.stats().waiting, 1);
        assert_eq!(permits.stats().in_flight, 1);
        drop(held);
        waiter.await.unwrap().unwrap();
        assert_eq!(permits.stats().waiting, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_past_the_timeout_is_overloaded() {
        let permits = Permits::new(1, Duration::from_secs(1));
        let _held = permits.acquire().await.unwrap();
        let start = tokio::time::Instant::now();
        let e = permits.acquire().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Overloaded);
        assert!(e.is_transient());
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(permits.stats().rejected, 1);
    }
}
