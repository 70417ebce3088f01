//! The circuit breaker on the durable store: a pure state machine with an injected clock.
//!
//! Closed → Open after `failure_threshold` consecutive transient failures; Open → HalfOpen once
//! `cool_down` has passed; HalfOpen admits at most `half_open_probes` calls at a time and closes
//! on the first success, reopening (for a fresh cool-down) on a transient failure. Only
//! transient errors ([`crate::Error::is_transient`]) count: bad input or a conflict says nothing
//! about the store's health. This type does no I/O and reads no clock of its own.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// Breaker settings; plain data with documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the breaker. Default 5.
    pub failure_threshold: u32,
    /// How long the breaker stays open before probing. Default 5 s.
    pub cool_down: Duration,
    /// Calls admitted at once while half-open. Default 1.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(5),
            half_open_probes: 1,
        }
    }
}

impl BreakerConfig {
    /// Every bound must be at least 1 (and the cool-down non-zero).
    pub fn validate(&self) -> Result<()> {
        if self.failure_threshold == 0 {
            return Err(Error::invalid(
                "breaker.failure_threshold",
                "at least 1",
                "0",
            ));
        }
        if self.half_open_probes == 0 {
            return Err(Error::invalid(
                "breaker.half_open_probes",
                "at least 1",
                "0",
            ));
        }
        if self.cool_down.is_zero() {
            return Err(Error::invalid("breaker.cool_down", "more than 0", "0"));
        }
        Ok(())
    }
}

/// The state of a breaker, as reported in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls pass; failures are counted.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// A bounded number of probe calls pass.
    HalfOpen,
}

/// Whether a call may go to the durable store now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; report the result with [`CircuitBreaker::record`].
    Allowed,
    /// Go ahead as a half-open probe; report the result with [`CircuitBreaker::record`].
    Probe,
    /// Do not call the store (open, or all probe slots taken).
    Rejected,
}

/// What a call that was admitted ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// The store answered (even with a non-transient error such as `Conflict`).
    Healthy,
    /// A transient failure: the store may be down.
    TransientFailure,
}

impl CallResult {
    /// Classify a store call's result.
    pub fn of<T>(result: &Result<T>) -> Self {
        match result {
            Err(e) if e.is_transient() => CallResult::TransientFailure,
            _ => CallResult::Healthy,
        }
    }
}

/// The breaker itself. Callers keep it behind a lock of their choice.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probes_in_flight: u32,
    transitions: u64,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            opened_at: None,
            probes_in_flight: 0,
            transitions: 0,
        }
    }

    /// The current state (after applying any cool-down that has ended by `now`).
    pub fn state(&mut self, now: Instant) -> BreakerState {
        self.tick(now);
        self.state
    }

    /// State changes so far.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    fn set(&mut self, state: BreakerState, now: Instant) {
        if self.state != state {
            self.transitions += 1;
            tracing::info!(from = ?self.state, to = ?state, "circuit breaker transition");
        }
        self.state = state;
        match state {
            BreakerState::Open => self.opened_at = Some(now),
            BreakerState::Closed => {
                self.opened_at = None;
                self.consecutive_failures = 0;
            }
            BreakerState::HalfOpen => {}
        }
        self.probes_in_flight = 0;
    }

    fn tick(&mut self, now: Instant) {
        if self.state == BreakerState::Open
            && let Some(at) = self.opened_at
            && now.saturating_duration_since(at) >= self.config.cool_down
        {
            self.set(BreakerState::HalfOpen, now);
        }
    }

    /// Ask before calling the store.
    pub fn admit(&mut self, now: Instant) -> Admission {
        self.tick(now);
        match self.state {
            BreakerState::Closed => Admission::Allowed,
            BreakerState::Open => Admission::Rejected,
            BreakerState::HalfOpen => {
                if self.probes_in_flight < self.config.half_open_probes {
                    self.probes_in_flight += 1;
                    Admission::Probe
                } else {
                    Admission::Rejected
                }
            }
        }
    }

    /// Report how an admitted call ended.
    pub fn record(&mut self, admission: Admission, result: CallResult, now: Instant) {
        match (admission, result) {
            (Admission::Rejected, _) => {}
            (Admission::Probe, CallResult::Healthy) => {
                if self.state == BreakerState::HalfOpen {
                    self.set(BreakerState::Closed, now);
                }
            }
            (Admission::Probe, CallResult::TransientFailure) => {
                if self.state == BreakerState::HalfOpen {
                    self.set(BreakerState::Open, now);
                }
            }
            (Admission::Allowed, CallResult::Healthy) => {
                if self.state == BreakerState::Closed {
                    self.consecutive_failures = 0;
                }
            }
            (Admission::Allowed, CallResult::TransientFailure) => {
                if self.state == BreakerState::Closed {
                    self.consecutive_failures += 1;
                    if self.consecutive_failures >= self.config.failure_threshold {
                        self.set(BreakerState::Open, now);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: 3,
            cool_down: Duration::from_secs(10),
            half_open_probes: 2,
        })
    }

    fn fail(b: &mut CircuitBreaker, now: Instant) {
        let a = b.admit(now);
        b.record(a, CallResult::TransientFailure, now);
    }

    #[test]
    fn opens_after_consecutive_transient_failures_only() {
        let t0 = Instant::now();
        let mut b = breaker();
        fail(&mut b, t0);
        fail(&mut b, t0);
        let a = b.admit(t0);
        b.record(a, CallResult::Healthy, t0); // resets the run
        fail(&mut b, t0);
        fail(&mut b, t0);
        assert_eq!(b.state(t0), BreakerState::Closed);
        fail(&mut b, t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert_eq!(b.admit(t0), Admission::Rejected);
        assert_eq!(b.transitions(), 1);
    }

    #[test]
    fn non_transient_errors_do_not_count() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..10 {
            let a = b.admit(t0);
            let r: Result<()> = Err(Error::conflict("stale"));
            b.record(a, CallResult::of(&r), t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
    }

    #[test]
    fn half_open_admits_a_bounded_number_of_probes() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            fail(&mut b, t0);
        }
        let t1 = t0 + Duration::from_secs(9);
        assert_eq!(b.admit(t1), Admission::Rejected, "still cooling down");
        let t2 = t0 + Duration::from_secs(10);
        assert_eq!(b.state(t2), BreakerState::HalfOpen);
        assert_eq!(b.admit(t2), Admission::Probe);
        assert_eq!(b.admit(t2), Admission::Probe);
        assert_eq!(b.admit(t2), Admission::Rejected, "probe slots full");
    }

    #[test]
    fn a_successful_probe_closes_a_failed_one_reopens() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            fail(&mut b, t0);
        }
        let t1 = t0 + Duration::from_secs(10);
        let p = b.admit(t1);
        b.record(p, CallResult::TransientFailure, t1);
        assert_eq!(b.state(t1), BreakerState::Open, "failed probe reopens");
        assert_eq!(
            b.state(t1 + Duration::from_secs(9)),
            BreakerState::Open,
            "with a fresh cool-down"
        );
        let t2 = t1 + Duration::from_secs(10);
        let p = b.admit(t2);
        assert_eq!(p, Admission::Probe);
        b.record(p, CallResult::Healthy, t2);
        assert_eq!(b.state(t2), BreakerState::Closed);
        assert_eq!(b.admit(t2), Admission::Allowed);
        // Closed -> Open -> HalfOpen -> Open -> HalfOpen -> Closed
        assert_eq!(b.transitions(), 5);
    }

    #[test]
    fn config_is_validated() {
        BreakerConfig::default().validate().unwrap();
        let bad = BreakerConfig {
            failure_threshold: 0,
            ..BreakerConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().violation().unwrap().field,
            "breaker.failure_threshold"
        );
    }
}
