//! Lockstep's cryptographic core: the cross-rollup call entries, the per-rollup public-input
//! layout, the rollup and aggregation circuits, and key management.
//!
//! This crate is pure: no async runtime and no I/O beyond reading and writing key files (and
//! the `tracing` lines of [`progress`]).
//!
//! # The pieces
//! - [`entry`]: a cross-rollup call as both sides record it, its packing into field elements
//!   and its Poseidon hash, natively and in-circuit ([`entry::EntryChip`]).
//! - [`fr_text`]: field elements as big-endian bytes and hex text.
//! - [`layout`]: the fixed, versioned public-input layout every rollup proof exposes, and
//!   [`layout::PublicInputsChip`], the gadget a rollup circuit calls to expose it correctly.
//! - [`shape`]: the common circuit shape every rollup circuit is built with (DESIGN decision 4).
//! - [`test_rollup`]: a rollup circuit with a trivial state transition, in the common shape.
//! - [`accumulator`]: the grand-product check that every assumed call was served with
//!   exactly the assumed result, natively and in-circuit ([`accumulator::AccumulatorChip`]).
//! - [`aggregation`]: the universal aggregation circuit over the rollup proofs of a slot.
//! - [`merkle`]: Poseidon sparse Merkle trees, natively and in-circuit
//!   ([`merkle::MerkleChip`]), a state commitment for rollup circuits; [`smt`] is the native
//!   tree.
//! - [`memory`]: offline memory checking ([`memory::MemoryChip`]): a whole state trace proven
//!   with one Merkle opening per distinct key.
//! - [`keys`]: SRS files (standard halo2 KZG format), an unsafe test SRS for tests and the
//!   demo, and proving keys cached on disk under a digest of the circuit configuration.
//! - [`srs`]: KZG setup from a known secret, byte-identical to halo2's and much faster (the
//!   unsafe test SRS).
//! - [`prover`]: proving and verifying rollup snarks, with errors instead of panics.
//! - [`vk_file`]: a rollup's verifying key as a file, how a rollup joins a cluster.
//! - [`progress`]: progress of long steps (keygen, proving, SRS work) with elapsed time and an
//!   estimate, to a process-wide sink: periodic `tracing` lines by default.
//! - [`poseidon`]: the one Poseidon instance used everywhere, native and in-circuit.
//! - [`multiset`]: multiset equalities proven in the second phase, over the verifier's
//!   challenges; [`table`]: a read-only table read in constant cells per read through one.
//!
//! ```
//! use lockstep_circuits::entry::{Address, CallKind, Domain, Entry};
//!
//! let entry = Entry {
//!     domain: Domain { chain_id: 1, registry: Address([0x11; 20]) },
//!     slot: 42,
//!     src: 1,
//!     dst: 2,
//!     seq: 0,
//!     kind: CallKind::Call,
//!     success: true,
//!     committed: true,
//!     caller: Address([0xaa; 20]),
//!     target: Address([0xbb; 20]),
//!     value: [0; 32],
//!     calldata_hash: [0x01; 32],
//!     return_hash: [0x02; 32],
//! };
//! // Both sides hash the same fields: the role (assumed or served) is not in the hash.
//! assert_ne!(entry.hash(), lockstep_circuits::Fr::zero());
//! ```

pub mod accumulator;
pub mod aggregation;
pub mod entry;
mod error;
pub mod fr_text;
pub mod keys;
pub mod layout;
pub mod memory;
pub mod merkle;
pub mod multiset;
pub mod poseidon;
pub mod progress;
pub mod prover;
pub mod shape;
pub mod smt;
pub mod srs;
pub mod table;
pub mod test_rollup;
#[cfg(feature = "test-utils")]
pub mod testing;
pub mod vk_file;

pub use error::{Error, Result};
pub use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
