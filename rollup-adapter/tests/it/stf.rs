//! The STF circuit on blocks of local transactions: the executor's blocks prove (MockProver)
//! to their post roots, and every way of lying about a block's execution is refused.

use halo2_base::{gates::circuit::CircuitBuilderStage, halo2_proofs::dev::MockProver};
use std::collections::HashMap;

use lockstep_circuits::{
    entry::Address,
    memory::{Access, MemoryOp, MemoryWitness, Space},
    stf::{self, StfCapacity, StfWitness},
    Fr,
};
use lockstep_rollup_adapter::{
    abi::{CallData, Method},
    block::{Block, Step},
    machine,
    state::State,
};

use crate::world::*;

/// The scenario tests' tree depth: the three geneses' keys fall on distinct leaves.
const DEPTH: usize = 12;
const CAPACITY: StfCapacity = StfCapacity {
    rows: 24,
    tape: 4,
    keys: 8,
    scratch: 24,
};
const K: u32 = 20;

/// Rollup 2's block of Alice's local transactions `txs` (target, value, calldata).
fn block_of(txs: &[(Address, u128, CallData)]) -> (State, Block) {
    let mut world = World::with_depth(50, DEPTH);
    for &(to, value, data) in txs {
        world.send(2, to, value, data).unwrap();
    }
    let sealed = world.seal();
    let block = Block::decode(&sealed[1].data).unwrap();
    (world.pre_states[1].clone(), block)
}

/// A call to the reverter with value (undone), a method the counter does not have, a counter
/// increment, a transfer with value. Each lie below is told about the last op on its cell, so
/// that only the row that made it can refuse it.
fn local_block() -> (State, Block) {
    block_of(&[
        (REVERTER_2, 5, CallData::new(Method::Increment)),
        (COUNTER_2, 0, CallData::new(Method::Swap)),
        (COUNTER_2, 0, CallData::new(Method::Increment)),
        (BOB, 3, CallData::transfer()),
    ])
}

fn witness(pre: &State, block: &Block) -> StfWitness {
    let run = machine::run(pre, domain(), block).unwrap();
    run.stf_witness(pre, block, CAPACITY).unwrap()
}

fn verify(witness: &StfWitness, post_root: Fr) -> Result<(), String> {
    let builder = stf::circuit(CircuitBuilderStage::Mock, K, None, CAPACITY, witness)
        .map_err(|e| e.to_string())?;
    let instances = vec![witness.memory.pre_root, post_root, witness.tape_hash()];
    let prover = MockProver::run(K, &builder, vec![instances]).map_err(|e| e.to_string())?;
    prover
        .verify()
        .map_err(|e| format!("{} constraint failures", e.len()))
}

#[test]
fn a_local_block_proves_to_its_post_root() {
    let (pre, block) = local_block();
    let witness = witness(&pre, &block);
    assert_eq!(verify(&witness, block.post_root), Ok(()));
    assert!(verify(&witness, block.pre_root).is_err(), "wrong post root");
}

/// The op of `witness` at `row`, `slot`.
fn op(witness: &mut StfWitness, row: usize, slot: usize) -> &mut MemoryOp {
    &mut witness.memory.ops[row * stf::OPS_PER_ROW + slot]
}

fn rows(pre: &State, block: &Block) -> Vec<machine::Row> {
    machine::run(pre, domain(), block).unwrap().rows
}

/// `honest` with the ops of `row` changed by `change`, and every later op on the same cells
/// re-chained so that memory stays consistent: a prover's lie that only the row's constraints
/// can catch, provided no later row writes those cells. It is checked against the post root
/// the lie leads to.
fn consistent_lie(
    honest: &StfWitness,
    pre: &State,
    row: usize,
    change: impl Fn(&mut [Access]),
) -> (StfWitness, Fr) {
    let mut ops: Vec<Access> = honest
        .memory
        .ops
        .iter()
        .map(|op| Access {
            space: if op.scratch {
                Space::Scratch
            } else {
                Space::State
            },
            key: op.key,
            before: op.before,
            after: op.after,
        })
        .collect();
    let start = row * stf::OPS_PER_ROW;
    change(&mut ops[start..start + stf::OPS_PER_ROW]);
    let mut current: HashMap<(bool, [u8; 32]), Fr> = HashMap::new();
    for op in &mut ops {
        let cell = (op.space == Space::Scratch, op.key.to_bytes());
        if let Some(value) = current.get(&cell) {
            if op.before == op.after {
                op.after = *value;
            }
            op.before = *value;
        }
        current.insert(cell, op.after);
    }
    let memory = MemoryWitness::with_scratch(pre.tree(), &ops).unwrap();
    let post_root = memory.post_root().unwrap();
    let witness = StfWitness {
        tape: honest.tape.clone(),
        memory,
    };
    (witness, post_root)
}

#[test]
fn lies_about_the_execution_are_refused() {
    let (pre, block) = local_block();
    let rows = rows(&pre, &block);
    let honest = witness(&pre, &block);
    let at = |kind: machine::Kind| rows.iter().position(|r| r.kind == kind).unwrap();
    let refused = |(witness, post_root): (StfWitness, Fr), what: &str| {
        assert!(verify(&witness, post_root).is_err(), "{what} was accepted");
    };

    // Re-chaining alone changes nothing: the honest witness, rebuilt, still proves.
    let app = at(machine::Kind::App);
    let (rebuilt, post_root) = consistent_lie(&honest, &pre, app, |_| {});
    assert_eq!(post_root, block.post_root);
    assert_eq!(verify(&rebuilt, post_root), Ok(()));

    // A counter that adds 2.
    refused(
        consistent_lie(&honest, &pre, app, |ops| ops[0].after += Fr::one()),
        "an increment by 2",
    );
    // A sender that pays nothing for its transfer (the block's last).
    let mv = rows
        .iter()
        .rposition(|r| r.kind == machine::Kind::Move && !r.ops.is_empty())
        .unwrap();
    refused(
        consistent_lie(&honest, &pre, mv, |ops| ops[0].after = ops[0].before),
        "a free transfer",
    );
    // A target credited twice the value.
    refused(
        consistent_lie(&honest, &pre, mv, |ops| {
            ops[3].after = ops[3].after + ops[3].after - ops[3].before
        }),
        "a double credit",
    );
    // A nonce that does not move: the last transaction moves no value, so its nonce bump is
    // the last op on Alice's account.
    let (pre_b, block_b) = block_of(&[
        (BOB, 3, CallData::transfer()),
        (COUNTER_2, 0, CallData::new(Method::Increment)),
    ]);
    let honest_b = witness(&pre_b, &block_b);
    let last_tx = machine::run(&pre_b, domain(), &block_b)
        .unwrap()
        .rows
        .iter()
        .rposition(|r| r.kind == machine::Kind::Tx)
        .unwrap();
    let (rebuilt, post_root) = consistent_lie(&honest_b, &pre_b, last_tx, |_| {});
    assert_eq!(verify(&rebuilt, post_root), Ok(()));
    refused(
        consistent_lie(&honest_b, &pre_b, last_tx, |ops| {
            ops[0].after = ops[0].before
        }),
        "a nonce kept",
    );
    let tx = at(machine::Kind::Tx);
    // An undo that writes back something else than the journaled value (the first undo
    // restores the reverter's account, which nothing touches afterwards).
    let undo = at(machine::Kind::Undo);
    refused(
        consistent_lie(&honest, &pre, undo, |ops| ops[2].after += Fr::one()),
        "an undo to another value",
    );
    // A revert that does not restore state: the undo's ops become unused slots.
    refused(
        consistent_lie(&honest, &pre, undo, |ops| {
            for op in &mut ops[..3] {
                *op = Access {
                    space: Space::Scratch,
                    key: Fr::zero(),
                    before: Fr::zero(),
                    after: Fr::zero(),
                };
            }
        }),
        "a skipped undo",
    );

    // A read of a balance the sender does not have: the memory check refuses it.
    let mut w = honest;
    op(&mut w, tx, 0).before += Fr::from(1000);
    op(&mut w, tx, 0).after += Fr::from(1000);
    assert!(verify(&w, block.post_root).is_err(), "a made-up balance");
}

#[test]
fn a_tape_the_rules_refuse_is_refused() {
    let (pre, block) = local_block();
    let honest = witness(&pre, &block);
    // The same rows against a tape with another nonce, or a value above the balance: the
    // circuit exposes the tampered tape's hash, and no row can follow it.
    for (field, value) in [(1, Fr::from(7)), (3, Fr::from((50 * ETH) as u64))] {
        let mut w = honest.clone();
        w.tape[0].fields[field] = value;
        assert!(
            verify(&w, block.post_root).is_err(),
            "tape field {field} tampered"
        );
    }
    // The executor refuses such a tape too.
    let mut tampered = block;
    if let Step::Tx(tx) = &mut tampered.steps[0] {
        tx.nonce = 7;
    }
    assert!(machine::run(&pre, domain(), &tampered).is_err());
}

/// Why the witness builder refuses rollup 1's block after Alice calls `to` on it.
fn refusal_after_call(to: Address) -> String {
    let mut world = World::with_depth(51, DEPTH);
    world.send(1, to, 0, forward(Method::Increment)).unwrap();
    let sealed = world.seal();
    let block = Block::decode(&sealed[0].data).unwrap();
    let pre = &world.pre_states[0];
    let run = machine::run(pre, domain(), &block).unwrap();
    run.stf_witness(pre, &block, CAPACITY)
        .unwrap_err()
        .to_string()
}

#[test]
fn blocks_beyond_the_circuit_are_refused_with_a_reason() {
    // Rollup 1 calls rollup 2: its tape holds a call result, which the circuit does not
    // prove yet.
    let error = refusal_after_call(TO_COUNTER_2);
    assert!(error.contains("a call result"), "{error}");
    // A local forwarder call has a Call row.
    let error = refusal_after_call(TO_COUNTER_1);
    assert!(error.contains("Call row"), "{error}");
}
