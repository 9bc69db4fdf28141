//! The tally rollup: a second, tiny Lockstep rollup with a circuit of its own, written to show
//! that the aggregation is universal. It is what a rollup team brings to a cluster: an executor
//! that implements [`lockstep_rollup_api::SyncRollup`] and a circuit of the common shape whose
//! verifying key is all the aggregator learns of it.
//!
//! # What it does
//! One app, [`TALLY_APP`], counts the calls other rollups make to it and keeps the ETH they
//! carry. Its state is a count and a balance, committed as
//! `Poseidon("lockstep.tally.1", count, balance)`. A call to it, with any calldata, returns the
//! new count as a 16-byte big-endian word (so a reference rollup reads it as a word) and always
//! succeeds. A call made inside a frame that later reverts (uncommitted) gets its answer but
//! changes nothing: the count and balance stay, and its value is not kept. It takes no user
//! transactions and makes no calls of its own.
//!
//! # The pieces
//! - [`block`]: its block format (the calls it served, in order) and their execution, the one
//!   definition of its rules that the executor and the circuit's witness share.
//! - [`executor`]: [`TallyRollup`], the [`SyncRollup`](lockstep_rollup_api::SyncRollup)
//!   implementation.
//! - [`circuit`]: the circuit (k = [`circuit::TALLY_K`], a different degree from the reference
//!   rollup's) and its prover.
//! - [`replica`]: the rollup at its adapter ([`TallyReplica`], [`TallyProver`]), so that the
//!   generic adapter daemon runs it.

use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use lockstep_circuits::{entry::Address, poseidon, Fr};
use serde::{Deserialize, Serialize};

pub mod block;
pub mod circuit;
mod error;
pub mod executor;
pub mod replica;

pub use error::{Error, Result};
pub use executor::{TallyRollup, TallyRollups};
pub use replica::{TallyProver, TallyReplica};

/// The tally app's address, the only target the rollup serves.
pub const TALLY_APP: Address = Address([0x7a; 20]);

/// Largest value a call may carry (2^96 − 1 wei), so that balances stay far inside 128 bits.
pub const MAX_VALUE: u128 = (1 << 96) - 1;

/// Domain tag of the state root (`"lockstep.tally.1"` as a 128-bit big-endian integer).
pub fn state_tag() -> Fr {
    Fr::from_u128(u128::from_be_bytes(*b"lockstep.tally.1"))
}

/// The rollup's whole state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TallyState {
    /// Calls counted so far (committed ones).
    pub count: u64,
    /// Wei held, from the values of committed calls.
    pub balance: u128,
}

impl TallyState {
    /// `Poseidon(state_tag, count, balance)`.
    pub fn root(&self) -> Fr {
        poseidon::hash(&[
            state_tag(),
            Fr::from(self.count),
            Fr::from_u128(self.balance),
        ])
    }
}

/// A count as the call's return data: the 16 big-endian bytes of the word.
pub fn count_word(count: u64) -> [u8; 16] {
    u128::from(count).to_be_bytes()
}
