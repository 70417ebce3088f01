//! The engine's background job: replays journaled writes while the durable store is back,
//! runs periodic reconciliation passes and writes periodic index snapshots.
//!
//! Owned by the engine: it holds only a weak reference to the engine's state (so dropping the
//! engine ends it), a cancellation token (cancelled by `shutdown()` or by the drop guard the
//! engine holds), and its join handle is awaited by `shutdown()`, which reports a panic as an
//! error. It never holds a lock across `.await` and never runs two passes at once.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::error::{Error, Result};

/// A running background job.
#[derive(Debug)]
pub(crate) struct Job {
    cancel: CancellationToken,
    handle: JoinHandle<()>,
    _guard: DropGuard,
}

/// The next tick of `i`, or never when there is no interval.
async fn next(i: &mut Option<Interval>) {
    match i {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// What the job calls; returns `false` when the engine is gone and the job should end.
pub(crate) trait Tick: Send + 'static {
    /// Replay journaled writes if any are pending.
    fn replay(&self) -> impl Future<Output = bool> + Send;
    /// Run one reconciliation pass.
    fn reconcile(&self) -> impl Future<Output = bool> + Send;
    /// Write an index snapshot.
    fn snapshot(&self) -> impl Future<Output = bool> + Send;
}

impl Job {
    /// Start the job on the current tokio runtime.
    pub(crate) fn start(
        tick: impl Tick,
        replay_every: Duration,
        reconcile_every: Option<Duration>,
        snapshot_every: Option<Duration>,
    ) -> Self {
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let handle = tokio::spawn(async move {
            let mut replay = interval_at(Instant::now() + replay_every, replay_every);
            replay.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let every = |period: Option<Duration>| {
                period.map(|p| {
                    let mut i = interval_at(Instant::now() + p, p);
                    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    i
                })
            };
            let mut reconcile = every(reconcile_every);
            let mut snapshot = every(snapshot_every);
            loop {
                let alive = tokio::select! {
                    _ = token.cancelled() => false,
                    _ = replay.tick() => tick.replay().await,
                    _ = next(&mut reconcile) => tick.reconcile().await,
                    _ = next(&mut snapshot) => tick.snapshot().await,
                };
                if !alive {
                    break;
                }
            }
        });
        Self {
            _guard: cancel.clone().drop_guard(),
            cancel,
            handle,
        }
    }

    /// Cancel the job and wait for it; a panic inside it becomes an error.
    pub(crate) async fn stop(self) -> Result<()> {
        self.cancel.cancel();
        self.handle
            .await
            .map_err(|e| Error::storage("the background job panicked").with_source(e))
    }
}
