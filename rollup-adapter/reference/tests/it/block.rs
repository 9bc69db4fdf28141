//! The block encoding refuses malformed bytes with a clear error, and replay refuses a block
//! whose tape is not what execution needs.

use lockstep_circuits::{accumulator::check_balanced, entry::Address, Fr};
use lockstep_reference_rollup::{
    abi::{CallData, Method, MAX_VALUE},
    block::{fr_to_be, Block, CallReturn, IncomingCall, Step, Tx, HEADER_LEN},
    executor::DEFAULT_MAX_STEPS,
    Error, ReferenceRollup,
};
use lockstep_rollup_api::SealedBlock;

use crate::world::*;

fn sample() -> Block {
    Block {
        rollup_id: 7,
        slot: 99,
        pre_root: Fr::from(1),
        post_root: Fr::from(2),
        steps: vec![
            Step::Tx(Tx {
                from: Address([1; 20]),
                nonce: 3,
                to: Address([2; 20]),
                value: MAX_VALUE,
                data: CallData::forward(Method::Forward, Method::Swap, 5),
            }),
            Step::Serve(IncomingCall {
                src: 2,
                seq: 4,
                caller: Address([3; 20]),
                target: Address([4; 20]),
                value: 6,
                data: CallData::new(Method::Increment),
                committed: false,
            }),
            Step::Return(CallReturn {
                seq: 0,
                success: true,
                word: u128::MAX,
            }),
        ],
    }
}

/// Decodes `bytes` and returns the error's offset and text.
fn refusal(bytes: &[u8]) -> (usize, String) {
    match Block::decode(bytes) {
        Err(Error::MalformedBlock { offset, reason }) => (offset, reason),
        other => panic!("expected a malformed-block error, got {other:?}"),
    }
}

#[test]
fn encoding_round_trips_with_the_documented_sizes() {
    let block = sample();
    let bytes = block.encode();
    assert_eq!(bytes.len(), HEADER_LEN + 84 + 85 + 22);
    assert_eq!(&bytes[..4], b"LKB\x01");
    assert_eq!(Block::decode(&bytes).unwrap(), block);
}

#[test]
fn malformed_blocks_are_refused_where_they_go_wrong() {
    let good = sample().encode();
    let first_step = HEADER_LEN;
    let serve = first_step + 84;
    let ret = serve + 85;

    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(refusal(&bad).1.contains("magic"));

    let mut bad = good.clone();
    bad[3] = 2;
    assert_eq!(refusal(&bad), (3, "block version 2, expected 1".into()));

    let mut bad = good.clone();
    bad[serve] = 9;
    assert_eq!(refusal(&bad), (serve, "unknown step tag 9".into()));

    let mut bad = good.clone();
    bad[ret - 1] = 2; // the served call's committed flag
    assert_eq!(
        refusal(&bad),
        (ret - 1, "committed flag is 2, expected 0 or 1".into())
    );

    let mut bad = good.clone();
    bad[first_step + 1 + 20 + 8 + 20 + 16 + 1] = 17; // the transaction's inner method
    assert!(refusal(&bad).1.contains("method selector = 17"));

    let mut bad = good.clone();
    bad[first_step + 1 + 20 + 8 + 20] = 0xff; // value above MAX_VALUE
    assert!(refusal(&bad).1.contains("above the maximum"));

    let mut bad = good.clone();
    bad[16..48].copy_from_slice(&[0xff; 32]); // pre root ≥ p
    assert_eq!(
        refusal(&bad),
        (16, "pre root is not a canonical field element".into())
    );

    let (offset, reason) = refusal(&good[..good.len() - 1]);
    assert!(
        reason.starts_with("truncated") && offset == ret + 1 + 4 + 1,
        "{offset} {reason}"
    );

    let mut bad = good.clone();
    bad.push(0);
    assert_eq!(
        refusal(&bad),
        (good.len(), "1 bytes after the last step".into())
    );

    let mut bad = good.clone();
    bad[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&1000u32.to_be_bytes());
    assert!(refusal(&bad).1.contains("declares 1000 steps"));

    assert!(refusal(&[]).1.starts_with("truncated"));
    // Roots are big-endian field elements.
    assert_eq!(&good[16..48], &fr_to_be(&Fr::from(1)));
}

/// The reentrant scenario's sealed blocks and pre-states.
fn reentrant() -> (
    Vec<SealedBlock>,
    Vec<lockstep_reference_rollup::state::State>,
) {
    let mut world = World::new(20);
    world.send(1, BOB, 1, CallData::transfer()).unwrap();
    world
        .send(
            1,
            TO_FORWARDER_2,
            0,
            CallData::forward(Method::Forward, Method::Increment, 0),
        )
        .unwrap();
    let pre = world.pre_states.clone();
    (world.seal(), pre)
}

fn replay(
    pre: &lockstep_reference_rollup::state::State,
    block: &Block,
) -> Result<SealedBlock, Error> {
    ReferenceRollup::replay(pre.clone(), DEFAULT_MAX_STEPS, domain(), block)
}

#[test]
fn replay_refuses_a_tape_execution_does_not_follow() {
    let (sealed, pre) = reentrant();
    let block = Block::decode(&sealed[0].data).unwrap();
    assert!(matches!(
        block.steps.as_slice(),
        [Step::Tx(_), Step::Tx(_), Step::Serve(_), Step::Return(_)]
    ));

    // Another post root in the header.
    let mut bad = block.clone();
    bad.post_root += Fr::one();
    let err = replay(&pre[0], &bad).unwrap_err();
    assert!(err.to_string().contains("post root"), "{err}");

    // Another pre root.
    let mut bad = block.clone();
    bad.pre_root += Fr::one();
    assert!(replay(&pre[0], &bad)
        .unwrap_err()
        .to_string()
        .contains("pre root"));

    // A skipped step: without the served call the counter is not incremented.
    let mut bad = block.clone();
    bad.steps.remove(2);
    assert!(matches!(replay(&pre[0], &bad), Err(Error::Replay { .. })));

    // Reordered transactions: the nonces no longer follow.
    let mut bad = block.clone();
    bad.steps.swap(0, 1);
    assert!(replay(&pre[0], &bad)
        .unwrap_err()
        .to_string()
        .contains("nonce"));

    // A result for another call, a result with no call waiting, a block that ends early.
    let mut bad = block.clone();
    if let Step::Return(r) = &mut bad.steps[3] {
        r.seq = 1;
    }
    assert!(replay(&pre[0], &bad)
        .unwrap_err()
        .to_string()
        .contains("result for call 1"));
    let mut bad = block.clone();
    let ret = bad.steps.remove(3);
    bad.steps.insert(1, ret);
    let err = replay(&pre[0], &bad).unwrap_err();
    assert!(err.to_string().contains("no call waiting"), "{err}");
    let mut bad = block;
    bad.steps.truncate(3);
    assert!(replay(&pre[0], &bad)
        .unwrap_err()
        .to_string()
        .contains("block ends"));
}

#[test]
fn a_wrong_assumed_result_or_committed_flag_unbalances_the_slot() {
    let (sealed, pre) = reentrant();
    let balanced = |blocks: &[SealedBlock]| {
        let publics: Vec<_> = blocks.iter().map(SealedBlock::public_inputs).collect();
        check_balanced(&publics)
    };
    assert!(balanced(&sealed).is_ok());

    // Rollup 1 claims another result for its call; even with the header's post root made to
    // match, its assumed entry no longer matches what rollup 2 served.
    let mut block = Block::decode(&sealed[0].data).unwrap();
    if let Step::Return(r) = &mut block.steps[3] {
        r.word += 1;
    }
    let lying = replay_to_its_own_root(&pre[0], block);
    let err = balanced(&[lying, sealed[1].clone(), sealed[2].clone()]).unwrap_err();
    assert!(err.to_string().contains("do not balance"), "{err}");

    // Rollup 2 serves the call as uncommitted while rollup 1 committed it: it discards the
    // call's changes, and its served entry no longer matches rollup 1's assumed one.
    let mut block = Block::decode(&sealed[1].data).unwrap();
    let Some(Step::Serve(call)) = block.steps.iter_mut().find(|s| matches!(s, Step::Serve(_)))
    else {
        panic!("rollup 2 served a call");
    };
    call.committed = false;
    let lying = replay_to_its_own_root(&pre[1], block);
    assert!(!lying.served[0].committed);
    let err = balanced(&[sealed[0].clone(), lying, sealed[2].clone()]).unwrap_err();
    assert!(err.to_string().contains("do not balance"), "{err}");
}

/// Replays a tampered tape with the header's post root set to wherever the tape leads, as a
/// dishonest prover would: the tape itself is then accepted.
fn replay_to_its_own_root(
    pre: &lockstep_reference_rollup::state::State,
    mut block: Block,
) -> SealedBlock {
    let err = replay(pre, &block).unwrap_err();
    let Error::Replay { reason, .. } = &err else {
        panic!("{err}")
    };
    assert!(reason.contains("post root"), "{reason}");
    block.post_root = parse_root(reason);
    replay(pre, &block).unwrap()
}

/// The root named first in a "post root X differs from the header's Y" message.
fn parse_root(reason: &str) -> Fr {
    let hex = reason
        .split_whitespace()
        .nth(2)
        .and_then(|h| h.strip_prefix("0x"))
        .expect("a root in the message");
    let mut bytes: [u8; 32] = hex::decode(hex).unwrap().try_into().unwrap();
    bytes.reverse();
    Fr::from_bytes(&bytes).unwrap()
}
