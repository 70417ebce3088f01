//! Benchmarks, the demo and the load-test tools of the episodic-memory engine.
//!
//! The library part holds what the binary and the criterion benches share: the sample data
//! format ([`dataset`]). It never defines engine behaviour of its own.

pub mod budget_cmd;
pub mod dataset;
pub mod demo;
pub mod embedded;
pub mod heap;
pub mod index_cmd;
pub mod load;
pub mod open_cmd;
pub mod synthetic;
pub mod transfer_cmd;
pub mod workload;
pub mod write_cmd;
