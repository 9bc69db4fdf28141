//! Advice cells of one sparse Merkle access (`MerkleChip::access`) and of one two-to-one
//! Poseidon compression (its node hash), at tree depths 16 and 32: the numbers in `docs/benchmarks.md`.
//!
//! ```text
//! cargo run -p lockstep-circuits --example merkle_cost
//! ```

use halo2_base::gates::circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage};
use lockstep_circuits::{
    merkle::{MerkleAccess, MerkleChip},
    poseidon, shape, Fr,
};

fn main() -> lockstep_circuits::Result<()> {
    for depth in [16, 32] {
        let mut builder = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Mock)
            .use_params(shape::rollup_params(18)?);
        let range = builder.range_chip();
        let ctx = builder.main(0);
        let start = ctx.advice.len();
        let chip = MerkleChip::new(&range, depth)?;
        let access = MerkleAccess {
            key: Fr::from(77),
            before: Fr::from(1),
            after: Fr::from(2),
            siblings: vec![Fr::from(3); depth],
        };
        let loaded = chip.load(ctx, &access)?;
        let root = ctx.load_witness(access.root_before());
        chip.access(ctx, root, &loaded);
        let per_access = ctx.advice.len() - start;

        let [left, right] = [Fr::from(1), Fr::from(2)].map(|v| ctx.load_witness(v));
        let start = ctx.advice.len();
        poseidon::compress_assigned(ctx, &range.gate, left, right);
        let per_hash = ctx.advice.len() - start;
        println!(
            "depth {depth}: {per_access} advice cells per access; 2-to-1 compression: {per_hash}"
        );
    }
    Ok(())
}
