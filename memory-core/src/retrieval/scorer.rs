//! The scoring function: two-channel BM25, feedback, cosine, recency, reward, and bounds.
//!
//! Owns [`QueryTerms`] (the query's distinct terms, each marked as a query term and/or a
//! feedback term with its weight), [`CorpusStats`] (document count, per-field length totals
//! and per-term document frequencies, summed over the shards a query searches, so every
//! searched shard scores on the same scale), [`Scorer`] (the formula documented on
//! `RetrievalConfig`, for one query) and [`ScoreBreakdown`]. The bound of a temporal cluster is
//! computed with the very same floating-point operations as a document's score, on
//! per-cluster maxima (term frequencies, reward, recency) and minima (field lengths); every
//! operation used is monotone under IEEE rounding, so a bound is never below the score of any
//! member. This module must never touch locks or decide which documents are visited.

use crate::index::{
    CHANNEL_COUNT, ClusterSummary, Doc, FIELD_COUNT, Field, FieldTf, RestKey, Shard, Slot, Sym,
    TermPostings,
};
use crate::time::{self, Timestamp};

use super::config::RetrievalConfig;

/// Each weighted term of a score; their sum is the score.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreBreakdown {
    /// `lexical_weight × lex(q, d)`: two-channel BM25 of the query text, in `[0, 1]` before
    /// weighting.
    pub lexical: f64,
    /// `feedback_weight × lex(q', d)`: the same for the feedback query (the label terms of the
    /// first-pass episodes most similar to the query).
    pub feedback: f64,
    /// `cosine_weight × max(0, cos)` of the embeddings (0 when either is missing).
    pub cosine: f64,
    /// `recency_weight × 0.5^(age / half-life)`.
    pub recency: f64,
    /// `reward_weight × clamp(reward, 0, 1)`.
    pub reward: f64,
}

impl ScoreBreakdown {
    /// The score: the sum of the terms, always added in this order.
    pub fn total(&self) -> f64 {
        self.lexical + self.feedback + self.cosine + self.recency + self.reward
    }
}

/// The terms a query scores with: distinct, sorted, each a query term, a feedback term with a
/// weight in `(0, 1]`, or both.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct QueryTerms {
    pub(crate) text: Vec<String>,
    pub(crate) in_query: Vec<bool>,
    pub(crate) feedback: Vec<f64>,
}

impl QueryTerms {
    /// The terms of `text`.
    pub(crate) fn of_text(text: &str) -> Self {
        let mut terms = crate::index::terms(text);
        terms.sort_unstable();
        terms.dedup();
        let n = terms.len();
        Self {
            text: terms,
            in_query: vec![true; n],
            feedback: vec![0.0; n],
        }
    }

    /// These terms plus `feedback` terms with their weights (merged, kept sorted).
    pub(crate) fn with_feedback(&self, feedback: &[(String, f64)]) -> Self {
        let mut all: Vec<(String, bool, f64)> = self
            .text
            .iter()
            .cloned()
            .zip(self.in_query.iter().copied())
            .zip(self.feedback.iter().copied())
            .map(|((t, q), f)| (t, q, f))
            .collect();
        for (t, w) in feedback {
            match all.binary_search_by(|(x, _, _)| x.as_str().cmp(t)) {
                Ok(i) => all[i].2 += w,
                Err(i) => all.insert(i, (t.clone(), false, *w)),
            }
        }
        Self {
            text: all.iter().map(|a| a.0.clone()).collect(),
            in_query: all.iter().map(|a| a.1).collect(),
            feedback: all.iter().map(|a| a.2).collect(),
        }
    }

    /// How many terms.
    pub(crate) fn len(&self) -> usize {
        self.text.len()
    }
}

/// A query term a document holds: the term's index in the query's terms, and the document's
/// frequencies of it.
pub(crate) type Hit = (u32, FieldTf);

/// A query's terms resolved in one shard: their posting lists, and which query term a term id
/// of the shard is: a bit per term id (a few KiB, so a document's terms are matched against it
/// from the L1 cache) and, for the set bits, the query term (sorted pairs).
#[derive(Debug, Default)]
pub(crate) struct Resolved<'s> {
    /// Per query term: its posting list in the shard, if the shard holds the term and some
    /// searched document does (the term has an idf).
    pub(crate) lists: Vec<Option<TermPostings<'s>>>,
    bits: Vec<u64>,
    /// (term id, query term index + 1), by term id.
    pairs: Vec<(Sym, u32)>,
    /// Per query term: the most it can add to the score of any document of the shard (from
    /// its posting list's bounds; 0 for a term the shard does not hold).
    pub(crate) bounds: Vec<f64>,
    /// The sum of `bounds`: the most the lexical terms can add together.
    pub(crate) lexical_bound: f64,
}

impl Resolved<'_> {
    /// Give back the bit set's buffer, for the next shard.
    pub(crate) fn into_buffer(self) -> Vec<u64> {
        self.bits
    }

    /// Call `f` with the query terms `doc` (at `slot` of this shard) holds and its
    /// frequencies of them, by query term index.
    pub(crate) fn hits_of<R>(&self, doc: Doc<'_>, slot: Slot, f: impl FnOnce(&[Hit]) -> R) -> R {
        const INLINE: usize = 48;
        let mut inline = [(0u32, [0; FIELD_COUNT]); INLINE];
        let mut more: Vec<Hit> = Vec::new();
        let mut n = 0;
        for sym in doc.terms() {
            let q = self.query_term(sym);
            let Some(list) = q.checked_sub(1).and_then(|i| self.lists[i as usize]) else {
                continue;
            };
            let Some(tf) = list.tf_of(slot) else {
                continue;
            };
            if n < INLINE {
                inline[n] = (q - 1, tf);
            } else {
                if more.is_empty() {
                    more.extend_from_slice(&inline);
                }
                more.push((q - 1, tf));
            }
            n += 1;
        }
        let hits = if n <= INLINE {
            &mut inline[..n]
        } else {
            &mut more[..]
        };
        hits.sort_unstable_by_key(|h| h.0);
        f(hits)
    }

    /// The query term `sym` is (index + 1), or 0 for none (or a term no searched document
    /// holds).
    fn query_term(&self, sym: Sym) -> u32 {
        let word = self.bits.get(sym as usize / 64).copied().unwrap_or(0);
        if word & (1u64 << (sym % 64)) == 0 {
            return 0;
        }
        self.pairs
            .binary_search_by_key(&sym, |(s, _)| *s)
            .map_or(0, |i| self.pairs[i].1)
    }
}

/// What one query term adds to a score, as a function of a document's frequencies and lengths
/// ([`Scorer::term`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TermBound<'s> {
    scorer: &'s Scorer,
    scale: [f64; CHANNEL_COUNT],
}

impl TermBound<'_> {
    /// What the term adds to the score of one document holding it `tf` times, of lengths
    /// `len`: [`TermBound::bound`] of that document, the same value, read from a table when
    /// the term occurs once in one field only (most postings).
    #[inline]
    pub(crate) fn one(&self, tf: &FieldTf, len: &[u32; FIELD_COUNT]) -> f64 {
        let bits = u32::from_le_bytes(*tf);
        if bits.is_power_of_two() && bits.trailing_zeros().is_multiple_of(8) {
            let f = (bits.trailing_zeros() / 8) as usize;
            if let Some(saturated) = self.scorer.once[f].get(len[f] as usize) {
                return self.scale[FIELD_CHANNEL[f]] * saturated;
            }
        }
        self.bound(tf, len)
    }

    /// [`Scorer::term_bound`] of this term.
    #[inline]
    pub(crate) fn bound(&self, max_tf: &FieldTf, min_len: &[u32; FIELD_COUNT]) -> f64 {
        let s = self.scorer;
        let mut per_channel = [0.0; CHANNEL_COUNT];
        for f in 0..FIELD_COUNT {
            let len = min_len[f];
            let weight = match s.per_length[f].get(len as usize) {
                Some(w) => *w,
                None => s.field_weight[f] / (s.norm_base[f] + s.norm_per_len[f] * f64::from(len)),
            };
            // A select, not a branch: which fields hold the term varies from posting to
            // posting. (A weight may be infinite for an empty field; it is not multiplied.)
            let add = if max_tf[f] == 0 {
                0.0
            } else {
                weight * f64::from(max_tf[f])
            };
            per_channel[FIELD_CHANNEL[f]] += add;
        }
        let mut sum = 0.0;
        for (tf, scale) in per_channel.iter().zip(&self.scale) {
            let saturated = 1.0 - s.k1 / (tf + s.k1);
            sum += if *tf > 0.0 { scale * saturated } else { 0.0 };
        }
        sum
    }
}

/// Corpus statistics over the shards a query searches.
#[derive(Debug, Clone)]
pub(crate) struct CorpusStats {
    docs: u64,
    field_len_total: [u64; FIELD_COUNT],
    /// Per term (in the `QueryTerms` order): documents holding it.
    df: Vec<u64>,
}

impl CorpusStats {
    /// Empty statistics for `terms` terms.
    pub(crate) fn new(terms: usize) -> Self {
        Self {
            docs: 0,
            field_len_total: [0; FIELD_COUNT],
            df: vec![0; terms],
        }
    }

    /// Add `shard`'s statistics for `terms`.
    pub(crate) fn add(&mut self, shard: &Shard, terms: &QueryTerms) {
        self.docs += shard.len() as u64;
        for (total, add) in self.field_len_total.iter_mut().zip(shard.field_len_total()) {
            *total += add;
        }
        for (i, t) in terms.text.iter().enumerate() {
            if let Some(sym) = shard.term_sym(t) {
                self.df[i] += u64::from(shard.term_df(sym));
            }
        }
    }
}

/// BM25 inverse document frequency (the non-negative "plus one" form).
pub(crate) fn idf(docs: u64, df: u64) -> f64 {
    let (n, df) = (docs as f64, df as f64);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// The channel of each field, as indices.
const FIELD_CHANNEL: [usize; FIELD_COUNT] = [
    Field::Description.channel().index(),
    Field::Tags.channel().index(),
    Field::Tools.channel().index(),
    Field::TaskType.channel().index(),
];

/// The scoring function for one query.
#[derive(Debug)]
pub(crate) struct Scorer {
    lexical_weight: f64,
    feedback_weight: f64,
    cosine_weight: f64,
    recency_weight: f64,
    reward_weight: f64,
    k1: f64,
    b: f64,
    field_weight: [f64; FIELD_COUNT],
    channel_weight: [f64; CHANNEL_COUNT],
    avg_len: [f64; FIELD_COUNT],
    /// Per term: its idf, or `None` when no searched document holds it.
    idf: Vec<Option<f64>>,
    in_query: Vec<bool>,
    feedback: Vec<f64>,
    /// The largest lexical sum the query can reach.
    lexical_max: f64,
    /// The largest feedback sum the feedback query can reach.
    feedback_max: f64,
    query_vector: Option<(Vec<f32>, f64)>,
    now: i64,
    half_life_micros: f64,
    /// Per term, per channel: what a saturated frequency of 1 in the channel adds to the score
    /// (weights, idf and the normalizations by `lexical_max` and `feedback_max` folded in), so
    /// [`Scorer::term_bound`] costs no more than the length normalization and saturation.
    term_scale: Vec<[f64; CHANNEL_COUNT]>,
    /// Per field: a length normalization is `norm_base[f] + norm_per_len[f] × length`.
    norm_base: [f64; FIELD_COUNT],
    norm_per_len: [f64; FIELD_COUNT],
    /// Per field, per length below [`LENGTH_TABLE`]: the field's weight over its length
    /// normalization, so a bound costs a look-up instead of a division per field.
    per_length: [Vec<f64>; FIELD_COUNT],
    /// Per field, per length below [`LENGTH_TABLE`]: the saturated frequency of a term found
    /// once in that field and in no other, computed as [`TermBound::bound`] computes it, so
    /// [`TermBound::one`] costs a look-up instead of the sums and a division.
    once: [Vec<f64>; FIELD_COUNT],
    /// Per whole day of age below [`RECENCY_DAYS`]: at least what recency adds to a document
    /// that old (the last entry also bounds every older one).
    recency_by_day: Box<[f64; RECENCY_DAYS]>,
    /// `now` in whole [`RestKey`] days since the Unix epoch, rounded down (at most
    /// [`RestKey::MAX_DAY`], so a saturated key is never older than `now`).
    today: i64,
    /// What one [`RestKey`] reward step adds.
    reward_per_step: f64,
    /// What the cosine can add to a document carrying an embedding.
    cosine_bound: f64,
}

/// Days of age [`Scorer::rest_of`] tells apart; older documents share the last day's bound.
const RECENCY_DAYS: usize = 366;

/// Field lengths below this have their weighted normalization in `Scorer::per_length`.
const LENGTH_TABLE: usize = 256;

impl Scorer {
    /// The scorer for `terms` with `stats`, an optional embedding, at instant `now`.
    pub(crate) fn new(
        config: &RetrievalConfig,
        terms: &QueryTerms,
        stats: &CorpusStats,
        embedding: Option<&[f32]>,
        now: Timestamp,
    ) -> Self {
        let avg_len = stats.field_len_total.map(|total| {
            if stats.docs > 0 {
                total as f64 / stats.docs as f64
            } else {
                0.0
            }
        });
        let k1 = config.bm25_k1;
        let channel_weight = config.channel_weights();
        let channel_sum: f64 = channel_weight.iter().sum();
        let idf: Vec<Option<f64>> = stats
            .df
            .iter()
            .map(|&df| (df > 0).then(|| idf(stats.docs, df)))
            .collect();
        let mut lexical_max = 0.0;
        let mut feedback_max = 0.0;
        for (i, idf) in idf.iter().enumerate() {
            if let Some(idf) = idf {
                let top = idf * (k1 + 1.0) * channel_sum;
                if terms.in_query[i] {
                    lexical_max += top;
                }
                feedback_max += terms.feedback[i] * top;
            }
        }
        let ratio = |weight: f64, max: f64| if max > 0.0 { weight / max } else { 0.0 };
        let term_scale = idf
            .iter()
            .enumerate()
            .map(|(i, idf)| {
                let Some(idf) = idf else {
                    return [0.0; CHANNEL_COUNT];
                };
                let lexical = if terms.in_query[i] {
                    ratio(config.lexical_weight, lexical_max)
                } else {
                    0.0
                };
                let scale = (lexical
                    + terms.feedback[i] * ratio(config.feedback_weight, feedback_max))
                    * idf
                    * (k1 + 1.0);
                channel_weight.map(|w| w * scale)
            })
            .collect();
        let b = config.bm25_b;
        let norm_base = avg_len.map(|avg| if avg > 0.0 { 1.0 - b } else { 1.0 });
        let norm_per_len = avg_len.map(|avg| if avg > 0.0 { b / avg } else { 0.0 });
        let field_weight = config.field_weights.as_array();
        let per_length: [Vec<f64>; FIELD_COUNT] = std::array::from_fn(|f| {
            (0..LENGTH_TABLE)
                .map(|len| field_weight[f] / (norm_base[f] + norm_per_len[f] * len as f64))
                .collect()
        });
        let once = std::array::from_fn(|f| {
            per_length[f]
                .iter()
                .map(|weight| 1.0 - k1 / (weight + k1))
                .collect()
        });
        let half_life_micros = config.recency_half_life.as_micros() as f64;
        // Each day's bound is the previous one's times a day's decay, rounded up a little more
        // than the products' rounding errors could lower it.
        let decay =
            (-(RestKey::DAY_MICROS as f64 / half_life_micros)).exp2() * (1.0 + 4.0 * f64::EPSILON);
        let mut recency_by_day = Box::new([0.0; RECENCY_DAYS]);
        let mut recency = config.recency_weight;
        for day in recency_by_day.iter_mut() {
            *day = recency;
            recency *= decay;
        }
        let now = time::to_micros(now);
        Self {
            recency_by_day,
            today: now.div_euclid(RestKey::DAY_MICROS).min(RestKey::MAX_DAY),
            reward_per_step: config.reward_weight / f64::from(RestKey::REWARD_STEPS),
            cosine_bound: if embedding.is_some() {
                config.cosine_weight
            } else {
                0.0
            },
            term_scale,
            norm_base,
            norm_per_len,
            per_length,
            once,
            lexical_weight: config.lexical_weight,
            feedback_weight: config.feedback_weight,
            cosine_weight: config.cosine_weight,
            recency_weight: config.recency_weight,
            reward_weight: config.reward_weight,
            k1,
            b: config.bm25_b,
            field_weight,
            channel_weight,
            avg_len,
            idf,
            in_query: terms.in_query.clone(),
            feedback: terms.feedback.clone(),
            lexical_max,
            feedback_max,
            query_vector: embedding.map(|e| (e.to_vec(), crate::index::norm(e))),
            now,
            half_life_micros,
        }
    }

    /// Resolve `terms` to `shard`'s term ids (same order), with the lookup from term id to
    /// query term that lets a document's terms be matched in one pass, without a search per
    /// query term. `bits` is a buffer to reuse (its contents are replaced).
    pub(crate) fn resolve<'s>(
        &self,
        shard: &'s Shard,
        terms: &QueryTerms,
        bits: Vec<u64>,
    ) -> Resolved<'s> {
        let syms: Vec<Option<Sym>> = terms.text.iter().map(|t| shard.term_sym(t)).collect();
        let mut bits = bits;
        bits.clear();
        bits.resize(shard.term_id_bound().div_ceil(64), 0);
        let mut pairs = Vec::new();
        for (i, (sym, idf)) in syms.iter().zip(&self.idf).enumerate() {
            if let (Some(sym), Some(_)) = (sym, idf)
                && let Some(word) = bits.get_mut(*sym as usize / 64)
            {
                *word |= 1u64 << (sym % 64);
                // A query of more than u32::MAX − 1 terms cannot be built in memory.
                pairs.push((*sym, u32::try_from(i + 1).unwrap_or(u32::MAX)));
            }
        }
        pairs.sort_unstable();
        let lists: Vec<Option<TermPostings>> = syms
            .iter()
            .zip(&self.idf)
            .map(|(sym, idf)| idf.and((*sym).and_then(|s| shard.postings(s))))
            .collect();
        let bounds: Vec<f64> = lists
            .iter()
            .enumerate()
            .map(|(i, list)| {
                list.map_or(0.0, |l| {
                    let (max_tf, min_len) = l.bounds(|slot| shard.field_len(slot));
                    self.term_bound(i, &max_tf, &min_len)
                })
            })
            .collect();
        let lexical_bound = bounds.iter().sum();
        Resolved {
            lists,
            bits,
            pairs,
            bounds,
            lexical_bound,
        }
    }

    /// One term's contribution before its idf: per channel, the weighted, length-normalized
    /// frequency saturated, weighted by the channel, summed.
    fn contribution(&self, idf: f64, tf: &FieldTf, len: &[u32; FIELD_COUNT]) -> f64 {
        let mut per_channel = [0.0; CHANNEL_COUNT];
        for f in 0..FIELD_COUNT {
            if tf[f] == 0 {
                continue;
            }
            let norm = if self.avg_len[f] > 0.0 {
                1.0 - self.b + self.b * (f64::from(len[f]) / self.avg_len[f])
            } else {
                1.0
            };
            per_channel[FIELD_CHANNEL[f]] += self.field_weight[f] * f64::from(tf[f]) / norm;
        }
        let mut sum = 0.0;
        for (c, tf) in per_channel.iter().enumerate() {
            if *tf > 0.0 {
                // idf × (k1 + 1) × tf / (tf + k1), written so each operation is monotone in tf.
                sum += self.channel_weight[c]
                    * (idf * (self.k1 + 1.0) * (1.0 - self.k1 / (tf + self.k1)));
            }
        }
        sum
    }

    /// The lexical and feedback sums of a document holding the query terms `hits` (by query
    /// term index), with field lengths `len`: contributions added in query-term order.
    fn sums(&self, hits: &[Hit], len: &[u32; FIELD_COUNT]) -> (f64, f64) {
        let (mut lexical, mut feedback) = (0.0, 0.0);
        for (i, tf) in hits {
            let i = *i as usize;
            let Some(Some(idf)) = self.idf.get(i) else {
                continue;
            };
            let c = self.contribution(*idf, tf, len);
            if self.in_query[i] {
                lexical += c;
            }
            if self.feedback[i] > 0.0 {
                feedback += self.feedback[i] * c;
            }
        }
        (lexical, feedback)
    }

    /// The most the non-lexical terms can add to the score of any member of `cluster`.
    pub(crate) fn cluster_rest(&self, cluster: &ClusterSummary) -> f64 {
        self.rest_bound(
            cluster.embeddings > 0,
            cluster.max_recency_at,
            cluster.max_reward,
        )
    }

    /// The most query term `i` can add to the score of a document whose frequencies of it are
    /// at most `max_tf` and whose field lengths are at least `min_len` (0 for a term no
    /// searched document holds). Given one document's frequencies and lengths, it is what the
    /// term adds to that document's score, up to rounding (the weights are folded into one
    /// factor per channel, so the operations differ from the score's; pruning keeps a margin,
    /// `hierarchical::below`). Monotone in each frequency and each length, like the score.
    pub(crate) fn term_bound(
        &self,
        i: usize,
        max_tf: &FieldTf,
        min_len: &[u32; FIELD_COUNT],
    ) -> f64 {
        self.term(i).bound(max_tf, min_len)
    }

    /// [`Scorer::term_bound`] of query term `i`, with the term's factors looked up once.
    pub(crate) fn term(&self, i: usize) -> TermBound<'_> {
        TermBound {
            scorer: self,
            scale: self.term_scale.get(i).copied().unwrap_or_default(),
        }
    }

    /// The most the non-lexical terms (cosine, recency, reward) can add to the score of a
    /// document of a group whose latest recency instant is `max_recency_at` and largest
    /// reward `max_reward`, some member of which carries an embedding when `embeddings`.
    pub(crate) fn rest_bound(&self, embeddings: bool, max_recency_at: i64, max_reward: f64) -> f64 {
        let cosine = if self.query_vector.is_some() && embeddings {
            1.0
        } else {
            0.0
        };
        let rest = self.breakdown((0.0, 0.0), cosine, max_recency_at, max_reward);
        rest.cosine + rest.recency + rest.reward
    }

    /// At least what the non-lexical terms (cosine, recency, reward) add to the score of a
    /// document of key `key`, up to rounding; costs no `exp2`. Looser than the document's own
    /// by at most two days of recency and a reward step.
    #[inline]
    pub(crate) fn rest_of(&self, key: RestKey) -> f64 {
        let age = (self.today - key.day()).clamp(0, RECENCY_DAYS as i64 - 1);
        self.cosine_bound * f64::from(key.embedding())
            + self.recency_by_day[age as usize]
            + self.reward_per_step * f64::from(key.reward_steps())
    }

    /// A bound of the score of a document with `terms` whose non-lexical terms add at most
    /// `rest`, up to rounding (a relative error far below the pruning margin): `rest` plus the
    /// bounds of its query terms.
    pub(crate) fn quick_bound(
        &self,
        r: &Resolved,
        terms: impl IntoIterator<Item = Sym>,
        rest: f64,
    ) -> f64 {
        let mut sum = rest;
        for sym in terms {
            let q = r.query_term(sym);
            if q != 0 {
                sum += r.bounds.get(q as usize - 1).copied().unwrap_or(0.0);
            }
        }
        sum
    }

    /// The part of the score that does not depend on the non-lexical terms, plus the largest
    /// value those can take: an upper bound of `doc`'s total that costs no `exp2`.
    fn lexical_bound(&self, sums: (f64, f64)) -> f64 {
        let ratio = |sum: f64, max: f64| if max > 0.0 { sum / max } else { 0.0 };
        let cosine = if self.query_vector.is_some() {
            self.cosine_weight
        } else {
            0.0
        };
        self.lexical_weight * ratio(sums.0, self.lexical_max)
            + self.feedback_weight * ratio(sums.1, self.feedback_max)
            + cosine
            + self.recency_weight
            + self.reward_weight
    }

    fn breakdown(
        &self,
        sums: (f64, f64),
        cosine: f64,
        recency_at: i64,
        reward: f64,
    ) -> ScoreBreakdown {
        let ratio = |sum: f64, max: f64| if max > 0.0 { sum / max } else { 0.0 };
        let age = (self.now.saturating_sub(recency_at)).max(0) as f64;
        ScoreBreakdown {
            lexical: self.lexical_weight * ratio(sums.0, self.lexical_max),
            feedback: self.feedback_weight * ratio(sums.1, self.feedback_max),
            cosine: self.cosine_weight * cosine,
            recency: self.recency_weight * (-(age / self.half_life_micros)).exp2(),
            reward: self.reward_weight * reward.clamp(0.0, 1.0),
        }
    }

    /// The score of `doc`, of field lengths `len`, which holds the query terms `hits` (all of
    /// them, by query term index), unless an upper bound of it is `below` `threshold`: then `None`, without the
    /// costlier terms (recency's `exp2`, the cosine) computed.
    pub(crate) fn score_above(
        &self,
        doc: Doc<'_>,
        len: &[u32; FIELD_COUNT],
        hits: &[Hit],
        threshold: Option<f64>,
        below: impl Fn(f64, f64) -> bool,
    ) -> Option<ScoreBreakdown> {
        let sums = self.sums(hits, len);
        if let Some(t) = threshold
            && below(self.lexical_bound(sums), t)
        {
            return None;
        }
        Some(self.finish(doc, sums))
    }

    fn finish(&self, doc: Doc<'_>, sums: (f64, f64)) -> ScoreBreakdown {
        let cosine = match (&self.query_vector, doc.embedding()) {
            (Some((q, qn)), Some((d, dn))) if *qn > 0.0 && dn > 0.0 => {
                let dot: f64 = q
                    .iter()
                    .zip(d.iter())
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                (dot / (qn * dn)).clamp(0.0, 1.0)
            }
            _ => 0.0,
        };
        self.breakdown(sums, cosine, doc.recency_at(), doc.reward)
    }

    /// An upper bound of the score of every member of `cluster` (never below any member's
    /// [`ScoreBreakdown::total`], up to rounding).
    pub(crate) fn bound(&self, cluster: &ClusterSummary, r: &Resolved<'_>) -> f64 {
        r.lexical_bound + self.cluster_rest(cluster)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_found_once_in_one_field_adds_what_its_bound_says() {
        let terms = QueryTerms::of_text("lamp");
        let mut stats = CorpusStats::new(terms.len());
        stats.docs = 100;
        stats.field_len_total = [1_700, 300, 250, 100];
        stats.df = vec![7];
        let scorer = Scorer::new(
            &RetrievalConfig::default(),
            &terms,
            &stats,
            None,
            time::from_micros(0),
        );
        let term = scorer.term(0);
        for f in 0..FIELD_COUNT {
            for len in [1, 2, 17, 255, 256, 300, 70_000] {
                let mut lens = [3; FIELD_COUNT];
                lens[f] = len;
                for tf in [[1, 0, 0, 0], [2, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1]] {
                    let mut tf: FieldTf = tf;
                    tf.rotate_right(f);
                    let (one, bound) = (term.one(&tf, &lens), term.bound(&tf, &lens));
                    assert_eq!(
                        one.to_bits(),
                        bound.to_bits(),
                        "field {f}, length {len}, {tf:?}"
                    );
                    assert!(one > 0.0);
                }
            }
        }
    }

    #[test]
    fn a_rest_key_bounds_the_documents_own_non_lexical_terms() {
        const DAY: i64 = RestKey::DAY_MICROS;
        let now = 20_000 * DAY + 7 * 3_600_000_000;
        for half_life_days in [1.0 / 24.0, 30.0, 365.0 * 3.0] {
            let config = RetrievalConfig {
                recency_half_life: std::time::Duration::from_secs_f64(half_life_days * 86_400.0),
                ..RetrievalConfig::default()
            };
            for query_vector in [None, Some(&[1.0f32, 0.0][..])] {
                let scorer = Scorer::new(
                    &config,
                    &QueryTerms::of_text(""),
                    &CorpusStats::new(0),
                    query_vector,
                    time::from_micros(now),
                );
                for age in [
                    -DAY,
                    0,
                    1,
                    DAY - 1,
                    DAY,
                    3 * DAY + 17,
                    365 * DAY,
                    400 * DAY,
                    9_000 * DAY,
                ] {
                    for reward in [-1.0, 0.0, 0.25, 0.5, 1.0, 3.0] {
                        for embedding in [false, true] {
                            let at = now - age;
                            let doc = crate::index::IndexedEpisode::new(
                                &mut crate::index::DocHeap::default(),
                                crate::id::EpisodeId::new(),
                                1,
                                0,
                                std::iter::empty(),
                                std::iter::empty(),
                                None,
                                reward,
                                at,
                                None,
                                embedding.then_some(&[0.5f32, 0.5][..]),
                            );
                            let own = scorer.rest_bound(embedding, at, reward);
                            let bound = scorer.rest_of(RestKey::of(&doc));
                            let case = format!(
                                "half-life {half_life_days} d, age {age}, reward {reward}, {embedding}"
                            );
                            assert!(bound >= own * (1.0 - 1e-12), "{case}: {bound} < {own}");
                            if half_life_days == 30.0 {
                                // At most two days of recency and a reward step looser.
                                let slack = config.recency_weight * ((2.0f64 / 30.0).exp2() - 1.0)
                                    + config.reward_weight / 127.0;
                                assert!(bound - own <= slack + 1e-12, "{case}: {bound} - {own}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn idf_is_positive_and_falls_with_df() {
        assert!(idf(100, 1) > idf(100, 10));
        assert!(idf(100, 100) > 0.0);
    }

    #[test]
    fn feedback_terms_merge_sorted() {
        let q = QueryTerms::of_text("return the lamp");
        assert_eq!(q.text, vec!["lamp", "return"]);
        let f = q.with_feedback(&[("return".into(), 0.5), ("item".into(), 1.0)]);
        assert_eq!(f.text, vec!["item", "lamp", "return"]);
        assert_eq!(f.in_query, vec![false, true, true]);
        assert_eq!(f.feedback, vec![1.0, 0.0, 0.5]);
        assert_eq!(f.len(), 3);
    }
}
