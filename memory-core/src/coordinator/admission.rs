//! The shared circuit breaker of one [`crate::coordinator::ResilientStore`] and the tickets its
//! calls carry.
//!
//! Owns the lock around the pure [`CircuitBreaker`] and the clock reading (tokio's
//! [`Instant`], so a paused test clock drives it). Every admitted call holds a [`Ticket`] and
//! reports its result through it; a ticket dropped unreported (the caller's future was
//! cancelled mid-call) counts a half-open probe as failed, so a probe slot is never leaked.
//! This file never does I/O and never holds its lock across an `.await`.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use crate::coordinator::breaker::{
    Admission, BreakerConfig, BreakerState, CallResult, CircuitBreaker,
};
use crate::error::Result;

/// A [`CircuitBreaker`] behind a std mutex, read with tokio's clock.
#[derive(Debug)]
pub(crate) struct SharedBreaker {
    breaker: Mutex<CircuitBreaker>,
}

impl SharedBreaker {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Self {
            breaker: Mutex::new(CircuitBreaker::new(config)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CircuitBreaker> {
        // The state machine cannot panic half-way through an update (plain arithmetic and
        // assignments), so a poisoned lock still holds a coherent breaker.
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ask to call the durable store now; `None` when the breaker refuses.
    pub(crate) fn admit(&self) -> Option<Ticket<'_>> {
        let admission = self.lock().admit(Instant::now());
        (admission != Admission::Rejected).then_some(Ticket {
            breaker: self,
            admission,
            reported: false,
        })
    }

    /// Like [`SharedBreaker::admit`] but only while the breaker is closed: for optional reads
    /// that must not take a half-open probe slot away from replay.
    pub(crate) fn admit_if_closed(&self) -> Option<Ticket<'_>> {
        let mut b = self.lock();
        let now = Instant::now();
        if b.state(now) != BreakerState::Closed {
            return None;
        }
        let admission = b.admit(now);
        (admission != Admission::Rejected).then_some(Ticket {
            breaker: self,
            admission,
            reported: false,
        })
    }

    /// The state now.
    pub(crate) fn state(&self) -> BreakerState {
        self.lock().state(Instant::now())
    }

    /// State changes so far.
    pub(crate) fn transitions(&self) -> u64 {
        self.lock().transitions()
    }

    fn record(&self, admission: Admission, result: CallResult) {
        self.lock().record(admission, result, Instant::now());
    }
}

/// Permission for one call to the durable store; report how it ended with
/// [`Ticket::report`].
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    breaker: &'a SharedBreaker,
    admission: Admission,
    reported: bool,
}

impl Ticket<'_> {
    /// Report the call's result (only transient errors count against the store).
    pub(crate) fn report<T>(mut self, result: &Result<T>) {
        self.reported = true;
        self.breaker.record(self.admission, CallResult::of(result));
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        // An abandoned probe must still end its half-open slot; it says nothing good about
        // the store, so it counts as failed. An abandoned ordinary call counts as nothing.
        if !self.reported && self.admission == Admission::Probe {
            self.breaker
                .record(self.admission, CallResult::TransientFailure);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn breaker() -> SharedBreaker {
        SharedBreaker::new(BreakerConfig {
            failure_threshold: 1,
            cool_down: Duration::from_secs(1),
            half_open_probes: 1,
        })
    }

    fn fail(b: &SharedBreaker) {
        let t = b.admit().unwrap();
        t.report::<()>(&Err(crate::Error::unavailable("down")));
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_its_slot_by_reopening() {
        let b = breaker();
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(1)).await;
        let probe = b.admit().unwrap();
        assert!(b.admit().is_none(), "the only probe slot is taken");
        drop(probe);
        assert_eq!(b.state(), BreakerState::Open, "fresh cool-down");
        tokio::time::advance(Duration::from_secs(1)).await;
        let probe = b.admit().unwrap();
        probe.report(&Ok(()));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn admit_if_closed_never_takes_a_probe_slot() {
        let b = breaker();
        fail(&b);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.admit_if_closed().is_none());
        assert!(b.admit().is_some(), "the probe slot is still free");
    }
}
