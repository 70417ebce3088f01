//! The content of a shard file: a shard encoded straight from its structures, and decoded
//! straight into a new shard, with no copy of the content in between.
//!
//! Owns the encoding (snapshot format 7) and both directions of it: [`ShardView`] serializes a
//! shard as it stands, [`ShardLoad`] builds a shard as the decoder reads, reading a file's
//! head ([`Head`]) and handing each document, checked, to a [`DocSink`] (the fold of queued
//! changes into a file, `fold.rs`, reads files through the same two). Moving a shard in or
//! out of memory under a budget therefore costs what the shard itself costs, a buffer and a
//! few bytes per distinct string (renumbering maps, cursors, the strings while their
//! interners are built), however many documents it holds. The encoding holds what cannot be recomputed cheaply (the
//! analyzed documents with interned term and tag ids, each term's frequencies in each
//! document, the strings behind the ids with how many documents hold each) and nothing that
//! can (statistics, R-trees, clusters and posting-list bounds are rebuilt). It is independent of
//! the in-memory layout: ids are renumbered densely (in the order of the shard's own
//! ids), documents are listed in slot order without the free slots.
//!
//! Layout (postcard): namespace, domain, then three lists of `(string, documents holding it)`
//! (terms, tags, task types; a document's id for each is its position in the list), then the
//! documents, each `(id, version, task type, field lengths, outcome, reward, started at,
//! completed at, embedding, tag ids ascending, (term id, per-field frequencies) ascending by
//! id)`. Decoding checks every id and invariant and fails with an error rather than panic, so
//! a damaged file that passed its checksum is still never indexed, and no count read from the
//! file reserves more memory than the payload's length can justify. This module must never
//! do I/O: files are the caller's.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, Error as _, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeSeq, SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use crate::episode::OutcomeKind;
use crate::id::EpisodeId;

use super::document::{FieldLen, FieldTf, check_vector};
use super::interner::{Interner, MAX_STRING_BYTES, Sym};
use super::postings::MAX_SLOTS;
use super::shard::{LoadedDoc, Shard, ShardKey};

/// The fewest bytes a document takes in the encoding (its id alone takes 17).
const MIN_DOC_BYTES: u64 = 32;
/// The fewest bytes a term of a document takes (an id and four frequencies).
const MIN_POSTING_BYTES: u64 = 5;

/// A shard to encode, with its key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShardView<'a> {
    key: &'a ShardKey,
    shard: &'a Shard,
}

impl<'a> ShardView<'a> {
    pub(crate) fn new(key: &'a ShardKey, shard: &'a Shard) -> Self {
        Self { key, shard }
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.key.namespace
    }

    pub(crate) fn domain(&self) -> &str {
        &self.key.domain
    }

    /// The encoding in a vector.
    pub(crate) fn to_vec(self) -> crate::error::Result<Vec<u8>> {
        postcard::to_allocvec(&self).map_err(|e| {
            crate::error::Error::storage(format!(
                "encoding the shard ({:?}, {:?})",
                self.namespace(),
                self.domain()
            ))
            .with_source(e)
        })
    }
}

/// Live ids of an interner renumbered densely, in id order: `map[old] = new`.
pub(super) fn renumber(interner: &Interner) -> Vec<u32> {
    let mut map = vec![u32::MAX; interner.id_bound()];
    for (new, (old, _)) in interner.live().enumerate() {
        map[old as usize] = new as u32;
    }
    map
}

/// What encoding the documents needs besides the shard: each interner's ids as the file
/// numbers them.
struct Encoding<'a> {
    shard: &'a Shard,
    terms: Vec<u32>,
    tags: Vec<u32>,
    task_types: Vec<u32>,
}

impl Serialize for ShardView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let [terms, tags, task_types] = self.shard.interners();
        let encoding = Encoding {
            shard: self.shard,
            terms: renumber(terms),
            tags: renumber(tags),
            task_types: renumber(task_types),
        };
        let mut t = s.serialize_tuple(6)?;
        t.serialize_element(self.namespace())?;
        t.serialize_element(self.domain())?;
        t.serialize_element(&Strings(terms))?;
        t.serialize_element(&Strings(tags))?;
        t.serialize_element(&Strings(task_types))?;
        t.serialize_element(&Docs(&encoding))?;
        t.end()
    }
}

/// An interner's live strings with their counts, in id order.
pub(super) struct Strings<'a>(pub(super) &'a Interner);

impl Serialize for Strings<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (sym, text) in self.0.live() {
            seq.serialize_element(&(text, self.0.count(sym)))?;
        }
        seq.end()
    }
}

/// A document as the encoding lists it, in its order: what every writer of a shard file
/// writes (a shard's view here, a fold in `fold.rs`).
#[derive(Serialize)]
pub(super) struct DocRecord<'a> {
    pub(super) id: EpisodeId,
    pub(super) version: u64,
    pub(super) task_type: u32,
    pub(super) len: FieldLen,
    pub(super) outcome: Option<OutcomeKind>,
    pub(super) reward: f64,
    pub(super) started_at: i64,
    pub(super) completed_at: Option<i64>,
    pub(super) embedding: Option<&'a [f32]>,
    pub(super) tags: &'a [u32],
    pub(super) terms: &'a [(u32, FieldTf)],
}

struct Docs<'a>(&'a Encoding<'a>);

impl Serialize for Docs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let shard = e.shard;
        // Per term id, how many of its postings the documents encoded so far have passed: the
        // documents go in slot order, the postings of a list too, so each term's next posting
        // is found by stepping forward, never by a search.
        let mut cursors = vec![0u32; e.terms.len()];
        // The current document's ids as the file numbers them (reused from one to the next).
        let (mut tags, mut terms) = (Vec::new(), Vec::new());
        let mut seq = s.serialize_seq(Some(shard.len()))?;
        for (slot, doc) in shard.docs() {
            tags.clear();
            tags.extend(doc.tags().map(|sym| e.tags[sym as usize]));
            terms.clear();
            for sym in doc.terms() {
                let list = shard
                    .postings(sym)
                    .ok_or_else(|| S::Error::custom("a document's term has no posting list"))?;
                let entries = list.entries();
                let at = &mut cursors[sym as usize];
                while entries.get(*at as usize).is_some_and(|p| p.slot() < slot) {
                    *at += 1;
                }
                let posting = entries
                    .get(*at as usize)
                    .filter(|p| p.slot() == slot)
                    .ok_or_else(|| S::Error::custom("a document's term has no posting for it"))?;
                terms.push((e.terms[sym as usize], list.tf(*posting)));
            }
            seq.serialize_element(&DocRecord {
                id: doc.id,
                version: doc.version,
                task_type: e.task_types[doc.task_type() as usize],
                len: shard.lens()[slot as usize],
                outcome: doc.outcome(),
                reward: doc.reward,
                started_at: doc.started_at,
                completed_at: doc.completed_at(),
                embedding: doc.embedding().map(|(v, _)| v),
                tags: &tags,
                terms: &terms,
            })?;
        }
        seq.end()
    }
}

/// How to decode a shard file's content into a shard: which shard it must be, and the index's
/// settings. [`ShardLoad::of_len`] makes the seed for a payload of a given length.
#[derive(Debug, Clone)]
pub(crate) struct ShardLoad {
    pub(crate) key: ShardKey,
    pub(crate) bucket_width: i64,
    pub(crate) embedding_dimension: Option<usize>,
}

/// A shard decoded, or why its content was refused (postcard's errors keep no message, so a
/// refusal is a value, not a decoding error).
pub(crate) type Loaded = Result<Shard, String>;

impl ShardLoad {
    /// The seed decoding a payload of `payload_len` bytes: `deserialize` builds the shard as
    /// the decoder reads, and no count read from the payload may promise more content than
    /// its length holds (so a damaged count never reserves memory for it).
    pub(crate) fn of_len(self, payload_len: u64) -> ShardSeed {
        ShardSeed {
            load: self,
            payload_len,
        }
    }

    /// Decode `bytes`, the whole content (test spill targets keep shards in memory).
    #[cfg(test)]
    pub(crate) fn decode(self, bytes: &[u8]) -> crate::error::Result<Shard> {
        use crate::error::Error;
        let mut d = postcard::Deserializer::from_bytes(bytes);
        let shard = self
            .of_len(bytes.len() as u64)
            .deserialize(&mut d)
            .map_err(|e| Error::corrupt(format!("undecodable shard content: {e}")))?
            .map_err(Error::corrupt)?;
        if !d.finalize().is_ok_and(|rest| rest.is_empty()) {
            return Err(Error::corrupt("bytes after a shard's content"));
        }
        Ok(shard)
    }
}

/// [`ShardLoad`] for a payload of known length.
#[derive(Debug)]
pub(crate) struct ShardSeed {
    load: ShardLoad,
    payload_len: u64,
}

impl<'de> DeserializeSeed<'de> for ShardSeed {
    type Value = Loaded;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Loaded, D::Error> {
        d.deserialize_tuple(6, self)
    }
}

/// The next element of `seq`, which must have one.
pub(super) fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| A::Error::custom("the content ends early"))
}

/// An interner of `(string, documents holding it)` pairs read from a file: each string at
/// most [`MAX_STRING_BYTES`] and held at least once, none twice.
fn interner(list: Vec<(String, u32)>) -> Result<Interner, &'static str> {
    if list.iter().any(|(t, _)| t.len() > MAX_STRING_BYTES) {
        return Err("a term, tag or task type is longer than 4 GiB");
    }
    if list.iter().any(|(_, n)| *n == 0) {
        return Err("a term, tag or task type no document holds");
    }
    let (texts, counts): (Vec<String>, Vec<u32>) = list.into_iter().unzip();
    Interner::from_counted(&texts, counts).ok_or("a string appears twice")
}

impl<'de> Visitor<'de> for ShardSeed {
    type Value = Loaded;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a shard")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loaded, A::Error> {
        let Head {
            namespace,
            domain,
            strings,
        } = match Head::read(&mut seq, &self.load.key, self.payload_len)? {
            Ok(head) => head,
            Err(why) => return Ok(Err(why)),
        };
        let bad = |what: &str| format!("shard ({namespace:?}, {domain:?}): {what}");
        // Term and tag ids of all documents, which the strings' counts add up to.
        let ids: u64 = strings[..2]
            .iter()
            .flatten()
            .map(|(_, n)| u64::from(*n))
            .sum();
        let [terms, tags, task_types] = match interners(strings) {
            Ok(interners) => interners,
            Err(why) => return Ok(Err(bad(why))),
        };
        let seen = [&terms, &tags, &task_types].map(|i| vec![0; i.id_bound()]);
        let mut loader = Loader {
            shard: Shard::loading(self.load.bucket_width, terms, tags, task_types),
            seen,
            embedding_dimension: self.load.embedding_dimension,
            ids: ids as usize,
        };
        let docs = next_docs(&mut seq, &mut loader, self.payload_len)?;
        Ok(docs.and_then(|()| loader.finish()).map_err(|why| bad(&why)))
    }
}

/// The strings lists of a shard file: terms, tags, task types, each `(string, documents
/// holding it)`.
pub(super) type StringLists = [Vec<(String, u32)>; 3];

/// What a shard file holds before its documents: whose shard it is, and its strings.
pub(super) struct Head {
    pub(super) namespace: String,
    pub(super) domain: String,
    pub(super) strings: StringLists,
}

impl Head {
    /// Read the head of the file of `key`'s shard, whose payload is `payload_len` bytes; the
    /// inner error refuses it (another shard's file, or counts the payload cannot hold).
    pub(super) fn read<'de, A: SeqAccess<'de>>(
        seq: &mut A,
        key: &ShardKey,
        payload_len: u64,
    ) -> Result<Result<Self, String>, A::Error> {
        let namespace: String = next(seq)?;
        let domain: String = next(seq)?;
        if *namespace != *key.namespace || *domain != *key.domain {
            return Ok(Err(format!(
                "holds the shard ({namespace:?}, {domain:?}), not ({:?}, {:?})",
                key.namespace, key.domain
            )));
        }
        let strings: StringLists = [next(seq)?, next(seq)?, next(seq)?];
        let bad = |what: &str| Ok(Err(format!("shard ({namespace:?}, {domain:?}): {what}")));
        let sum = |l: &[(String, u32)]| l.iter().map(|(_, n)| u64::from(*n)).sum::<u64>();
        let (postings, tag_ids) = (sum(&strings[0]), sum(&strings[1]));
        if postings * MIN_POSTING_BYTES + tag_ids > payload_len {
            return bad("more terms and tags than the content holds");
        }
        if strings[2].len() > MAX_SLOTS {
            // A document keeps its task type's id in 24 bits.
            return bad("more task types than a shard holds documents");
        }
        Ok(Ok(Self {
            namespace,
            domain,
            strings,
        }))
    }
}

/// The interners of a file's strings lists (terms, tags, task types).
pub(super) fn interners(strings: StringLists) -> Result<[Interner; 3], &'static str> {
    let [terms, tags, task_types] = strings;
    Ok([interner(terms)?, interner(tags)?, interner(task_types)?])
}

/// A shard being decoded.
struct Loader {
    shard: Shard,
    /// Per term, tag and task type id: the documents holding it, counted as they come, to
    /// compare with the counts the strings came with.
    seen: [Vec<u32>; 3],
    embedding_dimension: Option<usize>,
    /// Term and tag ids of all documents, by the strings' counts.
    ids: usize,
}

impl DocSink for Loader {
    fn begin(&mut self, count: usize) {
        self.shard.reserve_loaded(count, self.ids);
    }

    /// Check and add one decoded document.
    fn doc(&mut self, d: LoadedDoc, ids: &DocIds) -> Result<(), String> {
        if self.shard.len() >= MAX_SLOTS {
            return Err("more documents than a shard holds".into());
        }
        check_doc(&d, ids, &mut self.seen, self.embedding_dimension)?;
        if self.shard.contains(d.id) {
            return Err("an episode appears twice".into());
        }
        self.shard.push_loaded(d, &ids.tags, &ids.terms);
        Ok(())
    }
}

impl Loader {
    /// The shard, once every count matched what its strings came with.
    fn finish(self) -> Result<Shard, String> {
        let matches = self
            .shard
            .interners()
            .iter()
            .zip(&self.seen)
            .all(|(interner, seen)| {
                seen.iter()
                    .enumerate()
                    .all(|(id, n)| *n == interner.count(id as Sym))
            });
        if !matches {
            return Err(COUNTS_DIFFER.into());
        }
        Ok(self.shard.loaded())
    }
}

/// The refusal of a file whose strings' counts differ from its documents'.
pub(super) const COUNTS_DIFFER: &str = "a string's count of documents does not match the documents";

/// Check one decoded document of a file against the file's strings (ids in range and strictly
/// ascending; each id counted in `seen`, per term, tag and task type id), and its values (a
/// finite reward, a vector of the index's dimension).
pub(super) fn check_doc(
    d: &LoadedDoc,
    ids: &DocIds,
    seen: &mut [Vec<u32>; 3],
    embedding_dimension: Option<usize>,
) -> Result<(), &'static str> {
    if !ids.terms.is_sorted_by(|a, b| a.0 < b.0) || !ids.tags.is_sorted_by(|a, b| a < b) {
        return Err("a document's term or tag ids are not strictly ascending");
    }
    let [seen_terms, seen_tags, seen_task_types] = seen;
    count(seen_terms, ids.terms.iter().map(|(t, _)| *t))?;
    count(seen_tags, ids.tags.iter().copied())?;
    count(seen_task_types, std::iter::once(d.task_type))?;
    if !d.reward.is_finite() {
        return Err("a reward is not finite");
    }
    if let Some(e) = &d.embedding {
        match embedding_dimension {
            Some(dim) => check_vector("snapshot.embedding", e, dim)
                .map_err(|_| "an embedding has the wrong dimension or value")?,
            None => return Err("an embedding, but none is configured"),
        }
    }
    Ok(())
}

/// Count `ids` in `seen`, which has an entry for each valid id.
fn count(seen: &mut [u32], ids: impl Iterator<Item = Sym>) -> Result<(), &'static str> {
    for id in ids {
        *seen
            .get_mut(id as usize)
            .ok_or("a term, tag or task type id is out of range")? += 1;
    }
    Ok(())
}

/// A decoded document's tag ids and terms (buffers reused from one document to the next).
#[derive(Debug, Default)]
pub(super) struct DocIds {
    pub(super) tags: Vec<Sym>,
    pub(super) terms: Vec<(Sym, FieldTf)>,
}

/// What takes a file's documents as they are decoded.
pub(super) trait DocSink {
    /// The file holds `count` documents (no more than its payload can hold).
    fn begin(&mut self, count: usize);
    /// The next document, with its tag and term ids; an error refuses the file.
    fn doc(&mut self, d: LoadedDoc, ids: &DocIds) -> Result<(), String>;
}

/// Decode the next element of `seq`, a file's documents, into `sink`; the inner error refuses
/// the file.
pub(super) fn next_docs<'de, A: SeqAccess<'de>>(
    seq: &mut A,
    sink: &mut dyn DocSink,
    payload_len: u64,
) -> Result<Result<(), String>, A::Error> {
    seq.next_element_seed(DocsIn { sink, payload_len })?
        .ok_or_else(|| A::Error::custom("the content ends early"))
}

/// The documents, handed to a sink as they are decoded; a refusal is the inner result.
struct DocsIn<'a> {
    sink: &'a mut dyn DocSink,
    payload_len: u64,
}

impl<'de> DeserializeSeed<'de> for DocsIn<'_> {
    type Value = Result<(), String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for DocsIn<'_> {
    type Value = Result<(), String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of documents")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let count = seq.size_hint().unwrap_or(0);
        if count > MAX_SLOTS || count as u64 * MIN_DOC_BYTES > self.payload_len {
            return Ok(Err("more documents than the content holds".into()));
        }
        self.sink.begin(count);
        let mut ids = DocIds::default();
        while let Some(doc) = seq.next_element_seed(DocSeed(&mut ids))? {
            if let Err(why) = self.sink.doc(doc, &ids) {
                return Ok(Err(why));
            }
        }
        Ok(Ok(()))
    }
}

/// One document: its fields returned, its tag and term ids left in the buffers.
struct DocSeed<'a>(&'a mut DocIds);

impl<'de> DeserializeSeed<'de> for DocSeed<'_> {
    type Value = LoadedDoc;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<LoadedDoc, D::Error> {
        d.deserialize_tuple(11, self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_> {
    type Value = LoadedDoc;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a document")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LoadedDoc, A::Error> {
        let doc = LoadedDoc {
            id: next(&mut seq)?,
            version: next(&mut seq)?,
            task_type: next(&mut seq)?,
            len: next(&mut seq)?,
            outcome: next(&mut seq)?,
            reward: next(&mut seq)?,
            started_at: next(&mut seq)?,
            completed_at: next(&mut seq)?,
            embedding: next(&mut seq)?,
        };
        let ids = self.0;
        seq.next_element_seed(Refill(&mut ids.tags))?
            .ok_or_else(|| A::Error::custom("the content ends early"))?;
        seq.next_element_seed(Refill(&mut ids.terms))?
            .ok_or_else(|| A::Error::custom("the content ends early"))?;
        Ok(doc)
    }
}

/// A sequence decoded into a buffer, emptied first.
struct Refill<'a, T>(&'a mut Vec<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Refill<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Refill<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.clear();
        while let Some(x) = seq.next_element()? {
            self.0.push(x);
        }
        Ok(())
    }
}

/// What a snapshot's manifest needs of a shard file: its namespace, domain and the `(id,
/// version)` of every document, decoded with the rest read and dropped as it goes (the
/// snapshot of a spilled shard lists it from its spill file). The fields mirror the
/// encoding's, in its order.
#[derive(Debug, Deserialize)]
pub(crate) struct ShardListing {
    pub(crate) namespace: String,
    pub(crate) domain: String,
    _terms: Skipped<(String, u32)>,
    _tags: Skipped<(String, u32)>,
    _task_types: Skipped<(String, u32)>,
    #[serde(deserialize_with = "versions")]
    pub(crate) versions: Vec<(EpisodeId, u64)>,
}

/// A document's fields as [`ShardListing`] reads them: its id and version, the rest dropped.
#[derive(Debug, Deserialize)]
struct DocListing {
    id: EpisodeId,
    version: u64,
    _task_type: u32,
    _field_len: FieldLen,
    _outcome: Option<OutcomeKind>,
    _reward: f64,
    _started_at: i64,
    _completed_at: Option<i64>,
    _embedding: Option<Skipped<f32>>,
    _tags: Skipped<u32>,
    _terms: Skipped<(u32, FieldTf)>,
}

/// A sequence of `T` read and dropped.
#[derive(Debug)]
pub(super) struct Skipped<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Skipped<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Each<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for Each<T> {
            type Value = Skipped<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skipped<T>, A::Error> {
                while seq.next_element::<T>()?.is_some() {}
                Ok(Skipped(PhantomData))
            }
        }
        d.deserialize_seq(Each(PhantomData))
    }
}

/// The `(id, version)` of each of a sequence of documents.
fn versions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(EpisodeId, u64)>, D::Error> {
    struct Each;
    impl<'de> Visitor<'de> for Each {
        type Value = Vec<(EpisodeId, u64)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence of documents")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(d) = seq.next_element::<DocListing>()? {
                out.push((d.id, d.version));
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Each)
}

/// The encoding as plain data, for tests to read what was written and to write what a
/// writer never would.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PlainShard {
    pub(crate) namespace: String,
    pub(crate) domain: String,
    pub(crate) terms: Vec<(String, u32)>,
    pub(crate) tags: Vec<(String, u32)>,
    pub(crate) task_types: Vec<(String, u32)>,
    pub(crate) docs: Vec<PlainDoc>,
}

/// One document of a [`PlainShard`].
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PlainDoc {
    pub(crate) id: EpisodeId,
    pub(crate) version: u64,
    pub(crate) task_type: u32,
    pub(crate) field_len: FieldLen,
    pub(crate) outcome: Option<OutcomeKind>,
    pub(crate) reward: f64,
    pub(crate) started_at: i64,
    pub(crate) completed_at: Option<i64>,
    pub(crate) embedding: Option<Vec<f32>>,
    pub(crate) tags: Vec<u32>,
    pub(crate) terms: Vec<(u32, FieldTf)>,
}
