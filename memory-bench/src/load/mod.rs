//! `memory-bench load`: the load-test tool. Five scenarios from the production review
//! (`completions`, `queries`, `sustained`, `burst`, `outage`) run against the embedded
//! default through the public facade; the run is measured per operation on the client side
//! (HDR histograms, errors by kind, bounded raw samples) and from the engine's `metrics()`,
//! graded green/yellow/red against thresholds, and written as Markdown, JSON, CSV and SVG.
//!
//! It measures and never changes engine behaviour: the only engine-side hook it uses is the
//! core's fault injector (`Faulty`) around the libsql store in the `outage` scenario.

pub mod client;
pub mod command;
pub mod engine;
pub mod histogram;
pub mod items;
pub mod machine;
pub mod markdown;
pub mod options;
pub mod output;
pub mod plot;
pub mod preload;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod sampler;
pub mod samples;
pub mod scenario;
pub mod svg;
pub mod verdict;

pub use command::run;
pub use options::{LoadOptions, Scenario};
pub use output::Outcome;
pub use runner::run_load;
