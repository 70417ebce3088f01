//! An HDR-style latency histogram: log-linear buckets over nanoseconds, so memory stays bounded
//! however many values are recorded while every quantile keeps a fixed relative precision.
//!
//! Each power of two is split into `2^sub_bits` equal buckets: with `sub_bits = 7` a reported
//! value is within 1/128 (0.8 %) of the true one, with 3 within 12.5 %. Values below
//! `2^sub_bits` ns are exact. The bucket vector grows only up to the largest value seen
//! (≈ 3,000 buckets for one second at 7 sub-bits). It never locks: the owner does.

/// A latency distribution in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    sub_bits: u32,
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Histogram {
    /// An empty histogram with `2^sub_bits` buckets per power of two (`sub_bits` ≤ 16).
    pub fn new(sub_bits: u32) -> Self {
        Self {
            sub_bits: sub_bits.min(16),
            counts: Vec::new(),
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    fn sub(&self) -> u64 {
        1 << self.sub_bits
    }

    /// The bucket of `v`.
    fn index(&self, v: u64) -> usize {
        let sub = self.sub();
        if v < sub {
            return v as usize;
        }
        let octave = u64::from(63 - v.leading_zeros());
        let shift = octave - u64::from(self.sub_bits);
        ((shift + 1) * sub + ((v >> shift) - sub)) as usize
    }

    /// The smallest and the largest value bucket `i` holds.
    pub fn bounds(&self, i: usize) -> (u64, u64) {
        let sub = self.sub();
        let i = i as u64;
        if i < sub {
            return (i, i);
        }
        let shift = i / sub - 1;
        let s = i % sub;
        let low = (sub + s) << shift;
        let high = ((sub + s + 1) << shift).saturating_sub(1);
        (low, high)
    }

    /// Record one value.
    pub fn record(&mut self, nanos: u64) {
        let i = self.index(nanos);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.total += 1;
        self.sum += u128::from(nanos);
        self.min = self.min.min(nanos);
        self.max = self.max.max(nanos);
    }

    /// Add every value of `other` (same precision expected; a coarser one is re-bucketed by
    /// its upper bounds).
    pub fn merge(&mut self, other: &Histogram) {
        if other.sub_bits == self.sub_bits {
            if other.counts.len() > self.counts.len() {
                self.counts.resize(other.counts.len(), 0);
            }
            for (a, b) in self.counts.iter_mut().zip(&other.counts) {
                *a += b;
            }
        } else {
            for (i, n) in other.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
                let j = self.index(other.bounds(i).1);
                if j >= self.counts.len() {
                    self.counts.resize(j + 1, 0);
                }
                self.counts[j] += n;
            }
        }
        self.total += other.total;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value recorded (exact), 0 when empty.
    pub fn min(&self) -> u64 {
        if self.total == 0 { 0 } else { self.min }
    }

    /// The mean (exact), 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The `q`-quantile (0.0..=1.0): the upper bound of the bucket holding the value of rank
    /// `ceil(q × count)`, never above the exact maximum; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return self.bounds(i).1.min(self.max);
            }
        }
        self.max
    }

    /// Every non-empty bucket as `(low, high, count)`, in ascending order.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let (low, high) = self.bounds(i);
                (low, high, *n)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_line_without_gaps() {
        let h = Histogram::new(3);
        let mut next = 0;
        for i in 0..200 {
            let (low, high) = h.bounds(i);
            assert_eq!(low, next, "bucket {i}");
            assert!(high >= low);
            assert_eq!(h.index(low), i);
            assert_eq!(h.index(high), i);
            next = high + 1;
        }
    }

    #[test]
    fn quantiles_are_within_the_precision() {
        let mut h = Histogram::new(7);
        for v in 1..=100_000u64 {
            h.record(v * 1_000);
        }
        for (q, exact) in [(0.5, 50_000_000.0), (0.99, 99_000_000.0), (1.0, 1e8)] {
            let got = h.quantile(q) as f64;
            assert!(
                got >= exact && got <= exact * 1.008,
                "q {q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max(), 100_000_000);
        assert_eq!(h.min(), 1_000);
        assert_eq!(h.count(), 100_000);
        assert!((h.mean() - 50_000_500.0).abs() < 1.0);
    }

    #[test]
    fn merging_adds_counts_and_keeps_extremes() {
        let mut a = Histogram::new(3);
        let mut b = Histogram::new(3);
        a.record(10);
        b.record(1_000_000);
        b.record(7);
        a.merge(&b);
        assert_eq!((a.count(), a.min(), a.max()), (3, 7, 1_000_000));
        let mut fine = Histogram::new(7);
        fine.merge(&a);
        assert_eq!(fine.count(), 3);
        assert_eq!(fine.quantile(1.0), 1_000_000);
    }

    #[test]
    fn an_empty_histogram_answers_zero() {
        let h = Histogram::new(7);
        assert_eq!((h.quantile(0.5), h.max(), h.min(), h.count()), (0, 0, 0, 0));
        assert_eq!(h.buckets().count(), 0);
    }
}
