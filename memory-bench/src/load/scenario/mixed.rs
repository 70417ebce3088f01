//! Open-loop mixed load, shared by `sustained` and `outage`: for `duration_s` seconds,
//! episodes arrive at `rate` per second, `retrieve` calls at `query_rate` and `get_episode`
//! calls at `get_rate`, each on its own tokio interval. Arrivals never wait for earlier calls
//! to finish (an interval that falls behind fires its missed ticks at once), and each call's
//! first operation is timed from its *scheduled* tick, so a slow engine shows up as latency
//! instead of as fewer requests (no coordinated omission). Every tick scheduled before the
//! end is issued; the run then waits for the calls in flight.

use std::time::Duration;

use memory_core::Result;
use serde::Serialize;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::load::client::Client;
use crate::load::items::{Items, Queries};
use crate::load::options::MixedParams;
use crate::load::scenario::tasks::Tasks;
use crate::synthetic::Rng;

/// What the arrival process did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Arrivals {
    /// How long arrivals were issued, seconds.
    pub window_s: f64,
    /// Episodes started.
    pub episodes: u64,
    /// `retrieve` calls issued.
    pub queries: u64,
    /// `get_episode` calls issued.
    pub gets: u64,
    /// Most calls (episodes count as one) in flight at once.
    pub peak_in_flight: usize,
    /// The latest a tick was taken after its scheduled time, milliseconds (the generator
    /// itself falling behind).
    pub max_tick_lag_ms: f64,
}

fn every(rate: f64, start: Instant) -> Option<Interval> {
    (rate > 0.0 && rate.is_finite()).then(|| {
        let mut i = tokio::time::interval_at(start, Duration::from_secs_f64(1.0 / rate));
        i.set_missed_tick_behavior(MissedTickBehavior::Burst);
        i
    })
}

async fn tick(interval: &mut Option<Interval>) -> Instant {
    match interval {
        Some(i) => i.tick().await,
        None => std::future::pending().await,
    }
}

enum Event {
    Episode(Instant),
    Query(Instant),
    Get(Instant),
    End,
}

/// Issue the arrivals of `p` through `client`.
pub async fn run(
    client: &Client,
    mut items: Items,
    mut queries: Queries,
    p: &MixedParams,
    seed: u64,
) -> Result<Arrivals> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(p.duration_s.max(0.0));
    let (mut episodes, mut reads, mut gets) = (
        every(p.rate, start),
        every(p.query_rate, start),
        every(p.get_rate, start),
    );
    let mut rng = Rng::new(seed);
    let mut tasks = Tasks::new();
    let mut a = Arrivals::default();
    loop {
        // Ticks first: every tick scheduled before the deadline is issued, even late.
        let event = tokio::select! {
            biased;
            t = tick(&mut episodes) => Event::Episode(t),
            t = tick(&mut reads) => Event::Query(t),
            t = tick(&mut gets) => Event::Get(t),
            _ = tokio::time::sleep_until(deadline) => Event::End,
        };
        let scheduled = match event {
            Event::End => break,
            Event::Episode(t) | Event::Query(t) | Event::Get(t) if t >= deadline => {
                match event {
                    Event::Episode(_) => episodes = None,
                    Event::Query(_) => reads = None,
                    _ => gets = None,
                }
                continue;
            }
            Event::Episode(t) | Event::Query(t) | Event::Get(t) => t,
        };
        let lag = Instant::now().saturating_duration_since(scheduled);
        a.max_tick_lag_ms = a.max_tick_lag_ms.max(lag.as_secs_f64() * 1e3);
        let intended = scheduled.into_std();
        let c = client.clone();
        match event {
            Event::Episode(_) => {
                a.episodes += 1;
                let item = items.next_episode();
                tasks.spawn(async move {
                    c.episode(item, intended, None).await;
                });
            }
            Event::Query(_) => {
                a.queries += 1;
                let q = queries.next_query();
                tasks.spawn(async move {
                    c.retrieve(q, intended).await;
                });
            }
            Event::Get(_) | Event::End => {
                a.gets += 1;
                let r = rng.next_u64();
                tasks.spawn(async move {
                    c.get_some(r, intended).await;
                });
            }
        }
        tasks.reap()?;
    }
    a.window_s = start.elapsed().as_secs_f64();
    tasks.join_all().await?;
    a.peak_in_flight = tasks.peak;
    Ok(a)
}
