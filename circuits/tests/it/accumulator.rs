use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
    halo2_proofs::halo2curves::ff::Field,
};
use lockstep_circuits::{
    accumulator::{challenge, check_balanced, AccumulatorChip},
    entry::Entry,
    layout::{index, RollupPublicInputs, MAX_ENTRIES},
    Error, Fr,
};

use crate::common::{call, mock_verify, witness};

const K: u32 = 14;

/// A circuit that loads the given instance columns as witnesses, runs the accumulator chip on
/// them and exposes `r`; checked by the MockProver against the native challenge.
fn run(columns: &[Vec<Fr>]) -> Result<(), String> {
    let mut builder = BaseCircuitBuilder::from_stage(CircuitBuilderStage::Mock)
        .use_k(K as usize)
        .use_lookup_bits(10)
        .use_instance_columns(1);
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let assigned: Vec<_> = columns
        .iter()
        .map(|c| ctx.assign_witnesses(c.iter().copied()))
        .collect();
    let out = AccumulatorChip::new(&range).constrain(ctx, &assigned);
    assert_eq!(
        *out.challenge.value(),
        challenge(columns),
        "native and in-circuit r agree"
    );
    builder.assigned_instances[0].push(out.challenge);
    builder.calculate_params(Some(9));
    mock_verify(&builder, vec![challenge(columns)])
}

fn columns(rollups: &[RollupPublicInputs]) -> Vec<Vec<Fr>> {
    rollups.iter().map(|r| r.to_instances().unwrap()).collect()
}

fn rollup(id: u32, assumed: Vec<Entry>, served: Vec<Entry>) -> RollupPublicInputs {
    witness(id, assumed, served).public_inputs()
}

/// Rollup 1 calls rollup 2 (result 7); rollup 2 calls rollup 3 (result 8) while serving it.
fn balanced() -> Vec<RollupPublicInputs> {
    vec![
        rollup(1, vec![call(1, 2, 0, 7)], vec![]),
        rollup(2, vec![call(2, 3, 0, 8)], vec![call(1, 2, 0, 7)]),
        rollup(3, vec![], vec![call(2, 3, 0, 8)]),
    ]
}

fn expect_rejected(rollups: &[RollupPublicInputs]) {
    assert!(matches!(
        check_balanced(rollups),
        Err(Error::Unbalanced { .. })
    ));
    assert!(
        run(&columns(rollups)).is_err(),
        "the circuit accepted an unbalanced slot"
    );
}

#[test]
fn balanced_slot_is_accepted() {
    let rollups = balanced();
    check_balanced(&rollups).unwrap();
    run(&columns(&rollups)).unwrap();
}

#[test]
fn reentrant_calls_and_repeated_entries_balance() {
    // 1 → 2 → 1 (A→B→A): rollup 1 assumes the outer call and serves the inner one.
    let outer = call(1, 2, 0, 1);
    let inner = call(2, 1, 0, 2);
    // The same call made twice and served twice is a multiset of two equal entries.
    let twice = call(1, 2, 1, 3);
    let rollups = vec![
        rollup(1, vec![outer, twice, twice], vec![inner]),
        rollup(2, vec![inner], vec![outer, twice, twice]),
    ];
    check_balanced(&rollups).unwrap();
    run(&columns(&rollups)).unwrap();
}

#[test]
fn assumed_call_without_served_twin_is_rejected() {
    let mut rollups = balanced();
    rollups[2].served.clear();
    expect_rejected(&rollups);
}

#[test]
fn served_call_with_a_different_result_is_rejected() {
    let mut rollups = balanced();
    rollups[1].served = vec![call(1, 2, 0, 99).hash()];
    expect_rejected(&rollups);
}

#[test]
fn same_entry_twice_on_one_side_is_rejected() {
    let mut rollups = balanced();
    rollups[0].assumed.push(call(1, 2, 0, 7).hash());
    expect_rejected(&rollups);
}

#[test]
fn served_call_nobody_assumed_is_rejected() {
    let mut rollups = balanced();
    rollups[0].served.push(call(3, 1, 0, 1).hash());
    expect_rejected(&rollups);
}

#[test]
fn non_zero_entry_beyond_count_is_rejected() {
    // A rogue rollup circuit hides an extra served entry past its count.
    let mut cols = columns(&balanced());
    cols[2][index::SERVED + 1] = call(9, 3, 0, 0).hash();
    assert!(run(&cols).is_err());
}

#[test]
fn count_beyond_capacity_is_rejected() {
    let mut cols = columns(&balanced());
    cols[0][index::NUM_ASSUMED] = Fr::from(MAX_ENTRIES as u64 + 1);
    assert!(run(&cols).is_err());
}

#[test]
fn rollup_from_another_slot_or_domain_is_rejected() {
    for at in [index::SLOT, index::DOMAIN] {
        let mut cols = columns(&balanced());
        cols[1][at] += Fr::ONE;
        assert!(
            run(&cols).is_err(),
            "instance {at} may differ between rollups"
        );
    }
}

#[test]
fn the_same_rollup_twice_is_rejected() {
    let rollups = vec![rollup(1, vec![], vec![]), rollup(1, vec![], vec![])];
    assert!(run(&columns(&rollups)).is_err());
}

#[test]
fn wrong_layout_version_is_rejected() {
    let mut cols = columns(&balanced());
    cols[0][index::VERSION] = Fr::from(2);
    assert!(run(&cols).is_err());
}

#[test]
fn challenge_depends_on_every_list() {
    let cols = columns(&balanced());
    let r = challenge(&cols);
    for (i, at) in [
        (0, index::ASSUMED),
        (1, index::SERVED),
        (2, index::NUM_SERVED),
        (2, index::ROLLUP_ID),
    ] {
        let mut other = cols.clone();
        other[i][at] += Fr::ONE;
        assert_ne!(challenge(&other), r, "r ignores rollup {i} instance {at}");
    }
}
