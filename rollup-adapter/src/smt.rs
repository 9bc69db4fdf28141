//! The state tree: [`lockstep_circuits::smt`], the native twin of the circuit's Merkle chip,
//! re-exported where the reference rollup's state uses it.

pub use lockstep_circuits::smt::*;
