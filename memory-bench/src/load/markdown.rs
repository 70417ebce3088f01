//! The Markdown form of a [`Report`] (`report.md`, also printed to stdout): what a person
//! reads first. Everything in it is also in `report.json`.

use std::fmt::Write as _;

use serde_json::Value;

use crate::load::report::Report;
use crate::load::verdict::Status;

fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn f2(v: f64) -> String {
    format!("{v:.2}")
}

fn rate(v: f64) -> String {
    if v >= 100.0 {
        n(v.round() as u64)
    } else {
        format!("{v:.1}")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn kinds(m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        "none".into()
    } else {
        m.iter()
            .map(|(k, v)| format!("{k} {}", n(*v)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn badge(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::Green) => "green",
        Some(Status::Yellow) => "**yellow**",
        Some(Status::Red) => "**RED**",
        None => "n/a",
    }
}

fn param(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Render `r` as Markdown.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Load test: `{}`\n", r.scenario);
    let _ = writeln!(
        s,
        "**Verdict: {}**{}\n",
        r.verdict.as_str().to_uppercase(),
        if r.finished {
            ""
        } else {
            " (deadlock or stall: the watchdog fired)"
        }
    );
    let _ = writeln!(s, "- Command: `{}`", r.command);
    let _ = writeln!(s, "- Date: {}", r.date);
    let cpu = r.machine.cpu.as_deref().unwrap_or("unknown CPU");
    let _ = writeln!(
        s,
        "- Machine: {} cores ({cpu}), {}",
        r.machine.cores, r.machine.os
    );
    let e = &r.engine_settings;
    let _ = writeln!(
        s,
        "- Engine: embedded default (libsql file + redb cache + redb journal) in {} ({}); {} completions at once (wait ≤ {} ms); breaker opens after {} transient failures, cool-down {} ms; replay every {} ms",
        e.data_dir,
        if e.fresh { "fresh" } else { "reused" },
        e.max_concurrent_completions,
        e.completion_wait_timeout_ms,
        e.breaker_failure_threshold,
        e.breaker_cool_down_ms,
        e.replay_interval_ms
    );
    let params: Vec<String> = match &r.parameters {
        Value::Object(m) => m.iter().map(|(k, v)| format!("{k} {}", param(v))).collect(),
        _ => Vec::new(),
    };
    let _ = writeln!(
        s,
        "- Parameters: {}; steps per episode {}; seed {}",
        params.join(", "),
        r.steps,
        r.seed
    );
    let _ = writeln!(
        s,
        "- Setup (pre-load) {:.2} s; measured phase {:.2} s; {} calls, {} calls/s; watchdog {:.0} s",
        r.setup_s,
        r.duration_s,
        n(r.calls),
        rate(r.calls_per_s),
        r.watchdog_s
    );
    let _ = writeln!(
        s,
        "- Peak RSS: {}\n",
        r.peak_rss_bytes.map_or("unavailable".into(), mib)
    );

    let _ = writeln!(s, "## Verdict\n");
    let _ = writeln!(s, "| check | measured | threshold | grade | note |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for c in &r.checks {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            c.name,
            c.measured,
            c.threshold,
            badge(c.status),
            c.note
        );
    }
    let _ = writeln!(
        s,
        "\nGreen: below the threshold; yellow: missed by less than 2×; red: missed by 2× or more, a stall, or a lost write.\n"
    );

    let _ = writeln!(s, "## Operations (client side)\n");
    let _ = writeln!(
        s,
        "Latency of every call (failed ones included), from its scheduled or issue time to its return; quantiles from an HDR histogram (≤ 0.8 % high).\n"
    );
    let _ = writeln!(
        s,
        "| operation | calls | ok | ok/s | p50 ms | p95 ms | p99 ms | max ms | errors |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for o in r.ops.iter().filter(|o| o.calls > 0) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            o.op,
            n(o.calls),
            n(o.ok),
            rate(o.ok_per_s),
            f2(o.p50_ms),
            f2(o.p95_ms),
            f2(o.p99_ms),
            f2(o.max_ms),
            kinds(&o.errors)
        );
    }
    let ep = &r.episodes;
    let _ = writeln!(
        s,
        "\nEpisodes: {} begun, {} completions acknowledged, {} abandoned after an error (plus {} acknowledged during setup).",
        n(ep.attempted),
        n(ep.acknowledged),
        n(ep.abandoned),
        n(ep.setup_acknowledged)
    );
    if let Some(rt) = &r.rates {
        let _ = writeln!(s, "\n## Rates (open loop)\n");
        let _ = writeln!(s, "| | target /s | achieved /s |");
        let _ = writeln!(s, "|---|---|---|");
        let _ = writeln!(
            s,
            "| episodes started | {} | {} |",
            rate(rt.target_episodes_per_s),
            rate(rt.issued_episodes_per_s)
        );
        let _ = writeln!(
            s,
            "| completions acknowledged | {} | {} |",
            rate(rt.target_episodes_per_s),
            rate(rt.acknowledged_episodes_per_s)
        );
        let _ = writeln!(
            s,
            "| retrieve ok | {} | {} |",
            rate(rt.target_queries_per_s),
            rate(rt.ok_queries_per_s)
        );
        let _ = writeln!(
            s,
            "| get_episode ok | {} | {} |",
            rate(rt.target_gets_per_s),
            rate(rt.ok_gets_per_s)
        );
        let _ = writeln!(
            s,
            "\nArrivals over {:.2} s: {} episodes, {} queries, {} gets; at most {} calls in flight; the generator's largest tick lag {:.2} ms.",
            rt.arrivals.window_s,
            n(rt.arrivals.episodes),
            n(rt.arrivals.queries),
            n(rt.arrivals.gets),
            n(rt.arrivals.peak_in_flight as u64),
            rt.arrivals.max_tick_lag_ms
        );
    }

    let v = &r.verification;
    let _ = writeln!(s, "\n## Acknowledged completions read back\n");
    let rb = |x: Option<crate::load::engine::ReadBack>| match x {
        Some(x) => format!(
            "{} checked, {} missing, {} different, {} read errors",
            n(x.checked),
            n(x.missing),
            n(x.different),
            n(x.errors)
        ),
        None => "not run".into(),
    };
    let _ = writeln!(
        s,
        "- Through the engine (`get_episode`, before shutdown): {}",
        rb(v.facade)
    );
    let _ = writeln!(
        s,
        "- From the libsql file (after shutdown): {}",
        rb(v.durable)
    );
    let _ = writeln!(
        s,
        "- **Lost: {}**",
        v.lost.map_or("unknown (not verified)".into(), n)
    );

    let g = &r.engine;
    let _ = writeln!(
        s,
        "\n## Engine (`metrics()` at the end, whole run incl. setup)\n"
    );
    let _ = writeln!(
        s,
        "| histogram | count | p50 ms | p95 ms | p99 ms | max ms |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for (name, l) in [
        ("completion", &g.completion),
        ("step append", &g.step_append),
        ("retrieval", &g.retrieval),
        ("index write", &g.index_write),
    ] {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} |",
            n(l.count),
            f2(l.p50_ms),
            f2(l.p95_ms),
            f2(l.p99_ms),
            f2(l.max_ms)
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "- Index: {} episodes, ~{}; lock waits {} ({:.2} ms in total)",
        n(g.indexed_episodes),
        mib(g.index_memory_bytes),
        n(g.index_lock_waits),
        g.index_lock_wait_ms
    );
    let _ = writeln!(
        s,
        "- Cache: hit ratio {} ({} hits, {} misses), {} entries, {}, {} evictions, {} damaged",
        g.cache
            .hit_ratio
            .map_or("n/a".into(), |h| format!("{:.1} %", h * 100.0)),
        n(g.cache.hits),
        n(g.cache.misses),
        n(g.cache.entries),
        mib(g.cache.bytes),
        n(g.cache.evictions),
        n(g.cache.corrupt)
    );
    let _ = writeln!(s, "- Retrieval paths: {}", kinds(&g.retrieval_paths));
    let _ = writeln!(
        s,
        "- Storage errors: durable {}; cache {}; journal {}",
        kinds(
            g.storage_errors
                .get("durable")
                .unwrap_or(&Default::default())
        ),
        kinds(g.storage_errors.get("cache").unwrap_or(&Default::default())),
        kinds(
            g.storage_errors
                .get("journal")
                .unwrap_or(&Default::default())
        )
    );
    let _ = writeln!(
        s,
        "- Completions refused as overloaded: {}; most waiting for a permit at once: {}",
        n(g.completions_rejected),
        n(r.timeline.completions_waiting_peak)
    );
    if let Some(w) = &g.writes {
        let _ = writeln!(
            s,
            "- Group commit: {} transactions, {} operations (mean {:.1}, largest {}), {} failed operations, {} failed transactions; sizes: {}",
            n(w.batches),
            n(w.operations),
            w.mean_batch,
            n(w.largest_batch),
            n(w.failed_operations),
            n(w.failed_batches),
            kinds(&w.batch_sizes)
        );
    }
    let _ = writeln!(
        s,
        "- Breaker: {} at the end, {} transitions; journal depth peak {}, {} at the end; reconciliation passes {}, repairs recorded {}",
        g.breaker_state.as_deref().unwrap_or("none"),
        n(g.breaker_transitions),
        n(r.timeline.journal_depth_peak),
        n(g.journal_depth),
        n(g.reconcile_passes),
        n(g.repairs_recorded)
    );
    let t = &r.timeline;
    if t.outage.is_some() || !t.changes.is_empty() {
        let _ = writeln!(s, "\n## Breaker and journal over time\n");
        if let Some(o) = &t.outage {
            let _ = writeln!(
                s,
                "Outage injected from {:.2} s to {:.2} s ({} faults injected).",
                o.from_s,
                o.to_s,
                n(t.faults_injected.unwrap_or(0))
            );
        }
        let emptied = match (t.journal_emptied_at_s, &t.outage) {
            (Some(e), Some(o)) => format!(
                "emptied by replay at {e:.2} s ({:.2} s after the outage ended)",
                e - o.to_s
            ),
            (Some(e), None) => format!("emptied by replay at {e:.2} s"),
            (None, _) if t.journal_depth_peak == 0 => "never used".into(),
            (None, _) => "**still holding writes at the last sample**".into(),
        };
        let _ = writeln!(
            s,
            "Journal {emptied}; checked empty after the load: {}.\n",
            t.drained_at_s
                .map_or("**not within the drain timeout**".into(), |d| format!(
                    "at {d:.2} s"
                ))
        );
        let _ = writeln!(s, "| at s | breaker | journal depth |");
        let _ = writeln!(s, "|---|---|---|");
        for c in &t.changes {
            let _ = writeln!(
                s,
                "| {:.2} | {} → {} | {} |",
                c.at_s,
                c.from,
                c.to,
                n(c.journal_depth)
            );
        }
        let _ = writeln!(
            s,
            "| {:.2} | peak journal depth | {} |",
            t.points
                .iter()
                .find(|p| p.journal_depth == t.journal_depth_peak)
                .map_or(0.0, |p| p.at_s),
            n(t.journal_depth_peak)
        );
    }
    if !r.files.is_empty() {
        let _ = writeln!(s, "\n## Plots\n");
        for f in r.files.iter().filter(|f| f.ends_with(".svg")) {
            let _ = writeln!(s, "![{}]({f})", f.trim_end_matches(".svg"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(n(0), "0");
        assert_eq!(n(999), "999");
        assert_eq!(n(1_000), "1,000");
        assert_eq!(n(1_234_567), "1,234,567");
    }
}
