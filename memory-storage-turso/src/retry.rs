//! Retrying transient network failures: exponential back-off with full jitter, bounded.
//!
//! Used only in the network modes (remote server, embedded replica). What is retried is chosen
//! where it is safe: a read, and a write batch whose transaction failed *before* its
//! `COMMIT` was sent (the server rolls an unfinished transaction back, so running the batch
//! again cannot apply anything twice). A failed `COMMIT` is never retried here: its outcome is
//! unknown, and the caller (the engine's breaker and journal) handles that with a re-read.
//! After the last attempt the transient error goes up, where it counts toward the circuit
//! breaker like any other.
//!
//! The schedule is a pure function of the policy and a seed ([`Backoff`]), so tests check it
//! without sleeping; the sleeps themselves use tokio's clock, which tests can pause.

use std::time::Duration;

use memory_core::{Error, Result};

/// How transient network failures are retried. Defaults: 4 attempts in all, first back-off
/// 50 ms, doubling, capped at 2 s, full jitter (each wait is uniform in 0..=cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retrying off. 1 to 100.
    pub max_attempts: u32,
    /// Upper bound of the first wait. At most 60 s.
    pub base_delay: Duration,
    /// Upper bound of any wait. At least `base_delay`, at most 600 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The bounds hold.
    pub fn validate(&self) -> Result<()> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err(Error::invalid(
                "retry.max_attempts",
                "1 to 100",
                self.max_attempts.to_string(),
            ));
        }
        if self.base_delay > Duration::from_secs(60) {
            return Err(Error::invalid(
                "retry.base_delay",
                "at most 60 s",
                format!("{:?}", self.base_delay),
            ));
        }
        if self.max_delay < self.base_delay || self.max_delay > Duration::from_secs(600) {
            return Err(Error::invalid(
                "retry.max_delay",
                "between base_delay and 600 s",
                format!("{:?}", self.max_delay),
            ));
        }
        Ok(())
    }
}

/// The waits before each retry of one operation: wait `n` (0-based) is uniform in
/// `0..=min(max_delay, base_delay * 2^n)`, drawn from a generator seeded per operation.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    retries: u32,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy, seed: u64) -> Self {
        Self {
            policy,
            retries: 0,
            rng: seed,
        }
    }

    /// The wait before the next attempt, or `None` when the attempts are used up.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        if self.retries + 1 >= self.policy.max_attempts {
            return None;
        }
        let cap = self
            .policy
            .base_delay
            .saturating_mul(1u32 << self.retries.min(20))
            .min(self.policy.max_delay);
        self.retries += 1;
        let cap_micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        let draw = splitmix(&mut self.rng) % cap_micros.saturating_add(1);
        Some(Duration::from_micros(draw))
    }
}

/// splitmix64: a tiny seedable generator, enough for jitter.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A per-operation seed from the wall clock, so callers retrying together spread out (tests
/// of the schedule give [`Backoff::new`] a fixed seed instead).
pub(crate) fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5EED, |d| d.as_nanos() as u64)
}

/// Run `attempt` until it succeeds, fails with a non-transient error, or the policy's
/// attempts are used; waits with tokio's clock between attempts.
pub(crate) async fn retry<T, F, Fut>(policy: RetryPolicy, what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut backoff = Backoff::new(policy, seed());
    loop {
        match attempt().await {
            Err(e) if e.is_transient() => match backoff.next_delay() {
                Some(wait) => {
                    tracing::debug!(error = %e, ?wait, what, "transient failure; retrying");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(e),
            },
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_stay_under_their_caps_and_stop() {
        let policy = RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let mut b = Backoff::new(policy, 7);
        let waits: Vec<Duration> = std::iter::from_fn(|| b.next_delay()).collect();
        assert_eq!(waits.len(), 5, "6 attempts, 5 waits");
        let caps = [100, 200, 400, 500, 500];
        for (w, cap) in waits.iter().zip(caps) {
            assert!(*w <= Duration::from_millis(cap), "{w:?} > {cap} ms");
        }
        // The same seed gives the same schedule; another seed another one.
        let mut again = Backoff::new(policy, 7);
        assert_eq!(
            waits,
            std::iter::from_fn(|| again.next_delay()).collect::<Vec<_>>()
        );
        let mut other = Backoff::new(policy, 8);
        assert_ne!(
            waits,
            std::iter::from_fn(|| other.next_delay()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn one_attempt_never_waits() {
        assert_eq!(Backoff::new(RetryPolicy::none(), 1).next_delay(), None);
    }

    #[test]
    fn bounds_are_checked() {
        RetryPolicy::default().validate().unwrap();
        for bad in [
            RetryPolicy {
                max_attempts: 0,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                max_delay: Duration::from_millis(1),
                ..RetryPolicy::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_and_others_are_not() {
        let mut calls = 0;
        let r: Result<u32> = retry(RetryPolicy::default(), "t", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(Error::unavailable("down"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);

        let mut calls = 0;
        let r: Result<()> = retry(RetryPolicy::default(), "t", || {
            calls += 1;
            async { Err(Error::unavailable("still down")) }
        })
        .await;
        assert!(r.unwrap_err().is_transient());
        assert_eq!(calls, 4, "max_attempts in all");

        let mut calls = 0;
        let r: Result<()> = retry(RetryPolicy::default(), "t", || {
            calls += 1;
            async { Err(Error::conflict("no")) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1, "a permanent error is not retried");
    }
}
