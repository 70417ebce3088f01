//! The process `tests/tests/crash_recovery.rs` kills with SIGKILL: it records episodes on the
//! embedded default in the directory it is given, from several concurrent tasks, and prints one
//! line per acknowledgement the moment the call returned `Ok`:
//!
//! - `S <id>`: `start_episode` acknowledged;
//! - `T <id> <seq> <input>`: `log_step` acknowledged with that sequence number and input;
//! - `C <id> <version>`: `complete_episode` acknowledged at that version.
//!
//! Usage: `crash_child <dir> <seed> <ingest|reconcile>`; `reconcile` also runs reconciliation
//! passes in a loop, so kills land in them too. It runs until killed.

use std::io::Write;

use memory_core::{MemoryConfig, NewStep, Outcome, TaskContext};
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
            eprintln!("usage: crash_child <dir> <seed> <ingest|reconcile>");
            std::process::exit(2);
        }
    };
    let config = MemoryConfig {
        reconcile_interval: None,
        ..MemoryConfig::default()
    };
    let e = open_embedded(std::path::Path::new(&dir), config)
        .await
        .expect("open the embedded default");
    let memory = e.memory;
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
