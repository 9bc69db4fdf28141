//! Sample entries, rollup witnesses and key stores for tests and benchmarks (feature
//! `test-utils`).

use std::path::PathBuf;

use halo2_base::{
    gates::circuit::CircuitBuilderStage,
    halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG},
};

use crate::{
    entry::{Address, CallKind, Domain, Entry},
    keys::KeyStore,
    layout::{PublicInputsWitness, SlotHeader},
    Fr, Result,
};

/// A call from rollup `src` to rollup `dst` in `domain` and `slot`, told apart by `seq` and
/// `result` (the calldata hash is `seq` repeated, the return-data hash `result` repeated).
pub fn sample_call(domain: Domain, slot: u64, src: u32, dst: u32, seq: u32, result: u8) -> Entry {
    Entry {
        domain,
        slot,
        src,
        dst,
        seq,
        kind: CallKind::Call,
        success: true,
        committed: true,
        caller: Address([src as u8; 20]),
        target: Address([dst as u8; 20]),
        value: [0; 32],
        calldata_hash: [seq as u8; 32],
        return_hash: [result; 32],
    }
}

/// A rollup witness with the given lists; roots and DA commitment derived from the id.
pub fn sample_rollup(
    domain: Domain,
    slot: u64,
    rollup_id: u32,
    assumed: Vec<Entry>,
    served: Vec<Entry>,
    eth_delta: i128,
) -> PublicInputsWitness {
    let id = u64::from(rollup_id);
    PublicInputsWitness {
        header: SlotHeader {
            domain,
            slot,
            rollup_id,
            pre_root: Fr::from(1000 + id),
            post_root: Fr::from(2000 + id),
            da_commitment: Fr::from(3000 + id),
            eth_delta,
            l1_digest: Fr::zero(),
        },
        assumed,
        served,
        assumed_count: None,
        served_count: None,
    }
}

/// Rollups `1..=n` in a ring: rollup `i` calls rollup `i % n + 1` and serves the call of the one
/// before it (a self-call when `n = 1`). The slot balances.
pub fn ring(domain: Domain, slot: u64, n: u32) -> Vec<PublicInputsWitness> {
    (1..=n)
        .map(|id| {
            let prev = if id == 1 { n } else { id - 1 };
            let out = sample_call(domain, slot, id, id % n + 1, 0, 2);
            let incoming = sample_call(domain, slot, prev, id, 0, 2);
            sample_rollup(domain, slot, id, vec![out], vec![incoming], 0)
        })
        .collect()
}

/// The key store real-proof tests share between runs: `$LOCKSTEP_TEST_KEYS`, else
/// `~/.cache/lockstep/test-keys` (CI keeps it, so the SRS and keys are made once per machine).
pub fn persistent_key_store() -> Result<KeyStore> {
    let dir = std::env::var_os("LOCKSTEP_TEST_KEYS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                .join(".cache/lockstep/test-keys")
        });
    KeyStore::open(dir)
}

/// The test rollup's SRS and proving key from `store`: made on first use, then read from the
/// cache ([`crate::test_rollup::proving_key`]).
pub fn test_rollup_key(
    store: &KeyStore,
) -> Result<(
    ParamsKZG<Bn256>,
    crate::keys::CircuitKey<halo2_base::gates::circuit::BaseCircuitParams>,
)> {
    crate::test_rollup::proving_key(store)
}

/// Proves the test rollup for `witness` with a key from [`test_rollup_key`].
pub fn prove_test_rollup(
    params: &ParamsKZG<Bn256>,
    key: &crate::keys::CircuitKey<halo2_base::gates::circuit::BaseCircuitParams>,
    witness: &PublicInputsWitness,
) -> Result<snark_verifier_sdk::Snark> {
    let circuit = crate::test_rollup::build(
        CircuitBuilderStage::Prover,
        crate::test_rollup::TEST_ROLLUP_K,
        Some(key.meta.break_points.clone()),
        witness,
    )?;
    crate::prover::prove(params, &key.pk, circuit)
}
