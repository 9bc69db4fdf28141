//! What a Lockstep rollup runs: the executor trait a rollup implements, the reference
//! app-rollup, proving a block and talking to the aggregator.
