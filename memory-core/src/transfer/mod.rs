//! Export and import of episodes as JSON lines: backup and restore, and moving episodes
//! between engines (for example from the local file to a remote database).
//!
//! One line holds one whole episode ([`EpisodeLine`]). The format is a superset of the bundled
//! sample data (`memory-bench/data/tau2-retail.jsonl`): the same field names, plus what an
//! exact copy needs (the episode id as a UUID, `version`, `completed_at`, per-step `seq` and
//! `timestamp`, `reflection`, `embedding`, `language`, `complexity`). Timestamps are RFC 3339
//! in UTC with exactly six fractional digits, so the engine's microsecond timestamps round-trip
//! exactly; floats are written in their shortest exact form and read back bit for bit.
//!
//! [`export`] streams every stored episode in id order and reports the last id written, so an
//! interrupted export resumes after it. [`import`] streams lines into an engine through
//! `SelfLearningMemory::import_episode`: each episode is stored atomically (never half), an
//! episode already stored identically is recognised (so re-running an interrupted import is
//! safe), and a bad line is reported with its line number and either skipped or made to stop
//! the import ([`OnBadLine`]).
//!
//! This module never holds a whole input or output in memory: one page of episodes while
//! exporting, one line while importing. It never writes to a store except through the facade.

mod derive;
mod export;
mod import;
mod line;
mod lines;

pub use derive::derive_id;
pub use export::{EXPORT_PAGE_SIZE, ExportReport, export};
pub use import::{BadLine, ImportOptions, ImportReport, OnBadLine, import, max_line_bytes};
pub use line::{EpisodeLine, LineOutcome, LineStep, parse_line, to_line};
