//! One episode as the index holds it: analyzed fields, filter attributes, optional vector.
//!
//! Owns the translation of an [`EpisodeSummary`] into index form, in two stages: a [`Draft`]
//! (strings, built and validated *outside* any lock, because analysis is the expensive part)
//! and an [`IndexedEpisode`] (strings replaced by the shard's interned ids, built under the
//! shard's write lock). This module must never keep the summary's step payloads or anything a
//! query does not read.

use std::collections::HashMap;
use std::num::NonZeroU32;

use crate::episode::{EpisodeSummary, OutcomeKind};
use crate::error::{Error, Result};
use crate::id::EpisodeId;
use crate::time;

use super::config::IndexConfig;
use super::fields::{FIELD_COUNT, Field};
use super::footprint;
use super::interner::{MAX_STRING_BYTES, Sym};
use super::postings::MAX_SLOTS;
use super::tokenize;

/// Per-field term frequencies of one term in one document, saturating at 255: a term
/// repeated more often in one field counts as 255 occurrences (BM25's saturation makes the
/// difference tiny).
pub(crate) type FieldTf = [u8; FIELD_COUNT];

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
        Self(day << 8 | reward_steps << 1 | u32::from(doc.has_embedding()))
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
/// Kept to 64 bytes, with no heap block of its own: a shard holds one per
/// episode. Its tag and term ids and its vector are in the shard's [`DocHeap`]; read them
/// through a [`Doc`].
#[derive(Debug, Clone)]
pub(crate) struct IndexedEpisode {
    pub(crate) id: EpisodeId,
    pub(crate) version: u64,
    pub(crate) reward: f64,
    /// `started_at` in microseconds since the epoch.
    pub(crate) started_at: i64,
    /// `completed_at` in microseconds since the epoch, or [`IN_PROGRESS`].
    completed_at: i64,
    /// Where the document's id block begins in the shard's [`DocHeap`].
    ids_at: usize,
    /// The task type's id in the shard's task-type interner (the low 24 bits: a shard's ids
    /// stay below its [`MAX_SLOTS`] documents) and the outcome (the high 8, [`outcome_code`]).
    /// Never 0, which leaves `Option<IndexedEpisode>` the same size.
    kind: NonZeroU32,
    /// The row of its vector in the shard's [`DocHeap`], or [`NO_VECTOR`].
    vector: u32,
}

/// [`IndexedEpisode::vector`] of a document without one.
const NO_VECTOR: u32 = u32::MAX;

/// The task-type bits of [`IndexedEpisode::kind`].
const TASK_TYPE_BITS: u32 = 24;

/// An outcome as the high byte of [`IndexedEpisode::kind`] (never 0).
fn outcome_code(outcome: Option<OutcomeKind>) -> u32 {
    match outcome {
        None => 1,
        Some(OutcomeKind::Success) => 2,
        Some(OutcomeKind::Partial) => 3,
        Some(OutcomeKind::Failure) => 4,
    }
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

/// The number [`push_leb128`] wrote at `bytes[*at..]`; moves `at` past it.
fn read_leb128(bytes: &[u8], at: &mut usize) -> usize {
    let mut n = 0;
    let mut shift = 0;
    while let Some(b) = bytes.get(*at) {
        *at += 1;
        n |= usize::from(b & 0x7f) << shift;
        if *b < 0x80 {
            break;
        }
        shift += 7;
    }
    n
}

/// How many bytes [`push_leb128`] writes for `n`.
fn leb128_len(n: u32) -> usize {
    (32 - n.max(1).leading_zeros()).div_ceil(7) as usize
}

/// How many bytes [`encode`] writes for `ids`.
fn encoded_len(ids: impl Iterator<Item = Sym>) -> usize {
    let mut prev = 0;
    ids.map(|id| {
        let n = leb128_len(id - prev);
        prev = id;
        n
    })
    .sum()
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

impl IndexedEpisode {
    /// A document whose tags and terms (each distinct and ascending) and vector `heap` holds
    /// from now on. `task_type` is below [`MAX_SLOTS`] (a shard's interner ids are).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        heap: &mut DocHeap,
        id: EpisodeId,
        version: u64,
        task_type: Sym,
        terms: impl Iterator<Item = Sym> + Clone,
        tags: impl Iterator<Item = Sym> + Clone,
        outcome: Option<OutcomeKind>,
        reward: f64,
        started_at: i64,
        completed_at: Option<i64>,
        embedding: Option<&[f32]>,
    ) -> Self {
        debug_assert!((task_type as usize) < MAX_SLOTS, "task type {task_type}");
        Self {
            id,
            version,
            reward,
            started_at,
            completed_at: completed_at.map_or(IN_PROGRESS, |t| t.max(IN_PROGRESS + 1)),
            ids_at: heap.add_ids(tags, terms),
            kind: NonZeroU32::new(
                task_type & ((1 << TASK_TYPE_BITS) - 1) | outcome_code(outcome) << TASK_TYPE_BITS,
            )
            .expect("an outcome code is never 0"),
            vector: embedding.map_or(NO_VECTOR, |v| heap.add_vector(v)),
        }
    }

    /// The task type's id in the shard's task-type interner.
    pub(crate) fn task_type(&self) -> Sym {
        self.kind.get() & ((1 << TASK_TYPE_BITS) - 1)
    }

    /// The outcome, if completed.
    pub(crate) fn outcome(&self) -> Option<OutcomeKind> {
        match self.kind.get() >> TASK_TYPE_BITS {
            2 => Some(OutcomeKind::Success),
            3 => Some(OutcomeKind::Partial),
            4 => Some(OutcomeKind::Failure),
            _ => None,
        }
    }

    /// `completed_at` in microseconds since the epoch, if completed.
    pub(crate) fn completed_at(&self) -> Option<i64> {
        (self.completed_at != IN_PROGRESS).then_some(self.completed_at)
    }

    /// The instant recency is measured from: completion, or start while in progress.
    pub(crate) fn recency_at(&self) -> i64 {
        self.completed_at().unwrap_or(self.started_at)
    }

    /// Whether the document carries an embedding.
    pub(crate) fn has_embedding(&self) -> bool {
        self.vector != NO_VECTOR
    }
}

/// What the documents of a shard keep outside their 64-byte slots, in a few large vectors
/// instead of a heap block or two each: a million documents are then a few allocations rather
/// than a million or two small ones (each with its allocator header, and freed one by one
/// among live ones when a shard is dropped).
///
/// The tag and term ids: a block per document, end to end, the byte lengths of its two runs
/// (LEB128), then the distinct tag ids, ascending, then the distinct term ids, ascending,
/// each run delta-coded from 0 ([`Ids`]; the frequencies are in the shard's posting lists,
/// the field lengths in its length column). A removed document's block stays, dead, until dead
/// bytes outweigh live ones and [`DocHeap::compact`] rewrites the vector.
///
/// The vectors: a row of the configured dimension per document carrying one, and its norm;
/// a removed document's row is reused by the next.
#[derive(Debug, Default)]
pub(crate) struct DocHeap {
    ids: Vec<u8>,
    /// Bytes of `ids` no document's block covers.
    dead: usize,
    /// Components of every row (the rows' length is the first vector's).
    values: Vec<f32>,
    dimension: usize,
    /// Per row, its vector's Euclidean norm.
    norms: Vec<f64>,
    /// Rows no document holds.
    free_rows: Vec<u32>,
}

impl DocHeap {
    /// Dead bytes are rewritten away once they pass this many and the live ones.
    const COMPACT_FROM: usize = 4_096;

    /// Room for about `docs` more id blocks of `ids` ids in all.
    pub(crate) fn reserve(&mut self, docs: usize, ids: usize) {
        // Two header bytes and at least a byte an id; most gaps take one or two.
        self.ids.reserve_exact(2 * docs + ids + ids / 4);
    }

    /// Append the block of `tags` and `terms`; returns where it begins.
    fn add_ids(
        &mut self,
        tags: impl Iterator<Item = Sym> + Clone,
        terms: impl Iterator<Item = Sym> + Clone,
    ) -> usize {
        // A document's ids take far fewer than 4 GiB: they cost far more to analyze.
        fn run(ids: impl Iterator<Item = Sym>) -> u32 {
            u32::try_from(encoded_len(ids)).expect("a document's ids under 4 GiB")
        }
        let (tag_bytes, term_bytes) = (run(tags.clone()), run(terms.clone()));
        let need = leb128_len(tag_bytes)
            + leb128_len(term_bytes)
            + tag_bytes as usize
            + term_bytes as usize;
        if self.ids.capacity() - self.ids.len() < need {
            // Grown by an eighth, as the index's other long-lived vectors.
            self.ids.reserve_exact(need.max(self.ids.len() / 8).max(64));
        }
        let at = self.ids.len();
        push_leb128(&mut self.ids, tag_bytes);
        push_leb128(&mut self.ids, term_bytes);
        encode(&mut self.ids, tags);
        encode(&mut self.ids, terms);
        at
    }

    /// Keep `v`; returns its row.
    fn add_vector(&mut self, v: &[f32]) -> u32 {
        if self.norms.len() == self.free_rows.len() {
            // No row held: the rows take this vector's length.
            self.dimension = v.len();
        }
        debug_assert_eq!(v.len(), self.dimension, "one dimension per index");
        match self.free_rows.pop() {
            Some(row) => {
                let at = row as usize * self.dimension;
                self.values[at..at + self.dimension].copy_from_slice(v);
                self.norms[row as usize] = norm(v);
                row
            }
            None => {
                footprint::reserve_one(&mut self.norms);
                self.norms.push(norm(v));
                if self.values.capacity() - self.values.len() < v.len() {
                    self.values
                        .reserve_exact((self.values.len() / 8).max(4 * v.len()));
                }
                self.values.extend_from_slice(v);
                // Rows are at most the documents, under 2^24.
                (self.norms.len() - 1) as u32
            }
        }
    }

    /// The coded tag ids and the coded term ids of the block at `at`, and where it ends.
    fn runs(&self, at: usize) -> (&[u8], &[u8], usize) {
        let mut from = at;
        let tag_bytes = read_leb128(&self.ids, &mut from);
        let term_bytes = read_leb128(&self.ids, &mut from);
        let tags_end = (from + tag_bytes).min(self.ids.len());
        let end = (tags_end + term_bytes).min(self.ids.len());
        (&self.ids[from..tags_end], &self.ids[tags_end..end], end)
    }

    /// `doc` (whose ids and vector this holds) with them.
    pub(crate) fn view<'a>(&'a self, doc: &'a IndexedEpisode) -> Doc<'a> {
        Doc { doc, heap: self }
    }

    /// The bytes of `doc`'s id block.
    pub(crate) fn block_len(&self, doc: &IndexedEpisode) -> usize {
        self.runs(doc.ids_at).2 - doc.ids_at
    }

    /// The bytes `doc` takes here: its id block and its vector's row.
    pub(crate) fn cost(&self, doc: &IndexedEpisode) -> usize {
        let row = std::mem::size_of::<f32>() * self.dimension + std::mem::size_of::<f64>();
        self.block_len(doc) + if doc.has_embedding() { row } else { 0 }
    }

    /// Forget `doc`'s ids and vector (its document is gone); returns whether dead id bytes now
    /// outweigh live ones enough for [`DocHeap::compact`].
    pub(crate) fn release(&mut self, doc: &IndexedEpisode) -> bool {
        if doc.has_embedding() {
            footprint::reserve_one(&mut self.free_rows);
            self.free_rows.push(doc.vector);
        }
        self.dead += self.block_len(doc);
        self.dead > Self::COMPACT_FROM && self.dead > self.ids.len() - self.dead
    }

    /// Rewrite the blocks of `docs` (every live document of the shard) end to end, without the
    /// dead bytes, and point each document at its block's new place.
    pub(crate) fn compact<'a>(&mut self, docs: impl Iterator<Item = &'a mut IndexedEpisode>) {
        let live = self.ids.len() - self.dead;
        let mut ids = Vec::with_capacity(live + live / 8);
        for doc in docs {
            let end = self.runs(doc.ids_at).2;
            let at = ids.len();
            ids.extend_from_slice(&self.ids[doc.ids_at..end]);
            doc.ids_at = at;
        }
        self.ids = ids;
        self.dead = 0;
    }

    /// Heap bytes (the vectors' capacities).
    pub(crate) fn heap_bytes(&self) -> usize {
        footprint::vec::<u8>(self.ids.capacity())
            + footprint::vec::<f32>(self.values.capacity())
            + footprint::vec::<f64>(self.norms.capacity())
            + footprint::vec::<u32>(self.free_rows.capacity())
    }
}

/// A document with the shard's [`DocHeap`], to read its ids and vector (only when asked: most
/// documents a query meets are filtered out or bounded out on their own fields). Derefs to
/// the document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Doc<'a> {
    doc: &'a IndexedEpisode,
    heap: &'a DocHeap,
}

impl std::ops::Deref for Doc<'_> {
    type Target = IndexedEpisode;

    fn deref(&self) -> &IndexedEpisode {
        self.doc
    }
}

impl<'a> Doc<'a> {
    /// Distinct term ids, ascending.
    pub(crate) fn terms(self) -> Ids<'a> {
        Ids::new(self.heap.runs(self.doc.ids_at).1)
    }

    /// How many distinct terms.
    pub(crate) fn term_count(self) -> usize {
        self.terms().count_left()
    }

    /// Distinct tag ids, ascending.
    pub(crate) fn tags(self) -> Ids<'a> {
        Ids::new(self.heap.runs(self.doc.ids_at).0)
    }

    /// Whether the document carries tag `sym`.
    pub(crate) fn has_tag(self, sym: Sym) -> bool {
        self.tags().take_while(|t| *t <= sym).any(|t| t == sym)
    }

    /// The embedding with its norm, if the document carries one.
    pub(crate) fn embedding(self) -> Option<(&'a [f32], f64)> {
        let (heap, row) = (self.heap, self.doc.vector as usize);
        self.doc.has_embedding().then(|| {
            let at = row * heap.dimension;
            (&heap.values[at..at + heap.dimension], heap.norms[row])
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
            &mut DocHeap::default(),
            EpisodeId::new(),
            1,
            0,
            std::iter::empty(),
            std::iter::empty(),
            None,
            reward,
            recency_at,
            None,
            embedding.then_some(&[1.0f32, 0.0][..]),
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
    }

    #[test]
    fn a_document_keeps_its_times_in_64_bytes_and_its_ids_and_vector_in_the_heap() {
        let mut heap = DocHeap::default();
        let doc = |heap: &mut DocHeap, completed_at, outcome, embedding| {
            IndexedEpisode::new(
                heap,
                EpisodeId::new(),
                1,
                (1 << 24) - 1,
                [1, 4, 9].into_iter(),
                [2, 3].into_iter(),
                outcome,
                0.5,
                -7,
                completed_at,
                embedding,
            )
        };
        let d = doc(&mut heap, None, None, Some(&[3.0, 4.0][..]));
        let e = doc(
            &mut heap,
            Some(i64::MIN + 5),
            Some(OutcomeKind::Failure),
            None,
        );
        let f = doc(
            &mut heap,
            Some(9),
            Some(OutcomeKind::Partial),
            Some(&[0.0, 2.0][..]),
        );
        let v = heap.view(&d);
        assert_eq!(v.terms().collect::<Vec<_>>(), [1, 4, 9]);
        assert_eq!(v.term_count(), 3);
        assert_eq!(v.tags().collect::<Vec<_>>(), [2, 3]);
        assert!(v.has_tag(3) && !v.has_tag(4));
        assert_eq!(d.completed_at(), None);
        assert_eq!(d.recency_at(), -7);
        assert_eq!((d.task_type(), d.outcome()), ((1 << 24) - 1, None));
        assert_eq!(v.embedding(), Some((&[3.0f32, 4.0][..], 5.0)));
        assert_eq!(e.completed_at(), Some(i64::MIN + 5));
        assert_eq!(e.outcome(), Some(OutcomeKind::Failure));
        assert_eq!(heap.view(&e).embedding(), None);
        assert_eq!(heap.view(&e).terms().collect::<Vec<_>>(), [1, 4, 9]);
        assert_eq!(f.outcome(), Some(OutcomeKind::Partial));
        assert_eq!(heap.view(&f).embedding(), Some((&[0.0f32, 2.0][..], 2.0)));
        // A released row is the next vector's.
        heap.release(&d);
        let g = doc(
            &mut heap,
            None,
            Some(OutcomeKind::Success),
            Some(&[6.0, 8.0][..]),
        );
        assert_eq!(g.vector, d.vector);
        assert_eq!(g.outcome(), Some(OutcomeKind::Success));
        assert_eq!(heap.view(&g).embedding(), Some((&[6.0f32, 8.0][..], 10.0)));
        assert_eq!(heap.view(&f).embedding(), Some((&[0.0f32, 2.0][..], 2.0)));
        assert_eq!(std::mem::size_of::<Option<IndexedEpisode>>(), 64);
    }

    #[test]
    fn ids_round_trip_through_their_coding_at_every_width() {
        let terms: Vec<Sym> = vec![0, 1, 127, 128, 255, 16_383, 16_384, 2_097_152, u32::MAX];
        let mut blocks = DocHeap::default();
        let mut doc = |tags: &[Sym]| {
            IndexedEpisode::new(
                &mut blocks,
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
        let a = doc(&tags);
        // Tags taking more than 127 bytes: two bytes say so.
        let wide: Vec<Sym> = (0..100).map(|i| i * 200).collect();
        let b = doc(&wide);
        let (a, b) = (blocks.view(&a), blocks.view(&b));
        assert_eq!(a.terms().collect::<Vec<_>>(), terms);
        assert_eq!(a.term_count(), terms.len());
        assert_eq!(a.tags().collect::<Vec<_>>(), tags);
        assert!(a.has_tag(300) && a.has_tag(70_000) && !a.has_tag(0) && !a.has_tag(299));
        // Seven bits a byte of each gap: one byte per gap below 128, five for the widest,
        // after a byte for each run's length.
        let term_bytes = 1 + 1 + 1 + 1 + 1 + 2 + 1 + 3 + 5;
        assert_eq!(blocks.block_len(&a), 2 + (1 + 2 + 3) + term_bytes);
        assert_eq!(b.tags().collect::<Vec<_>>(), wide);
        assert_eq!(b.terms().collect::<Vec<_>>(), terms);
        assert_eq!(blocks.block_len(&b), 3 + (1 + 99 * 2) + term_bytes);
    }

    #[test]
    fn blocks_are_compacted_once_dead_bytes_outweigh_live_ones() {
        let mut blocks = DocHeap::default();
        let mut docs: Vec<IndexedEpisode> = (0..1_000u32)
            .map(|i| {
                IndexedEpisode::new(
                    &mut blocks,
                    EpisodeId::new(),
                    1,
                    0,
                    (0..20).map(|t| t * 1_000 + i),
                    [i].into_iter(),
                    None,
                    0.0,
                    0,
                    None,
                    None,
                )
            })
            .collect();
        let total = blocks.ids.len();
        // Release the odd ones: no compaction asked until dead bytes pass the live ones.
        let mut asked = None;
        for (k, d) in docs.iter().enumerate().filter(|(k, _)| k % 2 == 1) {
            if blocks.release(d) {
                asked.get_or_insert(k);
            }
        }
        assert_eq!(asked, None, "half dead is not more than half");
        let kept: Vec<IndexedEpisode> = docs.drain(..).step_by(2).collect();
        let (first, rest) = kept.split_first().expect("kept documents");
        assert!(blocks.release(first), "dead now outweigh live");
        let mut rest = rest.to_vec();
        blocks.compact(rest.iter_mut());
        assert_eq!(blocks.dead, 0);
        assert_eq!(
            blocks.ids.len(),
            rest.iter().map(|d| blocks.block_len(d)).sum::<usize>()
        );
        assert!(blocks.ids.len() < total / 2);
        for (k, d) in rest.iter().enumerate() {
            let i = 2 * (k as u32 + 1);
            let v = blocks.view(d);
            assert_eq!(v.tags().collect::<Vec<_>>(), [i]);
            assert_eq!(
                v.terms().collect::<Vec<_>>(),
                (0..20).map(|t| t * 1_000 + i).collect::<Vec<_>>()
            );
        }
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
