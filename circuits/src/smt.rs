//! A fixed-depth Poseidon sparse Merkle tree over BN254's scalar field.
//!
//! - Leaves are indexed by `depth`-bit integers; an empty leaf is `0`.
//! - An inner node is `compress(left, right)` ([`crate::merkle::hash_node`], the function the
//!   circuit's [`crate::merkle::MerkleChip`] mirrors).
//! - An empty subtree of height `h` hashes to `zero[h]`: `zero[0] = 0`,
//!   `zero[h + 1] = compress(zero[h], zero[h])`.
//!
//! Only non-empty nodes are stored, so a tree of depth 32 with a few thousand leaves costs a
//! few hundred thousand map entries. [`SparseMerkleTree::path`] gives the siblings a circuit
//! needs to prove a read or a write, and [`root_from_path`] is the computation the circuit
//! repeats. The reference rollup's state and [`crate::memory::MemoryWitness`] are built on it.

use std::collections::HashMap;

use crate::{merkle, Error, Fr, Result};

/// Deepest tree supported (leaf indices are `u64`).
pub const MAX_DEPTH: usize = 64;

/// A sparse Merkle tree of fixed depth.
#[derive(Debug, Clone)]
pub struct SparseMerkleTree {
    depth: usize,
    /// `zero[h]`: the hash of an empty subtree of height `h`, for `h` in `0..=depth`.
    zero: Vec<Fr>,
    /// Non-empty nodes by (height, index at that height); height 0 holds the leaves.
    nodes: HashMap<(u8, u64), Fr>,
}

pub use crate::merkle::{hash_node, root_from_path};

impl SparseMerkleTree {
    /// An empty tree of `depth` levels (`2^depth` leaves).
    pub fn new(depth: usize) -> Result<Self> {
        if depth == 0 || depth > MAX_DEPTH {
            return Err(Error::OutOfRange {
                what: "tree depth",
                value: depth.to_string(),
                expected: "1 to 64",
            });
        }
        let mut zero = Vec::with_capacity(depth + 1);
        zero.push(Fr::zero());
        for h in 0..depth {
            zero.push(hash_node(zero[h], zero[h]));
        }
        Ok(Self {
            depth,
            zero,
            nodes: HashMap::new(),
        })
    }

    /// Number of levels below the root.
    pub const fn depth(&self) -> usize {
        self.depth
    }

    /// The root of an empty tree of this depth.
    pub fn empty_root(&self) -> Fr {
        self.zero[self.depth]
    }

    /// The current root.
    pub fn root(&self) -> Fr {
        self.node(self.depth, 0)
    }

    /// The leaf at `index` (`0` if empty).
    pub fn leaf(&self, index: u64) -> Fr {
        self.node(0, index)
    }

    /// The siblings of the path from leaf `index` to the root, from the leaf up.
    pub fn path(&self, index: u64) -> Vec<Fr> {
        (0..self.depth)
            .map(|h| self.node(h, (index >> h) ^ 1))
            .collect()
    }

    /// Sets the leaf at `index` and rehashes its path; returns the previous leaf.
    ///
    /// # Panics
    /// If `index` does not fit in `depth` bits (callers derive indices with [`Self::index_of`]).
    pub fn set(&mut self, index: u64, leaf: Fr) -> Fr {
        assert!(
            self.depth == 64 || index >> self.depth == 0,
            "leaf index {index} outside a tree of depth {}",
            self.depth
        );
        let previous = self.leaf(index);
        let mut node = leaf;
        for h in 0..self.depth {
            self.put(h, index >> h, node);
            let sibling = self.node(h, (index >> h) ^ 1);
            node = if (index >> h) & 1 == 0 {
                hash_node(node, sibling)
            } else {
                hash_node(sibling, node)
            };
        }
        self.put(self.depth, 0, node);
        previous
    }

    /// The leaf index of a key: its low `depth` bits.
    pub fn index_of(&self, key: &Fr) -> u64 {
        merkle::index_of(key, self.depth)
    }

    fn node(&self, height: usize, index: u64) -> Fr {
        self.nodes
            .get(&(height as u8, index))
            .copied()
            .unwrap_or(self.zero[height])
    }

    fn put(&mut self, height: usize, index: u64, value: Fr) {
        if value == self.zero[height] {
            self.nodes.remove(&(height as u8, index));
        } else {
            self.nodes.insert((height as u8, index), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_roots_chain_zero_hashes() {
        let tree = SparseMerkleTree::new(3).unwrap();
        let z1 = hash_node(Fr::zero(), Fr::zero());
        let z2 = hash_node(z1, z1);
        assert_eq!(tree.root(), hash_node(z2, z2));
        assert!(SparseMerkleTree::new(0).is_err());
        assert!(SparseMerkleTree::new(65).is_err());
    }

    #[test]
    fn root_matches_a_dense_recomputation() {
        let mut tree = SparseMerkleTree::new(3).unwrap();
        let mut leaves = [Fr::zero(); 8];
        for (i, v) in [(5u64, 11u64), (0, 7), (7, 3), (5, 2)] {
            tree.set(i, Fr::from(v));
            leaves[i as usize] = Fr::from(v);
        }
        let mut level = leaves.to_vec();
        while level.len() > 1 {
            level = level.chunks(2).map(|p| hash_node(p[0], p[1])).collect();
        }
        assert_eq!(tree.root(), level[0]);
        for i in 0..8 {
            assert_eq!(root_from_path(tree.leaf(i), i, &tree.path(i)), tree.root());
        }
        // A wrong leaf or a wrong index does not reach the root.
        assert_ne!(root_from_path(Fr::from(12), 5, &tree.path(5)), tree.root());
        assert_ne!(root_from_path(tree.leaf(5), 4, &tree.path(5)), tree.root());
    }

    #[test]
    fn clearing_every_leaf_gives_the_empty_tree_back() {
        let mut tree = SparseMerkleTree::new(16).unwrap();
        for i in [1u64, 2, 40_000, 65_535] {
            tree.set(i, Fr::from(i + 1));
        }
        assert_ne!(tree.root(), tree.empty_root());
        for i in [2u64, 65_535, 1, 40_000] {
            tree.set(i, Fr::zero());
        }
        assert_eq!(tree.root(), tree.empty_root());
        assert!(tree.nodes.is_empty(), "no empty node is stored");
    }
}
