//! After an outage, replay applies every journaled write in order exactly once, and the durable
//! store ends up holding exactly what a store that never failed holds.

mod outage_support;

use std::time::Duration;

use memory_core::coordinator::BreakerState;
use memory_core::store::{DurableStore, InMemoryStore};
use memory_core::{Episode, Result};
use outage_support::{all_episodes, completed, config, drain, episode, fixture, steps, with_steps};

/// One scripted write (the same value goes to both stores).
enum W {
    Create(Episode),
    Append(Episode, u32, u32),
    Complete(Episode),
    Update(Episode),
    Delete(Episode),
}

async fn apply(store: &dyn DurableStore, w: &W) -> Result<()> {
    match w {
        W::Create(e) => store.create_episode(e).await,
        W::Append(e, from, n) => store.append_steps(e.id, &steps_of(e, *from, *n)).await,
        W::Complete(e) => store.complete_episode(e).await,
        W::Update(e) => store.update_episode(e).await,
        W::Delete(e) => store.delete_episode(e.id).await.map(drop),
    }
}

/// Steps are fixed per episode so both stores get identical values.
fn steps_of(e: &Episode, from: u32, n: u32) -> Vec<memory_core::Step> {
    e.steps[from as usize..(from + n) as usize].to_vec()
}

#[tokio::test(start_paused = true)]
async fn replay_leaves_the_store_as_a_never_failing_one() {
    let f = fixture(config(2, 5, 1)).await;
    let reference = InMemoryStore::new();

    // Four episodes; their full step lists are fixed up front.
    let plan: Vec<(Episode, Vec<memory_core::Step>)> =
        (0..4).map(|_| (episode("ns"), steps(0, 6))).collect();
    let with_all = |i: usize| with_steps(plan[i].0.clone(), &plan[i].1);
    let done = |i: usize, n: usize| completed(plan[i].0.clone(), plan[i].1[..n].to_vec());
    let mut updated = done(1, 4);
    updated.version += 1;
    updated.reflection = Some("looked again".into());

    // (outage on?, write) — outage windows open and close between writes.
    let script: Vec<(bool, W)> = vec![
        (false, W::Create(plan[0].0.clone())),
        (false, W::Append(with_all(0), 0, 2)),
        (false, W::Create(plan[1].0.clone())),
        (true, W::Append(with_all(0), 2, 1)),
        (true, W::Append(with_all(1), 0, 4)),
        (true, W::Create(plan[2].0.clone())),
        (true, W::Complete(done(1, 4))),
        (false, W::Append(with_all(2), 0, 3)),
        (false, W::Update(updated.clone())),
        (true, W::Create(plan[3].0.clone())),
        (true, W::Append(with_all(0), 3, 2)),
        (true, W::Delete(plan[2].0.clone())),
        (true, W::Append(with_all(3), 0, 1)),
        (false, W::Complete(done(0, 5))),
    ];

    let mut journaled = 0;
    for (i, (outage, w)) in script.iter().enumerate() {
        f.outage(*outage);
        apply(&reference, w).await.unwrap();
        // The caller retries transient failures until the write is acknowledged (the breaker
        // opens after two, and then the write is journaled).
        let depth = f.store.journal_depth().await.unwrap();
        let mut tries = 0;
        while let Err(e) = apply(f.store.as_ref(), w).await {
            assert!(e.is_transient(), "write {i}: {e}");
            tries += 1;
            assert!(tries < 3, "write {i} never acknowledged");
        }
        journaled += f.store.journal_depth().await.unwrap() - depth;
        if !*outage {
            // Give the breaker time to half-open so that a healthy write can close it.
            tokio::time::advance(Duration::from_secs(5)).await;
        }
    }
    assert!(
        journaled >= 8,
        "most writes went to the journal: {journaled}"
    );

    f.outage(false);
    let reports = drain(&f.store, Duration::from_secs(5), 3).await;
    let applied: u64 = reports.iter().map(|r| r.applied).sum();
    let skipped: u64 = reports.iter().map(|r| r.skipped + r.superseded).sum();
    assert_eq!(
        applied + skipped,
        journaled,
        "every entry exactly once: {reports:?}"
    );
    assert_eq!(f.store.breaker_state(), BreakerState::Closed);
    assert!(!f.store.is_journaling());
    assert_eq!(f.store.journal_depth().await.unwrap(), 0);

    assert_eq!(f.stored().await, all_episodes(&reference).await);
}
