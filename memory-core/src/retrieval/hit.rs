//! One retrieval result: which episode, how it scored, and why.
//!
//! Owns [`RetrievalHit`]. It must never carry episode content: callers fetch the episode
//! from the store by id (and may compare `version` with what they fetched).

use crate::id::EpisodeId;

use super::scorer::ScoreBreakdown;

/// One retrieved episode.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalHit {
    /// The episode.
    pub id: EpisodeId,
    /// The indexed version of its summary.
    pub version: u64,
    /// The relevance score, `breakdown.total()`.
    pub score: f64,
    /// The score's weighted terms.
    pub breakdown: ScoreBreakdown,
    /// With diversity re-ranking: the greatest similarity (`[0, 1]`) to a hit ranked above
    /// this one, which MMR weighed against its score. 0 without diversity.
    pub redundancy: f64,
}
