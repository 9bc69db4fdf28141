//! Integration tests of the aggregator: the service, its pipeline and adapters, real proofs end
//! to end.

mod adapter;
mod api;
mod builder;
mod cluster;
mod dev_mode;
mod pipeline;
mod settle;
mod stf_adapter;
