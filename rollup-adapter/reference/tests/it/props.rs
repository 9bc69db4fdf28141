//! Property tests: random workloads across three rollups always seal blocks that balance,
//! replay from their bytes, conserve ETH, and leave no trace of refused transactions.

use lockstep_circuits::entry::Address;
use lockstep_reference_rollup::{
    abi::{CallData, Method},
    block::{Block, CallReturn, IncomingCall, Step, Tx},
};
use proptest::prelude::*;

use crate::world::*;

/// Every (rollup, target) a transaction may go to.
pub(crate) const TARGETS: [(u32, Address); 14] = [
    (1, COUNTER_1),
    (1, TO_COUNTER_2),
    (1, TO_AMM_2),
    (1, TO_REVERTER_2),
    (1, TO_FORWARDER_2),
    (1, TO_COUNTER_1),
    (1, BOB),
    (2, COUNTER_2),
    (2, AMM_2),
    (2, REVERTER_2),
    (2, BACK_TO_1),
    (3, THREE_TO_COUNTER_2),
    (3, THREE_TO_1),
    (3, Address([0x77; 20])),
];

fn method() -> impl Strategy<Value = Method> {
    (0u8..6).prop_map(|m| Method::try_from(m).unwrap())
}

fn calldata() -> impl Strategy<Value = CallData> {
    (
        method(),
        method(),
        method(),
        prop_oneof![Just(0u128), 0u128..1000],
    )
        .prop_map(|(method, inner, next, arg)| CallData {
            method,
            inner,
            next,
            arg,
        })
}

fn value() -> impl Strategy<Value = u128> {
    prop_oneof![Just(0u128), 1u128..1000, Just(3 * ETH), Just(11 * ETH)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_workloads_balance_replay_and_conserve_eth(
        txs in prop::collection::vec((0..TARGETS.len(), value(), calldata()), 1..12)
    ) {
        let mut world = World::new(30);
        let before: Vec<u128> = (1..=3).map(|r| world.eth_on(r)).collect();
        for (target, value, data) in txs {
            let (rollup, to) = TARGETS[target];
            let roots: Vec<_> = world.rollups.iter().map(|r| r.root()).collect();
            if world.send(rollup, to, value, data).is_err() {
                // A refused transaction leaves no trace anywhere.
                let after: Vec<_> = world.rollups.iter().map(|r| r.root()).collect();
                prop_assert_eq!(roots, after);
            }
        }
        // `seal` checks the balance of entries and replays every block from its bytes.
        let blocks = world.seal();
        let mut total = 0i128;
        for (i, block) in blocks.iter().enumerate() {
            let after = world.eth_on(i as u32 + 1);
            prop_assert_eq!(after as i128 - before[i] as i128, block.header.eth_delta);
            total += block.header.eth_delta;
        }
        prop_assert_eq!(total, 0);
    }

    #[test]
    fn blocks_round_trip_and_mutations_never_panic(
        steps in prop::collection::vec(step(), 0..8),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let block = Block {
            rollup_id: 3,
            slot: 1,
            pre_root: lockstep_circuits::Fr::from(5),
            post_root: lockstep_circuits::Fr::from(6),
            steps,
        };
        let bytes = block.encode();
        prop_assert_eq!(Block::decode(&bytes).unwrap(), block);
        let mut mutated = bytes;
        for (at, byte) in flips {
            let i = at.index(mutated.len());
            mutated[i] ^= byte | 1;
        }
        // Either refused with an error or decoded to a block that re-encodes to the same bytes.
        if let Ok(decoded) = Block::decode(&mutated) {
            prop_assert_eq!(decoded.encode(), mutated);
        }
    }
}

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

fn step() -> impl Strategy<Value = Step> {
    let value = 0u128..=lockstep_reference_rollup::abi::MAX_VALUE;
    prop_oneof![
        (
            address(),
            any::<u64>(),
            address(),
            value.clone(),
            calldata()
        )
            .prop_map(|(from, nonce, to, value, data)| Step::Tx(Tx {
                from,
                nonce,
                to,
                value,
                data
            })),
        (
            any::<u32>(),
            any::<u32>(),
            address(),
            address(),
            value,
            calldata(),
            any::<bool>()
        )
            .prop_map(|(src, seq, caller, target, value, data, committed)| {
                Step::Serve(IncomingCall {
                    src,
                    seq,
                    caller,
                    target,
                    value,
                    data,
                    committed,
                })
            }),
        (any::<u32>(), any::<bool>(), any::<u128>())
            .prop_map(|(seq, success, word)| Step::Return(CallReturn { seq, success, word })),
    ]
}
