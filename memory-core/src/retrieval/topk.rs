//! The bounded best-k set every path collects into, with a total, deterministic order.
//!
//! Owns [`Candidate`] and [`TopK`]. Order: higher score first, then lower [`EpisodeId`], so
//! results never depend on the order episodes were inserted or visited. An id is kept at most
//! once: a query reads shards one after another, so an episode moved between two shards by a
//! concurrent write can be met twice; the better-ranked sighting is kept. This module must
//! never look at documents: it ranks what it is offered.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use crate::id::EpisodeId;
use crate::index::Slot;

use super::scorer::ScoreBreakdown;

/// A scored episode.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) id: EpisodeId,
    pub(crate) version: u64,
    pub(crate) score: f64,
    pub(crate) breakdown: ScoreBreakdown,
    /// Which searched shard (position in the query's shard list) and slot it came from.
    pub(crate) shard: usize,
    pub(crate) slot: Slot,
}

/// `a` ranks before `b`.
pub(crate) fn rank_order(a: &Candidate, b: &Candidate) -> Ordering {
    b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id))
}

/// Heap entry whose greatest element is the worst-ranked candidate.
#[derive(Debug)]
struct Worst(Candidate);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Worst {}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        rank_order(&self.0, &other.0)
    }
}

/// The best `capacity` candidates offered so far.
#[derive(Debug)]
pub(crate) struct TopK {
    capacity: usize,
    heap: BinaryHeap<Worst>,
    members: HashSet<EpisodeId>,
}

impl TopK {
    /// An empty set keeping at most `capacity` (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            heap: BinaryHeap::with_capacity(capacity.min(4096) + 1),
            members: HashSet::new(),
        }
    }

    /// Offer `c`; kept if the set is not full or `c` ranks before the worst kept.
    pub(crate) fn offer(&mut self, c: Candidate) {
        // Full and not better than the worst kept: nothing changes (an earlier sighting of the
        // same id is kept and ranks at least as well as the worst).
        if self.heap.len() >= self.capacity
            && let Some(worst) = self.heap.peek()
            && rank_order(&c, &worst.0) != Ordering::Less
        {
            return;
        }
        if self.members.contains(&c.id) {
            let better = self
                .heap
                .iter()
                .any(|w| w.0.id == c.id && rank_order(&c, &w.0) == Ordering::Less);
            if !better {
                return;
            }
            self.heap.retain(|w| w.0.id != c.id);
            self.members.remove(&c.id);
        }
        if self.heap.len() < self.capacity {
            self.members.insert(c.id);
            self.heap.push(Worst(c));
        } else if let Some(worst) = self.heap.peek()
            && rank_order(&c, &worst.0) == Ordering::Less
        {
            if let Some(out) = self.heap.pop() {
                self.members.remove(&out.0.id);
            }
            self.members.insert(c.id);
            self.heap.push(Worst(c));
        }
    }

    /// The score a candidate must reach to enter, once the set is full.
    pub(crate) fn threshold(&self) -> Option<f64> {
        if self.heap.len() < self.capacity {
            None
        } else {
            self.heap.peek().map(|w| w.0.score)
        }
    }

    /// How many it keeps at most.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many are kept.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// The kept candidates (any order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Candidate> {
        self.heap.iter().map(|w| &w.0)
    }

    /// The kept candidates, best first.
    pub(crate) fn into_sorted(self) -> Vec<Candidate> {
        let mut v: Vec<Candidate> = self.heap.into_iter().map(|w| w.0).collect();
        v.sort_by(rank_order);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(score: f64, id: EpisodeId) -> Candidate {
        Candidate {
            id,
            version: 1,
            score,
            breakdown: ScoreBreakdown::default(),
            shard: 0,
            slot: 0,
        }
    }

    #[test]
    fn keeps_the_best_with_ties_by_id() {
        let ids: Vec<EpisodeId> = (0..5).map(|_| EpisodeId::new()).collect();
        let mut forward = TopK::new(3);
        let mut backward = TopK::new(3);
        let scores = [0.5, 0.9, 0.5, 0.1, 0.5];
        for (s, id) in scores.iter().zip(&ids) {
            forward.offer(cand(*s, *id));
        }
        for (s, id) in scores.iter().zip(&ids).rev() {
            backward.offer(cand(*s, *id));
        }
        let f: Vec<EpisodeId> = forward.into_sorted().iter().map(|c| c.id).collect();
        let b: Vec<EpisodeId> = backward.into_sorted().iter().map(|c| c.id).collect();
        assert_eq!(f, vec![ids[1], ids[0], ids[2]]);
        assert_eq!(f, b);
    }

    #[test]
    fn an_id_is_kept_once_at_its_best() {
        let id = EpisodeId::new();
        let mut t = TopK::new(3);
        t.offer(cand(0.5, id));
        t.offer(cand(0.9, id));
        t.offer(cand(0.1, id));
        t.offer(cand(0.2, EpisodeId::new()));
        let v = t.into_sorted();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].id, v[0].score), (id, 0.9));
    }

    #[test]
    fn threshold_appears_when_full() {
        let mut t = TopK::new(2);
        t.offer(cand(1.0, EpisodeId::new()));
        assert_eq!(t.threshold(), None);
        t.offer(cand(2.0, EpisodeId::new()));
        assert_eq!(t.threshold(), Some(1.0));
        assert_eq!(t.len(), 2);
    }
}
