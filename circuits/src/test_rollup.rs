//! A rollup circuit with a trivial state transition, in the common shape.
//!
//! It takes the roots, the ETH delta and the entry lists as witnesses and exposes them through
//! [`PublicInputsChip`](crate::layout::PublicInputsChip): everything a real rollup circuit
//! exposes, without the state transition. The aggregator and its tests use it until the
//! reference rollup's circuit exists, and it stays as the smallest circuit of the common shape.

use halo2_base::gates::{
    circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
    flex_gate::MultiPhaseThreadBreakPoints,
};

use crate::{layout::PublicInputsWitness, shape, Fr, Result};

/// The smallest `k` the test rollup fits in with [`crate::layout::MAX_ENTRIES`] entries a side.
pub const TEST_ROLLUP_K: u32 = 17;

/// Builds the test rollup circuit for `witness`.
///
/// `stage` is `Mock` or `Keygen` (then `break_points` is `None`), or `Prover` with the break
/// points recorded at keygen. Fails if the circuit does not fit the common shape at `k`.
pub fn build(
    stage: CircuitBuilderStage,
    k: u32,
    break_points: Option<MultiPhaseThreadBreakPoints>,
    witness: &PublicInputsWitness,
) -> Result<BaseCircuitBuilder<Fr>> {
    let mut builder = shape::builder(stage, k, break_points)?;
    let range = builder.range_chip();
    let exposed = witness.assign_and_expose(&range, builder.main(0));
    builder.assigned_instances[0].extend(exposed);
    if stage != CircuitBuilderStage::Prover {
        shape::check_fits(&mut builder)?;
    }
    Ok(builder)
}
