//! Integration tests of the tally rollup: its executor through the rollup interface, in a slot
//! with the reference rollup, and its circuit (MockProver) against what the executor sealed,
//! with the lies it must refuse.

mod tally;
