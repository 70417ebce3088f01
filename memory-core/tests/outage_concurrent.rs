//! Concurrent writers, an outage switching on and off, and replays running alongside: every
//! acknowledged write lands exactly once and in order per episode, whichever path it took,
//! including writes racing the switch from journaling back to direct.
//!
//! Every store call takes 1 ms of a paused clock, so the tasks interleave at every call; the
//! result does not depend on the interleaving, only the coverage does.

mod outage_support;

use std::time::Duration;

use memory_core::ResilienceConfig;
use memory_core::coordinator::BreakerConfig;
use memory_core::store::{DurableStore, FaultPlan};
use outage_support::{completed, drain, episode, fixture, steps};

const WRITERS: usize = 6;
const STEPS: u32 = 12;

#[tokio::test(start_paused = true)]
async fn concurrent_writers_replays_and_outages_lose_and_duplicate_nothing() {
    let f = fixture(ResilienceConfig {
        breaker: BreakerConfig {
            failure_threshold: 2,
            cool_down: Duration::from_millis(5),
            half_open_probes: 1,
        },
        replay_batch_size: 4,
        ..ResilienceConfig::default()
    })
    .await;
    let tick = Duration::from_millis(1);
    let slow = move |outage: bool| FaultPlan {
        latency: tick,
        outage,
        transient: true,
        ..FaultPlan::none()
    };
    f.faults.set_plan(slow(false));
    f.journal_faults.set_plan(FaultPlan {
        latency: tick,
        ..FaultPlan::none()
    });

    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move {
                let e = episode("ns");
                let s = steps(0, STEPS);
                let mut retries = 0u32;
                while let Err(err) = store.create_episode(&e).await {
                    assert!(err.is_transient(), "{err}");
                    retries += 1;
                }
                for i in 0..STEPS as usize {
                    while let Err(err) = store.append_steps(e.id, &s[i..=i]).await {
                        assert!(err.is_transient(), "{err}");
                        retries += 1;
                    }
                }
                let done = completed(e, s);
                while let Err(err) = store.complete_episode(&done).await {
                    assert!(err.is_transient(), "{err}");
                    retries += 1;
                }
                (done, retries)
            })
        })
        .collect();
    let flapper = tokio::spawn({
        let faults = f.faults.clone();
        async move {
            for round in 0..12 {
                faults.set_plan(slow(round % 2 == 0));
                tokio::time::sleep(Duration::from_millis(9)).await;
            }
            faults.set_plan(slow(false));
        }
    });
    let replayer = tokio::spawn({
        let store = f.store.clone();
        async move {
            let mut replays = 0;
            for _ in 0..200 {
                let r = store.replay().await.expect("replay never fails here");
                replays += u64::from(r.applied + r.skipped > 0);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            replays
        }
    });

    let mut expected = Vec::new();
    let mut retries = 0;
    for w in writers {
        let (done, r) = w.await.unwrap();
        expected.push(done);
        retries += r;
    }
    assert!(retries > 0, "some writes saw the outage directly");
    flapper.await.unwrap();
    let productive_replays = replayer.await.unwrap();
    assert!(productive_replays > 1, "replays ran while writers wrote");
    assert!(
        f.store.breaker_transitions() > 3,
        "the breaker went round more than once"
    );

    drain(&f.store, Duration::from_secs(1), 3).await;
    assert_eq!(f.store.journal_depth().await.unwrap(), 0);
    expected.sort_by_key(|e| e.id);
    assert_eq!(f.stored().await, expected);
}
