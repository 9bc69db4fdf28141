//! Poseidon sparse Merkle trees, natively and in-circuit: the state commitment of the
//! reference app-rollup (`docs/reference-rollup.md`).
//!
//! - A tree has a fixed `depth`; leaf `i` is reached by the bits of `i`, lowest bit at the leaf.
//! - An inner node is `Poseidon(left, right)`; an empty leaf is `0`.
//! - A (key, value) pair lives at leaf `key mod 2^depth` as `Poseidon(key, value)`.
//!
//! [`MerkleChip::access`] proves one read or write of a key against a root and returns the root
//! after it: two walks up the same siblings, one from the old leaf and one from the new. The
//! leaf index is taken from the key's canonical bits ([`MerkleChip::index_bits`]), so a prover
//! cannot move a key to another leaf.

use halo2_base::{
    gates::{GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::halo2curves::ff::PrimeField,
    poseidon::hasher::PoseidonHasher,
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};
use serde::{Deserialize, Serialize};

use crate::{poseidon, Error, Fr, Result};

/// Deepest tree supported (leaf indices are `u64`).
pub const MAX_DEPTH: usize = 64;

/// Hash of an inner node (and of a leaf: `hash_node(key, value)`).
pub fn hash_node(left: Fr, right: Fr) -> Fr {
    poseidon::hash(&[left, right])
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
    /// Whether the key's leaf was occupied (by this key) before.
    pub existed: bool,
    /// The value before (`0` if the key did not exist).
    pub before: Fr,
    /// The value after (equal to `before` for a read).
    pub after: Fr,
    /// Siblings of the key's leaf, from the leaf up, before the access.
    pub siblings: Vec<Fr>,
}

impl MerkleAccess {
    /// The root before the access.
    pub fn root_before(&self) -> Fr {
        let leaf = if self.existed {
            hash_node(self.key, self.before)
        } else {
            Fr::zero()
        };
        root_from_path(
            leaf,
            index_of(&self.key, self.siblings.len()),
            &self.siblings,
        )
    }

    /// The root after the access (the key's leaf holds `Poseidon(key, after)` once written; a
    /// read of a key that never existed leaves its leaf empty).
    pub fn root_after(&self) -> Fr {
        if !self.existed && self.after == self.before {
            return self.root_before();
        }
        root_from_path(
            hash_node(self.key, self.after),
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
    /// 1 if the leaf was occupied, constrained to a bit.
    pub existed: AssignedValue<Fr>,
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

    /// Loads an access; `existed` is constrained to a bit. Fails if the path has another length
    /// than the tree's depth.
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
        let existed = ctx.load_witness(Fr::from(u64::from(access.existed)));
        self.range.gate().assert_bit(ctx, existed);
        Ok(AssignedMerkleAccess {
            key: ctx.load_witness(access.key),
            existed,
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
        let (low, high) = split_at_bit(key.value(), self.depth);
        self.index_bits_of(ctx, key, low, high)
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
        bits
    }

    /// The root reached from `leaf` along `bits` (lowest first) and `siblings`.
    pub fn root_from_path(
        &self,
        ctx: &mut Context<Fr>,
        hasher: &PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>,
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
                poseidon::hash_assigned(hasher, ctx, gate, &[left, right])
            })
    }

    /// Proves `access` against `root` and returns the root after it.
    ///
    /// Constrains: the old leaf (`Poseidon(key, before)` if `existed`, else `0` with
    /// `before = 0`) is at the key's canonical index under `root`. The new leaf is
    /// `Poseidon(key, after)`, or stays empty when a key that never existed is only read.
    pub fn access(
        &self,
        ctx: &mut Context<Fr>,
        hasher: &PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>,
        root: AssignedValue<Fr>,
        access: &AssignedMerkleAccess,
    ) -> AssignedValue<Fr> {
        let gate = self.range.gate();
        let bits = self.index_bits(ctx, access.key);
        // A key that did not exist reads as 0.
        let missing = gate.not(ctx, access.existed);
        let stray = gate.mul(ctx, missing, access.before);
        gate.assert_is_const(ctx, &stray, &Fr::zero());

        let old_hash = poseidon::hash_assigned(hasher, ctx, gate, &[access.key, access.before]);
        let old_leaf = gate.mul(ctx, access.existed, old_hash);
        let computed = self.root_from_path(ctx, hasher, old_leaf, &bits, &access.siblings);
        ctx.constrain_equal(&computed, &root);

        // The leaf is written unless a missing key is only read (after = before = 0).
        let unchanged = gate.is_equal(ctx, access.after, Existing(access.before));
        let untouched = gate.mul(ctx, missing, unchanged);
        let new_hash = poseidon::hash_assigned(hasher, ctx, gate, &[access.key, access.after]);
        let new_leaf = gate.select(ctx, old_leaf, new_hash, untouched);
        self.root_from_path(ctx, hasher, new_leaf, &bits, &access.siblings)
    }
}
