//! Shard images: the content of a shard in a plain, serializable form, for snapshots.
//!
//! Owns [`ShardImage`] and [`DocImage`]: what a shard holds that cannot be recomputed cheaply
//! (analyzed documents with interned term and tag ids, the strings behind those ids), and
//! nothing that can (statistics, R-trees, clusters, postings are rebuilt from it). The form is
//! independent of the in-memory layout, so the layout can change without a snapshot format
//! change. Converting an image back into a shard validates every id and invariant and fails
//! with `Corrupt` rather than panic, so a damaged image that passed its checksum is still never
//! indexed. This module must never do I/O: snapshot files are the caller's.

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
