//! The coordinator: what keeps the engine serving while a store misbehaves.
//!
//! - `breaker`: the pure circuit-breaker state machine ([`CircuitBreaker`]).
//! - `resilient`: [`ResilientStore`], a [`crate::store::DurableStore`] that sends writes to the
//!   [`crate::store::Journal`] while the durable store is out, and `replay` drains it back.
//! - `admission`, `write`, `landing`, `view`, `overlay`, `replay`, `config`: its parts (breaker
//!   tickets, the borrowed form of a write, the idempotency rules of replay, the effective state
//!   of a journaled episode, the in-memory mirror of the journal, the drain, the settings).
//!
//! This module declares and re-exports; the logic lives in the files.

mod admission;
mod breaker;
mod config;
mod landing;
mod overlay;
mod replay;
mod resilient;
mod view;
mod write;

pub use breaker::{Admission, BreakerConfig, BreakerState, CallResult, CircuitBreaker};
pub use config::ResilienceConfig;
pub use replay::ReplayReport;
pub use resilient::ResilientStore;
