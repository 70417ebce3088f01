//! The durable episode store on libsql: [`TursoStore`], the source of truth of the engine.
//!
//! A local SQLite-format file in WAL mode, written by **one** dedicated writer thread that
//! groups concurrent writes into shared transactions (group commit), and read through a small
//! pool of read-only connections that run off the tokio worker threads. Every write is
//! acknowledged only after its transaction committed (with `synchronous=FULL` by default, so
//! it survives power loss). Errors cross this crate's edge only as [`memory_core::Error`]; no
//! libsql type appears in a public signature.
//!
//! ```
//! use memory_core::conformance::{sample_episode, sample_steps};
//! use memory_core::store::DurableStore;
//! use memory_storage_turso::{TursoOptions, TursoStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> memory_core::Result<()> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let store = TursoStore::open_local(dir.path().join("memory.db"), TursoOptions::default()).await?;
//! let episode = sample_episode("agent-1");
//! store.create_episode(&episode).await?;            // durable when it returns
//! store.append_steps(episode.id, &sample_steps(0, 2)).await?;
//! let back = store.get_episode(episode.id).await?.expect("stored");
//! assert_eq!(back.steps.len(), 2);
//! store.close().await?;                             // drains queued writes, joins the writer
//! # Ok(())
//! # }
//! ```
//!
//! Module map: [`options`] (configuration), [`schema`] (tables and migrations), and the
//! private `store` (the facade type), `writer` (the writer thread and group commit),
//! `write_ops` (the SQL of each write), `reader` (read pool and queries), `codec` (rows to
//! domain values), `error` (libsql errors to `memory_core::Error`), `exec` (driving libsql's
//! calls on a plain thread) and `retry` (back-off for transient network failures).
//!
//! **Modes.** [`TursoStore::open_local`] (the default: a file), `TursoStore::open_remote`
//! (a libsql server such as sqld or Turso; cargo feature `remote`) and
//! `TursoStore::open_replica` (an embedded replica: a local file synced from a remote
//! primary, reads local, writes delegated; feature `replica`). `https://`/`libsql://` URLs
//! need the `tls` feature; without it only `http://` is accepted. `docs/deployment.md`
//! compares the modes.

mod codec;
mod error;
mod exec;
pub mod options;
mod reader;
mod retry;
pub mod schema;
mod store;
mod write_ops;
mod writer;

pub use options::{CommitMode, Durability, TursoOptions};
pub use retry::RetryPolicy;
pub use schema::{CHANGES_KEPT, MIGRATIONS, Migration, SCHEMA_VERSION, SchemaChange};
pub use store::TursoStore;
