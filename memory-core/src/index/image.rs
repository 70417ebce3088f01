//! Shard images: the content of a shard in a plain, serializable form, for snapshots.
//!
//! Owns [`ShardImage`] and [`DocImage`]: what a shard holds that cannot be recomputed cheaply
//! (analyzed documents with interned term and tag ids, the strings behind those ids), and
//! nothing that can (statistics, R-trees, clusters, postings are rebuilt from it). The form is
//! independent of the in-memory layout, so the layout can change without a snapshot format
//! change. Converting an image back into a shard validates every id and invariant and fails
//! with `Corrupt` rather than panic, so a damaged image that passed its checksum is still never
//! indexed. This module must never do I/O: snapshot files are the caller's.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::episode::OutcomeKind;
use crate::id::EpisodeId;

use super::document::{FieldLen, FieldTf};

/// One shard's content. The documents' tag and term ids are in three flat arrays, one
/// document after another in the order of `docs` (each document says how many are its own),
/// not in vectors of their own: an image of a million documents is a few large allocations,
/// which the allocator hands back whole once the image is dropped, rather than two million
/// small ones scattered among the index's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShardImage {
    pub(crate) namespace: String,
    pub(crate) domain: String,
    /// Term strings; a document's term id is a position in this list.
    pub(crate) terms: Vec<String>,
    /// Tag strings; a document's tag id is a position in this list.
    pub(crate) tags: Vec<String>,
    /// Task types; a document's task type is a position in this list.
    pub(crate) task_types: Vec<String>,
    pub(crate) docs: Vec<DocImage>,
    /// Each document's distinct tag ids, ascending.
    pub(crate) doc_tags: Vec<u32>,
    /// Each document's distinct term ids, ascending.
    pub(crate) doc_terms: Vec<u32>,
    /// The per-field frequencies of each of `doc_terms`, in the same order, at the width a
    /// shard keeps them (a byte a field, saturating): 4 bytes a posting in memory rather than
    /// 8, and an image in memory is the larger part of what moving a shard costs.
    pub(crate) doc_term_tf: Vec<FieldTf>,
}

/// One analyzed document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DocImage {
    pub(crate) id: EpisodeId,
    pub(crate) version: u64,
    pub(crate) task_type: u32,
    /// How many of [`ShardImage::doc_tags`] are this document's.
    pub(crate) tags: u32,
    /// How many of [`ShardImage::doc_terms`] are this document's.
    pub(crate) terms: u32,
    /// At the width a shard keeps them (saturating).
    pub(crate) field_len: FieldLen,
    pub(crate) outcome: Option<OutcomeKind>,
    pub(crate) reward: f64,
    pub(crate) started_at: i64,
    pub(crate) completed_at: Option<i64>,
    pub(crate) embedding: Option<Vec<f32>>,
}

/// What a snapshot's manifest needs of a shard file: its namespace, domain and the `(id,
/// version)` of every document, decoded from a [`ShardImage`]'s encoding with the rest read
/// and dropped as it goes (the snapshot of a spilled shard lists it from its spill file).
/// The fields mirror [`ShardImage`]'s, in its order.
#[derive(Debug, Deserialize)]
pub(crate) struct ShardListing {
    pub(crate) namespace: String,
    pub(crate) domain: String,
    _terms: Skipped<String>,
    _tags: Skipped<String>,
    _task_types: Skipped<String>,
    #[serde(deserialize_with = "versions")]
    pub(crate) versions: Vec<(EpisodeId, u64)>,
    _doc_tags: Skipped<u32>,
    _doc_terms: Skipped<u32>,
    _doc_term_tf: Skipped<FieldTf>,
}

/// A sequence of `T` read and dropped.
#[derive(Debug)]
struct Skipped<T>(PhantomData<T>);

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

/// The `(id, version)` of each of a sequence of [`DocImage`]s.
fn versions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(EpisodeId, u64)>, D::Error> {
    struct Each;
    impl<'de> Visitor<'de> for Each {
        type Value = Vec<(EpisodeId, u64)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence of documents")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(d) = seq.next_element::<DocImage>()? {
                out.push((d.id, d.version));
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Each)
}
