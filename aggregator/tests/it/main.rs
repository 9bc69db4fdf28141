//! Integration tests of the aggregator: real proofs end to end.

mod adapter;
mod api;
mod builder;
mod cluster;
mod pipeline;
mod settle;
mod stf_adapter;
