//! The sample cluster: three reference rollups holding every app, wired to call one another.
//! The demo runs it, and the tests build their scenarios on it, so that a name means the same
//! account or app everywhere.
//!
//! | rollup | accounts | apps |
//! |---|---|---|
//! | 1 | Alice 10 ETH, Bob 1 ETH | [`COUNTER_1`]; forwarders to rollup 2's counter ([`TO_COUNTER_2`]), AMM ([`TO_AMM_2`]), reverter ([`TO_REVERTER_2`]) and forwarder back ([`TO_FORWARDER_2`]); a forwarder to its own counter ([`TO_COUNTER_1`]) |
//! | 2 | Alice 10 ETH | [`COUNTER_2`], the AMM [`AMM_2`] (100 ETH, 200,000 tokens), [`REVERTER_2`], a forwarder back to rollup 1's counter ([`BACK_TO_1`]) |
//! | 3 | Alice 10 ETH, Carol 5 ETH | forwarders to rollup 2's counter ([`THREE_TO_COUNTER_2`]) and to rollup 1's forwarder to it ([`THREE_TO_1`]) |

use lockstep_circuits::entry::{Address, Domain};

use crate::{abi::AppKind, Genesis};

/// One ether, in wei.
pub const ETH: u128 = 1_000_000_000_000_000_000;
/// The AMM's ETH reserve at genesis.
pub const AMM_ETH: u128 = 100 * ETH;
/// The AMM's token reserve at genesis.
pub const AMM_TOKENS: u128 = 200_000 * ETH;

/// A user on every rollup.
pub const ALICE: Address = Address([0xa1; 20]);
/// A user on rollup 1.
pub const BOB: Address = Address([0xb0; 20]);
/// A user on rollup 3.
pub const CAROL: Address = Address([0xca; 20]);
/// Rollup 1's counter.
pub const COUNTER_1: Address = Address([0xc1; 20]);
/// Rollup 2's counter.
pub const COUNTER_2: Address = Address([0xc2; 20]);
/// On rollup 1: a forwarder to [`COUNTER_2`].
pub const TO_COUNTER_2: Address = Address([0xf2; 20]);
/// On rollup 1: a forwarder to [`AMM_2`].
pub const TO_AMM_2: Address = Address([0xf5; 20]);
/// On rollup 1: a forwarder to [`REVERTER_2`].
pub const TO_REVERTER_2: Address = Address([0xfe; 20]);
/// On rollup 1: a forwarder to [`BACK_TO_1`], which calls back into rollup 1.
pub const TO_FORWARDER_2: Address = Address([0xff; 20]);
/// On rollup 1: a forwarder to its own [`COUNTER_1`] (a local call).
pub const TO_COUNTER_1: Address = Address([0xf1; 20]);
/// Rollup 2's AMM.
pub const AMM_2: Address = Address([0xaa; 20]);
/// Rollup 2's reverter.
pub const REVERTER_2: Address = Address([0xde; 20]);
/// On rollup 2: a forwarder to [`COUNTER_1`].
pub const BACK_TO_1: Address = Address([0xb1; 20]);
/// On rollup 3: a forwarder to [`COUNTER_2`].
pub const THREE_TO_COUNTER_2: Address = Address([0x32; 20]);
/// On rollup 3: a forwarder to rollup 1's [`TO_COUNTER_2`] (two hops).
pub const THREE_TO_1: Address = Address([0x31; 20]);

/// Every address of the sample, for conservation checks.
pub const ADDRESSES: [Address; 15] = [
    ALICE,
    BOB,
    CAROL,
    COUNTER_1,
    COUNTER_2,
    TO_COUNTER_2,
    TO_AMM_2,
    TO_REVERTER_2,
    TO_FORWARDER_2,
    TO_COUNTER_1,
    AMM_2,
    REVERTER_2,
    BACK_TO_1,
    THREE_TO_COUNTER_2,
    THREE_TO_1,
];

/// The deployment domain of local runs: anvil's chain id and a fixed registry address.
pub const DOMAIN: Domain = Domain {
    chain_id: 31_337,
    registry: Address([0x5e; 20]),
};

/// The three rollups' geneses, with state trees of `depth` levels.
pub fn geneses(depth: usize) -> [Genesis; 3] {
    let forwarder = |rollup, target| AppKind::Forwarder { rollup, target };
    [
        Genesis::new(1)
            .with_account(ALICE, 10 * ETH)
            .with_account(BOB, ETH)
            .with_app(COUNTER_1, AppKind::Counter, 0)
            .with_app(TO_COUNTER_2, forwarder(2, COUNTER_2), 0)
            .with_app(TO_AMM_2, forwarder(2, AMM_2), 0)
            .with_app(TO_REVERTER_2, forwarder(2, REVERTER_2), 0)
            .with_app(TO_FORWARDER_2, forwarder(2, BACK_TO_1), 0)
            .with_app(TO_COUNTER_1, forwarder(1, COUNTER_1), 0),
        Genesis::new(2)
            .with_account(ALICE, 10 * ETH)
            .with_app(COUNTER_2, AppKind::Counter, 0)
            .with_amm(AMM_2, AMM_ETH, AMM_TOKENS)
            .with_app(REVERTER_2, AppKind::Reverter, 0)
            .with_app(BACK_TO_1, forwarder(1, COUNTER_1), 0),
        Genesis::new(3)
            .with_account(ALICE, 10 * ETH)
            .with_account(CAROL, 5 * ETH)
            .with_app(THREE_TO_COUNTER_2, forwarder(2, COUNTER_2), 0)
            .with_app(THREE_TO_1, forwarder(1, TO_COUNTER_2), 0),
    ]
    .map(|mut genesis| {
        genesis.tree_depth = depth;
        genesis
    })
}
