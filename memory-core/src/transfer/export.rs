//! Export: every stored episode, one JSON line each, in ascending id order.
//!
//! Pages through `SelfLearningMemory::scan_episodes` (durable store reads only), so at most
//! one page of episodes is in memory. The writer is called synchronously from the returned
//! future: give it a buffered file or memory, and drive the future from a thread that may
//! block (the CLI runs it under `spawn_blocking`).

use std::io::Write;

use crate::SelfLearningMemory;
use crate::error::{Error, Result};
use crate::id::EpisodeId;

use super::line::to_line;

/// Episodes read per page while exporting (less if `limits.max_page_size` is smaller).
pub const EXPORT_PAGE_SIZE: usize = 100;

/// What [`export`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Lines (episodes) written.
    pub exported: u64,
    /// The id of the last episode written: pass it as `after` to continue an interrupted
    /// export. `None` when nothing was written.
    pub last_id: Option<EpisodeId>,
}

/// Write every stored episode with an id greater than `after` (all when `None`) to `out`, one
/// line each, in ascending id order, then flush `out`.
///
/// Each line is handed to the writer whole, and the writer is flushed after every page. An
/// episode changed while the export runs is written as it was when its page was read; one
/// created meanwhile is included if its id is beyond the page being read (new ids are
/// time-ordered, imported ones need not be). An error says how many lines were handed to the
/// writer and the last id among them. A failed write can leave an incomplete line at the end
/// of the output, and a buffering writer may not have passed on every line counted, so resume
/// after the last complete line of the output itself (what the CLI's `--resume` does).
pub async fn export(
    memory: &SelfLearningMemory,
    mut out: impl Write,
    after: Option<EpisodeId>,
) -> Result<ExportReport> {
    let page_size = memory.config().limits.max_page_size.min(EXPORT_PAGE_SIZE);
    let mut report = ExportReport::default();
    let mut cursor = after;
    loop {
        let page = memory
            .scan_episodes(cursor, page_size)
            .await
            .map_err(|e| stopped(&report, e))?;
        for episode in &page.items {
            let mut line = to_line(episode).map_err(|e| stopped(&report, e))?;
            line.push('\n');
            out.write_all(line.as_bytes()).map_err(|e| {
                stopped(
                    &report,
                    Error::storage("cannot write the export").with_source(e),
                )
            })?;
            report.exported += 1;
            report.last_id = Some(episode.id);
        }
        out.flush().map_err(|e| {
            stopped(
                &report,
                Error::storage("cannot flush the export").with_source(e),
            )
        })?;
        match page.next_after {
            Some(next) => cursor = Some(next),
            None => return Ok(report),
        }
    }
}

/// `cause`, said to have stopped an export after `report`'s progress.
fn stopped(report: &ExportReport, cause: Error) -> Error {
    let resume = match report.last_id {
        Some(id) => format!("last id written {id}; resume after the last complete line"),
        None => "nothing written".to_owned(),
    };
    Error::new(
        cause.kind(),
        format!(
            "export stopped after {} episodes ({resume})",
            report.exported
        ),
    )
    .transient(cause.is_transient())
    .with_source(cause)
}
