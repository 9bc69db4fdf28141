//! The common shape of every rollup circuit (DESIGN decision 4).
//!
//! The aggregation circuit verifies rollup proofs with their preprocessed commitments and `k`
//! loaded as witnesses, so one aggregation circuit (and one L1 verifier) serves every rollup
//! whose circuit has this shape: the same halo2-lib gate, the same number of advice, lookup and
//! fixed columns, the same lookup table and one instance column of [`crate::layout::NUM_INSTANCES`]
//! cells. Only `k` may differ between rollups (at least [`MIN_K`]).
//!
//! The shape is thin on purpose: the aggregation circuit's cost, and the size of the EVM
//! verifier behind it, grow with the number of columns of the circuits it verifies (DESIGN
//! decision 6). A rollup that needs more cells raises `k`, not the column count.

use halo2_base::gates::{
    circuit::{builder::BaseCircuitBuilder, BaseCircuitParams, CircuitBuilderStage},
    flex_gate::MultiPhaseThreadBreakPoints,
};

use crate::{Error, Fr, Result};

/// Advice columns of a rollup circuit.
pub const NUM_ADVICE: usize = 4;
/// Lookup-advice columns of a rollup circuit.
pub const NUM_LOOKUP_ADVICE: usize = 1;
/// Fixed columns (constants) of a rollup circuit.
pub const NUM_FIXED: usize = 1;
/// Bits of the range-check lookup table.
pub const LOOKUP_BITS: usize = 10;
/// Smallest `k` a rollup circuit may use (the lookup table needs `2^LOOKUP_BITS` rows).
pub const MIN_K: u32 = LOOKUP_BITS as u32 + 1;
/// Rows halo2 reserves at the end of every column for blinding.
pub const BLINDING_ROWS: usize = 9;
/// Version of the shape; part of every key-cache digest.
pub const SHAPE_VERSION: u32 = 1;

/// The circuit parameters of a rollup circuit of the common shape at `k`.
pub fn rollup_params(k: u32) -> Result<BaseCircuitParams> {
    if k < MIN_K {
        return Err(Error::OutOfRange {
            what: "rollup circuit k",
            value: k.to_string(),
            expected: "at least MIN_K (11)",
        });
    }
    Ok(BaseCircuitParams {
        k: k as usize,
        num_advice_per_phase: vec![NUM_ADVICE],
        num_fixed: NUM_FIXED,
        num_lookup_advice_per_phase: vec![NUM_LOOKUP_ADVICE],
        lookup_bits: Some(LOOKUP_BITS),
        num_instance_columns: 1,
    })
}

/// An empty builder of the common shape at `k` for `stage`: `Mock` or `Keygen` (then
/// `break_points` is `None`), or `Prover` with the break points recorded at keygen.
pub fn builder(
    stage: CircuitBuilderStage,
    k: u32,
    break_points: Option<MultiPhaseThreadBreakPoints>,
) -> Result<BaseCircuitBuilder<Fr>> {
    let params = rollup_params(k)?;
    Ok(match (stage, break_points) {
        (CircuitBuilderStage::Prover, Some(bp)) => BaseCircuitBuilder::prover(params, bp),
        (stage, _) => BaseCircuitBuilder::from_stage(stage).use_params(params),
    })
}

/// Checks that a synthesized builder fits the common shape at its `k`; names what overflows.
pub fn check_fits(builder: &mut BaseCircuitBuilder<Fr>) -> Result<()> {
    let k = builder.config_params.k as u32;
    let mut probe = builder.deep_clone();
    let needed = probe.calculate_params(Some(BLINDING_ROWS));
    // Only measured, never synthesised: dropping it full would log halo2-base's warnings.
    probe.clear();
    let fits = needed.num_advice_per_phase.iter().all(|&n| n <= NUM_ADVICE)
        && needed
            .num_lookup_advice_per_phase
            .iter()
            .all(|&n| n <= NUM_LOOKUP_ADVICE)
        && needed.num_fixed <= NUM_FIXED;
    if fits {
        Ok(())
    } else {
        Err(Error::CircuitTooLarge {
            k,
            needed: format!(
                "{:?} advice, {:?} lookup advice, {} fixed columns",
                needed.num_advice_per_phase, needed.num_lookup_advice_per_phase, needed.num_fixed
            ),
        })
    }
}
