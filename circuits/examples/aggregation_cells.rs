//! Advice cells and columns of the aggregation circuit, Lockstep's and snark-verifier-sdk's
//! stock one, over `N` dummy test-rollup snarks, without keygen or proving: the numbers behind
//! the cell rows of `docs/benchmarks.md`.
//!
//! ```text
//! cargo run -p lockstep-circuits --example aggregation_cells -- 4 22
//! ```

use halo2_base::gates::circuit::CircuitBuilderStage;
use lockstep_circuits::{
    aggregation::{self, AggregationConfig, AggregationKind},
    layout::NUM_INSTANCES,
    testing, Result,
};
use snark_verifier_sdk::{halo2::gen_dummy_snark_from_vk, SHPLONK};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let rollups: usize = args.next().map_or(Ok(4), |a| a.parse()).expect("N");
    let k: u32 = args.next().map_or(Ok(22), |a| a.parse()).expect("k");
    let store = testing::persistent_key_store()?;
    let (inner_params, inner_key) = testing::test_rollup_key(&store)?;
    let params = store.load_or_generate_unsafe_test_srs(k)?;
    let config = AggregationConfig::new(rollups, k);
    let mut cells = Vec::new();
    for kind in [AggregationKind::Stock, AggregationKind::Lockstep] {
        let dummies = (0..rollups)
            .map(|_| {
                gen_dummy_snark_from_vk::<SHPLONK>(
                    &inner_params,
                    inner_key.pk.get_vk(),
                    vec![NUM_INSTANCES],
                    None,
                )
            })
            .collect();
        let circuit = aggregation::build(
            CircuitBuilderStage::Keygen,
            &config,
            kind,
            None,
            None,
            &params,
            dummies,
        )?;
        let total = aggregation::advice_cells(&circuit.builder);
        let columns = circuit.builder.config_params.num_advice_per_phase[0];
        println!("{kind:?}: {total} advice cells, {columns} advice columns at k = {k}");
        cells.push(total);
    }
    println!(
        "ours − stock: {} cells, ours / stock: {:.4}",
        cells[1] as i64 - cells[0] as i64,
        cells[1] as f64 / cells[0] as f64
    );
    Ok(())
}
