//! Episodic memory for AI agents.
//!
//! An agent framework links this crate in-process, records each task attempt as an
//! [`Episode`] (context, ordered steps, outcome, reward), and reads its past episodes back.
//! The durable store is the source of truth; a cache makes reads fast and is always
//! rebuildable. This crate holds the domain model, the storage contracts ([`store`]), in-memory
//! and fault-injecting stores, and the [`SelfLearningMemory`] facade; it depends on no
//! storage backend.
//!
//! ```
//! use memory_core::{NewStep, Outcome, SelfLearningMemory, TaskContext};
//! use memory_core::store::{InMemoryCache, InMemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> memory_core::Result<()> {
//! let memory = SelfLearningMemory::builder()
//!     .durable(InMemoryStore::new())
//!     .cache(InMemoryCache::new())
//!     .open()
//!     .await?;
//! let ctx = TaskContext::new("agent-1", "retail", "refund").with_tags(["orders"]);
//! let id = memory.start_episode("Refund order #W123", ctx).await?;
//! memory.log_step(id, NewStep::new("get_order_details", r#"{"order_id":"W123"}"#)).await?;
//! let done = memory.complete_episode(id, Outcome::success("refunded")).await?;
//! assert_eq!(done.steps.len(), 1);
//! memory.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod coordinator;
mod engine;
pub mod episode;
pub mod error;
pub mod id;
pub mod index;
pub mod limits;
pub mod metrics;
pub mod record;
pub mod retrieval;
pub mod snapshot;
pub mod store;
pub mod time;
pub mod transfer;

pub use config::{AuthToken, DurableMode, DurableTarget, MemoryConfig};
pub use coordinator::{ReplayReport, ResilienceConfig, ResilientStore};
pub use engine::{
    Compared, IndexOpen, IndexSource, MemoryBuilder, PermitStats, ReconcileReport,
    RetrievedEpisode, SelfLearningMemory, SnapshotWrites,
};
pub use episode::{
    Completion, Complexity, Episode, EpisodeSummary, EpisodeUpdate, NewStep, Outcome, OutcomeKind,
    Step, TaskContext,
};
pub use error::{Error, ErrorKind, Result, Violation};
pub use id::EpisodeId;
pub use index::{IndexConfig, SpatiotemporalIndex};
pub use limits::Limits;
pub use metrics::{LatencySummary, MetricsSnapshot};
pub use retrieval::{RetrievalConfig, RetrievalFlags, RetrievalHit, RetrievalQuery, Retriever};
