//! Integration tests of the circuits crate: native/in-circuit agreement and MockProver
//! positive and negative cases.

mod accumulator;
mod challenges;
mod common;
mod entry;
mod layout;
mod memory;
mod merkle;
mod poseidon;
mod prove;
mod table;
mod test_rollup;
