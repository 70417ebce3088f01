//! Label feedback: the feedback query built from the episodes most similar to the text.
//!
//! Owns how the feedback query `q'` is formed (see `RetrievalConfig`): the terms of the label
//! channel (tags, tools, task type) of the episodes most similar to the query text (a first
//! pass scored by the lexical and cosine terms alone), each weighted by the share of those
//! episodes holding it. Only episodes that matched the text lexically count, so an unmatched
//! query never drifts towards whatever is merely recent. The terms are read
//! under each shard's read lock, one shard at a time. This module must never score or rank.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Result;
use crate::index::{Channel, FIELD_COUNT, Field, ShardCell, SpatiotemporalIndex};

use super::topk::Candidate;

/// The feedback terms of `best` (candidates from a pass over `cells`), with weights in
/// `(0, 1]`, sorted by term.
pub(crate) fn label_terms(
    cells: &[Arc<ShardCell>],
    index: &SpatiotemporalIndex,
    best: &[Candidate],
) -> Result<Vec<(String, f64)>> {
    let matched: Vec<&Candidate> = best.iter().filter(|c| c.breakdown.lexical > 0.0).collect();
    if matched.is_empty() {
        return Ok(Vec::new());
    }
    let label_fields: Vec<usize> = Field::ALL
        .iter()
        .filter(|f| f.channel() == Channel::Labels)
        .map(|f| f.index())
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_shard: BTreeMap<usize, Vec<&Candidate>> = BTreeMap::new();
    for c in &matched {
        by_shard.entry(c.shard).or_default().push(c);
    }
    for (shard_no, candidates) in by_shard {
        let Some(cell) = cells.get(shard_no) else {
            continue;
        };
        let shard = index.read_loaded(cell)?;
        for c in candidates {
            // By id: the shard may have been spilled and reloaded since the first pass.
            let Some((slot, doc)) = shard.doc_of(c.id, c.slot) else {
                continue;
            };
            for sym in doc.terms() {
                let Some(tf) = shard.term_tf(sym, slot) else {
                    continue;
                };
                if label_fields.iter().any(|&f| f < FIELD_COUNT && tf[f] > 0)
                    && let Some(text) = shard.term_text(sym)
                {
                    *counts.entry(text.to_owned()).or_default() += 1;
                }
            }
        }
    }
    let n = matched.len() as f64;
    Ok(counts.into_iter().map(|(t, k)| (t, k as f64 / n)).collect())
}
