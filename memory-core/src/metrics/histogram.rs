//! A lock-free latency histogram: log-linear buckets of atomic counters.
//!
//! Values are microseconds. Each power of two is split into [`SUB`] equal buckets, so a
//! reported quantile is within 1/[`SUB`] (12.5 %) of the true value, from 1 µs up to about
//! 2^36 µs (19 hours); longer values land in the last bucket. Recording is two relaxed
//! atomic adds and a max; nothing allocates after creation (≈ 2.3 KiB per histogram).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Buckets per power of two.
const SUB: u64 = 8;
const SUB_BITS: u32 = SUB.trailing_zeros();
/// Powers of two covered above the linear range.
const OCTAVES: usize = 33;
const BUCKETS: usize = (SUB as usize) * (OCTAVES + 1);

/// Latency distribution of one operation.
pub(crate) struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
    max_micros: AtomicU64,
    #[cfg(feature = "metrics")]
    exported: metrics::Histogram,
}

/// A latency distribution at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Operations recorded since open.
    pub count: u64,
    /// Their total time.
    pub total: Duration,
    /// Median (upper edge of its bucket: within 12.5 % above the true value).
    pub p50: Duration,
    /// 95th percentile, same precision.
    pub p95: Duration,
    /// 99th percentile, same precision.
    pub p99: Duration,
    /// The longest, exact.
    pub max: Duration,
}

impl LatencySummary {
    /// Mean time per operation (zero when none was recorded).
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            Duration::ZERO
        } else {
            self.total / u32::try_from(self.count).unwrap_or(u32::MAX)
        }
    }
}

/// The bucket of `v` microseconds.
fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let octave = u64::from(63 - v.leading_zeros()); // v in [2^octave, 2^(octave+1))
    let shift = octave - u64::from(SUB_BITS);
    let sub = (v >> shift) - SUB; // 0..SUB
    let index = (octave - u64::from(SUB_BITS) + 1) * SUB + sub;
    (index as usize).min(BUCKETS - 1)
}

/// The largest value that falls in bucket `i`.
fn upper_edge(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let octave = i / SUB - 1 + u64::from(SUB_BITS);
    let sub = i % SUB;
    let shift = octave - u64::from(SUB_BITS);
    ((SUB + sub + 1) << shift) - 1
}

impl LatencyHistogram {
    /// An empty histogram. With the `metrics` feature each value is also recorded, in
    /// seconds, to the `metrics` facade's histogram `name`.
    pub(crate) fn new(name: &'static str) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = name;
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            max_micros: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            exported: metrics::histogram!(name),
        }
    }

    /// Record one operation's duration.
    pub(crate) fn record(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.exported.record(d.as_secs_f64());
    }

    /// The distribution now. Concurrent records may or may not be included.
    pub(crate) fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let max = self.max_micros.load(Ordering::Relaxed);
        let quantile = |q: f64| -> Duration {
            if total == 0 {
                return Duration::ZERO;
            }
            // The smallest bucket whose cumulative count reaches ceil(q * total).
            let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Duration::from_micros(upper_edge(i).min(max));
                }
            }
            Duration::from_micros(max)
        };
        LatencySummary {
            count: total,
            total: Duration::from_micros(self.sum_micros.load(Ordering::Relaxed)),
            p50: quantile(0.50),
            p95: quantile(0.95),
            p99: quantile(0.99),
            max: Duration::from_micros(max),
        }
    }
}

/// Records the time from its creation to its drop (so every return path is measured).
pub(crate) struct Timer<'a> {
    histogram: &'a LatencyHistogram,
    started: Instant,
}

impl<'a> Timer<'a> {
    pub(crate) fn start(histogram: &'a LatencyHistogram) -> Self {
        Self {
            histogram,
            started: Instant::now(),
        }
    }
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.histogram.record(self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_tile_the_range() {
        // Every value falls in a bucket whose edges surround it, and buckets are ordered.
        let mut prev_edge = None;
        for i in 0..BUCKETS - 1 {
            let edge = upper_edge(i);
            assert_eq!(bucket_of(edge), i, "upper edge of {i}");
            assert_eq!(bucket_of(edge + 1), i + 1, "value after the edge of {i}");
            if let Some(p) = prev_edge {
                assert!(edge > p);
            }
            prev_edge = Some(edge);
        }
    }

    #[test]
    fn an_empty_histogram_is_all_zero() {
        let h = LatencyHistogram::new("test_seconds");
        assert_eq!(h.summary(), LatencySummary::default());
    }

    proptest! {
        #[test]
        fn quantiles_are_within_an_eighth_above_the_truth(
            mut values in proptest::collection::vec(0u64..50_000_000, 1..400)
        ) {
            let h = LatencyHistogram::new("test_seconds");
            for v in &values {
                h.record(Duration::from_micros(*v));
            }
            values.sort_unstable();
            let s = h.summary();
            prop_assert_eq!(s.count, values.len() as u64);
            prop_assert_eq!(s.max, Duration::from_micros(*values.last().unwrap()));
            prop_assert_eq!(s.total, Duration::from_micros(values.iter().sum()));
            for (q, got) in [(0.5, s.p50), (0.95, s.p95), (0.99, s.p99)] {
                let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
                let truth = values[rank - 1];
                let got = got.as_micros() as u64;
                prop_assert!(got >= truth, "q{q}: {got} < {truth}");
                prop_assert!(got <= truth + truth / 8 + 1, "q{q}: {got} vs {truth}");
            }
        }
    }
}
