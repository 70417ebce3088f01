//! SIGKILL at random moments loses nothing acknowledged.
//!
//! Each round starts `crash_child` (a binary of this package) on the same directory, lets it
//! record episodes from 8 concurrent tasks (in a third of the rounds also running
//! reconciliation passes in a loop; in another third starting with the durable store down, so
//! writes are journaled and then replayed while writes continue), and kills it with SIGKILL
//! after a seeded random delay. Its acknowledgements are
//! read from its stdout; a line cut by the kill is ignored (it was not acknowledged whole).
//! Then the store is reopened in this process and every acknowledgement of every round so far
//! is checked: each acknowledged episode exists, each acknowledged step is at its sequence
//! number with its exact input, each acknowledged completion is there at its version; every
//! stored episode is whole (steps numbered 0..n, an outcome exactly when completed). Finally
//! reconciliation runs and a second pass must find nothing to repair.
//!
//! Rounds: `MEMORY_TEST_CRASH_ROUNDS` (default 8, about 15 s); `MEMORY_TEST_CRASH_SEED` picks
//! the schedule.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use memory_core::{EpisodeId, MemoryConfig};
use memory_tests::open_embedded;

/// What the child acknowledged about one episode.
#[derive(Debug, Default)]
struct Acked {
    steps: HashMap<u32, String>,
    completed_version: Option<u64>,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64, for the kill schedule.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Run the child for `delay`, SIGKILL it, and return its complete output lines.
fn run_and_kill(dir: &std::path::Path, seed: u64, mode: &str, delay: Duration) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_child"))
        .arg(dir)
        .arg(seed.to_string())
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start crash_child");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(
        !status.success(),
        "the child was killed, it did not exit: {status}"
    );
    let bytes = reader.join().expect("reader thread");
    let text = String::from_utf8_lossy(&bytes);
    // Only lines ended by a newline were acknowledged whole.
    let whole = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    whole.lines().map(str::to_owned).collect()
}

fn record(acks: &mut HashMap<EpisodeId, Acked>, line: &str) {
    let parts: Vec<&str> = line.splitn(4, ' ').collect();
    let id: EpisodeId = parts[1].parse().expect("an episode id");
    let a = acks.entry(id).or_default();
    match parts[0] {
        "S" => {}
        "T" => {
            let seq: u32 = parts[2].parse().expect("a seq");
            a.steps.insert(seq, parts[3].to_owned());
        }
        "C" => a.completed_version = Some(parts[2].parse().expect("a version")),
        other => panic!("unknown acknowledgement {other:?} in {line:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let rounds = env_u64("MEMORY_TEST_CRASH_ROUNDS", 8);
    let mut rng = env_u64("MEMORY_TEST_CRASH_SEED", 0xC0FFEE);
    let dir = tempfile::tempdir().unwrap();
    let mut acks: HashMap<EpisodeId, Acked> = HashMap::new();
    let mut total_lines = 0;
    for round in 0..rounds {
        let mode = ["ingest", "reconcile", "outage"][(next(&mut rng) % 3) as usize];
        let delay = Duration::from_millis(300 + next(&mut rng) % 900);
        let lines = run_and_kill(dir.path(), round, mode, delay);
        total_lines += lines.len();
        for line in &lines {
            record(&mut acks, line);
        }

        let e = open_embedded(dir.path(), MemoryConfig::default())
            .await
            .unwrap();
        let m = &e.memory;
        for (id, a) in &acks {
            let stored = m
                .get_episode(*id)
                .await
                .unwrap_or_else(|err| panic!("round {round}: acknowledged {id} lost: {err}"));
            for (seq, input) in &a.steps {
                let step = stored.steps.get(*seq as usize).unwrap_or_else(|| {
                    panic!("round {round}: acknowledged step {seq} of {id} lost")
                });
                assert_eq!(step.seq, *seq);
                assert_eq!(&step.input, input, "round {round}: step {seq} of {id}");
            }
            if let Some(v) = a.completed_version {
                assert!(
                    stored.is_completed(),
                    "round {round}: completion of {id} lost"
                );
                assert_eq!(stored.version, v, "round {round}: {id}");
            }
        }
        // Every stored episode is whole, acknowledged or not.
        let mut after = None;
        loop {
            let page = m.list_episodes("crash", after, 1000).await.unwrap();
            for ep in &page.items {
                for (i, s) in ep.steps.iter().enumerate() {
                    assert_eq!(
                        s.seq as usize, i,
                        "round {round}: gapless steps of {}",
                        ep.id
                    );
                }
                assert_eq!(ep.outcome.is_some(), ep.completed_at.is_some());
                assert!(ep.version >= 1);
            }
            match page.next_after {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let first = m.reconcile().await.unwrap();
        assert_eq!(first.journal_remaining, 0, "round {round}: {first:?}");
        let second = m.reconcile().await.unwrap();
        assert_eq!(
            second.repairs(),
            0,
            "round {round}: stores agree after one pass: {second:?}"
        );
        m.shutdown().await.unwrap();
    }
    assert!(
        total_lines > rounds as usize,
        "the child acknowledged work before being killed ({total_lines} lines)"
    );
    println!(
        "{rounds} rounds, {total_lines} acknowledgements, {} episodes",
        acks.len()
    );
}
