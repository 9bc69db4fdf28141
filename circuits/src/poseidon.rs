//! The one Poseidon instance Lockstep uses, natively and in-circuit.
//!
//! Width 3, rate 2, 8 full and 57 partial rounds over BN254's scalar field: the instance
//! snark-verifier uses for its transcripts ([`POSEIDON_SPEC`]). [`hash`] (native) and
//! [`PoseidonHasher::hash_fix_len_array`] (in-circuit) agree on every input; the tests check it.
//!
//! # Two-to-one compression
//! The sponge spends two permutations on two inputs: they fill the rate, so its padding takes a
//! second permutation. [`compress`] (native) and [`compress_assigned`] (in-circuit) take one:
//! the state `[COMPRESS_TAG, left, right]` is permuted once and its element 1 is the output.
//! The arity is fixed by the function, so no padding is needed; the capacity's tag, the
//! fixed-length domain of the Poseidon paper (§4.2: `2^64 · length`, one output) for two inputs,
//! keeps it apart from the sponge, whose capacity starts at `2^64`. Both run the permutation of
//! the same optimized constants ([`permutation`]), which the tests hold against the sponge.

use halo2_base::{
    gates::GateInstructions,
    halo2_proofs::halo2curves::ff::{Field, PrimeField},
    poseidon::hasher::{mds::SparseMDSMatrix, spec::OptimizedPoseidonSpec, PoseidonHasher},
    AssignedValue, Context,
    QuantumCell::Constant,
};
use snark_verifier_sdk::{
    halo2::POSEIDON_SPEC, snark_verifier::util::hash::Poseidon as NativePoseidon, NativeLoader,
};

use crate::Fr;

/// Sponge width.
pub const T: usize = 3;
/// Sponge rate.
pub const RATE: usize = 2;

/// The capacity element [`compress`] starts from: `2 · 2^64`.
pub const COMPRESS_TAG: u128 = 2 << 64;

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

/// The Poseidon permutation of [`POSEIDON_SPEC`], natively, in the optimized form halo2-base
/// proves (its first round constants added here, partial rounds through sparse matrices).
pub fn permutation(mut state: [Fr; T]) -> [Fr; T] {
    let spec: &OptimizedPoseidonSpec<Fr, T, RATE> = &POSEIDON_SPEC;
    let (mds, pre_sparse) = (
        spec.mds_matrices().mds().as_ref(),
        spec.mds_matrices().pre_sparse_mds().as_ref(),
    );
    let constants = spec.constants();
    let start = constants.start();
    for (x, c) in state.iter_mut().zip(&start[0]) {
        *x += c;
    }
    let half = spec.r_f() / 2;
    for round in start.iter().skip(1).take(half - 1) {
        state = native_mds(mds, native_full_sbox(state, round));
    }
    state = native_mds(pre_sparse, native_full_sbox(state, &start[start.len() - 1]));
    for (c, sparse) in constants
        .partial()
        .iter()
        .zip(spec.mds_matrices().sparse_matrices())
    {
        state[0] = native_sbox(state[0], c);
        state = native_sparse_mds(sparse, state);
    }
    for round in constants.end() {
        state = native_mds(mds, native_full_sbox(state, round));
    }
    native_mds(mds, native_full_sbox(state, &[Fr::ZERO; T]))
}

/// Compresses two field elements into one with a single permutation, natively.
pub fn compress(left: Fr, right: Fr) -> Fr {
    compress_tagged(COMPRESS_TAG, left, right)
}

/// [`compress`] from another capacity element `tag`: a compression of its own domain (a rollup
/// derives its state keys with one, apart from its tree's nodes). `tag` must not be
/// [`COMPRESS_TAG`] where the domains must stay apart, nor a sponge's capacity (`2^64·n` for an
/// `n`-input hash of [`hash`], `n` below 2).
pub fn compress_tagged(tag: u128, left: Fr, right: Fr) -> Fr {
    permutation([Fr::from_u128(tag), left, right])[1]
}

/// Compresses two assigned values into one with a single permutation, as [`compress`] does
/// natively: about 2,250 cells, half of a two-input [`hash_assigned`].
pub fn compress_assigned(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    left: AssignedValue<Fr>,
    right: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    compress_tagged_assigned(ctx, gate, COMPRESS_TAG, left, right)
}

/// [`compress_tagged`] in-circuit, as [`compress_assigned`] is [`compress`].
pub fn compress_tagged_assigned(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    tag: u128,
    left: AssignedValue<Fr>,
    right: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    let spec: &OptimizedPoseidonSpec<Fr, T, RATE> = &POSEIDON_SPEC;
    let constants = spec.constants();
    let start = constants.start();
    let (mds, pre_sparse) = (
        spec.mds_matrices().mds().as_ref(),
        spec.mds_matrices().pre_sparse_mds().as_ref(),
    );
    let mut state = [
        ctx.load_constant(Fr::from_u128(tag) + start[0][0]),
        gate.add(ctx, left, Constant(start[0][1])),
        gate.add(ctx, right, Constant(start[0][2])),
    ];
    let half = spec.r_f() / 2;
    for round in start.iter().skip(1).take(half - 1) {
        full_sbox(ctx, gate, &mut state, round);
        state = apply_mds(ctx, gate, mds, &state);
    }
    full_sbox(ctx, gate, &mut state, &start[start.len() - 1]);
    state = apply_mds(ctx, gate, pre_sparse, &state);
    for (c, sparse) in constants
        .partial()
        .iter()
        .zip(spec.mds_matrices().sparse_matrices())
    {
        state[0] = sbox(ctx, gate, state[0], c);
        state = apply_sparse_mds(ctx, gate, sparse, &state);
    }
    for round in constants.end() {
        full_sbox(ctx, gate, &mut state, round);
        state = apply_mds(ctx, gate, mds, &state);
    }
    full_sbox(ctx, gate, &mut state, &[Fr::ZERO; T]);
    apply_mds(ctx, gate, mds, &state)[1]
}

/// `x^5 + c`.
fn native_sbox(x: Fr, c: &Fr) -> Fr {
    let x2 = x * x;
    x * x2 * x2 + c
}

fn native_full_sbox(state: [Fr; T], constants: &[Fr; T]) -> [Fr; T] {
    std::array::from_fn(|i| native_sbox(state[i], &constants[i]))
}

fn native_mds(mds: &[[Fr; T]; T], state: [Fr; T]) -> [Fr; T] {
    std::array::from_fn(|i| (0..T).map(|j| mds[i][j] * state[j]).sum())
}

fn native_sparse_mds(sparse: &SparseMDSMatrix<Fr, T, RATE>, state: [Fr; T]) -> [Fr; T] {
    let mut out = state;
    out[0] = (0..T).map(|j| sparse.row()[j] * state[j]).sum();
    for (i, c) in sparse.col_hat().iter().enumerate() {
        out[i + 1] = state[0] * c + state[i + 1];
    }
    out
}

/// `x^5 + c` in-circuit.
fn sbox(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    x: AssignedValue<Fr>,
    c: &Fr,
) -> AssignedValue<Fr> {
    let x2 = gate.mul(ctx, x, x);
    let x4 = gate.mul(ctx, x2, x2);
    gate.mul_add(ctx, x, x4, Constant(*c))
}

fn full_sbox(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    state: &mut [AssignedValue<Fr>; T],
    constants: &[Fr; T],
) {
    for (x, c) in state.iter_mut().zip(constants) {
        *x = sbox(ctx, gate, *x, c);
    }
}

fn apply_mds(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    mds: &[[Fr; T]; T],
    state: &[AssignedValue<Fr>; T],
) -> [AssignedValue<Fr>; T] {
    std::array::from_fn(|i| {
        gate.inner_product(
            ctx,
            state.iter().copied(),
            mds[i].iter().map(|c| Constant(*c)),
        )
    })
}

fn apply_sparse_mds(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    sparse: &SparseMDSMatrix<Fr, T, RATE>,
    state: &[AssignedValue<Fr>; T],
) -> [AssignedValue<Fr>; T] {
    let first = gate.inner_product(
        ctx,
        state.iter().copied(),
        sparse.row().iter().map(|c| Constant(*c)),
    );
    let mut out = [first; T];
    for (i, c) in sparse.col_hat().iter().enumerate() {
        out[i + 1] = gate.mul_add(ctx, state[0], Constant(*c), state[i + 1]);
    }
    out
}
