//! Integration tests of the aggregator: real proofs end to end.

mod adapter;
mod aggregate;
mod api;
mod pipeline;
