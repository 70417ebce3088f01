//! [`ResilienceConfig`]: the settings of a [`crate::coordinator::ResilientStore`].
//!
//! Plain data with documented defaults and one `validate()`; it never reads the environment
//! or a clock.

use crate::coordinator::breaker::BreakerConfig;
use crate::error::{Error, Result};

/// How a [`crate::coordinator::ResilientStore`] reacts to an unavailable durable store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResilienceConfig {
    /// The circuit breaker on the durable store (see [`BreakerConfig`] for its defaults:
    /// 5 consecutive transient failures open it, 5 s cool-down, 1 half-open probe).
    pub breaker: BreakerConfig,
    /// Most journaled writes held at once. A write that would exceed it fails with
    /// `Unavailable` (transient) and is not journaled. Default 100,000.
    pub max_journal_entries: u64,
    /// Journal entries read and applied per round of `replay`; the applied prefix is removed
    /// from the journal after each round. Default 256.
    pub replay_batch_size: usize,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            breaker: BreakerConfig::default(),
            max_journal_entries: 100_000,
            replay_batch_size: 256,
        }
    }
}

impl ResilienceConfig {
    /// The breaker's bounds hold, and both sizes are at least 1.
    pub fn validate(&self) -> Result<()> {
        self.breaker.validate()?;
        if self.max_journal_entries == 0 {
            return Err(Error::invalid(
                "resilience.max_journal_entries",
                "at least 1",
                "0",
            ));
        }
        if self.replay_batch_size == 0 {
            return Err(Error::invalid(
                "resilience.replay_batch_size",
                "at least 1",
                "0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_sizes_are_not() {
        let c = ResilienceConfig::default();
        c.validate().unwrap();
        assert_eq!(c.max_journal_entries, 100_000);
        assert_eq!(c.replay_batch_size, 256);
        let bad = ResilienceConfig {
            replay_batch_size: 0,
            ..c
        };
        assert_eq!(
            bad.validate().unwrap_err().violation().unwrap().field,
            "resilience.replay_batch_size"
        );
        let bad = ResilienceConfig {
            max_journal_entries: 0,
            ..c
        };
        assert_eq!(
            bad.validate().unwrap_err().violation().unwrap().field,
            "resilience.max_journal_entries"
        );
    }
}
