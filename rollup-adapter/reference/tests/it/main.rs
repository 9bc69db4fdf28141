//! Integration tests of the reference app-rollup: scenarios across rollups, block replay and
//! encoding, and property tests over random workloads.

mod block;
mod interface;
mod machine;
mod props;
mod scenarios;
mod state_trace;
mod stf;
mod stf_slot;
mod world;
