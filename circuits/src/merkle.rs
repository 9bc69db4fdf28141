//! Poseidon sparse Merkle trees, natively and in-circuit: a state commitment any rollup circuit
//! can open and close keys of.
//!
//! - A tree has a fixed `depth`; leaf `i` is reached by the bits of `i`, lowest bit at the leaf.
//! - An inner node is `compress(left, right)`, Poseidon's one-permutation two-to-one
//!   compression ([`crate::poseidon::compress`]); an empty leaf is `0`.
//! - A (key, value) pair lives at leaf `key mod 2^depth` as `compress(key, value)`, and a key
//!   whose value is `0` has an empty leaf ([`leaf`]). So the root is a function of the
//!   key-value map alone, not of the order of the writes that made it: what lets
//!   [`crate::memory`] open each key once at the pre root and close it once toward the post root.
//!
//! [`MerkleChip::access`] proves one read or write of a key against a root and returns the root
//! after it: two walks up the same siblings, one from the old leaf and one from the new. The
//! leaf index is taken from the key's canonical bits ([`MerkleChip::index_bits`]), so a prover
//! cannot move a key to another leaf.

use halo2_base::{
    gates::{GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::halo2curves::ff::PrimeField,
    AssignedValue, Context,
    QuantumCell::Constant,
};
use serde::{Deserialize, Serialize};

use crate::{poseidon, Error, Fr, Result};

/// Deepest tree supported (leaf indices are `u64`).
pub const MAX_DEPTH: usize = 64;

/// Hash of an inner node (and of an occupied leaf: `hash_node(key, value)`): one permutation.
pub fn hash_node(left: Fr, right: Fr) -> Fr {
    poseidon::compress(left, right)
}

/// The leaf of `key` holding `value`: empty (`0`) when the value is `0`, else
/// `hash_node(key, value)`.
pub fn leaf(key: Fr, value: Fr) -> Fr {
    if value == Fr::zero() {
        Fr::zero()
    } else {
        hash_node(key, value)
    }
}

/// The root reached from `leaf` at `index`, with `siblings` listed from the leaf up.
pub fn root_from_path(leaf: Fr, index: u64, siblings: &[Fr]) -> Fr {
    siblings
        .iter()
        .enumerate()
        .fold(leaf, |node, (height, &sibling)| {
            if (index >> height) & 1 == 0 {
                hash_node(node, sibling)
            } else {
                hash_node(sibling, node)
            }
        })
}

/// The leaf index of a key in a tree of `depth` levels: its low `depth` bits.
pub fn index_of(key: &Fr, depth: usize) -> u64 {
    let bytes = key.to_repr();
    let low = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if depth >= 64 {
        low
    } else {
        low & ((1u64 << depth) - 1)
    }
}

/// `(value mod 2^bit, value >> bit)` of a field element's canonical integer.
fn split_at_bit(value: &Fr, bit: usize) -> (Fr, Fr) {
    let low = Fr::from(index_of(value, bit));
    let high = (*value - low) * crate::entry::pow2(bit as u32).invert().expect("2^bit ≠ 0");
    (low, high)
}

/// One read or write of a key, as the circuit checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleAccess {
    /// The key.
    pub key: Fr,
    /// The value before (`0` if the key's leaf is empty).
    pub before: Fr,
    /// The value after (equal to `before` for a read).
    pub after: Fr,
    /// Siblings of the key's leaf, from the leaf up, before the access.
    pub siblings: Vec<Fr>,
}

impl MerkleAccess {
    /// The root before the access.
    pub fn root_before(&self) -> Fr {
        self.root_with(self.before)
    }

    /// The root after the access.
    pub fn root_after(&self) -> Fr {
        self.root_with(self.after)
    }

    fn root_with(&self, value: Fr) -> Fr {
        root_from_path(
            leaf(self.key, value),
            index_of(&self.key, self.siblings.len()),
            &self.siblings,
        )
    }
}

/// A [`MerkleAccess`] loaded into a circuit.
#[derive(Debug, Clone)]
pub struct AssignedMerkleAccess {
    /// The key.
    pub key: AssignedValue<Fr>,
    /// The value before.
    pub before: AssignedValue<Fr>,
    /// The value after.
    pub after: AssignedValue<Fr>,
    /// The siblings, from the leaf up.
    pub siblings: Vec<AssignedValue<Fr>>,
}

/// Proves reads and writes of a sparse Merkle tree.
#[derive(Debug)]
pub struct MerkleChip<'a> {
    range: &'a RangeChip<Fr>,
    depth: usize,
}

impl<'a> MerkleChip<'a> {
    /// A chip for trees of `depth` levels (2 to [`MAX_DEPTH`]).
    pub fn new(range: &'a RangeChip<Fr>, depth: usize) -> Result<Self> {
        if !(2..=MAX_DEPTH).contains(&depth) {
            return Err(Error::OutOfRange {
                what: "tree depth",
                value: depth.to_string(),
                expected: "2 to 64",
            });
        }
        Ok(Self { range, depth })
    }

    /// The tree depth.
    pub const fn depth(&self) -> usize {
        self.depth
    }

    /// Loads an access. Fails if the path has another length than the tree's depth.
    pub fn load(
        &self,
        ctx: &mut Context<Fr>,
        access: &MerkleAccess,
    ) -> Result<AssignedMerkleAccess> {
        if access.siblings.len() != self.depth {
            return Err(Error::OutOfRange {
                what: "Merkle path length",
                value: access.siblings.len().to_string(),
                expected: "the tree depth",
            });
        }
        Ok(AssignedMerkleAccess {
            key: ctx.load_witness(access.key),
            before: ctx.load_witness(access.before),
            after: ctx.load_witness(access.after),
            siblings: ctx.assign_witnesses(access.siblings.iter().copied()),
        })
    }

    /// The low `depth` bits of `key`, lowest first, from its *canonical* decomposition
    /// `key = low + high · 2^depth` with `low + high · 2^depth < p` as integers: without the
    /// last check, `key + p` would give a second index for a third of all keys.
    pub fn index_bits(
        &self,
        ctx: &mut Context<Fr>,
        key: AssignedValue<Fr>,
    ) -> Vec<AssignedValue<Fr>> {
        self.leaf_index(ctx, key).1
    }

    /// The key's leaf index as one value and as its bits (lowest first), from the canonical
    /// decomposition of [`Self::index_bits`].
    pub fn leaf_index(
        &self,
        ctx: &mut Context<Fr>,
        key: AssignedValue<Fr>,
    ) -> (AssignedValue<Fr>, Vec<AssignedValue<Fr>>) {
        let (low, high) = split_at_bit(key.value(), self.depth);
        self.decompose(ctx, key, low, high)
    }

    /// [`Self::index_bits`] with the decomposition given, so tests can try a non-canonical one.
    #[doc(hidden)]
    pub fn index_bits_of(
        &self,
        ctx: &mut Context<Fr>,
        key: AssignedValue<Fr>,
        low: Fr,
        high: Fr,
    ) -> Vec<AssignedValue<Fr>> {
        self.decompose(ctx, key, low, high).1
    }

    fn decompose(
        &self,
        ctx: &mut Context<Fr>,
        key: AssignedValue<Fr>,
        low: Fr,
        high: Fr,
    ) -> (AssignedValue<Fr>, Vec<AssignedValue<Fr>>) {
        let gate = self.range.gate();
        let high_bits = Fr::NUM_BITS as usize - self.depth;
        let [low, high] = [low, high].map(|v| ctx.load_witness(v));
        let bits = gate.num_to_bits(ctx, low, self.depth);
        self.range.range_check(ctx, high, high_bits);
        let sum = gate.mul_add(
            ctx,
            high,
            Constant(crate::entry::pow2(self.depth as u32)),
            low,
        );
        ctx.constrain_equal(&sum, &key);
        // Canonical: (high, low) < (p_high, p_low) lexicographically. As integers
        // low < 2^depth and high < 2^(254 − depth), so the sum is key or key + p.
        let (p_low, p_high) = split_at_bit(&-Fr::one(), self.depth);
        let p_low = p_low + Fr::one();
        // high ≤ p_high: p_high − high does not wrap (depth ≥ 2 keeps a wrapped value out of
        // range).
        let room = gate.sub(ctx, Constant(p_high), high);
        self.range.range_check(ctx, room, high_bits);
        // high = p_high ⇒ low < p_low.
        let at_edge = gate.is_equal(ctx, high, Constant(p_high));
        let low_below = self
            .range
            .is_less_than(ctx, low, Constant(p_low), self.depth + 1);
        let over = gate.mul_not(ctx, low_below, at_edge);
        gate.assert_is_const(ctx, &over, &Fr::zero());
        (low, bits)
    }

    /// The root reached from `leaf` along `bits` (lowest first) and `siblings`.
    pub fn root_from_path(
        &self,
        ctx: &mut Context<Fr>,
        leaf: AssignedValue<Fr>,
        bits: &[AssignedValue<Fr>],
        siblings: &[AssignedValue<Fr>],
    ) -> AssignedValue<Fr> {
        let gate = self.range.gate();
        bits.iter()
            .zip(siblings)
            .fold(leaf, |node, (&bit, &sibling)| {
                // bit = 1: this node is the right child.
                let left = gate.select(ctx, sibling, node, bit);
                let right = gate.select(ctx, node, sibling, bit);
                poseidon::compress_assigned(ctx, gate, left, right)
            })
    }

    /// The leaf of `key` holding `value`: `0` when `value` is `0`, else `compress(key, value)`.
    pub fn leaf(
        &self,
        ctx: &mut Context<Fr>,
        key: AssignedValue<Fr>,
        value: AssignedValue<Fr>,
    ) -> AssignedValue<Fr> {
        let gate = self.range.gate();
        let hash = poseidon::compress_assigned(ctx, gate, key, value);
        let empty = gate.is_zero(ctx, value);
        gate.mul_not(ctx, empty, hash)
    }

    /// Proves `access` against `root` and returns the root after it.
    ///
    /// Constrains: the old leaf ([`Self::leaf`] of `before`) is at the key's canonical index
    /// under `root`; the new leaf is [`Self::leaf`] of `after` at the same place.
    pub fn access(
        &self,
        ctx: &mut Context<Fr>,
        root: AssignedValue<Fr>,
        access: &AssignedMerkleAccess,
    ) -> AssignedValue<Fr> {
        let bits = self.index_bits(ctx, access.key);
        let old_leaf = self.leaf(ctx, access.key, access.before);
        let computed = self.root_from_path(ctx, old_leaf, &bits, &access.siblings);
        ctx.constrain_equal(&computed, &root);
        let new_leaf = self.leaf(ctx, access.key, access.after);
        self.root_from_path(ctx, new_leaf, &bits, &access.siblings)
    }
}
