//! A real libsql server stopped in the middle of a run and started again: every write
//! acknowledged while it was down is journaled, the journal drains once it is back, the
//! breaker closes, and the server then holds exactly what was acknowledged.
//!
//! Needs `MEMORY_TEST_SQLD=/path/to/sqld` (the test stops and restarts its own server);
//! prints `skipped: … no server` otherwise.

mod support;

use std::time::Duration;

use memory_core::coordinator::{BreakerConfig, BreakerState};
use memory_core::store::DurableStore;
use memory_core::{
    AuthToken, Episode, MemoryConfig, NewStep, Outcome, ResilienceConfig, SelfLearningMemory,
    TaskContext,
};
use memory_storage_redb::{RedbCache, RedbJournal, RedbOptions};
use memory_storage_turso::{RetryPolicy, TursoOptions, TursoStore};
use support::sqld::Server;

fn options() -> TursoOptions {
    TursoOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        },
        ..TursoOptions::default()
    }
}

/// Start, log two steps, complete; the acknowledged episode (or the first error).
async fn record(m: &SelfLearningMemory, i: usize) -> memory_core::Result<Episode> {
    let id = m
        .start_episode(
            format!("rotate certificate {i}"),
            TaskContext::new("ops", "tls", "rotate"),
        )
        .await?;
    m.log_step(id, NewStep::new("certbot", format!("{{\"i\":{i}}}")))
        .await?;
    m.log_step(id, NewStep::new("reload", "{}")).await?;
    m.complete_episode(id, Outcome::success("rotated")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_outage_loses_nothing_acknowledged() {
    let Some(mut server) = Server::spawn("a_server_outage_loses_nothing_acknowledged") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = TursoStore::open_remote(server.url(), &AuthToken::default(), options())
        .await
        .unwrap();
    let cache = RedbCache::open_async(dir.path().join("cache.redb"), RedbOptions::default())
        .await
        .unwrap();
    let m = SelfLearningMemory::builder()
        .durable(store)
        .cache(cache.clone())
        .journal(
            RedbJournal::open_async(dir.path().join("journal.redb"))
                .await
                .expect("open the journal"),
        )
        .config(MemoryConfig {
            reconcile_interval: None,
            replay_interval: Duration::from_millis(100),
            resilience: ResilienceConfig {
                breaker: BreakerConfig {
                    failure_threshold: 1,
                    cool_down: Duration::from_millis(200),
                    half_open_probes: 1,
                },
                ..Default::default()
            },
            ..Default::default()
        })
        .open()
        .await
        .unwrap();

    let mut acknowledged = Vec::new();
    for i in 0..5 {
        acknowledged.push(record(&m, i).await.expect("server up"));
    }

    server.stop();
    let mut refused = 0;
    for i in 5..15 {
        match record(&m, i).await {
            Ok(e) => acknowledged.push(e),
            Err(e) => {
                assert!(e.is_transient(), "only transient failures while down: {e}");
                refused += 1;
            }
        }
    }
    let b = m.metrics().breaker.unwrap();
    assert_eq!(b.state, BreakerState::Open, "{b:?}");
    assert!(b.journal_depth > 0, "writes were journaled: {b:?}");
    assert!(
        acknowledged.len() > 5,
        "writes are acknowledged while the server is down ({refused} refused)"
    );

    server.restart();
    // The background job replays; reconcile() also replays. Bounded wait for the drain.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let report = m.reconcile().await.unwrap();
        if report.journal_remaining == 0 && m.metrics().breaker.unwrap().journal_depth == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the journal did not drain: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(m.metrics().breaker.unwrap().state, BreakerState::Closed);
    for e in &acknowledged {
        assert_eq!(&m.get_episode(e.id).await.unwrap(), e);
    }
    m.shutdown().await.unwrap();

    // Straight from the server, around every cache: exactly what was acknowledged.
    let direct = TursoStore::open_remote(server.url(), &AuthToken::default(), options())
        .await
        .unwrap();
    let stored = memory_core::store::scan_all_summaries(&direct)
        .await
        .unwrap();
    for e in &acknowledged {
        assert_eq!(direct.get_episode(e.id).await.unwrap().as_ref(), Some(e));
    }
    let completed = stored.iter().filter(|s| s.completed_at.is_some()).count();
    assert_eq!(
        completed,
        acknowledged.len(),
        "no completion beyond the acknowledged ones"
    );
    direct.close().await.unwrap();
}
