//! Driving libsql futures on a plain (non-async) thread.
//!
//! libsql's local calls are `async fn`s that do all their work synchronously when polled, so
//! they must never run on a tokio worker thread. The writer thread and the read pool (inside
//! `spawn_blocking`) drive them through [`block_on`]. This module owns nothing else and must
//! never be used from inside an async task.

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
