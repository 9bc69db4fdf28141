use halo2_base::{gates::circuit::CircuitBuilderStage, halo2_proofs::halo2curves::ff::Field};
use lockstep_circuits::{
    layout::{index, PublicInputsWitness, MAX_ENTRIES},
    test_rollup::{build, TEST_ROLLUP_K},
    Error, Fr,
};

use crate::common::{call, mock_verify, witness, SLOT};

/// Builds the test rollup for `w` and checks it against `instances` with the MockProver.
fn check(w: &PublicInputsWitness, instances: Vec<Fr>) -> Result<(), String> {
    let builder =
        build(CircuitBuilderStage::Mock, TEST_ROLLUP_K, None, w).map_err(|e| e.to_string())?;
    mock_verify(&builder, instances)
}

/// What the circuit itself computes as its instances (whatever the witness).
fn computed(w: &PublicInputsWitness) -> Vec<Fr> {
    let builder = build(CircuitBuilderStage::Mock, TEST_ROLLUP_K, None, w).unwrap();
    builder.instance_values()
}

fn honest() -> PublicInputsWitness {
    witness(
        2,
        vec![call(2, 1, 0, 9), call(2, 3, 1, 8)],
        vec![call(1, 2, 0, 7)],
    )
}

#[test]
fn honest_block_proves_and_exposes_the_layout() {
    let w = honest();
    w.validate().unwrap();
    let expected = w.public_inputs().to_instances().unwrap();
    assert_eq!(computed(&w), expected);
    check(&w, expected).unwrap();
}

#[test]
fn full_lists_fit_the_shape() {
    let assumed = (0..MAX_ENTRIES as u32)
        .map(|i| call(2, 1, i, i as u8))
        .collect();
    let served = (0..MAX_ENTRIES as u32)
        .map(|i| call(3, 2, i, i as u8))
        .collect();
    let w = witness(2, assumed, served);
    check(&w, w.public_inputs().to_instances().unwrap()).unwrap();
}

#[test]
fn empty_lists_prove() {
    let w = witness(5, vec![], vec![]);
    check(&w, w.public_inputs().to_instances().unwrap()).unwrap();
}

#[test]
fn src_and_dst_swapped_is_rejected() {
    // Rollup 2 claims to have assumed a call that rollup 1 made to it.
    let w = witness(2, vec![call(1, 2, 0, 9)], vec![]);
    assert!(matches!(
        w.validate(),
        Err(Error::ForeignEntry {
            side: "assumed",
            ..
        })
    ));
    assert!(check(&w, computed(&w)).is_err());
    // Served side: rollup 2 claims to have served a call it made itself to rollup 1.
    let w = witness(2, vec![], vec![call(2, 1, 0, 9)]);
    assert!(matches!(
        w.validate(),
        Err(Error::ForeignEntry { side: "served", .. })
    ));
    assert!(check(&w, computed(&w)).is_err());
}

#[test]
fn entry_from_another_slot_is_rejected() {
    let mut stale = call(2, 1, 0, 9);
    stale.slot = SLOT - 1;
    let w = witness(2, vec![stale], vec![]);
    assert!(w.validate().unwrap_err().to_string().contains("slot"));
    assert!(check(&w, computed(&w)).is_err());
}

#[test]
fn entry_from_another_deployment_is_rejected() {
    let mut foreign = call(2, 1, 0, 9);
    foreign.domain.chain_id += 1;
    let w = witness(2, vec![foreign], vec![]);
    assert!(w.validate().unwrap_err().to_string().contains("domain"));
    assert!(check(&w, computed(&w)).is_err());
}

#[test]
fn counts_that_lie_are_rejected() {
    // Claims two assumed entries but has one: the phantom second is all zeros (src 0 ≠ 2).
    let mut w = honest();
    w.assumed.truncate(1);
    w.assumed_count = Some(2);
    assert!(check(&w, computed(&w)).is_err());
    // Claims one but has two: the second would have to be hidden as padding.
    let mut w = honest();
    w.assumed_count = Some(1);
    let instances = computed(&w);
    assert_eq!(
        instances[index::ASSUMED + 1],
        Fr::zero(),
        "the gadget zeroes entries past the count"
    );
    // … so a verifier expecting the second entry rejects the proof.
    let mut claimed = instances;
    claimed[index::NUM_ASSUMED] = Fr::from(2);
    claimed[index::ASSUMED + 1] = w.assumed[1].hash();
    assert!(check(&w, claimed).is_err());
    // A count beyond the capacity cannot be proven at all.
    let mut w = honest();
    w.served_count = Some(MAX_ENTRIES as u64 + 1);
    assert!(check(&w, computed(&w)).is_err());
}

#[test]
fn non_zero_entry_beyond_count_is_rejected() {
    let w = honest();
    let mut instances = w.public_inputs().to_instances().unwrap();
    instances[index::ASSUMED + 2] = call(2, 1, 5, 5).hash();
    assert!(check(&w, instances).is_err());
}

#[test]
fn public_inputs_are_bound() {
    let w = honest();
    let honest_instances = w.public_inputs().to_instances().unwrap();
    for i in [
        index::VERSION,
        index::DOMAIN,
        index::SLOT,
        index::ROLLUP_ID,
        index::POST_ROOT,
        index::ETH_DELTA,
        index::SERVED,
    ] {
        let mut tampered = honest_instances.clone();
        tampered[i] += Fr::ONE;
        assert!(check(&w, tampered).is_err(), "instance {i} is not bound");
    }
}

#[test]
fn rollup_id_zero_is_rejected_and_extreme_delta_fits() {
    let w = witness(0, vec![], vec![]);
    assert!(check(&w, computed(&w)).is_err());
    let mut w = honest();
    w.header.eth_delta = i128::MIN; // fits: −2^127
    check(&w, w.public_inputs().to_instances().unwrap()).unwrap();
}

#[test]
fn too_small_k_is_a_clear_error() {
    let err = build(
        CircuitBuilderStage::Mock,
        TEST_ROLLUP_K - 1,
        None,
        &honest(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::CircuitTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("raise k"), "{err}");
}
