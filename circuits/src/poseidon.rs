//! The one Poseidon instance Lockstep uses, natively and in-circuit.
//!
//! Width 3, rate 2, 8 full and 57 partial rounds over BN254's scalar field: the instance
//! snark-verifier uses for its transcripts ([`POSEIDON_SPEC`]). [`hash`] (native) and
//! [`PoseidonHasher::hash_fix_len_array`] (in-circuit) agree on every input; the tests check it.

use halo2_base::{poseidon::hasher::PoseidonHasher, AssignedValue, Context};
use snark_verifier_sdk::{
    halo2::POSEIDON_SPEC, snark_verifier::util::hash::Poseidon as NativePoseidon, NativeLoader,
};

use crate::Fr;

/// Sponge width.
pub const T: usize = 3;
/// Sponge rate.
pub const RATE: usize = 2;

/// Hashes a fixed-length array natively, exactly as [`hasher`]'s `hash_fix_len_array` does.
pub fn hash(inputs: &[Fr]) -> Fr {
    let mut sponge =
        NativePoseidon::<Fr, Fr, T, RATE>::from_spec(&NativeLoader, POSEIDON_SPEC.clone());
    sponge.update(inputs);
    sponge.squeeze()
}

/// An in-circuit hasher with its constants loaded into `ctx`.
pub fn hasher(
    ctx: &mut Context<Fr>,
    gate: &impl halo2_base::gates::GateInstructions<Fr>,
) -> PoseidonHasher<Fr, T, RATE> {
    let mut hasher = PoseidonHasher::new(POSEIDON_SPEC.clone());
    hasher.initialize_consts(ctx, gate);
    hasher
}

/// Hashes assigned values in-circuit (fixed length).
pub fn hash_assigned(
    hasher: &PoseidonHasher<Fr, T, RATE>,
    ctx: &mut Context<Fr>,
    gate: &impl halo2_base::gates::GateInstructions<Fr>,
    inputs: &[AssignedValue<Fr>],
) -> AssignedValue<Fr> {
    hasher.hash_fix_len_array(ctx, gate, inputs)
}
