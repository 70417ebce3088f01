//! One shard: every indexed episode of one `(namespace, domain)`, and its statistics.
//!
//! Owns the document table (slots with a free list, an id → slot map), the shard's interners
//! (terms with document frequencies, tags), per-field length totals for BM25 length
//! normalization, and the task-type [`Partition`]s (R-tree + temporal clusters). Every mutation
//! keeps all of these in step, so a removal leaves no posting, statistic, cluster member or
//! cluster behind. A shard is plain data: the caller holds its lock. It must never do I/O, block, or
//! know about other shards.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::episode::OutcomeKind;
use crate::id::EpisodeId;

use super::document::{
    Doc, DocHeap, Draft, FieldLen, FieldTf, IndexedEpisode, RestKey, narrow_len,
};
use super::fields::FIELD_COUNT;
use super::footprint;
use super::interner::{Interner, Sym};
use super::partition::{Partition, Slot};
use super::postings::{Posting, Postings, TermPostings};
use super::slots::SlotTable;
use super::stats::IndexStats;

/// Which shard: the namespace (tenant) and the domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ShardKey {
    pub(crate) namespace: Arc<str>,
    pub(crate) domain: Arc<str>,
}

/// The documents of one `(namespace, domain)`.
#[derive(Debug)]
pub(crate) struct Shard {
    bucket_width: i64,
    docs: Vec<Option<IndexedEpisode>>,
    /// The documents' tag and term ids and vectors.
    heap: DocHeap,
    /// Per slot of `docs`: the document's field lengths (stale for a free slot). Kept apart
    /// from the documents so the lexical path reads them densely, in slot order.
    lens: Vec<FieldLen>,
    /// Per slot of `docs`: the document's [`RestKey`] (stale for a free slot), for the same
    /// reason.
    rests: Vec<RestKey>,
    free: Vec<Slot>,
    by_id: SlotTable,
    terms: Interner,
    /// Per term id of `terms`: the documents holding it.
    inverted: Postings,
    tags: Interner,
    /// The documents' task types (a document holds its id).
    task_types: Interner,
    partitions: BTreeMap<Arc<str>, Partition>,
    field_len_total: [u64; FIELD_COUNT],
    postings: u64,
    embeddings: u64,
    /// Estimated heap bytes: exact ([`Shard::heap_bytes`]) when built, loaded or recounted,
    /// then raised by [`doc_cost`] per document inserted and [`TERM_COST`] per term new to the
    /// vocabulary, and per document removed raised by the free-list entries of the ids it held
    /// last (a removal frees nothing: the containers keep their room for the next inserts,
    /// and its id block stays until the blocks are compacted). So it errs high, which a budget can afford, and the
    /// next exact count corrects it.
    approx_bytes: usize,
    /// Changes queued while the content is spilled (or being spilled), in arrival order.
    pending: Vec<Pending>,
    /// Changes queued before `pending` and being folded into the spilled content
    /// ([`Shard::begin_fold`]), shared with the fold, not copied.
    folding: Option<Arc<Vec<Pending>>>,
    /// Estimated heap bytes of `folding` and `pending`.
    pending_bytes: usize,
}

/// A document decoded from a shard file (its tag ids and terms beside it), its ids those of
/// the shard's interners.
#[derive(Debug)]
pub(crate) struct LoadedDoc {
    pub(crate) id: EpisodeId,
    pub(crate) version: u64,
    pub(crate) task_type: Sym,
    pub(crate) len: FieldLen,
    pub(crate) outcome: Option<OutcomeKind>,
    pub(crate) reward: f64,
    pub(crate) started_at: i64,
    pub(crate) completed_at: Option<i64>,
    pub(crate) embedding: Option<Vec<f32>>,
}

/// A change queued on a spilled shard.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Upsert(Draft),
    Remove(EpisodeId),
}

impl Pending {
    /// Estimated heap bytes, allocator overhead included (each string is its own allocation,
    /// charged 32 bytes besides its text).
    fn bytes(&self) -> usize {
        const ALLOCATION: usize = 32;
        std::mem::size_of::<Pending>()
            + match self {
                Pending::Upsert(d) => {
                    d.namespace.len()
                        + d.domain.len()
                        + d.task_type.len()
                        + d.tags
                            .iter()
                            .map(|t| t.len() + std::mem::size_of::<String>() + ALLOCATION)
                            .sum::<usize>()
                        + d.terms
                            .iter()
                            .map(|(t, _)| {
                                t.len() + std::mem::size_of::<(String, FieldTf)>() + ALLOCATION
                            })
                            .sum::<usize>()
                        + d.embedding.as_ref().map_or(0, |e| e.len() * 4)
                }
                Pending::Remove(_) => 0,
            }
    }
}

/// Estimated bytes one distinct term costs a shard besides its postings: its interner entry
/// (16), hash table slot (about 8), posting list head (8) and string (a few bytes in the
/// arena).
const TERM_COST: usize = 40;

/// Estimated bytes one document costs a shard: its table entry, its `heap` bytes (id block
/// and vector), its columns, its postings, its id-map entry and its slot in its cluster's
/// member list.
fn doc_cost(doc: Doc<'_>, heap: usize) -> usize {
    // A slot and a control byte per bucket, about 1.5 buckets per entry.
    const ID_MAP_ENTRY: usize = (std::mem::size_of::<Slot>() + 1) * 3 / 2;
    std::mem::size_of::<Option<IndexedEpisode>>()
        + heap
        + std::mem::size_of::<FieldLen>()
        + std::mem::size_of::<RestKey>()
        + doc.term_count() * std::mem::size_of::<Posting>()
        + ID_MAP_ENTRY
        + std::mem::size_of::<Slot>()
}

impl Shard {
    /// An empty shard whose clusters are `bucket_width` µs wide.
    pub(crate) fn new(bucket_width: i64) -> Self {
        Self {
            bucket_width,
            docs: Vec::new(),
            heap: DocHeap::default(),
            lens: Vec::new(),
            rests: Vec::new(),
            free: Vec::new(),
            by_id: SlotTable::default(),
            terms: Interner::default(),
            inverted: Postings::default(),
            tags: Interner::default(),
            task_types: Interner::default(),
            partitions: BTreeMap::new(),
            field_len_total: [0; FIELD_COUNT],
            postings: 0,
            embeddings: 0,
            approx_bytes: 0,
            pending: Vec::new(),
            folding: None,
            pending_bytes: 0,
        }
    }

    /// Queue `op` (the content is spilled); returns the queue's estimated bytes.
    pub(crate) fn queue(&mut self, op: Pending) -> usize {
        self.pending_bytes += op.bytes();
        self.pending.push(op);
        self.pending_bytes
    }

    /// Take the queued changes.
    pub(crate) fn take_pending(&mut self) -> Vec<Pending> {
        // Whoever takes them holds the shard's `moving` lock, as a fold does.
        debug_assert!(self.folding.is_none(), "taken during a fold");
        self.pending_bytes = 0;
        std::mem::take(&mut self.pending)
    }

    /// Hand the queued changes to a fold (`None` if there are none): they stay queued, and
    /// counted, until [`Shard::end_fold`].
    pub(crate) fn begin_fold(&mut self) -> Option<Arc<Vec<Pending>>> {
        debug_assert!(self.folding.is_none(), "one fold at a time");
        if self.pending.is_empty() {
            return None;
        }
        let changes = Arc::new(std::mem::take(&mut self.pending));
        self.folding = Some(changes.clone());
        Some(changes)
    }

    /// End the fold begun last: if `folded`, its changes are in the spilled content and leave
    /// the queue; if not, they stay queued before those queued since. Returns the queue's
    /// estimated bytes.
    pub(crate) fn end_fold(&mut self, folded: bool) -> usize {
        let Some(changes) = self.folding.take() else {
            return self.pending_bytes;
        };
        if folded {
            self.pending_bytes -= changes.iter().map(Pending::bytes).sum::<usize>();
        } else {
            // The fold's handle is gone once it returned: the changes move back, uncopied.
            let mut changes = Arc::try_unwrap(changes).unwrap_or_else(|shared| (*shared).clone());
            changes.append(&mut self.pending);
            self.pending = changes;
        }
        self.pending_bytes
    }

    /// How many changes are queued.
    pub(crate) fn pending_len(&self) -> usize {
        self.folding.as_ref().map_or(0, |f| f.len()) + self.pending.len()
    }

    /// The queued changes, oldest first.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.folding
            .iter()
            .flat_map(|f| f.iter())
            .chain(&self.pending)
    }

    /// Estimated heap bytes of the queued changes.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Apply `ops` in order.
    pub(crate) fn apply(&mut self, ops: impl IntoIterator<Item = Pending>) {
        for op in ops {
            match op {
                Pending::Upsert(d) => {
                    self.upsert(d);
                }
                Pending::Remove(id) => {
                    self.remove(id);
                }
            }
        }
    }

    /// Build every partition from the document table (bulk-loading the trees).
    fn build_partitions(&mut self) {
        let mut groups: BTreeMap<Sym, Vec<(Slot, &IndexedEpisode)>> = BTreeMap::new();
        for (slot, doc) in self.docs.iter().enumerate() {
            if let Some(doc) = doc {
                groups
                    .entry(doc.task_type())
                    .or_default()
                    .push((slot as Slot, doc));
            }
        }
        let bucket_width = self.bucket_width;
        self.partitions = groups
            .into_iter()
            .map(|(sym, members)| {
                let task_type: Arc<str> = Arc::from(self.task_types.text(sym).unwrap_or_default());
                let p = Partition::bulk(task_type.clone(), members, bucket_width);
                (task_type, p)
            })
            .collect();
    }

    /// An empty shard a file's content is decoded into ([`super::image::ShardLoad`]): its
    /// interners, holding the counts the documents to come must match, and its posting lists
    /// sized to those counts.
    pub(super) fn loading(
        bucket_width: i64,
        terms: Interner,
        tags: Interner,
        task_types: Interner,
    ) -> Self {
        let counts: Vec<u32> = (0..terms.id_bound())
            .map(|id| terms.count(id as Sym))
            .collect();
        let mut shard = Self::new(bucket_width);
        shard.inverted = Postings::with_capacities(&counts);
        shard.terms = terms;
        shard.tags = tags;
        shard.task_types = task_types;
        shard
    }

    /// Room for `docs` documents holding `ids` term and tag ids in all, before a load pushes
    /// them.
    pub(super) fn reserve_loaded(&mut self, docs: usize, ids: usize) {
        self.docs.reserve_exact(docs);
        self.lens.reserve_exact(docs);
        self.rests.reserve_exact(docs);
        self.by_id.reserve(docs, &self.docs);
        self.heap.reserve(docs, ids);
    }

    /// Append a decoded document at the next slot. The caller checked it: ids in range and
    /// ascending, the episode not here yet, a finite reward, a vector of the index's dimension.
    pub(super) fn push_loaded(&mut self, d: LoadedDoc, tags: &[Sym], terms: &[(Sym, FieldTf)]) {
        for (total, len) in self.field_len_total.iter_mut().zip(d.len) {
            *total += u64::from(len);
        }
        self.postings += terms.len() as u64;
        if d.embedding.is_some() {
            self.embeddings += 1;
        }
        let doc = IndexedEpisode::new(
            &mut self.heap,
            d.id,
            d.version,
            d.task_type,
            terms.iter().map(|(t, _)| *t),
            tags.iter().copied(),
            d.outcome,
            d.reward,
            d.started_at,
            d.completed_at,
            d.embedding.as_deref(),
        );
        let slot = self.docs.len() as Slot;
        self.lens.push(d.len);
        self.rests.push(RestKey::of(&doc));
        self.docs.push(Some(doc));
        self.by_id.insert(slot, &self.docs);
        for (term, tf) in terms {
            self.inverted.add(*term, slot, tf, &self.lens);
        }
    }

    /// The shard once every document was pushed: its partitions built, its estimate exact.
    pub(super) fn loaded(mut self) -> Self {
        self.build_partitions();
        self.approx_bytes = self.heap_bytes();
        self
    }

    /// The interners: terms, tags, task types.
    pub(super) fn interners(&self) -> [&Interner; 3] {
        [&self.terms, &self.tags, &self.task_types]
    }

    /// Every slot's field lengths (stale for a free slot).
    pub(super) fn lens(&self) -> &[FieldLen] {
        &self.lens
    }

    /// Whether `id` is here.
    pub(super) fn contains(&self, id: EpisodeId) -> bool {
        self.by_id.get(id, &self.docs).is_some()
    }

    /// Intern `draft`'s strings, count its statistics and post it under `slot`; the caller
    /// places the result there.
    fn attach(&mut self, draft: Draft, slot: Slot) -> IndexedEpisode {
        let mut terms: Vec<(Sym, FieldTf)> = draft
            .terms
            .iter()
            .map(|(text, tf)| (self.terms.acquire(text), *tf))
            .collect();
        terms.sort_unstable_by_key(|(s, _)| *s);
        // The two per-slot columns grow together.
        while self.lens.len() <= slot as usize {
            footprint::reserve_one(&mut self.lens);
            footprint::reserve_one(&mut self.rests);
            self.lens.push([0; FIELD_COUNT]);
            self.rests.push(RestKey::default());
        }
        let len = narrow_len(&draft.field_len);
        self.lens[slot as usize] = len;
        for (sym, tf) in &terms {
            self.inverted.add(*sym, slot, tf, &self.lens);
        }
        let mut tags: Vec<Sym> = draft.tags.iter().map(|t| self.tags.acquire(t)).collect();
        tags.sort_unstable();
        for (total, len) in self.field_len_total.iter_mut().zip(len) {
            *total += u64::from(len);
        }
        self.postings += terms.len() as u64;
        if draft.embedding.is_some() {
            self.embeddings += 1;
        }
        let task_type = self.task_types.acquire(&draft.task_type);
        let doc = IndexedEpisode::new(
            &mut self.heap,
            draft.id,
            draft.version,
            task_type,
            terms.iter().map(|(sym, _)| *sym),
            tags.into_iter(),
            draft.outcome,
            draft.reward,
            draft.started_at,
            draft.completed_at,
            draft.embedding.as_deref(),
        );
        self.rests[slot as usize] = RestKey::of(&doc);
        doc
    }

    /// Undo [`Shard::attach`] for `doc` at `slot` (no longer in the table); returns whether
    /// the id blocks should be compacted.
    fn detach(&mut self, doc: &IndexedEpisode, slot: Slot) -> bool {
        let view = self.heap.view(doc);
        let mut terms = 0;
        for sym in view.terms() {
            self.inverted.remove(sym, slot);
            self.terms.release(sym);
            terms += 1;
        }
        for sym in view.tags() {
            self.tags.release(sym);
        }
        self.task_types.release(doc.task_type());
        let len = self.lens[slot as usize];
        for (total, len) in self.field_len_total.iter_mut().zip(len) {
            *total -= u64::from(len);
        }
        self.postings -= terms;
        if doc.has_embedding() {
            self.embeddings -= 1;
        }
        self.heap.release(doc)
    }

    /// Insert `draft`, replacing the document with the same id if there is one (also when its
    /// task type changed). Returns the replaced document's version.
    pub(crate) fn upsert(&mut self, draft: Draft) -> Option<u64> {
        let (slot, previous) = self.place(draft);
        let bucket_width = self.bucket_width;
        let doc = self.docs[slot as usize].as_ref().expect("just placed");
        let name = self.task_types.text(doc.task_type()).unwrap_or_default();
        match self.partitions.get_mut(name) {
            Some(p) => p.insert(slot, doc, bucket_width),
            None => {
                let task_type: Arc<str> = Arc::from(name);
                let mut p = Partition::new(task_type.clone());
                p.insert(slot, doc, bucket_width);
                self.partitions.insert(task_type, p);
            }
        }
        previous
    }

    /// Whether the document `id` can be placed in a shard of at most `limit` slots: the table
    /// is shorter than `limit`, a slot is free, or it is here (it keeps its slot). The cheap
    /// checks first: the lookup is only needed in a full shard.
    pub(crate) fn has_room(&self, id: EpisodeId, limit: usize) -> bool {
        self.docs.len() < limit || !self.free.is_empty() || self.by_id.get(id, &self.docs).is_some()
    }

    /// Put `draft` in place of the document with its id, or in a free slot: interned, posted,
    /// counted and in the table, but in no partition (the caller adds it, or builds the
    /// partitions later). Returns its slot and the replaced document's version.
    fn place(&mut self, draft: Draft) -> (Slot, Option<u64>) {
        let previous = self.remove(draft.id);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                footprint::reserve_one(&mut self.docs);
                self.docs.push(None);
                (self.docs.len() - 1) as Slot
            }
        };
        let vocabulary = self.terms.len();
        let doc = self.attach(draft, slot);
        self.approx_bytes += doc_cost(self.heap.view(&doc), self.heap.cost(&doc))
            + (self.terms.len() - vocabulary) * TERM_COST;
        self.docs[slot as usize] = Some(doc);
        self.by_id.insert(slot, &self.docs);
        (slot, previous)
    }

    /// Remove the document `id`; returns its version if it was here.
    pub(crate) fn remove(&mut self, id: EpisodeId) -> Option<u64> {
        let slot = self.by_id.remove(id, &self.docs)?;
        let doc = self.docs.get_mut(slot as usize).and_then(Option::take)?;
        // The partition first: the task type's name goes with its last document.
        let bucket_width = self.bucket_width;
        let name = self.task_types.text(doc.task_type()).unwrap_or_default();
        let emptied = match self.partitions.get_mut(name) {
            Some(p) => {
                p.remove(slot, &doc, bucket_width, &self.docs);
                p.len() == 0
            }
            None => false,
        };
        if emptied {
            self.partitions.remove(name);
        }
        let vocabulary = self.terms.len() + self.tags.len() + self.task_types.len();
        let compact = self.detach(&doc, slot);
        // Nothing is freed (its id block stays until the blocks are compacted, its vector's
        // row is the next one's); each id it held last goes on its interner's free list.
        let freed_ids = vocabulary - self.terms.len() - self.tags.len() - self.task_types.len();
        self.approx_bytes += freed_ids * std::mem::size_of::<Sym>();
        if self.is_empty() {
            // Forget the table's shape too: an emptied shard is a new shard.
            self.docs = Vec::new();
            self.heap = DocHeap::default();
            self.lens = Vec::new();
            self.rests = Vec::new();
            self.free = Vec::new();
            self.by_id = SlotTable::default();
            self.inverted = Postings::default();
            self.approx_bytes = 0;
        } else {
            self.free.push(slot);
            if compact {
                self.heap.compact(self.docs.iter_mut().flatten());
            }
        }
        Some(doc.version)
    }

    /// Estimated heap bytes (see the field docs).
    pub(crate) fn approx_bytes(&self) -> usize {
        self.approx_bytes
    }

    /// Replace the running estimate with an exact count ([`Shard::heap_bytes`], one pass over
    /// the shard); returns it.
    pub(crate) fn recount(&mut self) -> usize {
        self.approx_bytes = self.heap_bytes();
        self.approx_bytes
    }

    /// Width of the temporal clusters, in µs.
    pub(crate) fn bucket_width(&self) -> i64 {
        self.bucket_width
    }

    /// How many documents.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the shard holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_id.len() == 0
    }

    /// The version of `id`, if here.
    #[cfg(test)]
    pub(crate) fn version_of(&self, id: EpisodeId) -> Option<u64> {
        let slot = self.by_id.get(id, &self.docs)?;
        self.doc(slot).map(|d| d.version)
    }

    /// The document at `slot`.
    pub(crate) fn doc(&self, slot: Slot) -> Option<Doc<'_>> {
        self.docs
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map(|d| self.heap.view(d))
    }

    /// The field lengths of the document at `slot` (meaningless for a free slot).
    #[inline]
    pub(crate) fn field_len(&self, slot: Slot) -> [u32; FIELD_COUNT] {
        self.lens[slot as usize].map(u32::from)
    }

    /// The [`RestKey`] of the document at `slot` (meaningless for a free slot).
    #[inline]
    pub(crate) fn rest_key(&self, slot: Slot) -> RestKey {
        self.rests[slot as usize]
    }

    /// The document of `id` with its slot, looked up at `slot` first (where it was when last
    /// seen; a shard reloaded from its file since may have renumbered its slots).
    pub(crate) fn doc_of(&self, id: EpisodeId, slot: Slot) -> Option<(Slot, Doc<'_>)> {
        match self.doc(slot) {
            Some(d) if d.id == id => Some((slot, d)),
            _ => {
                let slot = self.by_id.get(id, &self.docs)?;
                self.doc(slot).map(|d| (slot, d))
            }
        }
    }

    /// Every document with its slot (the flat path).
    pub(crate) fn docs(&self) -> impl Iterator<Item = (Slot, Doc<'_>)> {
        self.docs
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.as_ref().map(|d| (i as Slot, self.heap.view(d))))
    }

    /// The partition of `task_type`.
    pub(crate) fn partition(&self, task_type: &str) -> Option<&Partition> {
        self.partitions.get(task_type)
    }

    /// Every partition, by task type.
    pub(crate) fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.values()
    }

    /// The documents holding term `sym`.
    pub(crate) fn postings(&self, sym: Sym) -> Option<TermPostings<'_>> {
        self.inverted.get(sym)
    }

    /// The frequencies of term `sym` in the document at `slot`, if it holds the term.
    pub(crate) fn term_tf(&self, sym: Sym, slot: Slot) -> Option<FieldTf> {
        self.inverted.get(sym)?.tf_of(slot)
    }

    /// The id of term `text` in this shard.
    pub(crate) fn term_sym(&self, text: &str) -> Option<Sym> {
        self.terms.get(text)
    }

    /// Every term id of this shard is below this.
    pub(crate) fn term_id_bound(&self) -> usize {
        self.terms.id_bound()
    }

    /// How many documents of this shard hold term `sym`.
    pub(crate) fn term_df(&self, sym: Sym) -> u32 {
        self.terms.count(sym)
    }

    /// The text of term `sym`.
    pub(crate) fn term_text(&self, sym: Sym) -> Option<&str> {
        self.terms.text(sym)
    }

    /// The id of tag `text` in this shard.
    pub(crate) fn tag_sym(&self, text: &str) -> Option<Sym> {
        self.tags.get(text)
    }

    /// The id of task type `text` in this shard.
    pub(crate) fn task_type_sym(&self, text: &str) -> Option<Sym> {
        self.task_types.get(text)
    }

    /// Per field, the sum of the documents' lengths.
    pub(crate) fn field_len_total(&self) -> [u64; FIELD_COUNT] {
        self.field_len_total
    }

    /// Counts for [`IndexStats`] (`shards` = 1).
    pub(crate) fn stats(&self) -> IndexStats {
        IndexStats {
            shards: 1,
            episodes: self.len(),
            task_types: self.partitions.len(),
            clusters: self.partitions.values().map(Partition::cluster_count).sum(),
            tree_points: self.partitions.values().map(Partition::len).sum(),
            terms: self.terms.len(),
            postings: self.postings,
            tags: self.tags.len(),
            embeddings: self.embeddings,
            field_tokens: self.field_len_total.iter().sum(),
        }
    }

    /// Estimated heap bytes (see `footprint` for the method).
    pub(crate) fn heap_bytes(&self) -> usize {
        let partitions: usize = self
            .partitions
            .values()
            .map(|p| p.heap_bytes() + p.task_type().len())
            .sum();
        footprint::vec::<Option<IndexedEpisode>>(self.docs.capacity())
            + self.heap.heap_bytes()
            + footprint::vec::<FieldLen>(self.lens.capacity())
            + footprint::vec::<RestKey>(self.rests.capacity())
            + footprint::vec::<Slot>(self.free.capacity())
            + self.by_id.heap_bytes()
            + self.terms.heap_bytes()
            + self.inverted.heap_bytes()
            + self.tags.heap_bytes()
            + self.task_types.heap_bytes()
            + footprint::btree_map::<Arc<str>, Partition>(self.partitions.len())
            + partitions
    }

    /// For tests: every posting list as (term, episode ids), sorted; checked against the
    /// shard's own (term, episode) count.
    #[cfg(test)]
    fn postings_by_text(&self) -> Vec<(String, Vec<EpisodeId>)> {
        let mut out = Vec::new();
        for (sym, text) in self.terms.live() {
            let list = self.inverted.get(sym).expect("a live term has postings");
            assert!(list.entries().windows(2).all(|w| w[0].slot() < w[1].slot()));
            let mut ids: Vec<EpisodeId> = list
                .entries()
                .iter()
                .map(|p| self.doc(p.slot()).map(|d| d.id).unwrap_or_default())
                .collect();
            ids.sort_unstable();
            out.push((text.to_owned(), ids));
        }
        assert_eq!(self.inverted.pairs() as u64, self.postings);
        out.sort();
        out
    }

    /// For tests: every cluster summary, by task type and bucket.
    #[cfg(test)]
    fn clusters_by_text(&self) -> Vec<(String, i64, ClusterSummaryView)> {
        let mut out = Vec::new();
        for p in self.partitions.values() {
            for (bucket, c) in p.clusters() {
                out.push((
                    p.task_type().to_string(),
                    bucket,
                    (
                        c.members,
                        c.max_recency_at,
                        c.max_reward.to_bits(),
                        c.embeddings,
                    ),
                ));
            }
        }
        out
    }
}

/// For tests: a cluster summary's fields, comparable.
#[cfg(test)]
type ClusterSummaryView = (u32, i64, u64, u32);

/// A shard being bulk-built: documents are attached as they arrive, and the partitions' trees
/// are bulk-loaded once, by [`ShardBuilder::finish`] (much cheaper than inserting each point).
#[derive(Debug)]
pub(crate) struct ShardBuilder {
    /// Its partitions stay empty until `finish`.
    shard: Shard,
}

impl ShardBuilder {
    /// An empty shard whose clusters will be `bucket_width` µs wide.
    pub(crate) fn new(bucket_width: i64) -> Self {
        Self {
            shard: Shard::new(bucket_width),
        }
    }

    /// Add `draft`, replacing the document with the same id if one was added before.
    pub(crate) fn add(&mut self, draft: Draft) {
        self.shard.place(draft);
    }

    /// [`Shard::has_room`] of the shard being built.
    pub(crate) fn has_room(&self, id: EpisodeId, limit: usize) -> bool {
        self.shard.has_room(id, limit)
    }

    /// Remove the document `id` if it was added.
    pub(crate) fn remove(&mut self, id: EpisodeId) {
        self.shard.remove(id);
    }

    /// The shard, its trees and clusters built from the documents added, spare capacity
    /// released (the slots of documents removed during the build stay free for later inserts).
    pub(crate) fn finish(self) -> Shard {
        let mut shard = self.shard;
        shard.build_partitions();
        shard.docs.shrink_to_fit();
        shard.lens.shrink_to_fit();
        shard.rests.shrink_to_fit();
        shard.inverted.shrink();
        shard.approx_bytes = shard.heap_bytes();
        shard
    }
}

#[cfg(test)]
mod tests {
    use super::super::fold::ShardFold;
    use super::super::image::{PlainShard, ShardLoad, ShardView};
    use super::*;
    use crate::episode::{EpisodeSummary, TaskContext};
    use crate::index::config::IndexConfig;
    use crate::time;

    fn draft(desc: &str, task_type: &str, day: i64) -> Draft {
        let s = EpisodeSummary {
            id: EpisodeId::new(),
            version: 1,
            context: TaskContext::new("ns", "d", task_type).with_tags(["t1"]),
            description: desc.into(),
            tools: vec!["tool_a".into()],
            step_count: 1,
            successful_steps: 1,
            outcome: Some(OutcomeKind::Success),
            reward: 1.0,
            embedding: None,
            started_at: time::from_micros(day * 86_400_000_000),
            completed_at: Some(time::from_micros(day * 86_400_000_000 + 1)),
        };
        Draft::from_summary(&s, &IndexConfig::default()).unwrap()
    }

    const WEEK: i64 = 7 * 86_400_000_000;

    fn key() -> ShardKey {
        ShardKey {
            namespace: Arc::from("ns"),
            domain: Arc::from("d"),
        }
    }

    #[test]
    fn the_running_estimate_follows_vocabulary_growth_and_shrinkage() {
        // Mostly words seen once, as in agent task descriptions (ids, names, numbers).
        let mut shard = Shard::new(86_400_000_000);
        let mut ids = Vec::new();
        for k in 0..3_000 {
            let d = draft(
                &format!("refund order o{k}a o{k}b o{k}c customer c{k} lamp"),
                "t",
                k % 30,
            );
            ids.push(d.id);
            shard.upsert(d);
        }
        let ratio = |shard: &mut Shard| {
            let running = shard.approx_bytes() as f64;
            running / shard.recount() as f64
        };
        let grown = ratio(&mut shard);
        assert!((0.85..=1.15).contains(&grown), "running / exact {grown:.3}");
        // From the exact count (`ratio` recounts), remove most documents: the estimate may
        // err high, never low.
        for id in &ids[..2_500] {
            shard.remove(*id);
        }
        let shrunk = ratio(&mut shard);
        assert!((1.0..=1.3).contains(&shrunk), "running / exact {shrunk:.3}");
    }

    #[test]
    fn documents_keep_their_ids_through_the_compaction_of_the_blocks() {
        let mut shard = Shard::new(WEEK);
        let drafts: Vec<Draft> = (0..2_000)
            .map(|k| {
                let mut d = draft(&format!("order o{k} item i{} lamp", k % 7), "t", k % 30);
                d.tags = vec![format!("tag{}", k % 5), format!("tag{k}")];
                d.tags.sort();
                d
            })
            .collect();
        for d in &drafts {
            shard.upsert(d.clone());
        }
        let before = shard.heap.heap_bytes();
        // Replace some, then remove three in four: their blocks die and the vector is
        // rewritten once dead bytes outweigh live ones.
        for d in drafts.iter().skip(1).step_by(4) {
            shard.upsert(d.clone());
        }
        for (_, d) in drafts.iter().enumerate().filter(|(k, _)| k % 4 != 0) {
            shard.remove(d.id);
        }
        assert!(shard.heap.heap_bytes() < before / 2, "compacted");
        let kept: Vec<&Draft> = drafts.iter().step_by(4).collect();
        for d in &kept {
            let (_, doc) = shard.doc_of(d.id, 0).expect("kept");
            let terms: Vec<&str> = doc
                .terms()
                .map(|t| shard.term_text(t).expect("live term"))
                .collect();
            let mut expected: Vec<&str> = d.terms.iter().map(|(t, _)| t.as_str()).collect();
            let mut got = terms.clone();
            got.sort();
            expected.sort();
            assert_eq!(got, expected);
            let tags: Vec<&str> = doc
                .tags()
                .map(|t| shard.tags.text(t).expect("live tag"))
                .collect();
            let mut got = tags.clone();
            got.sort();
            assert_eq!(got, d.tags);
        }
        let mut clean = Shard::new(WEEK);
        for d in &kept {
            clean.upsert((*d).clone());
        }
        assert_eq!(shard.stats(), clean.stats());
        assert_eq!(shard.postings_by_text(), clean.postings_by_text());
        for d in &kept {
            shard.remove(d.id);
        }
        assert!(shard.is_empty());
    }

    #[test]
    fn insert_then_remove_leaves_no_trace() {
        let base = [
            draft("return the lamp", "return", 1),
            draft("exchange the keyboard", "exchange", 2),
        ];
        let extra = [
            draft("return a bottle and a lamp", "return", 3),
            draft("cancel everything", "cancel", 40),
        ];
        let mut clean = Shard::new(WEEK);
        for d in &base {
            clean.upsert(d.clone());
        }
        let mut dirty = Shard::new(WEEK);
        dirty.upsert(extra[0].clone());
        for d in &base {
            dirty.upsert(d.clone());
        }
        dirty.upsert(extra[1].clone());
        for d in &extra {
            assert_eq!(dirty.remove(d.id), Some(1));
        }
        assert_eq!(dirty.stats(), clean.stats());
        assert_eq!(dirty.clusters_by_text(), clean.clusters_by_text());
        assert_eq!(dirty.postings_by_text(), clean.postings_by_text());
        assert_eq!(dirty.field_len_total(), clean.field_len_total());
        for d in &base {
            dirty.remove(d.id);
        }
        assert!(dirty.is_empty());
        assert_eq!(dirty.stats(), Shard::new(WEEK).stats());
        assert_eq!(dirty.heap_bytes(), Shard::new(WEEK).heap_bytes());
    }

    #[test]
    fn a_field_longer_than_its_column_counts_as_long_as_the_column_holds_everywhere() {
        let key = key();
        let mut s = Shard::new(WEEK);
        let long = draft(&"lamp ".repeat(70_000), "return", 1);
        assert_eq!(long.field_len[0], 70_000);
        s.upsert(long.clone());
        let (slot, _) = s.doc_of(long.id, 0).unwrap();
        assert_eq!(s.field_len(slot)[0], u32::from(u16::MAX));
        // The corpus totals count what the column holds, so a removal takes it all back.
        let totals = s.field_len_total();
        assert_eq!(totals[0], u64::from(u16::MAX));
        let back = load(&key, &encode(&key, &s)).unwrap();
        assert_eq!(back.field_len_total(), totals);
        assert_eq!(back.field_len(0)[0], u32::from(u16::MAX));
        s.remove(long.id);
        assert_eq!(s.field_len_total(), [0; FIELD_COUNT]);
    }

    #[test]
    fn upsert_moves_between_task_types_and_bulk_matches_incremental() {
        let a = draft("return the lamp", "return", 1);
        let mut moved = a.clone();
        moved.task_type = "exchange".into();
        moved.version = 2;
        let mut s = Shard::new(WEEK);
        s.upsert(a.clone());
        assert_eq!(s.upsert(moved.clone()), Some(1));
        assert!(s.partition("return").is_none());
        assert_eq!(s.partition("exchange").map(Partition::len), Some(1));
        assert_eq!(s.version_of(a.id), Some(2));

        let drafts = vec![
            draft("return the lamp", "return", 1),
            draft("exchange the keyboard", "exchange", 9),
            draft("return the bottle", "return", 20),
        ];
        let mut builder = ShardBuilder::new(WEEK);
        for d in &drafts {
            builder.add(d.clone());
        }
        let bulk = builder.finish();
        let mut inc = Shard::new(WEEK);
        for d in drafts {
            inc.upsert(d);
        }
        assert_eq!(bulk.stats(), inc.stats());
        assert_eq!(bulk.clusters_by_text(), inc.clusters_by_text());
        assert_eq!(bulk.postings_by_text(), inc.postings_by_text());
    }

    #[test]
    fn a_builder_shares_one_task_type_across_replacements_and_removals() {
        let first = draft("return the lamp", "return", 1);
        let mut again = first.clone();
        again.version = 2;
        let dropped = draft("return the bottle", "return", 3);
        let mut builder = ShardBuilder::new(WEEK);
        builder.add(first);
        builder.add(dropped.clone());
        builder.add(again.clone());
        builder.remove(dropped.id);
        builder.add(draft("return the chair", "return", 5));
        builder.add(draft("exchange the chair", "exchange", 6));
        let shard = builder.finish();
        assert_eq!((shard.len(), shard.version_of(again.id)), (3, Some(2)));
        let returns: Vec<Sym> = shard
            .docs()
            .map(|(_, d)| d.task_type())
            .filter(|t| shard.task_types.text(*t) == Some("return"))
            .collect();
        assert_eq!(returns.len(), 2);
        assert_eq!(returns[0], returns[1]);
        assert_eq!(shard.task_types.count(returns[0]), 2);
        assert_eq!(shard.task_types.len(), 2);
        let partition = shard
            .partition("return")
            .expect("a partition per task type");
        assert_eq!(partition.len(), 2);
    }

    fn encode(key: &ShardKey, shard: &Shard) -> Vec<u8> {
        ShardView::new(key, shard).to_vec().unwrap()
    }

    fn load(key: &ShardKey, bytes: &[u8]) -> crate::error::Result<Shard> {
        ShardLoad {
            key: key.clone(),
            bucket_width: WEEK,
            embedding_dimension: None,
        }
        .decode(bytes)
    }

    #[test]
    fn an_encoding_rebuilds_the_same_shard_and_damage_is_refused() {
        let key = key();
        let mut s = Shard::new(WEEK);
        let gone = draft("cancel the order", "cancel", 2);
        s.upsert(gone.clone());
        s.upsert(draft("return the lamp", "return", 1));
        let mut tagged = draft("exchange the keyboard lamp", "exchange", 9);
        tagged.tags = vec!["urgent".into(), "desk".into()];
        s.upsert(tagged);
        s.remove(gone.id);
        let bytes = encode(&key, &s);
        let plain: PlainShard = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            postcard::to_allocvec(&plain).unwrap(),
            bytes,
            "the plain form reads the whole encoding"
        );
        assert!(
            !plain.terms.iter().any(|(t, _)| t == "cancel"),
            "ids are renumbered densely"
        );
        let lamp = plain.terms.iter().find(|(t, _)| t == "lamp").unwrap();
        assert_eq!(lamp.1, 2, "each string comes with its count of documents");
        let back = load(&key, &bytes).unwrap();
        assert_eq!(back.stats(), s.stats());
        assert_eq!(
            back.inverted.spare(),
            0,
            "a load sizes each posting list exactly"
        );
        // Slots are renumbered too; a document is still found by id from its old slot.
        for (slot, doc) in s.docs() {
            let found = back.doc_of(doc.id, slot).map(|(_, d)| d.id);
            assert_eq!(found, Some(doc.id));
        }
        assert!(
            s.docs()
                .any(|(slot, d)| back.doc(slot).map(|b| b.id) != Some(d.id)),
            "the removal left a hole that the load closed"
        );
        assert_eq!(back.clusters_by_text(), s.clusters_by_text());
        assert_eq!(back.postings_by_text(), s.postings_by_text());
        assert_eq!(back.field_len_total(), s.field_len_total());
        assert_eq!(encode(&key, &back), bytes);

        let refused = |why: &str, damaged: PlainShard| {
            let e = load(&key, &postcard::to_allocvec(&damaged).unwrap()).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Corrupt, "{why}: {e}");
            e.to_string()
        };
        let mut damaged = plain.clone();
        damaged.docs[0].terms.last_mut().unwrap().0 = 999;
        let e = refused("term id", damaged);
        assert!(e.contains("out of range"), "{e}");
        let mut damaged = plain.clone();
        assert!(damaged.docs[0].terms.len() > 1);
        damaged.docs[0].terms.reverse();
        assert!(refused("order", damaged).contains("not strictly ascending"));
        let mut damaged = plain.clone();
        damaged.terms[0].1 += 1;
        assert!(refused("count", damaged).contains("does not match"));
        let mut damaged = plain.clone();
        damaged.docs.push(damaged.docs[0].clone());
        assert!(refused("twin", damaged).contains("episode appears twice"));
        let mut damaged = plain.clone();
        damaged.docs[0].reward = f64::NAN;
        assert!(refused("reward", damaged).contains("not finite"));
        let mut damaged = plain.clone();
        damaged.terms[1].0 = damaged.terms[0].0.clone();
        assert!(refused("same string", damaged).contains("string appears twice"));
        let mut damaged = plain.clone();
        damaged.terms.push(("unused".into(), 0));
        assert!(refused("unused", damaged).contains("no document holds"));
        let mut damaged = plain.clone();
        damaged.terms[0].1 = u32::MAX;
        assert!(refused("huge count", damaged).contains("more terms and tags than"));
        let mut damaged = plain.clone();
        damaged.docs[0].embedding = Some(vec![1.0, 0.0]);
        assert!(refused("vector", damaged).contains("none is configured"));
        let other = ShardKey {
            namespace: Arc::from("ns"),
            domain: Arc::from("elsewhere"),
        };
        let e = load(&other, &bytes).unwrap_err();
        assert!(e.to_string().contains("holds the shard"), "{e}");
    }

    /// For tests: every document as (id, version, task type, tags, (term, frequencies)),
    /// by id, all as text: comparable across shards whatever their ids and slots.
    #[allow(clippy::type_complexity)]
    fn described(
        shard: &Shard,
    ) -> Vec<(EpisodeId, u64, String, Vec<String>, Vec<(String, FieldTf)>)> {
        let text = |i: &Interner, sym: Sym| i.text(sym).unwrap().to_owned();
        let mut out: Vec<_> = shard
            .docs()
            .map(|(slot, d)| {
                let mut tags: Vec<String> = d.tags().map(|t| text(&shard.tags, t)).collect();
                tags.sort();
                let mut terms: Vec<(String, FieldTf)> = d
                    .terms()
                    .map(|t| (text(&shard.terms, t), shard.term_tf(t, slot).unwrap()))
                    .collect();
                terms.sort();
                let task_type = text(&shard.task_types, d.task_type());
                (d.id, d.version, task_type, tags, terms)
            })
            .collect();
        out.sort_by_key(|d| d.0);
        out
    }

    #[test]
    fn a_fold_writes_what_loading_the_file_and_applying_the_changes_makes() {
        let key = key();
        let mut s = Shard::new(WEEK);
        let mut held = Vec::new();
        for k in 0..12 {
            let d = draft(
                &format!("refund lamp order o{k}"),
                ["return", "cancel"][k % 2],
                k as i64,
            );
            held.push(d.clone());
            s.upsert(d);
        }
        let bytes = encode(&key, &s);
        let mut changes = vec![Pending::Remove(EpisodeId::new())];
        // The only "cancel" documents go (their task type with them), one by a replacement
        // into a new task type with new words and tags; others are replaced in place.
        for (k, d) in held.iter().enumerate() {
            match k % 4 {
                1 => changes.push(Pending::Remove(d.id)),
                3 => {
                    let mut again = draft(&format!("swap keyboard k{k}"), "swap", 40);
                    again.id = d.id;
                    again.version = 2;
                    again.tags = vec!["urgent".into()];
                    changes.push(Pending::Upsert(again));
                }
                2 => {
                    let mut again = draft("refund lamp twice", "return", 3);
                    again.id = d.id;
                    again.version = 3;
                    changes.push(Pending::Upsert(again));
                }
                _ => {}
            }
        }
        let brief = draft("gone before the fold", "return", 5);
        changes.push(Pending::Upsert(brief.clone()));
        changes.push(Pending::Remove(brief.id));
        let twice = draft("first words", "return", 6);
        let mut later = draft("second words", "exchange", 90);
        later.id = twice.id;
        changes.push(Pending::Upsert(twice));
        changes.push(Pending::Upsert(later));

        let mut expected = load(&key, &bytes).unwrap();
        expected.apply(changes.clone());
        let fold = ShardFold::new(
            ShardLoad {
                key: key.clone(),
                bucket_width: WEEK,
                embedding_dimension: None,
            },
            Arc::new(changes),
        );
        let (folded, stats) = fold.fold_bytes(&bytes).unwrap();
        assert_eq!(stats, expected.stats());
        let back = load(&key, &folded).unwrap();
        assert_eq!(back.stats(), expected.stats());
        assert_eq!(described(&back), described(&expected));
        assert!(described(&back).iter().all(|d| d.2 != "cancel"));
        assert_eq!(back.postings_by_text(), expected.postings_by_text());
        assert_eq!(back.clusters_by_text(), expected.clusters_by_text());
        assert_eq!(back.field_len_total(), expected.field_len_total());
        let plain: PlainShard = postcard::from_bytes(&folded).unwrap();
        assert!(
            !plain.terms.iter().any(|(t, _)| t == "o1"),
            "a string no document holds any more is dropped"
        );

        // The file is checked as a load checks it.
        let mut damaged: PlainShard = postcard::from_bytes(&bytes).unwrap();
        damaged.terms[0].1 += 1;
        let e = fold
            .fold_bytes(&postcard::to_allocvec(&damaged).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        let mut damaged: PlainShard = postcard::from_bytes(&bytes).unwrap();
        damaged.docs[0].terms.last_mut().unwrap().0 = 999;
        let e = fold
            .fold_bytes(&postcard::to_allocvec(&damaged).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        damaged.domain = "elsewhere".into();
        let e = fold
            .fold_bytes(&postcard::to_allocvec(&damaged).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("holds the shard"), "{e}");
    }
}
