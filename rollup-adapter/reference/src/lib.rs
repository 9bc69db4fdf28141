//! The reference rollup of Lockstep, whole: an app-rollup with counters, forwarders, an AMM, a
//! reverter and ETH that moves across rollups, its block format, executor, step machine, STF
//! circuit and prover. It implements the rollup interface ([`lockstep_rollup_api`]) like any
//! rollup a team would bring, and it is a template to copy.
//!
//! # The pieces
//! - [`abi`]: the apps and their compact call ABI (19-byte calldata, 128-bit words).
//! - [`block`]: the versioned binary block and transaction encodings (what goes into the blob).
//! - [`state`]: typed state keys over a Poseidon sparse Merkle tree, and the trace of state
//!   accesses a block's proof checks.
//! - [`executor`]: [`ReferenceRollup`], the native executor, block replay and
//!   [`ReferenceRollup::transition`] (a replay with the executor's own state trace, which tests
//!   check against the memory circuit); it implements [`lockstep_rollup_api::SyncRollup`].
//! - [`calls`]: its typed view of cross-rollup calls and the conversion to the protocol's bytes.
//! - [`spec`]: what the executor, the machine and the circuit share (call depth, `next`).
//! - [`machine`]: the STF step machine, the block's execution as rows of micro-steps: the
//!   layout the STF circuit proves, run from the tape and checked from the rows alone.
//! - [`deployment`]: a deployment file (genesis and STF circuit), read by the builder, the
//!   adapter and key export alike.
//! - [`replica`]: the rollup at its adapter: [`ReferenceReplica`] applies each sealed block once
//!   on the step machine and keeps the run as the proof's witness; [`StfProver`] proves it.
//! - [`circuit`]: the STF circuit, the machine's rows as constraints over the memory check,
//!   exposing the common public-input layout.
//! - [`sample`]: the sample cluster, three rollups with every app, that the demo runs and the
//!   tests and benches build on.
//!
//! Everything is specified in `docs/reference-rollup.md`.
//!
//! ```
//! use lockstep_circuits::entry::{Address, Domain};
//! use lockstep_reference_rollup::{
//!     abi::{AppKind, CallData, Method},
//!     block::Tx,
//!     CallOutcome, Genesis, ReferenceRollup,
//! };
//! use lockstep_rollup_api::Cluster;
//!
//! let (alice, counter, proxy) = (Address([0xa1; 20]), Address([0xc0; 20]), Address([0xf0; 20]));
//! // Rollup 1 holds a counter; rollup 2 a forwarder that calls it (the CounterAndProxy pattern).
//! let one = Genesis::new(1).with_app(counter, AppKind::Counter, 0);
//! let two = Genesis::new(2)
//!     .with_account(alice, 10)
//!     .with_app(proxy, AppKind::Forwarder { rollup: 1, target: counter }, 0);
//!
//! let mut cluster = Cluster::new(Domain::default());
//! cluster.add(Box::new(ReferenceRollup::new(&one)?))?;
//! cluster.add(Box::new(ReferenceRollup::new(&two)?))?;
//! cluster.begin_slot(7)?;
//! let call = CallData::forward(Method::Increment, Method::Transfer, 0);
//! let tx = Tx { from: alice, nonce: 0, to: proxy, value: 0, data: call };
//! let receipt = cluster.submit(2, &tx.encode())?;
//! // The counter on rollup 1 returned its new value.
//! assert_eq!(CallOutcome::from_api(&receipt.outcome)?, CallOutcome::ok(1));
//!
//! let blocks = cluster.seal()?; // entries balance: rollup 2 assumed what rollup 1 served
//! assert_eq!(blocks[0].served, blocks[1].assumed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod abi;
pub mod block;
pub mod calls;
pub mod circuit;
pub mod deployment;
mod error;
pub mod executor;
pub mod machine;
pub mod replica;
pub mod sample;
pub mod spec;
pub mod state;

pub use calls::{CallOutcome, CallRouter, OutgoingCall};
pub use deployment::Deployment;
pub use error::{Error, Result};
pub use executor::{Genesis, ReferenceRollup, ReferenceRollups, Transition};
pub use replica::{ReferenceProver, ReferenceReplica, ReplayedBlock, StfProver};
