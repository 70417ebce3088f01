//! Import: JSON lines into an engine, one episode at a time, each stored whole or not at all.
//!
//! Reads one line at a time (bounded by [`ImportOptions::max_line_bytes`]), parses it
//! ([`super::parse_line`]) and stores it with `SelfLearningMemory::import_episode`, which
//! validates it like any write and recognises an episode already stored identically. A line
//! that cannot be parsed, breaks a limit, or names a stored episode with different content is
//! a *bad line*: reported with its number and skipped, or the end of the import
//! ([`OnBadLine`]). Any other failure (the store unreachable, the input unreadable) always ends
//! the import. Everything stored before the end stays stored, so resuming is running the same
//! import again. The reader is called synchronously from the returned future, like the writer
//! of [`super::export`].

use std::io::BufRead;

use crate::SelfLearningMemory;
use crate::error::{Error, ErrorKind, Result};
use crate::id::EpisodeId;
use crate::limits::Limits;

use super::line::parse_line;
use super::lines::{self, Read};

/// What to do with a bad line (unparseable, over a limit, or in conflict with a stored
/// episode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnBadLine {
    /// Stop the import with an error naming the line; the lines before it stay imported.
    #[default]
    Abort,
    /// Report the line in [`ImportReport`] and go on with the next.
    Skip,
}

/// How [`import`] treats its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Skip bad lines or stop at the first. Default [`OnBadLine::Abort`]: nothing is left out
    /// unless asked for.
    pub on_bad_line: OnBadLine,
    /// How many bad lines [`ImportReport::bad_lines`] keeps (the first ones, in input order);
    /// the rest are counted in [`ImportReport::skipped`] only. Default 1,000.
    pub max_reported_bad_lines: usize,
    /// The longest line read, in bytes; a longer one is a bad line and is never held in memory
    /// whole. Default `None`: [`max_line_bytes`] of the engine's limits, which every exported
    /// line of an episode within those limits fits.
    pub max_line_bytes: Option<usize>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            on_bad_line: OnBadLine::Abort,
            max_reported_bad_lines: 1_000,
            max_line_bytes: None,
        }
    }
}

impl ImportOptions {
    /// `max_line_bytes`, when given, must be at least 1.
    pub fn validate(&self) -> Result<()> {
        if self.max_line_bytes == Some(0) {
            return Err(Error::invalid("max_line_bytes", "at least 1", "0"));
        }
        Ok(())
    }
}

/// The longest line an episode within `limits` can take when exported: every character or
/// payload byte counted at six bytes (the longest JSON escape), plus room for field names,
/// numbers and timestamps. Sample-style lines holding step inputs as JSON values with extra
/// whitespace can be longer; give [`ImportOptions::max_line_bytes`] for those.
pub fn max_line_bytes(limits: &Limits) -> usize {
    let steps = limits.max_steps;
    let text_chars = limits
        .max_description_chars
        .saturating_add(limits.max_text_chars.saturating_mul(2))
        .saturating_add(
            limits
                .max_tags
                .saturating_mul(limits.max_tag_chars.saturating_add(3)),
        )
        .saturating_add(limits.max_name_chars.saturating_mul(4));
    let step_chars = limits
        .max_step_payload_bytes
        .saturating_mul(2)
        .saturating_add(limits.max_name_chars.saturating_mul(2));
    text_chars
        .saturating_add(steps.saturating_mul(step_chars))
        .saturating_mul(6)
        .saturating_add(steps.saturating_mul(256))
        .saturating_add(limits.embedding_dimension.unwrap_or(0).saturating_mul(24))
        .saturating_add(4_096)
}

/// One bad line: its 1-based number and why it was refused.
#[derive(Debug, Clone)]
pub struct BadLine {
    /// The line number in the input, counting from 1 (blank lines count).
    pub line: u64,
    /// The episode the line describes, when it could be read.
    pub episode: Option<EpisodeId>,
    /// Why: `InvalidInput` (not a record, or over a limit; the violation names the field) or
    /// `Conflict` (a different episode is stored under the same id).
    pub error: Error,
}

/// What [`import`] did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Episodes stored by this import.
    pub imported: u64,
    /// Episodes that were already stored identically (an earlier run of the same import).
    pub already_present: u64,
    /// Blank lines, ignored.
    pub blank: u64,
    /// Bad lines skipped ([`OnBadLine::Skip`]), conflicts included.
    pub skipped: u64,
    /// Of the skipped lines, those naming an episode stored with different content.
    pub conflicts: u64,
    /// The first [`ImportOptions::max_reported_bad_lines`] skipped lines, in input order.
    /// When `skipped` is larger, the rest are counted but not listed.
    pub bad_lines: Vec<BadLine>,
}

/// Import every line of `input` into `memory`.
///
/// Returns the report when the input is exhausted. With [`OnBadLine::Abort`], the first bad
/// line ends the import with its error kind and a message naming the line number and how many
/// episodes were imported before it; a failure that is not about the line (an unreachable
/// store, an unreadable input) ends it the same way in either mode, keeping its transience.
/// The episodes before the stop stay stored and are recognised (`already_present`) by the
/// next run, so an interrupted or aborted import is resumed by running it again.
pub async fn import(
    memory: &SelfLearningMemory,
    mut input: impl BufRead,
    options: ImportOptions,
) -> Result<ImportReport> {
    options.validate()?;
    let max = options
        .max_line_bytes
        .unwrap_or_else(|| max_line_bytes(&memory.config().limits));
    let mut report = ImportReport::default();
    let mut buf = Vec::new();
    loop {
        let number = report.lines + 1;
        let mut episode_id = None;
        let read = lines::read_line(&mut input, &mut buf, max).map_err(|e| {
            stopped(
                &report,
                number,
                Error::storage("cannot read the import input").with_source(e),
            )
        })?;
        let result = match read {
            Read::End => return Ok(report),
            Read::TooLong(len) => Err(Error::invalid(
                "line",
                format!("at most {max} bytes (max_line_bytes)"),
                format!("{len} bytes"),
            )),
            Read::Line => match std::str::from_utf8(&buf) {
                Err(e) => Err(Error::invalid(
                    "line",
                    "UTF-8 text",
                    format!("an invalid byte after {} bytes", e.valid_up_to()),
                )),
                Ok(text) if text.trim().is_empty() => {
                    report.lines = number;
                    report.blank += 1;
                    continue;
                }
                Ok(text) => match parse_line(text) {
                    Ok(episode) => {
                        episode_id = Some(episode.id);
                        memory.import_episode(&episode).await
                    }
                    Err(e) => Err(e),
                },
            },
        };
        report.lines = number;
        match result {
            Ok(true) => report.imported += 1,
            Ok(false) => report.already_present += 1,
            Err(e) if !is_bad_line(&e) || options.on_bad_line == OnBadLine::Abort => {
                return Err(stopped(&report, number, e));
            }
            Err(e) => {
                report.skipped += 1;
                if e.kind() == ErrorKind::Conflict {
                    report.conflicts += 1;
                }
                if report.bad_lines.len() < options.max_reported_bad_lines {
                    report.bad_lines.push(BadLine {
                        line: number,
                        episode: episode_id,
                        error: e,
                    });
                }
            }
        }
    }
}

/// Whether `e` is about the line itself (so [`OnBadLine::Skip`] may skip it) rather than about
/// the stores or the input.
fn is_bad_line(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Conflict)
}

/// `cause`, said to have stopped the import at line `number` after `report`'s progress.
fn stopped(report: &ImportReport, number: u64, cause: Error) -> Error {
    let next = if is_bad_line(&cause) {
        "fix or remove the line and run the same import again"
    } else {
        "run the same import again once the cause is fixed"
    };
    Error::new(
        cause.kind(),
        format!(
            "import stopped at line {number}; the {} episodes imported and {} already present \
             before it stay stored; {next} (it recognises what is stored)",
            report.imported, report.already_present
        ),
    )
    .transient(cause.is_transient())
    .with_source(cause)
}
