//! The process `tests/tests/crash_recovery.rs` kills with SIGKILL.
//!
//! Usage: `crash_child <dir> <seed> <ingest|outage|reconcile>`. It opens the embedded default
//! in `<dir>` and runs the workload of `memory_tests::crash` from 8 concurrent tasks (start,
//! steps by `log_step` and `log_steps`, completion, updates at the expected version, delete)
//! until it is killed, printing one `memory_tests::crash::Line` per event, each written whole and
//! flushed before the task goes on: an `ACK …` line only after the call returned `Ok`.
//!
//! Modes:
//! - `ingest`: the workload alone.
//! - `outage`: the durable store is wrapped in `Faulty`; a seeded while after `READY` it goes
//!   down (writes are journaled once the breaker opens) and a seeded while later it comes back,
//!   and the background job replays the journal (in batches of 16) while the workload goes
//!   on. `EVENT` lines mark the outage, when the engine starts journaling, when replay first
//!   trims the journal, and when it is drained, so the test can tell where its kill landed.
//! - `reconcile`: the workload with reconciliation passes in a loop (`EVENT reconcile-begin` /
//!   `reconcile-end <repairs>` around each).
//!
//! It never exits on its own before a 60 s watchdog, except when its stdout is gone.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use memory_core::store::{FaultInjector, FaultPlan};
use memory_core::{Error, MemoryConfig, SelfLearningMemory};
use memory_tests::crash::{Key, Line, Rng};
use memory_tests::open_deferred_with;

/// Concurrent workload tasks.
const TASKS: u32 = 8;

/// Print one line, whole, and flush it before going on. A failed write (the parent is gone)
/// ends the process.
fn emit(line: &Line) {
    let text = format!("{line}\n");
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Report a failed call, then back off a little as a client would (and yield: a failure
/// returned without I/O must not keep the task from giving way to the others).
async fn failed(op: &str, id: Option<memory_core::EpisodeId>, e: &Error) {
    emit(&Line::Failed(op.to_owned(), id, format!("{:?}", e.kind())));
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// One task's share of the workload, forever: episode after episode.
async fn run_task(m: SelfLearningMemory, seed: u64, task: u32) {
    for n in 0.. {
        let key = Key { seed, task, n };
        let id = match m.start_episode(key.description(), key.context()).await {
            Ok(id) => id,
            Err(e) => {
                failed("start", None, &e).await;
                continue;
            }
        };
        emit(&Line::Start(id, key));
        let mut k = 0;
        while k < key.steps() {
            let ks: Vec<u32> = if key.grouped(k) {
                vec![k, k + 1]
            } else {
                vec![k]
            };
            k += ks.len() as u32;
            let result = if ks.len() == 1 {
                m.log_step(id, key.step(ks[0])).await.map(|seq| vec![seq])
            } else {
                m.log_steps(id, ks.iter().map(|k| key.step(*k)).collect())
                    .await
            };
            match result {
                Ok(seqs) => emit(&Line::Steps(id, seqs.into_iter().zip(ks).collect())),
                Err(e) => failed("step", Some(id), &e).await,
            }
        }
        if !key.completes() {
            continue;
        }
        let mut version = match m.complete_episode(id, key.completion()).await {
            Ok(done) => done.version,
            Err(e) => {
                failed("complete", Some(id), &e).await;
                continue;
            }
        };
        emit(&Line::Complete(id, version));
        let mut updated_all = true;
        for u in 1..=key.updates() {
            match m.update_episode(id, version, key.update(u)).await {
                Ok(updated) => {
                    version = updated.version;
                    emit(&Line::Update(id, version, u));
                }
                Err(e) => {
                    failed("update", Some(id), &e).await;
                    updated_all = false;
                    break;
                }
            }
        }
        if updated_all && key.deleted() {
            match m.delete_episode(id).await {
                Ok(true) => emit(&Line::Delete(id)),
                // The test fails on this line: the episode was there.
                Ok(false) => emit(&Line::Failed("delete".into(), Some(id), "NotFound".into())),
                Err(e) => failed("delete", Some(id), &e).await,
            }
        }
    }
}

/// Take the durable store down after a seeded while and bring it back after another.
async fn outage(faults: Arc<FaultInjector>, seed: u64) {
    let mut rng = Rng::new(seed ^ 0x07A9E);
    tokio::time::sleep(Duration::from_millis(rng.range(0..200))).await;
    faults.set_outage(true);
    emit(&Line::Event("outage-on".into()));
    tokio::time::sleep(Duration::from_millis(rng.range(100..400))).await;
    faults.set_outage(false);
    emit(&Line::Event("outage-off".into()));
}

/// Report when the engine starts journaling writes, when replay has trimmed the journal for the
/// first time since, and when it is drained (writes go direct again).
async fn watch_journal(m: SelfLearningMemory) {
    let Some(resilient) = m.resilience() else {
        return;
    };
    let (mut journaling, mut pending, mut replaying) = (resilient.is_journaling(), 0, false);
    loop {
        let now = resilient.is_journaling();
        let depth = resilient.pending_writes();
        if now && !journaling {
            replaying = false;
            emit(&Line::Event("journaling".into()));
        }
        if now && depth < pending && !replaying {
            replaying = true;
            emit(&Line::Event("replaying".into()));
        }
        if !now && journaling {
            emit(&Line::Event("drained".into()));
        }
        (journaling, pending) = (now, depth);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Reconciliation passes back to back.
async fn reconcile_loop(m: SelfLearningMemory) {
    loop {
        emit(&Line::Event("reconcile-begin".into()));
        match m.reconcile().await {
            Ok(report) => emit(&Line::Event(format!("reconcile-end {}", report.repairs()))),
            Err(e) => failed("reconcile", None, &e).await,
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match args.as_slice() {
        [_, dir, seed, mode] => seed.parse::<u64>().ok().map(|s| (dir, s, mode.as_str())),
        _ => None,
    };
    let Some((dir, seed, mode)) = parsed else {
        eprintln!("usage: crash_child <dir> <seed> <ingest|outage|reconcile>");
        std::process::exit(2);
    };
    let mut config = MemoryConfig {
        // Passes run only where the mode asks for them.
        reconcile_interval: None,
        // Replay soon after the outage ends, while the workload goes on.
        replay_interval: Duration::from_millis(20),
        ..MemoryConfig::default()
    };
    config.resilience.breaker.cool_down = Duration::from_millis(50);
    // Small replay batches: the journal is trimmed often, so kills land between trims and
    // within a batch (entries applied but not yet trimmed, which replay must recognise).
    config.resilience.replay_batch_size = 16;
    // Outage errors are transient (`Unavailable`), as an unreachable database's are: they
    // open the breaker and send writes to the journal.
    let faults = (mode == "outage").then(|| {
        FaultInjector::new(FaultPlan {
            transient: true,
            ..FaultPlan::none()
        })
    });
    let memory = match mode {
        "ingest" | "outage" | "reconcile" => {
            open_deferred_with(std::path::Path::new(dir), config, faults.clone())
                .await
                .expect("open the embedded default")
        }
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    };
    emit(&Line::Ready);
    if let Some(faults) = faults {
        tokio::spawn(outage(faults, seed));
        tokio::spawn(watch_journal(memory.clone()));
    }
    if mode == "reconcile" {
        tokio::spawn(reconcile_loop(memory.clone()));
    }
    for task in 0..TASKS {
        tokio::spawn(run_task(memory.clone(), seed, task));
    }
    // Killed long before this in the test; a parent that died without killing must not leave
    // the process behind.
    tokio::time::sleep(Duration::from_secs(60)).await;
    eprintln!("crash_child: not killed within 60 s; exiting");
    std::process::exit(3);
}
