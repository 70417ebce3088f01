//! [`TursoStore`]: opening, closing and the `DurableStore` implementation.
//!
//! Owns the lifecycle: open the file, the remote database or the embedded replica (refusing a
//! newer schema before touching it), set WAL and the durability pragma (local file only), run
//! pending migrations, open the read pool, start the writer thread;
//! route every write to the writer and every read to the pool; on `close` (or drop) let the
//! writer finish what is queued and join it. It never runs a database call on a tokio worker
//! thread and never holds a sync lock across an `.await`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
#[cfg(feature = "replica")]
use std::time::Duration;

use async_trait::async_trait;
use libsql::{Builder, Connection, Database, Value};
#[cfg(any(feature = "remote", feature = "replica"))]
use memory_core::AuthToken;
use memory_core::store::{ChangeMark, DurableStore, ListRequest, Page, WriteStats};
use memory_core::{Episode, EpisodeId, EpisodeSummary, Error, Result, Step};
use tokio::sync::{Semaphore, oneshot};

use crate::error::{db_error, shutting_down};
use crate::exec::{Exec, block_on};
use crate::options::{Durability, TursoOptions};
use crate::reader::ReadPool;
use crate::retry::RetryPolicy;
use crate::schema::{self, SCHEMA_VERSION, SchemaChange};
use crate::write_ops::{Statements, WriteOp};
use crate::writer::{Counters, Message, Request, Writer};

/// The durable store on libsql: a local (SQLite-format) file, a remote libsql server, or an
/// embedded replica of one.
///
/// - **Writes** go to one writer thread that group-commits them (see [`crate::CommitMode`]);
///   a write returns `Ok` only after its transaction committed with the configured
///   [`Durability`]. Concurrent writers never see "database is locked": there is one writer.
/// - **Reads** run on a pool of read-only connections on tokio's blocking threads, each from
///   one WAL snapshot, concurrently with writes.
/// - **Lifecycle**: [`TursoStore::close`] finishes queued writes, stops the writer and reports
///   a writer panic; dropping the store does the same, blocking the dropping thread until the
///   queued writes are done. After a failed commit the store refuses writes until reopened.
///
/// One `TursoStore` per file: a second store (or process) on the same file works, but its
/// writes then wait on SQLite's file lock (up to [`TursoOptions::busy_timeout`]).
///
/// **Acknowledgements by mode.** Local: after the local commit (fsync'd with
/// [`Durability::Full`]). Remote: after the server answered the `COMMIT` (the server's own
/// durability applies). Replica: writes are delegated to the primary, so after the primary
/// committed; the replica's local file catches up at the next sync (this instance's own
/// reads wait for it: read-your-writes).
pub struct TursoStore {
    /// The file, or the server (URL without credentials or query), for logs and errors.
    location: String,
    /// `None` only while dropping: closing the channel tells the writer to stop.
    tx: Option<std::sync::mpsc::Sender<Message>>,
    /// Places in the writer's queue (`TursoOptions::queue_capacity`): async backpressure in
    /// front of the unbounded std channel.
    queue: Arc<Semaphore>,
    closed: AtomicBool,
    readers: Arc<ReadPool>,
    counters: Arc<Counters>,
    /// The writer's exit signal and thread. An async mutex because `close` holds it across
    /// the wait for the writer to finish, so concurrent `close` calls all return after it.
    shutdown: tokio::sync::Mutex<Option<(oneshot::Receiver<()>, JoinHandle<()>)>>,
    /// Kept for the lifetime of the connections opened from it; replicas sync through it.
    #[cfg_attr(not(feature = "replica"), allow(dead_code))]
    db: Arc<Database>,
    /// How blocking threads drive libsql futures (parked, or the opening runtime for network
    /// modes).
    exec: Exec,
    /// Whether this is an embedded replica (the only mode with `sync`).
    replica: bool,
    /// Retries of transient network failures (`none` for a local file); used by `sync`.
    #[cfg_attr(not(feature = "replica"), allow(dead_code))]
    retry: RetryPolicy,
}

impl std::fmt::Debug for TursoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TursoStore")
            .field("location", &self.location)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .field("writer", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

/// Where a store's data lives, as given to one of the `open_*` constructors.
enum Location {
    Local(PathBuf),
    #[cfg(feature = "remote")]
    Remote {
        url: String,
        token: AuthToken,
    },
    #[cfg(feature = "replica")]
    Replica {
        path: PathBuf,
        url: String,
        token: AuthToken,
        sync_interval: Option<Duration>,
    },
}

impl Location {
    /// For logs and error messages: never the token, never a URL's query or user info.
    fn describe(&self) -> String {
        match self {
            Location::Local(path) => path.display().to_string(),
            #[cfg(feature = "remote")]
            Location::Remote { url, .. } => {
                format!("remote {}", memory_core::config::redact_url(url))
            }
            #[cfg(feature = "replica")]
            Location::Replica { path, url, .. } => {
                format!(
                    "replica {} of {}",
                    path.display(),
                    memory_core::config::redact_url(url)
                )
            }
        }
    }

    fn is_local(&self) -> bool {
        matches!(self, Location::Local(_))
    }

    fn is_replica(&self) -> bool {
        #[cfg(feature = "replica")]
        if matches!(self, Location::Replica { .. }) {
            return true;
        }
        false
    }
}

/// The plain-HTTP connector for `http://` URLs; `None` lets libsql use its TLS connector
/// (feature `tls`) for `https://` and `libsql://`. Without `tls` those are refused.
#[cfg(any(feature = "remote", feature = "replica"))]
fn connector_for(url: &str) -> Result<Option<hyper::client::HttpConnector>> {
    if url.starts_with("http://") {
        return Ok(Some(hyper::client::HttpConnector::new()));
    }
    if cfg!(feature = "tls") {
        return Ok(None);
    }
    Err(Error::invalid(
        "durable.url",
        "an http:// URL (https:// and libsql:// need memory-storage-turso's `tls` feature)",
        memory_core::config::redact_url(url),
    ))
}

/// What the blocking part of opening hands back.
struct Opened {
    db: Database,
    writer: Connection,
    statements: Statements,
    readers: Vec<Connection>,
}

/// Run `work` on tokio's blocking pool (libsql's local calls block).
async fn blocking<T, F>(what: &'static str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|e| Error::storage(format!("{what} needs a tokio runtime")).with_source(e))?;
    handle
        .spawn_blocking(work)
        .await
        .map_err(|e| Error::storage(format!("{what} panicked or was cancelled")).with_source(e))?
}

/// Build the libsql database for `location` (connects nothing yet for a local file; a replica
/// pulls the primary's current state).
async fn build_database(location: &Location) -> Result<Database> {
    #[cfg(any(feature = "remote", feature = "replica"))]
    let what = || format!("opening {}", location.describe());
    match location {
        Location::Local(path) => open_database(path).await,
        #[cfg(feature = "remote")]
        Location::Remote { url, token } => {
            let mut builder = Builder::new_remote(url.clone(), token.expose().to_owned());
            if let Some(c) = connector_for(url)? {
                builder = builder.connector(c);
            }
            builder.build().await.map_err(|e| db_error(what(), e))
        }
        #[cfg(feature = "replica")]
        Location::Replica {
            path,
            url,
            token,
            sync_interval,
        } => {
            let mut builder =
                Builder::new_remote_replica(path, url.clone(), token.expose().to_owned())
                    .read_your_writes(true);
            if let Some(c) = connector_for(url)? {
                builder = builder.connector(c);
            }
            if let Some(every) = sync_interval {
                builder = builder.sync_interval(*every);
            }
            let db = builder.build().await.map_err(|e| db_error(what(), e))?;
            db.sync()
                .await
                .map_err(|e| db_error(format!("first sync of {}", location.describe()), e))?;
            Ok(db)
        }
    }
}

async fn open_database(path: &Path) -> Result<Database> {
    Builder::new_local(path)
        .build()
        .await
        .map_err(|e| db_error(format!("opening {}", path.display()), e))
}

/// A new connection; on a local file with the busy timeout set (it is per connection).
fn connect(db: &Database, options: &TursoOptions, location: &Location) -> Result<Connection> {
    let conn = db.connect().map_err(|e| {
        let what = format!("connecting to {}", location.describe());
        match e {
            // A local file that cannot be opened is not a network outage: permanent.
            libsql::Error::ConnectionFailed(_) if location.is_local() => {
                Error::storage(format!("{what}: {e}")).with_source(e)
            }
            e => db_error(what, e),
        }
    })?;
    if location.is_local() {
        conn.busy_timeout(options.busy_timeout)
            .map_err(|e| db_error("setting the busy timeout", e))?;
    }
    Ok(conn)
}

/// Switch to WAL (a persistent setting; the pragma answers with the mode now in force).
async fn enable_wal(conn: &Connection) -> Result<()> {
    let mut rows = conn
        .query("PRAGMA journal_mode = WAL", ())
        .await
        .map_err(|e| db_error("enabling WAL", e))?;
    let row = rows.next().await.map_err(|e| db_error("enabling WAL", e))?;
    let mode = match row {
        Some(row) => row.get_value(0).map_err(|e| db_error("enabling WAL", e))?,
        None => Value::Null,
    };
    drop(rows);
    match mode {
        Value::Text(m) if m.eq_ignore_ascii_case("wal") => Ok(()),
        other => Err(Error::storage(format!(
            "the database refused WAL mode (journal_mode is {other:?}); is the file on a \
             filesystem without shared memory support?"
        ))),
    }
}

/// Set a connection's durability (`PRAGMA synchronous` is per connection).
async fn set_durability(conn: &Connection, durability: Durability) -> Result<()> {
    let sql = match durability {
        Durability::Full => "PRAGMA synchronous = FULL",
        Durability::Normal => "PRAGMA synchronous = NORMAL",
    };
    conn.execute(sql, ())
        .await
        .map_err(|e| db_error("setting the durability", e))?;
    Ok(())
}

/// Everything of opening that touches the database. Runs on a blocking thread.
async fn open_blocking(location: &Location, options: &TursoOptions) -> Result<Opened> {
    let db = build_database(location).await?;
    let writer = connect(&db, options, location)?;
    // Before anything that could write: a newer database is refused untouched.
    let found = schema::check_not_newer(&writer).await?;
    if location.is_local() {
        // The server (or the replication protocol) owns these settings elsewhere.
        enable_wal(&writer).await?;
        set_durability(&writer, options.durability).await?;
    }
    if found != SCHEMA_VERSION {
        schema::migrate(&writer, SCHEMA_VERSION).await?;
    }
    let statements = Statements::new(&writer, location.is_local()).await?;
    let mut readers = Vec::with_capacity(options.read_connections);
    for _ in 0..options.read_connections {
        let conn = connect(&db, options, location)?;
        if location.is_local() {
            conn.execute("PRAGMA query_only = ON", ())
                .await
                .map_err(|e| db_error("making a read connection read-only", e))?;
        }
        readers.push(conn);
    }
    Ok(Opened {
        db,
        writer,
        statements,
        readers,
    })
}

impl TursoStore {
    /// Open (creating if needed) the store in the local file at `path`.
    ///
    /// Refuses, without writing to the file, one whose schema is newer than
    /// [`SCHEMA_VERSION`] (`Storage` error naming both versions). Otherwise switches the file
    /// to WAL, runs pending migrations in one transaction, opens
    /// [`TursoOptions::read_connections`] read connections and starts the writer thread.
    /// Needs a tokio runtime (any flavour).
    pub async fn open_local(path: impl AsRef<Path>, options: TursoOptions) -> Result<Self> {
        Self::open_at(Location::Local(path.as_ref().to_path_buf()), options).await
    }

    /// Open the store on a remote libsql server (sqld, Turso) at `url` (`http://`, or
    /// `https://`/`libsql://` with the `tls` feature), authenticating with `auth_token`
    /// (empty for a server without authentication). Same schema, migrations and group commit
    /// as a local file: a batch is one remote transaction. Transient network failures are
    /// retried per [`TursoOptions::retry`] and then reported as `Unavailable`. Needs a tokio
    /// runtime with I/O and time enabled; the store's network I/O runs on it.
    #[cfg(feature = "remote")]
    pub async fn open_remote(
        url: &str,
        auth_token: &AuthToken,
        options: TursoOptions,
    ) -> Result<Self> {
        Self::open_at(
            Location::Remote {
                url: url.to_owned(),
                token: auth_token.clone(),
            },
            options,
        )
        .await
    }

    /// Open an embedded replica: the local file at `path` kept in sync with the primary at
    /// `url`. Reads are served from the local file; writes are delegated to the primary and
    /// acknowledged once it committed; this store's reads then wait until the replica has
    /// caught up with its own writes (read-your-writes). Other instances' writes appear at the
    /// next sync: every `sync_interval` when given, and whenever [`TursoStore::sync`] is
    /// called. The first sync happens here. Needs a tokio runtime with I/O and time enabled.
    #[cfg(feature = "replica")]
    pub async fn open_replica(
        path: impl AsRef<Path>,
        url: &str,
        auth_token: &AuthToken,
        sync_interval: Option<Duration>,
        options: TursoOptions,
    ) -> Result<Self> {
        Self::open_at(
            Location::Replica {
                path: path.as_ref().to_path_buf(),
                url: url.to_owned(),
                token: auth_token.clone(),
                sync_interval,
            },
            options,
        )
        .await
    }

    /// Open the store `target` describes (`MemoryConfig::durable`, from the `MEMORY_DURABLE_*`
    /// variables): the local file `<data_dir>/memory.db`, the remote server, or the embedded
    /// replica `<data_dir>/replica.db`. A mode whose cargo feature (`remote`, `replica`) is not
    /// compiled in is an `InvalidInput` error saying so.
    pub async fn open_target(
        target: &memory_core::DurableTarget,
        data_dir: &Path,
        options: TursoOptions,
    ) -> Result<Self> {
        use memory_core::DurableMode;
        target.validate()?;
        let url = target.url.as_deref().unwrap_or_default();
        match target.mode {
            DurableMode::Local => Self::open_local(data_dir.join("memory.db"), options).await,
            #[cfg(feature = "remote")]
            DurableMode::Remote => Self::open_remote(url, &target.auth_token, options).await,
            #[cfg(feature = "replica")]
            DurableMode::Replica => {
                Self::open_replica(
                    data_dir.join("replica.db"),
                    url,
                    &target.auth_token,
                    target.replica_sync_interval,
                    options,
                )
                .await
            }
            #[allow(unreachable_patterns)]
            mode => {
                let _ = url;
                Err(Error::invalid(
                    "durable.mode",
                    "a mode compiled into memory-storage-turso (features `remote`, `replica`)",
                    format!("{mode:?}"),
                ))
            }
        }
    }

    /// Pull the primary's latest changes into this embedded replica now (retried like any
    /// network call). `InvalidInput` for a local or remote store, which have nothing to sync.
    pub async fn sync(&self) -> Result<()> {
        self.check_open()?;
        if !self.replica {
            return Err(Error::invalid(
                "sync",
                "an embedded replica (open_replica)",
                self.location.clone(),
            ));
        }
        #[cfg(feature = "replica")]
        {
            crate::retry::retry(self.retry, "sync", || {
                let db = Arc::clone(&self.db);
                let exec = self.exec.clone();
                let location = self.location.clone();
                blocking("syncing the replica", move || {
                    exec.block_on(db.sync())
                        .map(drop)
                        .map_err(|e| db_error(format!("syncing {location}"), e))
                })
            })
            .await
        }
        #[cfg(not(feature = "replica"))]
        Err(Error::storage(
            "embedded replicas need the `replica` feature",
        ))
    }

    async fn open_at(location: Location, options: TursoOptions) -> Result<Self> {
        options.validate()?;
        let described = location.describe();
        let exec = if location.is_local() {
            Exec::Park
        } else {
            Exec::Runtime(tokio::runtime::Handle::try_current().map_err(|e| {
                Error::storage("a network TursoStore needs a tokio runtime").with_source(e)
            })?)
        };
        let retry = if location.is_local() {
            RetryPolicy::none()
        } else {
            options.retry
        };
        let replica = location.is_replica();
        let opened = {
            let options = options.clone();
            let exec = exec.clone();
            blocking("opening the turso store", move || {
                exec.block_on(open_blocking(&location, &options))
            })
            .await?
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let (exit_tx, exit_rx) = oneshot::channel::<()>();
        let counters = Arc::new(Counters::default());
        let db = Arc::new(opened.db);
        let reconnect = (!matches!(exec, Exec::Park)).then(|| Arc::clone(&db));
        let writer = Writer::new(
            opened.writer,
            opened.statements,
            &options,
            Arc::clone(&counters),
            exec.clone(),
            reconnect.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("memory-turso-writer".into())
            .spawn(move || {
                writer.run(rx);
                // Last: tells `close` the writer and its connection are gone.
                drop(exit_tx);
            })
            .map_err(|e| Error::storage("cannot start the writer thread").with_source(e))?;
        tracing::info!(location = %described, ?options, "turso store open");
        Ok(Self {
            location: described,
            tx: Some(tx),
            queue: Arc::new(Semaphore::new(options.queue_capacity)),
            closed: AtomicBool::new(false),
            readers: ReadPool::new(opened.readers, exec.clone(), retry, reconnect),
            counters,
            shutdown: tokio::sync::Mutex::new(Some((exit_rx, thread))),
            db,
            exec,
            replica,
            retry,
        })
    }

    /// Move the schema of the local file at `path` to `target_version`, up or down, in one
    /// transaction, and report the versions before and after.
    ///
    /// An offline operation: no [`TursoStore`] may have the file open (one would keep running
    /// on a schema it does not expect). Going down runs each migration's `down` SQL, newest
    /// first; below version 1 every table is dropped **with its data**. Going down to 1 and up
    /// again loses nothing (version 2's summaries are rebuilt from the steps). A target above
    /// [`SCHEMA_VERSION`] is `InvalidInput`; a file newer than this build is refused untouched.
    pub async fn migrate_local(
        path: impl AsRef<Path>,
        target_version: u32,
    ) -> Result<SchemaChange> {
        let path = path.as_ref().to_path_buf();
        blocking("migrating the turso store", move || {
            block_on(async {
                let db = open_database(&path).await?;
                let conn = connect(&db, &TursoOptions::default(), &Location::Local(path))?;
                schema::check_not_newer(&conn).await?;
                schema::migrate(&conn, target_version).await
            })
        })
        .await
    }

    /// The file, or the server (scheme and host only), this store was opened on.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The writer's counters (batches committed, operations, failures, batch sizes) since
    /// open; also what [`DurableStore::write_stats`] returns.
    pub fn writer_stats(&self) -> WriteStats {
        self.counters.snapshot()
    }

    /// Stop accepting work, let the writer commit everything queued before this call, stop it
    /// and close every connection. Idempotent; concurrent calls all return once the writer is
    /// gone. Returns a `Storage` error if the writer thread had panicked. Operations started
    /// after `close` fail with `ShuttingDown`.
    pub async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.queue.close();
        if let Some(tx) = &self.tx {
            // Queued behind every write sent before it. Fails only if the writer already
            // stopped; joining below tells why.
            let _ = tx.send(Message::Shutdown);
        }
        let mut shutdown = self.shutdown.lock().await;
        let Some((exited, thread)) = shutdown.take() else {
            return Ok(());
        };
        // Resolves (with an error, as the sender is dropped) once the thread is done.
        let _ = exited.await;
        self.readers.close();
        let joined = blocking("joining the writer thread", move || join_writer(thread)).await;
        tracing::info!(location = %self.location, "turso store closed");
        joined
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(shutting_down())
        } else {
            Ok(())
        }
    }

    /// The error when the writer went away without answering.
    fn writer_gone(&self) -> Error {
        if self.closed.load(Ordering::Acquire) {
            shutting_down()
        } else {
            Error::storage(
                "the turso writer thread stopped unexpectedly; the outcome of this write is \
                 unknown: re-read, and reopen the store",
            )
        }
    }

    /// Queue `op` for the writer and wait for its committed result.
    async fn write(&self, op: Result<WriteOp>) -> Result<bool> {
        self.check_open()?;
        let op = op?;
        let tx = self.tx.as_ref().ok_or_else(shutting_down)?;
        let permit = Arc::clone(&self.queue)
            .acquire_owned()
            .await
            .map_err(|_| shutting_down())?;
        let (reply, answer) = oneshot::channel();
        tx.send(Message::Op(Request {
            op,
            reply,
            _permit: permit,
        }))
        .map_err(|_| self.writer_gone())?;
        answer.await.map_err(|_| self.writer_gone())?
    }
}

/// Join the writer thread, turning a panic into a `Storage` error that quotes it.
fn join_writer(thread: JoinHandle<()>) -> Result<()> {
    thread.join().map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic".to_owned());
        Error::storage(format!("the turso writer thread panicked: {what}"))
    })
}

impl Drop for TursoStore {
    fn drop(&mut self) {
        // Closing the channel: the writer commits what is queued, then stops.
        self.tx = None;
        self.queue.close();
        self.readers.close();
        let Some((_, thread)) = self.shutdown.get_mut().take() else {
            return;
        };
        if matches!(self.exec, Exec::Runtime(_)) {
            // The writer needs the runtime's reactor to finish, and this thread may be the
            // one driving it: let the writer finish on its own rather than block here.
            return;
        }
        if let Err(e) = join_writer(thread) {
            tracing::error!(location = %self.location, error = %e, "on drop");
        }
    }
}

#[async_trait]
impl DurableStore for TursoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(id = %episode.id))]
    async fn create_episode(&self, episode: &Episode) -> Result<()> {
        self.write(WriteOp::create(episode)).await.map(drop)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(id = %id, steps = steps.len()))]
    async fn append_steps(&self, id: EpisodeId, steps: &[Step]) -> Result<()> {
        self.write(Ok(WriteOp::append(id, steps))).await.map(drop)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(id = %episode.id))]
    async fn complete_episode(&self, episode: &Episode) -> Result<()> {
        self.write(WriteOp::complete(episode)).await.map(drop)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(id = %episode.id))]
    async fn update_episode(&self, episode: &Episode) -> Result<()> {
        self.write(WriteOp::update(episode)).await.map(drop)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    async fn delete_episode(&self, id: EpisodeId) -> Result<bool> {
        self.write(Ok(WriteOp::Delete(id))).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    async fn get_episode(&self, id: EpisodeId) -> Result<Option<Episode>> {
        self.check_open()?;
        self.readers.get_episode(id).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %request.namespace))]
    async fn list_episodes(&self, request: &ListRequest) -> Result<Page<Episode>> {
        self.check_open()?;
        self.readers.list_episodes(request).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit = limit))]
    async fn scan_summaries(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<EpisodeSummary>> {
        self.check_open()?;
        self.readers.scan_summaries(after, limit).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit = limit))]
    async fn scan_versions(
        &self,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<(EpisodeId, u64)>> {
        self.check_open()?;
        self.readers.scan_versions(after, limit).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn change_mark(&self) -> Result<ChangeMark> {
        self.check_open()?;
        self.readers.change_mark().await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn changed_since(&self, since: ChangeMark) -> Result<Option<Vec<EpisodeId>>> {
        self.check_open()?;
        self.readers.changed_since(since).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(ids = ids.len()))]
    async fn summaries_of(&self, ids: &[EpisodeId]) -> Result<Vec<EpisodeSummary>> {
        self.check_open()?;
        self.readers.summaries_of(ids).await
    }

    /// [`TursoStore::close`]: commit everything queued, stop the writer, close connections.
    async fn close(&self) -> Result<()> {
        TursoStore::close(self).await
    }

    fn write_stats(&self) -> Option<WriteStats> {
        Some(self.writer_stats())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memory_core::ErrorKind;

    #[test]
    fn a_writer_panic_becomes_a_storage_error_quoting_it() {
        let thread = std::thread::spawn(|| panic!("boom in the writer"));
        let err = join_writer(thread).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Storage);
        assert!(err.to_string().contains("boom in the writer"), "{err}");
        join_writer(std::thread::spawn(|| ())).unwrap();
    }
}
