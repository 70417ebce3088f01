//! The live Rust heap of the bench process: what the memory budget's figures are read against.
//!
//! The bench binary's global allocator is jemalloc behind a byte counter (`cap`), so RSS minus
//! the live heap is what jemalloc keeps (partly used pages; freed ones go back at once, see
//! the options below), plus C allocations (SQLite's, from glibc's malloc), code and thread
//! stacks. [`PeakSampler`] records the highest live heap between two reads, sampled every few
//! milliseconds (a spike shorter than that is missed).
//!
//! Heap profilers that intercept glibc's `malloc` (heaptrack) no longer see the Rust heap of
//! this binary: jemalloc's symbols are prefixed. Profile with `std::alloc::System` in place of
//! `tikv_jemallocator::Jemalloc` below.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[global_allocator]
static HEAP: cap::Cap<tikv_jemallocator::Jemalloc> =
    cap::Cap::new(tikv_jemallocator::Jemalloc, usize::MAX);

/// jemalloc's options, read once when it starts (before `main`): freed pages go back to the
/// system at once (`dirty_decay_ms:0`; `muzzy_decay_ms:0` skips the lazy `MADV_FREE` stage,
/// whose pages would still count in the RSS until the kernel is short of memory). The budget's
/// spills and loads free whole shards at a time; kept for jemalloc's default 10 s, or even 1 s,
/// they showed in the RSS (docs/benchmarks.md, "jemalloc as the bench's allocator"). The
/// `_RJEM_MALLOC_CONF` environment variable overrides them.
// The one `unsafe` of this crate: exporting the symbol jemalloc reads its options from. It
// must be a `const char *` to a NUL-terminated string that lives for the whole process; a
// reference to a static byte string is that pointer.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_OPTIONS: &[u8; 34] = b"dirty_decay_ms:0,muzzy_decay_ms:0\0";

/// Bytes of Rust heap allocated now.
pub fn live_bytes() -> usize {
    HEAP.allocated()
}

/// A thread sampling [`live_bytes`] every 5 ms, keeping the highest since the last `take`;
/// stops when dropped.
pub struct PeakSampler {
    peak: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl PeakSampler {
    /// Start sampling.
    pub fn start() -> Self {
        let peak = Arc::new(AtomicUsize::new(live_bytes()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(live_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self { peak, stop }
    }

    /// The highest live heap seen since the last call (or the start), then start over.
    pub fn take(&self) -> usize {
        self.peak
            .swap(live_bytes(), Ordering::Relaxed)
            .max(live_bytes())
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_allocation_is_counted_and_its_peak_kept_after_it_is_freed() {
        // Absolute bounds: other tests of this process allocate and free meanwhile.
        let sampler = PeakSampler::start();
        let block = vec![1u8; 64 << 20];
        assert!(live_bytes() >= 64 << 20, "counted while held");
        std::thread::sleep(Duration::from_millis(50));
        drop(block);
        assert!(sampler.take() >= 64 << 20, "the peak outlives the block");
    }
}
