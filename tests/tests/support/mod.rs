//! Helpers shared by some integration test binaries.

pub mod sqld;
