//! The dev-mode stand-in for the aggregation prover (`MockAggregationProver`, a test double):
//! it proves nothing, so what it does check must hold. A balanced slot of registered rollups
//! gives the instances a real aggregation exposes (with a zero accumulator) and the marker; a
//! slot the aggregation circuit would refuse is refused here too, for the named reason.

use std::{collections::BTreeMap, sync::Arc};

use lockstep_aggregator::service::{
    intake::fr_hex,
    prover::{MockAggregationProver, SlotProver, DEV_MODE_PROOF},
    slots::StoredProof,
};
use lockstep_circuits::{
    aggregation::{settled_instances, AggregatedRollup, ACCUMULATOR_CELLS},
    layout::PublicInputsWitness,
    testing, Fr,
};

use crate::cluster::{registry, DOMAIN};

const SLOT: u64 = 7;

/// `witness` as intake stores it, with the marker for a proof.
fn stored(witness: &PublicInputsWitness) -> StoredProof {
    StoredProof {
        instances: witness
            .public_inputs()
            .to_instances()
            .unwrap()
            .iter()
            .map(fr_hex)
            .collect(),
        proof: format!("0x{}", hex::encode(DEV_MODE_PROOF)),
        received_at_ms: 0,
    }
}

/// The error's whole chain, for matching its reason.
fn refused(prover: &MockAggregationProver, proofs: &BTreeMap<u32, StoredProof>) -> String {
    format!("{:#}", prover.prove(proofs).unwrap_err())
}

#[test]
fn the_dev_mode_stand_in_checks_what_the_aggregation_would_and_proves_nothing() {
    let registry = Arc::new(registry(&testing::persistent_key_store().unwrap()));
    let prover = MockAggregationProver::new(registry.clone());
    assert!(prover.is_dev_mode());
    prover.prepare(2).unwrap();

    // Rollups 1 and 2 call each other: the slot balances.
    let ring = testing::ring(DOMAIN, SLOT, 2);
    let proofs: BTreeMap<u32, StoredProof> = ring
        .iter()
        .map(|w| (w.header.rollup_id, stored(w)))
        .collect();
    let (instances, proof) = prover.prove(&proofs).unwrap();
    assert_eq!(
        proof, DEV_MODE_PROOF,
        "the stand-in posts the marker, not a proof"
    );
    assert!(instances[..ACCUMULATOR_CELLS]
        .iter()
        .all(|x| *x == Fr::zero()));
    let expected: Vec<_> = ring
        .iter()
        .map(|w| AggregatedRollup {
            public: w.public_inputs(),
            vk_digest: registry.rollups[&w.header.rollup_id].vk_digest,
        })
        .collect();
    assert_eq!(
        instances[ACCUMULATOR_CELLS..],
        settled_instances(&expected).unwrap()[..],
        "the instances L1 rebuilds, as a real aggregation exposes them"
    );

    // Rollup 1 assumes a call that nobody in the slot served.
    let alone = BTreeMap::from([(1, proofs[&1].clone())]);
    let reason = refused(&prover, &alone);
    assert!(reason.contains("do not balance"), "{reason}");

    // Rollup 1's proof stored under rollup 2's id.
    let swapped = BTreeMap::from([(1, proofs[&2].clone()), (2, proofs[&1].clone())]);
    let reason = refused(&prover, &swapped);
    assert!(reason.contains("claims rollup"), "{reason}");

    // A rollup the aggregator does not know.
    let three = testing::ring(DOMAIN, SLOT, 3);
    let unknown: BTreeMap<u32, StoredProof> = three
        .iter()
        .map(|w| (w.header.rollup_id, stored(w)))
        .collect();
    let reason = refused(&prover, &unknown);
    assert!(
        reason.contains("rollup 3 is no longer registered"),
        "{reason}"
    );

    // Public inputs that do not decode under the common layout.
    let mut short = proofs.clone();
    short.get_mut(&2).unwrap().instances.pop();
    let reason = refused(&prover, &short);
    assert!(reason.contains("public inputs of rollup 2"), "{reason}");
    let mut not_a_field_element = proofs;
    not_a_field_element.get_mut(&1).unwrap().instances[0] = format!("0x{}", "ff".repeat(32));
    let reason = refused(&prover, &not_a_field_element);
    assert!(reason.contains("not a field element"), "{reason}");
}
