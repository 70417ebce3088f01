//! The progress line of a long run: elapsed / planned, calls done, current rate, redrawn in
//! place with `\r` on stderr four times a second. Drawn only when stderr is a terminal or
//! when asked (`--progress`); otherwise nothing is started. The task is owned by
//! [`Progress`]: `finish` stops and joins it and ends the line; dropping aborts it.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::load::recorder::Recorder;

/// What "done" means for the line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// A planned duration.
    Time(Duration),
    /// A planned number of calls.
    Calls(u64),
}

/// Redraw interval.
const EVERY: Duration = Duration::from_millis(250);

/// The progress line, if drawn.
#[derive(Debug)]
pub struct Progress {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

/// One line of progress (no `\r`).
pub fn line(label: &str, elapsed: Duration, goal: Goal, calls: u64, rate: f64) -> String {
    let t = elapsed.as_secs_f64();
    match goal {
        Goal::Time(total) => {
            let total = total.as_secs_f64();
            let pct = if total > 0.0 {
                (t / total * 100.0).min(100.0)
            } else {
                100.0
            };
            format!("{label}: {t:.1} / {total:.1} s ({pct:.0} %), {calls} calls, {rate:.0} calls/s")
        }
        Goal::Calls(total) => {
            let pct = if total > 0 {
                (calls as f64 / total as f64 * 100.0).min(100.0)
            } else {
                100.0
            };
            format!("{label}: {t:.1} s, {calls} / {total} calls ({pct:.0} %), {rate:.0} calls/s")
        }
    }
}

impl Progress {
    /// Start drawing if stderr is a terminal or `forced`.
    pub fn start(label: String, goal: Goal, recorder: Arc<Recorder>, forced: bool) -> Self {
        if !forced && !std::io::stderr().is_terminal() {
            return Self {
                stop: None,
                handle: None,
            };
        }
        let (stop, mut stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval(EVERY);
            let mut last = (started, recorder.calls());
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        let now = Instant::now();
                        let calls = recorder.calls();
                        let dt = now.duration_since(last.0).as_secs_f64();
                        let rate = if dt > 0.0 { (calls - last.1) as f64 / dt } else { 0.0 };
                        last = (now, calls);
                        let text = line(&label, started.elapsed(), goal, calls, rate);
                        let mut err = std::io::stderr().lock();
                        let _ = write!(err, "\r{text:<96}");
                        let _ = err.flush();
                    }
                }
            }
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err);
        });
        Self {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stop drawing and end the line.
    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.handle.take() {
            // The task only draws; a panic there must not fail the run.
            let _ = h.await;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_elapsed_calls_and_rate() {
        let l = line(
            "load sustained",
            Duration::from_secs(15),
            Goal::Time(Duration::from_secs(60)),
            750,
            50.4,
        );
        assert_eq!(
            l,
            "load sustained: 15.0 / 60.0 s (25 %), 750 calls, 50 calls/s"
        );
        let l = line(
            "x",
            Duration::from_millis(1500),
            Goal::Calls(1000),
            250,
            10.0,
        );
        assert_eq!(l, "x: 1.5 s, 250 / 1000 calls (25 %), 10 calls/s");
    }
}
