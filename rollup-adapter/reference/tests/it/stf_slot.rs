//! One slot of cross-rollup scenarios, end to end with real proofs: the builder simulates it,
//! each rollup's block is proven with the STF circuit (real keys, real SHPLONK proofs), and the
//! aggregation circuit verifies both proofs and the call accumulator, exposing what L1 settles.
//!
//! The scenarios, all in one slot: A → B counter increment, A → B swap with value, A → B → A
//! (a reentrant call), a callee that reverts and a caller that handles it, a caller that
//! reverts after its callee served (the callee's changes discarded, the entries still
//! matching), and a call above the caller's balance, refused.

use std::time::Instant;

use halo2_base::gates::circuit::CircuitBuilderStage;
use lockstep_circuits::{
    accumulator::check_balanced,
    aggregation::{
        self, aggregation_key, settled_instances, vk_digest, AggregatedRollup, AggregationConfig,
        AggregationKind, ACCUMULATOR_CELLS,
    },
    layout::NUM_INSTANCES,
    prover, testing, Fr,
};
use lockstep_reference_rollup::{
    abi::{swap_output, CallData, Method},
    block::Block,
    circuit::{StfCapacity, StfConfig},
    machine,
};

use crate::world::*;

/// The STF circuit's degree for this slot's blocks (their capacity is sized from the runs).
const K: u32 = 21;
/// The aggregation's size for two rollups (its key is shared with the EVM aggregation test;
/// the same SRS as the rollups').
const AGG_K: u32 = 21;

#[test]
fn a_slot_of_scenarios_proves_with_the_stf_circuit_and_aggregates() {
    let mut world = World::with_depth(60, 12);
    world
        .send(1, TO_COUNTER_2, 0, forward(Method::Increment))
        .unwrap();
    let out = swap_output(AMM_ETH, AMM_TOKENS, 2 * ETH);
    world
        .send(
            1,
            TO_AMM_2,
            2 * ETH,
            CallData::forward(Method::Swap, Method::Transfer, out),
        )
        .unwrap();
    world
        .send(
            1,
            TO_FORWARDER_2,
            0,
            CallData::forward(Method::Forward, Method::Increment, 0),
        )
        .unwrap();
    world
        .send(1, TO_REVERTER_2, 5, forward(Method::Increment))
        .unwrap();
    world
        .send(1, TO_COUNTER_2, 7, forward_then_revert(Method::Increment))
        .unwrap();
    // Alice holds 8 ETH now: a call carrying 9 is refused and leaves no trace.
    let nonce = world.nonces[1];
    assert!(world
        .send(1, TO_COUNTER_2, 9 * ETH, forward(Method::Increment))
        .is_err());
    assert_eq!(world.nonces[1], nonce);
    let sealed = world.seal();

    // Each rollup's run, and the public inputs its proof must expose: the sealed block's.
    let da = |id: u32| Fr::from(0xda00 + u64::from(id));
    let mut runs = Vec::new();
    let mut publics = Vec::new();
    for (block, pre) in sealed.iter().zip(&world.pre_states).take(2) {
        let decoded = Block::decode(&block.data).unwrap();
        let run = machine::run(pre, domain(), &decoded).unwrap();
        eprintln!(
            "rollup {}: {} steps, {:?}",
            block.header.rollup_id,
            decoded.steps.len(),
            run.stats()
        );
        publics.push(block.witness(da(block.header.rollup_id)).public_inputs());
        runs.push((pre, decoded, run));
    }
    // One capacity (so one key) for both blocks.
    let stats: Vec<_> = runs.iter().map(|(_, _, run)| run.stats()).collect();
    let most = |f: fn(&machine::Stats) -> usize| stats.iter().map(f).max().unwrap();
    let capacity = StfCapacity {
        rows: most(|s| s.rows) + 1,
        tape: most(|s| s.steps),
        keys: most(|s| s.state_keys),
        // Unused op slots read scratch address 0.
        scratch: most(|s| s.scratch_cells) + 1,
    };
    let witnesses: Vec<_> = runs
        .iter()
        .map(|(pre, block, run)| {
            run.stf_witness(pre, block, domain(), da(block.rollup_id), capacity)
                .unwrap()
        })
        .collect();
    check_balanced(&publics).unwrap();
    // Rollup 1 made five calls and served one (B → A); rollup 2 the reverse.
    assert_eq!((publics[0].assumed.len(), publics[0].served.len()), (5, 1));
    assert_eq!((publics[1].assumed.len(), publics[1].served.len()), (1, 5));

    // One STF deployment, so one key, for both rollups: its layout depends on the deployment
    // alone (keygen runs over an empty block of that capacity). The key is cached under the
    // deployment and `STF_VERSION`, as the aggregator and the adapters cache it.
    let store = testing::persistent_key_store().unwrap();
    // One SRS for the rollups and the aggregation (both k = 21).
    let params = store
        .load_or_generate_unsafe_test_srs(K.max(AGG_K))
        .unwrap();
    let deployment = StfConfig {
        k: K,
        depth: 12,
        capacity,
        lookup_bits: None,
    };
    let t = Instant::now();
    let key = deployment.proving_key(&store, &params).unwrap();
    eprintln!(
        "STF key (k = {K}, {:?}): {:.1} s",
        key.source,
        t.elapsed().as_secs_f64()
    );
    let snarks: Vec<_> = witnesses
        .iter()
        .zip(&publics)
        .map(|(witness, public)| {
            let t = Instant::now();
            let snark = deployment.prove(&params, &key, witness).unwrap();
            eprintln!(
                "rollup {} STF proof: {:.1} s",
                public.header.rollup_id,
                t.elapsed().as_secs_f64()
            );
            assert_eq!(snark.instances, vec![public.to_instances().unwrap()]);
            snark
        })
        .collect();
    // A claim the block does not support fails verification: another served entry.
    let mut forged = snarks[1].clone();
    let at = lockstep_circuits::layout::index::SERVED;
    forged.instances[0][at] += Fr::one();
    assert!(!prover::verify(&params, key.pk.get_vk(), &forged));

    // The aggregation verifies both proofs and balances the slot's calls.
    let config = AggregationConfig::new(2, AGG_K);
    let t = Instant::now();
    let agg_key = aggregation_key(
        &store,
        &params,
        &config,
        AggregationKind::Lockstep,
        &params,
        key.pk.get_vk(),
    )
    .unwrap();
    eprintln!(
        "aggregation key ({:?}): {:.1} s",
        agg_key.source,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let circuit = aggregation::build(
        CircuitBuilderStage::Prover,
        &config,
        AggregationKind::Lockstep,
        Some(agg_key.meta.circuit_params),
        Some(agg_key.meta.break_points.clone()),
        &params,
        snarks,
    )
    .unwrap();
    let snark = prover::prove(&params, &agg_key.pk, circuit).unwrap();
    eprintln!("aggregation proof: {:.1} s", t.elapsed().as_secs_f64());

    // It exposes what L1 settles: both rollups under the STF circuit's vk digest.
    let digest = vk_digest(&prover::protocol(&params, key.pk.get_vk(), NUM_INSTANCES));
    let expected: Vec<_> = publics
        .iter()
        .map(|public| AggregatedRollup {
            public: public.clone(),
            vk_digest: digest,
        })
        .collect();
    assert_eq!(
        snark.instances[0][ACCUMULATOR_CELLS..],
        settled_instances(&expected).unwrap()[..]
    );
}
