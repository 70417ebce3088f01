//! Model-based property test of the outage path: random sequences of start / log_step /
//! complete / update / delete / reads through the facade over
//! `ResilientStore(Faulty(InMemoryStore))`, with the outage switched on and off between
//! operations, the clock moved, and replays interleaved. A reference model records only
//! acknowledged operations. Reads must agree with the model or be `Unavailable`; after every
//! operation, direct mode implies an empty journal; at the end (outage off, journal drained)
//! the durable store must hold exactly the acknowledged episodes with exactly the acknowledged
//! content, and nothing unacknowledged.
//!
//! 256 cases of up to 48 operations each (a paused clock: the whole run takes about a second).

mod outage_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use memory_core::coordinator::BreakerState;
use memory_core::store::{DurableStore, Journal};
use memory_core::{
    Episode, EpisodeId, EpisodeUpdate, ErrorKind, NewStep, Outcome, ResilienceConfig,
    SelfLearningMemory, TaskContext,
};
use outage_support::{Fixture, config, drain, fixture};
use proptest::prelude::*;

const NS: &str = "agent-1";
const COOL_DOWN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
enum Action {
    Start,
    Log(usize),
    Complete(usize),
    Delete(usize),
    Update(usize),
    Get(usize),
    List,
    Outage(bool),
    Tick(u64),
    Replay,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => Just(Action::Start),
        6 => (0usize..64).prop_map(Action::Log),
        2 => (0usize..64).prop_map(Action::Complete),
        1 => (0usize..64).prop_map(Action::Delete),
        1 => (0usize..64).prop_map(Action::Update),
        2 => (0usize..64).prop_map(Action::Get),
        1 => Just(Action::List),
        2 => any::<bool>().prop_map(Action::Outage),
        1 => (100u64..2_500).prop_map(Action::Tick),
        1 => Just(Action::Replay),
    ]
}

/// What was acknowledged for one episode.
#[derive(Debug, Clone, Default)]
struct Expected {
    description: String,
    /// (tool, input) of each acknowledged step, in seq order.
    steps: Vec<(String, String)>,
    /// The episode returned by an acknowledged completion.
    completed: Option<Episode>,
    deleted: bool,
}

impl Expected {
    fn in_progress(&self) -> bool {
        !self.deleted && self.completed.is_none()
    }

    /// Whether `got` is exactly the acknowledged content.
    fn matches(&self, got: &Episode) -> bool {
        if let Some(done) = &self.completed {
            return got == done;
        }
        got.outcome.is_none()
            && got.description == self.description
            && got.steps.len() == self.steps.len()
            && got.steps.iter().enumerate().all(|(i, s)| {
                s.seq as usize == i
                    && (s.tool.as_str(), s.input.as_str())
                        == (self.steps[i].0.as_str(), self.steps[i].1.as_str())
            })
    }
}

#[derive(Debug, Default)]
struct Model {
    order: Vec<EpisodeId>,
    episodes: BTreeMap<EpisodeId, Expected>,
}

impl Model {
    fn pick(&self, i: usize) -> Option<EpisodeId> {
        (!self.order.is_empty()).then(|| self.order[i % self.order.len()])
    }

    fn present(&self) -> BTreeSet<EpisodeId> {
        self.episodes
            .iter()
            .filter(|(_, e)| !e.deleted)
            .map(|(id, _)| *id)
            .collect()
    }
}

fn resilience() -> ResilienceConfig {
    ResilienceConfig {
        replay_batch_size: 4,
        ..config(2, COOL_DOWN.as_secs(), 1)
    }
}

/// An error allowed for an operation on `e`: transient, or what the model says.
fn allowed(err: &memory_core::Error, e: &Expected) -> bool {
    err.is_transient()
        || (err.kind() == ErrorKind::AlreadyCompleted && e.completed.is_some())
        || (err.kind() == ErrorKind::NotFound && e.deleted)
}

async fn step(
    f: &Fixture,
    memory: &SelfLearningMemory,
    model: &mut Model,
    outage: &mut bool,
    action: &Action,
    n: usize,
) -> Result<(), TestCaseError> {
    match *action {
        Action::Start => {
            let description = format!("task {n}");
            match memory
                .start_episode(
                    description.clone(),
                    TaskContext::new(NS, "retail", "refund"),
                )
                .await
            {
                Ok(id) => {
                    model.order.push(id);
                    model.episodes.insert(
                        id,
                        Expected {
                            description,
                            ..Expected::default()
                        },
                    );
                }
                Err(e) => prop_assert!(e.is_transient(), "start: {e}"),
            }
        }
        Action::Log(i) => {
            let Some(id) = model.pick(i) else {
                return Ok(());
            };
            let (tool, input) = (format!("tool_{}", n % 3), format!("{{\"n\":{n}}}"));
            let result = memory
                .log_step(id, NewStep::new(tool.clone(), input.clone()))
                .await;
            let e = model.episodes.get_mut(&id).expect("known");
            match result {
                Ok(seq) => {
                    prop_assert!(e.in_progress(), "step acknowledged on {e:?}");
                    prop_assert_eq!(seq as usize, e.steps.len());
                    e.steps.push((tool, input));
                }
                Err(err) => prop_assert!(allowed(&err, e), "log_step: {err} on {e:?}"),
            }
        }
        Action::Complete(i) => {
            let Some(id) = model.pick(i) else {
                return Ok(());
            };
            let result = memory.complete_episode(id, Outcome::success("ok")).await;
            let e = model.episodes.get_mut(&id).expect("known");
            match result {
                Ok(done) => {
                    prop_assert!(e.in_progress(), "completion acknowledged on {e:?}");
                    let steps_only = Episode {
                        outcome: None,
                        ..done.clone()
                    };
                    prop_assert!(e.matches(&steps_only), "completed {done:?} for {e:?}");
                    e.completed = Some(done);
                }
                Err(err) => prop_assert!(allowed(&err, e), "complete: {err} on {e:?}"),
            }
        }
        Action::Delete(i) => {
            let Some(id) = model.pick(i) else {
                return Ok(());
            };
            let closed_before = f.store.breaker_state() == BreakerState::Closed;
            let result = memory.delete_episode(id).await;
            let e = model.episodes.get_mut(&id).expect("known");
            match result {
                Ok(existed) => {
                    if !e.deleted {
                        prop_assert!(existed, "a present episode reported absent");
                    } else if closed_before && !*outage {
                        prop_assert!(!existed, "an absent episode reported present");
                    }
                    e.deleted = true;
                }
                Err(err) => prop_assert!(err.is_transient(), "delete: {err}"),
            }
        }
        Action::Update(i) => {
            let Some(id) = model.pick(i) else {
                return Ok(());
            };
            let e = model.episodes.get_mut(&id).expect("known");
            let version = e.completed.as_ref().map_or(1, |d| d.version);
            let reflection = format!("second thoughts {n}");
            let result = memory
                .update_episode(
                    id,
                    version,
                    EpisodeUpdate::default().reflection(&reflection),
                )
                .await;
            match result {
                Ok(updated) => {
                    let done = e.completed.as_ref();
                    prop_assert!(!e.deleted && done.is_some(), "update acknowledged on {e:?}");
                    prop_assert_eq!(updated.version, version + 1);
                    prop_assert_eq!(updated.reflection.as_deref(), Some(reflection.as_str()));
                    prop_assert_eq!(&updated.steps, &done.expect("checked").steps);
                    e.completed = Some(updated);
                }
                Err(err) => prop_assert!(
                    err.is_transient()
                        || (err.kind() == ErrorKind::NotFound && e.deleted)
                        || (err.kind() == ErrorKind::InvalidInput && e.in_progress()),
                    "update: {err} on {e:?}"
                ),
            }
        }
        Action::Get(i) => {
            let Some(id) = model.pick(i) else {
                return Ok(());
            };
            let e = &model.episodes[&id];
            match f.store.get_episode(id).await {
                Ok(Some(got)) => {
                    prop_assert!(
                        !e.deleted && e.matches(&got),
                        "store read {got:?} for {e:?}"
                    );
                }
                Ok(None) => prop_assert!(e.deleted, "store lost {e:?}"),
                Err(err) => prop_assert_eq!(err.kind(), ErrorKind::Unavailable),
            }
            match memory.get_episode(id).await {
                Ok(got) => {
                    prop_assert!(
                        !e.deleted && e.matches(&got),
                        "facade read {got:?} for {e:?}"
                    );
                }
                Err(err) if err.kind() == ErrorKind::NotFound => {
                    prop_assert!(e.deleted, "facade lost {e:?}");
                }
                Err(err) => prop_assert!(err.is_transient(), "facade read: {err}"),
            }
        }
        Action::List => match memory.list_episodes(NS, None, 1_000).await {
            Ok(page) => {
                let ids: BTreeSet<EpisodeId> = page.items.iter().map(|e| e.id).collect();
                prop_assert_eq!(ids, model.present(), "a stale listing");
                for got in &page.items {
                    prop_assert!(model.episodes[&got.id].matches(got), "listed {got:?}");
                }
            }
            Err(err) => prop_assert_eq!(err.kind(), ErrorKind::Unavailable),
        },
        Action::Outage(on) => {
            f.outage(on);
            *outage = on;
        }
        Action::Tick(ms) => tokio::time::advance(Duration::from_millis(ms)).await,
        Action::Replay => {
            let report = f.store.replay().await;
            prop_assert!(report.is_ok(), "replay failed: {report:?}");
        }
    }
    // Invariant after every step: direct mode only over an empty journal.
    if !f.store.is_journaling() {
        prop_assert_eq!(f.journal.inner().depth().await.expect("depth"), 0);
    }
    Ok(())
}

async fn run(actions: Vec<Action>) -> Result<(), TestCaseError> {
    let f = fixture(resilience()).await;
    let memory = SelfLearningMemory::builder()
        .durable(f.store.clone())
        .open()
        .await
        .expect("open");
    let mut model = Model::default();
    let mut outage = false;
    for (n, action) in actions.iter().enumerate() {
        step(&f, &memory, &mut model, &mut outage, action, n).await?;
    }

    f.outage(false);
    drain(&f.store, COOL_DOWN, 4).await;
    // Direct again: a call goes through (as the probe, if the breaker was still open).
    prop_assert!(f.store.scan_summaries(None, 1).await.is_ok());
    prop_assert_eq!(f.store.breaker_state(), BreakerState::Closed);
    prop_assert_eq!(f.journal.inner().depth().await.expect("depth"), 0);

    let stored = f.stored().await;
    let ids: BTreeSet<EpisodeId> = stored.iter().map(|e| e.id).collect();
    prop_assert_eq!(
        ids,
        model.present(),
        "stored ids differ from acknowledged ones"
    );
    for got in &stored {
        let e = &model.episodes[&got.id];
        prop_assert!(e.matches(got), "stored {got:?}, acknowledged {e:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn acknowledged_writes_survive_outages_exactly(
        actions in proptest::collection::vec(action(), 1..48)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        rt.block_on(run(actions))?;
    }
}
