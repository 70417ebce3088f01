//! The live Rust heap of the bench process: what the memory budget's figures are read against.
//!
//! The bench binary's global allocator is the system allocator behind a byte counter (`cap`),
//! so RSS minus the live heap is what the allocator keeps after it was freed, plus C
//! allocations (SQLite's), code and thread stacks. [`PeakSampler`] records the highest live
//! heap between two reads, sampled every few milliseconds (a spike shorter than that is missed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

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
