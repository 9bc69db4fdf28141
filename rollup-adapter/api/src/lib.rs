//! What a rollup team implements to join a Lockstep cluster, in protocol terms.
//!
//! A cluster's rollups execute together: a contract on one rollup calls a contract on another
//! and gets the result back in the same transaction. Each rollup keeps its own state transition
//! function and circuit; this crate is the seam between them and the builder:
//!
//! - [`SyncRollup`]: one rollup's executor as the builder drives it (a slot, transactions in the
//!   rollup's own encoding, calls it serves, the block it seals). Calldata and return data are
//!   bytes, values 256-bit words, and the entries it records are the protocol's
//!   ([`lockstep_circuits::entry::Entry`]).
//! - [`Cluster`]: the builder's simulation of a slot over `dyn SyncRollup`s: a call into another
//!   rollup runs there at once and its result returns to the caller; sealing checks that every
//!   call one rollup assumed was served by another with exactly that result.
//! - [`RollupFactory`]: how a builder makes its rollups at genesis, on its own thread.
//! - [`RollupReplica`] and [`RollupProver`]: what the adapter daemon (`lockstep-rollup-adapter`)
//!   needs: the rollup's state, which executes each sealed block once and records its circuit's
//!   witness, and the circuit that proves it ([`TestRollupProver`] is one, for any rollup).
//! - [`RollupError`]: a small error that says whom to blame and whether to retry.
//!
//! Nothing here names a particular rollup: the reference rollup (`lockstep-reference-rollup`)
//! is one implementation, and any rollup whose circuit has the common shape
//! ([`lockstep_circuits::shape`]) can be another.

mod call;
mod cluster;
mod error;
mod prover;
mod rollup;

pub use call::{CallOutcome, CallRouter, IncomingCall, OutgoingCall};
pub use cluster::{Cluster, TxReceipt, MAX_EXECUTIONS};
pub use error::{Result, RollupError};
pub use lockstep_circuits::entry::{data_field, Address, Domain, Entry};
pub use prover::{
    mock_check_exposing, prove_exposing, BlockHeader, ProvingJob, RollupProver, RollupReplica,
    TestRollupProver, TEST_ROLLUP_LABEL,
};
pub use rollup::{RollupFactory, SealedBlock, SyncRollup};
pub use ruint::aliases::U256;
