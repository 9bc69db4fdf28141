//! Advice cells of the memory check (`MemoryChip`): per op, per distinct key and per scratch
//! cell, at tree depths 16 and 32, from the difference between capacities. The numbers in `docs/benchmarks.md`.
//!
//! ```text
//! cargo run -p lockstep-circuits --example memory_cost
//! ```

use halo2_base::gates::circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage};
use lockstep_circuits::{
    memory::{MemoryCapacity, MemoryChip, MemoryWitness, StateAccess},
    poseidon, shape,
    smt::SparseMerkleTree,
    Fr,
};

/// Advice cells of one memory check of `capacity` over a tree of `depth` levels.
fn cells(depth: usize, capacity: MemoryCapacity) -> lockstep_circuits::Result<usize> {
    let tree = SparseMerkleTree::new(depth)?;
    // One key read over and over: the cost depends on the capacity, not on the trace.
    let key = poseidon::hash(&[Fr::from(1)]);
    let trace = vec![
        StateAccess {
            key,
            before: Fr::zero(),
            after: Fr::zero(),
        };
        capacity.ops.min(1)
    ];
    let witness = MemoryWitness::new(&tree, &trace)?;
    let mut builder = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Mock)
        .use_params(shape::rollup_params(20)?);
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let hasher = poseidon::hasher(ctx, &range.gate);
    let start = ctx.advice.len();
    let chip = MemoryChip::new(&range, depth, capacity)?;
    let ops = chip.load_ops(ctx, &witness)?;
    let keys = chip.load_keys(ctx, &witness)?;
    let scratch = chip.load_scratch(ctx, &witness)?;
    let pre_root = ctx.load_witness(witness.pre_root);
    chip.check(ctx, &hasher, pre_root, &ops, &keys, &scratch)?;
    Ok(ctx.advice.len() - start)
}

fn main() -> lockstep_circuits::Result<()> {
    for depth in [16, 32] {
        let capacity = |ops, keys, scratch| MemoryCapacity { ops, keys, scratch };
        let base = cells(depth, capacity(64, 8, 64))?;
        let more_ops = cells(depth, capacity(128, 8, 64))?;
        let more_keys = cells(depth, capacity(64, 16, 64))?;
        let more_scratch = cells(depth, capacity(64, 8, 128))?;
        let per_op = (more_ops - base) as f64 / 64.0;
        let per_key = (more_keys - base) as f64 / 8.0;
        let per_cell = (more_scratch - base) as f64 / 64.0;
        println!(
            "depth {depth}: {base} cells for 64 ops, 8 keys and 64 scratch cells; \
             {per_op:.0} per op; {per_key:.0} per key; {per_cell:.0} per scratch cell"
        );
    }
    Ok(())
}
