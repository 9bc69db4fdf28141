//! The executor's state traces: every block of the scenarios proves in the memory circuit to
//! its post root, and a reverted frame's undo writes are part of the trace.

use halo2_base::{gates::circuit::CircuitBuilderStage, halo2_proofs::dev::MockProver};
use lockstep_circuits::{
    memory::{self, MemoryCapacity, MemoryWitness},
    Fr,
};
use lockstep_reference_rollup::{
    abi::{CallData, Method},
    Transition,
};

use crate::world::*;

/// A small tree keeps the circuit small: the scenario's keys still fall on distinct leaves.
const DEPTH: usize = 12;
const CAPACITY: MemoryCapacity = MemoryCapacity {
    ops: 48,
    keys: 12,
    scratch: 0,
};
const K: u32 = 19;

fn prove(memory: &MemoryWitness, post_root: Fr) -> Result<(), String> {
    let builder = memory::circuit(CircuitBuilderStage::Mock, K, None, CAPACITY, memory)
        .map_err(|e| e.to_string())?;
    let prover = MockProver::run(K, &builder, vec![vec![memory.pre_root, post_root]])
        .map_err(|e| e.to_string())?;
    prover.verify().map_err(|e| format!("{} failures", e.len()))
}

/// Rollup 1 calls 2 which calls back into 1 (A → B → A), then a caller reverts after rollup 2
/// served its call, then a swap with value.
fn slot() -> Vec<Transition> {
    let mut world = World::with_depth(40, DEPTH);
    world
        .send(
            1,
            TO_FORWARDER_2,
            0,
            CallData::forward(Method::Forward, Method::Increment, 0),
        )
        .unwrap();
    world
        .send(1, TO_COUNTER_2, 7, forward_then_revert(Method::Increment))
        .unwrap();
    world
        .send(1, TO_AMM_2, 3 * ETH, forward(Method::Swap))
        .unwrap();
    world.seal();
    world.transitions
}

#[test]
fn scenario_traces_prove_to_their_post_roots() {
    for transition in slot() {
        let memory = &transition.memory;
        let post_root = transition.sealed.header.post_root;
        eprintln!(
            "rollup {}: {} ops, {} keys",
            transition.sealed.header.rollup_id,
            memory.ops.len(),
            memory.keys.len()
        );
        // Rollup 3 takes no part in this slot: its empty trace proves too.
        assert_eq!(
            memory.ops.is_empty(),
            transition.sealed.header.rollup_id == 3
        );
        assert_eq!(
            prove(memory, post_root),
            Ok(()),
            "rollup {}",
            transition.sealed.header.rollup_id
        );
        // Another post root is refused.
        assert!(prove(memory, post_root + Fr::one()).is_err());
    }
}

/// The step machine's ops, state and scratch together, prove in the memory circuit: what the
/// STF circuit will check of its rows. A counter call across rollups, on both sides.
#[test]
fn the_step_machines_memory_proves() {
    const CAPACITY: MemoryCapacity = MemoryCapacity {
        ops: 40,
        keys: 6,
        scratch: 24,
    };
    let mut world = World::with_depth(41, DEPTH);
    world
        .send(1, TO_COUNTER_2, 0, forward(Method::Increment))
        .unwrap();
    let sealed = world.seal();
    for (block, pre) in sealed.iter().zip(&world.pre_states).take(2) {
        let decoded = lockstep_reference_rollup::block::Block::decode(&block.data).unwrap();
        let run = lockstep_reference_rollup::machine::run(pre, domain(), &decoded).unwrap();
        let memory = &run.memory;
        assert!(!memory.scratch.is_empty() && memory.ops.iter().any(|op| op.scratch));
        assert_eq!(memory.post_root().unwrap(), block.header.post_root);
        let builder =
            memory::circuit(CircuitBuilderStage::Mock, K, None, CAPACITY, memory).unwrap();
        let verify = |post_root: Fr| {
            MockProver::run(K, &builder, vec![vec![memory.pre_root, post_root]])
                .unwrap()
                .verify()
                .is_ok()
        };
        assert!(
            verify(block.header.post_root),
            "rollup {}",
            block.header.rollup_id
        );
        assert!(!verify(block.header.pre_root));
    }
}

#[test]
fn a_discarded_frame_is_undone_in_the_trace() {
    let mut world = World::with_depth(41, DEPTH);
    world
        .send(1, TO_COUNTER_2, 0, forward_then_revert(Method::Increment))
        .unwrap();
    world.seal();
    let two = &world.transitions[1];
    assert_eq!(
        two.sealed.header.pre_root, two.sealed.header.post_root,
        "rollup 2 kept nothing"
    );
    // The counter went 0 → 1 and back: a write and its undo.
    let ops = &two.memory.ops;
    let up = ops
        .iter()
        .position(|op| op.before == Fr::zero() && op.after == Fr::one())
        .expect("the increment");
    assert!(ops[up + 1..]
        .iter()
        .any(|op| op.key == ops[up].key && op.before == Fr::one() && op.after == Fr::zero()));
}
