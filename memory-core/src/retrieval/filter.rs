//! A query's scope and filters, compiled against one shard and applied inside the index.
//!
//! Owns [`ShardFilter`]: the task-type scope, tags (resolved to the shard's tag ids), time
//! ranges, outcome, reward floor and the completed-only rule, as one predicate over an indexed
//! episode plus the R-tree box (`started_at` range × reward floor) the hierarchical path
//! searches. Every path applies the same predicate to every episode it scores, before the
//! top-k, so a filter can never be satisfied "after the fact". This module must never score.

use crate::episode::OutcomeKind;
use crate::index::{Doc, Shard, Sym, TimeRewardBox};

use super::query::RetrievalQuery;

/// The query's conditions in one shard's terms.
#[derive(Debug)]
pub(crate) struct ShardFilter<'q> {
    task_type: Option<&'q str>,
    /// Its id in the shard (when it has one).
    task_type_sym: Option<Sym>,
    /// `None`: no constraint. `Some(ids)`: at least one (ids unknown here are dropped).
    tags_any: Option<Vec<Sym>>,
    tags_all: Vec<Sym>,
    started: Option<(i64, i64)>,
    completed: Option<(i64, i64)>,
    outcome: Option<OutcomeKind>,
    min_reward: Option<f64>,
    include_in_progress: bool,
    /// Some condition cannot hold for any episode of this shard.
    impossible: bool,
}

impl<'q> ShardFilter<'q> {
    /// Compile `query`'s conditions for `shard`.
    pub(crate) fn compile(query: &'q RetrievalQuery, shard: &Shard) -> Self {
        let mut impossible = false;
        let tags_any = if query.any_tags().is_empty() {
            None
        } else {
            let mut ids: Vec<Sym> = query
                .any_tags()
                .iter()
                .filter_map(|t| shard.tag_sym(t))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            impossible |= ids.is_empty();
            Some(ids)
        };
        let mut tags_all = Vec::with_capacity(query.all_tags().len());
        for t in query.all_tags() {
            match shard.tag_sym(t) {
                Some(id) => tags_all.push(id),
                None => impossible = true,
            }
        }
        let started = match query.started_range() {
            Some(r) => {
                let m = r.micros();
                impossible |= m.is_none();
                m
            }
            None => None,
        };
        let completed = match query.completed_range() {
            Some(r) => {
                let m = r.micros();
                impossible |= m.is_none();
                m
            }
            None => None,
        };
        let task_type_sym = query.task_type_scope().and_then(|t| shard.task_type_sym(t));
        impossible |= query.task_type_scope().is_some() && task_type_sym.is_none();
        Self {
            task_type: query.task_type_scope(),
            task_type_sym,
            tags_any,
            tags_all,
            started,
            completed,
            outcome: query.outcome_filter(),
            min_reward: query.reward_floor(),
            include_in_progress: query.includes_in_progress(),
            impossible,
        }
    }

    /// Whether any episode of the shard could pass.
    pub(crate) fn can_match(&self) -> bool {
        !self.impossible
    }

    /// The task type the query is scoped to.
    pub(crate) fn task_type(&self) -> Option<&str> {
        self.task_type
    }

    /// The R-tree box covering every episode that can pass.
    pub(crate) fn tree_box(&self) -> TimeRewardBox {
        let (started_from, started_to) = self.started.unwrap_or((i64::MIN, i64::MAX));
        TimeRewardBox {
            started_from,
            started_to,
            min_reward: self.min_reward.unwrap_or(f64::NEG_INFINITY),
        }
    }

    /// Whether `doc` satisfies every condition of the query.
    pub(crate) fn matches(&self, doc: Doc<'_>) -> bool {
        if self.impossible {
            return false;
        }
        if let Some(t) = self.task_type_sym
            && doc.task_type() != t
        {
            return false;
        }
        if !self.include_in_progress && doc.outcome().is_none() {
            return false;
        }
        if let Some(kind) = self.outcome
            && doc.outcome() != Some(kind)
        {
            return false;
        }
        if let Some(min) = self.min_reward
            && doc.reward < min
        {
            return false;
        }
        if let Some((lo, hi)) = self.started
            && !(lo..=hi).contains(&doc.started_at)
        {
            return false;
        }
        if let Some((lo, hi)) = self.completed {
            match doc.completed_at() {
                Some(c) if (lo..=hi).contains(&c) => {}
                _ => return false,
            }
        }
        if let Some(any) = &self.tags_any
            && !any.iter().any(|t| doc.has_tag(*t))
        {
            return false;
        }
        self.tags_all.iter().all(|t| doc.has_tag(*t))
    }
}
