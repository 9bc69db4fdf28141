//! Two test-rollup snarks with cross-rollup calls, aggregated with real proofs, checked natively
//! and by the generated EVM verifier deployed on anvil (with the EIP-170 code size limit on).

use std::time::Instant;

use halo2_base::gates::circuit::CircuitBuilderStage;
use lockstep_circuits::{
    accumulator::check_balanced,
    aggregation::{
        self, aggregation_key, evm_calldata, evm_verifier_source, prove_for_evm, settled_instances,
        vk_digest, AggregatedRollup, AggregationConfig, AggregationKind, ACCUMULATOR_CELLS,
    },
    entry::{Address, Domain, Entry},
    keys::config_digest,
    layout::{PublicInputsWitness, NUM_INSTANCES},
    prover, shape,
    test_rollup::{self, TEST_ROLLUP_K},
    testing, Fr,
};
use lockstep_contracts::{
    devnet::{Devnet, DevnetConfig},
    verifier::{self, MAX_RUNTIME_CODE_SIZE},
};

/// Aggregation degree for two rollups: 8.7M advice cells fit 5 advice columns at k = 21.
const AGG_K: u32 = 21;
const DOMAIN: Domain = Domain {
    chain_id: 31337,
    registry: Address([0x5a; 20]),
};
const SLOT: u64 = 77;

fn call(src: u32, dst: u32, seq: u32, result: u8) -> Entry {
    testing::sample_call(DOMAIN, SLOT, src, dst, seq, result)
}

fn rollup(
    id: u32,
    assumed: Vec<Entry>,
    served: Vec<Entry>,
    eth_delta: i128,
) -> PublicInputsWitness {
    testing::sample_rollup(DOMAIN, SLOT, id, assumed, served, eth_delta)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_rollups_aggregate_and_verify_on_the_evm() {
    let store = testing::persistent_key_store().unwrap();
    let t = Instant::now();
    let inner_params = store
        .load_or_generate_unsafe_test_srs(TEST_ROLLUP_K)
        .unwrap();
    let rollup_params = shape::rollup_params(TEST_ROLLUP_K).unwrap();
    let digest = config_digest(&("test-rollup", shape::SHAPE_VERSION, &rollup_params));
    let inner = store
        .proving_key("test-rollup", &digest, &inner_params, || {
            test_rollup::build(
                CircuitBuilderStage::Keygen,
                TEST_ROLLUP_K,
                None,
                &rollup(1, vec![], vec![], 0),
            )
        })
        .unwrap();
    eprintln!("rollup key: {:.1} s", t.elapsed().as_secs_f64());

    // Rollup 1 calls rollup 2 (A→B), which calls back into rollup 1 (B→A) while serving it.
    let outer = call(1, 2, 0, 7);
    let reentrant = call(2, 1, 0, 9);
    let witnesses = [
        rollup(1, vec![outer], vec![reentrant], 5),
        rollup(2, vec![reentrant], vec![outer], -5),
    ];
    let publics: Vec<_> = witnesses
        .iter()
        .map(PublicInputsWitness::public_inputs)
        .collect();
    check_balanced(&publics).unwrap();
    let t = Instant::now();
    let snarks: Vec<_> = witnesses
        .iter()
        .map(|w| {
            let circuit = test_rollup::build(
                CircuitBuilderStage::Prover,
                TEST_ROLLUP_K,
                Some(inner.meta.break_points.clone()),
                w,
            )
            .unwrap();
            prover::prove(&inner_params, &inner.pk, circuit).unwrap()
        })
        .collect();
    eprintln!("2 rollup proofs: {:.1} s", t.elapsed().as_secs_f64());

    let params = store.load_or_generate_unsafe_test_srs(AGG_K).unwrap();
    let config = AggregationConfig::new(2, AGG_K);
    let t = Instant::now();
    let key = aggregation_key(
        &store,
        &params,
        &config,
        AggregationKind::Lockstep,
        &inner_params,
        inner.pk.get_vk(),
    )
    .unwrap();
    eprintln!(
        "aggregation key ({:?}): {:.1} s, {:?}",
        key.source,
        t.elapsed().as_secs_f64(),
        key.meta.circuit_params
    );

    let t = Instant::now();
    let circuit = aggregation::build(
        CircuitBuilderStage::Prover,
        &config,
        AggregationKind::Lockstep,
        Some(key.meta.circuit_params),
        Some(key.meta.break_points.clone()),
        &params,
        snarks.clone(),
    )
    .unwrap();
    let (instances, proof) = prove_for_evm(&params, &key.pk, circuit).unwrap();
    eprintln!(
        "aggregation proof: {:.1} s, {} bytes",
        t.elapsed().as_secs_f64(),
        proof.len()
    );

    // What the aggregation exposes is exactly what L1 rebuilds: ids, registered vk digests,
    // roots, DA commitments, deltas.
    let digest = vk_digest(&snarks[0].protocol);
    assert_eq!(
        digest,
        vk_digest(&prover::protocol(
            &inner_params,
            inner.pk.get_vk(),
            NUM_INSTANCES
        ))
    );
    let expected: Vec<_> = publics
        .iter()
        .map(|p| AggregatedRollup {
            public: p.clone(),
            vk_digest: digest,
        })
        .collect();
    assert_eq!(instances.len(), config.num_instances());
    assert_eq!(
        instances[ACCUMULATOR_CELLS..],
        settled_instances(&expected).unwrap()[..]
    );

    // The generated verifier fits EIP-170 and accepts the proof on a real EVM.
    let t = Instant::now();
    let source = evm_verifier_source(&params, key.pk.get_vk(), instances.len());
    let code = verifier::compile(&source, &verifier::default_solc()).unwrap();
    eprintln!(
        "verifier: {} bytes of creation code, compiled in {:.1} s",
        code.len(),
        t.elapsed().as_secs_f64()
    );
    let devnet = Devnet::spawn(DevnetConfig::default()).await.unwrap();
    let provider = devnet.provider();
    let deployed = verifier::deploy(&provider, code).await.unwrap();
    eprintln!(
        "verifier runtime: {} bytes, deploy gas {}",
        deployed.runtime_size, deployed.deploy_gas
    );
    assert!(
        deployed.runtime_size <= MAX_RUNTIME_CODE_SIZE,
        "{} bytes",
        deployed.runtime_size
    );

    let ok = verifier::verify(
        &provider,
        deployed.address,
        evm_calldata(&instances, &proof),
    )
    .await
    .unwrap();
    eprintln!("verify gas: {}", ok.gas_used);
    assert!(
        ok.accepted,
        "the EVM verifier rejected a valid proof (tx {})",
        ok.tx
    );

    // A claim under a different vk digest (another rollup's key), a changed root, or a
    // corrupted proof: all rejected.
    for at in [ACCUMULATOR_CELLS + 3, ACCUMULATOR_CELLS + 5, 0] {
        let mut tampered = instances.clone();
        tampered[at] += Fr::one();
        let res = verifier::verify(&provider, deployed.address, evm_calldata(&tampered, &proof))
            .await
            .unwrap();
        assert!(!res.accepted, "instance {at} is not bound by the proof");
    }
    let mut corrupted = proof.clone();
    corrupted[100] ^= 1;
    let res = verifier::verify(
        &provider,
        deployed.address,
        evm_calldata(&instances, &corrupted),
    )
    .await
    .unwrap();
    assert!(!res.accepted, "a corrupted proof was accepted");
}
