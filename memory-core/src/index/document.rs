//! One episode as the index holds it: analyzed fields, filter attributes, optional vector.
//!
//! Owns the translation of an [`EpisodeSummary`] into index form, in two stages: a [`Draft`]
//! (strings, built and validated *outside* any lock, because analysis is the expensive part)
//! and an [`IndexedEpisode`] (strings replaced by the shard's interned ids, built under the
//! shard's write lock). This module must never keep the summary's step payloads or anything a
//! query does not read.

use std::collections::HashMap;

use crate::episode::{EpisodeSummary, OutcomeKind};
use crate::error::{Error, Result};
use crate::id::EpisodeId;
use crate::time;

use super::config::IndexConfig;
use super::fields::{FIELD_COUNT, Field};
use super::footprint;
use super::interner::{MAX_STRING_BYTES, Sym};
use super::tokenize;

/// Per-field term frequencies of one term in one document, saturating at 255: a term
/// repeated more often in one field counts as 255 occurrences (BM25's saturation makes the
/// difference tiny, and a byte per field keeps a posting at 8 bytes).
pub(crate) type FieldTf = [u8; FIELD_COUNT];

/// `wide` frequencies at [`FieldTf`]'s width.
pub(crate) fn narrow_tf(wide: &[u16; FIELD_COUNT]) -> FieldTf {
    wide.map(|t| u8::try_from(t).unwrap_or(u8::MAX))
}

/// A document's non-lexical scoring inputs rounded up into 4 bytes, kept per slot beside the
/// field lengths, so the lexical path can bound what recency, reward and the cosine add to a
/// document's score without reading the document: the recency instant in whole days since
/// the Unix epoch (24 bits: instants after the year 47,000 saturate), the reward clamped to
/// `[0, 1]` in 127ths (7 bits) and whether it carries an embedding (1 bit). Every rounding is
/// upward, so a bound from the key is never below the document's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RestKey(u32);

impl RestKey {
    /// Microseconds in the key's unit of time.
    pub(crate) const DAY_MICROS: i64 = 86_400_000_000;
    /// The largest day a key holds: a later instant is held as this day.
    pub(crate) const MAX_DAY: i64 = (1 << 24) - 1;
    /// Steps of the reward between 0 and 1.
    pub(crate) const REWARD_STEPS: u32 = 127;

    /// The key of `doc`.
    pub(crate) fn of(doc: &IndexedEpisode) -> Self {
        // Instants before 1970 round up to 1970.
        let micros = u64::try_from(doc.recency_at()).unwrap_or(0);
        let day = micros
            .div_ceil(Self::DAY_MICROS as u64)
            .min(Self::MAX_DAY as u64) as u32;
        let reward = doc.reward.clamp(0.0, 1.0);
        let steps = f64::from(Self::REWARD_STEPS);
        let mut reward_steps = (reward * steps).ceil() as u32;
        if f64::from(reward_steps) / steps < reward {
            reward_steps += 1;
        }
        let reward_steps = reward_steps.min(Self::REWARD_STEPS);
        Self(day << 8 | reward_steps << 1 | u32::from(doc.embedding().is_some()))
    }

    /// The recency instant in days since the Unix epoch, at least the document's (unless it
    /// saturated at [`RestKey::MAX_DAY`]).
    pub(crate) fn day(self) -> i64 {
        i64::from(self.0 >> 8)
    }

    /// The reward in [`RestKey::REWARD_STEPS`]ths of 1, at least the document's clamped
    /// reward.
    pub(crate) fn reward_steps(self) -> u32 {
        (self.0 >> 1) & 0x7f
    }

    /// 1 when the document carries an embedding, else 0.
    pub(crate) fn embedding(self) -> u32 {
        self.0 & 1
    }
}

/// Per-field lengths as a shard keeps them: a field counts at most `u16::MAX` tokens (the
/// default input limits keep every field far below it; a longer field scores as that long).
pub(crate) type FieldLen = [u16; FIELD_COUNT];

/// `wide` lengths at [`FieldLen`]'s width.
pub(crate) fn narrow_len(wide: &[u32; FIELD_COUNT]) -> FieldLen {
    wide.map(|l| u16::try_from(l).unwrap_or(u16::MAX))
}

/// An analyzed summary, not yet attached to a shard.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub(crate) id: EpisodeId,
    pub(crate) version: u64,
    pub(crate) namespace: String,
    pub(crate) domain: String,
    pub(crate) task_type: String,
    /// Distinct tags, sorted.
    pub(crate) tags: Vec<String>,
    /// Distinct terms with their per-field frequencies, sorted by term.
    pub(crate) terms: Vec<(String, FieldTf)>,
    pub(crate) field_len: [u32; FIELD_COUNT],
    pub(crate) outcome: Option<OutcomeKind>,
    pub(crate) reward: f64,
    pub(crate) started_at: i64,
    pub(crate) completed_at: Option<i64>,
    pub(crate) embedding: Option<Box<[f32]>>,
}

impl Draft {
    /// Analyze and validate `s`. Fails (`InvalidInput`) on a non-finite reward, an embedding
    /// when none is configured, or an embedding of the wrong dimension or with a non-finite
    /// component.
    pub(crate) fn from_summary(s: &EpisodeSummary, config: &IndexConfig) -> Result<Self> {
        if !s.reward.is_finite() {
            return Err(Error::invalid(
                "summary.reward",
                "a finite number",
                s.reward.to_string(),
            ));
        }
        let embedding = match (&s.embedding, config.embedding_dimension) {
            (None, _) => None,
            (Some(e), None) => {
                return Err(Error::invalid(
                    "summary.embedding",
                    "no embedding: the index has no embedding dimension configured",
                    format!("{} components", e.len()),
                ));
            }
            (Some(e), Some(dim)) => {
                check_vector("summary.embedding", e, dim)?;
                Some(e.clone().into_boxed_slice())
            }
        };

        if let Some(i) = s
            .context
            .tags
            .iter()
            .position(|t| t.len() > MAX_STRING_BYTES)
        {
            return Err(Error::invalid(
                format!("summary.context.tags[{i}]"),
                format!("at most {MAX_STRING_BYTES} bytes"),
                format!("{} bytes", s.context.tags[i].len()),
            ));
        }
        let mut tags = s.context.tags.clone();
        tags.sort_unstable();
        tags.dedup();

        let mut tf: HashMap<String, FieldTf> = HashMap::new();
        let mut field_len = [0u32; FIELD_COUNT];
        let mut add = |field: Field, text: &str| {
            for term in tokenize::terms(text) {
                let slot = &mut tf.entry(term).or_insert([0; FIELD_COUNT])[field.index()];
                *slot = slot.saturating_add(1);
                field_len[field.index()] = field_len[field.index()].saturating_add(1);
            }
        };
        add(Field::Description, &s.description);
        for tag in &tags {
            add(Field::Tags, tag);
        }
        for tool in &s.tools {
            add(Field::Tools, tool);
        }
        add(Field::TaskType, &s.context.task_type);
        let mut terms: Vec<(String, FieldTf)> = tf.into_iter().collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        Ok(Self {
            id: s.id,
            version: s.version,
            namespace: s.context.namespace.clone(),
            domain: s.context.domain.clone(),
            task_type: s.context.task_type.clone(),
            tags,
            terms,
            field_len,
            outcome: s.outcome,
            reward: s.reward,
            started_at: time::to_micros(s.started_at),
            completed_at: s.completed_at.map(time::to_micros),
            embedding,
        })
    }
}

/// Check a vector: exactly `dim` finite components.
pub(crate) fn check_vector(field: &str, v: &[f32], dim: usize) -> Result<()> {
    if v.len() != dim {
        return Err(Error::invalid(
            field,
            format!("exactly {dim} components"),
            format!("{} components", v.len()),
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(
            format!("{field}[{i}]"),
            "a finite number",
            v[i].to_string(),
        ));
    }
    Ok(())
}

/// The Euclidean norm of `v`, accumulated in `f64`.
pub(crate) fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt()
}

/// An episode inside a shard. Ids (`Sym`) refer to that shard's interners.
///
/// Kept small (80 bytes, one heap block for its ids, one more only with a vector): a shard
/// holds one per episode. The ids are delta-coded (LEB128, so a few bytes each instead of
/// four): every reader walks them in order, and none needs one at random.
#[derive(Debug, Clone)]
pub(crate) struct IndexedEpisode {
    pub(crate) id: EpisodeId,
    pub(crate) version: u64,
    /// The task type's id in the shard's task-type interner.
    pub(crate) task_type: Sym,
    /// How many bytes the tag ids take (LEB128), then the distinct tag ids, ascending, then
    /// the distinct term ids, ascending, each run delta-coded from 0 ([`Ids`]; the
    /// frequencies are in the shard's posting lists, the field lengths in its length column).
    ids: Box<[u8]>,
    pub(crate) outcome: Option<OutcomeKind>,
    pub(crate) reward: f64,
    /// `started_at` in microseconds since the epoch.
    pub(crate) started_at: i64,
    /// `completed_at` in microseconds since the epoch, or [`IN_PROGRESS`].
    completed_at: i64,
    embedding: Option<Box<Vector>>,
}

/// Append `n` to `out` in LEB128: seven bits a byte, the high bit set on every byte but the
/// last.
fn push_leb128(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The number [`push_leb128`] wrote at the start of `bytes`, and the bytes after it.
fn split_leb128(bytes: &[u8]) -> (u32, &[u8]) {
    let mut n = 0;
    for (i, b) in bytes.iter().enumerate() {
        n |= u32::from(b & 0x7f) << (7 * i);
        if *b < 0x80 {
            return (n, &bytes[i + 1..]);
        }
    }
    (n, &[])
}

/// Append `ids` (ascending) to `out`, each as its difference from the one before (the first
/// from 0) in LEB128.
fn encode(out: &mut Vec<u8>, ids: impl IntoIterator<Item = Sym>) {
    let mut prev = 0;
    for id in ids {
        push_leb128(out, id - prev);
        prev = id;
    }
}

/// Ids coded by [`encode`], decoded in order.
#[derive(Debug, Clone)]
pub(crate) struct Ids<'a> {
    bytes: &'a [u8],
    prev: Sym,
}

impl<'a> Ids<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, prev: 0 }
    }

    /// How many ids are left (one byte below 0x80 ends each).
    fn count_left(&self) -> usize {
        self.bytes.iter().filter(|b| **b < 0x80).count()
    }
}

impl Iterator for Ids<'_> {
    type Item = Sym;

    #[inline]
    fn next(&mut self) -> Option<Sym> {
        let mut delta: Sym = 0;
        let mut shift = 0;
        loop {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            delta |= Sym::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        self.prev += delta;
        Some(self.prev)
    }
}

/// `completed_at` of an episode in progress: below any instant a timestamp can hold.
const IN_PROGRESS: i64 = i64::MIN;

/// A caller's embedding with its norm.
#[derive(Debug, Clone)]
struct Vector {
    values: Box<[f32]>,
    norm: f64,
}

impl IndexedEpisode {
    /// A document of `terms` and `tags` (each distinct and ascending).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: EpisodeId,
        version: u64,
        task_type: Sym,
        terms: impl IntoIterator<Item = Sym>,
        tags: impl IntoIterator<Item = Sym>,
        outcome: Option<OutcomeKind>,
        reward: f64,
        started_at: i64,
        completed_at: Option<i64>,
        embedding: Option<Box<[f32]>>,
    ) -> Self {
        let mut tag_ids = Vec::new();
        encode(&mut tag_ids, tags);
        // A document's ids take far fewer than 4 GiB: a tag costs far more to analyze.
        let tag_bytes = u32::try_from(tag_ids.len()).expect("tag ids under 4 GiB");
        let mut ids = Vec::with_capacity(tag_ids.len() + 8);
        push_leb128(&mut ids, tag_bytes);
        ids.extend_from_slice(&tag_ids);
        encode(&mut ids, terms);
        Self {
            id,
            version,
            task_type,
            ids: ids.into_boxed_slice(),
            outcome,
            reward,
            started_at,
            completed_at: completed_at.map_or(IN_PROGRESS, |t| t.max(IN_PROGRESS + 1)),
            embedding: embedding.map(|values| {
                Box::new(Vector {
                    norm: norm(&values),
                    values,
                })
            }),
        }
    }

    /// The coded tag ids and the coded term ids.
    fn runs(&self) -> (&[u8], &[u8]) {
        let (tag_bytes, rest) = split_leb128(&self.ids);
        rest.split_at((tag_bytes as usize).min(rest.len()))
    }

    /// Distinct term ids, ascending.
    pub(crate) fn terms(&self) -> Ids<'_> {
        Ids::new(self.runs().1)
    }

    /// How many distinct terms.
    pub(crate) fn term_count(&self) -> usize {
        self.terms().count_left()
    }

    /// Distinct tag ids, ascending.
    pub(crate) fn tags(&self) -> Ids<'_> {
        Ids::new(self.runs().0)
    }

    /// `completed_at` in microseconds since the epoch, if completed.
    pub(crate) fn completed_at(&self) -> Option<i64> {
        (self.completed_at != IN_PROGRESS).then_some(self.completed_at)
    }

    /// The instant recency is measured from: completion, or start while in progress.
    pub(crate) fn recency_at(&self) -> i64 {
        self.completed_at().unwrap_or(self.started_at)
    }

    /// The embedding with its norm, if the document carries one.
    pub(crate) fn embedding(&self) -> Option<(&[f32], f64)> {
        self.embedding.as_deref().map(|v| (&*v.values, v.norm))
    }

    /// Whether the document carries tag `sym`.
    pub(crate) fn has_tag(&self, sym: Sym) -> bool {
        self.tags().take_while(|t| *t <= sym).any(|t| t == sym)
    }

    /// Heap bytes owned by this document.
    pub(crate) fn heap_bytes(&self) -> usize {
        footprint::vec::<u8>(self.ids.len())
            + self.embedding.as_ref().map_or(0, |v| {
                std::mem::size_of::<Vector>() + footprint::vec::<f32>(v.values.len())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episode::TaskContext;

    fn summary() -> EpisodeSummary {
        EpisodeSummary {
            id: EpisodeId::new(),
            version: 3,
            context: TaskContext::new("ns", "retail", "return_delivered_order_items")
                .with_tags(["get_order_details", "get_order_details"]),
            description: "Return the lamp; return it today".into(),
            tools: vec!["get_order_details".into()],
            step_count: 1,
            successful_steps: 1,
            outcome: Some(OutcomeKind::Success),
            reward: 1.0,
            embedding: None,
            started_at: time::now(),
            completed_at: None,
        }
    }

    fn doc_at(recency_at: i64, reward: f64, embedding: bool) -> IndexedEpisode {
        IndexedEpisode::new(
            EpisodeId::new(),
            1,
            0,
            [],
            [],
            None,
            reward,
            recency_at,
            None,
            embedding.then(|| vec![1.0f32, 0.0].into_boxed_slice()),
        )
    }

    #[test]
    fn a_rest_key_rounds_every_input_up_by_less_than_a_step() {
        let day = RestKey::DAY_MICROS;
        for at in [
            -5 * day,
            -1,
            0,
            1,
            day - 1,
            day,
            day + 1,
            20_000 * day + 12_345,
            RestKey::MAX_DAY * day - 1,
        ] {
            let key = RestKey::of(&doc_at(at, 0.0, false));
            let held = key.day() * day;
            assert!(held >= at, "{at}: {held}");
            assert!(held - at.max(0) < day, "{at}: {held}");
        }
        // Later instants saturate, never wrap.
        let key = RestKey::of(&doc_at(i64::MAX, 0.0, false));
        assert_eq!(key.day(), RestKey::MAX_DAY);
        let steps = f64::from(RestKey::REWARD_STEPS);
        for reward in [
            -3.0,
            -0.0,
            0.0,
            1e-12,
            0.3,
            1.0 / 127.0,
            0.5,
            0.999_999,
            1.0,
            7.5,
        ] {
            let key = RestKey::of(&doc_at(0, reward, false));
            let held = f64::from(key.reward_steps()) / steps;
            let clamped: f64 = reward.clamp(0.0, 1.0);
            assert!(held >= clamped, "{reward}: {held}");
            assert!(held - clamped <= 1.0 / steps, "{reward}: {held}");
        }
        assert_eq!(RestKey::of(&doc_at(0, 1.0, true)).embedding(), 1);
        assert_eq!(RestKey::of(&doc_at(0, 1.0, false)).embedding(), 0);
    }

    #[test]
    fn fields_are_counted_separately() {
        let d = Draft::from_summary(&summary(), &IndexConfig::default()).unwrap();
        let ret = d.terms.iter().find(|(t, _)| t == "return").unwrap().1;
        assert_eq!(ret, [2, 0, 0, 1]);
        let order = d.terms.iter().find(|(t, _)| t == "order").unwrap().1;
        assert_eq!(order, [0, 1, 1, 1]);
        assert_eq!(d.field_len, [4, 3, 3, 4]);
        assert_eq!(d.tags, vec!["get_order_details"]);
        assert!(d.terms.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn frequencies_saturate_at_a_byte_and_lengths_do_not() {
        let mut s = summary();
        s.description = "lamp ".repeat(300);
        let d = Draft::from_summary(&s, &IndexConfig::default()).unwrap();
        let lamp = d.terms.iter().find(|(t, _)| t == "lamp").unwrap().1;
        assert_eq!(lamp[Field::Description.index()], u8::MAX);
        assert_eq!(d.field_len[Field::Description.index()], 300);
        assert_eq!(narrow_tf(&[0, 1, 255, 256]), [0, 1, 255, 255]);
    }

    #[test]
    fn a_document_keeps_its_ids_times_and_vector_in_80_bytes() {
        let doc = |completed_at, embedding| {
            IndexedEpisode::new(
                EpisodeId::new(),
                1,
                0,
                [1, 4, 9],
                [2, 3],
                None,
                0.5,
                -7,
                completed_at,
                embedding,
            )
        };
        let d = doc(None, Some(vec![3.0, 4.0].into_boxed_slice()));
        assert_eq!(d.terms().collect::<Vec<_>>(), [1, 4, 9]);
        assert_eq!(d.term_count(), 3);
        assert_eq!(d.tags().collect::<Vec<_>>(), [2, 3]);
        assert!(d.has_tag(3) && !d.has_tag(4));
        assert_eq!(d.completed_at(), None);
        assert_eq!(d.recency_at(), -7);
        assert_eq!(d.embedding(), Some((&[3.0f32, 4.0][..], 5.0)));
        let d = doc(Some(i64::MIN + 5), None);
        assert_eq!(d.completed_at(), Some(i64::MIN + 5));
        assert_eq!(d.embedding(), None);
        assert!(std::mem::size_of::<Option<IndexedEpisode>>() <= 80);
    }

    #[test]
    fn ids_round_trip_through_their_coding_at_every_width() {
        let terms: Vec<Sym> = vec![0, 1, 127, 128, 255, 16_383, 16_384, 2_097_152, u32::MAX];
        let doc = |tags: &[Sym]| {
            IndexedEpisode::new(
                EpisodeId::new(),
                1,
                0,
                terms.iter().copied(),
                tags.iter().copied(),
                None,
                0.0,
                0,
                None,
                None,
            )
        };
        let tags: Vec<Sym> = vec![5, 300, 70_000];
        let d = doc(&tags);
        assert_eq!(d.terms().collect::<Vec<_>>(), terms);
        assert_eq!(d.term_count(), terms.len());
        assert_eq!(d.tags().collect::<Vec<_>>(), tags);
        assert!(d.has_tag(300) && d.has_tag(70_000) && !d.has_tag(0) && !d.has_tag(299));
        // Seven bits a byte of each gap: one byte per gap below 128, five for the widest,
        // after one byte saying how many the tags take.
        assert_eq!(
            d.ids.len(),
            1 + (1 + 2 + 3) + (1 + 1 + 1 + 1 + 1 + 2 + 1 + 3 + 5)
        );
        // Tags taking more than 127 bytes: two bytes say so.
        let tags: Vec<Sym> = (0..100).map(|i| i * 200).collect();
        let d = doc(&tags);
        assert_eq!(d.tags().collect::<Vec<_>>(), tags);
        assert_eq!(d.terms().collect::<Vec<_>>(), terms);
        assert_eq!(d.ids.len(), 2 + (1 + 99 * 2) + 16);
    }

    #[test]
    fn invalid_rewards_and_embeddings_are_refused() {
        let mut s = summary();
        s.reward = f64::NAN;
        assert!(Draft::from_summary(&s, &IndexConfig::default()).is_err());
        let mut s = summary();
        s.embedding = Some(vec![1.0, 0.0]);
        assert!(Draft::from_summary(&s, &IndexConfig::default()).is_err());
        let cfg = IndexConfig {
            embedding_dimension: Some(3),
            ..IndexConfig::default()
        };
        assert!(Draft::from_summary(&s, &cfg).is_err());
        s.embedding = Some(vec![1.0, 0.0, f32::INFINITY]);
        assert!(Draft::from_summary(&s, &cfg).is_err());
        s.embedding = Some(vec![1.0, 0.0, 0.0]);
        assert!(Draft::from_summary(&s, &cfg).is_ok());
    }
}
