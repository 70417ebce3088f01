//! Driving libsql futures on a plain (non-async) thread.
//!
//! libsql's local calls are `async fn`s that do all their work synchronously when polled, so
//! they must never run on a tokio worker thread. The writer thread and the read pool (inside
//! `spawn_blocking`) drive them through an [`Exec`]: a local file needs nothing but a parked
//! thread ([`block_on`]); a remote server or an embedded replica does network I/O, so its
//! futures are driven with the runtime that opened the store (its reactor does the I/O and
//! its timers the retry back-off). This module owns nothing else and must never be used from
//! inside an async task.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Wakes the thread that is blocked in [`block_on`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// How blocking threads drive libsql futures.
#[derive(Clone, Debug)]
pub(crate) enum Exec {
    /// Local file: futures complete without I/O readiness; park the thread meanwhile.
    Park,
    /// Network modes: drive the future with this runtime's reactor and timers.
    Runtime(tokio::runtime::Handle),
}

impl Exec {
    /// Run `future` to completion on the current (non-async) thread.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            Exec::Park => block_on(future),
            Exec::Runtime(handle) => handle.block_on(future),
        }
    }
}

/// Run `future` to completion on the current thread, parking it while the future is pending.
///
/// Local libsql futures complete on their first poll; the park loop only makes this correct
/// for any future that does not need a tokio reactor.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(value) => return value,
            Poll::Pending => thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_ready_and_pending_futures() {
        assert_eq!(block_on(async { 7 }), 7);
        // A future that is pending once and wakes itself.
        let mut polled = false;
        let value = block_on(std::future::poll_fn(move |cx| {
            if polled {
                Poll::Ready(42)
            } else {
                polled = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }));
        assert_eq!(value, 42);
    }
}
