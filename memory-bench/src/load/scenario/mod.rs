//! The scenarios of `memory-bench load`, one per file; each drives a [`Client`] and leaves
//! measuring to its recorder.
//!
//! [`Client`]: crate::load::client::Client

pub mod burst;
pub mod completions;
pub mod mixed;
pub mod outage;
pub mod queries;
pub mod tasks;
