//! Reads: a small pool of read-only connections, each query run on a blocking thread.
//!
//! Every read takes a connection (waiting on a semaphore when all are busy), runs on tokio's
//! blocking pool via `spawn_blocking`, and reads inside one `BEGIN … COMMIT` so an episode's
//! row, its steps and its summary come from one WAL snapshot. Read connections are opened with
//! `PRAGMA query_only`, so this module can never write; it never runs a query on a tokio worker
//! thread and never holds a `Rows` past the function that opened it (an unconsumed `Rows`
//! keeps its snapshot open).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use libsql::{Connection, Value};
use memory_core::store::{ChangeMark, ListRequest, Page};
use memory_core::{Episode, EpisodeId, EpisodeSummary, Error, Result};
use tokio::sync::Semaphore;

use crate::codec::{
    EPISODE_COLUMN_COUNT, Fields, STEP_COLUMN_COUNT, SUMMARY_COLUMN_COUNT, decode_episode,
    decode_step, decode_summary, episode_columns, id_value, row_values, step_columns,
    summary_columns,
};
use crate::error::{db_error, shutting_down};
use crate::exec::Exec;
use crate::retry::{self, RetryPolicy};

/// The read connections and the permits that hand them out.
pub(crate) struct ReadPool {
    connections: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// How the blocking threads drive libsql futures.
    exec: Exec,
    /// Retries of reads that failed transiently (network modes; `none` for a local file).
    retry: RetryPolicy,
    /// The database, in the network modes, to replace a connection a network failure left
    /// unusable (a stale stream is refused by the server even once it is back).
    reconnect: Option<Arc<libsql::Database>>,
}

/// A connection on loan to one blocking read; returns itself to the pool when dropped, even
/// when the read panicked.
struct Lease {
    pool: Arc<ReadPool>,
    conn: Option<Connection>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Lease {
    /// Hand `fresh` back to the pool instead of the leased connection (which a network
    /// failure left unusable).
    fn replace(&mut self, fresh: Connection) {
        self.conn = Some(fresh);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && let Ok(mut conns) = self.pool.connections.lock()
        {
            conns.push(conn);
        }
    }
}

impl ReadPool {
    pub(crate) fn new(
        connections: Vec<Connection>,
        exec: Exec,
        retry: RetryPolicy,
        reconnect: Option<Arc<libsql::Database>>,
    ) -> Arc<Self> {
        let n = connections.len();
        Arc::new(Self {
            connections: Mutex::new(connections),
            permits: Arc::new(Semaphore::new(n)),
            exec,
            retry,
            reconnect,
        })
    }

    /// Refuse new reads and close idle connections; reads in flight finish normally.
    pub(crate) fn close(&self) {
        self.permits.close();
        if let Ok(mut conns) = self.connections.lock() {
            conns.clear();
        }
    }

    /// Run `read` on a pooled connection on a blocking thread.
    async fn with_connection<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Exec) -> Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| shutting_down())?;
        let conn = self
            .connections
            .lock()
            .map_err(|_| Error::storage("read pool lock poisoned by a panic"))?
            .pop()
            .ok_or_else(shutting_down)?;
        let mut lease = Lease {
            pool: Arc::clone(self),
            conn: Some(conn),
            _permit: permit,
        };
        let exec = self.exec.clone();
        let reconnect = self.reconnect.clone();
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::storage("TursoStore reads need a tokio runtime").with_source(e))?;
        handle
            .spawn_blocking(move || {
                let conn = lease
                    .conn
                    .as_ref()
                    .ok_or_else(|| Error::storage("read lease without a connection"))?;
                let result = read(conn, &exec);
                if let (Err(e), Some(db)) = (&result, &reconnect)
                    && e.is_transient()
                    && let Ok(fresh) = db.connect()
                {
                    lease.replace(fresh);
                }
                result
            })
            .await
            .map_err(|e| Error::storage("a read task panicked or was cancelled").with_source(e))?
    }

    /// `DurableStore::get_episode`.
    pub(crate) async fn get_episode(self: &Arc<Self>, id: EpisodeId) -> Result<Option<Episode>> {
        retry::retry(self.retry, "get_episode", || {
            self.with_connection(move |conn, exec| {
                exec.block_on(in_snapshot(conn, get_episode(conn, id)))
            })
        })
        .await
    }

    /// `DurableStore::list_episodes`.
    pub(crate) async fn list_episodes(
        self: &Arc<Self>,
        request: &ListRequest,
    ) -> Result<Page<Episode>> {
        retry::retry(self.retry, "list_episodes", || {
            let request = request.clone();
            self.with_connection(move |conn, exec| {
                exec.block_on(in_snapshot(conn, list_episodes(conn, &request)))
            })
        })
        .await
    }

    /// `DurableStore::scan_summaries`.
    pub(crate) async fn scan_summaries(
        self: &Arc<Self>,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<EpisodeSummary>> {
        retry::retry(self.retry, "scan_summaries", || {
            self.with_connection(move |conn, exec| {
                exec.block_on(scan_summaries(conn, after, limit))
            })
        })
        .await
    }

    pub(crate) async fn scan_versions(
        self: &Arc<Self>,
        after: Option<EpisodeId>,
        limit: usize,
    ) -> Result<Page<(EpisodeId, u64)>> {
        retry::retry(self.retry, "scan_versions", || {
            self.with_connection(move |conn, exec| exec.block_on(scan_versions(conn, after, limit)))
        })
        .await
    }

    /// `DurableStore::change_mark`.
    pub(crate) async fn change_mark(self: &Arc<Self>) -> Result<ChangeMark> {
        retry::retry(self.retry, "change_mark", || {
            self.with_connection(move |conn, exec| exec.block_on(change_mark(conn)))
        })
        .await
    }

    /// `DurableStore::changed_since`.
    pub(crate) async fn changed_since(
        self: &Arc<Self>,
        since: ChangeMark,
    ) -> Result<Option<Vec<EpisodeId>>> {
        retry::retry(self.retry, "changed_since", || {
            self.with_connection(move |conn, exec| exec.block_on(changed_since(conn, since)))
        })
        .await
    }

    pub(crate) async fn summaries_of(
        self: &Arc<Self>,
        ids: &[EpisodeId],
    ) -> Result<Vec<EpisodeSummary>> {
        let mut all = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let chunk: Arc<[EpisodeId]> = chunk.into();
            let found = retry::retry(self.retry, "summaries_of", || {
                let chunk = chunk.clone();
                self.with_connection(move |conn, exec| exec.block_on(summaries_of(conn, &chunk)))
            })
            .await?;
            all.extend(found);
        }
        Ok(all)
    }
}

/// Run `read` inside one read transaction (one snapshot), always ending it.
async fn in_snapshot<T>(
    conn: &Connection,
    read: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    if !conn.is_autocommit() {
        // A previous read panicked mid-transaction; start clean.
        conn.execute("ROLLBACK", ())
            .await
            .map_err(|e| db_error("resetting a read connection", e))?;
    }
    conn.execute("BEGIN", ())
        .await
        .map_err(|e| db_error("beginning a read", e))?;
    let result = read.await;
    let ended = conn.execute("COMMIT", ()).await;
    let value = result?;
    ended.map_err(|e| db_error("ending a read", e))?;
    Ok(value)
}

/// `after` as a key bound: ids are 16-byte blobs and the empty blob sorts before all of them.
fn after_value(after: Option<EpisodeId>) -> Value {
    after.map_or(Value::Blob(Vec::new()), id_value)
}

/// `limit + 1` as an SQL integer (one extra row tells whether more exist).
fn lookahead(limit: usize) -> Value {
    Value::Integer(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
}

/// All rows of `sql` with `params`, each decoded from its first `columns` values as it is
/// read (no intermediate table of values: a 1M-row version scan spent about a third of its
/// time allocating, copying and freeing one).
async fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
    columns: usize,
    what: &str,
    mut decode: impl FnMut(Vec<Value>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut rows = conn
        .query(sql, params)
        .await
        .map_err(|e| db_error(what, e))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.map_err(|e| db_error(what, e))? {
        out.push(decode(row_values(&row, columns, what)?)?);
    }
    Ok(out)
}

/// Cut `items` (fetched with one row of lookahead) to `limit` and compute the cursor.
fn into_page<T>(mut items: Vec<T>, limit: usize, id_of: impl Fn(&T) -> EpisodeId) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next_after = if more { items.last().map(id_of) } else { None };
    Page { items, next_after }
}

async fn get_episode(conn: &Connection, id: EpisodeId) -> Result<Option<Episode>> {
    let rows = query_all(
        conn,
        concat!(
            "SELECT ",
            episode_columns!(),
            " FROM episodes WHERE id = ?1"
        ),
        vec![id_value(id)],
        EPISODE_COLUMN_COUNT,
        "reading an episode",
        decode_episode,
    )
    .await?;
    let Some(mut episode) = rows.into_iter().next() else {
        return Ok(None);
    };
    let steps = query_all(
        conn,
        concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE episode_id = ?1 ORDER BY seq"
        ),
        vec![id_value(id)],
        STEP_COLUMN_COUNT,
        "reading steps",
        decode_step,
    )
    .await?;
    episode
        .steps
        .extend(steps.into_iter().map(|(_, step)| step));
    Ok(Some(episode))
}

async fn list_episodes(conn: &Connection, request: &ListRequest) -> Result<Page<Episode>> {
    let rows = query_all(
        conn,
        concat!(
            "SELECT ",
            episode_columns!(),
            " FROM episodes WHERE namespace = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        vec![
            Value::Text(request.namespace.clone()),
            after_value(request.after),
            lookahead(request.limit),
        ],
        EPISODE_COLUMN_COUNT,
        "listing episodes",
        decode_episode,
    )
    .await?;
    let mut page = into_page(rows, request.limit, |e| e.id);
    if page.items.is_empty() {
        return Ok(page);
    }
    // The steps of exactly the page's episodes, from the same snapshot.
    let steps = query_all(
        conn,
        concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE episode_id IN \
               (SELECT id FROM episodes WHERE namespace = ?1 AND id > ?2 ORDER BY id LIMIT ?3) \
             ORDER BY episode_id, seq"
        ),
        vec![
            Value::Text(request.namespace.clone()),
            after_value(request.after),
            Value::Integer(i64::try_from(page.items.len()).unwrap_or(i64::MAX)),
        ],
        STEP_COLUMN_COUNT,
        "listing steps",
        decode_step,
    )
    .await?;
    let index: HashMap<EpisodeId, usize> = page
        .items
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id, i))
        .collect();
    for (id, step) in steps {
        let i = *index.get(&id).ok_or_else(|| {
            Error::corrupt(format!("step of episode {id} listed outside its page"))
        })?;
        page.items[i].steps.push(step);
    }
    Ok(page)
}

async fn scan_versions(
    conn: &Connection,
    after: Option<EpisodeId>,
    limit: usize,
) -> Result<Page<(EpisodeId, u64)>> {
    let rows = query_all(
        conn,
        "SELECT id, version FROM episodes WHERE id > ?1 ORDER BY id LIMIT ?2",
        vec![after_value(after), lookahead(limit)],
        2,
        "scanning versions",
        |values| {
            let mut f = Fields::new(values, "episodes");
            Ok((f.id("id")?, f.u64_bits("version")?))
        },
    )
    .await?;
    Ok(into_page(rows, limit, |(id, _)| *id))
}

async fn change_mark(conn: &Connection) -> Result<ChangeMark> {
    let marks = query_all(
        conn,
        "SELECT seq, mark FROM changes ORDER BY seq DESC LIMIT 1",
        Vec::new(),
        2,
        "reading the change mark",
        |values| mark_of(&mut Fields::new(values, "changes")),
    )
    .await?;
    marks
        .into_iter()
        .next()
        .ok_or_else(|| Error::corrupt("the changes table has no row"))
}

/// The `seq` and `mark` columns of a `changes` row, read in that order.
fn mark_of(f: &mut Fields) -> Result<ChangeMark> {
    Ok(ChangeMark {
        seq: f.u64_bits("seq")?,
        mark: f.u64_bits("mark")?,
    })
}

/// One statement, so one read snapshot: the row of `since` and every row after it.
async fn changed_since(conn: &Connection, since: ChangeMark) -> Result<Option<Vec<EpisodeId>>> {
    let rows = query_all(
        conn,
        "SELECT seq, mark, id FROM changes WHERE seq >= ?1 ORDER BY seq",
        vec![Value::Integer(i64::from_ne_bytes(since.seq.to_ne_bytes()))],
        3,
        "reading the changes since a mark",
        |values| {
            let mut f = Fields::new(values, "changes");
            Ok((mark_of(&mut f)?, f.opt_id("id")?))
        },
    )
    .await?;
    if rows.first().map(|(mark, _)| *mark) != Some(since) {
        return Ok(None);
    }
    let mut seen = HashSet::new();
    Ok(Some(
        rows.into_iter()
            .skip(1)
            .filter_map(|(_, id)| id.filter(|id| seen.insert(*id)))
            .collect(),
    ))
}

/// Ids bound in one `IN (...)` list (SQLite allows 32,766 variables).
const IDS_PER_STATEMENT: usize = 500;

/// The summaries of those of `ids` that exist, in one statement.
async fn summaries_of(conn: &Connection, ids: &[EpisodeId]) -> Result<Vec<EpisodeSummary>> {
    let marks = vec!["?"; ids.len()].join(", ");
    let sql = format!(
        "SELECT {} FROM episodes e LEFT JOIN summaries s ON s.id = e.id WHERE e.id IN ({marks})",
        summary_columns!()
    );
    let params = ids.iter().map(|id| id_value(*id)).collect();
    query_all(
        conn,
        &sql,
        params,
        SUMMARY_COLUMN_COUNT,
        "reading summaries by id",
        decode_summary,
    )
    .await
}

async fn scan_summaries(
    conn: &Connection,
    after: Option<EpisodeId>,
    limit: usize,
) -> Result<Page<EpisodeSummary>> {
    // One statement, so one snapshot without an explicit transaction.
    let rows = query_all(
        conn,
        concat!(
            "SELECT ",
            summary_columns!(),
            " FROM episodes e LEFT JOIN summaries s ON s.id = e.id \
              WHERE e.id > ?1 ORDER BY e.id LIMIT ?2"
        ),
        vec![after_value(after), lookahead(limit)],
        SUMMARY_COLUMN_COUNT,
        "scanning summaries",
        decode_summary,
    )
    .await?;
    Ok(into_page(rows, limit, |s| s.id))
}
