//! The flat path: score every episode of the searched shards that passes the filter.
//!
//! Owns the linear scan. It uses none of the hierarchy's structures (no partitions, R-tree or
//! clusters), which makes it the reference the hierarchical path must agree with and the
//! fallback when the hierarchy yields too little. It must never skip an episode that passes
//! the filter.

use super::topk::TopK;
use super::visit::ShardVisit;

/// Offer every qualifying episode of `visit`'s shard to `top`.
pub(crate) fn collect(visit: &ShardVisit<'_>, top: &mut TopK) {
    for (slot, doc) in visit.shard.docs() {
        visit.consider(slot, doc, top, None);
    }
}
