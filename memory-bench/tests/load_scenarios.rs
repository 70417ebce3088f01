//! Every load-test scenario runs end to end at a tiny size on the embedded default: the report
//! counts what was done, nothing acknowledged is lost, and the outage scenario shows the
//! breaker opening, writes journaled and the journal drained.

use memory_bench::load::options::{
    BurstParams, CompletionsParams, MixedParams, OutageParams, QueriesParams,
};
use memory_bench::load::{LoadOptions, Scenario, run_load};

fn tiny(scenario: Scenario, out: &std::path::Path) -> LoadOptions {
    let mut o = LoadOptions::new(scenario);
    o.common.out = Some(out.to_path_buf());
    o.common.steps = 2;
    o.common.watchdog_s = Some(120.0);
    o
}

fn mixed(duration_s: f64) -> MixedParams {
    MixedParams {
        duration_s,
        rate: 20.0,
        query_rate: 10.0,
        get_rate: 10.0,
        preload: 20,
        limit: 5,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_queries_sustained_and_burst_lose_nothing() {
    let out = tempfile::tempdir().unwrap();
    let runs = [
        Scenario::Completions(CompletionsParams {
            concurrency: 4,
            rounds: 2,
        }),
        Scenario::Queries(QueriesParams {
            concurrency: 8,
            rounds: 2,
            preload: 30,
            limit: 5,
        }),
        Scenario::Sustained(mixed(1.0)),
        Scenario::Burst(BurstParams {
            burst: 6,
            bursts: 2,
            idle_s: 0.2,
        }),
    ];
    for scenario in runs {
        let name = scenario.name().to_owned();
        let outcome = run_load(&tiny(scenario, out.path())).await.unwrap();
        let r = &outcome.report;
        assert!(r.finished, "{name}: finished within the watchdog");
        assert_eq!(r.verification.lost, Some(0), "{name}: nothing lost");
        assert!(r.calls > 0, "{name}: did something");
        assert_eq!(
            r.episodes.abandoned, 0,
            "{name}: no episode given up on a healthy store"
        );
        if name == "completions" {
            assert_eq!(r.episodes.acknowledged, 8, "4 concurrent x 2 rounds");
        }
        if name == "queries" {
            let retrieves = r.ops.iter().find(|o| o.op == "retrieve").unwrap();
            assert_eq!(retrieves.calls, 16, "8 concurrent x 2 rounds");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_opens_the_breaker_journals_and_drains() {
    let out = tempfile::tempdir().unwrap();
    let scenario = Scenario::Outage(OutageParams {
        mixed: mixed(3.0),
        outage_at_s: 0.5,
        outage_for_s: 1.0,
        breaker_threshold: 1,
        cool_down_ms: 200,
        replay_interval_ms: 100,
        retry_attempts: 40,
        retry_backoff_ms: 50,
        drain_timeout_s: 30.0,
    });
    let mut outcome = run_load(&tiny(scenario, out.path())).await.unwrap();
    memory_bench::load::output::write(&mut outcome, out.path()).unwrap();
    let r = &outcome.report;
    assert!(r.finished);
    assert_eq!(r.verification.lost, Some(0), "nothing acknowledged is lost");
    assert!(
        r.engine.breaker_transitions >= 2,
        "opened and closed again: {}",
        r.engine.breaker_transitions
    );
    assert!(r.timeline.journal_depth_peak > 0, "writes were journaled");
    let last = r.timeline.points.last().expect("sampled");
    assert_eq!(last.journal_depth, 0, "the journal drained");
    let outage = r.timeline.outage.as_ref().expect("the outage is reported");
    let emptied = r
        .timeline
        .journal_emptied_at_s
        .expect("replay emptied the journal");
    assert!(emptied > outage.to_s, "after the store came back");
    for file in [
        "report.md",
        "report.json",
        "samples.csv",
        "start_episode-over-time.svg",
    ] {
        assert!(out.path().join(file).exists(), "{file} written");
    }
    let svg = std::fs::read_to_string(out.path().join("start_episode-histogram.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "an SVG document"
    );
    assert!(svg.trim_end().ends_with("</svg>"));
}
