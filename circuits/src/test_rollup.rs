//! A rollup circuit with a trivial state transition, in the common shape.
//!
//! It takes the roots, the ETH delta and the entry lists as witnesses and exposes them through
//! [`PublicInputsChip`](crate::layout::PublicInputsChip): everything a real rollup circuit
//! exposes, without the state transition: the smallest circuit of the common shape, which tests
//! and a rollup team whose own circuit is not ready yet use.

use halo2_base::gates::{circuit::CircuitBuilderStage, flex_gate::MultiPhaseThreadBreakPoints};

use halo2_base::{
    gates::circuit::BaseCircuitParams,
    halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG},
};

use crate::{
    entry::Domain,
    keys::{config_digest, CircuitKey, KeyStore},
    layout::{PublicInputsWitness, SlotHeader},
    shape::{self, RollupCircuit},
    Fr, Result,
};

/// The smallest `k` the test rollup fits in with [`crate::layout::MAX_ENTRIES`] entries a side.
pub const TEST_ROLLUP_K: u32 = 17;

/// Builds the test rollup circuit for `witness`.
///
/// `stage` is `Mock` or `Keygen` (then `break_points` is `None`), or `Prover` with the break
/// points recorded at keygen. Fails if the circuit does not fit the common shape at `k`.
pub fn build(
    stage: CircuitBuilderStage,
    k: u32,
    break_points: Option<MultiPhaseThreadBreakPoints>,
    witness: &PublicInputsWitness,
) -> Result<RollupCircuit> {
    let mut circuit = RollupCircuit::new(stage, k, break_points)?;
    let range = circuit.range_chip();
    let exposed = witness.assign_and_expose(&range, circuit.main());
    circuit.expose(exposed);
    circuit.finish()
}

/// The test rollup's SRS (the unsafe test SRS of [`TEST_ROLLUP_K`], made if missing: the test
/// rollup is for tests and local demos) and proving key from `store`: made on first use, then
/// read from the cache.
pub fn proving_key(store: &KeyStore) -> Result<(ParamsKZG<Bn256>, CircuitKey<BaseCircuitParams>)> {
    let params = store.load_or_generate_unsafe_test_srs(TEST_ROLLUP_K)?;
    let rollup_params = shape::rollup_params(TEST_ROLLUP_K)?;
    let digest = config_digest(&("test-rollup", shape::SHAPE_VERSION, &rollup_params));
    // Any witness: the circuit's shape does not depend on its values.
    let witness = PublicInputsWitness {
        header: SlotHeader {
            domain: Domain::default(),
            slot: 0,
            rollup_id: 1,
            pre_root: Fr::from(1001),
            post_root: Fr::from(2001),
            da_commitment: Fr::from(3001),
            eth_delta: 0,
            l1_digest: Fr::zero(),
        },
        assumed: vec![],
        served: vec![],
        assumed_count: None,
        served_count: None,
    };
    let key = store.proving_key("test-rollup", &digest, &params, || {
        build(CircuitBuilderStage::Keygen, TEST_ROLLUP_K, None, &witness)
    })?;
    Ok((params, key))
}
