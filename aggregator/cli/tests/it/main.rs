//! Integration tests of the `lockstep` binary and what it pairs: adapters proving the reference
//! rollup's blocks for the service, and the service process killed at every stage.

#[path = "../../../tests/it/cluster.rs"]
mod cluster;

mod adapter;
mod generic_adapter;
mod pipeline;
mod stf_adapter;
