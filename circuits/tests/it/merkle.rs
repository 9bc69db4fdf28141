use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
    halo2_proofs::halo2curves::ff::Field,
};
use lockstep_circuits::{
    merkle::{hash_node, index_of, leaf, root_from_path, MerkleAccess, MerkleChip},
    poseidon, shape, Fr,
};
use proptest::prelude::*;

use crate::common::mock_verify;

const DEPTH: usize = 16;
/// Two walks of 16 Poseidon hashes, two leaf hashes and the index decomposition.
const K: u32 = 16;

fn fr(seed: u64) -> Fr {
    poseidon::hash(&[Fr::from(seed)])
}

fn sample(key: Fr, before: u64, after: u64) -> MerkleAccess {
    MerkleAccess {
        key,
        before: Fr::from(before),
        after: Fr::from(after),
        siblings: (0..DEPTH as u64).map(|i| fr(1000 + i)).collect(),
    }
}

/// Proves `access` against `root`, exposing `[root, root after]`.
fn circuit(access: &MerkleAccess, root: Fr) -> BaseCircuitBuilder<Fr> {
    let mut builder = BaseCircuitBuilder::from_stage(CircuitBuilderStage::Mock)
        .use_params(shape::rollup_params(K).unwrap());
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let chip = MerkleChip::new(&range, DEPTH).unwrap();
    let loaded = chip.load(ctx, access).unwrap();
    let root = ctx.load_witness(root);
    let after = chip.access(ctx, root, &loaded);
    builder.assigned_instances[0].extend([root, after]);
    builder
}

fn check(access: &MerkleAccess, root: Fr, expected_after: Fr) -> Result<(), String> {
    mock_verify(&circuit(access, root), vec![root, expected_after])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// The circuit moves the root exactly as the native computation does.
    #[test]
    fn circuit_and_native_roots_agree(
        seed in any::<u64>(), before in prop_oneof![Just(0), any::<u64>()],
        after in prop_oneof![Just(0), any::<u64>()]
    ) {
        let access = sample(fr(seed), before, after);
        prop_assert_eq!(check(&access, access.root_before(), access.root_after()), Ok(()));
    }
}

#[test]
fn native_roots_follow_the_leaf_rules() {
    let key = fr(1);
    let index = index_of(&key, DEPTH);
    let siblings = sample(key, 0, 0).siblings;
    let empty = root_from_path(Fr::ZERO, index, &siblings);
    // A key holding 0 has an empty leaf, whatever it held before.
    assert_eq!(sample(key, 0, 0).root_after(), empty);
    assert_eq!(sample(key, 7, 0).root_after(), empty);
    assert_eq!(
        sample(key, 0, 7).root_after(),
        root_from_path(hash_node(key, Fr::from(7)), index, &siblings)
    );
    assert_eq!(
        sample(key, 7, 0).root_before(),
        sample(key, 0, 7).root_after()
    );
    assert_eq!(leaf(key, Fr::ZERO), Fr::ZERO);
    assert_eq!(leaf(key, Fr::from(7)), hash_node(key, Fr::from(7)));
}

#[test]
fn reads_of_missing_keys_and_writes_of_zero_prove() {
    for access in [
        sample(fr(2), 0, 0),
        sample(fr(3), 9, 0),
        sample(fr(4), 9, 9),
    ] {
        assert_eq!(
            check(&access, access.root_before(), access.root_after()),
            Ok(())
        );
    }
}

#[test]
fn a_wrong_path_or_value_is_refused() {
    let honest = sample(fr(5), 40, 41);
    let root = honest.root_before();
    assert!(check(&honest, root, honest.root_after()).is_ok());

    // Another sibling.
    let mut bad = honest.clone();
    bad.siblings[7] += Fr::ONE;
    assert!(check(&bad, root, bad.root_after()).is_err());

    // Another value before.
    let mut bad = honest.clone();
    bad.before = Fr::from(39);
    assert!(check(&bad, root, bad.root_after()).is_err());

    // The right witness, but a root after that is not where the write leads.
    assert!(check(&honest, root, honest.root_before()).is_err());
}

#[test]
fn an_occupied_leaf_cannot_be_claimed_empty() {
    let occupied = sample(fr(6), 40, 40);
    let root = occupied.root_before();
    assert!(check(&occupied, root, occupied.root_after()).is_ok());
    // Claim the key reads 0 (an empty leaf) while its leaf holds 40.
    let mut lie = occupied;
    lie.before = Fr::ZERO;
    lie.after = Fr::ZERO;
    assert!(check(&lie, root, lie.root_after()).is_err());
    // Claim a value at an empty leaf.
    let mut lie = sample(fr(6), 0, 1);
    let root = lie.root_before();
    lie.before = Fr::from(40);
    assert!(check(&lie, root, lie.root_after()).is_err());
}

#[test]
fn a_key_has_one_leaf_index() {
    // key + p < 2^254 for a small key: the decomposition of key + p is a second candidate.
    let key = Fr::from(5);
    let build = |low: Fr, high: Fr| {
        let mut builder = BaseCircuitBuilder::from_stage(CircuitBuilderStage::Mock)
            .use_params(shape::rollup_params(K).unwrap());
        let range = builder.range_chip();
        let ctx = builder.main(0);
        let chip = MerkleChip::new(&range, DEPTH).unwrap();
        let key = ctx.load_witness(key);
        let bits = chip.index_bits_of(ctx, key, low, high);
        builder.assigned_instances[0].extend(bits);
        builder
    };
    let bits_of = |v: u64| {
        (0..DEPTH)
            .map(|i| Fr::from((v >> i) & 1))
            .collect::<Vec<_>>()
    };
    assert!(mock_verify(&build(Fr::from(5), Fr::ZERO), bits_of(5)).is_ok());

    // p = p_high · 2^16 + p_low; key + p = (p_high) · 2^16 + (p_low + 5) when no carry.
    let p_low = index_of(&-Fr::ONE, DEPTH) + 1;
    let p_high = (-Fr::from(p_low)) * Fr::from(1u64 << DEPTH).invert().unwrap();
    assert!(p_low + 5 < 1 << DEPTH);
    let alias = p_low + 5;
    assert!(
        mock_verify(&build(Fr::from(alias), p_high), bits_of(alias)).is_err(),
        "key + p must not decompose"
    );
}

#[test]
fn depth_is_bounded() {
    let builder = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Mock)
        .use_params(shape::rollup_params(K).unwrap());
    let range = builder.range_chip();
    assert!(MerkleChip::new(&range, 1).is_err());
    assert!(MerkleChip::new(&range, 65).is_err());
    assert!(MerkleChip::new(&range, 64).is_ok());
}
