//! `outage`: the mixed open-loop load while the durable store fails every call with a
//! transient error from `outage_at_s` for `outage_for_s` seconds (the fault injector's
//! switchable outage), then recovers. The client retries transient errors; the engine's
//! breaker should open, journal the writes and acknowledge them, and replay should drain the
//! journal once the store is back. Verifying that nothing acknowledged was lost is the
//! runner's job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memory_core::store::{FaultInjector, FaultPlan};
use memory_core::{Error, Result};

use crate::load::client::Client;
use crate::load::items::{Items, Queries};
use crate::load::options::OutageParams;
use crate::load::plot::Span;
use crate::load::scenario::mixed::{self, Arrivals};

/// The plan in force during the outage: every call fails, transiently, before reaching the
/// store (nothing is written).
pub fn outage_plan() -> FaultPlan {
    FaultPlan {
        outage: true,
        transient: true,
        ..FaultPlan::none()
    }
}

/// Aborts the fault switch if the load fails before it is joined.
struct AbortOnDrop(Option<tokio::task::JoinHandle<(f64, f64)>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// Run the load with the outage; returns the arrivals and the outage as it happened
/// (seconds since `origin`).
pub async fn run(
    client: &Client,
    items: Items,
    queries: Queries,
    p: &OutageParams,
    faults: Arc<FaultInjector>,
    origin: Instant,
    seed: u64,
) -> Result<(Arrivals, Span)> {
    let at = Duration::from_secs_f64(p.outage_at_s);
    let length = Duration::from_secs_f64(p.outage_for_s);
    let mut switch = AbortOnDrop(Some(tokio::spawn(async move {
        tokio::time::sleep(at).await;
        faults.set_plan(outage_plan());
        let on = origin.elapsed().as_secs_f64();
        tokio::time::sleep(length).await;
        faults.set_plan(FaultPlan::none());
        (on, origin.elapsed().as_secs_f64())
    })));
    let arrivals = mixed::run(client, items, queries, &p.mixed, seed).await?;
    let (on, off) = match switch.0.take() {
        Some(h) => h
            .await
            .map_err(|e| Error::storage("the fault switch panicked").with_source(e))?,
        None => (0.0, 0.0),
    };
    Ok((
        arrivals,
        Span {
            from_s: on,
            to_s: off,
            label: "durable store outage".into(),
        },
    ))
}
