//! Advice cells of the memory check (`MemoryChip`), both phases (the second: the multiset
//! equality over the challenges): per op, per distinct key and per scratch cell, at tree depths
//! 16 and 32, from the difference between capacities; an op with and without a `used` flag
//! (a step machine's ops are all used). The numbers in `docs/benchmarks.md`.
//!
//! ```text
//! cargo run -p lockstep-circuits --example memory_cost
//! ```

use halo2_base::gates::circuit::CircuitBuilderStage;
use lockstep_circuits::{
    memory::{MemoryCapacity, MemoryChip, MemoryWitness, StateAccess},
    poseidon,
    shape::RollupCircuit,
    smt::SparseMerkleTree,
    Fr,
};

/// Advice cells of one memory check of `capacity` over a tree of `depth` levels.
fn cells(
    depth: usize,
    capacity: MemoryCapacity,
    every_op_used: bool,
) -> lockstep_circuits::Result<usize> {
    let tree = SparseMerkleTree::new(depth)?;
    // One key read over and over: the cost depends on the capacity, not on the trace.
    let key = poseidon::hash(&[Fr::from(1)]);
    let trace = vec![
        StateAccess {
            key,
            before: Fr::zero(),
            after: Fr::zero(),
        };
        if every_op_used {
            capacity.ops
        } else {
            capacity.ops.min(1)
        }
    ];
    let witness = MemoryWitness::new(&tree, &trace)?;
    let mut circuit = RollupCircuit::new(CircuitBuilderStage::Mock, 20, None)?;
    let range = circuit.range_chip();
    let ctx = circuit.main();
    let mut chip = MemoryChip::new(&range, depth, capacity)?;
    if every_op_used {
        chip = chip.every_op_used();
    }
    let ops = chip.load_ops(ctx, &witness)?;
    let keys = chip.load_keys(ctx, &witness)?;
    let scratch = chip.load_scratch(ctx, &witness)?;
    let pre_root = ctx.load_witness(witness.pre_root);
    let (_, multisets) = chip.check(ctx, pre_root, &ops, &keys, &scratch)?;
    circuit.prove_equal(multisets);
    let cells = circuit.advice_cells().iter().sum();
    circuit.clear();
    Ok(cells)
}

fn main() -> lockstep_circuits::Result<()> {
    for depth in [16, 32] {
        let capacity = |ops, keys, scratch| MemoryCapacity { ops, keys, scratch };
        let base = cells(depth, capacity(64, 8, 64), false)?;
        let more_ops = cells(depth, capacity(128, 8, 64), false)?;
        let more_keys = cells(depth, capacity(64, 16, 64), false)?;
        let more_scratch = cells(depth, capacity(64, 8, 128), false)?;
        let used_base = cells(depth, capacity(64, 8, 64), true)?;
        let used_more = cells(depth, capacity(128, 8, 64), true)?;
        let per_used_op = (used_more - used_base) as f64 / 64.0;
        let per_op = (more_ops - base) as f64 / 64.0;
        let per_key = (more_keys - base) as f64 / 8.0;
        let per_cell = (more_scratch - base) as f64 / 64.0;
        println!(
            "depth {depth}: {base} cells for 64 ops, 8 keys and 64 scratch cells; \
             {per_op:.0} per op ({per_used_op:.0} where every op is used); {per_key:.0} per key; \
             {per_cell:.0} per scratch cell"
        );
    }
    Ok(())
}
