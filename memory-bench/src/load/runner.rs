//! One load run from start to finish: open the embedded default in a fresh (or given)
//! directory, pre-load if the scenario needs data, run the scenario under the watchdog while
//! the sampler and the progress line run, wait for the journal to drain, read every
//! acknowledged completion back through the engine, take `metrics()`, shut down, read them
//! back again straight from the libsql file, and grade the run.
//!
//! The watchdog is one deadline over everything that needs the engine to make progress
//! (pre-load, load, drain, read-back): if it passes, the run is reported as a deadlock or
//! stall (red) with whatever was measured until then.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use memory_core::store::{FaultInjector, FaultPlan};
use memory_core::{Error, MemoryConfig, MetricsSnapshot, Result, SelfLearningMemory};
use tokio::time::timeout_at;

use crate::load::client::{Acked, Client, EpisodeCounts, Fingerprint, Retry};
use crate::load::engine::{self, ReadBack};
use crate::load::items::{Items, Queries};
use crate::load::machine::{Machine, peak_rss_bytes};
use crate::load::options::{LoadOptions, Scenario};
use crate::load::output::Outcome;
use crate::load::plot::Span;
use crate::load::preload::preload;
use crate::load::progress::{Goal, Progress};
use crate::load::recorder::{Op, OpRecord, Recorder};
use crate::load::report::{
    EngineFigures, EngineSettings, EpisodeFigures, OpFigures, RateFigures, Report, Timeline,
    Verification,
};
use crate::load::sampler::{EnginePoint, Sampler};
use crate::load::scenario::mixed::Arrivals;
use crate::load::scenario::{burst, completions, mixed, outage, queries};
use crate::load::verdict::{self, Inputs};

/// How long `shutdown()` may take before the run stops waiting for it.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(30);
/// How long non-outage runs wait for the journal to be empty.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// Error kinds that count as storage errors in the verdict.
const STORAGE_KINDS: [&str; 3] = ["unavailable", "storage", "corrupt"];

/// What the phases that need the engine produced.
struct Measured {
    setup_s: f64,
    duration_s: f64,
    finished: bool,
    records: Vec<OpRecord>,
    counts: Arc<EpisodeCounts>,
    acked: Arc<Acked>,
    arrivals: Option<Arrivals>,
    outage: Option<Span>,
    points: Vec<EnginePoint>,
    drained_at_s: Option<f64>,
    facade: Option<ReadBack>,
    metrics: MetricsSnapshot,
}

fn goal(s: &Scenario, steps: usize) -> Goal {
    let per_episode = steps as u64 + 2;
    match s {
        Scenario::Completions(p) => Goal::Calls((p.rounds * p.concurrency) as u64 * per_episode),
        Scenario::Queries(p) => Goal::Calls((p.rounds * p.concurrency) as u64),
        Scenario::Sustained(p) => Goal::Time(Duration::from_secs_f64(p.duration_s)),
        Scenario::Burst(p) => Goal::Calls((p.bursts * p.burst) as u64 * per_episode),
        Scenario::Outage(p) => Goal::Time(Duration::from_secs_f64(p.mixed.duration_s)),
    }
}

fn preload_size(s: &Scenario) -> Option<usize> {
    match s {
        Scenario::Queries(p) => Some(p.preload),
        Scenario::Sustained(p) => Some(p.preload),
        Scenario::Outage(p) => Some(p.mixed.preload),
        Scenario::Completions(_) | Scenario::Burst(_) => None,
    }
}

/// Run the scenario's load; returns the open-loop arrivals and the injected outage, if any.
async fn load(
    client: &Client,
    s: &Scenario,
    mut items: Items,
    faults: Option<Arc<FaultInjector>>,
    seed: u64,
) -> Result<(Option<Arrivals>, Option<Span>)> {
    match s {
        Scenario::Completions(p) => {
            completions::run(client, &mut items, p).await?;
            Ok((None, None))
        }
        Scenario::Queries(p) => {
            let mut q = Queries::new(seed, p.limit)?;
            queries::run(client, &mut q, p).await?;
            Ok((None, None))
        }
        Scenario::Sustained(p) => {
            let q = Queries::new(seed, p.limit)?;
            Ok((Some(mixed::run(client, items, q, p, seed).await?), None))
        }
        Scenario::Burst(p) => {
            burst::run(client, &mut items, p).await?;
            Ok((None, None))
        }
        Scenario::Outage(p) => {
            let faults = faults
                .ok_or_else(|| Error::storage("the outage scenario needs a fault injector"))?;
            let q = Queries::new(seed, p.mixed.limit)?;
            let origin = client.recorder.origin();
            let (a, span) = outage::run(client, items, q, p, faults, origin, seed).await?;
            Ok((Some(a), Some(span)))
        }
    }
}

/// Wait until the journal is empty and writes go direct again; when that happened (seconds
/// since `origin`), or `None` after `limit`.
async fn drain(memory: &SelfLearningMemory, limit: Duration, origin: Instant) -> Option<f64> {
    let until = Instant::now() + limit;
    loop {
        let done = memory
            .resilience()
            .is_none_or(|r| r.pending_writes() == 0 && !r.is_journaling());
        if done {
            return Some(origin.elapsed().as_secs_f64());
        }
        if Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn read_back_facade(memory: &SelfLearningMemory, expected: &[Fingerprint]) -> ReadBack {
    let mut found = ReadBack::default();
    for f in expected {
        found.count(f, memory.get_episode(f.id).await.map(Some));
    }
    found
}

async fn measure(
    o: &LoadOptions,
    memory: &SelfLearningMemory,
    faults: Option<Arc<FaultInjector>>,
    retry: Retry,
) -> Result<Measured> {
    let c = &o.common;
    let deadline = tokio::time::Instant::now() + o.watchdog();
    let acked = Arc::new(Acked::default());
    let mut items = Items::new(c.seed, c.steps);
    let mut finished = true;
    let setup_started = Instant::now();
    if let Some(n) = preload_size(&o.scenario) {
        match timeout_at(deadline, preload(memory, &acked, &mut items, n)).await {
            Ok(r) => {
                r?;
            }
            Err(_) => finished = false,
        }
    }
    let setup_s = setup_started.elapsed().as_secs_f64();

    let recorder = Arc::new(Recorder::new(c.max_samples, c.seed));
    let origin = recorder.origin();
    let counts = Arc::new(EpisodeCounts::default());
    let client = Client {
        memory: memory.clone(),
        recorder: recorder.clone(),
        acked: acked.clone(),
        counts: counts.clone(),
        retry,
    };
    let sampler = Sampler::start(memory.clone(), origin, Duration::from_millis(c.sample_ms));
    let progress = Progress::start(
        format!("load {}", o.scenario.name()),
        goal(&o.scenario, c.steps),
        recorder.clone(),
        c.progress,
    );
    let (mut arrivals, mut outage) = (None, None);
    if finished {
        match timeout_at(deadline, load(&client, &o.scenario, items, faults, c.seed)).await {
            Ok(r) => (arrivals, outage) = r?,
            Err(_) => finished = false,
        }
    }
    let duration_s = origin.elapsed().as_secs_f64();
    let drain_limit = match &o.scenario {
        Scenario::Outage(p) => Duration::from_secs_f64(p.drain_timeout_s),
        _ => DRAIN_LIMIT,
    };
    let mut drained_at_s = None;
    if finished {
        match timeout_at(deadline, drain(memory, drain_limit, origin)).await {
            Ok(d) => drained_at_s = d,
            Err(_) => finished = false,
        }
    }
    progress.finish().await;
    let points = sampler.stop().await?;
    let mut facade = None;
    if finished {
        match timeout_at(deadline, read_back_facade(memory, &acked.all())).await {
            Ok(rb) => facade = Some(rb),
            Err(_) => finished = false,
        }
    }
    Ok(Measured {
        setup_s,
        duration_s,
        finished,
        records: Op::ALL.iter().map(|op| recorder.snapshot(*op)).collect(),
        counts,
        acked,
        arrivals,
        outage,
        points,
        drained_at_s,
        facade,
        metrics: memory.metrics(),
    })
}

/// Run `o` and grade it. Writes nothing but the engine's data directory (see `output` for
/// the report files).
pub async fn run_load(o: &LoadOptions) -> Result<Outcome> {
    let c = &o.common;
    let machine = Machine::detect();
    let date = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let temp =
        match c.dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().map_err(|e| {
                Error::storage("cannot create a temporary directory").with_source(e)
            })?),
        };
    let dir: PathBuf = match (&c.dir, &temp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => return Err(Error::storage("no data directory")),
    };
    let fresh = !engine::holds_data(&dir);
    let mut config = MemoryConfig::from_env()?;
    config.data_dir = dir.clone();
    let mut retry = Retry::none();
    let faults = match &o.scenario {
        Scenario::Outage(p) => {
            config.resilience.breaker.failure_threshold = p.breaker_threshold;
            config.resilience.breaker.cool_down = Duration::from_millis(p.cool_down_ms);
            config.replay_interval = Duration::from_millis(p.replay_interval_ms);
            retry = Retry {
                attempts: p.retry_attempts.max(1),
                backoff: Duration::from_millis(p.retry_backoff_ms),
            };
            Some(FaultInjector::new(FaultPlan::none()))
        }
        _ => None,
    };
    config.validate()?;
    let settings = EngineSettings::of(&config, fresh);
    let memory = engine::open(config, faults.clone()).await?;
    let measured = measure(o, &memory, faults.clone(), retry).await;
    let shutdown = tokio::time::timeout(SHUTDOWN_LIMIT, memory.shutdown()).await;
    let m = measured?;
    let mut finished = m.finished;
    match shutdown {
        Ok(Ok(())) => {}
        Ok(Err(e)) if finished => return Err(e),
        Err(_) if finished => {
            finished = false;
        }
        _ => {}
    }
    let expected = m.acked.all();
    let durable = if finished {
        Some(engine::read_back_durable(&dir, &expected).await?)
    } else {
        None
    };
    let lost = match (m.facade, durable) {
        (Some(f), Some(d)) => Some(f.lost().max(d.lost())),
        _ => None,
    };

    let duration_s = m.duration_s;
    let ops: Vec<OpFigures> = m
        .records
        .iter()
        .map(|r| OpFigures::of(r, duration_s))
        .collect();
    let calls: u64 = ops.iter().map(|o| o.calls).sum();
    let ok_of = |op: Op| m.records.iter().find(|r| r.op == op).map_or(0, |r| r.ok);
    let per_s = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let acknowledged = m.counts.acknowledged.load(Ordering::Relaxed);
    let mixed_params = match &o.scenario {
        Scenario::Sustained(p) => Some(p),
        Scenario::Outage(p) => Some(&p.mixed),
        _ => None,
    };
    let rates = match (mixed_params, m.arrivals) {
        (Some(p), Some(a)) => Some(RateFigures {
            arrivals: a,
            target_episodes_per_s: p.rate,
            issued_episodes_per_s: per_s(a.episodes, a.window_s),
            acknowledged_episodes_per_s: per_s(acknowledged, duration_s),
            target_queries_per_s: p.query_rate,
            ok_queries_per_s: per_s(ok_of(Op::Retrieve), duration_s),
            target_gets_per_s: p.get_rate,
            ok_gets_per_s: per_s(ok_of(Op::Get), duration_s),
        }),
        _ => None,
    };
    let writes_only = matches!(o.scenario, Scenario::Outage(_));
    let scoped = m.records.iter().filter(|r| !writes_only || r.op.is_write());
    let (scoped_calls, storage_errors) = scoped.fold((0, 0), |(calls, errors), r| {
        let e: u64 = STORAGE_KINDS.iter().filter_map(|k| r.errors.get(*k)).sum();
        (calls + r.calls(), errors + e)
    });
    let retrieve = m.records.iter().find(|r| r.op == Op::Retrieve);
    let inputs = Inputs {
        query_p99_ms: retrieve
            .filter(|r| r.calls() > 0)
            .map(|r| r.latency.quantile(0.99) as f64 / 1e6),
        index_write_p99_ms: (m.metrics.index_write.count > 0)
            .then_some(m.metrics.index_write.p99.as_secs_f64() * 1e3),
        storage_errors,
        scoped_calls,
        error_scope: if writes_only {
            "writes".into()
        } else {
            "all calls".into()
        },
        finished,
        lost,
    };
    let checks = verdict::checks(&inputs, &c.thresholds);
    let mut timeline = Timeline::of(m.points);
    timeline.outage = m.outage;
    timeline.faults_injected = faults.map(|f| f.injected());
    timeline.drained_at_s = m.drained_at_s;
    let report = Report {
        scenario: o.scenario.name().to_owned(),
        command: o.command(),
        parameters: o.scenario.params(),
        steps: c.steps,
        seed: c.seed,
        engine_settings: settings,
        thresholds: c.thresholds,
        machine,
        date,
        setup_s: m.setup_s,
        duration_s,
        finished,
        watchdog_s: o.watchdog().as_secs_f64(),
        calls,
        calls_per_s: per_s(calls, duration_s),
        ops,
        episodes: EpisodeFigures {
            attempted: m.counts.attempted.load(Ordering::Relaxed),
            acknowledged,
            abandoned: m.counts.abandoned.load(Ordering::Relaxed),
            setup_acknowledged: m.acked.setup(),
        },
        rates,
        verification: Verification {
            facade: m.facade,
            durable,
            lost,
        },
        engine: EngineFigures::from(&m.metrics),
        timeline,
        peak_rss_bytes: peak_rss_bytes(),
        verdict: verdict::verdict(&checks),
        checks,
        files: Vec::new(),
    };
    drop(temp);
    Ok(Outcome {
        report,
        records: m.records,
    })
}
