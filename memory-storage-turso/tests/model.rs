//! Model-based test: random sequences of create/append/complete/update/delete run against
//! `TursoStore` and the reference `InMemoryStore` give the same results (same `Ok` values, same
//! error kinds) and leave the same episodes, listings and summaries behind.
//!
//! Every operation on the turso store shares its group-commit transaction with a companion
//! write (`max_batch_ops = 2` with a generous delay), so each one runs inside a savepoint next
//! to another operation: a failed operation must roll back alone.

use std::time::Duration;

use memory_core::conformance::{completed, sample_episode, sample_steps};
use memory_core::store::{DurableStore, InMemoryStore, ListRequest};
use memory_core::{Episode, EpisodeId, Result};
use memory_storage_turso::{TursoOptions, TursoStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const SLOTS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Create {
        slot: usize,
        steps: u32,
        done: bool,
    },
    Append {
        slot: usize,
        offset: i64,
        n: u32,
    },
    Complete {
        slot: usize,
        version_delta: i64,
        extra: u32,
        drop_one: bool,
    },
    Update {
        slot: usize,
        version_delta: i64,
    },
    Delete {
        slot: usize,
    },
}

fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![4 => Just(0i64), 1 => -1i64..=1]
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        2 => (slot.clone(), 0..4u32, any::<bool>())
            .prop_map(|(slot, steps, done)| Op::Create { slot, steps, done }),
        4 => (slot.clone(), delta(), 0..4u32)
            .prop_map(|(slot, offset, n)| Op::Append { slot, offset, n }),
        2 => (slot.clone(), delta(), 0..3u32, prop::bool::weighted(0.2)).prop_map(
            |(slot, version_delta, extra, drop_one)| Op::Complete {
                slot,
                version_delta,
                extra,
                drop_one,
            }
        ),
        1 => (slot.clone(), delta()).prop_map(|(slot, version_delta)| Op::Update {
            slot,
            version_delta
        }),
        1 => slot.prop_map(|slot| Op::Delete { slot }),
    ]
}

/// A call with its arguments fixed, so both stores get identical input.
enum Call {
    Create(Episode),
    Append(EpisodeId, Vec<memory_core::Step>),
    Complete(Episode),
    Update(Episode),
    Delete(EpisodeId),
}

async fn invoke(store: &dyn DurableStore, call: &Call) -> Result<Option<bool>> {
    match call {
        Call::Create(e) => store.create_episode(e).await.map(|()| None),
        Call::Append(id, steps) => store.append_steps(*id, steps).await.map(|()| None),
        Call::Complete(e) => store.complete_episode(e).await.map(|()| None),
        Call::Update(e) => store.update_episode(e).await.map(|()| None),
        Call::Delete(id) => store.delete_episode(*id).await.map(Some),
    }
}

fn versioned(version: u64, delta: i64) -> u64 {
    version.wrapping_add_signed(1 + delta)
}

/// The call `op` stands for, given what the reference store holds now.
async fn plan(op: &Op, bases: &[Episode], model: &InMemoryStore) -> Call {
    let slot = match op {
        Op::Create { slot, .. }
        | Op::Append { slot, .. }
        | Op::Complete { slot, .. }
        | Op::Update { slot, .. }
        | Op::Delete { slot } => *slot,
    };
    let base = &bases[slot];
    let stored = model.get_episode(base.id).await.expect("store call");
    let current = stored.clone().unwrap_or_else(|| base.clone());
    match *op {
        Op::Create { steps, done, .. } => {
            let steps = sample_steps(0, steps);
            if done {
                Call::Create(completed(base.clone(), steps))
            } else {
                let mut e = base.clone();
                e.steps = steps;
                Call::Create(e)
            }
        }
        Op::Append { offset, n, .. } => {
            let from = (current.steps.len() as i64 + offset).max(0) as u32;
            Call::Append(base.id, sample_steps(from, n))
        }
        Op::Complete {
            version_delta,
            extra,
            drop_one,
            ..
        } => {
            let mut steps = current.steps.clone();
            steps.extend(sample_steps(steps.len() as u32, extra));
            if drop_one {
                steps.pop();
            }
            let mut e = completed(current.clone(), steps);
            e.version = versioned(current.version, version_delta);
            Call::Complete(e)
        }
        Op::Update { version_delta, .. } => {
            let mut e = current.clone();
            e.reflection = Some(format!("update over v{}", current.version));
            e.context.tags.push("updated".into());
            e.version = versioned(current.version, version_delta);
            Call::Update(e)
        }
        Op::Delete { .. } => Call::Delete(base.id),
    }
}

async fn check(turso: &TursoStore, ops: Vec<Op>) -> std::result::Result<(), TestCaseError> {
    let model = InMemoryStore::new();
    let ns = format!("model-{}", EpisodeId::new().as_uuid().simple());
    let bases: Vec<Episode> = (0..SLOTS).map(|_| sample_episode(&ns)).collect();
    for op in &ops {
        let call = plan(op, &bases, &model).await;
        let expected = invoke(&model, &call).await;
        let companion = sample_episode("model-companion");
        let (got, companion_result) =
            tokio::join!(invoke(turso, &call), turso.create_episode(&companion));
        companion_result.map_err(|e| TestCaseError::fail(format!("companion: {e}")))?;
        match (&expected, &got) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{:?}", op),
            (Err(a), Err(b)) => prop_assert_eq!(a.kind(), b.kind(), "{:?}: {} vs {}", op, a, b),
            _ => prop_assert!(false, "{:?}: model {:?} vs turso {:?}", op, expected, got),
        }
        for base in &bases {
            let want = model.get_episode(base.id).await.expect("store call");
            let have = turso.get_episode(base.id).await.expect("store call");
            prop_assert_eq!(&have, &want, "after {:?}", op);
        }
    }
    // Listings and summaries agree too.
    let mut after = None;
    loop {
        let request = ListRequest {
            namespace: ns.clone(),
            after,
            limit: 2,
        };
        let want = model.list_episodes(&request).await.expect("store call");
        let have = turso.list_episodes(&request).await.expect("store call");
        prop_assert_eq!(&have, &want);
        match want.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let mut summaries = Vec::new();
    let mut cursor = None;
    loop {
        let page = turso.scan_summaries(cursor, 500).await.expect("store call");
        summaries.extend(page.items);
        match page.next_after {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    for base in &bases {
        let want = model
            .get_episode(base.id)
            .await
            .expect("store call")
            .map(|e| e.summary());
        let have = summaries.iter().find(|s| s.id == base.id).cloned();
        prop_assert_eq!(have, want);
    }
    // Summaries by id, a never-stored id among them (left out by both).
    let mut ids: Vec<EpisodeId> = bases.iter().map(|b| b.id).collect();
    ids.push(EpisodeId::new());
    let by_id = |mut v: Vec<memory_core::EpisodeSummary>| {
        v.sort_by_key(|s| s.id);
        v
    };
    let want = by_id(model.summaries_of(&ids).await.expect("store call"));
    let have = by_id(turso.summaries_of(&ids).await.expect("store call"));
    prop_assert_eq!(have, want);
    Ok(())
}

#[test]
fn turso_store_behaves_like_the_in_memory_model() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("store call");
    let dir = tempfile::tempdir().expect("store call");
    let options = TursoOptions {
        max_batch_ops: 2,
        max_batch_delay: Duration::from_secs(10),
        ..TursoOptions::default()
    };
    let turso = rt
        .block_on(TursoStore::open_local(dir.path().join("model.db"), options))
        .expect("store call");
    let mut runner = TestRunner::new(Config {
        cases: 40,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 1..24), |ops| {
        rt.block_on(check(&turso, ops))
    });
    rt.block_on(turso.close()).expect("store call");
    if let Err(e) = result {
        panic!("{e}");
    }
}
