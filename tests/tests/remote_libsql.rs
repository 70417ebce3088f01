//! The remote and replica modes against a real libsql server (sqld) on loopback: the storage
//! conformance suite, the engine's lifecycle, two engines sharing one database (one through an
//! embedded replica), and no secret in errors. The server comes from `support/sqld.rs`; without
//! one each test prints `skipped: … no server` and returns.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use memory_core::{
    AuthToken, ErrorKind, MemoryConfig, NewStep, Outcome, RetrievalQuery, SelfLearningMemory,
    TaskContext,
};
use memory_storage_redb::{RedbCache, RedbJournal, RedbOptions};
use memory_storage_turso::{RetryPolicy, TursoOptions, TursoStore};
use support::sqld::Server;

fn no_token() -> AuthToken {
    AuthToken::default()
}

/// An engine over `durable` with the redb cache and journal in `dir`.
async fn engine(durable: impl memory_core::store::DurableStore, dir: &Path) -> SelfLearningMemory {
    let cache = RedbCache::open_async(dir.join("cache.redb"), RedbOptions::default())
        .await
        .expect("cache");
    SelfLearningMemory::builder()
        .durable(durable)
        .cache(cache.clone())
        .journal(
            RedbJournal::open_async(dir.join("journal.redb"))
                .await
                .expect("open the journal"),
        )
        .config(MemoryConfig {
            reconcile_interval: None,
            ..Default::default()
        })
        .open()
        .await
        .expect("engine")
}

/// A namespace no other run has used (a shared server may hold other data).
fn fresh_namespace() -> String {
    format!("ns-{}", memory_core::EpisodeId::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_on_a_real_server() {
    let Some(server) = Server::spawn("the_conformance_suite_passes_on_a_real_server") else {
        return;
    };
    let store = TursoStore::open_remote(server.url(), &no_token(), TursoOptions::default())
        .await
        .unwrap();
    memory_core::conformance::durable_store(&store).await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_lifecycle_runs_against_a_remote_store() {
    let Some(server) = Server::any("the_engine_lifecycle_runs_against_a_remote_store") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ns = fresh_namespace();
    let done = {
        let store = TursoStore::open_remote(server.url(), &no_token(), TursoOptions::default())
            .await
            .unwrap();
        let m = engine(store, dir.path()).await;
        let id = m
            .start_episode(
                "refund a damaged lamp",
                TaskContext::new(&ns, "retail", "refund").with_tags(["orders"]),
            )
            .await
            .unwrap();
        let seqs = m
            .log_steps(
                id,
                vec![
                    NewStep::new("get_order_details", "{}"),
                    NewStep::new("refund", "{}"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(seqs, vec![0, 1]);
        let done = m
            .complete_episode(id, Outcome::success("refunded"))
            .await
            .unwrap();
        assert_eq!(m.get_episode(id).await.unwrap(), done);
        m.shutdown().await.unwrap();
        done
    };
    // A second engine (new cache) rebuilds its index from the server and finds the episode.
    let dir2 = tempfile::tempdir().unwrap();
    let store = TursoStore::open_remote(server.url(), &no_token(), TursoOptions::default())
        .await
        .unwrap();
    let m = engine(store, dir2.path()).await;
    assert_eq!(m.get_episode(done.id).await.unwrap(), done);
    let hits = m
        .retrieve(RetrievalQuery::new(&ns, "damaged lamp refund"))
        .await
        .unwrap();
    assert_eq!(hits.first().map(|h| h.episode.id), Some(done.id));
    m.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_share_a_database_one_through_a_replica() {
    let Some(server) = Server::any("two_engines_share_a_database_one_through_a_replica") else {
        return;
    };
    let ns = fresh_namespace();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = engine(
        TursoStore::open_remote(server.url(), &no_token(), TursoOptions::default())
            .await
            .unwrap(),
        dir_a.path(),
    )
    .await;
    let replica = Arc::new(
        TursoStore::open_replica(
            dir_b.path().join("replica.db"),
            server.url(),
            &no_token(),
            None,
            TursoOptions::default(),
        )
        .await
        .unwrap(),
    );
    let b = engine(replica.clone(), dir_b.path()).await;

    // A writes; B's replica has it after a sync, and B's index after a reconcile pass.
    let ctx = || TaskContext::new(&ns, "ops", "deploy");
    let id_a = a.start_episode("roll out the canary", ctx()).await.unwrap();
    let done_a = a
        .complete_episode(id_a, Outcome::success("rolled out"))
        .await
        .unwrap();
    replica.sync().await.unwrap();
    assert_eq!(b.get_episode(id_a).await.unwrap(), done_a);
    let report = b.reconcile().await.unwrap();
    assert!(report.index_missing >= 1, "{report:?}");
    let hits = b
        .retrieve(RetrievalQuery::new(&ns, "canary roll out"))
        .await
        .unwrap();
    assert!(hits.iter().any(|h| h.episode.id == id_a), "{hits:?}");

    // B writes through its replica (delegated to the primary) and reads its own write; A
    // (remote) reads it at once.
    let id_b = b
        .start_episode("roll back the canary", ctx())
        .await
        .unwrap();
    b.log_step(id_b, NewStep::new("kubectl", "rollout undo"))
        .await
        .unwrap();
    let done_b = b
        .complete_episode(id_b, Outcome::failure("rolled back"))
        .await
        .unwrap();
    b.invalidate_cache(id_b).await.unwrap();
    assert_eq!(
        b.get_episode(id_b).await.unwrap(),
        done_b,
        "read-your-writes through the replica"
    );
    assert_eq!(a.get_episode(id_b).await.unwrap(), done_b);

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_an_error_or_a_debug_string() {
    // No server needed: nothing listens on this port, so opening fails.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let token = AuthToken::new("s3cret-token-value");
    let options = TursoOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        },
        ..TursoOptions::default()
    };
    let url = format!("http://user:pw@127.0.0.1:{port}/db?authToken=s3cret-token-value");
    match TursoStore::open_remote(&url, &token, options).await {
        Ok(store) => panic!("nothing listens there: {store:?}"),
        Err(e) => {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(!shown.contains("pw@"), "{shown}");
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
            assert!(e.is_transient());
        }
    }
    assert!(!format!("{token:?}").contains("s3cret"));
}
