//! [`Client`]: how the load generator calls the engine, the way an agent framework would:
//! one episode is a start, its steps one `log_step` at a time, and a completion; reads are
//! `retrieve` and `get_episode`. Every call is timed into the [`Recorder`]; transient errors
//! are retried as the [`Retry`] policy says (each attempt recorded). Every acknowledged
//! completion is remembered as a [`Fingerprint`] ([`Acked`]) so the run can prove afterwards
//! that nothing acknowledged was lost.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memory_core::retrieval::RetrievalQuery;
use memory_core::{Completion, Episode, EpisodeId, Result, SelfLearningMemory};
use tokio::sync::Barrier;

use crate::dataset::DatasetEpisode;
use crate::load::recorder::{Op, Recorder};

/// Attempts per call on transient errors (`Unavailable`, `Overloaded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Pause between attempts.
    pub backoff: Duration,
}

impl Retry {
    /// One attempt: every error is final.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            backoff: Duration::ZERO,
        }
    }
}

/// What identifies an acknowledged completion's content: id, version and a digest of the
/// whole episode (its JSON form: every field, every step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// The episode.
    pub id: EpisodeId,
    /// Its version when acknowledged.
    pub version: u64,
    /// Digest of the acknowledged episode.
    pub digest: u64,
}

impl Fingerprint {
    /// The fingerprint of `e`.
    pub fn of(e: &Episode) -> Self {
        let mut h = DefaultHasher::new();
        match serde_json::to_vec(e) {
            Ok(bytes) => bytes.hash(&mut h),
            // Not reachable for a plain struct; fall back to the debug form.
            Err(_) => format!("{e:?}").hash(&mut h),
        }
        Self {
            id: e.id,
            version: e.version,
            digest: h.finish(),
        }
    }
}

/// Every acknowledged completion of the run (16 bytes + digest each).
#[derive(Debug, Default)]
pub struct Acked {
    list: Mutex<Vec<Fingerprint>>,
    setup: AtomicU64,
}

impl Acked {
    /// Remember an acknowledged completion.
    pub fn add(&self, e: &Episode) {
        self.lock().push(Fingerprint::of(e));
    }

    /// Remember a completion acknowledged during setup (pre-load).
    pub fn add_setup(&self, e: &Episode) {
        self.add(e);
        self.setup.fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fingerprint>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Acknowledged completions so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Those acknowledged during setup.
    pub fn setup(&self) -> u64 {
        self.setup.load(Ordering::Relaxed)
    }

    /// The id of acknowledged completion number `r % len`, if any.
    pub fn pick(&self, r: u64) -> Option<EpisodeId> {
        let list = self.lock();
        let n = list.len() as u64;
        (n > 0).then(|| list[(r % n) as usize].id)
    }

    /// Every fingerprint.
    pub fn all(&self) -> Vec<Fingerprint> {
        self.lock().clone()
    }
}

/// Episodes the client attempted, got acknowledged and gave up on.
#[derive(Debug, Default)]
pub struct EpisodeCounts {
    /// Episodes begun (a `start_episode` was issued).
    pub attempted: AtomicU64,
    /// Completions acknowledged.
    pub acknowledged: AtomicU64,
    /// Episodes given up after an error (not completed).
    pub abandoned: AtomicU64,
}

/// The load generator's handle on the engine; cheap to clone into tasks.
#[derive(Debug, Clone)]
pub struct Client {
    /// The engine.
    pub memory: SelfLearningMemory,
    /// Where calls are timed.
    pub recorder: Arc<Recorder>,
    /// Acknowledged completions.
    pub acked: Arc<Acked>,
    /// Episode counts.
    pub counts: Arc<EpisodeCounts>,
    /// Retry policy.
    pub retry: Retry,
}

impl Client {
    /// Call `f` as `op`, meant to start at `intended`; retry transient errors per the policy.
    /// Every attempt is recorded; retries count from their own start.
    async fn call<T, Fut>(&self, op: Op, intended: Instant, mut f: impl FnMut() -> Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T>>,
    {
        let mut intended = intended;
        let mut attempt = 1;
        loop {
            match self.recorder.time(op, intended, f()).await {
                Err(e) if e.is_transient() && attempt < self.retry.attempts => {
                    attempt += 1;
                    tokio::time::sleep(self.retry.backoff).await;
                    intended = Instant::now();
                }
                other => return other,
            }
        }
    }

    /// Record one episode: start (meant at `intended`), its steps one by one, then — after
    /// waiting at `gate`, if given, which every episode passes exactly once — its completion.
    /// Returns whether the completion was acknowledged.
    pub async fn episode(
        &self,
        item: DatasetEpisode,
        intended: Instant,
        gate: Option<&Barrier>,
    ) -> bool {
        self.counts.attempted.fetch_add(1, Ordering::Relaxed);
        let m = &self.memory;
        let started = self
            .call(Op::Start, intended, || {
                m.start_episode(item.description.clone(), item.context.clone())
            })
            .await;
        let mut ready = started.as_ref().ok().copied();
        if let Some(id) = ready {
            for step in &item.steps {
                if self
                    .call(Op::LogStep, Instant::now(), || m.log_step(id, step.clone()))
                    .await
                    .is_err()
                {
                    ready = None;
                    break;
                }
            }
        }
        if let Some(gate) = gate {
            gate.wait().await;
        }
        let Some(id) = ready else {
            self.counts.abandoned.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let completion = Completion::from(item.outcome).with_reward(item.reward);
        match self
            .call(Op::Complete, Instant::now(), || {
                m.complete_episode(id, completion.clone())
            })
            .await
        {
            Ok(done) => {
                self.acked.add(&done);
                self.counts.acknowledged.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.counts.abandoned.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// One `retrieve`, meant to start at `intended`; returns the hits found.
    pub async fn retrieve(&self, query: RetrievalQuery, intended: Instant) -> Option<usize> {
        let m = &self.memory;
        self.call(Op::Retrieve, intended, || m.retrieve(query.clone()))
            .await
            .ok()
            .map(|hits| hits.len())
    }

    /// One `get_episode` of acknowledged completion number `r` (mod their count), meant to
    /// start at `intended`; `None` (nothing issued) before any completion was acknowledged.
    pub async fn get_some(&self, r: u64, intended: Instant) -> Option<bool> {
        let id = self.acked.pick(r)?;
        let m = &self.memory;
        Some(
            self.call(Op::Get, intended, || m.get_episode(id))
                .await
                .is_ok(),
        )
    }
}
