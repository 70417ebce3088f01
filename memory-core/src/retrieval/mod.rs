//! Retrieval: answering "which past episodes are most like this task?" from the index.
//!
//! Owns queries ([`RetrievalQuery`]), scoring ([`RetrievalConfig`], [`ScoreBreakdown`]),
//! runtime switches ([`RetrievalFlags`]), path counters ([`RetrievalCounts`]) and the search
//! itself ([`Retriever`]): namespace → domain shard(s) → task type → posting lists and temporal
//! clusters →
//! scoring → MMR diversity re-ranking, with the flat path as reference and fallback. It reads
//! the index and never changes it, and never returns an episode of another namespace.

mod config;
mod counters;
mod feedback;
mod filter;
mod flags;
mod flat;
mod hierarchical;
mod hit;
mod mmr;
mod postings;
mod query;
mod retriever;
mod scorer;
mod topk;
mod visit;

pub use config::{FieldWeights, RetrievalConfig};
pub use counters::RetrievalCounts;
pub use flags::{FlagValues, RetrievalFlag, RetrievalFlags};
pub use hit::RetrievalHit;
pub use query::{DEFAULT_LIMIT, RetrievalQuery, TimeRange};
pub use retriever::Retriever;
pub use scorer::ScoreBreakdown;
