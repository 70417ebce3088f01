//! [`Sampler`]: a background task that samples the engine's breaker state, breaker
//! transitions, journal depth and completion queue every few milliseconds, for the timeline
//! of the report. It reads the same sources as `metrics()` does for these fields
//! (`resilience()` and `completion_permits()`), but not the index memory estimate that
//! `metrics()` computes by walking every shard under its lock, which would add index lock
//! contention to the very figures being measured.
//!
//! Bounded: past 4,096 points every other point is dropped and the interval doubles. The
//! task is owned by the [`Sampler`]; `stop` joins it (a panic is surfaced as an error) and
//! dropping the sampler aborts it.

use std::time::{Duration, Instant};

use memory_core::coordinator::BreakerState;
use memory_core::{Error, Result, SelfLearningMemory};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Points kept at most.
const MAX_POINTS: usize = 4_096;

/// The engine at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EnginePoint {
    /// Seconds since the measured phase began.
    pub at_s: f64,
    /// Breaker state (`closed`, `open`, `half_open`), `None` without a journal.
    pub breaker: Option<&'static str>,
    /// Breaker transitions since open.
    pub transitions: u64,
    /// Journaled writes waiting for replay.
    pub journal_depth: u64,
    /// Completions waiting for a permit.
    pub completions_waiting: u64,
    /// Completions running.
    pub completions_in_flight: u64,
}

/// The name of a breaker state.
pub fn state_name(s: BreakerState) -> &'static str {
    match s {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}

/// Sample `memory` now.
pub fn sample(memory: &SelfLearningMemory, origin: Instant) -> EnginePoint {
    let permits = memory.completion_permits();
    let r = memory.resilience();
    EnginePoint {
        at_s: Instant::now()
            .saturating_duration_since(origin)
            .as_secs_f64(),
        breaker: r.map(|r| state_name(r.breaker_state())),
        transitions: r.map_or(0, |r| r.breaker_transitions()),
        journal_depth: r.map_or(0, |r| r.pending_writes() as u64),
        completions_waiting: permits.waiting,
        completions_in_flight: permits.in_flight,
    }
}

/// The running sampler.
#[derive(Debug)]
pub struct Sampler {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Vec<EnginePoint>>>,
}

impl Sampler {
    /// Sample `memory` every `every` until stopped.
    pub fn start(memory: SelfLearningMemory, origin: Instant, every: Duration) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let every = every.max(Duration::from_millis(1));
        let handle = tokio::spawn(async move {
            let mut points = Vec::new();
            let mut every = every;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        points.push(sample(&memory, origin));
                        if points.len() >= MAX_POINTS {
                            points = points.into_iter().step_by(2).collect();
                            every *= 2;
                            tick = tokio::time::interval(every);
                            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                            tick.tick().await;
                        }
                    }
                }
            }
            points.push(sample(&memory, origin));
            points
        });
        Self {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stop and return the points, oldest first.
    pub async fn stop(mut self) -> Result<Vec<EnginePoint>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.handle.take() {
            Some(h) => h
                .await
                .map_err(|e| Error::storage("the engine sampler panicked").with_source(e)),
            None => Ok(Vec::new()),
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}
