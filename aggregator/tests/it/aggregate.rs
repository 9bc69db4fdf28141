//! Two test-rollup snarks with cross-rollup calls, aggregated with real proofs, checked natively,
//! by the generated EVM verifier deployed on anvil (with the EIP-170 code size limit on), and
//! settled through `LockstepSettlement` in a type-3 transaction carrying the slot's blob.

use std::time::Instant;

use alloy::primitives::{Bytes, B256, U256};
use halo2_base::gates::circuit::CircuitBuilderStage;
use lockstep_aggregator::l1::{self, fr_to_u256, u256_to_fr, RollupL1};
use lockstep_circuits::{
    accumulator::check_balanced,
    aggregation::{
        self, aggregation_key, evm_calldata, evm_verifier_source, prove_for_evm, settled_instances,
        vk_digest, AggregatedRollup, AggregationConfig, AggregationKind, ACCUMULATOR_CELLS,
    },
    entry::{Address, Domain, Entry},
    layout::{PublicInputsWitness, NUM_INSTANCES},
    prover, testing, Fr,
};
use lockstep_contracts::{
    bindings::LockstepSettlement,
    deploy::{deploy_all, DeployConfig},
    devnet::{Devnet, DevnetConfig},
    settlement::{self, execution_digest, SidecarFormat, SlotData},
    verifier::{self, MAX_RUNTIME_CODE_SIZE},
    Error,
};

/// Aggregation degree for two rollups: 8.7M advice cells fit 5 advice columns at k = 21.
const AGG_K: u32 = 21;

fn call(domain: Domain, slot: u64, src: u32, dst: u32, seq: u32, result: u8) -> Entry {
    testing::sample_call(domain, slot, src, dst, seq, result)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_rollups_aggregate_and_verify_on_the_evm() {
    let store = testing::persistent_key_store().unwrap();
    let t = Instant::now();
    let (inner_params, inner) = testing::test_rollup_key(&store).unwrap();
    eprintln!("rollup key: {:.1} s", t.elapsed().as_secs_f64());

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

    // L1 first: the verifier for this key, the settlement contract (its address is half of the
    // call domain), the two rollups under the test rollup's vk digest, and ETH for rollup 2.
    let t = Instant::now();
    let source = evm_verifier_source(&params, key.pk.get_vk(), config.num_instances());
    let code = verifier::compile(&source, &verifier::default_solc()).unwrap();
    eprintln!(
        "verifier: {} bytes of creation code, compiled in {:.1} s",
        code.len(),
        t.elapsed().as_secs_f64()
    );
    let devnet = Devnet::spawn(DevnetConfig::default()).await.unwrap();
    let provider = devnet.provider();
    let deployment = deploy_all(
        &provider,
        &DeployConfig {
            // Proving takes minutes here, not seconds: leave the slot two hours to settle.
            max_slot_age: 600,
            verifiers: vec![(2, code)],
            ..DeployConfig::default()
        },
    )
    .await
    .unwrap();
    let verifier_address = deployment.verifiers[0].address;
    let runtime_size = deployment.verifiers[0].runtime_size;
    eprintln!(
        "verifier runtime: {runtime_size} bytes; deployment {} gas in all",
        deployment.gas_used
    );
    assert!(
        runtime_size <= MAX_RUNTIME_CODE_SIZE,
        "{runtime_size} bytes"
    );
    let contract = LockstepSettlement::new(deployment.settlement, provider.clone());
    let digest = vk_digest(&prover::protocol(
        &inner_params,
        inner.pk.get_vk(),
        NUM_INSTANCES,
    ));
    let domain = Domain {
        chain_id: deployment.chain_id,
        registry: Address(deployment.settlement.0 .0),
    };
    for id in 1..=2u32 {
        let genesis = testing::sample_rollup(domain, 0, id, vec![], vec![], 0).pre_root;
        send(contract.createRollup(
            devnet.dev_address(),
            B256::from(fr_to_u256(digest)),
            B256::from(fr_to_u256(genesis)),
            false,
            false,
        ))
        .await;
    }
    send(
        contract
            .deposit(2, devnet.dev_address())
            .value(U256::from(1_000)),
    )
    .await;
    let slot = contract.currentSlot().call().await.unwrap();

    // The slot's blob: each rollup's block data, whose place in the blob its proof commits to.
    let mut blob = SlotData::new();
    let data = [
        blob.push(b"rollup 1 block data").unwrap(),
        blob.push(&[0xb2; 5_000]).unwrap(),
    ];
    let sidecar = blob.sidecar(SidecarFormat::default()).unwrap();
    let hashes = sidecar.versioned_hashes();

    // Rollup 1 calls rollup 2 (A→B), which calls back into rollup 1 (B→A) while serving it;
    // 5 wei go from rollup 2 to rollup 1.
    let outer = call(domain, slot, 1, 2, 0, 7);
    let reentrant = call(domain, slot, 2, 1, 0, 9);
    let mut witnesses = [
        testing::sample_rollup(domain, slot, 1, vec![outer], vec![reentrant], 5),
        testing::sample_rollup(domain, slot, 2, vec![reentrant], vec![outer], -5),
    ];
    for (w, at) in witnesses.iter_mut().zip(data) {
        w.da_commitment = u256_to_fr(settlement::da_commitment(
            hashes[usize::from(at.blob_index)],
            at.offset,
            at.length,
        ))
        .unwrap();
    }
    let publics: Vec<_> = witnesses
        .iter()
        .map(PublicInputsWitness::public_inputs)
        .collect();
    check_balanced(&publics).unwrap();
    let t = Instant::now();
    let snarks: Vec<_> = witnesses
        .iter()
        .map(|w| testing::prove_test_rollup(&inner_params, &inner, w).unwrap())
        .collect();
    eprintln!("2 rollup proofs: {:.1} s", t.elapsed().as_secs_f64());

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
    assert_eq!(vk_digest(&snarks[0].protocol), digest);
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

    // The generated verifier accepts the proof on a real EVM.
    let ok = verifier::verify(
        &provider,
        verifier_address,
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
        let res = verifier::verify(&provider, verifier_address, evm_calldata(&tampered, &proof))
            .await
            .unwrap();
        assert!(!res.accepted, "instance {at} is not bound by the proof");
    }
    let mut corrupted = proof.clone();
    corrupted[100] ^= 1;
    let res = verifier::verify(
        &provider,
        verifier_address,
        evm_calldata(&instances, &corrupted),
    )
    .await
    .unwrap();
    assert!(!res.accepted, "a corrupted proof was accepted");

    // Settlement: the contract rebuilds the same inputs from the claims, its storage and the
    // blob, and refuses anything the proof was not made for.
    let rollups: Vec<_> = publics
        .iter()
        .zip(data)
        .map(|(public, data)| RollupL1 {
            public: public.clone(),
            data,
            withdrawals: vec![],
        })
        .collect();
    let claims = l1::claims(&rollups, &hashes).unwrap();
    let accumulator = l1::accumulator_words(&instances);
    let settle = |claims, proof: Vec<u8>| {
        settlement::settle(
            &provider,
            deployment.settlement,
            slot,
            claims,
            accumulator,
            Bytes::from(proof),
            blob.sidecar(SidecarFormat::default()).unwrap(),
        )
    };
    let refused = |res: Result<settlement::Settled, Error>, what: &str| match res {
        Err(Error::SettlementRefused(reason)) => {
            assert!(reason.contains("InvalidProof"), "{what}: {reason}")
        }
        other => panic!("{what}: expected InvalidProof, got {other:?}"),
    };
    refused(
        settle(claims.clone(), proof[..proof.len() - 32].to_vec()).await,
        "truncated proof",
    );
    let mut other_root = claims.clone();
    other_root[1].postRoot = B256::from(U256::from(4242));
    refused(settle(other_root, proof.clone()).await, "another post root");
    let mut other_delta = claims.clone();
    other_delta[0].ethDelta = alloy::primitives::I256::try_from(4).unwrap();
    other_delta[1].ethDelta = alloy::primitives::I256::try_from(-4).unwrap();
    refused(
        settle(other_delta, proof.clone()).await,
        "another ETH delta",
    );
    // Rollup 2 registered under another key: the proof made under the test rollup's is refused.
    send(contract.setVkDigest(2, B256::from(U256::from(77)))).await;
    refused(
        settle(claims.clone(), proof.clone()).await,
        "another vk digest",
    );
    send(contract.setVkDigest(2, B256::from(fr_to_u256(digest)))).await;

    let settled = settle(claims.clone(), proof.clone()).await.unwrap();
    eprintln!(
        "settlement, 2 rollups, real proof: {} gas (tx {}), {} blob gas",
        settled.gas_used, settled.tx, settled.blob_gas_used
    );
    let words: Vec<_> = instances[ACCUMULATOR_CELLS..]
        .iter()
        .map(|x| fr_to_u256(*x))
        .collect();
    assert_eq!(settled.execution_digest, execution_digest(&words));
    for (public, balance) in publics.iter().zip([5u64, 995]) {
        let (root, eth) =
            settlement::rollup_state(&provider, deployment.settlement, public.rollup_id)
                .await
                .unwrap();
        assert_eq!(root, fr_to_u256(public.post_root));
        assert_eq!(eth, U256::from(balance));
    }
    match settle(claims, proof).await {
        Err(Error::SettlementRefused(reason)) => {
            assert!(reason.contains("SlotAlreadySettled"), "{reason}")
        }
        other => panic!("a replayed settlement: {other:?}"),
    }
}

/// Sends a contract call and waits for a successful receipt.
async fn send<P, D>(call: alloy::contract::CallBuilder<P, D>)
where
    P: alloy::providers::Provider,
    D: alloy::contract::CallDecoder,
{
    let receipt = call.send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status(), "{:?}", receipt.transaction_hash);
}
