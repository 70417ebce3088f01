//! Bounded raw samples for plots: a reservoir (Algorithm R) keeps a uniform random subset of
//! at most `cap` samples however long the run, and [`Windows`] keeps a coarse histogram per
//! time window, doubling the window width (merging neighbours) whenever the run outgrows the
//! window count.
//!
//! Quantiles reported in the tables never come from here: they come from the full-precision
//! histogram. This module only feeds the latency-over-time plots.

use std::time::Duration;

use crate::load::histogram::Histogram;
use crate::synthetic::Rng;

/// One measured call, for the scatter plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When the call was issued (or scheduled), seconds since the measured phase began.
    pub at_s: f64,
    /// How long it took, nanoseconds.
    pub latency_ns: u64,
    /// Whether it succeeded.
    pub ok: bool,
}

/// A uniform random subset of at most `cap` items of a stream (Algorithm R, seeded).
#[derive(Debug, Clone)]
pub struct Reservoir<T> {
    cap: usize,
    seen: u64,
    items: Vec<T>,
    rng: Rng,
}

impl<T> Reservoir<T> {
    /// An empty reservoir keeping at most `cap` items.
    pub fn new(cap: usize, seed: u64) -> Self {
        Self {
            cap,
            seen: 0,
            items: Vec::new(),
            rng: Rng::new(seed),
        }
    }

    /// Offer one item: kept with probability `cap / seen`.
    pub fn offer(&mut self, item: T) {
        self.seen += 1;
        if self.items.len() < self.cap {
            self.items.push(item);
        } else {
            let j = self.rng.next_u64() % self.seen;
            if let Some(slot) = usize::try_from(j).ok().and_then(|j| self.items.get_mut(j)) {
                *slot = item;
            }
        }
    }

    /// Items offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The kept items (in no particular order).
    pub fn items(&self) -> &[T] {
        &self.items
    }
}

/// Coarse histograms per time window; at most `max_windows` windows.
#[derive(Debug, Clone)]
pub struct Windows {
    width: Duration,
    max_windows: usize,
    windows: Vec<Histogram>,
}

/// Precision of a window's histogram (12.5 %).
const WINDOW_SUB_BITS: u32 = 3;

/// One window's figures.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct WindowStat {
    /// Window start, seconds since the measured phase began.
    pub start_s: f64,
    /// Window width, seconds.
    pub width_s: f64,
    /// Calls issued in the window.
    pub count: u64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
}

impl Windows {
    /// Windows `width` wide, at most `max_windows` of them (at least 2).
    pub fn new(width: Duration, max_windows: usize) -> Self {
        Self {
            width: width.max(Duration::from_millis(1)),
            max_windows: max_windows.max(2),
            windows: Vec::new(),
        }
    }

    /// Record a call issued `at` after the start that took `latency_ns`.
    pub fn record(&mut self, at: Duration, latency_ns: u64) {
        let mut i = (at.as_nanos() / self.width.as_nanos()) as usize;
        while i >= self.max_windows {
            self.coarsen();
            i = (at.as_nanos() / self.width.as_nanos()) as usize;
        }
        if i >= self.windows.len() {
            self.windows
                .resize_with(i + 1, || Histogram::new(WINDOW_SUB_BITS));
        }
        self.windows[i].record(latency_ns);
    }

    /// Double the width: window `k` becomes windows `2k` and `2k + 1` merged.
    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.windows);
        let mut merged = Vec::with_capacity(old.len().div_ceil(2));
        for pair in old.chunks(2) {
            let mut h = pair[0].clone();
            if let Some(b) = pair.get(1) {
                h.merge(b);
            }
            merged.push(h);
        }
        self.windows = merged;
        self.width *= 2;
    }

    /// The current window width.
    pub fn width(&self) -> Duration {
        self.width
    }

    /// Every window with at least one call.
    pub fn stats(&self) -> Vec<WindowStat> {
        let w = self.width.as_secs_f64();
        self.windows
            .iter()
            .enumerate()
            .filter(|(_, h)| h.count() > 0)
            .map(|(i, h)| WindowStat {
                start_s: i as f64 * w,
                width_s: w,
                count: h.count(),
                p50_ms: h.quantile(0.5) as f64 / 1e6,
                p99_ms: h.quantile(0.99) as f64 / 1e6,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reservoir_stays_bounded_and_uniform() {
        let mut r = Reservoir::new(1_000, 7);
        for i in 0..100_000u64 {
            r.offer(i);
        }
        assert_eq!(r.items().len(), 1_000);
        assert_eq!(r.seen(), 100_000);
        let late = r.items().iter().filter(|v| **v >= 50_000).count();
        assert!(
            (400..=600).contains(&late),
            "about half from the second half: {late}"
        );
    }

    #[test]
    fn windows_coarsen_instead_of_growing() {
        let mut w = Windows::new(Duration::from_millis(100), 10);
        for ms in 0..5_000u64 {
            w.record(Duration::from_millis(ms), 1_000 + ms);
        }
        let stats = w.stats();
        assert!(stats.len() <= 10, "{}", stats.len());
        assert_eq!(w.width(), Duration::from_millis(800));
        assert_eq!(stats.iter().map(|s| s.count).sum::<u64>(), 5_000);
        assert!(stats.windows(2).all(|p| p[0].start_s < p[1].start_s));
    }
}
