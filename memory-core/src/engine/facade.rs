//! [`SelfLearningMemory`]: the public API and the order of work inside each call.
//!
//! Writes go to the durable store first and are acknowledged only when it has them; the cache
//! is filled afterwards and a cache failure never fails a write (the entry is invalidated
//! instead). This file never holds a lock across `.await`; in-progress state lives in
//! `live`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tracing::{Instrument, warn};

use crate::config::MemoryConfig;
use crate::coordinator::{ReplayReport, ResilientStore};
use crate::engine::builder::MemoryBuilder;
use crate::engine::compensate::{self, Stage, Undo, WriteKind};
use crate::engine::fence::{CacheFence, Ticket};
use crate::engine::gate::Gate;
use crate::engine::jobs::{Job, Tick};
use crate::engine::live::{self, LiveEpisodes};
use crate::engine::permits::{PermitStats, Permits};
use crate::engine::reconcile::{self, ReconcileReport};
use crate::engine::repairs::{RepairLog, RepairReason};
use crate::engine::snapshots::{self, IndexOpen, SnapshotWrites, Snapshots};
use crate::episode::{Completion, Episode, EpisodeUpdate, NewStep, TaskContext};
use crate::error::{Error, ErrorKind, Result};
use crate::id::EpisodeId;
use crate::index::SpatiotemporalIndex;
use crate::metrics::{
    BreakerSnapshot, EngineMetrics, MeasuredCache, MeasuredDurable, MeasuredJournal,
    MetricsSnapshot, Timer,
};
use crate::retrieval::{
    RetrievalCounts, RetrievalFlags, RetrievalHit, RetrievalQuery, Retriever, ScoreBreakdown,
};
use crate::snapshot::{SnapshotDir, SnapshotStats};
use crate::store::{CacheStore, ChangeMark, DurableStore, HotCache, Journal, ListRequest, Page};
use crate::time;

struct Inner {
    durable: Arc<dyn DurableStore>,
    cache: Arc<dyn CacheStore>,
    config: MemoryConfig,
    live: LiveEpisodes,
    gate: Gate,
    permits: Permits,
    retriever: Retriever,
    /// The durable store's breaker and journal, when a journal was configured (`durable` is
    /// then this same store).
    resilient: Option<Arc<ResilientStore>>,
    /// The background job; taken and stopped by `shutdown`, cancelled on drop.
    job: Mutex<Option<Job>>,
    /// Serialises reconciliation passes (the job's and `reconcile()` calls).
    reconciling: tokio::sync::Mutex<()>,
    /// Keeps reads that raced a write from refilling the cache with an old copy.
    fence: CacheFence,
    /// Repairs owed after failed compensations or cache invalidations.
    repairs: RepairLog,
    /// Latencies and error counts (the rest of `metrics()` is read from the parts).
    metrics: Arc<EngineMetrics>,
    /// The in-process tier in front of the cache store (`cache` reads through it), when on.
    hot: Option<Arc<HotCache<Arc<dyn CacheStore>>>>,
    /// Where index snapshots go, when configured.
    snapshots: Option<Snapshots>,
    /// How the index was built at open.
    index_open: IndexOpen,
    /// Serialises rebuilds of the index after a damaged shard file; holds how many were done.
    rebuilding: tokio::sync::Mutex<u64>,
    /// How many rebuilds finished (read without waiting for one in progress).
    rebuilt: AtomicU64,
}

impl Inner {
    /// Write an index snapshot to `s`, with the durable store's change mark when
    /// [`Inner::settled_mark`] finds the index holds everything written before it (and
    /// `markable`: shutdown passes false when it could not drain). No index rebuild runs
    /// while the snapshot is written.
    async fn snapshot(&self, s: &Snapshots, markable: bool) -> Result<SnapshotStats> {
        let mark = if markable {
            self.settled_mark().await
        } else {
            None
        };
        let _rebuilds = self.rebuilding.lock().await;
        s.persist(self.retriever.index(), mark).await
    }

    /// The durable store's change mark, read and then settled: every write that committed
    /// before it was read had entered the gate before committing, so once the passes admitted
    /// before the read are gone (`Gate::settle`), the index holds those writes, unless a repair
    /// is owed. A write after the read moves the mark, so an open that finds the mark still
    /// the same knows nothing was written since, and one that finds it in the store's
    /// history re-reads only what the history lists after it. `None` if the mark is
    /// unreadable (no durable store, or journaled writes waiting for replay) or a repair is
    /// owed.
    async fn settled_mark(&self) -> Option<ChangeMark> {
        let mark = match self.durable.change_mark().await {
            Ok(mark) => mark,
            Err(e) => {
                warn!(error = %e, "the durable store's change mark is unreadable; the snapshot records none");
                return None;
            }
        };
        self.gate.settle().await;
        (self.repairs.pending() == 0).then_some(mark)
    }

    /// Spill cold index shards until the index fits what the memory budget leaves after the
    /// hot cache and the in-progress episodes (no-op without a budget).
    async fn enforce_budget(&self) -> Result<usize> {
        let Some(share) = index_share(&self.config, self.live.approx_bytes()) else {
            return Ok(0);
        };
        let index = self.retriever.index().clone();
        index.set_budget(share);
        tokio::task::spawn_blocking(move || index.enforce_budget())
            .await
            .map_err(|e| Error::storage("the budget task panicked").with_source(e))?
    }

    /// Search the index for `query`, on the blocking pool when a shard may have to be loaded
    /// from disk first (a shard spilled, or any under a memory budget). If a shard file turns
    /// out damaged, the index is rebuilt from the durable store and the search runs again.
    async fn search(self: &Arc<Self>, query: &RetrievalQuery) -> Result<Vec<RetrievalHit>> {
        let seen = self.rebuilt.load(Ordering::Acquire);
        match self.search_once(query).await {
            Err(e) if e.kind() == ErrorKind::Corrupt => {
                self.rebuild_index(seen, &e).await?;
                self.search_once(query).await
            }
            other => other,
        }
    }

    async fn search_once(self: &Arc<Self>, query: &RetrievalQuery) -> Result<Vec<RetrievalHit>> {
        let index = self.retriever.index();
        if self.config.memory_budget_bytes.is_none() && index.spilled_shards() == 0 {
            return self.retriever.search(query);
        }
        let inner = self.clone();
        let query = query.clone();
        tokio::task::spawn_blocking(move || inner.retriever.search(&query))
            .await
            .map_err(|e| Error::storage("the search task panicked").with_source(e))?
    }

    /// Rebuild the index from the durable store because loading a shard failed with `failed`
    /// (a damaged spill or snapshot file), unless a rebuild finished since the caller saw
    /// `seen` rebuilds. Queries meanwhile run on the old index; those that need the damaged
    /// shard wait here for the rebuild.
    async fn rebuild_index(&self, seen: u64, failed: &Error) -> Result<()> {
        let mut done = self.rebuilding.lock().await;
        if *done != seen {
            return Ok(());
        }
        tracing::error!(error = %failed, "an index shard could not be loaded; rebuilding the index from the durable store");
        let episodes = snapshots::rebuild(self.retriever.index(), self.durable.as_ref()).await?;
        tracing::info!(episodes, "index rebuilt");
        *done += 1;
        self.rebuilt.store(*done, Ordering::Release);
        Ok(())
    }

    /// After a snapshot open, load the shards left spilled one at a time in the background,
    /// so only the first queries pay for reading them. Not under a memory budget (there,
    /// shards load when used). Stops at shutdown; a damaged shard file triggers the rebuild.
    fn load_spilled_in_background(self: &Arc<Self>) {
        if self.config.memory_budget_bytes.is_some() || self.retriever.index().spilled_shards() == 0
        {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { break };
                let Ok(_pass) = inner.gate.enter() else { break };
                let index = inner.retriever.index().clone();
                let seen = inner.rebuilt.load(Ordering::Acquire);
                let loaded = tokio::task::spawn_blocking(move || index.load_one_spilled())
                    .await
                    .map_err(|e| Error::storage("the shard load task panicked").with_source(e))
                    .and_then(|r| r);
                match loaded {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) if e.kind() == ErrorKind::Corrupt => {
                        if let Err(e) = inner.rebuild_index(seen, &e).await {
                            warn!(error = %e, "index rebuild failed; shards load when used");
                            break;
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "loading spilled shards stopped; they load when used");
                        break;
                    }
                }
            }
        });
    }

    /// Replay journaled writes if any are pending.
    async fn replay_pending(&self) -> Result<Option<ReplayReport>> {
        match &self.resilient {
            Some(r) if r.is_journaling() => Ok(Some(r.replay().await?)),
            _ => Ok(None),
        }
    }

    /// One reconciliation pass: replay the journal, then compare and repair.
    async fn reconcile(&self) -> Result<ReconcileReport> {
        // Held across the pass's awaits: two passes at once would only repeat work.
        let _one_at_a_time = self.reconciling.lock().await;
        let mut report = ReconcileReport::default();
        if let Some(r) = self.replay_pending().await? {
            report.journal_replayed = r.applied;
            report.journal_remaining = r.remaining;
            if r.remaining > 0 {
                return Ok(report);
            }
        }
        report.recorded_repaired = self.repair_recorded().await?;
        reconcile::pass(
            self.durable.as_ref(),
            self.cache.as_ref(),
            self.retriever.index(),
            &self.fence,
            &mut report,
        )
        .await?;
        if report.repairs() > 0 {
            tracing::info!(?report, "reconciliation repaired divergences");
        }
        self.metrics.reconciled(&report);
        Ok(report)
    }
}

impl Inner {
    /// Carry out the repairs recorded after failed compensations: make each episode's cache
    /// and index entries agree with the durable store. Returns how many were repaired; a
    /// repair that fails stays recorded and its error is returned.
    async fn repair_recorded(&self) -> Result<u64> {
        let mut repaired = 0;
        for owed in self.repairs.snapshot() {
            reconcile::resync(
                owed.id,
                self.durable.as_ref(),
                self.cache.as_ref(),
                self.retriever.index(),
                &self.fence,
            )
            .await?;
            self.repairs.resolve(owed);
            repaired += 1;
        }
        Ok(repaired)
    }
}

/// The background job's view of the engine: weak, so the job ends when the engine is dropped.
struct EngineTick(Weak<Inner>);

impl Tick for EngineTick {
    async fn replay(&self) -> bool {
        let Some(inner) = self.0.upgrade() else {
            return false;
        };
        if let Err(e) = inner.replay_pending().await {
            warn!(error = %e, "journal replay stopped");
        }
        if inner.repairs.pending() > 0
            && let Err(e) = inner.repair_recorded().await
        {
            warn!(error = %e, "recorded repairs stopped; retried at the next tick");
        }
        if let Err(e) = inner.enforce_budget().await {
            warn!(error = %e, "memory budget not enforced; retried at the next tick");
        }
        true
    }

    async fn reconcile(&self) -> bool {
        let Some(inner) = self.0.upgrade() else {
            return false;
        };
        if let Err(e) = inner.reconcile().await {
            warn!(error = %e, "reconciliation pass failed");
        }
        true
    }

    async fn snapshot(&self) -> bool {
        let Some(inner) = self.0.upgrade() else {
            return false;
        };
        if let Some(s) = &inner.snapshots {
            // Failures are logged and counted by `persist`.
            let _ = inner.snapshot(s, true).await;
        }
        true
    }
}

/// One retrieved episode with its relevance.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievedEpisode {
    /// The episode, as stored.
    pub episode: Episode,
    /// Relevance score (`breakdown.total()`).
    pub score: f64,
    /// The score's terms: lexical, feedback, cosine, recency, reward.
    pub breakdown: ScoreBreakdown,
}

/// An episodic memory: record task attempts, read them back, list them.
///
/// Cheap to clone; clones share one engine. Every method is safe to call concurrently.
/// See the crate docs for an example.
#[derive(Clone)]
pub struct SelfLearningMemory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SelfLearningMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfLearningMemory")
            .field("in_progress", &self.inner.live.len())
            .field("closed", &self.inner.gate.is_closed())
            .finish()
    }
}

impl SelfLearningMemory {
    /// Start building an engine.
    pub fn builder() -> MemoryBuilder {
        MemoryBuilder::default()
    }

    /// Assemble an engine and build its index from the durable store's summaries; nothing is
    /// served before the index is complete.
    pub(crate) async fn open_parts(
        durable: Arc<dyn DurableStore>,
        cache: Arc<dyn CacheStore>,
        journal: Option<Arc<dyn Journal>>,
        snapshots: Option<SnapshotDir>,
        config: MemoryConfig,
    ) -> Result<Self> {
        let metrics = Arc::new(EngineMetrics::default());
        let hot = (config.hot_cache_bytes > 0).then(|| {
            Arc::new(HotCache::new(
                cache.clone(),
                config.hot_cache_bytes,
                config.hot_cache_ttl,
            ))
        });
        let cache: Arc<dyn CacheStore> = match &hot {
            Some(h) => h.clone(),
            None => cache,
        };
        let durable: Arc<dyn DurableStore> = Arc::new(MeasuredDurable {
            inner: durable,
            metrics: metrics.clone(),
        });
        let cache: Arc<dyn CacheStore> = Arc::new(MeasuredCache {
            inner: cache,
            metrics: metrics.clone(),
        });
        let journal = journal.map(|j| -> Arc<dyn Journal> {
            Arc::new(MeasuredJournal {
                inner: j,
                metrics: metrics.clone(),
            })
        });
        // Recovery: writes journaled before a crash are replayed before anything is served.
        let (durable, resilient) = match journal {
            Some(journal) => {
                let r = Arc::new(ResilientStore::open(durable, journal, config.resilience).await?);
                if r.is_journaling() {
                    let report = r.replay().await?;
                    tracing::info!(?report, "journal replayed at open");
                }
                (r.clone() as Arc<dyn DurableStore>, Some(r))
            }
            None => (durable, None),
        };
        let retrieval = config.retrieval_config();
        let index = Arc::new(SpatiotemporalIndex::new(retrieval.index_config())?);
        if config.memory_budget_bytes.is_some() && snapshots.is_none() {
            return Err(Error::invalid(
                "memory_budget_bytes",
                "an index snapshot directory (MemoryBuilder::index_snapshots), where cold \
                 shards are spilled",
                "none",
            ));
        }
        let snapshots = snapshots
            .map(|dir| Snapshots::new(dir, &index))
            .transpose()?;
        // Known before the index opens, so that a snapshot's directory goes to its file.
        if let Some(share) = index_share(&config, 0) {
            index.set_budget(share);
        }
        let index_open =
            snapshots::open_index(&index, snapshots.as_ref(), durable.as_ref()).await?;
        let flags = Arc::new(RetrievalFlags::from(config.flags));
        let retriever = Retriever::new(index, retrieval, flags)?;
        let permits = Permits::new(
            config.max_concurrent_completions,
            config.completion_wait_timeout,
        );
        let replay_every = config.replay_interval;
        let reconcile_every = config.reconcile_interval;
        let snapshot_every = snapshots.as_ref().and(config.index_snapshot_interval);
        let inner = Arc::new(Inner {
            durable,
            cache,
            config,
            live: LiveEpisodes::default(),
            gate: Gate::default(),
            permits,
            retriever,
            resilient,
            job: Mutex::new(None),
            reconciling: tokio::sync::Mutex::new(()),
            fence: CacheFence::default(),
            repairs: RepairLog::default(),
            metrics,
            hot,
            snapshots,
            index_open,
            rebuilding: tokio::sync::Mutex::new(0),
            rebuilt: AtomicU64::new(0),
        });
        let job = Job::start(
            EngineTick(Arc::downgrade(&inner)),
            replay_every,
            reconcile_every,
            snapshot_every,
        );
        if let Ok(mut slot) = inner.job.lock() {
            *slot = Some(job);
        }
        inner.enforce_budget().await?;
        inner.load_spilled_in_background();
        Ok(Self { inner })
    }

    /// How the index was built at open: from the snapshot (and how much was caught up with
    /// the durable store) or by a rebuild, and why.
    pub fn index_open(&self) -> &IndexOpen {
        &self.inner.index_open
    }

    /// Index snapshot writes since open (`None` when no snapshot directory is configured).
    pub fn snapshot_writes(&self) -> Option<SnapshotWrites> {
        self.inner.snapshots.as_ref().map(Snapshots::writes)
    }

    /// Write an index snapshot now (also done at shutdown and periodically). Fails when no
    /// snapshot directory is configured, or with the write's error.
    pub async fn write_snapshot(&self) -> Result<SnapshotStats> {
        // No pass: the snapshot waits for the passes before it (`Inner::snapshot`); snapshot
        // writes are serialized, also with shutdown's.
        self.inner.gate.refuse_if_closed()?;
        match &self.inner.snapshots {
            Some(s) => self.inner.snapshot(s, true).await,
            None => Err(Error::invalid(
                "index_snapshots",
                "a snapshot directory (MemoryBuilder::index_snapshots)",
                "none",
            )),
        }
    }

    /// Run one reconciliation pass now: replay pending journaled writes, then compare the
    /// durable store, the cache and the index and repair every divergence. Safe while writes
    /// continue (no repair undoes a newer write); idempotent.
    #[tracing::instrument(name = "reconcile", skip_all)]
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        let _pass = self.inner.gate.enter()?;
        self.inner.reconcile().await
    }

    /// The durable store's breaker and journal, when the engine was built with a journal.
    pub fn resilience(&self) -> Option<&ResilientStore> {
        self.inner.resilient.as_deref()
    }

    /// The runtime retrieval switches (`hierarchical_index`, `diversity`,
    /// `temporal_clustering`); flipping one affects queries that start afterwards.
    pub fn retrieval_flags(&self) -> &RetrievalFlags {
        self.inner.retriever.flags()
    }

    /// How many queries took the hierarchical path, the flat path, and fell back to flat.
    pub fn retrieval_counts(&self) -> RetrievalCounts {
        self.inner.retriever.counts()
    }

    /// The in-memory index (for its statistics and memory use).
    pub fn index(&self) -> &SpatiotemporalIndex {
        self.inner.retriever.index()
    }

    /// Completions running and waiting now, and those refused as `Overloaded`.
    pub fn completion_permits(&self) -> PermitStats {
        self.inner.permits.stats()
    }

    /// A snapshot of everything the engine measures: latency distributions, index lock waits
    /// and memory, cache hit counts, retrieval paths, store errors by kind, completion
    /// permits, breaker and journal, reconciliation repairs, group-commit batch sizes. Cheap
    /// except for the index memory estimate, which walks every shard (one read lock at a
    /// time). Works during and after shutdown.
    pub fn metrics(&self) -> MetricsSnapshot {
        let inner = &self.inner;
        let m = &inner.metrics;
        let index = inner.retriever.index();
        let moves = index.shard_moves();
        let (reconciliation, reconcile_passes) = m.reconciliation();
        MetricsSnapshot {
            completion: m.completion.summary(),
            step_append: m.step_append.summary(),
            retrieval: m.retrieval.summary(),
            index_write: m.index_write.summary(),
            index_lock_waits: index.lock_waits(),
            index_memory_bytes: index.memory_bytes() as u64,
            index_budgeted_bytes: index.budgeted_bytes() as u64,
            index_spilled_shards: index.spilled_shards() as u64,
            index_shard_loads: moves.loads,
            index_shard_spills: moves.spills,
            index_shard_folds: moves.folds,
            index_memory_releases: moves.releases,
            index_rebuilds: inner.rebuilt.load(Ordering::Acquire),
            in_progress_bytes: self.inner.live.approx_bytes() as u64,
            indexed_episodes: index.len() as u64,
            in_progress_episodes: inner.live.len() as u64,
            cache: inner.cache.stats(),
            hot_cache: inner.hot.as_ref().map(|h| h.hot_stats()),
            retrieval_paths: inner.retriever.counts(),
            storage_errors: m.storage_errors(),
            completions: inner.permits.stats(),
            breaker: inner.resilient.as_ref().map(|r| BreakerSnapshot {
                state: r.breaker_state(),
                transitions: r.breaker_transitions(),
                journal_depth: r.pending_writes() as u64,
                journal_void: r.void_writes(),
            }),
            reconciliation,
            reconcile_passes,
            repairs_recorded: inner.repairs.recorded(),
            repairs_pending: inner.repairs.pending() as u64,
            writes: inner.durable.write_stats(),
        }
    }

    /// Publish [`SelfLearningMemory::metrics`] through the `metrics` facade under Prometheus
    /// names (see `memory_core::metrics` for the list). Latencies are recorded as they happen;
    /// counts and levels are published by this call, so call it before each scrape or on a
    /// timer.
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        crate::metrics::export::publish(&self.metrics());
    }

    /// The configuration in force.
    pub fn config(&self) -> &MemoryConfig {
        &self.inner.config
    }

    /// Start a new episode; durable when this returns.
    pub async fn start_episode(
        &self,
        description: impl Into<String>,
        context: TaskContext,
    ) -> Result<EpisodeId> {
        let _pass = self.inner.gate.enter()?;
        let description = description.into();
        let span = tracing::info_span!(
            "start_episode",
            namespace = %context.namespace,
            domain = %context.domain,
            episode_id = tracing::field::Empty,
        );
        async {
            self.inner
                .config
                .limits
                .check_new_episode(&description, &context)?;
            let episode = Episode::new(EpisodeId::new(), description, context, time::now());
            tracing::Span::current().record("episode_id", tracing::field::display(episode.id));
            self.inner.durable.create_episode(&episode).await?;
            if let Err(e) = self.index_insert(&episode.summary()) {
                // Never leave an episode stored but unfindable: take the write back.
                self.compensate(WriteKind::Create, Stage::Index, episode.id, None)
                    .await;
                return Err(e);
            }
            let id = episode.id;
            self.inner.live.insert(episode)?;
            Ok(id)
        }
        .instrument(span)
        .await
    }

    /// Append one step; returns its sequence number once it is durable.
    ///
    /// Concurrent calls on one episode all land, numbered 0, 1, 2… in acceptance order, each
    /// number once. A step for an unknown episode is `NotFound`; for a completed (or completing)
    /// one, `AlreadyCompleted`.
    #[tracing::instrument(name = "log_step", skip_all, fields(episode_id = %id, namespace = tracing::field::Empty, domain = tracing::field::Empty))]
    pub async fn log_step(&self, id: EpisodeId, step: NewStep) -> Result<u32> {
        let _pass = self.inner.gate.enter()?;
        let _timer = Timer::start(&self.inner.metrics.step_append);
        let limits = &self.inner.config.limits;
        limits.check_step("step", &step)?;
        let live = self
            .inner
            .live
            .get_or_load(self.inner.durable.as_ref(), id)
            .await?;
        record_scope(&live.lock()?.episode.context);
        let seqs = self.forget_if_completed(
            id,
            live::append(&live, &self.inner.durable, limits.max_steps, vec![step]).await,
        )?;
        seqs.first()
            .copied()
            .ok_or_else(|| crate::Error::storage("step flusher returned no sequence number"))
    }

    /// Append several steps atomically (one durable write, consecutive numbers); all are
    /// validated before any is queued. Returns their sequence numbers.
    #[tracing::instrument(name = "log_steps", skip_all, fields(episode_id = %id, steps = steps.len(), namespace = tracing::field::Empty, domain = tracing::field::Empty))]
    pub async fn log_steps(&self, id: EpisodeId, steps: Vec<NewStep>) -> Result<Vec<u32>> {
        let _pass = self.inner.gate.enter()?;
        let _timer = Timer::start(&self.inner.metrics.step_append);
        let limits = &self.inner.config.limits;
        for (i, s) in steps.iter().enumerate() {
            limits.check_step(&format!("steps[{i}]"), s)?;
        }
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let live = self
            .inner
            .live
            .get_or_load(self.inner.durable.as_ref(), id)
            .await?;
        record_scope(&live.lock()?.episode.context);
        self.forget_if_completed(
            id,
            live::append(&live, &self.inner.durable, limits.max_steps, steps).await,
        )
    }

    /// Complete an episode: outcome, reward (default from the outcome kind), reflection,
    /// embedding. Steps accepted before this call are all included; steps arriving after it
    /// are refused. One durable transaction; returns the completed episode.
    #[tracing::instrument(name = "complete_episode", skip_all, fields(episode_id = %id, namespace = tracing::field::Empty, domain = tracing::field::Empty))]
    pub async fn complete_episode(
        &self,
        id: EpisodeId,
        completion: impl Into<Completion>,
    ) -> Result<Episode> {
        let _pass = self.inner.gate.enter()?;
        let _timer = Timer::start(&self.inner.metrics.completion);
        let completion = completion.into();
        self.inner.config.limits.check_completion(&completion)?;
        let _permit = self.inner.permits.acquire().await?;
        let live = self
            .inner
            .live
            .get_or_load(self.inner.durable.as_ref(), id)
            .await?;
        let begun = live::begin_completion(&live, self.inner.durable.as_ref()).await;
        let mut episode = self.forget_if_completed(id, begun)?;
        record_scope(&episode.context);
        episode.reward = completion
            .reward
            .unwrap_or_else(|| completion.outcome.kind.default_reward());
        episode.outcome = Some(completion.outcome);
        episode.reflection = completion.reflection;
        episode.embedding = completion.embedding;
        episode.completed_at = Some(time::now());
        episode.version += 1;
        if let Err(e) = self.inner.durable.complete_episode(&episode).await {
            self.compensate(WriteKind::Complete, Stage::Durable, id, None)
                .await;
            live::end_completion(&live, false);
            return Err(e);
        }
        self.cache_after_write(WriteKind::Complete, &episode).await;
        if let Err(e) = self.index_insert(&episode.summary()) {
            // Stored but unfindable is not an outcome: reopen the episode and report.
            let reopened = reopened(&episode);
            self.compensate(WriteKind::Complete, Stage::Index, id, Some(&reopened))
                .await;
            live::end_completion(&live, false);
            return Err(e);
        }
        live::end_completion(&live, true);
        self.inner.live.remove(id)?;
        Ok(episode)
    }

    /// The episode with all acknowledged steps, or `NotFound`.
    ///
    /// In-progress episodes come from memory, completed ones from the cache, else from the
    /// durable store (which then refills the cache). A damaged cache record is never returned:
    /// it is invalidated and the durable copy served.
    #[tracing::instrument(name = "get_episode", skip_all, fields(episode_id = %id, namespace = tracing::field::Empty, domain = tracing::field::Empty))]
    pub async fn get_episode(&self, id: EpisodeId) -> Result<Episode> {
        let _pass = self.inner.gate.enter()?;
        let episode = self
            .read(id)
            .await?
            .ok_or_else(|| crate::Error::not_found(format!("episode {id}")))?;
        record_scope(&episode.context);
        Ok(episode)
    }

    /// The most relevant episodes for `query`, best first, each with its score and the score's
    /// terms. Scoped to the query's namespace (and domain / task type when given); only
    /// completed episodes unless the query includes in-progress ones.
    #[tracing::instrument(
        name = "retrieve",
        skip_all,
        fields(namespace = %query.namespace(), domain = ?query.domain_scope(), hits = tracing::field::Empty)
    )]
    pub async fn retrieve(&self, query: RetrievalQuery) -> Result<Vec<RetrievedEpisode>> {
        let _pass = self.inner.gate.enter()?;
        let _timer = Timer::start(&self.inner.metrics.retrieval);
        let hits = self.inner.search(&query).await?;
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            // A hit deleted since the search is gone, not an error.
            if let Some(episode) = self.read(hit.id).await? {
                out.push(RetrievedEpisode {
                    episode,
                    score: hit.score,
                    breakdown: hit.breakdown,
                });
            }
        }
        tracing::Span::current().record("hits", out.len());
        Ok(out)
    }

    /// An episode from memory (in progress), the cache, or the durable store (refilling the
    /// cache); `None` if it does not exist. A damaged cache record is never returned: it is
    /// invalidated and the durable copy served.
    async fn read(&self, id: EpisodeId) -> Result<Option<Episode>> {
        if let Some(live) = self.inner.live.get(id)? {
            let st = live.lock()?;
            if !st.stale && st.phase != live::Phase::Closed {
                return Ok(Some(st.episode.clone()));
            }
        }
        // A pending repair means the cache entry may be wrong: ask the durable store.
        let cached = if self.inner.repairs.is_pending(id) {
            Ok(None)
        } else {
            self.inner.cache.get(id).await
        };
        match cached {
            Ok(Some(e)) => return Ok(Some(e)),
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, episode_id = %id, "cache read failed; serving from the durable store");
                if e.kind() == ErrorKind::Corrupt
                    && let Err(e) = self.inner.cache.invalidate(id).await
                {
                    warn!(error = %e, episode_id = %id, "could not invalidate a corrupt cache entry");
                }
            }
        }
        let ticket = self.inner.fence.ticket(id);
        let Some(episode) = self.inner.durable.get_episode(id).await? else {
            return Ok(None);
        };
        if episode.is_completed() {
            self.cache_after_read(&episode, ticket).await;
        }
        Ok(Some(episode))
    }

    /// One page of a namespace's episodes, oldest first. `limit` must be 1..=`max_page_size`
    /// (an error otherwise, never a silent cap); follow `next_after` for the rest.
    #[tracing::instrument(name = "list_episodes", skip_all, fields(namespace = %namespace))]
    pub async fn list_episodes(
        &self,
        namespace: &str,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<Episode>> {
        let _pass = self.inner.gate.enter()?;
        let limits = &self.inner.config.limits;
        limits.check_name("namespace", namespace)?;
        self.check_page_limit(limit)?;
        self.inner
            .durable
            .list_episodes(&ListRequest {
                namespace: namespace.to_owned(),
                after,
                limit,
            })
            .await
    }

    /// One page of every stored episode of every namespace, in ascending id order, read from
    /// the durable store: what `export` streams. `limit` as for
    /// [`SelfLearningMemory::list_episodes`]; follow `next_after` for the rest.
    #[tracing::instrument(name = "scan_episodes", skip_all)]
    pub async fn scan_episodes(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<Episode>> {
        let _pass = self.inner.gate.enter()?;
        self.check_page_limit(limit)?;
        let ids = self.inner.durable.scan_summaries(after, limit).await?;
        let mut items = Vec::with_capacity(ids.items.len());
        for summary in &ids.items {
            // Deleted between the scan and the read: gone, not an error.
            if let Some(e) = self.inner.durable.get_episode(summary.id).await? {
                items.push(e);
            }
        }
        Ok(Page {
            items,
            next_after: ids.next_after,
        })
    }

    /// Store an episode exactly as given (id, version, timestamps, steps): what `import`
    /// uses to restore a backup or move between stores. Validated like any write. Importing
    /// an episode that is already stored identically is `Ok(false)` (so an interrupted import
    /// can be run again); a different episode under the same id is `Conflict`. `Ok(true)`
    /// when it was stored; it is then indexed and, if completed, cached.
    #[tracing::instrument(name = "import_episode", skip_all, fields(
        namespace = %episode.context.namespace,
        domain = %episode.context.domain,
        episode_id = %episode.id,
    ))]
    pub async fn import_episode(&self, episode: &Episode) -> Result<bool> {
        let _pass = self.inner.gate.enter()?;
        self.inner.config.limits.check_episode(episode)?;
        if let Err(e) = self.inner.durable.create_episode(episode).await {
            if e.kind() != ErrorKind::Conflict {
                return Err(e);
            }
            return match self.inner.durable.get_episode(episode.id).await? {
                Some(stored) if &stored == episode => Ok(false),
                _ => Err(crate::Error::conflict(format!(
                    "episode {} is already stored with different content",
                    episode.id
                ))),
            };
        }
        if let Err(e) = self.index_insert(&episode.summary()) {
            self.compensate(WriteKind::Import, Stage::Index, episode.id, None)
                .await;
            return Err(e);
        }
        if episode.is_completed() {
            self.cache_after_write(WriteKind::Import, episode).await;
        }
        Ok(true)
    }

    /// `limit` must be 1..=`max_page_size`: an error otherwise, never a silent cap.
    fn check_page_limit(&self, limit: usize) -> Result<()> {
        let max = self.inner.config.limits.max_page_size;
        if limit == 0 || limit > max {
            return Err(crate::Error::invalid(
                "limit",
                format!("1 to {max} (max_page_size)"),
                limit.to_string(),
            ));
        }
        Ok(())
    }

    /// Change a completed episode's tags, reflection or reward, if its version is still
    /// `expected_version` (optimistic concurrency: a stale version is `Conflict`, so no update
    /// is lost). Returns the episode at its new version. The durable store is changed first;
    /// the cache entry is then replaced. In-progress episodes are refused (`InvalidInput`):
    /// give these values at completion.
    #[tracing::instrument(name = "update_episode", skip_all, fields(episode_id = %id, namespace = tracing::field::Empty, domain = tracing::field::Empty))]
    pub async fn update_episode(
        &self,
        id: EpisodeId,
        expected_version: u64,
        update: EpisodeUpdate,
    ) -> Result<Episode> {
        let _pass = self.inner.gate.enter()?;
        let mut episode = self
            .inner
            .durable
            .get_episode(id)
            .await?
            .ok_or_else(|| crate::Error::not_found(format!("episode {id}")))?;
        record_scope(&episode.context);
        if !episode.is_completed() {
            return Err(crate::Error::invalid(
                "episode",
                "a completed episode (set tags, reflection and reward of an in-progress one at completion)",
                "in progress",
            ));
        }
        if episode.version != expected_version {
            return Err(crate::Error::conflict(format!(
                "episode {id} is at version {}, not {expected_version}: re-read and retry",
                episode.version
            )));
        }
        let mut before = episode.clone();
        update.apply_to(&mut episode);
        episode.version += 1;
        self.inner.config.limits.check_episode(&episode)?;
        if let Err(e) = self.inner.durable.update_episode(&episode).await {
            // The failure may have been an ambiguous commit: never leave the old version in
            // the cache to contradict the store (a retry must re-read the truth).
            self.compensate(WriteKind::Update, Stage::Durable, id, None)
                .await;
            return Err(e);
        }
        self.cache_after_write(WriteKind::Update, &episode).await;
        if let Err(e) = self.index_insert(&episode.summary()) {
            before.version = episode.version + 1;
            self.compensate(WriteKind::Update, Stage::Index, id, Some(&before))
                .await;
            return Err(e);
        }
        Ok(episode)
    }

    /// Drop the cached copy of an episode; the next read comes from the durable store.
    #[tracing::instrument(name = "invalidate_cache", skip_all, fields(episode_id = %id))]
    pub async fn invalidate_cache(&self, id: EpisodeId) -> Result<()> {
        let _pass = self.inner.gate.enter()?;
        self.inner.fence.advance(id);
        self.inner.cache.invalidate(id).await.inspect_err(|_| {
            self.inner.repairs.record(id, RepairReason::Cache);
        })
    }

    /// Delete an episode everywhere. `Ok(false)` if it did not exist.
    #[tracing::instrument(name = "delete_episode", skip_all, fields(episode_id = %id))]
    pub async fn delete_episode(&self, id: EpisodeId) -> Result<bool> {
        let _pass = self.inner.gate.enter()?;
        let existed = match self.inner.durable.delete_episode(id).await {
            Ok(existed) => existed,
            Err(e) => {
                // Possibly an ambiguous commit: forget what this instance holds so the next
                // read asks the durable store.
                self.compensate(WriteKind::Delete, Stage::Durable, id, None)
                    .await;
                return Err(e);
            }
        };
        self.inner.live.remove(id)?;
        if let Err(e) = self.index_remove(id) {
            warn!(error = %e, episode_id = %id, "index removal after a delete failed");
            self.compensate(WriteKind::Delete, Stage::Index, id, None)
                .await;
        }
        self.inner.fence.advance(id);
        if let Err(e) = self.inner.cache.invalidate(id).await {
            warn!(error = %e, episode_id = %id, "cache invalidation after a delete failed");
            self.compensate(WriteKind::Delete, Stage::Cache, id, None)
                .await;
        }
        Ok(existed)
    }

    /// Stop accepting work, wait (at most `shutdown_timeout`) for running operations to
    /// finish, stop the background job, then close the stores (the durable store finishes its queued writes first).
    /// Everything acknowledged before is durable whether or not this is called.
    #[tracing::instrument(name = "shutdown", skip_all)]
    pub async fn shutdown(&self) -> Result<()> {
        let drained = self
            .inner
            .gate
            .close(self.inner.config.shutdown_timeout)
            .await;
        let job = self.inner.job.lock().ok().and_then(|mut j| j.take());
        let stopped = match job {
            Some(job) => job.stop().await,
            None => Ok(()),
        };
        // Writes are drained and the job is stopped: the index is final for this run.
        let snapshot = match &self.inner.snapshots {
            Some(s) => self
                .inner
                .snapshot(s, drained.is_ok() && stopped.is_ok())
                .await
                .map(|_| ()),
            None => Ok(()),
        };
        let durable = self.inner.durable.close().await;
        let cache = self.inner.cache.close().await;
        drained.and(stopped).and(snapshot).and(durable).and(cache)
    }

    /// Carry out [`compensate::plan`] for `write` failing at `stage`; `restore` is the state
    /// to write back for [`Undo::RestoreDurable`]. An undo step that fails is logged and
    /// recorded as a repair (never dropped); later steps that depend on it are skipped.
    /// The caller then returns its error, or acknowledges when the plan says so.
    async fn compensate(
        &self,
        write: WriteKind,
        stage: Stage,
        id: EpisodeId,
        restore: Option<&Episode>,
    ) {
        let plan = compensate::plan(write, stage);
        let mut restored = false;
        for step in plan.undo {
            let done: Result<()> = match step {
                Undo::ForgetLive => self.inner.live.remove(id),
                Undo::InvalidateCache => {
                    self.inner.fence.advance(id);
                    self.inner.cache.invalidate(id).await
                }
                Undo::DeleteDurable => self.inner.durable.delete_episode(id).await.map(|_| ()),
                Undo::RestoreDurable => match restore {
                    Some(r) => {
                        let done = self.inner.durable.update_episode(r).await;
                        restored = done.is_ok();
                        done
                    }
                    None => Err(crate::Error::storage("no state to restore was given")),
                },
                Undo::IndexRestored => match restore {
                    Some(r) if restored => self.index_insert(&r.summary()).map(|_| ()),
                    // The restore failed and is already recorded.
                    _ => Ok(()),
                },
            };
            if let Err(e) = done {
                warn!(error = %e, episode_id = %id, ?write, ?stage, undo = ?step, "compensation failed; repair recorded");
                let reason = match step {
                    Undo::InvalidateCache => RepairReason::Cache,
                    _ => RepairReason::Compensation,
                };
                self.inner.repairs.record(id, reason);
            }
        }
        if let Some(reason) = plan.record {
            self.inner.repairs.record(id, reason);
        }
        tracing::debug!(episode_id = %id, ?write, ?stage, acknowledged = plan.acknowledge, "compensated");
    }

    /// Drop the in-progress entry of an episode the durable store says is completed (another
    /// instance, or an ambiguous commit, completed it), then pass `result` on.
    fn forget_if_completed<T>(&self, id: EpisodeId, result: Result<T>) -> Result<T> {
        if let Err(e) = &result
            && e.kind() == ErrorKind::AlreadyCompleted
            && let Some(live) = self.inner.live.get(id)?
            && live.lock()?.phase != live::Phase::Completing
        {
            self.inner.live.remove(id)?;
        }
        result
    }

    /// Insert or replace an episode's summary in the index, timed.
    fn index_insert(&self, summary: &crate::EpisodeSummary) -> Result<Option<u64>> {
        let _timer = Timer::start(&self.inner.metrics.index_write);
        self.inner.retriever.index().insert(summary)
    }

    /// Remove an episode from the index, timed.
    fn index_remove(&self, id: EpisodeId) -> Result<bool> {
        let _timer = Timer::start(&self.inner.metrics.index_write);
        self.inner.retriever.index().remove(id)
    }

    /// Put the episode a write just made durable into the cache (after advancing its fence,
    /// so racing reads cannot put an older copy back); on failure, compensate.
    async fn cache_after_write(&self, write: WriteKind, episode: &Episode) {
        self.inner.fence.advance(episode.id);
        if let Err(e) = self.inner.cache.put(episode).await {
            warn!(error = %e, episode_id = %episode.id, "cache write failed; invalidating");
            self.compensate(write, Stage::Cache, episode.id, None).await;
        }
    }

    /// Put an episode read from the durable store into the cache, unless a write of it
    /// committed since the read began (`ticket`): then the copy may be old and is dropped.
    async fn cache_after_read(&self, episode: &Episode, ticket: Ticket) {
        let id = episode.id;
        let filled = match self.inner.cache.put(episode).await {
            Ok(()) if self.inner.fence.unchanged(id, ticket) => return,
            Ok(()) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = &filled {
            warn!(error = %e, episode_id = %id, "cache fill failed; invalidating");
        }
        if let Err(e) = self.inner.cache.invalidate(id).await {
            warn!(error = %e, episode_id = %id, "cache invalidation failed; repair recorded");
            self.inner.repairs.record(id, RepairReason::Cache);
        }
    }
}

/// What the memory budget leaves the index once the hot cache and `live` bytes of
/// in-progress episodes are taken out (at least a byte); `None` without a budget.
fn index_share(config: &MemoryConfig, live: usize) -> Option<usize> {
    let budget = config.memory_budget_bytes?;
    let share = budget
        .saturating_sub(config.hot_cache_bytes)
        .saturating_sub(live as u64)
        .max(1);
    Some(usize::try_from(share).unwrap_or(usize::MAX))
}

/// Fill the current span's `namespace` and `domain` fields once the episode is known.
fn record_scope(context: &TaskContext) {
    let span = tracing::Span::current();
    span.record("namespace", context.namespace.as_str());
    span.record("domain", context.domain.as_str());
}

/// The in-progress state a completion whose index update failed goes back to, one version
/// after the completion (steps kept).
fn reopened(completed: &Episode) -> Episode {
    let mut e = completed.clone();
    e.outcome = None;
    e.completed_at = None;
    e.reward = 0.0;
    e.reflection = None;
    e.embedding = None;
    e.version += 1;
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episode::{NewStep, Outcome};
    use crate::store::InMemoryStore;

    async fn engine(store: Arc<InMemoryStore>) -> SelfLearningMemory {
        SelfLearningMemory::builder()
            .durable(store)
            .open()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_index_failure_at_start_takes_the_create_back() {
        let store = Arc::new(InMemoryStore::new());
        let m = engine(store.clone()).await;
        m.index().fail_next_inserts(1);
        let e = m
            .start_episode("t", TaskContext::new("ns", "d", "t"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("injected index failure"), "{e}");
        let page = store.scan_summaries(None, 10).await.unwrap();
        assert!(page.items.is_empty(), "no stored-but-unfindable episode");
    }

    #[tokio::test]
    async fn an_index_failure_at_completion_reopens_the_episode() {
        let store = Arc::new(InMemoryStore::new());
        let m = engine(store.clone()).await;
        let id = m
            .start_episode("t", TaskContext::new("ns", "d", "t"))
            .await
            .unwrap();
        m.log_step(id, NewStep::new("a", "")).await.unwrap();
        m.index().fail_next_inserts(1);
        let e = m
            .complete_episode(id, Outcome::success("ok"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("injected index failure"), "{e}");

        let stored = store.get_episode(id).await.unwrap().unwrap();
        assert!(
            !stored.is_completed(),
            "the durable completion was compensated"
        );
        assert_eq!(
            stored.version, 3,
            "reopened one version after the completion"
        );
        assert_eq!(
            m.index().contains(id).unwrap(),
            Some(3),
            "the index has the reopened episode"
        );
        assert!(
            m.inner.cache.get(id).await.unwrap().is_none(),
            "no cache entry"
        );

        // The episode is usable again: more steps, then a successful completion.
        assert_eq!(m.log_step(id, NewStep::new("b", "")).await.unwrap(), 1);
        let done = m
            .complete_episode(id, Outcome::success("ok"))
            .await
            .unwrap();
        assert_eq!(done.version, 4);
        assert_eq!(m.index().contains(id).unwrap(), Some(4));
        assert_eq!(store.get_episode(id).await.unwrap(), Some(done));
    }

    #[tokio::test]
    async fn an_index_failure_at_update_restores_the_previous_state() {
        let store = Arc::new(InMemoryStore::new());
        let m = engine(store.clone()).await;
        let id = m
            .start_episode("t", TaskContext::new("ns", "d", "t"))
            .await
            .unwrap();
        let done = m
            .complete_episode(id, Outcome::success("ok"))
            .await
            .unwrap();
        m.index().fail_next_inserts(1);
        let e = m
            .update_episode(id, done.version, EpisodeUpdate::default().reflection("new"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("injected index failure"), "{e}");
        let stored = store.get_episode(id).await.unwrap().unwrap();
        assert_eq!(stored.reflection, done.reflection, "the update was undone");
        assert_eq!(stored.version, done.version + 2, "one version for the undo");
        assert_eq!(m.index().contains(id).unwrap(), Some(stored.version));
        assert_eq!(m.get_episode(id).await.unwrap(), stored, "no stale cache");
    }

    #[tokio::test]
    async fn a_failed_undo_is_recorded_and_repaired_by_the_reconciler() {
        use crate::store::{FaultInjector, FaultPlan, Faulty, Op};
        let faults = FaultInjector::new(FaultPlan::none());
        let store = Arc::new(Faulty::new(InMemoryStore::new(), faults.clone()));
        let m = SelfLearningMemory::builder()
            .durable(store.clone())
            .config(MemoryConfig {
                reconcile_interval: None,
                ..Default::default()
            })
            .open()
            .await
            .unwrap();
        let id = m
            .start_episode("t", TaskContext::new("ns", "d", "t"))
            .await
            .unwrap();
        // The index update fails, and so does the durable restore meant to undo it.
        m.index().fail_next_inserts(1);
        faults.set_plan(FaultPlan::fail_ops([Op::Update]));
        m.complete_episode(id, Outcome::success("ok"))
            .await
            .unwrap_err();
        faults.set_plan(FaultPlan::none());
        let stored = store.inner().get_episode(id).await.unwrap().unwrap();
        assert!(stored.is_completed(), "the undo failed: still completed");
        assert_eq!(m.index().contains(id).unwrap(), Some(1), "the index lags");
        assert_eq!(m.inner.repairs.pending(), 1, "the failed undo is recorded");
        assert_eq!(
            m.get_episode(id).await.unwrap(),
            stored,
            "reads serve the durable truth"
        );

        let report = m.reconcile().await.unwrap();
        assert_eq!(report.recorded_repaired, 1, "{report:?}");
        assert_eq!(m.index().contains(id).unwrap(), Some(stored.version));
        assert_eq!(m.inner.repairs.pending(), 0);
    }
}
