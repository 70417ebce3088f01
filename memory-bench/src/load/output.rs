//! Writing a finished run into its report directory: `report.md`, `report.json`,
//! `samples.csv` (the raw samples kept for the plots) and the SVG plots, one latency-over-time
//! and one histogram per operation that was called, plus the breaker/journal timeline when
//! the breaker moved or an outage was injected.

use std::fmt::Write as _;
use std::path::Path;

use memory_core::{Error, Result};

use crate::load::markdown;
use crate::load::plot::{self, TimelinePoint};
use crate::load::recorder::OpRecord;
use crate::load::report::Report;

/// A finished run: the report and the recorder's data behind its plots.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Per operation: histogram, windows, samples.
    pub records: Vec<OpRecord>,
}

/// The plots of `outcome`, as `(file name, SVG text)`.
pub fn plots(outcome: &Outcome) -> Vec<(String, String)> {
    let r = &outcome.report;
    let spans: Vec<_> = r.timeline.outage.iter().cloned().collect();
    let mut out = Vec::new();
    for rec in outcome.records.iter().filter(|rec| rec.calls() > 0) {
        let op = rec.op.as_str();
        out.push((
            format!("{op}-over-time.svg"),
            plot::latency_over_time(
                op,
                &rec.samples,
                &rec.windows,
                rec.calls(),
                r.duration_s,
                &spans,
            ),
        ));
        out.push((
            format!("{op}-histogram.svg"),
            plot::latency_histogram(op, &rec.latency),
        ));
    }
    let t = &r.timeline;
    if t.outage.is_some() || t.journal_depth_peak > 0 || !t.changes.is_empty() {
        let points: Vec<TimelinePoint> = t
            .points
            .iter()
            .map(|p| TimelinePoint {
                at_s: p.at_s,
                breaker: match p.breaker {
                    Some("open") => 2,
                    Some("half_open") => 1,
                    _ => 0,
                },
                journal_depth: p.journal_depth,
            })
            .collect();
        out.push((
            "engine-timeline.svg".into(),
            plot::engine_timeline(&points, r.duration_s, &spans),
        ));
    }
    out
}

/// The raw samples as CSV: `op,at_s,latency_ms,ok`.
pub fn samples_csv(records: &[OpRecord]) -> String {
    let mut s = String::from("op,at_s,latency_ms,ok\n");
    for rec in records {
        let mut samples = rec.samples.clone();
        samples.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        for x in samples {
            let _ = writeln!(
                s,
                "{},{:.6},{:.6},{}",
                rec.op.as_str(),
                x.at_s,
                x.latency_ns as f64 / 1e6,
                x.ok
            );
        }
    }
    s
}

fn write_file(dir: &Path, name: &str, body: &str) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, body)
        .map_err(|e| Error::storage(format!("cannot write {}", path.display())).with_source(e))
}

/// Write every file of `outcome` into `dir` (created if missing); lists them in the report.
pub fn write(outcome: &mut Outcome, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::storage(format!("cannot create {}", dir.display())).with_source(e))?;
    let plots = plots(outcome);
    let mut files: Vec<String> = plots.iter().map(|(name, _)| name.clone()).collect();
    files.push("samples.csv".into());
    outcome.report.files = files;
    for (name, svg) in &plots {
        write_file(dir, name, svg)?;
    }
    write_file(dir, "samples.csv", &samples_csv(&outcome.records))?;
    let json = serde_json::to_string_pretty(&outcome.report)
        .map_err(|e| Error::storage("cannot encode the report").with_source(e))?;
    write_file(dir, "report.json", &json)?;
    write_file(dir, "report.md", &markdown::render(&outcome.report))
}
