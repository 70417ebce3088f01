//! In-progress episodes: step sequencing, per-episode group append, and the hand-off to
//! completion.
//!
//! Each in-progress episode has one [`LiveEpisode`] holding its acknowledged state (exactly
//! what the durable store holds) and a queue of steps waiting to be appended. Concurrent
//! `log_step` calls on one episode queue their steps; one flusher task at a time takes the
//! whole queue, numbers it from the next free `seq` in queue (acceptance) order, appends it in
//! one durable call, then answers every caller. Numbers are consumed only by a successful
//! append, so they stay gapless; after any failed append the state is re-read from the durable
//! store before the next one (the failure may have been an ambiguous commit).
//!
//! Completion marks the episode `Completing` (new steps are refused from then on), waits for
//! the queue to drain, and only then builds the final episode.
//!
//! Locks: the map lock and each episode's state lock are `std::sync::Mutex`es, held only for
//! in-memory work and never across `.await`; the map lock is never taken while an episode
//! lock is held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, oneshot};

use crate::episode::{Episode, NewStep, Step};
use crate::error::{Error, ErrorKind, Result};
use crate::id::EpisodeId;
use crate::store::DurableStore;
use crate::time;

/// Where an in-progress episode is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Accepting steps.
    Open,
    /// A completion is under way; steps are refused.
    Completing,
    /// Completed or deleted; this entry is dead.
    Closed,
}

type Waiter = oneshot::Sender<Result<u32>>;

#[derive(Debug)]
pub(crate) struct LiveState {
    /// The acknowledged episode: what the durable store holds.
    pub(crate) episode: Episode,
    pub(crate) phase: Phase,
    pending: Vec<(NewStep, Waiter)>,
    flushing: bool,
    /// The last durable call failed; re-read the episode before the next write.
    pub(crate) stale: bool,
}

/// One in-progress episode.
#[derive(Debug)]
pub(crate) struct LiveEpisode {
    state: Mutex<LiveState>,
    /// Signalled whenever a flush round ends.
    drained: Notify,
}

fn poisoned() -> Error {
    Error::storage("in-progress episode state poisoned by a panic")
}

impl LiveEpisode {
    fn new(episode: Episode) -> Self {
        Self {
            state: Mutex::new(LiveState {
                episode,
                phase: Phase::Open,
                pending: Vec::new(),
                flushing: false,
                stale: false,
            }),
            drained: Notify::new(),
        }
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, LiveState>> {
        self.state.lock().map_err(|_| poisoned())
    }
}

/// The error for a step or completion arriving after completion started.
pub(crate) fn completed_error(id: EpisodeId, phase: Phase) -> Error {
    let what = match phase {
        Phase::Completing => "is being completed",
        _ => "is completed or deleted",
    };
    Error::new(
        ErrorKind::AlreadyCompleted,
        format!("episode {id} {what}; it accepts no more steps"),
    )
}

/// All in-progress episodes of one engine instance.
#[derive(Debug, Default)]
pub(crate) struct LiveEpisodes {
    map: Mutex<HashMap<EpisodeId, Arc<LiveEpisode>>>,
}

impl LiveEpisodes {
    fn map(&self) -> Result<MutexGuard<'_, HashMap<EpisodeId, Arc<LiveEpisode>>>> {
        self.map.lock().map_err(|_| poisoned())
    }

    /// Register a freshly created episode.
    pub(crate) fn insert(&self, episode: Episode) -> Result<Arc<LiveEpisode>> {
        let live = Arc::new(LiveEpisode::new(episode.clone()));
        self.map()?.insert(episode.id, live.clone());
        Ok(live)
    }

    /// The live entry, if the episode is in progress here.
    pub(crate) fn get(&self, id: EpisodeId) -> Result<Option<Arc<LiveEpisode>>> {
        Ok(self.map()?.get(&id).cloned())
    }

    /// The live entry, loading an in-progress episode from the durable store if needed (after
    /// a restart). `NotFound` or `AlreadyCompleted` otherwise.
    pub(crate) async fn get_or_load(
        &self,
        durable: &dyn DurableStore,
        id: EpisodeId,
    ) -> Result<Arc<LiveEpisode>> {
        if let Some(live) = self.get(id)? {
            return Ok(live);
        }
        let episode = durable
            .get_episode(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("episode {id}")))?;
        if episode.is_completed() {
            return Err(completed_error(id, Phase::Closed));
        }
        let mut map = self.map()?;
        Ok(map
            .entry(id)
            .or_insert_with(|| Arc::new(LiveEpisode::new(episode)))
            .clone())
    }

    /// Forget an entry (completed or deleted), closing it so holders of the `Arc` refuse work.
    pub(crate) fn remove(&self, id: EpisodeId) -> Result<()> {
        let removed = self.map()?.remove(&id);
        if let Some(live) = removed {
            live.lock()?.phase = Phase::Closed;
            live.drained.notify_waiters();
        }
        Ok(())
    }

    /// Number of in-progress episodes held.
    pub(crate) fn len(&self) -> usize {
        self.map().map(|m| m.len()).unwrap_or(0)
    }

    /// Estimated heap bytes of the in-progress episodes: each episode's struct, text and
    /// steps (struct and strings). Walks them all; for the memory budget's periodic check.
    pub(crate) fn approx_bytes(&self) -> usize {
        let lives: Vec<Arc<LiveEpisode>> = match self.map() {
            Ok(m) => m.values().cloned().collect(),
            Err(_) => return 0,
        };
        lives
            .iter()
            .filter_map(|l| l.lock().ok().map(|s| episode_bytes(&s.episode)))
            .sum()
    }
}

/// Estimated heap bytes of `e`.
fn episode_bytes(e: &Episode) -> usize {
    let steps: usize = e
        .steps
        .iter()
        .map(|s| {
            std::mem::size_of::<Step>()
                + s.tool.len()
                + s.action.len()
                + s.input.len()
                + s.output.len()
        })
        .sum();
    std::mem::size_of::<LiveEpisode>()
        + std::mem::size_of::<Episode>()
        + e.description.len()
        + e.context.namespace.len()
        + e.context.domain.len()
        + e.context.task_type.len()
        + e.context.tags.iter().map(String::len).sum::<usize>()
        + steps
}

/// Queue `steps` on `live` (together, so they share one durable append) and wait until they
/// are durable; returns their sequence numbers.
pub(crate) async fn append(
    live: &Arc<LiveEpisode>,
    durable: &Arc<dyn DurableStore>,
    max_steps: usize,
    steps: Vec<NewStep>,
) -> Result<Vec<u32>> {
    let mut answers = Vec::with_capacity(steps.len());
    let start_flusher = {
        let mut st = live.lock()?;
        if st.phase != Phase::Open {
            return Err(completed_error(st.episode.id, st.phase));
        }
        let total = st.episode.steps.len() + st.pending.len() + steps.len();
        if total > max_steps {
            return Err(Error::invalid(
                "steps",
                format!("at most {max_steps} steps per episode"),
                format!("{total} steps"),
            ));
        }
        for step in steps {
            let (tx, rx) = oneshot::channel();
            st.pending.push((step, tx));
            answers.push(rx);
        }
        !std::mem::replace(&mut st.flushing, true)
    };
    if start_flusher {
        // A task, not this future: a caller that stops waiting must not strand the queue.
        tokio::spawn(flush(live.clone(), durable.clone()));
    }
    let mut seqs = Vec::with_capacity(answers.len());
    for rx in answers {
        seqs.push(
            rx.await
                .map_err(|_| Error::storage("step flusher ended without answering"))??,
        );
    }
    Ok(seqs)
}

/// Append queued steps until the queue is empty.
async fn flush(live: Arc<LiveEpisode>, durable: Arc<dyn DurableStore>) {
    loop {
        if let Err(e) = resync_if_stale(&live, durable.as_ref()).await {
            stop_with_error(&live, &e);
            return;
        }
        let (id, batch, waiters) = {
            let Ok(mut st) = live.lock() else { return };
            if st.pending.is_empty() {
                st.flushing = false;
                drop(st);
                live.drained.notify_waiters();
                return;
            }
            let base = st.episode.steps.len() as u32;
            let now = time::now();
            let (batch, waiters): (Vec<Step>, Vec<Waiter>) = std::mem::take(&mut st.pending)
                .into_iter()
                .enumerate()
                .map(|(i, (s, w))| (Step::from_new(s, base + i as u32, now), w))
                .unzip();
            (st.episode.id, batch, waiters)
        };
        let result = durable.append_steps(id, &batch).await;
        let Ok(mut st) = live.lock() else { return };
        let answers: Vec<Result<u32>> = match result {
            Ok(()) => {
                let seqs: Vec<Result<u32>> = batch.iter().map(|s| Ok(s.seq)).collect();
                st.episode.steps.extend(batch);
                seqs
            }
            Err(e) => {
                st.stale = true;
                waiters.iter().map(|_| Err(e.clone())).collect()
            }
        };
        // When nothing else is queued, this flusher ends *before* answering, so no caller can
        // see its acknowledgement while this task still holds the stores (a caller that drops
        // the engine and reopens its files at once must find them released).
        let done = st.pending.is_empty();
        if done {
            st.flushing = false;
        }
        drop(st);
        if done {
            drop(durable);
            live.drained.notify_waiters();
            for (w, answer) in waiters.into_iter().zip(answers) {
                let _caller_gone = w.send(answer);
            }
            return;
        }
        for (w, answer) in waiters.into_iter().zip(answers) {
            let _caller_gone = w.send(answer);
        }
    }
}

/// Fail every queued step with `e` and end this flusher (used when the state cannot be
/// re-read); the next `log_step` starts a new flusher, which tries again.
fn stop_with_error(live: &LiveEpisode, e: &Error) {
    let waiters = match live.lock() {
        Ok(mut st) => {
            st.flushing = false;
            std::mem::take(&mut st.pending)
        }
        Err(_) => return,
    };
    live.drained.notify_waiters();
    for (_, w) in waiters {
        let _caller_gone = w.send(Err(e.clone()));
    }
}

/// After a failed durable call, re-read the episode so the next `seq` matches the store.
pub(crate) async fn resync_if_stale(live: &LiveEpisode, durable: &dyn DurableStore) -> Result<()> {
    let id = {
        let st = live.lock()?;
        if !st.stale {
            return Ok(());
        }
        st.episode.id
    };
    let fresh = durable
        .get_episode(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("episode {id}")))?;
    let mut st = live.lock()?;
    if fresh.is_completed() {
        st.phase = Phase::Closed;
    }
    st.episode = fresh;
    st.stale = false;
    Ok(())
}

/// Stop accepting steps and wait until every accepted step is durable (or failed). Returns
/// the acknowledged episode to complete. On error the phase is restored to `Open`.
pub(crate) async fn begin_completion(
    live: &LiveEpisode,
    durable: &dyn DurableStore,
) -> Result<Episode> {
    {
        let mut st = live.lock()?;
        if st.phase != Phase::Open {
            return Err(completed_error(st.episode.id, st.phase));
        }
        st.phase = Phase::Completing;
    }
    loop {
        let notified = live.drained.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let st = live.lock()?;
            if st.phase == Phase::Closed {
                return Err(completed_error(st.episode.id, st.phase));
            }
            if !st.flushing && st.pending.is_empty() {
                break;
            }
        }
        notified.await;
    }
    if let Err(e) = resync_if_stale(live, durable).await {
        end_completion(live, false);
        return Err(e);
    }
    let st = live.lock()?;
    if st.phase == Phase::Closed {
        return Err(completed_error(st.episode.id, st.phase));
    }
    Ok(st.episode.clone())
}

/// Finish a completion begun with [`begin_completion`]: `Closed` on success, back to `Open`
/// (and stale, since the failure may have been an ambiguous commit) on failure.
pub(crate) fn end_completion(live: &LiveEpisode, success: bool) {
    if let Ok(mut st) = live.lock() {
        if success {
            st.phase = Phase::Closed;
        } else if st.phase == Phase::Completing {
            st.phase = Phase::Open;
            st.stale = true;
        }
    }
}
