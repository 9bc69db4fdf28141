//! The classic synchronous-composability scenarios, executed across rollups by the builder's
//! cluster; every sealed block is replayed from its bytes (`World::seal`).

use lockstep_circuits::entry::Address;
use lockstep_reference_rollup::{
    abi::{self, CallData, Method, REVERT_ALWAYS},
    block::{Step, Tx},
    Genesis, ReferenceRollup,
};
use lockstep_rollup_api::{Cluster, RollupError};

use crate::world::*;

#[test]
fn counter_increment_across_rollups() {
    let mut world = World::new(10);
    for expected in 1..=2 {
        let receipt = world
            .send(1, TO_COUNTER_2, 0, forward(Method::Increment))
            .unwrap();
        assert!(receipt.outcome.success);
        assert_eq!(receipt.outcome.word, expected);
        assert_eq!((receipt.cross_calls, receipt.executions), (1, 1));
    }
    assert_eq!(world.rollup(2).storage(&COUNTER_2, 0).unwrap(), 2);
    assert_eq!(world.rollup(1).storage(&TO_COUNTER_2, 0).unwrap(), 2);

    let blocks = world.seal();
    // Rollup 1 assumed exactly what rollup 2 served, in order, with the results it used.
    assert_eq!(blocks[0].assumed, blocks[1].served);
    assert_eq!(blocks[0].assumed.len(), 2);
    let first = &blocks[0].assumed[0];
    assert_eq!((first.src, first.dst, first.seq), (1, 2, 0));
    assert_eq!(first.return_hash, abi::word_digest(1));
    assert_eq!(blocks[0].assumed[1].seq, 1);
    assert!(first.success && first.committed);
    assert!(blocks[2].assumed.is_empty() && blocks[2].served.is_empty());
}

#[test]
fn swap_with_value_moves_eth_between_rollups() {
    let mut world = World::new(11);
    let value = 2 * ETH;
    let expected = abi::swap_output(AMM_ETH, AMM_TOKENS, value);
    let receipt = world
        .send(
            1,
            TO_AMM_2,
            value,
            CallData::forward(Method::Swap, Method::Transfer, expected),
        )
        .unwrap();
    assert_eq!(
        receipt.outcome,
        lockstep_reference_rollup::CallOutcome::ok(expected)
    );
    // The tokens belong to the forwarder on rollup 1, which called the AMM.
    let two = world.rollup(2);
    assert_eq!(two.token_balance(&AMM_2, &TO_AMM_2).unwrap(), expected);
    assert_eq!(two.storage(&AMM_2, 0).unwrap(), AMM_ETH + value);
    assert_eq!(two.storage(&AMM_2, 1).unwrap(), AMM_TOKENS - expected);
    assert_eq!(two.account(&AMM_2).unwrap().balance, AMM_ETH + value);
    assert_eq!(world.rollup(1).account(&ALICE).unwrap().balance, 8 * ETH);
    assert_eq!(world.rollup(1).storage(&TO_AMM_2, 0).unwrap(), expected);

    // A swap that would pay less than asked reverts on rollup 2; the forwarder counts the
    // failure, the value comes back to it, and no ETH leaves rollup 1.
    let greedy = world
        .send(
            1,
            TO_AMM_2,
            ETH,
            CallData::forward(Method::Swap, Method::Transfer, u128::MAX),
        )
        .unwrap();
    assert_eq!(
        greedy.outcome,
        lockstep_reference_rollup::CallOutcome::ok(0)
    );
    assert_eq!(world.rollup(1).storage(&TO_AMM_2, 1).unwrap(), 1);
    assert_eq!(world.rollup(1).account(&TO_AMM_2).unwrap().balance, ETH);

    let blocks = world.seal();
    assert_eq!(blocks[0].header.eth_delta, -(value as i128));
    assert_eq!(blocks[1].header.eth_delta, value as i128);
    assert_eq!(blocks[0].assumed[0].value, abi::value_bytes(value));
    assert!(!blocks[1].served[1].success);
}

#[test]
fn reentrant_call_a_to_b_to_a() {
    let mut world = World::new(12);
    // Rollup 1's forwarder calls rollup 2's forwarder, which calls rollup 1's counter.
    let receipt = world
        .send(
            1,
            TO_FORWARDER_2,
            0,
            CallData::forward(Method::Forward, Method::Increment, 0),
        )
        .unwrap();
    assert_eq!(receipt.outcome.word, 1);
    assert_eq!(receipt.cross_calls, 2);
    assert_eq!(world.rollup(1).storage(&COUNTER_1, 0).unwrap(), 1);
    assert_eq!(world.rollup(2).storage(&BACK_TO_1, 0).unwrap(), 1);
    assert_eq!(world.rollup(1).storage(&TO_FORWARDER_2, 0).unwrap(), 1);

    let blocks = world.seal();
    assert_eq!(blocks[0].assumed, blocks[1].served);
    assert_eq!(blocks[1].assumed, blocks[0].served);
    // Rollup 1 served rollup 2's call while its own call to rollup 2 was pending.
    let steps = lockstep_reference_rollup::block::Block::decode(&blocks[0].data)
        .unwrap()
        .steps;
    assert!(matches!(
        steps.as_slice(),
        [Step::Tx(_), Step::Serve(s), Step::Return(r)] if s.src == 2 && r.seq == 0
    ));
}

#[test]
fn three_rollups_in_one_call_chain() {
    let mut world = World::new(13);
    let receipt = world
        .send(
            3,
            THREE_TO_1,
            0,
            CallData::forward(Method::Forward, Method::Increment, 0),
        )
        .unwrap();
    assert_eq!((receipt.outcome.word, receipt.cross_calls), (1, 2));
    let blocks = world.seal();
    assert_eq!(blocks[2].assumed, blocks[0].served);
    assert_eq!(blocks[0].assumed, blocks[1].served);
}

#[test]
fn callee_reverts_and_caller_handles_it() {
    let mut world = World::new(14);
    let receipt = world
        .send(1, TO_REVERTER_2, 5, forward(Method::Increment))
        .unwrap();
    // The forwarder caught the failure: the transaction succeeds and returns 0.
    assert_eq!(
        receipt.outcome,
        lockstep_reference_rollup::CallOutcome::ok(0)
    );
    assert_eq!(world.rollup(1).storage(&TO_REVERTER_2, 1).unwrap(), 1);
    // The value never left: the forwarder got its 5 wei back.
    assert_eq!(world.rollup(1).account(&TO_REVERTER_2).unwrap().balance, 5);
    assert_eq!(world.rollup(2).account(&REVERTER_2).unwrap().balance, 0);

    let blocks = world.seal();
    let (assumed, served) = (&blocks[0].assumed[0], &blocks[1].served[0]);
    assert_eq!(assumed, served);
    assert!(!assumed.success && assumed.committed);
    assert_eq!(assumed.return_hash, abi::word_digest(REVERT_ALWAYS));
    assert_eq!(
        (blocks[0].header.eth_delta, blocks[1].header.eth_delta),
        (0, 0)
    );
    assert_eq!(blocks[1].header.post_root, blocks[1].header.pre_root);
}

#[test]
fn caller_reverts_after_the_callee_served_its_call() {
    let mut world = World::new(15);
    let two_before = world.rollup(2).root();
    let receipt = world
        .send(1, TO_COUNTER_2, 7, forward_then_revert(Method::Increment))
        .unwrap();
    // The forwarder got 1 from the counter, then reverted with it.
    assert_eq!(
        receipt.outcome,
        lockstep_reference_rollup::CallOutcome::revert(1)
    );
    // The second run gave rollup 2 the call as uncommitted from the start.
    assert_eq!(receipt.executions, 2);
    // Rollup 2 ran the increment (its result counts) and discarded it.
    assert_eq!(world.rollup(2).storage(&COUNTER_2, 0).unwrap(), 0);
    assert_eq!(world.rollup(2).root(), two_before);
    // Rollup 1 kept only the nonce; Alice has her 7 wei back.
    assert_eq!(world.rollup(1).account(&ALICE).unwrap().nonce, 1);
    assert_eq!(world.rollup(1).account(&ALICE).unwrap().balance, 10 * ETH);
    assert_eq!(world.rollup(1).storage(&TO_COUNTER_2, 0).unwrap(), 0);

    let blocks = world.seal();
    let (assumed, served) = (&blocks[0].assumed[0], &blocks[1].served[0]);
    assert_eq!(assumed, served, "the entries still match");
    assert!(assumed.success && !assumed.committed);
    assert_eq!(assumed.return_hash, abi::word_digest(1));
    assert_eq!(
        (blocks[0].header.eth_delta, blocks[1].header.eth_delta),
        (0, 0)
    );
}

#[test]
fn over_balance_transaction_is_refused_and_changes_nothing() {
    let mut world = World::new(16);
    let roots: Vec<_> = world.rollups.iter().map(|r| r.root()).collect();
    let err = world
        .send(1, TO_AMM_2, 11 * ETH, forward(Method::Swap))
        .unwrap_err();
    assert!(
        matches!(&err, RollupError::Refused { rollup: 1, reason } if reason.contains("holds")),
        "{err}"
    );
    assert!(err.is_retryable());
    // A wrong nonce is refused the same way.
    let tx = Tx {
        from: ALICE,
        nonce: 5,
        to: BOB,
        value: 1,
        data: CallData::transfer(),
    };
    assert!(matches!(
        world.cluster.submit(1, &tx.encode()),
        Err(RollupError::Refused { reason, .. }) if reason.contains("nonce")
    ));
    let after: Vec<_> = world.rollups.iter().map(|r| r.root()).collect();
    assert_eq!(roots, after);
    let blocks = world.seal();
    assert!(blocks
        .iter()
        .all(|b| b.assumed.is_empty() && b.header.pre_root == b.header.post_root));
    assert!(blocks
        .iter()
        .all(|b| lockstep_reference_rollup::block::Block::decode(&b.data)
            .unwrap()
            .steps
            .is_empty()));
}

#[test]
fn transfers_and_local_calls_record_no_entries() {
    let mut world = World::new(17);
    world.send(1, BOB, 3, CallData::transfer()).unwrap();
    let local = world
        .send(1, TO_COUNTER_1, 0, forward(Method::Increment))
        .unwrap();
    assert_eq!((local.outcome.word, local.cross_calls), (1, 0));
    assert_eq!(world.rollup(1).account(&BOB).unwrap().balance, ETH + 3);
    // Calling a method the target does not have reverts; the nonce still counts.
    let bad = world
        .send(1, COUNTER_1, 0, CallData::new(Method::Swap))
        .unwrap();
    assert!(!bad.outcome.success);
    assert_eq!(world.rollup(1).account(&ALICE).unwrap().nonce, 3);
    let blocks = world.seal();
    assert!(blocks
        .iter()
        .all(|b| b.assumed.is_empty() && b.served.is_empty()));
    assert_eq!(blocks[0].header.eth_delta, 0);
}

#[test]
fn entry_capacity_and_unknown_rollups_are_refused_whole() {
    let mut world = World::new(18);
    for _ in 0..lockstep_circuits::layout::MAX_ENTRIES {
        world
            .send(1, TO_COUNTER_2, 0, forward(Method::Increment))
            .unwrap();
    }
    let root = world.rollup(1).root();
    let err = world
        .send(1, TO_COUNTER_2, 0, forward(Method::Increment))
        .unwrap_err();
    assert!(
        matches!(&err, RollupError::Full { rollup: 1, reason } if reason.contains("more than")),
        "{err}"
    );
    assert_eq!(world.rollup(1).root(), root);
    world.nonces[1] -= 1;

    let mut cluster = Cluster::new(domain());
    let lonely = Address([0x99; 20]);
    let genesis = Genesis::new(1).with_account(ALICE, 1).with_app(
        lonely,
        lockstep_reference_rollup::abi::AppKind::Forwarder {
            rollup: 9,
            target: lonely,
        },
        0,
    );
    cluster
        .add(Box::new(ReferenceRollup::new(&genesis).unwrap()))
        .unwrap();
    assert!(cluster
        .add(Box::new(ReferenceRollup::new(&genesis).unwrap()))
        .is_err());
    cluster.begin_slot(1).unwrap();
    let tx = Tx {
        from: ALICE,
        nonce: 0,
        to: lonely,
        value: 0,
        data: forward(Method::Increment),
    };
    assert!(matches!(
        cluster.submit(1, &tx.encode()),
        Err(RollupError::UnknownRollup(9))
    ));
    let blocks = cluster.seal().unwrap();
    assert!(blocks[0].assumed.is_empty());
    world.seal();
}
