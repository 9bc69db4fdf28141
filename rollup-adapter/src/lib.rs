//! What a Lockstep rollup runs: the interface a rollup implements to execute synchronously with
//! other rollups, and the reference app-rollup.
//!
//! # The pieces
//! - [`sync`]: [`SyncRollup`], the interface a rollup implements to take part in one slot's
//!   synchronous execution, and [`Cluster`], the builder's simulation that runs user
//!   transactions across rollups (a call into another rollup runs there at once and its result
//!   returns to the caller) and seals one block per rollup whose entries balance.
//! - [`executor`]: [`ReferenceRollup`], the reference app-rollup's native executor (counter,
//!   forwarder, AMM, reverter, ETH with value moving across rollups), and block replay.
//! - [`state`] and [`smt`]: its state, typed keys over a Poseidon sparse Merkle tree, and the
//!   trace of state accesses a block's proof checks ([`ReferenceRollup::transition`]).
//! - [`machine`]: the STF step machine, the block's execution as rows of micro-steps: the
//!   layout the STF circuit proves, run from the tape and checked from the rows alone.
//! - [`block`]: the versioned binary block encoding that goes into the blob.
//! - [`abi`]: the apps' compact call ABI.
//!
//! The STF circuit that proves a block is specified next to the executor, in
//! `docs/reference-rollup.md`.
//!
//! ```
//! use lockstep_circuits::entry::{Address, Domain};
//! use lockstep_rollup_adapter::{
//!     abi::{AppKind, CallData, Method},
//!     block::Tx,
//!     Cluster, Genesis, ReferenceRollup,
//! };
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
//! let receipt = cluster.submit(2, &Tx { from: alice, nonce: 0, to: proxy, value: 0, data: call })?;
//! assert_eq!(receipt.outcome.word, 1); // the counter on rollup 1 returned its new value
//!
//! let blocks = cluster.seal()?; // entries balance: rollup 2 assumed what rollup 1 served
//! assert_eq!(blocks[0].served, blocks[1].assumed);
//! # Ok::<(), lockstep_rollup_adapter::Error>(())
//! ```

pub mod abi;
pub mod block;
mod error;
pub mod executor;
pub mod machine;
pub mod smt;
pub mod state;
pub mod sync;

pub use error::{Error, Result};
pub use executor::{Genesis, ReferenceRollup, Transition};
pub use sync::{CallOutcome, CallRouter, Cluster, SealedBlock, SyncRollup};
