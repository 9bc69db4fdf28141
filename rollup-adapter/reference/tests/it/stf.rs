//! The STF circuit: the executor's blocks, local and cross-rollup, prove (MockProver) to the
//! public inputs the builder sealed, and every way of lying about a block's execution is refused.

use halo2_base::{gates::circuit::CircuitBuilderStage, halo2_proofs::dev::MockProver};
use std::collections::HashMap;

use lockstep_circuits::{
    entry::{Address, Entry},
    layout::RollupPublicInputs,
    memory::{Access, MemoryOp, MemoryWitness, Space},
    shape::DEFAULT_LOOKUP_BITS,
    Fr,
};
use lockstep_reference_rollup::{
    abi::{self, swap_output, CallData, Method},
    block::{Block, Step},
    circuit::{self as stf, StfCapacity, StfWitness},
    machine,
    state::State,
};
use lockstep_rollup_api::SealedBlock;

use crate::{props::TARGETS, world::*};

/// The scenario tests' tree depth: the three geneses' keys fall on distinct leaves.
const DEPTH: usize = 12;
const CAPACITY: StfCapacity = StfCapacity {
    rows: 32,
    tape: 6,
    keys: 12,
    scratch: 48,
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

/// The DA commitment the tests' proofs expose.
const DA: u64 = 0xda;

fn witness(pre: &State, block: &Block) -> StfWitness {
    let run = machine::run(pre, domain(), block).unwrap();
    run.stf_witness(pre, block, domain(), Fr::from(DA), CAPACITY)
        .unwrap()
}

/// A local block's proof: no ETH delta, no entries.
fn verify(witness: &StfWitness, post_root: Fr) -> Result<(), String> {
    let mut public = witness.public_inputs(&[], &[]);
    public.header.post_root = post_root;
    public.header.eth_delta = 0;
    verify_against(witness, &public)
}

fn verify_against(witness: &StfWitness, public: &RollupPublicInputs) -> Result<(), String> {
    let builder = stf::circuit(
        CircuitBuilderStage::Mock,
        K,
        DEFAULT_LOOKUP_BITS,
        None,
        CAPACITY,
        witness,
    )
    .map_err(|e| e.to_string())?;
    let instances = public.to_instances().map_err(|e| e.to_string())?;
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
        header: honest.header,
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

/// Alice's transactions on rollup 1 (target, value, calldata), sealed with the cluster: the
/// blocks of rollups 1 and 2, each with its pre-state, rows and ETH delta.
fn cross_blocks(slot: u64, txs: &[(Address, u128, CallData)]) -> Vec<Proved> {
    let mut world = World::with_depth(slot, DEPTH);
    for &(to, value, data) in txs {
        world.send(1, to, value, data).unwrap();
    }
    let sealed = world.seal();
    sealed
        .iter()
        .zip(&world.pre_states)
        .take(2)
        .map(|(sealed, pre)| {
            let block = Block::decode(&sealed.data).unwrap();
            let run = machine::run(pre, domain(), &block).unwrap();
            let witness = run
                .stf_witness(pre, &block, domain(), Fr::from(DA), CAPACITY)
                .unwrap();
            // What the block's proof must expose: the builder's sealed block.
            let public = sealed.witness(Fr::from(DA)).public_inputs();
            Proved {
                pre: pre.clone(),
                rows: run.rows,
                witness,
                public,
                sealed: sealed.clone(),
            }
        })
        .collect()
}

/// A block with what its proof needs.
struct Proved {
    pre: State,
    rows: Vec<machine::Row>,
    witness: StfWitness,
    public: RollupPublicInputs,
    sealed: SealedBlock,
}

impl Proved {
    fn verify(&self) -> Result<(), String> {
        verify_against(&self.witness, &self.public)
    }

    /// Refused against public inputs changed by `change`.
    fn refuses(&self, change: impl Fn(&mut RollupPublicInputs), what: &str) {
        let mut public = self.public.clone();
        change(&mut public);
        assert!(
            verify_against(&self.witness, &public).is_err(),
            "{what} was accepted"
        );
    }

    /// The first row of `kind` matching `filter`.
    fn at(&self, kind: machine::Kind, filter: impl Fn(&machine::Row) -> bool) -> usize {
        self.rows
            .iter()
            .position(|r| r.kind == kind && filter(r))
            .unwrap_or_else(|| panic!("no such {kind:?} row"))
    }

    /// A consistent lie about `row`, checked against the honest public inputs with the post
    /// root it leads to.
    fn lie(&self, row: usize, change: impl Fn(&mut [Access]), what: &str) {
        self.lie_about_entry(row, change, |_, _| {}, what);
    }

    /// A consistent lie about `row` that also changes an entry, checked against public inputs
    /// that claim the changed entry (`edit` takes the assumed and served lists): so that only
    /// the row's constraints stand in the way, not the entry exposure.
    fn lie_about_entry(
        &self,
        row: usize,
        change: impl Fn(&mut [Access]),
        edit: impl Fn(&mut Vec<Entry>, &mut Vec<Entry>),
        what: &str,
    ) {
        let (witness, post_root) = consistent_lie(&self.witness, &self.pre, row, change);
        let (mut assumed, mut served) = (self.sealed.assumed.clone(), self.sealed.served.clone());
        edit(&mut assumed, &mut served);
        let mut public = witness.public_inputs(&assumed, &served);
        public.header.post_root = post_root;
        assert!(
            verify_against(&witness, &public).is_err(),
            "{what} was accepted"
        );
    }
}

fn kinds(proved: &Proved) -> Vec<machine::Kind> {
    proved.rows.iter().map(|r| r.kind).collect()
}

#[test]
fn a_counter_call_and_a_swap_with_value_across_rollups_prove() {
    use machine::Kind::*;
    let out = swap_output(AMM_ETH, AMM_TOKENS, 2 * ETH);
    let blocks = cross_blocks(
        52,
        &[
            (TO_COUNTER_2, 0, forward(Method::Increment)),
            (
                TO_AMM_2,
                2 * ETH,
                CallData::forward(Method::Swap, Method::Transfer, out),
            ),
        ],
    );
    let [one, two] = [&blocks[0], &blocks[1]];
    assert!(kinds(one).contains(&Return) && kinds(one).contains(&Resume));
    assert!(kinds(two).contains(&Serve) && kinds(two).contains(&Tokens));
    for (proved, rollup) in [(one, 1), (two, 2)] {
        assert_eq!(proved.verify(), Ok(()), "rollup {rollup}");
    }
    // Rollup 1 sent 2 ETH away, rollup 2 received them: a delta of the other sign or none is
    // refused.
    assert_eq!(one.public.header.eth_delta, -((2 * ETH) as i128));
    assert_eq!(two.public.header.eth_delta, (2 * ETH) as i128);
    for proved in [one, two] {
        proved.refuses(|p| p.header.eth_delta = 0, "no ETH delta");
        proved.refuses(
            |p| p.header.eth_delta = -p.header.eth_delta,
            "the opposite ETH delta",
        );
    }
    // Each side's entries are what the builder sealed: two calls assumed on rollup 1, served
    // on rollup 2. Another result, a dropped entry or a swapped order is refused.
    assert_eq!((one.public.assumed.len(), two.public.served.len()), (2, 2));
    one.refuses(|p| p.assumed.truncate(1), "a dropped assumed entry");
    one.refuses(|p| p.assumed.swap(0, 1), "reordered entries");
    two.refuses(|p| p.served[1] += Fr::one(), "another served entry");
    two.refuses(|p| p.served.push(Fr::one()), "an extra served entry");

    // Rollup 1: the forwarder stores another word than the result.
    let resume = one.at(Resume, |_| true);
    one.lie(
        resume,
        |ops| ops[0].after += Fr::one(),
        "a stored result + 1",
    );
    // The call's assumed entry with another committed flag.
    let call = one.at(Call, |_| true);
    one.lie_about_entry(
        call,
        |ops| ops[6].after = Fr::zero(),
        |assumed, _| assumed[0].committed = false,
        "an uncommitted call",
    );
    // Rollup 2: the served entry with another committed flag, or a result it did not produce.
    let serve = two.at(Serve, |_| true);
    two.lie_about_entry(
        serve,
        |ops| ops[1].after -= Fr::from(1 << 40).square().square(),
        |_, served| served[0].committed = false,
        "a served entry's flag",
    );
    // (A served call at depth 1 ends with its result alone, in slot 0.)
    let pop = two.at(Pop, |r| r.before.frame.data.method == Method::Increment);
    two.lie_about_entry(
        pop,
        |ops| ops[0].after += Fr::from(2),
        |_, served| served[0].return_hash = abi::word_digest(2),
        "another served result",
    );
    // The AMM pays out one token more, or the holder is credited one more.
    let swap = two.at(App, |r| r.before.frame.data.method == Method::Swap);
    two.lie(swap, |ops| ops[1].after -= Fr::one(), "a swap paying more");
    let tokens = two.at(Tokens, |_| true);
    two.lie(
        tokens,
        |ops| ops[0].after += Fr::one(),
        "a token credit + 1",
    );
}

#[test]
fn reentrant_failing_and_local_calls_prove() {
    use machine::Kind::*;
    let blocks = cross_blocks(
        53,
        &[
            // A → B → A.
            (
                TO_FORWARDER_2,
                0,
                CallData::forward(Method::Forward, Method::Increment, 0),
            ),
            // The callee reverts: the value comes back.
            (TO_REVERTER_2, 5, forward(Method::Increment)),
            // A local forwarder call.
            (TO_COUNTER_1, 0, forward(Method::Increment)),
        ],
    );
    let [one, two] = [&blocks[0], &blocks[1]];
    assert!(one.rows.len() < CAPACITY.rows, "{} rows", one.rows.len());
    for (proved, rollup) in [(one, 1), (two, 2)] {
        assert_eq!(proved.verify(), Ok(()), "rollup {rollup}");
    }
    // The failed call's value is not refunded.
    let refund = one.at(Return, |r| !r.after.outcome.success);
    one.lie(
        refund,
        |ops| ops[1].after = ops[1].before,
        "a refund skipped",
    );
    // The local call saves another caller for the frame it suspends.
    let local = one.at(Call, |r| r.after.depth > r.before.depth);
    one.lie(
        local,
        |ops| ops[1].after += Fr::one(),
        "a suspended frame changed",
    );
    // Rollup 1 serves B's call back while it waits: that suspension too.
    let serve = one.at(Serve, |r| r.before.depth > 0);
    one.lie(
        serve,
        |ops| ops[5].after += Fr::one(),
        "a waiting frame changed",
    );
}

#[test]
fn a_caller_that_reverts_after_its_callee_served_proves() {
    use machine::Kind::*;
    let blocks = cross_blocks(
        54,
        &[(TO_COUNTER_2, 7, forward_then_revert(Method::Increment))],
    );
    let [one, two] = [&blocks[0], &blocks[1]];
    assert!(kinds(one).contains(&Mark));
    assert!(
        kinds(two).contains(&Undo),
        "the uncommitted call is discarded"
    );
    for (proved, rollup) in [(one, 1), (two, 2)] {
        assert_eq!(proved.verify(), Ok(()), "rollup {rollup}");
    }
    assert_eq!(two.public.header.eth_delta, 0);
    // The entries carry the committed flag 0 on both sides.
    one.refuses(|p| p.assumed.clear(), "no assumed entry");
    // The mark left out: the call stays committed.
    let mark = one.at(Mark, |_| true);
    one.lie_about_entry(
        mark,
        |ops| ops[0].after = Fr::one(),
        |assumed, _| assumed[0].committed = true,
        "an unmarked call",
    );
    // Rollup 2 keeps the counter's increment: its undo writes the new value back.
    let undo = two.at(Undo, |_| true);
    two.lie(undo, |ops| ops[2].after = ops[2].before, "a kept change");
}

/// Random transactions go where the executor's property test sends them ([`TARGETS`]).
/// A smaller row capacity, more keys: random blocks touch more distinct cells per row.
const RANDOM_CAPACITY: StfCapacity = StfCapacity {
    rows: 24,
    tape: 6,
    keys: 14,
    scratch: 48,
};

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 3, ..Default::default() })]

    /// The executor and the STF circuit agree on random blocks: every rollup's block proves to
    /// exactly the public inputs the builder sealed (roots, ETH delta, both entry lists).
    #[test]
    fn random_blocks_prove_to_what_the_executor_sealed(
        txs in proptest::collection::vec(
            (
                0..TARGETS.len(),
                proptest::prop_oneof![proptest::strategy::Just(0u128), 1u128..1000],
                0u8..6,
                0u8..6,
            ),
            1..3,
        )
    ) {
        let mut world = World::with_depth(70, DEPTH);
        for (target, value, method, inner) in txs {
            let (rollup, to) = TARGETS[target];
            let data = CallData {
                method: Method::try_from(method).unwrap(),
                inner: Method::try_from(inner).unwrap(),
                next: Method::Increment,
                arg: 0,
            };
            let _ = world.send(rollup, to, value, data);
        }
        let sealed = world.seal();
        let mut proven = 0;
        for (block, pre) in sealed.iter().zip(&world.pre_states) {
            let decoded = Block::decode(&block.data).unwrap();
            let run = machine::run(pre, domain(), &decoded).unwrap();
            let Ok(witness) =
                run.stf_witness(pre, &decoded, domain(), Fr::from(DA), RANDOM_CAPACITY)
            else {
                // Beyond the test's capacity (the witness builder says so): not this test's
                // subject.
                continue;
            };
            let public = block.witness(Fr::from(DA)).public_inputs();
            let builder =
                stf::circuit(CircuitBuilderStage::Mock, K, DEFAULT_LOOKUP_BITS, None, RANDOM_CAPACITY, &witness)
                    .unwrap();
            let prover =
                MockProver::run(K, &builder, vec![public.to_instances().unwrap()]).unwrap();
            proptest::prop_assert!(
                prover.verify().is_ok(),
                "rollup {}: {} rows did not prove",
                block.header.rollup_id,
                run.rows.len()
            );
            proven += usize::from(!decoded.steps.is_empty());
        }
        // At least one real block was checked (one or two transactions fit the capacity).
        proptest::prop_assert!(proven >= 1);
    }
}
