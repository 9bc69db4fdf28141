//! The cross-rollup call accumulator (DESIGN decision 3): a grand product at a challenge.
//!
//! Over all rollups of a slot, the multiset of assumed entry hashes must equal the multiset of
//! served entry hashes. With `r` derived by Poseidon from every rollup's complete public lists
//! (after all entries are fixed), the aggregation circuit enforces
//!
//! ```text
//! Π_{rollups, j < num_assumed} (r − A[j])  =  Π_{rollups, j < num_served} (r − S[j])
//! ```
//!
//! which two different multisets satisfy with probability at most `N·M / p` over the choice of
//! `r` (Schwartz–Zippel: the difference of the two products is a non-zero polynomial of degree
//! at most `N·M`).
//! `r = Poseidon(CHALLENGE_TAG, domain, slot, for each rollup: id, num_assumed, num_served,
//! A[0..M), S[0..M))`, computed on the *assigned* instances of every rollup proof.
//!
//! The chip also enforces what the layout promises, so that a rollup circuit that does not use
//! the gadget correctly cannot break the check: layout version, counts at most `M`, zero
//! padding, one domain and one slot for all, and distinct rollup ids.

use std::collections::HashMap;

use halo2_base::{
    gates::{GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::halo2curves::ff::{Field, PrimeField},
    AssignedValue, Context,
    QuantumCell::Constant,
};

use crate::{
    layout::{index, real_flags, RollupPublicInputs, LAYOUT_VERSION, MAX_ENTRIES, NUM_INSTANCES},
    poseidon, Error, Fr, Result,
};

/// Domain tag of the challenge ("lockstep.chal.v1" as a 128-bit integer).
pub fn challenge_tag() -> Fr {
    Fr::from_u128(u128::from_be_bytes(*b"lockstep.chal.v1"))
}

/// The challenge inputs of one rollup, in hashing order.
fn challenge_inputs(instances: &[Fr]) -> impl Iterator<Item = Fr> + '_ {
    [index::ROLLUP_ID, index::NUM_ASSUMED, index::NUM_SERVED]
        .into_iter()
        .map(|i| instances[i])
        .chain(
            instances[index::ASSUMED..index::SERVED + MAX_ENTRIES]
                .iter()
                .copied(),
        )
}

/// `r`, natively, from every rollup's instance column.
pub fn challenge(rollups: &[Vec<Fr>]) -> Fr {
    let first = &rollups[0];
    let mut inputs = vec![challenge_tag(), first[index::DOMAIN], first[index::SLOT]];
    for instances in rollups {
        inputs.extend(challenge_inputs(instances));
    }
    poseidon::hash(&inputs)
}

/// Checks natively that the slot's entries balance (every assumed call served with exactly the
/// assumed result, and nothing served that nobody assumed), naming the first mismatch.
pub fn check_balanced(rollups: &[RollupPublicInputs]) -> Result<()> {
    let mut open: HashMap<[u8; 32], i64> = HashMap::new();
    for rollup in rollups {
        for h in &rollup.assumed {
            *open.entry(h.to_bytes()).or_default() += 1;
        }
        for h in &rollup.served {
            *open.entry(h.to_bytes()).or_default() -= 1;
        }
    }
    let mut unbalanced: Vec<_> = open.into_iter().filter(|(_, n)| *n != 0).collect();
    unbalanced.sort();
    match unbalanced.first() {
        None => Ok(()),
        Some((hash, n)) => Err(Error::Unbalanced {
            hash: format!(
                "0x{}",
                hex::encode(hash.iter().rev().copied().collect::<Vec<_>>())
            ),
            surplus: *n,
        }),
    }
}

/// What the accumulator chip returns: the values the aggregation circuit exposes.
#[derive(Debug, Clone)]
pub struct AccumulatorOutput {
    /// The common domain.
    pub domain: AssignedValue<Fr>,
    /// The common slot.
    pub slot: AssignedValue<Fr>,
    /// The challenge `r`.
    pub challenge: AssignedValue<Fr>,
}

/// Enforces the accumulator over the assigned instance columns of every rollup proof.
#[derive(Debug, Clone, Copy)]
pub struct AccumulatorChip<'a> {
    range: &'a RangeChip<Fr>,
}

impl<'a> AccumulatorChip<'a> {
    /// A chip over `range`.
    pub fn new(range: &'a RangeChip<Fr>) -> Self {
        Self { range }
    }

    /// Constrains the layout invariants, derives `r` and enforces the product equality.
    ///
    /// Panics if `rollups` is empty or a column is not [`NUM_INSTANCES`] long (a programming
    /// error: the aggregation circuit's shape fixes both).
    pub fn constrain(
        &self,
        ctx: &mut Context<Fr>,
        rollups: &[Vec<AssignedValue<Fr>>],
    ) -> AccumulatorOutput {
        assert!(!rollups.is_empty(), "at least one rollup");
        let gate = self.range.gate();
        let domain = rollups[0][index::DOMAIN];
        let slot = rollups[0][index::SLOT];

        let mut real = Vec::with_capacity(rollups.len());
        for (i, instances) in rollups.iter().enumerate() {
            assert_eq!(
                instances.len(),
                NUM_INSTANCES,
                "rollup {i}: instance column length"
            );
            gate.assert_is_const(ctx, &instances[index::VERSION], &Fr::from(LAYOUT_VERSION));
            ctx.constrain_equal(&instances[index::DOMAIN], &domain);
            ctx.constrain_equal(&instances[index::SLOT], &slot);
            let mut flags = Vec::with_capacity(2 * MAX_ENTRIES);
            for (count_at, start) in [
                (index::NUM_ASSUMED, index::ASSUMED),
                (index::NUM_SERVED, index::SERVED),
            ] {
                let is_real = real_flags(self.range, ctx, instances[count_at]);
                for (j, real) in is_real.iter().enumerate() {
                    // Padding is zero: h · (1 − real) = 0.
                    let not_real = gate.not(ctx, *real);
                    let masked = gate.mul(ctx, instances[start + j], not_real);
                    gate.assert_is_const(ctx, &masked, &Fr::zero());
                }
                flags.push(is_real);
            }
            real.push(flags);
        }
        // Distinct rollup ids.
        for i in 0..rollups.len() {
            for j in i + 1..rollups.len() {
                let same = gate.is_equal(
                    ctx,
                    rollups[i][index::ROLLUP_ID],
                    rollups[j][index::ROLLUP_ID],
                );
                gate.assert_is_const(ctx, &same, &Fr::zero());
            }
        }

        // r from every rollup's assigned lists.
        let hasher = poseidon::hasher(ctx, gate);
        let mut inputs = vec![ctx.load_constant(challenge_tag()), domain, slot];
        for instances in rollups {
            inputs.extend(
                [index::ROLLUP_ID, index::NUM_ASSUMED, index::NUM_SERVED].map(|i| instances[i]),
            );
            inputs.extend_from_slice(&instances[index::ASSUMED..index::SERVED + MAX_ENTRIES]);
        }
        let r = poseidon::hash_assigned(&hasher, ctx, gate, &inputs);

        // Π over real entries of (r − h); padding contributes 1.
        let mut products = [ctx.load_constant(Fr::ONE), ctx.load_constant(Fr::ONE)];
        for (instances, flags) in rollups.iter().zip(&real) {
            for (side, start) in [index::ASSUMED, index::SERVED].into_iter().enumerate() {
                for (j, is_real) in flags[side].iter().enumerate() {
                    // term = real · (r − h − 1) + 1
                    let diff = gate.sub(ctx, r, instances[start + j]);
                    let shifted = gate.sub(ctx, diff, Constant(Fr::ONE));
                    let term = gate.mul_add(ctx, *is_real, shifted, Constant(Fr::ONE));
                    products[side] = gate.mul(ctx, products[side], term);
                }
            }
        }
        ctx.constrain_equal(&products[0], &products[1]);
        AccumulatorOutput {
            domain,
            slot,
            challenge: r,
        }
    }
}
