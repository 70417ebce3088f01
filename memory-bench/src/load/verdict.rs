//! The verdict of a load run: each measured figure against its threshold, graded green,
//! yellow or red, and the run graded by its worst check. Pure: no clock, no I/O.
//!
//! Grading of a figure `m` against a threshold `t` ("must stay below t"):
//! **green** when `m < t`; **yellow** when `t ≤ m < 2t` (missed, but within 2× of the
//! threshold); **red** when `m ≥ 2t`. A zero threshold is met only by zero. Two checks are
//! pass/fail (green or red): the run finished before the watchdog (else "deadlock or stall"),
//! and no acknowledged completion was lost (an unverified run counts as red).

use serde::Serialize;

/// The thresholds (defaults from the production review).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Thresholds {
    /// `retrieve` p99 must stay below this, milliseconds. Default 100.
    pub query_p99_ms: f64,
    /// The engine's index write p99 must stay below this, milliseconds. Default 50.
    pub index_write_p99_ms: f64,
    /// Calls failing with a storage error (`unavailable`, `storage`, `corrupt`) must stay
    /// below this share of calls, percent. Default 0.01.
    pub storage_error_rate_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            query_p99_ms: 100.0,
            index_write_p99_ms: 50.0,
            storage_error_rate_pct: 0.01,
        }
    }
}

/// A grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Threshold met.
    Green,
    /// Threshold missed by less than 2×.
    Yellow,
    /// Threshold missed by 2× or more, or a pass/fail check failed.
    Red,
}

impl Status {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Green => "green",
            Status::Yellow => "yellow",
            Status::Red => "red",
        }
    }
}

/// Grade `measured` against `threshold` (see the module docs).
pub fn grade(measured: f64, threshold: f64) -> Status {
    if threshold <= 0.0 {
        return if measured <= 0.0 {
            Status::Green
        } else {
            Status::Red
        };
    }
    if measured < threshold {
        Status::Green
    } else if measured < 2.0 * threshold {
        Status::Yellow
    } else {
        Status::Red
    }
}

/// One check of the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// The measured figure, as text with its unit.
    pub measured: String,
    /// The threshold, as text with its unit.
    pub threshold: String,
    /// The grade; `None` when the run gave nothing to measure (e.g. no queries).
    pub status: Option<Status>,
    /// Why, when not green.
    pub note: String,
}

/// The figures the verdict needs, gathered from a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// Client-side `retrieve` p99, milliseconds; `None` without queries.
    pub query_p99_ms: Option<f64>,
    /// The engine's index write p99, milliseconds; `None` without index writes.
    pub index_write_p99_ms: Option<f64>,
    /// Calls that failed with a storage error, in the error-rate scope.
    pub storage_errors: u64,
    /// Calls in the error-rate scope.
    pub scoped_calls: u64,
    /// Which calls the error rate covers ("all calls", "writes").
    pub error_scope: String,
    /// Whether the run finished before the watchdog fired.
    pub finished: bool,
    /// Acknowledged completions not read back intact; `None` when not verified.
    pub lost: Option<u64>,
}

/// The checks of a run, in report order.
pub fn checks(inputs: &Inputs, t: &Thresholds) -> Vec<Check> {
    let mut out = Vec::new();
    let ms_check = |name: &str, m: Option<f64>, threshold: f64, what: &str| match m {
        Some(m) => {
            let status = grade(m, threshold);
            Check {
                name: name.to_owned(),
                measured: format!("{m:.2} ms"),
                threshold: format!("< {threshold} ms"),
                status: Some(status),
                note: match status {
                    Status::Green => String::new(),
                    _ => format!("{what} p99 {:.1}× the threshold", m / threshold),
                },
            }
        }
        None => Check {
            name: name.to_owned(),
            measured: "n/a".into(),
            threshold: format!("< {threshold} ms"),
            status: None,
            note: format!("no {what} in this scenario"),
        },
    };
    out.push(ms_check(
        "query p99",
        inputs.query_p99_ms,
        t.query_p99_ms,
        "retrieve",
    ));
    out.push(ms_check(
        "index write p99",
        inputs.index_write_p99_ms,
        t.index_write_p99_ms,
        "index write",
    ));
    let rate = if inputs.scoped_calls == 0 {
        0.0
    } else {
        inputs.storage_errors as f64 * 100.0 / inputs.scoped_calls as f64
    };
    let status = grade(rate, t.storage_error_rate_pct);
    out.push(Check {
        name: format!("storage error rate ({})", inputs.error_scope),
        measured: format!(
            "{rate:.4} % ({} of {})",
            inputs.storage_errors, inputs.scoped_calls
        ),
        threshold: format!("< {} %", t.storage_error_rate_pct),
        status: Some(status),
        note: if status == Status::Green {
            String::new()
        } else {
            format!(
                "{} calls failed with unavailable/storage/corrupt",
                inputs.storage_errors
            )
        },
    });
    out.push(Check {
        name: "deadlocks".into(),
        measured: if inputs.finished {
            "0".into()
        } else {
            "watchdog fired".into()
        },
        threshold: "0".into(),
        status: Some(if inputs.finished {
            Status::Green
        } else {
            Status::Red
        }),
        note: if inputs.finished {
            String::new()
        } else {
            "deadlock or stall: the run did not finish within the watchdog timeout".into()
        },
    });
    let (measured, status, note) = match inputs.lost {
        Some(0) => ("0".to_owned(), Status::Green, String::new()),
        Some(n) => (
            n.to_string(),
            Status::Red,
            format!("{n} acknowledged completions missing or different when read back"),
        ),
        None => (
            "not verified".to_owned(),
            Status::Red,
            "the run ended before the read-back".to_owned(),
        ),
    };
    out.push(Check {
        name: "acknowledged completions lost".into(),
        measured,
        threshold: "0".into(),
        status: Some(status),
        note,
    });
    out
}

/// The run's grade: its worst check (checks without a measurement do not count).
pub fn verdict(checks: &[Check]) -> Status {
    checks
        .iter()
        .filter_map(|c| c.status)
        .max()
        .unwrap_or(Status::Green)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Inputs {
        Inputs {
            query_p99_ms: Some(20.0),
            index_write_p99_ms: Some(1.0),
            storage_errors: 0,
            scoped_calls: 10_000,
            error_scope: "all calls".into(),
            finished: true,
            lost: Some(0),
        }
    }

    #[test]
    fn grades_follow_the_documented_bands() {
        assert_eq!(grade(99.9, 100.0), Status::Green);
        assert_eq!(grade(100.0, 100.0), Status::Yellow);
        assert_eq!(grade(199.9, 100.0), Status::Yellow);
        assert_eq!(grade(200.0, 100.0), Status::Red);
        assert_eq!(grade(0.0, 0.0), Status::Green);
        assert_eq!(grade(0.1, 0.0), Status::Red);
    }

    #[test]
    fn a_healthy_run_is_green() {
        let c = checks(&healthy(), &Thresholds::default());
        assert_eq!(c.len(), 5);
        assert_eq!(verdict(&c), Status::Green);
        assert!(c.iter().all(|c| c.note.is_empty()));
    }

    #[test]
    fn the_worst_check_decides() {
        let t = Thresholds::default();
        let slow = Inputs {
            query_p99_ms: Some(150.0),
            ..healthy()
        };
        assert_eq!(verdict(&checks(&slow, &t)), Status::Yellow);
        let slower = Inputs {
            index_write_p99_ms: Some(100.0),
            ..slow.clone()
        };
        assert_eq!(verdict(&checks(&slower, &t)), Status::Red);
        // 1 error in 10,000 calls is 0.01 %: at the threshold, so yellow; 2 is red.
        let one = Inputs {
            storage_errors: 1,
            ..healthy()
        };
        assert_eq!(verdict(&checks(&one, &t)), Status::Yellow);
        let two = Inputs {
            storage_errors: 2,
            ..healthy()
        };
        assert_eq!(verdict(&checks(&two, &t)), Status::Red);
    }

    #[test]
    fn a_stall_or_a_loss_is_red_whatever_the_latencies() {
        let t = Thresholds::default();
        let stalled = Inputs {
            finished: false,
            lost: None,
            ..healthy()
        };
        let c = checks(&stalled, &t);
        assert_eq!(verdict(&c), Status::Red);
        assert!(c.iter().any(|c| c.note.contains("deadlock or stall")));
        let lost = Inputs {
            lost: Some(1),
            ..healthy()
        };
        assert_eq!(verdict(&checks(&lost, &t)), Status::Red);
    }

    #[test]
    fn missing_measurements_do_not_count() {
        let t = Thresholds::default();
        let writes_only = Inputs {
            query_p99_ms: None,
            ..healthy()
        };
        let c = checks(&writes_only, &t);
        assert_eq!(c[0].status, None);
        assert_eq!(verdict(&c), Status::Green);
    }

    #[test]
    fn thresholds_can_be_tightened() {
        let strict = Thresholds {
            query_p99_ms: 10.0,
            ..Thresholds::default()
        };
        assert_eq!(verdict(&checks(&healthy(), &strict)), Status::Red);
    }
}
