//! The two-to-one compression: its native permutation is the sponge's, native and in-circuit
//! agree, it costs one permutation, and a wrong output or a changed witness is refused.

use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
        RangeInstructions,
    },
    halo2_proofs::{halo2curves::ff::Field, plonk::Assigned},
};
use lockstep_circuits::{poseidon, shape, Fr};
use proptest::prelude::*;

use crate::common::mock_verify;

/// Room for one compression and one sponge hash of two inputs.
const K: u32 = 13;

fn arb_fr() -> impl Strategy<Value = Fr> {
    any::<[u64; 4]>().prop_map(|limbs| {
        limbs.iter().fold(Fr::ZERO, |acc, &limb| {
            acc * Fr::from(1u64 << 32).square() + Fr::from(limb)
        })
    })
}

/// A circuit that compresses `left` and `right` and exposes the output; `corrupt` changes the
/// value of one advice cell of the compression (by its index) after it is assigned.
fn compress_circuit(left: Fr, right: Fr, corrupt: Option<usize>) -> BaseCircuitBuilder<Fr> {
    let mut builder = BaseCircuitBuilder::from_stage(CircuitBuilderStage::Mock)
        .use_params(shape::rollup_params(K).unwrap());
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let (l, r) = (ctx.load_witness(left), ctx.load_witness(right));
    let start = ctx.advice.len();
    let out = poseidon::compress_assigned(ctx, range.gate(), l, r);
    if let Some(offset) = corrupt {
        let cell = &mut ctx.advice[start + offset];
        *cell = Assigned::Trivial(cell.evaluate() + Fr::ONE);
    }
    builder.assigned_instances[0].push(out);
    builder
}

/// Advice cells that `f` assigns in a fresh context.
fn cells(f: impl FnOnce(&mut halo2_base::Context<Fr>, &halo2_base::gates::GateChip<Fr>)) -> usize {
    let mut builder = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Mock)
        .use_params(shape::rollup_params(K).unwrap());
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let before = ctx.advice.len();
    f(ctx, range.gate());
    ctx.advice.len() - before
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// The native permutation, run as the sponge runs it (capacity 2^64, the padding's 1 after
    /// the inputs, a second permutation when the inputs fill the rate), gives the sponge's hash:
    /// it is the permutation halo2-base and snark-verifier use.
    #[test]
    fn the_native_permutation_is_the_sponges(a in arb_fr(), b in arb_fr()) {
        let capacity = Fr::from(1u64 << 32).square();
        prop_assert_eq!(poseidon::permutation([capacity, a, Fr::ONE])[1], poseidon::hash(&[a]));
        let mut state = poseidon::permutation([capacity, a, b]);
        state[1] += Fr::ONE;
        prop_assert_eq!(poseidon::permutation(state)[1], poseidon::hash(&[a, b]));
    }

    /// The in-circuit compression equals the native one, and its constraints hold.
    #[test]
    fn native_compression_equals_in_circuit(left in arb_fr(), right in arb_fr()) {
        let builder = compress_circuit(left, right, None);
        let expected = poseidon::compress(left, right);
        prop_assert_eq!(*builder.assigned_instances[0][0].value(), expected);
        prop_assert!(mock_verify(&builder, vec![expected]).is_ok());
    }
}

#[test]
fn the_compression_is_not_the_sponge_and_is_ordered() {
    let (a, b) = (Fr::from(3), Fr::from(5));
    assert_ne!(poseidon::compress(a, b), poseidon::hash(&[a, b]));
    assert_ne!(poseidon::compress(a, b), poseidon::compress(b, a));
    // The sponge's one-input hash is the permutation of (2^64, a, 1): the tag keeps the
    // compression of (a, 1) apart from it.
    assert_ne!(poseidon::compress(a, Fr::ONE), poseidon::hash(&[a]));
}

#[test]
fn a_wrong_output_or_a_changed_witness_is_refused() {
    let (left, right) = (Fr::from(11), Fr::from(12));
    let honest = poseidon::compress(left, right);
    let builder = compress_circuit(left, right, None);
    assert_eq!(mock_verify(&builder, vec![honest]), Ok(()));
    let err = mock_verify(&builder, vec![honest + Fr::ONE]).unwrap_err();
    assert!(err.contains("failures"), "{err}");
    // A cell changed after it was assigned, early, in the partial rounds and at the end, breaks
    // a gate or a copy: the proof fails whatever output it claims.
    let n = cells(|ctx, gate| {
        let (l, r) = (ctx.load_witness(left), ctx.load_witness(right));
        poseidon::compress_assigned(ctx, gate, l, r);
    }) - 2;
    for offset in [1, n / 2, n - 1] {
        let builder = compress_circuit(left, right, Some(offset));
        let claimed = *builder.assigned_instances[0][0].value();
        let err = mock_verify(&builder, vec![claimed]).unwrap_err();
        assert!(err.contains("failures"), "cell {offset} of {n}: {err}");
    }
}

/// One permutation, not two: about half the cells of the sponge's two-input hash.
#[test]
fn a_compression_costs_one_permutation() {
    let compress = cells(|ctx, gate| {
        let (l, r) = (ctx.load_witness(Fr::from(1)), ctx.load_witness(Fr::from(2)));
        poseidon::compress_assigned(ctx, gate, l, r);
    }) - 2;
    // The sponge's hasher loads its initial state once per circuit; that is left out.
    let hasher = cells(|ctx, gate| {
        poseidon::hasher(ctx, gate);
    });
    let sponge = cells(|ctx, gate| {
        let hasher = poseidon::hasher(ctx, gate);
        let inputs = [ctx.load_witness(Fr::from(1)), ctx.load_witness(Fr::from(2))];
        poseidon::hash_assigned(&hasher, ctx, gate, &inputs);
    }) - hasher
        - 2;
    println!("advice cells: compression {compress}, two-input sponge hash {sponge}");
    assert!(compress <= 2_300, "{compress}");
    assert!(2 * compress <= sponge + 100, "{compress} vs {sponge}");
}
