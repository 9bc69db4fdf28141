//! Integration tests of the aggregator service: its API, builder and pipeline, dev mode, and a
//! slot of real STF proofs aggregated, verified on the EVM and settled.

mod api;
mod builder;
mod cluster;
mod dev_mode;
mod openapi;
mod settle;
