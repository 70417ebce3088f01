//! The `export` and `import` commands: back up the embedded default as JSON lines, restore it,
//! or move episodes to another engine. `memory_core::transfer` does the work; this module
//! parses flags, opens files, finds where an interrupted export stopped, and prints reports.
//!
//! Reports go to stderr, so `export --out -` leaves stdout to the episodes. File reading and
//! writing run on a blocking thread (`spawn_blocking`), never on the runtime's workers.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memory_core::transfer::{self, ExportReport, ImportOptions, ImportReport, OnBadLine};
use memory_core::{EpisodeId, Error, Result, SelfLearningMemory};

use crate::embedded::open_default;

/// Buffer size of the export writer and the import reader.
const BUFFER: usize = 1 << 20;

/// Where `export` continues from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Start {
    /// From the first episode, into a new (or truncated) output.
    Beginning,
    /// After this id, appending to the output.
    After(EpisodeId),
    /// After the last complete line already in the output file, appending to it.
    Resume,
}

fn file_error(what: &str, path: &Path, e: io::Error) -> Error {
    Error::storage(format!("cannot {what} {}", path.display())).with_source(e)
}

/// `export [--out FILE|-] [--after ID | --resume]`.
pub async fn export(args: &[String]) -> Result<()> {
    let mut out: Option<PathBuf> = None;
    let mut start = Start::Beginning;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--out" => {
                let v = args
                    .get(i + 1)
                    .ok_or_else(|| Error::invalid("--out", "a file name or -", "missing"))?;
                out = (v != "-").then(|| PathBuf::from(v));
                i += 1;
            }
            "--after" if start == Start::Beginning => {
                let v = args
                    .get(i + 1)
                    .ok_or_else(|| Error::invalid("--after", "an episode id", "missing"))?;
                start = Start::After(v.parse()?);
                i += 1;
            }
            "--resume" if start == Start::Beginning => start = Start::Resume,
            "--after" | "--resume" => {
                return Err(Error::invalid(
                    args[i].clone(),
                    "one of --after and --resume",
                    "both",
                ));
            }
            other => {
                return Err(Error::invalid(
                    "argument",
                    "--out, --after or --resume",
                    other,
                ));
            }
        }
        i += 1;
    }

    if out.is_none() && start == Start::Resume {
        return Err(Error::invalid(
            "--resume",
            "an output file (--out FILE)",
            "standard output",
        ));
    }
    // The engine first: an output file is created (or cut) only once there is data to read.
    let memory = open_default().await?;
    let result = match output(out.as_deref(), &start) {
        Ok((writer, after)) => {
            eprintln!(
                "exporting {} from {}",
                match after {
                    Some(id) => format!("the episodes after {id}"),
                    None => "every episode".to_owned(),
                },
                memory.config().data_dir.display()
            );
            let result = blocking(&memory, move |m| async move {
                transfer::export(&m, BufWriter::with_capacity(BUFFER, writer), after).await
            })
            .await;
            if let (Err(_), Some(path)) = (&result, &out) {
                eprintln!(
                    "to continue: memory-bench export --out {} --resume",
                    path.display()
                );
            }
            result
        }
        Err(e) => Err(e),
    };
    let closed = memory.shutdown().await;
    print_export(&result?, out.as_deref());
    closed
}

/// The writer of `export` and the id it continues after.
fn output(out: Option<&Path>, start: &Start) -> Result<(Box<dyn Write + Send>, Option<EpisodeId>)> {
    Ok(match (out, start) {
        (None, Start::After(id)) => (Box::new(io::stdout()), Some(*id)),
        (None, _) => (Box::new(io::stdout()), None),
        (Some(path), Start::Beginning) => (
            Box::new(File::create(path).map_err(|e| file_error("create", path, e))?),
            None,
        ),
        (Some(path), Start::After(id)) => (Box::new(append_to(path)?.0), Some(*id)),
        (Some(path), Start::Resume) => {
            let (file, last) = append_to(path)?;
            let after = last.map(|line| last_id(path, &line)).transpose()?;
            (Box::new(file), after)
        }
    })
}

fn print_export(report: &ExportReport, out: Option<&Path>) {
    match (report.last_id, out) {
        (None, _) => eprintln!("exported 0 episodes"),
        (Some(id), Some(path)) => eprintln!(
            "exported {} episodes to {}; last id {id} (later: export --out {} --resume)",
            report.exported,
            path.display(),
            path.display()
        ),
        (Some(id), None) => eprintln!(
            "exported {} episodes; last id {id} (later: export --after {id})",
            report.exported
        ),
    }
}

/// Open `path` for appending (creating it if missing). A partial last line, left by an
/// interrupted export, is cut off first. Returns the file and its last complete non-blank
/// line, if any.
fn append_to(path: &Path) -> Result<(File, Option<Vec<u8>>)> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| file_error("open", path, e))?;
    let (complete, last) =
        last_complete_line(&mut file).map_err(|e| file_error("read", path, e))?;
    let len = file
        .seek(SeekFrom::End(0))
        .map_err(|e| file_error("read", path, e))?;
    if complete < len {
        eprintln!(
            "dropping a partial last line ({} bytes) left by an interrupted export",
            len - complete
        );
        file.set_len(complete)
            .map_err(|e| file_error("truncate", path, e))?;
    }
    file.seek(SeekFrom::Start(complete))
        .map_err(|e| file_error("seek in", path, e))?;
    Ok((file, last))
}

/// The episode id on `line`, the last complete line of the export file `path`: the export
/// writes ids in ascending order, so the export continues after it.
fn last_id(path: &Path, line: &[u8]) -> Result<EpisodeId> {
    let episode = transfer::parse_line(&String::from_utf8_lossy(line)).map_err(|e| {
        Error::invalid(
            format!("the last complete line of {}", path.display()),
            "an exported episode",
            e.to_string(),
        )
    })?;
    Ok(episode.id)
}

/// The length of the longest prefix of `file` that ends with a newline, and the last non-blank
/// line within it (without its line end). Reads backwards from the end, a chunk at a time.
fn last_complete_line(file: &mut (impl Read + Seek)) -> io::Result<(u64, Option<Vec<u8>>)> {
    let len = file.seek(SeekFrom::End(0))?;
    let Some(newline) = rfind_newline(file, len)? else {
        return Ok((0, None));
    };
    let complete = newline + 1;
    let mut end = newline;
    loop {
        let start = rfind_newline(file, end)?.map_or(0, |p| p + 1);
        let mut line = vec![0; (end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut line)?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            return Ok((complete, Some(line)));
        }
        if start == 0 {
            return Ok((complete, None));
        }
        end = start - 1;
    }
}

/// The position of the last `\n` before byte `before`, if any.
fn rfind_newline(file: &mut (impl Read + Seek), before: u64) -> io::Result<Option<u64>> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut end = before;
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let buf = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(buf)?;
        if let Some(i) = buf.iter().rposition(|b| *b == b'\n') {
            return Ok(Some(start + i as u64));
        }
        end = start;
    }
    Ok(None)
}

/// `import FILE|- [--on-bad-line skip|abort]`.
pub async fn import(args: &[String]) -> Result<()> {
    let mut input: Option<String> = None;
    let mut options = ImportOptions::default();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--on-bad-line" => {
                options.on_bad_line = match args.get(i + 1).map(String::as_str) {
                    Some("skip") => OnBadLine::Skip,
                    Some("abort") => OnBadLine::Abort,
                    other => {
                        return Err(Error::invalid(
                            "--on-bad-line",
                            "skip or abort",
                            format!("{other:?}"),
                        ));
                    }
                };
                i += 1;
            }
            file if input.is_none() && (file == "-" || !file.starts_with('-')) => {
                input = Some(file.to_owned());
            }
            other => {
                return Err(Error::invalid(
                    "argument",
                    "one input file (or -) and --on-bad-line",
                    other,
                ));
            }
        }
        i += 1;
    }
    let input = input.ok_or_else(|| Error::invalid("FILE", "an input file or -", "missing"))?;
    let reader: Box<dyn Read + Send> = if input == "-" {
        Box::new(io::stdin())
    } else {
        let path = Path::new(&input);
        Box::new(File::open(path).map_err(|e| file_error("open", path, e))?)
    };
    let memory = open_default().await?;
    eprintln!(
        "importing {input} into {}",
        memory.config().data_dir.display()
    );
    let result = blocking(&memory, move |m| async move {
        transfer::import(&m, BufReader::with_capacity(BUFFER, reader), options).await
    })
    .await;
    let closed = memory.shutdown().await;
    print_import(&result?);
    closed
}

fn print_import(r: &ImportReport) {
    eprintln!(
        "read {} lines: {} imported, {} already present, {} skipped ({} conflicts), {} blank",
        r.lines, r.imported, r.already_present, r.skipped, r.conflicts, r.blank
    );
    for bad in &r.bad_lines {
        match bad.episode {
            Some(id) => eprintln!("  line {} (episode {id}): {}", bad.line, bad.error),
            None => eprintln!("  line {}: {}", bad.line, bad.error),
        }
    }
    let unlisted = r.skipped.saturating_sub(r.bad_lines.len() as u64);
    if unlisted > 0 {
        eprintln!("  … and {unlisted} more bad lines (only the first ones are listed)");
    }
}

/// Run `work` (which does synchronous file I/O) on a blocking thread, driving its future
/// there with the runtime's handle; it gets its own handle to the engine.
async fn blocking<T, F, Fut>(memory: &SelfLearningMemory, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(SelfLearningMemory) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T>>,
{
    let memory = memory.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work(memory)))
        .await
        .map_err(|e| Error::storage("the transfer task panicked").with_source(e))?
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn last(bytes: &[u8]) -> (u64, Option<String>) {
        let (n, line) = last_complete_line(&mut Cursor::new(bytes)).unwrap();
        (n, line.map(|l| String::from_utf8(l).unwrap()))
    }

    #[test]
    fn the_last_complete_line_ignores_a_partial_tail_and_blank_lines() {
        assert_eq!(last(b""), (0, None));
        assert_eq!(last(b"partial"), (0, None));
        assert_eq!(last(b"a\nb\n"), (4, Some("b".into())));
        assert_eq!(last(b"a\nb\npart"), (4, Some("b".into())));
        assert_eq!(last(b"a\r\nb\r\n\n  \n"), (10, Some("b".into())));
        assert_eq!(last(b"\n\n"), (2, None));
        let long = format!("{}\n{}\nxx", "a".repeat(70_000), "b".repeat(100_000));
        assert_eq!(last(long.as_bytes()), (170_002, Some("b".repeat(100_000))));
    }

    #[test]
    fn appending_cuts_a_partial_line_and_finds_the_last_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.jsonl");
        let id = EpisodeId::new();
        let line = format!(
            r#"{{"id":"{id}","version":1,"namespace":"ns","domain":"d","task_type":"t","description":"x","started_at":"2026-01-01T00:00:00.000000Z"}}"#
        );
        std::fs::write(&path, format!("{line}\n{{\"id\":\"0199")).unwrap();
        let (mut file, last) = append_to(&path).unwrap();
        assert_eq!(last_id(&path, &last.unwrap()).unwrap(), id);
        file.write_all(b"next\n").unwrap();
        drop(file);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{line}\nnext\n")
        );

        let fresh = dir.path().join("new.jsonl");
        let (_, last) = append_to(&fresh).unwrap();
        assert_eq!(last, None);
        assert!(fresh.exists());

        let err = last_id(&path, b"not an export").unwrap_err();
        assert!(err.to_string().contains("last complete line"), "{err}");
    }
}
