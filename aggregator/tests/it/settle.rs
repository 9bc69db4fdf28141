//! The default tier's real-proof slot, and the proof that the aggregation is universal: a
//! **heterogeneous slot** of two different rollups, each joined by its verifying-key file. Rollup
//! 1 is the tally rollup (its own executor and circuit, k = 17); rollup 2 the reference rollup
//! (STF circuit, k = 19). Alice on rollup 2 calls the tally on rollup 1 with value through a
//! forwarder; both blocks are proven, aggregated for the EVM, the aggregation proof checked by
//! the generated verifier on anvil (EIP-170 code size limit on), and the slot settled through
//! `LockstepSettlement` in a type-3 transaction carrying the slot's blob.
//!
//! One aggregation proof serves every check that can use it: native and EVM verification, the
//! instances L1 rebuilds (each rollup under its own vk digest), forged instances and a
//! corrupted proof refused by the verifier, forged claims (root, ETH delta, vk digest, truncated
//! proof) refused by the settlement, the settled roots and balances, and a replay refused. The
//! sizes are the smallest that work: the STF circuit at k = 19 on trees of depth 8, the tally
//! circuit at k = 17, the two-rollup aggregation at its default k = 21.

use std::{rc::Rc, time::Instant};

use alloy::primitives::{Bytes, B256, U256};
use halo2_base::gates::circuit::CircuitBuilderStage;
use lockstep_aggregator::{
    l1::{self, fr_to_u256, u256_to_fr, RollupL1},
    service::pipeline::default_aggregation_k,
};
use lockstep_circuits::{
    accumulator::check_balanced,
    aggregation::{
        self, aggregation_key, evm_calldata, evm_verifier_source, prove_for_evm, settled_instances,
        vk_digest, AggregatedRollup, AggregationConfig, AggregationKind, ACCUMULATOR_CELLS,
    },
    entry::Domain,
    layout::{index, NUM_INSTANCES},
    prover, testing,
    vk_file::VkFile,
    Fr,
};
use lockstep_contracts::{
    bindings::LockstepSettlement,
    deploy::{deploy_all, DeployConfig},
    devnet::{Devnet, DevnetConfig},
    settlement::{self, execution_digest, SidecarFormat, SlotData},
    verifier::{self, MAX_RUNTIME_CODE_SIZE},
    Error,
};
use lockstep_reference_rollup::{
    abi::{AppKind, CallData, Method},
    block::{Block, Tx},
    circuit::StfConfig,
    machine, Genesis, ReferenceRollup,
};
use lockstep_rollup_api::{Cluster, SealedBlock};
use lockstep_tally_rollup::{
    block::TallyBlock,
    circuit::{self as tally, TallyWitness, TALLY_K},
    TallyRollup, TallyState, TALLY_APP,
};

use crate::cluster::{ALICE, PROXY};

/// The STF circuit's degree: the smallest at which these blocks fit the common shape.
const STF_K: u32 = 19;
/// State trees of depth 8 (256 leaves) keep each Merkle opening short.
const DEPTH: usize = 8;
/// Wei Alice (rollup 2) sends with her call to rollup 1's counter.
const VALUE: u128 = 5;
/// Wei deposited on L1 for rollup 2: what backs its outgoing value.
const DEPOSIT: u64 = 1_000;
/// The tally's genesis: 3 calls counted, nothing held (its L1 balance is 0).
const TALLY_GENESIS: TallyState = TallyState {
    count: 3,
    balance: 0,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heterogeneous_slot_aggregates_verifies_on_the_evm_and_settles() {
    // Rollup 2's forwarder calls the tally app on rollup 1.
    let mut genesis = Genesis::new(2).with_account(ALICE, 10).with_app(
        PROXY,
        AppKind::Forwarder {
            rollup: 1,
            target: TALLY_APP,
        },
        0,
    );
    genesis.tree_depth = DEPTH;
    let agg_k = default_aggregation_k(2);
    let store = testing::persistent_key_store().unwrap();
    let t = Instant::now();
    let (params, stf_params, tally_params) = tokio::task::block_in_place(|| {
        (
            store.load_or_generate_unsafe_test_srs(agg_k).unwrap(),
            store.load_or_generate_unsafe_test_srs(STF_K).unwrap(),
            store.load_or_generate_unsafe_test_srs(TALLY_K).unwrap(),
        )
    });
    eprintln!(
        "SRS k = {agg_k}, {STF_K}, {TALLY_K}: {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The slot's blocks, sealed first: rollup 2's capacity fixes its STF deployment and so its
    // key, and the keys fix nothing of the aggregation, whose L1 verifier must exist before
    // the slot's domain does. The blocks are sealed again below, under the deployed domain and
    // slot.
    let capacity = {
        let (blocks, pre) = seal(&genesis, Domain::default(), 1);
        let block = Block::decode(&blocks[1].data).unwrap();
        machine::run(&pre, Domain::default(), &block)
            .unwrap()
            .stats()
            .capacity()
    };
    let deployment = StfConfig {
        k: STF_K,
        depth: DEPTH,
        capacity,
        lookup_bits: None,
    };
    let t = Instant::now();
    let stf_key =
        tokio::task::block_in_place(|| deployment.proving_key(&store, &stf_params)).unwrap();
    eprintln!(
        "STF key (k = {STF_K}, {capacity:?}, {:?}): {:.1} s",
        stf_key.source,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let tally_key =
        tokio::task::block_in_place(|| tally::proving_key(&store, &tally_params)).unwrap();
    eprintln!(
        "tally key (k = {TALLY_K}, {:?}): {:.1} s",
        tally_key.source,
        t.elapsed().as_secs_f64()
    );

    // Each rollup joins by its verifying-key file: written by its team, read by the
    // aggregator with the common shape's parameters, its digest recomputed.
    let files = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for (name, params, vk) in [
        ("tally", &tally_params, tally_key.pk.get_vk()),
        ("reference STF", &stf_params, stf_key.pk.get_vk()),
    ] {
        let path = files.path().join(format!("{name}.vk.json"));
        VkFile::new(name, params, vk).unwrap().write(&path).unwrap();
        let loaded = VkFile::read(&path).unwrap().load(&store, &path).unwrap();
        assert_eq!(
            loaded.vk_digest,
            vk_digest(&prover::protocol(params, vk, NUM_INSTANCES))
        );
        digests.push(loaded.vk_digest);
    }
    assert_ne!(digests[0], digests[1], "two circuits, two keys");
    let config = AggregationConfig::new(2, agg_k);
    let t = Instant::now();
    let agg_key = tokio::task::block_in_place(|| {
        aggregation_key(
            &store,
            &params,
            &config,
            AggregationKind::Lockstep,
            &stf_params,
            stf_key.pk.get_vk(),
        )
    })
    .unwrap();
    eprintln!(
        "aggregation key (k = {agg_k}, {:?}): {:.1} s",
        agg_key.source,
        t.elapsed().as_secs_f64()
    );

    // L1: the verifier for this key, the settlement contract (its address is half of the call
    // domain), both rollups under the STF circuit's vk digest at their genesis roots, and ETH
    // for rollup 2.
    let t = Instant::now();
    let source = evm_verifier_source(&params, agg_key.pk.get_vk(), config.num_instances());
    let code = verifier::compile(&source, &verifier::default_solc()).unwrap();
    eprintln!(
        "verifier: {} bytes of creation code, compiled in {:.1} s",
        code.len(),
        t.elapsed().as_secs_f64()
    );
    let devnet = Devnet::spawn(DevnetConfig::default()).await.unwrap();
    let provider = devnet.provider();
    let deployed = deploy_all(
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
    let verifier_address = deployed.verifiers[0].address;
    let runtime_size = deployed.verifiers[0].runtime_size;
    eprintln!("verifier runtime: {runtime_size} bytes");
    assert!(
        runtime_size <= MAX_RUNTIME_CODE_SIZE,
        "{runtime_size} bytes"
    );
    let contract = LockstepSettlement::new(deployed.settlement, provider.clone());
    let domain = Domain {
        chain_id: deployed.chain_id,
        registry: lockstep_circuits::entry::Address(deployed.settlement.0 .0),
    };
    let roots = [
        TALLY_GENESIS.root(),
        ReferenceRollup::new(&genesis).unwrap().root(),
    ];
    for (digest, root) in digests.iter().zip(roots) {
        send(contract.createRollup(
            devnet.dev_address(),
            B256::from(fr_to_u256(*digest)),
            B256::from(fr_to_u256(root)),
            false,
            false,
        ))
        .await;
    }
    send(
        contract
            .deposit(2, devnet.dev_address())
            .value(U256::from(DEPOSIT)),
    )
    .await;
    let slot = contract.currentSlot().call().await.unwrap();

    // The slot: Alice on rollup 2 calls the tally on rollup 1 through the proxy, with value.
    let (blocks, pre) = seal(&genesis, domain, slot);
    assert_eq!(blocks.len(), 2);
    let mut blob = SlotData::new();
    let data: Vec<_> = blocks.iter().map(|b| blob.push(&b.data).unwrap()).collect();
    let sidecar = blob.sidecar(SidecarFormat::default()).unwrap();
    let hashes = sidecar.versioned_hashes();
    let da: Vec<Fr> = data
        .iter()
        .map(|at| {
            u256_to_fr(settlement::da_commitment(
                hashes[usize::from(at.blob_index)],
                at.offset,
                at.length,
            ))
            .unwrap()
        })
        .collect();
    let publics: Vec<_> = blocks
        .iter()
        .zip(&da)
        .map(|(block, da)| block.witness(*da).public_inputs())
        .collect();
    check_balanced(&publics).unwrap();
    // Rollup 2 assumed one call and rollup 1 served it; the value moved with it.
    assert_eq!(
        publics
            .iter()
            .map(|p| (
                p.header.rollup_id,
                p.assumed.len(),
                p.served.len(),
                p.header.eth_delta
            ))
            .collect::<Vec<_>>(),
        vec![(1, 0, 1, VALUE as i128), (2, 1, 0, -(VALUE as i128))]
    );

    // Each block proven with its rollup's circuit, exposing exactly its sealed public inputs.
    let t = Instant::now();
    let tally_witness =
        TallyWitness::new(domain, da[0], &TallyBlock::decode(&blocks[0].data).unwrap()).unwrap();
    let tally_snark =
        tokio::task::block_in_place(|| tally::prove(&tally_params, &tally_key, &tally_witness))
            .unwrap();
    eprintln!("rollup 1 tally proof: {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let block = Block::decode(&blocks[1].data).unwrap();
    let run = machine::run(&pre, domain, &block).unwrap();
    let witness = run
        .stf_witness(&pre, &block, domain, da[1], capacity)
        .unwrap();
    let stf_snark =
        tokio::task::block_in_place(|| deployment.prove(&stf_params, &stf_key, &witness)).unwrap();
    eprintln!("rollup 2 STF proof: {:.1} s", t.elapsed().as_secs_f64());
    let snarks = vec![tally_snark, stf_snark];
    for (snark, public) in snarks.iter().zip(&publics) {
        assert_eq!(snark.instances, vec![public.to_instances().unwrap()]);
    }
    assert_ne!(
        snarks[0].protocol.domain.k, snarks[1].protocol.domain.k,
        "two circuits of different degrees in one aggregation"
    );
    // A claim the block does not support fails verification: another served entry.
    let mut forged = snarks[0].clone();
    forged.instances[0][index::SERVED] += Fr::one();
    assert!(!prover::verify(
        &tally_params,
        tally_key.pk.get_vk(),
        &forged
    ));

    let t = Instant::now();
    let (instances, proof) = tokio::task::block_in_place(|| {
        let circuit = aggregation::build(
            CircuitBuilderStage::Prover,
            &config,
            AggregationKind::Lockstep,
            Some(agg_key.meta.circuit_params),
            Some(agg_key.meta.break_points.clone()),
            &params,
            snarks.clone(),
        )
        .unwrap();
        prove_for_evm(&params, &agg_key.pk, circuit).unwrap()
    });
    eprintln!(
        "aggregation proof: {:.1} s, {} bytes",
        t.elapsed().as_secs_f64(),
        proof.len()
    );

    // What the aggregation exposes is exactly what L1 rebuilds: ids, each rollup's registered
    // vk digest, roots, DA commitments, deltas.
    for (snark, digest) in snarks.iter().zip(&digests) {
        assert_eq!(vk_digest(&snark.protocol), *digest);
    }
    let expected: Vec<_> = publics
        .iter()
        .zip(&digests)
        .map(|(p, digest)| AggregatedRollup {
            public: p.clone(),
            vk_digest: *digest,
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
    // A claim under a different vk digest, a changed root, a changed accumulator limb, or a
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
        .zip(&data)
        .map(|(public, data)| RollupL1 {
            public: public.clone(),
            data: *data,
            withdrawals: vec![],
        })
        .collect();
    let claims = l1::claims(&rollups, &hashes).unwrap();
    let accumulator = l1::accumulator_words(&instances);
    let settle = |claims, proof: Vec<u8>| {
        settlement::settle(
            &provider,
            deployed.settlement,
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
    // Each rollup registered under the other's key: the proof made under their own is refused.
    send(contract.setVkDigest(1, B256::from(fr_to_u256(digests[1])))).await;
    send(contract.setVkDigest(2, B256::from(fr_to_u256(digests[0])))).await;
    refused(
        settle(claims.clone(), proof.clone()).await,
        "swapped vk digests",
    );
    send(contract.setVkDigest(1, B256::from(fr_to_u256(digests[0])))).await;
    send(contract.setVkDigest(2, B256::from(fr_to_u256(digests[1])))).await;

    let settled = settle(claims.clone(), proof.clone()).await.unwrap();
    eprintln!(
        "settlement, 2 rollups (tally and STF proofs): {} gas (tx {}), {} blob gas",
        settled.gas_used, settled.tx, settled.blob_gas_used
    );
    let words: Vec<_> = instances[ACCUMULATOR_CELLS..]
        .iter()
        .map(|x| fr_to_u256(*x))
        .collect();
    assert_eq!(settled.execution_digest, execution_digest(&words));
    // L1 now holds the blocks' post roots, and the value moved from rollup 2 to the tally.
    for (block, balance) in blocks.iter().zip([VALUE, u128::from(DEPOSIT) - VALUE]) {
        let (root, eth) =
            settlement::rollup_state(&provider, deployed.settlement, block.header.rollup_id)
                .await
                .unwrap();
        assert_eq!(root, fr_to_u256(block.header.post_root));
        assert_eq!(eth, U256::from(balance));
    }
    match settle(claims, proof).await {
        Err(Error::SettlementRefused(reason)) => {
            assert!(reason.contains("SlotAlreadySettled"), "{reason}")
        }
        other => panic!("a replayed settlement: {other:?}"),
    }
}

/// Seals `slot` in `domain` over a fresh tally (rollup 1) and a fresh reference rollup from
/// `genesis` (rollup 2): Alice, on rollup 2, sends [`VALUE`] wei with a call to the tally through
/// the proxy, which answers with the new count. Returns the blocks (in rollup-id order) and the
/// reference rollup's state before its block.
fn seal(
    genesis: &Genesis,
    domain: Domain,
    slot: u64,
) -> (Vec<SealedBlock>, lockstep_reference_rollup::state::State) {
    let pre = genesis.state().unwrap();
    let mut cluster = Cluster::new(domain);
    cluster
        .add(Box::new(TallyRollup::new(1, TALLY_GENESIS)))
        .unwrap();
    cluster
        .add(Box::new(Rc::new(ReferenceRollup::new(genesis).unwrap())))
        .unwrap();
    cluster.begin_slot(slot).unwrap();
    let call = Tx {
        from: ALICE,
        nonce: 0,
        to: PROXY,
        value: VALUE,
        data: CallData::forward(Method::Increment, Method::Transfer, 0),
    };
    let receipt = cluster.submit(2, &call.encode()).unwrap();
    // The tally answered with its new count, as a word the reference rollup reads.
    assert_eq!(
        lockstep_reference_rollup::CallOutcome::from_api(&receipt.outcome).unwrap(),
        lockstep_reference_rollup::CallOutcome::ok(u128::from(TALLY_GENESIS.count + 1))
    );
    let mut blocks = cluster.seal().unwrap();
    blocks.sort_by_key(|b| b.header.rollup_id);
    (blocks, pre)
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
