//! Retrieval settings: scoring weights, BM25 parameters, recency, diversity, cluster width.
//!
//! Owns [`RetrievalConfig`] (a plain struct with documented defaults and one `validate()`) and
//! [`FieldWeights`]. Scoring settings are read per query, so they can differ between
//! retrievers sharing one index; the two structural settings (`temporal_bucket_width`,
//! `embedding_dimension`) must match the index's [`IndexConfig`]. This module must never hold
//! runtime state: runtime switches are `RetrievalFlags`.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::index::{CHANNEL_COUNT, Channel, FIELD_COUNT, Field, IndexConfig};

/// BM25F weight of each text field: how much one occurrence of a query term in that field
/// counts within its channel, before saturation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldWeights {
    /// The task description. Default 1.0.
    pub description: f64,
    /// The context tags. Default 1.0.
    pub tags: f64,
    /// The tools the steps used, split into words (`exchange_delivered_order_items` →
    /// exchange, delivered, order, items). What the agent *did* is a strong signal of what
    /// kind of task it was. Default 1.0.
    pub tools: f64,
    /// The task type, split into words the same way. Default 1.0.
    pub task_type: f64,
}

impl Default for FieldWeights {
    fn default() -> Self {
        Self {
            description: 1.0,
            tags: 1.0,
            tools: 1.0,
            task_type: 1.0,
        }
    }
}

impl FieldWeights {
    /// The weight of `field`.
    pub fn get(&self, field: Field) -> f64 {
        match field {
            Field::Description => self.description,
            Field::Tags => self.tags,
            Field::Tools => self.tools,
            Field::TaskType => self.task_type,
        }
    }

    /// The weights in field order.
    pub(crate) fn as_array(&self) -> [f64; FIELD_COUNT] {
        Field::ALL.map(|f| self.get(f))
    }
}

/// How retrieval scores and re-ranks. Every default is documented on its field.
///
/// The score of an episode `d` for a query `q` is
///
/// ```text
/// score = lexical_weight × lex(q, d)  + feedback_weight × lex(q', d)
///       + cosine_weight  × cos(q, d)  + recency_weight  × rec(d)  + reward_weight × rew(d)
/// ```
///
/// each term in `[0, 1]`:
///
/// - `lex(q, d)` is BM25 over two channels, each saturating on its own:
///   `Σ_t idf(t) × Σ_c w_c × (k1 + 1) × tf_c / (tf_c + k1)`, where
///   `tf_c = Σ_{f in c} w_f × tf_f / (1 − b + b × len_f / avglen_f)` is BM25F within channel
///   `c` (text: the description; labels: tags, tools, task type, see `Channel`), divided by
///   its largest possible value `Σ_t idf(t) × (k1 + 1) × Σ_c w_c`. Statistics (`idf`,
///   `avglen`) are over the shards searched.
/// - `lex(q', d)` is the same function of the *feedback query* `q'`: the label terms (tools,
///   task type, tags) of the `feedback_episodes` episodes most similar to `q` (ranked by the
///   lexical and cosine terms alone: recency and reward say which episodes to prefer, not
///   what the query is about), each weighted by the share of those episodes holding it.
///   "Episodes that did what the best match did" is how an agent's memory generalizes from
///   one similar past task to its kind; 0 when disabled.
/// - `cos` is the cosine of the query and episode embeddings, floored at 0 (0 when either is
///   missing).
/// - `rec` is `0.5^(age / half-life)` of the completion (start, while in progress).
/// - `rew` is the reward clamped to `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalConfig {
    /// Weight of the lexical term. Default 1.0.
    pub lexical_weight: f64,
    /// Weight of the feedback term (see the type docs). Default 0.5.
    pub feedback_weight: f64,
    /// How many of the episodes most similar to the query (lexical and cosine terms) the
    /// feedback query is drawn from; 0 disables feedback (and its extra pass). Default 1.
    pub feedback_episodes: usize,
    /// Weight of the embedding cosine term (used only when the query and the episode both
    /// carry an embedding). Default 1.0.
    pub cosine_weight: f64,
    /// Weight of the recency term. Default 0.02. Lexical terms are fractions of a maximum no
    /// real match reaches (a good match scores a few hundredths to a few tenths), so recency
    /// at this weight reorders near-ties between equally similar episodes and never outvotes
    /// similarity.
    pub recency_weight: f64,
    /// Weight of the reward term. Default 0.05: among similar episodes, prefer those that went
    /// well, on the same scale as recency but stronger.
    pub reward_weight: f64,
    /// BM25 term-frequency saturation `k1`. Default 1.2.
    pub bm25_k1: f64,
    /// BM25 length normalization `b`, in `[0, 1]`. Default 0.75.
    pub bm25_b: f64,
    /// Per-field BM25F weights, within each channel.
    pub field_weights: FieldWeights,
    /// Weight of the text channel (the description). Default 0.5: free text shares many
    /// incidental words (products, names, phrasing) with episodes of other kinds.
    pub text_channel_weight: f64,
    /// Weight of the label channel (tags, tools, task type). Default 1.0: labels name the kind
    /// of task and what was done, which is what makes a past episode useful.
    pub label_channel_weight: f64,
    /// Age at which the recency term halves. Default 30 days.
    pub recency_half_life: Duration,
    /// MMR trade-off between relevance (1.0) and novelty (0.0), in `[0, 1]`. Default 0.7.
    pub mmr_lambda: f64,
    /// MMR considers the best `limit × mmr_pool_factor` episodes. Default 3; at least 1.
    pub mmr_pool_factor: usize,
    /// Width of a temporal cluster; must equal the index's. Default 7 days.
    pub temporal_bucket_width: Duration,
    /// Embedding dimension; must equal the index's. Default `None` (no embeddings).
    pub embedding_dimension: Option<usize>,
    /// Largest `limit` a query may ask for; a larger one is an error, never silently capped.
    /// Default 1,000.
    pub max_limit: usize,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        let index = IndexConfig::default();
        Self {
            lexical_weight: 1.0,
            feedback_weight: 0.5,
            feedback_episodes: 1,
            cosine_weight: 1.0,
            recency_weight: 0.02,
            reward_weight: 0.05,
            bm25_k1: 1.2,
            bm25_b: 0.75,
            field_weights: FieldWeights::default(),
            text_channel_weight: 0.5,
            label_channel_weight: 1.0,
            recency_half_life: Duration::from_secs(30 * 24 * 3600),
            mmr_lambda: 0.7,
            mmr_pool_factor: 3,
            temporal_bucket_width: index.temporal_bucket_width,
            embedding_dimension: index.embedding_dimension,
            max_limit: 1_000,
        }
    }
}

fn non_negative(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "a finite number >= 0",
            value.to_string(),
        ))
    }
}

fn unit_interval(field: &str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(field, "in [0, 1]", value.to_string()))
    }
}

impl RetrievalConfig {
    /// Check every setting; the error names the field.
    pub fn validate(&self) -> Result<()> {
        non_negative("retrieval.lexical_weight", self.lexical_weight)?;
        non_negative("retrieval.feedback_weight", self.feedback_weight)?;
        non_negative("retrieval.cosine_weight", self.cosine_weight)?;
        non_negative("retrieval.recency_weight", self.recency_weight)?;
        non_negative("retrieval.reward_weight", self.reward_weight)?;
        if self.lexical_weight
            + self.feedback_weight
            + self.cosine_weight
            + self.recency_weight
            + self.reward_weight
            <= 0.0
        {
            return Err(Error::invalid(
                "retrieval.*_weight",
                "at least one weight > 0",
                "all 0",
            ));
        }
        non_negative("retrieval.bm25_k1", self.bm25_k1)?;
        unit_interval("retrieval.bm25_b", self.bm25_b)?;
        non_negative("retrieval.text_channel_weight", self.text_channel_weight)?;
        non_negative("retrieval.label_channel_weight", self.label_channel_weight)?;
        if self.text_channel_weight + self.label_channel_weight <= 0.0 {
            return Err(Error::invalid(
                "retrieval.*_channel_weight",
                "at least one channel weight > 0",
                "all 0",
            ));
        }
        for f in Field::ALL {
            non_negative(
                &format!("retrieval.field_weights.{}", f.as_str()),
                self.field_weights.get(f),
            )?;
        }
        if self.recency_half_life.is_zero() {
            return Err(Error::invalid(
                "retrieval.recency_half_life",
                "greater than 0",
                "0",
            ));
        }
        unit_interval("retrieval.mmr_lambda", self.mmr_lambda)?;
        if self.mmr_pool_factor == 0 {
            return Err(Error::invalid(
                "retrieval.mmr_pool_factor",
                "at least 1",
                "0",
            ));
        }
        if self.max_limit == 0 {
            return Err(Error::invalid("retrieval.max_limit", "at least 1", "0"));
        }
        self.index_config().validate()
    }

    /// The channel weights in channel order.
    pub(crate) fn channel_weights(&self) -> [f64; CHANNEL_COUNT] {
        Channel::ALL.map(|c| match c {
            Channel::Text => self.text_channel_weight,
            Channel::Labels => self.label_channel_weight,
        })
    }

    /// The structural settings the index must be built with.
    pub fn index_config(&self) -> IndexConfig {
        IndexConfig {
            temporal_bucket_width: self.temporal_bucket_width,
            embedding_dimension: self.embedding_dimension,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        RetrievalConfig::default().validate().unwrap();
        assert_eq!(
            RetrievalConfig::default().index_config(),
            IndexConfig::default()
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let field =
            |c: RetrievalConfig| c.validate().unwrap_err().violation().unwrap().field.clone();
        let d = RetrievalConfig::default;
        assert_eq!(
            field(RetrievalConfig { bm25_b: 1.5, ..d() }),
            "retrieval.bm25_b"
        );
        assert_eq!(
            field(RetrievalConfig {
                recency_weight: f64::NAN,
                ..d()
            }),
            "retrieval.recency_weight"
        );
        let mut c = d();
        c.field_weights.tools = -1.0;
        assert_eq!(field(c), "retrieval.field_weights.tools");
        assert_eq!(
            field(RetrievalConfig {
                mmr_pool_factor: 0,
                ..d()
            }),
            "retrieval.mmr_pool_factor"
        );
        assert_eq!(
            field(RetrievalConfig {
                lexical_weight: 0.0,
                feedback_weight: 0.0,
                cosine_weight: 0.0,
                recency_weight: 0.0,
                reward_weight: 0.0,
                ..d()
            }),
            "retrieval.*_weight"
        );
        assert_eq!(
            field(RetrievalConfig {
                temporal_bucket_width: Duration::ZERO,
                ..d()
            }),
            "index.temporal_bucket_width"
        );
    }
}
