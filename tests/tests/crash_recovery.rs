//! SIGKILL at any moment loses nothing acknowledged.
//!
//! Each round runs `crash_child` (a binary of this package, `src/bin/crash_child.rs`) on a
//! directory, lets it record episodes from 8 concurrent tasks (start, `log_step`/`log_steps`,
//! complete, update, delete) in one of three modes (plain ingest; a durable-store outage whose
//! journal is replayed while ingest goes on; ingest with reconciliation passes in a loop) and
//! SIGKILLs it at a seeded moment: 1–60 ms after it started (often during open), 50–800 ms
//! after it is ready, or (outage rounds) 0–150 ms after the outage ended, around the replay. In
//! a third of the outage rounds a second child (ingest) then opens what the first left, usually
//! a journal, and is killed 1–80 ms after it started, while its open replays that journal. A
//! directory serves 4 rounds, so later rounds open what earlier kills left. The children's
//! acknowledgements are read from their stdout as they come; a line cut by a kill is ignored.
//!
//! After each kill the store is reopened in this process and checked:
//! - every acknowledged start, step (sequence number and exact content) and completion or
//!   update (at least its version, at most one write later: one call per episode may have been
//!   in flight) is in the durable store, and every acknowledged delete stays deleted (also for
//!   `get_episode`);
//! - every stored episode, acknowledged or not, is whole: steps numbered 0..n each with the
//!   content the workload derives for it, in the order the task sent them, no step twice;
//!   completed exactly when it has an outcome; at a version the workload writes, holding exactly
//!   what that version holds; a completed episode whose every call was acknowledged has exactly
//!   the acknowledged steps; at most one unacknowledged episode per task and child;
//! - `get_episode` (cache first) returns exactly the durable copy of every episode;
//! - the journal is drained, one reconciliation pass later a second finds nothing to repair,
//!   the index holds exactly the durable ids at their versions, and after shutdown the redb
//!   file holds no cache entry at another version than the durable store and an empty journal.
//!
//! Rounds: `MEMORY_TEST_CRASH_ROUNDS` (default 20); `MEMORY_TEST_CRASH_SEED` picks the
//! schedule. A summary (acknowledgements, where the kills landed, time) is printed; run with
//! `--nocapture` to see it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use memory_core::store::{CacheStore, Journal};
use memory_core::{Episode, EpisodeId, ErrorKind, MemoryConfig, SelfLearningMemory};
use memory_storage_redb::{JOURNAL_FILE, RedbCache, RedbJournal, RedbOptions};
use memory_tests::crash::{Key, Line, NAMESPACE, Rng};
use memory_tests::open_embedded;

/// Rounds on one directory before a fresh one.
const ROUNDS_PER_DIR: u64 = 4;
/// The child's concurrent tasks (each has at most one call in flight).
const TASKS: usize = 8;
/// Longest wait for a line the schedule waits for.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// When the child is killed.
#[derive(Debug, Clone, Copy)]
enum KillAfter {
    /// This long after it was started (often while it opens the store).
    Spawn(Duration),
    /// This long after `READY`.
    Ready(Duration),
    /// This long after `EVENT outage-off` (outage mode: during or around the replay).
    OutageEnd(Duration),
}

/// What the reader thread passes on.
enum Msg {
    /// A whole line and when it arrived.
    Line(String, Instant),
    /// Bytes after the last newline when the pipe closed: a line cut by the kill.
    Torn,
}

/// Wait until a line satisfying `want` arrives, collecting every line; `false` if the child's
/// output ended first.
fn wait_for(rx: &Receiver<Msg>, lines: &mut Vec<(String, Instant)>, want: &str) -> bool {
    let deadline = Instant::now() + LINE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::Line(l, at)) => {
                let hit = l == want;
                lines.push((l, at));
                if hit {
                    return true;
                }
            }
            Ok(Msg::Torn) | Err(RecvTimeoutError::Disconnected) => return false,
            Err(RecvTimeoutError::Timeout) => panic!("no {want:?} from the child within 60 s"),
        }
    }
}

/// What one run of the child printed.
struct Run {
    /// Its whole lines.
    lines: Vec<Line>,
    /// Whether a line was cut by the kill.
    torn: bool,
    /// From start to `READY`, if it got there.
    ready_after: Option<Duration>,
}

/// Run the child, kill it as scheduled, and return what it printed.
fn run_and_kill(dir: &Path, seed: u64, mode: &str, kill: KillAfter) -> Run {
    let spawned = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_child"))
        .arg(dir)
        .arg(seed.to_string())
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start crash_child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut out = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match out.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) if buf.last() == Some(&b'\n') => {
                    let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                    if tx.send(Msg::Line(line, Instant::now())).is_err() {
                        return;
                    }
                }
                Ok(_) => {
                    let _ = tx.send(Msg::Torn);
                    return;
                }
            }
        }
    });
    let mut raw = Vec::new();
    let alive = match kill {
        KillAfter::Spawn(d) => {
            std::thread::sleep(d);
            true
        }
        KillAfter::Ready(d) => {
            let ok = wait_for(&rx, &mut raw, "READY");
            std::thread::sleep(d);
            ok
        }
        KillAfter::OutageEnd(d) => {
            let ok = wait_for(&rx, &mut raw, "EVENT outage-off");
            std::thread::sleep(d);
            ok
        }
    };
    if let Some(status) = child.try_wait().expect("poll the child") {
        panic!("crash_child exited by itself ({status}) before the kill; its stderr is above");
    }
    assert!(alive, "the child's output ended before it was killed");
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed: {status}");
    reader.join().expect("reader thread");
    let mut torn = false;
    for msg in rx.try_iter() {
        match msg {
            Msg::Line(l, at) => raw.push((l, at)),
            Msg::Torn => torn = true,
        }
    }
    let ready_after = raw
        .iter()
        .find(|(l, _)| l == "READY")
        .map(|(_, at)| at.duration_since(spawned));
    let lines = raw
        .iter()
        .map(|(l, _)| l.parse::<Line>().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    Run {
        lines,
        torn,
        ready_after,
    }
}

/// What the child acknowledged about one episode, over all rounds on the directory.
#[derive(Debug)]
struct Acked {
    key: Key,
    /// seq -> step number k.
    steps: BTreeMap<u32, u32>,
    completed: bool,
    /// The latest acknowledged version (1 once started).
    version: u64,
    /// Its delete was acknowledged.
    deleted: bool,
    /// Calls on it that failed (outage mode).
    failures: u32,
}

/// The phase after the outage ended and before replay first trimmed the journal.
const OUTAGE_OVER: &str = "outage over, replay not yet trimmed";

/// Where a kill landed, from the events printed before it.
fn phase(mode: &str, lines: &[Line]) -> &'static str {
    if !lines.contains(&Line::Ready) {
        return "open";
    }
    let mut events = lines.iter().filter_map(|l| match l {
        Line::Event(e) => Some(e.as_str()),
        _ => None,
    });
    match mode {
        "outage" => {
            let (mut on, mut off, mut journaling, mut replaying) = (false, false, false, false);
            for e in events {
                match e {
                    "outage-on" => on = true,
                    "outage-off" => off = true,
                    "journaling" => journaling = true,
                    "replaying" => replaying = true,
                    "drained" => (journaling, replaying) = (false, false),
                    _ => {}
                }
            }
            match (on, off, journaling, replaying) {
                (false, ..) => "before the outage",
                (true, false, ..) => "outage",
                (true, true, true, false) => OUTAGE_OVER,
                (true, true, true, true) => "journal replay",
                (true, true, false, _) => "after the replay",
            }
        }
        "reconcile" => match events.next_back() {
            Some("reconcile-begin") => "reconciliation",
            _ => "between passes",
        },
        _ => "ingest",
    }
}

/// The durable truth: every episode of the namespace, through the engine's listing.
async fn durable_episodes(m: &SelfLearningMemory) -> BTreeMap<EpisodeId, Episode> {
    let mut all = BTreeMap::new();
    let mut after = None;
    loop {
        let page = m
            .list_episodes(NAMESPACE, after, 1000)
            .await
            .expect("list the durable store");
        for e in page.items {
            all.insert(e.id, e);
        }
        match page.next_after {
            Some(n) => after = Some(n),
            None => return all,
        }
    }
}

/// Every stored episode is whole and holds exactly what the workload wrote at its version.
fn check_whole(e: &Episode) -> Key {
    let key = Key::from_description(&e.description)
        .unwrap_or_else(|| panic!("{}: not a harness description: {:?}", e.id, e.description));
    let expected_ctx = key.context();
    assert_eq!(
        (
            &e.context.namespace,
            &e.context.domain,
            &e.context.task_type
        ),
        (
            &expected_ctx.namespace,
            &expected_ctx.domain,
            &expected_ctx.task_type
        ),
        "{}: context",
        e.id
    );
    assert!(
        e.steps.len() <= key.steps() as usize,
        "{}: too many steps",
        e.id
    );
    let mut last_k = None;
    for (i, s) in e.steps.iter().enumerate() {
        assert_eq!(s.seq as usize, i, "{}: steps numbered without gaps", e.id);
        let k = key
            .step_number(&s.input)
            .unwrap_or_else(|| panic!("{}: step {i} is not one of its task's: {s:?}", e.id));
        assert!(
            last_k.is_none_or(|l| l < k),
            "{}: step {i} (k = {k}) out of order or repeated after k = {last_k:?}",
            e.id
        );
        last_k = Some(k);
        let want = key.step(k);
        assert_eq!(
            (&s.tool, &s.input, &s.output, s.success, s.latency_ms),
            (
                &want.tool,
                &want.input,
                &want.output,
                want.success,
                want.latency_ms
            ),
            "{}: content of step {i}",
            e.id
        );
    }
    assert_eq!(
        e.outcome.is_some(),
        e.completed_at.is_some(),
        "{}: completed exactly when it has an outcome",
        e.id
    );
    match &e.outcome {
        None => {
            assert_eq!(e.version, 1, "{}: in progress at version 1", e.id);
            assert_eq!(
                (e.reward, &e.reflection, e.context.tags.len()),
                (0.0, &None, 0),
                "{}: in progress carries no completion fields",
                e.id
            );
        }
        Some(outcome) => {
            let (want_outcome, reward, reflection, tags) = key
                .completed_at_version(e.version)
                .unwrap_or_else(|| panic!("{}: version {} is never written", e.id, e.version));
            assert_eq!(outcome, &want_outcome, "{}: outcome", e.id);
            assert_eq!(
                (e.reward, &e.reflection, &e.context.tags),
                (reward, &reflection, &tags),
                "{}: fields at version {}",
                e.id,
                e.version
            );
        }
    }
    key
}

/// Totals over the run, printed at the end.
#[derive(Debug, Default)]
struct Totals {
    acks: usize,
    torn: usize,
    failures: BTreeMap<String, usize>,
    unacknowledged: usize,
    first_pass_repairs: u64,
    phases: BTreeMap<&'static str, usize>,
    modes: BTreeMap<&'static str, usize>,
    slowest_open: Duration,
    deletes_in_flight: usize,
}

fn config() -> MemoryConfig {
    MemoryConfig {
        reconcile_interval: None,
        // Reads must come from the redb file, which is what a crash can damage.
        hot_cache_bytes: 0,
        ..MemoryConfig::default()
    }
}

/// Reopen the store the child left and check it against the acknowledgements.
async fn check_round(
    dir: &Path,
    round: u64,
    seeds: &[u64],
    acks: &mut HashMap<EpisodeId, Acked>,
    unacknowledged: &mut HashSet<EpisodeId>,
    totals: &mut Totals,
) {
    let e = open_embedded(dir, config())
        .await
        .unwrap_or_else(|err| panic!("round {round}: reopen after the kill: {err}"));
    let m = &e.memory;
    let resilient = m.resilience().expect("the embedded default has a journal");
    assert_eq!(
        resilient.pending_writes(),
        0,
        "round {round}: open replayed the journal"
    );
    let stored = durable_episodes(m).await;
    check_stored(round, seeds, &stored, acks, unacknowledged, totals);
    check_acknowledged(round, m, &stored, acks, totals).await;
    check_reads(round, m, &stored).await;
    check_agreement(round, m, &stored, totals).await;
    m.shutdown().await.expect("shutdown");
    drop(e);
    check_file(round, dir, &stored).await;
}

/// Nothing half-written, acknowledged or not; at most one unacknowledged start per task and
/// child.
fn check_stored(
    round: u64,
    seeds: &[u64],
    stored: &BTreeMap<EpisodeId, Episode>,
    acks: &HashMap<EpisodeId, Acked>,
    unacknowledged: &mut HashSet<EpisodeId>,
    totals: &mut Totals,
) {
    let mut new_unacknowledged = 0;
    for ep in stored.values() {
        let key = check_whole(ep);
        if !acks.contains_key(&ep.id) && unacknowledged.insert(ep.id) {
            // Its start was in flight at the kill (or its acknowledgement was not printed).
            assert!(
                seeds.contains(&key.seed),
                "round {round}: {} appeared without being written in this round",
                ep.id
            );
            assert!(
                ep.steps.is_empty() && ep.version == 1,
                "round {round}: unacknowledged {} got further than its start",
                ep.id
            );
            new_unacknowledged += 1;
        }
    }
    assert!(
        new_unacknowledged <= TASKS * seeds.len(),
        "round {round}: {new_unacknowledged} unacknowledged episodes, at most one start in flight per task"
    );
    totals.unacknowledged += new_unacknowledged;
}

/// Everything acknowledged is there, unchanged; nothing deleted comes back.
async fn check_acknowledged(
    round: u64,
    m: &SelfLearningMemory,
    stored: &BTreeMap<EpisodeId, Episode>,
    acks: &mut HashMap<EpisodeId, Acked>,
    totals: &mut Totals,
) {
    for (id, a) in acks.iter_mut() {
        if a.deleted {
            assert!(
                !stored.contains_key(id),
                "round {round}: deleted {id} is back in the durable store"
            );
            let err = m.get_episode(*id).await.expect_err("deleted");
            assert_eq!(
                err.kind(),
                ErrorKind::NotFound,
                "round {round}: {id}: {err}"
            );
            continue;
        }
        let Some(ep) = stored.get(id) else {
            // Gone: only its delete, the call after its last acknowledged one, may explain it.
            assert!(
                a.key.deleted() && a.completed && a.version == a.key.last_version(),
                "round {round}: acknowledged {id} ({}) lost",
                a.key
            );
            // From now on it must stay deleted.
            a.deleted = true;
            totals.deletes_in_flight += 1;
            continue;
        };
        assert_eq!(
            Key::from_description(&ep.description),
            Some(a.key),
            "round {round}: {id}"
        );
        for (seq, k) in &a.steps {
            let step = ep
                .steps
                .get(*seq as usize)
                .unwrap_or_else(|| panic!("round {round}: acknowledged step {seq} of {id} lost"));
            assert_eq!(
                a.key.step_number(&step.input),
                Some(*k),
                "round {round}: step {seq} of {id} is not the acknowledged one"
            );
        }
        assert!(
            ep.version >= a.version && ep.version <= a.version + 1,
            "round {round}: {id} at version {}, acknowledged {} (one write may be in flight)",
            ep.version,
            a.version
        );
        if a.completed {
            assert!(ep.is_completed(), "round {round}: completion of {id} lost");
            if a.failures == 0 {
                assert_eq!(
                    ep.steps.len(),
                    a.steps.len(),
                    "round {round}: completed {id} has exactly its acknowledged steps"
                );
            }
        } else if a.failures == 0 && !ep.is_completed() {
            assert!(
                ep.steps.len() <= a.steps.len() + 2,
                "round {round}: {id} has steps beyond the one call that may be in flight"
            );
        }
    }
}

/// Reads through the cache return exactly the durable copy.
async fn check_reads(round: u64, m: &SelfLearningMemory, stored: &BTreeMap<EpisodeId, Episode>) {
    for (id, want) in stored {
        let got = m
            .get_episode(*id)
            .await
            .unwrap_or_else(|err| panic!("round {round}: get {id}: {err}"));
        assert_eq!(
            &got, want,
            "round {round}: get_episode({id}) differs from the durable store"
        );
    }
}

/// Reconcile until the journal is drained; then a second pass finds nothing to repair and the
/// index holds exactly the durable ids at their versions.
async fn check_agreement(
    round: u64,
    m: &SelfLearningMemory,
    stored: &BTreeMap<EpisodeId, Episode>,
    totals: &mut Totals,
) {
    let mut first = None;
    for _ in 0..20 {
        let r = m.reconcile().await.expect("reconcile");
        if r.journal_remaining == 0 {
            first = Some(r);
            break;
        }
    }
    let first = first.unwrap_or_else(|| panic!("round {round}: journal not drained in 20 passes"));
    totals.first_pass_repairs += first.repairs();
    let second = m.reconcile().await.expect("reconcile");
    assert_eq!(
        second.repairs(),
        0,
        "round {round}: the stores agree after one pass: {second:?} (first: {first:?})"
    );
    let mut indexed = m.index().versions().expect("index versions");
    indexed.sort_unstable();
    let durable: Vec<(EpisodeId, u64)> = stored.values().map(|e| (e.id, e.version)).collect();
    assert_eq!(
        indexed, durable,
        "round {round}: the index holds exactly the durable ids at their versions"
    );
}

/// The file as the next round will find it (after a clean shutdown): cache entries only at
/// durable versions, an empty journal.
async fn check_file(round: u64, dir: &Path, stored: &BTreeMap<EpisodeId, Episode>) {
    let cache = RedbCache::open_async(dir.join("cache.redb"), RedbOptions::default())
        .await
        .expect("open the cache file");
    let mut after = None;
    loop {
        let page = cache.scan(after, 1000).await.expect("scan the cache");
        for c in &page.items {
            let durable = stored.get(&c.id).map(|e| e.version);
            assert!(
                c.version.is_some() && c.version == durable,
                "round {round}: cache entry {} at {:?}, durable at {durable:?}",
                c.id,
                c.version
            );
        }
        match page.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(
        RedbJournal::open_async(dir.join(JOURNAL_FILE))
            .await
            .expect("open the journal file")
            .depth()
            .await
            .expect("journal depth"),
        0,
        "round {round}: journal empty after a drained reconcile and a clean shutdown"
    );
}

/// Run one child to its kill, fold what it acknowledged into `acks`, and return where the kill
/// landed.
fn run_child(
    dir: &Path,
    seed: u64,
    mode: &'static str,
    kill: KillAfter,
    acks: &mut HashMap<EpisodeId, Acked>,
    totals: &mut Totals,
) -> &'static str {
    let Run {
        lines,
        torn,
        ready_after,
    } = run_and_kill(dir, seed, mode, kill);
    totals.torn += usize::from(torn);
    if let Some(d) = ready_after {
        totals.slowest_open = totals.slowest_open.max(d);
    }
    *totals.modes.entry(mode).or_default() += 1;
    record(&lines, mode, acks, totals);
    phase(mode, &lines)
}

/// Fold one round's lines into the acknowledgements.
fn record(lines: &[Line], mode: &str, acks: &mut HashMap<EpisodeId, Acked>, totals: &mut Totals) {
    for line in lines {
        match line {
            Line::Start(id, key) => {
                let old = acks.insert(
                    *id,
                    Acked {
                        key: *key,
                        steps: BTreeMap::new(),
                        completed: false,
                        version: 1,
                        deleted: false,
                        failures: 0,
                    },
                );
                assert!(old.is_none(), "{id} acknowledged as started twice");
                totals.acks += 1;
            }
            Line::Steps(id, steps) => {
                let a = acks.get_mut(id).expect("steps of an acknowledged start");
                for (seq, k) in steps {
                    assert!(
                        a.steps.insert(*seq, *k).is_none(),
                        "{id}: seq {seq} acknowledged twice"
                    );
                }
                totals.acks += 1;
            }
            Line::Complete(id, v) => {
                let a = acks
                    .get_mut(id)
                    .expect("completion of an acknowledged start");
                assert_eq!(*v, 2, "{id}: completed at version 2");
                a.completed = true;
                a.version = *v;
                totals.acks += 1;
            }
            Line::Update(id, v, u) => {
                let a = acks.get_mut(id).expect("update of an acknowledged start");
                assert_eq!(*v, 2 + u64::from(*u), "{id}: update {u} at version 2 + {u}");
                a.version = *v;
                totals.acks += 1;
            }
            Line::Delete(id) => {
                let a = acks.get_mut(id).expect("delete of an acknowledged start");
                assert!(
                    a.completed && a.version == a.key.last_version() && a.key.deleted(),
                    "{id}: deleted only after its last update"
                );
                a.deleted = true;
                totals.acks += 1;
            }
            Line::Failed(op, id, kind) => {
                assert_eq!(
                    (mode, kind.as_str()),
                    ("outage", "Unavailable"),
                    "only an outage fails calls, and only as unavailable: {op} {id:?}"
                );
                if let Some(a) = id.and_then(|id| acks.get_mut(&id)) {
                    a.failures += 1;
                }
                *totals.failures.entry(format!("{op} {kind}")).or_default() += 1;
            }
            Line::Ready | Line::Event(_) => {}
        }
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let started = Instant::now();
    let rounds = env_u64("MEMORY_TEST_CRASH_ROUNDS", 20);
    let mut rng = Rng::new(env_u64("MEMORY_TEST_CRASH_SEED", 0xC0FFEE));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut totals = Totals::default();
    let mut dir = tempfile::tempdir().expect("temp dir");
    let mut acks: HashMap<EpisodeId, Acked> = HashMap::new();
    let mut unacknowledged = HashSet::new();
    for round in 0..rounds {
        if round > 0 && round.is_multiple_of(ROUNDS_PER_DIR) {
            dir = tempfile::tempdir().expect("temp dir");
            acks.clear();
            unacknowledged.clear();
        }
        let mode = ["ingest", "outage", "reconcile"][rng.range(0..3) as usize];
        let kill = if rng.range(0..10) == 0 {
            KillAfter::Spawn(Duration::from_millis(rng.range(1..60)))
        } else if mode == "outage" && rng.range(0..2) == 0 {
            KillAfter::OutageEnd(Duration::from_millis(rng.range(0..150)))
        } else {
            KillAfter::Ready(Duration::from_millis(rng.range(50..800)))
        };
        // One seed per child: episode keys never repeat in a directory.
        let seed = rng.next_u64() >> 1;
        // In some outage rounds a second child opens what the first left (a journal, unless
        // replay had drained it) and is killed soon after it started, while its open replays.
        let second = (mode == "outage" && rng.range(0..3) == 0).then(|| {
            (
                rng.next_u64() >> 1,
                KillAfter::Spawn(Duration::from_millis(rng.range(1..80))),
            )
        });
        let first = run_child(dir.path(), seed, mode, kill, &mut acks, &mut totals);
        *totals.phases.entry(first).or_default() += 1;
        let mut seeds = vec![seed];
        if let Some((seed, kill)) = second {
            let then = run_child(dir.path(), seed, "ingest", kill, &mut acks, &mut totals);
            let journal_left = ["outage", OUTAGE_OVER, "journal replay"].contains(&first);
            let label = match then {
                "open" if journal_left => "second child: open over the journal a kill left",
                "open" => "second child: open",
                _ => "second child: ingest",
            };
            *totals.phases.entry(label).or_default() += 1;
            seeds.push(seed);
        }
        rt.block_on(check_round(
            dir.path(),
            round,
            &seeds,
            &mut acks,
            &mut unacknowledged,
            &mut totals,
        ));
    }
    assert!(
        totals.acks > rounds as usize,
        "the child acknowledged work before being killed: {totals:?}"
    );
    println!(
        "crash_recovery: {rounds} rounds in {:.1} s; {} acknowledgements, {} torn lines, failed calls \
         (outage) {:?}, {} unacknowledged episodes found whole; children by mode {:?}; kills landed in {:?}; \
         first reconciliation passes repaired {}; slowest open of the child {:?}; \
         {} deletes in flight landed",
        started.elapsed().as_secs_f64(),
        totals.acks,
        totals.torn,
        totals.failures,
        totals.unacknowledged,
        totals.modes,
        totals.phases,
        totals.first_pass_repairs,
        totals.slowest_open,
        totals.deletes_in_flight,
    );
}
