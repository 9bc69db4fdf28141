//! Integration tests of the aggregator: real proofs end to end.

mod adapter;
mod settle;
mod api;
mod builder;
mod cluster;
mod pipeline;
mod stf_adapter;
