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

use super::fields::FIELD_COUNT;

/// One shard's content.
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
}

/// One analyzed document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DocImage {
    pub(crate) id: EpisodeId,
    pub(crate) version: u64,
    pub(crate) task_type: u32,
    /// Distinct tag ids, ascending.
    pub(crate) tags: Vec<u32>,
    /// Distinct term ids with per-field frequencies, ascending by id. Frequencies are `u16`
    /// here whatever the in-memory width (a wider frequency saturates when loaded).
    pub(crate) terms: Vec<(u32, [u16; FIELD_COUNT])>,
    pub(crate) field_len: [u32; FIELD_COUNT],
    pub(crate) outcome: Option<OutcomeKind>,
    pub(crate) reward: f64,
    pub(crate) started_at: i64,
    pub(crate) completed_at: Option<i64>,
    pub(crate) embedding: Option<Vec<f32>>,
}
