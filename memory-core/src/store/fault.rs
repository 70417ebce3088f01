//! A fault-injecting wrapper around any store: deterministic, seedable, switchable at runtime.
//!
//! [`Faulty`] wraps a [`DurableStore`], [`CacheStore`] or [`Journal`] and consults a shared
//! [`FaultInjector`] before every call. The plan can fail the Nth call, fail chosen operations,
//! fail at a seeded random rate, add latency, or simulate an outage (by call-number window or
//! by switch). Failures can happen before the inner call (nothing written) or after it (written,
//! but the caller sees an error: the ambiguous commit a lost connection produces).

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::episode::{Episode, EpisodeSummary, Step};
use crate::error::{Error, ErrorKind, Result};
use crate::id::EpisodeId;
use crate::store::cache::{CacheStats, CacheStore, CachedVersion};
use crate::store::durable::{ChangeMark, DurableStore, ListRequest, Page};
use crate::store::journal::{Journal, JournalEntry, JournalSeq};

/// Every operation a wrapped store can be asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// `DurableStore::create_episode`.
    Create,
    /// `DurableStore::append_steps`.
    AppendSteps,
    /// `DurableStore::complete_episode`.
    Complete,
    /// `DurableStore::update_episode`.
    Update,
    /// `DurableStore::delete_episode`.
    Delete,
    /// `DurableStore::get_episode`.
    Get,
    /// `DurableStore::list_episodes`.
    List,
    /// `DurableStore::scan_summaries` (and the other reads made to build an index,
    /// `scan_versions`, `summaries_of`, `change_mark` and `changed_since`).
    ScanSummaries,
    /// `CacheStore::get`.
    CacheGet,
    /// `CacheStore::put`.
    CachePut,
    /// `CacheStore::invalidate`.
    CacheInvalidate,
    /// `CacheStore::scan`.
    CacheScan,
    /// `CacheStore::clear`.
    CacheClear,
    /// `Journal::append`.
    JournalAppend,
    /// `Journal::read`.
    JournalRead,
    /// `Journal::remove_through`.
    JournalRemove,
    /// `Journal::depth`.
    JournalDepth,
}

impl Op {
    /// Whether the operation writes (and so may be applied before an injected error).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Op::Create
                | Op::AppendSteps
                | Op::Complete
                | Op::Update
                | Op::Delete
                | Op::CachePut
                | Op::CacheInvalidate
                | Op::CacheClear
                | Op::JournalAppend
                | Op::JournalRemove
        )
    }
}

/// What to inject. Call numbers count every call through the injector from 0.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Fail exactly these call numbers.
    pub fail_calls: BTreeSet<u64>,
    /// Fail every call of these operations.
    pub fail_ops: HashSet<Op>,
    /// Fail each call with this probability (0.0..=1.0), drawn from a generator seeded by
    /// `seed`: the same plan and call sequence fail the same calls.
    pub failure_rate: f64,
    /// Seed of the random failures.
    pub seed: u64,
    /// Every call whose number falls in this window fails (a timed outage).
    pub outage_calls: Option<Range<u64>>,
    /// While true, every call fails (an outage switched by the test).
    pub outage: bool,
    /// Added before every call (tokio time, so a paused clock controls it).
    pub latency: Duration,
    /// Apply writes to the inner store and then return the error (ambiguous commit).
    pub fail_after_write: bool,
    /// The injected errors are transient (`Unavailable`) when true, else permanent `Storage`.
    pub transient: bool,
}

impl FaultPlan {
    /// No faults: every call passes through.
    pub fn none() -> Self {
        Self::default()
    }

    /// Fail call number `n` with a transient error.
    pub fn fail_nth(n: u64) -> Self {
        Self {
            fail_calls: [n].into(),
            transient: true,
            ..Self::default()
        }
    }

    /// Fail every call of `ops` with a transient error.
    pub fn fail_ops(ops: impl IntoIterator<Item = Op>) -> Self {
        Self {
            fail_ops: ops.into_iter().collect(),
            transient: true,
            ..Self::default()
        }
    }

    /// Fail a seeded random share of calls with transient errors.
    pub fn random(failure_rate: f64, seed: u64) -> Self {
        Self {
            failure_rate,
            seed,
            transient: true,
            ..Self::default()
        }
    }
}

#[derive(Debug)]
struct State {
    plan: FaultPlan,
    calls: u64,
    injected: u64,
    rng: u64,
}

/// The shared switchboard of one or more [`Faulty`] wrappers.
#[derive(Debug)]
pub struct FaultInjector {
    state: Mutex<State>,
}

/// splitmix64: a tiny, well-mixed, seedable generator; enough for fault schedules.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What the injector decided for one call.
#[derive(Debug)]
struct Decision {
    latency: Duration,
    error: Option<Error>,
    after_write: bool,
}

impl FaultInjector {
    /// An injector following `plan`.
    pub fn new(plan: FaultPlan) -> Arc<Self> {
        let rng = plan.seed;
        Arc::new(Self {
            state: Mutex::new(State {
                plan,
                calls: 0,
                injected: 0,
                rng,
            }),
        })
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic while holding this lock can only come from a bug in this file; recover the
        // state rather than cascade panics into unrelated tests.
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Replace the plan (the call counter and the generator state carry on).
    pub fn set_plan(&self, plan: FaultPlan) {
        self.with_state(|s| {
            s.rng = plan.seed ^ s.calls;
            s.plan = plan;
        });
    }

    /// Switch the outage on or off.
    pub fn set_outage(&self, outage: bool) {
        self.with_state(|s| s.plan.outage = outage);
    }

    /// Calls seen so far.
    pub fn calls(&self) -> u64 {
        self.with_state(|s| s.calls)
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.with_state(|s| s.injected)
    }

    fn decide(&self, op: Op) -> Decision {
        self.with_state(|s| {
            let n = s.calls;
            s.calls += 1;
            let p = &s.plan;
            let mut fail = p.outage
                || p.fail_calls.contains(&n)
                || p.fail_ops.contains(&op)
                || p.outage_calls.as_ref().is_some_and(|w| w.contains(&n));
            if p.failure_rate > 0.0 {
                let draw = (splitmix(&mut s.rng) >> 11) as f64 / (1u64 << 53) as f64;
                fail |= draw < p.failure_rate;
            }
            let p = &s.plan;
            let error = fail.then(|| {
                let kind = if p.transient {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Storage
                };
                Error::new(kind, format!("injected fault on call {n} ({op:?})"))
                    .transient(p.transient)
            });
            if error.is_some() {
                s.injected += 1;
            }
            Decision {
                latency: p.latency,
                error,
                after_write: p.fail_after_write && op.is_write(),
            }
        })
    }
}

/// A store wrapped with fault injection.
#[derive(Debug)]
pub struct Faulty<S> {
    inner: S,
    faults: Arc<FaultInjector>,
}

impl<S> Faulty<S> {
    /// Wrap `inner`, following `faults` (which may be shared by several wrappers).
    pub fn new(inner: S, faults: Arc<FaultInjector>) -> Self {
        Self { inner, faults }
    }

    /// The injector, to change the plan at runtime.
    pub fn faults(&self) -> &Arc<FaultInjector> {
        &self.faults
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn run<'a, T, F>(&'a self, op: Op, call: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>> + Send + 'a,
    {
        let d = self.faults.decide(op);
        if !d.latency.is_zero() {
            tokio::time::sleep(d.latency).await;
        }
        match d.error {
            None => call.await,
            Some(e) if d.after_write => {
                // The write happens; the caller is told it failed.
                let _applied = call.await;
                Err(e)
            }
            Some(e) => Err(e),
        }
    }
}

#[async_trait]
impl<S: DurableStore> DurableStore for Faulty<S> {
    async fn create_episode(&self, episode: &Episode) -> Result<()> {
        self.run(Op::Create, self.inner.create_episode(episode))
            .await
    }
    async fn append_steps(&self, id: EpisodeId, steps: &[Step]) -> Result<()> {
        self.run(Op::AppendSteps, self.inner.append_steps(id, steps))
            .await
    }
    async fn complete_episode(&self, episode: &Episode) -> Result<()> {
        self.run(Op::Complete, self.inner.complete_episode(episode))
            .await
    }
    async fn update_episode(&self, episode: &Episode) -> Result<()> {
        self.run(Op::Update, self.inner.update_episode(episode))
            .await
    }
    async fn delete_episode(&self, id: EpisodeId) -> Result<bool> {
        self.run(Op::Delete, self.inner.delete_episode(id)).await
    }
    async fn get_episode(&self, id: EpisodeId) -> Result<Option<Episode>> {
        self.run(Op::Get, self.inner.get_episode(id)).await
    }
    async fn list_episodes(&self, request: &ListRequest) -> Result<Page<Episode>> {
        self.run(Op::List, self.inner.list_episodes(request)).await
    }
    async fn scan_summaries(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<EpisodeSummary>> {
        self.run(Op::ScanSummaries, self.inner.scan_summaries(after, limit))
            .await
    }
    async fn scan_versions(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<(EpisodeId, u64)>> {
        self.run(Op::ScanSummaries, self.inner.scan_versions(after, limit))
            .await
    }
    async fn change_mark(&self) -> Result<ChangeMark> {
        self.run(Op::ScanSummaries, self.inner.change_mark()).await
    }
    async fn changed_since(&self, since: ChangeMark) -> Result<Option<Vec<EpisodeId>>> {
        self.run(Op::ScanSummaries, self.inner.changed_since(since))
            .await
    }
    async fn summaries_of(&self, ids: &[EpisodeId]) -> Result<Vec<EpisodeSummary>> {
        self.run(Op::ScanSummaries, self.inner.summaries_of(ids))
            .await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
    fn write_stats(&self) -> Option<crate::store::WriteStats> {
        self.inner.write_stats()
    }
}

#[async_trait]
impl<S: CacheStore> CacheStore for Faulty<S> {
    async fn get(&self, id: EpisodeId) -> Result<Option<Episode>> {
        self.run(Op::CacheGet, self.inner.get(id)).await
    }
    async fn put(&self, episode: &Episode) -> Result<()> {
        self.run(Op::CachePut, self.inner.put(episode)).await
    }
    async fn invalidate(&self, id: EpisodeId) -> Result<()> {
        self.run(Op::CacheInvalidate, self.inner.invalidate(id))
            .await
    }
    async fn scan(&self, after: Option<EpisodeId>, limit: usize) -> Result<Page<CachedVersion>> {
        self.run(Op::CacheScan, self.inner.scan(after, limit)).await
    }
    async fn clear(&self) -> Result<()> {
        self.run(Op::CacheClear, self.inner.clear()).await
    }
    fn stats(&self) -> CacheStats {
        self.inner.stats()
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

#[async_trait]
impl<S: Journal> Journal for Faulty<S> {
    async fn append(&self, entry: &JournalEntry) -> Result<JournalSeq> {
        self.run(Op::JournalAppend, self.inner.append(entry)).await
    }
    async fn read(
        &self,
        after: Option<JournalSeq>,
        limit: usize,
    ) -> Result<Vec<(JournalSeq, JournalEntry)>> {
        self.run(Op::JournalRead, self.inner.read(after, limit))
            .await
    }
    async fn remove_through(&self, seq: JournalSeq) -> Result<()> {
        self.run(Op::JournalRemove, self.inner.remove_through(seq))
            .await
    }
    async fn depth(&self) -> Result<u64> {
        self.run(Op::JournalDepth, self.inner.depth()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episode::TaskContext;
    use crate::store::memory::InMemoryStore;
    use crate::time;

    fn episode() -> Episode {
        Episode::new(
            EpisodeId::new(),
            "d",
            TaskContext::new("ns", "d", "t"),
            time::now(),
        )
    }

    #[tokio::test]
    async fn fails_exactly_the_nth_call() {
        let s = Faulty::new(
            InMemoryStore::new(),
            FaultInjector::new(FaultPlan::fail_nth(1)),
        );
        s.create_episode(&episode()).await.unwrap();
        let e = s.create_episode(&episode()).await.unwrap_err();
        assert!(e.is_transient());
        s.create_episode(&episode()).await.unwrap();
        assert_eq!(s.faults().calls(), 3);
        assert_eq!(s.faults().injected(), 1);
        let all = s.inner().scan_summaries(None, 10).await.unwrap();
        assert_eq!(all.items.len(), 2, "the failed call wrote nothing");
    }

    #[tokio::test]
    async fn fails_chosen_ops_only() {
        let s = Faulty::new(
            InMemoryStore::new(),
            FaultInjector::new(FaultPlan::fail_ops([Op::Get])),
        );
        let e = episode();
        s.create_episode(&e).await.unwrap();
        assert!(s.get_episode(e.id).await.is_err());
        assert!(
            s.list_episodes(&ListRequest {
                namespace: "ns".into(),
                after: None,
                limit: 10
            })
            .await
            .is_ok()
        );
    }

    #[tokio::test]
    async fn outage_switch_and_window() {
        let faults = FaultInjector::new(FaultPlan {
            outage_calls: Some(2..4),
            ..FaultPlan::none()
        });
        let s = Faulty::new(InMemoryStore::new(), faults.clone());
        let results: Vec<bool> = {
            let mut v = Vec::new();
            for _ in 0..6 {
                v.push(s.create_episode(&episode()).await.is_ok());
            }
            v
        };
        assert_eq!(results, [true, true, false, false, true, true]);
        faults.set_outage(true);
        assert!(s.create_episode(&episode()).await.is_err());
        faults.set_outage(false);
        assert!(s.create_episode(&episode()).await.is_ok());
    }

    #[tokio::test]
    async fn random_failures_are_reproducible_from_the_seed() {
        async fn pattern(seed: u64) -> Vec<bool> {
            let s = Faulty::new(
                InMemoryStore::new(),
                FaultInjector::new(FaultPlan::random(0.3, seed)),
            );
            let mut v = Vec::new();
            for _ in 0..200 {
                v.push(s.get_episode(EpisodeId::new()).await.is_ok());
            }
            v
        }
        let a = pattern(7).await;
        assert_eq!(a, pattern(7).await);
        assert_ne!(a, pattern(8).await);
        let failures = a.iter().filter(|ok| !**ok).count();
        assert!(
            (30..=90).contains(&failures),
            "{failures} of 200 at rate 0.3"
        );
    }

    #[tokio::test]
    async fn fail_after_write_applies_then_errors() {
        let s = Faulty::new(
            InMemoryStore::new(),
            FaultInjector::new(FaultPlan {
                fail_after_write: true,
                ..FaultPlan::fail_ops([Op::Create])
            }),
        );
        let e = episode();
        let err = s.create_episode(&e).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(s.inner().get_episode(e.id).await.unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn latency_uses_tokio_time() {
        let s = Faulty::new(
            InMemoryStore::new(),
            FaultInjector::new(FaultPlan {
                latency: Duration::from_secs(5),
                ..FaultPlan::none()
            }),
        );
        let start = tokio::time::Instant::now();
        s.get_episode(EpisodeId::new()).await.unwrap();
        assert_eq!(start.elapsed().as_secs(), 5);
    }
}
