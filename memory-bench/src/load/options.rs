//! The options of `memory-bench load`: one parameter struct per scenario plus the options
//! every scenario shares, each with documented defaults (from the production review).
//!
//! Flags are the field names in kebab case (`--query-rate 20` sets `query_rate`): parsing goes
//! through the structs' serde form, so a flag, its report key and its default can never
//! disagree. Units are part of the names (`_s` seconds, `_ms` milliseconds).

use std::path::PathBuf;
use std::time::Duration;

use memory_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::load::verdict::Thresholds;

/// `completions`: `concurrency` tasks each record one episode (start, `steps` × `log_step`,
/// then all complete at once behind a barrier), repeated for `rounds` rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionsParams {
    /// Concurrent episodes per round. Default 100.
    pub concurrency: usize,
    /// Rounds. Default 10.
    pub rounds: usize,
}

impl Default for CompletionsParams {
    fn default() -> Self {
        Self {
            concurrency: 100,
            rounds: 10,
        }
    }
}

/// `queries`: `concurrency` `retrieve` calls issued at once over a store pre-loaded with
/// `preload` synthetic episodes plus the bundled sample, for `rounds` rounds; every query text
/// is distinct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueriesParams {
    /// Concurrent queries per round. Default 1,000.
    pub concurrency: usize,
    /// Rounds. Default 3.
    pub rounds: usize,
    /// Synthetic episodes stored before the queries. Default 5,000.
    pub preload: usize,
    /// Hits per query. Default 5.
    pub limit: usize,
}

impl Default for QueriesParams {
    fn default() -> Self {
        Self {
            concurrency: 1_000,
            rounds: 3,
            preload: 5_000,
            limit: 5,
        }
    }
}

/// `sustained` (and the load of `outage`): open-loop arrivals for `duration_s` seconds:
/// episodes at `rate` per second, `retrieve` at `query_rate`, `get_episode` of a random
/// acknowledged episode at `get_rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixedParams {
    /// How long arrivals are issued, seconds. Default 60.
    pub duration_s: f64,
    /// Episodes started per second. Default 50.
    pub rate: f64,
    /// `retrieve` calls per second. Default 20.
    pub query_rate: f64,
    /// `get_episode` calls per second. Default 20.
    pub get_rate: f64,
    /// Synthetic episodes stored before the run (plus the bundled sample). Default 1,000.
    pub preload: usize,
    /// Hits per query. Default 5.
    pub limit: usize,
}

impl Default for MixedParams {
    fn default() -> Self {
        Self {
            duration_s: 60.0,
            rate: 50.0,
            query_rate: 20.0,
            get_rate: 20.0,
            preload: 1_000,
            limit: 5,
        }
    }
}

/// `burst`: `idle_s` seconds idle, then `burst` episodes at once, `bursts` times, then idle
/// once more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurstParams {
    /// Concurrent episodes per burst. Default 500.
    pub burst: usize,
    /// Bursts. Default 3.
    pub bursts: usize,
    /// Idle time before, between and after bursts, seconds. Default 5.
    pub idle_s: f64,
}

impl Default for BurstParams {
    fn default() -> Self {
        Self {
            burst: 500,
            bursts: 3,
            idle_s: 5.0,
        }
    }
}

/// `outage`: the `sustained` load (default 30 s) with the durable store failing every call
/// (transient errors) from `outage_at_s` for `outage_for_s` seconds. Transient errors are
/// retried by the client up to `retry_attempts` times, `retry_backoff_ms` apart. The breaker
/// and replay settings default to the engine's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageParams {
    /// The load.
    #[serde(flatten)]
    pub mixed: MixedParams,
    /// When the outage begins, seconds after the start. Default 10.
    pub outage_at_s: f64,
    /// How long it lasts, seconds. Default 5.
    pub outage_for_s: f64,
    /// Consecutive transient failures that open the breaker. Default 5 (the engine's).
    pub breaker_threshold: u32,
    /// Breaker cool-down, milliseconds. Default 5,000 (the engine's).
    pub cool_down_ms: u64,
    /// How often the engine's job replays the journal, milliseconds. Default 1,000.
    pub replay_interval_ms: u64,
    /// Attempts per call on transient errors (1 = no retry). Default 40.
    pub retry_attempts: u32,
    /// Pause between attempts, milliseconds. Default 250.
    pub retry_backoff_ms: u64,
    /// How long to wait for the journal to drain after the load, seconds. Default 60.
    pub drain_timeout_s: f64,
}

impl Default for OutageParams {
    fn default() -> Self {
        let engine = memory_core::MemoryConfig::default();
        Self {
            mixed: MixedParams {
                duration_s: 30.0,
                ..MixedParams::default()
            },
            outage_at_s: 10.0,
            outage_for_s: 5.0,
            breaker_threshold: engine.resilience.breaker.failure_threshold,
            cool_down_ms: engine.resilience.breaker.cool_down.as_millis() as u64,
            replay_interval_ms: engine.replay_interval.as_millis() as u64,
            retry_attempts: 40,
            retry_backoff_ms: 250,
            drain_timeout_s: 60.0,
        }
    }
}

/// A scenario with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// 100 concurrent completions, repeated.
    Completions(CompletionsParams),
    /// 1,000 concurrent queries over a pre-loaded store.
    Queries(QueriesParams),
    /// A sustained open-loop rate of episodes plus queries.
    Sustained(MixedParams),
    /// Idle, then a burst of concurrent episodes, a few times.
    Burst(BurstParams),
    /// Mixed load with a durable-store outage injected mid-run.
    Outage(OutageParams),
}

impl Scenario {
    /// Every scenario name.
    pub const NAMES: [&'static str; 5] = ["completions", "queries", "sustained", "burst", "outage"];

    /// The scenario `name` with its defaults.
    pub fn named(name: &str) -> Result<Self> {
        Ok(match name {
            "completions" => Scenario::Completions(CompletionsParams::default()),
            "queries" => Scenario::Queries(QueriesParams::default()),
            "sustained" => Scenario::Sustained(MixedParams::default()),
            "burst" => Scenario::Burst(BurstParams::default()),
            "outage" => Scenario::Outage(OutageParams::default()),
            other => {
                return Err(Error::invalid(
                    "scenario",
                    Self::NAMES.join(", "),
                    other.to_owned(),
                ));
            }
        })
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Completions(_) => "completions",
            Scenario::Queries(_) => "queries",
            Scenario::Sustained(_) => "sustained",
            Scenario::Burst(_) => "burst",
            Scenario::Outage(_) => "outage",
        }
    }

    /// Its parameters as a JSON object.
    pub fn params(&self) -> Value {
        let v = match self {
            Scenario::Completions(p) => serde_json::to_value(p),
            Scenario::Queries(p) => serde_json::to_value(p),
            Scenario::Sustained(p) => serde_json::to_value(p),
            Scenario::Burst(p) => serde_json::to_value(p),
            Scenario::Outage(p) => serde_json::to_value(p),
        };
        v.unwrap_or(Value::Null)
    }

    /// The same scenario with `params` (a JSON object of its fields).
    fn with_params(&self, params: Value) -> Result<Self> {
        fn de<T: DeserializeOwned>(v: Value) -> Result<T> {
            serde_json::from_value(v)
                .map_err(|e| Error::invalid("flags", "values of the right type", e.to_string()))
        }
        Ok(match self {
            Scenario::Completions(_) => Scenario::Completions(de(params)?),
            Scenario::Queries(_) => Scenario::Queries(de(params)?),
            Scenario::Sustained(_) => Scenario::Sustained(de(params)?),
            Scenario::Burst(_) => Scenario::Burst(de(params)?),
            Scenario::Outage(_) => Scenario::Outage(de(params)?),
        })
    }

    /// How long the run may take before the watchdog calls it a deadlock or stall: the
    /// planned duration plus five minutes.
    pub fn default_watchdog(&self) -> Duration {
        let planned = match self {
            Scenario::Sustained(p) => p.duration_s,
            Scenario::Burst(p) => p.idle_s * (p.bursts as f64 + 1.0),
            Scenario::Outage(p) => p.mixed.duration_s + p.drain_timeout_s,
            Scenario::Completions(_) | Scenario::Queries(_) => 0.0,
        };
        Duration::from_secs_f64(planned.max(0.0) + 300.0)
    }
}

/// Options every scenario takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Common {
    /// Data directory of the engine; default a fresh temporary directory (deleted after).
    pub dir: Option<PathBuf>,
    /// Where the report goes; default `load-report/<scenario>`.
    pub out: Option<PathBuf>,
    /// Draw the progress line even when stderr is not a terminal.
    pub progress: bool,
    /// Seed of the synthetic episodes and queries. Default 42.
    pub seed: u64,
    /// `log_step` calls per episode. Default 3.
    pub steps: usize,
    /// Raw samples kept per operation for the plots (reservoir). Default 2,000.
    pub max_samples: usize,
    /// Watchdog timeout, seconds; default the planned duration plus 300.
    pub watchdog_s: Option<f64>,
    /// How often the engine state (breaker, journal, permits) is sampled, ms. Default 100.
    pub sample_ms: u64,
    /// The verdict's thresholds.
    #[serde(flatten)]
    pub thresholds: Thresholds,
}

impl Default for Common {
    fn default() -> Self {
        Self {
            dir: None,
            out: None,
            progress: false,
            seed: 42,
            steps: 3,
            max_samples: 2_000,
            watchdog_s: None,
            sample_ms: 100,
            thresholds: Thresholds::default(),
        }
    }
}

/// Everything a load run is given.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// The scenario and its parameters.
    pub scenario: Scenario,
    /// The shared options.
    pub common: Common,
}

impl LoadOptions {
    /// `scenario` with the default shared options.
    pub fn new(scenario: Scenario) -> Self {
        Self {
            scenario,
            common: Common::default(),
        }
    }

    /// The watchdog timeout in force.
    pub fn watchdog(&self) -> Duration {
        self.common
            .watchdog_s
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or_else(|| self.scenario.default_watchdog(), Duration::from_secs_f64)
    }

    /// The report directory in force.
    pub fn out_dir(&self) -> PathBuf {
        self.common
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("load-report").join(self.scenario.name()))
    }

    /// The command line that reproduces this run (flags that differ from the defaults).
    pub fn command(&self) -> String {
        let mut cmd = format!("memory-bench load {}", self.scenario.name());
        let defaults = Scenario::named(self.scenario.name())
            .map(|s| s.params())
            .unwrap_or(Value::Null);
        let common_defaults = serde_json::to_value(Common::default()).unwrap_or(Value::Null);
        let common = serde_json::to_value(&self.common).unwrap_or(Value::Null);
        for (now, before) in [
            (self.scenario.params(), defaults),
            (common, common_defaults),
        ] {
            let (Value::Object(now), Value::Object(before)) = (now, before) else {
                continue;
            };
            for (k, v) in now {
                if before.get(&k) == Some(&v) {
                    continue;
                }
                let flag = k.replace('_', "-");
                match v {
                    Value::Bool(true) => cmd.push_str(&format!(" --{flag}")),
                    Value::Bool(false) | Value::Null => {}
                    Value::String(s) => cmd.push_str(&format!(" --{flag} {s}")),
                    other => cmd.push_str(&format!(" --{flag} {other}")),
                }
            }
        }
        cmd
    }
}

/// Fields given as text (paths); every other field with no default is a number.
const TEXT_FIELDS: [&str; 2] = ["dir", "out"];

/// Set `key` of `obj` from the text `raw`, typed like its current value.
fn set_field(obj: &mut Map<String, Value>, key: &str, flag: &str, raw: &str) -> Result<()> {
    let bad = |what: &str| Error::invalid(flag.to_owned(), what.to_owned(), raw.to_owned());
    let value = match obj.get(key) {
        Some(Value::Number(n)) if n.is_u64() => Value::from(
            raw.parse::<u64>()
                .map_err(|_| bad("a non-negative integer"))?,
        ),
        Some(Value::String(_)) | Some(Value::Null) if TEXT_FIELDS.contains(&key) => {
            Value::from(raw)
        }
        Some(Value::Number(_)) | Some(Value::Null) => {
            let v: f64 = raw.parse().map_err(|_| bad("a number"))?;
            if !v.is_finite() || v < 0.0 {
                return Err(bad("a finite non-negative number"));
            }
            Value::from(v)
        }
        _ => return Err(bad("a known flag")),
    };
    obj.insert(key.to_owned(), value);
    Ok(())
}

/// Parse `<scenario> [--flag value]…`.
pub fn parse(args: &[String]) -> Result<LoadOptions> {
    let name = args
        .first()
        .ok_or_else(|| Error::invalid("scenario", Scenario::NAMES.join(", "), "nothing"))?;
    let scenario = Scenario::named(name)?;
    let Value::Object(mut params) = scenario.params() else {
        return Err(Error::invalid("scenario", "parameters", name.clone()));
    };
    let Value::Object(mut common) = serde_json::to_value(Common::default()).unwrap_or(Value::Null)
    else {
        return Err(Error::invalid("options", "an object", "none"));
    };
    let mut i = 1;
    while i < args.len() {
        let flag = args[i].as_str();
        let key = flag
            .strip_prefix("--")
            .ok_or_else(|| Error::invalid("argument", "a --flag", flag.to_owned()))?
            .replace('-', "_");
        if key == "progress" {
            common.insert(key, Value::Bool(true));
            i += 1;
            continue;
        }
        let raw = args
            .get(i + 1)
            .ok_or_else(|| Error::invalid(flag.to_owned(), "a value after the flag", "nothing"))?;
        if params.contains_key(&key) {
            set_field(&mut params, &key, flag, raw)?;
        } else if common.contains_key(&key) {
            set_field(&mut common, &key, flag, raw)?;
        } else {
            return Err(Error::invalid(
                "flag",
                format!("one of the flags of `load {name}` (memory-bench load --help)"),
                flag.to_owned(),
            ));
        }
        i += 2;
    }
    let common: Common = serde_json::from_value(Value::Object(common))
        .map_err(|e| Error::invalid("flags", "values of the right type", e.to_string()))?;
    Ok(LoadOptions {
        scenario: scenario.with_params(Value::Object(params))?,
        common,
    })
}

/// The help text of `memory-bench load`.
pub fn usage() -> &'static str {
    "usage: memory-bench load <scenario> [--flag value]...

scenarios (defaults from the production review):
  completions  100 concurrent episodes (start, log_step x steps, complete; the completions
               start together), repeated:     --concurrency 100 --rounds 10
  queries      1,000 concurrent retrieve calls, distinct texts, over a pre-loaded store:
               --concurrency 1000 --rounds 3 --preload 5000 --limit 5
  sustained    open-loop arrivals: --duration-s 60 --rate 50 (episodes/s) --query-rate 20
               --get-rate 20 --preload 1000 --limit 5
  burst        idle, a burst of concurrent episodes, idle...: --burst 500 --bursts 3 --idle-s 5
  outage       the sustained load with a durable-store outage injected mid-run:
               --duration-s 30 --outage-at-s 10 --outage-for-s 5 --breaker-threshold 5
               --cool-down-ms 5000 --replay-interval-ms 1000 --retry-attempts 40
               --retry-backoff-ms 250 --drain-timeout-s 60 (and the sustained flags)

every scenario:
  --dir PATH        data directory (default: a fresh temporary directory)
  --out DIR         report directory (default: load-report/<scenario>)
  --progress        draw the progress line even when stderr is not a terminal
  --steps 3         log_step calls per episode
  --seed 42         seed of the synthetic episodes and queries
  --max-samples 2000  raw samples kept per operation for the plots
  --watchdog-s S    a run longer than this is a deadlock or stall (default: planned + 300)
  --sample-ms 100   how often breaker, journal and permits are sampled
  --query-p99-ms 100 --index-write-p99-ms 50 --storage-error-rate-pct 0.01   thresholds

Writes report.md, report.json, samples.csv and SVG plots into the report directory and
prints the Markdown. Engine settings come from MEMORY_* variables (docs/configuration.md),
except the data directory."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn defaults_come_from_the_review() {
        let o = parse(&args("completions")).unwrap();
        assert_eq!(
            o.scenario,
            Scenario::Completions(CompletionsParams::default())
        );
        assert_eq!(o.common, Common::default());
        let Scenario::Outage(p) = parse(&args("outage")).unwrap().scenario else {
            panic!("outage")
        };
        assert_eq!((p.mixed.rate, p.mixed.duration_s), (50.0, 30.0));
        assert_eq!(p.breaker_threshold, 5);
    }

    #[test]
    fn flags_are_the_kebab_case_field_names() {
        let o = parse(&args(
            "outage --duration-s 2.5 --outage-at-s 0.5 --rate 10 --steps 2 --dir /tmp/x \
             --progress --query-p99-ms 20 --watchdog-s 30",
        ))
        .unwrap();
        let Scenario::Outage(p) = &o.scenario else {
            panic!("outage")
        };
        assert_eq!(
            (p.mixed.duration_s, p.outage_at_s, p.mixed.rate),
            (2.5, 0.5, 10.0)
        );
        assert_eq!(o.common.steps, 2);
        assert_eq!(o.common.dir, Some(PathBuf::from("/tmp/x")));
        assert!(o.common.progress);
        assert_eq!(o.common.thresholds.query_p99_ms, 20.0);
        assert_eq!(o.watchdog(), Duration::from_secs(30));
        let cmd = o.command();
        assert!(cmd.starts_with("memory-bench load outage"), "{cmd}");
        assert!(
            cmd.contains("--outage-at-s 0.5") && cmd.contains("--steps 2"),
            "{cmd}"
        );
        assert!(!cmd.contains("--breaker-threshold"), "{cmd}");
    }

    #[test]
    fn bad_flags_are_refused_with_their_name() {
        for bad in [
            "nosuch",
            "completions --nosuch 1",
            "completions --rounds",
            "completions --rounds two",
            "completions --rounds 1.5",
            "sustained --rate -1",
            "queries --rate 5",
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert_eq!(e.kind(), memory_core::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn the_usage_text_names_every_flag() {
        let text = usage();
        for name in Scenario::NAMES {
            assert!(text.contains(name), "{name}");
            let Value::Object(p) = Scenario::named(name).unwrap().params() else {
                panic!("object")
            };
            for k in p.keys() {
                assert!(text.contains(&format!("--{}", k.replace('_', "-"))), "{k}");
            }
        }
        let Value::Object(c) = serde_json::to_value(Common::default()).unwrap() else {
            panic!("object")
        };
        for k in c.keys() {
            assert!(text.contains(&format!("--{}", k.replace('_', "-"))), "{k}");
        }
    }
}
