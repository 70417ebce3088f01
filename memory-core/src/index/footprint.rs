//! Memory estimates for the index's containers: the method behind `memory_bytes()`.
//!
//! Owns the arithmetic, and the growth policy of the index's long-lived vectors
//! ([`reserve_one`], and [`place`] for those whose freed places are reused). The method: every container is charged for its *capacity*, not its
//! length (what the allocator actually holds), using `size_of` of the stored types:
//! a `Vec<T>` costs `capacity × size_of::<T>()`; a `HashMap<K, V>` (hashbrown) costs one bucket
//! of `size_of::<(K, V)>() + 1` control byte per slot, with `capacity × 8 / 7` slots rounded to
//! a power of two, plus one 16-byte control group; a `BTreeMap<K, V>` costs
//! `len × size_of::<(K, V)>() × 3 / 2` (nodes are on average two-thirds full) plus one node
//! header per 11 entries; boxed strings and slices cost their length. Allocator headers and
//! size-class rounding are not counted (typically 0–16 bytes per allocation), so the figure is
//! a slight under-estimate of resident memory. This module must never walk data itself or take
//! locks: callers pass it counts.

use std::mem::size_of;

/// Heap bytes of a `Vec<T>` with `capacity`.
pub(crate) fn vec<T>(capacity: usize) -> usize {
    capacity.saturating_mul(size_of::<T>())
}

/// Make room for one more element in `v`, growing it by an eighth (at least 4 elements)
/// rather than `Vec`'s doubling. The index's vectors live as long as the process and are
/// rarely shrunk, so doubling would leave up to half of each one unused after any insert: with
/// this policy the slack stays under 12.5 % (plus 4 elements) while growth stays geometric, so
/// appends still cost amortized O(1).
pub(crate) fn reserve_one<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 8).max(4));
    }
}

/// Put `item` in `v` at a place from `free` (places freed earlier), else at the end, growing
/// by [`reserve_one`]; returns its index. `v` holds fewer than 2^32 items (its callers index it
/// by `u32` ids).
pub(crate) fn place<T>(v: &mut Vec<T>, free: &mut Vec<u32>, item: T) -> u32 {
    match free.pop() {
        Some(at) => {
            v[at as usize] = item;
            at
        }
        None => {
            reserve_one(v);
            v.push(item);
            u32::try_from(v.len() - 1).expect("under 2^32 items")
        }
    }
}

/// Heap bytes of a hashbrown `HashMap<K, V>` / `HashSet<K>` (use `V = ()`) with `capacity`.
pub(crate) fn hash_map<K, V>(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 4 {
        4
    } else if capacity < 8 {
        8
    } else {
        (capacity.saturating_mul(8) / 7).next_power_of_two()
    };
    const GROUP_WIDTH: usize = 16;
    buckets * (size_of::<(K, V)>() + 1) + GROUP_WIDTH
}

/// Heap bytes of a `BTreeMap<K, V>` holding `len` entries.
pub(crate) fn btree_map<K, V>(len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    const NODE_HEADER: usize = 16;
    const ENTRIES_PER_NODE: usize = 11;
    len * size_of::<(K, V)>() * 3 / 2 + len.div_ceil(ENTRIES_PER_NODE) * NODE_HEADER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_containers_cost_nothing() {
        assert_eq!(vec::<u64>(0), 0);
        assert_eq!(hash_map::<u64, u64>(0), 0);
        assert_eq!(btree_map::<u64, u64>(0), 0);
    }

    #[test]
    fn vectors_grow_by_an_eighth() {
        let mut v: Vec<u64> = Vec::new();
        let mut reallocations = 0;
        for i in 0..100_000u64 {
            let before = v.capacity();
            reserve_one(&mut v);
            v.push(i);
            if v.capacity() != before {
                reallocations += 1;
            }
            assert!(
                v.capacity() <= v.len() + (v.len() / 8).max(4),
                "at {}",
                v.len()
            );
        }
        // Geometric: about log(100,000 / 32) / log(1.125) ≈ 68 steps after the first few.
        assert!(reallocations < 100, "{reallocations} reallocations");
    }

    #[test]
    fn maps_cost_at_least_their_entries() {
        for n in [1usize, 3, 7, 8, 100, 1000] {
            assert!(hash_map::<u64, u64>(n) >= n * 16, "{n}");
            assert!(btree_map::<u64, u64>(n) >= n * 16, "{n}");
        }
    }
}
