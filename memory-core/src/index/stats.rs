//! Counts describing what the index holds: the observable state tests compare.
//!
//! Owns [`IndexStats`]. Every field is a count of live structure (no capacities, no timings),
//! so two indexes that hold the same episodes have equal stats whatever their history; this is
//! what "a removal leaves no trace" is checked against. It must never carry memory estimates
//! (see `SpatiotemporalIndex::memory_bytes`) or anything history-dependent.

/// What the index holds, summed over shards.
///
/// Snapshot manifests store each shard's stats in this form (postcard, field order matters):
/// changing the fields needs a new snapshot format version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexStats {
    /// Shards (non-empty `(namespace, domain)` pairs).
    pub shards: usize,
    /// Indexed episodes.
    pub episodes: usize,
    /// Task-type partitions, summed over shards.
    pub task_types: usize,
    /// Temporal clusters, summed over partitions.
    pub clusters: usize,
    /// Episodes held by the partitions' clusters, summed (equals `episodes` when consistent).
    /// Named for the R-tree points it counted when the trees held episodes (the trees now
    /// hold the clusters); the name stays, as snapshot manifests store these fields.
    pub tree_points: usize,
    /// Distinct terms, summed over shards (a term in two shards counts twice).
    pub terms: usize,
    /// (term, episode) pairs: the size of the lexical statistics.
    pub postings: u64,
    /// Distinct tags, summed over shards.
    pub tags: usize,
    /// Episodes carrying an embedding.
    pub embeddings: u64,
    /// Tokens over all fields of all episodes (the BM25 length totals).
    pub field_tokens: u64,
}

impl IndexStats {
    /// Add `other`'s counts to these.
    pub(crate) fn add(&mut self, other: &IndexStats) {
        self.shards += other.shards;
        self.episodes += other.episodes;
        self.task_types += other.task_types;
        self.clusters += other.clusters;
        self.tree_points += other.tree_points;
        self.terms += other.terms;
        self.postings += other.postings;
        self.tags += other.tags;
        self.embeddings += other.embeddings;
        self.field_tokens += other.field_tokens;
    }
}
