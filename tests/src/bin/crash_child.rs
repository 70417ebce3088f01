//! The process `tests/tests/crash_recovery.rs` kills with SIGKILL: it records episodes on the
//! embedded default in the directory it is given, from several concurrent tasks, and prints one
//! line per acknowledgement the moment the call returned `Ok`:
//!
//! - `S <id>`: `start_episode` acknowledged;
//! - `T <id> <seq> <input>`: `log_step` acknowledged with that sequence number and input;
//! - `C <id> <version>`: `complete_episode` acknowledged at that version.
//!
//! Usage: `crash_child <dir> <seed> <ingest|reconcile|outage>`; `reconcile` also runs
//! reconciliation passes in a loop, so kills land in them too; `outage` starts with the
//! durable store failing (writes are journaled and acknowledged) and brings it back after a
//! moment, so the background job replays the journal while writes continue and kills land in
//! the replay. It runs until killed.

use std::io::Write;

use std::time::Duration;

use memory_core::coordinator::BreakerConfig;
use memory_core::store::{FaultInjector, FaultPlan, Faulty};
use memory_core::{
    MemoryConfig, NewStep, Outcome, ResilienceConfig, SelfLearningMemory, TaskContext,
};
use memory_storage_redb::{RedbCache, RedbOptions};
use memory_storage_turso::{TursoOptions, TursoStore};
use memory_tests::open_embedded;

/// Print one acknowledgement line, whole, and flush it before going on.
fn ack(line: String) {
    let mut out = std::io::stdout().lock();
    // A failed write (the parent gone) ends the child.
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, seed, mode) = match args.as_slice() {
        [_, dir, seed, mode] => (dir.clone(), seed.clone(), mode.clone()),
        _ => {
            eprintln!("usage: crash_child <dir> <seed> <ingest|reconcile|outage>");
            std::process::exit(2);
        }
    };
    let config = MemoryConfig {
        reconcile_interval: None,
        ..MemoryConfig::default()
    };
    let dir = std::path::Path::new(&dir);
    let memory = if mode == "outage" {
        open_with_outage(dir, config).await
    } else {
        open_embedded(dir, config)
            .await
            .expect("open the embedded default")
            .memory
    };
    if mode == "reconcile" {
        let m = memory.clone();
        tokio::spawn(async move {
            loop {
                m.reconcile().await.expect("reconcile");
            }
        });
    }
    let mut tasks = Vec::new();
    for task in 0..8 {
        let m = memory.clone();
        let seed = seed.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let ctx = TaskContext::new("crash", format!("d{}", task % 3), "t");
                let id = m
                    .start_episode(format!("crash {seed} {task} {n}"), ctx)
                    .await
                    .expect("start");
                ack(format!("S {id}"));
                for k in 0..3 {
                    let input = format!("{seed}:{task}:{n}:{k}");
                    let seq = m
                        .log_step(id, NewStep::new("tool", input.clone()))
                        .await
                        .expect("log_step");
                    ack(format!("T {id} {seq} {input}"));
                }
                if n % 4 != 3 {
                    let done = m
                        .complete_episode(id, Outcome::success("ok"))
                        .await
                        .expect("complete");
                    ack(format!("C {id} {}", done.version));
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

/// The embedded default with the durable store failing for its first 100 ms: the breaker
/// opens at the first failure, writes are journaled, and the job replays them every 20 ms once
/// the store is back.
async fn open_with_outage(dir: &std::path::Path, config: MemoryConfig) -> SelfLearningMemory {
    let store = TursoStore::open_local(dir.join("memory.db"), TursoOptions::default())
        .await
        .expect("open the libsql file");
    let cache = RedbCache::open_async(dir.join("cache.redb"), RedbOptions::default())
        .await
        .expect("open the redb file");
    let faults = FaultInjector::new(FaultPlan::none());
    let memory = SelfLearningMemory::builder()
        .durable(Faulty::new(store, faults.clone()))
        .cache(cache.clone())
        .journal(cache.journal())
        .config(MemoryConfig {
            replay_interval: Duration::from_millis(20),
            resilience: ResilienceConfig {
                breaker: BreakerConfig {
                    failure_threshold: 1,
                    cool_down: Duration::from_millis(20),
                    half_open_probes: 1,
                },
                ..Default::default()
            },
            ..config
        })
        .open()
        .await
        .expect("open the engine");
    // The outage starts after open (which replays what an earlier round journaled).
    faults.set_plan(FaultPlan {
        outage: true,
        transient: true,
        ..FaultPlan::none()
    });
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        faults.set_plan(FaultPlan::none());
    });
    memory
}
