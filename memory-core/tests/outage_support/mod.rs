//! Shared fixture of the `outage_*` tests: a [`ResilientStore`] over a fault-injected
//! in-memory store and a fault-injected in-memory journal, and small episode builders.
//! Each test file uses a different subset, hence the `dead_code` allowance.
#![allow(
    dead_code,
    reason = "each outage_* test binary uses a subset of the helpers"
)]

use std::sync::Arc;
use std::time::Duration;

use memory_core::coordinator::BreakerConfig;
use memory_core::store::{
    DurableStore, FaultInjector, FaultPlan, Faulty, InMemoryJournal, InMemoryStore,
};
use memory_core::{
    Episode, EpisodeId, NewStep, Outcome, ReplayReport, ResilienceConfig, ResilientStore, Step,
    TaskContext, time,
};

/// The store under test and handles on everything behind it.
pub struct Fixture {
    /// The store under test.
    pub store: Arc<ResilientStore>,
    /// The durable store behind it (`inner.inner()` bypasses the faults).
    pub inner: Arc<Faulty<InMemoryStore>>,
    /// The journal behind it.
    pub journal: Arc<Faulty<InMemoryJournal>>,
    /// Faults of the durable store.
    pub faults: Arc<FaultInjector>,
    /// Faults of the journal.
    pub journal_faults: Arc<FaultInjector>,
}

/// A config with the given breaker threshold, cool-down (seconds) and probe count.
pub fn config(failure_threshold: u32, cool_down_secs: u64, probes: u32) -> ResilienceConfig {
    ResilienceConfig {
        breaker: BreakerConfig {
            failure_threshold,
            cool_down: Duration::from_secs(cool_down_secs),
            half_open_probes: probes,
        },
        ..ResilienceConfig::default()
    }
}

/// A fresh fixture with no faults planned.
pub async fn fixture(config: ResilienceConfig) -> Fixture {
    let faults = FaultInjector::new(FaultPlan::none());
    let journal_faults = FaultInjector::new(FaultPlan::none());
    let inner = Arc::new(Faulty::new(InMemoryStore::new(), faults.clone()));
    let journal = Arc::new(Faulty::new(InMemoryJournal::new(), journal_faults.clone()));
    let store = Arc::new(
        ResilientStore::open(inner.clone(), journal.clone(), config)
            .await
            .expect("open"),
    );
    Fixture {
        store,
        inner,
        journal,
        faults,
        journal_faults,
    }
}

impl Fixture {
    /// A second store over the same durable store and journal, as after a process restart.
    pub async fn reopen(&self, config: ResilienceConfig) -> Arc<ResilientStore> {
        Arc::new(
            ResilientStore::open(self.inner.clone(), self.journal.clone(), config)
                .await
                .expect("reopen"),
        )
    }

    /// Switch a transient outage of the durable store on or off.
    pub fn outage(&self, on: bool) {
        self.faults.set_plan(FaultPlan {
            outage: on,
            transient: true,
            ..FaultPlan::none()
        });
    }

    /// The durable store's content, read around the faults.
    pub async fn stored(&self) -> Vec<Episode> {
        all_episodes(self.inner.inner()).await
    }
}

/// Every episode of `store`, in id order.
pub async fn all_episodes(store: &dyn DurableStore) -> Vec<Episode> {
    let page = store.scan_summaries(None, 10_000).await.expect("scan");
    assert!(page.next_after.is_none());
    let mut out = Vec::new();
    for s in page.items {
        out.push(store.get_episode(s.id).await.expect("get").expect("listed"));
    }
    out
}

/// Wait out the cool-down, then replay until the journal is drained (at most `rounds`
/// calls); returns the reports.
pub async fn drain(
    store: &ResilientStore,
    cool_down: Duration,
    rounds: usize,
) -> Vec<ReplayReport> {
    let mut reports = Vec::new();
    for _ in 0..rounds {
        tokio::time::advance(cool_down).await;
        let r = store.replay().await.expect("replay");
        let done = r.remaining == 0 && r.deferred.is_none();
        reports.push(r);
        if done {
            return reports;
        }
    }
    panic!("journal not drained after {rounds} rounds: {reports:?}");
}

/// A new in-progress episode of namespace `ns`.
pub fn episode(ns: &str) -> Episode {
    Episode::new(
        EpisodeId::new(),
        format!("task in {ns}"),
        TaskContext::new(ns, "retail", "refund"),
        time::now(),
    )
}

/// `n` steps numbered from `from`.
pub fn steps(from: u32, n: u32) -> Vec<Step> {
    (from..from + n)
        .map(|i| {
            Step::from_new(
                NewStep::new(format!("tool_{}", i % 3), format!("{{\"i\":{i}}}")).with_output("ok"),
                i,
                time::now(),
            )
        })
        .collect()
}

/// `e` completed with `steps` (which must include the stored ones), at the next version.
pub fn completed(mut e: Episode, steps: Vec<Step>) -> Episode {
    e.steps = steps;
    e.outcome = Some(Outcome::success("done"));
    e.reward = 1.0;
    e.completed_at = Some(time::now());
    e.version += 1;
    e
}

/// `e` with `steps` appended (what the store holds after an append).
pub fn with_steps(mut e: Episode, more: &[Step]) -> Episode {
    e.steps.extend_from_slice(more);
    e
}
