//! [`Recorder`]: what the load generator saw, per operation kind: every call's latency into a
//! full-precision histogram, errors by [`ErrorKind`], a bounded reservoir of raw samples and
//! per-window histograms for the plots.
//!
//! Latency is measured from the time a call was *meant* to start (its scheduled time in the
//! open-loop scenarios, else the moment it was issued) to its return, so a stalled engine
//! cannot hide queueing delay (coordinated omission). The recorder only observes: it never
//! calls the engine.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memory_core::ErrorKind;

use crate::load::histogram::Histogram;
use crate::load::samples::{Reservoir, Sample, WindowStat, Windows};

/// The operations the load generator issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `start_episode`.
    Start,
    /// `log_step`.
    LogStep,
    /// `complete_episode`.
    Complete,
    /// `retrieve`.
    Retrieve,
    /// `get_episode`.
    Get,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 5] = [Op::Start, Op::LogStep, Op::Complete, Op::Retrieve, Op::Get];

    /// The name used in reports and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Start => "start_episode",
            Op::LogStep => "log_step",
            Op::Complete => "complete_episode",
            Op::Retrieve => "retrieve",
            Op::Get => "get_episode",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Whether the operation writes.
    pub fn is_write(self) -> bool {
        matches!(self, Op::Start | Op::LogStep | Op::Complete)
    }
}

/// Full-precision histograms: 128 buckets per power of two (≤ 0.8 % above the true value).
const SUB_BITS: u32 = 7;
/// Windows of the latency-over-time plot: start 100 ms wide, at most 300.
const WINDOW: Duration = Duration::from_millis(100);
const MAX_WINDOWS: usize = 300;

struct OpState {
    latency: Histogram,
    windows: Windows,
    samples: Reservoir<Sample>,
    ok: u64,
    errors: [u64; ErrorKind::ALL.len()],
}

/// Everything recorded for one operation kind.
#[derive(Debug, Clone)]
pub struct OpRecord {
    /// The operation.
    pub op: Op,
    /// Latency of every call (errors included), nanoseconds.
    pub latency: Histogram,
    /// Per-window p50/p99.
    pub windows: Vec<WindowStat>,
    /// A uniform subset of the raw samples.
    pub samples: Vec<Sample>,
    /// Calls that returned `Ok`.
    pub ok: u64,
    /// Calls that failed, by error kind (`ErrorKind::as_str`).
    pub errors: BTreeMap<String, u64>,
}

impl OpRecord {
    /// Every call (ok and failed).
    pub fn calls(&self) -> u64 {
        self.latency.count()
    }

    /// Failed calls.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The shared recorder of one run.
pub struct Recorder {
    origin: Instant,
    ops: [Mutex<OpState>; Op::ALL.len()],
    calls: AtomicU64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("calls", &self.calls())
            .finish()
    }
}

impl Recorder {
    /// A recorder whose clock starts now, keeping at most `max_samples` raw samples per
    /// operation.
    pub fn new(max_samples: usize, seed: u64) -> Self {
        Self {
            origin: Instant::now(),
            ops: std::array::from_fn(|i| {
                Mutex::new(OpState {
                    latency: Histogram::new(SUB_BITS),
                    windows: Windows::new(WINDOW, MAX_WINDOWS),
                    samples: Reservoir::new(max_samples, seed ^ (i as u64 + 1)),
                    ok: 0,
                    errors: [0; ErrorKind::ALL.len()],
                })
            }),
            calls: AtomicU64::new(0),
        }
    }

    /// When the measured phase began.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Calls recorded so far (all operations).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Record one call of `op` meant to start at `intended`, ending now with `outcome`.
    pub fn record(&self, op: Op, intended: Instant, outcome: Result<(), ErrorKind>) {
        let latency = intended.elapsed();
        let at = intended.saturating_duration_since(self.origin);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        {
            let mut s = self.ops[op.index()]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            s.latency.record(nanos);
            s.windows.record(at, nanos);
            s.samples.offer(Sample {
                at_s: at.as_secs_f64(),
                latency_ns: nanos,
                ok: outcome.is_ok(),
            });
            match outcome {
                Ok(()) => s.ok += 1,
                Err(kind) => {
                    if let Some(i) = ErrorKind::ALL.iter().position(|k| *k == kind) {
                        s.errors[i] += 1;
                    }
                }
            }
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Await `call`, recording it as `op` meant to start at `intended`.
    pub async fn time<T>(
        &self,
        op: Op,
        intended: Instant,
        call: impl Future<Output = memory_core::Result<T>>,
    ) -> memory_core::Result<T> {
        let result = call.await;
        self.record(
            op,
            intended,
            result.as_ref().map(|_| ()).map_err(|e| e.kind()),
        );
        result
    }

    /// What was recorded for `op` so far.
    pub fn snapshot(&self, op: Op) -> OpRecord {
        let s = self.ops[op.index()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        OpRecord {
            op,
            latency: s.latency.clone(),
            windows: s.windows.stats(),
            samples: s.samples.items().to_vec(),
            ok: s.ok,
            errors: ErrorKind::ALL
                .iter()
                .zip(s.errors)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.as_str().to_owned(), n))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_per_op_with_errors_by_kind() {
        let r = Recorder::new(10, 1);
        let t = Instant::now();
        r.record(Op::Start, t, Ok(()));
        r.record(Op::Start, t, Err(ErrorKind::Unavailable));
        r.record(Op::Get, t, Err(ErrorKind::NotFound));
        let s = r.snapshot(Op::Start);
        assert_eq!((s.calls(), s.ok, s.failed()), (2, 1, 1));
        assert_eq!(s.errors.get("unavailable"), Some(&1));
        assert_eq!(s.samples.len(), 2);
        assert_eq!(r.snapshot(Op::Get).errors.get("not_found"), Some(&1));
        assert_eq!(r.snapshot(Op::Retrieve).calls(), 0);
        assert_eq!(r.calls(), 3);
    }
}
