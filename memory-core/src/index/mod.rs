//! The in-memory retrieval index: what episodes exist, grouped for fast, filtered search.
//!
//! Owns the data structures (shards by namespace and domain, task-type partitions with an
//! R-tree over time and reward, temporal clusters, term statistics, vectors) and keeps them
//! consistent under inserts, replaces, moves and removals. It never scores, does I/O only
//! through the spill target on its own thread (`spill`), and under a memory budget through
//! the id directory's file (`dirfile`: one block read per lookup, on the caller's thread),
//! and never holds a lock across an `.await`; `retrieval` reads it to answer queries.

mod cell;
mod cluster;
mod config;
mod directory;
mod dirfile;
mod document;
mod fields;
mod fold;
mod footprint;
mod image;
mod interner;
mod partition;
mod postings;
mod shard;
mod slots;
mod spatiotemporal;
mod spill;
mod stats;
mod tokenize;

pub use cell::LockWaitStats;
pub use config::IndexConfig;
pub use fields::{CHANNEL_COUNT, Channel, FIELD_COUNT, Field};
pub(crate) use fold::ShardFold;
pub use spatiotemporal::{BulkBuild, SpatiotemporalIndex};
pub(crate) use spatiotemporal::{ShardContent, SpilledShard};
pub(crate) use spill::ShardSpill;
pub use stats::IndexStats;

pub(crate) use cell::ShardCell;
pub(crate) use cluster::{ClusterSummary, bucket_span};
pub(crate) use document::{Doc, FieldTf, RestKey, check_vector, norm};
#[cfg(test)]
pub(crate) use document::{DocHeap, IndexedEpisode};
pub(crate) use image::{ShardListing, ShardLoad, ShardView};
pub(crate) use interner::Sym;
pub(crate) use partition::{Cluster, Partition, Slot, TimeRewardBox};
pub(crate) use postings::{Posting, TermPostings};
pub(crate) use shard::Shard;
pub(crate) use tokenize::terms;
